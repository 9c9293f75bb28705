//! The tower layers every listener runs, innermost first: a deadline per call that honours the
//! client's `grpc-timeout` and answers `DEADLINE_EXCEEDED` (tonic's own timeout answers
//! `CANCELLED`); a global concurrency limit with load shedding (`RESOURCE_EXHAUSTED`); gRPC-Web
//! translation; CORS; a request id and a span per call carrying it and the caller's trace context.
//! [`parse_grpc_timeout`] and [`make_span`] are shared with the gateway.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// Sets a deadline on every call: the client's `grpc-timeout`, capped by the server's default.
#[derive(Debug, Clone)]
pub(crate) struct DeadlineLayer {
    pub(crate) default: Duration,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            default: self.default,
        }
    }
}

/// See [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    default: Duration,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let timeout = parse_grpc_timeout(req.headers())
            .map_or(self.default, |client| client.min(self.default));
        // tonic's transport also enforces grpc-timeout (answering CANCELLED). Firing a millisecond
        // earlier makes the deadline answer with the right code.
        let margin = Duration::from_millis(1);
        if timeout <= margin {
            // Nothing can be done within a millisecond; answering now is deterministic.
            return Box::pin(async {
                Ok(Status::deadline_exceeded("deadline exceeded").into_http())
            });
        }
        let at = tokio::time::Instant::now() + (timeout - margin);
        let fut = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(at, fut).await {
                Ok(result) => result,
                Err(_) => Ok(Status::deadline_exceeded("deadline exceeded").into_http()),
            }
        })
    }
}

/// Parses a `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The span of one call: its gRPC method, request id and the caller's trace context.
pub fn make_span<B>(req: &Request<B>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span = tracing::info_span!(
        "rpc",
        rpc.method = %req.uri().path(),
        request_id = %request_id,
        caller = tracing::field::Empty,
    );
    let _ = span.set_parent(crate::telemetry::extract_context(req.headers()));
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-timeout", v.parse().expect("header"));
        h
    }

    #[test]
    fn parses_grpc_timeouts() {
        assert_eq!(
            parse_grpc_timeout(&headers("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_grpc_timeout(&headers("2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_grpc_timeout(&headers("1H")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_grpc_timeout(&headers("1x")), None);
        assert_eq!(parse_grpc_timeout(&headers("123456789S")), None);
        assert_eq!(parse_grpc_timeout(&http::HeaderMap::new()), None);
    }
}
