//! The OTLP/gRPC receiver (`TraceService/Export`), written on axum over HTTP/2 rather than
//! with tonic's server: tonic rejects an oversized message with OUT_OF_RANGE before our code
//! runs, while OTLP asks for RESOURCE_EXHAUSTED, and we want to count what we refuse. A
//! unary gRPC call is small enough to speak directly: one length-prefixed message in, one
//! out, the status in trailers (or, for errors, in the only HEADERS frame).

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::StreamBody;
use hyper::body::Frame;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::body::{self, BUSY_RETRY_AFTER, BodyError, BodyLimits, Held};
use super::gzip::{GunzipError, gunzip_bounded};
use super::intake::{Intake, IntakeError, REFUSED_RETRY_AFTER};
use super::retry::encode_retry_info;

pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const GRPC_CONTENT_TYPE: &str = "application/grpc";
/// The gRPC message prefix: a compression flag and a big-endian u32 length.
const PREFIX_LEN: usize = 5;

#[derive(Clone)]
struct GrpcState {
    intake: Arc<Intake>,
    max_message_bytes: usize,
}

pub fn router(intake: Arc<Intake>, max_message_bytes: usize) -> Router {
    Router::new()
        .route(EXPORT_PATH, axum::routing::post(export))
        .fallback(unimplemented)
        .with_state(GrpcState {
            intake,
            max_message_bytes,
        })
}

/// A gRPC status other than OK.
#[derive(Debug)]
struct GrpcError {
    code: tonic::Code,
    message: String,
    /// Sent as `google.rpc.RetryInfo` in `grpc-status-details-bin`.
    retry_after: Option<std::time::Duration>,
}

impl GrpcError {
    fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

async fn export(
    State(state): State<GrpcState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    if !is_grpc(&headers) {
        // The gRPC spec's answer to a non-gRPC content type is a plain HTTP 415.
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            axum::Json(serde_json::json!({"error": {
                "code": "unsupported_media_type",
                "message": "content-type must be application/grpc"
            }})),
        )
            .into_response());
    }
    let encoding = headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let intake = &state.intake;
    let (compressed, message, mut held) =
        read_frame(body, &headers, intake, state.max_message_bytes)
            .await
            .map_err(trailers_only)?;
    let _turn = intake.decode_permit().await.map_err(intake_error)?;
    let message = inflate(compressed, message, encoding, state.max_message_bytes)
        .inspect_err(|e| {
            if e.code == tonic::Code::ResourceExhausted {
                // Inflated up to the limit before it was refused.
                held.made_copy(state.max_message_bytes);
            }
        })
        .map_err(trailers_only)?;
    held.made_copy(message.len());
    match intake.accept(message, "grpc") {
        Ok(()) => Ok(ok_response()),
        Err(e) => Err(intake_error(e)),
    }
}

fn intake_error(e: IntakeError) -> Response {
    let error = match e {
        IntakeError::Full => GrpcError {
            code: tonic::Code::Unavailable,
            message: e.to_string(),
            retry_after: Some(REFUSED_RETRY_AFTER),
        },
        IntakeError::ShuttingDown => GrpcError::new(tonic::Code::Unavailable, e.to_string()),
        IntakeError::Invalid(_) => GrpcError::new(tonic::Code::InvalidArgument, e.to_string()),
        // No retry hint: the same request will never fit (OTLP's rule for this code).
        IntakeError::TooLarge { .. } => {
            GrpcError::new(tonic::Code::ResourceExhausted, e.to_string())
        }
    };
    trailers_only(error)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct == GRPC_CONTENT_TYPE || ct.starts_with("application/grpc+proto"))
}

fn too_large(max_message_bytes: usize) -> GrpcError {
    GrpcError::new(
        tonic::Code::ResourceExhausted,
        format!("message larger than the limit of {max_message_bytes} bytes"),
    )
}

/// Reads the one length-prefixed message of a unary call (inflating it when gzip-compressed).
#[cfg(test)]
async fn read_message(
    body: Body,
    encoding: &str,
    max_message_bytes: usize,
) -> Result<Bytes, GrpcError> {
    let intake = super::intake::test_intake(super::intake::Overflow::Refuse, 100);
    let (compressed, message, _held) =
        read_frame(body, &HeaderMap::new(), &intake, max_message_bytes).await?;
    inflate(compressed, message, encoding, max_message_bytes)
}

