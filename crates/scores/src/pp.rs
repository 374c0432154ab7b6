//! Star rating and performance points for all four modes, with `rosu-pp` (a port of
//! osu!lazer's calculators, here set to score stable plays), and the player totals osu!
//! builds from the best scores.
//!
//! A [`Beatmap`] is parsed once from the `.osu` bytes and reused for every score on it.
//! A score of another mode than the map's is calculated on the map converted to that mode
//! (osu! maps convert to taiko, catch and mania; other maps convert to nothing).
//!
//! Failed plays earn no pp, as on osu!: [`performance`] gives them 0 pp (with the map's
//! stars and max combo still filled in), so the caller never ranks one by accident.
//!
//! Invariant: nothing here panics or runs unbounded on a hostile `.osu`: the file size is
//! capped, rosu-pp's own suspicion check (object counts, density, absurd sliders) runs
//! before any calculation, and the calculation runs under `catch_unwind` as a last guard
//! because it is third-party numeric code fed with untrusted files.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rosu_pp::model::mode::GameMode;

use crate::osu_file::{MAX_OSU_FILE_LEN, has_format_header};

/// Why star rating or pp could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PpError {
    #[error("the file is {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the file does not begin with `osu file format v`")]
    NotAnOsuFile,
    #[error("the file could not be decoded: {0}")]
    Decode(#[from] std::io::Error),
    #[error("the map is too suspicious to calculate: {0}")]
    TooSuspicious(String),
    #[error("mode {0} is not one of 0..=3")]
    UnknownMode(u8),
    #[error("a map of mode {from} cannot be played in mode {to}")]
    Conversion { from: u8, to: u8 },
    #[error("the calculator panicked on this map")]
    Panicked,
}

/// A parsed `.osu` file, ready for any number of calculations.
#[derive(Clone, Debug)]
pub struct Beatmap {
    map: rosu_pp::Beatmap,
}

impl Beatmap {
    /// Parses a `.osu` file and checks it is sane enough to calculate.
    pub fn parse(bytes: &[u8]) -> Result<Beatmap, PpError> {
        if bytes.len() > MAX_OSU_FILE_LEN {
            return Err(PpError::TooLarge {
                len: bytes.len(),
                max: MAX_OSU_FILE_LEN,
            });
        }
        if !has_format_header(bytes) {
            return Err(PpError::NotAnOsuFile);
        }
        let map = guarded(|| rosu_pp::Beatmap::from_bytes(bytes))??;
        map.check_suspicion()
            .map_err(|sus| PpError::TooSuspicious(format!("{sus:?}")))?;
        Ok(Beatmap { map })
    }

    /// The mode the map was made for: 0 osu!, 1 taiko, 2 catch, 3 mania.
    pub fn mode(&self) -> u8 {
        mode_number(self.map.mode)
    }

    /// The number of hit objects in the file, before any conversion.
    pub fn object_count(&self) -> usize {
        self.map.hit_objects.len()
    }
}

/// The hit counts of a play, named as the stable client sends them. For catch, `n300` are
/// fruits, `n100` droplets, `n50` tiny droplets and `nkatu` missed tiny droplets; for mania
/// `ngeki` are MAX (320) and `nkatu` 200s; taiko ignores `n50`, `ngeki` and `nkatu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HitCounts {
    pub n300: u32,
    pub n100: u32,
    pub n50: u32,
    pub ngeki: u32,
    pub nkatu: u32,
    pub nmiss: u32,
}

/// One stable play to calculate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Play {
    /// The mode it was played in (0..=3), which may differ from the map's (a convert).
    pub mode: u8,
    /// The stable mod bits (`NoFail = 1`, `Easy = 2`, …, `DoubleTime = 64`, …).
    pub mods: u32,
    pub counts: HitCounts,
    /// The play's max combo.
    pub max_combo: u32,
    /// The score the client reports; the osu! calculator uses it to estimate slider breaks
    /// of stable plays, which carry no slider-tick counts. Other modes ignore it.
    pub legacy_total_score: Option<u32>,
    /// Whether the play passed. Failed plays get 0 pp.
    pub passed: bool,
}

/// What a map with some mods is worth in a mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stars {
    pub stars: f64,
    /// The map's max combo in that mode with those mods.
    pub max_combo: u32,
}

