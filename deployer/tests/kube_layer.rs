//! The Kubernetes layer against a fake API server holding real API objects.

mod support;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use deployer::k8s::KubeError;
use deployer::k8s::apply::{Change, apply_yaml};
use deployer::k8s::health::cluster_health;
use deployer::k8s::labels::add_labels;
use deployer::k8s::metallb::{AddressPool, apply_pool};
use deployer::k8s::namespace::ensure_namespace;
use deployer::k8s::services::{load_balancers, service_address};
use deployer::k8s::wait::{wait_for_load_balancer_ip, wait_for_rollout};
use kube::api::GroupVersionKind;
use serde_json::json;
use support::fake_api::FakeApi;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels:
    app.kubernetes.io/name: app
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: app
  template:
    metadata:
      labels:
        app.kubernetes.io/name: app
    spec:
      containers:
      - name: app
        image: demo-app:latest
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-settings
  namespace: other
data:
  mode: demo
"#;

/// The minikube addon's template, kept in the shared upstream reference folder.
const METALLB_TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/upstream/minikube-metallb/metallb-config.yaml.tmpl"
);

fn load_balancer(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "linkerd-multicluster"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 4143}]}
    })
}

#[tokio::test]
async fn creates_meshed_namespaces_once() {
    let api = FakeApi::start().await;
    let client = api.client();
    let first = ensure_namespace(&client, "demo").await.unwrap();
    assert_eq!(first.change, Change::Created);
    let stored = api.get("v1", "Namespace", None, "demo").unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["linkerd.io/inject"],
        "enabled"
    );
    let second = ensure_namespace(&client, "demo").await.unwrap();
    assert_eq!(second.change, Change::Unchanged);
    let patch = api
        .writes()
        .into_iter()
        .find(|w| w.contains("/api/v1/namespaces/demo"))
        .unwrap();
    assert!(patch.starts_with("PATCH "), "{patch}");
    assert!(patch.contains("fieldManager=lgtm-deployer"), "{patch}");
    assert!(patch.contains("force=true"), "{patch}");
}

#[tokio::test]
async fn applies_multi_document_yaml_server_side() {
    let api = FakeApi::start().await;
    let client = api.client();
    let applied = apply_yaml(&client, DEPLOYMENT, "demo").await.unwrap();
    assert_eq!(applied.len(), 2);
    assert_eq!(applied[0].to_string(), "Deployment demo/app");
    assert_eq!(applied[0].change, Change::Created);
    assert_eq!(applied[1].to_string(), "ConfigMap other/app-settings");
    let deployment = api
        .get("apps/v1", "Deployment", Some("demo"), "app")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "demo-app:latest"
    );
    // Discovery resolved the kind: the apply went to the apps/v1 path, with our field manager.
    let writes = api.writes();
    assert!(
        writes.iter().any(|w| w
            .starts_with("PATCH /apis/apps/v1/namespaces/demo/deployments/app?")
            && w.contains("fieldManager=lgtm-deployer")),
        "{writes:?}"
    );

    let again = apply_yaml(&client, DEPLOYMENT, "demo").await.unwrap();
    assert!(
        again.iter().all(|a| a.change == Change::Unchanged),
        "{again:?}"
    );
    let changed = apply_yaml(
        &client,
        &DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
        "demo",
    )
    .await
    .unwrap();
    assert_eq!(changed[0].change, Change::Changed);
    assert_eq!(changed[1].change, Change::Unchanged);
}

#[tokio::test]
async fn a_bad_manifest_names_the_document() {
    let api = FakeApi::start().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\nkind: ConfigMap\n";
    let err = apply_yaml(&api.client(), yaml, "demo").await.unwrap_err();
    assert!(matches!(err, KubeError::Manifest { index: 1, .. }), "{err}");
    assert!(
        api.writes().is_empty(),
        "nothing applied: {:?}",
        api.writes()
    );
}

#[tokio::test]
async fn writes_the_metallb_config_map_like_the_addon() {
    let api = FakeApi::start().await;
    let pool = AddressPool::beside_node(Ipv4Addr::new(192, 168, 49, 2), (201, 210));
    let applied = apply_pool(&api.client(), pool).await.unwrap();
    assert_eq!(applied.change, Change::Created);
    let config_map = api
        .get("v1", "ConfigMap", Some("metallb-system"), "config")
        .unwrap();
    let template = std::fs::read_to_string(METALLB_TEMPLATE)
        .unwrap_or_else(|e| panic!("{METALLB_TEMPLATE} (shared/ beside the repository): {e}"));
    let expected = template
        .split("config: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{{ .LoadBalancerStartIP }}", "192.168.49.201")
        .replace("{{ .LoadBalancerEndIP }}", "192.168.49.210")
        + "\n";
    assert_eq!(config_map["data"]["config"], expected.as_str());
}

