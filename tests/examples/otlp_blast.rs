//! A fast OTLP/gRPC span sender for benchmarks: one pre-encoded request (realistic spans:
//! ids, times, ten attributes) sent over and over by a few concurrent callers, at full speed
//! or at a steady rate. Prints one JSON line: spans sent, accepted, refused, elapsed.
//!
//! Usage: cargo run --release -p testkit --example otlp_blast -- \
//!          <endpoint> <seconds> [spans-per-second (0 = as fast as possible)] \
//!          [spans-per-request (100)] [concurrency (4)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use testkit::raw_grpc::RawCodec;
use tonic::codegen::http::uri::PathAndQuery;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// `spans` spans shaped like an HTTP server's.
fn request(spans: usize) -> Bytes {
    let span = |i: usize| Span {
        trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        parent_span_id: 7u64.to_be_bytes().to_vec(),
        name: "GET /api/links".into(),
        kind: 2,
        start_time_unix_nano: 1_764_000_000_000_000_000,
        end_time_unix_nano: 1_764_000_000_002_000_000,
        attributes: vec![
            attr("http.request.method", "GET"),
            attr("http.route", "/api/links"),
            attr("url.path", "/api/links"),
            attr("url.scheme", "http"),
            attr("server.address", "app.demo.svc.cluster.local"),
            attr("network.protocol.version", "1.1"),
            attr("user_agent.original", "demo-app-loadgen/0.1"),
            attr("client.address", "10.244.0.17"),
            attr("http.response.status_code", "200"),
            attr("demo.role", "app"),
        ],
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "otlp-blast")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans).map(span).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
    .into()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: otlp_blast <endpoint> <seconds> [spans/s (0 = max)] [spans/request] [concurrency]";
    let endpoint = args.first().expect(usage).clone();
    let seconds: f64 = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let rate: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let per_request: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    let concurrency: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(4);

    let payload = request(per_request);
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .expect(usage)
        .connect_lazy();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    // Each caller sends at rate / concurrency requests' worth of spans per second.
    let interval = (rate > 0.0)
        .then(|| Duration::from_secs_f64(per_request as f64 * concurrency as f64 / rate));
    let mut callers = Vec::new();
    for _ in 0..concurrency {
        let (channel, tally, payload) = (channel.clone(), tally.clone(), payload.clone());
        callers.push(tokio::spawn(async move {
            let mut next = tokio::time::Instant::now();
            while Instant::now() < deadline {
                if let Some(every) = interval {
                    tokio::time::sleep_until(next).await;
                    next += every;
                }
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                if grpc.ready().await.is_err() {
                    tally
                        .failed
                        .fetch_add(per_request as u64, Ordering::Relaxed);
                    continue;
                }
                let path = PathAndQuery::from_static(EXPORT);
                let result = grpc
                    .unary(tonic::Request::new(payload.clone()), path, RawCodec)
                    .await;
                let counter = match result {
                    Ok(_) => &tally.accepted,
                    Err(s) if s.code() == tonic::Code::Unavailable => &tally.refused,
                    Err(_) => &tally.failed,
                };
                counter.fetch_add(per_request as u64, Ordering::Relaxed);
            }
        }));
    }
    for c in callers {
        let _ = c.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let accepted = tally.accepted.load(Ordering::Relaxed);
    println!(
        "{{\"accepted_spans\":{accepted},\"refused_spans\":{},\"failed_spans\":{},\"elapsed_s\":{elapsed:.2},\"accepted_per_s\":{:.0},\"request_bytes\":{}}}",
        tally.refused.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        accepted as f64 / elapsed,
        payload.len()
    );
}
