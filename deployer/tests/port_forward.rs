//! Port-forwards through a fake API server that speaks the real WebSocket protocol and relays to
//! real local servers standing in for pods.

mod support;

use std::net::SocketAddr;

use deployer::k8s::{KubeError, PortForward};
use serde_json::{Value, json};
use support::fake_api::FakeApi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ANY_PORT: &str = "127.0.0.1:0";

/// A tiny HTTP server that answers every request with `who`.
async fn pod_server(who: &'static str) -> SocketAddr {
    let router = axum::Router::new().fallback(move || async move { who });
    let listener = tokio::net::TcpListener::bind(ANY_PORT).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
}

fn pod(name: &str, ready: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "demo", "labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "linkerd-proxy", "ports": [{"name": "linkerd-admin", "containerPort": 4191}]},
            {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

async fn get(addr: SocketAddr) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    response
}

fn forwards(api: &FakeApi) -> Vec<String> {
    api.requests()
        .into_iter()
        .filter(|r| r.contains("/portforward"))
        .collect()
}

#[tokio::test]
async fn a_service_forward_reaches_its_ready_pod_on_the_named_target_port() {
    let api = FakeApi::start().await;
    api.put(service());
    api.put(pod("web-a", false));
    api.put(pod("web-b", true));
    api.serve_pod("demo", "web-a", pod_server("from web-a").await);
    api.serve_pod("demo", "web-b", pod_server("from web-b").await);

    let forward =
        PortForward::to_service(&api.client(), "demo", "web", 80, ANY_PORT.parse().unwrap())
            .await
            .expect("forward opens");
    assert!(forward.url().starts_with("http://127.0.0.1:"));

    // Connections are independent streams; run a few at once.
    let responses = futures::future::join_all((0..3).map(|_| get(forward.local_addr()))).await;
    for response in responses {
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("from web-b"), "{response}");
    }
    assert_eq!(
        forwards(&api),
        vec!["GET /api/v1/namespaces/demo/pods/web-b/portforward?ports=8080"; 3]
    );
}

#[tokio::test]
async fn a_forward_follows_the_service_when_its_pod_goes_away() {
    let api = FakeApi::start().await;
    api.put(service());
    api.put(pod("web-b", true));
    api.serve_pod("demo", "web-b", pod_server("from web-b").await);
    let forward =
        PortForward::to_service(&api.client(), "demo", "web", 80, ANY_PORT.parse().unwrap())
            .await
            .unwrap();
    assert!(get(forward.local_addr()).await.ends_with("from web-b"));

    // A rollout: web-b is replaced by web-c.
    api.unserve_pod("demo", "web-b");
    api.put(pod("web-b", false));
    api.put(pod("web-c", true));
    api.serve_pod("demo", "web-c", pod_server("from web-c").await);
    assert!(get(forward.local_addr()).await.ends_with("from web-c"));
}

#[tokio::test]
async fn a_forward_to_a_named_pod_and_port() {
    let api = FakeApi::start().await;
    api.put(pod("web-b", true));
    api.serve_pod("demo", "web-b", pod_server("direct").await);
    let target = deployer::k8s::port_forward::Target::Pod {
        name: "web-b".into(),
        port: 9090,
    };
    let forward = PortForward::open(&api.client(), "demo", target, ANY_PORT.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(forward.description(), "demo/pod/web-b:9090");
    assert!(get(forward.local_addr()).await.ends_with("direct"));
    assert_eq!(
        forwards(&api),
        vec!["GET /api/v1/namespaces/demo/pods/web-b/portforward?ports=9090"]
    );
}

#[tokio::test]
async fn no_ready_pod_is_an_error_that_names_the_service() {
    let api = FakeApi::start().await;
    api.put(service());
    api.put(pod("web-a", false));
    let error =
        PortForward::to_service(&api.client(), "demo", "web", 80, ANY_PORT.parse().unwrap())
            .await
            .err()
            .expect("no ready pod");
    assert!(matches!(error, KubeError::NoReadyPod { .. }), "{error}");
    assert_eq!(error.to_string(), "no ready pod backs service demo/web");
    assert!(error.help().unwrap().contains("deployer status"));
}

#[tokio::test]
async fn a_port_the_service_does_not_have_is_an_error() {
    let api = FakeApi::start().await;
    api.put(service());
    api.put(pod("web-b", true));
    let error =
        PortForward::to_service(&api.client(), "demo", "web", 81, ANY_PORT.parse().unwrap())
            .await
            .err()
            .expect("no such port");
    assert_eq!(
        error.to_string(),
        "cannot port-forward to demo/service/web:81: the service has no port 81"
    );
}

#[tokio::test]
async fn a_missing_service_is_an_api_error() {
    let api = FakeApi::start().await;
    let error =
        PortForward::to_service(&api.client(), "demo", "nope", 80, ANY_PORT.parse().unwrap())
            .await
            .err()
            .expect("no such service");
    assert!(
        error.to_string().starts_with("read service demo/nope"),
        "{error}"
    );
}

#[tokio::test]
async fn a_local_port_in_use_is_a_listen_error() {
    let api = FakeApi::start().await;
    api.put(service());
    api.put(pod("web-b", true));
    let taken = tokio::net::TcpListener::bind(ANY_PORT).await.unwrap();
    let error = PortForward::to_service(
        &api.client(),
        "demo",
        "web",
        80,
        taken.local_addr().unwrap(),
    )
    .await
    .err()
    .expect("port taken");
    assert!(matches!(error, KubeError::Listen { .. }), "{error}");
}

/// The `grafana` command end to end: the binary forwards to the central Grafana's pod, shows the
/// generated password, and stops cleanly on Ctrl-C (SIGINT).
#[tokio::test]
async fn deployer_grafana_forwards_until_ctrl_c() {
    use tokio::io::AsyncBufReadExt;

    let central = FakeApi::start().await;
    central.put(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "monitor-grafana", "namespace": "observability"},
        "spec": {"selector": {"app.kubernetes.io/name": "grafana"},
                 "ports": [{"name": "http-web", "port": 80, "targetPort": 3000}]}}));
    central.put(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "monitor-grafana-0", "namespace": "observability",
                     "labels": {"app.kubernetes.io/name": "grafana"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
    central.serve_pod(
        "observability",
        "monitor-grafana-0",
        pod_server("grafana login page").await,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        support::fake_api::kubeconfig(&[("lgtm-central", &central.url)]),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("credentials")).unwrap();
    std::fs::write(
        dir.path().join("credentials/grafana-admin-password"),
        "s3cret\n",
    )
    .unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(["grafana", "--port", "0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("LGTM_STATE_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("the Grafana line");
    let url = first
        .strip_prefix("Grafana: http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));
    assert!(
        first.ends_with("(forwarding to observability/service/monitor-grafana:80 in lgtm-central)"),
        "{first}"
    );
    let login = lines.next_line().await.unwrap().unwrap();
    assert!(login.contains("password s3cret"), "{login}");

    let response = get(url.parse().unwrap()).await;
    assert!(response.ends_with("grafana login page"), "{response}");
    assert_eq!(
        forwards(&central),
        vec!["GET /api/v1/namespaces/observability/pods/monitor-grafana-0/portforward?ports=3000"]
    );

    testkit::process::send_signal(child.id().unwrap(), "INT");
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status}");
}
