//! The connection pool and the one place where a query meets a backend.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::DbError;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Settings of the pool; `cluster.toml`'s `[database]` section.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://PATH` (relative paths are relative to the working directory).
    pub url: String,
    pub pool_size: usize,
    /// Upper bound for one operation, including the wait for a pooled connection.
    pub query_timeout: Duration,
}

impl DbConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pool_size: 8,
            query_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
}

pub(crate) enum Pools {
    Sqlite {
        pool: Pool<SqliteConn>,
        path: String,
    },
}

/// A cloneable handle to the database.
#[derive(Clone)]
pub struct Database {
    pub(crate) pools: Arc<Pools>,
    pub(crate) query_timeout: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// SQLite is tuned per connection: WAL lets readers run beside the single writer, and the
/// busy time-out makes concurrent writers wait instead of failing at once.
const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;";

fn sqlite_path(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    (!path.is_empty()).then_some(path)
}

fn establish_sqlite(path: &str) -> Result<SqliteConnection, DbError> {
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| DbError::Unavailable(e.to_string()))?;
    conn.batch_execute(SQLITE_SETUP).map_err(DbError::from)?;
    Ok(conn)
}

impl Database {
    /// Opens a pool for `config.url`. For SQLite the file and its folder are created.
    /// Connections are made lazily, so this succeeds even while a server is down.
    pub async fn connect(config: &DbConfig) -> Result<Self, DbError> {
        let path = sqlite_path(&config.url).ok_or_else(|| DbError::BadUrl(config.url.clone()))?;
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Unavailable(format!("creating {}: {e}", dir.display())))?;
        }
        let mut manager_config = ManagerConfig::<SqliteConn>::default();
        // The default runs a test query before every checkout, through the blocking pool:
        // a second round trip per operation. A SQLite file connection does not go stale,
        // so the check buys nothing here (docs/benchmarks.md).
        manager_config.recycling_method = RecyclingMethod::Fast;
        manager_config.custom_setup = Box::new(|path| {
            let path = path.to_owned();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || establish_sqlite(&path))
                    .await
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?
                    .map(SyncConnectionWrapper::new)
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
            })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(path, manager_config);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .wait_timeout(Some(config.query_timeout))
            .create_timeout(Some(config.query_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        Ok(Self {
            pools: Arc::new(Pools::Sqlite {
                pool,
                path: path.to_owned(),
            }),
            query_timeout: config.query_timeout,
        })
    }

    pub fn backend(&self) -> Backend {
        match *self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Applies pending migrations; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        match &*self.pools {
            Pools::Sqlite { path, .. } => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut conn = establish_sqlite(&path)?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|applied| applied.len())
                        .map_err(|e| DbError::Migration(e.to_string()))
                })
                .await
                .map_err(|e| DbError::Migration(e.to_string()))?
            }
        }
    }

    /// Whether the database answers a trivial query (for health checks).
    pub async fn ping(&self) -> Result<(), DbError> {
        crate::pool::run!(self, |conn| async {
            use diesel_async::SimpleAsyncConnection;
            conn.batch_execute("SELECT 1").await
        })
    }
}

/// Runs `$body` (an expression producing a future of `QueryResult<T>`) with `$conn` bound to
/// a pooled connection of whichever backend the database uses, under the query time-out.
/// This is the only place that matches on the backend; repositories are written once.
/// Every operation's time (and failure) goes to `peace_metrics::db_query`.
macro_rules! run {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::Database = $db;
        let work = async {
            match &*db.pools {
                $crate::pool::Pools::Sqlite { pool, .. } => {
                    let mut guard = pool
                        .get()
                        .await
                        .map_err(|e| $crate::DbError::Unavailable(e.to_string()))?;
                    let $conn: &mut $crate::pool::SqliteConn = &mut guard;
                    $body.await.map_err($crate::DbError::from)
                }
            }
        };
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(db.query_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err($crate::DbError::Timeout),
        };
        peace_metrics::db_query(started.elapsed(), result.is_ok());
        result
    }};
}
pub(crate) use run;
