//! Numeric constants of protocol 19 that are not packet ids.

/// The protocol version the server speaks (sent as PROTOCOL_VERSION at login).
pub const PROTOCOL_VERSION: i32 = 19;

/// Negative USER_ID values that tell the client why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LoginFailure {
    /// Wrong username or password.
    AuthenticationFailed = -1,
    /// The client build is too old; the client offers to update.
    OldClient = -2,
    /// The account is banned.
    Banned = -3,
    /// The server could not complete the login (e.g. the database is down).
    ServerError = -5,
    /// The account must be verified on the website first.
    VerificationRequired = -8,
}

/// Privilege bits as the client understands them (PRIVILEGES packet, presence byte).
pub mod client_privileges {
    pub const PLAYER: u8 = 1;
    pub const MODERATOR: u8 = 2;
    pub const SUPPORTER: u8 = 4;
    pub const OWNER: u8 = 8;
    pub const DEVELOPER: u8 = 16;
    pub const TOURNAMENT: u8 = 32;
}

/// The player's activity in CHANGE_ACTION / USER_STATS.
pub mod action {
    pub const IDLE: u8 = 0;
    pub const AFK: u8 = 1;
    pub const PLAYING: u8 = 2;
    pub const EDITING: u8 = 3;
    pub const MODDING: u8 = 4;
    pub const MULTIPLAYER: u8 = 5;
    pub const WATCHING: u8 = 6;
    pub const UNKNOWN: u8 = 7;
    pub const TESTING: u8 = 8;
    pub const SUBMITTING: u8 = 9;
    pub const PAUSED: u8 = 10;
    pub const LOBBY: u8 = 11;
    pub const MULTIPLAYING: u8 = 12;
    pub const OSU_DIRECT: u8 = 13;
    /// The highest action id the client knows.
    pub const MAX: u8 = OSU_DIRECT;
}

/// Game modes (vanilla; the client sends 0..=3).
pub const MAX_MODE: u8 = 3;

/// RECEIVE_UPDATES filter values.
pub mod presence_filter {
    pub const NONE: i32 = 0;
    pub const ALL: i32 = 1;
    pub const FRIENDS: i32 = 2;
}

/// Multiplayer slot status bits.
pub mod slot_status {
    pub const OPEN: u8 = 1;
    pub const LOCKED: u8 = 2;
    pub const NOT_READY: u8 = 4;
    pub const READY: u8 = 8;
    pub const NO_MAP: u8 = 16;
    pub const PLAYING: u8 = 32;
    pub const COMPLETE: u8 = 64;
    pub const QUIT: u8 = 128;
}

/// Multiplayer teams.
pub mod team {
    pub const NEUTRAL: u8 = 0;
    pub const BLUE: u8 = 1;
    pub const RED: u8 = 2;
}

/// Multiplayer team types.
pub mod team_type {
    pub const HEAD_TO_HEAD: u8 = 0;
    pub const TAG_COOP: u8 = 1;
    pub const TEAM_VS: u8 = 2;
    pub const TAG_TEAM_VS: u8 = 3;
    pub const MAX: u8 = TAG_TEAM_VS;

    /// Whether players are split into red and blue.
    pub const fn has_teams(t: u8) -> bool {
        t == TEAM_VS || t == TAG_TEAM_VS
    }
}

/// Multiplayer win conditions (score, accuracy, combo, score v2).
pub const MAX_WIN_CONDITION: u8 = 3;

/// Mod bits the server needs to know about.
pub mod mods {
    pub const NO_FAIL: u32 = 1;
    pub const EASY: u32 = 1 << 1;
    pub const HIDDEN: u32 = 1 << 3;
    pub const HARD_ROCK: u32 = 1 << 4;
    pub const SUDDEN_DEATH: u32 = 1 << 5;
    pub const DOUBLE_TIME: u32 = 1 << 6;
    pub const RELAX: u32 = 1 << 7;
    pub const HALF_TIME: u32 = 1 << 8;
    pub const NIGHTCORE: u32 = 1 << 9;
    pub const FLASHLIGHT: u32 = 1 << 10;
    pub const SPUN_OUT: u32 = 1 << 12;
    pub const PERFECT: u32 = 1 << 14;
    /// Mods that change the song's speed: under freemod they stay on the match.
    pub const SPEED: u32 = DOUBLE_TIME | HALF_TIME | NIGHTCORE;

    /// Acronyms as players type them (`!mp mods HD DT`).
    pub const ACRONYMS: &[(&str, u32)] = &[
        ("NF", NO_FAIL),
        ("EZ", EASY),
        ("HD", HIDDEN),
        ("HR", HARD_ROCK),
        ("SD", SUDDEN_DEATH),
        ("DT", DOUBLE_TIME),
        ("RX", RELAX),
        ("HT", HALF_TIME),
        ("NC", NIGHTCORE | DOUBLE_TIME),
        ("FL", FLASHLIGHT),
        ("SO", SPUN_OUT),
        ("PF", PERFECT | SUDDEN_DEATH),
    ];
}
