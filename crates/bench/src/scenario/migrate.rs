//! `migrate`: drain a node of a live cluster (target 7: 10,000 sessions move in ≤ 5 s
//! with no lost message), then rebalance it back.
//!
//! N sessions log in and poll at an idle client's cadence (an open loop, spread over
//! every node's gateway). The bench asks the cluster API where each session lives and
//! picks the node to drain; one sender on another node keeps writing numbered private
//! messages to a sample of the sessions that will move, and those receivers check that
//! each message arrives exactly once and in the order sent (one sender, so per-sender
//! order is the order of the numbers). Then:
//!
//! 1. `POST /api/v1/cluster/nodes/{name}/drain`; the clock runs from the request until
//!    the drained node's own `GET /api/v1/cluster` shows it with no shards and no
//!    entities of any kind (its own view is live; other nodes' views of it are as old
//!    as their last heartbeat).
//! 2. The sender goes on for a moment, stops, and the receivers poll on until every
//!    message is in or [`TAIL`] has passed; what is still missing then is lost.
//! 3. `POST /api/v1/cluster/rebalance`; the clock runs until the drained node owns
//!    shards again, and until it owns an even share.
//!
//! Poll latency (from when a poll was due) is reported per phase: before the drain,
//! during the move, after it, and during the rebalance. Everything is bounded: the
//! waits by the constants below, the load by the arguments.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Args;
use peace_bancho::{ServerPacket, ServerPacketId, client as c};

use crate::Common;
use crate::client::{self, Session};
use crate::cluster_api::{self, Gateway, NodeView};
use crate::http::Conn;
use crate::report::{Latency, Report};

/// Longest a drain may take before the scenario gives up on it (and reports it stuck).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest the rebalance may take to give the drained node its share back.
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the drained node's own view is read while it empties or fills.
const STATUS_EVERY: Duration = Duration::from_millis(20);
/// How long the sender goes on after the move, so that messages sent right after the
/// hand-over (when the old owner may still forward) are checked too.
const SEND_AFTER_MOVE: Duration = Duration::from_secs(1);
/// How long receivers may take, after the sender stopped, to see every message (on top
/// of two poll intervals: a message can only arrive at its receiver's next poll).
const TAIL: Duration = Duration::from_secs(5);
/// Upper bound of the whole polling phase, whatever the waits above add up to.
const MAX_POLLING: Duration = Duration::from_secs(600);
/// The move must finish within this (target 7), in seconds.
const TARGET_MOVE_SECS: f64 = 5.0;
/// What the bench's messages start with, then `<receiver slot> <sequence number>`.
const TEXT_PREFIX: &str = "bench-migrate ";

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Base URLs of the nodes' gateways, comma-separated (at least two nodes; the node
    /// to drain must be among them, its own API is what is watched).
    #[arg(long, required = true)]
    pub gateways: String,
    /// Sessions logged in and polling (those on the drained node are the ones that move).
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Milliseconds between two polls of one session (an idle client's cadence).
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    /// The cluster's `[api] admin_token`.
    #[arg(long, env = "PEACE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// Node to drain; by default the node (other than the coordinator) that hosts the
    /// most of the sessions.
    #[arg(long)]
    pub drain_node: Option<String>,
    /// Moving sessions that receive the numbered messages.
    #[arg(long, default_value_t = 200)]
    pub receivers: usize,
    /// Milliseconds between two polls of the sender.
    #[arg(long, default_value_t = 10)]
    pub send_interval_ms: u64,
    /// Messages the sender puts in each poll (to receivers in turn).
    #[arg(long, default_value_t = 5)]
    pub batch: usize,
    /// Seconds of polling and sending before the drain request.
    #[arg(long, default_value_t = 3.0)]
    pub lead_secs: f64,
    /// Stop after the move; do not rebalance.
    #[arg(long)]
    pub no_rebalance: bool,
    /// Whose presence updates the sessions ask for (RECEIVE_UPDATES): 0 nobody's,
    /// 1 everyone's (the client's default), 2 friends'. 0 takes the presence traffic a
    /// move causes out of the poll figures, to see the move's own cost.
    #[arg(long, default_value_t = 1)]
    pub presence_filter: i32,
}

