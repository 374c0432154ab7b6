//! Wiring: builds a running server (database, actors, HTTP) from a [`Config`]. The CLI in
//! `main.rs` and the end-to-end tests both start servers through [`Server::start`].

pub mod config;
pub mod ops;

use std::net::SocketAddr;

use anyhow::Context;
use peace_actors::World;
use peace_db::Database;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::Config;

/// A running node: its actors, and its HTTP listener if it has the gateway role.
#[derive(Debug)]
pub struct Server {
    /// The HTTP listener's address (`None` on a node without the gateway role).
    pub addr: Option<SocketAddr>,
    /// The metrics listener's address (`[http] metrics_addr`), if there is one.
    pub metrics_addr: Option<SocketAddr>,
    pub world: World,
    /// The listeners' tasks.
    http: Vec<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Opens the database and, unless turned off, migrates it.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let db = Database::connect(&config.db_config())
        .await
        .context("opening the database")?;
    if config.database.migrate_on_start {
        let applied = db.migrate().await.context("migrating the database")?;
        if applied > 0 {
            tracing::info!(applied, "database migrated");
        }
    }
    Ok(db)
}

/// `peace db copy`: copies every table of `from` into `to` (both database URLs), with the
/// pool settings of `config`. See `peace_db::Database::copy_to`.
pub async fn copy_database(
    config: &Config,
    from: &str,
    to: &str,
    overwrite: bool,
) -> anyhow::Result<peace_db::CopyReport> {
    let settings = |url: &str| peace_db::DbConfig {
        url: url.to_owned(),
        ..config.db_config()
    };
    let source = Database::connect(&settings(from))
        .await
        .context("opening the source database")?;
    let target = Database::connect(&settings(to))
        .await
        .context("opening the target database")?;
    tracing::info!(from = %source.backend(), to = %target.backend(), "copying");
    let options = peace_db::CopyOptions {
        overwrite,
        ..peace_db::CopyOptions::default()
    };
    Ok(source.copy_to(&target, &options).await?)
}

impl Server {
    /// Opens the database, binds the HTTP listener (gateway role), starts the actors and
    /// joins the cluster, then serves.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        config.validate()?;
        // Process-global and idempotent: servers started side by side (tests) share it.
        if !peace_metrics::install() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        let db = open_database(config).await?;
        if !config.database.migrate_on_start {
            // Queries written for the new schema would fail one by one on the old one;
            // better to refuse at once and say what to do.
            let pending = db
                .pending_migrations()
                .await
                .context("checking the database's migrations")?;
            anyhow::ensure!(
                pending == 0,
                "the database has {pending} pending migration(s) and migrate_on_start is \
                 off: run `peace migrate` first"
            );
        }
        let mut world_config = config.world_config();
        let listener = if world_config.cluster.roles.gateway {
            let listener = TcpListener::bind(&config.http.addr)
                .await
                .with_context(|| format!("listening on {}", config.http.addr))?;
            world_config.cluster.http_addr = Some(listener.local_addr()?.to_string());
            Some(listener)
        } else {
            None
        };
        let metrics_listener = if config.http.metrics_addr.is_empty() {
            None
        } else {
            let listener = TcpListener::bind(&config.http.metrics_addr)
                .await
                .with_context(|| format!("listening on {}", config.http.metrics_addr))?;
            Some(listener)
        };
        let world = World::start(world_config, db).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = peace_gateway::AppState {
            world: world.clone(),
            config: std::sync::Arc::new(config.gateway_config()),
        };
        // Serves `app` on `listener` until shutdown.
        let serve = |listener: TcpListener, app| {
            let mut stopped = stopped.clone();
            let limits = config.serve_limits();
            tokio::spawn(peace_gateway::serve(listener, app, limits, async move {
                let _ = stopped.wait_for(|s| *s).await;
            }))
        };
        let mut http = Vec::new();
        let addr = match listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                http.push(serve(listener, peace_gateway::app(state.clone())));
                tracing::info!(%addr, node = %config.node.name, "serving");
                Some(addr)
            }
            None => {
                tracing::info!(node = %config.node.name, "running without a gateway listener");
                None
            }
        };
        let metrics_addr = match metrics_listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                http.push(serve(listener, peace_gateway::metrics_app(state)));
                tracing::info!(%addr, "serving /metrics");
                Some(addr)
            }
            None => None,
        };
        Ok(Server {
            addr,
            metrics_addr,
            world,
            http,
            stop,
        })
    }

    /// Stops accepting requests, ends every session and stops the actors.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for http in self.http {
            let _ = http.await;
        }
        self.world.shutdown().await;
    }
}
