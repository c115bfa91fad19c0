//! Tower middleware that costs nothing when it has nothing to do: [`Screen::screen`] looks at
//! the request synchronously, and only when it finds work does the request take the boxed,
//! async [`Screen::handle`] path. Otherwise it goes straight to the inner service, whose own
//! future is returned (`Either::Left`): no allocation, no box, no timer. This is why the
//! db/app middleware is not written with `axum::middleware::from_fn`, which boxes the rest of
//! the stack again for every request.

use std::convert::Infallible;
use std::future::Future;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use futures::FutureExt;
use futures::future::{BoxFuture, Either};
use tower::{Layer, Service};

/// What a [`ScreenLayer`] does with each request.
pub trait Screen: Clone + Send + Sync + 'static {
    /// What the slow path needs, decided from the request alone.
    type Work: Send + 'static;

    /// `None` sends the request straight on.
    fn screen(&self, request: &Request) -> Option<Self::Work>;

    /// The slow path, with the inner service to call (or not) once the work is done.
    fn handle<S>(
        self,
        work: Self::Work,
        request: Request,
        inner: S,
    ) -> impl Future<Output = Response> + Send + 'static
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
        S::Future: Send;
}

/// Installs a [`Screen`]: `router.layer(ScreenLayer(screen))`.
#[derive(Debug, Clone, Copy)]
pub struct ScreenLayer<M>(pub M);

impl<S, M: Clone> Layer<S> for ScreenLayer<M> {
    type Service = Screened<S, M>;

    fn layer(&self, inner: S) -> Screened<S, M> {
        Screened {
            inner,
            screen: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Screened<S, M> {
    inner: S,
    screen: M,
}

impl<S, M> Service<Request> for Screened<S, M>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    M: Screen,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.screen.screen(&request) {
            None => Either::Left(self.inner.call(request)),
            Some(work) => {
                let inner = take_ready(&mut self.inner);
                let handled = self.screen.clone().handle(work, request, inner);
                Either::Right(handled.map(Ok).boxed())
            }
        }
    }
}

/// The inner service that `poll_ready` readied, leaving a clone in its place (tower's rule:
/// the service that was readied is the one to call).
pub fn take_ready<S: Clone>(service: &mut S) -> S {
    let fresh = service.clone();
    std::mem::replace(service, fresh)
}

/// Calls `inner` with `request`: its error type is `Infallible`, so only the response is left.
pub async fn call<S>(mut inner: S, request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match inner.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
