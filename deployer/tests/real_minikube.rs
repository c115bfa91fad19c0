//! Against real minikube, helm and linkerd (`cargo test -p deployer -- --ignored`). They create
//! the two profiles (6 + 2 CPUs, 16 + 4 GiB by default; shrink with LGTM_* variables) and leave
//! them running for inspection; `deployer destroy --yes` removes them.

use std::process::{Command, Output};

use deployer::k8s::Clients;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

fn deployer(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .env(
            "LGTM_STATE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/real-minikube-state"),
        )
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn minikube_ip(profile: &str) -> String {
    let output = Command::new("minikube")
        .args(["ip", "-p", profile])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
#[ignore = "needs minikube"]
fn all_sets_up_both_clusters_and_a_second_run_changes_nothing() {
    let first = deployer(&["all"]);
    assert!(first.status.success());
    let second = deployer(&["all"]);
    assert!(second.status.success());
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains(" 0 of "), "{stdout}");

    let status = deployer(&["status"]);
    let report = String::from_utf8_lossy(&status.stdout);
    assert_eq!(report.matches("profile: running").count(), 2, "{report}");
}

#[tokio::test]
#[ignore = "needs minikube"]
async fn the_metallb_pools_follow_minikube_ip() {
    assert!(deployer(&["all"]).status.success());
    let clients = Clients::new(None);
    for (profile, first, last) in [("lgtm-central", 201, 210), ("lgtm-remote", 211, 220)] {
        let ip = minikube_ip(profile);
        let prefix = ip.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
        let client = clients.client(profile).await.unwrap();
        let config_maps: Api<ConfigMap> = Api::namespaced(client, "metallb-system");
        let config = config_maps.get("config").await.unwrap();
        let text = config
            .data
            .unwrap_or_default()
            .remove("config")
            .unwrap_or_default();
        assert!(
            text.contains(&format!("{prefix}.{first}-{prefix}.{last}")),
            "{profile}: {text}"
        );
    }
}

/// `deployer grafana` against the real central cluster: the forwarded port serves Grafana's API.
#[tokio::test]
#[ignore = "needs minikube"]
async fn grafana_is_reachable_through_the_port_forward() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    assert!(deployer(&["all"]).status.success());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["grafana", "--port", "0"])
        .env(
            "LGTM_STATE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/real-minikube-state"),
        )
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr = first
        .strip_prefix("Grafana: http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    socket
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"database\""), "{response}");
}

/// `deployer verify` on the deployed clusters: every check passes within its deadline.
#[test]
#[ignore = "needs minikube"]
fn verify_passes_on_the_deployed_clusters() {
    assert!(deployer(&["all"]).status.success());
    let verify = deployer(&["verify", "--output", "json", "--deadline", "5m"]);
    let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(verify.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
}

/// `deployer loadtest` against the real clusters: the Job runs meshed and finishes (its proxy is a
/// native sidecar), the summary is read from the pod log, and no pipeline check fails at a rate
/// the PoC is sized for.
#[test]
#[ignore = "needs minikube"]
fn loadtest_runs_the_job_and_the_pipeline_keeps_up() {
    assert!(deployer(&["all"]).status.success());
    let output = deployer(&[
        "loadtest",
        "--rate",
        "20",
        "--duration",
        "30s",
        "--output",
        "json",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["loadgen"]["requests"]["sent"], 600, "{report:#}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 9, "{report:#}");
    for check in checks {
        assert_eq!(check["verdict"], "pass", "{check:#}");
    }
}
