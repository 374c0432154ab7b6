//! `cluster`: the cost of a poll served by a gateway on another node than the session
//! (target 6: ≤ 1 ms added at p50, three nodes on one machine).
//!
//! Sessions log in, then the bench asks the cluster API which node hosts each one
//! (`GET /api/v1/entities/user/{id}`) and which node each gateway belongs to. Every
//! session is then polled in turn through its host's gateway ("same node") and through
//! a gateway of another node ("other node", the other nodes taken in rotation), one
//! poll in flight at a time, so that both series see the same sessions under the same
//! light load in the same run; which of the two goes first alternates, so that neither
//! series always follows a pause. The difference of the medians is what the hop adds.
//!
//! Against one node (or gateways of one node only) there is no other node: the second
//! series then goes through the same gateway on a second connection, and the difference
//! is the noise floor (about 0).

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;

use crate::Common;
use crate::client;
use crate::cluster_api::{self, Gateway};
use crate::http::Conn;
use crate::report::{Latency, Report};

/// What a cross-node poll may add at the median (target 6), in milliseconds.
const TARGET_ADDED_P50_MS: f64 = 1.0;

#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Base URLs of the nodes' gateways, comma-separated (one per node; loopback only).
    #[arg(long, required = true)]
    pub gateways: String,
    /// Sessions polled in turn (spread over the nodes by the cluster's placement).
    #[arg(long, default_value_t = 300)]
    pub sessions: usize,
}

/// A session and the two gateways it is polled through (indices into the gateways).
struct Route {
    session: client::Session,
    host: usize,
    other: usize,
}

pub async fn run(common: &Common, args: &ClusterArgs) -> anyhow::Result<Report> {
    let gateways = cluster_api::gateways(&args.gateways).await?;
    let accounts = common.accounts()?;
    let n = args.sessions.max(1);
    let mut report = Report::new("cluster");
    report.text(
        "gateways",
        gateways
            .iter()
            .map(|g| format!("{}={}", g.node, g.target.url))
            .collect::<Vec<_>>()
            .join(","),
    );
    report.int("sessions", n as u64);

    let first = &gateways[0].target;
    accounts.ensure(first, n, common.setup_connections).await?;
    let sessions = accounts
        .login_all(first, 0..n, common.setup_connections)
        .await?;
    super::drain_all(first, &sessions, common.connections).await?;

    let (routes, unrouted, cross_node) = route(&gateways, sessions.clone()).await?;
    let mut per_host: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &routes {
        *per_host.entry(&gateways[r.host].node).or_default() += 1;
    }
    for (node, count) in &per_host {
        report.int(&format!("sessions_on_{node}"), *count);
    }
    report.int("sessions_without_host_gateway", unrouted);
    report.flag("cross_node", cross_node);
    anyhow::ensure!(!routes.is_empty(), "no session is hosted behind a gateway");

    // One connection per gateway for each series, so that the two series never share a
    // connection (in noise-floor mode both go to one gateway, on separate connections).
    let mut same_conns = Vec::new();
    let mut other_conns = Vec::new();
    for g in &gateways {
        same_conns.push(Conn::open(&g.target).await?);
        other_conns.push(Conn::open(&g.target).await?);
    }
    let (mut same, mut other) = (Latency::default(), Latency::default());
    let mut errors = 0u64;
    let body = client::ping();
    let warmup_end = Instant::now() + common.warmup();
    let end = warmup_end + common.duration();
    'run: for round in 0usize.. {
        for (i, r) in routes.iter().enumerate() {
            let now = Instant::now();
            if now >= end {
                break 'run;
            }
            let measured = now >= warmup_end;
            let same_first = (round + i) % 2 == 0;
            for leg in 0..2 {
                let through_host = (leg == 0) == same_first;
                let (conn, series) = if through_host {
                    (&mut same_conns[r.host], &mut same)
                } else {
                    (&mut other_conns[r.other], &mut other)
                };
                let sent = Instant::now();
                match client::poll(conn, &r.session, body.clone()).await {
                    Ok(_) if measured => series.record(sent.elapsed()),
                    Ok(_) => {}
                    Err(_) => errors += u64::from(measured),
                }
            }
        }
    }
    same.fields("same_node", &mut report);
    other.fields("other_node", &mut report);
    let added_p50 = other.ms(0.5) - same.ms(0.5);
    report.num("added_p50_ms", added_p50);
    report.num("added_p99_ms", other.ms(0.99) - same.ms(0.99));
    report.int("polls", same.count() + other.count());
    report.int("errors", errors);
    report.flag(
        "target_met",
        cross_node && errors == 0 && added_p50 <= TARGET_ADDED_P50_MS,
    );
    if !common.keep_online {
        super::logout_all(first, &sessions, common.setup_connections).await;
    }
    Ok(report)
}

/// Finds each session's host and picks the gateway of another node for it. Returns the
/// routes, how many sessions live on a node without a gateway in the list, and whether
/// any route crosses nodes.
async fn route(
    gateways: &[Gateway],
    sessions: Vec<client::Session>,
) -> anyhow::Result<(Vec<Route>, u64, bool)> {
    let mut api = Conn::open(&gateways[0].target).await?;
    let mut routes = Vec::new();
    let mut unrouted = 0u64;
    for session in sessions {
        let node = cluster_api::host_of_user(&mut api, session.user_id).await?;
        let Some(host) = gateways.iter().position(|g| g.node == node) else {
            unrouted += 1;
            continue;
        };
        let others: Vec<usize> = (0..gateways.len())
            .filter(|&g| gateways[g].node != node)
            .collect();
        let other = match others.is_empty() {
            true => host,
            false => others[session.index % others.len()],
        };
        routes.push(Route {
            session,
            host,
            other,
        });
    }
    let cross_node = routes
        .iter()
        .any(|r| gateways[r.other].node != gateways[r.host].node);
    Ok((routes, unrouted, cross_node))
}
