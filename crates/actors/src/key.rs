//! Entity keys: how every actor is named, independent of where it runs.

use serde::{Deserialize, Serialize};

/// The address of an entity. Code sends to a key through the [`crate::Router`], never to
/// a raw actor reference, so that the entity can live on (and later move to) any node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntityKey {
    /// A user's session, by user id.
    User(i32),
    /// A chat channel, by name (`#osu`).
    Channel(String),
    /// The spectator room of a player, by the watched player's id.
    Spectate(i32),
    /// A multiplayer match, by match id.
    Match(i32),
    /// The multiplayer lobby (one per server).
    Lobby,
}

impl EntityKey {
    /// The kind as used in the JSON API (`user`, `channel`).
    pub fn kind(&self) -> &'static str {
        match self {
            EntityKey::User(_) => "user",
            EntityKey::Channel(_) => "channel",
            EntityKey::Spectate(_) => "spectate",
            EntityKey::Match(_) => "match",
            EntityKey::Lobby => "lobby",
        }
    }
}

impl std::fmt::Display for EntityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntityKey::User(id) => write!(f, "user/{id}"),
            EntityKey::Channel(name) => write!(f, "channel/{name}"),
            EntityKey::Spectate(host) => write!(f, "spectate/{host}"),
            EntityKey::Match(id) => write!(f, "match/{id}"),
            EntityKey::Lobby => f.write_str("lobby"),
        }
    }
}
