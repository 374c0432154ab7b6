//! Letter grades and accuracy, per osu! stable's rules for each mode.
//!
//! Sources: the osu! wiki's Gameplay/Grade page and the rank calculation in the
//! `osu-classes` TypeScript library; accuracy formulas as bancho.py computes them.

use std::fmt;
use std::str::FromStr;

use crate::mode::Mode;
use crate::mods::Mods;

/// A letter grade, best first. The letters are the client's own: `XH` is a silver SS,
/// `SH` a silver S.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    /// SS with Hidden or Flashlight (silver).
    XH,
    /// SS.
    X,
    /// S with Hidden or Flashlight (silver).
    SH,
    /// S.
    S,
    /// A.
    A,
    /// B.
    B,
    /// C.
    C,
    /// D.
    D,
    /// Failed.
    F,
}

/// A grade letter the client does not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a grade letter")]
pub struct BadGrade(pub String);

impl Grade {
    /// The client's letters for the grade.
    pub fn letters(self) -> &'static str {
        match self {
            Grade::XH => "XH",
            Grade::X => "X",
            Grade::SH => "SH",
            Grade::S => "S",
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
            Grade::F => "F",
        }
    }

    /// Whether this is one of the silver grades (XH, SH).
    pub fn is_silver(self) -> bool {
        matches!(self, Grade::XH | Grade::SH)
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letters())
    }
}

impl FromStr for Grade {
    type Err = BadGrade;

    /// Exact, upper-case letters only: the client always sends them so, and the online
    /// checksum hashes the letters as sent.
    fn from_str(s: &str) -> Result<Grade, BadGrade> {
        Ok(match s {
            "XH" => Grade::XH,
            "X" => Grade::X,
            "SH" => Grade::SH,
            "S" => Grade::S,
            "A" => Grade::A,
            "B" => Grade::B,
            "C" => Grade::C,
            "D" => Grade::D,
            "F" => Grade::F,
            _ => return Err(BadGrade(s.to_owned())),
        })
    }
}

/// A play's hit counts, named as the client names them whatever the mode.
///
/// What each means depends on the mode: in taiko n300/n100 are GREAT/GOOD and geki/katu the
/// big-note bonuses; in catch n300/n100/n50 are fruits/drops/droplets and nkatu the missed
/// droplets; in mania ngeki is the rainbow 300 (MAX) and nkatu the 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// 300s (GREAT, fruits).
    pub n300: u32,
    /// 100s (GOOD, drops).
    pub n100: u32,
    /// 50s (droplets).
    pub n50: u32,
    /// Geki (mania MAX).
    pub ngeki: u32,
    /// Katu (mania 200, catch missed droplets).
    pub nkatu: u32,
    /// Misses.
    pub nmiss: u32,
}

/// The accuracy of a play as a fraction in `0.0..=1.0` (multiply by 100 for the percent the
/// client shows and the charts send). A play with no judged objects has accuracy 0.
///
/// - osu!: `(300·n300 + 100·n100 + 50·n50) / (300·(n300 + n100 + n50 + nmiss))`
/// - taiko: `(n300 + n100/2) / (n300 + n100 + nmiss)`
/// - catch: `(n300 + n100 + n50) / (n300 + n100 + n50 + nkatu + nmiss)`
/// - mania: `(300·(n300 + ngeki) + 200·nkatu + 100·n100 + 50·n50) / (300·all six)`
///   (ScoreV2's 305-point MAX is not modelled: ScoreV2 plays are unranked.)
pub fn accuracy(mode: Mode, c: &Counts) -> f64 {
    let [n300, n100, n50, ngeki, nkatu, nmiss] =
        [c.n300, c.n100, c.n50, c.ngeki, c.nkatu, c.nmiss].map(f64::from);
    let (points, max) = match mode {
        Mode::Osu => (
            300.0 * n300 + 100.0 * n100 + 50.0 * n50,
            300.0 * (n300 + n100 + n50 + nmiss),
        ),
        Mode::Taiko => (n300 + 0.5 * n100, n300 + n100 + nmiss),
        Mode::Catch => (n300 + n100 + n50, n300 + n100 + n50 + nkatu + nmiss),
        Mode::Mania => (
            300.0 * (n300 + ngeki) + 200.0 * nkatu + 100.0 * n100 + 50.0 * n50,
            300.0 * (n300 + n100 + n50 + ngeki + nkatu + nmiss),
        ),
    };
    if max > 0.0 { points / max } else { 0.0 }
}