/// What one receiver was sent and saw.
#[derive(Debug, Default)]
struct ReceiverLog {
    /// When each sequence number was handed to the sender's poll, by number.
    sent_at: Vec<Instant>,
    /// Numbers whose sending poll failed: the server may or may not have taken them.
    uncertain: Vec<u64>,
    seen: Vec<bool>,
    highest: Option<u64>,
    unique: u64,
    duplicates: u64,
    out_of_order: u64,
    /// A message whose text names another receiver.
    misdelivered: u64,
    latency: Latency,
}

impl ReceiverLog {
    fn arrived(&mut self, slot: usize, text_slot: usize, seq: u64, at: Instant) {
        if text_slot != slot {
            self.misdelivered += 1;
            return;
        }
        let i = seq as usize;
        if self.seen.len() <= i {
            self.seen.resize(i + 1, false);
        }
        if self.seen[i] {
            self.duplicates += 1;
            return;
        }
        self.seen[i] = true;
        self.unique += 1;
        if self.highest.is_some_and(|h| seq < h) {
            self.out_of_order += 1;
        }
        self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        if let Some(sent) = self.sent_at.get(i) {
            self.latency.record(at.saturating_duration_since(*sent));
        }
    }

    /// Sent for certain and never seen.
    fn lost(&self) -> u64 {
        (0..self.sent_at.len() as u64)
            .filter(|&s| !self.seen.get(s as usize).copied().unwrap_or(false))
            .filter(|s| !self.uncertain.contains(s))
            .count() as u64
    }

    fn complete(&self) -> bool {
        self.lost() == 0
    }
}

/// The receivers, addressed by user id.
struct Ledger {
    slot_of: HashMap<i32, usize>,
    logs: Vec<Mutex<ReceiverLog>>,
}

impl Ledger {
    fn log(&self, slot: usize) -> std::sync::MutexGuard<'_, ReceiverLog> {
        self.logs[slot].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn all_complete(&self) -> bool {
        (0..self.logs.len()).all(|s| self.log(s).complete())
    }

    /// Every receiver's figures added up.
    fn totals(&self) -> MessageTotals {
        let mut t = MessageTotals::default();
        for slot in 0..self.logs.len() {
            let log = self.log(slot);
            t.sent += log.sent_at.len() as u64;
            t.uncertain += log.uncertain.len() as u64;
            t.received += log.unique;
            t.lost += log.lost();
            t.duplicated += log.duplicates;
            t.out_of_order += log.out_of_order;
            t.misdelivered += log.misdelivered;
            t.latency.merge(&log.latency);
        }
        t
    }
}

/// What all receivers were sent and saw.
#[derive(Debug, Default)]
struct MessageTotals {
    sent: u64,
    uncertain: u64,
    received: u64,
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
    misdelivered: u64,
    /// From the send to the receiver's poll that brought it (so up to a poll interval
    /// of it is the receiver's cadence, not the server).
    latency: Latency,
}

/// `(slot, seq)` of a bench message.
fn parse_text(text: &str) -> Option<(usize, u64)> {
    let (slot, seq) = text.strip_prefix(TEXT_PREFIX)?.split_once(' ')?;
    Some((slot.parse().ok()?, seq.parse().ok()?))
}

/// One measured poll: when it was due, how long its answer took, how many bytes and
/// presence packets it brought, whether it failed.
#[derive(Debug, Clone, Copy)]
struct Sample {
    due: Instant,
    latency: Duration,
    bytes: usize,
    presence_packets: usize,
    failed: bool,
}

/// USER_PRESENCE, USER_STATS and USER_PRESENCE_BUNDLE frames in a reply: what a
/// session is told of other players' presence.
fn presence_packets(body: &[u8]) -> usize {
    const IDS: [ServerPacketId; 3] = [
        ServerPacketId::UserPresence,
        ServerPacketId::UserStats,
        ServerPacketId::UserPresenceBundle,
    ];
    client::frames(body)
        .filter(|(id, _)| IDS.iter().any(|p| *p as u16 == *id))
        .count()
}

/// Instants that cut the run into phases.
#[derive(Debug, Default)]
struct Phases {
    drain: OnceLock<Instant>,
    moved: OnceLock<Instant>,
    rebalance: OnceLock<Instant>,
    rebalanced: OnceLock<Instant>,
}

