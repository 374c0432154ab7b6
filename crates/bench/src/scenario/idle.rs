//! `idle`: N sessions polling at a client's idle cadence (a PING each interval), open
//! loop: every poll is due at its time whatever happened to the last one, and latency
//! counts from that time. Every poll must be answered (target 2: 10,000 sessions, 1 s,
//! p99 < 25 ms).
//!
//! With `--server-pid` it also reports the server's resident memory before the logins
//! and with everyone online, per session (target 3). Start a fresh server for that: an
//! allocator keeps what earlier scenarios used.

use std::time::Duration;

use clap::Args;

use peace_bancho::client as c;

use crate::Common;
use crate::baseline::Baseline;
use crate::client;
use crate::http::Target;
use crate::probe;
use crate::report::Report;
use crate::scenario::OpenLoop;

/// p99 the server must stay under (target 2).
const TARGET_P99_MS: f64 = 25.0;
/// Resident memory per idle session the server may use (target 3), in KiB.
const TARGET_KIB_PER_SESSION: f64 = 12.0;
/// Time given to the server after the last poll of the drain, before memory is read, so
/// that replies in flight are freed.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Sessions online.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Each session polls once per this many milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// Whose presence updates the sessions ask for (RECEIVE_UPDATES): 0 nobody's,
    /// 1 everyone's (the client's default), 2 friends'. With everyone's, N sessions that
    /// log in together must each hear of the N others: O(N²) bytes, 40 GB at 100,000.
    #[arg(long, default_value_t = 1)]
    pub presence_filter: i32,
}

fn add(report: &mut Report, prefix: &str, r: &OpenLoop) {
    report.int(&format!("{prefix}_scheduled"), r.scheduled);
    report.int(&format!("{prefix}_answered"), r.answered);
    report.int(&format!("{prefix}_errors"), r.errors);
    report.int(&format!("{prefix}_late"), r.late);
    r.latency.fields(prefix, report);
    if let Some(e) = &r.first_error {
        report.text(&format!("{prefix}_first_error"), e.clone());
    }
}

pub async fn run(common: &Common, args: &IdleArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let n = args.sessions.max(1);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let mut report = Report::new("idle");
    report.text("url", common.url.clone());
    report.int("sessions", n as u64);
    report.int("interval_ms", args.interval_ms);
    report.int(
        "presence_filter",
        u64::try_from(args.presence_filter).unwrap_or(0),
    );
    report.int("connections", common.connections as u64);
    report.num("duration_s", common.duration);
    report.num("offered_polls_per_sec", n as f64 / interval.as_secs_f64());

    let created = accounts
        .ensure(&target, n, common.setup_connections)
        .await?;
    report.int("accounts_created", created as u64);
    let rss_empty = common.server_pid.map(probe::rss_kib).transpose()?;
    let started = std::time::Instant::now();
    let sessions = accounts
        .login_all(&target, 0..n, common.setup_connections)
        .await?;
    report.num("login_phase_s", started.elapsed().as_secs_f64());
    // Twice: the first drain takes the presence of everyone who logged in later.
    let filter = client::encode(&[
        c::ReceiveUpdates {
            filter: args.presence_filter,
        }
        .into(),
        c::Ping {}.into(),
    ]);
    super::for_each_session(&target, &sessions, common.connections, filter).await?;
    super::drain_all(&target, &sessions, common.connections).await?;
    tokio::time::sleep(SETTLE).await;
    if let (Some(pid), Some(empty)) = (common.server_pid, rss_empty) {
        let online = probe::rss_kib(pid)?;
        let per_session = online.saturating_sub(empty) as f64 / n as f64;
        report.int("rss_empty_kib", empty);
        report.int("rss_online_kib", online);
        report.num("rss_kib_per_session", per_session);
        report.flag("target_memory_met", per_session <= TARGET_KIB_PER_SESSION);
    }

    let server = super::open_loop(
        &target,
        &sessions,
        common.connections,
        interval,
        common.warmup(),
        common.duration(),
    )
    .await?;
    add(&mut report, "server", &server);
    if let Some(pid) = common.server_pid {
        report.int("rss_after_run_kib", probe::rss_kib(pid)?);
    }
    let all_answered = server.errors == 0 && server.answered == server.scheduled;
    report.flag("all_answered", all_answered);
    report.flag(
        "target_latency_met",
        all_answered && server.latency.ms(0.99) < TARGET_P99_MS,
    );
    if !common.keep_online {
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }

    if !common.no_baseline {
        let baseline = Baseline::start()?;
        let base_target = Target::parse(&baseline.url).await?;
        let base_sessions = accounts
            .login_all(&base_target, 0..n, common.setup_connections)
            .await?;
        let base = super::open_loop(
            &base_target,
            &base_sessions,
            common.connections,
            interval,
            common.warmup(),
            common.duration(),
        )
        .await?;
        drop(baseline);
        add(&mut report, "baseline", &base);
        report.num(
            "p99_vs_baseline",
            server.latency.ms(0.99) / base.latency.ms(0.99).max(0.001),
        );
    }
    Ok(report)
}
