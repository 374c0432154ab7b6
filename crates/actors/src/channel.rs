//! The channel actor: one per chat channel, keyed `Channel(name)`.
//!
//! It keeps the member list, checks read/write privileges, and fans a message out to
//! every member but the sender. The message is encoded once and the same bytes are queued
//! for every member.
//!
//! Besides the persistent channels from the database there are *instance* channels that
//! belong to a spectator room or a match. Their key is unique (`#spec_12`, `#mp_3`) but
//! clients know them by a display name (`#spectator`, `#multiplayer`), and they are never
//! announced with CHANNEL_INFO. Member-count updates (CHANNEL_INFO) are coalesced to at most one
//! broadcast per [`INFO_COALESCE`], so a login storm does not cost one broadcast per join.

use std::collections::BTreeMap;
use std::time::Duration;

use peace_bancho::ServerPacket;
use peace_bancho::server::{ChannelInfo, Notification, SendMessage};
use peace_db::Privileges;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};

use crate::World;
use crate::message::EntityMsg;
use crate::user::UserCast;

/// Whether `key` is an instance channel: a spectator room's or a match's. Players get
/// into one only through its room or match (which checks passwords and slots), never
/// by naming it in CHANNEL_JOIN.
pub fn is_instance_key(key: &str) -> bool {
    crate::spectate::host_of_channel(key).is_some()
        || crate::match_room::match_of_channel(key).is_some()
}

/// The longest wait before member counts are re-announced.
pub const INFO_COALESCE: Duration = Duration::from_secs(1);

/// The latest CHANNEL_INFO (member count) of every announced channel, versioned, for
/// sessions to pick up when their client polls.
///
/// Why not a cast to everyone: an announcement concerns every player, once a second per
/// channel during a login storm, and queued into sessions that poll rarely it grew by
/// the second (1.6 GB at 100,000 sessions before they polled; docs/benchmarks.md). Here
/// an announcement replaces the channel's entry, and a session that was away for a while
/// gets only the latest count of each channel. Every node keeps a board: a channel
/// publishes on its own node's and sends each other node one envelope. The lock is a
/// `std` RwLock: short sections, nothing awaits inside.
#[derive(Debug, Default)]
pub struct MemberCounts {
    board: std::sync::RwLock<Vec<CountEntry>>,
    /// The newest entry's version, read without the lock by polls with nothing new.
    version: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct CountEntry {
    channel: String,
    /// Who may see the channel (its read privileges).
    required: Privileges,
    packet: bytes::Bytes,
    version: u64,
}

impl MemberCounts {
    /// Replaces `channel`'s announcement with `packet` (an encoded CHANNEL_INFO).
    pub fn publish(&self, channel: &str, required: Privileges, packet: bytes::Bytes) {
        use std::sync::atomic::Ordering;
        let mut board = self.board.write().unwrap_or_else(|e| e.into_inner());
        let version = self.version.load(Ordering::Relaxed) + 1;
        match board.iter_mut().find(|e| e.channel == channel) {
            Some(entry) => {
                entry.packet = packet;
                entry.required = required;
                entry.version = version;
            }
            None => board.push(CountEntry {
                channel: channel.to_owned(),
                required,
                packet,
                version,
            }),
        }
        // Under the lock, so that a reader who sees the version also sees the entry.
        self.version.store(version, Ordering::Release);
    }

    /// Calls `f` with every announcement newer than `cursor` that `privileges` may see,
    /// and moves `cursor` to the newest.
    pub fn read_since(&self, cursor: &mut u64, privileges: Privileges, mut f: impl FnMut(&[u8])) {
        let newest = self.version.load(std::sync::atomic::Ordering::Acquire);
        if *cursor >= newest {
            return;
        }
        let board = self.board.read().unwrap_or_else(|e| e.into_inner());
        for entry in board.iter().filter(|e| e.version > *cursor) {
            if privileges.meets(entry.required) {
                f(&entry.packet);
            }
        }
        *cursor = board.iter().map(|e| e.version).max().unwrap_or(newest);
    }

