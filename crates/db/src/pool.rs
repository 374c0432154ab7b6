//! The connection pools and the one place where a query meets a backend.
//!
//! A [`Database`] holds one pool of one of three kinds, chosen by the URL's scheme:
//! SQLite through diesel's synchronous connection in [`SyncConnectionWrapper`] (queries run
//! on tokio's blocking threads), PostgreSQL and MySQL/MariaDB through diesel-async's
//! pure-Rust drivers (tokio-postgres, mysql_async). Repositories never match on the kind:
//! they write a query once inside [`run!`], which expands it once per backend.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::time::Instant;

use crate::DbError;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub(crate) type PgConn = AsyncPgConnection;
pub(crate) type MysqlConn = AsyncMysqlConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

/// Settings of the pool; `cluster.toml`'s `[database]` section.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `sqlite://PATH` (relative paths are relative to the working directory),
    /// `postgres://…` / `postgresql://…`, or `mysql://…` (MySQL and MariaDB).
    pub url: String,
    pub pool_size: usize,
    /// Upper bound for one operation, including the wait for a pooled connection and,
    /// when none is open, for connecting.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// MySQL or MariaDB (one wire protocol, one dialect as far as Peace is concerned).
    Mysql,
}

impl Backend {
    /// Every backend, in the order tests and documentation list them.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

