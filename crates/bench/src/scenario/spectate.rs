//! `spectate`: one host, S spectators. The host sends K bundles of replay frames; every
//! spectator polls in a closed loop and records when each bundle reached it. The bundle's
//! leading `extra` field carries its sequence number (servers relay bundles as they came).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use peace_bancho::{ServerPacketId, client as c};

use crate::Common;
use crate::client::{self, Session};
use crate::http::{Conn, Target};
use crate::report::Report;

/// How long spectators keep polling for stragglers after the last bundle.
const TAIL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Args)]
pub struct SpectateArgs {
    /// Spectators of the one host.
    #[arg(long, default_value_t = 100)]
    pub spectators: usize,
    /// Frame bundles the host sends.
    #[arg(long, default_value_t = 200)]
    pub bundles: usize,
    /// Milliseconds between bundles.
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
}

/// A frame bundle as the client sends it: i32 extra (our sequence number), u16 count,
/// count × 14-byte frames, u8 action, no score frame.
fn bundle(seq: usize) -> Bytes {
    let mut b = Vec::with_capacity(4 + 2 + 14 + 1);
    b.extend_from_slice(&i32::try_from(seq).unwrap_or(i32::MAX).to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.push(1); // buttons
    b.push(0); // legacy byte
    b.extend_from_slice(&256.0f32.to_le_bytes()); // x
    b.extend_from_slice(&192.0f32.to_le_bytes()); // y
    b.extend_from_slice(&i32::try_from(seq * 16).unwrap_or(0).to_le_bytes()); // time
    b.push(0); // action: standard
    b.into()
}

pub async fn run(common: &Common, args: &SpectateArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let s = args.spectators.max(1);
    let mut report = Report::new("spectate");
    report.text("url", common.url.clone());
    report.int("spectators", s as u64);
    report.int("bundles", args.bundles as u64);
    report.int("interval_ms", args.interval_ms);

    accounts
        .ensure(&target, s + 1, common.setup_connections)
        .await?;
    let sessions = accounts
        .login_all(&target, 0..=s, common.setup_connections)
        .await?;
    let (host, spectators) = sessions
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no sessions"))?;
    let start = client::encode(&[c::StartSpectating {
        target_id: host.user_id,
    }
    .into()]);
    super::for_each_session(&target, spectators, common.connections, start).await?;
    super::drain_all(&target, &sessions, common.connections).await?;

    let deliveries = super::Deliveries::new(args.bundles);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&deliveries);
    let on_reply = Arc::new(move |_: &Session, body: &[u8], at| {
        for (id, payload) in client::frames(body) {
            if id == ServerPacketId::SpectateFrames as u16
                && let Some(seq) = payload.get(..4)
            {
                let seq = i32::from_le_bytes([seq[0], seq[1], seq[2], seq[3]]);
                if let Ok(seq) = usize::try_from(seq) {
                    seen.arrived(seq, at);
                }
            }
        }
    });
    let receivers = {
        let (target, spectators, stop) =
            (Arc::clone(&target), spectators.to_vec(), Arc::clone(&stop));
        let connections = common.connections;
        tokio::spawn(async move {
            super::receive_until(&target, &spectators, connections, stop, on_reply).await
        })
    };

    let mut conn = Conn::open(&target).await?;
    let mut host_errors = 0u64;
    for seq in 0..args.bundles {
        let body = client::encode(&[c::SpectateFrames {
            frames: peace_bancho::wire::Raw(bundle(seq)),
        }
        .into()]);
        deliveries.mark_sent(seq);
        if client::poll(&mut conn, host, body).await.is_err() {
            host_errors += 1;
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    let expected = (args.bundles * s) as u64;
    let all = super::wait_for(TAIL, || deliveries.delivered() >= expected).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let receiver_errors = receivers.await??;

    report.int("expected_deliveries", expected);
    report.int("delivered", deliveries.delivered());
    report.flag("all_delivered", all);
    report.int("errors", host_errors + receiver_errors);
    deliveries.latency().fields("end_to_end", &mut report);
    if !common.keep_online {
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
