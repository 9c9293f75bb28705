//! The server builder every service uses.
//!
//! One listener serves every service added to it, over gRPC (HTTP/2) and gRPC-Web (HTTP/1.1 and
//! HTTP/2, binary and text) with CORS, plus:
//! - `grpc.health.v1.Health` with a status per service, NOT_SERVING until the readiness checks
//!   (database, Redis) pass, re-checked periodically, and NOT_SERVING again from the moment
//!   shutdown begins;
//! - reflection, v1 and v1alpha, when configured (internal listeners only);
//! - the layers of [`crate::middleware`]: request id and span, deadlines, concurrency limit,
//!   load shedding;
//! - graceful shutdown: on the shutdown future, health flips, new connections are refused,
//!   [`ServerBuilder::drain_token`] is cancelled so server streams end, and in-flight calls get
//!   the configured grace period before connections are closed.

use std::{convert::Infallible, future::Future, pin::Pin, sync::Arc, time::Duration};

use http::{HeaderName, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    body::Body,
    server::NamedService,
    service::RoutesBuilder,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer};
use tower_http::{
    classify::{GrpcCode, GrpcErrorsAsFailures, SharedClassifier},
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};

use crate::{
    auth::{AuthLayer, Verifier},
    config::ServerConfig,
    http_routes::HttpRoutesLayer,
    middleware::{DeadlineLayer, make_span},
};

/// A readiness check: true while the dependency answers.
pub type ReadinessCheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// Builds and runs one listener. See the module documentation.
pub struct ServerBuilder {
    config: ServerConfig,
    routes: RoutesBuilder,
    names: Vec<&'static str>,
    checks: Vec<(&'static str, ReadinessCheck)>,
    drain: CancellationToken,
    verifier: Verifier,
    http: axum::Router,
    http_paths: Vec<String>,
}

impl ServerBuilder {
    /// A listener with no services yet.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            routes: RoutesBuilder::default(),
            names: Vec::new(),
            checks: Vec::new(),
            drain: CancellationToken::new(),
            verifier: Verifier::new(),
            http: axum::Router::new(),
            http_paths: Vec::new(),
        }
    }

    /// Serves a plain HTTP endpoint (for example a provider's webhook) at exactly `path`.
    pub fn add_http_route(mut self, path: &str, route: axum::routing::MethodRouter) -> Self {
        self.http = self.http.route(path, route);
        self.http_paths.push(path.to_owned());
        self
    }

    /// Verifies bearer tokens with `verifier` (without one, every token is refused as signed by
    /// an unknown key).
    pub fn with_verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// Cancelled when shutdown begins. Server streams select on it and end, so that the drain
    /// does not wait for streams that would never end by themselves.
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }

    /// Serves a generated tonic service.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Adds a readiness check (`name` is used in logs): health reports SERVING only while every
    /// check passes.
    pub fn readiness_check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()) as Pin<Box<_>>)));
        self
    }

    /// The fully qualified names of the services added so far.
    pub fn service_names(&self) -> &[&'static str] {
        &self.names
    }

    /// Serves on `listener` until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let Self {
            config,
            mut routes,
            names,
            checks,
            drain,
            verifier,
            http,
            http_paths,
        } = self;

        let (reporter, health_service) = tonic_health::server::health_reporter();
        routes.add_service(health_service);
        for name in names.iter().copied().chain([""]) {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        if config.reflection {
            let v1 = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(marquee_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()?;
            let v1alpha = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(marquee_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1alpha()?;
            routes.add_service(v1).add_service(v1alpha);
        }

        let health_task = tokio::spawn(watch_health(
            reporter.clone(),
            names.clone(),
            checks,
            Duration::from_millis(config.health_check_interval_ms.max(100)),
            drain.clone(),
        ));

        let classifier = GrpcErrorsAsFailures::new()
            .with_success(GrpcCode::Cancelled)
            .with_success(GrpcCode::InvalidArgument)
            .with_success(GrpcCode::NotFound)
            .with_success(GrpcCode::AlreadyExists)
            .with_success(GrpcCode::PermissionDenied)
            .with_success(GrpcCode::FailedPrecondition)
            .with_success(GrpcCode::OutOfRange)
            .with_success(GrpcCode::Unauthenticated);
        let layers = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new(SharedClassifier::new(classifier))
                    .make_span_with(|req: &Request<Body>| make_span(req))
                    .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
                    .on_failure(DefaultOnFailure::new().level(tracing::Level::WARN)),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(HttpRoutesLayer {
                router: http,
                paths: http_paths.into(),
            })
            .layer(cors(&config))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(
                config.max_concurrent_requests.max(1),
            ))
            .layer(AuthLayer::new(verifier))
            .layer(DeadlineLayer {
                default: Duration::from_millis(config.request_timeout_ms.max(1)),
            })
            .into_inner();

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = Server::builder()
            .accept_http1(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(layers)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(incoming, drain.clone().cancelled_owned());
        tokio::pin!(server);

        tokio::select! {
            result = &mut server => {
                drain.cancel();
                health_task.abort();
                return result.map_err(Into::into);
            }
            () = shutdown => {}
        }

        tracing::info!("shutting down: draining in-flight calls");
        drain.cancel();
        health_task.abort();
        for name in names.iter().copied().chain([""]) {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        match tokio::time::timeout(grace, server).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => {
                tracing::warn!(
                    grace_ms = config.shutdown_grace_ms,
                    "grace period over; closing remaining connections"
                );
                Ok(())
            }
        }
    }
}

fn cors(config: &ServerConfig) -> CorsLayer {
    cors_layer(&config.cors_allowed_origins)
}

/// CORS for gRPC-Web from `origins` (`*` allows any): the gRPC-Web request headers, and the
/// status, details and request-id response headers exposed to browser code. Place it outside
/// `tonic_web::GrpcWebLayer`, which answers 400 to a preflight.
pub fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    let h = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            h("content-type"),
            h("x-grpc-web"),
            h("x-user-agent"),
            h("grpc-timeout"),
            h("authorization"),
            h("x-request-id"),
            h("traceparent"),
            h("tracestate"),
        ])
        .expose_headers([
            h("grpc-status"),
            h("grpc-message"),
            h("grpc-status-details-bin"),
            h("x-request-id"),
        ])
        .max_age(Duration::from_secs(600))
}

async fn watch_health(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    checks: Vec<(&'static str, ReadinessCheck)>,
    interval: Duration,
    drain: CancellationToken,
) {
    let mut last: Option<bool> = None;
    loop {
        let mut ok = true;
        for (name, check) in &checks {
            if !check().await {
                if last != Some(false) {
                    tracing::warn!(dependency = name, "readiness check failed");
                }
                ok = false;
            }
        }
        if drain.is_cancelled() {
            return;
        }
        if last != Some(ok) {
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for name in names.iter().copied().chain([""]) {
                reporter.set_service_status(name, status).await;
            }
            last = Some(ok);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = drain.cancelled() => return,
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
