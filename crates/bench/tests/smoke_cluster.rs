//! Keeps the cluster scenarios from rotting: `cluster` and `migrate` run for a moment
//! against a real two-node cluster started here. Not a benchmark; docs/benchmarks.md has
//! the real runs.
//!
//! Nodes must be separate processes (ractor's process groups are global to a process),
//! and a test of this package cannot name the `peace` binary of another. So this test
//! has no libtest harness (`harness = false` in Cargo.toml): started with
//! `PEACE_BENCH_NODE_CONFIG` set, the same executable is a node (the `peace` library's
//! `Server`, as `peace serve` starts it); started without, it is the test, which starts
//! itself twice as the nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Tells this executable to be a node with the configuration file it names.
const NODE_ENV: &str = "PEACE_BENCH_NODE_CONFIG";
const ADMIN_TOKEN: &str = "smoke-admin";
/// Longest the two nodes may take to form a cluster with shards on both.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);

fn main() {
    if let Some(config) = std::env::var_os(NODE_ENV) {
        node(Path::new(&config));
        return;
    }
    print!("test cluster_scenarios_run_against_two_nodes ... ");
    let started = Instant::now();
    cluster_scenarios_run_against_two_nodes();
    println!("ok ({:.1} s)", started.elapsed().as_secs_f64());
}

/// The node side: serves until its stdin closes (the test ended or died), then stops
/// without draining (the test is over; nothing needs to survive).
fn node(config: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = peace::Config::load(config, true).unwrap();
        let server = peace::Server::start(&config).await.unwrap();
        println!("serving {}", server.addr.expect("an HTTP listener"));
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .unwrap();
        server.shutdown().await;
    });
}

/// A free port for a cluster listener (the HTTP listeners bind port 0 and say which
/// port they got; a seed's port must be known before its node starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The same settings as crates/bench/config/cluster-node-*.toml, with a fast heartbeat
/// so that the cluster forms and drains in well under a second.
fn config(name: &str, db: &Path, listen: u16, seed: u16) -> String {
    format!(
        r#"[node]
name = "{name}"
[http]
addr = "127.0.0.1:0"
[database]
url = "sqlite://{db}"
[sessions]
secret = "smoke"
idle_timeout_secs = 600
[login]
bcrypt_cost = 4
[limits]
registrations_per_ip = 1000000
messages_per_window = 1000000
[api]
admin_token = "{ADMIN_TOKEN}"
[cluster]
listen = "127.0.0.1:{listen}"
seeds = ["127.0.0.1:{seed}"]
cookie = "smoke-cookie"
heartbeat_ms = 200
down_after_ms = 2000
join_grace_ms = 1000
"#,
        db = db.display()
    )
}

/// A node process and its gateway's URL. Dropping it ends the process.
struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(dir: &Path, name: &str, listen: u16, seed: u16) -> Node {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config(name, &dir.join("peace.db"), listen, seed)).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(NODE_ENV, &path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("serving ")
        .unwrap_or_else(|| panic!("{name} did not start: {line:?}; see its log"));
    Node {
        url: format!("http://{addr}"),
        child,
    }
}

/// What the nodes logged (warnings and worse), for a failure's message.
fn logs(dir: &Path) -> String {
    ["node-1", "node-2"]
        .iter()
        .map(|n| {
            let log = std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default();
            format!("--- {n}\n{log}")
        })
        .collect()
}

/// `GET path` on `url` as JSON, over a plain HTTP/1.0 exchange (the bench's own client
/// lives in its binary).
fn get_json(url: &str, path: &str) -> Option<Value> {
    let addr = url.strip_prefix("http://")?;
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    serde_json::from_str(reply.split_once("\r\n\r\n")?.1).ok()
}

/// Both nodes up in node 1's view, each with shards.
fn formed(url: &str) -> bool {
    get_json(url, "/api/v1/cluster").is_some_and(|v| {
        v["nodes"].as_array().is_some_and(|nodes| {
            nodes.len() == 2
                && nodes
                    .iter()
                    .all(|n| n["status"] == "up" && n["shards"].as_u64().unwrap_or(0) > 0)
        })
    })
}

/// Runs `peace-bench` with `args` and returns its JSON line.
fn bench(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_peace-bench"))
        .args(["--duration", "0.6", "--warmup", "0.1"])
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

fn cluster_scenarios_run_against_two_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let seed = free_port();
    // Node 1 alone first: it migrates the database before node 2 opens it.
    let one = start_node(dir.path(), "node-1", seed, seed);
    let two = start_node(dir.path(), "node-2", free_port(), seed);
    let deadline = Instant::now() + FORM_TIMEOUT;
    while !formed(&one.url) {
        assert!(
            Instant::now() < deadline,
            "no two-node cluster within {FORM_TIMEOUT:?}:\n{}",
            logs(dir.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let gateways = format!("{},{}", one.url, two.url);

    let cluster = bench(&["cluster", "--gateways", &gateways, "--sessions", "6"]);
    assert_eq!(cluster["cross_node"], true, "{cluster}");
    assert_eq!(num(&cluster, "errors"), 0.0, "{cluster}");
    assert!(num(&cluster, "other_node_p50_ms") > 0.0, "{cluster}");

    let migrate = bench(&[
        "migrate",
        "--gateways",
        &gateways,
        "--sessions",
        "12",
        "--receivers",
        "3",
        "--interval-ms",
        "100",
        "--lead-secs",
        "0.5",
        "--admin-token",
        ADMIN_TOKEN,
    ]);
    assert_eq!(migrate["drain_completed"], true, "{migrate}");
    assert!(num(&migrate, "sessions_on_drain_node") >= 1.0, "{migrate}");
    assert!(
        num(&migrate, "entities_out") >= num(&migrate, "sessions_on_drain_node"),
        "{migrate}"
    );
    assert!(num(&migrate, "messages_received") > 0.0, "{migrate}");
    assert_eq!(migrate["messages_clean"], true, "{migrate}");
    assert_eq!(num(&migrate, "poll_errors"), 0.0, "{migrate}");
    assert!(migrate["rebalance_even_share_s"].is_number(), "{migrate}");
    drop((one, two));
}
