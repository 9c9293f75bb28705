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
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use marquee_platform::{
    auth::{AuthError, Caller, Verifier},
    ratelimit::{Limiter, rate_limited},
};
use tonic::{Status, body::Body, transport::server::TcpConnectInfo};
use tower::{Layer, Service};

use crate::{
    config::GatewayConfig,
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
}
