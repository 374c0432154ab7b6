//! Sending to other nodes: the routers of the peers that are up, and the counters of
//! everything that crossed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::ActorRef;

use super::envelope::{self, Answer, Body, Envelope, Refusal, Request, RequestBody};
use super::node_router::RouterMsg;
use super::status::TrafficCounts;
use crate::RouteError;

#[derive(Debug, Default)]
struct Traffic {
    envelopes_sent: AtomicU64,
    envelopes_received: AtomicU64,
    requests_sent: AtomicU64,
    requests_received: AtomicU64,
    forwarded: AtomicU64,
    undecodable: AtomicU64,
    dropped: AtomicU64,
}

/// A peer that is up: its router, and the signal that it went down.
#[derive(Debug, Clone)]
struct Peer {
    router: ActorRef<RouterMsg>,
    /// Notified when the peer is disconnected: what waits for its answers gives up at
    /// once rather than at its time-out (a frozen node answers nothing, ever).
    gone: Arc<tokio::sync::Notify>,
}

/// The way out of this node. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Net {
    me: Arc<str>,
    peers: Arc<RwLock<HashMap<String, Peer>>>,
    traffic: Arc<Traffic>,
}

/// Counts one more of something.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Net {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.into(),
            peers: Arc::default(),
            traffic: Arc::default(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    fn peers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Peer>> {
        // Writes are single inserts and removes: a poisoned map is still whole.
        self.peers.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `node` reachable through `router` (a peer came up or reconnected).
    pub fn connect(&self, node: &str, router: ActorRef<RouterMsg>) {
        let peer = Peer {
            router,
            gone: Arc::default(),
        };
        let old = self
            .peers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_owned(), peer);
        // Answers awaited through the old connection will not come.
        if let Some(old) = old {
            old.gone.notify_waiters();
        }
    }

    /// Stops sending to `node` (it is down); requests waiting for its answers fail now.
    pub fn disconnect(&self, node: &str) {
        let old = self
            .peers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
        if let Some(old) = old {
            old.gone.notify_waiters();
        }
    }

    /// The peers messages can be sent to now.
    pub fn peer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.peers().keys().cloned().collect();
        names.sort();
        names
    }

    fn peer(&self, node: &str) -> Result<Peer, RouteError> {
        self.peers()
            .get(node)
            .cloned()
            .ok_or_else(|| RouteError::Unreachable(node.to_owned()))
    }

    /// Sends `body` to `node`.
    pub fn send(&self, node: &str, body: Body) -> Result<(), RouteError> {
        self.send_envelope(
            node,
            &Envelope {
                from: self.me.to_string(),
                hops: 0,
                body,
            },
        )
    }

    /// Passes an envelope on to where its key lives now.
    pub fn forward(&self, node: &str, mut envelope: Envelope) -> Result<(), RouteError> {
        envelope.hops = envelope.hops.saturating_add(1);
        if envelope.hops > envelope::MAX_HOPS {
            self.dropped();
            return Err(RouteError::TooManyHops);
        }
        bump(&self.traffic.forwarded);
        self.send_envelope(node, &envelope)
    }

    fn send_envelope(&self, node: &str, envelope: &Envelope) -> Result<(), RouteError> {
        let router = self.peer(node)?.router;
        let bytes = envelope::encode(envelope).map_err(RouteError::Wire)?;
        bump(&self.traffic.envelopes_sent);
        peace_metrics::cluster_envelope(true);
        router.cast(RouterMsg::Deliver(bytes)).map_err(|_| {
            self.dropped();
            RouteError::Unreachable(node.to_owned())
        })
    }

    /// Sends `body` to every peer that is up (encoded once).
    pub fn send_all(&self, body: &Body) {
        let routers: Vec<(String, ActorRef<RouterMsg>)> = self
            .peers()
            .iter()
            .map(|(n, p)| (n.clone(), p.router.clone()))
            .collect();
        if routers.is_empty() {
            return;
        }
        let envelope = Envelope {
            from: self.me.to_string(),
            hops: 0,
            body: body.clone(),
        };
        let bytes = match envelope::encode(&envelope) {
            Ok(bytes) => bytes,
            Err(e) => return tracing::error!("broadcast not encodable: {e}"),
        };
        for (node, router) in routers {
            bump(&self.traffic.envelopes_sent);
            peace_metrics::cluster_envelope(true);
            if router.cast(RouterMsg::Deliver(bytes.clone())).is_err() {
                self.dropped();
                tracing::debug!(%node, "broadcast not sent: the peer is gone");
            }
        }
    }

    /// Asks `node` and waits at most `timeout` for the answer.
    pub async fn ask(
        &self,
        node: &str,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<Answer, RouteError> {
        self.ask_request(
            node,
            Request {
                from: self.me.to_string(),
                hops: 0,
                body,
            },
            timeout,
        )
        .await
    }

    /// Sends a request that was made here (`hops` 0, from this node) or passes one from
    /// a peer on (one hop more); returns the answer.
    pub async fn relay_request(
        &self,
        node: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Answer, RouteError> {
        if request.hops == 0 && request.from == *self.me {
            self.ask_request(node, request, timeout).await
        } else {
            self.forward_request(node, request, timeout).await
        }
    }

    /// Passes a request on to where its key lives now and returns the answer.
    pub async fn forward_request(
        &self,
        node: &str,
        mut request: Request,
        timeout: Duration,
    ) -> Result<Answer, RouteError> {
        request.hops = request.hops.saturating_add(1);
        if request.hops > envelope::MAX_HOPS {
            self.dropped();
            return Err(RouteError::TooManyHops);
        }
        bump(&self.traffic.forwarded);
        self.ask_request(node, request, timeout).await
    }

    async fn ask_request(
        &self,
        node: &str,
        request: Request,
        timeout: Duration,
    ) -> Result<Answer, RouteError> {
        let peer = self.peer(node)?;
        self.ask_router(node, &peer.router, Some(&peer.gone), request, timeout)
            .await
    }

    /// Asks a peer that is not (yet) up, through the router reference found for it.
    pub async fn ask_via(
        &self,
        node: &str,
        router: &ActorRef<RouterMsg>,
        body: RequestBody,
        timeout: Duration,
    ) -> Result<Answer, RouteError> {
        let request = Request {
            from: self.me.to_string(),
            hops: 0,
            body,
        };
        self.ask_router(node, router, None, request, timeout).await
    }

    /// Asks `router` and waits for the answer: at most `timeout`, and no longer than
    /// until `gone` says the peer went down.
    async fn ask_router(
        &self,
        node: &str,
        router: &ActorRef<RouterMsg>,
        gone: Option<&tokio::sync::Notify>,
        request: Request,
        timeout: Duration,
    ) -> Result<Answer, RouteError> {
        let bytes = envelope::encode(&request).map_err(RouteError::Wire)?;
        bump(&self.traffic.requests_sent);
        let call = router.call(|port| RouterMsg::Ask(bytes, port), Some(timeout));
        let result = match gone {
            Some(gone) => tokio::select! {
                result = call => result,
                () = gone.notified() => {
                    self.dropped();
                    return Err(RouteError::Unreachable(node.to_owned()));
                }
            },
            None => call.await,
        };
        let bytes = match result {
            Ok(ractor::rpc::CallResult::Success(bytes)) => bytes,
            Ok(ractor::rpc::CallResult::Timeout) => {
                return Err(RouteError::NodeTimeout(node.to_owned(), timeout));
            }
            Ok(ractor::rpc::CallResult::SenderError) | Err(_) => {
                self.dropped();
                return Err(RouteError::Unreachable(node.to_owned()));
            }
        };
        let answer: Answer = envelope::decode(&bytes).map_err(|e| {
            self.undecodable(node, &e);
            RouteError::Wire(e)
        })?;
        match answer {
            Answer::Refused(refusal) => Err(RouteError::Refused(refusal)),
            answer => Ok(answer),
        }
    }

    pub(crate) fn received_envelope(&self) {
        bump(&self.traffic.envelopes_received);
        peace_metrics::cluster_envelope(false);
    }

    pub(crate) fn received_request(&self) {
        bump(&self.traffic.requests_received);
    }

    pub(crate) fn dropped(&self) {
        bump(&self.traffic.dropped);
    }

    /// Logs and counts a document from `from` that could not be read.
    pub(crate) fn undecodable(&self, from: &str, error: &envelope::WireError) {
        bump(&self.traffic.undecodable);
        tracing::warn!(peer = %from, "undecodable message from a peer dropped: {error}");
    }

    pub fn traffic(&self) -> TrafficCounts {
        let t = &self.traffic;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TrafficCounts {
            envelopes_sent: get(&t.envelopes_sent),
            envelopes_received: get(&t.envelopes_received),
            requests_sent: get(&t.requests_sent),
            requests_received: get(&t.requests_received),
            forwarded: get(&t.forwarded),
            undecodable: get(&t.undecodable),
            dropped: get(&t.dropped),
        }
    }
}

impl RouteError {
    /// How this error is told to the node that asked.
    pub(crate) fn to_refusal(&self) -> Refusal {
        match self {
            RouteError::NotFound(_) => Refusal::NotFound,
            RouteError::Stopped(_) | RouteError::Unreachable(_) => Refusal::Stopped,
            RouteError::Timeout(..) | RouteError::NodeTimeout(..) => Refusal::Timeout,
            RouteError::NotPlaced => Refusal::NotPlaced,
            RouteError::TooManyHops => Refusal::TooManyHops,
            RouteError::Overloaded(key) => Refusal::Failed(format!("{key} is overloaded")),
            RouteError::Full(..) => Refusal::Failed(self.to_string()),
            RouteError::Wire(e) => Refusal::Undecodable(e.to_string()),
            RouteError::Refused(r) => r.clone(),
        }
    }

    /// The error a refusal from the node holding `key` means here.
    pub(crate) fn from_refusal(refusal: Refusal, key: &crate::EntityKey) -> Self {
        match refusal {
            Refusal::NotFound => RouteError::NotFound(key.clone()),
            Refusal::Stopped => RouteError::Stopped(key.clone()),
            other => RouteError::Refused(other),
        }
    }
}
