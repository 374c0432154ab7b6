//! Entity snapshots: the state an entity takes with it when it moves to another node.
//!
//! A snapshot is a versioned bincode document. During a rolling upgrade an old node
//! may hand entities to a new one, so a node reads every format back to the first and
//! upgrades it to the current types; it writes only [`SNAPSHOT_VERSION`]. A format newer
//! than this build's is refused ([`SnapshotError::TooNew`]); the import refuses the
//! whole move then, and the sender keeps its entities (`migrate.rs`).
//!
//! Format history:
//! * 1 — the first format.
//! * 2 — sessions count how often they moved ([`UserState::moves`]).
//! * 3 — leaderboards ([`Snapshot::Board`], only their key). Format 2 reads as format 3:
//!   the enum gained a variant at its end, and bincode numbers variants in order.

use bincode::config::Config;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::ChannelState;
use crate::directory::OnlineUser;
use crate::lobby::LobbyState;
use crate::match_room::MatchState;
use crate::spectate::SpectateState;
use crate::user::UserState;

/// The format this build writes.
pub const SNAPSHOT_VERSION: u16 = 3;

/// Largest snapshot accepted (a session with a full outgoing queue is the largest).
pub const MAX_SNAPSHOT_BYTES: usize = crate::user::MAX_QUEUE_BYTES + (1 << 20);

/// The state of one entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Snapshot {
    /// A player's session (or a tournament account's extra one) with their directory
    /// entry.
    Session {
        state: Box<UserState>,
        entry: Box<OnlineUser>,
    },
    /// The bot: nothing to carry, it starts afresh.
    Bot,
    Channel(Box<ChannelState>),
    Spectate(Box<SpectateState>),
    Match(Box<MatchState>),
    Lobby(Box<LobbyState>),
    /// A leaderboard: its key; it loads its scores again where it starts.
    Board(crate::key::BoardKey),
}

impl From<crate::user::SessionSnapshot> for Snapshot {
    fn from(snapshot: crate::user::SessionSnapshot) -> Self {
        match snapshot {
            crate::user::SessionSnapshot::Player { state, entry } => {
                Snapshot::Session { state, entry }
            }
            crate::user::SessionSnapshot::Bot => Snapshot::Bot,
        }
    }
}

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("snapshot format {0} is newer than this build ({SNAPSHOT_VERSION}); upgrade it")]
    TooNew(u16),
    #[error("unreadable snapshot: {0}")]
    Decode(String),
    #[error("could not encode a snapshot: {0}")]
    Encode(String),
}

fn config() -> impl Config {
    bincode::config::standard().with_limit::<MAX_SNAPSHOT_BYTES>()
}

/// Encodes `snapshot` in the current format.
pub fn encode(snapshot: &Snapshot) -> Result<Vec<u8>, SnapshotError> {
    encode_as(SNAPSHOT_VERSION, snapshot)
}

fn encode_as<T: Serialize>(version: u16, value: &T) -> Result<Vec<u8>, SnapshotError> {
    let mut out = bincode::serde::encode_to_vec(version, config())
        .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    Ok(out)
}

fn decode_as<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| SnapshotError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(SnapshotError::Decode(format!(
            "{} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}

/// Decodes a snapshot of any format up to the current one.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    if bytes.len() > MAX_SNAPSHOT_BYTES {
        return Err(SnapshotError::Decode(format!("{} bytes", bytes.len())));
    }
    let (version, used): (u16, usize) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let rest = &bytes[used..];
    match version {
        SNAPSHOT_VERSION | 2 => decode_as(rest),
        1 => decode_as::<v1::Snapshot>(rest).map(Snapshot::from),
        newer => Err(SnapshotError::TooNew(newer)),
    }
}

/// Format 1, frozen as it was written. Only what changed since is copied here; the
/// rest is shared with the current types.
pub mod v1 {
    use std::collections::{BTreeMap, BTreeSet, VecDeque};

    use peace_db::Privileges;
    use serde::{Deserialize, Serialize};

    use crate::channel::ChannelState;
    use crate::directory::OnlineUser;
    use crate::lobby::LobbyState;
    use crate::match_room::MatchState;
    use crate::spectate::SpectateState;
    use crate::user::Status;

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub enum Snapshot {
        Session {
            state: Box<UserState>,
            entry: Box<OnlineUser>,
        },
        Bot,
        Channel(Box<ChannelState>),
        Spectate(Box<SpectateState>),
        Match(Box<MatchState>),
        Lobby(Box<LobbyState>),
    }

    /// A session as format 1 wrote it: without `moves`.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct UserState {
        pub id: i32,
        pub name: String,
        pub session_id: u64,
        pub privileges: Privileges,
        pub country_code: u8,
        pub utc_offset: i8,
        pub login_time: i64,
        pub last_poll_ms: i64,
        pub status: Status,
        pub stats: peace_db::Stats,
        pub rank: i32,
        pub friends: BTreeSet<i32>,
        pub blocked: BTreeSet<i32>,
        pub channels: BTreeSet<String>,
        pub silence_end: i64,
        pub block_non_friend_dms: bool,
        pub away_message: Option<String>,
        pub away_notified: BTreeSet<i32>,
        pub presence_filter: i32,
        pub spectating: Option<i32>,
        pub match_id: Option<i32>,
        pub watching_match: Option<i32>,
        pub in_lobby: bool,
        pub channel_aliases: BTreeMap<String, String>,
        pub extra_session: bool,
        pub recent_messages: VecDeque<i64>,
        pub queue: Vec<u8>,
    }

    impl From<UserState> for crate::user::UserState {
        fn from(v: UserState) -> Self {
            Self {
                id: v.id,
                name: v.name,
                session_id: v.session_id,
                privileges: v.privileges,
                country_code: v.country_code,
                utc_offset: v.utc_offset,
                login_time: v.login_time,
                last_poll_ms: v.last_poll_ms,
                status: v.status,
                stats: v.stats,
                rank: v.rank,
                friends: v.friends,
                blocked: v.blocked,
                channels: v.channels,
                silence_end: v.silence_end,
                block_non_friend_dms: v.block_non_friend_dms,
                away_message: v.away_message,
                away_notified: v.away_notified,
                presence_filter: v.presence_filter,
                spectating: v.spectating,
                match_id: v.match_id,
                watching_match: v.watching_match,
                in_lobby: v.in_lobby,
                channel_aliases: v.channel_aliases,
                extra_session: v.extra_session,
                recent_messages: v.recent_messages,
                queue: v.queue,
                moves: 0,
                presence_cursor: 0,
                channel_counts_cursor: 0,
            }
        }
    }

    /// Writes a format-1 snapshot, as a node of that format did (for tests).
    pub fn encode(snapshot: &Snapshot) -> Result<Vec<u8>, super::SnapshotError> {
        super::encode_as(1, snapshot)
    }
}

impl From<v1::Snapshot> for Snapshot {
    fn from(old: v1::Snapshot) -> Self {
        match old {
            v1::Snapshot::Session { state, entry } => Snapshot::Session {
                state: Box::new((*state).into()),
                entry,
            },
            v1::Snapshot::Bot => Snapshot::Bot,
            v1::Snapshot::Channel(c) => Snapshot::Channel(c),
            v1::Snapshot::Spectate(s) => Snapshot::Spectate(s),
            v1::Snapshot::Match(m) => Snapshot::Match(m),
            v1::Snapshot::Lobby(l) => Snapshot::Lobby(l),
        }
    }
}
