//! Where an osu! entity lives: the shard of each [`EntityKey`]. The table and the hash
//! are the runtime's (`peace_sharding::shard`); what is osu!'s is the byte encoding of
//! each key and one rule: instance channels (`#spec_12`, `#mp_3`) hash like the room or
//! match they belong to, so that a room, a match and their chat live on the same node.

use peace_sharding::shard::shard_of_parts;
pub use peace_sharding::shard::{SHARD_COUNT, Shard, ShardKey, ShardTable, TableOrigin};

use crate::EntityKey;

/// The shard `key` lives in.
pub fn shard_of(key: &EntityKey) -> Shard {
    match key {
        EntityKey::User(id) => shard_of_parts(&[b"u", &id.to_le_bytes()]),
        EntityKey::Channel(name) => {
            if let Some(host) = crate::key::spectator_channel::host_of_channel(name) {
                return shard_of(&EntityKey::Spectate(host));
            }
            if let Some(id) = crate::key::match_channel::match_of_channel(name) {
                return shard_of(&EntityKey::Match(id));
            }
            shard_of_parts(&[b"c", name.as_bytes()])
        }
        EntityKey::Spectate(host) => shard_of_parts(&[b"s", &host.to_le_bytes()]),
        EntityKey::Match(id) => shard_of_parts(&[b"m", &id.to_le_bytes()]),
        EntityKey::Lobby => shard_of_parts(&[b"l"]),
        EntityKey::Board(b) => shard_of_parts(&[
            b"b",
            b.md5.as_bytes(),
            &b.mode.to_le_bytes(),
            &b.board.to_le_bytes(),
        ]),
    }
}

impl ShardKey for EntityKey {
    fn shard(&self) -> Shard {
        shard_of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_of_each_key_is_stable_across_builds() {
        // Part of the cluster's wire contract: nodes of different builds must agree.
        assert_eq!(shard_of(&EntityKey::User(1)), 0x81);
        assert_eq!(
            shard_of(&EntityKey::Channel("#osu".into())),
            shard_of_parts(&[b"c#osu"])
        );
        assert_eq!(shard_of(&EntityKey::Lobby), shard_of_parts(&[b"l"]));
    }

    #[test]
    fn instance_channels_live_with_their_room_or_match() {
        assert_eq!(
            shard_of(&EntityKey::Channel("#spec_42".into())),
            shard_of(&EntityKey::Spectate(42))
        );
        assert_eq!(
            shard_of(&EntityKey::Channel("#mp_7".into())),
            shard_of(&EntityKey::Match(7))
        );
    }

    #[test]
    fn users_spread_over_shards() {
        let mut seen = std::collections::HashSet::new();
        for id in 0..10_000 {
            seen.insert(shard_of(&EntityKey::User(id)));
        }
        assert_eq!(seen.len(), usize::from(SHARD_COUNT));
    }
}
