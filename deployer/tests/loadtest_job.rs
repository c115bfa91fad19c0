//! `deployer loadtest` end to end against fakes: two fake Kubernetes API servers (remote and
//! central) with real objects, a test "Job controller" that makes the pod and its log, and one
//! HTTP server standing in for the pods behind every port-forward (the agent's /metrics, the
//! remote Prometheus, Mimir, Loki and Tempo), answering with their documented shapes.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use serde_json::{Value, json};
use support::fake_api::{FakeApi, kubeconfig};

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/loadtest/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What the fake backends answer.
#[derive(Clone)]
struct Answers {
    mimir_requests: f64,
    loki_lines: f64,
    tempo_traces: usize,
}

impl Default for Answers {
    fn default() -> Self {
        Answers {
            mimir_requests: 1180.0,
            loki_lines: 1100.0,
            tempo_traces: 200,
        }
    }
}

#[derive(Clone, Default)]
struct Backends {
    answers: Answers,
    agent_scrapes: Arc<AtomicUsize>,
    /// "path query (tenant)" of every request.
    seen: Arc<Mutex<Vec<String>>>,
}

fn vector(value: f64) -> Value {
    json!({"status": "success", "data": {"resultType": "vector",
        "result": [{"metric": {}, "value": [1_795_809_909.0, value.to_string()]}]}})
}

