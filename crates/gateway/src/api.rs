//! The JSON API for operators (`/api/v1/*`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// Liveness and database reachability. 200 when everything answers, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = state.world.check_database().await;
    let status = if database.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database.is_ok() { "ok" } else { "degraded" },
        "database": if database.is_ok() { "ok" } else { "unavailable" },
        "online": visible_online(&state).len(),
    });
    (status, Json(body))
}

/// `GET /livez`: the process answers. Nothing else is checked, so that a supervisor
/// restarts only a process that is really stuck.
pub async fn livez() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// `GET /readyz`: 200 when this node can serve a login (the database answers with this
/// build's schema, the node holds a shard table), 503 with the reasons otherwise. What a
/// load balancer should check before it sends players to a node.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let readiness = state.world.readiness().await;
    if readiness.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reasons": readiness.reasons })),
        )
    }
}

/// Everyone online whom players can see: the bot and restricted players are left out
/// (this API answers anyone, and restricted players are invisible to others).
pub(crate) fn visible_online(state: &AppState) -> Vec<peace_actors::directory::OnlineUser> {
    let mut users = state.world.online_users();
    users.retain(|u| !u.hidden);
    users
}

/// Everyone online (the bot and restricted players excluded).
pub async fn online_users(State(state): State<AppState>) -> Json<Value> {
    let users: Vec<Value> = visible_online(&state)
        .into_iter()
        .map(|u| json!({ "id": u.id, "name": &*u.name, "online_since": u.login_time }))
        .collect();
    Json(json!({ "count": users.len(), "users": users }))
}
