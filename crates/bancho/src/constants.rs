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