impl Phases {
    fn of(&self, t: Instant) -> usize {
        let before = |p: &OnceLock<Instant>| p.get().is_none_or(|&at| t < at);
        if before(&self.drain) {
            0
        } else if before(&self.moved) {
            1
        } else if before(&self.rebalance) {
            2
        } else if before(&self.rebalanced) {
            3
        } else {
            4
        }
    }
}

const PHASE_NAMES: [&str; 5] = ["before", "moving", "after", "rebalancing", "rebalanced"];

pub async fn run(common: &Common, args: &MigrateArgs) -> anyhow::Result<Report> {
    let gateways = cluster_api::gateways(&args.gateways).await?;
    let accounts = common.accounts()?;
    let n = args.sessions.max(2);
    let interval = Duration::from_millis(args.interval_ms.max(1));
    let mut report = Report::new("migrate");
    report.text(
        "gateways",
        gateways
            .iter()
            .map(|g| format!("{}={}", g.node, g.target.url))
            .collect::<Vec<_>>()
            .join(","),
    );
    report.int("sessions", n as u64);
    report.int("interval_ms", args.interval_ms);
    report.num("offered_polls_per_sec", n as f64 / interval.as_secs_f64());

    let first = &gateways[0].target;
    let mut api = Conn::open(first).await?;
    let view = cluster_api::self_view(&mut api).await?;
    anyhow::ensure!(
        view.nodes_up >= 2,
        "migrate needs a cluster of two nodes or more; {} sees {} up",
        view.name,
        view.nodes_up
    );

    let created = accounts.ensure(first, n, common.setup_connections).await?;
    report.int("accounts_created", created as u64);
    let started = Instant::now();
    let sessions = accounts
        .login_all(first, 0..n, common.setup_connections)
        .await?;
    report.num("login_phase_s", started.elapsed().as_secs_f64());
    report.int(
        "presence_filter",
        u64::try_from(args.presence_filter).unwrap_or(0),
    );
    // Twice: the first poll takes the presence of everyone who logged in later.
    let filter = client::encode(&[
        c::ReceiveUpdates {
            filter: args.presence_filter,
        }
        .into(),
        c::Ping {}.into(),
    ]);
    super::for_each_session(first, &sessions, common.connections, filter).await?;
    super::drain_all(first, &sessions, common.connections).await?;

    // Where everyone lives, and which node to drain.
    let hosts = hosts(&gateways[0], &sessions, common.setup_connections).await?;
    let drain_node = match &args.drain_node {
        Some(name) => name.clone(),
        None => pick_drain_node(&hosts, view.coordinator.as_deref())?,
    };
    let drained_gateway = gateways
        .iter()
        .find(|g| g.node == drain_node)
        .ok_or_else(|| anyhow::anyhow!("no gateway of {drain_node} in --gateways"))?
        .clone();
    let moving: Vec<&Session> = sessions
        .iter()
        .zip(&hosts)
        .filter(|(_, h)| **h == drain_node)
        .map(|(s, _)| s)
        .collect();
    let staying: Vec<&Session> = sessions
        .iter()
        .zip(&hosts)
        .filter(|(_, h)| **h != drain_node)
        .map(|(s, _)| s)
        .collect();
    report.text("drain_node", drain_node.clone());
    report.int("sessions_on_drain_node", moving.len() as u64);
    anyhow::ensure!(
        !moving.is_empty() && !staying.is_empty(),
        "{drain_node} hosts {} of {n} sessions; nothing to move or nobody to send",
        moving.len()
    );

    // The sender stays; the receivers are spread over the moving sessions.
    let sender = staying[0].clone();
    let sender_host = hosts[sender.index].clone();
    let r = args.receivers.clamp(1, moving.len());
    let receivers: Vec<Session> = (0..r)
        .map(|k| moving[k * moving.len() / r].clone())
        .collect();
    report.int("receivers", r as u64);
    let ledger = Arc::new(Ledger {
        slot_of: receivers
            .iter()
            .enumerate()
            .map(|(slot, s)| (s.user_id, slot))
            .collect(),
        logs: (0..r).map(|_| Mutex::new(ReceiverLog::default())).collect(),
    });

    // Every node's figures before the move, to report what the move added.
    let before = views(&gateways).await?;
    let total_shards: u64 = before.iter().map(|v| v.shards).sum();

    // Everyone but the sender polls at the idle cadence, each session through the
    // gateway its index picks, so that a share of the polls crosses nodes before, during
    // and after the move, and a share goes to the node being drained.
    let phases = Arc::new(Phases::default());
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let first_error = Arc::new(OnceLock::<String>::new());
    let stop_polling = Arc::new(AtomicBool::new(false));
    let observer: super::Observer = {
        let (ledger, samples, first_error) = (
            Arc::clone(&ledger),
            Arc::clone(&samples),
            Arc::clone(&first_error),
        );
        Arc::new(move |session: &Session, due: Instant, outcome| {
            let at = Instant::now();
            let (failed, bytes, presence) = match outcome {
                Ok(body) => {
                    if let Some(&slot) = ledger.slot_of.get(&session.user_id) {
                        record_messages(&ledger, slot, body, at);
                    }
                    (false, body.len(), presence_packets(body))
                }
                Err(e) => {
                    let _ = first_error.set(format!("{e:#}"));
                    (true, 0, 0)
                }
            };
            samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Sample {
                    due,
                    latency: at.saturating_duration_since(due),
                    bytes,
                    presence_packets: presence,
                    failed,
                });
        })
    };
    let watch = super::Watch {
        stop: Arc::clone(&stop_polling),
        observer,
    };
    let mut pollers = tokio::task::JoinSet::new();
    let per_gateway = (common.connections / gateways.len()).max(1);
    for (g, gateway) in gateways.iter().enumerate() {
        let mine: Vec<Session> = sessions
            .iter()
            .filter(|s| s.index % gateways.len() == g && s.index != sender.index)
            .cloned()
            .collect();
        let (target, watch) = (Arc::clone(&gateway.target), watch.clone());
        pollers.spawn(async move {
            super::open_loop_watched(
                &target,
                &mine,
                per_gateway,
                interval,
                Duration::ZERO,
                MAX_POLLING,
                Some(watch),
            )
            .await
        });
    }

    // The sender.
    let stop_sending = Arc::new(AtomicBool::new(false));
    let sender_task = {
        let gateway = gateways
            .iter()
            .find(|g| g.node == sender_host)
            .unwrap_or(&gateways[0]);
        let target = Arc::clone(&gateway.target);
        let (ledger, stop, receivers) = (
            Arc::clone(&ledger),
            Arc::clone(&stop_sending),
            receivers.clone(),
        );
        let (names, every, batch) = (
            receivers
                .iter()
                .map(|s| accounts.name(s.index))
                .collect::<Vec<_>>(),
            Duration::from_millis(args.send_interval_ms.max(1)),
            args.batch.max(1),
        );
        tokio::spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let (mut polls, mut errors, mut next) = (0u64, 0u64, 0usize);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let mut packets = Vec::with_capacity(batch);
                let mut numbered = Vec::with_capacity(batch);
                for _ in 0..batch {
                    let slot = next % receivers.len();
                    next += 1;
                    // The number is taken (and its send time noted) before the poll goes
                    // out: the receiver may see the message before the sender's answer.
                    let seq = {
                        let mut log = ledger.log(slot);
                        log.sent_at.push(Instant::now());
                        log.sent_at.len() as u64 - 1
                    };
                    numbered.push((slot, seq));
                    packets.push(
                        c::SendPrivateMessage {
                            message: peace_bancho::Message {
                                sender: String::new(),
                                text: format!("{TEXT_PREFIX}{slot} {seq}"),
                                recipient: names[slot].clone(),
                                sender_id: 0,
                            },
                        }
                        .into(),
                    );
                }
                polls += 1;
                if client::poll(&mut conn, &sender, client::encode(&packets))
                    .await
                    .is_err()
                {
                    errors += 1;
                    for (slot, seq) in numbered {
                        ledger.log(slot).uncertain.push(seq);
                    }
                }
            }
            Ok::<_, anyhow::Error>((polls, errors))
        })
    };

    // Lead time: the cluster at rest, polls and messages flowing.
    tokio::time::sleep(Duration::from_secs_f64(args.lead_secs.max(0.0))).await;

    // 1. The drain, timed until the node is empty.
    let mut watched = Conn::open(&drained_gateway.target).await?;
    let drain_start = Instant::now();
    let _ = phases.drain.set(drain_start);
    cluster_api::admin_post(
        &mut api,
        &format!("/api/v1/cluster/nodes/{drain_node}/drain"),
        &args.admin_token,
    )
    .await?;
    let mut users_gone = None;
    let mut shards_gone = None;
    let mut held_max = 0u64;
    let mut last = NodeView::default();
    while drain_start.elapsed() < DRAIN_TIMEOUT {
        last = cluster_api::self_view(&mut watched).await?;
        held_max = held_max.max(last.held_messages);
        let user_count = last
            .entities
            .iter()
            .find(|(k, _)| k == "user")
            .map_or(0, |(_, n)| *n);
        if user_count == 0 && users_gone.is_none() {
            users_gone = Some(drain_start.elapsed());
        }
        if last.shards == 0 && shards_gone.is_none() {
            shards_gone = Some(drain_start.elapsed());
        }
        if last.shards == 0 && last.entities_total() == 0 {
            let _ = phases.moved.set(Instant::now());
            break;
        }
        tokio::time::sleep(STATUS_EVERY).await;
    }
    let moved_in = phases.moved.get().map(|at| at.duration_since(drain_start));
    report.flag("drain_completed", moved_in.is_some());
    report.text("drain_node_status_after_move", last.status.clone());
    if let Some(d) = moved_in {
        report.num("move_s", d.as_secs_f64());
    } else {
        report.text(
            "drain_stuck_at",
            format!(
                "{} shards, entities {:?} after {DRAIN_TIMEOUT:?}",
                last.shards, last.entities
            ),
        );
    }
    if let Some(d) = users_gone {
        report.num("sessions_gone_s", d.as_secs_f64());
    }
    if let Some(d) = shards_gone {
        report.num("shards_gone_s", d.as_secs_f64());
    }
    report.int("held_now_max", held_max);

    // 2. Messages after the move, then the tail.
    tokio::time::sleep(SEND_AFTER_MOVE).await;
    stop_sending.store(true, Ordering::Relaxed);
    let (sender_polls, sender_errors) = sender_task.await??;
    let all_in = super::wait_for(TAIL + interval * 2, || ledger.all_complete()).await;
    report.flag("all_messages_in_before_tail_end", all_in);

    let after = views(&gateways).await?;
    add_migration_figures(&mut report, &drain_node, &before, &after);

    // 3. The rebalance, timed until the drained node owns shards, then its share.
    let share = total_shards / gateways.len() as u64;
    if !args.no_rebalance {
        let rebalance_start = Instant::now();
        let _ = phases.rebalance.set(rebalance_start);
        cluster_api::admin_post(&mut api, "/api/v1/cluster/rebalance", &args.admin_token).await?;
        let mut first_shard = None;
        while rebalance_start.elapsed() < REBALANCE_TIMEOUT {
            last = cluster_api::self_view(&mut watched).await?;
            if last.shards > 0 && first_shard.is_none() {
                first_shard = Some(rebalance_start.elapsed());
            }
            if last.shards >= share {
                let _ = phases.rebalanced.set(Instant::now());
                break;
            }
            tokio::time::sleep(STATUS_EVERY).await;
        }
        if let Some(d) = first_shard {
            report.num("rebalance_first_shard_s", d.as_secs_f64());
        }
        report.int("even_share_shards", share);
        match phases.rebalanced.get() {
            Some(at) => report.num(
                "rebalance_even_share_s",
                at.duration_since(rebalance_start).as_secs_f64(),
            ),
            None => report.text(
                "rebalance_stuck_at",
                format!("{} shards after {REBALANCE_TIMEOUT:?}", last.shards),
            ),
        }
        // Sessions follow their shards back; poll a little longer to see it.
        tokio::time::sleep(interval * 2).await;
        let back = cluster_api::self_view(&mut watched).await?;
        report.int("drain_node_shards_at_end", back.shards);
        report.int("drain_node_entities_at_end", back.entities_total());
    }

    stop_polling.store(true, Ordering::Relaxed);
    let mut polling = super::OpenLoop::default();
    while let Some(done) = pollers.join_next().await {
        let part = done??;
        polling.scheduled += part.scheduled;
        polling.answered += part.answered;
        polling.errors += part.errors;
        polling.late += part.late;
    }
    report.int("polls_answered", polling.answered);
    report.int("poll_errors", polling.errors);
    report.int("polls_late", polling.late);
    if let Some(e) = first_error.get() {
        report.text("first_poll_error", e.clone());
    }
    add_phases(&mut report, &phases, &samples);

    // The messages.
    let messages = ledger.totals();
    report.int("messages_sent", messages.sent);
    report.int("messages_uncertain", messages.uncertain);
    report.int("messages_received", messages.received);
    report.int("messages_lost", messages.lost);
    report.int("messages_duplicated", messages.duplicated);
    report.int("messages_out_of_order", messages.out_of_order);
    report.int("messages_misdelivered", messages.misdelivered);
    report.int("sender_polls", sender_polls);
    report.int("sender_errors", sender_errors);
    messages.latency.fields("message", &mut report);

    let clean = messages.lost == 0
        && messages.duplicated == 0
        && messages.out_of_order == 0
        && messages.misdelivered == 0;
    report.flag("messages_clean", clean);
    report.flag(
        "target_met",
        clean && moved_in.is_some_and(|d| d.as_secs_f64() <= TARGET_MOVE_SECS),
    );
    if !common.keep_online {
        super::logout_all(first, &sessions, common.setup_connections).await;
    }
    Ok(report)
}

