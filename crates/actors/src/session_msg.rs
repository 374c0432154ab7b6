//! What a session can be told and asked, and what it answers: the messages every other
//! entity sends to players. They live below the entities (not with the session) so that
//! a room, a match or a channel names them without depending on the session itself.
//!
//! [`Farewell`] is what a client is told when the server ends its session (a kick, a
//! ban, a privilege change). The packets are kept for the client's next poll, the way a
//! replaced session's last packets are, so the player learns why before the token stops
//! working.

use bytes::Bytes;
use peace_bancho::ClientPacket;
use peace_bancho::server::{Notification, Restart, UserId};
use peace_bancho::{LoginFailure, ServerPacket};
use peace_db::Privileges;
use serde::{Deserialize, Serialize};

/// How an ended session's client should react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Farewell {
    /// USER_ID -1, the client's failed-login reply: for a kick, where RESTART would have
    /// the client reconnect at once and undo it.
    Disconnect,
    /// USER_ID -3: the client's "your account is banned" reply.
    Banned,
    /// RESTART: the client logs in again at once, under the account's new privileges.
    Reconnect,
}

impl Farewell {
    /// The notification with `reason`, then the packet that ends the session.
    pub fn packets(self, reason: &str) -> Vec<u8> {
        let mut out = Vec::new();
        ServerPacket::from(Notification {
            text: reason.to_owned(),
        })
        .encode(&mut out);
        let last = match self {
            Farewell::Disconnect => ServerPacket::from(UserId {
                user_id: LoginFailure::AuthenticationFailed as i32,
            }),
            Farewell::Banned => ServerPacket::from(UserId {
                user_id: LoginFailure::Banned as i32,
            }),
            Farewell::Reconnect => ServerPacket::from(Restart { delay_ms: 0 }),
        };
        last.encode(&mut out);
        out
    }
}

/// What a session can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum UserCast {
    /// Encoded packets to hand to the client as they are.
    Enqueue(Bytes),
    /// A private message for this player; their block rules are applied here.
    PrivateMessage {
        from_id: i32,
        from_name: String,
        from_privileges: Privileges,
        text: String,
    },
    /// A channel removed this player (kick, or the channel closed).
    ChannelRemoved { name: String },
    /// Join an instance channel, known to the client as `display` (a room or match
    /// pulls its host or players in).
    JoinChannel { name: String, display: String },
    /// A `!command` typed in a channel. Only the bot acts on it.
    ChannelCommand {
        channel: String,
        from_id: i32,
        from_name: String,
        privileges: Privileges,
        text: String,
    },
    /// The player this session watched went offline.
    SpectatingEnded { host_id: i32 },
    /// The host or a referee removed this player from their match (slot lock, close).
    RemovedFromMatch { match_id: i32 },
    /// Periodic: end the session if the client stopped polling.
    IdleCheck,
    /// End the session; the client's next poll gets the reason and the farewell.
    Kick { reason: String, farewell: Farewell },
    /// Silence the player until `until` (unix seconds; 0 lifts a silence).
    Silence { until: i64, reason: String },
    /// A channel restarted (its node was lost, or it failed) without its members: a
    /// member joins it again, without the client noticing.
    Rejoin { name: String },
    /// The lobby restarted empty: a player browsing it joins it again.
    LobbyRestarted,
    /// Node `node` was lost: a match or spectator room this player was in may have
    /// been there; if it is gone, the player is told and leaves it.
    NodeLost { node: String },
    /// A submitted score changed the player's statistics: reload and tell everyone.
    /// (Last, so that the variants before it keep their numbers on the wire.)
    StatsChanged,
}

/// What a session can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum UserCall {
    /// The client's packets of one poll; the answer is everything queued for it.
    Poll { packets: Vec<ClientPacket> },
    /// A newer login replaced this session: hand over what is still queued, then stop.
    Retire { reason: String },
}

/// A session's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum UserReply {
    Packets(Bytes),
}

/// One server packet, encoded.
pub(crate) fn packet_bytes(packet: impl Into<peace_bancho::ServerPacket>) -> Bytes {
    packet.into().to_bytes()
}