/// The grade of a passed play. (A failed play is always [`Grade::F`]; see [`grade_of_play`].)
///
/// - osu! and taiko go by the share of 300s: SS all 300s; S over 90% 300s, at most 1% 50s
///   and no miss; A over 80% with no miss or over 90%; B over 70% with no miss or over
///   80%; C over 60%; else D.
/// - catch goes by accuracy: SS 100%, S over 98%, A over 94%, B over 90%, C over 85%.
/// - mania goes by accuracy: SS 100%, S over 95%, A over 90%, B over 80%, C over 70%.
///
/// SS and S turn silver (XH, SH) with Hidden, Flashlight or Fade In.
pub fn grade(mode: Mode, c: &Counts, mods: Mods) -> Grade {
    let silver = mods.intersects(Mods::HIDDEN | Mods::FLASHLIGHT | Mods::FADE_IN);
    let (ss, s) = if silver {
        (Grade::XH, Grade::SH)
    } else {
        (Grade::X, Grade::S)
    };
    match mode {
        Mode::Osu | Mode::Taiko => {
            // Summed in u64: four u32 counts from the network could overflow a u32.
            let [n300, n100, n50, nmiss] = [c.n300, c.n100, c.n50, c.nmiss].map(u64::from);
            let total = match mode {
                Mode::Taiko => n300 + n100 + nmiss,
                _ => n300 + n100 + n50 + nmiss,
            };
            if total == 0 {
                return Grade::D;
            }
            // The client divides in single precision and compares with double constants;
            // rounding 0.6 and 0.8 to f32 lands just above them, so an exact 80% of 300s is
            // "over 80%". osu-classes reproduces this the same way (Math.fround).
            let ratio300 = f64::from(c.n300 as f32 / total as f32);
            let ratio50 = f64::from(c.n50 as f32 / total as f32);
            let no_miss = c.nmiss == 0;
            if n300 == total {
                ss
            } else if ratio300 > 0.9 && ratio50 <= 0.01 && no_miss {
                s
            } else if (ratio300 > 0.8 && no_miss) || ratio300 > 0.9 {
                Grade::A
            } else if (ratio300 > 0.7 && no_miss) || ratio300 > 0.8 {
                Grade::B
            } else if ratio300 > 0.6 {
                Grade::C
            } else {
                Grade::D
            }
        }
        Mode::Catch | Mode::Mania => {
            let acc = accuracy(mode, c);
            let [s_min, a_min, b_min, c_min] = match mode {
                Mode::Catch => [0.98, 0.94, 0.90, 0.85],
                _ => [0.95, 0.90, 0.80, 0.70],
            };
            if acc >= 1.0 {
                ss
            } else if acc > s_min {
                s
            } else if acc > a_min {
                Grade::A
            } else if acc > b_min {
                Grade::B
            } else if acc > c_min {
                Grade::C
            } else {
                Grade::D
            }
        }
    }
}

