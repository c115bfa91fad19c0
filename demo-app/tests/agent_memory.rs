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
use testkit::process::{AgentProc, Proc};
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
        Self::start_with(upstream, &[]).await
    }

    /// With `extra` arguments after the common ones.
    async fn start_with(upstream: &str, extra: &[&str]) -> Self {
        let (queue, request, decodes) = (
            QUEUE_BYTES.to_string(),
            MAX_REQUEST.to_string(),
            DECODES.to_string(),
        );
        let args = [
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
        let args: Vec<&str> = args.iter().chain(extra).copied().collect();
        let env = [("RUST_LOG", "warn,demo_app=info")];
        let agent = AgentProc::start(BIN, upstream, "remote01", &args, &env).await;
        Self {
            proc: agent.proc,
            grpc: agent.grpc,
            http: agent.http,
        }
    }

    /// Peak resident memory so far, in bytes.
    fn vm_hwm(&self) -> usize {
        self.proc_status("VmHWM:")
    }

    /// Resident memory now, in bytes.
    fn vm_rss(&self) -> usize {
        self.proc_status("VmRSS:")
    }

    /// Resident anonymous memory now (the heap and stacks, without the binary's own pages),
    /// in bytes.
    fn rss_anon(&self) -> usize {
        self.proc_status("RssAnon:")
    }

    /// A size field of /proc/<pid>/status (given in kB), in bytes.
    fn proc_status(&self, field: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))
            .expect("the agent is running");
        let kib: usize = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"));
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

