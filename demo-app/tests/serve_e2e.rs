//! The service as users run it: db and app processes on port-0 sockets, exporting spans to a
//! real OTLP receiver, scraped by a real Prometheus, checked by promtool, stopped by SIGTERM.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;
use testkit::otlp::{
    OtlpSink, ReceivedSpan, SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER,
    STATUS_CODE_ERROR,
};
use testkit::process::{DemoPair, Proc};
use testkit::prometheus::{Prometheus, promtool_check};
use testkit::{eventually, metric_sum};

const BIN: &str = env!("CARGO_BIN_EXE_demo-app");
const WAIT: Duration = Duration::from_secs(30);

/// A db and an app exporting to `sink` (db over HTTP/protobuf, app over gRPC, so both
/// transports are exercised), spans flushed every 100 ms.
async fn start_pair(sink: &OtlpSink, app_extra: &[&str]) -> DemoPair {
    let common = [("OTEL_BSP_SCHEDULE_DELAY", "100"), ("RUST_LOG", "info")];
    let (http, grpc) = (sink.http_endpoint(), sink.grpc_endpoint());
    let mut db_env = common.to_vec();
    db_env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", http.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ]);
    let mut app_env = common.to_vec();
    app_env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", grpc.as_str()));
    DemoPair::start(BIN, &db_env, &app_env, app_extra).await
}

fn find<'a>(spans: &'a [ReceivedSpan], service: &str, kind: i32) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.service_name == service && s.kind == kind)
}

fn lines_with_trace(proc: &Proc, trace_id: &str) -> Vec<Value> {
    proc.logs()
        .into_iter()
        .filter(|l| l["trace_id"] == trace_id)
        .collect()
}

