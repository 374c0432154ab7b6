//! The spectator room: one per watched player, keyed `Spectate(host_id)`.
//!
//! It exists while someone watches the host. It tells the host and the other spectators
//! who comes and goes, and relays the host's replay frames to every spectator: the host's
//! session encodes the SPECTATE_FRAMES packet once and the room queues those same bytes
//! for everyone. Each room has a `#spectator` instance channel (`#spec_<host>`).

use std::collections::BTreeSet;

use peace_bancho::server::{
    FellowSpectatorJoined, FellowSpectatorLeft, SpectatorCantSpectate, SpectatorJoined,
    SpectatorLeft,
};
use peace_sharding::{AfterPanic, Entity, Me};
use serde::{Deserialize, Serialize};

use crate::EntityKey;
use crate::channel::ChannelCast;
use crate::ports::{Mail, Ports};
use crate::session_msg::{UserCast, packet_bytes};

/// Most spectators of one player.
pub const MAX_SPECTATORS: usize = 256;

pub use crate::key::spectator_channel::{CHANNEL_DISPLAY_NAME, channel_name, host_of_channel};

pub use crate::kind_msg::{SpectateCall, SpectateCast, SpectateReply};

/// A room's serializable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpectateState {
    pub host_id: i32,
    /// Spectators by (user, session): a tournament account watches with several sessions.
    pub spectators: BTreeSet<(i32, u64)>,
}

impl SpectateState {
    /// Tells every spectator session (except `except`) the same thing: one envelope per
    /// node, however many spectators watch from there.
    fn tell_spectators(&self, ports: &Ports, except: i32, msg: UserCast) {
        let mut targets = self
            .spectators
            .iter()
            .copied()
            .filter(|(u, _)| *u != except);
        ports.send_sessions(&mut targets, msg);
    }

    fn tell_host(&self, ports: &Ports, msg: UserCast) {
        let _ = ports.send(Mail::User(self.host_id, msg));
    }

    fn join(&mut self, user_id: i32, session_id: u64, ports: &Ports) -> SpectateReply {
        let member = (user_id, session_id);
        if self.spectators.len() >= MAX_SPECTATORS && !self.spectators.contains(&member) {
            return SpectateReply::Full;
        }
        let first = self.spectators.is_empty();
        let fellows: Vec<i32> = self
            .spectators
            .iter()
            .map(|&(u, _)| u)
            .filter(|&u| u != user_id)
            .collect();
        if self.spectators.insert(member) {
            let joined = packet_bytes(SpectatorJoined { user_id });
            self.tell_host(ports, UserCast::Enqueue(joined));
            let fellow = packet_bytes(FellowSpectatorJoined { user_id });
            self.tell_spectators(ports, user_id, UserCast::Enqueue(fellow));
        }
        if first {
            self.tell_host(
                ports,
                UserCast::JoinChannel {
                    name: channel_name(self.host_id),
                    display: CHANNEL_DISPLAY_NAME.to_owned(),
                },
            );
        }
        SpectateReply::Joined { fellows }
    }
}

impl Entity for SpectateState {
    const KIND: &'static str = "spectate";
    type Key = i32;
    type Cast = SpectateCast;
    type Call = SpectateCall;
    type Reply = SpectateReply;
    type Snapshot = SpectateState;
    type Ctx = Ports;

    fn key(&self) -> i32 {
        self.host_id
    }

    async fn cast(&mut self, msg: SpectateCast, ports: &Ports, me: &Me<Self>) {
        let host = self.host_id;
        match msg {
            SpectateCast::Leave {
                user_id,
                session_id,
            } => {
                if self.spectators.remove(&(user_id, session_id)) {
                    let left = packet_bytes(SpectatorLeft { user_id });
                    self.tell_host(ports, UserCast::Enqueue(left));
                    let fellow = packet_bytes(FellowSpectatorLeft { user_id });
                    self.tell_spectators(ports, user_id, UserCast::Enqueue(fellow));
                }
                if self.spectators.is_empty() {
                    me.stop();
                }
            }
            SpectateCast::CantSpectate {
                user_id,
                session_id,
            } => {
                if self.spectators.contains(&(user_id, session_id)) {
                    let packet = packet_bytes(SpectatorCantSpectate { user_id });
                    self.tell_host(ports, UserCast::Enqueue(packet.clone()));
                    self.tell_spectators(ports, user_id, UserCast::Enqueue(packet));
                }
            }
            SpectateCast::Frames(frames) => {
                self.tell_spectators(ports, host, UserCast::Enqueue(frames));
            }
            SpectateCast::HostLeft => {
                self.tell_spectators(ports, host, UserCast::SpectatingEnded { host_id: host });
                self.spectators.clear();
                me.stop();
            }
        }
    }

    async fn call(&mut self, msg: SpectateCall, ports: &Ports, _me: &Me<Self>) -> SpectateReply {
        match msg {
            SpectateCall::Join {
                user_id,
                session_id,
            } => self.join(user_id, session_id, ports),
            SpectateCall::Ping => SpectateReply::Alive,
        }
    }

    fn export(&mut self, _ports: &Ports) -> SpectateState {
        std::mem::take(self)
    }

