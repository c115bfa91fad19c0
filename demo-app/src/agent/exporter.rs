//! Sends a batch upstream over OTLP/gRPC (default) or OTLP/HTTP, with the tenant header and
//! any extra headers on every call, and classifies failures for the retry loop.
//!
//! A batch is a list of encoded `ExportTraceServiceRequest`s; concatenated they are one valid
//! request, so the gRPC codec writes the parts one after the other and nothing is decoded or
//! re-encoded on the way out. The tenant is a property of the agent, not of the data, and is
//! added here to every call: batching cannot lose it.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::queue::Batch;
use super::retry::{
    SendError, grpc_code_is_retryable, grpc_retry_delay, http_status_is_retryable,
    parse_retry_after,
};

pub const TENANT_HEADER: &str = "x-scope-orgid";
const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportProtocol {
    /// OTLP over gRPC (Tempo's distributor on 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`<upstream>/v1/traces`, usually port 4318).
    Http,
}

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("invalid --upstream {url:?}: {reason}")]
    Upstream { url: String, reason: String },
    #[error("invalid header {name:?}: {reason}")]
    Header { name: String, reason: String },
}

/// What a successful call reported back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Spans the upstream accepted the call for but said it rejected (partial success).
    pub rejected_spans: u64,
    pub message: String,
}

pub enum Exporter {
    Grpc(GrpcExporter),
    Http(HttpExporter),
}

impl Exporter {
    /// `headers` must already include the tenant header.
    pub fn new(
        protocol: ExportProtocol,
        upstream: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, ExporterError> {
        let url = with_scheme(upstream);
        if url.starts_with("https://") {
            return Err(ExporterError::Upstream {
                url,
                reason: "TLS is not built in: the agent runs meshed and Linkerd encrypts the hop \
                         (use http://)"
                    .into(),
            });
        }
        Ok(match protocol {
            ExportProtocol::Grpc => Self::Grpc(GrpcExporter::new(&url, headers, timeout)?),
            ExportProtocol::Http => Self::Http(HttpExporter::new(&url, headers, timeout)?),
        })
    }

    /// The exporter's name in metrics, as the Collector names its exporters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Grpc(_) => "otlp",
            Self::Http(_) => "otlphttp",
        }
    }

    pub async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        match self {
            Self::Grpc(e) => e.send(batch).await,
            Self::Http(e) => e.send(batch).await,
        }
    }
}

/// `host:port` means plain `http://host:port`, as in the Collector's configuration.
fn with_scheme(upstream: &str) -> String {
    if upstream.contains("://") {
        upstream.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", upstream.trim_end_matches('/'))
    }
}

pub struct GrpcExporter {
    channel: Channel,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Duration,
}

