//! The lobby: one per server, keyed `Lobby`, hosted like every entity by the runtime's
//! generic host.
//!
//! Players browsing multiplayer are its members. Matches report every change of their
//! public view (password hidden) here, and the lobby tells its members with NEW_MATCH,
//! UPDATE_MATCH and DISPOSE_MATCH. A player who joins is sent every open match.

use std::collections::{BTreeMap, BTreeSet};

use peace_bancho::server::{DisposeMatch, NewMatch, UpdateMatch};
use peace_bancho::{MatchData, ServerPacket};
use peace_sharding::{AfterPanic, Entity, Me};
use serde::{Deserialize, Serialize};

use crate::EntityKey;
use crate::ports::{Mail, Ports};
use crate::session_msg::UserCast;

pub use crate::kind_msg::{LobbyCall, LobbyCast};

/// The lobby's serializable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LobbyState {
    pub members: BTreeSet<i32>,
    pub matches: BTreeMap<u16, MatchData>,
}

impl LobbyState {
    /// One envelope per node, however many of the lobby's members live there.
    fn tell_members(&self, ports: &Ports, packet: ServerPacket) {
        let mut members = self.members.iter().copied();
        ports.send_users(&mut members, UserCast::Enqueue(packet.to_bytes()));
    }
}

impl Entity for LobbyState {
    const KIND: &'static str = "lobby";
    type Key = ();
    type Cast = LobbyCast;
    type Call = LobbyCall;
    type Reply = ();
    type Snapshot = LobbyState;
    type Ctx = Ports;

    fn key(&self) {}

    async fn cast(&mut self, msg: LobbyCast, ports: &Ports, _me: &Me<Self>) {
        match msg {
            LobbyCast::Join { user_id } => {
                self.members.insert(user_id);
                let mut all = Vec::new();
                for data in self.matches.values() {
                    ServerPacket::from(NewMatch { data: data.clone() }).encode(&mut all);
                }
                if !all.is_empty() {
                    let _ = ports.send(Mail::User(user_id, UserCast::Enqueue(all.into())));
                }
            }
            LobbyCast::Leave { user_id } => {
                self.members.remove(&user_id);
            }
            LobbyCast::MatchUpdated(data) => {
                let data = *data;
                let packet = if self.matches.contains_key(&data.match_id) {
                    ServerPacket::from(UpdateMatch { data: data.clone() })
                } else {
                    ServerPacket::from(NewMatch { data: data.clone() })
                };
                self.matches.insert(data.match_id, data);
                self.tell_members(ports, packet);
            }
            LobbyCast::MatchDisposed { match_id } => {
                if u16::try_from(match_id).is_ok_and(|id| self.matches.remove(&id).is_some()) {
                    self.tell_members(ports, ServerPacket::from(DisposeMatch { match_id }));
                }
            }
        }
    }

    async fn call(&mut self, msg: LobbyCall, _ports: &Ports, _me: &Me<Self>) {
        match msg {}
    }

    fn export(&mut self, _ports: &Ports) -> LobbyState {
        std::mem::take(self)
    }

    async fn ended(&mut self, ports: &Ports, me: &Me<Self>) {
        ports.forget(&EntityKey::Lobby, me.id());
    }

