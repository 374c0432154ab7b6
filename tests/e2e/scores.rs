//! The stable client's score pipeline end to end, on every configured backend: a play is
//! encrypted and posted as the client's multipart form, and what comes back (the chart,
//! the leaderboard lines, the replay bytes, the beatmap info, the player's stats) is
//! checked field by field.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use peace_scores::crypto;
use peace_scores::grade::{Counts, Grade};
use peace_scores::mode::Mode;
use peace_scores::mods::Mods;
use peace_scores::status::RankedStatus;
use peace_scores::submission::ScoreText;

use crate::common::{PASSWORD, TestServer, md5_hex};

const OSU_VERSION: &str = "20231030";
const STD_MAP: &[u8] = include_bytes!("../../crates/scores/tests/maps/std.osu");
/// The replay's frames as the client uploads them (any bytes: the server keeps them as
/// they are).
const REPLAY: &[u8] = &[
    0x5d, 0x00, 0x00, 0x20, 0x00, 0x42, 0x13, 0x37, 0xff, 0x00, 0x7f,
];

/// One play of the test map.
fn play(name: &str, md5: &str, score: u64, passed: bool, nonce: u32) -> ScoreText {
    let counts = Counts {
        n300: 10 + nonce % 3,
        n100: 1,
        n50: 0,
        ngeki: 2,
        nkatu: 1,
        nmiss: 0,
    };
    let mut text = ScoreText {
        beatmap_md5: md5.to_owned(),
        player_name: name.to_owned(),
        supporter: false,
        online_checksum: String::new(),
        counts,
        score,
        max_combo: 20 + nonce,
        perfect: false,
        grade: if passed { Grade::A } else { Grade::F },
        mods: Mods::HIDDEN,
        passed,
        mode: Mode::Osu,
        client_time: format!("2612031200{:02}", nonce % 60),
        osu_version: OSU_VERSION.to_owned(),
        client_flags: 0,
    };
    text.online_checksum = text.expected_online_checksum(name, OSU_VERSION, "hash:", "");
    text
}

/// Posts `text` as stable's multipart form; the status and the body.
async fn submit(server: &TestServer, text: &ScoreText, password: &str) -> (u16, String) {
    let iv = crypto::encode_base64(&[7u8; 32]);
    let score = crypto::encrypt_field(OSU_VERSION, &iv, &text.to_wire()).unwrap();
    let hash = crypto::encrypt_field(OSU_VERSION, &iv, "hash:").unwrap();
    let form = reqwest::multipart::Form::new()
        .text("x", if text.passed { "0" } else { "1" })
        .text("ft", if text.passed { "0" } else { "1500" })
        .text("fs", "")
        .text("bmk", text.beatmap_md5.clone())
        .text("iv", iv)
        .text("c1", "aa|bb")
        .text("st", "30000")
        .text("pass", md5_hex(password))
        .text("osuver", OSU_VERSION)
        .text("s", hash)
        .text("score", score)
        .part(
            "score",
            reqwest::multipart::Part::bytes(REPLAY.to_vec()).file_name("score"),
        );
    let response = server
        .http
        .post(format!(
            "{}/web/osu-submit-modular-selector.php",
            server.base
        ))
        .header("token", "x")
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get_scores(server: &TestServer, name: &str, md5: &str, v: u8, mods: u32) -> String {
    let url = format!(
        "{}/web/osu-osz2-getscores.php?s=0&vv=4&v={v}&c={md5}&f=x.osu&m=0&i=0&mods={mods}&h=&a=0&us={name}&ha={}",
        server.base,
        md5_hex(PASSWORD)
    );
    server
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `key:value|…` of one chart line.
fn chart_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split('|')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix(':'))
}

