//! The OTLP/HTTP receiver: `POST /v1/traces` with a protobuf or JSON body (OTLP's JSON
//! mapping: hex ids, camelCase names), answered in the same encoding.

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

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::body::{self, BUSY_RETRY_AFTER, BodyError, BodyLimits};
use super::gzip::{GunzipError, gunzip_bounded};
use super::intake::{Intake, IntakeError, REFUSED_RETRY_AFTER};
use crate::serve::error::{ApiError, no_route, wrong_method};

#[derive(Clone)]
struct HttpState {
    intake: Arc<Intake>,
    max_body_bytes: usize,
}

pub fn router(intake: Arc<Intake>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", axum::routing::post(export))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(HttpState {
            intake,
            max_body_bytes,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// True for `Content-Encoding: gzip`; an error for any other encoding but identity.
fn gzipped(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None | Some(b"identity") => Ok(false),
        Some(b"gzip") => Ok(true),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content-encoding {:?} is not supported; use gzip or none",
                String::from_utf8_lossy(other)
            ),
        )),
    }
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let unsupported = |what: String| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            what,
        )
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(unsupported(format!(
            "content-type {content_type:?} is not supported; use application/x-protobuf or application/json"
        ))),
    }
}

async fn export(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let encoding = encoding(&headers).map_err(IntoResponse::into_response)?;
    let gzipped = gzipped(&headers).map_err(IntoResponse::into_response)?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "body larger than the limit of {} bytes",
                state.max_body_bytes
            ),
        )
        .into_response()
    };
    let intake = &state.intake;
    let limits = BodyLimits {
        max_bytes: state.max_body_bytes,
        timeout: intake.body_timeout,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (mut bytes, mut held) = body::read(body, declared, limits, &intake.bodies)
        .await
        .map_err(|e| body_error(e, too_large))?;
    let _turn = intake.decode_permit().await.map_err(intake_error)?;
    if gzipped {
        bytes = match gunzip_bounded(&bytes, state.max_body_bytes) {
            Ok(inflated) => {
                held.made_copy(inflated.len());
                inflated.into()
            }
            Err(GunzipError::TooLarge { limit }) => {
                // Inflated up to the limit before it was refused.
                held.made_copy(limit);
                return Err(too_large());
            }
            Err(e @ GunzipError::Invalid(_)) => {
                return Err(ApiError::invalid(e.to_string()).into_response());
            }
        };
    }
    let request = match encoding {
        Encoding::Protobuf => bytes,
        Encoding::Json => {
            let encoded = json_to_protobuf(&bytes, state.max_body_bytes)
                .map_err(IntoResponse::into_response)?;
            held.made_copy(encoded.len());
            encoded
        }
    };
    match intake.accept(request, "http") {
        Ok(()) => Ok(success(encoding)),
        Err(e) => Err(intake_error(e)),
    }
}

fn body_error(e: BodyError, too_large: impl Fn() -> Response) -> Response {
    let (status, code) = match e {
        BodyError::TooLarge { .. } => return too_large(),
        BodyError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        BodyError::Stalled(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
        BodyError::Broken(_) => (StatusCode::BAD_REQUEST, "broken_body"),
    };
    let mut response = ApiError::new(status, code, e.to_string()).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(BUSY_RETRY_AFTER.as_secs()),
        );
    }
    response
}

fn intake_error(e: IntakeError) -> Response {
    let (status, code, retry_after) = match e {
        IntakeError::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Some(REFUSED_RETRY_AFTER.as_secs()),
        ),
        IntakeError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", Some(1)),
        IntakeError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_otlp", None),
        IntakeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None),
    };
    let mut response = ApiError::new(status, code, e.to_string()).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// What decoding OTLP/JSON into structs may cost per `{` of input (a span is ~300 bytes, an
/// attribute ~100): a body of tiny objects is refused before it is decoded.
const JSON_BYTES_PER_OBJECT: usize = 256;

/// Decodes OTLP/JSON and encodes it as protobuf, for the same intake as protobuf requests.
fn json_to_protobuf(bytes: &[u8], max_body_bytes: usize) -> Result<Bytes, ApiError> {
    let objects = bytes.iter().filter(|&&b| b == b'{').count();
    if objects.saturating_mul(JSON_BYTES_PER_OBJECT) > max_body_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "OTLP/JSON with {objects} objects would take more than {max_body_bytes} bytes to decode; split it or send protobuf"
            ),
        ));
    }
    let request: ExportTraceServiceRequest = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("malformed OTLP/JSON ExportTraceServiceRequest: {e}"),
        )
    })?;
    Ok(Bytes::from(request.encode_to_vec()))
}

fn success(encoding: Encoding) -> Response {
    let response = ExportTraceServiceResponse {
        partial_success: None,
    };
    match encoding {
        Encoding::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            response.encode_to_vec(),
        )
            .into_response(),
        Encoding::Json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        h
    }

    #[test]
    fn picks_the_encoding_from_the_content_type() {
        assert_eq!(
            encoding(&headers("application/x-protobuf")).unwrap(),
            Encoding::Protobuf
        );
        assert_eq!(
            encoding(&headers("application/json; charset=utf-8")).unwrap(),
            Encoding::Json
        );
        assert_eq!(
            encoding(&headers("text/plain")).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let mut compressed = headers("application/x-protobuf");
        assert!(!gzipped(&compressed).unwrap());
        compressed.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(gzipped(&compressed).unwrap());
        compressed.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(
            gzipped(&compressed).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn decodes_otlp_json() {
        let json = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},
            "scopeSpans":[{"spans":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",
            "name":"s","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let encoded = json_to_protobuf(json, 10_000).unwrap();
        let r = ExportTraceServiceRequest::decode(encoded).unwrap();
        assert_eq!(
            r.resource_spans[0].scope_spans[0].spans[0].span_id,
            vec![0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(
            json_to_protobuf(b"{", 10_000).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        // Ten thousand empty resources: refused before decoding, not after.
        let tiny = format!("{{\"resourceSpans\":[{}{{}}]}}", "{},".repeat(10_000));
        assert_eq!(
            json_to_protobuf(tiny.as_bytes(), 1_000_000)
                .unwrap_err()
                .status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
