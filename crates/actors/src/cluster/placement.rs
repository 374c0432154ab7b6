//! This node's view of where every key lives: its copy of the shard table, plus the
//! shards in flight while the coordinator moves them.
//!
//! A shard moves in three steps. The old owner, asked by the coordinator, tells the new
//! owner it is *acquiring* the shard (from then on the new owner serves it), then marks
//! it *released* (from then on it forwards everything for it to the new owner), and the
//! coordinator publishes the next table, which every node installs. Messages in flight
//! are therefore forwarded, never dropped, and never bounce between two nodes that
//! disagree: by the time the old owner forwards, the new owner already serves.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use super::envelope::Envelope;
use super::shard::{SHARD_COUNT, Shard, ShardTable, shard_of};
use crate::EntityKey;

/// Most messages held for one frozen shard; beyond it they are dropped (and counted).
pub const MAX_BUFFERED_PER_SHARD: usize = 50_000;

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
    /// Its entities are being exported (old owner) or imported (new owner); messages
    /// for it wait here, in arrival order.
    Frozen(Vec<Envelope>),
    /// Given away; the new table has not arrived: forwarded to the new owner.
    Released(String),
    /// Handed to this node; the new table has not arrived: served here.
    Acquiring,
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
}

/// The placement view of one node. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Placement {
    me: Arc<str>,
    state: Arc<RwLock<State>>,
}

impl Placement {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.into(),
            state: Arc::default(),
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
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn locate(&self, key: &EntityKey) -> Location {
        self.locate_shard(shard_of(key))
    }

    /// Runs `f` with the location of `key` while no move can start: a delivery made in
    /// `f` reaches the entity's mailbox before any export does. `f` must not use the
    /// placement itself.
    pub fn route<R>(&self, key: &EntityKey, f: impl FnOnce(Location) -> R) -> R {
        let state = self.read();
        f(Self::locate_in(&state, &self.me, shard_of(key)))
    }

    /// [`Self::route`] for many keys at once: `f` gets a function that locates a key.
    pub fn route_all<R>(&self, f: impl FnOnce(&dyn Fn(&EntityKey) -> Location) -> R) -> R {
        let state = self.read();
        let locate = |key: &EntityKey| Self::locate_in(&state, &self.me, shard_of(key));
        f(&locate)
    }

    /// Ends the freeze of `shards` only if nothing is held for them any more; otherwise
    /// returns what is held (and they stay frozen). A new owner drains its holds with
    /// this until none are left, so nothing overtakes what was held.
    pub fn thaw_if_drained(&self, shards: &[Shard]) -> Option<Vec<Envelope>> {
        let mut state = self.write();
        let mut held = Vec::new();
        for s in shards {
            if let Some(Transit::Frozen(buffer)) = state.transit.get_mut(s) {
                held.append(buffer);
            }
        }
        if !held.is_empty() {
            return Some(held);
        }
        for &s in shards {
            if matches!(state.transit.get(&s), Some(Transit::Frozen(_))) {
                state.transit.insert(s, Transit::Acquiring);
            }
        }
        None
    }

    pub fn locate_shard(&self, shard: Shard) -> Location {
        Self::locate_in(&self.read(), &self.me, shard)
    }

    fn locate_in(state: &State, me: &str, shard: Shard) -> Location {
        match state.transit.get(&shard) {
            Some(Transit::Frozen(_)) => return Location::Frozen,
            Some(Transit::Released(to)) => return Location::There(to.clone()),
            Some(Transit::Acquiring) => return Location::Here,
            None => {}
        }
        match &state.table {
            None => Location::Unplaced,
            Some(table) if table.owner(shard) == me => Location::Here,
            Some(table) => Location::There(table.owner(shard).to_owned()),
        }
    }

    /// Whether this node serves `key` now (a frozen key is not served until it thaws).
    pub fn is_here(&self, key: &EntityKey) -> bool {
        self.locate(key) == Location::Here
    }

    pub fn table(&self) -> Option<Arc<ShardTable>> {
        self.read().table.clone()
    }

    /// Shards this node serves now or holds frozen.
    pub fn owned_shards(&self) -> BTreeSet<Shard> {
        let state = self.read();
        (0..SHARD_COUNT)
            .filter(|&s| {
                matches!(
                    Self::locate_in(&state, &self.me, s),
                    Location::Here | Location::Frozen
                )
            })
            .collect()
    }

    /// Installs `table` if it supersedes the current one (or there is none); returns
    /// what this node gained and lost, or `None` when the table was not newer. Frozen
    /// shards stay frozen: their move is under way and ends on its own.
    pub fn install(&self, table: ShardTable) -> Option<TableChange> {
        if !table.is_well_formed() {
            tracing::warn!(epoch = table.epoch, "malformed shard table ignored");
            return None;
        }
        let before = self.owned_shards();
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
            state.table = Some(Arc::new(table));
            // The table now says where moved shards live.
            state.transit.retain(|_, t| matches!(t, Transit::Frozen(_)));
        }
        let after = self.owned_shards();
        Some(TableChange {
            gained: after.difference(&before).copied().collect(),
            lost: before.difference(&after).copied().collect(),
        })
    }

    /// Starts holding messages for `shards` (their entities are about to move).
    pub fn freeze(&self, shards: &[Shard]) {
        let mut state = self.write();
        for &s in shards {
            state.transit.insert(s, Transit::Frozen(Vec::new()));
        }
    }

    /// Holds `body` if its shard is still frozen.
    pub fn hold(&self, shard: Shard, body: Envelope) -> Hold {
        let mut state = self.write();
        match state.transit.get_mut(&shard) {
            Some(Transit::Frozen(buffer)) if buffer.len() < MAX_BUFFERED_PER_SHARD => {
                buffer.push(body);
                Hold::Kept
            }
            Some(Transit::Frozen(_)) => Hold::Full,
            _ => Hold::Thawed(Box::new(body)),
        }
    }

    /// Ends the freeze of `shards` here (the move was aborted, or this node imported
    /// them); returns what was held, in order.
    pub fn thaw(&self, shards: &[Shard], acquired: bool) -> Vec<Envelope> {
        let mut state = self.write();
        let mut held = Vec::new();
        for s in shards {
            if let Some(Transit::Frozen(buffer)) = state.transit.remove(s) {
                held.extend(buffer);
            }
            if acquired {
                state.transit.insert(*s, Transit::Acquiring);
            }
        }
        held
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

    /// How many messages frozen shards hold now.
    pub fn held(&self) -> usize {
        self.read()
            .transit
            .values()
            .map(|t| match t {
                Transit::Frozen(b) => b.len(),
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
        assert!(a.install(t.clone()).is_some_and(|c| c.gained.len() == 256));
        b.install(t.clone());
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
        assert_eq!(a.install(next.clone()), Some(TableChange::default()));
        assert_eq!(b.install(next.clone()), Some(TableChange::default()));
        assert_eq!(a.locate(&key), Location::There("b".into()));
        // An old table is not installed again.
        assert!(a.install(t).is_none());
    }
}
