//! What a node tells the others about itself every heartbeat, and what the cluster API
//! shows.

use serde::{Deserialize, Serialize};

use super::shard::TableOrigin;

/// What a node does: serve HTTP (`gateway`), host entities (`actors`), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub gateway: bool,
    pub actors: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Self {
            gateway: true,
            actors: true,
        }
    }
}

/// Why a list of roles was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolesError {
    #[error("unknown role {0:?} (gateway, actors)")]
    Unknown(String),
    #[error("a node needs at least one role (gateway, actors)")]
    None,
}

impl Roles {
    /// Parses `gateway`, `actors` or both (comma-separated, any order).
    pub fn parse(list: &[String]) -> Result<Self, RolesError> {
        let mut roles = Roles {
            gateway: false,
            actors: false,
        };
        for role in list.iter().flat_map(|r| r.split(',')).map(str::trim) {
            match role {
                "gateway" => roles.gateway = true,
                "actors" => roles.actors = true,
                "" => {}
                other => return Err(RolesError::Unknown(other.to_owned())),
            }
        }
        if !roles.gateway && !roles.actors {
            return Err(RolesError::None);
        }
        Ok(roles)
    }

    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.gateway {
            names.push("gateway");
        }
        if self.actors {
            names.push("actors");
        }
        names
    }
}

/// Entities a node hosts, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityCounts {
    pub user: usize,
    pub channel: usize,
    pub spectate: usize,
    #[serde(rename = "match")]
    pub matches: usize,
    pub lobby: usize,
}

impl EntityCounts {
    pub fn total(&self) -> usize {
        self.user + self.channel + self.spectate + self.matches + self.lobby
    }
}

/// Cross-node traffic seen by one node since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficCounts {
    pub envelopes_sent: u64,
    pub envelopes_received: u64,
    pub requests_sent: u64,
    pub requests_received: u64,
    pub forwarded: u64,
    /// Documents or payloads that could not be read (logged).
    pub undecodable: u64,
    /// Messages dropped: no route, too many hops, peer gone.
    pub dropped: u64,
}

/// One node as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// Unix milliseconds of this process's start; a restarted node is a new incarnation.
    pub started_ms: i64,
    /// The address peers reach its cluster listener at (empty on a node of one).
    pub cluster_addr: String,
    /// The address of its HTTP listener, if it serves one.
    pub http_addr: Option<String>,
    pub roles: Roles,
    pub entities: EntityCounts,
    /// Shards the node owns in its table.
    pub shards: usize,
    pub table: Option<(TableOrigin, u64)>,
    pub traffic: TrafficCounts,
    /// Being drained: its entities move away and it gets no new ones.
    pub draining: bool,
    pub migrations: crate::migrate::MigrationStats,
    /// Messages held now for entities on the move.
    pub held: usize,
}
