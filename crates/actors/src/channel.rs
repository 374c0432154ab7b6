//! The chat channel: one per channel, keyed `Channel(name)`.
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
use std::sync::Arc;
use std::time::Duration;

use peace_bancho::ServerPacket;
use peace_bancho::server::{ChannelInfo, Notification, SendMessage};
use peace_db::Privileges;
use peace_sharding::{AfterPanic, Entity, Me};
use serde::{Deserialize, Serialize};

use crate::EntityKey;
use crate::ports::{Mail, Ports};
use crate::session_msg::UserCast;

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

pub use crate::kind_msg::{ChannelCall, ChannelCast, ChannelReply, ChannelSummary};

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

/// What a channel may use beyond its own state.
#[derive(Debug, Clone)]
pub struct ChannelPorts {
    pub outbox: Ports,
    /// Where member counts are published for every session to catch up with.
    pub counts: Arc<dyn CountBoard>,
}

impl Entity for ChannelState {
    const KIND: &'static str = "channel";
    type Key = String;
    type Cast = ChannelCast;
    type Call = ChannelCall;
    type Reply = ChannelReply;
    type Snapshot = ChannelState;
    type Ctx = ChannelPorts;

    fn key(&self) -> String {
        self.definition.name.clone()
    }

    async fn started(&mut self, _ports: &ChannelPorts, me: &Me<Self>) {
        // A channel that moved here with an announcement pending owes it.
        if self.info_pending {
            self.info_pending = false;
            self.schedule_info(me);
        }
    }

    async fn cast(&mut self, msg: ChannelCast, ports: &ChannelPorts, me: &Me<Self>) {
        match msg {
            ChannelCast::Forget {
                user_id,
                session_id,
            } => {
                self.remove_member(user_id, session_id, me);
            }
            ChannelCast::Message {
                from_id,
                from_name,
                privileges,
                text,
            } => self.relay(&ports.outbox, from_id, from_name, privileges, text),
            ChannelCast::AnnounceInfo => self.announce_info(ports),
            ChannelCast::Close => {
                for &member in self.members.keys() {
                    let name = self.definition.name.clone();
                    let _ = ports
                        .outbox
                        .send(Mail::User(member, UserCast::ChannelRemoved { name }));
                }
                self.members.clear();
                me.stop();
            }
        }
    }

    async fn call(
        &mut self,
        msg: ChannelCall,
        _ports: &ChannelPorts,
        me: &Me<Self>,
    ) -> ChannelReply {
        match msg {
            ChannelCall::Join {
                user_id,
                session_id,
                privileges,
            } => {
                if !privileges.meets(self.read_privileges()) {
                    return ChannelReply::Denied;
                }
                self.members.insert(user_id, (session_id, privileges));
                self.schedule_info(me);
                ChannelReply::Joined
            }
            ChannelCall::Part {
                user_id,
                session_id,
            } => {
                self.remove_member(user_id, session_id, me);
                ChannelReply::Parted
            }
            ChannelCall::Summary => ChannelReply::Summary(self.summary()),
        }
    }

    fn export(&mut self, _ports: &ChannelPorts) -> ChannelState {
        self.clone()
    }

    async fn ended(&mut self, ports: &ChannelPorts, me: &Me<Self>) {
        ports
            .outbox
            .forget(&EntityKey::Channel(self.key()), me.id());
    }

    /// A channel goes on from its last state: its members are still right. If even
    /// that could not be taken, it stops, and the node's supervisor starts it again
    /// from its definition.
    fn after_panic(
        _: &String,
        last: Option<ChannelState>,
        _: &ChannelPorts,
        _: &Me<Self>,
    ) -> AfterPanic<Self> {
        last.map_or(AfterPanic::Stop, AfterPanic::Restart)
    }
}

/// Where channels publish their member counts: this node's board, and every other
/// node's through an envelope.
pub trait CountBoard: Send + Sync + std::fmt::Debug + 'static {
    fn publish(&self, channel: String, required: Privileges, packet: bytes::Bytes);
}

impl ChannelState {
    /// Removes `user_id` if they are a member through session `session_id` (a newer
    /// session of theirs stays).
    fn remove_member(&mut self, user_id: i32, session_id: u64, me: &Me<Self>) {
        if self
            .members
            .get(&user_id)
            .is_some_and(|m| m.0 == session_id)
        {
            self.members.remove(&user_id);
            self.schedule_info(me);
        }
    }

    fn schedule_info(&mut self, me: &Me<Self>) {
        if !self.info_pending && !self.instance {
            self.info_pending = true;
            me.cast_after(INFO_COALESCE, ChannelCast::AnnounceInfo);
        }
    }