    async fn ended(&mut self, ports: &Ports, me: &Me<Self>) {
        close(ports, self.host_id, me.id());
    }

    /// A room that failed is closed: its spectators start watching again if they wish.
    fn after_panic(
        host: &i32,
        _: Option<SpectateState>,
        ports: &Ports,
        me: &Me<Self>,
    ) -> AfterPanic<Self> {
        close(ports, *host, me.id());
        AfterPanic::Stop
    }
}

/// Unregisters a room and closes its channel.
fn close(ports: &Ports, host_id: i32, actor: ractor::ActorId) {
    ports.forget(&EntityKey::Spectate(host_id), actor);
    let _ = ports.send(Mail::Channel(channel_name(host_id), ChannelCast::Close));
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::ports::testing::{Recorded, Sent};

    fn room() -> SpectateState {
        SpectateState {
            host_id: 1,
            spectators: Default::default(),
        }
    }

    async fn call(room: &mut SpectateState, ports: &Ports, msg: SpectateCall) -> SpectateReply {
        room.call(msg, ports, &Me::detached()).await
    }

    #[tokio::test]
    async fn the_first_spectator_opens_the_channel_and_fellows_are_told() {
        let (sent, ports) = Recorded::ports();
        let mut room = room();
        let join = |user_id| SpectateCall::Join {
            user_id,
            session_id: 1,
        };
        let SpectateReply::Joined { fellows } = call(&mut room, &ports, join(2)).await else {
            panic!("joined expected");
        };
        assert!(fellows.is_empty());
        let told = sent.take();
        // The host hears of the spectator and joins the room's channel.
        assert!(told.iter().any(|t| matches!(
            t,
            Sent::Mail(Mail::User(1, UserCast::JoinChannel { name, display }))
                if name == "#spec_1" && display == "#spectator"
        )));

        let SpectateReply::Joined { fellows } = call(&mut room, &ports, join(3)).await else {
            panic!("joined expected");
        };
        assert_eq!(fellows, [2]);
        let told = sent.take();
        // The earlier spectator hears of the fellow; the channel is joined only once.
        assert!(
            told.iter()
                .any(|t| matches!(t, Sent::Sessions(s, _) if s == &[(2, 1)]))
        );
        assert!(
            !told
                .iter()
                .any(|t| matches!(t, Sent::Mail(Mail::User(_, UserCast::JoinChannel { .. }))))
        );
    }

    #[tokio::test]
    async fn frames_reach_every_spectator_but_the_host() {
        let (sent, ports) = Recorded::ports();
        let mut room = room();
        room.spectators.extend([(2, 1), (3, 1), (3, 2)]);
        let me = Me::detached();
        room.cast(
            SpectateCast::Frames(Bytes::from_static(b"frames")),
            &ports,
            &me,
        )
        .await;
        let [Sent::Sessions(sessions, UserCast::Enqueue(bytes))] = &sent.take()[..] else {
            panic!("one fan-out expected");
        };
        assert_eq!(sessions, &[(2, 1), (3, 1), (3, 2)]);
        assert_eq!(&bytes[..], b"frames");
    }

    #[tokio::test]
    async fn the_room_closes_when_the_last_spectator_leaves_or_the_host_does() {
        let (sent, ports) = Recorded::ports();
        let mut room = room();
        room.spectators.extend([(2, 1), (3, 1)]);
        let me = Me::detached();
        let leave = |user_id| SpectateCast::Leave {
            user_id,
            session_id: 1,
        };
        room.cast(leave(2), &ports, &me).await;
        assert!(!me.stop_requested());
        room.cast(leave(3), &ports, &me).await;
        assert!(me.stop_requested());

        room.ended(&ports, &me).await;
        let told = sent.take();
        assert!(
            told.iter()
                .any(|t| matches!(t, Sent::Forgot(EntityKey::Spectate(1))))
        );
        assert!(told.iter().any(
            |t| matches!(t, Sent::Mail(Mail::Channel(name, ChannelCast::Close)) if name == "#spec_1")
        ));

        let mut room = self::room();
        room.spectators.insert((4, 1));
        let me = Me::detached();
        room.cast(SpectateCast::HostLeft, &ports, &me).await;
        assert!(me.stop_requested());
        assert!(sent.take().iter().any(|t| matches!(
            t,
            Sent::Sessions(s, UserCast::SpectatingEnded { host_id: 1 }) if s == &[(4, 1)]
        )));
    }

    #[tokio::test]
    async fn a_full_room_refuses_newcomers_but_not_members() {
        let (_, ports) = Recorded::ports();
        let mut room = room();
        room.spectators
            .extend((0..MAX_SPECTATORS as i32).map(|u| (u + 10, 1)));
        let newcomer = SpectateCall::Join {
            user_id: 5,
            session_id: 1,
        };
        assert!(matches!(
            call(&mut room, &ports, newcomer).await,
            SpectateReply::Full
        ));
        let member = SpectateCall::Join {
            user_id: 10,
            session_id: 1,
        };
        assert!(matches!(
            call(&mut room, &ports, member).await,
            SpectateReply::Joined { .. }
        ));
    }
}
