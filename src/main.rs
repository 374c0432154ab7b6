//! The `peace` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use peace::{Config, Server, open_database};

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
    /// Configuration file.
    #[arg(long, global = true, default_value = "cluster.toml")]
    config: PathBuf,
    /// Database URL (overrides the configuration), e.g. sqlite://data/peace.db.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// HTTP listen address (overrides the configuration).
        #[arg(long)]
        http_addr: Option<String>,
        /// The server's domain (overrides the configuration).
        #[arg(long)]
        domain: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        name: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let mut config = Config::load(&cli.config)?;
    if let Some(url) = cli.database_url {
        config.database.url = url;
    }
    // Migrations through diesel-async need the multi-threaded runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command, config))
}

async fn run(command: Option<Command>, mut config: Config) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve {
        http_addr: None,
        domain: None,
    }) {
        Command::Serve { http_addr, domain } => {
            if let Some(addr) = http_addr {
                config.http.addr = addr;
            }
            if let Some(domain) = domain {
                config.http.domain = domain;
            }
            let server = Server::start(&config).await?;
            shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await;
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
