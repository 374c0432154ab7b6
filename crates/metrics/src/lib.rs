//! Every metric Peace exports, in one place: the names, their help texts, and one small
//! function per metric so that a call site is a single line. Rendered in the Prometheus
//! text format by [`render`] (the gateway serves it at `GET /metrics`).
//!
//! The recorder is process-global (that is how the `metrics` facade works). It is
//! installed on first use, by [`install`] or by any helper, so several servers in one
//! process (the end-to-end tests) share it instead of failing on a second install, and
//! no call site depends on the order in which things start.
//!
//! Cluster code adds its counters here too: [`cluster_envelope`] and [`migration`] exist
//! already and read 0 on a single node.
//!
//! Invariant: this crate depends on nothing of ours, so `db`, `actors` and `gateway` can
//! all use it without knowing of each other.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Gauge, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Players online on this node (gauge, sampled at scrape).
pub const ONLINE_USERS: &str = "peace_online_users";
/// Running entity actors by kind (gauge, sampled at scrape).
pub const ACTORS: &str = "peace_actors";
/// Messages sent to entity actors of a kind and not handled yet (gauge).
pub const MAILBOX_BACKLOG: &str = "peace_actor_mailbox_backlog";
/// Entity handlers that panicked, by kind and outcome (`restarted`, `stopped`).
pub const ENTITY_PANICS: &str = "peace_entity_panics_total";
/// Polls (Bancho requests with a token) answered.
pub const POLLS: &str = "peace_polls_total";
/// Polls answered on the node without a round trip to the session actor (a subset of
/// [`POLLS`]; see `peace_actors::user::QuietMarks`).
pub const QUIET_POLLS: &str = "peace_quiet_polls_total";
/// Logins by outcome (`ok`, `failed`).
pub const LOGINS: &str = "peace_logins_total";
/// Client packets handled, by packet name.
pub const CLIENT_PACKETS: &str = "peace_client_packets_total";
/// Bytes of Bancho request bodies received.
pub const BYTES_IN: &str = "peace_bancho_bytes_received_total";
/// Bytes of Bancho response bodies sent.
pub const BYTES_OUT: &str = "peace_bancho_bytes_sent_total";
/// Time of one database operation, including the wait for a pooled connection.
pub const DB_QUERY_SECONDS: &str = "peace_db_query_duration_seconds";
/// Database operations that failed (including time-outs).
pub const DB_QUERY_ERRORS: &str = "peace_db_query_errors_total";
/// Time a channel actor takes from handling a message to having cast it to every member.
pub const CHANNEL_FANOUT_SECONDS: &str = "peace_channel_fanout_duration_seconds";
/// Members a channel message was cast to.
pub const CHANNEL_FANOUT_MEMBERS: &str = "peace_channel_fanout_members_total";
/// Envelopes that crossed nodes, by direction (`sent`, `received`).
pub const CLUSTER_ENVELOPES: &str = "peace_cluster_envelopes_total";
/// Entity migrations between nodes, by outcome (`completed`, `aborted`).
pub const MIGRATIONS: &str = "peace_cluster_migrations_total";
/// Scores whose pp this node recalculated (`peace pp recalc`), changed or not.
pub const RECALC_SCORES: &str = "peace_recalc_scores_total";
/// Batches of a recalculation this node wrote, by outcome (`applied`, `overtaken`).
pub const RECALC_BATCHES: &str = "peace_recalc_batches_total";
/// The running recalculation job as this node last read it: scores done and in all
/// (gauges; both 0 when no job runs).
pub const RECALC_DONE: &str = "peace_recalc_job_done";
pub const RECALC_TOTAL: &str = "peace_recalc_job_total";

/// The entity kinds with actors, as label values.
pub const ACTOR_KINDS: &[&str] = &[
    "user", "channel", "spectate", "match", "lobby", "bot", "board",
];

/// Histogram buckets for latencies, in seconds: fine below a millisecond (fan-out, cached
/// queries), coarse up to the call time-out.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0,
];

