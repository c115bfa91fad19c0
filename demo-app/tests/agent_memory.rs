//! The agent's memory under hostile input (issue 15, item 1): a real `demo-app agent`
//! process gets each input the attack used, several at once, and its peak resident memory
//! (VmHWM from /proc) must stay within --queue-max-bytes + --max-request-bytes x
//! --max-concurrent-decodes + 30 MiB. The upstream is down, so whatever is accepted stays
//! queued: the worst case for the bound. Each case prints its figure.

use std::io::Write;
use std::net::SocketAddr;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use testkit::otlp::OtlpSink;
use testkit::process::Proc;
use testkit::raw_grpc::RawCodec;

const BIN: &str = env!("CARGO_BIN_EXE_demo-app");
const MIB: usize = 1024 * 1024;
const QUEUE_BYTES: usize = 64 * MIB;
const MAX_REQUEST: usize = 4 * MIB;
const DECODES: usize = 2;
/// Connections sending the same input at once.
const SENDERS: usize = 4;

struct Agent {
    proc: Proc,
    grpc: SocketAddr,
    http: SocketAddr,
}

impl Agent {
    async fn start(upstream: &str) -> Self {
        let (queue, request, decodes) = (
            QUEUE_BYTES.to_string(),
            MAX_REQUEST.to_string(),
            DECODES.to_string(),
        );
        let args = [
            "agent",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--tenant",
            "remote01",
            "--resource-attribute",
            "k8s.cluster.name=lgtm-remote",
            "--queue-max-bytes",
            &queue,
            "--queue-max-spans",
            "10000000",
            "--max-request-bytes",
            &request,
            "--max-concurrent-decodes",
            &decodes,
        ];
        let proc = Proc::spawn("agent", BIN, &args, &[("RUST_LOG", "warn,demo_app=info")]);
        let grpc = proc.logged_addr("grpc_addr").await;
        let http = proc.logged_addr("http_addr").await;
        Self { proc, grpc, http }
    }

    /// Peak resident memory so far, in bytes.
    fn vm_hwm(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))
            .expect("the agent is running");
        let kib: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kib * 1024
    }
}

/// Posts `body` from `SENDERS` connections at once, `rounds` times each; returns the statuses.
async fn post_all(
    agent: &Agent,
    content_type: &str,
    gzip: bool,
    body: Bytes,
    rounds: usize,
) -> Vec<u16> {
    let url = format!("http://{}/v1/traces", agent.http);
    let sends = (0..SENDERS).map(|_| {
        let (url, body, content_type) = (url.clone(), body.clone(), content_type.to_owned());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut statuses = Vec::new();
            for _ in 0..rounds {
                let mut request = client.post(&url).header("content-type", &content_type);
                if gzip {
                    request = request.header("content-encoding", "gzip");
                }
                match request.body(body.clone()).send().await {
                    Ok(r) => statuses.push(r.status().as_u16()),
                    Err(_) => statuses.push(0),
                }
            }
            statuses
        })
    });
    let mut all = Vec::new();
    for send in futures::future::join_all(sends).await {
        all.extend(send.unwrap());
    }
    all
}

async fn grpc_all(agent: &Agent, message: Bytes) -> Vec<tonic::Code> {
    let sends = (0..SENDERS).map(|_| {
        let (addr, message) = (agent.grpc, message.clone());
        tokio::spawn(async move {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
            grpc.ready().await.unwrap();
            let path = http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            );
            match grpc
                .unary(tonic::Request::new(message), path, RawCodec)
                .await
            {
                Ok(_) => tonic::Code::Ok,
                Err(status) => status.code(),
            }
        })
    });
    let mut codes = Vec::new();
    for send in futures::future::join_all(sends).await {
        codes.push(send.unwrap());
    }
    codes
}

/// `0a 04 12 02 12 00` x 699,000: nested empty ResourceSpans > ScopeSpans > Span, 4.19 MB.
fn nested_empty() -> Bytes {
    Bytes::from([0x0a, 0x04, 0x12, 0x02, 0x12, 0x00].repeat(699_000))
}

/// As many one-span ResourceSpans (valid ids, nothing else) as fit in `bytes`.
fn tiny_valid(bytes: usize) -> Bytes {
    let one = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![7; 16],
                    span_id: vec![1; 8],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    Bytes::from(one.repeat(bytes / one.len()))
}

fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