/// What a play is worth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Performance {
    pub pp: f64,
    pub stars: f64,
    /// The map's max combo in the play's mode with its mods (not the play's combo).
    pub max_combo: u32,
}

/// The star rating of a map in a mode with some stable mods, converting it when the mode
/// is not the map's own.
pub fn stars(map: &Beatmap, mode: u8, mods: u32) -> Result<Stars, PpError> {
    let attrs = difficulty(map, mode, mods)?;
    Ok(Stars {
        stars: attrs.stars(),
        max_combo: attrs.max_combo(),
    })
}

/// The pp of one stable play (0 if it failed), with the map's stars and max combo.
pub fn performance(map: &Beatmap, play: &Play) -> Result<Performance, PpError> {
    let attrs = difficulty(map, play.mode, play.mods)?;
    let stars = attrs.stars();
    let max_combo = attrs.max_combo();
    if !play.passed {
        return Ok(Performance {
            pp: 0.0,
            stars,
            max_combo,
        });
    }
    let HitCounts {
        n300,
        n100,
        n50,
        ngeki,
        nkatu,
        nmiss,
    } = play.counts;
    // The settings go in as a whole `Difficulty`, not through `.mods()`/`.lazer(false)`:
    // rosu-pp 4.0.1's any-mode `Performance::lazer` ignores taiko, which would then score a
    // stable taiko play as a lazer one (a fifth of the Hidden bonus).
    let mut calc = rosu_pp::Performance::new(attrs)
        .difficulty(stable_difficulty(play.mods))
        .n300(n300)
        .n100(n100)
        .n50(n50)
        .n_geki(ngeki)
        .n_katu(nkatu)
        .misses(nmiss)
        .combo(play.max_combo);
    if let Some(score) = play.legacy_total_score {
        calc = calc.legacy_total_score(score);
    }
    let pp = guarded(move || calc.calculate())?.pp();
    Ok(Performance {
        pp,
        stars,
        max_combo,
    })
}

/// What a full-combo play of the map in `mode` with `mods` is worth at `accuracy` (in
/// percent, 0..=100) with no misses: the figures players ask the bot for (`!with HDDT`).
pub fn performance_at_accuracy(
    map: &Beatmap,
    mode: u8,
    mods: u32,
    accuracy: f64,
) -> Result<Performance, PpError> {
    let attrs = difficulty(map, mode, mods)?;
    let stars = attrs.stars();
    let max_combo = attrs.max_combo();
    let calc = rosu_pp::Performance::new(attrs)
        .difficulty(stable_difficulty(mods))
        .accuracy(accuracy.clamp(0.0, 100.0))
        .misses(0);
    let pp = guarded(move || calc.calculate())?.pp();
    Ok(Performance {
        pp,
        stars,
        max_combo,
    })
}

/// The difficulty attributes of the map converted to `mode`, for stable (`lazer(false)`).
fn difficulty(
    map: &Beatmap,
    mode: u8,
    mods: u32,
) -> Result<rosu_pp::any::DifficultyAttributes, PpError> {
    let target = game_mode(mode)?;
    let game_mods = rosu_pp::GameMods::from(mods);
    let converted = map
        .map
        .convert_ref(target, &game_mods)
        .map_err(|_| PpError::Conversion {
            from: map.mode(),
            to: mode,
        })?;
    let calc = stable_difficulty(mods);
    // A convert is a new map: the suspicion check that passed on the original may not hold.
    guarded(|| calc.checked_calculate(&converted))?
        .map_err(|sus| PpError::TooSuspicious(format!("{sus:?}")))
}

/// The calculator settings for a stable play: its mod bits, scored as osu!stable scores
/// (rosu-pp defaults to lazer, whose accuracy counts slider heads and whose taiko Hidden
/// bonus is smaller).
fn stable_difficulty(mods: u32) -> rosu_pp::Difficulty {
    rosu_pp::Difficulty::new().mods(mods).lazer(false)
}

fn game_mode(mode: u8) -> Result<GameMode, PpError> {
    match mode {
        0 => Ok(GameMode::Osu),
        1 => Ok(GameMode::Taiko),
        2 => Ok(GameMode::Catch),
        3 => Ok(GameMode::Mania),
        other => Err(PpError::UnknownMode(other)),
    }
}

fn mode_number(mode: GameMode) -> u8 {
    match mode {
        GameMode::Osu => 0,
        GameMode::Taiko => 1,
        GameMode::Catch => 2,
        GameMode::Mania => 3,
    }
}

