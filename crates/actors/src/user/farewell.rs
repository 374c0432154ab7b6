//! What a client is told when the server ends its session (a kick, a ban, a privilege
//! change). The packets are kept for the client's next poll, the way a replaced
//! session's last packets are, so the player learns why before the token stops working.

use peace_bancho::server::{Notification, Restart, UserId};
use peace_bancho::{LoginFailure, ServerPacket};
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