    /// The backend a database URL names by its scheme.
    pub fn of_url(url: &str) -> Result<Backend, DbError> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") if sqlite_path(url).is_some() => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            Some("mysql") => Ok(Backend::Mysql),
            _ => Err(DbError::BadUrl(url.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) enum Pools {
    Sqlite {
        pool: Pool<SqliteConn>,
        path: String,
    },
    Postgres {
        pool: Pool<PgConn>,
        url: String,
    },
    Mysql {
        pool: Pool<MysqlConn>,
        url: String,
    },
}

/// A cloneable handle to the database.
#[derive(Clone)]
pub struct Database {
    pub(crate) pools: Arc<Pools>,
    pub(crate) query_timeout: Duration,
}

impl std::fmt::Debug for Database {
    // The URL is left out on purpose: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// SQLite is tuned per connection: WAL lets readers run beside the single writer, and the
/// busy time-out makes concurrent writers wait instead of failing at once.
///
/// The busy time-out is the query time-out: a SQLite statement runs on a blocking thread
/// and cannot be cancelled (diesel-async waits for it when the future is dropped), so the
/// wait for a locked file must end by itself when the query time-out does, or a time-out
/// would only be reported once SQLite gave up. It is set first: switching to WAL takes a
/// lock, and without the time-out a file another process is writing (a node restarting
/// next to its predecessor's last writes) would fail the new connection at once.
fn sqlite_setup(busy_timeout: Duration) -> String {
    format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON;",
        busy_timeout.as_millis()
    )
}

/// MySQL's behaviour on bad data depends on the server's `sql_mode`: older MariaDB
/// defaults silently truncate a too-long string. Every connection asks for strict mode
/// so that MySQL refuses what PostgreSQL refuses, whatever the server's configuration.
const MYSQL_SETUP: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,\
     NO_ZERO_DATE,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION'";

fn sqlite_path(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    (!path.is_empty()).then_some(path)
}

fn establish_sqlite(path: &str, busy_timeout: Duration) -> Result<SqliteConnection, DbError> {
    let mut conn =
        SqliteConnection::establish(path).map_err(|e| DbError::Unavailable(e.to_string()))?;
    conn.batch_execute(&sqlite_setup(busy_timeout))
        .map_err(DbError::from)?;
    Ok(conn)
}

/// How much longer than the caller the server waits for a statement. The caller gives
/// up first (and gets [`DbError::Timeout`]); the server follows shortly after, so that a
/// statement whose caller gave up never commits later. Without a server-side limit, a
/// statement waiting for a lock would go on waiting after the caller dropped its
/// connection, and commit after the caller was told that nothing happened.
const SERVER_TIMEOUT_MARGIN: Duration = Duration::from_secs(1);

/// A pooled PostgreSQL connection whose statements and lock waits the server ends
/// after `limit` (the query time-out and [`SERVER_TIMEOUT_MARGIN`]).
async fn establish_postgres(url: &str, limit: Duration) -> diesel::ConnectionResult<PgConn> {
    use diesel_async::SimpleAsyncConnection;
    let ms = limit.as_millis();
    let mut conn = PgConn::establish(url).await?;
    conn.batch_execute(&format!(
        "SET statement_timeout = {ms}; SET lock_timeout = {ms}"
    ))
    .await
    .map_err(bad_connection)?;
    Ok(conn)
}

fn bad_connection(e: diesel::result::Error) -> diesel::ConnectionError {
    diesel::ConnectionError::BadConnection(e.to_string())
}

/// A MySQL connection in the strict SQL mode every statement of Peace assumes.
async fn establish_mysql(url: &str) -> diesel::ConnectionResult<MysqlConn> {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = MysqlConn::establish(url).await?;
    conn.batch_execute(MYSQL_SETUP)
        .await
        .map_err(bad_connection)?;
    Ok(conn)
}

/// A pooled MySQL connection: [`establish_mysql`] with the server ending statements
/// and lock waits after `limit`, as for PostgreSQL. (Migrations use their own
/// connection, without them: they may wait for each other.)
async fn establish_pooled_mysql(url: &str, limit: Duration) -> diesel::ConnectionResult<MysqlConn> {
    use diesel_async::SimpleAsyncConnection;
    let mut conn = establish_mysql(url).await?;
    // Lock waits (table locks and InnoDB row locks) count in whole seconds, rounded up.
    let lock_secs = limit.as_secs_f64().ceil() as u64;
    conn.batch_execute(&format!(
        "SET SESSION lock_wait_timeout = {lock_secs}, SESSION innodb_lock_wait_timeout = {lock_secs}"
    ))
    .await
    .map_err(bad_connection)?;
    // A running statement's limit has a different name on each server (MariaDB:
    // seconds, any statement; MySQL: milliseconds, reads only); the other one's is an
    // unknown variable there, so each is tried and a refusal ignored.
    let secs = limit.as_secs_f64();
    let _ = conn
        .batch_execute(&format!("SET SESSION max_statement_time = {secs}"))
        .await;
    let ms = limit.as_millis();
    let _ = conn
        .batch_execute(&format!("SET SESSION max_execution_time = {ms}"))
        .await;
    Ok(conn)
}

/// One pool, whatever the connection type: every wait inside it is bounded by the query
/// time-out, and the pool verifies a connection (a `SELECT 1`) before handing it out,
/// so a connection the server dropped is replaced rather than failing a query.
fn build_pool<C>(
    target: &str,
    manager_config: ManagerConfig<C>,
    config: &DbConfig,
) -> Result<Pool<C>, DbError>
where
    C: PoolableConnection + 'static,
    AsyncDieselConnectionManager<C>: PoolManager<C>,
{
    let manager = AsyncDieselConnectionManager::new_with_config(target, manager_config);
    Pool::builder(manager)
        .max_size(config.pool_size.max(1))
        .wait_timeout(Some(config.query_timeout))
        .create_timeout(Some(config.query_timeout))
        .recycle_timeout(Some(config.query_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Unavailable(e.to_string()))
}

impl Database {
    /// Opens a pool for `config.url`. For SQLite the file and its folder are created.
    /// Connections are made lazily, so this succeeds even while a server is down.
    pub async fn connect(config: &DbConfig) -> Result<Self, DbError> {
        let server_limit = config.query_timeout + SERVER_TIMEOUT_MARGIN;
        let pools = match Backend::of_url(&config.url)? {
            Backend::Sqlite => Self::sqlite_pool(config)?,
            Backend::Postgres => {
                let mut manager_config = ManagerConfig::<PgConn>::default();
                manager_config.custom_setup =
                    Box::new(move |url| Box::pin(establish_postgres(url, server_limit)));
                Pools::Postgres {
                    pool: build_pool(&config.url, manager_config, config)?,
                    url: config.url.clone(),
                }
            }
            Backend::Mysql => {
                let mut manager_config = ManagerConfig::<MysqlConn>::default();
                manager_config.custom_setup =
                    Box::new(move |url| Box::pin(establish_pooled_mysql(url, server_limit)));
                Pools::Mysql {
                    pool: build_pool(&config.url, manager_config, config)?,
                    url: config.url.clone(),
                }
            }
        };
        Ok(Self {
            pools: Arc::new(pools),
            query_timeout: config.query_timeout,
        })
    }

    fn sqlite_pool(config: &DbConfig) -> Result<Pools, DbError> {
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
        let busy_timeout = config.query_timeout;
        manager_config.custom_setup = Box::new(move |path| {
            let path = path.to_owned();
            Box::pin(async move {
                tokio::task::spawn_blocking(move || establish_sqlite(&path, busy_timeout))
                    .await
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?
                    .map(SyncConnectionWrapper::new)
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
            })
        });
        Ok(Pools::Sqlite {
            pool: build_pool(path, manager_config, config)?,
            path: path.to_owned(),
        })
    }

    /// The URL (SQLite: the path) the pool connects to; crate-internal because it may
    /// carry a password.
    pub(crate) fn url(&self) -> &str {
        match &*self.pools {
            Pools::Sqlite { path, .. } => path,
            Pools::Postgres { url, .. } | Pools::Mysql { url, .. } => url,
        }
    }

    pub fn backend(&self) -> Backend {
        match *self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
            Pools::Mysql { .. } => Backend::Mysql,
        }
    }

    /// Applies pending migrations (`migrations/<backend>/`, embedded in the binary);
    /// returns how many ran.
    ///
    /// Connecting is bounded by the query time-out; the migrations themselves are not,
    /// because cutting a schema change off half-way is worse than waiting for it.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        self.with_migrations(|harness, migrations| {
            harness
                .run_pending_migrations(migrations)
                .map(|applied| applied.len())
        })
        .await
    }

    /// How many migrations have not been applied yet.
    pub async fn pending_migrations(&self) -> Result<usize, DbError> {
        self.with_migrations(|harness, migrations| {
            harness
                .pending_migrations(migrations)
                .map(|pending| pending.len())
        })
        .await
    }

    /// Runs `op` with diesel's (synchronous) migration harness on a dedicated connection
    /// in a blocking thread. The async connections are driven through
    /// [`AsyncConnectionWrapper`], which blocks on the runtime's handle: that needs the
    /// multi-threaded runtime, which the binary and the tests use.
    async fn with_migrations(&self, op: MigrationOp) -> Result<usize, DbError> {
        let blocking = match &*self.pools {
            Pools::Sqlite { path, .. } => {
                let path = path.clone();
                let busy_timeout = self.query_timeout;
                tokio::task::spawn_blocking(move || {
                    let mut conn = establish_sqlite(&path, busy_timeout)?;
                    op(&mut conn, SQLITE_MIGRATIONS).map_err(|e| DbError::Migration(e.to_string()))
                })
            }
            Pools::Postgres { url, .. } => {
                let mut conn = self.establish_direct(PgConn::establish(url)).await?;
                take_postgres_migration_lock(&mut conn).await?;
                spawn_migrations(conn, POSTGRES_MIGRATIONS, op)
            }
            Pools::Mysql { url, .. } => {
                let mut conn = self.establish_direct(establish_mysql(url)).await?;
                take_mysql_migration_lock(&mut conn).await?;
                spawn_migrations(conn, MYSQL_MIGRATIONS, op)
            }
        };
        blocking
            .await
            .map_err(|e| DbError::Migration(format!("the migration task failed: {e}")))?
    }

    async fn establish_direct<C>(
        &self,
        connecting: impl Future<Output = diesel::ConnectionResult<C>>,
    ) -> Result<C, DbError> {
        match tokio::time::timeout(self.query_timeout, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(DbError::Unavailable(e.to_string())),
            Err(_) => Err(DbError::Timeout),
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

/// Nodes of a cluster start at the same time and each migrates at start. Two harnesses
/// applying the same migration at once would both try to create the same tables, so each
/// first takes a server-wide lock that only one session can hold; the others wait, then
/// find nothing pending. The lock belongs to the migration connection and ends with it.
/// (SQLite is one file of one node; it needs none.)
///
/// `pg_advisory_lock` takes any 64-bit key: this one is the bytes of "peace" (0x7065616365).
const POSTGRES_MIGRATION_LOCK: &str = "SELECT pg_advisory_lock(482737218405)";
/// MySQL's named locks: `GET_LOCK` waits up to the given seconds (the same as
/// [`MIGRATION_LOCK_WAIT`]) and answers 1 when it holds the lock, 0 when the wait ran out.
const MYSQL_MIGRATION_LOCK: &str =
    "SELECT CAST(GET_LOCK('peace_migrations', 600) AS SIGNED) AS locked";

/// How long a node waits for another node's migrations before giving up: a migration
/// that rewrites a big table can take minutes.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(600);

#[derive(diesel::QueryableByName)]
struct NamedLock {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    locked: Option<i64>,
}

async fn take_postgres_migration_lock(conn: &mut PgConn) -> Result<(), DbError> {
    use diesel_async::SimpleAsyncConnection;
    bounded_lock_wait(async {
        conn.batch_execute(POSTGRES_MIGRATION_LOCK).await?;
        Ok(true)
    })
    .await
}

async fn take_mysql_migration_lock(conn: &mut MysqlConn) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl;
    bounded_lock_wait(async {
        let lock: NamedLock = diesel::sql_query(MYSQL_MIGRATION_LOCK)
            .get_result(conn)
            .await?;
        Ok(lock.locked == Some(1))
    })
    .await
}

async fn bounded_lock_wait(
    taking: impl Future<Output = diesel::QueryResult<bool>>,
) -> Result<(), DbError> {
    match tokio::time::timeout(MIGRATION_LOCK_WAIT, taking).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Err(e)) => Err(DbError::Migration(format!(
            "taking the migration lock: {e}"
        ))),
        Ok(Ok(false)) | Err(_) => Err(DbError::Migration(
            "another node held the migration lock for too long".into(),
        )),
    }
}

