//! Rows as Rust values, and the account-level types stored in them.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schema::{
    audit_log, beatmap_misses, beatmap_status_overrides, beatmaps, channels, logins, mail,
    match_games, match_scores, scores, screenshots, sessions, stats, users,
};

/// Account privileges, stored as an integer bit set in `users.privileges` and compared
/// against `channels.read_privileges`/`write_privileges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Privileges(pub i32);

impl Privileges {
    /// May log in. An account without it is banned.
    pub const NORMAL: Self = Self(1);
    pub const VERIFIED: Self = Self(1 << 1);
    pub const SUPPORTER: Self = Self(1 << 2);
    pub const MODERATOR: Self = Self(1 << 3);
    pub const ADMIN: Self = Self(1 << 4);
    pub const DEVELOPER: Self = Self(1 << 5);
    /// May hold several simultaneous sessions (tournament spectator clients).
    pub const TOURNAMENT: Self = Self(1 << 6);
    pub const BOT: Self = Self(1 << 7);
    /// May log in, but is invisible to others and cannot chat publicly or play
    /// multiplayer (a moderation state short of a ban).
    pub const RESTRICTED: Self = Self(1 << 8);

    /// What a newly registered account gets.
    pub const DEFAULT_NEW: Self = Self(Self::NORMAL.0 | Self::VERIFIED.0);

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub const fn is_restricted(self) -> bool {
        self.contains(Self::RESTRICTED)
    }

    /// Whether these privileges meet a channel's `requirement`: any one of its bits is
    /// enough, and an empty requirement is met by everyone. ("Any" rather than "all", so
    /// that `MODERATOR | ADMIN | DEVELOPER` makes a channel for the whole staff.)
    pub const fn meets(self, requirement: Self) -> bool {
        requirement.0 == 0 || self.0 & requirement.0 != 0
    }

    pub const fn is_staff(self) -> bool {
        self.0 & (Self::MODERATOR.0 | Self::ADMIN.0 | Self::DEVELOPER.0) != 0
    }
}

/// A registered account.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i32,
    pub name: String,
    pub safe_name: String,
    pub email: String,
    pub password_bcrypt: String,
    pub privileges: i32,
    pub country: String,
    pub silence_end: i64,
    pub created_at: i64,
    pub last_seen: i64,
}

impl User {
    pub fn privileges(&self) -> Privileges {
        Privileges(self.privileges)
    }
}

/// A new account; `safe_name` and the lower-cased email are derived by the repository.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password_bcrypt: &'a str,
    pub privileges: Privileges,
    pub country: &'a str,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct UserInsert<'a> {
    pub name: &'a str,
    pub safe_name: &'a str,
    pub email: &'a str,
    pub password_bcrypt: &'a str,
    pub privileges: i32,
    pub country: &'a str,
    pub created_at: i64,
    pub last_seen: i64,
}

/// One mode's statistics of a user.
#[derive(
    Debug, Clone, Default, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = stats)]
pub struct Stats {
    pub user_id: i32,
    pub mode: i16,
    pub total_score: i64,
    pub ranked_score: i64,
    pub pp: i32,
    pub accuracy: f32,
    pub playcount: i32,
    pub playtime: i32,
    pub max_combo: i32,
    pub total_hits: i32,
    /// Passed best scores per grade: SS with hidden or flashlight (XH), SS, S silver, S, A.
    /// Not serialized: a session's snapshot carries its stats, and the grade counts (which
    /// no session shows) would change that document's wire format for nothing.
    #[serde(skip)]
    pub xh_count: i32,
    #[serde(skip)]
    pub x_count: i32,
    #[serde(skip)]
    pub sh_count: i32,
    #[serde(skip)]
    pub s_count: i32,
    #[serde(skip)]
    pub a_count: i32,
}

/// A beatmap as a source described it (`beatmaps`), keyed by the md5 of its `.osu` file.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = beatmaps)]
pub struct BeatmapRow {
    pub md5: String,
    pub id: i32,
    pub set_id: i32,
    /// osu!api v1 `approved` (−2 graveyard … 4 loved).
    pub status: i16,
    /// Set by staff: a source's answer does not overwrite the status.
    pub status_frozen: bool,
    pub mode: i16,
    pub artist: String,
    pub title: String,
    pub version: String,
    pub creator: String,
    pub file_name: String,
    pub total_length: i32,
    pub max_combo: i32,
    pub stars: f32,
    pub plays: i32,
    pub passes: i32,
    pub source: i16,
    pub approved_at: i64,
    pub fetched_at: i64,
}

