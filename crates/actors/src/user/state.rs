//! A session's data. Plain serde data, kept apart from the actor's runtime handles so
//! that it can be snapshotted and moved to another node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use peace_bancho::server::{UserPresence, UserStats};
use peace_bancho::{Presence, ServerPacket, client_privileges, presence_filter};
use peace_db::Privileges;
use serde::{Deserialize, Serialize};

/// The most bytes queued for a client that is not polling. Beyond it new packets are
/// dropped (and logged); the idle time-out ends such sessions soon anyway.
pub const MAX_QUEUE_BYTES: usize = 4 << 20;

/// What the player is doing (CHANGE_ACTION).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub action: u8,
    pub info_text: String,
    pub beatmap_md5: String,
    pub mods: u32,
    pub mode: u8,
    pub beatmap_id: i32,
}

/// One user's session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserState {
    pub id: i32,
    pub name: String,
    pub session_id: u64,
    pub privileges: Privileges,
    pub country_code: u8,
    pub utc_offset: i8,
    pub login_time: i64,
    /// Unix milliseconds of the last poll.
    pub last_poll_ms: i64,
    pub status: Status,
    /// Statistics of `status.mode`.
    pub stats: peace_db::Stats,
    pub rank: i32,
    pub friends: BTreeSet<i32>,
    pub blocked: BTreeSet<i32>,
    pub channels: BTreeSet<String>,
    /// Unix seconds; silenced while in the future.
    pub silence_end: i64,
    pub block_non_friend_dms: bool,
    pub away_message: Option<String>,
    /// To whom an away message was already sent this session (sent once per sender).
    pub away_notified: BTreeSet<i32>,
    pub presence_filter: i32,
    /// Whose spectator room this player watches.
    pub spectating: Option<i32>,
    /// The match this player sits in.
    pub match_id: Option<i32>,
    /// The match a tournament client watches without a slot.
    pub watching_match: Option<i32>,
    pub in_lobby: bool,
    /// Instance channels by the name the client knows them by
    /// (`#spectator` → `#spec_12`, `#multiplayer` → `#mp_3`).
    pub channel_aliases: BTreeMap<String, String>,
    /// An additional session of a tournament account: invisible to other players.
    pub extra_session: bool,
    /// When this player's recent chat messages were sent (unix ms), for the spam limit.
    pub recent_messages: VecDeque<i64>,
    /// Encoded packets waiting for the client's next poll.
    pub queue: Vec<u8>,
    /// How often this session moved to another node (snapshot format 2).
    pub moves: u32,
    /// How far this session has caught up with its node's presence feed. Node-local: a
    /// session that starts on a node (a login, a move, a rebuild) starts at its head.
    pub presence_cursor: u64,
    /// The newest channel member count announcement of its node passed on (node-local
    /// too).
    pub channel_counts_cursor: u64,
}

impl UserState {
    /// A fresh session for `user`.
    pub fn new(
        user: &peace_db::User,
        session_id: u64,
        utc_offset: i8,
        stats: peace_db::Stats,
        rank: i32,
    ) -> Self {
        let now = peace_db::unix_now();
        Self {
            id: user.id,
            name: user.name.clone(),
            session_id,
            privileges: user.privileges(),
            country_code: peace_bancho::country_index(&user.country),
            utc_offset,
            login_time: now,
            last_poll_ms: now * 1000,
            status: Status::default(),
            stats,
            rank,
            friends: BTreeSet::new(),
            blocked: BTreeSet::new(),
            channels: BTreeSet::new(),
            silence_end: user.silence_end,
            block_non_friend_dms: false,
            away_message: None,
            away_notified: BTreeSet::new(),
            presence_filter: presence_filter::ALL,
            spectating: None,
            match_id: None,
            watching_match: None,
            in_lobby: false,
            channel_aliases: BTreeMap::new(),
            extra_session: false,
            recent_messages: VecDeque::new(),
            queue: Vec::new(),
            moves: 0,
            presence_cursor: 0,
            channel_counts_cursor: 0,
        }
    }

    /// The channel key behind a name the client used (`#spectator` → `#spec_12`).
    pub fn resolve_channel(&self, name: &str) -> String {
        self.channel_aliases
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }

    /// The name the client knows a channel key by.
    pub fn display_channel(&self, key: &str) -> String {
        self.channel_aliases
            .iter()
            .find(|(_, k)| k.as_str() == key)
            .map_or_else(|| key.to_owned(), |(display, _)| display.clone())
    }

    pub fn is_silenced(&self, now: i64) -> bool {
        self.silence_end > now
    }

