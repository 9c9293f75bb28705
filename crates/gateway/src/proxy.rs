//! Forwarding: the service name in a call's path picks the backend channel; headers, messages
//! and trailers pass through untouched, unary calls and streams alike. There is no per-method
//! code: a new RPC of a routed service is forwarded as soon as the backend serves it.
//!
//! A service with several endpoints is balanced over them by a `Channel::balance_list` of
//! pooled HTTP/2 connections. That balancer keeps sending some calls to an endpoint that is down,
//! so a call that failed to connect before any of its body was sent is retried on each
//! endpoint in turn over its own channel, until one connects.

use std::{
    collections::HashMap,
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame};
use tonic::{
    Status,
    body::Body,
    transport::{Channel, Endpoint},
};
use tower::{BoxError, Service, ServiceExt};

use crate::config::GatewayConfig;

/// The channels of one routed service.
struct Upstream {
    service: String,
    /// Balanced over every endpoint; the first attempt of every call.
    balanced: Channel,
    /// One channel per endpoint, for retries after a failed connect.
    each: Vec<(String, Channel)>,
    /// Where the next retry starts, so that retries spread over the endpoints.
    next: AtomicUsize,
}

/// Routes calls to backends by service name. See the module documentation.
#[derive(Clone)]
pub(crate) struct Proxy {
    routes: Arc<HashMap<String, Arc<Upstream>>>,
    max_request_bytes: usize,
}

impl Proxy {
    /// Channels for every configured route. Connections are made lazily, on first use, so a
    /// backend that is down at start-up does not stop the gateway. Needs a tokio runtime.
    pub(crate) fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        let mut routes = HashMap::new();
        for (service, urls) in &config.routes {
            let mut each = Vec::new();
            for url in urls {
                let endpoint = Endpoint::from_shared(url.clone())
                    .map_err(|e| anyhow::anyhow!("gateway.routes.\"{service}\": {url:?}: {e}"))?
                    .connect_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_while_idle(true);
                each.push((url.clone(), endpoint));
            }
            let balanced = if each.len() == 1 {
                each[0].1.connect_lazy()
            } else {
                Channel::balance_list(each.iter().map(|(_, e)| e.clone()))
            };
            let each = each
                .into_iter()
                .map(|(url, e)| (url, e.connect_lazy()))
                .collect();
            routes.insert(
                service.clone(),
                Arc::new(Upstream {
                    service: service.clone(),
                    balanced,
                    each,
                    next: AtomicUsize::new(0),
                }),
            );
        }
        Ok(Self {
            routes: Arc::new(routes),
            max_request_bytes: config.max_request_bytes,
        })
    }
}

/// The service of a gRPC path `/<package.Service>/<Method>`.
pub(crate) fn service_of(path: &str) -> Option<&str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then_some(service)
}

/// True for the reflection services, which the gateway never forwards.
pub(crate) fn is_reflection(path: &str) -> bool {
    path.starts_with("/grpc.reflection.")
}

impl<B> Service<Request<B>> for Proxy
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let path = req.uri().path();
        if is_reflection(path) {
            return ready(Status::permission_denied(
                "reflection is not served by the gateway",
            ));
        }
        let Some(upstream) = service_of(path).and_then(|s| self.routes.get(s)).cloned() else {
            return ready(Status::unimplemented(format!(
                "no service is routed for {path}"
            )));
        };
        let limit = self.max_request_bytes;
        Box::pin(async move { Ok(upstream.forward(req, limit).await) })
    }
}

fn ready(
    status: Status,
) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>> {
    Box::pin(async move { Ok(status.into_http()) })
}

/// Headers that belong to one hop and must not be forwarded (HTTP/2 forbids most of them).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    // gRPC-Web text is decoded on the way in, so the client's length is not the body's.
    "content-length",
];

