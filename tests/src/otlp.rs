//! An in-test OTLP trace receiver: gRPC (`TraceService/Export`) and HTTP/protobuf
//! (`POST /v1/traces`) on port-0 sockets, feeding one shared list of received spans.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// One span as received, flattened with its resource's attributes.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// OTLP `SpanKind` number: 2 server, 3 client.
    pub kind: i32,
    pub service_name: String,
    pub attributes: HashMap<String, String>,
    pub resource: HashMap<String, String>,
    /// How it arrived: `grpc` or `http`.
    pub transport: &'static str,
    /// Request headers (lower-case names) of the export call that carried it.
    pub headers: HashMap<String, String>,
}

pub const SPAN_KIND_SERVER: i32 = 2;
pub const SPAN_KIND_CLIENT: i32 = 3;

#[derive(Clone, Default)]
pub struct OtlpSink {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
}

impl OtlpSink {
    /// Starts both receivers on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let mut sink = Self::default();
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        sink.grpc_addr = Some(grpc.local_addr().unwrap());
        sink.http_addr = Some(http.local_addr().unwrap());
        let service = TraceServiceServer::new(sink.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(grpc)),
        );
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(http_export))
            .with_state(sink.clone());
        tokio::spawn(async move { axum::serve(http, router).await });
        sink
    }

    /// `http://127.0.0.1:<port>` of the gRPC receiver.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr.expect("started"))
    }

    /// `http://127.0.0.1:<port>` of the HTTP receiver (exporters append `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr.expect("started"))
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    pub fn spans_of_trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    fn record(
        &self,
        request: ExportTraceServiceRequest,
        transport: &'static str,
        headers: HashMap<String, String>,
    ) {
        let mut received = Vec::new();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| flatten(&r.attributes))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    received.push(ReceivedSpan {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name,
                        kind: span.kind,
                        service_name: resource.get("service.name").cloned().unwrap_or_default(),
                        attributes: flatten(&span.attributes),
                        resource: resource.clone(),
                        transport,
                        headers: headers.clone(),
                    });
                }
            }
        }
        self.spans.lock().unwrap().extend(received);
    }
}

#[tonic::async_trait]
impl TraceService for OtlpSink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        self.record(request.into_inner(), "grpc", headers);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

async fn http_export(
    axum::extract::State(sink): axum::extract::State<OtlpSink>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Vec<u8>, StatusCode> {
    let request = ExportTraceServiceRequest::decode(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    sink.record(request, "http", headers);
    Ok(ExportTraceServiceResponse {
        partial_success: None,
    }
    .encode_to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn flatten(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}
