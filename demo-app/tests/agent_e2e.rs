//! `demo-app agent` as users run it: a real process on port-0 sockets, spans from the
//! OpenTelemetry Python SDK (an independent client) and from raw OTLP requests, relayed to an
//! in-test upstream that can fail, go down and come back; checked against the agent's own
//! metrics.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;
use testkit::cut_proxy::CutProxy;
use testkit::otlp::{Failure, OtlpSink};
use testkit::process::{AgentProc, Proc};
use testkit::prometheus::promtool_check;
use testkit::raw_grpc::RawCodec;
use testkit::{eventually, metric_sum};

const BIN: &str = env!("CARGO_BIN_EXE_demo-app");
const WAIT: Duration = Duration::from_secs(30);
const TENANT: &str = "remote01";

struct Agent {
    proc: Proc,
    grpc: SocketAddr,
    http: SocketAddr,
    metrics: SocketAddr,
}

impl Agent {
    async fn start(upstream: &str, extra: &[&str]) -> Self {
        // Defaults for tests (fast batches and retries), unless `extra` sets the flag.
        let defaults = [
            ("--resource-attribute", "k8s.cluster.name=lgtm-remote"),
            ("--header", "x-extra=yes"),
            ("--batch-timeout", "50ms"),
            ("--retry-initial", "100ms"),
            ("--retry-max", "500ms"),
        ];
        let mut args: Vec<&str> = defaults
            .iter()
            .filter(|(flag, _)| !extra.contains(flag))
            .flat_map(|(flag, value)| [*flag, *value])
            .collect();
        args.extend_from_slice(extra);
        let AgentProc {
            proc,
            grpc,
            http,
            metrics,
        } = AgentProc::start(BIN, upstream, TENANT, &args, &[("RUST_LOG", "info")]).await;
        Self {
            proc,
            grpc,
            http,
            metrics,
        }
    }

    async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn metric(&self, name: &str) -> f64 {
        metric_sum(&self.metrics_text().await, name, None)
    }

    async fn wait_metric(&self, name: &str, want: f64) {
        eventually(&format!("{name} == {want}"), WAIT, async || {
            let got = self.metric(name).await;
            (got == want).then_some(())
        })
        .await;
    }

