//! The HTTP listener loop, with the limits a public server needs: a cap on concurrent
//! connections, a time-out for reading request headers (a slow client cannot hold a
//! connection open by trickling bytes), and a time-out for whole requests.
//!
//! The same loop serves plain HTTP ([`serve`]) and HTTPS ([`serve_tls`]); they differ only
//! in the step between accepting a connection and handing it to hyper ([`Handshake`]).
//! The TLS handshake runs on the connection's own task, under a time-out and holding a
//! connection permit, so a slow or garbage client holds neither the loop nor more than
//! its one permit for long.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The time a client has to complete the TLS handshake after connecting.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits of the HTTP listener (`[http]` in `cluster.toml`).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time a request may take from its first byte to its response.
    pub request_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What turns an accepted TCP connection into the byte stream hyper reads HTTP from.
trait Handshake: Clone + Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn handshake(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = std::io::Result<Self::Stream>> + Send + 'static;
}

/// Plain HTTP: the connection as it is.
#[derive(Clone, Copy)]
struct Plain;

impl Handshake for Plain {
    type Stream = TcpStream;

    fn handshake(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = std::io::Result<TcpStream>> + Send + 'static {
        std::future::ready(Ok(stream))
    }
}

/// HTTPS: a TLS handshake within [`TLS_HANDSHAKE_TIMEOUT`].
#[derive(Clone)]
struct Tls(tokio_rustls::TlsAcceptor);

impl Handshake for Tls {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;

    fn handshake(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = std::io::Result<Self::Stream>> + Send + 'static {
        let accept = self.0.accept(stream);
        async move {
            tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, accept)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })?
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (for at most ten seconds).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, Plain, app, limits, shutdown).await;
}

/// [`serve`] over TLS: every connection starts with a handshake with `tls` (whose
/// certificate may change between handshakes; see `peace_tls`).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(
        listener,
        Tls(tokio_rustls::TlsAcceptor::from(tls)),
        app,
        limits,
        shutdown,
    )
    .await;
}

async fn serve_with(
    listener: TcpListener,
    handshake: impl Handshake,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    // Wrapped around the router as a whole (see `crate::app` for why not `Router::layer`).
    let app = tower::ServiceBuilder::new()
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .service(app);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // Shared by the connections' tasks, which start their connection after the handshake.
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually "too many open files": back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit of {} reached; connection closed", limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: hyper::Request<Incoming>| {
                // Only logins, registration and the web endpoints look at the client's
                // address. A poll (a request with a session token, what every client
                // sends each second) goes without: the extension costs two allocations.
                if !request.headers().contains_key(crate::bancho::TOKEN_HEADER) {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(peer));
                }
                app.clone().oneshot(request)
            },
        ));
        let handshake = handshake.handshake(stream);
        let (http, watcher) = (Arc::clone(&http), graceful.watcher());
        tokio::spawn(async move {
            match handshake.await {
                Ok(stream) => {
                    let connection =
                        watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = connection.await {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still running after ten seconds of shutdown");
    }
}
