//! The JSON API for operators (`/api/v1/*`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// Liveness and database reachability. 200 when everything answers, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = state.world.db().ping().await;
    let status = if database.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if database.is_ok() { "ok" } else { "degraded" },
        "database": if database.is_ok() { "ok" } else { "unavailable" },
        "online": state.world.online_users().len(),
    });
    (status, Json(body))
}

/// Everyone online (the bot excluded).
pub async fn online_users(State(state): State<AppState>) -> Json<Value> {
    let users: Vec<Value> = state
        .world
        .online_users()
        .into_iter()
        .map(|u| json!({ "id": u.id, "name": &*u.name, "online_since": u.login_time }))
        .collect();
    Json(json!({ "count": users.len(), "users": users }))
}
