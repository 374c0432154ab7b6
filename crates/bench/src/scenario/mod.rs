//! The scenarios and the two load shapes they are built from: a closed loop (each
//! connection sends its next poll as soon as the last is answered; measures capacity)
//! and an open loop (every session polls on its own schedule whatever the server does;
//! measures latency at a given load without hiding a slow server behind a slow client).

pub mod chat;
pub mod cluster;
pub mod getscores;
pub mod idle;
pub mod login;
pub mod migrate;
pub mod multiplayer;
pub mod poll;
pub mod recalc;
pub mod spectate;
pub mod submit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peace_bancho::client as c;

use crate::client::{self, Session};
use crate::http::{Conn, Target};
use crate::report::Latency;

/// What a closed loop measured after its warm-up.
#[derive(Debug, Default)]
pub struct ClosedLoop {
    /// Requests answered as expected (polls, in the Bancho loops).
    pub answered: u64,
    pub errors: u64,
    /// Of the errors, replies with a status other than 2xx.
    pub non_2xx: u64,
    /// Requests sent, the warm-up's included ([`request_loop`] only): what the server's
    /// own counters saw.
    pub sent: u64,
    pub latency: Latency,
    pub elapsed: Duration,
    pub first_error: Option<String>,
}

impl ClosedLoop {
    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Adds another measured slice.
    pub fn merge(&mut self, other: ClosedLoop) {
        self.answered += other.answered;
        self.errors += other.errors;
        self.non_2xx += other.non_2xx;
        self.sent += other.sent;
        self.elapsed += other.elapsed;
        self.latency.merge(&other.latency);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Slices a comparison with the baseline is cut into. The machine is shared and its
/// speed drifts by tens of percent within a minute; alternating short slices of server
/// and baseline exposes both to the same drift.
pub const INTERLEAVED_SLICES: u32 = 5;
/// Warm-up of every slice after the first (connections and caches are warm already).
pub const SLICE_WARMUP: Duration = Duration::from_millis(300);

/// Polls `sessions` over `connections` connections, each connection going round its
/// share of the sessions with no pause, for `warmup` (not counted) then `duration`.
pub async fn closed_loop(
    target: &Arc<Target>,
    sessions: &[Session],
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<ClosedLoop> {
    let connections = connections.clamp(1, sessions.len().max(1));
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..connections {
        let mine: Vec<Session> = sessions
            .iter()
            .skip(w)
            .step_by(connections)
            .cloned()
            .collect();
        let target = Arc::clone(target);
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let mut result = ClosedLoop::default();
            let body = client::ping();
            tokio::time::sleep_until(start.into()).await;
            'run: loop {
                for session in &mine {
                    let sent = Instant::now();
                    if sent >= end {
                        break 'run;
                    }
                    let outcome = client::poll(&mut conn, session, body.clone()).await;
                    if sent < measure_from {
                        continue;
                    }
                    match outcome {
                        Ok(_) => {
                            result.answered += 1;
                            result.latency.record(sent.elapsed());
                        }
                        Err(e) => {
                            result.errors += 1;
                            result.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(result)
        });
    }
    let mut total = ClosedLoop::default();
    while let Some(done) = workers.join_next().await {
        total.merge(done??);
    }
    total.elapsed = duration;
    Ok(total)
}

/// One request of [`request_loop`], built before its clock starts.
#[derive(Debug, Clone)]
pub enum Prepared {
    Get(String),
    Post {
        path: String,
        content_type: String,
        body: Bytes,
    },
}

/// Builds request number `seq`, counted over every connection of the loop from 0 (so
/// that requests which must differ, such as score submissions, can).
pub type MakeRequest = Arc<dyn Fn(u64) -> anyhow::Result<Prepared> + Send + Sync>;
/// Checks the body of a 2xx reply; `Err(why)` counts it as an error.
pub type CheckReply = Arc<dyn Fn(&[u8]) -> anyhow::Result<()> + Send + Sync>;

/// Sends one prepared request on `conn`: `Ok` if it was answered with a 2xx status and
/// `check` took the body; else whether the status was other than 2xx, and why.
async fn send_prepared(
    conn: &mut Conn,
    request: Prepared,
    check: &CheckReply,
) -> Result<(), (bool, String)> {
    let reply = match request {
        Prepared::Get(path) => conn.get(&path).await,
        Prepared::Post {
            path,
            content_type,
            body,
        } => conn.post(&path, &content_type, body).await,
    };
    match reply {
        Ok(reply) if reply.status / 100 == 2 => {
            check(&reply.body).map_err(|why| (false, format!("{why:#}")))
        }
        Ok(reply) => Err((
            true,
            format!(
                "HTTP {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            ),
        )),
        Err(e) => Err((false, format!("{e:#}"))),
    }
}

/// A closed loop of HTTP requests other than polls: each of `connections` connections
/// sends the next request as soon as the last is answered, for `warmup` (not counted)
/// then `duration`. Requests are built by `make` before their clock starts.
pub async fn request_loop(
    target: &Arc<Target>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    make: MakeRequest,
    check: CheckReply,
) -> anyhow::Result<ClosedLoop> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (target, make, check, next) = (
            Arc::clone(target),
            Arc::clone(&make),
            Arc::clone(&check),
            Arc::clone(&next),
        );
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let mut result = ClosedLoop::default();
            tokio::time::sleep_until(start.into()).await;
            loop {
                let request = make(next.fetch_add(1, Ordering::Relaxed))?;
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = send_prepared(&mut conn, request, &check).await;
                result.sent += 1;
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        result.answered += 1;
                        result.latency.record(sent.elapsed());
                    }
                    Err((non_2xx, why)) => {
                        result.errors += 1;
                        result.non_2xx += u64::from(non_2xx);
                        result.first_error.get_or_insert(why);
                    }
                }
            }
            Ok::<_, anyhow::Error>(result)
        });
    }
    let mut total = ClosedLoop::default();
    while let Some(done) = workers.join_next().await {
        total.merge(done??);
    }
    total.elapsed = duration;
    Ok(total)
}

