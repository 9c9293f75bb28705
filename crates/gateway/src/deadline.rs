//! A deadline on every forwarded call, streams included.
//!
//! The deadline is the client's `grpc-timeout` capped by the gateway's maximum. It is forwarded
//! to the backend as `grpc-timeout`, and enforced here twice: on the response's arrival (tonic's
//! own server timeout would answer `CANCELLED`, so this one fires a millisecond earlier with
//! `DEADLINE_EXCEEDED`) and on the response body, which neither tonic nor the backend bound: a
//! server stream still open at the deadline ends with `DEADLINE_EXCEEDED` trailers.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame};
use marquee_platform::middleware::parse_grpc_timeout;
use tokio::time::{Instant, Sleep};
use tonic::{Status, body::Body};
use tower::{Layer, Service};

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct DeadlineLayer {
    pub(crate) max: Duration,
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            max: self.max,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    max: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How close to the deadline a backend's CANCELLED or a reset counts as the deadline passing:
/// the backend's copy of the deadline was rounded to whole milliseconds.
const DEADLINE_SLACK: Duration = Duration::from_millis(5);

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let timeout = parse_grpc_timeout(req.headers()).map_or(self.max, |c| c.min(self.max));
        let margin = Duration::from_millis(1);
        if timeout <= margin {
            // Nothing can be forwarded and answered within a millisecond.
            return Box::pin(async { Ok(deadline_exceeded().into_http()) });
        }
        let timeout = timeout - margin;
        req.headers_mut()
            .insert("grpc-timeout", encode_grpc_timeout(timeout));
        let deadline = Instant::now() + timeout;
        let fut = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, fut).await {
                Err(_) => Ok(deadline_exceeded().into_http()),
                Ok(Err(e)) => Err(e),
                Ok(Ok(response)) => {
                    // A trailers-only response (its status in the headers) has no body to bound.
                    if let Some(code) = response.headers().get("grpc-status") {
                        // The backend got the same deadline; when it gave up first, some servers
                        // answer CANCELLED or reset the stream (UNAVAILABLE here). At the deadline
                        // either means the deadline passed.
                        let at_deadline = Instant::now() + DEADLINE_SLACK >= deadline;
                        if at_deadline && (code == "1" || code == "14") {
                            return Ok(deadline_exceeded().into_http());
                        }
                        Ok(response)
                    } else {
                        Ok(response.map(|body| Body::new(DeadlineBody::new(body, deadline))))
                    }
                }
            }
        })
    }
}

/// `grpc-timeout` for `timeout`: at most 8 digits, in the finest unit that fits.
fn encode_grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let millis = timeout.as_millis().max(1);
    let text = if millis <= MAX {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(MAX as u64))
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("1m"))
}

/// A response body that ends with `DEADLINE_EXCEEDED` trailers at the deadline.
struct DeadlineBody {
    inner: Option<Body>,
    sleep: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: Instant) -> Self {
        Self {
            inner: Some(inner),
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame)),
            Poll::Pending => {
                if this.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Dropping the backend's body resets its stream, so the backend stops too.
                this.inner = None;
                let mut trailers = HeaderMap::new();
                if deadline_exceeded().add_header(&mut trailers).is_err() {
                    trailers.insert("grpc-status", HeaderValue::from_static("4"));
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn timeouts_encode_within_eight_digits() {
        assert_eq!(encode_grpc_timeout(Duration::from_millis(250)), "250m");
        assert_eq!(encode_grpc_timeout(Duration::from_micros(10)), "1m");
        assert_eq!(encode_grpc_timeout(Duration::from_secs(200_000)), "200000S");
    }

    #[tokio::test]
    async fn an_open_stream_ends_with_deadline_exceeded() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Status>>(1);
        let stream =
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let body = DeadlineBody::new(
            Body::new(stream),
            Instant::now() + Duration::from_millis(20),
        );
        let collected = body.collect().await.expect("ends with trailers");
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"4"[..])
        );
    }
}
