//! One `tracing` span per HTTP request (`request`, with method and path), entered
//! whenever the request's future runs, so that everything logged while handling it
//! (down into the actor calls it awaits) carries them.
//!
//! A small layer of our own rather than tower-http's `TraceLayer`: that one also times
//! every response, classifies it and wraps its body, which showed in the poll profile
//! (docs/benchmarks.md); responses are logged where they are made (`ApiError`). The span
//! is at debug level: unless RUST_LOG asks for it, it costs one level check.

use std::task::{Context, Poll};

use axum::http::Request;
use tower::{Layer, Service};
use tracing::Instrument;

/// Wraps a service so that each request runs in its own span.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpanLayer;

impl<S> Layer<S> for RequestSpanLayer {
    type Service = RequestSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestSpan { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestSpan<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestSpan<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tracing::instrument::Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            path = request.uri().path()
        );
        self.inner.call(request).instrument(span)
    }
}
