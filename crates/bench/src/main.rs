//! `peace-bench`: load for any Bancho server on this machine, speaking the real
//! protocol over keep-alive HTTP. See docs/benchmarks.md for every scenario, the server
//! configuration it expects, and the results.
//!
//! Every run prints a table and, as its last line, the same figures as one JSON object.
//! Scenarios that have a meaningful stateless equivalent (`login`, `poll`, `idle`,
//! `getscores`) also measure the built-in baseline server in the same run and report
//! ratios to it.

mod baseline;
mod client;
mod cluster_api;
mod http;
mod probe;
mod report;
mod scenario;
mod scores;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Options every scenario shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Base URL of the server under test (loopback only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Accounts are named `<prefix>000000`, `<prefix>000001`, ...; missing ones are
    /// registered through `POST /users`.
    #[arg(long, global = true, default_value = "bench")]
    pub prefix: String,
    /// Password of the bench accounts.
    #[arg(long, global = true, default_value = "bench-password")]
    pub password: String,
    /// Connections used for the measured load (each carries one request at a time).
    #[arg(long, global = true, default_value_t = 32)]
    pub connections: usize,
    /// Connections used to register and log in the scenario's accounts.
    #[arg(long, global = true, default_value_t = 16)]
    pub setup_connections: usize,
    /// Seconds measured.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds run before measuring (not counted).
    #[arg(long, global = true, default_value_t = 2.0)]
    pub warmup: f64,
    /// Skip the same-run baseline.
    #[arg(long, global = true)]
    pub no_baseline: bool,
    /// PID of the server, to report its resident memory.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Do not register accounts: they exist already (or the server takes any login, as
    /// the baseline does).
    #[arg(long, global = true)]
    pub no_register: bool,
    /// Keep the sessions online at the end instead of logging them out.
    #[arg(long, global = true)]
    pub keep_online: bool,
}

impl Common {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.1))
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.max(0.0))
    }

    pub fn accounts(&self) -> anyhow::Result<client::Accounts> {
        let mut accounts = client::Accounts::new(&self.prefix, &self.password)?;
        accounts.no_register = self.no_register;
        Ok(accounts)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "peace-bench",
    version,
    about = "Load generator for osu! Bancho servers (loopback only)"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Cold logins (first since the server started) then warm ones, against bcrypt alone.
    Login(scenario::login::LoginArgs),
    /// Closed-loop polls: the most polls per second the server answers.
    Poll(scenario::poll::PollArgs),
    /// Open loop: N sessions polling at a client's idle cadence; latency and memory.
    Idle(scenario::idle::IdleArgs),
    /// One sender, M members of a channel: fan-out latency.
    Chat(scenario::chat::ChatArgs),
    /// One host, S spectators: frame relay latency.
    Spectate(scenario::spectate::SpectateArgs),
    /// A 16-player match sending score updates.
    Match(scenario::multiplayer::MatchArgs),
    /// Poll each session through its host's gateway and another node's: the cost of the hop.
    Cluster(scenario::cluster::ClusterArgs),
    /// Drain a node of a cluster while N sessions poll and messages flow: how long the
    /// move takes and whether any message is lost, duplicated or reordered.
    Migrate(scenario::migrate::MigrateArgs),
    /// Players asking for a ranked map's leaderboard (getscores), against the baseline.
    Getscores(scenario::getscores::GetScoresArgs),
    /// Score submissions of a ranked map: a closed loop, or bursts released together.
    Submit(scenario::submit::SubmitArgs),
    /// A pp recalculation of every stored score (Peace's admin API): scores per second,
    /// in all and per node.
    Recalc(scenario::recalc::RecalcArgs),
    /// Serve only the stateless baseline for a while (to profile it, or to point another
    /// load tool at it).
    Baseline {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:18481")]
        listen: String,
        /// Seconds to serve before exiting.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let common = &cli.common;
        match &cli.scenario {
            Scenario::Login(args) => scenario::login::run(common, args).await,
            Scenario::Poll(args) => scenario::poll::run(common, args).await,
            Scenario::Idle(args) => scenario::idle::run(common, args).await,
            Scenario::Chat(args) => scenario::chat::run(common, args).await,
            Scenario::Spectate(args) => scenario::spectate::run(common, args).await,
            Scenario::Match(args) => scenario::multiplayer::run(common, args).await,
            Scenario::Cluster(args) => scenario::cluster::run(common, args).await,
            Scenario::Migrate(args) => scenario::migrate::run(common, args).await,
            Scenario::Getscores(args) => scenario::getscores::run(common, args).await,
            Scenario::Submit(args) => scenario::submit::run(common, args).await,
            Scenario::Recalc(args) => scenario::recalc::run(common, args).await,
            Scenario::Baseline { listen, seconds } => {
                let baseline = baseline::Baseline::start_on(listen, bytes::Bytes::new())?;
                eprintln!("baseline serving on {} for {seconds} s", baseline.url);
                tokio::time::sleep(Duration::from_secs(*seconds)).await;
                let mut report = report::Report::new("baseline");
                report.text("url", baseline.url.clone());
                Ok(report)
            }
        }
    })?;
    report.print();
    Ok(())
}