/// How often histogram samples are folded into their buckets between scrapes, so that an
/// unscraped server does not keep every sample.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Handles of the metrics recorded on every request, registered once: looking a metric
/// up by name hashes its key and takes a lock, which showed up in the poll profile
/// (docs/benchmarks.md).
struct Hot {
    polls: Counter,
    quiet_polls: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    logins_ok: Counter,
    logins_failed: Counter,
    /// Mailbox backlog by kind, in [`ACTOR_KINDS`] order.
    backlog: Vec<Gauge>,
}

static HOT: OnceLock<Hot> = OnceLock::new();

fn hot() -> &'static Hot {
    HOT.get_or_init(|| {
        // Registered after the recorder, or the handles would be no-ops.
        recorder();
        Hot {
            polls: counter!(POLLS),
            quiet_polls: counter!(QUIET_POLLS),
            bytes_in: counter!(BYTES_IN),
            bytes_out: counter!(BYTES_OUT),
            logins_ok: counter!(LOGINS, "outcome" => "ok"),
            logins_failed: counter!(LOGINS, "outcome" => "failed"),
            backlog: ACTOR_KINDS
                .iter()
                .map(|kind| gauge!(MAILBOX_BACKLOG, "kind" => *kind))
                .collect(),
        }
    })
}

fn backlog(kind: &'static str) -> Option<&'static Gauge> {
    let i = ACTOR_KINDS.iter().position(|k| *k == kind)?;
    hot().backlog.get(i)
}

/// Installs the process-global recorder unless one is installed already; idempotent.
/// Returns false when another recorder (not ours) holds the global slot, in which case
/// [`render`] has nothing to show.
pub fn install() -> bool {
    recorder().is_some()
}

fn recorder() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe_all();
            register_zeroes();
            let upkeep = handle.clone();
            // A plain thread, not a task: the recorder outlives any one tokio runtime
            // (each test starts its own).
            let _ = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_PERIOD);
                        upkeep.run_upkeep();
                    }
                });
            Some(handle)
        })
        .as_ref()
}

fn describe_all() {
    describe_gauge!(ONLINE_USERS, "Players online on this node.");
    describe_gauge!(ACTORS, "Running entity actors by kind.");
    describe_gauge!(
        MAILBOX_BACKLOG,
        "Messages sent to entity actors of a kind that they have not handled yet."
    );
    describe_counter!(POLLS, "Polls answered.");
    describe_counter!(
        QUIET_POLLS,
        "Polls answered without a round trip to the session actor (nothing to send)."
    );
    describe_counter!(LOGINS, "Logins by outcome.");
    describe_counter!(CLIENT_PACKETS, "Client packets handled, by packet name.");
    describe_counter!(BYTES_IN, Unit::Bytes, "Bancho request body bytes received.");
    describe_counter!(BYTES_OUT, Unit::Bytes, "Bancho response body bytes sent.");
    describe_histogram!(
        DB_QUERY_SECONDS,
        Unit::Seconds,
        "Database operation time, including the wait for a pooled connection."
    );
    describe_counter!(
        DB_QUERY_ERRORS,
        "Database operations that failed or timed out."
    );
    describe_histogram!(
        CHANNEL_FANOUT_SECONDS,
        Unit::Seconds,
        "Channel message handling until it was cast to every member's session."
    );
    describe_counter!(
        CHANNEL_FANOUT_MEMBERS,
        "Members channel messages were cast to."
    );
    describe_counter!(
        CLUSTER_ENVELOPES,
        "Envelopes that crossed nodes, by direction."
    );
    describe_counter!(MIGRATIONS, "Entity migrations between nodes, by outcome.");
    describe_counter!(
        RECALC_SCORES,
        "Scores whose pp this node recalculated (changed or not)."
    );
    describe_counter!(
        RECALC_BATCHES,
        "Recalculation batches this node wrote, by outcome."
    );
    describe_gauge!(
        RECALC_DONE,
        "Scores done of the running recalculation job (0 without one)."
    );
    describe_gauge!(
        RECALC_TOTAL,
        "Scores in all of the running recalculation job (0 without one)."
    );
    describe_counter!(
        ENTITY_PANICS,
        "Entity handlers that panicked, by kind and outcome."
    );
}