    async fn ready_status(&self) -> u16 {
        reqwest::get(format!("http://{}/readyz", self.metrics))
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn post_http(&self, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("http://{}/v1/traces", self.http))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// Runs the Python SDK sender; returns its JSON summary.
fn python_send(protocol: &str, endpoint: &str, spans: usize, run_id: &str) -> Value {
    python_send_with(protocol, endpoint, spans, run_id, &[])
}

fn python_send_with(
    protocol: &str,
    endpoint: &str,
    spans: usize,
    run_id: &str,
    extra: &[&str],
) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/send_spans.py");
    let out = Command::new("python3")
        .args([script, "--protocol", protocol, "--endpoint", endpoint])
        .args(["--spans", &spans.to_string(), "--run-id", run_id])
        .args(extra)
        .output()
        .expect("python3 (pip install -r tests/python/requirements.txt; .ci/run does)");
    assert!(
        out.status.success(),
        "send_spans.py failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("send_spans.py prints JSON")
}

fn spans_of_run(sink: &OtlpSink, run_id: &str) -> Vec<testkit::otlp::ReceivedSpan> {
    sink.spans()
        .into_iter()
        .filter(|s| s.attributes.get("run.id").map(String::as_str) == Some(run_id))
        .collect()
}

async fn wait_spans(sink: &OtlpSink, run_id: &str, n: usize) {
    eventually(&format!("{n} spans of run {run_id}"), WAIT, async || {
        (spans_of_run(sink, run_id).len() >= n).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(spans_of_run(sink, run_id).len(), n, "no duplicates");
}

/// A request of `spans` spans with `run.id` = `run_id`.
fn request(spans: usize, run_id: &str) -> ExportTraceServiceRequest {
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "rust-sender")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![7; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("span-{i}"),
                        attributes: vec![attr("run.id", run_id)],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn python_sdk_spans_arrive_with_tenant_and_resource_attributes() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &[]).await;
    let grpc_summary = python_send("grpc", &agent.grpc.to_string(), 40, "py-grpc");
    let http_summary = python_send("http", &format!("http://{}", agent.http), 40, "py-http");
    wait_spans(&sink, "py-grpc", 40).await;
    wait_spans(&sink, "py-http", 40).await;
    for span in spans_of_run(&sink, "py-grpc")
        .iter()
        .chain(&spans_of_run(&sink, "py-http"))
    {
        assert_eq!(
            span.headers.get("x-scope-orgid").map(String::as_str),
            Some(TENANT)
        );
        assert_eq!(span.headers.get("x-extra").map(String::as_str), Some("yes"));
        assert_eq!(
            span.resource["k8s.cluster.name"], "lgtm-remote",
            "overridden"
        );
        assert_eq!(span.service_name, "python-sender");
        assert_eq!(span.transport, "grpc");
    }
    let traces: std::collections::HashSet<_> = spans_of_run(&sink, "py-grpc")
        .into_iter()
        .map(|s| s.trace_id)
        .collect();
    assert_eq!(
        traces.len(),
        grpc_summary["trace_ids"].as_array().unwrap().len()
    );
    assert_eq!(http_summary["spans"], 40);

    let text = agent.metrics_text().await;
    assert_eq!(
        metric_sum(
            &text,
            "otelcol_receiver_accepted_spans_total",
            Some("transport=\"grpc\"")
        ),
        40.0
    );
    assert_eq!(
        metric_sum(
            &text,
            "otelcol_receiver_accepted_spans_total",
            Some("transport=\"http\"")
        ),
        40.0
    );
    agent
        .wait_metric("otelcol_exporter_sent_spans_total", 80.0)
        .await;
    assert_eq!(
        agent
            .metric("otelcol_exporter_send_failed_spans_total")
            .await,
        0.0
    );
    assert_eq!(
        agent.metric("otelcol_exporter_queue_capacity").await,
        200_000.0
    );
    promtool_check(&agent.metrics_text().await);
    // The agent does not trace itself: nothing but the senders' spans reached the upstream.
    assert_eq!(sink.spans().len(), 80);
}

#[tokio::test]
async fn gzip_compressed_requests_are_accepted_on_both_transports() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &[]).await;
    python_send_with("grpc", &agent.grpc.to_string(), 20, "gz", &["--gzip"]);
    python_send_with(
        "http",
        &format!("http://{}", agent.http),
        20,
        "gz",
        &["--gzip"],
    );
    wait_spans(&sink, "gz", 40).await;
    assert_eq!(
        agent.metric("otelcol_receiver_refused_spans_total").await,
        0.0
    );
}

#[tokio::test]
async fn otlp_json_over_http_is_relayed_by_the_http_exporter() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.http_endpoint(), &["--upstream-protocol", "http"]).await;
    let json = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "curl"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
            "name": "from-json", "kind": 2, "startTimeUnixNano": "1", "endTimeUnixNano": "2",
            "attributes": [{"key": "run.id", "value": {"stringValue": "json"}}]
        }]}]
    }]});
    let response = agent
        .post_http("application/json", json.to_string().into_bytes())
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{}");
    wait_spans(&sink, "json", 1).await;
    let span = &spans_of_run(&sink, "json")[0];
    assert_eq!(span.transport, "http");
    assert_eq!(span.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.headers["x-scope-orgid"], TENANT);
    assert_eq!(span.resource["k8s.cluster.name"], "lgtm-remote");
}