/// Counts the bench's messages in a receiver's reply.
fn record_messages(ledger: &Ledger, slot: usize, body: &[u8], at: Instant) {
    for (id, payload) in client::frames(body) {
        if id != ServerPacketId::SendMessage as u16 {
            continue;
        }
        if let Ok(ServerPacket::SendMessage(m)) = ServerPacket::decode(id, payload)
            && let Some((text_slot, seq)) = parse_text(&m.message.text)
        {
            ledger.log(slot).arrived(slot, text_slot, seq, at);
        }
    }
}

/// The host node of every session (by position), asked over `connections` connections.
async fn hosts(
    gateway: &Gateway,
    sessions: &[Session],
    connections: usize,
) -> anyhow::Result<Vec<String>> {
    let connections = connections.clamp(1, sessions.len().max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..connections {
        let mine: Vec<(usize, i32)> = sessions
            .iter()
            .enumerate()
            .skip(w)
            .step_by(connections)
            .map(|(i, s)| (i, s.user_id))
            .collect();
        let target = Arc::clone(&gateway.target);
        tasks.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let mut found = Vec::with_capacity(mine.len());
            for (i, id) in mine {
                found.push((i, cluster_api::host_of_user(&mut conn, id).await?));
            }
            Ok::<_, anyhow::Error>(found)
        });
    }
    let mut hosts = vec![String::new(); sessions.len()];
    while let Some(done) = tasks.join_next().await {
        for (i, node) in done?? {
            hosts[i] = node;
        }
    }
    Ok(hosts)
}

