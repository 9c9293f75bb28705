//! What every Marquee service stands on.
//!
//! - [`config`]: typed, layered configuration (defaults, an optional TOML file, `MARQUEE_`
//!   environment variables) with errors that name the setting; [`config::Secret`] for values that
//!   must never be printed.
//! - [`telemetry`]: `tracing` with pretty or JSON logs, OpenTelemetry OTLP export when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C trace context in gRPC metadata.
//! - [`server`]: the server builder every service uses: health, reflection, gRPC-Web with CORS,
//!   deadlines, concurrency limits, load shedding, request ids, graceful drain.
//! - [`validation`] and [`status`]: field violations in the domain, and the one way they (and
//!   other errors) become a `tonic::Status` with google.rpc details.
//! - [`auth`]: access-token verification and the verified [`auth::Caller`] of a call.
//! - [`events`]: the transactional outbox, its relay, and the bus (Redis Streams or in-process).
//! - [`db`], [`cache`], [`idempotency`], [`paging`]: storage helpers shared by the services.
//! - [`keys`]: Ed25519 signing keys and JWKS documents (access tokens, ticket tokens).
//! - [`ratelimit`]: keyed token buckets and the `RESOURCE_EXHAUSTED` status they answer with.

#![forbid(unsafe_code)]

pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod events;
mod http_routes;
pub mod idempotency;
pub mod keys;
pub mod middleware;
pub mod paging;
pub mod ratelimit;
pub mod redis;
pub mod server;
pub mod status;
pub mod telemetry;
pub mod validation;

pub use tokio_util::sync::CancellationToken;