#[tokio::test]
async fn waits_for_a_load_balancer_ip() {
    let api = FakeApi::start().await;
    api.put(load_balancer("linkerd-gateway"));
    let controller = api.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut service = load_balancer("linkerd-gateway");
        service["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.168.49.201"}]}});
        controller.put(service);
    });
    let ip = wait_for_load_balancer_ip(
        &api.client(),
        "linkerd-multicluster",
        "linkerd-gateway",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(ip, "192.168.49.201");
}

#[tokio::test]
async fn gives_up_waiting_for_an_ip_after_the_timeout() {
    let api = FakeApi::start().await;
    api.put(load_balancer("linkerd-gateway"));
    let started = std::time::Instant::now();
    let err = wait_for_load_balancer_ip(
        &api.client(),
        "linkerd-multicluster",
        "linkerd-gateway",
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, KubeError::Timeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("linkerd-multicluster/linkerd-gateway"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn waits_for_a_rollout() {
    let api = FakeApi::start().await;
    let client = api.client();
    apply_yaml(&client, DEPLOYMENT, "demo").await.unwrap();
    let controller = api.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut deployment = controller
            .get("apps/v1", "Deployment", Some("demo"), "app")
            .unwrap();
        deployment["metadata"]["generation"] = json!(1);
        deployment["status"] = json!({
            "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
            "availableReplicas": 2, "readyReplicas": 2
        });
        controller.put(deployment);
    });
    wait_for_rollout(&client, "demo", "app", Duration::from_secs(10))
        .await
        .unwrap();
    let err = wait_for_rollout(&client, "demo", "missing", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, KubeError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn labels_and_reads_services() {
    let api = FakeApi::start().await;
    let client = api.client();
    let mut service = load_balancer("mimir-distributor");
    service["metadata"]["namespace"] = json!("mimir");
    service["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.168.49.202"}]}});
    api.put(service);
    let labels = BTreeMap::from([("mirror.linkerd.io/exported".to_string(), "true".to_string())]);
    add_labels(
        &client,
        &GroupVersionKind::gvk("", "v1", "Service"),
        Some("mimir"),
        "mimir-distributor",
        &labels,
    )
    .await
    .unwrap();
    let stored = api
        .get("v1", "Service", Some("mimir"), "mimir-distributor")
        .unwrap();
    assert_eq!(
        stored["metadata"]["labels"]["mirror.linkerd.io/exported"],
        "true"
    );
    assert_eq!(
        stored["spec"]["type"], "LoadBalancer",
        "the rest is untouched"
    );

    let address = service_address(&client, "mimir", "mimir-distributor")
        .await
        .unwrap();
    assert_eq!(address.external.as_deref(), Some("192.168.49.202"));
    assert_eq!(address.ports, [4143]);
    let all = load_balancers(&client).await.unwrap();
    assert_eq!(all.len(), 1);
}

fn hint_context() -> deployer::diagnose::HintContext {
    let cli = <deployer::Cli as clap::Parser>::parse_from(["deployer", "status"]);
    deployer::diagnose::HintContext::for_cluster(
        &deployer::settings::Settings::from_args(&cli.global).remote,
    )
}

#[tokio::test]
async fn reports_cluster_health() {
    let api = FakeApi::start().await;
    api.put(json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "lgtm-remote"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    }));
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app-1", "namespace": "demo"},
        "spec": {"containers": [{"name": "app", "image": "demo-app"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}]}
    }));
    api.put(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-1", "namespace": "demo"},
        "spec": {"containers": [{"name": "db", "image": "demo-app"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    }));
    let client = api.client();
    let hints = hint_context();
    let health = cluster_health(&client, &hints).await.unwrap();
    assert_eq!((health.nodes_ready, health.nodes_total), (1, 1));
    assert_eq!(health.pods_not_ready["demo"], ["app-1"]);
    assert_eq!(health.problems.len(), 1, "{:?}", health.problems);
    assert_eq!(health.problems[0].name, "app-1");
    assert!(health.links.is_none(), "multicluster not installed yet");

    api.install_linkerd_multicluster();
    api.put(json!({
        "apiVersion": "multicluster.linkerd.io/v1alpha3", "kind": "Link",
        "metadata": {"name": "lgtm-central", "namespace": "linkerd-multicluster"},
        "spec": {"targetClusterName": "lgtm-central"}
    }));
    let mut mirrored = load_balancer("mimir-distributor-lgtm-central");
    mirrored["metadata"]["namespace"] = json!("mimir");
    mirrored["metadata"]["labels"] = json!({"mirror.linkerd.io/mirrored-service": "true"});
    mirrored["spec"]["type"] = json!("ClusterIP");
    api.put(mirrored);
    let health = cluster_health(&client, &hints).await.unwrap();
    assert_eq!(health.links.unwrap(), ["linkerd-multicluster/lgtm-central"]);
    assert_eq!(health.mirrored.len(), 1);
    assert_eq!(health.mirrored[0].name, "mimir-distributor-lgtm-central");
}