    /// The lobby goes on from its last state: its members and matches are still right.
    fn after_panic(_: &(), last: Option<LobbyState>, _: &Ports, _: &Me<Self>) -> AfterPanic<Self> {
        AfterPanic::Restart(last.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use peace_bancho::{MatchData, ServerPacket};

    use super::*;
    use crate::ports::testing::{Recorded, Sent, packets};

    fn a_match(id: u16) -> MatchData {
        MatchData {
            match_id: id,
            name: format!("match {id}"),
            ..MatchData::default()
        }
    }

    async fn cast(lobby: &mut LobbyState, ports: &Ports, msg: LobbyCast) {
        lobby.cast(msg, ports, &Me::detached()).await;
    }

    /// The ids of the packets in a batch.
    fn packet_ids(bytes: &[u8]) -> Vec<u16> {
        packets(bytes).iter().map(|p| p.id() as u16).collect()
    }

    fn id_of(packet: ServerPacket) -> u16 {
        packet.id() as u16
    }

    #[tokio::test]
    async fn a_joining_player_is_sent_every_open_match() {
        let (sent, ports) = Recorded::ports();
        let mut lobby = LobbyState::default();
        // Nothing open: nothing to send.
        cast(&mut lobby, &ports, LobbyCast::Join { user_id: 5 }).await;
        assert!(sent.take().is_empty());

        for id in [1, 2] {
            cast(
                &mut lobby,
                &ports,
                LobbyCast::MatchUpdated(Box::new(a_match(id))),
            )
            .await;
        }
        let new_match = id_of(NewMatch { data: a_match(1) }.into());
        // The member present was told of each new match, once per match.
        let told = sent.take();
        assert_eq!(told.len(), 2);
        for t in &told {
            let Sent::Users(users, UserCast::Enqueue(bytes)) = t else {
                panic!("unexpected {t:?}");
            };
            assert_eq!(users, &[5]);
            assert_eq!(packet_ids(bytes), [new_match]);
        }

        cast(&mut lobby, &ports, LobbyCast::Join { user_id: 6 }).await;
        let [Sent::Mail(Mail::User(6, UserCast::Enqueue(bytes)))] = &sent.take()[..] else {
            panic!("the joining player should get one batch");
        };
        assert_eq!(packet_ids(bytes), [new_match, new_match]);
    }

    #[tokio::test]
    async fn changes_are_updates_and_disposals_are_told_once() {
        let (sent, ports) = Recorded::ports();
        let mut lobby = LobbyState::default();
        cast(&mut lobby, &ports, LobbyCast::Join { user_id: 5 }).await;
        cast(
            &mut lobby,
            &ports,
            LobbyCast::MatchUpdated(Box::new(a_match(3))),
        )
        .await;
        cast(
            &mut lobby,
            &ports,
            LobbyCast::MatchUpdated(Box::new(a_match(3))),
        )
        .await;
        let update = id_of(UpdateMatch { data: a_match(3) }.into());
        let told = sent.take();
        let Some(Sent::Users(_, UserCast::Enqueue(bytes))) = told.last() else {
            panic!("no update in {told:?}");
        };
        assert_eq!(packet_ids(bytes), [update]);

        cast(&mut lobby, &ports, LobbyCast::MatchDisposed { match_id: 3 }).await;
        assert_eq!(sent.take().len(), 1);
        assert!(lobby.matches.is_empty());
        // Unknown or out-of-range ids are ignored.
        cast(&mut lobby, &ports, LobbyCast::MatchDisposed { match_id: 3 }).await;
        cast(
            &mut lobby,
            &ports,
            LobbyCast::MatchDisposed { match_id: -1 },
        )
        .await;
        assert!(sent.take().is_empty());

        cast(&mut lobby, &ports, LobbyCast::Leave { user_id: 5 }).await;
        cast(
            &mut lobby,
            &ports,
            LobbyCast::MatchUpdated(Box::new(a_match(4))),
        )
        .await;
        let [Sent::Users(users, _)] = &sent.take()[..] else {
            panic!("one fan-out expected");
        };
        assert!(users.is_empty(), "a player who left is not told");
    }

    #[test]
    fn a_panic_keeps_the_lobby_as_it_was() {
        let mut lobby = LobbyState::default();
        lobby.members.insert(9);
        let (_, ports) = Recorded::ports();
        let last = lobby.export(&ports);
        let AfterPanic::Restart(again) =
            LobbyState::after_panic(&(), Some(last), &ports, &Me::detached())
        else {
            panic!("the lobby restarts");
        };
        assert!(again.members.contains(&9));
    }
}
