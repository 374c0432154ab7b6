//! The operator's cluster actions (drain a node, rebalance), as the gateway and the
//! CLI reach them. Any node accepts them and passes them to the coordinator, which is
//! the only node that changes the shard table.

use std::time::Duration;

use super::envelope::{Answer, Refusal, RequestBody};
use crate::World;

/// How many heartbeats a drained node stays up before it exits (see `drain_self`).
const DRAIN_LINGER_HEARTBEATS: u32 = 2;

/// How often a node waiting for its own drain says what it still holds.
const DRAIN_REPORT_EVERY: Duration = Duration::from_secs(5);

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
    /// to take its work (the last one of its cluster) stops at once, and so does one
    /// whose last such peer leaves while it waits.
    pub async fn drain_self(&self, limit: Duration) -> bool {
        if !self.config().cluster.roles.actors {
            return true;
        }
        let Some(heirs) = self.heirs() else {
            tracing::info!("no other node takes entities; stopping without a drain");
            return true;
        };
        tracing::info!(to = ?heirs, "draining before stopping");
        if let Err(e) = self.drain(self.node_name()).await {
            tracing::warn!("could not drain before stopping: {e}");
            return false;
        }
        let deadline = tokio::time::Instant::now() + limit;
        let mut next_report = tokio::time::Instant::now() + DRAIN_REPORT_EVERY;
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
            if self.heirs().is_none() {
                tracing::warn!(
                    shards = status.shards,
                    entities = status.entities.total(),
                    "the nodes that were to take over left; stopping without finishing the drain"
                );
                return false;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                tracing::warn!(
                    shards = status.shards,
                    entities = status.entities.total(),
                    "not drained in time; stopping anyway"
                );
                return false;
            }
            if now >= next_report {
                next_report = now + DRAIN_REPORT_EVERY;
                tracing::info!(
                    shards = status.shards,
                    entities = status.entities.total(),
                    left = ?deadline - now,
                    "waiting for this node's shards and entities to move away"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The peers that could take this node's entities: up, hosting entities, and not
    /// being drained themselves. `None` when there is none.
    fn heirs(&self) -> Option<Vec<String>> {
        let heirs: Vec<String> = self
            .cluster()
            .peers()
            .iter()
            .filter(|p| {
                p.state == super::PeerState::Up
                    && p.status
                        .as_ref()
                        .is_some_and(|s| s.roles.actors && !s.draining)
            })
            .map(|p| p.name.clone())
            .collect();
        (!heirs.is_empty()).then_some(heirs)
    }
}
