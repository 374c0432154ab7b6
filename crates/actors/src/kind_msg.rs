//! What rooms, matches, channels and the lobby can be told and asked, and what they
//! answer. These live below the entities so that the ports (and any entity) can name
//! them without depending on the kinds themselves, as `session_msg` does for sessions.

use bytes::Bytes;
use peace_bancho::MatchData;
use peace_db::Privileges;
use serde::{Deserialize, Serialize};

/// What a channel can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelCast {
    /// A message from a member (or the bot) to everyone else in the channel.
    Message {
        from_id: i32,
        from_name: String,
        privileges: Privileges,
        text: String,
    },
    /// A session ended; drop it without telling it.
    Forget { user_id: i32, session_id: u64 },
    /// Timer: announce the current member count.
    AnnounceInfo,
    /// The owner (room or match) closed: remove everyone and stop.
    Close,
}

/// What a channel can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelCall {
    Join {
        user_id: i32,
        session_id: u64,
        privileges: Privileges,
    },
    Part {
        user_id: i32,
        session_id: u64,
    },
    Summary,
}

/// A channel's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ChannelReply {
    Joined,
    /// The user lacks the read privileges.
    Denied,
    Parted,
    Summary(ChannelSummary),
}

/// A channel as listed to clients and in the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSummary {
    pub name: String,
    pub topic: String,
    pub members: usize,
    pub read_privileges: Privileges,
}

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

/// What a player's client asked the match to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PlayerAction {
    ChangeSlot(i32),
    Ready,
    NotReady,
    HasBeatmap,
    NoBeatmap,
    Lock(i32),
    ChangeSettings(Box<MatchData>),
    ChangeMods(u32),
    Start,
    LoadComplete,
    ScoreFrame(Bytes),
    Failed,
    SkipRequest,
    Complete,
    TransferHost(i32),
    ChangeTeam,
    ChangePassword(String),
}

/// What a match can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MatchCast {
    Player {
        user_id: i32,
        action: PlayerAction,
    },
    Leave {
        user_id: i32,
    },
    Invite {
        from_id: i32,
        from_name: String,
        target_id: i32,
        target_name: String,
    },
    /// A tournament client's session starts (or stops) watching without a slot.
    Watch {
        user_id: i32,
        session_id: u64,
        watching: bool,
    },
    /// One second of a countdown passed.
    Tick {
        generation: u32,
    },
    /// A `!mp` command typed in the match channel; the answer is said there.
    Referee {
        user_id: i32,
        name: String,
        privileges: Privileges,
        args: Vec<String>,
    },
}

/// What a match can be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MatchCall {
    Join {
        user_id: i32,
        name: String,
        password: String,
        privileges: Privileges,
    },
    /// The public view (tournament clients' match info request).
    Info,
}

/// A match's answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MatchReply {
    Joined(Box<MatchData>),
    JoinFailed,
    Info(Box<MatchData>),
}

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
