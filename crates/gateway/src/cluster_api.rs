//! The cluster part of the JSON API: which nodes there are, what each hosts, and where
//! an entity lives. Served by every node's gateway, from that node's view.

use axum::Json;
use axum::extract::{Path, State};
use peace_actors::EntityKey;
use peace_actors::cluster::{NodeStatus, PeerState};
use serde_json::{Value, json};

use crate::{ApiError, AppState};

fn node_json(status: &NodeStatus, state: &str) -> Value {
    let e = &status.entities;
    json!({
        "name": status.name,
        "status": state,
        "roles": status.roles.names(),
        "http_addr": status.http_addr,
        "cluster_addr": status.cluster_addr,
        "started_ms": status.started_ms,
        "shards": status.shards,
        "entities": {
            "user": e.user,
            "channel": e.channel,
            "spectate": e.spectate,
            "match": e.matches,
            "lobby": e.lobby,
        },
        "table_epoch": status.table.as_ref().map(|(_, epoch)| epoch),
        "traffic": status.traffic,
    })
}

/// `GET /api/v1/cluster`: every node this one knows, itself first.
pub async fn cluster(State(state): State<AppState>) -> Json<Value> {
    let world = &state.world;
    let me = world.node_status();
    let view = world.cluster();
    let mut nodes = vec![node_json(&me, "up")];
    for peer in view.peers() {
        let label = match peer.state {
            PeerState::Up => "up",
            PeerState::Joining => "joining",
            PeerState::Down => "down",
        };
        match &peer.status {
            Some(status) => nodes.push(node_json(status, label)),
            None => nodes.push(json!({ "name": peer.name, "status": label })),
        }
    }
    Json(json!({
        "node": me.name,
        "coordinator": view.coordinator(),
        "table_epoch": me.table.as_ref().map(|(_, epoch)| epoch),
        "online": world.online_users().len(),
        "nodes": nodes,
    }))
}

/// Longest key accepted in `/api/v1/entities/{kind}/{key}`.
const MAX_KEY_LEN: usize = 64;

/// `GET /api/v1/entities/{kind}/{key}`: the node that hosts an entity.
pub async fn entity(
    State(state): State<AppState>,
    Path((kind, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::BadRequest("key too long".into()));
    }
    let number = || {
        key.parse::<i32>()
            .map_err(|_| ApiError::BadRequest(format!("{kind} keys are numbers")))
    };
    let entity = match kind.as_str() {
        "user" => EntityKey::User(number()?),
        "spectate" => EntityKey::Spectate(number()?),
        "match" => EntityKey::Match(number()?),
        // Channel names are given without their '#', which URLs would treat as a fragment.
        "channel" => EntityKey::Channel(format!("#{}", key.trim_start_matches('#'))),
        "lobby" => EntityKey::Lobby,
        _ => {
            return Err(ApiError::BadRequest(
                "kind is one of user, channel, spectate, match, lobby".into(),
            ));
        }
    };
    let node = state
        .world
        .locate(&entity)
        .ok_or_else(|| ApiError::Unavailable("this node has no shard table yet".into()))?;
    Ok(Json(json!({
        "kind": entity.kind(),
        "key": key,
        "shard": peace_actors::shard_of_key(&entity),
        "node": node,
    })))
}
