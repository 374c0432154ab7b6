//! The decrypted `score` field of a stable score submission
//! (`/web/osu-submit-modular-selector.php`), and the online checksum servers recompute.
//!
//! The text is 18 colon-separated fields, in this order (checked against bancho.py's
//! `Score.from_submission`, which indexes the same 18):
//!
//! | # | field | example |
//! |---|---|---|
//! | 0 | beatmap md5 | `1cf5b2c2edfafd055536d2cefcb89c0e` |
//! | 1 | player name, with one trailing space if the player is a supporter | `peppy ` |
//! | 2 | online checksum (md5 hex, see [`ScoreText::expected_online_checksum`]) | |
//! | 3–8 | n300, n100, n50, ngeki, nkatu, nmiss | `1092` |
//! | 9 | total score | `48211634` |
//! | 10 | max combo | `1503` |
//! | 11 | perfect (full combo) | `True` / `False` |
//! | 12 | grade letters | `A`, `XH` |
//! | 13 | mods | `72` |
//! | 14 | passed | `True` / `False` |
//! | 15 | game mode, 0..=3 | `0` |
//! | 16 | client time, `yyMMddHHmmss` | `231104193512` |
//! | 17 | osu! version date, then one space per client flag | `20231030  ` |

use md5::{Digest, Md5};

use crate::grade::{Counts, Grade};
use crate::mode::Mode;
use crate::mods::Mods;

/// The number of fields the stable client sends.
pub const FIELD_COUNT: usize = 18;

/// The longest score text accepted; real ones are under 200 bytes.
pub const MAX_TEXT_LEN: usize = 4096;

/// Why a score text could not be parsed. Each names the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Longer than [`MAX_TEXT_LEN`].
    #[error("the score text is {0} bytes, over the limit")]
    TooLong(usize),
    /// Fewer than [`FIELD_COUNT`] fields.
    #[error("the score text has {found} fields, expected {FIELD_COUNT}")]
    FieldCount {
        /// How many colon-separated fields there were.
        found: usize,
    },
    /// The beatmap md5 is not 32 hex digits.
    #[error("the beatmap md5 {0:?} is not 32 hex digits")]
    BadBeatmapMd5(String),
    /// A number field is not a non-negative integer in range.
    #[error("{field} is not a number in range: {value:?}")]
    BadNumber {
        /// Which field.
        field: &'static str,
        /// What was there.
        value: String,
    },
    /// A boolean field is neither `True` nor `False`.
    #[error("{field} is not True or False: {value:?}")]
    BadBool {
        /// Which field.
        field: &'static str,
        /// What was there.
        value: String,
    },
    /// The grade is not one of the client's letters.
    #[error("the grade {0:?} is not a grade letter")]
    BadGrade(String),
    /// The mode is not 0..=3.
    #[error("the game mode {0} is not 0..=3")]
    BadMode(i64),
    /// The client time is not 12 digits (`yyMMddHHmmss`).
    #[error("the client time {0:?} is not yyMMddHHmmss")]
    BadClientTime(String),
    /// The version is not 8 digits followed by spaces.
    #[error("the osu! version {0:?} is not a yyyyMMdd date")]
    BadVersion(String),
}

/// The parsed score text of one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreText {
    /// The played beatmap's md5, lower-case hex as sent.
    pub beatmap_md5: String,
    /// The player's name, without the supporter's trailing space.
    pub player_name: String,
    /// Whether the name arrived with the trailing space a supporter's client adds.
    pub supporter: bool,
    /// The online checksum the client computed.
    pub online_checksum: String,
    /// The hit counts.
    pub counts: Counts,
    /// The total score.
    pub score: u64,
    /// The longest combo.
    pub max_combo: u32,
    /// Whether the play was a full combo.
    pub perfect: bool,
    /// The grade the client gave.
    pub grade: Grade,
    /// The mods, every bit as sent (unknown bits too, so the checksum can be recomputed).
    pub mods: Mods,
    /// Whether the play passed.
    pub passed: bool,
    /// The game mode (vanilla: Relax/Autopilot are in the mods).
    pub mode: Mode,
    /// The client's local time of the play, `yyMMddHHmmss` as sent.
    pub client_time: String,
    /// The client's version date (`yyyyMMdd`) without the flag spaces.
    pub osu_version: String,
    /// How many spaces followed the version: the client's old anti-cheat flags, sent as a
    /// count of spaces. (bancho.py masks bit 4 out of this count before reading it as flags.)
    pub client_flags: u32,
}

