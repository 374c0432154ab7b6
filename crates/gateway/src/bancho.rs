//! `POST /`: the Bancho endpoint.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{AppState, client_ip};

/// The header a client's session token comes in; a request without it is a login.
pub(crate) const TOKEN_HEADER: HeaderName = HeaderName::from_static("osu-token");

/// Handles a login (no `osu-token` header) or a poll (with one).
///
/// It takes the whole request and reads headers in place: the `HeaderMap` extractor
/// would copy them on every poll.
pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    // A clone of a parsed header value shares the request buffer; it does not allocate.
    let token = request.headers().get(TOKEN_HEADER).cloned();
    let ip = token.is_none().then(|| {
        let connect = request.extensions().get::<ConnectInfo<SocketAddr>>();
        client_ip(&state.config, request.headers(), connect)
    });
    let body = match axum::body::to_bytes(request.into_body(), crate::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return unreadable_body(e),
    };
    match (token, ip) {
        (Some(token), _) => {
            match state
                .world
                .poll(token.to_str().unwrap_or(""), body.clone())
                .await
            {
                Ok(reply) => {
                    peace_metrics::poll(body.len(), reply.len());
                    bancho_response(None, reply)
                }
                // Nothing was delivered: a load balancer may retry it elsewhere.
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        (None, ip) => {
            let ip = ip.unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            let reply = state.world.login(&body, ip).await;
            peace_metrics::login(reply.token.is_some(), body.len(), reply.body.len());
            // The client gives up without retrying when a login reply lacks cho-token,
            // so a failure says `no` rather than leaving the header out.
            let token = reply.token.unwrap_or_else(|| "no".to_owned());
            bancho_response(Some(token), reply.body)
        }
    }
}

/// 413 for a body over the limit (as axum's extractors answer), 400 for one that broke
/// off.
fn unreadable_body(e: axum::Error) -> Response {
    let too_large = e
        .into_inner()
        .downcast_ref::<http_body_util::LengthLimitError>()
        .is_some();
    if too_large {
        StatusCode::PAYLOAD_TOO_LARGE.into_response()
    } else {
        StatusCode::BAD_REQUEST.into_response()
    }
}

fn bancho_response(token: Option<String>, body: bytes::Bytes) -> Response {
    // Sized for the three headers, so that building them does not reallocate.
    let mut headers = HeaderMap::with_capacity(3);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(CHO_PROTOCOL, HeaderValue::from_static(PROTOCOL_HEADER));
    if let Some(token) = token {
        // Tokens are ASCII (digits, dots, hex), so this conversion cannot fail.
        let value =
            HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static("no"));
        headers.insert(CHO_TOKEN, value);
    }
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response
}

// Header names built once: a name given as `&str` is copied into a new allocation on
// every insert.
const CHO_PROTOCOL: HeaderName = HeaderName::from_static("cho-protocol");
const CHO_TOKEN: HeaderName = HeaderName::from_static("cho-token");

/// `cho-protocol`: the protocol version, as text.
const PROTOCOL_HEADER: &str = "19";
const _: () = assert!(
    peace_bancho::PROTOCOL_VERSION == 19,
    "update PROTOCOL_HEADER"
);
