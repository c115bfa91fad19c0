//! `deployer verify`'s checks against fake Mimir, Loki and Tempo servers that answer with the
//! documented shapes: everything working, data that comes late, and each kind of failure with
//! the message and hint a user needs, the JSON report's shape, and the exit status.

mod support;

use std::time::Duration;

use deployer::Report;
use deployer::commands::verify::outcome;
use deployer::verify::{
    CheckKind, CheckResult, Endpoints, Status, TenantPlan, VerifyOptions, VerifyReport, verify,
};
use serde_json::Value;
use support::fake_lgtm::{
    FakeLgtm, LOCAL_TRACE_ID, Logs, Scenario, TRACE_ID, TraceShape, closed_port, hanging_server,
};

/// Short enough to keep the suite fast, long enough for a few looks.
fn options(deadline_ms: u64) -> VerifyOptions {
    VerifyOptions {
        deadline: Duration::from_millis(deadline_ms),
        poll_interval: Duration::from_millis(20),
        request_timeout: Duration::from_millis(200),
        burst: 3,
        ..VerifyOptions::new(vec![TenantPlan::remote(), TenantPlan::local()])
    }
}

async fn run(scenario: Scenario, deadline_ms: u64) -> VerifyReport {
    let fake = FakeLgtm::start(scenario).await;
    verify(&fake.endpoints(), &options(deadline_ms)).await
}

fn row<'a>(report: &'a VerifyReport, tenant: &str, check: CheckKind) -> &'a CheckResult {
    report
        .checks
        .iter()
        .find(|r| r.tenant.as_deref() == Some(tenant) && r.check == check)
        .unwrap_or_else(|| panic!("no {tenant}/{check:?} row in\n{}", report.to_text()))
}

