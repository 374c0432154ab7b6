//! What travels between nodes. Every message is a versioned bincode document sent
//! router → router: an [`Envelope`] when nothing is awaited, a [`Request`] answered by
//! an [`Answer`] when something is.
//!
//! Entity payloads (a `UserCast`, a `ChannelCall`…) are encoded on their own and carried
//! as bytes, so that a router can forward an envelope without understanding it, and a
//! payload it cannot read is told apart from an envelope it cannot read.
//!
//! The framing (a format version first, size limits) is the runtime's
//! (`peace_sharding::wire`).

use bytes::Bytes;
pub use peace_sharding::wire::{
    MAX_DOCUMENT_BYTES, MAX_HOPS, WIRE_VERSION, WireError, decode, decode_payload, encode,
    encode_payload,
};
use serde::{Deserialize, Serialize};

use super::shard::{Shard, ShardTable};
use super::status::NodeStatus;
use crate::EntityKey;
use crate::directory::DirectoryEvent;
use crate::router::Audience;
use crate::spawn::{SpawnReply, SpawnRequest};

/// A one-way message to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending node's name (for logs and metrics).
    pub from: String,
    /// Times forwarded so far.
    pub hops: u8,
    pub body: Body,
}

/// What an envelope carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Body {
    /// To one entity; `session` narrows a user cast to one session.
    Cast {
        key: EntityKey,
        session: Option<u64>,
        payload: Vec<u8>,
    },
    /// The same `UserCast` to many users who live on the receiving node (fan-out costs
    /// one envelope per node, not one per member).
    CastUsers {
        user_ids: Vec<i32>,
        payload: Vec<u8>,
    },
    /// A `UserCast` to every session of the receiving node in `audience`.
    Broadcast {
        audience: Audience,
        payload: Vec<u8>,
    },
    /// To every entity of one kind on the receiving node (the clean-up after a failed
    /// session, which may have been anywhere).
    BroadcastKind { kind: String, payload: Vec<u8> },
    /// A change to the online-user directory of the sending node's players.
    Directory(DirectoryEvent),
    /// Asks the receiver to send its directory entries (the sender lost them).
    SyncRequest,
    /// The old owner of `shards` to the new one, after the entities were imported:
    /// what it held for them while they moved, in order. The new owner delivers these
    /// before anything it held itself.
    Handoff {
        shards: Vec<Shard>,
        held: Vec<Envelope>,
    },
    /// A new shard table from the coordinator.
    Table(ShardTable),
    /// A flush marker: `origin` sent everything it had for `shard` before this; it goes
    /// through the shard's old owner to the new one (see `Placement`).
    Flush { shard: Shard, origin: String },
    /// The new owner got the flush marker of the receiving node for `shard`.
    FlushAck { shard: Shard },
    /// A channel's member count changed (an encoded CHANNEL_INFO, for those whose
    /// privileges meet `required`); every node keeps the latest on its board.
    MemberCount {
        channel: String,
        required: peace_db::Privileges,
        packet: Bytes,
    },
    /// [`Body::CastUsers`] to particular sessions of users who live on the receiving
    /// node (spectators, match watchers). Appended: the variants before it keep their
    /// encoding.
    CastSessions {
        sessions: Vec<(i32, u64)>,
        payload: Vec<u8>,
    },
}

/// A message to a node that is answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub from: String,
    pub hops: u8,
    pub body: RequestBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RequestBody {
    /// A call to one entity; answered with [`Answer::Reply`].
    Call {
        key: EntityKey,
        session: Option<u64>,
        payload: Vec<u8>,
    },
    /// A client's poll: the raw packets from the HTTP body, for the session's node to
    /// decode. Answered with [`Answer::Packets`].
    Poll {
        user_id: i32,
        session_id: u64,
        body: Bytes,
    },
    /// Start an entity on the node that owns its key.
    Spawn(SpawnRequest),
    /// The node's health, load and table epoch (the heartbeat).
    Status,
    /// The node's current shard table.
    Table,
    /// The coordinator is about to hand these shards to the receiving node.
    Acquire { shards: Vec<Shard> },
    /// The coordinator asks the receiving node to give up to `limit` of these shards to
    /// `to`; answered with the ones it gave (today: those holding no entity).
    Release {
        shards: Vec<Shard>,
        to: String,
        limit: u16,
    },
    /// The old owner of `shards` hands their entities over: versioned snapshots (see
    /// `crate::snapshot`). The shards stay frozen on the new owner until the
    /// [`Body::Handoff`] arrives.
    Import {
        shards: Vec<Shard>,
        snapshots: Vec<Vec<u8>>,
    },
    /// To the coordinator: move everything off `node`.
    Drain { node: String },
    /// To the coordinator: give every node work again (drained ones included).
    Rebalance,
    /// The cluster addresses of the nodes the receiver is connected to; answered with
    /// [`Answer::Peers`]. (Appended last: older nodes refuse it as undecodable.)
    Peers,
}

/// Why a request could not be carried out (the remote side of a `RouteError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    NotFound,
    Stopped,
    Timeout,
    /// The node has no shard table yet (it is still joining).
    NotPlaced,
    TooManyHops,
    /// The request or its payload could not be read.
    Undecodable(String),
    /// The request was understood and could not be carried out.
    Failed(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Answer {
    Reply(Vec<u8>),
    Packets(Bytes),
    Spawned(SpawnReply),
    Status(Box<NodeStatus>),
    Table(Option<ShardTable>),
    Released(Vec<Shard>),
    Done,
    Refused(Refusal),
    Peers(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_carry_their_version() {
        let envelope = Envelope {
            from: "node-1".into(),
            hops: 0,
            body: Body::Cast {
                key: EntityKey::Channel("#osu".into()),
                session: Some(7),
                payload: vec![1, 2, 3],
            },
        };
        let bytes = encode(&envelope).unwrap();
        let back: Envelope = decode(&bytes).unwrap();
        assert!(matches!(
            back.body,
            Body::Cast {
                session: Some(7),
                ..
            }
        ));

        let mut newer = bytes.clone();
        newer[0] = 2;
        assert_eq!(
            decode::<Envelope>(&newer).unwrap_err(),
            WireError::Version(2)
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<Envelope>(&trailing),
            Err(WireError::Decode(_))
        ));
        assert!(decode::<Envelope>(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode::<Envelope>(&[]).is_err());
    }
}
