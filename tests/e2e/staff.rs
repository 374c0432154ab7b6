//! Staff work on maps and scores, end to end on every backend: `!map` on the map of a
//! `/np` (refused to players, shown by getscores at once, kept through a source's later
//! answer), the players' `!recent`, `!top` and `!with`, hiding and deleting scores
//! through the admin API (the next best takes the place at once, the totals follow), and
//! a pass above the pp cap held for review until it is approved.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use peace_db::Privileges;
use peace_scores::mode::Mode;
use peace_scores::status::RankedStatus;
use peace_scores::submission::ScoreText;

use crate::common::{Gateway, PASSWORD, TestServer, md5_hex};
use crate::scores::{STD_MAP, play, submit};

const ADMIN_TOKEN: &str = "staff-test-token";
const OSU_VERSION: &str = "20231030";
/// The test maps' osu! ids: two difficulties of one set.
const SET_ID: i32 = 7700;
const LOVED_ID: i32 = 4242;
const RANKED_ID: i32 = 4243;
/// A taiko pass (a convert of the test map) above this is held for review.
const TAIKO_CAP: f32 = 0.001;

/// The test map with an osu! id, a set id and a difficulty name of its own.
fn map_bytes(id: i32, version: &str) -> Bytes {
    let text = String::from_utf8(STD_MAP.to_vec()).unwrap();
    let text = text
        .replace("BeatmapID:0", &format!("BeatmapID:{id}"))
        .replace("BeatmapSetID:-1", &format!("BeatmapSetID:{SET_ID}"))
        .replace(
            "Version:Circles Sliders Spinner",
            &format!("Version:{version}"),
        );
    Bytes::from(text.into_bytes())
}

fn now_playing(id: i32) -> String {
    format!("\x01ACTION is listening to [https://osu.ppy.sh/b/{id} Peace - Staff [x]]\x01")
}

