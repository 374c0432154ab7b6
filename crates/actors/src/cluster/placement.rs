//! This node's view of where every key lives: its copy of the shard table, plus the
//! shards in flight while they move between nodes.
//!
//! A shard with entities moves from its old owner A to a new owner B like this (see
//! `crate::migrate` for the entities themselves):
//!
//! 1. A **freezes** it: every message for it is held at A, in arrival order.
//! 2. B **imports** it: B holds what arrives for it, holds its own new messages for it
//!    apart, and sends A a **flush** marker (behind everything B sent A before).
//! 3. A **hands it over**: what A held goes to B in one envelope, and from then on A
//!    forwards to B. B delivers what A held and what arrived, in order, and serves the
//!    shard. When its own marker comes back through A, everything B sent through A has
//!    arrived: B delivers its own held messages and from then on delivers directly.
//! 4. The coordinator publishes the new table. Every other node that installs it holds
//!    its new messages for the shard and sends A a flush marker; B acknowledges the
//!    marker when it arrives (after everything the node sent through A), and the node
//!    sends what it held, and all later messages, to B directly.
//!
//! So messages in flight are forwarded, never dropped; no message is delivered twice; and
//! the messages of any one sender reach the entity in the order they were sent: a sender
//! goes direct to B only once everything it sent through A has arrived.
//!
//! An empty shard skips the entities: A asks B to acquire it, then forwards to B.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::envelope::Envelope;
use super::shard::{SHARD_COUNT, Shard, ShardTable, shard_of};
use crate::EntityKey;

/// Most messages held for one frozen shard; beyond it they are dropped (and counted).
pub const MAX_BUFFERED_PER_SHARD: usize = 50_000;

/// How long a node sends a moved shard's messages through its old owner waiting for the
/// flush marker to come back; then it goes direct anyway (the old owner is presumably
/// gone, and with it what it held).
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a key lives, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Here,
    There(String),
    /// Its shard is moving: casts are held here and calls wait until it has moved.
    Frozen,
    /// No shard table yet: the node is still joining its cluster.
    Unplaced,
}

/// What became of a message for a frozen shard.
#[derive(Debug)]
pub enum Hold {
    /// Held until the shard has moved.
    Kept,
    /// Dropped: too many are held for the shard already.
    Full,
    /// The shard thawed since the message was located: route it again.
    Thawed(Box<Envelope>),
}

/// A shard on its way between nodes.
#[derive(Debug)]
enum Transit {
    /// Old owner, entities being exported: everything for it is held here.
    Frozen(Vec<Envelope>),
    /// New owner, entities being imported: what arrives is held in `held`, this node's
    /// own messages in `own` (until its flush marker comes back).
    Importing {
        held: Vec<Envelope>,
        own: Vec<Envelope>,
    },
    /// New owner, serving what arrives; its own messages still wait in `own` for its
    /// flush marker, which travels through the old owner `via`.
    Settling {
        own: Vec<Envelope>,
        since: Instant,
        via: String,
    },
    /// Old owner, given away: forwarded to the new owner.
    Released(String),
    /// New owner of an empty shard, serving it before the table says so.
    Acquiring,
    /// Any other node, after the shard moved between two others: its own messages wait
    /// in `own` until the new owner acknowledges its flush marker, sent through the old
    /// owner `via`.
    Flushing {
        own: Vec<Envelope>,
        since: Instant,
        via: String,
    },
}

#[derive(Debug, Default)]
struct State {
    table: Option<Arc<ShardTable>>,
    transit: HashMap<Shard, Transit>,
}

/// What changed for this node when a table was installed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableChange {
    pub gained: BTreeSet<Shard>,
    pub lost: BTreeSet<Shard>,
    /// Shards that moved between two other nodes, by their old owner: this node sends
    /// its messages for them through the old owner until its flush marker is answered.
    pub flush: BTreeMap<String, Vec<Shard>>,
}