#[tokio::test]
async fn upstream_down_then_back_loses_nothing_and_readiness_follows() {
    let sink = OtlpSink::start().await;
    sink.stop().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &["--unready-after", "1s"]).await;
    assert_eq!(agent.ready_status().await, 200);
    python_send("grpc", &agent.grpc.to_string(), 100, "outage");
    python_send("http", &format!("http://{}", agent.http), 100, "outage");
    eventually(
        "readiness to turn red while exports fail",
        WAIT,
        async || (agent.ready_status().await == 503).then_some(()),
    )
    .await;
    assert!(agent.metric("agent_exporter_send_retries_total").await >= 1.0);
    assert_eq!(agent.metric("otelcol_exporter_queue_size").await, 200.0);
    sink.restart().await;
    wait_spans(&sink, "outage", 200).await;
    agent
        .wait_metric("otelcol_exporter_sent_spans_total", 200.0)
        .await;
    assert_eq!(
        agent
            .metric("otelcol_exporter_send_failed_spans_total")
            .await,
        0.0
    );
    assert_eq!(agent.metric("otelcol_exporter_queue_size").await, 0.0);
    eventually("readiness to recover", WAIT, async || {
        (agent.ready_status().await == 200).then_some(())
    })
    .await;
}

/// The attack of issue 15 item 3: the upstream dies while export calls are in flight (the
/// connection breaks mid-call, which tonic reports as `Unknown: transport error`), then comes
/// back. Every span the agent acknowledged must arrive; none may be counted as failed.
#[tokio::test]
async fn an_upstream_killed_with_calls_in_flight_loses_no_acknowledged_span() {
    let sink = OtlpSink::start().await;
    let proxy = CutProxy::start(sink.grpc_addr()).await;
    let agent = Agent::start(&proxy.endpoint(), &[]).await;
    // One call through first, so the agent holds an open connection to cut.
    let warm = agent
        .post_http("application/x-protobuf", request(1, "warm").encode_to_vec())
        .await;
    assert_eq!(warm.status(), 200);
    wait_spans(&sink, "warm", 1).await;

    proxy.hold();
    for _ in 0..5 {
        let response = agent
            .post_http("application/x-protobuf", request(50, "cut").encode_to_vec())
            .await;
        assert_eq!(response.status(), 200, "acknowledged");
    }
    eventually("an export call in flight", WAIT, async || {
        proxy.has_held_data().then_some(())
    })
    .await;
    proxy.kill().await;
    proxy.restart().await;

    agent
        .wait_metric("otelcol_exporter_sent_spans_total", 251.0)
        .await;
    assert_eq!(
        agent
            .metric("otelcol_exporter_send_failed_spans_total")
            .await,
        0.0,
        "a broken connection is retried, not dropped"
    );
    wait_spans(&sink, "cut", 250).await;
}

/// Issue 15 item 4: ids the upstream (pdata) would refuse are refused per request, so a bad
/// sender's spans never share a batch with others' and cannot get it refused whole.
#[tokio::test]
async fn invalid_ids_are_refused_per_request_and_good_senders_are_unaffected() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &[]).await;
    let with_ids = |trace_id: Vec<u8>, span_id: Vec<u8>| {
        let mut r = request(5, "bad");
        for s in &mut r.resource_spans[0].scope_spans[0].spans {
            s.trace_id = trace_id.clone();
            s.span_id = span_id.clone();
        }
        r.encode_to_vec()
    };
    let bad = [
        with_ids(vec![1; 3], vec![1; 8]),
        with_ids(vec![1; 16], vec![1; 100]),
        with_ids(vec![0; 16], vec![1; 8]),
    ];
    for body in &bad {
        let response = agent
            .post_http("application/x-protobuf", body.clone())
            .await;
        assert_eq!(response.status(), 400);
        let status = grpc_export(agent.grpc, body.clone()).await;
        assert_eq!(status.unwrap_err().code(), tonic::Code::InvalidArgument);
    }
    let good = agent
        .post_http("application/x-protobuf", request(7, "good").encode_to_vec())
        .await;
    assert_eq!(good.status(), 200);
    wait_spans(&sink, "good", 7).await;
    assert!(spans_of_run(&sink, "bad").is_empty());
    let text = agent.metrics_text().await;
    assert_eq!(
        metric_sum(&text, "otelcol_receiver_refused_spans_total", None),
        30.0
    );
    assert_eq!(
        metric_sum(&text, "otelcol_receiver_accepted_spans_total", None),
        7.0
    );
}

