//! Live migration: moving the entities of some shards to another node while players stay
//! online.
//!
//! The old owner, asked by the coordinator to release shards to a new owner:
//! 1. freezes the shards: from now on casts for them are held here in arrival order and
//!    calls wait;
//! 2. exports every entity of those shards: each answers with its snapshot and stops
//!    without the clean-up of an ending entity (its mailbox held only messages that
//!    arrived before the freeze, which it handled first);
//! 3. asks the new owner to import the snapshots; the new owner freezes the shards too
//!    and starts the entities from them;
//! 4. hands the shards over: from now on it forwards to the new owner, and, in the same
//!    step, sends the new owner everything it held ([`Body::Handoff`]);
//! 5. the new owner delivers what the old owner held, then what it held itself, and
//!    serves the shards; the coordinator publishes the new table.
//!
//! If the import fails, the old owner starts the entities again from their snapshots and
//! delivers what it held: the move is undone and nothing is lost. Each step keeps the
//! order of messages from any one sender, and no message is delivered twice.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ractor::ActorRef;
use serde::{Deserialize, Serialize};

use crate::cluster::envelope::{Answer, Body, Envelope, Refusal, RequestBody};
use crate::cluster::placement::Location;
use crate::cluster::shard::{Shard, shard_of};
use crate::message::EntityMsg;
use crate::router::RouteError;
use crate::snapshot::{self, Snapshot};
use crate::user::{Session, Start};
use crate::{EntityKey, World};

/// How long the new owner waits for the old owner's hand-over after an import; then it
/// serves the shards anyway (the old owner is presumably gone).
pub const HANDOFF_TIMEOUT: Duration = Duration::from_secs(10);

/// Most shards frozen and moved at once. A release of more moves them in steps of this
/// many: a shard's players wait for one step, not for the whole release (64 shards of a
/// busy node froze polls for over 100 ms; docs/benchmarks.md).
pub const MOVE_STEP_SHARDS: usize = 8;

/// Migration counters of one node, for the cluster API and /metrics.
#[derive(Debug, Default)]
pub struct MigrationCounters {
    batches_out: AtomicU64,
    batches_in: AtomicU64,
    entities_out: AtomicU64,
    entities_in: AtomicU64,
    failed: AtomicU64,
    held_messages: AtomicU64,
    total_ms: AtomicU64,
    last_ms: AtomicU64,
    /// Peers that refused this node's snapshots (an older build that cannot read this
    /// one's format), with the incarnation that refused: no more moves go to them until
    /// they restart (presumably upgraded). Without it a rolling upgrade's balancer would
    /// freeze, export and restore the same shards at every heartbeat.
    refused_by: std::sync::Mutex<std::collections::HashMap<String, Option<i64>>>,
}

/// How an import that could not read a snapshot is refused (the whole batch: the old
/// owner restores everything, so nothing is lost).
const UNREADABLE_SNAPSHOT: &str = "a snapshot could not be read";

