//! The osu! web endpoints (`osu.<domain>/web/*`) that a client calls around login.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde::Deserialize;

use crate::{ApiError, AppState};

/// `GET /`: tells a person with a browser what this is.
pub async fn index(State(state): State<AppState>) -> impl IntoResponse {
    format!(
        "Peace osu! server ({} online). Point your client at it with -devserver {}.\n",
        crate::api::visible_online(&state).len(),
        if state.config.domain.is_empty() {
            "<domain>"
        } else {
            &state.config.domain
        }
    )
}

/// `GET /.well-known/acme-challenge/{token}`: the key authorization of an open ACME order
/// (RFC 8555, section 8.3), so that the ACME server sees this server controls the name.
pub async fn acme_challenge(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> axum::response::Response {
    match state.acme_challenges.answer(&token) {
        Some(answer) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            answer,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Called before every login. A body containing "verify" would abort the login; an
/// empty 200 lets it go ahead.
pub async fn bancho_connect() -> impl IntoResponse {
    StatusCode::OK
}

/// The updater's question (`check-updates.php?action=check&stream=…`): no files to
/// update. Players update their client from ppy's servers; this server has no builds.
pub async fn check_updates() -> impl IntoResponse {
    axum::Json(Vec::<serde_json::Value>::new())
}

/// Endpoints whose answer the client ignores (`osu-session.php`, the client's session
/// telemetry, is accepted and not kept).
pub async fn empty() -> impl IntoResponse {
    StatusCode::OK
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    /// User name.
    u: String,
    /// Password md5.
    h: String,
}

/// The player's friends, one id per line.
pub async fn friends(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(creds): Query<Credentials>,
) -> Result<String, ApiError> {
    let ip = crate::client_ip(&state.config, &headers, connect.as_ref().map(|c| &c.0));
    let user = state
        .world
        .authenticate(&creds.u, &creds.h, ip)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::BadRequest("invalid credentials".into()))?;
    let friends = state
        .world
        .friends_of(user.id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(friends.iter().map(|id| format!("{id}\n")).collect())
}

pub async fn not_found(uri: Uri) -> ApiError {
    tracing::debug!(%uri, "no such route");
    ApiError::NotFound
}
