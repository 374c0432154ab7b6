//! The one message shape shared by every entity actor.
//!
//! An entity is told things (`Cast`) or asked things (`Call`). Both payloads are plain
//! serde types, so the router can carry them to another node as bytes; only the reply
//! port, which cannot cross a node, stays outside the payload.

use ractor::RpcReplyPort;

/// A message to an entity actor: `C` is what it can be told, `Q` what it can be asked,
/// `R` its answer.
#[derive(Debug)]
pub enum EntityMsg<C, Q, R> {
    Cast(C),
    Call(Q, RpcReplyPort<R>),
}
