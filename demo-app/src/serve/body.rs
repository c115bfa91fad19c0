//! Request bodies of db and app, read whole before a handler runs, within `--max-body-bytes`
//! and `--body-timeout`. The bodies here are small JSON or forms, so buffering them first
//! costs nothing and gives one place for both bounds:
//!
//! - a declared `Content-Length` over the limit is answered 413 before anything is read, so a
//!   client that sent `Expect: 100-continue` gets the 413 instead of `100 Continue` (hyper
//!   sends `100 Continue` only when the body is first polled: hyper-1.12.0
//!   `src/proto/h1/conn.rs`, `Reading::Continue`), and does not upload;
//! - a body that does not arrive whole in time is answered 408, and the connection is closed
//!   (the unread rest of the body cannot be skipped: hyper closes a connection whose request
//!   body was not read to its end).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use tower::Service;

use super::error::ApiError;
use crate::middleware::{self, Screen};

/// The bounds on one request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Reads request bodies whole within the limits before the handler runs; install with
/// `ScreenLayer(limits)`. A request without a body (every GET) goes straight on.
impl Screen for BodyLimits {
    type Work = ();

    fn screen(&self, request: &Request) -> Option<()> {
        (!request.body().is_end_stream()).then_some(())
    }

    async fn handle<S>(self, (): (), request: Request, inner: S) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
        S::Future: Send,
    {
        match buffer(request, self).await {
            Ok(request) => middleware::call(inner, request).await,
            Err(refused) => refused,
        }
    }
}

/// The request with its body buffered, or the answer when the body is too large, too slow
/// or broken.
async fn buffer(request: Request, limits: BodyLimits) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    if declared_length(&parts.headers).is_some_and(|n| n > limits.max_bytes) {
        return Err(too_large(limits.max_bytes));
    }
    let read = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(too_large(limits.max_bytes));
        }
        Ok(Err(e)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("the request body could not be read: {e}"),
            )
            .into_response());
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {:?}",
                    limits.timeout
                ),
            )
            .into_response());
        }
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The `Content-Length` sent, when it is a number (hyper refuses a malformed one before us).
fn declared_length(headers: &http::HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(max_bytes: usize) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body is larger than the limit of {max_bytes} bytes"),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_declared_length() {
        let mut h = http::HeaderMap::new();
        assert_eq!(declared_length(&h), None);
        h.insert(header::CONTENT_LENGTH, "99999999999".parse().unwrap());
        assert_eq!(declared_length(&h), Some(99_999_999_999));
        h.insert(header::CONTENT_LENGTH, "x".parse().unwrap());
        assert_eq!(declared_length(&h), None);
    }
}
