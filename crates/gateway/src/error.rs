//! The one error type of the HTTP edge: logs the detail, shows the client only what it
//! should see.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A request the framework refused while reading it (too large, wrong content type),
    /// answered with the rejection's own status.
    #[error("{1}")]
    Rejected(StatusCode, String),
    #[error("not found")]
    NotFound,
    /// No or a wrong admin token.
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    /// No or wrong player credentials (HTTP Basic: name and password).
    #[error("a player's name and password are required (HTTP Basic)")]
    BadCredentials,
    /// The admin calls are turned off on this node.
    #[error("admin calls are turned off: set [api] admin_token")]
    AdminDisabled,
    /// The request was understood and could not be carried out now.
    #[error("{0}")]
    Conflict(String),
    /// A dependency (the database) is down; the detail is logged, not shown.
    #[error("service unavailable")]
    Unavailable(String),
}

impl From<peace_actors::cluster::AdminError> for ApiError {
    /// A drain or rebalance the cluster refused: the operator sees why.
    fn from(e: peace_actors::cluster::AdminError) -> Self {
        ApiError::Conflict(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Rejected(status, _) => *status,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized | ApiError::BadCredentials => StatusCode::UNAUTHORIZED,
            ApiError::AdminDisabled => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(detail) => {
                tracing::warn!("request failed: {detail}");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if matches!(self, ApiError::BadCredentials) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"peace\", charset=\"UTF-8\""),
            );
        }
        response
    }
}
