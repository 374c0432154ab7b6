//! `match`: P players (16, a full room) create and join one match, ready up, start, and
//! then each sends U score updates, one every interval, as clients do while playing,
//! polling in between. Every player records when the others' updates reached it (so the
//! figures include up to one POLL_EVERY of waiting for the receiver's next poll). The
//! score frame's time field carries the update's number and its slot byte (rewritten by
//! the server to the sender's slot) says whose it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use peace_bancho::{MatchData, ServerPacket, ServerPacketId, client as c};

use crate::Common;
use crate::client;
use crate::http::{Conn, Target};
use crate::report::Report;

/// Slots in a match.
const MAX_PLAYERS: usize = 16;
/// How long players keep polling for stragglers after their last update.
const TAIL: Duration = Duration::from_secs(5);
/// How often a player polls between its own score updates.
const POLL_EVERY: Duration = Duration::from_millis(10);
/// Pause that lets the server apply the ready states before the host starts.
const SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Args)]
pub struct MatchArgs {
    /// Players in the match (at most 16).
    #[arg(long, default_value_t = 16)]
    pub players: usize,
    /// Score updates each player sends.
    #[arg(long, default_value_t = 100)]
    pub updates: usize,
    /// Milliseconds between a player's updates.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
}

/// A 29-byte score frame: time (our update number), slot, hit counts, score, combo.
fn score_frame(update: usize) -> Bytes {
    let mut f = vec![0u8; 29];
    f[..4].copy_from_slice(&i32::try_from(update).unwrap_or(i32::MAX).to_le_bytes());
    f[5..7].copy_from_slice(&300u16.to_le_bytes());
    let score = i32::try_from(update * 300).unwrap_or(i32::MAX);
    f[17..21].copy_from_slice(&score.to_le_bytes());
    f[21..23].copy_from_slice(&u16::try_from(update).unwrap_or(u16::MAX).to_le_bytes());
    f.into()
}

fn requested_match() -> MatchData {
    MatchData {
        name: "peace-bench".into(),
        password: None,
        beatmap_name: "Bench - Load [Insane]".into(),
        beatmap_id: 75,
        beatmap_md5: "a".repeat(32),
        ..MatchData::default()
    }
}

fn slot_of(data: &MatchData, user_id: i32) -> Option<usize> {
    data.slots.iter().position(|s| s.user_id == user_id)
}