    /// The privilege bits the client shows (PRIVILEGES, presence). The supporter bit
    /// unlocks osu!direct in the client; with `[login] supporter_for_everyone` every
    /// session carries the supporter privilege ([`session_privileges`]).
    pub fn client_privileges(&self) -> u8 {
        client_bits(self.privileges)
    }

    pub fn presence(&self) -> Presence {
        Presence {
            user_id: self.id,
            username: self.name.clone(),
            utc_offset: self.utc_offset,
            country_code: self.country_code,
            privileges: self.client_privileges(),
            mode: self.status.mode,
            longitude: 0.0,
            latitude: 0.0,
            rank: self.rank,
        }
    }

    pub fn presence_packet(&self) -> Bytes {
        ServerPacket::from(UserPresence {
            presence: self.presence(),
        })
        .to_bytes()
    }

    /// The `stats.mode` row the player's current play counts in: the mode, plus 4 · the
    /// board (relax 1, autopilot 2) that the selected mods choose.
    pub fn stats_mode(&self) -> i16 {
        i16::from(self.status.mode) + 4 * board_of(self.status.mode, self.status.mods)
    }

    pub fn stats_packet(&self) -> Bytes {
        let s = &self.stats;
        ServerPacket::from(UserStats {
            user_id: self.id,
            action: self.status.action,
            info_text: self.status.info_text.clone(),
            beatmap_md5: self.status.beatmap_md5.clone(),
            mods: self.status.mods,
            mode: self.status.mode,
            beatmap_id: self.status.beatmap_id,
            ranked_score: s.ranked_score,
            // Stored as a percentage; the client wants a fraction.
            accuracy: s.accuracy / 100.0,
            playcount: s.playcount,
            total_score: s.total_score,
            rank: self.rank,
            // The client reads pp as an unsigned 16-bit value.
            pp: u16::try_from(s.pp.max(0)).unwrap_or(u16::MAX),
        })
        .to_bytes()
    }

    /// Queues packets for the client, within [`MAX_QUEUE_BYTES`].
    pub fn enqueue(&mut self, packets: &[u8]) {
        if self.queue.len() + packets.len() > MAX_QUEUE_BYTES {
            tracing::warn!(
                user = self.id,
                "outgoing queue full; dropping {} bytes",
                packets.len()
            );
            return;
        }
        self.queue.extend_from_slice(packets);
    }

    pub fn enqueue_packet(&mut self, packet: impl Into<ServerPacket>) {
        let mut buf = Vec::with_capacity(32);
        packet.into().encode(&mut buf);
        self.enqueue(&buf);
    }

    /// Hands the queue to the client. The buffer is replaced, not cleared, so an idle
    /// session gives its memory back.
    pub fn drain(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.queue))
    }

    /// Whether this session wants presence updates from `from`.
    pub fn wants_updates_from(&self, from: i32) -> bool {
        match self.presence_filter {
            presence_filter::NONE => from == self.id,
            presence_filter::FRIENDS => from == self.id || self.friends.contains(&from),
            _ => true,
        }
    }
}

/// The privileges a session of an account with `account` starts with: the account's,
/// plus the supporter privilege when the server gives it to everyone.
pub fn session_privileges(account: Privileges, supporter_for_everyone: bool) -> Privileges {
    if supporter_for_everyone {
        account.union(Privileges::SUPPORTER)
    } else {
        account
    }
}

/// Maps account privileges to the client's privilege bits.
pub fn client_bits(p: Privileges) -> u8 {
    let mut bits = client_privileges::PLAYER;
    if p.contains(Privileges::SUPPORTER) {
        bits |= client_privileges::SUPPORTER;
    }
    if p.contains(Privileges::MODERATOR) {
        bits |= client_privileges::MODERATOR;
    }
    if p.contains(Privileges::ADMIN) {
        bits |= client_privileges::OWNER;
    }
    if p.contains(Privileges::DEVELOPER) {
        bits |= client_privileges::DEVELOPER;
    }
    if p.contains(Privileges::TOURNAMENT) {
        bits |= client_privileges::TOURNAMENT;
    }
    bits
}

/// The board (0 vanilla, 1 relax, 2 autopilot) a play in `mode` with `mods` counts on.
pub fn board_of(mode: u8, mods: u32) -> i16 {
    let mode = peace_scores::mode::Mode::from_number(i64::from(mode))
        .unwrap_or(peace_scores::mode::Mode::Osu);
    match peace_scores::mods::BoardKind::for_play(mode, peace_scores::mods::Mods::from_wire(mods)) {
        peace_scores::mods::BoardKind::Vanilla => 0,
        peace_scores::mods::BoardKind::Relax => 1,
        peace_scores::mods::BoardKind::Autopilot => 2,
    }
}
