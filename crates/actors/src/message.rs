//! The one message shape shared by every entity actor.
//!
//! An entity is told things (`Cast`) or asked things (`Call`). Both payloads are plain
//! serde types, so the router can carry them to another node as bytes; only the reply
//! port, which cannot cross a node, stays outside the payload.

use peace_db::Privileges;
use serde::{Deserialize, Serialize};

/// Which sessions a broadcast reaches. A closure cannot cross nodes, so the filters are
/// named here and applied by each node to its own sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Audience {
    Everyone,
    /// Everyone but this user (their own presence change, say).
    AllBut(i32),
    /// Those whose privileges meet these (the readers of a channel; see
    /// `Privileges::meets`).
    WithPrivileges(Privileges),
}

impl Audience {
    pub fn includes(&self, user_id: i32, privileges: Privileges) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::AllBut(id) => *id != user_id,
            Audience::WithPrivileges(required) => privileges.meets(*required),
        }
    }
}

pub use peace_sharding::EntityMsg;

/// Puts `msg` in `actor`'s mailbox, counting it in the mailbox backlog of `kind`
/// (`peace_metrics`): before sending, so that the handler's decrement never comes first,
/// and taken back if the actor is gone. Every message to an entity actor goes through
/// here (or [`call_counted`]); each actor counts what it handles.
pub(crate) fn send_counted<C, Q, R, S>(
    actor: &ractor::ActorRef<EntityMsg<C, Q, R, S>>,
    kind: &'static str,
    msg: EntityMsg<C, Q, R, S>,
) -> Result<(), ractor::MessagingErr<EntityMsg<C, Q, R, S>>>
where
    EntityMsg<C, Q, R, S>: ractor::Message,
{
    peace_metrics::mailbox_sent(kind);
    actor
        .cast(msg)
        .inspect_err(|_| peace_metrics::mailbox_handled(kind))
}

/// Asks `actor` (a call built by `make`), counted like [`send_counted`].
pub(crate) async fn call_counted<C, Q, R, S, T>(
    actor: &ractor::ActorRef<EntityMsg<C, Q, R, S>>,
    kind: &'static str,
    make: impl FnOnce(ractor::RpcReplyPort<T>) -> EntityMsg<C, Q, R, S>,
    timeout: std::time::Duration,
) -> Result<ractor::rpc::CallResult<T>, ractor::MessagingErr<EntityMsg<C, Q, R, S>>>
where
    EntityMsg<C, Q, R, S>: ractor::Message,
    T: Send + 'static,
{
    peace_metrics::mailbox_sent(kind);
    actor
        .call(make, Some(timeout))
        .await
        .inspect_err(|_| peace_metrics::mailbox_handled(kind))
}
