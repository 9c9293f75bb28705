//! The gateway's typed configuration: the `[gateway]` section of Marquee's configuration.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

pub use marquee_platform::ratelimit::RateLimit;
use serde::{Deserialize, Serialize};

/// A configuration error; its message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: setting `gateway.{setting}`: {why}")]
pub struct GatewayConfigError {
    setting: String,
    why: String,
}

fn invalid(setting: impl Into<String>, why: impl Into<String>) -> GatewayConfigError {
    GatewayConfigError {
        setting: setting.into(),
        why: why.into(),
    }
}

/// How the gateway listens, where it forwards, and what it lets through.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on (gRPC, gRPC-Web and the web app's files).
    pub listen: SocketAddr,
    /// Fully qualified service name (`marquee.catalog.v1.CatalogService`,
    /// `grpc.health.v1.Health`) -> the backend endpoints serving it (`http://10.0.0.7:50051`).
    /// Calls of a service with several endpoints are balanced over them. Service names keep
    /// their case, so set routes in the configuration file, not in environment variables.
    pub routes: BTreeMap<String, Vec<String>>,
    /// Methods callable without an access token: `package.Service/Method`, or
    /// `package.Service/*` for every method of a service.
    pub public_methods: Vec<String>,
    /// Browser origins allowed by CORS (`*` allows any).
    pub cors_allowed_origins: Vec<String>,
    /// The built web app: its files answer non-gRPC `GET` requests. None: such requests are 404.
    pub static_dir: Option<PathBuf>,
    /// Token-bucket rate limits.
    pub rate_limits: RateLimits,
    /// The longest deadline a forwarded call gets, in milliseconds; a client's `grpc-timeout`
    /// only shortens it. Server streams end with `DEADLINE_EXCEEDED` when it passes.
    pub max_deadline_ms: u64,
    /// Largest request body (all of a call's messages with their framing), in bytes.
    pub max_request_bytes: usize,
    /// How long connecting to a backend may take, in milliseconds.
    pub connect_timeout_ms: u64,
    /// How long in-flight calls may take to finish after a shutdown signal, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// A JWKS document (JSON) with identity's public keys, read at start-up. Without it every
    /// access token is refused.
    pub jwks_file: Option<PathBuf>,
    /// Take the caller's address for the per-address limit from the first `x-forwarded-for`
    /// entry. Only behind a proxy that sets it: clients can forge it.
    pub trust_forwarded_for: bool,
}

/// The per-user and per-address limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Per signed-in user (the access token's subject).
    pub per_user: RateLimit,
    /// Per client address.
    pub per_address: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_user: RateLimit::default(),
            per_address: RateLimit {
                requests_per_minute: 1200,
                burst: 120,
            },
        }
    }
}

/// The methods open without a token by default: catalog reads, seat maps, signing up and in,
/// refreshing, identity's public keys and the ticket-signing keys, client credentials, and
/// health.
pub fn default_public_methods() -> Vec<String> {
    [
        "marquee.catalog.v1.CatalogService/*",
        "marquee.identity.v1.IdentityService/SignUp",
        "marquee.identity.v1.IdentityService/SignIn",
        "marquee.identity.v1.IdentityService/Refresh",
        "marquee.identity.v1.IdentityService/GetJwks",
        "marquee.identity.v1.IdentityService/IssueClientToken",
        "marquee.seating.v1.SeatingService/GetSeatMap",
        "marquee.seating.v1.SeatingService/WatchSeats",
        "marquee.booking.v1.BookingService/GetTicketKeys",
        "grpc.health.v1.Health/*",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            routes: BTreeMap::new(),
            public_methods: default_public_methods(),
            cors_allowed_origins: vec!["*".to_owned()],
            static_dir: None,
            rate_limits: RateLimits::default(),
            max_deadline_ms: 30_000,
            max_request_bytes: 4 * 1024 * 1024,
            connect_timeout_ms: 2_000,
            shutdown_grace_ms: 10_000,
            jwks_file: None,
            trust_forwarded_for: false,
        }
    }
}

impl GatewayConfig {
    /// Checks every setting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), GatewayConfigError> {
        for (service, endpoints) in &self.routes {
            let setting = format!("routes.\"{service}\"");
            if !is_service_name(service) {
                return Err(invalid(
                    setting,
                    "not a fully qualified service name such as marquee.catalog.v1.CatalogService",
                ));
            }
            if service.starts_with("grpc.reflection.") {
                return Err(invalid(
                    setting,
                    "reflection is never exposed by the gateway",
                ));
            }
            if endpoints.is_empty() {
                return Err(invalid(setting, "no endpoints"));
            }
            for endpoint in endpoints {
                let uri: http::Uri = endpoint
                    .parse()
                    .map_err(|e| invalid(&setting, format!("{endpoint:?} is not a URL: {e}")))?;
                if !matches!(uri.scheme_str(), Some("http")) || uri.host().is_none() {
                    return Err(invalid(
                        &setting,
                        format!("{endpoint:?}: expected http://host:port"),
                    ));
                }
            }
        }
        for method in &self.public_methods {
            let m = method.trim_start_matches('/');
            let ok = m
                .split_once('/')
                .is_some_and(|(s, name)| is_service_name(s) && !name.is_empty());
            if !ok {
                return Err(invalid(
                    "public_methods",
                    format!("{method:?}: expected package.Service/Method or package.Service/*"),
                ));
            }
        }
        for (name, limit) in [
            ("rate_limits.per_user", self.rate_limits.per_user),
            ("rate_limits.per_address", self.rate_limits.per_address),
        ] {
            if limit.requests_per_minute > 0 && limit.burst == 0 {
                return Err(invalid(
                    format!("{name}.burst"),
                    "must be at least 1 while the limit is on",
                ));
            }
        }
        if self.max_deadline_ms == 0 {
            return Err(invalid("max_deadline_ms", "must be positive"));
        }
        if self.max_request_bytes == 0 {
            return Err(invalid("max_request_bytes", "must be positive"));
        }
        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "static_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(())
    }

    /// [`GatewayConfig::max_deadline_ms`] as a duration.
    pub fn max_deadline(&self) -> Duration {
        Duration::from_millis(self.max_deadline_ms)
    }
}

fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        GatewayConfig::default().validate().expect("valid");
    }

    #[test]
    fn bad_settings_are_named() {
        let mut config = GatewayConfig::default();
        config.routes.insert(
            "marquee.catalog.v1.CatalogService".into(),
            vec!["not a url".into()],
        );
        let err = config.validate().expect_err("bad endpoint").to_string();
        assert!(err.contains("gateway.routes"), "{err}");

        let mut config = GatewayConfig::default();
        config.routes.insert(
            "grpc.reflection.v1.ServerReflection".into(),
            vec!["http://127.0.0.1:1".into()],
        );
        assert!(config.validate().is_err());

        let config = GatewayConfig {
            public_methods: vec!["nonsense".into()],
            ..GatewayConfig::default()
        };
        let err = config.validate().expect_err("bad method").to_string();
        assert!(err.contains("public_methods"), "{err}");

        let mut config = GatewayConfig::default();
        config.rate_limits.per_user.burst = 0;
        let err = config.validate().expect_err("bad burst").to_string();
        assert!(err.contains("rate_limits.per_user.burst"), "{err}");
    }
}