/// The placement view of one node. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Placement {
    me: Arc<str>,
    state: Arc<RwLock<State>>,
    /// Counts changes of the state, so that whoever waits for a frozen shard is woken
    /// by the next change instead of polling ([`Placement::changes`]).
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Placement {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.into(),
            state: Arc::default(),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // Every write below leaves the state whole, so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        // Counted while the write lock is held: a waiter woken by it reads the state
        // only once this write is done (its read waits for the lock).
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        guard
    }

    /// A receiver woken at every later change of this node's view (a table installed,
    /// a shard frozen, thawed, handed over). Take it *before* looking at the state, so
    /// that a change in between is not missed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Where a message from this node for `key` goes, waiting while its shard is
    /// frozen by a move (until `deadline`; then [`Location::Frozen`]).
    pub async fn locate_settled(
        &self,
        key: &EntityKey,
        deadline: tokio::time::Instant,
    ) -> Location {
        let location = self.locate(key);
        if location != Location::Frozen {
            return location;
        }
        let mut changes = self.changes();
        loop {
            let location = self.locate(key);
            if location != Location::Frozen {
                return location;
            }
            if !matches!(
                tokio::time::timeout_at(deadline, changes.changed()).await,
                Ok(Ok(()))
            ) {
                return Location::Frozen;
            }
        }
    }

    /// Where a message from this node for `key` goes.
    pub fn locate(&self, key: &EntityKey) -> Location {
        self.locate_shard(shard_of(key))
    }

    pub fn locate_shard(&self, shard: Shard) -> Location {
        Self::locate_in(&self.read(), &self.me, shard, true)
    }

    /// Where a message for `key` goes: `local` for one sent by this node, otherwise one
    /// that arrived from a peer.
    pub fn locate_from(&self, key: &EntityKey, local: bool) -> Location {
        Self::locate_in(&self.read(), &self.me, shard_of(key), local)
    }

    /// Runs `f` with the location of `key` while no move step can happen: a delivery or
    /// a send made in `f` comes before any export, hand-over or flush marker. `f` must
    /// not use the placement itself.
    pub fn route<R>(&self, key: &EntityKey, local: bool, f: impl FnOnce(Location) -> R) -> R {
        let state = self.read();
        f(Self::locate_in(&state, &self.me, shard_of(key), local))
    }

    /// [`Self::route`] for many keys at once: `f` gets a function that locates a key.
    pub fn route_all<R>(
        &self,
        local: bool,
        f: impl FnOnce(&dyn Fn(&EntityKey) -> Location) -> R,
    ) -> R {
        let state = self.read();
        let locate = |key: &EntityKey| Self::locate_in(&state, &self.me, shard_of(key), local);
        f(&locate)
    }

    fn locate_in(state: &State, me: &str, shard: Shard, local: bool) -> Location {
        match state.transit.get(&shard) {
            Some(Transit::Frozen(_)) => return Location::Frozen,
            // This node's own messages wait for its flush marker; what arrives is held
            // while importing and served once settling.
            Some(Transit::Importing { .. }) => return Location::Frozen,
            Some(Transit::Settling { .. }) if local => return Location::Frozen,
            Some(Transit::Settling { .. }) | Some(Transit::Acquiring) => return Location::Here,
            Some(Transit::Released(to)) => return Location::There(to.clone()),
            Some(Transit::Flushing { .. }) if local => return Location::Frozen,
            Some(Transit::Flushing { .. }) | None => {}
        }
        match &state.table {
            None => Location::Unplaced,
            Some(table) if table.owner(shard) == me => Location::Here,
            Some(table) => Location::There(table.owner(shard).to_owned()),
        }
    }

    /// Whether this node serves `key` now (a moving key is not served until it arrives).
    pub fn is_here(&self, key: &EntityKey) -> bool {
        self.locate_from(key, false) == Location::Here
    }

    pub fn table(&self) -> Option<Arc<ShardTable>> {
        self.read().table.clone()
    }

    /// Shards this node serves now or holds on the move.
    pub fn owned_shards(&self) -> BTreeSet<Shard> {
        let state = self.read();
        (0..SHARD_COUNT)
            .filter(|&s| {
                matches!(
                    Self::locate_in(&state, &self.me, s, false),
                    Location::Here | Location::Frozen
                )
            })
            .collect()
    }

    /// Installs `table` if it supersedes the current one (or there is none); returns
    /// what this node gained and lost, or `None` when the table was not newer. Moves
    /// under way stay as they are and end on their own. `flush` runs under the lock with
    /// the shards this node must flush (see [`TableChange::flush`]), so that no message
    /// of this node can slip between its routing switch and the markers; it returns the
    /// shards whose marker could not be sent, which are then routed directly.
    pub fn install(
        &self,
        table: ShardTable,
        flush: impl FnOnce(&BTreeMap<String, Vec<Shard>>) -> Vec<Shard>,
    ) -> Option<TableChange> {
        if !table.is_well_formed() {
            tracing::warn!(epoch = table.epoch, "malformed shard table ignored");
            return None;
        }
        let before = self.owned_shards();
        let mut moved: BTreeMap<String, Vec<Shard>> = BTreeMap::new();
        {
            let mut state = self.write();
            if let Some(current) = &state.table
                && !table.supersedes(current)
            {
                return None;
            }
            tracing::info!(
                epoch = table.epoch,
                origin = %table.origin.node,
                owned = table.shards_of(&self.me).len(),
                "shard table installed"
            );
            let previous = state.table.replace(Arc::new(table.clone()));
            // The table now says where moved shards live; moves under way go on.
            state.transit.retain(|_, t| {
                matches!(
                    t,
                    Transit::Frozen(_)
                        | Transit::Importing { .. }
                        | Transit::Settling { .. }
                        | Transit::Flushing { .. }
                )
            });
            if let Some(previous) = previous
                && previous.origin == table.origin
            {
                let now = Instant::now();
                for shard in 0..SHARD_COUNT {
                    let (old, new) = (previous.owner(shard), table.owner(shard));
                    if old != new && old != &*self.me && new != &*self.me {
                        state.transit.entry(shard).or_insert(Transit::Flushing {
                            own: Vec::new(),
                            since: now,
                            via: old.to_owned(),
                        });
                        moved.entry(old.to_owned()).or_default().push(shard);
                    }
                }
            }
            // A marker that could not be sent (the old owner is gone): go direct.
            for shard in flush(&moved) {
                if matches!(state.transit.get(&shard), Some(Transit::Flushing { .. })) {
                    state.transit.remove(&shard);
                }
            }
        }
        let after = self.owned_shards();
        Some(TableChange {
            gained: after.difference(&before).copied().collect(),
            lost: before.difference(&after).copied().collect(),
            flush: moved,
        })
    }

    /// The old owner starts holding everything for `shards` (their entities move).
    pub fn freeze(&self, shards: &[Shard]) {
        let mut state = self.write();
        for &s in shards {
            state.transit.insert(s, Transit::Frozen(Vec::new()));
        }
    }

    /// The new owner starts importing `shards`; `flush` runs under the lock to send this
    /// node's flush markers for them to the old owner (after its earlier messages).
    pub fn begin_import(&self, shards: &[Shard], flush: impl FnOnce()) {
        let mut state = self.write();
        for &s in shards {
            state.transit.insert(
                s,
                Transit::Importing {
                    held: Vec::new(),
                    own: Vec::new(),
                },
            );
        }
        flush();
    }

    /// Holds `body` if its shard is still moving: `local` for a message of this node's.
    pub fn hold(&self, shard: Shard, body: Envelope, local: bool) -> Hold {
        let mut state = self.write();
        let buffer = match state.transit.get_mut(&shard) {
            Some(Transit::Frozen(held)) => held,
            Some(Transit::Importing { own, .. }) if local => own,
            Some(Transit::Importing { held, .. }) => held,
            Some(Transit::Settling { own, .. } | Transit::Flushing { own, .. }) if local => own,
            _ => return Hold::Thawed(Box::new(body)),
        };
        if buffer.len() < MAX_BUFFERED_PER_SHARD {
            buffer.push(body);
            Hold::Kept
        } else {
            Hold::Full
        }
    }

    /// Ends the freeze of `shards` on the old owner (the move was undone); returns what
    /// was held, in order.
    pub fn thaw(&self, shards: &[Shard]) -> Vec<Envelope> {
        let mut state = self.write();
        let mut held = Vec::new();
        for s in shards {
            match state.transit.remove(s) {
                Some(Transit::Frozen(buffer)) => held.extend(buffer),
                Some(Transit::Importing { held: arrived, own }) => {
                    held.extend(arrived);
                    held.extend(own);
                }
                _ => {}
            }
        }
        held
    }

    /// The new owner ends its import of `shards` if nothing is held for them any more:
    /// it serves them from now on (its own messages still going through the old owner,
    /// see [`Self::flush_returned`]). Otherwise it returns what is held, and they stay
    /// importing: the caller delivers that and asks again, so nothing overtakes it.
    pub fn finish_import(&self, shards: &[Shard], from: &str) -> Option<Vec<Envelope>> {
        let mut state = self.write();
        let mut held = Vec::new();
        for s in shards {
            if let Some(Transit::Importing { held: buffer, .. }) = state.transit.get_mut(s) {
                held.append(buffer);
            }
        }
        if !held.is_empty() {
            return Some(held);
        }
        let now = Instant::now();
        for &s in shards {
            if let Some(Transit::Importing { own, .. }) = state.transit.remove(&s) {
                let settling = Transit::Settling {
                    own,
                    since: now,
                    via: from.to_owned(),
                };
                state.transit.insert(s, settling);
            }
        }
        None
    }

    /// Ends the wait for this node's flush marker for `shard` (it came back, or was
    /// acknowledged, or the wait timed out): `deliver` gets the messages this node held
    /// for it meanwhile, under the lock so that nothing newer overtakes them, and from
    /// then on messages go straight to the entity. Returns whether there was a wait.
    pub fn end_flush(&self, shard: Shard, deliver: impl FnOnce(Vec<Envelope>, &str)) -> bool {
        let mut state = self.write();
        let own = match state.transit.remove(&shard) {
            Some(Transit::Settling { own, .. }) => {
                state.transit.insert(shard, Transit::Acquiring);
                own
            }
            Some(Transit::Flushing { own, .. }) => own,
            Some(other) => {
                state.transit.insert(shard, other);
                return false;
            }
            None => return false,
        };
        let owner = state
            .table
            .as_ref()
            .map_or(String::new(), |t| t.owner(shard).to_owned());
        let owner = match state.transit.get(&shard) {
            Some(Transit::Acquiring) => self.me.to_string(),
            _ => owner,
        };
        deliver(own, &owner);
        true
    }

    /// Where a message from a peer for something in `shard` goes.
    pub fn locate_shard_inbound(&self, shard: Shard) -> Location {
        Self::locate_in(&self.read(), &self.me, shard, false)
    }

    /// Shards whose flush marker went through `node` (which is gone: the marker will
    /// not come back, so waiting for it only delays what is held).
    pub fn flushes_through(&self, node: &str) -> Vec<Shard> {
        self.read()
            .transit
            .iter()
            .filter(|(_, t)| match t {
                Transit::Settling { via, .. } | Transit::Flushing { via, .. } => via == node,
                _ => false,
            })
            .map(|(s, _)| *s)
            .collect()
    }

    /// Shards whose flush wait began longer than [`FLUSH_TIMEOUT`] ago, with the old
    /// owner their marker went through.
    pub fn overdue_flushes(&self) -> Vec<(Shard, String)> {
        self.read()
            .transit
            .iter()
            .filter_map(|(s, t)| match t {
                Transit::Settling { since, via, .. } | Transit::Flushing { since, via, .. }
                    if since.elapsed() >= FLUSH_TIMEOUT =>
                {
                    Some((*s, via.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Frozen `shards` now live on `to`: forwards from now on, and gives `send` what was
    /// held so far, in order. `send` runs under the lock, so a message forwarded by
    /// another thread right after cannot overtake what `send` sends.
    pub fn hand_over(&self, shards: &[Shard], to: &str, send: impl FnOnce(Vec<Envelope>)) {
        let mut state = self.write();
        let mut held = Vec::new();
        for &s in shards {
            if let Some(Transit::Frozen(buffer)) = state.transit.remove(&s) {
                held.extend(buffer);
            }
            state.transit.insert(s, Transit::Released(to.to_owned()));
        }
        send(held);
    }

    /// Serves `shards` here from now on (empty shards handed over by their old owner).
    pub fn acquire(&self, shards: &[Shard]) {
        let mut state = self.write();
        for &s in shards {
            state.transit.insert(s, Transit::Acquiring);
        }
    }

    /// Forwards `shards` to `to` from now on (empty shards given away).
    pub fn release(&self, shards: &[Shard], to: &str) {
        let mut state = self.write();
        for &s in shards {
            state.transit.insert(s, Transit::Released(to.to_owned()));
        }
    }

    /// How many messages moving shards hold now.
    pub fn held(&self) -> usize {
        self.read()
            .transit
            .values()
            .map(|t| match t {
                Transit::Frozen(b) => b.len(),
                Transit::Importing { held, own } => held.len() + own.len(),
                Transit::Settling { own, .. } | Transit::Flushing { own, .. } => own.len(),
                _ => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::shard::TableOrigin;

    fn table(nodes: &[&str]) -> ShardTable {
        let nodes: Vec<String> = nodes.iter().map(|s| s.to_string()).collect();
        ShardTable::deal(
            TableOrigin {
                started_ms: 1,
                node: "a".into(),
            },
            &nodes,
        )
    }

    #[test]
    fn a_shard_in_flight_is_served_by_its_new_owner_and_forwarded_by_the_old() {
        let a = Placement::new("a");
        let b = Placement::new("b");
        assert_eq!(a.locate(&EntityKey::Lobby), Location::Unplaced);
        let t = table(&["a"]);
        assert!(
            a.install(t.clone(), |_| Vec::new())
                .is_some_and(|c| c.gained.len() == 256)
        );
        b.install(t.clone(), |_| Vec::new());
        let key = EntityKey::User(5);
        let shard = shard_of(&key);
        assert_eq!(a.locate(&key), Location::Here);
        assert_eq!(b.locate(&key), Location::There("a".into()));

        b.acquire(&[shard]);
        a.release(&[shard], "b");
        assert_eq!(a.locate(&key), Location::There("b".into()));
        assert_eq!(b.locate(&key), Location::Here);

        let next = t.with_moves(&[(shard, "b".into())]);
        // Nothing changes for either: a stopped serving the shard when it released it,
        // b started when it acquired it.
        assert_eq!(
            a.install(next.clone(), |_| Vec::new()),
            Some(TableChange::default())
        );
        assert_eq!(
            b.install(next.clone(), |_| Vec::new()),
            Some(TableChange::default())
        );
        assert_eq!(a.locate(&key), Location::There("b".into()));
        // An old table is not installed again.
        assert!(a.install(t, |_| Vec::new()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_a_frozen_shard_ends_with_the_move_not_a_poll() {
        let a = Placement::new("a");
        a.install(table(&["a"]), |_| Vec::new());
        let key = EntityKey::User(5);
        let shard = shard_of(&key);
        a.freeze(&[shard]);
        assert_eq!(a.locate(&key), Location::Frozen);

        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let waiter = {
            let a = a.clone();
            let key = key.clone();
            tokio::spawn(async move { a.locate_settled(&key, deadline).await })
        };
        // Paused time: had the waiter polled on a timer, it would have seen the frozen
        // shard thousands of times by now; it sleeps until the placement changes.
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert!(!waiter.is_finished());
        let held = a.thaw(&[shard]);
        assert!(held.is_empty());
        assert_eq!(waiter.await.ok(), Some(Location::Here));

        // Still frozen at the deadline: it gives up then, frozen.
        a.freeze(&[shard]);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        assert_eq!(a.locate_settled(&key, deadline).await, Location::Frozen);
    }

    fn envelope(n: u8) -> Envelope {
        Envelope {
            from: "x".into(),
            hops: 0,
            body: crate::cluster::envelope::Body::Cast {
                key: EntityKey::User(5),
                session: None,
                payload: vec![n],
            },
        }
    }

    fn payload(e: &Envelope) -> u8 {
        match &e.body {
            crate::cluster::envelope::Body::Cast { payload, .. } => payload[0],
            _ => 0,
        }
    }

    #[test]
    fn a_live_move_holds_hands_over_and_flushes_in_order() {
        let (a, b, c) = (
            Placement::new("a"),
            Placement::new("b"),
            Placement::new("c"),
        );
        let t = table(&["a"]);
        for p in [&a, &b, &c] {
            p.install(t.clone(), |_| Vec::new());
        }
        let key = EntityKey::User(5);
        let shard = shard_of(&key);

        // 1. a freezes: everything for the shard is held there.
        a.freeze(&[shard]);
        assert_eq!(a.locate(&key), Location::Frozen);
        assert!(matches!(a.hold(shard, envelope(1), true), Hold::Kept));
        // 2. b imports: what arrives is held, and so are its own new messages (apart).
        let mut flushed = false;
        b.begin_import(&[shard], || flushed = true);
        assert!(flushed, "b sends its flush marker as it starts importing");
        assert_eq!(b.locate_from(&key, true), Location::Frozen);
        assert_eq!(b.locate_from(&key, false), Location::Frozen);
        assert!(matches!(b.hold(shard, envelope(3), false), Hold::Kept));
        assert!(matches!(b.hold(shard, envelope(9), true), Hold::Kept));
        // 3. a hands over what it held, and forwards from then on.
        let mut handed = Vec::new();
        a.hand_over(&[shard], "b", |held| handed = held);
        assert_eq!(handed.iter().map(payload).collect::<Vec<_>>(), [1]);
        assert_eq!(a.locate(&key), Location::There("b".into()));
        // b delivers what arrived until nothing is left, then serves what arrives; its
        // own messages wait for its marker.
        let held = b.finish_import(&[shard], "a").unwrap();
        assert_eq!(held.iter().map(payload).collect::<Vec<_>>(), [3]);
        assert!(b.finish_import(&[shard], "a").is_none());
        assert_eq!(b.locate_from(&key, false), Location::Here);
        assert_eq!(b.locate_from(&key, true), Location::Frozen);
        let mut own = Vec::new();
        assert!(b.end_flush(shard, |held, owner| {
            assert_eq!(owner, "b");
            own = held;
        }));
        assert_eq!(own.iter().map(payload).collect::<Vec<_>>(), [9]);
        assert_eq!(b.locate_from(&key, true), Location::Here);
        assert!(!b.end_flush(shard, |_, _| panic!("nothing waits any more")));

        // 4. c learns the new table: it holds its messages until b answers its marker.
        let next = t.with_moves(&[(shard, "b".into())]);
        let change = c
            .install(next.clone(), |moved| {
                assert_eq!(moved.get("a"), Some(&vec![shard]));
                Vec::new()
            })
            .unwrap();
        assert_eq!(change.flush.get("a"), Some(&vec![shard]));
        assert_eq!(c.locate(&key), Location::Frozen);
        assert!(matches!(c.hold(shard, envelope(7), true), Hold::Kept));
        let mut released = Vec::new();
        assert!(c.end_flush(shard, |held, owner| {
            assert_eq!(owner, "b");
            released = held;
        }));
        assert_eq!(released.iter().map(payload).collect::<Vec<_>>(), [7]);
        assert_eq!(c.locate(&key), Location::There("b".into()));
        // The owners themselves flush nothing.
        assert!(
            a.install(next.clone(), |_| Vec::new())
                .unwrap()
                .flush
                .is_empty()
        );
        assert!(
            b.install(next.clone(), |_| Vec::new())
                .unwrap()
                .flush
                .is_empty()
        );
        assert_eq!(b.locate(&key), Location::Here);

        // A marker that cannot be sent (the old owner is gone) means going direct.
        let d = Placement::new("d");
        d.install(t.clone(), |_| Vec::new());
        d.install(next, |moved| moved.values().flatten().copied().collect());
        assert_eq!(d.locate(&key), Location::There("b".into()));
    }
}
