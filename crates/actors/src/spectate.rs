//! The spectator room actor: one per watched player, keyed `Spectate(host_id)`.
//!
//! It exists while someone watches the host. It tells the host and the other spectators
//! who comes and goes, and relays the host's replay frames to every spectator: the host's
//! session encodes the SPECTATE_FRAMES packet once and the room queues those same bytes
//! for everyone. Each room has a `#spectator` instance channel (`#spec_<host>`).

use std::collections::BTreeSet;

use bytes::Bytes;
use peace_bancho::server::{
    FellowSpectatorJoined, FellowSpectatorLeft, SpectatorCantSpectate, SpectatorJoined,
    SpectatorLeft,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};

use crate::World;
use crate::channel::ChannelCast;
use crate::message::EntityMsg;
use crate::user::{UserCast, packet_bytes};

/// Most spectators of one player.
pub const MAX_SPECTATORS: usize = 256;

/// The key of a room's chat channel.
pub fn channel_name(host_id: i32) -> String {
    format!("#spec_{host_id}")
}

/// The watched player a channel key belongs to (`#spec_12` → 12).
pub fn host_of_channel(channel: &str) -> Option<i32> {
    channel.strip_prefix("#spec_")?.parse().ok()
}

/// What clients call every spectator channel.
pub const CHANNEL_DISPLAY_NAME: &str = "#spectator";

/// What a room can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SpectateCast {
    Leave {
        user_id: i32,
        session_id: u64,
    },
    /// The spectator lacks the beatmap.
    CantSpectate {
        user_id: i32,
        session_id: u64,
    },
    /// An encoded SPECTATE_FRAMES packet from the host.
    Frames(Bytes),
    /// The host went offline.
    HostLeft,
}

/// What a room can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SpectateCall {
    Join {
        user_id: i32,
        session_id: u64,
    },
    /// Whether the room still runs (answered `Alive`).
    Ping,
}

/// A room's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SpectateReply {
    /// Joined; these were already watching.
    Joined {
        fellows: Vec<i32>,
    },
    Full,
    Alive,
}

pub type SpectateMsg = EntityMsg<SpectateCast, SpectateCall, SpectateReply>;

/// A room's serializable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpectateState {
    pub host_id: i32,
    /// Spectators by (user, session): a tournament account watches with several sessions.
    pub spectators: BTreeSet<(i32, u64)>,
}

/// The spectator room actor.
#[derive(Debug)]
pub struct SpectatorRoom;

#[derive(Debug)]
pub struct SpectateRuntime {
    world: World,
    state: SpectateState,
    /// Exported to another node: it stops without closing.
    moved: bool,
}

impl Actor for SpectatorRoom {
    type Msg = SpectateMsg;
    type State = SpectateRuntime;
    type Arguments = (World, SpectateState);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (world, state): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(SpectateRuntime {
            world,
            state,
            moved: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        peace_metrics::mailbox_handled("spectate");
        let router = rt.world.router().clone();
        let st = &mut rt.state;
        let host = st.host_id;
        // Tells every spectator session (except `except`) the same thing: one envelope
        // per node, however many spectators watch from there.
        let tell_spectators = |spectators: &BTreeSet<(i32, u64)>, except: i32, msg: UserCast| {
            let targets = spectators.iter().copied().filter(|(u, _)| *u != except);
            router.cast_sessions(targets, msg);
        };
        match msg {
            EntityMsg::Call(
                SpectateCall::Join {
                    user_id,
                    session_id,
                },
                reply,
            ) => {
                let member = (user_id, session_id);
                if st.spectators.len() >= MAX_SPECTATORS && !st.spectators.contains(&member) {
                    let _ = reply.send(SpectateReply::Full);
                    return Ok(());
                }
                let first = st.spectators.is_empty();
                let fellows: Vec<i32> = st
                    .spectators
                    .iter()
                    .map(|&(u, _)| u)
                    .filter(|&u| u != user_id)
                    .collect();
                if st.spectators.insert(member) {
                    let joined = packet_bytes(SpectatorJoined { user_id });
                    let _ = router.cast_user(host, UserCast::Enqueue(joined));
                    let fellow = packet_bytes(FellowSpectatorJoined { user_id });
                    tell_spectators(&st.spectators, user_id, UserCast::Enqueue(fellow));
                }
                if first {
                    let join = UserCast::JoinChannel {
                        name: channel_name(host),
                        display: CHANNEL_DISPLAY_NAME.to_owned(),
                    };
                    let _ = router.cast_user(host, join);
                }
                let _ = reply.send(SpectateReply::Joined { fellows });
            }
            EntityMsg::Cast(SpectateCast::Leave {
                user_id,
                session_id,
            }) => {
                if st.spectators.remove(&(user_id, session_id)) {
                    let left = packet_bytes(SpectatorLeft { user_id });
                    let _ = router.cast_user(host, UserCast::Enqueue(left));
                    let fellow = packet_bytes(FellowSpectatorLeft { user_id });
                    tell_spectators(&st.spectators, user_id, UserCast::Enqueue(fellow));
                }
                if st.spectators.is_empty() {
                    myself.stop(Some("nobody is watching".into()));
                }
            }
            EntityMsg::Cast(SpectateCast::CantSpectate {
                user_id,
                session_id,
            }) => {
                if st.spectators.contains(&(user_id, session_id)) {
                    let packet = packet_bytes(SpectatorCantSpectate { user_id });
                    let _ = router.cast_user(host, UserCast::Enqueue(packet.clone()));
                    tell_spectators(&st.spectators, user_id, UserCast::Enqueue(packet));
                }
            }
            EntityMsg::Call(SpectateCall::Ping, reply) => {
                let _ = reply.send(SpectateReply::Alive);
            }
            EntityMsg::Export(reply) => {
                rt.moved = true;
                let _ = reply.send(crate::snapshot::Snapshot::Spectate(Box::new(st.clone())));
                myself.stop(Some("moved".into()));
            }
            EntityMsg::Cast(SpectateCast::Frames(frames)) => {
                tell_spectators(&st.spectators, host, UserCast::Enqueue(frames));
            }
            EntityMsg::Cast(SpectateCast::HostLeft) => {
                tell_spectators(
                    &st.spectators,
                    host,
                    UserCast::SpectatingEnded { host_id: host },
                );
                st.spectators.clear();
                myself.stop(Some("the host left".into()));
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
            close(&rt.world, rt.state.host_id, myself.get_id());
        }
        Ok(())
    }
}

/// Unregisters a room and closes its channel (also used when the room failed).
pub(crate) fn close(world: &World, host_id: i32, actor: ractor::ActorId) {
    world.router().spectate().remove(&host_id, actor);
    let _ = world
        .router()
        .channels()
        .cast(&channel_name(host_id), ChannelCast::Close);
}