impl Upstream {
    async fn forward<B>(&self, req: Request<B>, limit: usize) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        for name in HOP_BY_HOP {
            headers.remove(*name);
        }
        // The first message's length prefix says how large it is: a message over the limit is
        // refused before the backend hears of the call.
        let body = match Prefixed::peek(Body::new(body)).await {
            Ok(body) if body.first_message_len().is_some_and(|n| n > limit) => {
                return Status::resource_exhausted(format!("request larger than {limit} bytes"))
                    .into_http();
            }
            Ok(body) => body,
            Err(error) => {
                return Status::invalid_argument(format!(
                    "the request body could not be read: {}",
                    error_chain(&*error)
                ))
                .into_http();
            }
        };
        let body = Replayable::new(Body::new(body), limit);
        let head = Head {
            method: parts.method,
            uri: parts.uri,
            headers,
        };

        let first = self
            .balanced
            .clone()
            .oneshot(head.request(body.attempt()))
            .await;
        let mut error = match first {
            Ok(response) => return response,
            Err(error) => error,
        };
        // Retry only a call that never reached a backend: it failed to connect and none of its
        // body was taken.
        let n = self.each.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if !(body.untouched() && is_connect_error(&error)) {
                break;
            }
            let (url, channel) = &self.each[(start + i) % n];
            tracing::debug!(service = %self.service, endpoint = %url, "retrying a call that failed to connect");
            match channel.clone().oneshot(head.request(body.attempt())).await {
                Ok(response) => return response,
                Err(e) => error = e,
            }
        }
        if body.too_large() {
            return Status::resource_exhausted(format!("request larger than {limit} bytes"))
                .into_http();
        }
        tracing::warn!(service = %self.service, error = %error_chain(&error), "backend call failed");
        Status::unavailable(format!("{} is unavailable", self.service)).into_http()
    }
}

/// What is needed to send a call again.
struct Head {
    method: http::Method,
    uri: http::Uri,
    headers: HeaderMap,
}

impl Head {
    fn request(&self, body: Body) -> Request<Body> {
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = http::Version::HTTP_2;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

fn is_connect_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | TimedOut
                    | AddrNotAvailable
                    | HostUnreachable
                    | NetworkUnreachable
            ) {
                return true;
            }
        }
        // tonic reports a failed connect as a transport error whose source is its ConnectError
        // ("client error (Connect)" from hyper-util below it).
        let text = e.to_string();
        if text.contains("Connect") || text.contains("connect") {
            return true;
        }
        current = e.source();
    }
    false
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        out.push_str(": ");
        out.push_str(&e.to_string());
        current = e.source();
    }
    out
}

/// A request body whose first bytes were read ahead (up to a gRPC frame header) and are
/// handed on first.
struct Prefixed {
    prefix: std::collections::VecDeque<Frame<Bytes>>,
    rest: Body,
}

/// A gRPC message frame starts with a compression flag and a 4-byte big-endian length.
const FRAME_HEADER: usize = 5;

impl Prefixed {
    /// Reads until the first frame header is in hand, the body ends, or a non-data frame comes.
    async fn peek(mut rest: Body) -> Result<Self, BoxError> {
        use http_body_util::BodyExt;
        let mut prefix = std::collections::VecDeque::new();
        let mut have = 0;
        while have < FRAME_HEADER {
            let Some(frame) = rest.frame().await else {
                break;
            };
            let frame = frame.map_err(BoxError::from)?;
            let data = frame.data_ref().map(Bytes::len);
            prefix.push_back(frame);
            match data {
                Some(n) => have += n,
                None => break,
            }
        }
        Ok(Self { prefix, rest })
    }

