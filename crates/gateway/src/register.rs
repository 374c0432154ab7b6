//! `POST /users`: registration from the osu! client's sign-up form.
//!
//! The client sends `user[username]`, `user[user_email]`, `user[password]` and `check`
//! (1 = only validate, 0 = create), as multipart or urlencoded form data. Errors go back
//! as `400 {"form_error": {"user": {field: [messages]}}}`, which the client shows under
//! each field.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use peace_actors::accounts::{FieldErrors, RegisterError, SignUpForm};

use crate::{ApiError, AppState, form};

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let connect = request.extensions().get::<ConnectInfo<SocketAddr>>();
    let ip = crate::client_ip(&state.config, request.headers(), connect);
    let SignUpForm {
        registration: reg,
        check_only,
    } = match form::text_fields(request).await {
        Ok(fields) => SignUpForm::from_fields(fields),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let world = &state.world;
    // Only valid forms count against the address's registration limit: a player fixing
    // a typo should not use up their quota.
    let result = match world.validate_registration(&reg).await {
        Ok(()) if check_only => Ok(()),
        Ok(()) if !world.registration_allowed(ip) => {
            tracing::info!(%ip, "registration refused: too many from this address");
            let mut errors = FieldErrors::default();
            let text = "Too many accounts were created from your address; please try again later.";
            errors.0.insert("username", vec![text.into()]);
            return form_errors(&errors, StatusCode::TOO_MANY_REQUESTS);
        }
        Ok(()) => world
            .register(&reg)
            .await
            .map(|id| tracing::info!(user = id, name = %reg.username, "registered")),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(RegisterError::Invalid(errors)) => form_errors(&errors, StatusCode::BAD_REQUEST),
        Err(RegisterError::Database(e)) => ApiError::Unavailable(e.to_string()).into_response(),
        Err(RegisterError::Hashing(e)) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

fn form_errors(errors: &FieldErrors, status: StatusCode) -> Response {
    let body = serde_json::json!({ "form_error": { "user": errors.0 } });
    (status, Json(body)).into_response()
}