/// Sends `requests` requests of 10 spans over HTTP; returns (answered 200, answered 503).
async fn flood(agent: &Agent, requests: usize, run_id: &str) -> (usize, usize) {
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..requests {
        let response = agent
            .post_http(
                "application/x-protobuf",
                request(10, run_id).encode_to_vec(),
            )
            .await;
        match response.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "2");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    (ok, refused)
}

#[tokio::test]
async fn past_the_bound_refusals_match_the_metrics_and_the_rest_arrives() {
    let sink = OtlpSink::start().await;
    sink.stop().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &["--queue-max-spans", "100"]).await;
    let (ok, refused) = flood(&agent, 30, "bound").await;
    assert_eq!((ok, refused), (10, 20));
    let text = agent.metrics_text().await;
    assert_eq!(
        metric_sum(&text, "otelcol_receiver_refused_spans_total", None),
        200.0
    );
    assert_eq!(
        metric_sum(&text, "otelcol_exporter_enqueue_failed_spans_total", None),
        200.0
    );
    assert_eq!(
        metric_sum(&text, "otelcol_receiver_accepted_spans_total", None),
        100.0
    );
    // gRPC callers are refused with UNAVAILABLE too.
    let status = grpc_export(agent.grpc, request(10, "bound").encode_to_vec()).await;
    assert_eq!(status.unwrap_err().code(), tonic::Code::Unavailable);
    sink.restart().await;
    wait_spans(&sink, "bound", 100).await;
    agent
        .wait_metric("otelcol_exporter_sent_spans_total", 100.0)
        .await;
}

#[tokio::test]
async fn past_the_bound_drops_are_counted_when_configured() {
    let sink = OtlpSink::start().await;
    sink.stop().await;
    let agent = Agent::start(
        &sink.grpc_endpoint(),
        &["--queue-max-spans", "100", "--overflow", "drop"],
    )
    .await;
    assert_eq!(flood(&agent, 30, "drop").await, (30, 0));
    let text = agent.metrics_text().await;
    assert_eq!(
        metric_sum(&text, "otelcol_exporter_enqueue_failed_spans_total", None),
        200.0
    );
    assert_eq!(
        metric_sum(&text, "otelcol_receiver_refused_spans_total", None),
        0.0
    );
    sink.restart().await;
    wait_spans(&sink, "drop", 100).await;
    agent
        .wait_metric("otelcol_exporter_sent_spans_total", 100.0)
        .await;
}

#[tokio::test]
async fn a_permanent_error_is_not_retried_and_is_counted() {
    let sink = OtlpSink::start().await;
    sink.fail_with(Failure {
        grpc: tonic::Status::invalid_argument("no thanks"),
        http_status: 400,
        retry_after: None,
    });
    let agent = Agent::start(&sink.grpc_endpoint(), &[]).await;
    let response = agent
        .post_http(
            "application/x-protobuf",
            request(10, "permanent").encode_to_vec(),
        )
        .await;
    assert_eq!(response.status(), 200);
    agent
        .wait_metric("otelcol_exporter_send_failed_spans_total", 10.0)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.export_calls(), 1, "a permanent error is not retried");
    assert_eq!(agent.metric("agent_exporter_send_retries_total").await, 0.0);
    assert_eq!(agent.metric("otelcol_exporter_queue_size").await, 0.0);
}

#[tokio::test]
async fn a_retryable_error_is_retried_honouring_retry_after() {
    let sink = OtlpSink::start().await;
    sink.fail_with(Failure {
        grpc: tonic::Status::unavailable("busy"),
        http_status: 429,
        retry_after: Some(1),
    });
    let agent = Agent::start(
        &sink.http_endpoint(),
        &["--upstream-protocol", "http", "--retry-max", "5s"],
    )
    .await;
    agent
        .post_http(
            "application/x-protobuf",
            request(5, "retry-after").encode_to_vec(),
        )
        .await;
    eventually("a first failed call", WAIT, async || {
        (sink.export_calls() >= 1).then_some(())
    })
    .await;
    let first = std::time::Instant::now();
    eventually("a retry", WAIT, async || {
        (sink.export_calls() >= 2).then_some(())
    })
    .await;
    // Without the hint the next try would come after ~100 ms (--retry-initial).
    assert!(
        first.elapsed() >= Duration::from_millis(800),
        "{:?}",
        first.elapsed()
    );
    sink.recover();
    wait_spans(&sink, "retry-after", 5).await;
}