impl GrpcExporter {
    fn new(
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, ExporterError> {
        let endpoint =
            Endpoint::from_shared(url.to_owned()).map_err(|e| ExporterError::Upstream {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        // The call timeout is enforced here too, not only announced in `grpc-timeout`: an
        // upstream that stops answering must not hold a worker forever. Keep-alive pings find
        // a connection whose peer vanished without a FIN or RST.
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .connect_lazy();
        let headers = headers
            .iter()
            .map(|(k, v)| {
                let key = AsciiMetadataKey::from_bytes(k.as_bytes()).map_err(|e| {
                    ExporterError::Header {
                        name: k.clone(),
                        reason: e.to_string(),
                    }
                })?;
                let value = AsciiMetadataValue::try_from(v.as_str()).map_err(|e| {
                    ExporterError::Header {
                        name: k.clone(),
                        reason: e.to_string(),
                    }
                })?;
                Ok((key, value))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            channel,
            headers,
            timeout,
        })
    }

    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| SendError::Retryable {
            reason: format!("upstream not reachable: {e}"),
            retry_after: None,
        })?;
        let mut request = tonic::Request::new(batch.parts.clone());
        request.set_timeout(self.timeout);
        for (k, v) in &self.headers {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        let path = PathAndQuery::from_static(GRPC_EXPORT_PATH);
        match grpc.unary(request, path, RawExportCodec).await {
            Ok(response) => Ok(delivered(response.into_inner())),
            Err(status) => Err(classify_status(&status)),
        }
    }
}

/// tonic reports two different things as a `Status`:
/// - a status the upstream returned (`grpc-status` in its headers or trailers), which tonic
///   parses without a source error: classified by code, like the Collector's OTLP exporter;
/// - a failure below gRPC (connection refused, reset or closed mid-call, h2 GOAWAY or
///   RST_STREAM, our own call timeout), which tonic turns into a status with the underlying
///   error as its source and a code of its choosing, usually `Unknown: transport error`
///   (`Status::from_error` in tonic's status.rs). The upstream never judged the data, so it
///   is always retryable: dropping it would lose spans we acknowledged.
///
/// The same holds for a stream that ended without any final status (tonic's "missing
/// grpc-status trailer", e.g. a proxy cutting the stream): the upstream returned no verdict.
fn classify_status(status: &tonic::Status) -> SendError {
    let retry_after = grpc_retry_delay(status.details());
    if let Some(cause) = std::error::Error::source(status) {
        return SendError::Retryable {
            reason: format!(
                "the call failed below gRPC ({:?}: {}): {}",
                status.code(),
                status.message(),
                error_chain(cause)
            ),
            retry_after: None,
        };
    }
    if status.code() == tonic::Code::Unknown && status.message().starts_with(NO_FINAL_STATUS) {
        return SendError::Retryable {
            reason: format!("the call ended without a status: {}", status.message()),
            retry_after: None,
        };
    }
    let reason = format!(
        "upstream answered {:?}: {}",
        status.code(),
        status.message()
    );
    if grpc_code_is_retryable(status.code(), retry_after.is_some()) {
        SendError::Retryable {
            reason,
            retry_after,
        }
    } else {
        SendError::Permanent { reason }
    }
}

/// How tonic's message starts when a response stream ended with neither trailers nor status.
const NO_FINAL_STATUS: &str = "protocol error: missing grpc-status";

/// `error: cause: cause...`, for the log line of a failed call.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // A handful of levels says what happened; the bound keeps a cyclic chain harmless.
    for _ in 0..8 {
        let Some(cause) = source else { break };
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn delivered(response: ExportTraceServiceResponse) -> Delivered {
    response
        .partial_success
        .map(|p| Delivered {
            rejected_spans: u64::try_from(p.rejected_spans).unwrap_or(0),
            message: p.error_message,
        })
        .unwrap_or_default()
}

/// Writes a batch's encoded parts as they are; reads the response with prost.
#[derive(Debug, Clone, Copy, Default)]
struct RawExportCodec;

impl Codec for RawExportCodec {
    type Encode = Vec<Bytes>;
    type Decode = ExportTraceServiceResponse;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for RawExportCodec {
    type Item = Vec<Bytes>;
    type Error = tonic::Status;

    fn encode(&mut self, parts: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        for part in parts {
            dst.put_slice(&part);
        }
        Ok(())
    }
}

impl Decoder for RawExportCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable export response: {e}")))
    }
}

pub struct HttpExporter {
    client: reqwest::Client,
    url: String,
    headers: http::HeaderMap,
}

impl HttpExporter {
    fn new(
        base: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, ExporterError> {
        let url = if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        };
        url::Url::parse(&url).map_err(|e| ExporterError::Upstream {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            let header_error = |reason: String| ExporterError::Header {
                name: k.clone(),
                reason,
            };
            let name =
                http::HeaderName::try_from(k.as_str()).map_err(|e| header_error(e.to_string()))?;
            let value =
                http::HeaderValue::try_from(v.as_str()).map_err(|e| header_error(e.to_string()))?;
            map.insert(name, value);
        }
        map.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-protobuf"),
        );
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ExporterError::Upstream {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            client,
            url,
            headers: map,
        })
    }

    async fn send(&self, batch: &Batch) -> Result<Delivered, SendError> {
        let mut body = Vec::with_capacity(batch.bytes);
        for part in &batch.parts {
            body.extend_from_slice(part);
        }
        let response = self
            .client
            .post(&self.url)
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Retryable {
                reason: format!("upstream not reachable: {e}"),
                retry_after: None,
            })?;
        let status = response.status();
        let retry_after = parse_retry_after(
            response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            return Ok(ExportTraceServiceResponse::decode(body)
                .map(delivered)
                .unwrap_or_default());
        }
        let reason = format!(
            "upstream answered HTTP {status}: {}",
            String::from_utf8_lossy(body.get(..256).unwrap_or(&body))
        );
        if http_status_is_retryable(status.as_u16()) {
            Err(SendError::Retryable {
                reason,
                retry_after,
            })
        } else {
            Err(SendError::Permanent { reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_without_scheme_is_plain_http() {
        assert_eq!(with_scheme("tempo:4317"), "http://tempo:4317");
        assert_eq!(with_scheme("http://tempo:4318/"), "http://tempo:4318");
    }

    #[test]
    fn tls_and_bad_headers_are_configuration_errors() {
        let timeout = Duration::from_secs(1);
        assert!(Exporter::new(ExportProtocol::Grpc, "https://x:4317", &[], timeout).is_err());
        let bad = [("bad header".to_owned(), "v".to_owned())];
        assert!(matches!(
            Exporter::new(ExportProtocol::Http, "x:4318", &bad, timeout),
            Err(ExporterError::Header { .. })
        ));
    }

    #[test]
    fn grpc_statuses_are_classified() {
        let unavailable = tonic::Status::unavailable("down");
        assert!(matches!(
            classify_status(&unavailable),
            SendError::Retryable { .. }
        ));
        let invalid = tonic::Status::invalid_argument("bad");
        assert!(matches!(
            classify_status(&invalid),
            SendError::Permanent { .. }
        ));
    }

    #[test]
    fn failures_below_grpc_are_retryable_whatever_the_code() {
        // What tonic makes of a connection reset mid-call: Unknown, with the io error as source.
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let broken = tonic::Status::from_error(Box::new(reset));
        assert_eq!(broken.code(), tonic::Code::Unknown);
        let SendError::Retryable { reason, .. } = classify_status(&broken) else {
            panic!("a broken connection must be retried");
        };
        assert!(reason.contains("below gRPC"), "{reason}");
        // The same code sent by the upstream itself stays permanent.
        assert!(matches!(
            classify_status(&tonic::Status::unknown("upstream bug")),
            SendError::Permanent { .. }
        ));
    }
}
