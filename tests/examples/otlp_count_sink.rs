//! A minimal OTLP/gRPC trace sink for benchmarks: decodes every export and counts the spans,
//! keeping nothing else, so it costs the services under test as little CPU as possible.
//! `GET /count` on the HTTP port answers the number of spans received so far.
//!
//! Usage: cargo run --release -p testkit --example otlp_count_sink -- <grpc-port> <http-port>

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: otlp_count_sink <grpc-port> <http-port>";
    let grpc_port: u16 = args.next().and_then(|a| a.parse().ok()).expect(usage);
    let http_port: u16 = args.next().and_then(|a| a.parse().ok()).expect(usage);
    let counter = Counter::default();
    let count = counter.0.clone();
    let http = tokio::net::TcpListener::bind(("127.0.0.1", http_port))
        .await
        .expect("binding the HTTP port");
    let router = axum::Router::new().route(
        "/count",
        axum::routing::get(move || async move { count.load(Ordering::Relaxed).to_string() }),
    );
    tokio::spawn(async move { axum::serve(http, router).await });
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(counter))
        .serve(([127, 0, 0, 1], grpc_port).into())
        .await
        .expect("serving OTLP/gRPC");
}