/// The node hosting the most sessions, leaving out the coordinator (draining it would
/// also hand the coordinator's role over, which is a different experiment).
fn pick_drain_node(hosts: &[String], coordinator: Option<&str>) -> anyhow::Result<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for h in hosts {
        *counts.entry(h).or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(node, _)| Some(*node) != coordinator)
        .max_by_key(|&(node, count)| (count, std::cmp::Reverse(node)))
        .map(|(node, _)| node.to_owned())
        .ok_or_else(|| anyhow::anyhow!("no node but the coordinator hosts sessions"))
}

/// Every gateway's node as it reports itself.
async fn views(gateways: &[Gateway]) -> anyhow::Result<Vec<NodeView>> {
    let mut views = Vec::new();
    for g in gateways {
        let mut conn = Conn::open(&g.target).await?;
        views.push(cluster_api::self_view(&mut conn).await?);
    }
    Ok(views)
}

/// What the move added to the nodes' migration figures. The nodes that stay may also
/// move shards between themselves meanwhile (the coordinator evens their counts out once
/// the drained node's shards have landed unevenly), so what they took in is reported net
/// of what they passed on: it should equal what the drained node sent.
fn add_migration_figures(
    report: &mut Report,
    drain_node: &str,
    before: &[NodeView],
    after: &[NodeView],
) {
    let delta = |node: &NodeView, field: &str| {
        let old = before
            .iter()
            .find(|b| b.name == node.name)
            .map_or(0, |b| b.migration(field));
        node.migration(field).saturating_sub(old)
    };
    let (mut taken_in, mut passed_on, mut held_elsewhere, mut failed) = (0, 0, 0, 0);
    for node in after {
        failed += delta(node, "failed");
        if node.name == drain_node {
            report.int("batches_out", delta(node, "batches_out"));
            report.int("entities_out", delta(node, "entities_out"));
            report.int("held_messages", delta(node, "held_messages"));
            report.int("migration_total_ms", delta(node, "total_ms"));
            report.int("migration_last_ms", node.migration("last_ms"));
        } else {
            taken_in += delta(node, "entities_in");
            passed_on += delta(node, "entities_out");
            held_elsewhere += delta(node, "held_messages");
        }
    }
    report.int(
        "entities_in_elsewhere_net",
        taken_in.saturating_sub(passed_on),
    );
    report.int("entities_moved_between_others", passed_on);
    // Messages the new owners held and delivered after the hand-over (what the old owner
    // held is in them too: it travels in the hand-over).
    report.int("held_messages_elsewhere", held_elsewhere);
    report.int("migrations_failed", failed);
}