#[tokio::test]
async fn sigterm_sends_what_is_queued_to_a_live_upstream() {
    let sink = OtlpSink::start().await;
    let mut agent = Agent::start(
        &sink.grpc_endpoint(),
        &["--batch-timeout", "1h", "--batch-max-spans", "100000"],
    )
    .await;
    python_send("grpc", &agent.grpc.to_string(), 60, "drain");
    assert_eq!(agent.metric("otelcol_exporter_queue_size").await, 60.0);
    assert!(
        spans_of_run(&sink, "drain").is_empty(),
        "held by the batch timeout"
    );
    agent.proc.signal("TERM");
    assert!(agent.proc.wait_exit(WAIT).await.success());
    assert_eq!(spans_of_run(&sink, "drain").len(), 60);
    assert!(
        agent.proc.logs().iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("queue drained"))),
        "{:?}",
        agent.proc.logs()
    );
}

#[tokio::test]
async fn sigterm_with_the_upstream_down_reports_what_was_lost() {
    let sink = OtlpSink::start().await;
    sink.stop().await;
    let mut agent = Agent::start(&sink.grpc_endpoint(), &["--shutdown-timeout", "1s"]).await;
    agent
        .post_http(
            "application/x-protobuf",
            request(25, "lost").encode_to_vec(),
        )
        .await;
    agent.proc.signal("TERM");
    assert!(agent.proc.wait_exit(WAIT).await.success());
    let line = agent
        .proc
        .wait_for_log(WAIT, |l| l.get("unsent_spans").is_some())
        .await;
    assert_eq!(line["unsent_spans"], 25, "{line}");
    assert_eq!(line["level"], "WARN", "{line}");
}

#[tokio::test]
async fn bad_http_input_is_rejected_and_the_agent_keeps_serving() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &["--max-request-bytes", "2000"]).await;
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("application/x-protobuf", b"\xff\xff\xff\xff".to_vec(), 400),
        ("application/json", b"{\"resourceSpans\": [".to_vec(), 400),
        ("application/json", b"{\"resourceSpans\": 7}".to_vec(), 400),
        ("application/x-protobuf", vec![0u8; 4000], 413),
        ("text/plain", b"hello".to_vec(), 415),
    ];
    for (content_type, body, want) in cases {
        let response = agent.post_http(content_type, body).await;
        assert_eq!(response.status().as_u16(), want, "{content_type}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    let ok = agent
        .post_http(
            "application/x-protobuf",
            request(3, "after-bad-http").encode_to_vec(),
        )
        .await;
    assert_eq!(ok.status(), 200);
    wait_spans(&sink, "after-bad-http", 3).await;
}

#[tokio::test]
async fn bad_grpc_input_is_rejected_and_the_agent_keeps_serving() {
    let sink = OtlpSink::start().await;
    let agent = Agent::start(&sink.grpc_endpoint(), &["--max-request-bytes", "2000"]).await;
    let malformed = grpc_export(agent.grpc, b"\xff\xff\xff\xff".to_vec()).await;
    assert_eq!(malformed.unwrap_err().code(), tonic::Code::InvalidArgument);
    let oversized = grpc_export(agent.grpc, request(100, "big").encode_to_vec()).await;
    assert_eq!(
        oversized.unwrap_err().code(),
        tonic::Code::ResourceExhausted
    );
    let wrong_type = reqwest::Client::new()
        .post(format!(
            "http://{}/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            agent.grpc
        ))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 415);
    grpc_export(agent.grpc, request(3, "after-bad-grpc").encode_to_vec())
        .await
        .unwrap();
    wait_spans(&sink, "after-bad-grpc", 3).await;
}

/// Calls `TraceService/Export` with raw bytes as the message (valid or not).
async fn grpc_export(addr: SocketAddr, message: Vec<u8>) -> Result<(), tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary(tonic::Request::new(Bytes::from(message)), path, RawCodec)
        .await
        .map(|_| ())
}
