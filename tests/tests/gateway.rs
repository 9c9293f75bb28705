//! The gateway through real listeners on 127.0.0.1:0: a catalog backend (the real service on
//! SQLite), two "echo" backends (tonic servers with the platform's `AuthLayer` that answer any
//! method and report which backend answered, whom they saw as caller and which headers arrived),
//! and the gateway routing to them. Access tokens are minted here with a test Ed25519 key whose
//! JWKS the gateway and the echo backends trust.

mod common;

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::StreamBody;
use marquee_gateway::{Gateway, GatewayConfig, RateLimit};
use marquee_platform::auth::{AUDIENCE, AuthLayer, Claims, ISSUER, Role, Verifier};
use marquee_proto::catalog::v1::{
    self as pb, catalog_admin_service_client::CatalogAdminServiceClient,
    catalog_service_client::CatalogServiceClient,
};
use prost::Message as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
    sync::oneshot,
};
use tonic::{
    Code,
    body::Body,
    service::Routes,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{HealthCheckResponse, health_check_response::ServingStatus};
use tonic_types::StatusExt as _;

const CATALOG: &str = "marquee.catalog.v1.CatalogService";
const ADMIN: &str = "marquee.catalog.v1.CatalogAdminService";
const HEALTH: &str = "grpc.health.v1.Health";
const ORIGIN: &str = "http://localhost:5173";

// ----- access tokens ----------------------------------------------------------------------------

/// A test signing key and its JWKS.
struct Keys {
    encoding: jsonwebtoken::EncodingKey,
    jwks: jsonwebtoken::jwk::JwkSet,
}

impl Keys {
    fn new(seed: u8, kid: &str) -> Keys {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let der = signing.to_pkcs8_der().expect("pkcs8");
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(signing.verifying_key().as_bytes());
        let jwks = serde_json::from_value(serde_json::json!({
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]
        }))
        .expect("jwks");
        Keys {
            encoding: jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
            jwks,
        }
    }

    fn verifier(&self) -> Verifier {
        let verifier = Verifier::new();
        assert_eq!(verifier.set_keys(&self.jwks), 1);
        verifier
    }

    fn mint_with(&self, kid: &str, subject: &str, expires_in: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: subject.into(),
            iat: now,
            exp: now + expires_in,
            jti: uuid::Uuid::now_v7().to_string(),
            roles: vec![Role::Customer],
            theatres: Vec::new(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("sign")
    }

    fn mint(&self, subject: &str) -> String {
        self.mint_with("test-key", subject, 600)
    }
}

fn bearer<T>(mut req: tonic::Request<T>, token: &str) -> tonic::Request<T> {
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    req
}

// ----- echo backends ----------------------------------------------------------------------------

/// Answers every call with one empty message and OK, and reports in its response headers which
/// backend answered and what it received. `x-echo-delay-ms` makes it wait first.
#[derive(Clone)]
struct Echo {
    name: &'static str,
    calls: Arc<AtomicUsize>,
}

impl<B: Send + 'static> tower::Service<Request<B>> for Echo {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let name = self.name;
        Box::pin(async move {
            let delay = req
                .headers()
                .get("x-echo-delay-ms")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            if let Some(ms) = delay {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let caller = req
                .extensions()
                .get::<marquee_platform::auth::Caller>()
                .map(|c| c.subject.clone())
                .unwrap_or_default();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let frames = vec![
                Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
                Ok(http_body::Frame::trailers(trailers)),
            ];
            let mut response =
                Response::new(Body::new(StreamBody::new(tokio_stream::iter(frames))));
            let h = response.headers_mut();
            h.insert("content-type", HeaderValue::from_static("application/grpc"));
            h.insert("x-echo-backend", HeaderValue::from_static(name));
            h.insert(
                "x-echo-caller",
                HeaderValue::from_str(&caller).unwrap_or(HeaderValue::from_static("?")),
            );
            for (from, to) in [
                ("traceparent", "x-echo-traceparent"),
                ("x-request-id", "x-echo-request-id"),
                ("grpc-timeout", "x-echo-grpc-timeout"),
            ] {
                if let Some(v) = req.headers().get(from) {
                    h.insert(to, v.clone());
                }
            }
            Ok(response)
        })
    }
}

