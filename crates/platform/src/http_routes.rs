//! Plain HTTP endpoints beside gRPC on the same listener (provider webhooks, for instance).
//!
//! gRPC-Web translation answers 400 to any HTTP/1.1 request that is not gRPC-Web, so these routes
//! are dispatched before it, by exact path, to an axum router; everything else goes on to gRPC.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt as _};

/// Routes requests whose path is one of `paths` to `router`.
#[derive(Clone)]
pub(crate) struct HttpRoutesLayer {
    pub(crate) router: axum::Router,
    pub(crate) paths: Arc<[String]>,
}

impl<S> Layer<S> for HttpRoutesLayer {
    type Service = HttpRoutes<S>;
    fn layer(&self, inner: S) -> Self::Service {
        HttpRoutes {
            inner,
            router: self.router.clone(),
            paths: self.paths.clone(),
        }
    }
}

/// See [`HttpRoutesLayer`].
#[derive(Clone)]
pub(crate) struct HttpRoutes<S> {
    inner: S,
    router: axum::Router,
    paths: Arc<[String]>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, RB> Service<Request<Body>> for HttpRoutes<S>
where
    S: Service<Request<Body>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if self.paths.iter().any(|p| p == req.uri().path()) {
            let router = self.router.clone();
            return Box::pin(async move {
                let response = router
                    .oneshot(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|e: Infallible| match e {});
                Ok(response.map(Body::new))
            });
        }
        let fut = self.inner.call(req);
        Box::pin(async move { fut.await.map(|r| r.map(Body::new)) })
    }
}