/// Poll latency, reply sizes and errors per phase.
fn add_phases(report: &mut Report, phases: &Phases, samples: &Mutex<Vec<Sample>>) {
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner());
    let mut latency: [Latency; 5] = Default::default();
    let mut errors = [0u64; 5];
    let mut bytes = [0usize; 5];
    let mut presence = [0usize; 5];
    for s in samples.iter() {
        let p = phases.of(s.due);
        bytes[p] += s.bytes;
        presence[p] += s.presence_packets;
        if s.failed {
            errors[p] += 1;
        } else {
            latency[p].record(s.latency);
        }
    }
    for (p, name) in PHASE_NAMES.iter().enumerate() {
        if latency[p].count() == 0 && errors[p] == 0 {
            continue;
        }
        report.int(&format!("polls_{name}"), latency[p].count());
        report.int(&format!("poll_errors_{name}"), errors[p]);
        latency[p].fields(&format!("poll_{name}"), report);
        let answered = latency[p].count().max(1);
        report.num(
            &format!("poll_{name}_mean_reply_bytes"),
            bytes[p] as f64 / answered as f64,
        );
        report.num(
            &format!("poll_{name}_mean_presence_packets"),
            presence[p] as f64 / answered as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(log: &mut ReceiverLog, n: usize) {
        let now = Instant::now();
        log.sent_at.extend(std::iter::repeat_n(now, n));
    }

    #[test]
    fn each_message_counts_once_and_late_ones_count_as_out_of_order() {
        let mut log = ReceiverLog::default();
        sent(&mut log, 4);
        let at = Instant::now();
        for seq in [0, 2, 2, 1] {
            log.arrived(7, 7, seq, at);
        }
        assert_eq!(log.unique, 3);
        assert_eq!(log.duplicates, 1);
        // 1 arrived after 2.
        assert_eq!(log.out_of_order, 1);
        // 3 never came.
        assert_eq!(log.lost(), 1);
        assert!(!log.complete());
    }

    #[test]
    fn uncertain_messages_are_not_lost_and_misdelivered_ones_are_not_received() {
        let mut log = ReceiverLog::default();
        sent(&mut log, 2);
        log.uncertain.push(1);
        log.arrived(0, 5, 0, Instant::now());
        assert_eq!(log.misdelivered, 1);
        assert_eq!(log.lost(), 1);
        log.arrived(0, 0, 0, Instant::now());
        assert!(log.complete());
    }

    #[test]
    fn texts_parse_back() {
        assert_eq!(parse_text(&format!("{TEXT_PREFIX}12 345")), Some((12, 345)));
        assert_eq!(parse_text("hello 1 2"), None);
        assert_eq!(parse_text(&format!("{TEXT_PREFIX}x 1")), None);
    }
}
