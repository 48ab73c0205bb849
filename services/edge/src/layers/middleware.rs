//! What every layer of the edge's stack has in common: a tower [`Layer`]
//! that holds the middleware's settings, and a [`Service`] that waits for
//! the service inside it and hands it each request. A middleware says only
//! what it does with one request, in [`Middleware::call`]; the stack's
//! services never fail (every refusal is an answer), so neither does this.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{Layer, Service};

/// The answer of a middleware, once the services inside it have answered.
pub(crate) type ResponseFuture = BoxFuture<'static, Result<Response, Infallible>>;

/// What one middleware does with a request on its way to `inner`.
pub(crate) trait Middleware: Clone {
    fn call<S>(&self, inner: &mut S, request: Request) -> ResponseFuture
    where
        S: Service<Request, Response = Response, Error = Infallible>,
        S::Future: Send + 'static;
}

/// A middleware as a tower layer; each middleware names its own
/// (`BodyLimitLayer`, …) and gives it a constructor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MiddlewareLayer<M>(M);

impl<M> MiddlewareLayer<M> {
    pub(crate) const fn wrapping(middleware: M) -> Self {
        Self(middleware)
    }
}

impl<M: Clone, S> Layer<S> for MiddlewareLayer<M> {
    type Service = WithMiddleware<M, S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithMiddleware {
            middleware: self.0.clone(),
            inner,
        }
    }
}

/// The service `inner` behind one middleware.
#[derive(Clone, Debug)]
pub(crate) struct WithMiddleware<M, S> {
    middleware: M,
    inner: S,
}

impl<M, S> Service<Request> for WithMiddleware<M, S>
where
    M: Middleware,
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.middleware.call(&mut self.inner, request)
    }
}