/// A running echo backend.
struct EchoServer {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

async fn echo(name: &'static str, verifier: Verifier) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let calls = Arc::new(AtomicUsize::new(0));
    let service = Echo {
        name,
        calls: calls.clone(),
    };
    let mut routes = Routes::default();
    let routes = Routes::from(std::mem::take(routes.axum_router_mut()).fallback_service(service));
    let (stop, rx) = oneshot::channel::<()>();
    tokio::spawn(
        Server::builder()
            .layer(AuthLayer::new(verifier))
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = rx.await;
            }),
    );
    EchoServer {
        addr,
        calls,
        _stop: stop,
    }
}

/// An address where nothing listens (a listener bound, then closed).
async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

// ----- the gateway ------------------------------------------------------------------------------

struct TestGateway {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl TestGateway {
    async fn start(config: GatewayConfig, verifier: Verifier) -> TestGateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gateway = Gateway::new(config, verifier).expect("valid config");
        let (stop, rx) = oneshot::channel::<()>();
        tokio::spawn(gateway.serve(listener, async {
            let _ = rx.await;
        }));
        TestGateway { addr, _stop: stop }
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A gateway config routing the catalog and health to `catalog`, the admin service to `admin`.
fn config(catalog: SocketAddr, admin: &[String]) -> GatewayConfig {
    let mut routes = BTreeMap::new();
    routes.insert(CATALOG.to_owned(), vec![url(catalog)]);
    routes.insert(HEALTH.to_owned(), vec![url(catalog)]);
    routes.insert(ADMIN.to_owned(), admin.to_vec());
    GatewayConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        routes,
        cors_allowed_origins: vec![ORIGIN.to_owned()],
        ..GatewayConfig::default()
    }
}

async fn catalog_app(test: &str) -> TestApp {
    TestApp::spawn(test, Backend::Sqlite, true)
        .await
        .expect("sqlite is always available")
}

// ----- raw HTTP/1.1 gRPC-Web --------------------------------------------------------------------

/// One HTTP/1.1 request on a fresh connection; the status line, headers and de-chunked body.
async fn http1(addr: SocketAddr, request: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await;
    read.expect("response in time").expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end]).expect("hex").trim(),
            16,
        )
        .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Splits a gRPC-Web body into its data frames and its trailers.
fn frames(body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut data = Vec::new();
    let mut trailers = String::new();
    let mut rest = body;
    while rest.len() >= 5 {
        let flag = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let payload = rest[5..5 + len].to_vec();
        if flag & 0x80 != 0 {
            trailers = String::from_utf8(payload).expect("trailers");
        } else {
            data.push(payload);
        }
        rest = &rest[5 + len..];
    }
    (data, trailers)
}

fn frame(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Binary,
    Text,
}

impl Mode {
    fn content_type(self) -> &'static str {
        match self {
            Mode::Binary => "application/grpc-web+proto",
            Mode::Text => "application/grpc-web-text",
        }
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A gRPC-Web call over HTTP/1.1; returns the HTTP status line, headers, data frames and the
/// call's grpc-status (from the headers of a trailers-only answer, or the trailer frame).
async fn grpc_web(
    addr: SocketAddr,
    mode: Mode,
    path: &str,
    extra_headers: &str,
    message: &impl prost::Message,
) -> (String, Vec<(String, String)>, Vec<Vec<u8>>, String) {
    let body = match mode {
        Mode::Binary => frame(message),
        Mode::Text => b64().encode(frame(message)).into_bytes(),
    };
    let ct = mode.content_type();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {ct}\r\naccept: {ct}\r\n\
         x-grpc-web: 1\r\n{extra_headers}origin: {ORIGIN}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let (status, headers, body) = http1(addr, &req).await;
    let body = match mode {
        Mode::Binary => body,
        Mode::Text => {
            // Frames may be base64-encoded separately (each with its padding).
            let mut decoded = Vec::new();
            for quad in body.chunks(4) {
                decoded.extend(b64().decode(quad).expect("base64"));
            }
            decoded
        }
    };
    let (data, trailers) = frames(&body);
    let grpc_status = header(&headers, "grpc-status")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            trailers
                .lines()
                .find_map(|l| l.strip_prefix("grpc-status:"))
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
    (status, headers, data, grpc_status)
}

// ----- the tests --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_grpc_web_calls_and_streams_pass_through() {
    let keys = Keys::new(7, "test-key");
    let app = catalog_app("gateway_pass_through").await;
    let admin = echo("a", keys.verifier()).await;
    let gateway = TestGateway::start(config(app.addr, &[url(admin.addr)]), keys.verifier()).await;

