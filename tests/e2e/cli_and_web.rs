//! The `peace` binary's commands, the `/web/*` and `/api/v1/*` endpoints, body limits and
//! host routing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::raw_http::raw_post;
use crate::common::{PASSWORD, TestServer, decode, login_body, md5_hex};
use peace_bancho::{ServerPacket, client as c};
use reqwest::StatusCode;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// The command line.

/// A config that keeps bcrypt cheap, so the test does not spend seconds hashing.
const FAST_CONFIG: &str = "[login]\nbcrypt_cost = 4\n";

/// Runs the real binary in `dir` (so no stray `cluster.toml` is picked up).
fn peace(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peace"))
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("running the peace binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `N` of the "N migration(s) applied" line.
fn migrations_applied(o: &Output) -> u32 {
    let out = stdout(o);
    out.lines()
        .find_map(|l| l.strip_suffix(" migration(s) applied"))
        .unwrap_or_else(|| panic!("no migrations line in {out:?}"))
        .trim()
        .parse()
        .unwrap()
}

fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}/{file}", dir.display())
}

fn login_code(packets: &[ServerPacket]) -> Option<i32> {
    packets.iter().find_map(|p| match p {
        ServerPacket::UserId(u) => Some(u.user_id),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_migrates_and_adds_users_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fast.toml"), FAST_CONFIG).unwrap();
    let url = sqlite_url(d, "p.db");
    let base = ["--config", "fast.toml", "--database-url", url.as_str()];
    let run = |args: &[&str]| peace(d, &[&base[..], args].concat());

    let out = run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(migrations_applied(&out) > 0, "{}", stdout(&out));
    assert!(d.join("p.db").exists());
    let out = run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(migrations_applied(&out), 0, "migrating twice is a no-op");

    let out = run(&["user", "add", "Alice", "--password", "secret pass"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created = stdout(&out);
    let alice_id: i32 = created
        .lines()
        .find_map(|l| l.strip_prefix("created user Alice with id "))
        .unwrap_or_else(|| panic!("{created}"))
        .trim()
        .parse()
        .unwrap();

    // Taken, in any case or spacing.
    for name in ["Alice", "ALICE", "alice"] {
        let out = run(&["user", "add", name, "--password", "other pass"]);
        assert!(!out.status.success(), "{name}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("username: This name is already taken."),
            "{err}"
        );
        assert!(err.contains("not created"), "{err}");
    }
    // Invalid names, passwords and emails, each explained under its field.
    for (args, expected) in [
        (
            &["user", "add", "x", "--password", "secret pass"][..],
            "username: Must be 2 to 15",
        ),
        (
            &["user", "add", "Bad!Name", "--password", "secret pass"][..],
            "username: May contain only",
        ),
        (
            &["user", "add", "Peace", "--password", "secret pass"][..],
            "username: This name is reserved.",
        ),
        (
            &["user", "add", "Bob", "--password", "short"][..],
            "password: Must be 8 to 32",
        ),
        (
            &[
                "user",
                "add",
                "Bob",
                "--password",
                "secret pass",
                "--email",
                "nope",
            ][..],
            "user_email: Not a valid email address.",
        ),
        (
            &[
                "user",
                "add",
                "Bob",
                "--password",
                "secret pass",
                "--email",
                "ALICE@peace.invalid",
            ][..],
            "user_email: This email is already in use.",
        ),
    ] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!stdout(&out).contains("created user"), "{args:?}");
    }
    // Without --password it is read from standard input; an empty one is refused.
    let out = run(&["user", "add", "Bob"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no password"), "{}", stderr(&out));

    let out = run(&[
        "user",
        "add",
        "Carol",
        "--password",
        "carol's pass",
        "--email",
        "Carol@Example.com",
        "--admin",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A server on the same database file sees both accounts.
    let url2 = url.clone();
    let server = TestServer::start_with(move |c| c.database.url = url2).await;
    let alice = server.login("Alice", "secret pass").await;
    assert_eq!(alice.user_id, alice_id);
    let (token, packets) = server
        .login_raw(login_body("Alice", "other pass", "b20240101.1"))
        .await;
    assert_eq!((token.as_str(), login_code(&packets)), ("no", Some(-1)));

    let db = server.world().db();
    let alice = db.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(alice.email, "alice@peace.invalid", "the default email");
    assert!(!alice.privileges().contains(peace_db::Privileges::ADMIN));
    let carol = db.user_by_name("carol").await.unwrap().unwrap();
    assert_eq!(carol.email, "carol@example.com");
    assert!(carol.privileges().contains(peace_db::Privileges::ADMIN));
    assert!(carol.privileges().contains(peace_db::Privileges::NORMAL));
    assert!(
        carol.password_bcrypt.starts_with("$2") && carol.password_bcrypt.contains("$04$"),
        "hashed with the configured cost: {}",
        carol.password_bcrypt
    );
    let carol = server.login("Carol", "carol's pass").await;
    let owner = i32::from(peace_bancho::client_privileges::OWNER);
    assert!(
        carol
            .login_packets
            .iter()
            .any(|p| matches!(p, ServerPacket::Privileges(p) if p.privileges & owner != 0)),
        "an admin is shown as such: {:?}",
        carol.login_packets
    );
    let alice = server.login("Alice", "secret pass").await;
    assert!(
        alice
            .login_packets
            .iter()
            .any(|p| matches!(p, ServerPacket::Privileges(p) if p.privileges & owner == 0))
    );
    // Nobody else was created by the failed attempts.
    assert!(db.user_by_name("bob").await.unwrap().is_none());
    assert!(db.user_by_name("x").await.unwrap().is_none());
}

#[test]
fn cli_user_add_migrates_a_fresh_database_and_rejects_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fast.toml"), FAST_CONFIG).unwrap();
    let url = sqlite_url(d, "fresh.db");
    let out = peace(
        d,
        &[
            "--config",
            "fast.toml",
            "--database-url",
            &url,
            "user",
            "add",
            "Dana",
            "--password",
            "dana pass",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created user Dana with id"));

    // Unknown keys in the config are an error naming the file, not silently ignored.
    std::fs::write(d.join("typo.toml"), "[login]\nbcrypt_cots = 4\n").unwrap();
    let out = peace(
        d,
        &["--config", "typo.toml", "--database-url", &url, "migrate"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("typo.toml") && err.contains("bcrypt_cots"),
        "{err}"
    );
}

#[test]
fn a_configuration_file_named_on_the_command_line_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = sqlite_url(d, "named.db");
    let out = peace(
        d,
        &[
            "--config",
            "no-such.toml",
            "--database-url",
            &url,
            "migrate",
        ],
    );
    assert!(!out.status.success(), "a missing named file was ignored");
    let err = stderr(&out);
    assert!(err.contains("no-such.toml"), "{err}");
    assert!(
        !d.join("named.db").exists(),
        "nothing may run on defaults when the named file is missing"
    );
    // The default file may be absent: defaults then.
    let out = peace(d, &["--database-url", &url, "migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn a_busy_port_ends_the_server_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fast.toml"), FAST_CONFIG).unwrap();
    let url = sqlite_url(d, "busy.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    for (flags, what) in [
        (vec!["--http-addr", busy.as_str()], "[http] addr"),
        (
            vec![
                "--http-addr",
                "127.0.0.1:0",
                "--cluster-addr",
                busy.as_str(),
            ],
            "[cluster] listen",
        ),
    ] {
        let args = [
            &[
                "--config",
                "fast.toml",
                "--database-url",
                &url,
                "serve",
                "--cookie",
                "a cookie",
                "--secret",
                "a secret",
            ][..],
            &flags,
        ]
        .concat();
        let out = peace_with_timeout(d, &args, Duration::from_secs(60)).await;
        assert!(!out.status.success(), "{what}: served on a busy port");
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{what}: {err}");
        assert!(
            errors[0].contains(&busy) && errors[0].contains(what),
            "{what}: {err}"
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
}

/// Runs the binary like [`peace`], killing it if it has not ended within `limit`.
async fn peace_with_timeout(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_peace"))
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("peace {args:?} still ran after {limit:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_add_reads_the_password_from_standard_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fast.toml"), FAST_CONFIG).unwrap();
    let url = sqlite_url(d, "stdin.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_peace"))
        .current_dir(d)
        .env("NO_COLOR", "1")
        .args(["--config", "fast.toml", "--database-url", &url])
        .args(["user", "add", "Quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"kept out of history\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created user Quiet"));

    // The account logs in with exactly that line (without its line break).
    let mut config = peace::Config::load(&d.join("fast.toml"), true).unwrap();
    config.http.addr = "127.0.0.1:0".into();
    config.sessions.secret = "test-secret".into();
    config.database.url = url.clone();
    let server = peace::Server::start(&config).await.unwrap();
    let base = format!("http://{}", server.addr.unwrap());
    let http = reqwest::Client::new();
    for (password, accepted) in [
        ("kept out of history", true),
        ("kept out of history\n", false),
    ] {
        let response = http
            .post(&base)
            .body(login_body("Quiet", password, "b20240101.1"))
            .send()
            .await
            .unwrap();
        let packets = decode(&response.bytes().await.unwrap());
        let code = login_code(&packets).unwrap();
        assert_eq!(code > 0, accepted, "{password:?}: {code}");
    }
    server.shutdown().await;

    // Empty input is refused, not turned into an empty password.
    let mut child = Command::new(env!("CARGO_BIN_EXE_peace"))
        .current_dir(d)
        .env("NO_COLOR", "1")
        .args(["--config", "fast.toml", "--database-url", &url])
        .args(["user", "add", "Empty"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no password"), "{}", stderr(&out));
}

#[test]
fn logs_to_a_pipe_have_no_colours_and_json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `serve` on a fresh database logs its migration, then stops at the busy port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let serve = |format: &str, db: &str| {
        Command::new(env!("CARGO_BIN_EXE_peace"))
            .current_dir(d)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .args(["--log-format", format, "--database-url", &sqlite_url(d, db)])
            .args(["serve", "--http-addr", &busy])
            .output()
            .unwrap()
    };
    // Text, into a pipe, without NO_COLOR: still no escape sequences.
    let out = serve("text", "text.db");
    let text = stdout(&out);
    assert!(text.contains("INFO"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");

    let out = serve("json", "json.db");
    let text = stdout(&out);
    let logs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(!logs.is_empty(), "{text}");
    assert!(
        logs.iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string()),
        "{text}"
    );
    // The error that ended it is on standard error, as one line.
    assert!(
        stderr(&out).starts_with("error: cannot listen on"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cli_default_email_does_not_depend_on_the_domain() {
    // Without --email the account gets a made-up address from the name and the
    // configured domain; a domain like `localhost` (or none) must not make `user add`
    // fail with an error about an email the operator never typed.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = sqlite_url(d, "domain.db");
    for (i, domain) in ["localhost", ""].into_iter().enumerate() {
        let file = format!("domain{i}.toml");
        std::fs::write(
            d.join(&file),
            format!("{FAST_CONFIG}[http]\ndomain = \"{domain}\"\n"),
        )
        .unwrap();
        let name = format!("Local{i}");
        let out = peace(
            d,
            &[
                "--config",
                &file,
                "--database-url",
                &url,
                "user",
                "add",
                &name,
                "--password",
                "secret pass",
            ],
        );
        assert!(
            out.status.success(),
            "domain {domain:?}: {}",
            stderr(&out).lines().take(3).collect::<Vec<_>>().join("\n")
        );
    }
}

/// Kills the child if the test ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Removes ANSI colour sequences from a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn without_migrate_on_start_a_database_with_pending_migrations_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = peace::Config::default();
    config.http.addr = "127.0.0.1:0".into();
    config.sessions.secret = "test-secret".into();
    config.database.url = sqlite_url(dir.path(), "stale.db");
    config.database.migrate_on_start = false;

    // A database nobody migrated: the server refuses to start and says what to do,
    // rather than failing query by query later.
    let Err(refused) = peace::Server::start(&config).await else {
        panic!("a database with pending migrations was served");
    };
    let refused = format!("{refused:#}");
    assert!(refused.contains("pending migration"), "{refused}");
    assert!(refused.contains("peace migrate"), "{refused}");

    // Migrated by `peace migrate`, the same configuration serves.
    let migrated = peace(
        dir.path(),
        &["migrate", "--database-url", &config.database.url],
    );
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(migrations_applied(&migrated) > 0);
    let server = peace::Server::start(&config).await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fast.toml"), FAST_CONFIG).unwrap();
    let url = sqlite_url(d, "serve.db");
    let base = ["--config", "fast.toml", "--database-url", url.as_str()];
    let out = peace(
        d,
        &[
            &base[..],
            &["user", "add", "Eve", "--password", "eve's pass"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let child = Command::new(env!("CARGO_BIN_EXE_peace"))
        .current_dir(d)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .args(base)
        .args(["serve", "--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(strip_ansi(&line)).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no `serving` line ({e}); log: {log:#?}"));
        if line.contains("serving") {
            let addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
                .unwrap_or_else(|| panic!("no addr in {line:?}"))
                .to_owned();
            break addr;
        }
        log.push(line);
    };
    let base_url = format!("http://{addr}");
    let http = reqwest::Client::new();

    let health: Value = http
        .get(format!("{base_url}/api/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let response = http
        .post(&base_url)
        .body(login_body("Eve", "eve's pass", "b20240101.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_ne!(response.headers()["cho-token"], "no");
    let packets = decode(&response.bytes().await.unwrap());
    assert!(login_code(&packets).unwrap() > 0, "{packets:?}");

    let pid = child.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("shutting down")),
        "{rest:#?}"
    );
    assert!(
        http.get(format!("{base_url}/api/v1/health"))
            .send()
            .await
            .is_err(),
        "nothing listens after the shutdown"
    );
}

// ---------------------------------------------------------------------------------------
// Web and API endpoints.

#[tokio::test(flavor = "multi_thread")]
async fn web_endpoints_the_client_calls_around_login() {
    let server = TestServer::start().await;
    let get = |path: &str| server.http.get(format!("{}{path}", server.base)).send();

    let response = get("/web/bancho_connect.php?v=b20240101.1&u=x&h=y")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!response.text().await.unwrap().contains("verify"));

    let response = get("/web/osu-getseasonal.php").await.unwrap();
    assert_eq!(response.status(), 200);
    let seasonal: Value = response.json().await.unwrap();
    assert!(seasonal.is_array(), "{seasonal}");
    let response = get("/web/check-updates.php?action=check&stream=stable40&time=1")
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updates: Value = response.json().await.unwrap();
    assert_eq!(updates, serde_json::json!([]), "no files to update");

    for path in [
        "/web/osu-markasread.php?channel=%23osu",
        "/web/lastfm.php?b=a1",
    ] {
        assert_eq!(get(path).await.unwrap().status(), 200, "{path}");
    }
    let response = server
        .http
        .post(format!("{}/web/osu-error.php", server.base))
        .body("crash report")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    for path in ["/web/x.php", "/web/osu-nothing.php?q=x", "/nothing/here"] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"error": "not found"}), "{path}");
    }

    let response = get("/").await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("Peace") && text.contains("0 online"),
        "{text}"
    );
    assert!(text.contains("-devserver peace.local"), "{text}");
    let _alice = server.player("Alice").await;
    let text = get("/").await.unwrap().text().await.unwrap();
    assert!(text.contains("1 online"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn getfriends_lists_friends_added_through_bancho() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    let bob = server.player("Bob").await;
    let carol = server.player("Carol").await;
    let friends = |name: &str, password: &str| {
        let url = format!(
            "{}/web/osu-getfriends.php?u={}&h={}",
            server.base,
            name.replace(' ', "%20"),
            md5_hex(password)
        );
        let http = server.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };
    let ids = |body: &str| -> Vec<i32> {
        assert!(body.is_empty() || body.ends_with('\n'), "{body:?}");
        let mut ids: Vec<i32> = body.lines().map(|l| l.parse().unwrap()).collect();
        ids.sort_unstable();
        ids
    };

    assert_eq!(
        friends("Alice", PASSWORD).await,
        (StatusCode::OK, String::new())
    );
    alice
        .send([
            c::FriendAdd {
                user_id: bob.user_id,
            }
            .into(),
            c::FriendAdd {
                user_id: carol.user_id,
            }
            .into(),
        ])
        .await;
    let (status, body) = friends("Alice", PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), [bob.user_id, carol.user_id]);
    // Friendship is one-way; the name is matched like a login's.
    assert_eq!(
        friends("bob", PASSWORD).await,
        (StatusCode::OK, String::new())
    );
    let (_, body) = friends("ALICE", PASSWORD).await;
    assert_eq!(ids(&body), [bob.user_id, carol.user_id]);

    alice
        .send([c::FriendRemove {
            user_id: carol.user_id,
        }
        .into()])
        .await;
    let (_, body) = friends("Alice", PASSWORD).await;
    assert_eq!(ids(&body), [bob.user_id]);

    // Wrong or missing credentials.
    for (name, password) in [
        ("Alice", "wrong password"),
        ("Nobody", PASSWORD),
        ("Peace", ""),
    ] {
        let (status, body) = friends(name, password).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid credentials");
        assert!(!body.to_string().contains(&bob.user_id.to_string()));
    }
    for query in ["", "?u=Alice", &format!("?h={}", md5_hex(PASSWORD))] {
        let response = server
            .http
            .get(format!("{}/web/osu-getfriends.php{query}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn api_health_and_online_users() {
    let server = TestServer::start().await;
    let get_json = |path: &str| {
        let url = format!("{}{path}", server.base);
        let http = server.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
            response.json::<Value>().await.unwrap()
        }
    };

    let health = get_json("/api/v1/health").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["database"], "ok", "{health}");
    assert_eq!(health["online"], 0, "{health}");
    let online = get_json("/api/v1/users/online").await;
    assert_eq!(online, serde_json::json!({"count": 0, "users": []}));

    let alice = server.player("Alice").await;
    let bob = server.player("Bob").await;
    let online = get_json("/api/v1/users/online").await;
    assert_eq!(online["count"], 2, "{online}");
    let users = online["users"].as_array().unwrap();
    let listed: Vec<(i64, &str)> = users
        .iter()
        .map(|u| (u["id"].as_i64().unwrap(), u["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            (i64::from(alice.user_id), "Alice"),
            (i64::from(bob.user_id), "Bob")
        ]
    );
    assert!(
        users
            .iter()
            .all(|u| u["online_since"].as_i64().unwrap() > 0)
    );
    assert_eq!(get_json("/api/v1/health").await["online"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_of_one_is_live_and_ready_and_locates_its_lobby() {
    let server = TestServer::start().await;
    let get = |path: &str| server.http.get(format!("{}{path}", server.base)).send();

    let live = get("/livez").await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "live");
    // A node of one deals itself the whole shard table before it serves, and its
    // database is migrated at start: ready at once.
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let view: Value = get("/api/v1/cluster").await.unwrap().json().await.unwrap();
    assert_eq!(view["nodes"][0]["status"], "up", "{view}");

    // The lobby is the one entity without a key.
    let lobby = get("/api/v1/entities/lobby").await.unwrap();
    assert_eq!(lobby.status(), 200);
    let lobby: Value = lobby.json().await.unwrap();
    assert_eq!(lobby["kind"], "lobby", "{lobby}");
    assert_eq!(lobby["node"], server.config.node.name.as_str(), "{lobby}");
    // The other kinds need their key, and say so.
    let keyless_user = get("/api/v1/entities/user").await.unwrap();
    assert_eq!(keyless_user.status(), 400);
    assert!(keyless_user.text().await.unwrap().contains("needs a key"));
    assert_eq!(get("/api/v1/entities/planet").await.unwrap().status(), 400);

    // Told to stop (SIGTERM), it is live but no longer ready, while it drains.
    server.world().begin_stopping();
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert!(body["reasons"].to_string().contains("stopping"), "{body}");
    assert_eq!(get("/livez").await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_calls_need_the_bearer_token_and_are_off_without_one() {
    const TOKEN: &str = "an admin token of some length";
    let server = TestServer::start_with(|c| c.api.admin_token = TOKEN.to_owned()).await;
    let call = |path: &str, authorization: Option<String>| {
        let mut request = server.http.post(format!("{}{path}", server.base));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let refused = [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(format!("bearer{TOKEN}")),
    ];
    for authorization in refused {
        let shown = format!("{authorization:?}");
        assert_eq!(
            call("/api/v1/cluster/rebalance", authorization.clone()).await,
            401,
            "{shown}"
        );
        assert_eq!(
            call("/api/v1/cluster/nodes/peace/drain", authorization).await,
            401,
            "{shown}"
        );
    }
    let bearer = Some(format!("Bearer {TOKEN}"));
    assert_eq!(call("/api/v1/cluster/rebalance", bearer).await, 200);
    // The reads need no token.
    let view = server.http.get(format!("{}/api/v1/cluster", server.base));
    assert_eq!(view.send().await.unwrap().status(), 200);

    // With no token configured the admin calls are off for everyone: 403, whatever is sent.
    let open = TestServer::start().await;
    for authorization in ["", "Bearer ", "Bearer anything"] {
        let response = open
            .http
            .post(format!("{}/api/v1/cluster/rebalance", open.base))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{authorization:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bancho_bodies_are_413_and_the_server_carries_on() {
    let server = TestServer::start().await;
    let mut alice = server.player("Alice").await;
    const MAX: usize = 1 << 20;

    // Login and poll bodies over the limit, with and without a Content-Length.
    for chunked in [false, true] {
        let (status, _) = raw_post(&server.base, "/", &[], vec![b'a'; MAX + 1], chunked).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "chunked: {chunked}");
        let token = [("osu-token", alice.token.as_str())];
        let (status, _) = raw_post(&server.base, "/", &token, vec![0u8; 4 * MAX], chunked).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "chunked: {chunked}");
    }

    // At the limit it is read (and is garbage, so the login fails cleanly).
    let (token, packets) = server.login_raw(vec![b'a'; MAX]).await;
    assert_eq!((token.as_str(), login_code(&packets)), ("no", Some(-1)));

    // The session and the server still work.
    alice.poll().await;
    let bob = server.player("Bob").await;
    assert!(bob.user_id > alice.user_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_host_reaches_every_route() {
    let server = TestServer::start().await;
    let response = server
        .register("Hosty", "hosty@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);

    for host in [
        "c.peace.local",
        "ce.peace.local",
        "c4.peace.local",
        "c5.peace.local",
        "c6.peace.local",
        "osu.peace.local",
    ] {
        // Bancho login.
        let response = server
            .http
            .post(&server.base)
            .header(reqwest::header::HOST, host)
            .body(login_body("Hosty", PASSWORD, "b20240101.1"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        let token = response.headers()["cho-token"].to_str().unwrap().to_owned();
        assert_ne!(token, "no", "{host}");
        let packets = decode(&response.bytes().await.unwrap());
        assert!(login_code(&packets).unwrap() > 0, "{host}: {packets:?}");

        // A poll on the same host.
        let response = server
            .http
            .post(&server.base)
            .header(reqwest::header::HOST, host)
            .header("osu-token", &token)
            .body(common::encode(&[c::Ping {}.into()]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");

        // Web routes.
        let response = server
            .http
            .get(format!("{}/web/bancho_connect.php", server.base))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        assert!(!response.text().await.unwrap().contains("verify"));
        let response = server
            .http
            .get(format!(
                "{}/web/osu-getfriends.php?u=Hosty&h={}",
                server.base,
                md5_hex(PASSWORD)
            ))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");

        // The API and the 404s too.
        let response = server
            .http
            .get(format!("{}/api/v1/health", server.base))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        let response = server
            .http
            .get(format!("{}/web/x.php", server.base))
            .header(reqwest::header::HOST, host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{host}");
    }
    // Registration on the web host.
    let response = server
        .http
        .post(format!("{}/users", server.base))
        .header(reqwest::header::HOST, "osu.peace.local")
        .form(&[
            ("user[username]", "Web Host"),
            ("user[user_email]", "webhost@example.com"),
            ("user[password]", PASSWORD),
            ("check", "0"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.login("Web Host", PASSWORD).await;
}

/// `/web/osu-getfriends.php` checks a name and password md5 like a login does, so it must
/// not be a way around the failed-login limit (an unlimited password oracle).
#[tokio::test(flavor = "multi_thread")]
async fn web_credentials_count_against_the_failed_login_limit() {
    let server = TestServer::start_with(|c| {
        c.limits.failed_logins_per_ip = 3;
        c.limits.failed_logins_per_account = 3;
    })
    .await;
    server.player("Alice").await;
    let friends = |password: &str| {
        let url = format!(
            "{}/web/osu-getfriends.php?u=Alice&h={}",
            server.base,
            md5_hex(password)
        );
        let http = server.http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(friends(PASSWORD).await, StatusCode::OK);

    // The Bancho login is limited: after three wrong passwords the right one is refused.
    for _ in 0..3 {
        let (_, packets) = server
            .login_raw(login_body("Alice", "wrong password", "b20240101.1"))
            .await;
        assert_eq!(login_code(&packets), Some(-1));
    }
    let (token, packets) = server
        .login_raw(login_body("Alice", PASSWORD, "b20240101.1"))
        .await;
    assert_eq!((token.as_str(), login_code(&packets)), ("no", Some(-1)));
    // ... and so must the web endpoint be, while the limit lasts.
    let status = friends(PASSWORD).await;
    assert!(
        status.is_client_error(),
        "the web credentials check ignores the failed-login limit: {status}"
    );

    // Guessing through the web endpoint counts as failed logins too.
    let server = TestServer::start_with(|c| {
        c.limits.failed_logins_per_ip = 3;
        c.limits.failed_logins_per_account = 3;
    })
    .await;
    server.player("Alice").await;
    let friends = |password: &str| {
        let url = format!(
            "{}/web/osu-getfriends.php?u=Alice&h={}",
            server.base,
            md5_hex(password)
        );
        let http = server.http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    for guess in 0..10 {
        assert!(friends(&format!("guess {guess}")).await.is_client_error());
    }
    let status = friends(PASSWORD).await;
    assert_ne!(
        status,
        StatusCode::OK,
        "ten wrong guesses through the web endpoint, then the right one is accepted"
    );
    let (_, packets) = server
        .login_raw(login_body("Alice", PASSWORD, "b20240101.1"))
        .await;
    assert_eq!(
        login_code(&packets),
        Some(-1),
        "ten wrong web guesses did not count against the Bancho login either"
    );
}
