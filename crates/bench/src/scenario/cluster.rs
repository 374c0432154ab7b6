//! `cluster`: the cost of a poll served by a gateway on another node than the session.
//! Sessions log in through `--login-url`; then every session is polled alternately
//! through `--login-url` and through `--gateway-url`, one poll in flight per URL, so the
//! two series see the same sessions under the same (light) load. The difference of the
//! medians is what the hop between nodes adds (target 6: ≤ 1 ms at p50).
//!
//! It needs a multi-node server whose nodes share the session secret; which node holds
//! a session is the cluster's choice, so pass as `--login-url` a gateway on the node that
//! places sessions locally (see docs/benchmarks.md). Against one node with both URLs the
//! same it measures the noise floor (the difference should be about 0).

use clap::Args;

use crate::Common;
use crate::client;
use crate::http::{Conn, Target};
use crate::report::{Latency, Report};

/// What a cross-node poll may add at the median (target 6), in milliseconds.
const TARGET_ADDED_P50_MS: f64 = 1.0;

#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// A gateway of the node the sessions log in to.
    #[arg(long)]
    pub login_url: String,
    /// A gateway on another node, through which the same sessions are polled.
    #[arg(long)]
    pub gateway_url: String,
    /// Sessions polled in turn.
    #[arg(long, default_value_t = 100)]
    pub sessions: usize,
}

pub async fn run(common: &Common, args: &ClusterArgs) -> anyhow::Result<Report> {
    let login = Target::parse(&args.login_url).await?;
    let gateway = Target::parse(&args.gateway_url).await?;
    let accounts = common.accounts()?;
    let n = args.sessions.max(1);
    let mut report = Report::new("cluster");
    report.text("login_url", args.login_url.clone());
    report.text("gateway_url", args.gateway_url.clone());
    report.int("sessions", n as u64);

    accounts.ensure(&login, n, common.setup_connections).await?;
    let sessions = accounts
        .login_all(&login, 0..n, common.setup_connections)
        .await?;
    super::drain_all(&login, &sessions, common.connections).await?;

    let (mut local_conn, mut remote_conn) =
        (Conn::open(&login).await?, Conn::open(&gateway).await?);
    let (mut local, mut remote) = (Latency::default(), Latency::default());
    let mut errors = 0u64;
    let body = client::ping();
    let warmup_end = std::time::Instant::now() + common.warmup();
    let end = warmup_end + common.duration();
    'run: loop {
        for session in &sessions {
            let now = std::time::Instant::now();
            if now >= end {
                break 'run;
            }
            let measured = now >= warmup_end;
            for (conn, series) in [
                (&mut local_conn, &mut local),
                (&mut remote_conn, &mut remote),
            ] {
                let sent = std::time::Instant::now();
                match client::poll(conn, session, body.clone()).await {
                    Ok(_) if measured => series.record(sent.elapsed()),
                    Ok(_) => {}
                    Err(_) => errors += u64::from(measured),
                }
            }
        }
    }
    local.fields("same_node", &mut report);
    remote.fields("other_node", &mut report);
    let added = remote.ms(0.5) - local.ms(0.5);
    report.num("added_p50_ms", added);
    report.int("polls", local.count() + remote.count());
    report.int("errors", errors);
    report.flag("target_met", errors == 0 && added <= TARGET_ADDED_P50_MS);
    if !common.keep_online {
        super::logout_all(&login, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
