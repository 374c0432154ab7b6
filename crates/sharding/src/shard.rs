//! Placement: every key hashes to one of [`SHARD_COUNT`] shards, and a [`ShardTable`]
//! that every node holds a copy of says which node owns each shard.
//!
//! The hash is computed over a byte encoding the key's kind writes out itself
//! ([`ShardKey`]), not over `std::hash`, whose output may change between compiler
//! versions: nodes running different builds must agree on where a key lives.

use serde::{Deserialize, Serialize};

/// Number of shards. Fixed for the life of a cluster: every node must use the same.
pub const SHARD_COUNT: u16 = 256;

/// A shard number, below [`SHARD_COUNT`].
pub type Shard = u16;

/// A key that lives in a shard. Implementations hash a stable byte encoding with
/// [`shard_of_parts`]; two keys that must live together (a room and its chat) may
/// return the same shard on purpose.
pub trait ShardKey {
    fn shard(&self) -> Shard;
}

/// FNV-1a, 64 bits: small, fast and stable, which is all a shard hash needs.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The shard of a key whose stable encoding is `parts`, concatenated (a kind tag first,
/// so that keys of different kinds spread independently).
pub fn shard_of_parts(parts: &[&[u8]]) -> Shard {
    // The remainder is below SHARD_COUNT, so it fits.
    (fnv1a(parts) % u64::from(SHARD_COUNT)) as Shard
}

/// Where a table came from: the node that first created it (its start time, then its
/// name). Two clusters that formed apart and then meet keep the older one's table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableOrigin {
    pub started_ms: i64,
    pub node: String,
}

/// Which node owns each shard. Changed only by the coordinator, one epoch at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTable {
    pub epoch: u64,
    pub origin: TableOrigin,
    /// Node names; `owners` holds indexes into it.
    nodes: Vec<String>,
    owners: Vec<u16>,
    /// Nodes being drained, with the start time of the incarnation that is: a restarted
    /// node is not draining any more.
    pub draining: std::collections::BTreeMap<String, i64>,
}

impl ShardTable {
    /// A first table with the shards dealt round-robin over `nodes` (which must not be
    /// empty).
    pub fn deal(origin: TableOrigin, nodes: &[String]) -> Self {
        let mut nodes: Vec<String> = nodes.to_vec();
        nodes.sort();
        nodes.dedup();
        let count = nodes.len().max(1);
        let owners = (0..SHARD_COUNT)
            .map(|s| (usize::from(s) % count) as u16)
            .collect();
        Self {
            epoch: 1,
            origin,
            nodes,
            owners,
            draining: Default::default(),
        }
    }