fn check_bound(case: &str, agent: &Agent) {
    let peak = agent.vm_hwm();
    let bound = QUEUE_BYTES + MAX_REQUEST * DECODES + 30 * MIB;
    eprintln!(
        "{case}: VmHWM {:.1} MiB (bound {:.0} MiB)",
        peak as f64 / MIB as f64,
        bound as f64 / MIB as f64
    );
    assert!(
        peak <= bound,
        "{case}: peak RSS {peak} bytes exceeds the bound of {bound}"
    );
}

/// Every answer refuses: with `status`, or 503 while the bodies' budget is spent (0: the
/// agent refused before reading the body and closed the connection while it was still
/// being sent, so the client saw a reset instead).
fn refused_as(statuses: &[u16], status: u16) {
    assert!(statuses.contains(&status), "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == status || s == 503 || s == 0),
        "{statuses:?}"
    );
}

async fn down_upstream() -> OtlpSink {
    let sink = OtlpSink::start().await;
    sink.stop().await;
    sink
}

#[tokio::test]
async fn nested_empty_resource_spans_over_http_stay_within_the_bound() {
    let sink = down_upstream().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    let statuses = post_all(&agent, "application/x-protobuf", false, nested_empty(), 3).await;
    // Memory first: before the fix the attack is not even refused.
    check_bound("nested empty ResourceSpans (HTTP)", &agent);
    refused_as(&statuses, 400);
}

#[tokio::test]
async fn nested_empty_resource_spans_over_grpc_stay_within_the_bound() {
    let sink = down_upstream().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    let codes = grpc_all(&agent, nested_empty()).await;
    // Memory first: before the fix the attack is not even refused.
    check_bound("nested empty ResourceSpans (gRPC)", &agent);
    // Refused as invalid, or told to retry while the bodies' budget is spent.
    assert!(codes.contains(&tonic::Code::InvalidArgument), "{codes:?}");
    assert!(
        codes.iter().all(|&c| matches!(
            c,
            tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted
        )),
        "{codes:?}"
    );
}

#[tokio::test]
async fn gzip_of_nested_empty_resource_spans_stays_within_the_bound() {
    let sink = down_upstream().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    let statuses = post_all(
        &agent,
        "application/x-protobuf",
        true,
        gzip(&nested_empty()),
        3,
    )
    .await;
    // Memory first: before the fix the attack is not even refused.
    check_bound("gzip of nested empty ResourceSpans", &agent);
    refused_as(&statuses, 400);
}

#[tokio::test]
async fn tiny_valid_resource_spans_fill_the_queue_within_the_bound() {
    let sink = down_upstream().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    // 4 MiB requests of ~120,000 one-span resources each, until the queue is full.
    let statuses = post_all(
        &agent,
        "application/x-protobuf",
        false,
        tiny_valid(MAX_REQUEST - 1024),
        8,
    )
    .await;
    // Memory first: before the fix the attack is not even refused.
    check_bound("tiny valid ResourceSpans until the queue is full", &agent);
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "the queue fills: {statuses:?}");
}

#[tokio::test]
async fn json_of_tiny_objects_stays_within_the_bound() {
    let sink = down_upstream().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    let body = format!(
        "{{\"resourceSpans\":[{}{{}}]}}",
        "{},".repeat(MAX_REQUEST / 3 - 20)
    );
    let statuses = post_all(&agent, "application/json", false, Bytes::from(body), 3).await;
    // Memory first: before the fix the attack is not even refused.
    check_bound("OTLP/JSON of empty objects", &agent);
    refused_as(&statuses, 413);
}

/// Issue 15 item 2: 64 HTTP/1.1 connections each send 4 MiB minus 1 KiB of a body and stall.
/// Only the bodies' budget is buffered; the rest are refused at once (503 + Retry-After).
#[tokio::test]
async fn stalled_http_bodies_are_bounded_by_the_budget() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sink = down_upstream().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    let body = vec![0x0a_u8; MAX_REQUEST - 1024];
    let mut stalled = Vec::new();
    for _ in 0..64 {
        let mut conn = tokio::net::TcpStream::connect(agent.http).await.unwrap();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: agent\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            MAX_REQUEST
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        // The agent may refuse and close before the whole body is written.
        let _ = conn.write_all(&body).await;
        stalled.push(conn);
    }
    let mut refused = 0;
    for conn in &mut stalled {
        let mut answer = [0u8; 12];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            conn.read(&mut answer),
        )
        .await;
        if let Ok(Ok(n)) = read
            && answer[..n].starts_with(b"HTTP/1.1 503")
        {
            refused += 1;
        }
    }
    check_bound("64 stalled HTTP/1.1 bodies of 4 MiB", &agent);
    assert!(refused >= 64 - DECODES, "{refused} of 64 refused at once");
    drop(stalled);
}
