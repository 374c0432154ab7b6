//! `GET /metrics`: the node's metrics in the Prometheus text format.
//!
//! Counters and histograms are recorded where things happen (see `peace-metrics`); the
//! gauges that describe the node's current shape (who is online, how many actors of each
//! kind run) are sampled here, at scrape time, from the router's tables, so that they
//! cost nothing between scrapes.
//!
//! Like `/api/v1/*`, this is for operators: put it behind the reverse proxy's access
//! rules in production.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use peace_actors::BOT_ID;

use crate::AppState;

/// The content type Prometheus expects for the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn render(State(state): State<AppState>) -> Response {
    let router = state.world.router();
    let users = router.users();
    // Who is online in the whole cluster; which actors run on this node.
    let bot_online = users.get(BOT_ID).is_some();
    let players = users.len() - usize::from(bot_online);
    peace_metrics::set_online_users(players);
    let here = router.local_counts();
    let bot_here = router.sessions().main(BOT_ID).is_some();
    peace_metrics::set_actors("user", here.user - usize::from(bot_here));
    peace_metrics::set_actors("bot", usize::from(bot_here));
    for (kind, count) in router.kind_counts() {
        peace_metrics::set_actors(kind, count);
    }
    let mut response = peace_metrics::render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