    // gRPC with a tonic client: a public unary call, answered by the catalog behind the gateway.
    let mut client = CatalogServiceClient::new(gateway.channel().await);
    let mut req = tonic::Request::new(pb::ListCitiesRequest::default());
    req.metadata_mut()
        .insert("x-request-id", "gw-request-1".parse().expect("value"));
    let response = client.list_cities(req).await.expect("list cities");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("gw-request-1")
    );
    let cities = response.into_inner().cities;
    assert!(!cities.is_empty(), "the demo cities");

    for mode in [Mode::Binary, Mode::Text] {
        // gRPC-Web unary.
        let (status, headers, data, grpc_status) = grpc_web(
            gateway.addr,
            mode,
            &format!("/{CATALOG}/ListCities"),
            "",
            &pb::ListCitiesRequest::default(),
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(grpc_status, "0");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some(ORIGIN)
        );
        let exposed = header(&headers, "access-control-expose-headers").unwrap_or_default();
        for name in [
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "x-request-id",
        ] {
            assert!(exposed.contains(name), "{name} in {exposed}");
        }
        assert!(
            header(&headers, "x-request-id").is_some(),
            "generated request id"
        );
        let listed = pb::ListCitiesResponse::decode(data[0].as_slice()).expect("decode");
        assert_eq!(listed.cities.len(), cities.len());

        // gRPC-Web server stream: health Watch sends the current status and then stays open;
        // the client's deadline ends it with DEADLINE_EXCEEDED in the trailers.
        let (status, _, data, grpc_status) = grpc_web(
            gateway.addr,
            mode,
            &format!("/{HEALTH}/Watch"),
            "grpc-timeout: 1500m\r\n",
            &tonic_health::pb::HealthCheckRequest {
                service: CATALOG.into(),
            },
        )
        .await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(!data.is_empty(), "at least one streamed message");
        for message in &data {
            let update = HealthCheckResponse::decode(message.as_slice()).expect("decode");
            assert!(matches!(
                update.status(),
                ServingStatus::Serving | ServingStatus::NotServing
            ));
        }
        assert_eq!(grpc_status, "4", "the stream ends at its deadline");
    }

    // The same over gRPC: the stream ends DEADLINE_EXCEEDED, not CANCELLED.
    let mut health = tonic_health::pb::health_client::HealthClient::new(gateway.channel().await);
    let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: CATALOG.into(),
    });
    req.metadata_mut()
        .insert("grpc-timeout", "1500m".parse().expect("value"));
    let mut stream = health.watch(req).await.expect("watch").into_inner();
    let first = stream.message().await.expect("first update");
    assert!(first.is_some());
    let end = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(end.code(), Code::DeadlineExceeded, "{end:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_static_files_unknown_services_and_reflection() {
    let keys = Keys::new(7, "test-key");
    let admin = echo("a", keys.verifier()).await;
    let site = tempfile::tempdir().expect("dir");
    std::fs::write(site.path().join("index.html"), "<h1>Marquee</h1>").expect("write");
    std::fs::write(site.path().join("app.js"), "console.log('marquee')").expect("write");
    let mut cfg = config(admin.addr, &[url(admin.addr)]);
    cfg.static_dir = Some(site.path().to_path_buf());
    let gateway = TestGateway::start(cfg, keys.verifier()).await;

    // CORS preflight from an allowed origin, and from another.
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /{ADMIN}/CreateCity HTTP/1.1\r\nhost: {}\r\norigin: {origin}\r\n\
             access-control-request-method: POST\r\n\
             access-control-request-headers: content-type,x-grpc-web,authorization\r\n\
             connection: close\r\n\r\n",
            gateway.addr
        )
    };
    let (status, headers, _) = http1(gateway.addr, preflight(ORIGIN).as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(ORIGIN)
    );
    let allowed = header(&headers, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("x-grpc-web") && allowed.contains("authorization"),
        "{allowed}"
    );
    let (_, headers, _) = http1(gateway.addr, preflight("https://evil.example").as_bytes()).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    assert_eq!(
        admin.calls.load(Ordering::SeqCst),
        0,
        "preflights stay at the gateway"
    );

    // Static files of the web app.
    let get = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            gateway.addr
        )
    };
    let (status, headers, body) = http1(gateway.addr, get("/").as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(header(&headers, "content-type").is_some_and(|c| c.starts_with("text/html")));
    assert_eq!(body, b"<h1>Marquee</h1>");
    let (status, _, body) = http1(gateway.addr, get("/app.js").as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, b"console.log('marquee')");
    let (status, _, _) = http1(gateway.addr, get("/missing.js").as_bytes()).await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");

    // An unknown service is UNIMPLEMENTED, with or without a token, over gRPC-Web and gRPC.
    let (_, _, _, grpc_status) = grpc_web(
        gateway.addr,
        Mode::Binary,
        "/marquee.nothing.v1.NothingService/DoNothing",
        "",
        &pb::ListCitiesRequest::default(),
    )
    .await;
    assert_eq!(grpc_status, "12", "UNIMPLEMENTED");
    let mut client = tonic::client::Grpc::new(gateway.channel().await);
    client.ready().await.expect("ready");
    let err = client
        .unary::<_, pb::ListCitiesResponse, _>(
            bearer(
                tonic::Request::new(pb::ListCitiesRequest::default()),
                &keys.mint("u1"),
            ),
            "/marquee.nothing.v1.NothingService/DoNothing"
                .parse()
                .expect("path"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("unknown service");
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");

    // Reflection is never forwarded.
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest,
    };
    let mut reflection = ServerReflectionClient::new(gateway.channel().await);
    let err = reflection
        .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .expect_err("reflection refused");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(admin.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_methods_need_a_valid_token_which_is_forwarded() {
    let keys = Keys::new(7, "test-key");
    let admin = echo("a", keys.verifier()).await;
    let gateway = TestGateway::start(config(admin.addr, &[url(admin.addr)]), keys.verifier()).await;
    let mut client = CatalogAdminServiceClient::new(gateway.channel().await);
    let create = || tonic::Request::new(pb::CreateCityRequest::default());

    let err = client.create_city(create()).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    let other = Keys::new(9, "test-key");
    let bad_tokens = [
        "not-a-jwt".to_owned(),
        other.mint("u1"),                         // signed by another key
        keys.mint_with("test-key", "u1", -3600),  // expired
        keys.mint_with("unknown-kid", "u1", 600), // unknown key id
    ];
    for token in &bad_tokens {
        let err = client
            .create_city(bearer(create(), token))
            .await
            .expect_err("bad token");
        assert_eq!(err.code(), Code::Unauthenticated, "{token}: {err:?}");
    }
    assert_eq!(
        admin.calls.load(Ordering::SeqCst),
        0,
        "nothing unauthenticated reaches the backend"
    );

    // A valid token is forwarded: the backend verifies it itself and sees the caller, along with
    // the trace context, the request id and the deadline.
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut req = bearer(create(), &keys.mint("user-42"));
    req.metadata_mut()
        .insert("traceparent", traceparent.parse().expect("value"));
    req.metadata_mut()
        .insert("x-request-id", "gw-request-2".parse().expect("value"));
    let response = client.create_city(req).await.expect("forwarded");
    let seen = |name: &str| {
        response
            .metadata()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(seen("x-echo-caller").as_deref(), Some("user-42"));
    assert_eq!(seen("x-echo-traceparent").as_deref(), Some(traceparent));
    assert_eq!(seen("x-echo-request-id").as_deref(), Some("gw-request-2"));
    assert!(
        seen("x-echo-grpc-timeout").is_some(),
        "a deadline is always forwarded"
    );
    assert_eq!(admin.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_resource_exhausted_with_retry_info() {
    let keys = Keys::new(7, "test-key");
    let admin = echo("a", keys.verifier()).await;
    let mut cfg = config(admin.addr, &[url(admin.addr)]);
    cfg.rate_limits.per_user = RateLimit {
        requests_per_minute: 1,
        burst: 2,
    };
    cfg.rate_limits.per_address = RateLimit {
        requests_per_minute: 1,
        burst: 4,
    };
    let gateway = TestGateway::start(cfg, keys.verifier()).await;
    let mut client = CatalogAdminServiceClient::new(gateway.channel().await);
    let call = |user: &str| {
        bearer(
            tonic::Request::new(pb::CreateCityRequest::default()),
            &keys.mint(user),
        )
    };

    // Per user: two calls, then the third is refused with a retry delay.
    client.create_city(call("alice")).await.expect("1st");
    client.create_city(call("alice")).await.expect("2nd");
    let err = client.create_city(call("alice")).await.expect_err("3rd");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    let delay = err
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(60),
        "{delay:?}"
    );

    // Another user still has a bucket of their own; the address (4 calls so far) has none left.
    client.create_city(call("bob")).await.expect("bob's first");
    let err = client
        .create_city(call("carol"))
        .await
        .expect_err("address limit");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.get_error_details().retry_info().is_some());
    assert_eq!(admin.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_balanced_and_survive_a_dead_endpoint() {
    let keys = Keys::new(7, "test-key");
    let a = echo("a", keys.verifier()).await;
    let b = echo("b", keys.verifier()).await;
    let token = keys.mint("user-1");
    let call = || {
        bearer(
            tonic::Request::new(pb::CreateCityRequest::default()),
            &token,
        )
    };

    let gateway =
        TestGateway::start(config(a.addr, &[url(a.addr), url(b.addr)]), keys.verifier()).await;
    let mut client = CatalogAdminServiceClient::new(gateway.channel().await);
    for _ in 0..40 {
        client.create_city(call()).await.expect("balanced call");
    }
    let (at_a, at_b) = (
        a.calls.load(Ordering::SeqCst),
        b.calls.load(Ordering::SeqCst),
    );
    assert_eq!(at_a + at_b, 40);
    assert!(
        at_a > 0 && at_b > 0,
        "both backends serve: a {at_a}, b {at_b}"
    );

    // One endpoint of the service is down: every call still succeeds.
    let dead = dead_address().await;
    let before = a.calls.load(Ordering::SeqCst);
    let gateway =
        TestGateway::start(config(a.addr, &[url(dead), url(a.addr)]), keys.verifier()).await;
    let mut client = CatalogAdminServiceClient::new(gateway.channel().await);
    for i in 0..20 {
        let response = client.create_city(call()).await;
        assert!(response.is_ok(), "call {i}: {response:?}");
    }
    assert_eq!(a.calls.load(Ordering::SeqCst) - before, 20);

    // Every endpoint down: UNAVAILABLE.
    let gateway = TestGateway::start(config(a.addr, &[url(dead)]), keys.verifier()).await;
    let mut client = CatalogAdminServiceClient::new(gateway.channel().await);
    let err = client
        .create_city(call())
        .await
        .expect_err("nothing to reach");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_and_request_sizes_are_enforced() {
    let keys = Keys::new(7, "test-key");
    let admin = echo("a", keys.verifier()).await;
    let mut cfg = config(admin.addr, &[url(admin.addr)]);
    cfg.max_request_bytes = 256;
    cfg.max_deadline_ms = 60_000;
    let gateway = TestGateway::start(cfg, keys.verifier()).await;
    let token = keys.mint("user-1");
    let auth = format!("authorization: Bearer {token}\r\n");

    // A request larger than the gateway accepts is not forwarded. Checked first: a call the
    // gateway gave up on (below) may still reach the backend later and count there.
    let calls = admin.calls.load(Ordering::SeqCst);
    let big = pb::CreateCityRequest {
        request_id: "x".repeat(1024),
        city: None,
    };
    let (_, _, _, grpc_status) = grpc_web(
        gateway.addr,
        Mode::Binary,
        &format!("/{ADMIN}/CreateCity"),
        &auth,
        &big,
    )
    .await;
    assert_eq!(grpc_status, "8", "RESOURCE_EXHAUSTED");
    assert_eq!(admin.calls.load(Ordering::SeqCst), calls);

    // A backend slower than the client's deadline: DEADLINE_EXCEEDED, not CANCELLED.
    let (_, _, _, grpc_status) = grpc_web(
        gateway.addr,
        Mode::Binary,
        &format!("/{ADMIN}/CreateCity"),
        &format!("{auth}grpc-timeout: 300m\r\nx-echo-delay-ms: 20000\r\n"),
        &pb::CreateCityRequest::default(),
    )
    .await;
    assert_eq!(grpc_status, "4", "DEADLINE_EXCEEDED");

    // A deadline that cannot be met at all.
    let (_, _, _, grpc_status) = grpc_web(
        gateway.addr,
        Mode::Text,
        &format!("/{ADMIN}/CreateCity"),
        &format!("{auth}grpc-timeout: 1n\r\n"),
        &pb::CreateCityRequest::default(),
    )
    .await;
    assert_eq!(grpc_status, "4", "DEADLINE_EXCEEDED");

    // Within both limits it goes through.
    let (_, _, data, grpc_status) = grpc_web(
        gateway.addr,
        Mode::Binary,
        &format!("/{ADMIN}/CreateCity"),
        &format!("{auth}grpc-timeout: 10S\r\n"),
        &pb::CreateCityRequest::default(),
    )
    .await;
    assert_eq!(grpc_status, "0");
    assert_eq!(data.len(), 1);
}

/// The way a deployment runs it: the gateway takes identity's public keys with GetJwks, so a
/// customer who signs up and in through the gateway can call protected methods through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_tokens_work_through_the_gateway_with_keys_from_get_jwks() {
    let app = TestApp::spawn("gateway_identity", Backend::Sqlite, false)
        .await
        .expect("sqlite is always available");
    let mut config = marquee::MarqueeConfig::default();
    config.identity.endpoint = Some(app.url());
    let identity = "marquee.identity.v1.IdentityService";
    config
        .gateway
        .routes
        .insert(identity.to_owned(), vec![app.url()]);
    config.gateway.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let keys = marquee_platform::CancellationToken::new();
    let gateway = marquee::gateway(&config, keys.clone())
        .await
        .expect("gateway with identity's keys");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, rx) = oneshot::channel::<()>();
    tokio::spawn(gateway.serve(listener, async {
        let _ = rx.await;
    }));
    let channel = Channel::from_shared(url(addr))
        .expect("url")
        .connect()
        .await
        .expect("connect");

    use marquee_proto::identity::v1::{
        GetMeRequest, SignInRequest, SignUpRequest, identity_service_client::IdentityServiceClient,
    };
    let mut client = IdentityServiceClient::new(channel.clone());
    client
        .sign_up(SignUpRequest {
            request_id: rid(),
            email: "gate@example.com".into(),
            phone: String::new(),
            password: PASSWORD.into(),
            consents: Vec::new(),
        })
        .await
        .expect("sign up through the gateway");
    let token = client
        .sign_in(SignInRequest {
            email: "gate@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("sign in through the gateway")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    let err = client.get_me(GetMeRequest {}).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let me = IdentityServiceClient::with_interceptor(channel, Bearer::new(&token))
        .get_me(GetMeRequest {})
        .await
        .expect("a protected call with identity's token")
        .into_inner();
    assert_eq!(me.user.expect("user").email, "gate@example.com");
    let _ = stop.send(());
    keys.cancel();
    app.stop().await;
}