/// What [`Database::with_migrations`] does with the harness: run or count migrations.
/// A plain function pointer, so that one value serves all three connection types.
type MigrationOp = for<'a> fn(
    &'a mut dyn MigrationHarnessAny,
    EmbeddedMigrations,
) -> diesel::migration::Result<usize>;

/// The part of diesel's [`MigrationHarness`] that Peace uses, without its backend type
/// parameter, so that [`MigrationOp`] can be one type for every backend.
pub(crate) trait MigrationHarnessAny {
    fn run_pending_migrations(
        &mut self,
        migrations: EmbeddedMigrations,
    ) -> diesel::migration::Result<Vec<String>>;
    fn pending_migrations(
        &mut self,
        migrations: EmbeddedMigrations,
    ) -> diesel::migration::Result<Vec<String>>;
}

impl<H, DB> MigrationHarnessAny for H
where
    H: MigrationHarness<DB> + Connection<Backend = DB>,
    DB: diesel::backend::Backend,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    fn run_pending_migrations(
        &mut self,
        migrations: EmbeddedMigrations,
    ) -> diesel::migration::Result<Vec<String>> {
        let applied = MigrationHarness::run_pending_migrations(self, migrations)?;
        Ok(applied.iter().map(ToString::to_string).collect())
    }

    fn pending_migrations(
        &mut self,
        migrations: EmbeddedMigrations,
    ) -> diesel::migration::Result<Vec<String>> {
        let pending = MigrationHarness::pending_migrations(self, migrations)?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    }
}

