//! Composite layouts shared by several packets: chat messages, user presence, and the
//! multiplayer match.

use serde::{Deserialize, Serialize};

use crate::DecodeError;
use crate::wire::{Reader, Wire};

/// A chat message. Clients fill `sender`/`sender_id` unreliably; the server overwrites
/// them with the session's identity before relaying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub sender: String,
    pub text: String,
    pub recipient: String,
    pub sender_id: i32,
}

impl Wire for Message {
    fn encode(&self, out: &mut Vec<u8>) {
        self.sender.encode(out);
        self.text.encode(out);
        self.recipient.encode(out);
        self.sender_id.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            sender: String::decode(r)?,
            text: String::decode(r)?,
            recipient: String::decode(r)?,
            sender_id: i32::decode(r)?,
        })
    }
}

/// Who a user is, as shown on the user panel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: i32,
    pub username: String,
    /// Hours from UTC. On the wire it travels as `offset + 24` in one byte.
    pub utc_offset: i8,
    /// Index into the client's country table (0 = unknown).
    pub country_code: u8,
    /// Bancho client privileges ([`crate::client_privileges`]); five bits on the wire.
    pub privileges: u8,
    /// Game mode; the top three bits of the privileges byte on the wire.
    pub mode: u8,
    pub longitude: f32,
    pub latitude: f32,
    pub rank: i32,
}

impl Wire for Presence {
    fn encode(&self, out: &mut Vec<u8>) {
        self.user_id.encode(out);
        self.username.encode(out);
        // Offsets are validated to -12..=14 at login, so this never wraps.
        (self.utc_offset as i16 + 24).clamp(0, 255).to_le_bytes()[0].encode(out);
        self.country_code.encode(out);
        ((self.privileges & 0x1f) | ((self.mode & 0x07) << 5)).encode(out);
        self.longitude.encode(out);
        self.latitude.encode(out);
        self.rank.encode(out);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let user_id = i32::decode(r)?;
        let username = String::decode(r)?;
        let utc_offset = (i16::from(u8::decode(r)?) - 24) as i8;
        let country_code = u8::decode(r)?;
        let bits = u8::decode(r)?;
        Ok(Self {
            user_id,
            username,
            utc_offset,
            country_code,
            privileges: bits & 0x1f,
            mode: bits >> 5,
            longitude: f32::decode(r)?,
            latitude: f32::decode(r)?,
            rank: i32::decode(r)?,
        })
    }
}

/// Number of slots in a multiplayer match.
pub const MATCH_SLOTS: usize = 16;

/// Slot status bits that mean "a player sits here".
pub const SLOT_HAS_PLAYER: u8 = 0b0111_1100;

/// One slot of a match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchSlot {
    pub status: u8,
    pub team: u8,
    /// Only on the wire when `status & SLOT_HAS_PLAYER != 0`.
    pub user_id: i32,
    /// Only on the wire when the match is freemod.
    pub mods: u32,
}

/// A multiplayer match as the client displays it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchData {
    pub match_id: u16,
    pub in_progress: bool,
    pub match_type: u8,
    pub mods: u32,
    pub name: String,
    /// `None` is "no password"; `Some("")` is how the server hides a set password.
    pub password: Option<String>,
    pub beatmap_name: String,
    pub beatmap_id: i32,
    pub beatmap_md5: String,
    pub slots: [MatchSlot; MATCH_SLOTS],
    pub host_id: i32,
    pub mode: u8,
    pub win_condition: u8,
    pub team_type: u8,
    pub freemod: bool,
    pub seed: i32,
}

impl Wire for MatchData {
    fn encode(&self, out: &mut Vec<u8>) {
        self.match_id.encode(out);
        self.in_progress.encode(out);
        self.match_type.encode(out);
        self.mods.encode(out);
        self.name.encode(out);
        self.password.encode(out);
        self.beatmap_name.encode(out);
        self.beatmap_id.encode(out);
        self.beatmap_md5.encode(out);
        for slot in &self.slots {
            slot.status.encode(out);
        }
        for slot in &self.slots {
            slot.team.encode(out);
        }
        for slot in self
            .slots
            .iter()
            .filter(|s| s.status & SLOT_HAS_PLAYER != 0)
        {
            slot.user_id.encode(out);
        }
        self.host_id.encode(out);
        self.mode.encode(out);
        self.win_condition.encode(out);
        self.team_type.encode(out);
        self.freemod.encode(out);
        if self.freemod {
            for slot in &self.slots {
                slot.mods.encode(out);
            }
        }
        self.seed.encode(out);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut m = MatchData {
            match_id: u16::decode(r)?,
            in_progress: bool::decode(r)?,
            match_type: u8::decode(r)?,
            mods: u32::decode(r)?,
            name: String::decode(r)?,
            password: Option::<String>::decode(r)?,
            beatmap_name: String::decode(r)?,
            beatmap_id: i32::decode(r)?,
            beatmap_md5: String::decode(r)?,
            ..MatchData::default()
        };
        for slot in &mut m.slots {
            slot.status = u8::decode(r)?;
        }
        for slot in &mut m.slots {
            slot.team = u8::decode(r)?;
        }
        for slot in m
            .slots
            .iter_mut()
            .filter(|s| s.status & SLOT_HAS_PLAYER != 0)
        {
            slot.user_id = i32::decode(r)?;
        }
        m.host_id = i32::decode(r)?;
        m.mode = u8::decode(r)?;
        m.win_condition = u8::decode(r)?;
        m.team_type = u8::decode(r)?;
        m.freemod = bool::decode(r)?;
        if m.freemod {
            for slot in &mut m.slots {
                slot.mods = u32::decode(r)?;
            }
        }
        m.seed = i32::decode(r)?;
        Ok(m)
    }
}

/// The body of BEATMAP_INFO_REQUEST: beatmap file names and ids, each list `i32`-counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeatmapLookup {
    pub filenames: Vec<String>,
    pub ids: Vec<i32>,
}

/// The most entries accepted in either list of a [`BeatmapLookup`].
pub const MAX_BEATMAP_LOOKUP: usize = 1024;

impl Wire for BeatmapLookup {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = self.filenames.len().min(MAX_BEATMAP_LOOKUP);
        (n as i32).encode(out);
        for f in &self.filenames[..n] {
            f.encode(out);
        }
        let n = self.ids.len().min(MAX_BEATMAP_LOOKUP);
        (n as i32).encode(out);
        for id in &self.ids[..n] {
            id.encode(out);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = lookup_count(r)?;
        let filenames = (0..count)
            .map(|_| String::decode(r))
            .collect::<Result<_, _>>()?;
        let count = lookup_count(r)?;
        let ids = (0..count)
            .map(|_| i32::decode(r))
            .collect::<Result<_, _>>()?;
        Ok(Self { filenames, ids })
    }
}

fn lookup_count(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let count = i32::decode(r)?;
    match usize::try_from(count) {
        Ok(n) if n <= MAX_BEATMAP_LOOKUP => Ok(n),
        _ => Err(DecodeError::BadCount(i64::from(count))),
    }
}
