//! Scratch databases for tests (feature `testing`): a fresh, empty database per test on
//! each backend, dropped again afterwards, so that test runs and parallel tests never
//! share data.
//!
//! SQLite always runs (a file in a temporary folder). PostgreSQL and MySQL run against
//! the servers named by `PEACE_TEST_POSTGRES_URL` and `PEACE_TEST_MYSQL_URL` (a URL of
//! any database on the server whose user may create databases). Without the variable
//! that backend is skipped with a note; with it, an unreachable server fails the test.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::pool::{MysqlConn, PgConn};
use crate::{Backend, Database, DbConfig};

/// `backend_test!(Postgres, #[tokio::test] async fn case() { … })`: the test, marked
/// ignored when the calling crate was built without that backend's test server (its
/// build script sets the cfgs `peace_test_postgres` / `peace_test_mysql` from
/// `PEACE_TEST_POSTGRES_URL` / `PEACE_TEST_MYSQL_URL`, like `crates/db/build.rs`). The
/// test harness then counts it as ignored, with the reason, rather than as passed.
#[macro_export]
macro_rules! backend_test {
    (Sqlite, $test:item) => {
        $test
    };
    (Postgres, $test:item) => {
        #[cfg_attr(
            not(peace_test_postgres),
            ignore = "PEACE_TEST_POSTGRES_URL was not set when the tests were built"
        )]
        $test
    };
    (Mysql, $test:item) => {
        #[cfg_attr(
            not(peace_test_mysql),
            ignore = "PEACE_TEST_MYSQL_URL was not set when the tests were built"
        )]
        $test
    };
}

/// The environment variable that names a test server for `backend`.
pub fn server_env(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some("PEACE_TEST_POSTGRES_URL"),
        Backend::Mysql => Some("PEACE_TEST_MYSQL_URL"),
    }
}

/// The backends this test run covers: SQLite, and each server that is configured.
/// Prints a note for each one that is skipped.
pub fn configured_backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|&backend| {
            let configured = server_url(backend).is_some();
            if !configured {
                note_skipped(backend);
            }
            configured
        })
        .collect()
}

/// Says once per test binary and backend that the backend is skipped. Written to the
/// process's stderr directly: `eprintln!` output of a passing test is captured by the
/// test harness and never shown, and a silent skip would look like a pass.
fn note_skipped(backend: Backend) {
    use std::io::Write;
    static NOTED: [std::sync::atomic::AtomicBool; 3] =
        [const { std::sync::atomic::AtomicBool::new(false) }; 3];
    let Some(var) = server_env(backend) else {
        return;
    };
    let index = Backend::ALL.iter().position(|b| *b == backend).unwrap_or(0);
    if !NOTED[index].swap(true, Ordering::Relaxed) {
        let _ = writeln!(
            std::io::stderr(),
            "note: {var} is not set; the {backend} runs of these tests are skipped"
        );
    }
}

