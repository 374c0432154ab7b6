//! `login`: how many logins per second the server completes.
//!
//! * Cold: each account's first login since the server started, so the server has to
//!   run bcrypt. Compared with bcrypt alone on all cores in the same run: the ceiling a
//!   server cannot beat. Only accounts this run registered are certainly cold (the
//!   server cannot have verified them yet); for older accounts restart the server first.
//! * Warm: the same accounts again (the server's verified-password cache answers), as
//!   reconnecting clients do. Each replaces the account's previous session. Compared with
//!   the baseline's logins.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::Common;
use crate::baseline::Baseline;
use crate::client::{Accounts, Session};
use crate::http::{Conn, Target};
use crate::probe;
use crate::report::{Latency, Report};

/// Warm logins per second the server must reach (target 4).
const WARM_TARGET_PER_SEC: f64 = 3000.0;
/// Share of bcrypt's own rate cold logins must reach (target 4).
const COLD_TARGET_RATIO: f64 = 0.8;

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Accounts logged in (each once cold, then round-robin warm).
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The server's bcrypt cost (`[login] bcrypt_cost`), for the bcrypt-alone figure.
    #[arg(long, default_value_t = 12)]
    pub bcrypt_cost: u32,
    /// Seconds bcrypt alone is measured for.
    #[arg(long, default_value_t = 3.0)]
    pub bcrypt_seconds: f64,
    /// Instead of round-robin warm logins for `--duration`: this many bursts in which
    /// every one of the `--users` accounts logs in again at the same moment (every player
    /// reconnecting after a network blip), each on a connection opened beforehand,
    /// alternating with the same bursts against the baseline. The rate of a burst is its
    /// logins divided by the time until the last reply.
    #[arg(long, default_value_t = 0)]
    pub bursts: u32,
}

/// What one series of logins measured.
#[derive(Debug, Default)]
struct Logins {
    ok: u64,
    errors: u64,
    latency: Latency,
    elapsed: Duration,
    first_error: Option<String>,
    /// The latest session of each account.
    sessions: HashMap<usize, Session>,
}

