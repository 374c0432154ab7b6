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
    /// The HTTPS listener's address (`[tls] addr`; `None` when `[tls] mode` is off or the
    /// node has no gateway role).
    pub tls_addr: Option<SocketAddr>,
    /// Its certificate, kept fresh in the background while the server runs.
    pub tls: Option<peace_tls::TlsHandle>,
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
        world_config.storage = Some(config.storage()?);
        let listener = if world_config.cluster.roles.gateway {
            let listener = bind(&config.http.addr, "the HTTP listener ([http] addr)").await?;
            world_config.cluster.http_addr = Some(listener.local_addr()?.to_string());
            Some(listener)
        } else {
            None
        };
        // HTTPS: the listener, and the certificate (before the actors start, so that bad
        // files or a broken CA stop the start with nothing to undo).
        let tls = match config.tls_settings() {
            Some(settings) if world_config.cluster.roles.gateway => {
                let listener = bind(&config.tls.addr, "the HTTPS listener ([tls] addr)").await?;
                let names = peace_tls::client_names(&config.http.domain);
                let handle = peace_tls::start(&settings, names).context("[tls]")?;
                Some((listener, handle))
            }
            _ => None,
        };
        let metrics_listener = if config.http.metrics_addr.is_empty() {
            None
        } else {
            let listener = bind(
                &config.http.metrics_addr,
                "the metrics listener ([http] metrics_addr)",
            )
            .await?;
            Some(listener)
        };
        if !config.cluster.listen.is_empty() {
            // ractor_cluster binds its listener inside an actor, where a busy port ends in
            // nested "actor panicked during startup" errors that never name the address:
            // try the address first, so that the operator gets one line that does.
            drop(
                bind(
                    &config.cluster.listen,
                    "the cluster listener ([cluster] listen)",
                )
                .await?,
            );
        }
        let world = World::start(world_config, db).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = peace_gateway::AppState {
            world: world.clone(),
            config: std::sync::Arc::new(config.gateway_config()),
            acme_challenges: tls
                .as_ref()
                .map(|(_, handle)| handle.challenges())
                .unwrap_or_default(),
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
        let (tls_addr, tls) = match tls {
            Some((listener, handle)) => {
                let addr = listener.local_addr()?;
                let mut stopped = stopped.clone();
                http.push(tokio::spawn(peace_gateway::serve_tls(
                    listener,
                    handle.server_config(),
                    peace_gateway::app(state.clone()),
                    config.serve_limits(),
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                )));
                tracing::info!(%addr, domain = %config.http.domain, "serving HTTPS");
                (Some(addr), Some(handle))
            }
            None => (None, None),
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
            tls_addr,
            tls,
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

/// Binds `addr` for `what`; the error names both.
async fn bind(addr: &str, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {what}"))
}

/// `peace beatmaps import`: every `.osu` file under `path` (a folder, searched
/// recursively; a `.osu` file; or a `.osz` archive) into the store and the database with
/// `status`. How many maps were imported; files that are not maps are reported and
/// skipped. A `.osz` whose maps name their set is kept in the store as well, for
/// osu!direct's downloads (`/d/<set id>`).
pub async fn import_beatmaps(
    config: &Config,
    db: Database,
    path: &std::path::Path,
    status: &str,
) -> anyhow::Result<usize> {
    use peace_scores::status::RankedStatus;
    let status = match status {
        "ranked" => RankedStatus::Ranked,
        "approved" => RankedStatus::Approved,
        "qualified" => RankedStatus::Qualified,
        "loved" => RankedStatus::Loved,
        "pending" => RankedStatus::Pending,
        other => anyhow::bail!("--status {other:?}: ranked, approved, qualified, loved or pending"),
    };
    let beatmaps = peace_actors::scores::beatmaps::Beatmaps::new(
        std::sync::Arc::new(db),
        config.storage()?,
        Default::default(),
    );
    let mut files: Vec<OsuFileFound> = Vec::new();
    collect_osu_files(path, &mut files)?;
    let mut imported = 0;
    // Each imported archive and the set its maps belong to.
    let mut archives: std::collections::BTreeMap<std::path::PathBuf, i32> = Default::default();
    for OsuFileFound {
        name,
        bytes,
        archive,
    } in files
    {
        match beatmaps.import_osu(bytes, status).await {
            Ok(row) => {
                imported += 1;
                if let Some(archive) = archive
                    && row.set_id > 0
                {
                    archives.insert(archive, row.set_id);
                }
                tracing::info!(md5 = %row.md5, file = %row.file_name, "imported");
            }
            Err(peace_actors::scores::beatmaps::ImportError::NotOsuFile(why)) => {
                eprintln!("skipped {name}: {why}");
            }
            Err(e) => return Err(e).with_context(|| format!("importing {name}")),
        }
    }
    for (archive, set_id) in archives {
        use peace_actors::scores::storage::{MAX_OBJECT_BYTES, Storage};
        let size = std::fs::metadata(&archive)
            .with_context(|| format!("reading {}", archive.display()))?
            .len();
        if size > MAX_OBJECT_BYTES {
            eprintln!(
                "{} is larger than {MAX_OBJECT_BYTES} bytes: its maps are imported, the archive \
                 is not kept for downloads",
                archive.display()
            );
            continue;
        }
        let bytes =
            std::fs::read(&archive).with_context(|| format!("reading {}", archive.display()))?;
        beatmaps
            .storage()
            .put(&Storage::osz_key(set_id), bytes.into())
            .await
            .with_context(|| format!("storing {}", archive.display()))?;
        tracing::info!(set = set_id, archive = %archive.display(), "archive kept for downloads");
    }
    Ok(imported)
}

/// A `.osu` file found by [`collect_osu_files`].
struct OsuFileFound {
    /// What to report it by.
    name: String,
    bytes: bytes::Bytes,
    /// The `.osz` it came out of, if any.
    archive: Option<std::path::PathBuf>,
}

/// The `.osu` files at `path`.
fn collect_osu_files(path: &std::path::Path, out: &mut Vec<OsuFileFound>) -> anyhow::Result<()> {
    let max = peace_actors::scores::beatmaps::MAX_OSU_FILE_BYTES;
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            collect_osu_files(&entry.path(), out)?;
        }
        return Ok(());
    }
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("osu") => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            out.push(OsuFileFound {
                name: path.display().to_string(),
                bytes: bytes.into(),
                archive: None,
            });
        }
        Some("osz") => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let mut archive = zip::ZipArchive::new(file)
                .with_context(|| format!("{} is not a .osz (zip) archive", path.display()))?;
            for i in 0..archive.len() {
                let mut entry = archive.by_index(i)?;
                if !entry.name().to_ascii_lowercase().ends_with(".osu") || entry.size() > max as u64
                {
                    continue;
                }
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut entry, max as u64),
                    &mut bytes,
                )?;
                out.push(OsuFileFound {
                    name: format!("{}:{}", path.display(), entry.name()),
                    bytes: bytes.into(),
                    archive: Some(path.to_path_buf()),
                });
            }
        }
        _ => {}
    }
    Ok(())
}
