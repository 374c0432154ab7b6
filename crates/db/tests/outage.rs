//! The database going away, refusing, stalling and coming back: every operation ends
//! within its time-out with a `DbError`, and the pool recovers by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use peace_db::testing::ScratchDatabase;
use peace_db::{Database, DbConfig, DbError, Privileges};

/// Short, so that the time-out tests are quick; long enough for a loaded CI machine to
/// answer a trivial query.
const TEST_TIMEOUT: Duration = Duration::from_secs(2);

on_every_backend!(
    scratch: the_pool_reconnects_after_the_server_dropped_its_connections,
    a_write_stuck_behind_a_lock_times_out_and_the_pool_recovers,
);

async fn connect(scratch: &ScratchDatabase) -> Database {
    Database::connect(&DbConfig {
        url: scratch.url().to_owned(),
        pool_size: 4,
        query_timeout: TEST_TIMEOUT,
    })
    .await
    .unwrap()
}

async fn the_pool_reconnects_after_the_server_dropped_its_connections(scratch: ScratchDatabase) {
    let db = connect(&scratch).await;
    // Open several connections at once, so that the pool holds more than one.
    let (a, b, c) = tokio::join!(db.user_by_id(1), db.user_by_id(1), db.ping());
    assert!(a.unwrap().is_some() && b.unwrap().is_some());
    c.unwrap();

    // As a database restart would: every connection of the pool is now dead.
    let killed = scratch.disconnect_all().await;
    if scratch.backend() != peace_db::Backend::Sqlite {
        assert!(killed >= 1, "{}: no connection to kill", scratch.backend());
    }

    // The pool checks a connection before handing it out and replaces a dead one, so
    // the very next operations succeed without the caller retrying.
    for _ in 0..6 {
        assert_eq!(db.user_by_id(1).await.unwrap().unwrap().id, 1);
    }
    db.touch_last_seen(1).await.unwrap();
}

async fn a_write_stuck_behind_a_lock_times_out_and_the_pool_recovers(scratch: ScratchDatabase) {
    let db = connect(&scratch).await;
    db.ping().await.unwrap();
    let lock = scratch.lock_table("users").await;

    let started = Instant::now();
    let stuck = db.set_privileges(1, Privileges(999)).await;
    let waited = started.elapsed();
    assert!(matches!(stuck, Err(DbError::Timeout)), "{stuck:?}");
    assert!(
        waited >= TEST_TIMEOUT - Duration::from_millis(100) && waited < TEST_TIMEOUT * 2,
        "gave up after {waited:?}"
    );

    // The server gives up on the statement too, a second after the caller (its own
    // time-out, set on every pooled connection): when the lock goes away, the write the
    // caller was told had failed does not land after all.
    tokio::time::sleep(TEST_TIMEOUT).await;
    drop(lock);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = db.user_by_id(1).await.unwrap().unwrap().privileges;
    assert_ne!(
        now,
        999,
        "{}: a timed-out write committed later",
        scratch.backend()
    );

    // The connection that was cut off was discarded, not reused in the middle of its
    // statement, and new operations go through.
    db.set_privileges(1, Privileges(131)).await.unwrap();
    assert_eq!(db.user_by_id(1).await.unwrap().unwrap().privileges, 131);
}

/// A local port that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn network_urls(port: u16) -> [String; 2] {
    [
        format!("postgres://postgres@127.0.0.1:{port}/peace"),
        format!("mysql://root@127.0.0.1:{port}/peace"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_unavailable_at_once() {
    for url in network_urls(closed_port()) {
        let db = Database::connect(&DbConfig {
            url: url.clone(),
            pool_size: 2,
            query_timeout: Duration::from_secs(10),
        })
        .await
        .expect("connecting is lazy");
        let started = Instant::now();
        let result = db.user_by_id(1).await;
        assert!(
            matches!(result, Err(DbError::Unavailable(_))),
            "{url}: {result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{url}");
        assert!(
            matches!(db.migrate().await, Err(DbError::Unavailable(_))),
            "{url}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_is_a_time_out_not_a_hang() {
    // Accepts connections and never says a word: a hung server or a black-holed route.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let limit = Duration::from_secs(1);
    for url in network_urls(port) {
        let db = Database::connect(&DbConfig {
            url: url.clone(),
            pool_size: 2,
            query_timeout: limit,
        })
        .await
        .unwrap();
        for attempt in 0..2 {
            let started = Instant::now();
            let result = db.user_by_id(1).await;
            assert!(matches!(result, Err(DbError::Timeout)), "{url}: {result:?}");
            assert!(
                started.elapsed() < limit * 2,
                "{url} attempt {attempt}: {:?}",
                started.elapsed()
            );
        }
        assert!(matches!(db.migrate().await, Err(DbError::Timeout)), "{url}");
    }
    silent.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_sqlite_file_is_an_error_not_a_hang() {
    let config = DbConfig {
        url: "sqlite:///proc/peace-cannot-exist/peace.db".into(),
        pool_size: 2,
        query_timeout: TEST_TIMEOUT,
    };
    match Database::connect(&config).await {
        Err(DbError::Unavailable(_)) => {}
        Ok(db) => assert!(db.user_by_id(1).await.is_err()),
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn urls_choose_the_backend_by_scheme() {
    use peace_db::Backend;
    for (url, backend) in [
        ("sqlite://data/peace.db", Backend::Sqlite),
        ("sqlite:peace.db", Backend::Sqlite),
        ("postgres://u@h/db", Backend::Postgres),
        ("postgresql://u@h/db", Backend::Postgres),
        ("POSTGRES://u@h/db", Backend::Postgres),
        ("mysql://u@h/db", Backend::Mysql),
    ] {
        assert_eq!(Backend::of_url(url).unwrap(), backend, "{url}");
    }
    for url in ["mongodb://x", "sqlite://", "", "peace.db"] {
        assert!(
            matches!(Backend::of_url(url), Err(DbError::BadUrl(_))),
            "{url:?}"
        );
        assert!(matches!(
            Database::connect(&DbConfig::new(url)).await,
            Err(DbError::BadUrl(_))
        ));
    }
}
