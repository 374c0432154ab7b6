//! Wiring: builds a running server (database, actors, HTTP) from a [`Config`]. The CLI in
//! `main.rs` and the end-to-end tests both start servers through [`Server::start`].

pub mod config;

use std::net::SocketAddr;

use anyhow::Context;
use peace_actors::World;
use peace_db::Database;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::Config;

/// A server that is accepting connections.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub world: World,
    http: JoinHandle<()>,
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

impl Server {
    /// Opens the database, starts the actors and listens on `config.http.addr`.
    pub async fn start(config: &Config) -> anyhow::Result<Server> {
        // Process-global and idempotent: servers started side by side (tests) share it.
        if !peace_metrics::install() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        let db = open_database(config).await?;
        let world = World::start(config.world_config(), db).await?;
        let listener = TcpListener::bind(&config.http.addr)
            .await
            .with_context(|| format!("listening on {}", config.http.addr))?;
        let addr = listener.local_addr()?;
        let app = peace_gateway::app(peace_gateway::AppState {
            world: world.clone(),
            config: std::sync::Arc::new(config.gateway_config()),
        });
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let limits = config.serve_limits();
        let http = tokio::spawn(peace_gateway::serve(listener, app, limits, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        tracing::info!(%addr, node = %config.node.name, "serving");
        Ok(Server {
            addr,
            world,
            http,
            stop,
        })
    }

    /// Stops accepting requests, ends every session and stops the actors.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.http.await;
        self.world.shutdown().await;
    }
}
