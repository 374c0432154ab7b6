//! The operator's cluster actions (drain a node, rebalance), as the gateway and the
//! CLI reach them. Any node accepts them and passes them to the coordinator, which is
//! the only node that changes the shard table.

use std::time::Duration;

use super::envelope::{Answer, Refusal, RequestBody};
use crate::World;

/// How many heartbeats a drained node stays up before it exits (see `drain_self`).
const DRAIN_LINGER_HEARTBEATS: u32 = 2;

/// Why a drain or a rebalance was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("the cluster has no coordinator yet")]
    NoCoordinator,
    #[error("this node is not the coordinator")]
    NotCoordinator,
    #[error("no shard table yet")]
    NoTable,
    #[error("no node {0} is up")]
    NoSuchNode(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The coordinator (another node) refused, or could not be asked.
    #[error("the coordinator {node}: {reason}")]
    Coordinator { node: String, reason: String },
    #[error("the membership did not answer: {0}")]
    Membership(String),
}

impl World {
    /// Drains `node`: everything it hosts moves to other nodes, and it gets no new
    /// work until it restarts or a rebalance.
    pub async fn drain(&self, node: &str) -> Result<(), AdminError> {
        self.ask_coordinator(RequestBody::Drain {
            node: node.to_owned(),
        })
        .await
    }

    /// Ends every drain and evens the load out over the nodes.
    pub async fn request_rebalance(&self) -> Result<(), AdminError> {
        self.ask_coordinator(RequestBody::Rebalance).await
    }

    async fn ask_coordinator(&self, body: RequestBody) -> Result<(), AdminError> {
        let coordinator = self
            .cluster()
            .coordinator()
            .ok_or(AdminError::NoCoordinator)?;
        if coordinator == self.node_name() {
            return match body {
                RequestBody::Drain { node } => self.drain_node(&node).await,
                _ => self.rebalance().await,
            };
        }
        let timeout = self.config().call_timeout;
        let refused = |reason| AdminError::Coordinator {
            node: coordinator.clone(),
            reason,
        };
        match self.router().net().ask(&coordinator, body, timeout).await {
            Ok(Answer::Done) => Ok(()),
            Ok(Answer::Refused(Refusal::Failed(why))) => Err(refused(why)),
            Ok(other) => Err(refused(format!("answered {other:?}"))),
            Err(e) => Err(refused(e.to_string())),
        }
    }

    /// The coordinator's side of a drain request.
    pub(crate) async fn drain_node(&self, node: &str) -> Result<(), AdminError> {
        let membership = self.membership().ok_or(AdminError::ShuttingDown)?;
        let node = node.to_owned();
        ractor::call_t!(
            membership,
            super::membership::MembershipMsg::Drain,
            5_000,
            node
        )
        .map_err(|e| AdminError::Membership(e.to_string()))?
    }

    /// The coordinator's side of a rebalance request.
    pub(crate) async fn rebalance(&self) -> Result<(), AdminError> {
        let membership = self.membership().ok_or(AdminError::ShuttingDown)?;
        ractor::call_t!(
            membership,
            super::membership::MembershipMsg::Rebalance,
            5_000
        )
        .map_err(|e| AdminError::Membership(e.to_string()))?
    }

    /// Drains this node before it stops (SIGTERM): asks for the drain and waits, at most
    /// `limit`, until it hosts nothing. Returns whether it emptied; a node with no peer
    /// to take its work stops at once.
    pub async fn drain_self(&self, limit: Duration) -> bool {
        let others = self.cluster().peers().iter().any(|p| {
            p.state == super::PeerState::Up && p.status.as_ref().is_some_and(|s| s.roles.actors)
        });
        if !self.config().cluster.roles.actors || !others {
            return true;
        }
        if let Err(e) = self.drain(self.node_name()).await {
            tracing::warn!("could not drain before stopping: {e}");
            return false;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.node_status();
            if status.shards == 0 && status.entities.total() == 0 {
                // The peers learn the last moves from the coordinator's table and send
                // their flush markers through this node, which passes them on to the
                // new owners: stay a moment for them, or the peers hold their messages
                // for the moved shards until they see this node go down.
                let linger = self.config().cluster.heartbeat * DRAIN_LINGER_HEARTBEATS;
                tracing::info!(
                    ?linger,
                    "drained; stopping after passing on the last flush markers"
                );
                tokio::time::sleep(linger).await;
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    shards = status.shards,
                    entities = status.entities.total(),
                    "not drained in time; stopping anyway"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
