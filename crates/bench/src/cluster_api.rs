//! What the cluster scenarios read from Peace's cluster API (docs/cluster.md): which
//! node a gateway belongs to, which node hosts a session, a node's own counts, and the
//! admin calls (drain, rebalance). This is Peace's API, not the Bancho protocol: only
//! `cluster` and `migrate` use it, and only against a Peace cluster.

use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::http::{Conn, Target};

/// One node's HTTP gateway, named as the cluster names the node.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub node: String,
    pub target: Arc<Target>,
}

/// Parses `--gateways` (comma-separated base URLs) and asks each gateway which node it
/// belongs to.
pub async fn gateways(list: &str) -> anyhow::Result<Vec<Gateway>> {
    let mut gateways = Vec::new();
    for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let target = Target::parse(url).await?;
        let mut conn = Conn::open(&target).await?;
        let view = get_json(&mut conn, "/api/v1/cluster").await?;
        let node = view["node"]
            .as_str()
            .with_context(|| format!("{url}/api/v1/cluster names no node: {view}"))?
            .to_owned();
        gateways.push(Gateway { node, target });
    }
    if gateways.is_empty() {
        bail!("--gateways needs at least one URL");
    }
    Ok(gateways)
}

async fn get_json(conn: &mut Conn, path: &str) -> anyhow::Result<Value> {
    let reply = conn.get(path).await?;
    if reply.status != 200 {
        bail!(
            "GET {path}: HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    serde_json::from_slice(&reply.body).with_context(|| format!("GET {path}: not JSON"))
}

/// The node that hosts user `id`'s session.
pub async fn host_of_user(conn: &mut Conn, id: i32) -> anyhow::Result<String> {
    let found = get_json(conn, &format!("/api/v1/entities/user/{id}")).await?;
    found["node"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no node for user {id}: {found}"))
}

/// A node as it reports itself (the first entry of its own `/api/v1/cluster`, which is
/// live; what other nodes show of it is as old as their last heartbeat).
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub name: String,
    pub status: String,
    pub shards: u64,
    /// Entities by kind (`user`, `channel`, `spectate`, `match`, `lobby`).
    pub entities: Vec<(String, u64)>,
    /// The `migrations` object as the node reports it.
    pub migrations: Value,
    pub held_messages: u64,
    pub coordinator: Option<String>,
    /// Nodes up (or draining) in this node's view, itself included.
    pub nodes_up: usize,
}

impl NodeView {
    pub fn entities_total(&self) -> u64 {
        self.entities.iter().map(|(_, n)| n).sum()
    }

    /// A field of the migration figures (0 if the server does not report it).
    pub fn migration(&self, field: &str) -> u64 {
        self.migrations[field].as_u64().unwrap_or(0)
    }
}

/// What the node behind `conn` says of itself.
pub async fn self_view(conn: &mut Conn) -> anyhow::Result<NodeView> {
    let view = get_json(conn, "/api/v1/cluster").await?;
    let nodes = view["nodes"].as_array().cloned().unwrap_or_default();
    let me = nodes
        .first()
        .with_context(|| format!("/api/v1/cluster lists no nodes: {view}"))?;
    let entities = me["entities"]
        .as_object()
        .map(|e| {
            e.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Ok(NodeView {
        name: me["name"].as_str().unwrap_or_default().to_owned(),
        status: me["status"].as_str().unwrap_or_default().to_owned(),
        shards: me["shards"].as_u64().unwrap_or(0),
        entities,
        migrations: me["migrations"].clone(),
        held_messages: me["held_messages"].as_u64().unwrap_or(0),
        coordinator: view["coordinator"].as_str().map(str::to_owned),
        nodes_up: nodes
            .iter()
            .filter(|n| n["status"] == "up" || n["status"] == "draining")
            .count(),
    })
}

/// An admin call (`POST` with the bearer token); fails unless the node answers 200.
pub async fn admin_post(conn: &mut Conn, path: &str, token: &str) -> anyhow::Result<()> {
    let reply = conn.post_bearer(path, token).await?;
    if reply.status != 200 {
        bail!(
            "POST {path}: HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(())
}
