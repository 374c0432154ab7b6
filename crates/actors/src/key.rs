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
    /// A beatmap's leaderboard in one mode, on one board (vanilla, relax, autopilot).
    Board(BoardKey),
}

/// The key of a leaderboard: the map (by the md5 the client names it with), the mode and
/// the board's number as stored (`0` vanilla, `1` relax, `2` autopilot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BoardKey {
    pub md5: String,
    pub mode: i16,
    pub board: i16,
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
            EntityKey::Board(_) => "board",
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
            EntityKey::Board(b) => write!(f, "board/{}/{}/{}", b.md5, b.mode, b.board),
        }
    }
}

/// The instance channel of a spectator room (`#spec_<host>`): a room's chat is keyed by
/// its room, so that the two live on the same node (see `cluster::shard`).
pub mod spectator_channel {
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
}

/// The instance channel of a match (`#mp_<id>`), keyed by its match like a room's.
pub mod match_channel {
    /// The key of a match's chat channel.
    pub fn channel_name(match_id: i32) -> String {
        format!("#mp_{match_id}")
    }

    /// The match a channel key belongs to (`#mp_3` → 3).
    pub fn match_of_channel(channel: &str) -> Option<i32> {
        channel.strip_prefix("#mp_")?.parse().ok()
    }

    /// What clients call every match channel.
    pub const CHANNEL_DISPLAY_NAME: &str = "#multiplayer";
}

/// Whether `key` is an instance channel: a spectator room's or a match's. Players get
/// into one only through its room or match (which checks passwords and slots), never
/// by naming it in CHANNEL_JOIN.
pub fn is_instance_channel(key: &str) -> bool {
    spectator_channel::host_of_channel(key).is_some()
        || match_channel::match_of_channel(key).is_some()
}
