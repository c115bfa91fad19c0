//! `deployer status` (text and `--output json`) and `deployer doctor` against running fake
//! profiles whose API servers show a pod killed for memory and one the scheduler cannot place
//! (tests/data/diagnose).

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::deploy::{Setup, text};

fn serve(setup: &Setup, fixtures: &[&str]) {
    for name in fixtures {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/diagnose")
            .join(format!("{name}.json"));
        let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for object in data["objects"].as_array().unwrap() {
            setup.central.put(object.clone());
        }
    }
}

/// Both profiles run, each with a ready node; central's mimir is in trouble.
async fn running_clusters() -> Setup {
    let setup = Setup::new().await;
    for (profile, api) in [
        ("lgtm-central", &setup.central),
        ("lgtm-remote", &setup.remote),
    ] {
        setup.tools.file(&format!("running-{profile}"), "");
        api.put(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": profile},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }));
    }
    serve(&setup, &["oom-crashloop", "unschedulable"]);
    setup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_gives_each_pod_its_reason_and_fix() {
    let setup = running_clusters().await;
    let output = setup.deployer(&["status", "--output", "json"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let central = &status["clusters"][0];
    assert_eq!(central["profile"], "lgtm-central");
    assert_eq!(central["running"], true);
    assert_eq!(central["nodes"], json!({"ready": 1, "total": 1}));
    let pods = central["pods_not_ready"].as_array().unwrap();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let by_name = |name: &str| pods.iter().find(|p| p["name"] == name).unwrap().clone();
    let oom = by_name("mimir-store-gateway-zone-a-0");
    assert_eq!(oom["object"], "pod");
    assert_eq!(oom["namespace"], "mimir");
    assert_eq!(oom["kind"], "out-of-memory");
    assert_eq!(oom["container"], "store-gateway");
    assert!(
        oom["problem"]
            .as_str()
            .unwrap()
            .contains("exited with code 137 (OOMKilled), 5 restarts"),
        "{oom}"
    );
    assert!(
        oom["hint"]
            .as_str()
            .unwrap()
            .contains("resources.limits.memory"),
        "{oom}"
    );
    let pending = by_name("mimir-ingester-zone-a-0");
    assert_eq!(pending["kind"], "unschedulable");
    assert!(
        pending["hint"]
            .as_str()
            .unwrap()
            .contains("--central-memory (now 16g)"),
        "{pending}"
    );
    let remote = &status["clusters"][1];
    assert_eq!(remote["pods_not_ready"], json!([]));
    // No Link yet (null when the Link kind is not installed, [] when it is).
    assert!(
        remote["links"].as_array().is_none_or(Vec::is_empty),
        "{remote}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_text_shows_the_reason_under_each_pod() {
    let setup = running_clusters().await;
    let output = setup.deployer(&["status"]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains(
            "    pod mimir/mimir-store-gateway-zone-a-0: CrashLoopBackOff: container store-gateway exited with code 137 (OOMKilled), 5 restarts\n      fix: "
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("    pod mimir/mimir-ingester-zone-a-0: Pending: 0/1 nodes are available: 1 Insufficient memory."),
        "{stdout}"
    );
    assert!(stdout.contains("lgtm-remote (lgtm-remote.cluster.local)\n  profile: running\n  nodes ready: 1/1\n  pods not ready: none"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_lists_checks_with_fixes_and_fails_on_a_fail() {
    let setup = running_clusters().await;
    // The remote is linked and mirrors one service, which has no endpoints yet.
    setup.remote.install_linkerd_multicluster();
    setup.remote.put(json!({
        "apiVersion": "multicluster.linkerd.io/v1alpha3", "kind": "Link",
        "metadata": {"name": "lgtm-central", "namespace": "linkerd-multicluster"},
        "spec": {"targetClusterName": "lgtm-central"}
    }));
    setup.remote.put(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "mimir-distributor-lgtm-central", "namespace": "mimir",
                     "labels": {"mirror.linkerd.io/mirrored-service": "true"}},
        "spec": {"type": "ClusterIP", "ports": [{"port": 8080}]}
    }));
    setup.remote.put(json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "mimir-distributor-lgtm-central", "namespace": "mimir"},
        "subsets": []
    }));
    let output = setup.deployer(&["doctor", "--driver", "docker"]).await;
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    for line in [
        "this machine\n",
        "  PASS minikube: ",
        "  PASS docker CPUs: docker has 8; profiles ask lgtm-central 6, lgtm-remote 2",
        "  PASS docker memory: docker has 32.0 GiB",
        "lgtm-central\n  PASS profile: lgtm-central runs\n  PASS nodes: 1/1 ready",
        "  FAIL pod mimir/mimir-store-gateway-zone-a-0: CrashLoopBackOff: container store-gateway exited with code 137 (OOMKilled)",
        "       fix: the container used more than its memory limit",
        "lgtm-remote\n  PASS profile: lgtm-remote runs",
        "  PASS link: linkerd-multicluster/lgtm-central",
        "  PASS mirrored services: mimir/mimir-distributor-lgtm-central",
        "  FAIL mirrored endpoints: no endpoints: mimir/mimir-distributor-lgtm-central",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // The OOM-killed pod, the pending pod and the endpoints (this machine's disk could add one).
    let first = failures(&stderr);
    assert!(first >= 3, "{stderr}");

    // The service mirror gave it the gateway's address, but its probe of the gateway fails.
    setup.remote.put(json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "mimir-distributor-lgtm-central", "namespace": "mimir"},
        "subsets": [{"notReadyAddresses": [{"ip": "192.168.49.205"}], "ports": [{"port": 4143}]}]
    }));
    let output = setup.deployer(&["doctor", "--driver", "docker"]).await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            "  FAIL gateway: lgtm-remote's probe of the central gateway (192.168.49.205) fails"
        ),
        "{stdout}"
    );
    assert_eq!(failures(&text(&output.stderr)), first);

    // Once the probe succeeds, the address is ready and that line passes.
    setup.remote.put(json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "mimir-distributor-lgtm-central", "namespace": "mimir"},
        "subsets": [{"addresses": [{"ip": "192.168.49.205"}], "ports": [{"port": 4143}]}]
    }));
    let output = setup.deployer(&["doctor", "--driver", "docker"]).await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("  PASS gateway: reachable from lgtm-remote (192.168.49.205): every mirrored service has ready endpoints"),
        "{stdout}"
    );
    assert_eq!(failures(&text(&output.stderr)), first - 1);
}

fn failures(stderr: &str) -> usize {
    stderr
        .split("error: doctor found ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stderr}"))
}
