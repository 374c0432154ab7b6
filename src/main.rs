//! The `peace` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use peace::{Config, Server, copy_database, open_database};

/// mimalloc instead of the system allocator: glibc's per-thread arenas kept the garbage
/// of a login storm resident (about 4.5 KiB per online session at 10,000 sessions), and
/// the poll path, which allocates a few dozen times per request, runs faster with it
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "peace",
    version,
    about = "A distributed osu! server built on actors"
)]
struct Cli {
    /// Configuration file (default: ./cluster.toml, if there is one). A file named here
    /// must exist.
    #[arg(long, global = true, env = "PEACE_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (overrides the configuration): sqlite://data/peace.db,
    /// postgres://user:password@host/peace or mysql://user:password@host/peace.
    /// The environment variable keeps a password out of the process list.
    #[arg(long, global = true, env = "PEACE_DATABASE_URL")]
    database_url: Option<String>,
    /// How log lines are written: `text` (coloured only on a terminal) or `json` (one
    /// object per line, for log collectors).
    #[arg(long, global = true, env = "PEACE_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// HTTP listen address (overrides the configuration).
        #[arg(long)]
        http_addr: Option<String>,
        /// Listen address of a second listener serving only /metrics and the health check.
        #[arg(long)]
        metrics_addr: Option<String>,
        /// The server's domain (overrides the configuration).
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Look at (and operate) a running cluster through a node's API.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Database tools.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// The server's beatmaps.
    Beatmaps {
        #[command(subcommand)]
        command: BeatmapsCommand,
    },
    /// Performance points.
    Pp {
        #[command(subcommand)]
        command: PpCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PpCommand {
    /// Recompute the pp of stored scores, then players' totals and ranks, and the
    /// leaderboards (after a pp formula update or a map status change). Runs on the
    /// running cluster, every node on the shards it owns; resumes by itself after a crash
    /// or restart. Shows its progress until it ends (Ctrl-C stops only the display).
    Recalc {
        /// Only scores of this mode: osu, taiko, catch, mania (or 0..=3).
        #[arg(long)]
        mode: Option<String>,
        /// Only scores of this map: its beatmap id or md5.
        #[arg(long)]
        map: Option<String>,
        /// Only scores of this player: id or name.
        #[arg(long)]
        user: Option<String>,
        /// Start the job and return at once.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show the running (or last) recalculation and follow it until it ends.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BeatmapsCommand {
    /// Import `.osu` files: a folder (searched recursively), a `.osu` file or a `.osz`.
    /// Each map is stored by its md5 and gets the status given (maps others play on a
    /// server without an osu!api source need one with a leaderboard).
    Import {
        path: std::path::PathBuf,
        /// ranked, approved, qualified, loved or pending.
        #[arg(long, default_value = "ranked")]
        status: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Print the nodes, their status and what each hosts.
    Status {
        /// A node's HTTP address (default: this configuration's `[http] addr`).
        #[arg(long)]
        url: Option<String>,
    },
    /// Move everything off a node (before stopping it for an upgrade).
    Drain {
        /// The node's name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// End every drain and even the load out over the nodes.
    Rebalance {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Where and how to make an admin call.
#[derive(Debug, clap::Args)]
struct AdminArgs {
    /// A node's HTTP address (default: this configuration's `[http] addr`).
    #[arg(long)]
    url: Option<String>,
    /// The admin token (default: this configuration's `[api] admin_token`).
    #[arg(long, env = "PEACE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl AdminArgs {
    fn resolve(self, config: &Config) -> (String, String) {
        (
            self.url
                .unwrap_or_else(|| format!("http://{}", config.http.addr)),
            self.token.unwrap_or_else(|| config.api.admin_token.clone()),
        )
    }
}

/// Cluster settings of `peace serve`; each overrides `cluster.toml`.
#[derive(Debug, Default, clap::Args)]
struct ClusterArgs {
    /// This node's name, unique in its cluster.
    #[arg(long)]
    node_name: Option<String>,
    /// Where the cluster listener binds (IP:PORT); without it the node runs alone.
    #[arg(long)]
    cluster_addr: Option<String>,
    /// host:port that peers use to reach this node (default: --cluster-addr).
    #[arg(long)]
    advertise_addr: Option<String>,
    /// A peer to join through (repeatable).
    #[arg(long = "seed")]
    seeds: Vec<String>,
    /// The cluster's shared secret.
    #[arg(long, env = "PEACE_CLUSTER_COOKIE", hide_env_values = true)]
    cookie: Option<String>,
    /// The session-token secret (the same on every node).
    #[arg(long, env = "PEACE_SESSION_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// What this node does: gateway, actors, or both (comma-separated).
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// Bearer token of the JSON API's admin calls.
    #[arg(long, env = "PEACE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

impl ClusterArgs {
    fn apply(self, config: &mut Config) {
        if let Some(name) = self.node_name {
            config.node.name = name;
        }
        if let Some(addr) = self.cluster_addr {
            config.cluster.listen = addr;
        }
        if let Some(addr) = self.advertise_addr {
            config.cluster.advertise = addr;
        }
        if !self.seeds.is_empty() {
            config.cluster.seeds = self.seeds;
        }
        if let Some(cookie) = self.cookie {
            config.cluster.cookie = cookie;
        }
        if let Some(secret) = self.secret {
            config.sessions.secret = secret;
        }
        if !self.roles.is_empty() {
            config.node.roles = self.roles;
        }
        if let Some(token) = self.admin_token {
            config.api.admin_token = token;
        }
    }
}

/// The listener settings of `peace serve`; each overrides `cluster.toml`.
struct ListenerArgs {
    http_addr: Option<String>,
    metrics_addr: Option<String>,
    domain: Option<String>,
}

impl ListenerArgs {
    fn apply(self, config: &mut Config) {
        if let Some(addr) = self.http_addr {
            config.http.addr = addr;
        }
        if let Some(addr) = self.metrics_addr {
            config.http.metrics_addr = addr;
        }
        if let Some(domain) = self.domain {
            config.http.domain = domain;
        }
    }
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Copy every table from one database to another, ids included (e.g. from SQLite to
    /// PostgreSQL). Stop the server first. The target is migrated, and must hold nothing
    /// but the migrations' seeds unless --overwrite is given.
    Copy {
        /// The database to copy from (only read).
        #[arg(long)]
        from: String,
        /// The database to copy into.
        #[arg(long)]
        to: String,
        /// Delete everything in the target first instead of refusing a non-empty one.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        name: String,
        /// The password. Without it, it is asked for (or read as one line from standard
        /// input when that is not a terminal), so that it stays out of the shell's
        /// history and the process list.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match start(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, causes included: what an operator reads first in a unit's status.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => logs.json().init(),
        // Colours only for a person at a terminal: in a file or a pipe they are noise
        // (https://no-color.org is honoured too).
        LogFormat::Text => logs
            .with_ansi(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path, true)?,
        None => Config::load(Config::DEFAULT_PATH.as_ref(), false)?,
    };
    if let Some(url) = cli.database_url {
        config.database.url = url;
    }
    // Migrations through diesel-async need the multi-threaded runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command, config))
}

/// The password of `peace user add` when the command line has none: asked for without
/// echo at a terminal, otherwise the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("password: ").context("reading the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "no password given");
    Ok(password)
}

async fn run(command: Option<Command>, mut config: Config) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve {
        http_addr: None,
        metrics_addr: None,
        domain: None,
        cluster: ClusterArgs::default(),
    }) {
        Command::Serve {
            http_addr,
            metrics_addr,
            domain,
            cluster,
        } => {
            let listeners = ListenerArgs {
                http_addr,
                metrics_addr,
                domain,
            };
            listeners.apply(&mut config);
            cluster.apply(&mut config);
            let server = Server::start(&config).await?;
            shutdown_signal().await;
            server.world.begin_stopping();
            // Hand this node's players, channels and matches to the others first, so
            // that stopping it (for an upgrade, say) costs nobody their session.
            let limit = std::time::Duration::from_secs(config.cluster.drain_timeout_secs.max(1));
            server.world.drain_self(limit).await;
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        Command::Cluster {
            command: ClusterCommand::Status { url },
        } => {
            let url = url.unwrap_or_else(|| format!("http://{}", config.http.addr));
            let view = peace::ops::fetch_cluster(&url).await?;
            print!("{}", peace::ops::cluster_table(&view));
        }
        Command::Cluster {
            command: ClusterCommand::Drain { name, admin },
        } => {
            let (url, token) = admin.resolve(&config);
            let path = format!("/api/v1/cluster/nodes/{name}/drain");
            peace::ops::admin_post(&url, &path, &token).await?;
            println!("{name} is draining; `peace cluster status` shows its entities leave");
        }
        Command::Cluster {
            command: ClusterCommand::Rebalance { admin },
        } => {
            let (url, token) = admin.resolve(&config);
            peace::ops::admin_post(&url, "/api/v1/cluster/rebalance", &token).await?;
            println!("rebalancing");
        }
        Command::Pp {
            command:
                PpCommand::Recalc {
                    mode,
                    map,
                    user,
                    detach,
                    admin,
                },
        } => {
            let (url, token) = admin.resolve(&config);
            let filters = serde_json::json!({ "mode": mode, "map": map, "user": user });
            let answer = peace::ops::start_recalc(&url, &token, &filters).await?;
            let job = &answer["job"];
            let id = job["id"].as_i64().context("the answer names no job")?;
            if answer["started"] == true {
                println!("recalculation {id} started: {} scores", job["total"]);
            } else {
                println!(
                    "recalculation {id} is running already (mode {}, map {}, user {}); following it",
                    job["mode"], job["map"], job["user"]
                );
            }
            if !detach {
                let job = peace::ops::follow_recalc(&url, &token, id).await?;
                println!("recalculation {id} finished: {} scores", job["done"]);
            }
        }
        Command::Pp {
            command: PpCommand::Status { admin },
        } => {
            let (url, token) = admin.resolve(&config);
            let job = peace::ops::recalc_status(&url, &token).await?;
            match job["id"].as_i64() {
                None => println!("no recalculation has run"),
                Some(id) if job["state"] == "finished" => {
                    println!("{}", peace::ops::progress_line(&job));
                    println!("recalculation {id} finished");
                }
                Some(id) => {
                    let job = peace::ops::follow_recalc(&url, &token, id).await?;
                    println!("recalculation {id} finished: {} scores", job["done"]);
                }
            }
        }
        Command::Beatmaps {
            command: BeatmapsCommand::Import { path, status },
        } => {
            let db = open_database(&config).await?;
            let imported = peace::import_beatmaps(&config, db, &path, &status).await?;
            println!("imported {imported} map(s)");
        }
        Command::Migrate => {
            config.database.migrate_on_start = false;
            let db = open_database(&config).await?;
            let applied = db.migrate().await?;
            println!("{applied} migration(s) applied");
        }
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    password,
                    email,
                    admin,
                },
        } => {
            let password = match password {
                Some(password) => password,
                None => read_password()?,
            };
            let db = open_database(&config).await?;
            // Accounts made here need no real address; `.invalid` can never be one (RFC 2606),
            // whatever the configured domain looks like.
            let email =
                email.unwrap_or_else(|| format!("{}@peace.invalid", peace_db::safe_name(&name)));
            let reg = peace_actors::accounts::Registration {
                username: name.clone(),
                email,
                password,
            };
            let mut privileges = peace_db::Privileges::DEFAULT_NEW;
            if admin {
                privileges = privileges.union(peace_db::Privileges::ADMIN);
            }
            let cost = config.world_config().bcrypt_cost;
            match peace_actors::accounts::register(&db, &reg, privileges, cost).await {
                Ok(id) => println!("created user {name} with id {id}"),
                Err(peace_actors::accounts::RegisterError::Invalid(errors)) => {
                    for (field, messages) in errors.0 {
                        for m in messages {
                            eprintln!("{field}: {m}");
                        }
                    }
                    anyhow::bail!("the account was not created");
                }
                Err(e) => return Err(e).context("creating the account"),
            }
        }
        Command::Db {
            command:
                DbCommand::Copy {
                    from,
                    to,
                    overwrite,
                },
        } => {
            let report = copy_database(&config, &from, &to, overwrite).await?;
            for (table, rows) in &report.tables {
                println!("{table}: {rows} row(s)");
            }
            let total: u64 = report.tables.iter().map(|(_, rows)| rows).sum();
            println!("copied {total} row(s)");
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_flags_override_the_configuration() {
        let cli = Cli::try_parse_from([
            "peace",
            "serve",
            "--http-addr",
            "0.0.0.0:9000",
            "--metrics-addr",
            "127.0.0.1:9180",
            "--domain",
            "example.com",
            "--node-name",
            "node-7",
            "--cluster-addr",
            "10.0.0.7:4000",
            "--advertise-addr",
            "node7.internal:4000",
            "--seed",
            "10.0.0.1:4000",
            "--seed",
            "10.0.0.2:4000",
            "--cookie",
            "a cookie",
            "--secret",
            "a secret",
            "--roles",
            "gateway,actors",
            "--admin-token",
            "a token",
        ])
        .unwrap();
        let Some(Command::Serve {
            http_addr,
            metrics_addr,
            domain,
            cluster,
        }) = cli.command
        else {
            panic!("not parsed as serve");
        };
        let mut config = Config::default();
        ListenerArgs {
            http_addr,
            metrics_addr,
            domain,
        }
        .apply(&mut config);
        cluster.apply(&mut config);
        assert_eq!(config.http.addr, "0.0.0.0:9000");
        assert_eq!(config.http.metrics_addr, "127.0.0.1:9180");
        assert_eq!(config.http.domain, "example.com");
        assert_eq!(config.node.name, "node-7");
        assert_eq!(config.cluster.listen, "10.0.0.7:4000");
        assert_eq!(config.cluster.advertise, "node7.internal:4000");
        assert_eq!(config.cluster.seeds, ["10.0.0.1:4000", "10.0.0.2:4000"]);
        assert_eq!(config.cluster.cookie, "a cookie");
        assert_eq!(config.sessions.secret, "a secret");
        assert_eq!(config.node.roles, ["gateway", "actors"]);
        assert_eq!(config.api.admin_token, "a token");
        config.validate().unwrap();
    }

    #[test]
    fn without_flags_the_configuration_stands() {
        let cli = Cli::try_parse_from(["peace", "serve"]).unwrap();
        let Some(Command::Serve { cluster, .. }) = cli.command else {
            panic!("not parsed as serve");
        };
        let mut config = Config::default();
        let before = format!("{config:?}");
        cluster.apply(&mut config);
        assert_eq!(format!("{config:?}"), before);
    }
}
