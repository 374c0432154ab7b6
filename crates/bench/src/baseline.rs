//! The same-run baseline: a stateless, Bancho-shaped axum handler. A login (no
//! `osu-token`) gets a `cho-token` and PROTOCOL_VERSION + USER_ID; a poll gets an empty
//! body; `GET /web/osu-osz2-getscores.php` gets a fixed body, the server's own reply to
//! the same request (so of the same size). It does no work a server could skip, so the
//! server's figures divided by the baseline's, measured in the same run with the same
//! client, say how much of the machine's HTTP capacity the server keeps, whatever else
//! the machine is doing.
//!
//! It runs on its own two-thread runtime, like a server in another process would, so
//! that it does not share the bench client's worker threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use peace_bancho::{PROTOCOL_VERSION, ServerPacket, server as s};

/// Worker threads of the baseline server: the machine's cores, as the server under test
/// gets by default.
fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A running baseline server; told to stop when dropped (its thread then ends by
/// itself once the bench's connections are closed).
#[derive(Debug)]
pub struct Baseline {
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Baseline {
    pub fn start() -> anyhow::Result<Baseline> {
        Self::start_on("127.0.0.1:0", Bytes::new())
    }

    /// Starts the baseline with `board` as its answer to every getscores request.
    pub fn start_with_board(board: Bytes) -> anyhow::Result<Baseline> {
        Self::start_on("127.0.0.1:0", board)
    }

    /// Starts the baseline on `addr` (loopback), e.g. to profile it alone.
    pub fn start_on(addr: &str, board: Bytes) -> anyhow::Result<Baseline> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("baseline")
            .enable_all()
            .build()?;
        // Bound here (std, not tokio) so that the address is known before the thread runs.
        let listener = std::net::TcpListener::bind(addr).context("binding the baseline server")?;
        anyhow::ensure!(
            listener.local_addr()?.ip().is_loopback(),
            "the baseline only listens on loopback addresses"
        );
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("baseline".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    let next_id = Arc::new(AtomicI32::new(1));
                    let app = Router::new()
                        .route(
                            "/",
                            post(move |headers: HeaderMap, body: Bytes| {
                                let next_id = Arc::clone(&next_id);
                                async move { handle(&headers, &body, &next_id) }
                            }),
                        )
                        .route(
                            crate::scores::GETSCORES_PATH,
                            // The query is not looked at, like a no-op server would.
                            get(move || {
                                let board = board.clone();
                                async move { board }
                            }),
                        );
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })?;
        Ok(Baseline {
            url: format!("http://{addr}"),
            shutdown: Some(shutdown),
        })
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn handle(headers: &HeaderMap, body: &[u8], next_id: &AtomicI32) -> Response {
    // The body is read (axum collects it) but not looked at, like a no-op server would.
    let _ = body;
    if headers.contains_key("osu-token") {
        return Bytes::new().into_response();
    }
    let user_id = next_id.fetch_add(1, Ordering::Relaxed);
    let mut out = Vec::with_capacity(32);
    ServerPacket::from(s::ProtocolVersion {
        version: PROTOCOL_VERSION,
    })
    .encode(&mut out);
    ServerPacket::from(s::UserId { user_id }).encode(&mut out);
    let mut response = Bytes::from(out).into_response();
    let token = HeaderValue::from_str(&format!("baseline-{user_id}"))
        .unwrap_or_else(|_| HeaderValue::from_static("no"));
    response.headers_mut().insert("cho-token", token);
    response
}