async fn get_scores(server: &Gateway, name: &str, md5: &str, mode: u8) -> String {
    let url = format!(
        "{}/web/osu-osz2-getscores.php?s=0&vv=4&v=1&c={md5}&f=x.osu&m={mode}&i=0&mods=8&h=&a=0&us={name}&ha={}",
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

/// The board's lines: `(player, score)` of each, after the header and personal best.
fn board_lines(board: &str) -> Vec<(String, String)> {
    board
        .lines()
        .skip(5)
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

/// A pass's score id, from its chart.
fn score_id(chart: &str) -> i32 {
    chart
        .lines()
        .nth(1)
        .and_then(|l| l.split('|').find_map(|p| p.strip_prefix("onlineScoreId:")))
        .unwrap_or_else(|| panic!("no score id in {chart}"))
        .parse()
        .unwrap()
}

async fn admin(server: &Gateway, method: reqwest::Method, path: &str, body: &str) -> (u16, String) {
    let response = server
        .http
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn audit_actions(server: &TestServer) -> Vec<String> {
    let log = server.world().db().audit_log(100).await.unwrap();
    log.into_iter().map(|e| e.action).collect()
}

/// A difficulty of the set that only the source knows, and its osu! id.
const SOURCE_ONLY_MD5: &str = "0123456789abcdef0123456789abcdef";
const SOURCE_ONLY_ID: i32 = 4299;

/// An osu!api v1 mirror that knows one difficulty of the test set, as pending.
async fn fake_source() -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::Query;
    use std::collections::HashMap;
    async fn get_beatmaps(
        Query(query): Query<HashMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        let known = query.get("h").map(String::as_str) == Some(SOURCE_ONLY_MD5)
            || query.get("b").map(String::as_str) == Some(&SOURCE_ONLY_ID.to_string());
        if !known {
            return axum::Json(serde_json::json!([]));
        }
        axum::Json(serde_json::json!([{
            "file_md5": SOURCE_ONLY_MD5, "beatmap_id": SOURCE_ONLY_ID.to_string(),
            "beatmapset_id": SET_ID.to_string(), "approved": "0", "mode": "0",
            "artist": "Peace Test Vectors", "title": "Standard Test", "version": "Source",
            "creator": "Mapper", "total_length": "60", "max_combo": "100",
            "difficultyrating": "2.5", "approved_date": null
        }]))
    }
    let app = axum::Router::new().route("/v1/get_beatmaps", axum::routing::get(get_beatmaps));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, task)
}

fn configure(config: &mut peace::config::Config, source: &str) {
    config.api.admin_token = ADMIN_TOKEN.to_owned();
    config.scores.pp_cap.taiko = Some(TAIKO_CAP);
    let text = format!("kind = \"osu-api-v1\"\napi_url = \"{source}/v1\"\n");
    config.beatmaps.sources = vec![toml::from_str(&text).unwrap()];
    config.beatmaps.source_timeout_ms = 1000;
}

async fn scenario(server: &TestServer) {
    let beatmaps = server.world().scores().beatmaps();
    let loved = beatmaps
        .import_osu(map_bytes(LOVED_ID, "Loved"), RankedStatus::Pending)
        .await
        .unwrap();
    let ranked = beatmaps
        .import_osu(map_bytes(RANKED_ID, "Ranked"), RankedStatus::Pending)
        .await
        .unwrap();
    let staff_privileges = Privileges::DEFAULT_NEW.union(Privileges::MODERATOR);
    let mut staff = server.player_with("Staffer", staff_privileges).await;
    let mut alice = server.player_with("Alice", Privileges::DEFAULT_NEW).await;
    let bob_email = "bob@example.com";
    assert_eq!(
        server
            .register("Bob", bob_email, PASSWORD, false)
            .await
            .status(),
        200
    );
    assert_eq!(get_scores(server, "Alice", &loved.md5, 0).await, "0|false");

    // A player may not; staff may, on the map of their last /np, for the whole set.
    alice.ask_bot(&now_playing(LOVED_ID)).await;
    assert_eq!(
        alice.ask_bot("!map love set").await,
        "!map is for the staff."
    );
    assert_eq!(
        staff.ask_bot("!map love set").await,
        "Send me a /np of the map first, then ask again."
    );
    staff.ask_bot(&now_playing(LOVED_ID)).await;
    assert_eq!(
        staff.ask_bot("!map love set a classic").await,
        "Every difficulty of Peace Test Vectors - Standard Test is now loved (2 stored map(s) changed)."
    );
    for md5 in [&loved.md5, &ranked.md5] {
        let board = get_scores(server, "Alice", md5, 0).await;
        assert!(board.starts_with("5|false|"), "loved at once: {board}");
    }
    // One difficulty ranked on its own: the map's override beats its set's.
    staff.ask_bot(&now_playing(RANKED_ID)).await;
    assert_eq!(
        staff.ask_bot("!map rank map").await,
        "This difficulty of Peace Test Vectors - Standard Test is now ranked (1 stored map(s) changed)."
    );
    assert!(
        get_scores(server, "Alice", &ranked.md5, 0)
            .await
            .starts_with("2|false|")
    );
    assert!(
        get_scores(server, "Alice", &loved.md5, 0)
            .await
            .starts_with("5|false|")
    );

    // A source answers again (what a refresh saves): pending. The overrides stay.
    let db = server.world().db();
    for (map, id) in [(&loved, LOVED_ID), (&ranked, RANKED_ID)] {
        let mut answer = map.clone();
        answer.status = 0;
        answer.status_frozen = false;
        answer.source = 1;
        answer.id = id;
        assert!(db.save_beatmap(&answer).await.unwrap().status_frozen);
    }
    // A difficulty of the set that only the source knows, pending there: fetched on its
    // first read, it is loved with its set.
    let fetched = get_scores(server, "Alice", SOURCE_ONLY_MD5, 0).await;
    assert!(fetched.starts_with("5|false|"), "{fetched}");
    let row = db.beatmap_by_md5(SOURCE_ONLY_MD5).await.unwrap().unwrap();
    assert_eq!((row.id, row.status, row.source), (SOURCE_ONLY_ID, 4, 1));
    assert!(
        get_scores(server, "Alice", &loved.md5, 0)
            .await
            .starts_with("5|false|")
    );
    assert!(
        get_scores(server, "Alice", &ranked.md5, 0)
            .await
            .starts_with("2|false|")
    );

    // Plays on the ranked difficulty: Alice 50k then 40k, Bob 45k.
    let (_, best) = submit(
        server,
        &play("Alice", &ranked.md5, 50_000, true, 1),
        PASSWORD,
    )
    .await;
    let alice_best = score_id(&best);
    let (_, lower) = submit(
        server,
        &play("Alice", &ranked.md5, 40_000, true, 2),
        PASSWORD,
    )
    .await;
    let alice_lower = score_id(&lower);
    let (_, bob) = submit(server, &play("Bob", &ranked.md5, 45_000, true, 3), PASSWORD).await;
    let bob_score = score_id(&bob);
    let board = get_scores(server, "Alice", &ranked.md5, 0).await;
    assert_eq!(
        board_lines(&board),
        [
            ("Alice".into(), "50000".into()),
            ("Bob".into(), "45000".into())
        ]
    );

    // !recent, !top and !with, with the numbers the database and the calculator have.
    let stored = db.score_by_id(alice_lower).await.unwrap().unwrap();
    let title = "Peace Test Vectors - Standard Test [Ranked]";
    let recent = alice.ask_bot("!recent").await;
    let expected = format!(
        "{title} +HD: {:.2}%, {}/{}x, {:.2}pp, {} (40000 points)",
        stored.accuracy, stored.max_combo, ranked.max_combo, stored.pp, stored.grade
    );
    assert_eq!(recent, expected);
    let best_row = db.score_by_id(alice_best).await.unwrap().unwrap();
    let top = alice.ask_bot("!top").await;
    assert!(
        top.starts_with(&format!("1. {title} +HD: {:.2}%", best_row.accuracy)),
        "{top}"
    );
    assert!(
        top.contains(&format!("{:.2}pp", best_row.pp)) && !top.contains("2. "),
        "{top}"
    );
    alice.ask_bot(&now_playing(RANKED_ID)).await;
    let with = alice.ask_bot("!with HDDT").await;
    let parsed = peace_scores::pp::Beatmap::parse(&map_bytes(RANKED_ID, "Ranked")).unwrap();
    let at = |acc| peace_scores::pp::performance_at_accuracy(&parsed, 0, 72, acc).unwrap();
    let expected = format!(
        "{title} +HDDT ({:.2}*): 95%: {:.2}pp | 98%: {:.2}pp | 99%: {:.2}pp | 100%: {:.2}pp",
        at(95.0).stars,
        at(95.0).pp,
        at(98.0).pp,
        at(99.0).pp,
        at(100.0).pp
    );
    assert_eq!(with, expected);

    // Hiding Alice's best: her next best takes its place at once, her totals follow.
    let alice_id = db.user_by_name("Alice").await.unwrap().unwrap().id;
    let no_token = server
        .http
        .post(format!(
            "{}/api/v1/admin/scores/{alice_best}/hide",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let path = format!("/api/v1/admin/scores/{alice_best}/hide");
    let (status, body) = admin(
        server,
        reqwest::Method::POST,
        &path,
        r#"{"reason":"odd replay"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let board = get_scores(server, "Alice", &ranked.md5, 0).await;
    assert_eq!(
        board_lines(&board),
        [
            ("Bob".into(), "45000".into()),
            ("Alice".into(), "40000".into())
        ]
    );
    assert_eq!(db.stats(alice_id, 0).await.unwrap().ranked_score, 40_000);
    let (status, _) = admin(server, reqwest::Method::POST, &path, "").await;
    assert_eq!(status, 409, "hidden already");
    let unhide = format!("/api/v1/admin/scores/{alice_best}/unhide");
    assert_eq!(
        admin(server, reqwest::Method::POST, &unhide, "").await.0,
        200
    );
    assert_eq!(
        board_lines(&get_scores(server, "Alice", &ranked.md5, 0).await),
        [
            ("Alice".into(), "50000".into()),
            ("Bob".into(), "45000".into())
        ]
    );
    assert_eq!(db.stats(alice_id, 0).await.unwrap().ranked_score, 50_000);
    // Deleting Bob's score: off the board at once, gone for good.
    let delete = format!("/api/v1/admin/scores/{bob_score}");
    assert_eq!(
        admin(server, reqwest::Method::DELETE, &delete, "").await.0,
        200
    );
    assert_eq!(
        board_lines(&get_scores(server, "Alice", &ranked.md5, 0).await),
        [("Alice".into(), "50000".into())]
    );
    assert!(db.score_by_id(bob_score).await.unwrap().is_none());
    assert_eq!(
        admin(server, reqwest::Method::DELETE, &delete, "").await.0,
        404
    );

    // A taiko pass above the cap: stored, not on the board, listed for review; approved,
    // it shows.
    let mut taiko: ScoreText = play("Alice", &ranked.md5, 30_000, true, 4);
    taiko.mode = Mode::Taiko;
    taiko.online_checksum = taiko.expected_online_checksum("Alice", OSU_VERSION, "hash:", "");
    let (status, chart) = submit(server, &taiko, PASSWORD).await;
    assert_eq!(status, 200, "{chart}");
    let flagged_id = score_id(&chart);
    let taiko_board = get_scores(server, "Alice", &ranked.md5, 1).await;
    assert!(board_lines(&taiko_board).is_empty(), "{taiko_board}");
    let (status, listed) = admin(
        server,
        reqwest::Method::GET,
        "/api/v1/admin/scores/flagged",
        "",
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["scores"][0]["id"], flagged_id);
    assert!(listed["scores"][0]["pp"].as_f64().unwrap() > f64::from(TAIKO_CAP));
    assert_eq!(db.stats(alice_id, 1).await.unwrap().ranked_score, 0);
    let approve = format!("/api/v1/admin/scores/{flagged_id}/approve");
    assert_eq!(
        admin(server, reqwest::Method::POST, &approve, "").await.0,
        200
    );
    assert_eq!(
        board_lines(&get_scores(server, "Alice", &ranked.md5, 1).await),
        [("Alice".into(), "30000".into())]
    );
    assert_eq!(db.stats(alice_id, 1).await.unwrap().ranked_score, 30_000);
    let (_, listed) = admin(
        server,
        reqwest::Method::GET,
        "/api/v1/admin/scores/flagged",
        "",
    )
    .await;
    assert!(listed.contains(r#""count":0"#), "{listed}");

    // The map status through the API too, and every action in the audit log.
    let (status, body) = admin(
        server,
        reqwest::Method::POST,
        &format!("/api/v1/admin/beatmaps/{LOVED_ID}/status"),
        r#"{"status":"qualified","scope":"map","reason":"checking"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        get_scores(server, "Alice", &loved.md5, 0)
            .await
            .starts_with("4|false|")
    );
    let (status, _) = admin(
        server,
        reqwest::Method::POST,
        "/api/v1/admin/beatmaps/999999/status",
        r#"{"status":"ranked"}"#,
    )
    .await;
    assert_eq!(status, 404);
    let mut actions = audit_actions(server).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "map_status",
            "map_status",
            "map_status",
            "score_approve",
            "score_delete",
            "score_hide",
            "score_unhide"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_set_map_statuses_and_moderate_scores_on_sqlite() {
    let (source, task) = fake_source().await;
    let server = TestServer::start_with(|c| configure(c, &source)).await;
    scenario(&server).await;
    task.abort();
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn staff_set_map_statuses_and_moderate_scores_on_postgres() {
        let (source, task) = fake_source().await;
        let configured = |c: &mut peace::config::Config| configure(c, &source);
        if let Some(server) =
            TestServer::start_on_with(peace_db::Backend::Postgres, configured).await
        {
            scenario(&server).await;
        }
        task.abort();
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn staff_set_map_statuses_and_moderate_scores_on_mysql() {
        let (source, task) = fake_source().await;
        let configured = |c: &mut peace::config::Config| configure(c, &source);
        if let Some(server) = TestServer::start_on_with(peace_db::Backend::Mysql, configured).await
        {
            scenario(&server).await;
        }
        task.abort();
    }
);