fn number<T: std::str::FromStr>(field: &'static str, value: &str) -> Result<T, ParseError> {
    // `str::parse` would accept a leading '+'; the client never sends one.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadNumber {
            field,
            value: value.to_owned(),
        });
    }
    value.parse().map_err(|_| ParseError::BadNumber {
        field,
        value: value.to_owned(),
    })
}

fn boolean(field: &'static str, value: &str) -> Result<bool, ParseError> {
    // The client writes .NET's bool.ToString(): exactly "True" or "False".
    match value {
        "True" => Ok(true),
        "False" => Ok(false),
        _ => Err(ParseError::BadBool {
            field,
            value: value.to_owned(),
        }),
    }
}

fn python_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

impl ScoreText {
    /// Parses the decrypted score text. Never panics; every problem is its own error.
    ///
    /// Fields after the 18th are ignored, as bancho.py does, so a client that appends one
    /// still submits.
    pub fn parse(text: &str) -> Result<ScoreText, ParseError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(ParseError::TooLong(text.len()));
        }
        let f: Vec<&str> = text.split(':').collect();
        if f.len() < FIELD_COUNT {
            return Err(ParseError::FieldCount { found: f.len() });
        }

        let beatmap_md5 = f[0];
        if beatmap_md5.len() != 32 || !beatmap_md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseError::BadBeatmapMd5(beatmap_md5.to_owned()));
        }

        // A supporter's client appends one space to the name; names cannot end in a space.
        let (player_name, supporter) = match f[1].strip_suffix(' ') {
            Some(name) => (name, true),
            None => (f[1], false),
        };

        let counts = Counts {
            n300: number("n300", f[3])?,
            n100: number("n100", f[4])?,
            n50: number("n50", f[5])?,
            ngeki: number("ngeki", f[6])?,
            nkatu: number("nkatu", f[7])?,
            nmiss: number("nmiss", f[8])?,
        };

        let mode_number: i64 = f[15].parse().map_err(|_| ParseError::BadNumber {
            field: "mode",
            value: f[15].to_owned(),
        })?;
        let mode = Mode::from_number(mode_number).map_err(|_| ParseError::BadMode(mode_number))?;

        let client_time = f[16];
        if client_time.len() != 12 || !client_time.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadClientTime(client_time.to_owned()));
        }

        let version_field = f[17];
        let osu_version = version_field.trim_end_matches(' ');
        if osu_version.len() != 8 || !osu_version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadVersion(version_field.to_owned()));
        }
        // At most MAX_TEXT_LEN spaces, so the count always fits.
        let client_flags =
            u32::try_from(version_field.len() - osu_version.len()).unwrap_or(u32::MAX);

        Ok(ScoreText {
            beatmap_md5: beatmap_md5.to_owned(),
            player_name: player_name.to_owned(),
            supporter,
            online_checksum: f[2].to_owned(),
            counts,
            score: number("score", f[9])?,
            max_combo: number("max_combo", f[10])?,
            perfect: boolean("perfect", f[11])?,
            grade: f[12]
                .parse()
                .map_err(|_| ParseError::BadGrade(f[12].to_owned()))?,
            mods: Mods::from_bits_retain(number("mods", f[13])?),
            passed: boolean("passed", f[14])?,
            mode,
            client_time: client_time.to_owned(),
            osu_version: osu_version.to_owned(),
            client_flags,
        })
    }

    /// The text as the client would send it (before encryption): the inverse of
    /// [`ScoreText::parse`], for tests, benchmarks and load generators.
    pub fn to_wire(&self) -> String {
        let c = &self.counts;
        format!(
            "{}:{}{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}:{}{}",
            self.beatmap_md5,
            self.player_name,
            if self.supporter { " " } else { "" },
            self.online_checksum,
            c.n300,
            c.n100,
            c.n50,
            c.ngeki,
            c.nkatu,
            c.nmiss,
            self.score,
            self.max_combo,
            python_bool(self.perfect),
            self.grade,
            self.mods.bits(),
            python_bool(self.passed),
            self.mode.number(),
            self.client_time,
            self.osu_version,
            " ".repeat(self.client_flags.min(64) as usize),
        )
    }

    /// The online checksum the client should have sent, recomputed from this text and what
    /// the server knows: the md5 (lower-case hex) of a fixed template over the fields.
    ///
    /// - `player_name`: the name as the server knows it (without the supporter's space);
    /// - `osu_version`: the `osuver` form field (the version date);
    /// - `client_hash`: the decrypted `s` form field;
    /// - `storyboard_md5`: the `sbk` form field, or `""` when absent.
    ///
    /// The template, as bancho.py and other public servers recompute it, is
    /// `chickenmcnuggets{n300+n100}o15{n50}{ngeki}smustard{nkatu}{nmiss}uu{beatmap md5}`
    /// `{max combo}{perfect}{name}{score}{grade}{mods}Q{passed}{mode}{version}{client time}`
    /// `{client hash}{storyboard md5}`, with booleans as `True`/`False`.
    pub fn expected_online_checksum(
        &self,
        player_name: &str,
        osu_version: &str,
        client_hash: &str,
        storyboard_md5: &str,
    ) -> String {
        let c = &self.counts;
        let text = format!(
            "chickenmcnuggets{}o15{}{}smustard{}{}uu{}{}{}{}{}{}{}Q{}{}{}{}{}{}",
            u64::from(c.n300) + u64::from(c.n100),
            c.n50,
            c.ngeki,
            c.nkatu,
            c.nmiss,
            self.beatmap_md5,
            self.max_combo,
            python_bool(self.perfect),
            player_name,
            self.score,
            self.grade,
            self.mods.bits(),
            python_bool(self.passed),
            self.mode.number(),
            osu_version,
            self.client_time,
            client_hash,
            storyboard_md5,
        );
        hex::encode(Md5::digest(text.as_bytes()))
    }

    /// Whether the sent checksum matches [`ScoreText::expected_online_checksum`]
    /// (compared case-insensitively, since only the hex digits matter).
    pub fn online_checksum_matches(
        &self,
        player_name: &str,
        osu_version: &str,
        client_hash: &str,
        storyboard_md5: &str,
    ) -> bool {
        self.expected_online_checksum(player_name, osu_version, client_hash, storyboard_md5)
            .eq_ignore_ascii_case(&self.online_checksum)
    }
}

