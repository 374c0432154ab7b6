//! Building a full `.osr` replay file from a stored score and the replay bytes the client
//! uploaded with it (which are only the LZMA-compressed frames, without any header).
//!
//! Layout, all little-endian (as bancho.py's replay download writes it, and as the PyPI
//! `osrparse` library reads it):
//!
//! | field | type |
//! |---|---|
//! | mode | u8 |
//! | game version (`yyyyMMdd`) | i32 |
//! | beatmap md5, player name, replay md5 | osu! strings |
//! | n300, n100, n50, ngeki, nkatu, nmiss | u16 each |
//! | total score | i32 |
//! | max combo | u16 |
//! | perfect | u8 (0/1) |
//! | mods | i32 |
//! | life bar graph | osu! string (empty here) |
//! | timestamp | i64, .NET ticks: 100 ns since 0001-01-01 UTC |
//! | replay data length, then the data | i32, bytes |
//! | online score id | i64 |
//!
//! An osu! string is `0x00` when absent, else `0x0b`, the byte length as ULEB128, and the
//! UTF-8 bytes.

use crate::grade::Counts;
use crate::mode::Mode;
use crate::mods::Mods;

/// .NET ticks at the Unix epoch (1970-01-01T00:00:00Z).
pub const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;

/// .NET ticks per second.
pub const TICKS_PER_SECOND: i64 = 10_000_000;

/// The longest string the parser accepts; a name or md5 is tens of bytes.
const MAX_STRING_LEN: usize = 64 * 1024;

/// Why a replay could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsrError {
    /// A number does not fit its field in the file (the format stores counts in 16 bits).
    #[error("{field} = {value} does not fit the .osr field")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: i128,
    },
    /// The input ended before the file did.
    #[error("the replay is truncated")]
    Truncated,
    /// The input is not a replay file.
    #[error("the replay is invalid: {0}")]
    Invalid(&'static str),
}

/// The score data in a replay's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayHeader {
    /// The game mode.
    pub mode: Mode,
    /// The client version that played (`yyyyMMdd`, e.g. 20231030).
    pub game_version: i32,
    /// The played map's md5.
    pub beatmap_md5: String,
    /// The player's name.
    pub player_name: String,
    /// The replay's own md5 (the client uses it to tell replays apart).
    pub replay_md5: String,
    /// Hit counts (each must fit in 16 bits).
    pub counts: Counts,
    /// Total score.
    pub score: u64,
    /// Max combo (16 bits).
    pub max_combo: u32,
    /// Full combo.
    pub perfect: bool,
    /// Mods.
    pub mods: Mods,
    /// When it was played, in Unix seconds (UTC).
    pub played_at_unix: i64,
    /// The score's online id.
    pub online_score_id: i64,
}

/// Unix seconds to .NET ticks; `None` outside the years .NET can hold.
pub fn unix_to_ticks(unix_seconds: i64) -> Option<i64> {
    unix_seconds
        .checked_mul(TICKS_PER_SECOND)?
        .checked_add(UNIX_EPOCH_TICKS)
}

/// .NET ticks to Unix seconds (rounded towards negative infinity).
pub fn ticks_to_unix(ticks: i64) -> i64 {
    (ticks - UNIX_EPOCH_TICKS).div_euclid(TICKS_PER_SECOND)
}

