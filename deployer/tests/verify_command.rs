//! `deployer verify` as a user runs it: the binary reads the kubeconfig, opens port-forwards to
//! the central Mimir, Loki and Tempo and to the remote demo app through the (fake) API servers,
//! and runs its checks through them against fake backends.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use support::fake_api::{FakeApi, kubeconfig};
use support::fake_lgtm::{FakeLgtm, Scenario};

/// A Service selecting one ready pod whose port-forwards reach `backend` (a fake's base URL).
fn expose(api: &FakeApi, namespace: &str, service: &str, port: u16, backend: &str) {
    let pod = format!("{service}-0");
    api.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"selector": {"app": service}, "ports": [{"port": port, "targetPort": port}]}}));
    api.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": namespace, "labels": {"app": service}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
    let addr: SocketAddr = backend.trim_start_matches("http://").parse().unwrap();
    api.serve_pod(namespace, &pod, addr);
}

struct Clusters {
    central: FakeApi,
    remote: FakeApi,
    lgtm: FakeLgtm,
    dir: tempfile::TempDir,
}

async fn clusters(scenario: Scenario) -> Clusters {
    let lgtm = FakeLgtm::start(scenario).await;
    let central = FakeApi::start().await;
    let remote = FakeApi::start().await;
    expose(&central, "mimir", "mimir-query-frontend", 8080, &lgtm.mimir);
    expose(&central, "loki", "loki-read", 3100, &lgtm.loki);
    expose(&central, "tempo", "tempo-query-frontend", 3200, &lgtm.tempo);
    expose(&remote, "demo", "app", 8080, &lgtm.app);
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(&[("lgtm-central", &central.url), ("lgtm-remote", &remote.url)]);
    std::fs::write(dir.path().join("kubeconfig"), config).unwrap();
    Clusters {
        central,
        remote,
        lgtm,
        dir,
    }
}

async fn deployer_verify(clusters: &Clusters, extra: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["verify", "--poll-interval", "50ms", "--burst", "3"])
        .args(extra)
        .env_clear()
        .env("KUBECONFIG", clusters.dir.path().join("kubeconfig"))
        .env("LGTM_STATE_DIR", clusters.dir.path())
        // A flag in `extra` wins over this.
        .env("LGTM_VERIFY_DEADLINE", "5s")
        .output()
        .await
        .unwrap()
}

fn forwarded_pods(api: &FakeApi) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.contains("/portforward"))
        .collect()
}

#[tokio::test]
async fn verify_passes_through_port_forwards_when_the_pipeline_works() {
    let clusters = clusters(Scenario::default()).await;
    let output = deployer_verify(&clusters, &["--output", "json"]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(clusters.lgtm.app_requests(), 3);

    // Every backend was reached through the central cluster's API, the app through the remote's.
    let central = forwarded_pods(&clusters.central);
    for pod in [
        "mimir-query-frontend-0",
        "loki-read-0",
        "tempo-query-frontend-0",
    ] {
        assert!(
            central.iter().any(|r| r.contains(&format!("/pods/{pod}/"))),
            "{central:?}"
        );
    }
    let remote = forwarded_pods(&clusters.remote);
    assert!(
        remote
            .iter()
            .all(|r| r.contains("/namespaces/demo/pods/app-0/")),
        "{remote:?}"
    );
    assert!(!remote.is_empty());
}

#[tokio::test]
async fn verify_fails_with_help_when_a_backend_has_no_ready_pod() {
    let clusters = clusters(Scenario::default()).await;
    // Loki's read pods are restarting.
    clusters
        .central
        .put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "loki-read-0", "namespace": "loki", "labels": {"app": "loki-read"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}));
    let output = deployer_verify(&clusters, &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("error: no ready pod backs service loki/loki-read"),
        "{stderr}"
    );
    assert!(stderr.contains("help: "), "{stderr}");
}

#[tokio::test]
async fn verify_exits_non_zero_when_a_check_fails() {
    let clusters = clusters(Scenario {
        logs: support::fake_lgtm::Logs::None,
        ..Scenario::default()
    })
    .await;
    let output = deployer_verify(&clusters, &["--deadline", "1s"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(stderr.contains("error: verify failed"), "{stderr}");
    assert!(stdout.contains("logs             FAIL"), "{stdout}");
}