pub async fn run(common: &Common, args: &MatchArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let p = args.players.clamp(2, MAX_PLAYERS);
    let u = args.updates.max(1);
    let mut report = Report::new("match");
    report.text("url", common.url.clone());
    report.int("players", p as u64);
    report.int("updates_per_player", u as u64);
    report.int("interval_ms", args.interval_ms);

    accounts
        .ensure(&target, p, common.setup_connections)
        .await?;
    let sessions = accounts
        .login_all(&target, 0..p, common.setup_connections)
        .await?;
    super::drain_all(&target, &sessions, common.connections).await?;
    let (host, guests) = sessions
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("no sessions"))?;

    // Create, join, ready, start: one connection per player.
    let mut conns = Vec::with_capacity(p);
    for _ in 0..p {
        conns.push(Conn::open(&target).await?);
    }
    let create = client::encode(&[c::CreateMatch {
        data: requested_match(),
    }
    .into()]);
    let joined = |p: &ServerPacket| matches!(p, ServerPacket::MatchJoinSuccess(_));
    let ServerPacket::MatchJoinSuccess(created) =
        client::send_and_wait(&mut conns[0], host, create, "MATCH_JOIN_SUCCESS", joined).await?
    else {
        anyhow::bail!("the server did not open the match");
    };
    let match_id = i32::from(created.data.match_id);
    let mut slots = vec![0usize; p];
    for (i, guest) in guests.iter().enumerate() {
        let join = client::encode(&[c::JoinMatch {
            match_id,
            password: String::new(),
        }
        .into()]);
        let reply = client::send_and_wait(&mut conns[i + 1], guest, join, "join", joined).await?;
        if let ServerPacket::MatchJoinSuccess(j) = reply {
            slots[i + 1] = slot_of(&j.data, guest.user_id).unwrap_or(i + 1);
        }
    }
    slots[0] = slot_of(&created.data, host.user_id).unwrap_or(0);
    let ready = client::encode(&[c::MatchReady {}.into()]);
    for (i, guest) in guests.iter().enumerate() {
        client::poll(&mut conns[i + 1], guest, ready.clone()).await?;
    }
    tokio::time::sleep(SETTLE).await;
    let start = client::encode(&[c::MatchStart {}.into()]);
    client::poll(&mut conns[0], host, start).await?;
    let loaded = client::encode(&[c::MatchLoadComplete {}.into()]);
    let started = |p: &ServerPacket| matches!(p, ServerPacket::MatchStart(_));
    for (conn, session) in conns.iter_mut().zip(&sessions) {
        client::send_and_wait(conn, session, Bytes::new(), "MATCH_START", started).await?;
        client::poll(conn, session, loaded.clone()).await?;
    }

    // Score phase: every player sends and receives in its own task.
    let deliveries = super::Deliveries::new(MAX_PLAYERS * u);
    let expected = (p * (p - 1) * u) as u64;
    let interval = Duration::from_millis(args.interval_ms);
    let mut players = tokio::task::JoinSet::new();
    for ((mut conn, session), slot) in conns.into_iter().zip(sessions.clone()).zip(slots) {
        let deliveries = Arc::clone(&deliveries);
        players.spawn(async move {
            let (mut errors, mut duplicates) = (0u64, 0u64);
            // Each (sender, update) counts once per receiver; repeats are reported apart.
            let mut seen = std::collections::HashSet::new();
            let mut record = |body: &[u8], at: Instant| {
                for (id, payload) in client::frames(body) {
                    if id == ServerPacketId::MatchScoreUpdate as u16 && payload.len() >= 5 {
                        let n =
                            i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        let from = usize::from(payload[4]);
                        if let Ok(n) = usize::try_from(n)
                            && from < MAX_PLAYERS
                            && from != slot
                            && n < u
                        {
                            if seen.insert(from * u + n) {
                                deliveries.arrived(from * u + n, at);
                            } else {
                                duplicates += 1;
                            }
                        }
                    }
                }
            };
            // Players are spread over the interval, as real ones are, and poll every
            // POLL_EVERY between their own updates, so that what is measured is the relay
            // and not the wait for a player's next update.
            let start = Instant::now() + interval.mul_f64(slot as f64 / MAX_PLAYERS as f64);
            for update in 0..u {
                let due = start + interval * u32::try_from(update).unwrap_or(u32::MAX);
                while Instant::now() + POLL_EVERY < due {
                    tokio::time::sleep(POLL_EVERY).await;
                    match client::poll(&mut conn, &session, client::ping()).await {
                        Ok(reply) => record(&reply, Instant::now()),
                        Err(_) => errors += 1,
                    }
                }
                tokio::time::sleep_until(due.into()).await;
                let body = client::encode(&[c::MatchScoreUpdate {
                    frame: peace_bancho::wire::Raw(score_frame(update)),
                }
                .into()]);
                deliveries.mark_sent(slot * u + update);
                match client::poll(&mut conn, &session, body).await {
                    Ok(reply) => record(&reply, Instant::now()),
                    Err(_) => errors += 1,
                }
            }
            let deadline = Instant::now() + TAIL;
            while deliveries.delivered() < expected && Instant::now() < deadline {
                match client::poll(&mut conn, &session, client::ping()).await {
                    Ok(reply) => record(&reply, Instant::now()),
                    Err(_) => errors += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let done = client::encode(&[c::MatchComplete {}.into(), c::PartMatch {}.into()]);
            if client::poll(&mut conn, &session, done).await.is_err() {
                errors += 1;
            }
            (errors, duplicates)
        });
    }
    let (mut errors, mut duplicates) = (0, 0);
    while let Some(done) = players.join_next().await {
        let (e, d) = done?;
        errors += e;
        duplicates += d;
    }

    report.int("match_id", u64::try_from(match_id).unwrap_or(0));
    report.int("expected_deliveries", expected);
    report.int("delivered", deliveries.delivered());
    report.flag("all_delivered", deliveries.delivered() >= expected);
    report.int("duplicates", duplicates);
    report.int("errors", errors);
    deliveries.latency().fields("end_to_end", &mut report);
    if !common.keep_online {
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