    /// The length the first message declares (its frame header included), when known.
    fn first_message_len(&self) -> Option<usize> {
        let mut header = [0u8; FRAME_HEADER];
        let mut filled = 0;
        for frame in &self.prefix {
            let Some(data) = frame.data_ref() else {
                break;
            };
            let take = (FRAME_HEADER - filled).min(data.len());
            header[filled..filled + take].copy_from_slice(&data[..take]);
            filled += take;
            if filled == FRAME_HEADER {
                let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                return Some(FRAME_HEADER.saturating_add(len as usize));
            }
        }
        None
    }
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(frame) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// A request body that can be handed to another attempt as long as no attempt has taken it,
/// and that refuses more than `limit` bytes.
///
/// Its size hint is unknown on purpose: tonic-web reports the size of a gRPC-Web text body
/// before base64 decoding, and hyper would send that as a wrong `content-length`.
struct Replayable {
    slot: Arc<Mutex<Option<Body>>>,
    limit: usize,
    too_large: Arc<AtomicBool>,
}

impl Replayable {
    fn new(body: Body, limit: usize) -> Self {
        Self {
            slot: Arc::new(Mutex::new(Some(body))),
            limit,
            too_large: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The body of one attempt.
    fn attempt(&self) -> Body {
        Body::new(AttemptBody {
            slot: self.slot.clone(),
            body: None,
            seen: 0,
            limit: self.limit,
            too_large: self.too_large.clone(),
        })
    }

    /// True while no attempt has read the body.
    fn untouched(&self) -> bool {
        self.slot.lock().map(|s| s.is_some()).unwrap_or(false)
    }

    fn too_large(&self) -> bool {
        self.too_large.load(Ordering::Relaxed)
    }
}

struct AttemptBody {
    slot: Arc<Mutex<Option<Body>>>,
    body: Option<Body>,
    seen: usize,
    limit: usize,
    too_large: Arc<AtomicBool>,
}

/// The request body was larger than the gateway accepts.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than {0} bytes")]
struct TooLarge(usize);

impl HttpBody for AttemptBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.body.is_none() {
            this.body = this.slot.lock().ok().and_then(|mut s| s.take());
        }
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len());
                    if this.seen > this.limit {
                        this.too_large.store(true, Ordering::Relaxed);
                        this.body = None;
                        return Poll::Ready(Some(Err(TooLarge(this.limit).into())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(status))) => Poll::Ready(Some(Err(status.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_come_from_grpc_paths() {
        assert_eq!(
            service_of("/marquee.catalog.v1.CatalogService/GetShow"),
            Some("marquee.catalog.v1.CatalogService")
        );
        assert_eq!(
            service_of("/grpc.health.v1.Health/Watch"),
            Some("grpc.health.v1.Health")
        );
        assert_eq!(service_of("/"), None);
        assert_eq!(service_of("/index.html"), None);
        assert_eq!(service_of("/a/b/c"), None);
        assert_eq!(service_of("/a/"), None);
        assert!(is_reflection(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(is_reflection(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
    }

    #[tokio::test]
    async fn the_first_message_length_is_read_ahead_and_handed_on() {
        use http_body_util::BodyExt;
        // A frame header split over two chunks: flag 0, length 1000.
        let chunks = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(&[0, 0, 0]))),
            Ok(Frame::data(Bytes::from_static(&[3, 232, 7, 7]))),
            Ok(Frame::data(Bytes::from_static(b"rest"))),
        ];
        let body = Body::new(http_body_util::StreamBody::new(tokio_stream::iter(chunks)));
        let peeked = Prefixed::peek(body).await.expect("peek");
        assert_eq!(peeked.first_message_len(), Some(1005));
        let bytes = peeked.collect().await.expect("read").to_bytes();
        assert_eq!(&bytes[..], b"\0\0\0\x03\xe8\x07\x07rest");

        // An empty body declares nothing.
        let empty = Prefixed::peek(Body::empty()).await.expect("peek");
        assert_eq!(empty.first_message_len(), None);
    }

    #[tokio::test]
    async fn a_body_is_replayable_until_read_and_limited() {
        use http_body_util::BodyExt;
        let body = Replayable::new(
            Body::new(http_body_util::Full::new(Bytes::from_static(b"12345"))),
            10,
        );
        drop(body.attempt());
        assert!(
            body.untouched(),
            "an attempt that never read leaves the body"
        );
        let bytes = body.attempt().collect().await.expect("read").to_bytes();
        assert_eq!(&bytes[..], b"12345");
        assert!(!body.untouched());

        let small = Replayable::new(
            Body::new(http_body_util::Full::new(Bytes::from_static(b"12345"))),
            4,
        );
        assert!(small.attempt().collect().await.is_err());
        assert!(small.too_large());
    }
}
