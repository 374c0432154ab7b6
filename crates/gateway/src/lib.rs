//! Peace's HTTP edge. Turns HTTP requests into calls on the actor system ([`World`]) and
//! the answers back into HTTP responses.
//!
//! * `POST /`: the Bancho endpoint (login without `osu-token`, polls with it).
//! * `/web/*`: the osu! web endpoints a client calls around login.
//! * `POST /users`: in-game registration.
//! * `/api/v1/*`: the JSON API for operators.
//! * `a.<domain>/<user id>` (and `/a/<user id>` on any name), `/ss/<id>`: avatars and
//!   screenshots (`media`).
//! * `/d/<set id>` and `b.<domain>`'s `/thumb/…`, `/preview/…`: osu!direct's downloads,
//!   thumbnails and previews (`direct`, with its two `/web/` searches).
//! * `GET /metrics`: Prometheus metrics for operators.
//! * `GET /.well-known/acme-challenge/{token}`: ACME's HTTP-01 challenges, while the
//!   server orders a certificate (`peace_tls`).
//!
//! osu! sends Bancho traffic to `c.`/`ce.`/`c4.`/`c5.`/`c6.<domain>` and web traffic to
//! `osu.<domain>`. The paths of the two never overlap, so every route is served on every
//! host; `http://127.0.0.1:PORT` works as well as the real domains. The one exception is
//! the avatar server's `a.<domain>/<user id>`, told apart by its `Host` (the same avatars
//! are at `/a/<user id>` on every name).
//!
//! Invariant: this crate holds no game state; everything stateful is an actor.

mod api;
mod bancho;
mod client_web;
mod cluster_api;
mod direct;
mod error;
mod form;
mod media;
mod metrics;
mod recalc;
mod register;
mod scores;
mod serve;
mod span;
mod staff_api;
mod web;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post, put};
use peace_actors::World;
use tower::Layer;

pub use error::ApiError;
pub use serve::{ServeLimits, TLS_HANDSHAKE_TIMEOUT, serve, serve_tls};

/// The largest request body accepted (spectator frame bundles are the largest).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Settings of the HTTP edge.
#[derive(Debug, Clone, Default)]
pub struct GatewayConfig {
    /// The server's domain (`peace.local` → `c.peace.local`, `osu.peace.local`).
    pub domain: String,
    /// Take the client address from `X-Real-IP` / `X-Forwarded-For` (set this only behind
    /// a reverse proxy that overwrites them).
    pub trust_proxy_headers: bool,
    /// Bearer token of the admin calls; empty turns them off.
    pub admin_token: String,
    /// Main-menu background urls (`osu-getseasonal.php`).
    pub seasonal_backgrounds: Vec<String>,
    /// Where osu!direct's thumbnails and previews are sent (no trailing `/`); empty: 404.
    pub beatmap_media_url: String,
}

