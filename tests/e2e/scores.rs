//! The stable client's score pipeline end to end, on every configured backend: a play is
//! encrypted and posted as the client's multipart form, and what comes back (the chart,
//! the leaderboard lines, the replay bytes, the beatmap info, the player's stats) is
//! checked field by field.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use peace_scores::client_form::{ClientPlay, PartValue};
use peace_scores::grade::{Counts, Grade};
use peace_scores::mode::Mode;
use peace_scores::mods::Mods;
use peace_scores::status::RankedStatus;
use peace_scores::submission::ScoreText;

use crate::common::{Gateway, PASSWORD, TestServer, md5_hex};

pub(crate) const OSU_VERSION: &str = "20231030";
pub(crate) const STD_MAP: &[u8] = include_bytes!("../../crates/scores/tests/maps/std.osu");
/// The replay's frames as the client uploads them (any bytes: the server keeps them as
/// they are).
const REPLAY: &[u8] = &[
    0x5d, 0x00, 0x00, 0x20, 0x00, 0x42, 0x13, 0x37, 0xff, 0x00, 0x7f,
];

/// One play of the test map.
pub(crate) fn play(name: &str, md5: &str, score: u64, passed: bool, nonce: u32) -> ScoreText {
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

/// Posts `text` as stable's multipart form (the parts from `peace_scores::client_form`,
/// which `peace-bench` sends too); the status and the body.
pub(crate) async fn submit(server: &Gateway, text: &ScoreText, password: &str) -> (u16, String) {
    let password_md5 = md5_hex(password);
    let play = ClientPlay {
        text,
        password_md5: &password_md5,
        client_hash: "hash:",
        iv: [7u8; 32],
        replay: REPLAY,
        fail_time_ms: if text.passed { 0 } else { 1500 },
        play_time_ms: 30_000,
    };
    let mut form = reqwest::multipart::Form::new();
    for part in play.parts().unwrap() {
        form = match part.value {
            PartValue::Text(value) => form.text(part.name, value),
            PartValue::File { file_name, bytes } => form.part(
                part.name,
                reqwest::multipart::Part::bytes(bytes).file_name(file_name),
            ),
        };
    }
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

/// The test map, imported as ranked (what `peace beatmaps import` does).
pub(crate) async fn ranked_map(server: &TestServer) -> peace_db::BeatmapRow {
    server
        .world()
        .scores()
        .beatmaps()
        .import_osu(Bytes::from_static(STD_MAP), RankedStatus::Ranked)
        .await
        .unwrap()
}

/// Registers every name (e-mail `<name>@example.com`, the test password).
pub(crate) async fn register_all(server: &TestServer, names: &[&str]) {
    for name in names {
        let email = format!("{}@example.com", name.to_lowercase());
        let response = server.register(name, &email, PASSWORD, false).await;
        assert_eq!(response.status(), 200, "registering {name}");
    }
}

pub(crate) async fn get_scores(
    server: &Gateway,
    name: &str,
    md5: &str,
    v: u8,
    mods: u32,
) -> String {
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
    let map = ranked_map(server).await;
    register_all(server, &["Alice", "Bob"]).await;

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
    // A banned account: told so only with its right password.
    let db = server.world().db();
    let bob = db.user_by_name("Bob").await.unwrap().unwrap();
    let banned = peace_db::Privileges(bob.privileges & !peace_db::Privileges::NORMAL.0);
    assert!(
        db.replace_privileges(bob.id, bob.privileges(), banned)
            .await
            .unwrap()
    );
    let (_, ban) = submit(server, &play("Bob", &map.md5, 1, true, 8), PASSWORD).await;
    assert_eq!(ban, "error: ban");
    let (_, guessed) = submit(server, &play("Bob", &map.md5, 1, true, 9), "wrong").await;
    assert_eq!(guessed, "error: pass");
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
    let Some(bucket) = crate::common::s3::TestBucket::create().await else {
        return;
    };
    let server = TestServer::start_with(|config| {
        bucket.configure(config);
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
    let map = ranked_map(&server).await;
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

/// Submits every play at once: each in its own task, all released together; the answers
/// in the order of `plays`. Bounded: a hung submission fails the test.
async fn submit_all(gateway: &Gateway, plays: &[ScoreText]) -> Vec<(u16, String)> {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(plays.len()));
    let tasks: Vec<_> = plays
        .iter()
        .cloned()
        .map(|text| {
            let (gateway, start) = (gateway.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                submit(&gateway, &text, PASSWORD).await
            })
        })
        .collect();
    let all = async {
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), all)
        .await
        .expect("every submission answered within 30 s")
}

/// The field of a chart's line `line` (0: the map's counts, 1: the beatmap ranking).
fn chart_value<T: std::str::FromStr>(chart: &str, line: usize, key: &str) -> T {
    chart_field(chart.lines().nth(line).unwrap_or_default(), key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in line {line} of the chart: {chart}"))
}

/// How many players play at once in [`crowd_scenario`].
const CROWD: usize = 16;
/// The first players also send a second pass (some better, some worse than their first).
const TWICE: usize = 4;
/// … and these players also send a failed play.
const FAILING: std::ops::Range<usize> = 4..6;

/// `CROWD` players submit passes of one ranked map at the same moment (a few of them two
/// passes and a fail): every pass is answered with its chart, counted exactly once, and
/// the board lists each player's best once, in score order, ranked 1..=n.
async fn crowd_scenario(server: &TestServer) {
    let map = ranked_map(server).await;
    let names: Vec<String> = (0..CROWD).map(|i| format!("Crowd{i:02}")).collect();
    register_all(
        server,
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    // Distinct scores in an order unlike the players' (so unlike the accounts' ids).
    let first = |i: usize| 100_000 + ((i * 7) % CROWD) as u64 * 1_000;
    let second = |i: usize| {
        if i.is_multiple_of(2) {
            first(i) + 500
        } else {
            first(i) - 500
        }
    };
    let mut passes: Vec<(usize, u64)> = (0..CROWD).map(|i| (i, first(i))).collect();
    passes.extend((0..TWICE).map(|i| (i, second(i))));
    let mut plays: Vec<ScoreText> = passes
        .iter()
        .enumerate()
        .map(|(k, &(i, score))| play(&names[i], &map.md5, score, true, k as u32))
        .collect();
    for i in FAILING {
        plays.push(play(
            &names[i],
            &map.md5,
            1_000 + i as u64,
            false,
            100 + i as u32,
        ));
    }

    let answers = submit_all(server, &plays).await;

    // Every pass got its chart; every fail its word.
    for (text, (status, body)) in plays.iter().zip(&answers) {
        assert_eq!(*status, 200, "{}: {body}", text.player_name);
        if text.passed {
            assert!(
                body.starts_with("beatmapId:"),
                "{}: {body}",
                text.player_name
            );
            assert_eq!(body.lines().count(), 3, "{body}");
        } else {
            assert_eq!(body, "error: no");
        }
    }
    let charts: Vec<&str> = answers[..passes.len()]
        .iter()
        .map(|(_, body)| body.as_str())
        .collect();
    // The plays were counted one after another: each chart saw another pass count.
    let mut seen: Vec<usize> = charts
        .iter()
        .map(|c| chart_value(c, 0, "beatmapPasscount"))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=passes.len()).collect::<Vec<_>>());
    let mut ids: Vec<i32> = charts
        .iter()
        .map(|c| chart_value(c, 1, "onlineScoreId"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), passes.len(), "every pass has a score of its own");

    // Replayed in the order they were counted, each chart's ranks before and after are
    // those of the board at that moment.
    let mut order: Vec<usize> = (0..passes.len()).collect();
    order.sort_by_key(|&k| chart_value::<usize>(charts[k], 0, "beatmapPasscount"));
    let mut bests: std::collections::BTreeMap<usize, u64> = Default::default();
    let rank = |bests: &std::collections::BTreeMap<usize, u64>, i: usize| {
        bests
            .get(&i)
            .map(|mine| (1 + bests.values().filter(|s| *s > mine).count()).to_string())
            .unwrap_or_default()
    };
    for k in order {
        let (i, score) = passes[k];
        let line = charts[k].lines().nth(1).unwrap();
        assert_eq!(
            chart_field(line, "rankBefore"),
            Some(rank(&bests, i).as_str()),
            "{}",
            charts[k]
        );
        let best = bests.entry(i).or_insert(score);
        *best = (*best).max(score);
        assert_eq!(
            chart_field(line, "rankAfter"),
            Some(rank(&bests, i).as_str()),
            "{}",
            charts[k]
        );
    }

    // The map's counts are exactly what was sent.
    let db = server.world().db();
    let row = db.beatmap_by_md5(&map.md5).await.unwrap().unwrap();
    assert_eq!(
        (row.plays, row.passes),
        (plays.len() as i32, passes.len() as i32)
    );

    // The board: each player's best once, best first, ranked 1..=n.
    let board = get_scores(server, &names[0], &map.md5, 1, 0).await;
    let lines: Vec<&str> = board.lines().collect();
    assert!(
        lines[0].starts_with(&format!("2|false|0|0|{CROWD}|")),
        "{board}"
    );
    assert_eq!(lines.len(), 5 + CROWD, "{board}");
    let mut expected: Vec<(String, u64)> = bests
        .iter()
        .map(|(&i, &score)| (names[i].clone(), score))
        .collect();
    expected.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (position, (line, (name, score))) in lines[5..].iter().zip(&expected).enumerate() {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            (fields[1], fields[2], fields[13]),
            (
                name.as_str(),
                score.to_string().as_str(),
                (position + 1).to_string().as_str()
            ),
            "{board}"
        );
    }
    let mine = lines[4].split('|').collect::<Vec<_>>();
    assert_eq!(mine[1], names[0]);
    assert_eq!(mine[13], rank(&bests, 0), "{board}");

    // Each player's statistics count each of their plays once.
    for (i, name) in names.iter().enumerate() {
        let user = db.user_by_name(name).await.unwrap().unwrap();
        let stats = db.stats(user.id, 0).await.unwrap();
        let sent: Vec<u64> = plays
            .iter()
            .filter(|p| p.player_name == *name)
            .map(|p| p.score)
            .collect();
        assert_eq!(stats.playcount as usize, sent.len(), "{name}");
        assert_eq!(stats.total_score as u64, sent.iter().sum::<u64>(), "{name}");
        assert_eq!(stats.ranked_score as u64, bests[&i], "{name}");
    }
}

/// One play sent four times at once (a client resending while its first try is still
/// on its way): stored once, counted once, and every copy answered with the same chart.
async fn resend_race_scenario(server: &TestServer) {
    let map = ranked_map(server).await;
    register_all(server, &["Racer"]).await;
    let text = play("Racer", &map.md5, 77_777, true, 9);
    let copies = vec![text.clone(); 4];

    let answers = submit_all(server, &copies).await;

    let (status, chart) = &answers[0];
    assert_eq!(*status, 200, "{chart}");
    assert!(chart.starts_with("beatmapId:"), "{chart}");
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(chart_value::<u32>(chart, 0, "beatmapPlaycount"), 1);
    assert_eq!(chart_value::<u32>(chart, 1, "rankAfter"), 1);
    let db = server.world().db();
    let row = db.beatmap_by_md5(&map.md5).await.unwrap().unwrap();
    assert_eq!((row.plays, row.passes), (1, 1));
    let stored = db
        .score_by_checksum(&text.online_checksum)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, chart_value::<i32>(chart, 1, "onlineScoreId"));
    let user = db.user_by_name("Racer").await.unwrap().unwrap();
    let stats = db.stats(user.id, 0).await.unwrap();
    assert_eq!((stats.playcount, stats.total_score), (1, 77_777));
    let board = get_scores(server, "Racer", &map.md5, 1, 0).await;
    assert!(board.starts_with("2|false|0|0|1|"), "{board}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_players_submitting_at_once_are_each_counted_once_on_sqlite() {
    let server = TestServer::start().await;
    crowd_scenario(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_play_sent_four_times_at_once_is_stored_once_on_sqlite() {
    let server = TestServer::start().await;
    resend_race_scenario(&server).await;
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn sixteen_players_submitting_at_once_are_each_counted_once_on_postgres() {
        if let Some(server) = TestServer::start_on(peace_db::Backend::Postgres).await {
            crowd_scenario(&server).await;
        }
    }
);

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn one_play_sent_four_times_at_once_is_stored_once_on_postgres() {
        if let Some(server) = TestServer::start_on(peace_db::Backend::Postgres).await {
            resend_race_scenario(&server).await;
        }
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn sixteen_players_submitting_at_once_are_each_counted_once_on_mysql() {
        if let Some(server) = TestServer::start_on(peace_db::Backend::Mysql).await {
            crowd_scenario(&server).await;
        }
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn one_play_sent_four_times_at_once_is_stored_once_on_mysql() {
        if let Some(server) = TestServer::start_on(peace_db::Backend::Mysql).await {
            resend_race_scenario(&server).await;
        }
    }
);

/// Two nodes over one database and one storage folder: a map imported with the command
/// line, a play sent through the first node's gateway, and its board, its replay and the
/// player's new statistics read through the second's.
#[tokio::test(flavor = "multi_thread")]
async fn a_play_sent_through_one_node_is_seen_through_another() {
    let cluster = crate::common::cluster::TestCluster::start(2).await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/scores/tests/maps/std.osu"
    );
    cluster
        .cli(0, &["beatmaps", "import", path, "--status", "ranked"])
        .await;
    let md5 = md5_hex_bytes(STD_MAP);
    let (first, second) = (cluster.gateway(0), cluster.gateway(1));
    // Alice is online through the second node (wherever her session lives).
    let mut alice = second.player("Alice").await;
    let alice_id = alice.user_id;

    let (status, chart) = submit(&first, &play("Alice", &md5, 60_000, true, 1), PASSWORD).await;
    assert_eq!(status, 200, "{chart}\n{}", cluster.logs());
    assert!(chart.starts_with("beatmapId:"), "{chart}");
    assert_eq!(chart_value::<u32>(&chart, 1, "rankAfter"), 1);
    let score_id: i32 = chart_value(&chart, 1, "onlineScoreId");

    let board = get_scores(&second, "Alice", &md5, 1, 0).await;
    let lines: Vec<&str> = board.lines().collect();
    assert!(lines[0].starts_with("2|false|0|0|1|"), "{board}");
    let top: Vec<&str> = lines[5].split('|').collect();
    assert_eq!(
        (top[0], top[1], top[2], top[13]),
        (score_id.to_string().as_str(), "Alice", "60000", "1"),
        "{board}"
    );

    // The replay the first node stored, served by the second from the shared folder.
    let replay = second
        .http
        .get(format!(
            "{}/web/osu-getreplay.php?c={score_id}&m=0&u=Alice&h={}",
            second.base,
            md5_hex(PASSWORD)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.bytes().await.unwrap().as_ref(), REPLAY);

    // Her session hears of the play, polled through the second node.
    alice
        .wait_for("USER_STATS with the play counted", |p| {
            matches!(p, peace_bancho::ServerPacket::UserStats(s)
                if s.user_id == alice_id && s.total_score == 60_000 && s.playcount == 1)
        })
        .await;

    // The board is an entity on one of the nodes. Drain that node: the board moves to
    // the other and keeps answering, and a better play through the node that read it
    // before shows at once.
    let board_key = format!("{md5}.0.0");
    let holder = cluster.where_is(0, "board", &board_key).await;
    let (drained, stays) = if holder == "node-1" { (0, 1) } else { (1, 0) };
    let drain = format!("/api/v1/cluster/nodes/{holder}/drain");
    assert_eq!(cluster.admin(stays, &drain).await, 200);
    cluster
        .wait(&format!("{holder} to be drained"), || async {
            cluster
                .node_view(stays, &holder)
                .await
                .is_some_and(|n| n["status"] == "draining" && n["shards"] == 0)
        })
        .await;
    assert_ne!(cluster.where_is(stays, "board", &board_key).await, holder);
    for node in [drained, stays] {
        let board = get_scores(&cluster.gateway(node), "Alice", &md5, 1, 0).await;
        let top: Vec<&str> = board
            .lines()
            .nth(5)
            .unwrap_or_default()
            .split('|')
            .collect();
        assert_eq!((top[1], top[2]), ("Alice", "60000"), "{board}");
    }
    let (status, chart) = submit(&first, &play("Alice", &md5, 70_000, true, 2), PASSWORD).await;
    assert_eq!(status, 200, "{chart}\n{}", cluster.logs());
    let board = get_scores(&second, "Alice", &md5, 1, 0).await;
    let top: Vec<&str> = board
        .lines()
        .nth(5)
        .unwrap_or_default()
        .split('|')
        .collect();
    assert_eq!((top[1], top[2]), ("Alice", "70000"), "{board}");
}

/// A restriction reaches every leaderboard at once: the player's score leaves the board
/// others see on their next read (not at the board's next reload), stays on the one they
/// see themselves, and comes back when they are unrestricted.
#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_players_score_leaves_the_board_at_once() {
    let server = TestServer::start().await;
    let map = server
        .world()
        .scores()
        .beatmaps()
        .import_osu(Bytes::from_static(STD_MAP), RankedStatus::Ranked)
        .await
        .unwrap();
    let _alice = server.player("Alice").await;
    let _bob = server.player("Bob").await;
    let admin_privileges = peace_db::Privileges::DEFAULT_NEW.union(peace_db::Privileges::ADMIN);
    let mut admin = server.player_with("Boss", admin_privileges).await;
    for (name, score, nonce) in [("Alice", 50_000, 1), ("Bob", 60_000, 2)] {
        let (status, chart) =
            submit(&server, &play(name, &map.md5, score, true, nonce), PASSWORD).await;
        assert_eq!(status, 200, "{chart}");
    }
    let names = |board: &str| -> Vec<String> {
        board
            .lines()
            .skip(5)
            .map(|l| l.split('|').nth(1).unwrap_or_default().to_owned())
            .collect()
    };
    // Read once, so that the board holds both.
    let board = get_scores(&server, "Alice", &map.md5, 1, 0).await;
    assert_eq!(names(&board), ["Bob", "Alice"], "{board}");

    let answer = admin.ask_bot("!restrict Bob multiaccounting").await;
    assert_eq!(answer, "Bob is restricted.");
    let board = get_scores(&server, "Alice", &map.md5, 1, 0).await;
    assert_eq!(names(&board), ["Alice"], "{board}");
    let own = get_scores(&server, "Bob", &map.md5, 1, 0).await;
    assert_eq!(
        names(&own),
        ["Bob", "Alice"],
        "they still see their own: {own}"
    );

    let answer = admin.ask_bot("!unrestrict Bob appeal accepted").await;
    assert_eq!(answer, "Bob is no longer restricted.");
    let board = get_scores(&server, "Alice", &map.md5, 1, 0).await;
    assert_eq!(names(&board), ["Bob", "Alice"], "{board}");
}