/// A stored score (`scores`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = scores)]
pub struct ScoreRow {
    pub id: i32,
    pub user_id: i32,
    pub beatmap_md5: String,
    pub mode: i16,
    pub board: i16,
    pub score: i64,
    pub pp: f32,
    pub accuracy: f32,
    pub max_combo: i32,
    pub mods: i32,
    pub count_300: i32,
    pub count_100: i32,
    pub count_50: i32,
    pub count_geki: i32,
    pub count_katu: i32,
    pub count_miss: i32,
    pub grade: String,
    pub perfect: bool,
    pub status: i16,
    pub online_checksum: String,
    pub play_time: i32,
    pub client_flags: i32,
    pub replay_views: i32,
    pub submitted_at: i64,
    pub reply: String,
}

/// A score to store: a [`ScoreRow`] before the database gives it an id.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = scores)]
pub struct NewScore {
    pub user_id: i32,
    pub beatmap_md5: String,
    pub mode: i16,
    pub board: i16,
    pub score: i64,
    pub pp: f32,
    pub accuracy: f32,
    pub max_combo: i32,
    pub mods: i32,
    pub count_300: i32,
    pub count_100: i32,
    pub count_50: i32,
    pub count_geki: i32,
    pub count_katu: i32,
    pub count_miss: i32,
    pub grade: String,
    pub perfect: bool,
    pub status: i16,
    pub online_checksum: String,
    pub play_time: i32,
    pub client_flags: i32,
    pub replay_views: i32,
    pub submitted_at: i64,
    pub reply: String,
}

/// `relationships.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Relationship {
    Friend,
    Block,
}

impl Relationship {
    pub(crate) fn code(self) -> i16 {
        match self {
            Relationship::Friend => 0,
            Relationship::Block => 1,
        }
    }
}

/// A user's friends and blocked users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationships {
    pub friends: Vec<i32>,
    pub blocked: Vec<i32>,
}

/// A channel definition. `read_privileges` and `write_privileges` are requirements in the
/// sense of [`Privileges::meets`]: any one of their bits admits a user, 0 admits everyone.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = channels)]
pub struct Channel {
    pub name: String,
    pub topic: String,
    pub read_privileges: i32,
    pub write_privileges: i32,
    pub auto_join: bool,
}

/// A private message stored for an offline user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub id: i32,
    pub from_id: i32,
    pub from_name: String,
    pub body: String,
    pub sent_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = mail)]
pub(crate) struct MailInsert<'a> {
    pub from_id: i32,
    pub to_id: i32,
    pub body: &'a str,
    pub sent_at: i64,
    pub delivered: bool,
}

/// One successful login, kept for moderation (multi-accounting checks).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = logins)]
pub struct NewLogin {
    pub user_id: i32,
    pub ip: String,
    pub client_version: String,
    pub client_hashes: String,
    pub created_at: i64,
}

/// A finished (or aborted) multiplayer game.
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Serialize, Deserialize)]
#[diesel(table_name = match_games)]
pub struct NewMatchGame {
    pub match_id: i32,
    pub match_name: String,
    pub beatmap_id: i32,
    pub beatmap_md5: String,
    pub beatmap_name: String,
    pub mode: i16,
    pub mods: i32,
    pub win_condition: i16,
    pub team_type: i16,
    pub freemod: bool,
    pub aborted: bool,
    pub started_at: i64,
    pub ended_at: i64,
}

/// One player's final score in a multiplayer game.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = match_scores)]
pub struct MatchScore {
    pub game_id: i32,
    pub user_id: i32,
    pub slot: i16,
    pub team: i16,
    pub mods: i32,
    pub score: i32,
    pub max_combo: i32,
    pub count_300: i32,
    pub count_100: i32,
    pub count_50: i32,
    pub count_geki: i32,
    pub count_katu: i32,
    pub count_miss: i32,
    pub passed: bool,
}

/// One uploaded screenshot (the image is in the object store).
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = screenshots)]
pub struct Screenshot {
    /// Random, [`crate::SCREENSHOT_ID_LEN`] characters of `[0-9a-f]`.
    pub id: String,
    pub user_id: i32,
    /// `png` or `jpg`.
    pub format: String,
    pub size_bytes: i32,
    pub created_at: i64,
}

/// A ranked status staff gave one map or a whole set by hand
/// (`beatmap_status_overrides`).
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = beatmap_status_overrides)]
pub struct StatusOverride {
    /// [`crate::OVERRIDE_MAP`] or [`crate::OVERRIDE_SET`].
    pub scope: i16,
    /// The osu! beatmap id, or the set id.
    pub target_id: i32,
    /// osu!api v1 `approved`, as `beatmaps.status`.
    pub status: i16,
    pub set_by: i32,
    pub set_at: i64,
}

/// One moderation action.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i32,
    pub actor_id: i32,
    pub target_id: Option<i32>,
    pub action: String,
    pub reason: String,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log)]
pub(crate) struct AuditInsert<'a> {
    pub actor_id: i32,
    pub target_id: Option<i32>,
    pub action: &'a str,
    pub reason: &'a str,
    pub created_at: i64,
}