fn spawn_migrations<C>(
    conn: C,
    migrations: EmbeddedMigrations,
    op: MigrationOp,
) -> tokio::task::JoinHandle<Result<usize, DbError>>
where
    C: AsyncConnection + Send + 'static,
    AsyncConnectionWrapper<C>: MigrationHarnessAny,
{
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<C>::from(conn);
        op(&mut conn, migrations).map_err(|e| DbError::Migration(e.to_string()))
    })
}

/// What deadpool needs of diesel-async's manager for connection type `C`; spelled out
/// once so that the generic helpers below need not repeat diesel's query bounds.
pub(crate) trait PoolManager<C>:
    deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>
{
}

impl<C, M> PoolManager<C> for M where
    M: deadpool::managed::Manager<Type = C, Error = diesel_async::pooled_connection::PoolError>
{
}

/// The instant by which an operation allowed `limit` must be done.
pub(crate) fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    // An absurd limit (`Duration::MAX`) would overflow the clock; a day is as good.
    now.checked_add(limit)
        .unwrap_or(now + Duration::from_secs(24 * 3600))
}

/// Takes a connection from `pool`, waiting (and, if need be, connecting) until
/// `deadline` at most.
pub(crate) async fn checkout<C>(pool: &Pool<C>, deadline: Instant) -> Result<Object<C>, DbError>
where
    AsyncDieselConnectionManager<C>: PoolManager<C>,
{
    match tokio::time::timeout_at(deadline, pool.get()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(PoolError::Timeout(_))) | Err(_) => Err(DbError::Timeout),
        Ok(Err(e)) => Err(DbError::Unavailable(e.to_string())),
    }
}

