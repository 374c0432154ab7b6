//! `peace pp recalc` end to end: scores whose stored pp is wrong (as an older formula left
//! it) are recomputed with the players' totals and the boards, on every backend; a job
//! survives its node being killed mid-way (kill -9) and finishes after the restart with
//! every score right; and on a two-node cluster both nodes do part of the work.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use peace_db::{Backend, NewScore, NewUser, Privileges, Stats, Submission};
use peace_scores::mods::Mods;
use peace_scores::pp;
use serde_json::Value;

use crate::common::cluster::{ADMIN_TOKEN, COOKIE, TestCluster};
use crate::common::{PASSWORD, TestServer};
use crate::scores::{OSU_VERSION, STD_MAP, get_scores, play, ranked_map, register_all, submit};

const TOKEN: &str = "recalc-admin-token";
/// How long a job in these tests may take at most.
const JOB_DEADLINE: Duration = Duration::from_secs(60);
/// Between two looks at a job's progress.
const POLL: Duration = Duration::from_millis(50);

async fn start_job(http: &reqwest::Client, base: &str, token: &str, body: Value) -> Value {
    let response = http
        .post(format!("{base}/api/v1/admin/recalc"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "starting a recalculation");
    response.json().await.unwrap()
}

/// Polls until `done(job)` or the deadline; the last status.
async fn wait_job(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + JOB_DEADLINE;
    loop {
        // A node being restarted does not answer for a moment.
        if let Ok(response) = http
            .get(format!("{base}/api/v1/admin/recalc"))
            .bearer_auth(token)
            .send()
            .await
            && response.status() == 200
        {
            let job = response.json::<Value>().await.unwrap()["job"].clone();
            if done(&job) {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: still {job}"
            );
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: no answer");
        tokio::time::sleep(POLL).await;
    }
}

fn finished(job: &Value) -> bool {
    job["state"] == "finished"
}

/// A relax play of the test map (the relax board is ordered by pp).
fn relax_play(name: &str, md5: &str, n100: u32) -> peace_scores::submission::ScoreText {
    let mut text = play(name, md5, 500_000, true, 0);
    text.mods = Mods::RELAX;
    text.counts.n300 -= n100 - 1;
    text.counts.n100 = n100;
    text.online_checksum = text.expected_online_checksum(name, OSU_VERSION, "hash:", "");
    text
}

/// Line numbers of `a` and `b` on a getscores answer.
fn board_positions(board: &str, a: &str, b: &str) -> (usize, usize) {
    let at = |name: &str| {
        board
            .lines()
            .position(|l| l.split('|').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} is not on the board:\n{board}"))
    };
    (at(a), at(b))
}

async fn scenario(server: &TestServer) {
    let map = ranked_map(server).await;
    register_all(server, &["Alice", "Bob", "Carol"]).await;
    // Vanilla plays and relax plays; on relax Alice's is the better (fewer 100s).
    for (name, nonce, score) in [("Alice", 1, 900_000), ("Bob", 2, 800_000)] {
        let (status, _) = submit(server, &play(name, &map.md5, score, true, nonce), PASSWORD).await;
        assert_eq!(status, 200);
    }
    for (name, n100) in [("Alice", 1), ("Bob", 4)] {
        let (status, _) = submit(server, &relax_play(name, &map.md5, n100), PASSWORD).await;
        assert_eq!(status, 200);
    }
    let db = server.world().db();
    let alice = db.user_by_name("Alice").await.unwrap().unwrap().id;
    let bob = db.user_by_name("Bob").await.unwrap().unwrap().id;
    // What the server computed on submission: what the recalculation must arrive at.
    let mut right: HashMap<i32, f32> = HashMap::new();
    for user in [alice, bob] {
        for board in [0, 1] {
            let best = db
                .best_score(user, &map.md5, 0, board)
                .await
                .unwrap()
                .unwrap();
            assert!(best.pp > 0.0);
            right.insert(best.id, best.pp);
        }
    }
    let md5 = map.md5.as_str();
    let relax_best = |user| async move { db.best_score(user, md5, 0, 1).await.unwrap().unwrap() };
    let (pa, pb) = (relax_best(alice).await.pp, relax_best(bob).await.pp);
    assert!(pa > pb, "relax pp: Alice {pa}, Bob {pb}");
    let mut right_stats: HashMap<(i32, i16), Stats> = HashMap::new();
    for user in [alice, bob] {
        for mode in [0, 4] {
            right_stats.insert((user, mode), db.stats(user, mode).await.unwrap());
        }
    }

    // An older formula's numbers: Bob ahead on the relax board, every total zero.
    let wrong_alice = relax_best(alice).await.id;
    let wrong_bob = relax_best(bob).await.id;
    for &id in right.keys() {
        let pp = if id == wrong_alice {
            1.0
        } else if id == wrong_bob {
            900.0
        } else {
            0.5
        };
        peace_db::testing::set_score_pp(db, id, pp).await.unwrap();
    }
    for stats in right_stats.values() {
        db.save_stats(&Stats {
            pp: 0,
            accuracy: 0.0,
            ..stats.clone()
        })
        .await
        .unwrap();
    }
    let relax_mods = Mods::RELAX.bits();
    let board = get_scores(server, "Carol", &map.md5, 1, relax_mods).await;
    let (a, b) = board_positions(&board, "Alice", "Bob");
    assert!(b < a, "the wrong pp put Bob first:\n{board}");

    let http = reqwest::Client::new();
    let started = start_job(&http, &server.base, TOKEN, serde_json::json!({})).await;
    assert_eq!(started["started"], true);
    assert_eq!(started["job"]["total"], 4);
    // One job at a time: a second start names the running one, or it finished already.
    let again = http
        .post(format!("{}/api/v1/admin/recalc", server.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"mode": "osu"}))
        .send()
        .await
        .unwrap();
    assert!(
        again.status() == 409 || again.status() == 202,
        "{}",
        again.status()
    );
    // A play submitted while the job runs: computed with the current formula on arrival.
    let (status, _) = submit(server, &play("Carol", &map.md5, 700_000, true, 0), PASSWORD).await;
    assert_eq!(status, 200);
    let job = wait_job(&http, &server.base, TOKEN, "the job", |j| {
        finished(j) && j["id"] == started["job"]["id"]
    })
    .await;
    assert_eq!(job["done"], 4, "{job}");
    assert_eq!(job["shards_finished"], job["shards"]);
    assert_eq!(job["nodes"][0]["done"], 4, "{job}");

    for (&id, &pp) in &right {
        let row = db.score_by_id(id).await.unwrap().unwrap();
        assert_eq!(row.pp, pp, "score {id}");
    }
    for ((user, mode), stats) in &right_stats {
        let now = db.stats(*user, *mode).await.unwrap();
        assert_eq!(now.pp, stats.pp, "player {user}, mode {mode}");
        assert!((now.accuracy - stats.accuracy).abs() < 1e-3);
        assert_eq!(now.playcount, stats.playcount, "counters are left alone");
    }
    // The boards loaded again: Alice is back in front.
    let board = get_scores(server, "Carol", &map.md5, 1, relax_mods).await;
    let (a, b) = board_positions(&board, "Alice", "Bob");
    assert!(a < b, "after the recalculation:\n{board}");

    // Carol's play has the pp a recalculation gives it: a job of hers changes nothing.
    let carol = db.user_by_name("Carol").await.unwrap().unwrap().id;
    let carol_best = db.best_score(carol, md5, 0, 0).await.unwrap().unwrap();
    assert!(carol_best.pp > 0.0);
    let second = start_job(
        &http,
        &server.base,
        TOKEN,
        serde_json::json!({"user": "Carol"}),
    )
    .await;
    assert_eq!(second["job"]["total"], 1, "{second}");
    let job = wait_job(&http, &server.base, TOKEN, "Carol's job", |j| {
        finished(j) && j["id"] == second["job"]["id"]
    })
    .await;
    assert_eq!(job["done"], 1, "{job}");
    let after = db.score_by_id(carol_best.id).await.unwrap().unwrap();
    assert_eq!(after.pp, carol_best.pp);

    // Filters: an unknown player is refused, a mode and a map by id are taken.
    let refused = http
        .post(format!("{}/api/v1/admin/recalc", server.base))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"user": "Nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let unauthorised = http
        .get(format!("{}/api/v1/admin/recalc", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("peace_recalc_scores_total"), "{metrics}");
    assert!(metrics.contains("peace_recalc_job_done"));

    the_first_best_of_a_map_ranked_since(server, &http).await;
}

/// A pass on a pending map is kept, but it is nobody's best (the map has no board) and
/// earns nothing. Staff rank the map, and a recalculation of it gives the pass its pp,
/// makes it the player's best, so that it shows on the board, and counts it.
async fn the_first_best_of_a_map_ranked_since(server: &TestServer, http: &reqwest::Client) {
    const MAP_ID: i32 = 4343;
    let osu =
        String::from_utf8_lossy(STD_MAP).replace("BeatmapID:0", &format!("BeatmapID:{MAP_ID}"));
    let map = server
        .world()
        .scores()
        .beatmaps()
        .import_osu(
            bytes::Bytes::from(osu),
            peace_scores::status::RankedStatus::Pending,
        )
        .await
        .unwrap();
    register_all(server, &["Dana"]).await;
    let (status, _) = submit(server, &play("Dana", &map.md5, 600_000, true, 7), PASSWORD).await;
    assert_eq!(status, 200);
    let db = server.world().db();
    let dana = db.user_by_name("Dana").await.unwrap().unwrap().id;
    assert!(db.best_score(dana, &map.md5, 0, 0).await.unwrap().is_none());

    let ranked = http
        .post(format!(
            "{}/api/v1/admin/beatmaps/{MAP_ID}/status",
            server.base
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"status": "ranked", "scope": "map", "reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ranked.status(), 200, "{}", ranked.text().await.unwrap());
    let job = start_job(
        http,
        &server.base,
        TOKEN,
        serde_json::json!({"map": MAP_ID}),
    )
    .await;
    assert_eq!(job["job"]["total"], 1, "{job}");
    wait_job(http, &server.base, TOKEN, "the ranked map's job", |j| {
        finished(j) && j["id"] == job["job"]["id"]
    })
    .await;

    let best = db
        .best_score(dana, &map.md5, 0, 0)
        .await
        .unwrap()
        .expect("the pass is Dana's best now");
    assert!(best.pp > 0.0, "{best:?}");
    assert!(db.stats(dana, 0).await.unwrap().pp > 0, "and counts");
    let board = get_scores(server, "Carol", &map.md5, 0, 0).await;
    assert!(
        board.lines().any(|l| l.split('|').nth(1) == Some("Dana")),
        "on the board:\n{board}"
    );
}

async fn on(backend: Backend) {
    let Some(server) = TestServer::start_on_with(backend, |c| {
        c.api.admin_token = TOKEN.to_owned();
        c.scores.recalc_poll_ms = 100;
    })
    .await
    else {
        return;
    };
    scenario(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recalculates_pp_totals_and_boards_on_sqlite() {
    on(Backend::Sqlite).await;
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn recalculates_pp_totals_and_boards_on_postgres() {
        on(Backend::Postgres).await;
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn recalculates_pp_totals_and_boards_on_mysql() {
        on(Backend::Mysql).await;
    }
);

/// The hit counts of seeded score `n`: a spread of accuracies, so of pp.
fn seeded_counts(n: u32) -> (i32, i32, i32) {
    let n100 = (n % 5) as i32;
    let n50 = (n % 3) as i32;
    let n300 = 14 - n100 - n50;
    (n300, n100, n50)
}

/// The pp of seeded score `n` by the current formula.
fn seeded_pp(map: &pp::Beatmap, n: u32) -> f32 {
    let (n300, n100, n50) = seeded_counts(n);
    let play = pp::Play {
        mode: 0,
        mods: 0,
        counts: pp::HitCounts {
            n300: n300 as u32,
            n100: n100 as u32,
            n50: n50 as u32,
            ngeki: 0,
            nkatu: 0,
            nmiss: 0,
        },
        max_combo: 20,
        legacy_total_score: Some(100_000 + n),
        passed: true,
    };
    pp::performance(map, &play).unwrap().pp as f32
}

/// What seeded scores start with: no formula gives this.
const WRONG_PP: f32 = 1.0;

/// `players` players with `per_player` passes each of the imported map (md5 `md5`), all
/// stored with [`WRONG_PP`]; the right pp of each score by id.
async fn seed(
    db: &peace_db::Database,
    md5: &str,
    players: u32,
    per_player: u32,
) -> HashMap<i32, f32> {
    let map = pp::Beatmap::parse(STD_MAP).unwrap();
    let mut right = HashMap::new();
    let mut n = 0;
    for p in 0..players {
        let name = format!("seeded{p}");
        let user = db
            .create_user(&NewUser {
                name: &name,
                email: &format!("{name}@example.com"),
                password_bcrypt: "x",
                privileges: Privileges::DEFAULT_NEW,
                country: "XX",
            })
            .await
            .unwrap();
        for _ in 0..per_player {
            n += 1;
            let (n300, n100, n50) = seeded_counts(n);
            let submission = Submission {
                score: NewScore {
                    user_id: user.id,
                    beatmap_md5: md5.to_owned(),
                    mode: 0,
                    board: 0,
                    score: 100_000 + i64::from(n),
                    pp: WRONG_PP,
                    accuracy: 90.0,
                    max_combo: 20,
                    mods: 0,
                    count_300: n300,
                    count_100: n100,
                    count_50: n50,
                    count_geki: 0,
                    count_katu: 0,
                    count_miss: 0,
                    grade: "A".into(),
                    perfect: false,
                    status: 0,
                    online_checksum: format!("seeded-{n}"),
                    play_time: 30_000,
                    client_flags: 0,
                    replay_views: 0,
                    submitted_at: 1_700_000_000,
                    reply: String::new(),
                },
                passed: true,
                listed: true,
                held_for_review: false,
                order: peace_db::BoardOrder::Score,
                stats_mode: 0,
                hits: 14,
            };
            let recorded = db
                .record_score(
                    submission,
                    |b| {
                        let t = pp::player_totals(b);
                        (t.pp, t.accuracy)
                    },
                    &|_| String::new(),
                )
                .await
                .unwrap();
            let peace_db::Recording::Stored { recorded, .. } = recorded else {
                panic!("a seeded score was a duplicate");
            };
            right.insert(recorded.score_id, seeded_pp(&map, n));
        }
    }
    right
}

/// Every player's totals as they should be: from their best score's right pp.
async fn assert_totals_right(db: &peace_db::Database, md5: &str, right: &HashMap<i32, f32>) {
    let rows = peace_db::testing::score_pps(db).await.unwrap();
    let mut players: Vec<i32> = rows.iter().map(|r| r.1).collect();
    players.dedup();
    for user in players {
        let best = db.best_score(user, md5, 0, 0).await.unwrap().unwrap();
        let expected = pp::player_totals(&[(f64::from(right[&best.id]), f64::from(best.accuracy))]);
        let stats = db.stats(user, 0).await.unwrap();
        assert_eq!(stats.pp, expected.pp.round() as i32, "player {user}");
    }
}

/// Imports the test map through `peace beatmaps import` on node `i`; its md5.
async fn import_map(cluster: &TestCluster, i: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("std.osu");
    std::fs::write(&path, STD_MAP).unwrap();
    cluster
        .cli(
            i,
            &[
                "beatmaps",
                "import",
                path.to_str().unwrap(),
                "--status",
                "ranked",
            ],
        )
        .await;
    use md5::{Digest, Md5};
    Md5::digest(STD_MAP)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn node_base(cluster: &TestCluster, i: usize) -> String {
    format!("http://127.0.0.1:{}", cluster.nodes[i].http_port)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_killed_mid_way_resumes_after_the_restart() {
    let mut cluster = TestCluster::planned();
    let node = cluster.add_node("node-1");
    // Tiny batches with a pause, so that the job is surely mid-way when the node dies.
    cluster.nodes[node].extra_config =
        "[scores]\nrecalc_batch = 4\nrecalc_pause_ms = 20\nrecalc_poll_ms = 100\n".into();
    cluster.launch(node, COOKIE);
    cluster.wait_healthy(node).await;
    let md5 = import_map(&cluster, node).await;
    let db = cluster.database().await;
    let right = seed(&db, &md5, 40, 8).await;
    let total = right.len() as i64;

    let http = reqwest::Client::new();
    let base = node_base(&cluster, node);
    start_job(&http, &base, ADMIN_TOKEN, serde_json::json!({})).await;
    let job = wait_job(&http, &base, ADMIN_TOKEN, "a quarter done", |j| {
        j["done"].as_i64().unwrap_or(0) >= total / 4
    })
    .await;
    assert!(!finished(&job), "the job ended before the kill: {job}");
    cluster.kill(node).await;

    // Every score is either untouched or right, and the shards' counts say exactly how
    // many are right: the pp and the cursor were committed together.
    let rows = peace_db::testing::score_pps(&db).await.unwrap();
    let mut fixed = 0;
    for &(id, _, pp) in &rows {
        if pp == right[&id] {
            fixed += 1;
        } else {
            assert_eq!(pp, WRONG_PP, "score {id} is neither old nor right");
        }
    }
    let active = db
        .active_recalc()
        .await
        .unwrap()
        .expect("the job is unfinished");
    let done: i64 = db
        .recalc_shards(active.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.done)
        .sum();
    assert_eq!(done, fixed, "scores counted done are the scores fixed");
    assert!(fixed < total, "the kill came after the end");

    cluster.launch(node, COOKIE);
    cluster.wait_healthy(node).await;
    let job = wait_job(&http, &base, ADMIN_TOKEN, "the resumed job", finished).await;
    assert_eq!(job["done"].as_i64(), Some(total), "{job}");
    for (id, _, pp) in peace_db::testing::score_pps(&db).await.unwrap() {
        assert_eq!(pp, right[&id], "score {id}");
    }
    assert_totals_right(&db, &md5, &right).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn both_nodes_of_a_cluster_take_part() {
    let mut cluster = TestCluster::planned();
    for name in ["node-1", "node-2"] {
        let i = cluster.add_node(name);
        cluster.nodes[i].extra_config =
            "[scores]\nrecalc_batch = 4\nrecalc_pause_ms = 10\nrecalc_poll_ms = 100\n".into();
    }
    cluster.launch(0, COOKIE);
    cluster.wait_healthy(0).await;
    cluster.launch(1, COOKIE);
    cluster.wait_formed(&[0, 1]).await;
    let md5 = import_map(&cluster, 0).await;
    let db = cluster.database().await;
    let right = seed(&db, &md5, 40, 3).await;

    let http = reqwest::Client::new();
    // Started through node-2 with the command line, which follows it to its end (no
    // terminal here: progress lines instead of the bar); read through node-1.
    let output = cluster.cli(1, &["pp", "recalc", "--mode", "osu"]).await;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("started") && printed.contains("finished"),
        "{printed}"
    );
    let job = wait_job(
        &http,
        &node_base(&cluster, 0),
        ADMIN_TOKEN,
        "the job",
        finished,
    )
    .await;
    assert_eq!(job["done"].as_i64(), Some(right.len() as i64), "{job}");
    let nodes = job["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{job}");
    for node in nodes {
        assert!(node["done"].as_i64().unwrap() > 0, "{job}");
    }
    for (id, _, pp) in peace_db::testing::score_pps(&db).await.unwrap() {
        assert_eq!(pp, right[&id], "score {id}");
    }
    assert_totals_right(&db, &md5, &right).await;
}
