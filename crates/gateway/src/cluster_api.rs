//! The cluster part of the JSON API: which nodes there are, what each hosts, and where
//! an entity lives. Served by every node's gateway, from that node's view.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use peace_actors::EntityKey;
use peace_actors::cluster::{NodeStatus, PeerState};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

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
        "migrations": status.migrations,
        "held_messages": status.held,
    })
}

/// `GET /api/v1/cluster`: every node this one knows, itself first.
pub async fn cluster(State(state): State<AppState>) -> Json<Value> {
    let world = &state.world;
    let me = world.node_status();
    let view = world.cluster();
    // A node without a shard table refuses every login: "joining" until it has one.
    let label = if me.table.is_none() {
        "joining"
    } else if me.draining {
        "draining"
    } else {
        "up"
    };
    let mut nodes = vec![node_json(&me, label)];
    for peer in view.peers() {
        let label = match peer.state {
            PeerState::Up => "up",
            PeerState::Joining => "joining",
            PeerState::Down => "down",
        };
        match &peer.status {
            Some(status) if status.draining && peer.state == PeerState::Up => {
                nodes.push(node_json(status, "draining"))
            }
            Some(status) => nodes.push(node_json(status, label)),
            // Not heard from yet (or never): it hosts nothing this node knows of. The
            // same shape as the others, so that tools need no special case.
            None => nodes.push(json!({
                "name": peer.name,
                "status": label,
                "shards": 0,
                "entities": {"user": 0, "channel": 0, "spectate": 0, "match": 0, "lobby": 0},
            })),
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
        "board" => EntityKey::Board(board_key(&key)?),
        _ => return Err(unknown_kind()),
    };
    locate(&state, entity, &key)
}

/// `GET /api/v1/entities/{kind}`: the node that hosts an entity of which there is only one
/// (the lobby).
pub async fn keyless_entity(
    State(state): State<AppState>,
    Path(kind): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match kind.as_str() {
        "lobby" => locate(&state, EntityKey::Lobby, ""),
        "user" | "spectate" | "match" | "channel" | "board" => Err(ApiError::BadRequest(format!(
            "{kind} needs a key: /api/v1/entities/{kind}/<key>"
        ))),
        _ => Err(unknown_kind()),
    }
}

/// A board's key as the API writes it: `<md5>.<mode>.<board>` (board 0 vanilla, 1 relax,
/// 2 autopilot).
fn board_key(key: &str) -> Result<peace_actors::BoardKey, ApiError> {
    let bad = || ApiError::BadRequest("board keys are <md5>.<mode>.<board>".into());
    let mut parts = key.split('.');
    let (Some(md5), Some(mode), Some(board), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok(peace_actors::BoardKey {
        md5: md5.to_ascii_lowercase(),
        mode: mode.parse().map_err(|_| bad())?,
        board: board.parse().map_err(|_| bad())?,
    })
}

fn unknown_kind() -> ApiError {
    ApiError::BadRequest("kind is one of user, channel, spectate, match, lobby, board".into())
}

/// Where `entity` lives, as this node sees it.
fn locate(state: &AppState, entity: EntityKey, key: &str) -> Result<Json<Value>, ApiError> {
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

/// The admin token check: the `Authorization: Bearer` header against the configured
/// token. Their SHA-256 digests are compared in constant time, so that neither how much
/// of the token matched nor its length shows in the timing.
pub(crate) fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    use sha2::{Digest, Sha256};
    let configured = state.config.admin_token.as_bytes();
    if configured.is_empty() {
        return Err(ApiError::AdminDisabled);
    }
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default()
        .as_bytes();
    let (given, configured) = (Sha256::digest(given), Sha256::digest(configured));
    if bool::from(given.as_slice().ct_eq(configured.as_slice())) {
        Ok(())
    } else {
        tracing::warn!("admin call with a missing or wrong token refused");
        Err(ApiError::Unauthorized)
    }
}

/// `POST /api/v1/cluster/rebalance` (admin): ends every drain and evens the load out.
pub async fn rebalance(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    state.world.request_rebalance().await?;
    Ok(Json(json!({ "rebalancing": true })))
}

/// `POST /api/v1/cluster/nodes/{name}/drain` (admin): moves everything off a node.
pub async fn drain(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    if name.len() > MAX_KEY_LEN {
        return Err(ApiError::BadRequest("node name too long".into()));
    }
    state.world.drain(&name).await?;
    Ok(Json(json!({ "draining": name })))
}