/// Reads the one length-prefixed message of a unary call, refusing anything over the limit
/// before buffering it; returns whether it is flagged compressed, and the message.
async fn read_frame(
    body: Body,
    headers: &HeaderMap,
    intake: &Intake,
    max_message_bytes: usize,
) -> Result<(bool, Bytes, Held), GrpcError> {
    let limits = BodyLimits {
        max_bytes: max_message_bytes.saturating_add(PREFIX_LEN),
        timeout: intake.body_timeout,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (bytes, held) = match body::read(body, declared, limits, &intake.bodies).await {
        Ok(read) => read,
        Err(BodyError::TooLarge { .. }) => return Err(too_large(max_message_bytes)),
        Err(e @ BodyError::Busy { .. }) => {
            return Err(GrpcError {
                code: tonic::Code::ResourceExhausted,
                message: e.to_string(),
                retry_after: Some(BUSY_RETRY_AFTER),
            });
        }
        Err(e @ BodyError::Stalled(_)) => {
            return Err(GrpcError::new(tonic::Code::DeadlineExceeded, e.to_string()));
        }
        Err(e @ BodyError::Broken(_)) => {
            return Err(GrpcError::new(tonic::Code::Cancelled, e.to_string()));
        }
    };
    let Some(([flag, length @ ..], payload)) = bytes
        .split_first_chunk::<PREFIX_LEN>()
        .map(|(prefix, payload)| (*prefix, payload))
    else {
        return Err(GrpcError::new(
            tonic::Code::InvalidArgument,
            "truncated gRPC message",
        ));
    };
    let compressed = flag != 0;
    let declared = usize::try_from(u32::from_be_bytes(length)).unwrap_or(usize::MAX);
    if declared > max_message_bytes {
        return Err(too_large(max_message_bytes));
    }
    if declared != payload.len() {
        return Err(GrpcError::new(
            tonic::Code::InvalidArgument,
            format!(
                "gRPC message length {declared} does not match the {} bytes received (one message per call)",
                payload.len()
            ),
        ));
    }
    Ok((compressed, bytes.slice(PREFIX_LEN..), held))
}

/// The message as sent, or inflated when flagged compressed.
fn inflate(
    compressed: bool,
    message: Bytes,
    encoding: &str,
    max_message_bytes: usize,
) -> Result<Bytes, GrpcError> {
    if !compressed {
        return Ok(message);
    }
    if encoding == "identity" {
        return Err(GrpcError::new(
            tonic::Code::InvalidArgument,
            "message flagged compressed without a grpc-encoding",
        ));
    }
    if encoding != "gzip" {
        return Err(GrpcError::new(
            tonic::Code::Unimplemented,
            format!("grpc-encoding {encoding:?} is not supported; use gzip or identity"),
        ));
    }
    match gunzip_bounded(&message, max_message_bytes) {
        Ok(inflated) => Ok(Bytes::from(inflated)),
        Err(GunzipError::TooLarge { .. }) => Err(too_large(max_message_bytes)),
        Err(e @ GunzipError::Invalid(_)) => {
            Err(GrpcError::new(tonic::Code::InvalidArgument, e.to_string()))
        }
    }
}

fn grpc_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(GRPC_CONTENT_TYPE),
    );
    h.insert(
        "grpc-accept-encoding",
        HeaderValue::from_static("gzip,identity"),
    );
}

/// The success answer: one empty `ExportTraceServiceResponse`, then `grpc-status: 0`.
fn ok_response() -> Response {
    let message = ExportTraceServiceResponse {
        partial_success: None,
    }
    .encode_to_vec();
    let mut frame = BytesMut::with_capacity(PREFIX_LEN.saturating_add(message.len()));
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap_or(0));
    frame.put_slice(&message);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames: [Result<Frame<Bytes>, Infallible>; 2] = [
        Ok(Frame::data(frame.freeze())),
        Ok(Frame::trailers(trailers)),
    ];
    let mut response = Response::new(Body::new(StreamBody::new(futures::stream::iter(frames))));
    grpc_headers(&mut response);
    response
}

/// An error answer: the status in the headers of an empty response ("Trailers-Only").
fn trailers_only(error: GrpcError) -> Response {
    let mut response = Response::new(Body::empty());
    grpc_headers(&mut response);
    let h = response.headers_mut();
    h.insert("grpc-status", HeaderValue::from(error.code as i32));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(&error.message)) {
        h.insert("grpc-message", message);
    }
    if let Some(delay) = error.retry_after {
        let details = encode_retry_info(error.code as i32, delay);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(details);
        if let Ok(v) = HeaderValue::from_str(&encoded) {
            h.insert("grpc-status-details-bin", v);
        }
    }
    response
}

async fn unimplemented(uri: http::Uri) -> Response {
    trailers_only(GrpcError::new(
        tonic::Code::Unimplemented,
        format!("{} is not served here; only {EXPORT_PATH}", uri.path()),
    ))
}

/// `grpc-message` is percent-encoded: everything outside printable ASCII, and `%` itself.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encodes_grpc_messages() {
        assert_eq!(percent_encode("50% ok\né"), "50%25 ok%0A%C3%A9");
    }

    async fn read_message_id(body: Body, max: usize) -> Result<Bytes, GrpcError> {
        read_message(body, "identity", max).await
    }

    #[tokio::test]
    async fn gzip_messages_are_inflated_within_the_limit() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&[b'x'; 100]).unwrap();
        let gz = e.finish().unwrap();
        let frame = || {
            let mut b = vec![1u8];
            b.extend_from_slice(&(gz.len() as u32).to_be_bytes());
            b.extend_from_slice(&gz);
            Body::from(b)
        };
        assert_eq!(read_message(frame(), "gzip", 100).await.unwrap().len(), 100);
        let code = |r: Result<Bytes, GrpcError>| r.unwrap_err().code;
        assert_eq!(
            code(read_message(frame(), "gzip", 99).await),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            code(read_message(frame(), "zstd", 100).await),
            tonic::Code::Unimplemented
        );
    }

    #[tokio::test]
    async fn frames_are_checked() {
        let frame = |flag: u8, len: u32, payload: &[u8]| {
            let mut b = vec![flag];
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(payload);
            Body::from(b)
        };
        let ok = read_message(frame(0, 3, b"abc"), "identity", 10)
            .await
            .unwrap();
        assert_eq!(&ok[..], b"abc");
        let code = |r: Result<Bytes, GrpcError>| r.unwrap_err().code;
        assert_eq!(
            code(read_message_id(frame(0, 20, b"abc"), 10).await),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            code(read_message_id(frame(0, 3, &[0; 20]), 10).await),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(
            code(read_message_id(frame(1, 3, b"abc"), 10).await),
            tonic::Code::InvalidArgument,
            "compressed flag without an encoding"
        );
        assert_eq!(
            code(read_message_id(frame(0, 4, b"abc"), 10).await),
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            code(read_message_id(Body::from(vec![0u8, 0]), 10).await),
            tonic::Code::InvalidArgument
        );
    }
}