async fn backend(
    State(backends): State<Backends>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let tenant = headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let query = params
        .get("query")
        .or(params.get("q"))
        .cloned()
        .unwrap_or_default();
    backends
        .seen
        .lock()
        .unwrap()
        .push(format!("{} {query} ({tenant})", uri.path()));
    let answers = &backends.answers;
    let multi_tenant = [
        "/prometheus/api/v1/query",
        "/loki/api/v1/query",
        "/api/search",
    ];
    if multi_tenant.contains(&uri.path()) && tenant != "remote01" {
        return (StatusCode::UNAUTHORIZED, "no org id").into_response();
    }
    match uri.path() {
        "/metrics" => {
            let n = backends.agent_scrapes.fetch_add(1, Ordering::SeqCst);
            data(if n == 0 {
                "agent-before.prom"
            } else {
                "agent-after.prom"
            })
            .into_response()
        }
        "/api/v1/query" if query.contains("highest_timestamp") => {
            axum::Json(vector(2.5)).into_response()
        }
        "/api/v1/query" => axum::Json(vector(0.0)).into_response(),
        "/prometheus/api/v1/query" => axum::Json(vector(answers.mimir_requests)).into_response(),
        "/loki/api/v1/query" => axum::Json(vector(answers.loki_lines)).into_response(),
        "/api/search" => {
            let traces: Vec<Value> = (0..answers.tempo_traces)
                .map(|i| json!({"traceID": format!("{i:032x}"), "rootServiceName": "loadgen"}))
                .collect();
            axum::Json(json!({"traces": traces, "metrics": {"inspectedTraces": 5000}}))
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_backends(backends: Backends) -> SocketAddr {
    let router = axum::Router::new().fallback(backend).with_state(backends);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A Service with one ready pod whose container names the port, served by `to`.
fn service_with_pod(api: &FakeApi, namespace: &str, name: &str, port: u16, to: SocketAddr) {
    let labels = json!({"app.kubernetes.io/name": name});
    api.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": port, "targetPort": "http"}]}}));
    let pod = format!("{name}-0");
    api.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "main", "ports": [{"name": "http", "containerPort": port}]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
    api.serve_pod(namespace, &pod, to);
}

/// How the test's Job controller makes the run end.
#[derive(Clone)]
enum Ending {
    /// The loadgen container exits with this code after writing the log.
    Exits { code: i32, log: String },
    /// The container never starts.
    Waiting { reason: &'static str },
    /// The container runs (and has logged `log`) until someone stops it.
    Running { log: String },
}

/// Plays the Job controller and kubelet: once the Job exists, makes its pod (as the controller
/// labels it), the log, and the Job's final condition.
fn run_job_controller(remote: FakeApi, ending: Ending) {
    tokio::spawn(async move {
        let jobs: Api<Job> = Api::namespaced(remote.client(), "demo");
        let job = loop {
            if let Some(job) = jobs.list(&Default::default()).await.unwrap().items.pop() {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let name = job.metadata.name.clone().unwrap();
        let pod = format!("{name}-x7k2p");
        let state = match &ending {
            Ending::Running { .. } => json!({"running": {"startedAt": "2026-11-27T21:00:00Z"}}),
            Ending::Exits { code, .. } => json!({"terminated": {"exitCode": code, "reason":
                if *code == 0 { "Completed" } else { "Error" }}}),
            Ending::Waiting { reason } => json!({"waiting": {"reason": reason,
                "message": "Container image \"lgtm-demo-app:0.1.0\" is not present with pull policy of Never"}}),
        };
        if let Ending::Exits { log, .. } | Ending::Running { log } = &ending {
            remote.set_pod_log("demo", &pod, log);
        }
        remote.put(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": "demo",
                "labels": {"batch.kubernetes.io/job-name": name, "job-name": name}},
            "status": {"phase": if matches!(ending, Ending::Running { .. }) { "Running" } else { "Succeeded" },
                "containerStatuses": [
                {"name": "loadgen", "image": "lgtm-demo-app:0.1.0", "imageID": "", "ready": false,
                 "restartCount": 0, "state": state}]}}));
        let Ending::Exits { code, .. } = ending else {
            return;
        };
        let condition = if code == 0 {
            json!({"type": "Complete", "status": "True"})
        } else {
            json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                   "message": "Job has reached the specified backoff limit"})
        };
        let mut job = remote.get("batch/v1", "Job", Some("demo"), &name).unwrap();
        job["status"] = json!({"conditions": [condition]});
        remote.put(job);
    });
}

struct Setup {
    remote: FakeApi,
    backends: Backends,
    _dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

async fn setup(answers: Answers, ending: Ending) -> Setup {
    let backends = Backends {
        answers,
        ..Backends::default()
    };
    let addr = start_backends(backends.clone()).await;
    let remote = FakeApi::start().await;
    service_with_pod(&remote, "observability", "telemetry-agent", 8888, addr);
    service_with_pod(&remote, "observability", "monitor-prometheus", 9090, addr);
    let central = FakeApi::start().await;
    service_with_pod(&central, "mimir", "mimir-query-frontend", 8080, addr);
    service_with_pod(&central, "loki", "loki-read", 3100, addr);
    service_with_pod(&central, "tempo", "tempo-query-frontend", 3200, addr);
    // The central fake lives as long as the forwards to it: leak it into the test's runtime.
    std::mem::forget(central.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(&remote, &central)).unwrap();
    run_job_controller(remote.clone(), ending);
    Setup {
        remote,
        backends,
        _dir: dir,
        kubeconfig,
    }
}

fn kubeconfig_text(remote: &FakeApi, central: &FakeApi) -> String {
    kubeconfig(&[("lgtm-remote", &remote.url), ("lgtm-central", &central.url)])
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn loadtest(setup: &Setup, extra: &[&str]) -> Ran {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args([
            "loadtest",
            "--rate",
            "100",
            "--duration",
            "10s",
            "--settle",
            "0s",
        ])
        .args(extra)
        .env_clear()
        .env("KUBECONFIG", &setup.kubeconfig)
        .env("LGTM_WAIT_TIMEOUT", "20s")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("loadtest finishes")
        .unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn passing_log() -> String {
    data("loadgen-pod.log")
}

fn the_job(remote: &FakeApi) -> Value {
    let writes = remote.writes();
    let patch = writes
        .iter()
        .find(|w| w.contains("/apis/batch/v1/namespaces/demo/jobs/loadtest-"))
        .unwrap_or_else(|| panic!("no Job applied: {writes:?}"));
    assert!(patch.starts_with("PATCH "), "{patch}");
    assert!(patch.contains("fieldManager=lgtm-deployer"), "{patch}");
    let name = patch
        .split("/jobs/")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .unwrap();
    remote.get("batch/v1", "Job", Some("demo"), name).unwrap()
}

#[tokio::test]
async fn a_passing_run_applies_the_job_follows_its_log_and_reports_every_check() {
    let setup = setup(
        Answers::default(),
        Ending::Exits {
            code: 0,
            log: passing_log(),
        },
    )
    .await;
    let ran = loadtest(&setup, &[]).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);

    let job = the_job(&setup.remote);
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert!(job["spec"]["ttlSecondsAfterFinished"].as_i64().unwrap() > 0);
    let template = &job["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["config.beta.linkerd.io/proxy-enable-native-sidecar"],
        "true"
    );
    let pod = &template["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "loadgen");
    assert_eq!(
        container["image"],
        format!("lgtm-demo-app:{}", deployer::stack::demo_app_version())
    );
    assert_eq!(container["imagePullPolicy"], "Never");
    assert_eq!(
        container["args"],
        json!([
            "loadgen",
            "--target",
            "http://app.demo.svc:8080",
            "--rate",
            "100",
            "--duration",
            "10s",
            "--max-error-ratio",
            "0.01",
            "--output",
            "json"
        ])
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert!(container["resources"]["limits"]["memory"].is_string());
    let attributes = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "OTEL_RESOURCE_ATTRIBUTES")
        .unwrap();
    assert!(
        attributes["value"]
            .as_str()
            .unwrap()
            .ends_with(&format!("loadtest.run={name}")),
        "{attributes}"
    );

    let requests = setup.remote.requests();
    let follow = requests
        .iter()
        .find(|r| r.contains("/log?") && r.contains("follow=true"))
        .unwrap_or_else(|| panic!("the log was not followed: {requests:?}"));
    assert!(
        follow.contains(&format!("/pods/{name}-x7k2p/log?")),
        "{follow}"
    );
    assert!(follow.contains("container=loadgen"), "{follow}");

    // Progress on stderr (without the summary's lines), the report on stdout.
    assert_contains(&ran.stderr, "loadgen: INFO load test started");
    assert_contains(
        &ran.stderr,
        "loadgen: [   3.0s] sent 300, completed 300, errors 1",
    );
    assert!(!ran.stderr.contains("\"schema\""), "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains(&format!("Load test {name}: 10.0s at 100 requests/s")),
        "{}",
        ran.stdout
    );
    assert_contains(
        &ran.stdout,
        "Result: loadgen passed; pipeline: 0 failed, 0 warned, 9 passed",
    );
    let seen = setup.backends.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.starts_with("/api/search")
            && s.contains(&name)
            && s.ends_with("(remote01)")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.starts_with(
            "/prometheus/api/v1/query sum(increase(http_server_request_duration_seconds_count"
        )),
        "{seen:?}"
    );
    assert_eq!(setup.backends.agent_scrapes.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn missing_data_in_mimir_fails_the_run_with_exit_4_and_json_says_which() {
    let answers = Answers {
        mimir_requests: 0.0,
        ..Answers::default()
    };
    let setup = setup(
        answers,
        Ending::Exits {
            code: 0,
            log: passing_log(),
        },
    )
    .await;
    let ran = loadtest(&setup, &["--output", "json"]).await;
    assert_eq!(ran.code, 4, "{}\n{}", ran.stdout, ran.stderr);
    let report: Value = serde_json::from_str(&ran.stdout).expect("stdout is one JSON document");
    assert_eq!(report["verdict"], "fail");
    let mimir = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mimir: app requests counted")
        .unwrap();
    assert_eq!(mimir["verdict"], "fail");
    assert!(mimir["hint"].as_str().unwrap().contains("remote01"));
    assert_eq!(report["loadgen"]["requests"]["sent"], 1000);
    assert_contains(
        &ran.stderr,
        "pipeline check(s) failed: mimir: app requests counted",
    );
}

#[tokio::test]
async fn a_loadgen_exit_3_prints_the_report_then_exits_3() {
    let mut summary: Value = serde_json::from_str(&data("loadgen-summary.json")).unwrap();
    summary["passed"] = json!(false);
    summary["max_error_ratio"] = json!(0.005);
    let log = format!("{}\n", serde_json::to_string_pretty(&summary).unwrap());
    let setup = setup(Answers::default(), Ending::Exits { code: 3, log }).await;
    let ran = loadtest(&setup, &["--max-error-ratio", "0.005"]).await;
    assert_eq!(ran.code, 3, "{}\n{}", ran.stdout, ran.stderr);
    assert_contains(&ran.stdout, "Result: loadgen FAILED (error ratio)");
    assert_contains(
        &ran.stderr,
        "error: the app's error ratio 0.0140 is above --max-error-ratio 0.005",
    );
}

#[tokio::test]
async fn a_failed_job_says_why_with_the_loadgen_last_lines() {
    let log = "{\"timestamp\":\"2026-11-27T20:50:55Z\",\"level\":\"ERROR\",\"target\":\"demo_app\",\"message\":\"load test not started\"}\n\
               demo-app loadgen: cannot reach http://app.demo.svc:8080/: connection refused; is the app running there? check --target\n";
    let setup = setup(
        Answers::default(),
        Ending::Exits {
            code: 2,
            log: log.to_string(),
        },
    )
    .await;
    let ran = loadtest(&setup, &[]).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout.is_empty(),
        "no report without a summary: {}",
        ran.stdout
    );
    assert_contains(
        &ran.stderr,
        "failed: the loadgen exited with 2 (BackoffLimitExceeded: Job has reached the specified backoff limit)",
    );
    assert_contains(
        &ran.stderr,
        "  demo-app loadgen: cannot reach http://app.demo.svc:8080/",
    );
    assert_contains(
        &ran.stderr,
        "help: exit 2 is bad input or an unreachable target",
    );
}

#[tokio::test]
async fn an_image_missing_from_the_node_fails_fast_with_help() {
    let setup = setup(
        Answers::default(),
        Ending::Waiting {
            reason: "ErrImageNeverPull",
        },
    )
    .await;
    let ran = loadtest(&setup, &[]).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert_contains(&ran.stderr, "did not start: ErrImageNeverPull");
    assert_contains(
        &ran.stderr,
        "help: the demo-app image is not on the remote node: run `deployer remote`",
    );
}

#[test]
fn the_dry_run_prints_the_job_and_every_query_and_touches_nothing() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["loadtest", "--dry-run", "--rate", "200", "--duration", "2m"])
        .env_clear()
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "kind: Job",
        "backoffLimit: 0",
        "- --rate\n",
        "- \"200\"",
        "- 120s",
        "observability/service/telemetry-agent:8888/metrics in context lgtm-remote",
        "prometheus_remote_storage_samples_failed_total[120s]",
        "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
        "mimir/service/mimir-query-frontend:8080/prometheus/api/v1/query",
        "loki/service/loki-read:3100/loki/api/v1/query",
        "tempo/service/tempo-query-frontend:3200/api/search  { resource.loadtest.run=\"loadtest-",
        "tenant remote01",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

/// Ctrl-C while the loadgen runs deletes the Job (so the load stops) and exits 130.
#[tokio::test]
async fn ctrl_c_deletes_the_job_and_exits_130() {
    use tokio::io::AsyncBufReadExt;

    let log = data("loadgen-pod.log")
        .lines()
        .take(4)
        .collect::<Vec<_>>()
        .join("\n");
    let setup = setup(Answers::default(), Ending::Running { log }).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["loadtest", "--rate", "100", "--duration", "10m"])
        .env_clear()
        .env("KUBECONFIG", &setup.kubeconfig)
        .env("LGTM_WAIT_TIMEOUT", "60s")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        seen.push(line.clone());
        if line.contains("load test started") {
            break;
        }
    }
    let job = the_job(&setup.remote);
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    testkit::process::send_signal(child.id().unwrap(), "INT");
    while let Some(line) = stderr.next_line().await.unwrap() {
        seen.push(line);
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    let seen = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(
        seen.contains(&format!("interrupted: job {name} was deleted")),
        "{seen}"
    );
    let deletes: Vec<String> = setup
        .remote
        .writes()
        .into_iter()
        .filter(|w| w.starts_with("DELETE "))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].contains(&format!("/jobs/{name}")), "{deletes:?}");
    assert!(
        setup
            .remote
            .get("batch/v1", "Job", Some("demo"), &name)
            .is_none()
    );
}

/// Fails with the whole text when `needle` is not in it.
#[track_caller]
fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "no `{needle}` in:\n{text}");
}