/// The grade of any play: F when it failed, else [`grade`].
pub fn grade_of_play(mode: Mode, c: &Counts, mods: Mods, passed: bool) -> Grade {
    if passed {
        grade(mode, c, mods)
    } else {
        Grade::F
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counts(n300: u32, n100: u32, n50: u32, nmiss: u32) -> Counts {
        Counts {
            n300,
            n100,
            n50,
            nmiss,
            ..Counts::default()
        }
    }

    #[test]
    fn letters_round_trip() {
        for g in [
            Grade::XH,
            Grade::X,
            Grade::SH,
            Grade::S,
            Grade::A,
            Grade::B,
            Grade::C,
            Grade::D,
            Grade::F,
        ] {
            assert_eq!(g.letters().parse::<Grade>(), Ok(g));
            assert_eq!(g.to_string(), g.letters());
        }
        assert!("SS".parse::<Grade>().is_err());
        assert!("x".parse::<Grade>().is_err());
        assert!("N".parse::<Grade>().is_err());
    }

    #[test]
    fn accuracy_per_mode() {
        let c = counts(90, 8, 2, 0);
        assert!((accuracy(Mode::Osu, &c) - (27000.0 + 800.0 + 100.0) / 30000.0).abs() < 1e-12);
        let t = counts(90, 10, 0, 0);
        assert!((accuracy(Mode::Taiko, &t) - 0.95).abs() < 1e-12);
        let k = Counts {
            n300: 90,
            n100: 5,
            n50: 3,
            nkatu: 2,
            nmiss: 0,
            ngeki: 0,
        };
        assert!((accuracy(Mode::Catch, &k) - 0.98).abs() < 1e-12);
        let m = Counts {
            ngeki: 50,
            n300: 40,
            nkatu: 10,
            n100: 0,
            n50: 0,
            nmiss: 0,
        };
        assert!((accuracy(Mode::Mania, &m) - (27000.0 + 2000.0) / 30000.0).abs() < 1e-12);
        assert_eq!(accuracy(Mode::Osu, &Counts::default()), 0.0);
        assert_eq!(accuracy(Mode::Mania, &counts(10, 0, 0, 0)), 1.0);
    }

    #[test]
    fn standard_grades() {
        let none = Mods::empty();
        assert_eq!(grade(Mode::Osu, &counts(100, 0, 0, 0), none), Grade::X);
        assert_eq!(
            grade(Mode::Osu, &counts(100, 0, 0, 0), Mods::HIDDEN),
            Grade::XH
        );
        assert_eq!(
            grade(Mode::Osu, &counts(100, 0, 0, 0), Mods::FLASHLIGHT),
            Grade::XH
        );
        assert_eq!(grade(Mode::Osu, &counts(95, 5, 0, 0), none), Grade::S);
        assert_eq!(
            grade(Mode::Osu, &counts(95, 5, 0, 0), Mods::HIDDEN),
            Grade::SH
        );
        // Over 1% 50s takes S away.
        assert_eq!(grade(Mode::Osu, &counts(95, 3, 2, 0), none), Grade::A);
        // A miss takes S away but over 90% 300s is still A.
        assert_eq!(grade(Mode::Osu, &counts(99, 0, 0, 1), none), Grade::A);
        assert_eq!(grade(Mode::Osu, &counts(85, 15, 0, 0), none), Grade::A);
        assert_eq!(grade(Mode::Osu, &counts(85, 14, 0, 1), none), Grade::B);
        assert_eq!(grade(Mode::Osu, &counts(75, 25, 0, 0), none), Grade::B);
        assert_eq!(grade(Mode::Osu, &counts(75, 24, 0, 1), none), Grade::C);
        assert_eq!(grade(Mode::Osu, &counts(50, 50, 0, 0), none), Grade::D);
        assert_eq!(grade(Mode::Osu, &Counts::default(), none), Grade::D);
    }

    #[test]
    fn single_precision_boundaries() {
        // Exactly 80% 300s with no miss: 0.8f32 is just above 0.8, so A (as osu-classes).
        assert_eq!(
            grade(Mode::Osu, &counts(8, 2, 0, 0), Mods::empty()),
            Grade::A
        );
        // Exactly 90% with 10% 100s: 0.9f32 is just below 0.9, so not S.
        assert_eq!(
            grade(Mode::Osu, &counts(9, 1, 0, 0), Mods::empty()),
            Grade::A
        );
        // Exactly 70%: 0.7f32 is just below 0.7, so not B.
        assert_eq!(
            grade(Mode::Osu, &counts(7, 3, 0, 0), Mods::empty()),
            Grade::C
        );
    }

    #[test]
    fn taiko_grades() {
        assert_eq!(
            grade(Mode::Taiko, &counts(100, 0, 0, 0), Mods::empty()),
            Grade::X
        );
        assert_eq!(
            grade(Mode::Taiko, &counts(95, 5, 0, 0), Mods::empty()),
            Grade::S
        );
        assert_eq!(
            grade(Mode::Taiko, &counts(95, 4, 0, 1), Mods::empty()),
            Grade::A
        );
    }

    #[test]
    fn catch_and_mania_go_by_accuracy() {
        let s_with_misses = Counts {
            n300: 990,
            nmiss: 10,
            ..Counts::default()
        };
        assert_eq!(grade(Mode::Catch, &s_with_misses, Mods::empty()), Grade::S);
        assert_eq!(
            grade(Mode::Catch, &counts(98, 0, 0, 2), Mods::empty()),
            Grade::A
        );
        assert_eq!(
            grade(Mode::Catch, &counts(10, 0, 0, 0), Mods::HIDDEN),
            Grade::XH
        );
        assert_eq!(
            grade(Mode::Catch, &counts(85, 0, 0, 15), Mods::empty()),
            Grade::D
        );
        assert_eq!(
            grade(Mode::Mania, &counts(96, 0, 0, 4), Mods::empty()),
            Grade::S
        );
        assert_eq!(
            grade(Mode::Mania, &counts(96, 0, 0, 4), Mods::FADE_IN),
            Grade::SH
        );
        assert_eq!(
            grade(Mode::Mania, &counts(95, 0, 0, 5), Mods::empty()),
            Grade::A
        );
        assert_eq!(
            grade(Mode::Mania, &counts(71, 0, 0, 29), Mods::empty()),
            Grade::C
        );
        assert_eq!(
            grade(Mode::Mania, &counts(70, 0, 0, 30), Mods::empty()),
            Grade::D
        );
    }

    #[test]
    fn failed_is_f() {
        assert_eq!(
            grade_of_play(Mode::Osu, &counts(100, 0, 0, 0), Mods::empty(), false),
            Grade::F
        );
        assert_eq!(
            grade_of_play(Mode::Osu, &counts(100, 0, 0, 0), Mods::empty(), true),
            Grade::X
        );
    }

    proptest! {
        #[test]
        fn accuracy_is_a_fraction_and_grade_never_panics(
            n in proptest::array::uniform6(0u32..=u32::MAX), mode in 0i64..4, mods in any::<u32>()
        ) {
            let c = Counts { n300: n[0], n100: n[1], n50: n[2], ngeki: n[3], nkatu: n[4], nmiss: n[5] };
            let mode = Mode::from_number(mode).unwrap();
            let acc = accuracy(mode, &c);
            prop_assert!((0.0..=1.0).contains(&acc));
            let _ = grade(mode, &c, Mods::from_wire(mods));
        }
    }
}