/// Resident anonymous memory must fall back to `before` + this once large requests are
/// done: the runtime's and connections' own small buffers may stay, a request's megabytes
/// may not.
const RETURNED_SLACK: usize = 4 * MIB;
/// How long the agent may take to give the memory back.
const RETURN_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Polls RssAnon until it is within `before` + [`RETURNED_SLACK`]; fails after
/// [`RETURN_WITHIN`], printing what it saw. Anonymous memory, not VmRSS: VmRSS also counts
/// the pages of the agent's binary that the first large request ran through for the first
/// time (file-backed, shared and reclaimable: several MiB in a debug build), which no
/// allocator can give back.
async fn check_returned(case: &str, agent: &Agent, before: usize) {
    let bound = before + RETURNED_SLACK;
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        let anon = agent.rss_anon();
        seen.push(format!("{:.1}", anon as f64 / MIB as f64));
        if anon <= bound {
            eprintln!(
                "{case}: RssAnon back to {:.1} MiB after {} ms (before {:.1} MiB; VmRSS now {:.1} MiB, peak {:.1} MiB; seen {})",
                anon as f64 / MIB as f64,
                started.elapsed().as_millis(),
                before as f64 / MIB as f64,
                agent.vm_rss() as f64 / MIB as f64,
                agent.vm_hwm() as f64 / MIB as f64,
                seen.join(" ")
            );
            return;
        }
        assert!(
            started.elapsed() < RETURN_WITHIN,
            "{case}: RssAnon stays above {:.1} MiB (before + {} MiB) for {RETURN_WITHIN:?} (VmRSS {:.1} MiB): {} MiB",
            bound as f64 / MIB as f64,
            RETURNED_SLACK / MIB,
            agent.vm_rss() as f64 / MIB as f64,
            seen.join(" ")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// As many spans of about 4 KiB (valid ids, one large attribute) as fit in `bytes`.
fn large_valid(bytes: usize) -> Bytes {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    let span = |i: usize| Span {
        trace_id: vec![7; 16],
        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
        name: "large".into(),
        attributes: vec![KeyValue {
            key: "padding".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("x".repeat(4000))),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let per_span = span(0).encoded_len() + 3;
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..bytes / per_span - 1).map(span).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    Bytes::from(request.encode_to_vec())
}

/// Issue 15 item 1, "return memory to the OS after a large request": once large requests
/// are done (refused, or accepted and sent upstream), the agent's resident (anonymous) memory
/// falls back near where it was before them within two seconds, instead of staying at its
/// peak.
#[tokio::test]
async fn memory_goes_back_to_the_os_after_large_requests() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.grpc_endpoint()).await;
    // A small request first, so that what the runtime keeps anyway is in `before`.
    let warm = post_all(&agent, "application/x-protobuf", false, tiny_valid(4096), 1).await;
    assert!(warm.iter().all(|&s| s == 200), "{warm:?}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = agent.rss_anon();

    let refused = post_all(&agent, "application/x-protobuf", false, nested_empty(), 3).await;
    refused_as(&refused, 400);
    check_returned("after refused 4 MiB requests", &agent, before).await;

    let body = large_valid(MAX_REQUEST - 1024);
    let spans = ExportTraceServiceRequest::decode(body.clone())
        .unwrap()
        .resource_spans[0]
        .scope_spans[0]
        .spans
        .len();
    let accepted = post_all(&agent, "application/x-protobuf", false, body, 3).await;
    let ok = accepted.iter().filter(|&&s| s == 200).count();
    assert!(ok > 0, "{accepted:?}");
    // 503: the bodies' budget or the queue is full; 0: refused before the body was read.
    assert!(
        accepted.iter().all(|&s| s == 200 || s == 503 || s == 0),
        "{accepted:?}"
    );
    let sent = std::time::Instant::now();
    while sink.spans().len() < ok * spans {
        assert!(
            sent.elapsed() < std::time::Duration::from_secs(30),
            "{} of {} spans arrived upstream",
            sink.spans().len(),
            ok * spans
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    check_returned("after accepted 4 MiB requests were sent", &agent, before).await;
}

/// How the agent answered one stalled HTTP/2 stream.
#[derive(Debug)]
struct StreamAnswer {
    status: u16,
    /// `grpc-status` of a gRPC answer (in the headers: "Trailers-Only").
    grpc_status: Option<String>,
    /// A retry hint: `Retry-After`, or gRPC `RetryInfo` in `grpc-status-details-bin`.
    retry_hint: bool,
    /// Time from opening the stream to the answer.
    after: std::time::Duration,
}

const H2_CONNECTIONS: usize = 10;
const H2_STREAMS: usize = 100;
const H2_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The attack of issue 15 item 2 over HTTP/2: `H2_CONNECTIONS` connections with
/// `H2_STREAMS` streams each; every stream sends `head` and 1 MiB of body, then stalls
/// (never ends its body). Returns each stream's answer (`None`: reset without an answer, or
/// no answer within the body timeout and a margin).
async fn stalled_h2_streams(
    addr: SocketAddr,
    path: &'static str,
    content_type: &'static str,
    content_length: Option<usize>,
    head: Bytes,
) -> Vec<Option<StreamAnswer>> {
    let chunk = Bytes::from(vec![0x0a_u8; MIB]);
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..H2_CONNECTIONS {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (send, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        for _ in 0..H2_STREAMS {
            let (send, head, chunk) = (send.clone(), head.clone(), chunk.clone());
            streams.spawn(async move {
                let started = std::time::Instant::now();
                let mut send = send.ready().await.ok()?;
                let mut request = http::Request::post(format!("http://agent{path}"))
                    .header("content-type", content_type)
                    .header("te", "trailers");
                if let Some(n) = content_length {
                    request = request.header("content-length", n);
                }
                let (response, mut body) =
                    send.send_request(request.body(()).unwrap(), false).ok()?;
                // Refused streams are reset; sending into them fails, which is fine.
                let _ = body.send_data(head, false);
                let _ = body.send_data(chunk, false);
                // `body` stays alive (never ended) until the answer: the stream is stalled.
                let response = response.await.ok()?;
                drop(body);
                let headers = response.headers();
                Some(StreamAnswer {
                    status: response.status().as_u16(),
                    grpc_status: headers
                        .get("grpc-status")
                        .map(|v| v.to_str().unwrap_or("?").to_owned()),
                    retry_hint: headers.contains_key("retry-after")
                        || headers.contains_key("grpc-status-details-bin"),
                    after: started.elapsed(),
                })
            });
        }
    }
    // Every stream should be answered within the body timeout; what is not by a generous
    // margin after it counts as unanswered.
    let deadline =
        tokio::time::Instant::now() + H2_BODY_TIMEOUT + std::time::Duration::from_secs(20);
    let mut answers = Vec::new();
    while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, streams.join_next()).await {
        answers.push(answer.unwrap());
    }
    answers.extend((0..streams.len()).map(|_| None));
    streams.abort_all();
    answers
}

/// Sums up the answers (for the failure messages and the log).
fn tally(answers: &[Option<StreamAnswer>], key: impl Fn(&StreamAnswer) -> String) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for answer in answers {
        let k = answer
            .as_ref()
            .map_or_else(|| "reset or no answer".to_owned(), &key);
        *counts.entry(k).or_default() += 1;
    }
    format!("{counts:?}")
}

/// 10 HTTP/2 connections x 100 streams stalled after 1 MiB on `POST /v1/traces`: the
/// bodies' budget bounds memory; streams past it get 503 + Retry-After at once, and those
/// holding it are answered 408 once `--body-timeout` passes.
#[tokio::test]
async fn stalled_h2_streams_on_http_are_bounded_and_time_out() {
    let sink = down_upstream().await;
    let timeout = format!("{}ms", H2_BODY_TIMEOUT.as_millis());
    let agent = Agent::start_with(&sink.grpc_endpoint(), &["--body-timeout", &timeout]).await;
    let answers = stalled_h2_streams(
        agent.http,
        "/v1/traces",
        "application/x-protobuf",
        None,
        Bytes::new(),
    )
    .await;
    let summary = tally(&answers, |a| a.status.to_string());
    eprintln!("HTTP/2 stalled streams on /v1/traces: {summary}");
    check_bound("10 h2 connections x 100 stalled streams (HTTP)", &agent);
    let answered: Vec<&StreamAnswer> = answers.iter().flatten().collect();
    assert_eq!(
        answered.len(),
        answers.len(),
        "a stream got no answer: {summary}"
    );
    let busy: Vec<_> = answered.iter().filter(|a| a.status == 503).collect();
    let timed_out: Vec<_> = answered.iter().filter(|a| a.status == 408).collect();
    assert_eq!(busy.len() + timed_out.len(), answered.len(), "{summary}");
    assert!(
        !busy.is_empty() && busy.iter().all(|a| a.retry_hint),
        "{summary}"
    );
    assert!(!timed_out.is_empty(), "stalled streams time out: {summary}");
    assert!(
        timed_out.iter().all(|a| a.after >= H2_BODY_TIMEOUT),
        "408 only once the body timeout passed"
    );
}

/// The same over OTLP/gRPC: each stream declares a 2 MiB message (and a Content-Length, so
/// the budget is held up front rather than as the body grows), sends 1 MiB of it and stalls; answers are RESOURCE_EXHAUSTED with RetryInfo, or DEADLINE_EXCEEDED.
#[tokio::test]
async fn stalled_h2_streams_on_grpc_are_bounded_and_time_out() {
    let sink = down_upstream().await;
    let timeout = format!("{}ms", H2_BODY_TIMEOUT.as_millis());
    let agent = Agent::start_with(&sink.grpc_endpoint(), &["--body-timeout", &timeout]).await;
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&(2 * MIB as u32).to_be_bytes());
    let answers = stalled_h2_streams(
        agent.grpc,
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "application/grpc",
        Some(5 + 2 * MIB),
        Bytes::from(prefix),
    )
    .await;
    let summary = tally(&answers, |a| {
        format!("{} grpc-status {:?}", a.status, a.grpc_status)
    });
    eprintln!("HTTP/2 stalled streams on gRPC Export: {summary}");
    check_bound("10 h2 connections x 100 stalled streams (gRPC)", &agent);
    let answered: Vec<&StreamAnswer> = answers.iter().flatten().collect();
    assert_eq!(
        answered.len(),
        answers.len(),
        "a stream got no answer: {summary}"
    );
    let code = |a: &StreamAnswer| a.grpc_status.as_deref().and_then(|s| s.parse::<i32>().ok());
    let exhausted: Vec<_> = answered
        .iter()
        .filter(|a| code(a) == Some(tonic::Code::ResourceExhausted as i32))
        .collect();
    let deadline: Vec<_> = answered
        .iter()
        .filter(|a| code(a) == Some(tonic::Code::DeadlineExceeded as i32))
        .collect();
    assert_eq!(
        exhausted.len() + deadline.len(),
        answered.len(),
        "{summary}"
    );
    assert!(
        !exhausted.is_empty() && exhausted.iter().all(|a| a.retry_hint),
        "{summary}"
    );
    assert!(!deadline.is_empty(), "stalled streams time out: {summary}");
    assert!(
        deadline.iter().all(|a| a.after >= H2_BODY_TIMEOUT),
        "DEADLINE_EXCEEDED only once the body timeout passed"
    );
}
