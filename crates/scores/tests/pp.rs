//! Our star rating and pp against rosu-pp-py's (`golden/pp_vectors.py`, whose output is
//! `golden/pp_vectors.json`): the Python package bundles the same rosu-pp (4.0.1) that
//! `peace_scores::pp` pins, built separately, so any difference is ours (how we convert,
//! pass mods or counts, or score stable plays).

use std::path::{Path, PathBuf};

use peace_scores::osu_file::OsuFile;
use peace_scores::pp::{Beatmap, HitCounts, Play, performance, stars};
use serde_json::Value;

/// The agreement asked of every number: relative, so it means the same for 0.5★ and 900pp.
const TOLERANCE: f64 = 1e-6;

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn map_bytes(name: &str) -> Vec<u8> {
    let path = tests_dir().join("maps").join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
}

fn field_u32(case: &Value, key: &str) -> u32 {
    case[key]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("{key} in {case}"))
}

fn field_f64(case: &Value, key: &str) -> f64 {
    case[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {case}"))
}

fn assert_close(what: &str, ours: f64, theirs: f64, case: &Value) {
    let scale = ours.abs().max(theirs.abs()).max(1e-12);
    assert!(
        (ours - theirs).abs() / scale <= TOLERANCE,
        "{what}: ours {ours}, rosu-pp-py {theirs}, case {case}"
    );
}

#[test]
fn matches_rosu_pp_py() {
    let text = std::fs::read_to_string(tests_dir().join("golden").join("pp_vectors.json"))
        .expect("golden/pp_vectors.json exists");
    let golden: Value = serde_json::from_str(&text).expect("the golden file is JSON");
    let cases = golden["cases"].as_array().expect("a list of cases");
    assert!(
        cases.len() >= 40,
        "the golden file holds {} cases",
        cases.len()
    );
    let mut inexact = 0;

    for case in cases {
        let name = case["map"].as_str().expect("a map name");
        let map = Beatmap::parse(&map_bytes(name)).expect("the test map parses");
        let mode = u8::try_from(field_u32(case, "mode")).expect("a mode");
        let mods = field_u32(case, "mods");
        let play = Play {
            mode,
            mods,
            counts: HitCounts {
                n300: field_u32(case, "n300"),
                n100: field_u32(case, "n100"),
                n50: field_u32(case, "n50"),
                ngeki: field_u32(case, "ngeki"),
                nkatu: field_u32(case, "nkatu"),
                nmiss: field_u32(case, "nmiss"),
            },
            max_combo: field_u32(case, "combo"),
            legacy_total_score: case["legacy_total_score"]
                .as_u64()
                .map(|n| u32::try_from(n).expect("a u32 score")),
            passed: true,
        };
        let perf = performance(&map, &play).expect("the play calculates");
        if perf.stars != field_f64(case, "stars") || perf.pp != field_f64(case, "pp") {
            inexact += 1;
        }
        assert_close("stars", perf.stars, field_f64(case, "stars"), case);
        assert_close("pp", perf.pp, field_f64(case, "pp"), case);
        assert_eq!(
            perf.max_combo,
            field_u32(case, "max_combo"),
            "max combo, case {case}"
        );

        let alone = stars(&map, mode, mods).expect("stars calculate");
        assert_eq!(alone.stars, perf.stars, "stars alone, case {case}");
        assert_eq!(
            alone.max_combo, perf.max_combo,
            "max combo alone, case {case}"
        );

        let failed = performance(
            &map,
            &Play {
                passed: false,
                ..play
            },
        )
        .expect("calculates");
        assert_eq!(failed.pp, 0.0, "a failed play earns nothing");
        assert_eq!(failed.stars, perf.stars);
    }
    // Not asserted (a release-built wheel may round differently from a debug test build),
    // only shown with `--nocapture`: how many cases were not bit-for-bit equal.
    eprintln!("{inexact} of {} cases differ in the last bits", cases.len());
}

#[test]
fn golden_cases_cover_every_mode_and_convert() {
    let text = std::fs::read_to_string(tests_dir().join("golden").join("pp_vectors.json"))
        .expect("golden/pp_vectors.json exists");
    let golden: Value = serde_json::from_str(&text).expect("the golden file is JSON");
    let cases = golden["cases"].as_array().expect("a list of cases");
    let has = |map: &str, mode: u64| cases.iter().any(|c| c["map"] == map && c["mode"] == mode);
    for mode in 0..=3 {
        assert!(has("std.osu", mode), "the osu! map in mode {mode}");
    }
    assert!(has("taiko.osu", 1) && has("catch.osu", 2) && has("mania.osu", 3));
}

#[test]
fn test_maps_read_as_osu_files() {
    for (name, mode, version) in [
        ("std.osu", 0, "Circles Sliders Spinner"),
        ("taiko.osu", 1, "Oni"),
        ("catch.osu", 2, "Platter"),
        ("mania.osu", 3, "4K Hard"),
    ] {
        let bytes = map_bytes(name);
        let file = OsuFile::parse(&bytes).expect("the test map parses");
        assert_eq!(file.mode, mode, "{name}");
        assert_eq!(file.version, version, "{name}");
        assert_eq!(file.artist, "Peace Test Vectors");
        assert_eq!(file.creator, "peace");
        assert_eq!(file.beatmap_id, None);
        assert_eq!(file.beatmap_set_id, None);
        assert_eq!(
            file.file_name(),
            format!(
                "Peace Test Vectors - {} (peace) [{version}].osu",
                file.title
            )
        );
        let map = Beatmap::parse(&bytes).expect("the test map calculates");
        assert_eq!(map.mode(), mode);
    }
}