#[tokio::test]
async fn one_request_is_one_trace_from_app_to_db_and_logs_carry_its_id() {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &[]).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/links?source=e2e", pair.app_url))
        .header(reqwest::header::USER_AGENT, "e2e-test/1.0")
        .json(&serde_json::json!({"title": "traced", "url": "https://traced.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let (app_server, db_client, db_server) = eventually("the three spans", WAIT, async || {
        let spans = sink.spans();
        let app_server = find(&spans, "demo-app", SPAN_KIND_SERVER)?.clone();
        let trace = sink.spans_of_trace(&app_server.trace_id);
        let db_client = find(&trace, "demo-app", SPAN_KIND_CLIENT)?.clone();
        let db_server = find(&trace, "demo-db", SPAN_KIND_SERVER)?.clone();
        Some((app_server, db_client, db_server))
    })
    .await;

    assert_eq!(app_server.parent_span_id, "", "the app span is the root");
    assert_eq!(db_client.parent_span_id, app_server.span_id);
    assert_eq!(db_server.parent_span_id, db_client.span_id);
    assert_eq!(app_server.name, "POST /api/links");
    assert_eq!(db_client.name, "POST /links");
    assert_eq!(app_server.attributes["http.route"], "/api/links");
    assert_eq!(app_server.attributes["http.request.method"], "POST");
    assert_eq!(app_server.attributes["http.response.status_code"], "201");
    assert_eq!(db_server.attributes["http.response.status_code"], "201");
    // What the request itself says, set when the span is created.
    assert_eq!(app_server.attributes["url.path"], "/api/links");
    assert_eq!(app_server.attributes["url.query"], "source=e2e");
    assert_eq!(app_server.attributes["url.scheme"], "http");
    assert_eq!(app_server.attributes["server.address"], "127.0.0.1");
    assert_eq!(app_server.attributes["user_agent.original"], "e2e-test/1.0");
    assert_eq!(app_server.attributes["network.protocol.version"], "1.1");
    assert!(
        !db_server.attributes.contains_key("url.query"),
        "an absent query is left out, not recorded empty"
    );
    assert!(db_client.attributes["url.full"].ends_with("/links"));
    assert_eq!(app_server.transport, "grpc");
    assert_eq!(db_server.transport, "http");

    let trace_id = app_server.trace_id.as_str();
    let app_lines = eventually("app log lines of the trace", WAIT, async || {
        let lines = lines_with_trace(&pair.app, trace_id);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    assert!(
        app_lines.iter().any(|l| l["message"] == "link posted"),
        "{app_lines:?}"
    );
    assert!(
        app_lines
            .iter()
            .any(|l| l["message"] == "request served" && l["status"] == 201)
    );
    assert!(
        app_lines
            .iter()
            .all(|l| l["span_id"].as_str().is_some_and(|s| s.len() == 16))
    );
    let db_lines = lines_with_trace(&pair.db, trace_id);
    assert!(
        db_lines.iter().any(|l| l["message"] == "link added"),
        "{db_lines:?}"
    );
    assert!(
        db_lines
            .iter()
            .any(|l| l["span_id"] == db_server.span_id.as_str())
    );
}

/// The span of `trace_id` named `name`, once the sink has it.
async fn span_named(sink: &OtlpSink, trace_id: &str, name: &str) -> ReceivedSpan {
    eventually(&format!("span {name:?}"), WAIT, async || {
        sink.spans_of_trace(trace_id)
            .into_iter()
            .find(|s| s.name == name)
    })
    .await
}

#[tokio::test]
async fn store_operations_are_internal_spans_under_the_db_server_span_and_their_logs_carry_their_ids()
 {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &[]).await;
    let client = reqwest::Client::new();
    let posted: Value = client
        .post(format!("{}/api/links", pair.app_url))
        .json(&serde_json::json!({"title": "stored", "url": "https://stored.example"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link_id = posted["id"].as_u64().unwrap();

    let app_server = eventually("the app's server span", WAIT, async || {
        find(&sink.spans(), "demo-app", SPAN_KIND_SERVER).cloned()
    })
    .await;
    let trace_id = app_server.trace_id.as_str();
    let db_server = eventually("the db's server span", WAIT, async || {
        find(&sink.spans_of_trace(trace_id), "demo-db", SPAN_KIND_SERVER).cloned()
    })
    .await;
    let insert = span_named(&sink, trace_id, "insert links").await;
    assert_eq!(insert.service_name, "demo-db");
    assert_eq!(insert.kind, SPAN_KIND_INTERNAL);
    assert_eq!(
        insert.parent_span_id, db_server.span_id,
        "child of the db server span"
    );
    assert_eq!(insert.attributes["db.operation.name"], "insert");
    assert_eq!(insert.attributes["db.collection.name"], "links");
    assert_eq!(
        insert.int_attributes["link.id"],
        i64::try_from(link_id).unwrap(),
        "an id is an OTLP integer"
    );

    let added = pair
        .db
        .wait_for_log(WAIT, |l| {
            l["message"] == "link added" && l["link_id"] == link_id
        })
        .await;
    assert_eq!(added["trace_id"], trace_id);
    assert_eq!(
        added["span_id"],
        insert.span_id.as_str(),
        "the store span's id"
    );

    // A read: the page lists links, rendered in its own span; the db says how many it returned.
    let page = client.get(&pair.app_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page_server = eventually("the page's server span", WAIT, async || {
        sink.spans()
            .into_iter()
            .find(|s| s.name == "GET /" && s.kind == SPAN_KIND_SERVER)
    })
    .await;
    let render = span_named(&sink, &page_server.trace_id, "render page").await;
    assert_eq!(render.parent_span_id, page_server.span_id);
    let top = span_named(&sink, &page_server.trace_id, "top links").await;
    let returned = top.int_attributes["db.response.returned_rows"];
    assert_eq!(returned, render.int_attributes["page.links"]);
    assert!(returned >= 1, "at least the posted link");

    // The db says what became of its spans: with a collector, every ended span is exported.
    let metrics_url = format!("http://{}/metrics", pair.db.metrics_addr().await);
    eventually("every span the db ended, exported", WAIT, async || {
        let text = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
        let ended = metric_sum(&text, "demo_app_spans_ended_total", None);
        let exported = metric_sum(&text, "demo_app_spans_exported_total", None);
        let failed = metric_sum(&text, "demo_app_spans_export_failed_total", None);
        (ended >= 3.0 && exported == ended && failed == 0.0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_injected_fault_shows_on_its_span_and_fails_the_request_span() {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &["--error-ratio", "1", "--latency", "fixed:30ms"]).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/links", pair.app_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);

    let app_server = eventually("the app's server span", WAIT, async || {
        find(&sink.spans(), "demo-app", SPAN_KIND_SERVER).cloned()
    })
    .await;
    let fault = span_named(&sink, &app_server.trace_id, "inject fault").await;
    assert_eq!(fault.parent_span_id, app_server.span_id);
    assert_eq!(fault.attributes["chaos.fault"], "latency+error");
    assert_eq!(fault.int_attributes["chaos.delay_ms"], 30);
    assert_eq!(fault.status_code, STATUS_CODE_ERROR);
    assert!(fault.status_message.contains("injected"), "{fault:?}");
    assert_eq!(app_server.status_code, STATUS_CODE_ERROR);
    assert_eq!(app_server.attributes["error.type"], "500");
    assert!(
        sink.spans_of_trace(&app_server.trace_id)
            .iter()
            .all(|s| s.service_name == "demo-app"),
        "the failure is injected before any call to the db"
    );
}

#[tokio::test]
async fn invented_methods_are_recorded_as_other_in_metrics_spans_and_logs() {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &[]).await;
    let db_url = format!("http://{}", pair.db.listen_addr().await);
    let invented = "X".repeat(4000);
    let method = reqwest::Method::from_bytes(invented.as_bytes()).unwrap();
    let response = reqwest::Client::new()
        .request(method, format!("{db_url}/links"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);

    let span = eventually("the db's server span", WAIT, async || {
        find(&sink.spans(), "demo-db", SPAN_KIND_SERVER).cloned()
    })
    .await;
    assert_eq!(span.name, "HTTP /links");
    assert_eq!(span.attributes["http.request.method"], "_OTHER");
    assert_eq!(
        span.attributes["http.request.method_original"],
        "X".repeat(32)
    );

    let metrics_url = format!("http://{}/metrics", pair.db.metrics_addr().await);
    let metrics = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"method="_OTHER",route="/links",status_code="405""#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("XXXXXXXX"),
        "the invented method is no label value"
    );
    let logged = pair.db.wait_for_log(WAIT, |l| l["status"] == 405).await;
    assert_eq!(logged["method"], "_OTHER");
}

#[tokio::test]
async fn incoming_traceparent_is_continued() {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &[]).await;
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    reqwest::Client::new()
        .get(format!("{}/api/links", pair.app_url))
        .header(
            "traceparent",
            format!("00-{parent_trace}-00f067aa0ba902b7-01"),
        )
        .send()
        .await
        .unwrap();
    // Each process exports on its own schedule: wait for the app's server span (it ends last)
    // as well as the count.
    let app_server = eventually("spans of the caller's trace", WAIT, async || {
        let spans = sink.spans_of_trace(parent_trace);
        let server = find(&spans, "demo-app", SPAN_KIND_SERVER).cloned();
        server.filter(|_| spans.len() >= 3)
    })
    .await;
    assert_eq!(app_server.parent_span_id, "00f067aa0ba902b7");
}

#[tokio::test]
async fn prometheus_counts_every_request_and_keeps_exemplars_that_point_to_traces() {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &[]).await;
    let db_addr = pair.db.metrics_addr().await;
    let app_addr = pair.app.metrics_addr().await;
    let prometheus = Prometheus::start(&[("app", app_addr), ("db", db_addr)]).await;

    let client = reqwest::Client::new();
    let sent = 25;
    for _ in 0..sent {
        let r = client
            .get(format!("{}/api/links", pair.app_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let count = r#"sum(http_server_request_duration_seconds_count{job="app",route="/api/links",method="GET",status_code="200"})"#;
    eventually("prometheus to see every request", WAIT, async || {
        let result = prometheus.query(count).await;
        let value = result.get(0)?["value"][1].as_str()?.parse::<f64>().ok()?;
        assert!(
            value <= f64::from(sent),
            "counted more requests than sent: {value}"
        );
        (value == f64::from(sent)).then_some(())
    })
    .await;
    let db_count = r#"sum(http_client_request_duration_seconds_count{job="app",route="/links",status_code="200"})"#;
    let result = prometheus.query(db_count).await;
    assert_eq!(
        result[0]["value"][1],
        sent.to_string(),
        "client-side calls to db"
    );

    let exemplars = r#"http_server_request_duration_seconds_bucket{job="app",route="/api/links"}"#;
    let trace_id = eventually("an exemplar", WAIT, async || {
        let data = prometheus.query_exemplars(exemplars).await;
        let first = data.get(0)?["exemplars"].get(0)?["labels"]["trace_id"]
            .as_str()?
            .to_owned();
        Some(first)
    })
    .await;
    eventually("the exemplar's trace at the receiver", WAIT, async || {
        sink.spans()
            .iter()
            .any(|s| s.trace_id == trace_id)
            .then_some(())
    })
    .await;
    assert!(
        prometheus
            .targets_up()
            .await
            .iter()
            .all(|(_, up)| *up == 1.0)
    );
}

#[tokio::test]
async fn promtool_accepts_both_roles_metrics() {
    let sink = OtlpSink::start().await;
    let pair = start_pair(&sink, &[]).await;
    let client = reqwest::Client::new();
    // Traffic first, so every family has series (including an error and a 404).
    client
        .get(format!("{}/api/links", pair.app_url))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{}/api/links/999999/vote", pair.app_url))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{}/nope", pair.app_url))
        .send()
        .await
        .unwrap();
    for proc in [&pair.app, &pair.db] {
        let url = format!("http://{}/metrics", proc.metrics_addr().await);
        let text = client.get(url).send().await.unwrap().text().await.unwrap();
        assert!(
            text.contains("http_server_request_duration_seconds_bucket"),
            "{text}"
        );
        promtool_check(&text);
    }
}

#[tokio::test]
async fn sigterm_lets_accepted_requests_finish_and_flushes_their_spans() {
    let sink = OtlpSink::start().await;
    // Each request takes 500 ms, so the burst is still in flight when the signal arrives.
    let mut pair = start_pair(
        &sink,
        &["--latency", "fixed:500ms", "--shutdown-timeout", "10s"],
    )
    .await;
    let client = reqwest::Client::new();
    let burst = 20;
    let requests: Vec<_> = (0..burst)
        .map(|_| {
            let request = client.get(format!("{}/api/links", pair.app_url)).send();
            tokio::spawn(request)
        })
        .collect();
    // All requests accepted and in flight before the signal.
    eventually("the burst to be in flight", WAIT, async || {
        let metrics = client
            .get(format!("{}/metrics", pair.app_url))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        metrics
            .contains(&format!("http_server_active_requests {burst}"))
            .then_some(())
    })
    .await;
    pair.app.signal("TERM");
    for request in requests {
        let response = request
            .await
            .unwrap()
            .expect("an in-flight request got its response");
        assert_eq!(response.status(), 200);
    }
    let status = pair.app.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}");
    let app_server_spans: HashSet<String> = sink
        .spans()
        .into_iter()
        .filter(|s| s.service_name == "demo-app" && s.kind == SPAN_KIND_SERVER)
        .map(|s| s.trace_id)
        .collect();
    assert_eq!(
        app_server_spans.len(),
        burst,
        "a span for each completed request"
    );
    // New connections are refused once it is gone.
    assert!(
        client
            .get(format!("{}/healthz", pair.app_url))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn serves_without_a_collector_and_with_export_disabled() {
    // Nothing listens on the endpoint: the service must still start, serve and exit cleanly.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{dead}");
    let mut db = Proc::spawn(
        "db",
        BIN,
        &["serve", "--role", "db", "--listen", "127.0.0.1:0"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let addr = db.listen_addr().await;
    let url = format!("http://{addr}/links");
    for _ in 0..5 {
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    }
    // The spans are lost, and /metrics says so: 5 server spans and 5 store spans failed.
    let metrics_url = format!("http://{addr}/metrics");
    eventually("the lost spans counted as failed", WAIT, async || {
        let text = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
        let ended = metric_sum(&text, "demo_app_spans_ended_total", None);
        let failed = metric_sum(&text, "demo_app_spans_export_failed_total", None);
        let exported = metric_sum(&text, "demo_app_spans_exported_total", None);
        (ended == 10.0 && failed == 10.0 && exported == 0.0).then_some(())
    })
    .await;
    db.signal("TERM");
    assert!(db.wait_exit(WAIT).await.success());

    let sink = OtlpSink::start().await;
    let grpc = sink.grpc_endpoint();
    let mut quiet = Proc::spawn(
        "db",
        BIN,
        &["serve", "--role", "db", "--listen", "127.0.0.1:0"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &grpc),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    );
    let url = format!("http://{}/links", quiet.listen_addr().await);
    let traced = reqwest::Client::new()
        .get(&url)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    // A disabled SDK is a no-op: no span, so the line has no ids (always_off keeps them, see
    // standard_otel_variables_are_honoured).
    let line = quiet
        .wait_for_log(WAIT, |l| l["message"] == "request served")
        .await;
    assert!(
        line.get("trace_id").is_none(),
        "no ids when disabled: {line}"
    );
    quiet.signal("TERM");
    assert!(quiet.wait_exit(WAIT).await.success());
    assert!(
        sink.spans().is_empty(),
        "nothing exported when OTEL_SDK_DISABLED=true"
    );
}

#[tokio::test]
async fn bad_flags_fail_fast_with_a_message() {
    let out = std::process::Command::new(BIN)
        .args(["serve", "--role", "db", "--latency", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--latency") && stderr.contains("fixed:50ms"),
        "{stderr}"
    );

    let out = std::process::Command::new(BIN)
        .args(["--log-level", "=nonsense=", "serve", "--role", "db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid log filter"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(BIN)
        .args(["serve", "--role", "db", "--listen", &addr])
        .env("OTEL_SDK_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot listen on"));
}

#[tokio::test]
async fn standard_otel_variables_are_honoured() {
    let sink = OtlpSink::start().await;
    let traces_url = format!("{}/v1/traces", sink.http_endpoint());
    let env = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces_url.as_str()),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-scope-orgid=tenant-a"),
        ("OTEL_SERVICE_NAME", "links-db"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=test,k8s.cluster.name=lgtm-remote",
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let db = Proc::spawn(
        "db",
        BIN,
        &["serve", "--role", "db", "--listen", "127.0.0.1:0"],
        &env,
    );
    let url = format!("http://{}/links", db.listen_addr().await);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    let span = eventually("the span over HTTP", WAIT, async || {
        sink.spans().into_iter().next()
    })
    .await;
    assert_eq!(span.transport, "http");
    assert_eq!(span.service_name, "links-db");
    assert_eq!(span.resource["deployment.environment"], "test");
    assert_eq!(span.resource["k8s.cluster.name"], "lgtm-remote");
    assert_eq!(
        span.headers.get("x-scope-orgid").map(String::as_str),
        Some("tenant-a")
    );

    // A sampler that drops everything: no spans, but logs still carry ids.
    let quiet_sink = OtlpSink::start().await;
    let endpoint = quiet_sink.grpc_endpoint();
    let off = Proc::spawn(
        "db",
        BIN,
        &["serve", "--role", "db", "--listen", "127.0.0.1:0"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let url = format!("http://{}/links", off.listen_addr().await);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    off.wait_for_log(WAIT, |l| {
        l["message"] == "request served" && l["trace_id"].is_string()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(quiet_sink.spans().is_empty(), "always_off samples nothing");
}
