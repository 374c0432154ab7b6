//! End-to-end on every database backend: the same server, the same clients over HTTP, on
//! SQLite, PostgreSQL and MySQL (each server backend when this run covers it; see
//! `peace_db::testing`). Registration, login, public and private chat, friends, offline
//! mail, a restart on the same database, and (on the server backends) the database going
//! down, hanging and coming back while players are online.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::common::proxy::{Mode, Proxy, upstream_of};
use crate::common::{PASSWORD, TestServer, login_body};
use peace_bancho::client as c;
use peace_bancho::{LoginFailure, ServerPacket};
use peace_db::Backend;

/// `on_backends!(sqlite: Sqlite, … => [case_a, case_b])` makes the tests
/// `sqlite::case_a`, …, each calling `case_a(Backend::Sqlite)`.
macro_rules! on_backends {
    ($($module:ident: $backend:ident),* => $cases:tt) => {
        $( on_backends!(@module $module, $backend, $cases); )*
    };
    (@module $module:ident, $backend:ident, [$($case:ident),*]) => {
        mod $module {
            $(
                peace_db::backend_test!($backend,
                    #[tokio::test(flavor = "multi_thread")]
                    async fn $case() {
                        super::$case(peace_db::Backend::$backend).await;
                    }
                );
            )*
        }
    };
}

on_backends!(
    sqlite: Sqlite, postgres: Postgres, mysql: Mysql =>
    [login_chat_friends_and_offline_mail, accounts_survive_a_restart]
);

// The binary's `migrate` and `db copy` from SQLite into a server backend.
on_backends!(
    postgres_cli: Postgres, mysql_cli: Mysql =>
    [the_binary_migrates_and_copies_from_sqlite]
);

// An outage needs a database server to take away; SQLite's counterpart (a locked file)
// is covered by crates/db/tests/outage.rs.
on_backends!(
    postgres_outage: Postgres, mysql_outage: Mysql =>
    [a_database_outage_fails_logins_cleanly_and_heals]
);

fn login_code(packets: &[ServerPacket]) -> Option<i32> {
    packets.iter().find_map(|p| match p {
        ServerPacket::UserId(u) => Some(u.user_id),
        _ => None,
    })
}

fn friends(packets: &[ServerPacket]) -> Option<Vec<i32>> {
    packets.iter().find_map(|p| match p {
        ServerPacket::FriendsList(f) => Some(f.user_ids.clone()),
        _ => None,
    })
}