/// The free-function form of [`ScoreText::expected_online_checksum`].
pub fn expected_online_checksum(
    score: &ScoreText,
    player_name: &str,
    osu_version: &str,
    client_hash: &str,
    storyboard_md5: &str,
) -> String {
    score.expected_online_checksum(player_name, osu_version, client_hash, storyboard_md5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TEXT: &str = "1cf5b2c2edfafd055536d2cefcb89c0e:peppy :14acc0341491c23a0fecbe71f295b5c5:\
                        1092:23:1:221:17:2:48211634:1503:False:A:72:True:0:231104193512:20231030  ";

    #[test]
    fn parses_every_field() {
        let s = ScoreText::parse(TEXT).unwrap();
        assert_eq!(s.beatmap_md5, "1cf5b2c2edfafd055536d2cefcb89c0e");
        assert_eq!(s.player_name, "peppy");
        assert!(s.supporter);
        assert_eq!(s.online_checksum, "14acc0341491c23a0fecbe71f295b5c5");
        assert_eq!(
            s.counts,
            Counts {
                n300: 1092,
                n100: 23,
                n50: 1,
                ngeki: 221,
                nkatu: 17,
                nmiss: 2
            }
        );
        assert_eq!(s.score, 48_211_634);
        assert_eq!(s.max_combo, 1503);
        assert!(!s.perfect);
        assert_eq!(s.grade, Grade::A);
        assert_eq!(s.mods, Mods::HIDDEN | Mods::DOUBLE_TIME);
        assert!(s.passed);
        assert_eq!(s.mode, Mode::Osu);
        assert_eq!(s.client_time, "231104193512");
        assert_eq!(s.osu_version, "20231030");
        assert_eq!(s.client_flags, 2);
        assert_eq!(s.to_wire(), TEXT);
    }

    #[test]
    fn a_non_supporter_name_is_kept_whole() {
        let text = TEXT.replace(":peppy :", ":peppy:");
        let s = ScoreText::parse(&text).unwrap();
        assert_eq!(s.player_name, "peppy");
        assert!(!s.supporter);
    }

    #[test]
    fn extra_fields_are_ignored() {
        assert!(ScoreText::parse(&format!("{TEXT}:extra")).is_ok());
    }

    #[test]
    fn each_problem_has_its_own_error() {
        let with = |i: usize, v: &str| {
            let mut f: Vec<&str> = TEXT.split(':').collect();
            f[i] = v;
            ScoreText::parse(&f.join(":"))
        };
        assert_eq!(
            ScoreText::parse("a:b"),
            Err(ParseError::FieldCount { found: 2 })
        );
        assert!(matches!(with(0, "abc"), Err(ParseError::BadBeatmapMd5(_))));
        assert!(matches!(
            with(3, "-1"),
            Err(ParseError::BadNumber { field: "n300", .. })
        ));
        assert!(matches!(
            with(8, "+1"),
            Err(ParseError::BadNumber { field: "nmiss", .. })
        ));
        assert!(matches!(
            with(9, "x"),
            Err(ParseError::BadNumber { field: "score", .. })
        ));
        assert!(matches!(
            with(13, "99999999999"),
            Err(ParseError::BadNumber { field: "mods", .. })
        ));
        assert!(matches!(
            with(11, "true"),
            Err(ParseError::BadBool {
                field: "perfect",
                ..
            })
        ));
        assert!(matches!(
            with(14, "1"),
            Err(ParseError::BadBool {
                field: "passed",
                ..
            })
        ));
        assert!(matches!(with(12, "SS"), Err(ParseError::BadGrade(_))));
        assert_eq!(with(15, "4"), Err(ParseError::BadMode(4)));
        assert_eq!(with(15, "-1"), Err(ParseError::BadMode(-1)));
        assert!(matches!(
            with(16, "2311041935"),
            Err(ParseError::BadClientTime(_))
        ));
        assert!(matches!(
            with(17, "b20231030"),
            Err(ParseError::BadVersion(_))
        ));
        assert!(matches!(
            ScoreText::parse(&"a".repeat(MAX_TEXT_LEN + 1)),
            Err(ParseError::TooLong(_))
        ));
    }

    #[test]
    fn the_checksum_is_md5_of_the_template() {
        let s = ScoreText::parse(TEXT).unwrap();
        let hash = "9c2b0e6a1f5b4d0c8a7e6f5d4c3b2a19:00e0ab1c2d3e:abcdef:1234:5678:";
        let sb = "0e2c1c3b4a5968778695a4b3c2d1e0f9";
        // Spelled out by hand from the template, independent of the format! above.
        let template = format!(
            "chickenmcnuggets1115o151221smustard172uu1cf5b2c2edfafd055536d2cefcb89c0e1503False\
             peppy48211634A72QTrue020231030231104193512{hash}{sb}"
        );
        let by_hand = hex::encode(Md5::digest(template.as_bytes()));
        assert_eq!(
            s.expected_online_checksum("peppy", "20231030", hash, sb),
            by_hand
        );
        // The text's own checksum was made by tests/golden/make_vectors.py (Python hashlib).
        assert!(s.online_checksum_matches("peppy", "20231030", hash, sb));
        assert!(!s.online_checksum_matches("peppy ", "20231030", hash, sb));
        assert!(!s.online_checksum_matches("peppy", "20231030", hash, ""));
        assert_eq!(
            expected_online_checksum(&s, "peppy", "20231030", hash, sb),
            by_hand
        );
    }

    proptest! {
        #[test]
        fn random_text_never_panics(text in ".{0,300}") {
            let _ = ScoreText::parse(&text);
        }

        #[test]
        fn random_fields_never_panic(fields in proptest::collection::vec("[0-9a-zA-Z +-]{0,12}", 18..20)) {
            let _ = ScoreText::parse(&fields.join(":"));
        }

        #[test]
        fn wire_round_trips(
            n in proptest::array::uniform6(any::<u32>()),
            score in any::<u64>(),
            mods in any::<u32>(),
            flags in 0u32..8,
            supporter in any::<bool>(),
            mode in 0i64..4,
        ) {
            let s = ScoreText {
                beatmap_md5: "0123456789abcdef0123456789abcdef".into(),
                player_name: "some player".into(),
                supporter,
                online_checksum: "x".into(),
                counts: Counts { n300: n[0], n100: n[1], n50: n[2], ngeki: n[3], nkatu: n[4], nmiss: n[5] },
                score,
                max_combo: n[0],
                perfect: n[1] % 2 == 0,
                grade: Grade::SH,
                mods: Mods::from_bits_retain(mods),
                passed: n[2] % 2 == 0,
                mode: Mode::from_number(mode).unwrap(),
                client_time: "231104193512".into(),
                osu_version: "20231030".into(),
                client_flags: flags,
            };
            prop_assert_eq!(ScoreText::parse(&s.to_wire()).unwrap(), s);
        }
    }
}
