//! An in-test OTLP trace receiver: gRPC (`TraceService/Export`) and HTTP/protobuf
//! (`POST /v1/traces`) on port-0 sockets, feeding one shared list of received spans.
//!
//! For fault tests it can answer every call with an error ([`OtlpSink::fail_with`]), and be
//! stopped and started again on the same ports ([`OtlpSink::stop`], [`OtlpSink::restart`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// The attributes sent as OTLP integers (also in `attributes`, as text): a count sent as
    /// a string would pass a check on `attributes` alone.
    pub int_attributes: HashMap<String, i64>,
    pub resource: HashMap<String, String>,
    /// How it arrived: `grpc` or `http`.
    pub transport: &'static str,
    /// Request headers (lower-case names) of the export call that carried it.
    pub headers: HashMap<String, String>,
    /// OTLP status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
}

pub const SPAN_KIND_SERVER: i32 = 2;
pub const SPAN_KIND_CLIENT: i32 = 3;
pub const SPAN_KIND_INTERNAL: i32 = 1;
pub const STATUS_CODE_ERROR: i32 = 2;

/// How the sink answers while failing (see [`OtlpSink::fail_with`]).
#[derive(Debug, Clone)]
pub struct Failure {
    pub grpc: tonic::Status,
    pub http_status: u16,
    /// Sent as `Retry-After` (seconds) on HTTP answers.
    pub retry_after: Option<u64>,
}

#[derive(Clone, Default)]
pub struct OtlpSink {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    failure: Arc<Mutex<Option<Failure>>>,
    calls: Arc<AtomicUsize>,
    running: Arc<Mutex<Option<Running>>>,
}

struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl OtlpSink {
    /// Starts both receivers on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let mut sink = Self::default();
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        sink.grpc_addr = Some(grpc.local_addr().unwrap());
        sink.http_addr = Some(http.local_addr().unwrap());
        sink.serve(grpc, http);
        sink
    }

    fn serve(&self, grpc: TcpListener, http: TcpListener) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let service = TraceServiceServer::new(self.clone());
        let mut grpc_stopped = stopped.clone();
        let grpc_task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async move {
                    let _ = grpc_stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(http_export))
            .with_state(self.clone());
        let mut http_stopped = stopped;
        let http_task = tokio::spawn(async move {
            let _ = axum::serve(http, router)
                .with_graceful_shutdown(async move {
                    let _ = http_stopped.wait_for(|s| *s).await;
                })
                .await;
        });
        *self.running.lock().unwrap() = Some(Running {
            stop,
            tasks: vec![grpc_task, http_task],
        });
    }

    /// Stops both receivers and closes their connections: the upstream is down.
    pub async fn stop(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some(running) = running {
            let _ = running.stop.send(true);
            for task in running.tasks {
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
        }
    }

    /// Starts the receivers again on the same ports.
    pub async fn restart(&self) {
        let grpc = TcpListener::bind(self.grpc_addr.expect("started"))
            .await
            .unwrap();
        let http = TcpListener::bind(self.http_addr.expect("started"))
            .await
            .unwrap();
        self.serve(grpc, http);
    }

    /// Answers every export call with `failure` (nothing is recorded) until [`Self::recover`].
    pub fn fail_with(&self, failure: Failure) {
        *self.failure.lock().unwrap() = Some(failure);
    }

    pub fn recover(&self) {
        *self.failure.lock().unwrap() = None;
    }

    /// Export calls received, failed ones included.
    pub fn export_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn current_failure(&self) -> Option<Failure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.failure.lock().unwrap().clone()
    }

    /// The gRPC receiver's address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr.expect("started")
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
                        int_attributes: ints(&span.attributes),
                        resource: resource.clone(),
                        transport,
                        headers: headers.clone(),
                        status_code: span.status.as_ref().map_or(0, |s| s.code),
                        status_message: span.status.map(|s| s.message).unwrap_or_default(),
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
        if let Some(failure) = self.current_failure() {
            return Err(failure.grpc);
        }
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
) -> Result<Vec<u8>, axum::response::Response> {
    use axum::response::IntoResponse;
    if let Some(failure) = sink.current_failure() {
        let status = StatusCode::from_u16(failure.http_status).unwrap();
        let mut response = (status, "failing on purpose").into_response();
        if let Some(seconds) = failure.retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
        }
        return Err(response);
    }
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
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

fn ints(attributes: &[KeyValue]) -> HashMap<String, i64> {
    attributes
        .iter()
        .filter_map(
            |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::IntValue(i)) => Some((kv.key.clone(), *i)),
                _ => None,
            },
        )
        .collect()
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