fn fit<T: TryFrom<u64>>(field: &'static str, value: u64) -> Result<T, OsrError> {
    T::try_from(value).map_err(|_| OsrError::OutOfRange {
        field,
        value: i128::from(value),
    })
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    if s.is_empty() {
        out.push(0x00);
        return;
    }
    out.push(0x0b);
    let mut len = s.len();
    loop {
        // Seven bits at a time, low first, high bit set while more follow.
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

/// Builds the whole `.osr` file: the header from `header`, then `replay_data` (the bytes the
/// client uploaded with the score) unchanged.
pub fn build_osr(header: &ReplayHeader, replay_data: &[u8]) -> Result<Vec<u8>, OsrError> {
    let c = &header.counts;
    let counts: [u16; 6] = [
        fit("n300", u64::from(c.n300))?,
        fit("n100", u64::from(c.n100))?,
        fit("n50", u64::from(c.n50))?,
        fit("ngeki", u64::from(c.ngeki))?,
        fit("nkatu", u64::from(c.nkatu))?,
        fit("nmiss", u64::from(c.nmiss))?,
    ];
    let score: i32 = fit("score", header.score)?;
    let max_combo: u16 = fit("max_combo", u64::from(header.max_combo))?;
    let data_len: i32 = fit("replay data length", replay_data.len() as u64)?;
    let ticks = unix_to_ticks(header.played_at_unix).ok_or(OsrError::OutOfRange {
        field: "played_at_unix",
        value: i128::from(header.played_at_unix),
    })?;

    let mut out = Vec::with_capacity(128 + replay_data.len());
    out.push(header.mode.number());
    out.extend_from_slice(&header.game_version.to_le_bytes());
    write_string(&mut out, &header.beatmap_md5);
    write_string(&mut out, &header.player_name);
    write_string(&mut out, &header.replay_md5);
    for n in counts {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&score.to_le_bytes());
    out.extend_from_slice(&max_combo.to_le_bytes());
    out.push(u8::from(header.perfect));
    // The mods are a bit set; the file's i32 holds the same 32 bits.
    out.extend_from_slice(&header.mods.bits().to_le_bytes());
    write_string(&mut out, "");
    out.extend_from_slice(&ticks.to_le_bytes());
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(replay_data);
    out.extend_from_slice(&header.online_score_id.to_le_bytes());
    Ok(out)
}

/// A reader over a byte slice that reports running out instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OsrError> {
        if self.bytes.len() < n {
            return Err(OsrError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OsrError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn string(&mut self) -> Result<String, OsrError> {
        match self.array::<1>()?[0] {
            0x00 => Ok(String::new()),
            0x0b => {
                let mut len: usize = 0;
                for shift in (0..).step_by(7) {
                    if shift > 28 {
                        return Err(OsrError::Invalid("string length too long"));
                    }
                    let b = self.array::<1>()?[0];
                    len |= usize::from(b & 0x7f) << shift;
                    if b & 0x80 == 0 {
                        break;
                    }
                }
                // Checked before taking, so a forged length cannot ask for gigabytes.
                if len > MAX_STRING_LEN {
                    return Err(OsrError::Invalid("string too long"));
                }
                String::from_utf8(self.take(len)?.to_vec())
                    .map_err(|_| OsrError::Invalid("string is not UTF-8"))
            }
            _ => Err(OsrError::Invalid("bad string marker")),
        }
    }
}

/// Reads a `.osr` file back: its header and the embedded replay data. The inverse of
/// [`build_osr`] (the life bar is skipped); used to test it and to check uploads.
pub fn parse_osr(bytes: &[u8]) -> Result<(ReplayHeader, &[u8]), OsrError> {
    let mut r = Reader { bytes };
    let mode = Mode::from_number(i64::from(r.array::<1>()?[0]))
        .map_err(|_| OsrError::Invalid("mode is not 0..=3"))?;
    let game_version = i32::from_le_bytes(r.array()?);
    let beatmap_md5 = r.string()?;
    let player_name = r.string()?;
    let replay_md5 = r.string()?;
    let mut n = [0u32; 6];
    for slot in &mut n {
        *slot = u32::from(u16::from_le_bytes(r.array()?));
    }
    let score = i32::from_le_bytes(r.array()?);
    let max_combo = u32::from(u16::from_le_bytes(r.array()?));
    let perfect = r.array::<1>()?[0] != 0;
    let mods = Mods::from_bits_retain(u32::from_le_bytes(r.array()?));
    let _life_bar = r.string()?;
    let ticks = i64::from_le_bytes(r.array()?);
    let data_len = i32::from_le_bytes(r.array()?);
    let data_len =
        usize::try_from(data_len).map_err(|_| OsrError::Invalid("negative data length"))?;
    let data = r.take(data_len)?;
    let online_score_id = i64::from_le_bytes(r.array()?);
    let header = ReplayHeader {
        mode,
        game_version,
        beatmap_md5,
        player_name,
        replay_md5,
        counts: Counts {
            n300: n[0],
            n100: n[1],
            n50: n[2],
            ngeki: n[3],
            nkatu: n[4],
            nmiss: n[5],
        },
        score: u64::try_from(score).map_err(|_| OsrError::Invalid("negative score"))?,
        max_combo,
        perfect,
        mods,
        played_at_unix: ticks_to_unix(ticks),
        online_score_id,
    };
    Ok((header, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> ReplayHeader {
        ReplayHeader {
            mode: Mode::Osu,
            game_version: 20231030,
            beatmap_md5: "1cf5b2c2edfafd055536d2cefcb89c0e".into(),
            player_name: "peppy".into(),
            replay_md5: "0123456789abcdef0123456789abcdef".into(),
            counts: Counts {
                n300: 1092,
                n100: 23,
                n50: 1,
                ngeki: 221,
                nkatu: 17,
                nmiss: 2,
            },
            score: 48_211_634,
            max_combo: 1503,
            perfect: false,
            mods: Mods::HIDDEN | Mods::DOUBLE_TIME,
            played_at_unix: 1_699_126_512,
            online_score_id: 42,
        }
    }

    #[test]
    fn epoch_in_ticks() {
        assert_eq!(unix_to_ticks(0), Some(UNIX_EPOCH_TICKS));
        // 2000-01-01T00:00:00Z is 630822816000000000 ticks in .NET.
        assert_eq!(unix_to_ticks(946_684_800), Some(630_822_816_000_000_000));
        assert_eq!(ticks_to_unix(630_822_816_000_000_000), 946_684_800);
        assert_eq!(unix_to_ticks(i64::MAX), None);
    }

    #[test]
    fn strings_use_uleb128_lengths() {
        let mut out = Vec::new();
        write_string(&mut out, "");
        write_string(&mut out, "ab");
        write_string(&mut out, &"x".repeat(300));
        assert_eq!(&out[..5], &[0x00, 0x0b, 2, b'a', b'b']);
        // 300 = 0b10_0101100: low seven bits 0x2c with the continuation bit, then 0x02.
        assert_eq!(&out[5..8], &[0x0b, 0xac, 0x02]);
        assert_eq!(out.len(), 8 + 300);
    }

    #[test]
    fn header_bytes_in_order() {
        let osr = build_osr(&sample(), &[1, 2, 3]).unwrap();
        assert_eq!(osr[0], 0);
        assert_eq!(&osr[1..5], &20231030i32.to_le_bytes());
        assert_eq!(&osr[5..7], &[0x0b, 32]);
        assert_eq!(&osr[osr.len() - 8..], &42i64.to_le_bytes());
        assert_eq!(&osr[osr.len() - 11..osr.len() - 8], &[1, 2, 3]);
        assert_eq!(&osr[osr.len() - 15..osr.len() - 11], &3i32.to_le_bytes());
    }

    #[test]
    fn round_trips() {
        let header = sample();
        let data = vec![0x5d, 0, 0, 0x20, 0, 9, 9, 9];
        let osr = build_osr(&header, &data).unwrap();
        let (back, back_data) = parse_osr(&osr).unwrap();
        assert_eq!(back, header);
        assert_eq!(back_data, &data[..]);
    }

    #[test]
    fn numbers_that_do_not_fit_are_refused() {
        let mut h = sample();
        h.counts.n300 = 70_000;
        assert!(matches!(
            build_osr(&h, &[]),
            Err(OsrError::OutOfRange { field: "n300", .. })
        ));
        let mut h = sample();
        h.score = u64::from(u32::MAX);
        assert!(matches!(
            build_osr(&h, &[]),
            Err(OsrError::OutOfRange { field: "score", .. })
        ));
    }

    #[test]
    fn truncation_is_told_apart() {
        let osr = build_osr(&sample(), &[1, 2, 3]).unwrap();
        for cut in 0..osr.len() {
            assert_eq!(
                parse_osr(&osr[..cut]),
                Err(OsrError::Truncated),
                "cut at {cut}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_osr(&bytes);
        }

        #[test]
        fn random_headers_round_trip(
            n in proptest::array::uniform6(0u32..=u32::from(u16::MAX)),
            score in 0u64..=i32::MAX as u64,
            mods in any::<u32>(),
            when in -62_135_596_800i64..253_402_300_799,
            name in "[a-zA-Z0-9 _\\[\\]-]{0,20}",
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let header = ReplayHeader {
                counts: Counts { n300: n[0], n100: n[1], n50: n[2], ngeki: n[3], nkatu: n[4], nmiss: n[5] },
                score,
                mods: Mods::from_bits_retain(mods),
                played_at_unix: when,
                player_name: name,
                ..sample()
            };
            let osr = build_osr(&header, &data).unwrap();
            let (back, back_data) = parse_osr(&osr).unwrap();
            prop_assert_eq!(back, header);
            prop_assert_eq!(back_data, &data[..]);
        }
    }
}