    /// Tells everyone who may read the channel how many members it has now.
    fn announce_info(&mut self, ports: &ChannelPorts) {
        self.info_pending = false;
        let s = self.summary();
        let packet = ServerPacket::from(ChannelInfo {
            name: s.name,
            topic: s.topic,
            user_count: i16::try_from(s.members).unwrap_or(i16::MAX),
        });
        let required = self.read_privileges();
        ports
            .counts
            .publish(self.definition.name.clone(), required, packet.to_bytes());
    }

    fn relay(
        &mut self,
        outbox: &Ports,
        from_id: i32,
        from_name: String,
        privileges: Privileges,
        text: String,
    ) {
        let is_bot = privileges.contains(Privileges::BOT);
        if !is_bot && !self.members.contains_key(&from_id) {
            tracing::debug!(channel = %self.definition.name, user = from_id, "message from a non-member dropped");
            return;
        }
        // The bot speaks for the server (first places in #announce, match news).
        if !is_bot && !privileges.meets(Privileges(self.definition.write_privileges)) {
            let text = format!("You may not write in {}.", self.display_name);
            let _ = outbox.send(Mail::User(
                from_id,
                UserCast::Enqueue(ServerPacket::from(Notification { text }).to_bytes()),
            ));
            return;
        }
        let is_command = !is_bot && text.starts_with('!');
        let packet = ServerPacket::from(SendMessage {
            message: peace_bancho::Message {
                sender: from_name.clone(),
                text: text.clone(),
                recipient: self.display_name.clone(),
                sender_id: from_id,
            },
        })
        .to_bytes();
        let started = std::time::Instant::now();
        let mut others = self.members.keys().copied().filter(|&m| m != from_id);
        let reached = self.members.len() - usize::from(self.members.contains_key(&from_id));
        outbox.send_users(&mut others, UserCast::Enqueue(packet));
        // Every member's session (or its node's router) now has the message in its
        // mailbox (docs/benchmarks.md discusses what this measures).
        peace_metrics::channel_fanout(started.elapsed(), reached);
        if is_command {
            let channel = self.definition.name.clone();
            let cast = UserCast::ChannelCommand {
                channel,
                from_id,
                from_name,
                privileges,
                text,
            };
            let _ = outbox.send(Mail::User(crate::BOT_ID, cast));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ports::testing::{Recorded, Sent, packets};

    /// Keeps what was published.
    #[derive(Debug, Default)]
    struct Board(Mutex<Vec<(String, Privileges, bytes::Bytes)>>);

    impl CountBoard for Board {
        fn publish(&self, channel: String, required: Privileges, packet: bytes::Bytes) {
            let mut board = self.0.lock().unwrap_or_else(|e| e.into_inner());
            board.push((channel, required, packet));
        }
    }

    struct Harness {
        channel: ChannelState,
        ports: ChannelPorts,
        sent: Arc<Recorded>,
        board: Arc<Board>,
        me: Me<ChannelState>,
    }

    fn channel(name: &str, read: Privileges, write: Privileges) -> Harness {
        let (sent, outbox) = Recorded::ports();
        let board = Arc::new(Board::default());
        Harness {
            channel: ChannelState::new(peace_db::Channel {
                name: name.into(),
                topic: "a topic".into(),
                read_privileges: read.0,
                write_privileges: write.0,
                auto_join: false,
            }),
            ports: ChannelPorts {
                outbox,
                counts: board.clone(),
            },
            sent,
            board,
            me: Me::detached(),
        }
    }

    impl Harness {
        async fn join(&mut self, user_id: i32, privileges: Privileges) -> ChannelReply {
            let call = ChannelCall::Join {
                user_id,
                session_id: 1,
                privileges,
            };
            self.channel.call(call, &self.ports, &self.me).await
        }

        async fn say(&mut self, from_id: i32, privileges: Privileges, text: &str) {
            let cast = ChannelCast::Message {
                from_id,
                from_name: format!("user {from_id}"),
                privileges,
                text: text.into(),
            };
            self.channel.cast(cast, &self.ports, &self.me).await;
        }
    }

    #[tokio::test]
    async fn only_players_with_the_read_privileges_join() {
        let mut c = channel("#staff", Privileges::MODERATOR, Privileges::MODERATOR);
        assert!(matches!(
            c.join(1, Privileges::NORMAL).await,
            ChannelReply::Denied
        ));
        let staff = Privileges::NORMAL.union(Privileges::MODERATOR);
        assert!(matches!(c.join(2, staff).await, ChannelReply::Joined));
        assert_eq!(c.channel.members.len(), 1);
    }

    #[tokio::test]
    async fn a_message_reaches_every_member_but_its_sender() {
        let mut c = channel("#osu", Privileges::NORMAL, Privileges::NORMAL);
        for user in [1, 2, 3] {
            c.join(user, Privileges::NORMAL).await;
        }
        c.sent.take();
        c.say(1, Privileges::NORMAL, "hello").await;
        let [Sent::Users(users, UserCast::Enqueue(bytes))] = &c.sent.take()[..] else {
            panic!("one fan-out expected");
        };
        assert_eq!(users, &[2, 3]);
        let [ServerPacket::SendMessage(m)] = &packets(bytes)[..] else {
            panic!("one message expected");
        };
        assert_eq!(
            (m.message.text.as_str(), m.message.recipient.as_str()),
            ("hello", "#osu")
        );

        // A non-member's message is dropped; a command also goes to the bot.
        c.say(9, Privileges::NORMAL, "let me in").await;
        assert!(c.sent.take().is_empty());
        c.say(2, Privileges::NORMAL, "!roll").await;
        assert!(c.sent.take().iter().any(|s| matches!(
            s,
            Sent::Mail(Mail::User(crate::BOT_ID, UserCast::ChannelCommand { .. }))
        )));
    }

    #[tokio::test]
    async fn a_reader_without_the_write_privileges_is_told_so() {
        let mut c = channel("#announce", Privileges::NORMAL, Privileges::ADMIN);
        c.join(1, Privileges::NORMAL).await;
        c.join(2, Privileges::NORMAL).await;
        c.sent.take();
        c.say(1, Privileges::NORMAL, "hi").await;
        let [Sent::Mail(Mail::User(1, UserCast::Enqueue(bytes)))] = &c.sent.take()[..] else {
            panic!("only the writer is told");
        };
        assert!(matches!(
            &packets(bytes)[..],
            [ServerPacket::Notification(n)] if n.text.contains("may not write in #announce")
        ));
    }

    #[tokio::test]
    async fn the_bot_writes_where_players_may_only_read() {
        let mut c = channel("#announce", Privileges::NORMAL, Privileges::ADMIN);
        c.join(2, Privileges::NORMAL).await;
        c.join(3, Privileges::NORMAL).await;
        c.sent.take();
        let bot = Privileges::NORMAL.union(Privileges::BOT);
        c.say(crate::BOT_ID, bot, "Alice achieved #1").await;
        let [Sent::Users(users, UserCast::Enqueue(bytes))] = &c.sent.take()[..] else {
            panic!("the members get the bot's message");
        };
        assert_eq!(users, &[2, 3]);
        assert!(matches!(
            &packets(bytes)[..],
            [ServerPacket::SendMessage(m)] if m.message.text == "Alice achieved #1"
        ));
    }

    #[tokio::test]
    async fn member_counts_are_coalesced_and_published_once() {
        let mut c = channel("#osu", Privileges::NORMAL, Privileges::NORMAL);
        for user in [1, 2, 3] {
            c.join(user, Privileges::NORMAL).await;
        }
        // Three joins, one announcement pending.
        assert!(c.channel.info_pending);
        let (ports, me) = (c.ports.clone(), Me::detached());
        c.channel.cast(ChannelCast::AnnounceInfo, &ports, &me).await;
        assert!(!c.channel.info_pending);
        let board = c.board.0.lock().unwrap_or_else(|e| e.into_inner());
        let [(name, _, packet)] = &board[..] else {
            panic!("one publication expected");
        };
        assert_eq!(name, "#osu");
        assert!(matches!(
            &packets(packet)[..],
            [ServerPacket::ChannelInfo(i)] if i.user_count == 3
        ));
    }

    #[tokio::test]
    async fn closing_removes_every_member_and_stops() {
        let mut c = channel("#mp_1", Privileges::NORMAL, Privileges::NORMAL);
        c.join(1, Privileges::NORMAL).await;
        c.sent.take();
        c.channel.cast(ChannelCast::Close, &c.ports, &c.me).await;
        assert!(c.me.stop_requested());
        assert!(c.channel.members.is_empty());
        assert!(c.sent.take().iter().any(|s| matches!(
            s,
            Sent::Mail(Mail::User(1, UserCast::ChannelRemoved { name })) if name == "#mp_1"
        )));
    }

    #[tokio::test]
    async fn a_session_that_ended_is_forgotten_only_if_it_is_the_members_session() {
        let mut c = channel("#osu", Privileges::NORMAL, Privileges::NORMAL);
        c.join(1, Privileges::NORMAL).await;
        let forget = |session_id| ChannelCast::Forget {
            user_id: 1,
            session_id,
        };
        c.channel.cast(forget(2), &c.ports, &c.me).await;
        assert_eq!(c.channel.members.len(), 1, "a newer session stays");
        c.channel.cast(forget(1), &c.ports, &c.me).await;
        assert!(c.channel.members.is_empty());
    }
}
