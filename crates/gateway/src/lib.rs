//! The gateway: the browsers' way in. A thin front that forwards every gRPC call by its path
//! (`/marquee.<area>.v1.<Service>/<Method>`) to the backends configured for that service, with
//! no per-method code.
//!
//! What lives where, outermost layer first (see [`Gateway::serve`]):
//! - request id (generated when absent) and a span per call carrying it and the caller's trace
//!   context; both headers are forwarded unchanged;
//! - [`web`]: the web app's static files for non-gRPC `GET` requests;
//! - CORS (the platform's, with the configured origins), then gRPC-Web (binary and text, HTTP/1.1
//!   and HTTP/2) translated by tonic-web;
//! - [`guard`]: reflection refused, access token checked for non-public methods, per-address and
//!   per-user token buckets (`RESOURCE_EXHAUSTED` with `RetryInfo`);
//! - [`deadline`]: the client's deadline capped by the configured maximum, streams included;
//! - [`proxy`]: the route table, balanced pooled channels, retry of calls that failed to
//!   connect, request size limit.
//!
//! [`config::GatewayConfig`] is its configuration.

#![forbid(unsafe_code)]

pub mod config;
mod deadline;
mod guard;
mod proxy;
mod web;

use std::{future::Future, path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use http::Request;
use marquee_platform::auth::Verifier;
use tokio::net::TcpListener;
use tonic::{
    body::Body,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    services::ServeDir,
    trace::TraceLayer,
};

pub use config::{GatewayConfig, RateLimit, RateLimits};

/// Reads a JWKS document (identity's public keys) from a file.
pub fn read_jwks(path: &Path) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("gateway.jwks_file: cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "gateway.jwks_file: {} is not a JWKS document",
            path.display()
        )
    })
}

/// A configured gateway, ready to serve.
pub struct Gateway {
    config: GatewayConfig,
    verifier: Verifier,
}

impl Gateway {
    /// Validates `config`; access tokens are checked with `verifier`.
    pub fn new(config: GatewayConfig, verifier: Verifier) -> anyhow::Result<Self> {
        config.validate()?;
        Ok(Self { config, verifier })
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Serves on `listener` until `shutdown` completes, then lets in-flight calls finish for
    /// the configured grace period.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let Self { config, verifier } = self;
        let proxy = proxy::Proxy::new(&config)?;
        let guard = Arc::new(guard::GuardState::new(&config, verifier));

        // Buckets that have filled up again are forgotten, so that a stream of new addresses
        // cannot grow the limiter's memory without bound.
        let sweeper = {
            let guard = guard.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    guard.forget_idle();
                }
            })
        };

        let layers = ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_grpc().make_span_with(|req: &Request<Body>| {
                    marquee_platform::middleware::make_span(req)
                }),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(web::StaticFilesLayer {
                dir: config.static_dir.as_ref().map(ServeDir::new),
            })
            .layer(marquee_platform::server::cors_layer(
                &config.cors_allowed_origins,
            ))
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(guard::GuardLayer { state: guard })
            .layer(deadline::DeadlineLayer {
                max: config.max_deadline(),
            })
            .into_inner();

        // Every path falls through to the proxy: the routes are data, not generated services.
        let mut routes = Routes::default();
        let router = std::mem::take(routes.axum_router_mut()).fallback_service(proxy);
        let routes = Routes::from(router);

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = Server::builder()
            .accept_http1(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(layers)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stop_rx.await;
            });
        tokio::pin!(server);

        let result = tokio::select! {
            result = &mut server => result.map_err(Into::into),
            () = shutdown => {
                tracing::info!("gateway shutting down: draining in-flight calls");
                let _ = stop_tx.send(());
                let grace = Duration::from_millis(config.shutdown_grace_ms);
                match tokio::time::timeout(grace, &mut server).await {
                    Ok(result) => result.map_err(Into::into),
                    Err(_) => {
                        tracing::warn!(grace_ms = config.shutdown_grace_ms, "grace period over; closing remaining connections");
                        Ok(())
                    }
                }
            }
        };
        sweeper.abort();
        result
    }
}
