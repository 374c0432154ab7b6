//! Peace's actor system: user sessions, chat channels and the bot, addressed by key
//! through the [`Router`].
//!
//! * [`World`]: starts the actors and is the only thing the gateway talks to.
//! * [`user`]: the session actor (one per online player; owns the outgoing queue).
//! * [`channel`]: the chat channel actor.
//! * [`bot`]: the always-online bot and its commands.
//! * [`router`] / [`directory`]: addressing by [`EntityKey`], the online-user table.
//! * [`presence`]: the feed of presence changes sessions catch up with when polled.
//! * [`auth`]: session tokens and password verification.
//! * [`accounts`]: registration rules.
//!
//! Invariant: this crate never touches sockets or HTTP. Entity messages are serde types
//! ([`message::EntityMsg`]) so that they can cross nodes.

pub mod accounts;
pub mod auth;
pub mod bot;
pub mod cache;
pub mod channel;
pub mod cluster;
mod config;
pub mod directory;
mod key;
pub mod kind_msg;
pub mod leaderboard;
pub mod limits;
pub mod lobby;
mod login;
pub mod match_room;
pub mod media;
pub mod message;
pub mod migrate;
pub mod ports;
pub mod presence;
pub mod router;
pub mod scores;
pub mod session_msg;
pub mod sessions;
pub mod snapshot;
pub mod spawn;
pub mod spectate;
mod supervisor;
pub mod user;
mod world;

pub use config::WorldConfig;
pub use key::{BoardKey, EntityKey};
pub use login::LoginReply;
pub use message::Audience;
pub use presence::LOGIN_FULL_PRESENCE_LIMIT;
pub use router::{RouteError, Router};
pub use world::{
    MAX_PACKETS_PER_POLL, PollNotServed, Readiness, StartError, World, restart_reply, shard_of_key,
};

/// The bot's user id, seeded by the first migration.
pub const BOT_ID: i32 = 1;

/// The current time in unix milliseconds.
pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
