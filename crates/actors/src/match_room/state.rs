//! A match's data and the slot rules, as plain functions over serde data (unit-tested
//! here; the actor in `mod.rs` adds the messaging).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use peace_bancho::model::{MATCH_SLOTS, SLOT_HAS_PLAYER};
use peace_bancho::{MAX_MODE, MAX_WIN_CONDITION, MatchData, mods, slot_status, team, team_type};
use serde::{Deserialize, Serialize};

/// Longest match name kept.
pub const MAX_MATCH_NAME_LEN: usize = 50;
/// Longest match password kept.
pub const MAX_PASSWORD_LEN: usize = 64;
/// Longest beatmap title kept.
pub const MAX_BEATMAP_NAME_LEN: usize = 256;
/// The smallest valid score frame (without score v2 portions).
pub const MIN_SCORE_FRAME_LEN: usize = 29;

/// A game being played.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Game {
    pub started_at: i64,
    /// Who plays this game (a player who leaves is removed).
    pub players: BTreeSet<i32>,
    pub loaded: BTreeSet<i32>,
    pub skipped: BTreeSet<i32>,
    pub completed: BTreeSet<i32>,
    pub failed: BTreeSet<i32>,
    /// Each player's latest score frame, as relayed.
    pub frames: BTreeMap<i32, Bytes>,
    /// Slot, team and mods of each player when the game started.
    pub lineup: BTreeMap<i32, (u8, u8, u32)>,
    /// MATCH_ALL_PLAYERS_LOADED was sent.
    pub all_loaded: bool,
    /// MATCH_SKIP was sent.
    pub all_skipped: bool,
}

/// A countdown started by a referee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Countdown {
    pub remaining: u32,
    /// Start the match when it reaches zero (otherwise it is a plain timer).
    pub start: bool,
    /// Tells ticks of an old countdown from the current one.
    pub generation: u32,
}

/// A match's serializable state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MatchState {
    /// The authoritative match; `data.password` holds the real password.
    pub data: MatchData,
    /// Players' names by id, for referee output and invitations.
    pub names: BTreeMap<i32, String>,
    /// Who may run `!mp` commands besides the host and staff.
    pub referees: BTreeSet<i32>,
    /// Tournament client sessions watching without a slot, by (user, session).
    pub watchers: BTreeSet<(i32, u64)>,
    /// `!mp lock`: players cannot change slot or team.
    pub slots_locked: bool,
    pub game: Option<Game>,
    pub countdown: Option<Countdown>,
    pub countdown_generation: u32,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn clean_md5(md5: &str) -> String {
    if md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        md5.to_ascii_lowercase()
    } else {
        String::new()
    }
}