/// Runs third-party calculation code, turning a panic into an error. The closure only
/// reads the map, so nothing half-updated can be observed after an unwind.
fn guarded<T>(calc: impl FnOnce() -> T) -> Result<T, PpError> {
    catch_unwind(AssertUnwindSafe(calc)).map_err(|_| PpError::Panicked)
}

/// How many of a player's best scores count towards their totals.
pub const COUNTED_SCORES: usize = 1_000;

/// A player's totals as osu! shows them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Totals {
    pub pp: f64,
    /// In percent, 0..=100.
    pub accuracy: f64,
}

/// The totals osu! computes today from a player's best score on each beatmap, given as
/// `(pp, accuracy in percent 0..=100)` sorted by pp, highest first (the caller's query
/// orders them; only the first [`COUNTED_SCORES`] are read).
///
/// With `n` the number of scores counted (at most 1,000), the i-th (from 0) weighs
/// `0.95^i`:
/// - pp = Σ pp_i·0.95^i + (417 − 1/3)·(1 − 0.995^n), the second term being the bonus
///   for the number of maps played;
/// - accuracy = Σ acc_i·0.95^i / Σ 0.95^i, the weighted mean. osu! writes this with
///   accuracies as fractions as Σ acc_i·0.95^i · 100 / (20·(1 − 0.95^n)), which is the same,
///   since Σ_{i<n} 0.95^i = 20·(1 − 0.95^n): all-100% scores show 100%.
///
/// No scores give zero pp and zero accuracy.
pub fn player_totals(best_scores_sorted_desc: &[(f64, f64)]) -> Totals {
    let counted = &best_scores_sorted_desc[..best_scores_sorted_desc.len().min(COUNTED_SCORES)];
    debug_assert!(
        counted.windows(2).all(|w| w[0].0 >= w[1].0),
        "best scores must be sorted by pp, highest first"
    );
    if counted.is_empty() {
        return Totals {
            pp: 0.0,
            accuracy: 0.0,
        };
    }
    let mut weight = 1.0;
    let mut pp = 0.0;
    let mut accuracy = 0.0;
    for &(score_pp, score_acc) in counted {
        pp += score_pp * weight;
        accuracy += score_acc * weight;
        weight *= 0.95;
    }
    let n = i32::try_from(counted.len()).unwrap_or(i32::MAX);
    let bonus = (417.0 - 1.0 / 3.0) * (1.0 - 0.995_f64.powi(n));
    let weight_sum = 20.0 * (1.0 - 0.95_f64.powi(n));
    Totals {
        pp: pp + bonus,
        accuracy: accuracy / weight_sum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn pp_rises_with_accuracy_and_with_harder_mods() {
        let map = Beatmap::parse(include_bytes!("../tests/maps/std.osu")).expect("the test map");
        let at = |mods: u32, acc: f64| {
            performance_at_accuracy(&map, 0, mods, acc)
                .expect("calculable")
                .pp
        };
        assert!(at(0, 95.0) < at(0, 98.0) && at(0, 99.0) < at(0, 100.0));
        // HDDT (8 + 64) is worth more than nothing.
        assert!(at(72, 100.0) > at(0, 100.0));
        assert!(performance_at_accuracy(&map, 9, 0, 100.0).is_err());
    }

    #[test]
    fn totals_of_nothing_are_zero() {
        assert_eq!(
            player_totals(&[]),
            Totals {
                pp: 0.0,
                accuracy: 0.0
            }
        );
    }

    #[test]
    fn totals_of_one_score() {
        let totals = player_totals(&[(100.0, 98.5)]);
        assert!(close(totals.pp, 100.0 + (417.0 - 1.0 / 3.0) * 0.005));
        assert!(close(totals.accuracy, 98.5));
    }

    #[test]
    fn totals_of_a_few_scores_weigh_each_lower() {
        let totals = player_totals(&[(300.0, 100.0), (200.0, 90.0), (100.0, 80.0)]);
        let pp =
            300.0 + 200.0 * 0.95 + 100.0 * 0.9025 + (417.0 - 1.0 / 3.0) * (1.0 - 0.995_f64.powi(3));
        let acc = (100.0 + 90.0 * 0.95 + 80.0 * 0.9025) / (1.0 + 0.95 + 0.9025);
        assert!(close(totals.pp, pp), "{} vs {pp}", totals.pp);
        assert!(close(totals.accuracy, acc), "{} vs {acc}", totals.accuracy);
    }

    #[test]
    fn all_perfect_scores_show_a_hundred_percent() {
        for n in [1, 2, 50, 999, 1000, 5000] {
            let scores = vec![(10.0, 100.0); n];
            assert!(close(player_totals(&scores).accuracy, 100.0), "n = {n}");
        }
    }

    #[test]
    fn only_the_first_thousand_count() {
        let mut scores: Vec<(f64, f64)> =
            (0..1500).map(|i| (2000.0 - f64::from(i), 95.0)).collect();
        let capped = player_totals(&scores[..COUNTED_SCORES]);
        let all = player_totals(&scores);
        assert_eq!(capped, all);
        // The bonus is at its cap of (417 - 1/3) * (1 - 0.995^1000), nearly 414 pp.
        scores.truncate(1);
        let bonus_one = player_totals(&scores).pp - 2000.0;
        assert!(close(bonus_one, (417.0 - 1.0 / 3.0) * 0.005));
        let weighted: f64 = (0..1000)
            .map(|i| (2000.0 - f64::from(i)) * 0.95_f64.powi(i))
            .sum();
        let bonus_cap = (417.0 - 1.0 / 3.0) * (1.0 - 0.995_f64.powi(1000));
        assert!(close(all.pp, weighted + bonus_cap));
    }

    #[test]
    fn unknown_mode_is_refused() {
        let map =
            Beatmap::parse(b"osu file format v14\n[General]\nMode: 0\n[HitObjects]\n0,0,0,1,0\n")
                .expect("a tiny map parses");
        assert!(matches!(stars(&map, 4, 0), Err(PpError::UnknownMode(4))));
    }

    #[test]
    fn non_osu_maps_do_not_convert() {
        let map =
            Beatmap::parse(b"osu file format v14\n[General]\nMode: 1\n[HitObjects]\n0,0,0,1,0\n")
                .expect("a tiny map parses");
        assert_eq!(map.mode(), 1);
        assert!(matches!(
            stars(&map, 0, 0),
            Err(PpError::Conversion { from: 1, to: 0 })
        ));
    }

    #[test]
    fn empty_maps_calculate_to_zero_without_panicking() {
        let map = Beatmap::parse(b"osu file format v14\n").expect("an empty map parses");
        for mode in 0..=3 {
            let play = Play {
                mode,
                mods: 0,
                counts: HitCounts::default(),
                max_combo: 0,
                legacy_total_score: None,
                passed: true,
            };
            let perf = performance(&map, &play).expect("an empty map calculates");
            assert!(perf.pp.is_finite() && perf.stars.is_finite());
        }
    }

    #[test]
    fn failed_plays_earn_no_pp() {
        let map = Beatmap::parse(
            b"osu file format v14\n[HitObjects]\n0,0,1000,1,0\n100,100,1300,1,0\n200,200,1600,1,0\n",
        )
        .expect("a tiny map parses");
        let play = Play {
            mode: 0,
            mods: 0,
            counts: HitCounts {
                n300: 3,
                ..HitCounts::default()
            },
            max_combo: 3,
            legacy_total_score: None,
            passed: false,
        };
        let failed = performance(&map, &play).expect("calculates");
        assert_eq!(failed.pp, 0.0);
        assert!(failed.stars > 0.0);
        assert_eq!(failed.max_combo, 3);
        let passed = performance(
            &map,
            &Play {
                passed: true,
                ..play
            },
        )
        .expect("calculates");
        assert!(passed.pp > 0.0);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_random_maps(
            text in "[0-9,.:|\\-\\n BPLC]{0,400}",
            mode in 0u8..4,
            mods in proptest::prelude::any::<u32>(),
        ) {
            let input = format!("osu file format v14\n[Difficulty]\nSliderMultiplier:1.4\n[TimingPoints]\n0,500,4,1,0,100,1,0\n[HitObjects]\n{text}");
            if let Ok(map) = Beatmap::parse(input.as_bytes()) {
                let play = Play {
                    mode, mods, counts: HitCounts { n300: 1, ..HitCounts::default() },
                    max_combo: 1, legacy_total_score: Some(1000), passed: true,
                };
                let _ = performance(&map, &play);
            }
        }
    }
}
