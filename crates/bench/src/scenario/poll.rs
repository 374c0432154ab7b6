//! `poll`: closed-loop polls. Every connection sends a PING poll for its next session as
//! soon as the last one is answered: the server's capacity for the request every client
//! sends most. The same loop against the stateless baseline gives the ratio (target 1).

use clap::Args;

use crate::Common;
use crate::baseline::Baseline;
use crate::http::Target;
use crate::report::Report;
use crate::scenario::ClosedLoop;

/// Share of the baseline's poll rate the server must keep (target 1).
const TARGET_RATIO: f64 = 0.7;

#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Sessions polled in turn.
    #[arg(long, default_value_t = 256)]
    pub sessions: usize,
}

fn add(report: &mut Report, prefix: &str, r: &ClosedLoop) {
    report.int(&format!("{prefix}_polls"), r.answered);
    report.int(&format!("{prefix}_errors"), r.errors);
    report.num(&format!("{prefix}_per_sec"), r.rate());
    r.latency.fields(prefix, report);
    if let Some(e) = &r.first_error {
        report.text(&format!("{prefix}_first_error"), e.clone());
    }
}

pub async fn run(common: &Common, args: &PollArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let n = args.sessions.max(1);
    let mut report = Report::new("poll");
    report.text("url", common.url.clone());
    report.int("sessions", n as u64);
    report.int("connections", common.connections as u64);
    report.num("duration_s", common.duration);

    accounts
        .ensure(&target, n, common.setup_connections)
        .await?;
    let sessions = accounts
        .login_all(&target, 0..n, common.setup_connections)
        .await?;
    super::drain_all(&target, &sessions, common.connections).await?;
    let baseline = if common.no_baseline {
        None
    } else {
        let baseline = Baseline::start()?;
        let base_target = Target::parse(&baseline.url).await?;
        let base_sessions = accounts
            .login_all(&base_target, 0..n, common.setup_connections)
            .await?;
        Some((baseline, base_target, base_sessions))
    };

    // Server and baseline take turns, slice by slice (see INTERLEAVED_SLICES).
    let slices = if baseline.is_some() {
        super::INTERLEAVED_SLICES
    } else {
        1
    };
    let slice = common.duration() / slices;
    let (mut server, mut base) = (ClosedLoop::default(), ClosedLoop::default());
    for i in 0..slices {
        let warmup = if i == 0 {
            common.warmup()
        } else {
            super::SLICE_WARMUP
        };
        let c = common.connections;
        server.merge(super::closed_loop(&target, &sessions, c, warmup, slice).await?);
        if let Some((_, base_target, base_sessions)) = &baseline {
            base.merge(super::closed_loop(base_target, base_sessions, c, warmup, slice).await?);
        }
    }
    add(&mut report, "server", &server);
    if baseline.is_some() {
        add(&mut report, "baseline", &base);
        let ratio = server.rate() / base.rate().max(f64::EPSILON);
        report.num("server_vs_baseline", ratio);
        report.flag("target_met", server.errors == 0 && ratio >= TARGET_RATIO);
    }
    drop(baseline);
    if !common.keep_online {
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
