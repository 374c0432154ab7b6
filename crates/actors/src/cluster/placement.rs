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

use super::shard::{SHARD_COUNT, Shard, ShardTable, shard_of};
use crate::EntityKey;

/// Where a key lives, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Here,
    There(String),
    /// No shard table yet: the node is still joining its cluster.
    Unplaced,
}

#[derive(Debug, Default)]
struct State {
    table: Option<Arc<ShardTable>>,
    /// Shards given away whose new table has not arrived: forwarded to the new owner.
    released: HashMap<Shard, String>,
    /// Shards being handed to this node whose table has not arrived: served here.
    acquiring: BTreeSet<Shard>,
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

    pub fn locate_shard(&self, shard: Shard) -> Location {
        let state = self.read();
        if state.acquiring.contains(&shard) {
            return Location::Here;
        }
        if let Some(to) = state.released.get(&shard) {
            return Location::There(to.clone());
        }
        match &state.table {
            None => Location::Unplaced,
            Some(table) if table.owner(shard) == &*self.me => Location::Here,
            Some(table) => Location::There(table.owner(shard).to_owned()),
        }
    }

    pub fn is_here(&self, key: &EntityKey) -> bool {
        self.locate(key) == Location::Here
    }

    pub fn table(&self) -> Option<Arc<ShardTable>> {
        self.read().table.clone()
    }

    /// Shards this node serves now.
    pub fn owned_shards(&self) -> BTreeSet<Shard> {
        (0..SHARD_COUNT)
            .filter(|&s| self.locate_shard(s) == Location::Here)
            .collect()
    }

    /// Installs `table` if it supersedes the current one (or there is none); returns
    /// what this node gained and lost, or `None` when the table was not newer.
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
            // The table now says where those shards live.
            state.released.clear();
            state.acquiring.clear();
        }
        let after = self.owned_shards();
        Some(TableChange {
            gained: after.difference(&before).copied().collect(),
            lost: before.difference(&after).copied().collect(),
        })
    }

    pub fn acquire(&self, shards: &[Shard]) {
        let mut state = self.write();
        for &s in shards {
            state.released.remove(&s);
            state.acquiring.insert(s);
        }
    }

    pub fn release(&self, shards: &[Shard], to: &str) {
        let mut state = self.write();
        for &s in shards {
            state.acquiring.remove(&s);
            state.released.insert(s, to.to_owned());
        }
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
