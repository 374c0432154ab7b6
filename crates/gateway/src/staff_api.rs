//! The staff's JSON calls on maps and scores (`/api/v1/admin/…`, the admin token):
//!
//! * `POST /api/v1/admin/beatmaps/{id}/status` `{"status": "ranked|loved|qualified|pending",
//!   "scope": "map|set", "reason": "…"}`: the map with osu! id `{id}` (or its whole set)
//!   gets that status for good, as `!map` does.
//! * `POST /api/v1/admin/scores/{id}/hide|unhide|approve|reject` and
//!   `DELETE /api/v1/admin/scores/{id}`, each with an optional `{"reason": "…"}`.
//! * `GET /api/v1/admin/scores/flagged`: passes held above the pp cap, for review.
//!
//! The work (and the audit log) is the score service's (`peace_actors::scores::staff`);
//! the audit log names the bot as the actor, the server acting for whoever holds the
//! admin token, and the reason says it came through this API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use peace_actors::ports::{DeskError, StatusScope};
use peace_actors::scores::staff::{MAX_FLAGGED_LISTED, ScoreAction, score_status_name};
use peace_scores::status::RankedStatus;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::cluster_api::require_admin;
use crate::error::ApiError;

/// The longest reason kept (the audit log's own limit is the same).
const MAX_REASON_LEN: usize = 512;

/// The body of a status change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    reason: String,
}

/// The optional body of a score action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> Self {
        match e {
            DeskError::UnknownMap(_) | DeskError::NoSuchScore(_) => ApiError::NotFound,
            DeskError::NotApplicable(_) | DeskError::NoOsuId => ApiError::Conflict(e.to_string()),
            DeskError::Database(_) | DeskError::NoFile | DeskError::Pp(_) => {
                ApiError::Unavailable(e.to_string())
            }
        }
    }
}

fn parse_json<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))
}

fn reason_of(given: &str) -> String {
    let reason: String = given.chars().take(MAX_REASON_LEN).collect();
    format!("(admin API) {reason}")
}

fn parse_status(word: &str) -> Option<RankedStatus> {
    match word.to_ascii_lowercase().as_str() {
        "ranked" | "rank" => Some(RankedStatus::Ranked),
        "loved" | "love" => Some(RankedStatus::Loved),
        "qualified" | "qualify" => Some(RankedStatus::Qualified),
        "pending" | "unranked" | "unrank" => Some(RankedStatus::Pending),
        _ => None,
    }
}

/// `POST /api/v1/admin/beatmaps/{id}/status` (admin).
pub async fn set_map_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(beatmap_id): Path<i32>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    let body: StatusBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    let status = parse_status(&body.status).ok_or_else(|| {
        ApiError::BadRequest("status is one of ranked, loved, qualified, pending".into())
    })?;
    let scope = match body.scope.as_deref().unwrap_or("map") {
        "map" => StatusScope::Map,
        "set" => StatusScope::Set,
        _ => return Err(ApiError::BadRequest("scope is map or set".into())),
    };
    let change = state
        .world
        .scores()
        .set_map_status(
            peace_actors::BOT_ID,
            beatmap_id,
            scope,
            status,
            &reason_of(&body.reason),
        )
        .await?;
    Ok(Json(json!({
        "beatmap_id": beatmap_id,
        "status": format!("{status:?}").to_lowercase(),
        "scope": if scope == StatusScope::Set { "set" } else { "map" },
        "title": change.title,
        "changed": change.changed,
    })))
}

async fn moderate(
    state: &AppState,
    headers: &HeaderMap,
    score_id: i32,
    action: ScoreAction,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    require_admin(state, headers)?;
    let body: ReasonBody = parse_json(body)?;
    let before = state
        .world
        .scores()
        .moderate_score(
            peace_actors::BOT_ID,
            score_id,
            action,
            &reason_of(&body.reason),
        )
        .await?;
    Ok(Json(json!({
        "score_id": score_id,
        "user_id": before.user_id,
        "was": score_status_name(before.status),
    })))
}

/// `POST /api/v1/admin/scores/{id}/hide` (admin).
pub async fn hide_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i32>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    moderate(&state, &headers, id, ScoreAction::Hide, &body).await
}

/// `POST /api/v1/admin/scores/{id}/unhide` (admin).
pub async fn unhide_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i32>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    moderate(&state, &headers, id, ScoreAction::Unhide, &body).await
}

/// `POST /api/v1/admin/scores/{id}/approve` (admin): a flagged pass is ranked.
pub async fn approve_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i32>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    moderate(&state, &headers, id, ScoreAction::Approve, &body).await
}

/// `POST /api/v1/admin/scores/{id}/reject` (admin): a flagged pass is hidden.
pub async fn reject_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i32>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    moderate(&state, &headers, id, ScoreAction::Reject, &body).await
}

/// `DELETE /api/v1/admin/scores/{id}` (admin).
pub async fn delete_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i32>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    moderate(&state, &headers, id, ScoreAction::Delete, &body).await
}

/// `GET /api/v1/admin/scores/flagged` (admin): passes held for review, oldest first.
pub async fn flagged_scores(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    require_admin(&state, &headers)?;
    let flagged = state
        .world
        .scores()
        .flagged_scores(MAX_FLAGGED_LISTED)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let scores: Vec<Value> = flagged
        .iter()
        .map(|f| {
            let s = &f.score;
            json!({
                "id": s.id, "user_id": s.user_id, "user_name": f.user_name,
                "beatmap_md5": s.beatmap_md5, "mode": s.mode, "board": s.board,
                "score": s.score, "pp": s.pp, "accuracy": s.accuracy,
                "max_combo": s.max_combo, "mods": s.mods, "grade": s.grade,
                "submitted_at": s.submitted_at,
            })
        })
        .collect();
    Ok(Json(json!({ "count": scores.len(), "scores": scores })))
}