/// Metrics that must be visible before anything happened, so that dashboards and the
/// cluster code find them from the start.
fn register_zeroes() {
    for direction in ["sent", "received"] {
        counter!(CLUSTER_ENVELOPES, "direction" => direction).absolute(0);
    }
    for outcome in ["completed", "aborted"] {
        counter!(MIGRATIONS, "outcome" => outcome).absolute(0);
    }
    for kind in ACTOR_KINDS {
        gauge!(MAILBOX_BACKLOG, "kind" => *kind).set(0.0);
        for outcome in ["restarted", "stopped"] {
            counter!(ENTITY_PANICS, "kind" => *kind, "outcome" => outcome).absolute(0);
        }
    }
    for outcome in ["ok", "failed"] {
        counter!(LOGINS, "outcome" => outcome).absolute(0);
    }
    counter!(POLLS).absolute(0);
    counter!(QUIET_POLLS).absolute(0);
    counter!(BYTES_IN).absolute(0);
    counter!(BYTES_OUT).absolute(0);
    counter!(DB_QUERY_ERRORS).absolute(0);
    counter!(CHANNEL_FANOUT_MEMBERS).absolute(0);
    counter!(RECALC_SCORES).absolute(0);
    for outcome in ["applied", "overtaken"] {
        counter!(RECALC_BATCHES, "outcome" => outcome).absolute(0);
    }
    gauge!(RECALC_DONE).set(0.0);
    gauge!(RECALC_TOTAL).set(0.0);
}

/// The current values in the Prometheus text format (empty if [`install`] failed).
pub fn render() -> String {
    recorder().map(PrometheusHandle::render).unwrap_or_default()
}

/// Sets the number of players online (sampled when scraped).
pub fn set_online_users(count: usize) {
    recorder();
    gauge!(ONLINE_USERS).set(count as f64);
}

/// Sets the number of running actors of `kind`, one of [`ACTOR_KINDS`].
pub fn set_actors(kind: &'static str, count: usize) {
    recorder();
    gauge!(ACTORS, "kind" => kind).set(count as f64);
}

/// A message was sent to an actor of `kind` (one of [`ACTOR_KINDS`]).
pub fn mailbox_sent(kind: &'static str) {
    if let Some(g) = backlog(kind) {
        g.increment(1.0);
    }
}

/// An actor of `kind` took a message out of its mailbox.
pub fn mailbox_handled(kind: &'static str) {
    if let Some(g) = backlog(kind) {
        g.decrement(1.0);
    }
}

/// An entity of `kind` panicked; it was restarted or it stopped.
pub fn entity_panicked(kind: &'static str, restarted: bool) {
    recorder();
    let outcome = if restarted { "restarted" } else { "stopped" };
    counter!(ENTITY_PANICS, "kind" => kind, "outcome" => outcome).increment(1);
}

/// One poll was answered; `bytes_in`/`bytes_out` are the body sizes.
pub fn poll(bytes_in: usize, bytes_out: usize) {
    let hot = hot();
    hot.polls.increment(1);
    bancho_bytes(hot, bytes_in, bytes_out);
}

/// A poll was answered quietly (counted by [`poll`] as well, by the gateway).
pub fn quiet_poll() {
    hot().quiet_polls.increment(1);
}

/// One login was answered.
pub fn login(ok: bool, bytes_in: usize, bytes_out: usize) {
    let hot = hot();
    if ok {
        hot.logins_ok.increment(1);
    } else {
        hot.logins_failed.increment(1);
    }
    bancho_bytes(hot, bytes_in, bytes_out);
}

