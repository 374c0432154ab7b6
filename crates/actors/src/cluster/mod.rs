//! The cluster: nodes that find each other, agree on where every entity lives, and carry
//! messages for each other.
//!
//! * [`shard`]: the shard of each osu! key (the table is the runtime's).
//! * [`placement`]: this node's view of the table, with shards in flight.
//! * [`envelope`]: what travels between nodes (versioned bincode).
//! * [`node_router`]: the one remotable actor per node, where envelopes arrive.
//! * [`inbound`]: delivering what arrived, or forwarding it.
//! * [`net`]: sending to peers, and the traffic counters.
//! * [`membership`]: heartbeats, failure detection, reconnection, the coordinator.
//!
//! A node without a cluster listener is a cluster of one: it deals itself every shard
//! at start and never sends an envelope.

mod admin;
pub mod envelope;
pub(crate) mod inbound;
pub mod membership;
pub mod net;
pub mod node_router;
pub mod placement;
pub mod shard;
pub mod status;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

pub use admin::AdminError;
pub use net::Net;
pub use placement::{Location, Placement};
pub use status::{EntityCounts, NodeStatus, Roles, RolesError, TrafficCounts};

/// How a node takes part in its cluster (`cluster.toml`'s `[node]` and `[cluster]`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_name: String,
    /// Where the cluster listener binds; `None` runs a node of one.
    pub listen: Option<SocketAddr>,
    /// `host:port` that peers use to reach the listener (default: `listen`).
    pub advertise: Option<String>,
    /// Peers to connect to at start (`host:port`); the rest are found through them.
    pub seeds: Vec<String>,
    /// Shared secret: a peer with another cookie is refused.
    pub cookie: String,
    pub roles: Roles,
    /// How often nodes ask each other how they are.
    pub heartbeat: Duration,
    /// A node that has not answered for this long is down.
    pub down_after: Duration,
    /// How long a node with seeds waits to find its cluster before it deals itself a
    /// table of its own.
    pub join_grace: Duration,
    /// Most shards moved per heartbeat (to a new node, or off a draining one).
    pub rebalance_batch: usize,
    /// Even the load out by itself when nodes join; otherwise only on request.
    pub auto_rebalance: bool,
    /// The HTTP listener's address, reported to peers and in the API.
    pub http_addr: Option<String>,
    /// TLS between nodes; `None` for plain TCP (a private network).
    pub tls: Option<peace_sharding::tls::TlsFiles>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_name: "node-1".into(),
            listen: None,
            advertise: None,
            seeds: Vec::new(),
            cookie: String::new(),
            roles: Roles::default(),
            heartbeat: Duration::from_secs(1),
            down_after: Duration::from_secs(5),
            join_grace: Duration::from_secs(3),
            rebalance_batch: 64,
            auto_rebalance: true,
            http_addr: None,
            tls: None,
        }
    }
}

impl ClusterConfig {
    /// The address peers are told to use.
    pub fn advertised(&self) -> String {
        match (&self.advertise, self.listen) {
            (Some(a), _) => a.clone(),
            (None, Some(l)) => l.to_string(),
            (None, None) => String::new(),
        }
    }
}

/// What one node thinks of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Seen in the cluster, no heartbeat answered yet.
    Joining,
    Up,
    Down,
}

/// A peer in the cluster view.
#[derive(Debug, Clone)]
pub struct PeerReport {
    pub name: String,
    pub state: PeerState,
    pub status: Option<NodeStatus>,
}

#[derive(Debug, Default)]
struct View {
    peers: Vec<PeerReport>,
    coordinator: Option<String>,
}

/// The membership's latest view, for the API. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    view: Arc<RwLock<View>>,
}

impl ClusterView {
    pub(crate) fn set_view(&self, peers: Vec<PeerReport>, coordinator: Option<String>) {
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        view.peers = peers;
        view.coordinator = coordinator;
    }

    pub fn peers(&self) -> Vec<PeerReport> {
        self.view
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .peers
            .clone()
    }

    pub fn coordinator(&self) -> Option<String> {
        self.view
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .coordinator
            .clone()
    }
}