async fn scenario(server: &TestServer) {
    let map = server
        .world()
        .scores()
        .beatmaps()
        .import_osu(Bytes::from_static(STD_MAP), RankedStatus::Ranked)
        .await
        .unwrap();
    for name in ["Alice", "Bob"] {
        let email = format!("{}@example.com", name.to_lowercase());
        assert_eq!(
            server
                .register(name, &email, PASSWORD, false)
                .await
                .status(),
            200
        );
    }

    // Alice's first pass: stored, answered with the chart.
    let first = play("Alice", &map.md5, 50_000, true, 1);
    let (status, chart) = submit(server, &first, PASSWORD).await;
    assert_eq!(status, 200, "{chart}");
    let lines: Vec<&str> = chart.lines().collect();
    assert_eq!(lines.len(), 3, "{chart}");
    assert_eq!(chart_field(lines[0], "beatmapPlaycount"), Some("1"));
    assert_eq!(chart_field(lines[0], "beatmapPasscount"), Some("1"));
    assert_eq!(chart_field(lines[1], "chartId"), Some("beatmap"));
    assert_eq!(chart_field(lines[1], "rankBefore"), Some(""));
    assert_eq!(chart_field(lines[1], "rankAfter"), Some("1"));
    assert_eq!(chart_field(lines[1], "totalScoreAfter"), Some("50000"));
    let score_id: i32 = chart_field(lines[1], "onlineScoreId")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(chart_field(lines[2], "chartId"), Some("overall"));
    assert_eq!(chart_field(lines[2], "totalScoreAfter"), Some("50000"));

    // The same play again (the client resends when it saw no answer): the same answer,
    // counted once.
    let (_, again) = submit(server, &first, PASSWORD).await;
    assert_eq!(again, chart);

    // Bob scores higher, Alice lower than her best.
    let (_, bob_chart) = submit(server, &play("Bob", &map.md5, 70_000, true, 2), PASSWORD).await;
    assert_eq!(
        chart_field(bob_chart.lines().nth(1).unwrap(), "rankAfter"),
        Some("1")
    );
    let (_, lower) = submit(server, &play("Alice", &map.md5, 40_000, true, 3), PASSWORD).await;
    assert_eq!(
        chart_field(lower.lines().nth(1).unwrap(), "rankBefore"),
        Some("2")
    );

    // A failed play: counted in the play count and total score, never listed.
    let (status, failed) =
        submit(server, &play("Alice", &map.md5, 5_000, false, 4), PASSWORD).await;
    assert_eq!((status, failed.as_str()), (200, "error: no"));

    // The leaderboard: header, offset, title, rating, personal best, then the scores.
    let board = get_scores(server, "Alice", &map.md5, 1, 0).await;
    let lines: Vec<&str> = board.lines().collect();
    assert_eq!(lines[0], "2|false|0|0|2|0|", "{board}");
    assert_eq!(lines[1], "0");
    assert_eq!(
        lines[2],
        "Peace Test Vectors - Standard Test [Circles Sliders Spinner]"
    );
    assert_eq!(lines[3], "10.0");
    let pb: Vec<&str> = lines[4].split('|').collect();
    assert_eq!(pb[0], score_id.to_string());
    assert_eq!(&pb[1..3], &["Alice", "50000"]);
    assert_eq!(pb[13], "2", "Alice's best is second: {board}");
    let top: Vec<&str> = lines[5].split('|').collect();
    assert_eq!(top.len(), 16, "{board}");
    assert_eq!(&top[1..3], &["Bob", "70000"]);
    // combo, 50s, 100s, 300s, misses, katus, gekis, perfect, mods, rank
    assert_eq!(
        &top[3..12],
        &["22", "0", "1", "12", "0", "1", "2", "0", "8"]
    );
    assert_eq!((top[13], top[15]), ("1", "1"));
    assert_eq!(lines.len(), 7, "{board}");

    // Friends: Alice alone until Bob is her friend; selected mods: none played NoMod.
    let friends = get_scores(server, "Alice", &map.md5, 3, 0).await;
    assert_eq!(friends.lines().count(), 6, "{friends}");
    let no_mod = get_scores(server, "Alice", &map.md5, 2, 0).await;
    assert!(no_mod.starts_with("2|false|0|0|0|"), "{no_mod}");
    let hidden = get_scores(server, "Alice", &map.md5, 2, Mods::HIDDEN.bits()).await;
    assert!(hidden.starts_with("2|false|0|0|2|"), "{hidden}");

    // The replay, byte for byte.
    let replay = server
        .http
        .get(format!(
            "{}/web/osu-getreplay.php?c={score_id}&m=0&u=Bob&h={}",
            server.base,
            md5_hex(PASSWORD)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.bytes().await.unwrap().as_ref(), REPLAY);
    let osr = server
        .http
        .get(format!("{}/api/v1/scores/{score_id}/replay", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(osr.status(), 200);
    let osr = osr.bytes().await.unwrap();
    let (header, frames) = peace_scores::osr::parse_osr(&osr).unwrap();
    assert_eq!(
        (header.player_name.as_str(), header.score),
        ("Alice", 50_000)
    );
    assert_eq!(header.online_score_id, i64::from(score_id));
    assert_eq!(frames, REPLAY);

    // The player's stats: three plays and a fail; ranked score is the best only.
    let alice = server
        .world()
        .db()
        .user_by_name("Alice")
        .await
        .unwrap()
        .unwrap();
    let stats = server.world().db().stats(alice.id, 0).await.unwrap();
    assert_eq!(stats.playcount, 3);
    assert_eq!(stats.total_score, 50_000 + 40_000 + 5_000);
    assert_eq!(stats.ranked_score, 50_000);
    assert_eq!(stats.a_count, 1);

    // getbeatmapinfo: the map by file name with Alice's grade in osu!.
    let info = server
        .http
        .post(format!(
            "{}/web/osu-getbeatmapinfo.php?u=Alice&h={}",
            server.base,
            md5_hex(PASSWORD)
        ))
        .body(format!(
            r#"{{"Filenames":["{}","unknown.osu"],"Ids":[]}}"#,
            map.file_name
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(info, format!("0|0|0|{}|1|A|N|N|N\n", map.md5));

    // Refusals: each a word that ends the client's retrying, none a 5xx.
    let (status, wrong) = submit(server, &play("Alice", &map.md5, 1, true, 5), "wrong").await;
    assert_eq!((status, wrong.as_str()), (200, "error: pass"));
    let (_, nouser) = submit(server, &play("Nobody", &map.md5, 1, true, 6), PASSWORD).await;
    assert_eq!(nouser, "error: nouser");
    let unknown = "0123456789abcdef0123456789abcdef";
    let (_, beatmap) = submit(server, &play("Alice", unknown, 1, true, 7), PASSWORD).await;
    assert_eq!(beatmap, "error: beatmap");
    assert_eq!(get_scores(server, "Alice", unknown, 1, 0).await, "-1|false");
    let garbage = reqwest::multipart::Form::new()
        .text("score", "bm90IGEgc2NvcmU=")
        .text("iv", "AAAA")
        .text("osuver", OSU_VERSION)
        .text("pass", md5_hex(PASSWORD));
    let response = server
        .http
        .post(format!(
            "{}/web/osu-submit-modular-selector.php",
            server.base
        ))
        .multipart(garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "error: no");
    let truncated = server
        .http
        .post(format!(
            "{}/web/osu-submit-modular-selector.php",
            server.base
        ))
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body("--xyz\r\nContent-Disposition: form-data; name=\"score\"\r\n\r\nabc")
        .send()
        .await
        .unwrap();
    assert_eq!(truncated.status(), 200);
    assert_eq!(truncated.text().await.unwrap(), "error: no");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_play_is_stored_once_and_shows_on_the_board_on_sqlite() {
    let server = TestServer::start().await;
    scenario(&server).await;
}

/// The same pipeline with `[storage] s3_*` on a real S3 API (moto in CI, see
/// `.ci/run`): the replay and the `.osu` file land in the bucket, under the prefix, and
/// the replay is served back from there. Skipped (with a note) without
/// `PEACE_TEST_S3_ENDPOINT`.
#[tokio::test(flavor = "multi_thread")]
async fn a_play_is_stored_once_and_its_replay_served_from_an_s3_bucket() {
    let Some(endpoint) = std::env::var("PEACE_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    else {
        eprintln!("skipped: set PEACE_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:5000 for moto)");
        return;
    };
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = format!("peace-e2e-{:016x}", rand::random::<u64>());
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());

    let server = TestServer::start_with(|config| {
        config.storage.s3_bucket = bucket.clone();
        config.storage.s3_endpoint = endpoint.clone();
        config.storage.s3_region = "us-east-1".into();
        config.storage.s3_prefix = "peace".into();
        config.storage.s3_allow_http = endpoint.starts_with("http://");
    })
    .await;
    server.config.validate().unwrap();
    scenario(&server).await;

    // Everything is in the bucket under the prefix, nothing in the folder.
    let location = peace_actors::scores::storage::S3Location {
        prefix: String::new(),
        ..server.config.storage.s3_location().unwrap()
    };
    let bucket = peace_actors::scores::storage::Storage::s3(&location).unwrap();
    let keys = bucket.list("").await.unwrap();
    let map_md5 = md5_hex_bytes(STD_MAP);
    assert!(
        keys.contains(&format!("peace/osu/{map_md5}.osu")),
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with("peace/replays/"))
            .count(),
        3,
        "one replay per stored pass: {keys:?}"
    );
    assert!(
        std::fs::read_dir(server.files.path())
            .unwrap()
            .next()
            .is_none(),
        "the folder is not used"
    );
}

fn md5_hex_bytes(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn a_play_is_stored_once_and_shows_on_the_board_on_postgres() {
        if let Some(server) = TestServer::start_on(peace_db::Backend::Postgres).await {
            scenario(&server).await;
        }
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn a_play_is_stored_once_and_shows_on_the_board_on_mysql() {
        if let Some(server) = TestServer::start_on(peace_db::Backend::Mysql).await {
            scenario(&server).await;
        }
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn the_player_hears_their_new_stats_after_a_play() {
    let server = TestServer::start().await;
    let map = server
        .world()
        .scores()
        .beatmaps()
        .import_osu(Bytes::from_static(STD_MAP), RankedStatus::Ranked)
        .await
        .unwrap();
    let mut alice = server.player("Alice").await;
    let alice_id = server
        .world()
        .db()
        .user_by_name("Alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    let (_, chart) = submit(
        &server,
        &play("Alice", &map.md5, 123_456, true, 1),
        PASSWORD,
    )
    .await;
    assert!(chart.starts_with("beatmapId:"), "{chart}");
    alice
        .wait_for("USER_STATS with the play counted", |p| {
            matches!(p, peace_bancho::ServerPacket::UserStats(s)
                if s.user_id == alice_id && s.total_score == 123_456 && s.playcount == 1)
        })
        .await;
}