/// Why a batch of entities did not move.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The new owner cannot read a snapshot (a newer format, during an upgrade). Its
    /// text starts with [`UNREADABLE_SNAPSHOT`], which the old owner looks for in the
    /// refusal: older builds send only the text.
    #[error("{UNREADABLE_SNAPSHOT}: {0}")]
    UnreadableSnapshot(#[from] snapshot::SnapshotError),
    #[error("{peer} did not import: {answer}")]
    NotImported { peer: String, answer: String },
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationStats {
    /// Moves of shards off this node, and of shards onto it.
    pub batches_out: u64,
    pub batches_in: u64,
    pub entities_out: u64,
    pub entities_in: u64,
    /// Moves that were undone.
    pub failed: u64,
    /// Messages held while their entity moved (then delivered where it went).
    pub held_messages: u64,
    /// Time spent moving entities off this node, in all and the last time.
    pub total_ms: u64,
    pub last_ms: u64,
}

impl MigrationCounters {
    pub fn stats(&self) -> MigrationStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MigrationStats {
            batches_out: get(&self.batches_out),
            batches_in: get(&self.batches_in),
            entities_out: get(&self.entities_out),
            entities_in: get(&self.entities_in),
            failed: get(&self.failed),
            held_messages: get(&self.held_messages),
            total_ms: get(&self.total_ms),
            last_ms: get(&self.last_ms),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl World {
    /// Gives up to `limit` of `shards` to node `to`: empty ones first (nothing to move),
    /// then ones with entities, which move live. Returns the shards given. Runs under the
    /// spawning lock, so no entity starts in a shard while it leaves.
    pub async fn release_shards(&self, shards: &[Shard], to: &str, limit: usize) -> Vec<Shard> {
        if to == self.node_name() || limit == 0 {
            return Vec::new();
        }
        if self.refuses_my_snapshots(to) {
            tracing::debug!(node = %to, "not moving entities to a node that cannot read them");
            return Vec::new();
        }
        let _guard = self.spawn_lock().await;
        let placement = self.router().placement();
        let load = self.router().local_shard_load();
        let mine: Vec<Shard> = shards
            .iter()
            .copied()
            .filter(|s| placement.locate_shard(*s) == Location::Here)
            .collect();
        let (empty, busy): (Vec<Shard>, Vec<Shard>) =
            mine.into_iter().partition(|s| !load.contains_key(s));
        let empty: Vec<Shard> = empty.into_iter().take(limit).collect();
        let busy: Vec<Shard> = busy
            .into_iter()
            .take(limit.saturating_sub(empty.len()))
            .collect();
        let mut given = Vec::new();
        if !empty.is_empty() {
            let acquire = RequestBody::Acquire {
                shards: empty.clone(),
            };
            match self
                .router()
                .net()
                .ask(to, acquire, self.config().call_timeout)
                .await
            {
                Ok(Answer::Done) => {
                    placement.release(&empty, to);
                    given.extend(empty);
                }
                Ok(other) => tracing::warn!(node = %to, "odd answer to acquire: {other:?}"),
                Err(e) => tracing::debug!(node = %to, "could not hand shards over: {e}"),
            }
        }
        for step in busy.chunks(MOVE_STEP_SHARDS) {
            match self.migrate_out(step, to).await {
                Ok(()) => given.extend_from_slice(step),
                Err(e) => {
                    // The rest stays here; the coordinator asks again at a later tick.
                    tracing::warn!(node = %to, "move undone: {e}");
                    break;
                }
            }
        }
        given
    }

    /// Moves the entities of `shards` to `to` (steps 1 to 4 above).
    async fn migrate_out(&self, shards: &[Shard], to: &str) -> Result<(), MigrationError> {
        let started = Instant::now();
        let placement = self.router().placement().clone();
        placement.freeze(shards);
        let snapshots = self.export(shards).await;
        let count = snapshots.len();
        let mut encoded = Vec::with_capacity(count);
        for s in &snapshots {
            match snapshot::encode(s) {
                Ok(bytes) => encoded.push(bytes),
                Err(e) => tracing::error!("a snapshot could not be encoded: {e}"),
            }
        }
        let import = RequestBody::Import {
            shards: shards.to_vec(),
            snapshots: encoded,
        };
        let timeout = self.config().call_timeout.max(Duration::from_secs(10));
        let result = self.router().net().ask(to, import, timeout).await;
        let counters = self.migrations();
        match result {
            Ok(Answer::Done) => {
                let net = self.router().net().clone();
                let (from, shards_vec) = (self.node_name().to_owned(), shards.to_vec());
                placement.hand_over(shards, to, |held| {
                    add(&counters.held_messages, held.len() as u64);
                    let body = Body::Handoff {
                        shards: shards_vec,
                        held,
                    };
                    if let Err(e) = net.send(to, body) {
                        tracing::error!(%from, node = %to, "hand-over not sent: {e}");
                    }
                });
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                add(&counters.batches_out, 1);
                peace_metrics::migration(true);
                add(&counters.entities_out, count as u64);
                add(&counters.total_ms, ms);
                counters.last_ms.store(ms, Ordering::Relaxed);
                tracing::info!(node = %to, shards = shards.len(), entities = count, ms, "entities moved");
                Ok(())
            }
            other => {
                if let Err(RouteError::Refused(Refusal::Failed(why))) = &other
                    && why.starts_with(UNREADABLE_SNAPSHOT)
                {
                    tracing::warn!(node = %to, "{to} cannot read this node's snapshots (an older build?): no more moves to it until it restarts");
                    let incarnation = self.incarnation_of(to);
                    counters
                        .refused_by
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(to.to_owned(), incarnation);
                }
                add(&counters.failed, 1);
                peace_metrics::migration(false);
                for s in snapshots {
                    self.restore(s).await;
                }
                let held = placement.thaw(shards);
                for envelope in held {
                    crate::cluster::inbound::deliver(self, envelope);
                }
                Err(MigrationError::NotImported {
                    peer: to.to_owned(),
                    answer: format!("{other:?}"),
                })
            }
        }
    }

    /// When peer `node` started, as its last status said.
    fn incarnation_of(&self, node: &str) -> Option<i64> {
        self.cluster()
            .peers()
            .into_iter()
            .find(|p| p.name == node)
            .and_then(|p| p.status)
            .map(|s| s.started_ms)
    }

    /// Whether `node`, in its current incarnation, refused this node's snapshots.
    fn refuses_my_snapshots(&self, node: &str) -> bool {
        let refused = self
            .migrations()
            .refused_by
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .copied();
        refused.is_some_and(|incarnation| incarnation == self.incarnation_of(node))
    }

    /// Exports every entity of `shards` and forgets it here; returns the snapshots.
    async fn export(&self, shards: &[Shard]) -> Vec<Snapshot> {
        let set: BTreeSet<Shard> = shards.iter().copied().collect();
        let router = self.router();
        let timeout = self.config().call_timeout;
        let mut exports = tokio::task::JoinSet::new();
        for session in router.sessions().all() {
            if set.contains(&shard_of(&EntityKey::User(session.user_id))) {
                if !router
                    .sessions()
                    .remove_extra(session.user_id, session.session_id)
                {
                    router
                        .sessions()
                        .remove(session.user_id, session.session_id);
                }
                exports.spawn(export_one(session.actor, "user", timeout, Snapshot::from));
            }
        }
        for (key, actor) in router.channels_table().actors_in(&set) {
            router.channels().remove(&key, actor.get_id());
            let wrap = |s| Snapshot::Channel(Box::new(s));
            exports.spawn(export_one(actor, "channel", timeout, wrap));
        }
        for (key, actor) in router.spectate_table().actors_in(&set) {
            router.spectate().remove(&key, actor.get_id());
            let wrap = |s| Snapshot::Spectate(Box::new(s));
            exports.spawn(export_one(actor, "spectate", timeout, wrap));
        }
        for (key, actor) in router.matches_table().actors_in(&set) {
            router.matches().remove(&key, actor.get_id());
            let wrap = |s| Snapshot::Match(Box::new(s));
            exports.spawn(export_one(actor, "match", timeout, wrap));
        }
        for (key, actor) in router.lobby_table().actors_in(&set) {
            router.lobby().remove(&key, actor.get_id());
            let wrap = |s| Snapshot::Lobby(Box::new(s));
            exports.spawn(export_one(actor, "lobby", timeout, wrap));
        }
        for (key, actor) in router.boards_table().actors_in(&set) {
            router.boards().remove(&key, actor.get_id());
            exports.spawn(export_one(actor, "board", timeout, Snapshot::Board));
        }
        let mut snapshots = Vec::new();
        while let Some(done) = exports.join_next().await {
            if let Ok(Some(s)) = done {
                snapshots.push(s);
            }
        }
        snapshots
    }

    /// The new owner's side of step 3: starts the entities of `shards` from `snapshots`,
    /// holding every message for them until the old owner's hand-over.
    pub(crate) async fn import(
        &self,
        from: &str,
        shards: &[Shard],
        snapshots: &[Vec<u8>],
    ) -> Result<(), MigrationError> {
        // Every snapshot is read before anything changes here: one this build cannot
        // read (a newer format, during an upgrade) refuses the whole batch, and the old
        // owner restores it all. Starting the rest would lose that entity.
        let mut decoded = Vec::with_capacity(snapshots.len());
        for bytes in snapshots {
            match snapshot::decode(bytes) {
                Ok(s) => decoded.push(s),
                Err(e) => {
                    let e = MigrationError::from(e);
                    tracing::warn!(peer = %from, "refused a move: {e}");
                    return Err(e);
                }
            }
        }
        let _guard = self.spawn_lock().await;
        let placement = self.router().placement();
        // From now on what arrives for the shards is held here, and so are this node's
        // own messages for them, behind a flush marker through the old owner (it comes
        // back after everything this node sent there before).
        let net = self.router().net().clone();
        let me = self.node_name().to_owned();
        placement.begin_import(shards, || {
            for &shard in shards {
                let marker = Body::Flush {
                    shard,
                    origin: me.clone(),
                };
                if let Err(e) = net.send(from, marker) {
                    tracing::warn!(peer = %from, "flush marker not sent: {e}");
                }
            }
        });
        let started = decoded.len() as u64;
        for s in decoded {
            self.restore(s).await;
        }
        let counters = self.migrations();
        add(&counters.batches_in, 1);
        add(&counters.entities_in, started);
        // If the hand-over never comes (the old owner died), serve the shards anyway.
        let world = self.clone();
        let (shards, from) = (shards.to_vec(), from.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(HANDOFF_TIMEOUT).await;
            let frozen = shards
                .iter()
                .any(|s| world.router().placement().locate_shard_inbound(*s) == Location::Frozen);
            if frozen {
                tracing::warn!(peer = %from, "no hand-over arrived; serving the moved shards");
                world.finish_import(&from, &shards, Vec::new());
            }
        });
        Ok(())
    }

    /// Step 5: delivers what the old owner held, then what arrived here meanwhile, and
    /// serves the shards; this node's own messages wait for its flush marker.
    pub(crate) fn finish_import(&self, from: &str, shards: &[Shard], held: Vec<Envelope>) {
        let router = self.router();
        let mut own_markers = Vec::new();
        let mut deliver = |envelopes: Vec<Envelope>| {
            add(&self.migrations().held_messages, envelopes.len() as u64);
            for envelope in envelopes {
                match &envelope.body {
                    // This node's own marker: everything it sent the old owner is in.
                    Body::Flush { shard, origin } if origin == self.node_name() => {
                        own_markers.push(*shard)
                    }
                    Body::Flush { shard, origin } => {
                        let ack = Body::FlushAck { shard: *shard };
                        if let Err(e) = router.net().send(origin, ack) {
                            tracing::debug!(node = %origin, "flush acknowledgement not sent: {e}");
                        }
                    }
                    _ => router.deliver_held(self, envelope),
                }
            }
        };
        deliver(held);
        while let Some(more) = router.placement().finish_import(shards, from) {
            deliver(more);
        }
        for shard in own_markers {
            self.end_flush(shard);
        }
        tracing::debug!(peer = %from, shards = shards.len(), "moved shards served here");
    }

    /// The wait for this node's flush marker for `shard` is over: its messages held
    /// meanwhile go where the shard is now, in order.
    pub(crate) fn end_flush(&self, shard: Shard) {
        let router = self.router();
        router.placement().end_flush(shard, |own, owner| {
            for envelope in own {
                if owner == self.node_name() {
                    router.deliver_held(self, envelope);
                } else if let Err(e) = router.net().send(owner, envelope.body) {
                    tracing::warn!(node = %owner, "held message not sent: {e}");
                }
            }
        });
    }

    /// Ends the flush waits whose markers went through `node`, which is gone.
    pub(crate) fn end_flushes_through(&self, node: &str) {
        let shards = self.router().placement().flushes_through(node);
        if !shards.is_empty() {
            tracing::info!(%node, shards = shards.len(), "flush markers lost with their node; going direct");
        }
        for shard in shards {
            self.end_flush(shard);
        }
    }

    /// Ends flush waits that lasted too long (a marker lost with its node).
    ///
    /// A marker is lost when the old owner it travels through stops before passing it on
    /// (a drained node lingers only a couple of heartbeats) and its departure is not yet
    /// known here. Nothing is lost with it: the messages this node held for the shard go
    /// to the new owner now, still in their order; only the guarantee that they arrive
    /// after what this node sent the old owner earlier is given up, and that was
    /// delivered or dropped with the old owner long ago. So it is reported once per
    /// sweep, not once per shard, and not as a warning.
    pub(crate) fn expire_flushes(&self) {
        let overdue = self.router().placement().overdue_flushes();
        if overdue.is_empty() {
            return;
        }
        let via: std::collections::BTreeSet<&str> =
            overdue.iter().map(|(_, via)| via.as_str()).collect();
        tracing::info!(
            shards = overdue.len(),
            through = ?via,
            "flush markers sent through the shards' old owners did not come back in time; \
             sending the messages held for those shards straight to their new owners"
        );
        for (shard, _) in overdue {
            self.end_flush(shard);
        }
    }

    /// Starts an entity from its snapshot on this node, whatever the placement says (the
    /// caller owns the shard, or is taking it).
    pub(crate) async fn restore(&self, snapshot: Snapshot) {
        let supervisor = match self.live_supervisor() {
            Ok(s) => s,
            Err(e) => return tracing::error!("cannot restore an entity: {e}"),
        };
        let router = self.router();
        let result = match snapshot {
            Snapshot::Session { state, entry } => {
                let extra = state.extra_session;
                match Session::start(self.session_ports(), *state, Start::Restored, supervisor)
                    .await
                {
                    Ok(local) => {
                        if extra {
                            router.sessions().insert_extra(local);
                        } else {
                            router.sessions().insert(local);
                            let mut entry = *entry;
                            entry.node = self.node_name().into();
                            router.users().insert(entry);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Snapshot::Bot => self.start_bot().await,
            Snapshot::Channel(state) => {
                let name = state.definition.name.clone();
                crate::ports::host(*state, self.channel_ports(), supervisor)
                    .await
                    .map(|actor| router.channels().insert(name, actor))
            }
            Snapshot::Spectate(state) => {
                let host = state.host_id;
                crate::ports::host(*state, self.ports(), supervisor)
                    .await
                    .map(|actor| router.spectate().insert(host, actor))
            }
            Snapshot::Match(state) => {
                let id = i32::from(state.data.match_id);
                crate::ports::host(*state, self.match_ports(), supervisor)
                    .await
                    .map(|actor| router.matches().insert(id, actor))
            }
            Snapshot::Lobby(state) => crate::ports::host(*state, self.ports(), supervisor)
                .await
                .map(|actor| router.lobby().insert((), actor)),
            // A board carries only its key and loads again here.
            Snapshot::Board(key) => {
                let board = crate::leaderboard::Leaderboard::new(key.clone());
                crate::ports::host(board, self.board_ports(), supervisor)
                    .await
                    .map(|actor| router.boards().insert(key, actor))
            }
        };
        if let Err(e) = result {
            tracing::error!("could not restore an entity: {e}");
        }
    }
}

/// Asks one actor for its snapshot (it stops right after answering), in the versioned
/// form that crosses nodes (`wrap`: the kind's own snapshot as a [`Snapshot`]).
async fn export_one<C, Q, R, S>(
    actor: ActorRef<EntityMsg<C, Q, R, S>>,
    kind: &'static str,
    timeout: Duration,
    wrap: impl FnOnce(S) -> Snapshot,
) -> Option<Snapshot>
where
    EntityMsg<C, Q, R, S>: ractor::Message,
    S: Send + std::fmt::Debug + 'static,
{
    match crate::message::call_counted(&actor, kind, EntityMsg::Export, timeout).await {
        Ok(ractor::rpc::CallResult::Success(snapshot)) => Some(wrap(snapshot)),
        other => {
            tracing::error!("an entity did not export ({other:?}); it is stopped");
            actor.stop(Some("export failed".into()));
            None
        }
    }
}
