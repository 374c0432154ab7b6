//! The lobby actor: one per server, keyed `Lobby`.
//!
//! Players browsing multiplayer are its members. Matches report every change of their
//! public view (password hidden) here, and the lobby tells its members with NEW_MATCH,
//! UPDATE_MATCH and DISPOSE_MATCH. A player who joins is sent every open match.

use std::collections::{BTreeMap, BTreeSet};

use peace_bancho::server::{DisposeMatch, NewMatch, UpdateMatch};
use peace_bancho::{MatchData, ServerPacket};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};

use crate::World;
use crate::message::EntityMsg;
use crate::user::UserCast;

/// What the lobby can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LobbyCast {
    Join {
        user_id: i32,
    },
    Leave {
        user_id: i32,
    },
    /// A match was created or changed; `data` is its public view.
    MatchUpdated(Box<MatchData>),
    MatchDisposed {
        match_id: i32,
    },
}

/// The lobby answers nothing; it has no calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LobbyCall {}

pub type LobbyMsg = EntityMsg<LobbyCast, LobbyCall, ()>;

/// The lobby's serializable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LobbyState {
    pub members: BTreeSet<i32>,
    pub matches: BTreeMap<u16, MatchData>,
}

/// The lobby actor.
#[derive(Debug)]
pub struct LobbyActor;

#[derive(Debug)]
pub struct LobbyRuntime {
    world: World,
    state: LobbyState,
}

impl Actor for LobbyActor {
    type Msg = LobbyMsg;
    type State = LobbyRuntime;
    type Arguments = (World, LobbyState);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (world, state): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(LobbyRuntime { world, state })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        rt: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        peace_metrics::mailbox_handled("lobby");
        // The lobby has no calls (`LobbyCall` is empty): a cast, or its move.
        let cast = match msg {
            EntityMsg::Cast(cast) => cast,
            EntityMsg::Export(reply) => {
                let state = Box::new(rt.state.clone());
                let _ = reply.send(crate::snapshot::Snapshot::Lobby(state));
                _myself.stop(Some("moved".into()));
                return Ok(());
            }
        };
        let st = &mut rt.state;
        match cast {
            LobbyCast::Join { user_id } => {
                st.members.insert(user_id);
                let mut all = Vec::new();
                for data in st.matches.values() {
                    ServerPacket::from(NewMatch { data: data.clone() }).encode(&mut all);
                }
                if !all.is_empty() {
                    let _ = rt
                        .world
                        .router()
                        .cast_user(user_id, UserCast::Enqueue(all.into()));
                }
            }
            LobbyCast::Leave { user_id } => {
                st.members.remove(&user_id);
            }
            LobbyCast::MatchUpdated(data) => {
                let data = *data;
                let packet = if st.matches.contains_key(&data.match_id) {
                    ServerPacket::from(UpdateMatch { data: data.clone() })
                } else {
                    ServerPacket::from(NewMatch { data: data.clone() })
                };
                st.matches.insert(data.match_id, data);
                rt.tell_members(packet);
            }
            LobbyCast::MatchDisposed { match_id } => {
                if u16::try_from(match_id).is_ok_and(|id| st.matches.remove(&id).is_some()) {
                    rt.tell_members(ServerPacket::from(DisposeMatch { match_id }));
                }
            }
        }
        Ok(())
    }
}

impl LobbyRuntime {
    /// One envelope per node, however many of the lobby's members live there.
    fn tell_members(&self, packet: ServerPacket) {
        let bytes = packet.to_bytes();
        let members = self.state.members.iter().copied();
        self.world
            .router()
            .cast_users(members, UserCast::Enqueue(bytes));
    }
}