    /// The cursor of a session that has seen every announcement so far.
    pub fn newest(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// What a channel can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelCast {
    /// A message from a member (or the bot) to everyone else in the channel.
    Message {
        from_id: i32,
        from_name: String,
        privileges: Privileges,
        text: String,
    },
    /// A session ended; drop it without telling it.
    Forget { user_id: i32, session_id: u64 },
    /// Timer: announce the current member count.
    AnnounceInfo,
    /// The owner (room or match) closed: remove everyone and stop.
    Close,
}

/// What a channel can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelCall {
    Join {
        user_id: i32,
        session_id: u64,
        privileges: Privileges,
    },
    Part {
        user_id: i32,
        session_id: u64,
    },
    Summary,
}

/// A channel's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelReply {
    Joined,
    /// The user lacks the read privileges.
    Denied,
    Parted,
    Summary(ChannelSummary),
}

/// A channel as listed to clients and in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSummary {
    pub name: String,
    pub topic: String,
    pub members: usize,
    pub read_privileges: Privileges,
}

pub type ChannelMsg = EntityMsg<ChannelCast, ChannelCall, ChannelReply>;

/// A channel's serializable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelState {
    pub definition: peace_db::Channel,
    /// The name clients see (differs from the key for instance channels).
    pub display_name: String,
    /// An instance channel of a room or match: never announced.
    pub instance: bool,
    /// user id → (session id, privileges)
    pub members: BTreeMap<i32, (u64, Privileges)>,
    pub info_pending: bool,
}

impl ChannelState {
    pub fn new(definition: peace_db::Channel) -> Self {
        let display_name = definition.name.clone();
        Self {
            definition,
            display_name,
            instance: false,
            members: BTreeMap::new(),
            info_pending: false,
        }
    }

    /// An instance channel keyed `name`, shown to clients as `display_name`.
    pub fn instance(name: &str, display_name: &str, topic: &str) -> Self {
        let definition = peace_db::Channel {
            name: name.to_owned(),
            topic: topic.to_owned(),
            read_privileges: 0,
            write_privileges: 0,
            auto_join: false,
        };
        Self {
            display_name: display_name.to_owned(),
            instance: true,
            ..Self::new(definition)
        }
    }

    fn read_privileges(&self) -> Privileges {
        Privileges(self.definition.read_privileges)
    }

    fn summary(&self) -> ChannelSummary {
        ChannelSummary {
            name: self.definition.name.clone(),
            topic: self.definition.topic.clone(),
            members: self.members.len(),
            read_privileges: self.read_privileges(),
        }
    }
}

/// The channel actor.
#[derive(Debug)]
pub struct ChannelActor;

#[derive(Debug)]
pub struct ChannelRuntime {
    world: World,
    state: ChannelState,
    /// Exported to another node: it stops without closing.
    moved: bool,
}

