//! Logs ractor_cluster's connection events in words an operator can act on. In
//! particular a peer with the wrong cookie shows up only as a connection that closed
//! before it authenticated.

use std::collections::HashSet;
use std::sync::Mutex;

use ractor_cluster::NodeEventSubscription;
use ractor_cluster::node::NodeServerSessionInformation;

#[derive(Debug, Default)]
pub struct ConnectionLog {
    /// Peer addresses of sessions that authenticated.
    authenticated: Mutex<HashSet<String>>,
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
            tracing::warn!(
                peer = %ses.peer_addr,
                "cluster connection refused before authentication: wrong cookie, or not a Peace node"
            );
        }
    }
}
