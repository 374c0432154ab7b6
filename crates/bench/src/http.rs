//! A minimal keep-alive HTTP/1.1 client: one [`Conn`] is one TCP connection, used for one
//! request at a time. Scenarios hold a fixed number of them, so the number of connections
//! is bounded by construction and never grows with load.
//!
//! hyper's low-level `client::conn` is used instead of a pooled client on purpose: the
//! bench shares two cores with the server under test, and a pool's bookkeeping and
//! per-request allocations would be measured as the server's cost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Upper bound for one request, so that a stalled server ends a scenario with errors
/// instead of hanging it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where requests go: a loopback address and the `Host` header to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub url: String,
}

impl Target {
    /// Parses `http://HOST:PORT[/]`. Only loopback addresses are accepted: this tool
    /// generates load and must only ever point at this machine.
    pub async fn parse(url: &str) -> anyhow::Result<Arc<Target>> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("{url}: only http:// URLs are supported"))?;
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') {
            bail!("{url}: give the server's base URL, without a path");
        }
        let addr = tokio::net::lookup_host(authority)
            .await
            .with_context(|| format!("resolving {authority}"))?
            .find(|a| a.ip().is_loopback())
            .with_context(|| format!("{url} is not a loopback address; refusing to load it"))?;
        Ok(Arc::new(Target {
            addr,
            host: authority.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        }))
    }
}

/// One response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The `cho-token` header, if any.
    pub token: Option<String>,
    pub body: Bytes,
}

/// One keep-alive connection.
pub struct Conn {
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
    /// A request failed or timed out half-way: the connection's state is unknown, so the
    /// next request opens a new one.
    broken: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("target", &self.target.url)
            .finish()
    }
}

impl Conn {
    pub async fn open(target: &Arc<Target>) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(target.addr)
            .await
            .with_context(|| format!("connecting to {}", target.url))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        // The connection's I/O runs beside the requests; it ends when `sender` is dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn {
            target: Arc::clone(target),
            sender,
            broken: false,
        })
    }

    /// `POST /` on the Bancho endpoint: a login without a token, a poll with one.
    pub async fn bancho(&mut self, token: Option<&str>, body: Bytes) -> anyhow::Result<Reply> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("host", &self.target.host)
            .header("user-agent", "osu!");
        if let Some(token) = token {
            request = request.header("osu-token", token);
        }
        self.send(request.body(Full::new(body))?).await
    }

    /// A form POST (registration).
    pub async fn post_form(&mut self, path: &str, form: String) -> anyhow::Result<Reply> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", &self.target.host)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))?;
        self.send(request).await
    }

    /// A POST with a body of `content_type` (a score submission's multipart form).
    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", &self.target.host)
            .header("user-agent", "osu!")
            .header("content-type", content_type)
            .body(Full::new(body))?;
        self.send(request).await
    }

    /// An empty POST with a bearer token (the cluster's admin calls).
    pub async fn post_bearer(&mut self, path: &str, token: &str) -> anyhow::Result<Reply> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", &self.target.host)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    /// A JSON POST with a bearer token (`peace pp recalc`'s start call).
    pub async fn post_json_bearer(
        &mut self,
        path: &str,
        token: &str,
        json: String,
    ) -> anyhow::Result<Reply> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", &self.target.host)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(json)))?;
        self.send(request).await
    }

    /// A GET with a bearer token (an admin read).
    pub async fn get_bearer(&mut self, path: &str, token: &str) -> anyhow::Result<Reply> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", &self.target.host)
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", &self.target.host)
            .body(Full::new(Bytes::new()))?;
        self.send(request).await
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        if self.broken || self.sender.is_closed() {
            // The server closed the connection, or it broke: open a fresh one.
            *self = Conn::open(&self.target).await?;
        }
        let exchange = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let token = response
                .headers()
                .get("cho-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>(Reply {
                status,
                token,
                body,
            })
        };
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
        self.broken = !matches!(outcome, Ok(Ok(_)));
        match outcome {
            Ok(reply) => Ok(reply.context("HTTP exchange")?),
            Err(_) => bail!("no answer within {REQUEST_TIMEOUT:?}"),
        }
    }
}