impl Actor for ChannelActor {
    type Msg = ChannelMsg;
    type State = ChannelRuntime;
    type Arguments = (World, ChannelState);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (world, state): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ChannelRuntime {
            world,
            state,
            moved: false,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A channel that moved here with an announcement pending owes it.
        if rt.state.info_pending {
            rt.state.info_pending = false;
            rt.schedule_info(&myself);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        peace_metrics::mailbox_handled("channel");
        let st = &mut rt.state;
        match msg {
            EntityMsg::Call(
                ChannelCall::Join {
                    user_id,
                    session_id,
                    privileges,
                },
                reply,
            ) => {
                if !privileges.meets(st.read_privileges()) {
                    let _ = reply.send(ChannelReply::Denied);
                    return Ok(());
                }
                st.members.insert(user_id, (session_id, privileges));
                let _ = reply.send(ChannelReply::Joined);
                rt.schedule_info(&myself);
            }
            EntityMsg::Call(
                ChannelCall::Part {
                    user_id,
                    session_id,
                },
                reply,
            ) => {
                if st.members.get(&user_id).is_some_and(|m| m.0 == session_id) {
                    st.members.remove(&user_id);
                    rt.schedule_info(&myself);
                }
                let _ = reply.send(ChannelReply::Parted);
            }
            EntityMsg::Call(ChannelCall::Summary, reply) => {
                let _ = reply.send(ChannelReply::Summary(st.summary()));
            }
            EntityMsg::Cast(ChannelCast::Forget {
                user_id,
                session_id,
            }) => {
                if st.members.get(&user_id).is_some_and(|m| m.0 == session_id) {
                    st.members.remove(&user_id);
                    rt.schedule_info(&myself);
                }
            }
            EntityMsg::Cast(ChannelCast::Message {
                from_id,
                from_name,
                privileges,
                text,
            }) => {
                rt.relay(from_id, from_name, privileges, text);
            }
            EntityMsg::Cast(ChannelCast::AnnounceInfo) => rt.announce_info(),
            EntityMsg::Export(reply) => {
                rt.moved = true;
                let _ = reply.send(crate::snapshot::Snapshot::Channel(Box::new(st.clone())));
                myself.stop(Some("moved".into()));
            }
            EntityMsg::Cast(ChannelCast::Close) => {
                for &member in st.members.keys() {
                    let name = st.definition.name.clone();
                    let _ = rt
                        .world
                        .router()
                        .cast_user(member, UserCast::ChannelRemoved { name });
                }
                st.members.clear();
                myself.stop(Some("closed".into()));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !rt.moved {
            rt.world
                .router()
                .channels()
                .remove(&rt.state.definition.name, myself.get_id());
        }
        Ok(())
    }
}

impl ChannelRuntime {
    fn schedule_info(&mut self, myself: &ActorRef<ChannelMsg>) {
        if !self.state.info_pending && !self.state.instance {
            self.state.info_pending = true;
            myself.send_after(INFO_COALESCE, || {
                // Runs when the timer fires, as the message enters the mailbox.
                peace_metrics::mailbox_sent("channel");
                EntityMsg::Cast(ChannelCast::AnnounceInfo)
            });
        }
    }

    /// Tells everyone who may read the channel how many members it has now.
    fn announce_info(&mut self) {
        self.state.info_pending = false;
        let s = self.state.summary();
        let packet = ServerPacket::from(ChannelInfo {
            name: s.name,
            topic: s.topic,
            user_count: i16::try_from(s.members).unwrap_or(i16::MAX),
        });
        let required = self.state.read_privileges();
        let (name, packet) = (self.state.definition.name.clone(), packet.to_bytes());
        self.world
            .channel_counts()
            .publish(&name, required, packet.clone());
        let body = crate::cluster::envelope::Body::MemberCount {
            channel: name,
            required,
            packet,
        };
        self.world.router().net().send_all(&body);
    }

    fn relay(&mut self, from_id: i32, from_name: String, privileges: Privileges, text: String) {
        let st = &self.state;
        let router = self.world.router();
        let is_bot = privileges.contains(Privileges::BOT);
        if !is_bot && !st.members.contains_key(&from_id) {
            tracing::debug!(channel = %st.definition.name, user = from_id, "message from a non-member dropped");
            return;
        }
        if !privileges.meets(Privileges(st.definition.write_privileges)) {
            let text = format!("You may not write in {}.", st.display_name);
            let _ = router.cast_user(
                from_id,
                UserCast::Enqueue(ServerPacket::from(Notification { text }).to_bytes()),
            );
            return;
        }
        let is_command = !is_bot && text.starts_with('!');
        let packet = ServerPacket::from(SendMessage {
            message: peace_bancho::Message {
                sender: from_name.clone(),
                text: text.clone(),
                recipient: st.display_name.clone(),
                sender_id: from_id,
            },
        })
        .to_bytes();
        let started = std::time::Instant::now();
        let others: Vec<i32> = st
            .members
            .keys()
            .copied()
            .filter(|&m| m != from_id)
            .collect();
        let reached = others.len();
        router.cast_users(others, UserCast::Enqueue(packet));
        // Every member's session (or its node's router) now has the message in its
        // mailbox (docs/benchmarks.md discusses what this measures).
        peace_metrics::channel_fanout(started.elapsed(), reached);
        if is_command {
            let channel = st.definition.name.clone();
            let cast = UserCast::ChannelCommand {
                channel,
                from_id,
                from_name,
                privileges,
                text,
            };
            let _ = router.cast_user(crate::BOT_ID, cast);
        }
    }
}