/// The outcome of an operation on a checked-out connection. A connection whose operation
/// was cut off by the time-out is in an unknown state (a half-read reply, an open
/// transaction), so it is taken out of the pool and closed instead of being reused.
pub(crate) fn settle<C, T, E>(
    conn: Object<C>,
    outcome: Result<Result<T, E>, tokio::time::error::Elapsed>,
) -> Result<T, DbError>
where
    AsyncDieselConnectionManager<C>: PoolManager<C>,
    DbError: From<E>,
{
    match outcome {
        Ok(result) => result.map_err(DbError::from),
        Err(_) => {
            drop(Object::take(conn));
            Err(DbError::Timeout)
        }
    }
}

/// Runs `$body` (an expression producing a future of `Result<T, E>` where `E` is
/// diesel's error or [`DbError`]) with `$conn` bound to a pooled connection of whichever
/// backend the database uses, under the query time-out (or `within = LIMIT`, for the few
/// long operations such as copying a table). This is the only place that matches on the
/// backend; repositories are written once and compiled once per backend. Every
/// operation's time (and failure) goes to `peace_metrics::db_query`.
macro_rules! run {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::Database = $db;
        $crate::pool::run!(db, within = db.query_timeout, |$conn| $body)
    }};
    ($db:expr, within = $limit:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::Database = $db;
        let deadline = $crate::pool::deadline_after($limit);
        let work = async {
            match &*db.pools {
                $crate::pool::Pools::Sqlite { pool, .. } => {
                    let mut guard = $crate::pool::checkout(pool, deadline).await?;
                    let outcome = {
                        let $conn: &mut $crate::pool::SqliteConn = &mut guard;
                        tokio::time::timeout_at(deadline, $body).await
                    };
                    $crate::pool::settle(guard, outcome)
                }
                $crate::pool::Pools::Postgres { pool, .. } => {
                    let mut guard = $crate::pool::checkout(pool, deadline).await?;
                    let outcome = {
                        let $conn: &mut $crate::pool::PgConn = &mut guard;
                        tokio::time::timeout_at(deadline, $body).await
                    };
                    $crate::pool::settle(guard, outcome)
                }
                $crate::pool::Pools::Mysql { pool, .. } => {
                    let mut guard = $crate::pool::checkout(pool, deadline).await?;
                    let outcome = {
                        let $conn: &mut $crate::pool::MysqlConn = &mut guard;
                        tokio::time::timeout_at(deadline, $body).await
                    };
                    $crate::pool::settle(guard, outcome)
                }
            }
        };
        let started = std::time::Instant::now();
        let result = work.await;
        peace_metrics::db_query(started.elapsed(), result.is_ok());
        result
    }};
}
pub(crate) use run;
