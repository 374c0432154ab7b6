//! Logs ractor_cluster's connection events in words an operator can act on. In
//! particular a peer with the wrong cookie shows up only as a connection that closed
//! before it authenticated.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ractor_cluster::NodeEventSubscription;
use ractor_cluster::node::NodeServerSessionInformation;

/// Connections closed before authenticating, in a row, after which a wrong cookie is
/// the likely cause. (One alone is usually the losing half of two nodes connecting to
/// each other at once, which ractor_cluster closes.)
const REFUSALS_BEFORE_WARNING: usize = 3;

#[derive(Debug, Default)]
pub struct ConnectionLog {
    /// Peer addresses of sessions that authenticated.
    authenticated: Mutex<HashSet<String>>,
    /// Connections closed before authenticating since the last one that authenticated.
    refusals: AtomicUsize,
}

impl ConnectionLog {
    fn authenticated(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.authenticated.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeEventSubscription for ConnectionLog {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        tracing::debug!(peer = %ses.peer_addr, incoming = ses.is_server, "cluster connection opened");
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let name = ses
            .peer_name
            .as_ref()
            .map(|n| n.name.clone())
            .unwrap_or_default();
        tracing::info!(peer = %ses.peer_addr, %name, "cluster connection authenticated");
        self.refusals.store(0, Ordering::Relaxed);
        self.authenticated().insert(ses.peer_addr);
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        if self.authenticated().remove(&ses.peer_addr) {
            let name = ses
                .peer_name
                .as_ref()
                .map(|n| n.name.clone())
                .unwrap_or_default();
            // Often a duplicate of a simultaneous connection that ractor_cluster closes;
            // a peer that is really gone is reported by the membership as down.
            tracing::info!(peer = %ses.peer_addr, %name, "cluster connection closed");
        } else {
            let refusals = self.refusals.fetch_add(1, Ordering::Relaxed) + 1;
            if refusals >= REFUSALS_BEFORE_WARNING && refusals % 20 == REFUSALS_BEFORE_WARNING % 20
            {
                tracing::warn!(
                    peer = %ses.peer_addr,
                    refusals,
                    "cluster connections refused before authentication: wrong cookie, or not a Peace node"
                );
            } else {
                tracing::debug!(peer = %ses.peer_addr, "cluster connection closed before authentication");
            }
        }
    }
}