impl Logins {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn merge(&mut self, other: Logins) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latency.merge(&other.latency);
        self.sessions.extend(other.sessions);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Logs in accounts `0..users`: once each when `duration` is `None`, else round-robin
/// until `duration` has passed.
async fn logins(
    target: &Arc<Target>,
    accounts: &Accounts,
    users: usize,
    concurrency: usize,
    duration: Option<Duration>,
) -> anyhow::Result<Logins> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (target, accounts, next) = (Arc::clone(target), accounts.clone(), Arc::clone(&next));
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let mut result = Logins::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let index = match duration {
                    None if n >= users => break,
                    None => n,
                    Some(d) if started.elapsed() >= d => break,
                    Some(_) => n % users,
                };
                let sent = Instant::now();
                match accounts.login(&mut conn, index).await {
                    Ok(session) => {
                        result.latency.record(sent.elapsed());
                        result.ok += 1;
                        result.sessions.insert(index, session);
                    }
                    Err(e) => {
                        result.errors += 1;
                        result.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            Ok::<_, anyhow::Error>(result)
        });
    }
    let mut total = Logins::default();
    while let Some(done) = workers.join_next().await {
        total.merge(done??);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Logs every account of `0..users` in at once: one connection each, opened first, and
/// all requests released together, so that the server sees `users` logins arrive in
/// the same moment. `elapsed` runs from the release to the last reply.
async fn burst(target: &Arc<Target>, accounts: &Accounts, users: usize) -> anyhow::Result<Logins> {
    let mut conns = Vec::with_capacity(users);
    for _ in 0..users {
        conns.push(Conn::open(target).await?);
    }
    let release = Arc::new(tokio::sync::Barrier::new(users + 1));
    let mut workers = tokio::task::JoinSet::new();
    for (index, mut conn) in conns.into_iter().enumerate() {
        let (accounts, release) = (accounts.clone(), Arc::clone(&release));
        workers.spawn(async move {
            release.wait().await;
            let sent = Instant::now();
            let session = accounts.login(&mut conn, index).await;
            (index, sent.elapsed(), session)
        });
    }
    release.wait().await;
    let started = Instant::now();
    let mut total = Logins::default();
    while let Some(done) = workers.join_next().await {
        let (index, took, session) = done?;
        match session {
            Ok(session) => {
                total.latency.record(took);
                total.ok += 1;
                total.sessions.insert(index, session);
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

fn add(report: &mut Report, prefix: &str, l: &Logins) {
    report.int(&format!("{prefix}_logins"), l.ok);
    report.int(&format!("{prefix}_errors"), l.errors);
    report.num(&format!("{prefix}_per_sec"), l.rate());
    l.latency.fields(prefix, report);
    if let Some(e) = &l.first_error {
        report.text(&format!("{prefix}_first_error"), e.clone());
    }
}

pub async fn run(common: &Common, args: &LoginArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let users = args.users.max(1);
    let mut report = Report::new("login");
    report.text("url", common.url.clone());
    report.int("users", users as u64);
    report.int("concurrency", args.concurrency as u64);

    let created = accounts
        .ensure(&target, users, common.setup_connections)
        .await?;
    report.int("accounts_created", created as u64);
    report.flag("cold_guaranteed", created == users);

    // bcrypt alone first, while the server is idle, so the two do not share the cores.
    let (cost, measure) = (
        args.bcrypt_cost,
        Duration::from_secs_f64(args.bcrypt_seconds),
    );
    let bcrypt = tokio::task::spawn_blocking(move || probe::bcrypt_rate(cost, measure)).await??;
    report.int("bcrypt_cost", u64::from(cost));
    report.num("bcrypt_alone_per_sec", bcrypt);

    let cold = logins(&target, &accounts, users, args.concurrency, None).await?;
    add(&mut report, "cold", &cold);
    report.num("cold_vs_bcrypt", cold.rate() / bcrypt);

    // Warm logins and the baseline's take turns, slice by slice (INTERLEAVED_SLICES).
    let baseline = match common.no_baseline {
        true => None,
        false => {
            let baseline = Baseline::start()?;
            let base_target = Target::parse(&baseline.url).await?;
            Some((baseline, base_target))
        }
    };
    let slices = if baseline.is_some() {
        super::INTERLEAVED_SLICES
    } else {
        1
    };
    let slice = Some(common.duration() / slices);
    let (mut warm, mut base) = (Logins::default(), Logins::default());
    let c = args.concurrency;
    if args.bursts > 0 {
        report.int("bursts", u64::from(args.bursts));
        for _ in 0..args.bursts {
            warm.merge(burst(&target, &accounts, users).await?);
            if let Some((_, base_target)) = &baseline {
                base.merge(burst(base_target, &accounts, users).await?);
            }
        }
    } else {
        for _ in 0..slices {
            warm.merge(logins(&target, &accounts, users, c, slice).await?);
            if let Some((_, base_target)) = &baseline {
                base.merge(logins(base_target, &accounts, users, c, slice).await?);
            }
        }
    }
    add(&mut report, "warm", &warm);
    if baseline.is_some() {
        add(&mut report, "baseline", &base);
        report.num(
            "warm_vs_baseline",
            warm.rate() / base.rate().max(f64::EPSILON),
        );
    }
    drop(baseline);
    report.flag(
        "target_warm_met",
        warm.errors == 0 && warm.rate() >= WARM_TARGET_PER_SEC,
    );
    report.flag(
        "target_cold_met",
        cold.errors == 0 && cold.rate() >= COLD_TARGET_RATIO * bcrypt,
    );
    if !common.keep_online {
        let sessions: Vec<Session> = warm.sessions.into_values().collect();
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