/// The most bytes of channel keys a [`SessionRecord`] stores, commas included: the width
/// of `sessions.channels`. Keys are ASCII in practice; counting bytes, not characters,
/// keeps the text within the column on every backend whatever it holds.
pub const MAX_SESSION_CHANNELS_LEN: usize = 1024;

/// What another node needs to rebuild a player's main session when the node that held
/// it died: one record per user, written at login and deleted when the session ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: i32,
    /// The session's random id (the client's token names it).
    pub session_id: u64,
    /// Hours from UTC, as the client reported at login.
    pub utc_offset: i16,
    pub block_non_friend_dms: bool,
    /// Keys of the channels the session is in (`#osu`, `#lobby`). Stored comma-separated
    /// and cut to [`MAX_SESSION_CHANNELS_LEN`] by dropping whole keys from the end.
    pub channels: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last sign of life; records not refreshed for long are pruned.
    pub refreshed_at: i64,
}

/// A `sessions` row as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub user_id: i32,
    pub session_id: i64,
    pub utc_offset: i16,
    pub block_non_friend_dms: bool,
    pub channels: String,
    pub created_at: i64,
    pub refreshed_at: i64,
}

impl SessionRow {
    pub(crate) fn from_record(record: &SessionRecord) -> Self {
        Self {
            user_id: record.user_id,
            session_id: session_id_to_column(record.session_id),
            utc_offset: record.utc_offset,
            block_non_friend_dms: record.block_non_friend_dms,
            channels: join_session_channels(&record.channels),
            created_at: record.created_at,
            refreshed_at: record.refreshed_at,
        }
    }

    pub(crate) fn into_record(self) -> SessionRecord {
        SessionRecord {
            user_id: self.user_id,
            // The inverse of `session_id_to_column`.
            session_id: self.session_id as u64,
            utc_offset: self.utc_offset,
            block_non_friend_dms: self.block_non_friend_dms,
            channels: self
                .channels
                .split(',')
                .filter(|key| !key.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: self.created_at,
            refreshed_at: self.refreshed_at,
        }
    }
}

/// No backend has an unsigned 64-bit column type in common, so a session id is stored
/// bit for bit in a signed BIGINT: ids above `i64::MAX` become negative and come back
/// unchanged.
pub(crate) fn session_id_to_column(session_id: u64) -> i64 {
    session_id as i64
}

/// Channel keys comma-separated, keeping as many keys from the front as fit in
/// [`MAX_SESSION_CHANNELS_LEN`] bytes. Whole keys are dropped rather than the text cut,
/// because half a key would name another channel (or none) when the session is rebuilt.
/// Empty keys are left out: they would read back as no key at all.
pub(crate) fn join_session_channels(channels: &[String]) -> String {
    let mut joined = String::new();
    for key in channels.iter().filter(|key| !key.is_empty()) {
        let separator = usize::from(!joined.is_empty());
        if joined.len() + separator + key.len() > MAX_SESSION_CHANNELS_LEN {
            break;
        }
        if separator == 1 {
            joined.push(',');
        }
        joined.push_str(key);
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn session_channels_are_joined_with_commas_and_split_back() {
        assert_eq!(
            join_session_channels(&keys(&["#osu", "#lobby"])),
            "#osu,#lobby"
        );
        assert_eq!(join_session_channels(&[]), "");
        assert_eq!(join_session_channels(&keys(&["", "#osu", ""])), "#osu");
        let row = SessionRow {
            user_id: 2,
            session_id: -1,
            utc_offset: 0,
            block_non_friend_dms: false,
            channels: String::new(),
            created_at: 0,
            refreshed_at: 0,
        };
        let record = row.into_record();
        assert!(record.channels.is_empty());
        assert_eq!(record.session_id, u64::MAX);
    }

    #[test]
    fn session_channels_are_cut_by_whole_keys() {
        // 204 four-byte keys and their commas make 1019 bytes; a five-byte key after them
        // would make 1025, so it and everything after it are dropped, even a key short
        // enough to fit: the kept keys are always a prefix of the list.
        let mut names: Vec<String> = (0..204).map(|i| format!("#{i:03}")).collect();
        names.push("#abcd".into());
        names.push("#a".into());
        let joined = join_session_channels(&names);
        assert_eq!(joined.len(), 204 * 5 - 1);
        assert!(joined.ends_with("#203"));

        // Exactly the maximum is kept.
        let exact = vec!["#".repeat(MAX_SESSION_CHANNELS_LEN)];
        assert_eq!(
            join_session_channels(&exact).len(),
            MAX_SESSION_CHANNELS_LEN
        );
        let over = vec!["#".repeat(MAX_SESSION_CHANNELS_LEN + 1)];
        assert_eq!(join_session_channels(&over), "");
    }
}

/// A lookup no beatmap source could answer (`beatmap_misses`).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = beatmap_misses)]
pub struct BeatmapMiss {
    pub lookup: String,
    pub checked_at: i64,
}