fn server_url(backend: Backend) -> Option<String> {
    match server_env(backend) {
        None => Some(String::new()),
        Some(var) => std::env::var(var).ok().filter(|v| !v.trim().is_empty()),
    }
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct ScratchDatabase {
    backend: Backend,
    /// The URL of the scratch database itself.
    url: String,
    /// The server URL it was created through (PostgreSQL, MySQL).
    server_url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl ScratchDatabase {
    /// Creates an empty database on `backend`, or `None` when that backend's server is
    /// not configured (the note is printed). Panics when a configured server cannot be
    /// reached: a test that was asked to run on a server must not pass without it.
    pub async fn create(backend: Backend) -> Option<ScratchDatabase> {
        let Some(server_url) = server_url(backend) else {
            note_skipped(backend);
            return None;
        };
        let name = unique_name();
        let scratch = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let url = format!("sqlite://{}/{name}.db", dir.path().display());
                ScratchDatabase {
                    backend,
                    url,
                    server_url,
                    name,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres | Backend::Mysql => {
                let url = with_database(&server_url, &name);
                let charset = match backend {
                    Backend::Mysql => " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                    _ => "",
                };
                admin(
                    backend,
                    &server_url,
                    &format!("CREATE DATABASE {name}{charset}"),
                )
                .await
                .unwrap_or_else(|e| {
                    panic!("creating a {backend} test database through {server_url}: {e}")
                });
                ScratchDatabase {
                    backend,
                    url,
                    server_url,
                    name,
                    _dir: None,
                }
            }
        };
        Some(scratch)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL to give the server or [`Database::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool on the scratch database (not migrated).
    pub async fn connect(&self) -> Database {
        Database::connect(&DbConfig::new(&self.url))
            .await
            .expect("connecting to the scratch database")
    }

    /// Closes every connection the server has open to this database, as a server restart
    /// or a network failure would; returns how many there were. SQLite has no server;
    /// it is a no-op there.
    pub async fn disconnect_all(&self) -> usize {
        let ids = match self.backend {
            Backend::Sqlite => return 0,
            Backend::Postgres => connection_ids(
                self.backend,
                &self.server_url,
                "SELECT CAST(pid AS BIGINT) AS id FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &self.name,
            ),
            Backend::Mysql => connection_ids(
                self.backend,
                &self.server_url,
                "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist \
                 WHERE db = ? AND id <> CONNECTION_ID()",
                &self.name,
            ),
        }
        .await
        .expect("listing the scratch database's connections");
        for &id in &ids {
            let kill = match self.backend {
                Backend::Postgres => format!("SELECT pg_terminate_backend({id})"),
                _ => format!("KILL {id}"),
            };
            // A connection may end on its own between the listing and the kill.
            let _ = admin(self.backend, &self.server_url, &kill).await;
        }
        ids.len()
    }

    /// Holds an exclusive lock on `table` until the returned guard is dropped, from a
    /// connection of its own: writes to the table (and on PostgreSQL and MySQL, reads)
    /// wait for it, as they would behind a long migration or a stuck transaction.
    pub async fn lock_table(&self, table: &str) -> TableLock {
        use diesel::connection::SimpleConnection;
        match self.backend {
            Backend::Sqlite => {
                let path = self.url.trim_start_matches("sqlite://").to_owned();
                let conn = tokio::task::spawn_blocking(move || {
                    let mut conn =
                        <diesel::SqliteConnection as diesel::Connection>::establish(&path)
                            .expect("a second SQLite connection");
                    // SQLite locks the whole file; EXCLUSIVE keeps every other writer out.
                    conn.batch_execute("BEGIN EXCLUSIVE")
                        .expect("an exclusive SQLite transaction");
                    conn
                })
                .await
                .expect("the locking thread");
                TableLock::Sqlite(Box::new(conn))
            }
            Backend::Postgres => {
                let mut conn = PgConn::establish(&self.url)
                    .await
                    .expect("a lock connection");
                conn.batch_execute(&format!(
                    "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
                ))
                .await
                .expect("locking the table");
                TableLock::Postgres(Box::new(conn))
            }
            Backend::Mysql => {
                let mut conn = MysqlConn::establish(&self.url)
                    .await
                    .expect("a lock connection");
                conn.batch_execute(&format!("LOCK TABLES {table} WRITE"))
                    .await
                    .expect("locking the table");
                TableLock::Mysql(Box::new(conn))
            }
        }
    }

    async fn drop_database(backend: Backend, server_url: &str, name: &str) {
        let sql = match backend {
            Backend::Sqlite => return,
            // FORCE: the test's own pool may still hold connections.
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            Backend::Mysql => format!("DROP DATABASE IF EXISTS {name}"),
        };
        if let Err(e) = admin(backend, server_url, &sql).await {
            eprintln!("warning: could not drop the test database {name}: {e}");
        }
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database, also when the test panicked. `Drop` cannot await, and the
    /// test's runtime may be the one unwinding, so the drop runs on a thread of its own
    /// with a small runtime of its own.
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let (backend, server_url, name) =
            (self.backend, self.server_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                eprintln!("warning: no runtime to drop the test database {name}");
                return;
            };
            runtime.block_on(Self::drop_database(backend, &server_url, &name));
        })
        .join();
        if dropped.is_err() {
            eprintln!("warning: dropping a test database failed");
        }
    }
}

/// A lock taken by [`ScratchDatabase::lock_table`]; dropping it closes its connection,
/// which ends the transaction (or the session) and so releases the lock.
#[allow(dead_code)] // the connections are held, never used
pub enum TableLock {
    Sqlite(Box<diesel::SqliteConnection>),
    Postgres(Box<PgConn>),
    Mysql(Box<MysqlConn>),
}

impl std::fmt::Debug for TableLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TableLock")
    }
}

/// A database name no other test (in this or a parallel run) uses.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "peace_test_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database (the path) replaced by `database`; a query string is kept.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Why an administrative statement of the test harness failed.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("could not connect: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("{0:?} timed out")]
    Timeout(String),
}

/// Runs one administrative statement on a fresh connection to the server.
async fn admin(backend: Backend, server_url: &str, sql: &str) -> Result<(), AdminError> {
    let timeout = std::time::Duration::from_secs(30);
    let work = async {
        match backend {
            Backend::Sqlite => Ok(()),
            Backend::Postgres => {
                let mut conn = PgConn::establish(server_url).await?;
                Ok(conn.batch_execute(sql).await?)
            }
            Backend::Mysql => {
                let mut conn = MysqlConn::establish(server_url).await?;
                Ok(conn.batch_execute(sql).await?)
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| AdminError::Timeout(sql.to_owned()))?
}

#[derive(QueryableByName)]
struct ConnectionId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The ids of the server's connections to `name` (PostgreSQL: backend pids, MySQL:
/// connection ids), by `sql` with the database name as its one parameter.
async fn connection_ids(
    backend: Backend,
    server_url: &str,
    sql: &str,
    name: &str,
) -> Result<Vec<i64>, String> {
    let query = diesel::sql_query(sql).bind::<diesel::sql_types::Text, _>(name);
    let rows: Vec<ConnectionId> = match backend {
        Backend::Sqlite => Vec::new(),
        Backend::Postgres => {
            let mut conn = PgConn::establish(server_url)
                .await
                .map_err(|e| e.to_string())?;
            query.load(&mut conn).await.map_err(|e| e.to_string())?
        }
        Backend::Mysql => {
            let mut conn = MysqlConn::establish(server_url)
                .await
                .map_err(|e| e.to_string())?;
            query.load(&mut conn).await.map_err(|e| e.to_string())?
        }
    };
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Sets a score's pp behind the server's back, as an older formula would have left it
/// (the recalculation tests start from such rows).
pub async fn set_score_pp(db: &Database, score_id: i32, pp: f32) -> Result<(), crate::DbError> {
    use crate::schema::scores;
    use diesel::{ExpressionMethods, QueryDsl};
    crate::pool::run!(db, |conn| async {
        diesel::update(scores::table.find(score_id))
            .set(scores::pp.eq(pp))
            .execute(conn)
            .await
    })
    .map(drop)
}

/// Every score's id, player and pp, by id.
pub async fn score_pps(db: &Database) -> Result<Vec<(i32, i32, f32)>, crate::DbError> {
    use crate::schema::scores;
    use diesel::{ExpressionMethods, QueryDsl};
    crate::pool::run!(db, |conn| async {
        scores::table
            .order(scores::id.asc())
            .select((scores::id, scores::user_id, scores::pp))
            .load(conn)
            .await
    })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