/// What every handler can reach. Cloned for every request, so everything in it is
/// behind an `Arc`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub world: World,
    pub config: Arc<GatewayConfig>,
    /// The answers to ACME's HTTP-01 challenges (`[tls] mode = "acme"`; empty otherwise).
    pub acme_challenges: peace_tls::Challenges,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/users", post(register::handle))
        .route("/web/bancho_connect.php", get(web::bancho_connect))
        .route("/web/osu-getseasonal.php", get(client_web::seasonal))
        .route("/web/check-updates.php", get(web::check_updates))
        .route("/web/osu-session.php", post(web::empty))
        .route("/web/osu-markasread.php", get(client_web::mark_as_read))
        .route("/web/lastfm.php", get(client_web::lastfm))
        .route("/web/osu-error.php", post(client_web::error_report))
        .route("/web/osu-rate.php", get(client_web::rate))
        .route("/web/osu-getfavourites.php", get(client_web::favourites))
        .route("/web/osu-addfavourite.php", get(client_web::add_favourite))
        .route("/web/osu-comment.php", post(client_web::comment))
        .route("/difficulty-rating", post(client_web::difficulty_rating))
        .route("/web/osu-getfriends.php", get(web::friends))
        .route("/web/osu-search.php", get(direct::search))
        .route("/web/osu-search-set.php", get(direct::search_set))
        .route("/d/{file}", get(direct::download))
        .route("/thumb/{file}", get(direct::thumbnail))
        .route("/preview/{file}", get(direct::preview))
        .route("/web/osu-osz2-getscores.php", get(scores::get_scores))
        .route("/web/osu-getreplay.php", get(scores::get_replay))
        .route("/web/osu-getbeatmapinfo.php", post(scores::beatmap_info))
        .route("/web/maps/{file_name}", get(scores::osu_file))
        .route(
            "/.well-known/acme-challenge/{token}",
            get(web::acme_challenge),
        )
        .route("/api/v1/scores/{id}/replay", get(scores::osr_download))
        .route("/livez", get(api::livez))
        .route("/readyz", get(api::readyz))
        .route("/api/v1/health", get(api::health))
        .route("/api/v1/users/online", get(api::online_users))
        .route("/api/v1/cluster", get(cluster_api::cluster))
        .route("/api/v1/entities/{kind}", get(cluster_api::keyless_entity))
        .route("/api/v1/entities/{kind}/{key}", get(cluster_api::entity))
        .route("/api/v1/cluster/rebalance", post(cluster_api::rebalance))
        .route(
            "/api/v1/cluster/nodes/{name}/drain",
            post(cluster_api::drain),
        )
        .route(
            "/api/v1/admin/recalc",
            post(recalc::start).get(recalc::status),
        )
        .route("/metrics", get(metrics::render))
        // The routes above read bodies through axum's extractors, which take their limit
        // from this layer.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Added after the layer on purpose: the Bancho endpoint, which every poll hits,
        // applies the same limit itself (`bancho.rs`), because a layered route clones its
        // boxed service stack and the layer adds a request extension, on every request.
        .route("/", post(bancho::handle).get(web::index))
        // Submissions carry a replay: a limit of their own.
        .route(
            "/web/osu-submit-modular-selector.php",
            post(scores::submit).layer(DefaultBodyLimit::max(scores::MAX_SUBMISSION_BYTES)),
        )
        .merge(media_routes())
        .fallback(web::not_found)
        .with_state(state);
    // The span wraps the router once rather than each route, for the same reason.
    Router::new().fallback_service(span::RequestSpanLayer.layer(routes))
}

/// Avatars and screenshots. The uploads read their bodies themselves, each within a
/// limit of its own (`media::read_bounded`).
fn media_routes() -> Router<AppState> {
    Router::new()
        // Any one-segment path matches here, so other methods get the same 404 as
        // before this route, not a 405.
        .route(
            "/{file}",
            get(media::avatar_on_host).fallback(web::not_found),
        )
        .route("/a/{file}", get(media::avatar_by_path))
        .route("/ss/{file}", get(media::screenshot))
        .route(
            "/api/v1/me/avatar",
            // The handler reads the body itself, within `MAX_AVATAR_BYTES`.
            put(media::put_avatar).delete(media::delete_own_avatar),
        )
        .route(
            "/api/v1/admin/users/{id}/avatar",
            delete(media::delete_avatar),
        )
        .merge(staff_routes())
        .route(
            "/web/osu-screenshot.php",
            post(media::upload_screenshot)
                .layer(DefaultBodyLimit::max(media::MAX_SCREENSHOT_REQUEST_BYTES)),
        )
}

/// The staff's calls on maps and scores (the admin token).
fn staff_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/admin/beatmaps/{id}/status",
            post(staff_api::set_map_status),
        )
        .route(
            "/api/v1/admin/scores/flagged",
            get(staff_api::flagged_scores),
        )
        .route("/api/v1/admin/scores/{id}", delete(staff_api::delete_score))
        .route(
            "/api/v1/admin/scores/{id}/hide",
            post(staff_api::hide_score),
        )
        .route(
            "/api/v1/admin/scores/{id}/unhide",
            post(staff_api::unhide_score),
        )
        .route(
            "/api/v1/admin/scores/{id}/approve",
            post(staff_api::approve_score),
        )
        .route(
            "/api/v1/admin/scores/{id}/reject",
            post(staff_api::reject_score),
        )
}

/// The operators' listener (`[http] metrics_addr`): `/metrics` and the health checks,
/// nothing a player or a stranger could use.
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .route("/livez", get(api::livez))
        .route("/readyz", get(api::readyz))
        .route("/api/v1/health", get(api::health))
        .fallback(web::not_found)
        .with_state(state)
}

/// The client's address: the socket's peer, or the proxy's header when trusted.
fn client_ip(
    config: &GatewayConfig,
    headers: &HeaderMap,
    connect: Option<&ConnectInfo<SocketAddr>>,
) -> IpAddr {
    if config.trust_proxy_headers {
        let forwarded = headers
            .get("x-real-ip")
            .or_else(|| headers.get("x-forwarded-for"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    connect.map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}