    /// Whether this table should replace `current`: a newer epoch of the same cluster,
    /// or any table of an older cluster.
    pub fn supersedes(&self, current: &ShardTable) -> bool {
        match self.origin.cmp(&current.origin) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Equal => self.epoch > current.epoch,
            std::cmp::Ordering::Greater => false,
        }
    }

    /// A table received from a peer is checked before use: it must have one owner per
    /// shard, each naming a listed node.
    pub fn is_well_formed(&self) -> bool {
        self.owners.len() == usize::from(SHARD_COUNT)
            && !self.nodes.is_empty()
            && self
                .owners
                .iter()
                .all(|&o| usize::from(o) < self.nodes.len())
    }

    pub fn owner(&self, shard: Shard) -> &str {
        self.owners
            .get(usize::from(shard))
            .and_then(|&i| self.nodes.get(usize::from(i)))
            .map_or("", String::as_str)
    }

    pub fn owner_of(&self, key: &impl ShardKey) -> &str {
        self.owner(key.shard())
    }

    /// The shards `node` owns.
    pub fn shards_of(&self, node: &str) -> Vec<Shard> {
        (0..SHARD_COUNT)
            .filter(|&s| self.owner(s) == node)
            .collect()
    }

    /// How many shards each listed node owns (nodes owning none are left out).
    pub fn load(&self) -> std::collections::BTreeMap<String, usize> {
        let mut load = std::collections::BTreeMap::new();
        for s in 0..SHARD_COUNT {
            *load.entry(self.owner(s).to_owned()).or_insert(0) += 1;
        }
        load
    }

    /// The next epoch of this table with `moves` applied (shard → new owner).
    pub fn with_moves(&self, moves: &[(Shard, String)]) -> ShardTable {
        let mut next = self.clone();
        next.epoch += 1;
        for (shard, node) in moves {
            let index = match next.nodes.iter().position(|n| n == node) {
                Some(i) => i,
                None => {
                    next.nodes.push(node.clone());
                    next.nodes.len() - 1
                }
            };
            if let Some(owner) = next.owners.get_mut(usize::from(*shard)) {
                *owner = index as u16;
            }
        }
        next.compact();
        next
    }

    /// The next epoch with a different set of draining nodes.
    pub fn with_draining(&self, draining: std::collections::BTreeMap<String, i64>) -> ShardTable {
        let mut next = self.clone();
        next.epoch += 1;
        next.draining = draining;
        next
    }

    /// Whether the incarnation of `node` that started at `started_ms` is draining.
    pub fn is_draining(&self, node: &str, started_ms: i64) -> bool {
        self.draining.get(node) == Some(&started_ms)
    }

    /// Drops node names that own nothing any more, so the table stays small.
    fn compact(&mut self) {
        let names: Vec<String> = (0..SHARD_COUNT).map(|s| self.owner(s).to_owned()).collect();
        let mut nodes: Vec<String> = names.clone();
        nodes.sort();
        nodes.dedup();
        self.owners = names
            .iter()
            .map(|n| nodes.iter().position(|m| m == n).unwrap_or(0) as u16)
            .collect();
        self.nodes = nodes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> TableOrigin {
        TableOrigin {
            started_ms: 1,
            node: "a".into(),
        }
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // These values are part of the cluster's wire contract: nodes of different
        // builds must agree on them. Changing the hash is a breaking change.
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(shard_of_parts(&[b"a"]), 0x8c);
        assert_eq!(fnv1a(&[b"foo", b"bar"]), fnv1a(&[b"foobar"]));
    }

    #[test]
    fn keys_spread_over_every_shard() {
        let mut seen = std::collections::HashSet::new();
        for id in 0..10_000i32 {
            seen.insert(shard_of_parts(&[b"u", &id.to_le_bytes()]));
        }
        assert_eq!(seen.len(), usize::from(SHARD_COUNT));
    }

    #[test]
    fn dealing_and_moving() {
        let t = ShardTable::deal(origin(), &["b".into(), "a".into(), "c".into()]);
        assert!(t.is_well_formed());
        let load = t.load();
        assert_eq!(load.len(), 3);
        assert!(load.values().all(|&n| (85..=86).contains(&n)));
        let moves: Vec<_> = t
            .shards_of("c")
            .into_iter()
            .map(|s| (s, "a".into()))
            .collect();
        let next = t.with_moves(&moves);
        assert_eq!(next.epoch, 2);
        assert!(next.is_well_formed());
        assert!(next.shards_of("c").is_empty());
        assert_eq!(next.nodes, ["a", "b"]);
        assert!(next.supersedes(&t) && !t.supersedes(&next));
        let moves = [(0, "d".to_owned())];
        assert_eq!(next.with_moves(&moves).owner(0), "d");
    }

    #[test]
    fn an_older_cluster_wins() {
        let old = ShardTable::deal(origin(), &["a".into()]);
        let mut young = ShardTable::deal(
            TableOrigin {
                started_ms: 5,
                node: "z".into(),
            },
            &["z".into()],
        );
        young.epoch = 99;
        assert!(old.supersedes(&young));
        assert!(!young.supersedes(&old));
    }

    #[test]
    fn malformed_tables_are_refused() {
        let mut t = ShardTable::deal(origin(), &["a".into()]);
        t.owners.pop();
        assert!(!t.is_well_formed());
        let mut t = ShardTable::deal(origin(), &["a".into()]);
        t.owners[3] = 9;
        assert!(!t.is_well_formed());
    }
}