/// What a series of bursts measured: every request of a burst released at once.
#[derive(Debug, Default)]
pub struct Bursts {
    pub answered: u64,
    pub errors: u64,
    pub non_2xx: u64,
    /// Each request from the burst's release to its answer.
    pub latency: Latency,
    /// Each burst from its release to its last answer.
    pub burst_latency: Latency,
    pub first_error: Option<String>,
}

/// `rounds` bursts of `width` requests: each request on a connection of its own, opened
/// beforehand, all released together; the next burst starts when the last is answered.
/// Request `round * width + i` is built by `make` before the release.
pub async fn bursts(
    target: &Arc<Target>,
    width: usize,
    rounds: u32,
    make: MakeRequest,
    check: CheckReply,
) -> anyhow::Result<Bursts> {
    let width = width.max(1);
    let mut conns = Vec::with_capacity(width);
    for _ in 0..width {
        conns.push(Conn::open(target).await?);
    }
    let mut total = Bursts::default();
    for round in 0..u64::from(rounds) {
        let requests = (0..width as u64)
            .map(|i| make(round * width as u64 + i))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let release = Instant::now() + Duration::from_millis(20);
        let mut tasks = tokio::task::JoinSet::new();
        for (mut conn, request) in conns.drain(..).zip(requests) {
            let check = Arc::clone(&check);
            tasks.spawn(async move {
                tokio::time::sleep_until(release.into()).await;
                let outcome = send_prepared(&mut conn, request, &check).await;
                (conn, outcome, release.elapsed())
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (conn, outcome, latency) = done?;
            conns.push(conn);
            match outcome {
                Ok(()) => {
                    total.answered += 1;
                    total.latency.record(latency);
                }
                Err((non_2xx, why)) => {
                    total.errors += 1;
                    total.non_2xx += u64::from(non_2xx);
                    total.first_error.get_or_insert(why);
                }
            }
        }
        total.burst_latency.record(release.elapsed());
    }
    Ok(total)
}

/// What an open loop measured after its warm-up.
#[derive(Debug, Default)]
pub struct OpenLoop {
    /// Polls due in the measured window.
    pub scheduled: u64,
    pub answered: u64,
    pub errors: u64,
    /// Answered more than one interval after they were due.
    pub late: u64,
    /// From when each poll was due (not when it was sent) to its answer, so that a
    /// client falling behind shows up as latency instead of as fewer polls.
    pub latency: Latency,
    pub first_error: Option<String>,
}

/// Every session polls once per `interval`, the sessions spread evenly over it, for
/// `warmup` (not counted) then `duration`. Each of the `connections` connections serves
/// its share of the sessions in due order.
pub async fn open_loop(
    target: &Arc<Target>,
    sessions: &[Session],
    connections: usize,
    interval: Duration,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<OpenLoop> {
    open_loop_watched(
        target,
        sessions,
        connections,
        interval,
        warmup,
        duration,
        None,
    )
    .await
}

/// Sees every measured poll of an open loop: the session, when the poll was due, and
/// the reply (or the error).
pub type Observer = Arc<dyn Fn(&Session, Instant, Result<&[u8], &anyhow::Error>) + Send + Sync>;

/// What a scenario that reads replies (or ends the loop early) attaches to an open loop.
#[derive(Clone)]
pub struct Watch {
    /// Set to end the loop before `duration` is over.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    pub observer: Observer,
}

/// [`open_loop`], with every measured poll shown to `watch` and ended early when its
/// `stop` is set.
pub async fn open_loop_watched(
    target: &Arc<Target>,
    sessions: &[Session],
    connections: usize,
    interval: Duration,
    warmup: Duration,
    duration: Duration,
    watch: Option<Watch>,
) -> anyhow::Result<OpenLoop> {
    use std::sync::atomic::Ordering;
    let n = sessions.len().max(1);
    let connections = connections.clamp(1, n);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..connections {
        let mine: Vec<(Duration, Session)> = sessions
            .iter()
            .enumerate()
            .skip(w)
            .step_by(connections)
            .map(|(i, s)| (interval.mul_f64(i as f64 / n as f64), s.clone()))
            .collect();
        let target = Arc::clone(target);
        let watch = watch.clone();
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let mut result = OpenLoop::default();
            let body = client::ping();
            'run: for round in 0u32.. {
                let round_start = start + interval * round;
                if round_start >= end {
                    break;
                }
                for (offset, session) in &mine {
                    let due = round_start + *offset;
                    if due >= end {
                        break 'run;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    if watch
                        .as_ref()
                        .is_some_and(|w| w.stop.load(Ordering::Relaxed))
                    {
                        break 'run;
                    }
                    let outcome = client::poll(&mut conn, session, body.clone()).await;
                    if due < measure_from {
                        continue;
                    }
                    if let Some(watch) = &watch {
                        (watch.observer)(session, due, outcome.as_deref());
                    }
                    result.scheduled += 1;
                    match outcome {
                        Ok(_) => {
                            let latency = due.elapsed();
                            result.answered += 1;
                            result.late += u64::from(latency > interval);
                            result.latency.record(latency);
                        }
                        Err(e) => {
                            result.errors += 1;
                            result.first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(result)
        });
    }
    let mut total = OpenLoop::default();
    while let Some(done) = workers.join_next().await {
        let part = done??;
        total.scheduled += part.scheduled;
        total.answered += part.answered;
        total.errors += part.errors;
        total.late += part.late;
        total.latency.merge(&part.latency);
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
    }
    Ok(total)
}

/// Polls every session once (draining what queued up while the others logged in).
pub async fn drain_all(
    target: &Arc<Target>,
    sessions: &[Session],
    connections: usize,
) -> anyhow::Result<()> {
    for_each_session(target, sessions, connections, client::ping()).await
}

/// Logs every session out (LOGOUT), so that the next scenario starts from an empty
/// server. Sessions that are already gone are fine.
pub async fn logout_all(target: &Arc<Target>, sessions: &[Session], connections: usize) {
    let body = client::encode(&[c::Logout {}.into()]);
    let _ = for_each_session(target, sessions, connections, body).await;
}

/// Sends `body` once for every session.
pub(crate) async fn for_each_session(
    target: &Arc<Target>,
    sessions: &[Session],
    connections: usize,
    body: Bytes,
) -> anyhow::Result<()> {
    let connections = connections.clamp(1, sessions.len().max(1));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..connections {
        let mine: Vec<Session> = sessions
            .iter()
            .skip(w)
            .step_by(connections)
            .cloned()
            .collect();
        let (target, body) = (Arc::clone(target), body.clone());
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            for session in &mine {
                conn.bancho(Some(&session.token), body.clone()).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

/// Polls `sessions` in a closed loop over `connections` connections until `stop` is set,
/// handing every reply to `on_reply` with the time it arrived. Returns the errors seen.
pub async fn receive_until<F>(
    target: &Arc<Target>,
    sessions: &[Session],
    connections: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
    on_reply: Arc<F>,
) -> anyhow::Result<u64>
where
    F: Fn(&Session, &[u8], Instant) + Send + Sync + 'static,
{
    use std::sync::atomic::Ordering;
    let connections = connections.clamp(1, sessions.len().max(1));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..connections {
        let mine: Vec<Session> = sessions
            .iter()
            .skip(w)
            .step_by(connections)
            .cloned()
            .collect();
        let (target, stop, on_reply) =
            (Arc::clone(target), Arc::clone(&stop), Arc::clone(&on_reply));
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            let body = client::ping();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for session in &mine {
                    match client::poll(&mut conn, session, body.clone()).await {
                        Ok(reply) => on_reply(session, &reply, Instant::now()),
                        Err(_) => errors += 1,
                    }
                }
            }
            Ok::<_, anyhow::Error>(errors)
        });
    }
    let mut errors = 0;
    while let Some(done) = workers.join_next().await {
        errors += done??;
    }
    Ok(errors)
}

/// Send times of numbered events (messages, frames), shared between the sender and the
/// receivers, and the latencies the receivers saw.
#[derive(Debug)]
pub struct Deliveries {
    sent: Vec<std::sync::OnceLock<Instant>>,
    seen: std::sync::Mutex<(u64, Latency)>,
}

impl Deliveries {
    pub fn new(events: usize) -> Arc<Self> {
        Arc::new(Self {
            sent: (0..events).map(|_| std::sync::OnceLock::new()).collect(),
            seen: std::sync::Mutex::new((0, Latency::default())),
        })
    }

    pub fn mark_sent(&self, seq: usize) {
        if let Some(slot) = self.sent.get(seq) {
            let _ = slot.set(Instant::now());
        }
    }

    /// Records that event `seq` arrived at `at` (ignored if it was never sent).
    pub fn arrived(&self, seq: usize, at: Instant) {
        if let Some(sent) = self.sent.get(seq).and_then(|s| s.get()) {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.0 += 1;
            seen.1.record(at.saturating_duration_since(*sent));
        }
    }

    pub fn delivered(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    pub fn latency(&self) -> Latency {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

/// Waits until `done()` holds or `timeout` passes; true if it held.
pub async fn wait_for(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}
