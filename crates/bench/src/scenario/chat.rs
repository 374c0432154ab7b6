//! `chat`: one sender, M members in `#osu`. The sender writes K messages; every member
//! polls in a closed loop and records when each message reached it.
//!
//! Two figures: end to end (send → seen in a member's poll; includes waiting for that
//! member's next poll, so it grows with M / connections), and the server's own fan-out
//! time from `/metrics` (`peace_channel_fanout_duration_seconds`, target 5: ≤ 5 ms p99
//! with 1,000 members), read as the delta between a scrape before and after.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Args;
use peace_bancho::{ServerPacket, ServerPacketId, client as c};

use crate::Common;
use crate::client::{self, Session};
use crate::http::{Conn, Target};
use crate::probe::{HistogramDelta, Scrape};
use crate::report::Report;

/// Server-side fan-out p99 the server must stay under (target 5), in milliseconds.
const TARGET_FANOUT_P99_MS: f64 = 5.0;
/// The channel every client is in.
const CHANNEL: &str = "#osu";
/// How long members keep polling for stragglers after the last message.
const TAIL: Duration = Duration::from_secs(5);
const TEXT_PREFIX: &str = "bench-chat ";
/// The fan-out histogram in Peace's `/metrics`.
const FANOUT_METRIC: &str = "peace_channel_fanout_duration_seconds";

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Members besides the sender.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Messages sent.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Milliseconds between messages (the server's chat limit must allow the rate).
    #[arg(long, default_value_t = 50)]
    pub interval_ms: u64,
}

fn message_seq(payload: &[u8]) -> Option<usize> {
    match ServerPacket::decode(ServerPacketId::SendMessage as u16, payload).ok()? {
        ServerPacket::SendMessage(m) => m.message.text.strip_prefix(TEXT_PREFIX)?.parse().ok(),
        _ => None,
    }
}

pub async fn run(common: &Common, args: &ChatArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let m = args.members.max(1);
    let mut report = Report::new("chat");
    report.text("url", common.url.clone());
    report.int("members", m as u64);
    report.int("messages", args.messages as u64);
    report.int("interval_ms", args.interval_ms);

    accounts
        .ensure(&target, m + 1, common.setup_connections)
        .await?;
    let sessions = accounts
        .login_all(&target, 0..=m, common.setup_connections)
        .await?;
    let (sender, members) = sessions
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no sessions"))?;
    // A client joins #osu when told about it; servers that do not auto-join need this.
    let join = client::encode(&[c::ChannelJoin {
        name: CHANNEL.into(),
    }
    .into()]);
    super::for_each_session(&target, &sessions, common.connections, join).await?;
    super::drain_all(&target, &sessions, common.connections).await?;

    let before = Scrape::take(&target).await;
    let deliveries = super::Deliveries::new(args.messages);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&deliveries);
    let on_reply = Arc::new(move |_: &Session, body: &[u8], at| {
        for (id, payload) in client::frames(body) {
            if id == ServerPacketId::SendMessage as u16
                && let Some(seq) = message_seq(payload)
            {
                seen.arrived(seq, at);
            }
        }
    });
    let receivers = {
        let (target, members, stop) = (Arc::clone(&target), members.to_vec(), Arc::clone(&stop));
        let connections = common.connections;
        tokio::spawn(async move {
            super::receive_until(&target, &members, connections, stop, on_reply).await
        })
    };

    let mut conn = Conn::open(&target).await?;
    let mut sender_errors = 0u64;
    for seq in 0..args.messages {
        let body = client::encode(&[c::SendPublicMessage {
            message: peace_bancho::Message {
                sender: String::new(),
                text: format!("{TEXT_PREFIX}{seq}"),
                recipient: CHANNEL.into(),
                sender_id: 0,
            },
        }
        .into()]);
        deliveries.mark_sent(seq);
        if client::poll(&mut conn, sender, body).await.is_err() {
            sender_errors += 1;
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    let expected = (args.messages * m) as u64;
    let all = super::wait_for(TAIL, || deliveries.delivered() >= expected).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let receiver_errors = receivers.await??;
    let after = Scrape::take(&target).await;

    report.int("expected_deliveries", expected);
    report.int("delivered", deliveries.delivered());
    report.flag("all_delivered", all);
    report.int("errors", sender_errors + receiver_errors);
    deliveries.latency().fields("end_to_end", &mut report);
    let mut target_met = all && sender_errors + receiver_errors == 0;
    match before
        .zip(after)
        .and_then(|(b, a)| HistogramDelta::between(&b, &a, FANOUT_METRIC))
    {
        Some(fanout) => {
            report.int("server_fanouts", fanout.count as u64);
            if let Some(p50) = fanout.quantile_upper_ms(0.5) {
                report.num("server_fanout_p50_ms_at_most", p50);
            }
            let p99 = fanout.quantile_upper_ms(0.99);
            if let Some(p99) = p99 {
                report.num("server_fanout_p99_ms_at_most", p99);
            }
            if fanout.count > 0.0 {
                report.num("server_fanout_mean_ms", fanout.sum / fanout.count * 1000.0);
            }
            target_met &= p99.is_some_and(|p| p <= TARGET_FANOUT_P99_MS);
        }
        None => {
            report.text("server_fanout", "n/a (no /metrics)");
            target_met = false;
        }
    }
    report.flag("target_met", target_met);
    if !common.keep_online {
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
