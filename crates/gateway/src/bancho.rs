//! `POST /`: the Bancho endpoint.

use std::net::SocketAddr;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::{AppState, client_ip};

/// Handles a login (no `osu-token` header) or a poll (with one).
pub async fn handle(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match headers.get("osu-token").map(|t| t.to_str().unwrap_or("")) {
        Some(token) => {
            let reply = state.world.poll(token, &body).await;
            peace_metrics::poll(body.len(), reply.len());
            bancho_response(None, reply)
        }
        None => {
            let ip = client_ip(&state.config, &headers, connect.as_ref().map(|c| &c.0));
            let reply = state.world.login(&body, ip).await;
            peace_metrics::login(reply.token.is_some(), body.len(), reply.body.len());
            // The client gives up without retrying when a login reply lacks cho-token,
            // so a failure says `no` rather than leaving the header out.
            let token = reply.token.unwrap_or_else(|| "no".to_owned());
            bancho_response(Some(token), reply.body)
        }
    }
}

fn bancho_response(token: Option<String>, body: bytes::Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(
        "cho-protocol",
        HeaderValue::from(peace_bancho::PROTOCOL_VERSION),
    );
    if let Some(token) = token {
        // Tokens are ASCII (digits, dots, hex), so this conversion cannot fail.
        let value =
            HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static("no"));
        headers.insert("cho-token", value);
    }
    response
}
