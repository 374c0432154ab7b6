//! `/api/v1/admin/recalc` (admin): start a pp recalculation across the cluster and follow
//! it (`peace pp recalc` is the operator's side). Any node answers: the job and its
//! progress live in the database, and every node works on the shards it owns.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use peace_actors::scores::recalc::{RecalcError, RecalcRequest};
use serde_json::json;

use crate::cluster_api::require_admin;
use crate::{ApiError, AppState};

impl From<RecalcError> for ApiError {
    fn from(e: RecalcError) -> Self {
        match e {
            RecalcError::Database(e) => ApiError::Unavailable(e.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

/// `POST /api/v1/admin/recalc` with `{"mode": …, "map": …, "user": …}` (each optional):
/// 202 and the new job, or 409 and the job that runs already (one at a time).
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<RecalcRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let Json(request) = body.map_err(|e| ApiError::Rejected(e.status(), e.body_text()))?;
    let started = state.world.recalc().start(&request).await?;
    Ok(if started.started {
        (StatusCode::ACCEPTED, Json(json!(started))).into_response()
    } else {
        let error = format!("recalculation {} is running already", started.job.id);
        (
            StatusCode::CONFLICT,
            Json(json!({ "error": error, "started": false, "job": started.job })),
        )
            .into_response()
    })
}

/// `GET /api/v1/admin/recalc`: the running job, else the last one (`{"job": null}` if
/// there never was one), with done, total, rate, ETA and each node's part.
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&state, &headers)?;
    let job = state.world.recalc().status().await?;
    Ok(Json(json!({ "job": job })))
}