fn bancho_bytes(hot: &Hot, bytes_in: usize, bytes_out: usize) {
    hot.bytes_in.increment(bytes_in as u64);
    hot.bytes_out.increment(bytes_out as u64);
}

/// A client packet with `id`, named `name` (the protocol table's name), was handled.
pub fn client_packet(id: u16, name: &'static str) {
    client_packets(id, name, 1);
}

/// `count` client packets with `id`, named `name`, were handled.
pub fn client_packets(id: u16, name: &'static str, count: u64) {
    match PACKET_COUNTERS.get(usize::from(id)) {
        Some(slot) => slot
            .get_or_init(|| {
                recorder();
                counter!(CLIENT_PACKETS, "packet" => name)
            })
            .increment(count),
        None => {
            recorder();
            counter!(CLIENT_PACKETS, "packet" => name).increment(count);
        }
    }
}

/// Client packet ids are below this (protocol 19 ends at 109); counters of these are
/// kept by id so that counting a packet needs no lookup.
const CACHED_PACKET_IDS: usize = 128;

static PACKET_COUNTERS: [OnceLock<Counter>; CACHED_PACKET_IDS] =
    [const { OnceLock::new() }; CACHED_PACKET_IDS];

/// A database operation took `elapsed`; `ok` is false if it failed or timed out.
pub fn db_query(elapsed: Duration, ok: bool) {
    recorder();
    histogram!(DB_QUERY_SECONDS).record(elapsed.as_secs_f64());
    if !ok {
        counter!(DB_QUERY_ERRORS).increment(1);
    }
}

/// A channel message was cast to `members` sessions, `elapsed` after its handling began.
pub fn channel_fanout(elapsed: Duration, members: usize) {
    recorder();
    histogram!(CHANNEL_FANOUT_SECONDS).record(elapsed.as_secs_f64());
    counter!(CHANNEL_FANOUT_MEMBERS).increment(members as u64);
}

/// An envelope crossed to (`sent`) or from (`received`) another node.
pub fn cluster_envelope(sent: bool) {
    recorder();
    let direction = if sent { "sent" } else { "received" };
    counter!(CLUSTER_ENVELOPES, "direction" => direction).increment(1);
}

/// An entity migration between nodes ended.
pub fn migration(completed: bool) {
    recorder();
    let outcome = if completed { "completed" } else { "aborted" };
    counter!(MIGRATIONS, "outcome" => outcome).increment(1);
}

/// A recalculation batch of `scores` scores was written (`applied`) or found its shard
/// moved on by another node (`overtaken`, `scores` is then 0).
pub fn recalc_batch(applied: bool, scores: u64) {
    recorder();
    let outcome = if applied { "applied" } else { "overtaken" };
    counter!(RECALC_BATCHES, "outcome" => outcome).increment(1);
    counter!(RECALC_SCORES).increment(scores);
}

/// The running job's progress as this node last read it (0 and 0: none runs).
pub fn recalc_progress(done: i64, total: i64) {
    recorder();
    gauge!(RECALC_DONE).set(done as f64);
    gauge!(RECALC_TOTAL).set(total as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_and_recorded_metrics() {
        assert!(install());
        assert!(install(), "a second install must be a no-op");
        poll(10, 20);
        db_query(Duration::from_millis(2), false);
        channel_fanout(Duration::from_micros(300), 1000);
        let text = render();
        for name in [
            POLLS,
            QUIET_POLLS,
            BYTES_IN,
            BYTES_OUT,
            DB_QUERY_ERRORS,
            CHANNEL_FANOUT_MEMBERS,
            CLUSTER_ENVELOPES,
            MIGRATIONS,
            MAILBOX_BACKLOG,
            ENTITY_PANICS,
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert!(text.contains("peace_db_query_duration_seconds_bucket{le=\"0.002\"}"));
        assert!(text.contains("peace_cluster_migrations_total{outcome=\"completed\"} 0"));
        assert!(text.contains("peace_channel_fanout_members_total 1000"));
    }
}