fn hint(row: &CheckResult) -> &str {
    row.hint.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn everything_passes_when_the_pipeline_works() {
    let fake = FakeLgtm::start(Scenario::default()).await;
    let report = verify(&fake.endpoints(), &options(2000)).await;
    assert!(report.passed, "{}", report.to_text());
    assert!(
        report.checks.iter().all(|r| r.status == Status::Pass),
        "{}",
        report.to_text()
    );
    // burst + remote01 (present, growing, exemplar, logs, trace) + _local (present, growing, logs, trace)
    assert_eq!(report.checks.len(), 10, "{}", report.to_text());
    assert_eq!(fake.app_requests(), 3);
    assert_eq!(
        fake.burst_trace_ids().len(),
        3,
        "each request has a sampled traceparent"
    );
    let trace = row(&report, "remote01", CheckKind::Trace);
    assert!(trace.detail.contains(TRACE_ID), "{}", trace.detail);
    assert!(
        trace.detail.contains("app, db, loadgen"),
        "{}",
        trace.detail
    );
    let local = row(&report, "_local", CheckKind::Trace);
    assert!(local.detail.contains(LOCAL_TRACE_ID), "{}", local.detail);
    assert!(outcome(&report).is_ok());
}

#[tokio::test]
async fn queries_are_reported_as_asked() {
    let report = run(Scenario::default(), 2000).await;
    let present = row(&report, "remote01", CheckKind::MetricsPresent);
    assert_eq!(
        present.query,
        "GET /prometheus/api/v1/query?query=http_server_request_duration_seconds_count\
         {cluster=\"lgtm-remote\",namespace=\"demo\"} (X-Scope-OrgID: remote01)"
    );
    let logs = row(&report, "_local", CheckKind::Logs);
    assert!(
        logs.query
            .starts_with("GET /loki/api/v1/query_range?query={cluster=\"lgtm-central\"}&limit=200"),
        "{}",
        logs.query
    );
    assert!(
        logs.query.contains("(X-Scope-OrgID: _local)"),
        "{}",
        logs.query
    );
}

#[tokio::test]
async fn data_that_arrives_late_is_waited_for_and_its_latency_reported() {
    let scenario = Scenario {
        data_after: Duration::from_millis(250),
        ..Scenario::default()
    };
    let report = run(scenario, 3000).await;
    assert!(report.passed, "{}", report.to_text());
    for check in [CheckKind::MetricsPresent, CheckKind::Logs, CheckKind::Trace] {
        let latency = row(&report, "remote01", check).latency_ms.unwrap();
        assert!(latency >= 250, "{check:?} latency {latency}ms");
    }
}

#[tokio::test]
async fn missing_series_fail_with_the_remote_write_hint() {
    let scenario = Scenario {
        series: false,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    assert!(!report.passed);
    let present = row(&report, "remote01", CheckKind::MetricsPresent);
    assert_eq!(present.status, Status::Fail);
    assert_eq!(present.detail, "the query returned no series");
    assert!(hint(present).contains("remote_write"), "{}", hint(present));
    assert!(
        hint(present).contains("mimir-distributor-lgtm-central"),
        "{}",
        hint(present)
    );
    assert!(
        hint(present).contains("deployer status"),
        "{}",
        hint(present)
    );
    assert_eq!(
        row(&report, "remote01", CheckKind::MetricsGrowing).status,
        Status::Skip
    );
    // The other checks do not depend on the series and still pass.
    assert_eq!(
        row(&report, "remote01", CheckKind::Trace).status,
        Status::Pass
    );
}

#[tokio::test]
async fn series_that_stop_growing_fail() {
    let scenario = Scenario {
        growing: false,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let growing = row(&report, "remote01", CheckKind::MetricsGrowing);
    assert_eq!(growing.status, Status::Fail);
    assert_eq!(growing.detail, "total stayed at 120");
    assert!(
        hint(growing).contains("stopped growing"),
        "{}",
        hint(growing)
    );
    assert_eq!(
        row(&report, "remote01", CheckKind::MetricsPresent).status,
        Status::Pass
    );
}

#[tokio::test]
async fn a_wrong_tenant_fails_at_once_with_the_tenant_hint() {
    let scenario = Scenario {
        tenants: vec!["someone-else"],
        ..Scenario::default()
    };
    let report = run(scenario, 5000).await;
    assert!(!report.passed);
    // 401 is not worth asking again: the run ends long before its deadline.
    assert!(report.elapsed_ms < 2000, "took {}ms", report.elapsed_ms);
    for check in [
        CheckKind::MetricsPresent,
        CheckKind::Exemplar,
        CheckKind::Logs,
    ] {
        let failed = row(&report, "remote01", check);
        assert_eq!(failed.status, Status::Fail);
        assert!(failed.detail.contains("answered 401"), "{}", failed.detail);
        assert!(
            hint(failed).contains("tenant `remote01` rejected"),
            "{}",
            hint(failed)
        );
    }
    let local_trace = row(&report, "_local", CheckKind::Trace);
    assert_eq!(
        local_trace.status,
        Status::Fail,
        "an error is no quiet tenant"
    );
    assert!(hint(local_trace).contains("tenant `_local` rejected"));
}

#[tokio::test]
async fn no_log_lines_fail_and_leave_no_trace_id_to_look_up_but_the_exemplar() {
    let scenario = Scenario {
        logs: Logs::None,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let logs = row(&report, "remote01", CheckKind::Logs);
    assert_eq!(logs.status, Status::Fail);
    assert_eq!(logs.detail, "no log lines in the window");
    assert!(hint(logs).contains("log shipper"), "{}", hint(logs));
    assert!(
        hint(logs).contains("loki-write-lgtm-central"),
        "{}",
        hint(logs)
    );
    // The exemplar still gives a trace id, so the trace is found all the same.
    assert_eq!(
        row(&report, "remote01", CheckKind::Trace).status,
        Status::Pass
    );
}

#[tokio::test]
async fn with_neither_logs_nor_exemplars_the_trace_check_is_skipped() {
    let scenario = Scenario {
        logs: Logs::None,
        exemplars: false,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let trace = row(&report, "remote01", CheckKind::Trace);
    assert_eq!(trace.status, Status::Skip);
    assert!(
        trace.detail.contains("no trace id to look up"),
        "{}",
        trace.detail
    );
    let exemplar = row(&report, "remote01", CheckKind::Exemplar);
    assert_eq!(exemplar.status, Status::Fail);
    assert!(
        hint(exemplar).contains("exemplar-storage"),
        "{}",
        hint(exemplar)
    );
    assert!(!report.passed);
}

#[tokio::test]
async fn log_lines_without_trace_id_fail_with_the_parsing_hint() {
    let scenario = Scenario {
        logs: Logs::WithoutTraceId,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let logs = row(&report, "remote01", CheckKind::Logs);
    assert_eq!(logs.status, Status::Fail);
    assert!(
        logs.detail.starts_with("2 lines, none with a trace_id"),
        "{}",
        logs.detail
    );
    assert!(hint(logs).contains("log shipper"), "{}", hint(logs));
    // _local does not ask for trace ids: central's lines are enough.
    assert_eq!(row(&report, "_local", CheckKind::Logs).status, Status::Pass);
}

#[tokio::test]
async fn a_trace_that_never_arrives_fails_with_the_agent_hint() {
    let scenario = Scenario {
        trace: None,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let trace = row(&report, "remote01", CheckKind::Trace);
    assert_eq!(trace.status, Status::Fail);
    assert_eq!(trace.detail, "none of 1 trace ids found");
    assert!(
        hint(trace).contains("otelcol_exporter_send_failed_spans"),
        "{}",
        hint(trace)
    );
    assert!(hint(trace).contains("tempo-distributor-lgtm-central"));
}

#[tokio::test]
async fn a_trace_missing_a_service_names_it() {
    let scenario = Scenario {
        trace_services: vec!["app", "db"],
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let trace = row(&report, "remote01", CheckKind::Trace);
    assert_eq!(trace.status, Status::Fail);
    assert!(
        trace.detail.ends_with("missing loadgen"),
        "{}",
        trace.detail
    );
    assert!(hint(trace).contains("spans of loadgen"), "{}", hint(trace));
}

#[tokio::test]
async fn the_burst_traces_are_not_taken_for_the_loadgen_trace() {
    // The burst's traces (app and db, no loadgen) are the newest lines, more of them than the
    // trace check looks up at once: it must look past them to the loadgen's trace.
    let fake = FakeLgtm::start(Scenario {
        burst_in_logs: true,
        ..Scenario::default()
    })
    .await;
    let options = VerifyOptions {
        burst: 12,
        ..options(1000)
    };
    let report = verify(&fake.endpoints(), &options).await;
    let trace = row(&report, "remote01", CheckKind::Trace);
    assert_eq!(trace.status, Status::Pass, "{}", report.to_text());
    assert!(trace.detail.contains(TRACE_ID), "{}", trace.detail);
    let logs = row(&report, "remote01", CheckKind::Logs);
    assert!(
        logs.detail.contains("13 distinct trace ids"),
        "{}",
        logs.detail
    );
}

#[tokio::test]
async fn otlp_resource_spans_are_read_too() {
    let scenario = Scenario {
        trace: Some(TraceShape::ResourceSpans),
        ..Scenario::default()
    };
    let report = run(scenario, 2000).await;
    assert_eq!(
        row(&report, "remote01", CheckKind::Trace).status,
        Status::Pass
    );
}

#[tokio::test]
async fn no_local_trace_only_warns() {
    let scenario = Scenario {
        local_trace: false,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let trace = row(&report, "_local", CheckKind::Trace);
    assert_eq!(trace.status, Status::Warn);
    assert!(
        hint(trace).contains("sampled traceparent"),
        "{}",
        hint(trace)
    );
    assert!(report.passed, "{}", report.to_text());
}

#[tokio::test]
async fn an_unreachable_backend_points_at_the_port_forward() {
    let fake = FakeLgtm::start(Scenario::default()).await;
    let endpoints = Endpoints {
        loki: closed_port().await,
        ..fake.endpoints()
    };
    let report = verify(&endpoints, &options(5000)).await;
    assert!(report.elapsed_ms < 2000, "took {}ms", report.elapsed_ms);
    let logs = row(&report, "remote01", CheckKind::Logs);
    assert_eq!(logs.status, Status::Fail);
    assert!(
        logs.detail
            .starts_with("cannot connect to http://127.0.0.1:"),
        "{}",
        logs.detail
    );
    assert!(
        hint(logs).contains("port-forward to loki-read"),
        "{}",
        hint(logs)
    );
    assert_eq!(
        row(&report, "remote01", CheckKind::MetricsGrowing).status,
        Status::Pass
    );
}

#[tokio::test]
async fn a_backend_that_never_answers_times_out() {
    let fake = FakeLgtm::start(Scenario::default()).await;
    let endpoints = Endpoints {
        tempo: hanging_server().await,
        ..fake.endpoints()
    };
    let report = verify(&endpoints, &options(600)).await;
    assert!(report.elapsed_ms < 3000, "took {}ms", report.elapsed_ms);
    let trace = row(&report, "remote01", CheckKind::Trace);
    assert_eq!(trace.status, Status::Fail);
    assert!(trace.detail.contains("no answer from"), "{}", trace.detail);
    assert!(
        hint(trace).contains("did not answer in time"),
        "{}",
        hint(trace)
    );
}

#[tokio::test]
async fn the_burst_fails_when_the_app_is_unreachable_and_is_skipped_without_app() {
    let fake = FakeLgtm::start(Scenario::default()).await;
    let unreachable = Endpoints {
        app: Some(closed_port().await),
        ..fake.endpoints()
    };
    let report = verify(&unreachable, &options(1000)).await;
    let burst = &report.checks[0];
    assert_eq!(
        (burst.check, burst.status),
        (CheckKind::Burst, Status::Fail)
    );
    assert!(
        burst.detail.starts_with("0 of 3 answered 2xx"),
        "{}",
        burst.detail
    );
    assert!(hint(burst).contains("--burst 0"), "{}", hint(burst));

    let without_app = Endpoints {
        app: None,
        ..fake.endpoints()
    };
    let report = verify(&without_app, &options(1000)).await;
    assert_eq!(report.checks[0].status, Status::Skip);
    assert!(report.passed, "{}", report.to_text());
}

#[tokio::test]
async fn the_json_report_has_stable_field_names() {
    let scenario = Scenario {
        trace: None,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["passed"], false);
    assert!(json["elapsed_ms"].is_u64());
    let checks = json["checks"].as_array().unwrap();
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&checks[0]),
        [
            "check",
            "detail",
            "hint",
            "latency_ms",
            "query",
            "status",
            "tenant"
        ]
    );
    assert_eq!(checks[0]["check"], "burst");
    assert_eq!(checks[0]["tenant"], Value::Null);
    let trace = checks
        .iter()
        .find(|c| c["tenant"] == "remote01" && c["check"] == "trace")
        .unwrap();
    assert_eq!(trace["status"], "fail");
    assert_eq!(trace["latency_ms"], Value::Null);
    assert!(trace["hint"].as_str().unwrap().contains("trace not found"));
    let present = checks
        .iter()
        .find(|c| c["tenant"] == "_local" && c["check"] == "metrics_present")
        .unwrap();
    assert_eq!(present["status"], "pass");
    assert!(present["latency_ms"].is_u64());
}

#[tokio::test]
async fn a_failed_check_is_an_error_with_help() {
    let scenario = Scenario {
        logs: Logs::WithoutTraceId,
        ..Scenario::default()
    };
    let report = run(scenario, 500).await;
    let error = outcome(&report).unwrap_err();
    let shown = Report(&error).to_string();
    assert!(
        shown.starts_with("error: verify failed: remote01/logs\n"),
        "{shown}"
    );
    assert!(shown.contains("help: each failed check above"), "{shown}");
}

#[test]
fn the_text_report_shows_every_row_with_its_hint() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(run(
        Scenario {
            series: false,
            ..Scenario::default()
        },
        500,
    ));
    let text = report.to_text();
    assert!(
        text.starts_with("TENANT     CHECK            STATUS   LATENCY\n"),
        "{text}"
    );
    assert!(
        text.contains("remote01   metrics_present  FAIL           -"),
        "{text}"
    );
    assert!(text.contains("       hint: no series"), "{text}");
    assert!(text.contains("the pipeline is broken"), "{text}");
}

// ---- the command line ----

fn deployer(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn flags_and_environment_shape_the_verify_plan() {
    let output = deployer(
        &[
            "verify",
            "--dry-run",
            "--tenant",
            "remote01",
            "--burst",
            "0",
        ],
        &[("LGTM_VERIFY_DEADLINE", "30s"), ("LGTM_VERIFY_BURST", "50")],
    );
    assert!(output.status.success());
    let plan = String::from_utf8_lossy(&output.stdout);
    assert!(plan.contains("for at most 30s"), "{plan}");
    // --burst 0 wins over the variable: no burst, and no forward to the app.
    assert!(!plan.contains("service demo/app"), "{plan}");
    assert!(!plan.contains("requests to GET"), "{plan}");
    assert!(plan.contains("check remote01: "), "{plan}");
    assert!(!plan.contains("_local"), "{plan}");
}

#[test]
fn unknown_tenants_and_formats_are_refused() {
    let output = deployer(&["verify", "--dry-run", "--tenant", "remote02"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[possible values: remote01, _local]"),
        "{stderr}"
    );
    let output = deployer(&["verify", "--dry-run", "--output", "yaml"], &[]);
    assert!(!output.status.success());
}

#[test]
fn options_follow_the_flags_and_check_each_tenant_once() {
    use clap::Parser;
    use deployer::cli::{Cli, Command};
    let cli = Cli::parse_from([
        "deployer",
        "verify",
        "--tenant",
        "_local,_local",
        "--tenant",
        "remote01",
        "--deadline",
        "45s",
        "--burst",
        "5",
    ]);
    let Command::Verify(args) = &cli.command else {
        panic!("parsed {:?}", cli.command);
    };
    let options = deployer::commands::verify::options_from(args);
    let tenants: Vec<&str> = options.tenants.iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(tenants, ["_local", "remote01"]);
    assert_eq!(options.deadline, Duration::from_secs(45));
    assert_eq!(options.burst, 5);
}

// ---- names that must agree with the manifests ----

mod names {
    use deployer::stack::endpoints::{
        DEMO_APP, LOKI_READ, MIMIR_QUERY_FRONTEND, ServicePort, TEMPO_QUERY_FRONTEND,
    };
    use deployer::verify::options::{
        DEMO_SERVICES, LOCAL_CLUSTER_LABEL, LOCAL_TENANT, REMOTE_CLUSTER_LABEL, REMOTE_TENANT,
    };
    use serde_json::Value;

    use super::support::repo::{documents, manifests_dir, single_document};

    fn values(cluster: &str, file: &str) -> Value {
        single_document(&manifests_dir().join(cluster).join(file))
    }

    fn address(target: &ServicePort) -> String {
        target.in_cluster_url()
    }

    #[test]
    fn verify_forwards_to_what_grafana_queries() {
        let monitor = values("central", "monitor.yaml");
        let urls: Vec<&str> = monitor["grafana"]["additionalDataSources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["url"].as_str())
            .collect();
        for target in [MIMIR_QUERY_FRONTEND, LOKI_READ, TEMPO_QUERY_FRONTEND] {
            let base = address(&target);
            assert!(
                urls.iter().any(|url| url.starts_with(&base)),
                "no data source uses {base}: {urls:?}"
            );
        }
        assert!(urls.contains(&"http://mimir-query-frontend.mimir.svc:8080/prometheus"));
    }

    #[test]
    fn the_app_target_is_the_demo_service() {
        let demo = documents(&manifests_dir().join("remote/demo.yaml"));
        let service = demo
            .iter()
            .find(|d| d["kind"] == "Service" && d["metadata"]["name"] == DEMO_APP.service)
            .expect("the demo's app Service");
        assert_eq!(service["metadata"]["namespace"], DEMO_APP.namespace);
        assert_eq!(service["spec"]["ports"][0]["port"], DEMO_APP.port);
        let mut services: Vec<&str> = demo
            .iter()
            .filter(|d| d["kind"] == "Deployment")
            .flat_map(|d| {
                d["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .unwrap()
            })
            .flat_map(|c| c["env"].as_array().unwrap())
            .filter(|e| e["name"] == "OTEL_SERVICE_NAME")
            .filter_map(|e| e["value"].as_str())
            .collect();
        services.sort();
        let mut expected = DEMO_SERVICES.to_vec();
        expected.sort();
        assert_eq!(services, expected);
    }

    #[test]
    fn tenants_and_cluster_labels_match_prometheus_and_the_log_shipper() {
        for (cluster, tenant, label) in [
            ("remote", REMOTE_TENANT, REMOTE_CLUSTER_LABEL),
            ("central", LOCAL_TENANT, LOCAL_CLUSTER_LABEL),
        ] {
            let prometheus = &values(cluster, "monitor.yaml")["prometheus"]["prometheusSpec"];
            assert_eq!(prometheus["externalLabels"]["cluster"], label, "{cluster}");
            assert_eq!(
                prometheus["remoteWrite"][0]["headers"]["X-Scope-OrgID"], tenant,
                "{cluster}"
            );
            let vector = &values(cluster, "vector.yaml")["customConfig"];
            assert_eq!(vector["sinks"]["loki"]["tenant_id"], tenant, "{cluster}");
            let shaping = vector["transforms"]["shaped"]["source"].as_str().unwrap();
            assert!(
                shaping.contains(&format!(".cluster = \"{label}\"")),
                "{cluster}: {shaping}"
            );
            assert!(
                vector["sinks"]["loki"]["labels"]["cluster"].is_string(),
                "{cluster}: the cluster label must reach Loki"
            );
        }
    }
}