impl MatchState {
    /// A new match from a client's CREATE_MATCH, with the creator in slot 0 as host.
    pub fn create(match_id: u16, requested: &MatchData, host_id: i32, host_name: &str) -> Self {
        let mut data = MatchData {
            match_id,
            host_id,
            ..MatchData::default()
        };
        for slot in &mut data.slots {
            slot.status = slot_status::OPEN;
        }
        let mut state = Self {
            data,
            names: BTreeMap::new(),
            referees: BTreeSet::from([host_id]),
            watchers: BTreeSet::new(),
            slots_locked: false,
            game: None,
            countdown: None,
            countdown_generation: 0,
        };
        state.data.password = requested
            .password
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| truncate(p, MAX_PASSWORD_LEN));
        state.apply_settings(requested);
        state.data.name = match truncate(requested.name.trim(), MAX_MATCH_NAME_LEN) {
            name if name.is_empty() => format!("{host_name}'s game"),
            name => name,
        };
        state.seat(host_id, host_name);
        state
    }

    /// The view for the lobby and invitations: a set password shows as `Some("")`.
    pub fn public_view(&self) -> MatchData {
        let mut data = self.data.clone();
        data.password = data.password.map(|_| String::new());
        data
    }

    pub fn slot_of(&self, user_id: i32) -> Option<usize> {
        self.data
            .slots
            .iter()
            .position(|s| s.status & SLOT_HAS_PLAYER != 0 && s.user_id == user_id)
    }

    pub fn players(&self) -> impl Iterator<Item = i32> + '_ {
        self.data
            .slots
            .iter()
            .filter(|s| s.status & SLOT_HAS_PLAYER != 0)
            .map(|s| s.user_id)
    }

    pub fn player_count(&self) -> usize {
        self.players().count()
    }

    pub fn is_full(&self) -> bool {
        !self
            .data
            .slots
            .iter()
            .any(|s| s.status == slot_status::OPEN)
    }

    /// Puts a player in the first open slot; `None` when the match is full.
    pub fn seat(&mut self, user_id: i32, name: &str) -> Option<usize> {
        if let Some(existing) = self.slot_of(user_id) {
            return Some(existing);
        }
        let index = self
            .data
            .slots
            .iter()
            .position(|s| s.status == slot_status::OPEN)?;
        let team = if team_type::has_teams(self.data.team_type) {
            // Balance teams: join the smaller one.
            let reds = self
                .data
                .slots
                .iter()
                .filter(|s| s.status & SLOT_HAS_PLAYER != 0 && s.team == team::RED)
                .count();
            let blues = self
                .data
                .slots
                .iter()
                .filter(|s| s.status & SLOT_HAS_PLAYER != 0 && s.team == team::BLUE)
                .count();
            if reds <= blues { team::RED } else { team::BLUE }
        } else {
            team::NEUTRAL
        };
        let slot = &mut self.data.slots[index];
        slot.status = slot_status::NOT_READY;
        slot.team = team;
        slot.user_id = user_id;
        slot.mods = 0;
        self.names.insert(user_id, name.to_owned());
        Some(index)
    }

    /// Frees a player's slot. Returns the new host if the host left and someone remains.
    pub fn unseat(&mut self, user_id: i32) -> Option<i32> {
        let index = self.slot_of(user_id)?;
        let slot = &mut self.data.slots[index];
        *slot = peace_bancho::MatchSlot {
            status: slot_status::OPEN,
            ..Default::default()
        };
        self.names.remove(&user_id);
        if let Some(game) = &mut self.game {
            // Leaving mid-game counts as failing; what they scored so far is kept.
            if game.players.remove(&user_id) {
                game.failed.insert(user_id);
            }
        }
        if self.data.host_id == user_id {
            let next = self.players().next()?;
            self.data.host_id = next;
            return Some(next);
        }
        None
    }

    /// Moves a player to another open slot.
    pub fn move_to(&mut self, user_id: i32, target: usize) -> bool {
        let Some(from) = self.slot_of(user_id) else {
            return false;
        };
        if target >= MATCH_SLOTS || self.data.slots[target].status != slot_status::OPEN {
            return false;
        }
        self.data.slots[target] = self.data.slots[from];
        self.data.slots[from] = peace_bancho::MatchSlot {
            status: slot_status::OPEN,
            ..Default::default()
        };
        true
    }

    /// Sets every ready player back to not ready (after a map or mod change).
    pub fn unready_all(&mut self) {
        for slot in &mut self.data.slots {
            if slot.status == slot_status::READY {
                slot.status = slot_status::NOT_READY;
            }
        }
    }

    /// Applies the host's MATCH_CHANGE_SETTINGS (or the creator's CREATE_MATCH settings).
    /// Returns whether the beatmap changed.
    pub fn apply_settings(&mut self, new: &MatchData) -> bool {
        let d = &mut self.data;
        let name = truncate(new.name.trim(), MAX_MATCH_NAME_LEN);
        if !name.is_empty() {
            d.name = name;
        }
        let md5 = clean_md5(&new.beatmap_md5);
        let map_changed = d.beatmap_id != new.beatmap_id || d.beatmap_md5 != md5;
        d.beatmap_id = new.beatmap_id;
        d.beatmap_md5 = md5;
        d.beatmap_name = truncate(&new.beatmap_name, MAX_BEATMAP_NAME_LEN);
        d.match_type = new.match_type.min(1);
        if new.mode <= MAX_MODE {
            d.mode = new.mode;
        }
        if new.win_condition <= MAX_WIN_CONDITION {
            d.win_condition = new.win_condition;
        }
        if new.team_type <= team_type::MAX && new.team_type != d.team_type {
            self.set_team_type(new.team_type);
        }
        if new.freemod != self.data.freemod {
            self.set_freemod(new.freemod);
        }
        if map_changed {
            self.unready_all();
        }
        map_changed
    }

    fn set_team_type(&mut self, kind: u8) {
        self.data.team_type = kind;
        let teams = team_type::has_teams(kind);
        let mut next_red = true;
        for slot in self
            .data
            .slots
            .iter_mut()
            .filter(|s| s.status & SLOT_HAS_PLAYER != 0)
        {
            slot.team = match (teams, next_red) {
                (false, _) => team::NEUTRAL,
                (true, true) => team::RED,
                (true, false) => team::BLUE,
            };
            next_red = !next_red;
        }
    }

    /// Freemod on: speed mods stay on the match, the rest move to every player's slot.
    /// Freemod off: the host's slot mods return to the match; slot mods are cleared.
    pub fn set_freemod(&mut self, on: bool) {
        let d = &mut self.data;
        if on == d.freemod {
            return;
        }
        d.freemod = on;
        if on {
            let personal = d.mods & !mods::SPEED;
            for slot in d
                .slots
                .iter_mut()
                .filter(|s| s.status & SLOT_HAS_PLAYER != 0)
            {
                slot.mods = personal;
            }
            d.mods &= mods::SPEED;
        } else {
            let host_mods = d
                .slots
                .iter()
                .find(|s| s.status & SLOT_HAS_PLAYER != 0 && s.user_id == d.host_id)
                .map_or(0, |s| s.mods);
            d.mods = (d.mods & mods::SPEED) | host_mods;
            for slot in &mut d.slots {
                slot.mods = 0;
            }
        }
    }

    /// MATCH_CHANGE_MODS from `user_id`. Returns whether anything changed.
    pub fn change_mods(&mut self, user_id: i32, requested: u32) -> bool {
        let is_host = self.data.host_id == user_id;
        if self.data.freemod {
            let Some(index) = self.slot_of(user_id) else {
                return false;
            };
            if is_host {
                self.data.mods = requested & mods::SPEED;
            }
            self.data.slots[index].mods = requested & !mods::SPEED;
            true
        } else if is_host {
            self.data.mods = requested;
            self.unready_all();
            true
        } else {
            false
        }
    }

    /// Toggles a slot's lock. Returns the player who sat there (now removed), if any.
    /// The host's own slot cannot be locked.
    pub fn toggle_lock(&mut self, index: usize) -> Option<i32> {
        let slot = *self.data.slots.get(index)?;
        if slot.status & SLOT_HAS_PLAYER != 0 && slot.user_id == self.data.host_id {
            return None;
        }
        if slot.status == slot_status::LOCKED {
            self.data.slots[index].status = slot_status::OPEN;
            return None;
        }
        let kicked = (slot.status & SLOT_HAS_PLAYER != 0).then_some(slot.user_id);
        if let Some(user) = kicked {
            self.unseat(user);
        }
        self.data.slots[index] = peace_bancho::MatchSlot {
            status: slot_status::LOCKED,
            ..Default::default()
        };
        kicked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn match_with(players: &[i32]) -> MatchState {
        let mut requested = MatchData {
            name: "test".into(),
            beatmap_md5: "a".repeat(32),
            ..Default::default()
        };
        requested.password = Some("pw".into());
        let mut m = MatchState::create(1, &requested, players[0], "host");
        for &p in &players[1..] {
            m.seat(p, &format!("p{p}")).unwrap();
        }
        m
    }

    #[test]
    fn creator_hosts_in_slot_zero_and_password_is_hidden_publicly() {
        let m = match_with(&[10]);
        assert_eq!(m.slot_of(10), Some(0));
        assert_eq!(m.data.host_id, 10);
        assert_eq!(m.data.password.as_deref(), Some("pw"));
        assert_eq!(m.public_view().password.as_deref(), Some(""));
    }

    #[test]
    fn host_passes_to_the_next_occupied_slot() {
        let mut m = match_with(&[10, 11, 12]);
        assert!(m.move_to(11, 5));
        assert_eq!(m.unseat(10), Some(12), "slot 2 comes before slot 5");
        assert_eq!(m.unseat(11), None);
        assert_eq!(m.unseat(12), None);
        assert_eq!(m.player_count(), 0);
    }

    #[test]
    fn full_matches_refuse_and_locks_kick() {
        let mut m = match_with(&[1]);
        for p in 2..=16 {
            assert!(m.seat(p, "p").is_some());
        }
        assert!(m.is_full());
        assert_eq!(m.seat(99, "late"), None);
        assert_eq!(m.toggle_lock(0), None, "the host's slot cannot be locked");
        assert_eq!(m.toggle_lock(3), Some(4));
        assert_eq!(m.data.slots[3].status, slot_status::LOCKED);
        assert_eq!(m.seat(99, "late"), None, "a locked slot is not open");
        assert_eq!(m.toggle_lock(3), None);
        assert_eq!(m.seat(99, "late"), Some(3));
    }

    #[test]
    fn freemod_keeps_speed_mods_on_the_match() {
        let mut m = match_with(&[1, 2]);
        assert!(m.change_mods(1, mods::HIDDEN | mods::DOUBLE_TIME));
        assert!(
            !m.change_mods(2, mods::HARD_ROCK),
            "only the host sets match mods"
        );
        m.set_freemod(true);
        assert_eq!(m.data.mods, mods::DOUBLE_TIME);
        assert_eq!(m.data.slots[1].mods, mods::HIDDEN);
        assert!(m.change_mods(2, mods::HARD_ROCK | mods::HALF_TIME));
        assert_eq!(
            m.data.slots[1].mods,
            mods::HARD_ROCK,
            "speed mods stay off the slot"
        );
        assert_eq!(
            m.data.mods,
            mods::DOUBLE_TIME,
            "a player cannot change match speed"
        );
        m.set_freemod(false);
        assert_eq!(m.data.mods, mods::DOUBLE_TIME | mods::HIDDEN);
        assert!(m.data.slots.iter().all(|s| s.mods == 0));
    }

    #[test]
    fn settings_are_range_checked_and_teams_assigned() {
        let mut m = match_with(&[1, 2, 3]);
        m.data.slots[1].status = slot_status::READY;
        let new = MatchData {
            name: "x".repeat(500),
            beatmap_id: 75,
            beatmap_md5: "b".repeat(32),
            mode: 9,
            win_condition: 200,
            team_type: team_type::TEAM_VS,
            ..m.data.clone()
        };
        assert!(m.apply_settings(&new));
        assert_eq!(m.data.name.len(), MAX_MATCH_NAME_LEN);
        assert_eq!((m.data.mode, m.data.win_condition), (0, 0));
        assert_eq!(
            m.data.slots[1].status,
            slot_status::NOT_READY,
            "a map change unreadies"
        );
        let teams: Vec<u8> = m.data.slots[..3].iter().map(|s| s.team).collect();
        assert_eq!(teams, [team::RED, team::BLUE, team::RED]);
        let bad_md5 = MatchData {
            beatmap_md5: "not hex".into(),
            ..m.data.clone()
        };
        m.apply_settings(&bad_md5);
        assert_eq!(m.data.beatmap_md5, "");
    }
}
