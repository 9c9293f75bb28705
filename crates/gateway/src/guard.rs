//! Admission at the gateway, before anything is forwarded: reflection is refused, an unknown
//! service is `UNIMPLEMENTED`, a call that
//! is not public needs a valid access token, and every call spends a token of its address's
//! bucket and, when signed in, of its user's bucket.
//!
//! The token is verified here only to keep unauthenticated traffic off the backends and to know
//! whose bucket to charge; the `authorization` header is forwarded unchanged and every backend
//! verifies it again and decides what the caller may do.

use std::{
    collections::HashSet,
    net::IpAddr,
    num::NonZeroU32,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use http::{Request, Response};
use marquee_platform::auth::{AuthError, Caller, Verifier};
use tonic::{Code, Status, body::Body, transport::server::TcpConnectInfo};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use crate::{
    config::{GatewayConfig, RateLimit},
    proxy::{is_reflection, service_of},
};

/// The methods open without a token.
#[derive(Debug, Default)]
pub(crate) struct PublicMethods {
    methods: HashSet<String>,
    services: HashSet<String>,
}

impl PublicMethods {
    pub(crate) fn new(list: &[String]) -> Self {
        let mut public = Self::default();
        for entry in list {
            let entry = entry.trim_start_matches('/');
            match entry.strip_suffix("/*") {
                Some(service) => public.services.insert(service.to_owned()),
                None => public.methods.insert(entry.to_owned()),
            };
        }
        public
    }

    /// True when the call at `path` (`/package.Service/Method`) needs no token.
    pub(crate) fn contains(&self, path: &str) -> bool {
        service_of(path).is_some_and(|service| {
            self.services.contains(service) || self.methods.contains(path.trim_start_matches('/'))
        })
    }
}

/// One keyed token bucket, or none when the limit is off.
struct Limiter<K: std::hash::Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn new(limit: RateLimit) -> Self {
        let Some(per_minute) = NonZeroU32::new(limit.requests_per_minute) else {
            return Self(None);
        };
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        Self(Some(RateLimiter::keyed(
            Quota::per_minute(per_minute).allow_burst(burst),
        )))
    }

    /// Ok, or how long until the key's next call is allowed.
    fn check(&self, key: &K) -> Result<(), Duration> {
        match &self.0 {
            None => Ok(()),
            Some(limiter) => limiter
                .check_key(key)
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded.
    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The shared state of [`Guard`].
pub(crate) struct GuardState {
    routed: HashSet<String>,
    verifier: Verifier,
    public: PublicMethods,
    per_user: Limiter<String>,
    per_address: Limiter<IpAddr>,
    trust_forwarded_for: bool,
}

impl GuardState {
    pub(crate) fn new(config: &GatewayConfig, verifier: Verifier) -> Self {
        Self {
            routed: config.routes.keys().cloned().collect(),
            verifier,
            public: PublicMethods::new(&config.public_methods),
            per_user: Limiter::new(config.rate_limits.per_user),
            per_address: Limiter::new(config.rate_limits.per_address),
            trust_forwarded_for: config.trust_forwarded_for,
        }
    }

    /// Forgets idle rate-limit buckets; call it periodically.
    pub(crate) fn forget_idle(&self) {
        self.per_user.forget_idle();
        self.per_address.forget_idle();
    }

    fn admit<B>(&self, req: &mut Request<B>) -> Result<(), Status> {
        let path = req.uri().path();
        if is_reflection(path) {
            return Err(Status::permission_denied(
                "reflection is not served by the gateway",
            ));
        }
        // Unknown services are answered before the token is looked at: there is nothing to
        // protect, and the answer must not depend on who asks.
        if !service_of(path).is_some_and(|s| self.routed.contains(s)) {
            return Err(Status::unimplemented(format!(
                "no service is routed for {path}"
            )));
        }
        let public = self.public.contains(path);
        // A caller identity never comes from the client.
        req.extensions_mut().remove::<Caller>();
        let caller = match req.headers().get(http::header::AUTHORIZATION) {
            Some(value) => {
                let verified = value
                    .to_str()
                    .map_err(|_| AuthError::Malformed)
                    .and_then(|v| self.verifier.verify_header(v));
                match verified {
                    Ok(caller) => Some(caller),
                    // A bad token is refused even on a public method, as every backend does.
                    Err(error) => return Err(Status::unauthenticated(error.to_string())),
                }
            }
            None if public => None,
            None => {
                return Err(Status::unauthenticated(
                    "sign in: this call needs an access token",
                ));
            }
        };

        if let Some(address) = self.address(req) {
            self.per_address.check(&address).map_err(rate_limited)?;
        }
        if let Some(caller) = caller {
            tracing::Span::current().record("caller", caller.subject.as_str());
            self.per_user.check(&caller.subject).map_err(rate_limited)?;
            req.extensions_mut().insert(caller);
        }
        Ok(())
    }

    fn address<B>(&self, req: &Request<B>) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            let forwarded = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        req.extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| a.ip())
    }
}

fn rate_limited(wait: Duration) -> Status {
    // Whole milliseconds, at least one: a zero delay would invite an immediate retry.
    let wait = Duration::from_millis((wait.as_millis() as u64).max(1));
    Status::with_error_details(
        Code::ResourceExhausted,
        "too many requests: retry later",
        ErrorDetails::with_retry_info(Some(wait)),
    )
}

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct GuardLayer {
    pub(crate) state: Arc<GuardState>,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            state: self.state.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct Guard<S> {
    inner: S,
    state: Arc<GuardState>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for Guard<S>
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
        match self.state.admit(&mut req) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_methods_match_services_and_methods() {
        let public = PublicMethods::new(&crate::config::default_public_methods());
        assert!(public.contains("/marquee.catalog.v1.CatalogService/ListCities"));
        assert!(public.contains("/marquee.identity.v1.IdentityService/SignIn"));
        assert!(public.contains("/grpc.health.v1.Health/Watch"));
        assert!(!public.contains("/marquee.identity.v1.IdentityService/GetMe"));
        assert!(!public.contains("/marquee.catalog.v1.CatalogAdminService/CreateCity"));
        assert!(!public.contains("/marquee.catalog.v1.CatalogService"));
    }

    #[test]
    fn a_bucket_empties_and_says_how_long_to_wait() {
        let limiter = Limiter::new(RateLimit {
            requests_per_minute: 1,
            burst: 2,
        });
        let key = "user-1".to_owned();
        assert!(limiter.check(&key).is_ok());
        assert!(limiter.check(&key).is_ok());
        let wait = limiter.check(&key).expect_err("over the limit");
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(
            limiter.check(&"user-2".to_owned()).is_ok(),
            "buckets are per key"
        );

        let off = Limiter::new(RateLimit {
            requests_per_minute: 0,
            burst: 0,
        });
        for _ in 0..1000 {
            assert!(off.check(&key).is_ok());
        }
    }

    #[test]
    fn rate_limited_carries_retry_info() {
        let status = rate_limited(Duration::from_millis(1500));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_error_details().retry_info().cloned();
        assert_eq!(
            retry.and_then(|r| r.retry_delay),
            Some(Duration::from_millis(1500))
        );
    }
}
