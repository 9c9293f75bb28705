//! The web app's files: a `GET` or `HEAD` that is not a gRPC call is answered from the
//! configured directory (or 404 without one); everything else goes on to gRPC-Web and the proxy.
//! It sits outside tonic-web, which answers 400 to any HTTP/1.1 request that is not gRPC-Web.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use tonic::body::Body;
use tower::{BoxError, Layer, Service, ServiceExt};
use tower_http::services::ServeDir;

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct StaticFilesLayer {
    pub(crate) dir: Option<ServeDir>,
}

impl<S> Layer<S> for StaticFilesLayer {
    type Service = StaticFiles<S>;
    fn layer(&self, inner: S) -> Self::Service {
        StaticFiles {
            inner,
            dir: self.dir.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub(crate) struct StaticFiles<S> {
    inner: S,
    dir: Option<ServeDir>,
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<Request<B>> for StaticFiles<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let is_file_request =
            matches!(*req.method(), Method::GET | Method::HEAD) && !is_grpc(req.headers());
        if !is_file_request {
            return Box::pin(self.inner.call(req));
        }
        let Some(dir) = self.dir.clone() else {
            return Box::pin(async {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NOT_FOUND;
                Ok(response)
            });
        };
        Box::pin(async move {
            match dir.oneshot(req).await {
                Ok(response) => Ok(response.map(Body::new)),
                Err(never) => match never {},
            }
        })
    }
}
