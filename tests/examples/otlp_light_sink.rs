//! A very cheap OTLP/gRPC trace sink for relay benchmarks: it walks each request only as deep
//! as the list of spans and counts them (spans stay undecoded bytes), so on a shared machine
//! the sink is not what limits the measured throughput. `GET /count` on the HTTP port answers
//! the number of spans received so far.
//!
//! Usage: cargo run --release -p testkit --example otlp_light_sink -- <grpc-port> <http-port>

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use prost::Message;

/// `ExportTraceServiceRequest`, down to the spans (kept as bytes).
#[derive(Clone, PartialEq, Message)]
struct Request {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, Message)]
struct ScopeSpans {
    #[prost(bytes = "bytes", repeated, tag = "2")]
    spans: Vec<Bytes>,
}

async fn export(
    axum::extract::State(count): axum::extract::State<Arc<AtomicU64>>,
    body: Bytes,
) -> Response {
    let spans: usize = Request::decode(body.slice(5.min(body.len())..))
        .map(|r| {
            r.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum()
        })
        .unwrap_or(0);
    count.fetch_add(spans as u64, Ordering::Relaxed);
    // An empty ExportTraceServiceResponse, then grpc-status 0 in trailers.
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames: [Result<hyper::body::Frame<Bytes>, Infallible>; 2] = [
        Ok(hyper::body::Frame::data(Bytes::from_static(&[
            0, 0, 0, 0, 0,
        ]))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ];
    let stream = http_body_util::StreamBody::new(tokio_stream::iter(frames));
    let mut response = Response::new(Body::new(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: otlp_light_sink <grpc-port> <http-port>";
    let grpc_port: u16 = args.next().and_then(|a| a.parse().ok()).expect(usage);
    let http_port: u16 = args.next().and_then(|a| a.parse().ok()).expect(usage);
    let count = Arc::new(AtomicU64::new(0));
    let grpc = tokio::net::TcpListener::bind(("127.0.0.1", grpc_port))
        .await
        .expect("binding the gRPC port");
    let router = axum::Router::new()
        .route(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            axum::routing::post(export),
        )
        .with_state(count.clone())
        // The agent's batches can be larger than axum's default 2 MB body limit.
        .layer(axum::extract::DefaultBodyLimit::disable());
    tokio::spawn(async move { axum::serve(grpc, router).await });
    let http = tokio::net::TcpListener::bind(("127.0.0.1", http_port))
        .await
        .expect("binding the HTTP port");
    let router = axum::Router::new().route(
        "/count",
        axum::routing::get(move || async move { count.load(Ordering::Relaxed).to_string() }),
    );
    axum::serve(http, router).await.expect("serving /count");
}