async fn login_chat_friends_and_offline_mail(backend: Backend) {
    let Some(server) = TestServer::start_on(backend).await else {
        return;
    };
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    assert!(
        alice.user_id > 1 && bob.user_id > alice.user_id,
        "{backend}"
    );
    for client in [&mut alice, &mut bob] {
        client
            .wait_for(
                "#osu join",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
            )
            .await;
    }

    // Public chat.
    let text = format!("hello from {backend} 🎵");
    alice.say("#osu", &text).await;
    let m = bob.wait_message(&text).await;
    assert_eq!((m.sender.as_str(), m.recipient.as_str()), ("Alice", "#osu"));

    // Private chat.
    bob.tell("alice", "psst").await;
    let m = alice.wait_message("psst").await;
    assert_eq!((m.sender.as_str(), m.recipient.as_str()), ("Bob", "Alice"));

    // Friends are stored and come back at the next login.
    bob.send([c::FriendAdd {
        user_id: alice.user_id,
    }
    .into()])
        .await;
    let db = server.world().db();
    assert_eq!(
        db.relationships(bob.user_id).await.unwrap().friends,
        [alice.user_id]
    );
    let bob = server.login("Bob", PASSWORD).await;
    assert_eq!(friends(&bob.login_packets), Some(vec![alice.user_id]));

    // Offline mail: stored, delivered once at the next login.
    let response = server
        .register("Carol", "carol@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200, "{backend}");
    alice.tell("Carol", "while you were away").await;
    let carol = server.login("Carol", PASSWORD).await;
    let delivered = |packets: &[ServerPacket]| {
        packets.iter().any(|p| {
            matches!(p, ServerPacket::SendMessage(m)
                if m.message.text == "while you were away" && m.message.sender == "Alice")
        })
    };
    assert!(
        delivered(&carol.login_packets),
        "{backend}: mail not delivered"
    );
    let carol = server.login("Carol", PASSWORD).await;
    assert!(
        !delivered(&carol.login_packets),
        "{backend}: mail delivered twice"
    );

    // Names are unique regardless of case on every backend.
    let taken = server
        .register("ALICE", "other@example.com", PASSWORD, false)
        .await;
    assert_ne!(taken.status(), 200, "{backend}");
}

async fn accounts_survive_a_restart(backend: Backend) {
    let Some(mut server) = TestServer::start_on(backend).await else {
        return;
    };
    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    bob.send([c::FriendAdd {
        user_id: alice.user_id,
    }
    .into()])
        .await;
    let response = server
        .register("Carol", "carol@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
    alice.tell("Carol", "see you after the restart").await;
    alice.poll().await;
    let (alice_id, bob_id) = (alice.user_id, bob.user_id);

    server.restart().await;

    // Same accounts, same ids, passwords still verify; migrations are not re-applied.
    let alice = server.login("Alice", PASSWORD).await;
    assert_eq!(alice.user_id, alice_id, "{backend}");
    let bob = server.login("Bob", PASSWORD).await;
    assert_eq!(bob.user_id, bob_id);
    assert_eq!(friends(&bob.login_packets), Some(vec![alice_id]));
    let carol = server.login("Carol", PASSWORD).await;
    assert!(carol.login_packets.iter().any(|p| matches!(p,
        ServerPacket::SendMessage(m) if m.message.text == "see you after the restart")));
    let (_, p) = server
        .login_raw(login_body("Alice", "wrong", "b20240101"))
        .await;
    assert_eq!(
        login_code(&p),
        Some(LoginFailure::AuthenticationFailed as i32)
    );
    // New accounts get ids after the old ones.
    let dave = server.player("Dave").await;
    assert!(dave.user_id > carol.user_id, "{backend}");
    assert_eq!(server.world().db().pending_migrations().await.unwrap(), 0);
}

async fn a_database_outage_fails_logins_cleanly_and_heals(backend: Backend) {
    let Some(scratch) = peace_db::testing::ScratchDatabase::create(backend).await else {
        return;
    };
    let proxy = Proxy::start(upstream_of(scratch.url())).await;
    let mut url = proxy.url_for(scratch.url());
    if backend == Backend::Mysql {
        // mysql_async moves a connection to 127.0.0.1 over to the server's Unix socket
        // when it finds one, which would go around the proxy.
        url.push_str("?prefer_socket=false");
    }
    let query_timeout = Duration::from_secs(2);
    let server = TestServer::start_with(|config| {
        config.database.url = url;
        config.database.query_timeout_secs = query_timeout.as_secs();
    })
    .await;
    let mut alice = server.player("Alice").await;
    let mut carol = server.player("Carol").await;
    let response = server
        .register("Bob", "bob@example.com", PASSWORD, false)
        .await;
    assert_eq!(response.status(), 200);
    for client in [&mut alice, &mut carol] {
        client
            .wait_for(
                "#osu join",
                |p| matches!(p, ServerPacket::ChannelJoinSuccess(j) if j.name == "#osu"),
            )
            .await;
    }
    let health = |server: &TestServer| {
        let request = server.http.get(format!("{}/api/v1/health", server.base));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(health(&server).await, 200);

    for outage in [Mode::Refuse, Mode::Stall] {
        proxy.set(outage);

        // A login needs the database: the client is told "server error", quickly, and
        // given the `no` token (so it retries later instead of giving up).
        let started = Instant::now();
        let (token, packets) = server
            .login_raw(login_body("Bob", PASSWORD, "b20240101"))
            .await;
        assert_eq!(
            (token.as_str(), login_code(&packets)),
            ("no", Some(LoginFailure::ServerError as i32)),
            "{backend} {outage:?}"
        );
        assert!(
            started.elapsed() < query_timeout * 3,
            "{backend} {outage:?}: the login took {:?}",
            started.elapsed()
        );
        // Registration is refused as temporarily unavailable.
        let response = server
            .register("Eve", "eve@example.com", PASSWORD, false)
            .await;
        assert_eq!(response.status(), 503, "{backend} {outage:?}");
        assert_eq!(health(&server).await, 503);

        // Players already online keep polling and chatting: sessions and channels
        // need no database.
        let text = format!("still here during {outage:?}");
        alice.say("#osu", &text).await;
        carol.wait_message(&text).await;
        carol.tell("Alice", "me too").await;
        alice.wait_message("me too").await;
    }

    // The database comes back: the pool reconnects by itself.
    proxy.set(Mode::Forward);
    let bob = server.login("Bob", PASSWORD).await;
    assert!(bob.user_id > carol.user_id);
    let eve = server.player("Eve").await;
    assert!(eve.user_id > bob.user_id);
    assert_eq!(health(&server).await, 200);
    drop(scratch);
}

/// Runs the real binary in `dir` (so that no stray `cluster.toml` is picked up).
fn peace(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_peace"))
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env_remove("PEACE_DATABASE_URL")
        .args(args)
        .output()
        .expect("running the peace binary")
}

fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn the_binary_migrates_and_copies_from_sqlite(backend: Backend) {
    let Some(scratch) = peace_db::testing::ScratchDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cluster.toml"),
        "[login]\nbcrypt_cost = 4\n",
    )
    .unwrap();
    let sqlite = format!("sqlite://{}/old.db", dir.path().display());
    let out = succeeded(&peace(dir.path(), &["migrate", "--database-url", &sqlite]));
    // Every migration of the SQLite folder is applied to the new file.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert!(
        out.contains(&format!("{migrations} migration(s) applied")),
        "{out}"
    );
    succeeded(&peace(
        dir.path(),
        &[
            "user",
            "add",
            "Alice",
            "--password",
            PASSWORD,
            "--database-url",
            &sqlite,
        ],
    ));

    // Into the (not yet migrated) server database: migrated and filled.
    let copy = ["db", "copy", "--from", &sqlite, "--to", scratch.url()];
    let out = succeeded(&peace(dir.path(), &copy));
    assert!(out.contains("users: 2 row(s)"), "{out}");
    let out = succeeded(&peace(
        dir.path(),
        &["migrate", "--database-url", scratch.url()],
    ));
    assert!(out.contains("0 migration(s) applied"), "{out}");

    // Again: the target now holds a player, so it is refused unless overwriting.
    let refused = peace(dir.path(), &copy);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    let overwrite = [&copy[..], &["--overwrite"]].concat();
    succeeded(&peace(dir.path(), &overwrite));

    // The account made on SQLite logs in on the copy, and the next one gets a new id.
    let url = scratch.url().to_owned();
    let server = TestServer::start_with(|config| config.database.url = url).await;
    let alice = server.login("Alice", PASSWORD).await;
    assert_eq!(alice.user_id, 2);
    let bob = server.player("Bob").await;
    assert_eq!(bob.user_id, 3, "{backend}");
}
