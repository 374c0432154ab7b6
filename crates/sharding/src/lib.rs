//! Peace's sharded-entity runtime. It knows nothing of osu!: an application defines its
//! entity kinds ([`Entity`]) and the runtime hosts, places and carries them.
//!
//! * [`entity`]: the one shape of every entity, and its message type.
//! * [`host`]: [`EntityHost`], the generic actor that hosts an entity of any kind.
//! * [`shard`]: key → shard → node, the table every node holds a copy of.
//! * [`wire`]: versioned documents between nodes, read with size limits.
//! * [`task`]: long-lived background tasks restarted after a panic.
//! * [`tls`]: optional mutual TLS between nodes.
//! * [`connection_log`]: ractor_cluster's connection events in an operator's words.
//!
//! Invariant: this crate depends on no `peace-*` crate, on no HTTP framework and on no
//! database; `.ci/run` checks it with `cargo tree`.

pub mod connection_log;
pub mod entity;
pub mod host;
pub mod shard;
pub mod task;
pub mod tls;
pub mod wire;

pub use entity::{AfterPanic, Entity, EntityMsg, Me, MsgOf};
pub use host::{EntityHost, HostArgs, Observer, STOPPED_AFTER_PANIC, Unobserved};
