//! The `.osr` builder against a committed file that an independent parser reads:
//! `tests/golden/check_osr.py` opens `tests/golden/sample.osr` with the PyPI `osrparse`.
//!
//! `replay_data.lzma` is a few replay frames compressed by Python's `lzma` (FORMAT_ALONE,
//! as the client uploads them). To rewrite `sample.osr` after a deliberate format change:
//! `UPDATE_GOLDEN=1 cargo test -p peace-scores --test osr_golden`.

use peace_scores::grade::Counts;
use peace_scores::mode::Mode;
use peace_scores::mods::Mods;
use peace_scores::osr::{ReplayHeader, build_osr, parse_osr};

const REPLAY_DATA: &[u8] = include_bytes!("golden/replay_data.lzma");

fn header() -> ReplayHeader {
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
        // 2023-11-04T19:35:12Z
        played_at_unix: 1_699_126_512,
        online_score_id: 42,
    }
}

#[test]
fn the_built_file_matches_the_golden_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sample.osr");
    let built = build_osr(&header(), REPLAY_DATA).unwrap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &built).unwrap();
    }
    let golden = std::fs::read(path).unwrap();
    assert_eq!(
        built, golden,
        "run with UPDATE_GOLDEN=1 after a deliberate change"
    );
    let (back, data) = parse_osr(&golden).unwrap();
    assert_eq!(back, header());
    assert_eq!(data, REPLAY_DATA);
}
