//! Keeps the bench from rotting: every scenario runs for a moment, with a handful of
//! sessions, against a real server started here, and must report sane figures. This is
//! not a benchmark (nothing here is timed against a target); docs/benchmarks.md has the
//! real runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use peace::{Config, Server};
use serde_json::Value;

/// Starts a server the way `crates/bench/config/server.toml` configures one.
async fn server(dir: &tempfile::TempDir) -> Server {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.database.url = format!("sqlite://{}/peace.db", dir.path().display());
    config.login.bcrypt_cost = 4;
    config.sessions.secret = "smoke".into();
    config.limits.registrations_per_ip = 1_000_000;
    config.limits.messages_per_window = 1_000_000;
    config.storage.folder = dir.path().join("files").display().to_string();
    config.api.admin_token = SMOKE_TOKEN.into();
    // The map of the score scenarios, ranked, as `peace beatmaps import` makes it.
    let db = peace::open_database(&config).await.unwrap();
    peace::import_beatmaps(&config, db, std::path::Path::new(MAP), "ranked")
        .await
        .unwrap();
    Server::start(&config).await.unwrap()
}

/// The admin token of the smoke server (the `recalc` scenario's API).
const SMOKE_TOKEN: &str = "smoke-admin-token";

/// The test suite's osu!standard map.
const MAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scores/tests/maps/std.osu");

/// Runs `peace-bench` with `args` and returns its JSON line.
fn bench(url: &str, args: &[String]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_peace-bench"))
        .args(["--url", url, "--duration", "0.6", "--warmup", "0.1"])
        .args(["--connections", "4", "--setup-connections", "4"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "peace-bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("a JSON line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {last}"))
}

fn num(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_runs_against_a_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir).await;
    let url = format!("http://{}", server.addr.expect("an HTTP listener"));
    // The bench is a blocking child process: run it off the runtime that serves it.
    let run = |args: &[&str]| {
        let (url, args) = (
            url.clone(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        tokio::task::spawn_blocking(move || bench(&url, &args))
    };

    let login = run(&[
        "login",
        "--users",
        "4",
        "--bcrypt-cost",
        "4",
        "--bcrypt-seconds",
        "0.2",
    ])
    .await
    .unwrap();
    assert_eq!(num(&login, "cold_logins"), 4.0);
    assert_eq!(num(&login, "cold_errors") + num(&login, "warm_errors"), 0.0);
    assert!(num(&login, "warm_per_sec") > 0.0);
    assert!(num(&login, "baseline_per_sec") > 0.0);
    assert!(num(&login, "bcrypt_alone_per_sec") > 0.0);
    assert_eq!(login["cold_guaranteed"], true, "{login}");

    let bursts = run(&[
        "--no-register",
        "login",
        "--users",
        "4",
        "--bursts",
        "2",
        "--bcrypt-cost",
        "4",
        "--bcrypt-seconds",
        "0.2",
    ])
    .await
    .unwrap();
    assert_eq!(num(&bursts, "warm_logins"), 8.0, "{bursts}");
    assert_eq!(num(&bursts, "warm_errors"), 0.0, "{bursts}");
    assert_eq!(num(&bursts, "baseline_logins"), 8.0, "{bursts}");

    let poll = run(&["poll", "--sessions", "4"]).await.unwrap();
    assert!(num(&poll, "server_polls") > 0.0, "{poll}");
    assert_eq!(num(&poll, "server_errors"), 0.0, "{poll}");
    assert!(num(&poll, "baseline_polls") > 0.0);
    assert!(num(&poll, "server_vs_baseline") > 0.0);
    assert!(num(&poll, "server_p50_ms") <= num(&poll, "server_p99_ms"));

    let idle = run(&[
        "idle",
        "--sessions",
        "6",
        "--interval-ms",
        "100",
        "--no-baseline",
    ])
    .await
    .unwrap();
    assert_eq!(idle["all_answered"], true, "{idle}");
    assert!(num(&idle, "server_scheduled") >= 6.0, "{idle}");

    let chat = run(&[
        "chat",
        "--members",
        "5",
        "--messages",
        "4",
        "--interval-ms",
        "20",
    ])
    .await
    .unwrap();
    assert_eq!(num(&chat, "delivered"), 20.0, "{chat}");
    assert!(num(&chat, "server_fanouts") >= 4.0, "{chat}");
    assert!(chat["server_fanout_p99_ms_at_most"].is_number(), "{chat}");

    let spectate = run(&["spectate", "--spectators", "3", "--bundles", "4"])
        .await
        .unwrap();
    assert_eq!(num(&spectate, "delivered"), 12.0, "{spectate}");

    let multiplayer = run(&[
        "match",
        "--players",
        "3",
        "--updates",
        "3",
        "--interval-ms",
        "40",
    ])
    .await
    .unwrap();
    assert_eq!(num(&multiplayer, "delivered"), 18.0, "{multiplayer}");
    assert_eq!(num(&multiplayer, "duplicates"), 0.0, "{multiplayer}");

    let getscores = run(&["getscores", "--map", MAP, "--players", "3"])
        .await
        .unwrap();
    assert_eq!(num(&getscores, "board_scores"), 3.0, "{getscores}");
    assert!(num(&getscores, "server_requests") > 0.0, "{getscores}");
    assert_eq!(num(&getscores, "server_errors"), 0.0, "{getscores}");
    assert!(num(&getscores, "baseline_requests") > 0.0, "{getscores}");
    assert!(num(&getscores, "server_vs_baseline") > 0.0, "{getscores}");

    let submit = run(&["submit", "--map", MAP, "--players", "3"])
        .await
        .unwrap();
    assert!(num(&submit, "submissions") > 0.0, "{submit}");
    assert_eq!(num(&submit, "errors"), 0.0, "{submit}");

    let burst = run(&[
        "submit",
        "--map",
        MAP,
        "--players",
        "3",
        "--burst",
        "3",
        "--rounds",
        "2",
    ])
    .await
    .unwrap();
    assert_eq!(num(&burst, "submissions"), 6.0, "{burst}");
    assert_eq!(num(&burst, "non_2xx"), 0.0, "{burst}");

    // Every score the submissions stored, recalculated.
    let recalc = run(&["recalc", "--token", SMOKE_TOKEN]).await.unwrap();
    assert!(num(&recalc, "scores") > 0.0, "{recalc}");

    // One node: no other node to cross to, so this is the noise-floor mode.
    let cluster = run(&["cluster", "--gateways", &url, "--sessions", "3"])
        .await
        .unwrap();
    assert!(num(&cluster, "polls") > 0.0, "{cluster}");
    assert_eq!(num(&cluster, "errors"), 0.0, "{cluster}");
    assert_eq!(cluster["cross_node"], false, "{cluster}");
    assert_eq!(num(&cluster, "sessions_on_node-1"), 3.0, "{cluster}");

    server.shutdown().await;
}
