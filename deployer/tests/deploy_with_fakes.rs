//! `deployer all` end to end with fake minikube/helm/linkerd on PATH and one fake API server per
//! cluster behind a kubeconfig.

mod support;

use std::path::Path;
use std::process::Output;

use support::fake_api::{FakeApi, kubeconfig};
use support::fake_tools::FakeTools;

struct Setup {
    tools: FakeTools,
    central: FakeApi,
    remote: FakeApi,
    state: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Self {
        let tools = FakeTools::new();
        let central = FakeApi::start().await;
        let remote = FakeApi::start().await;
        let config = kubeconfig(&[("lgtm-central", &central.url), ("lgtm-remote", &remote.url)]);
        tools.file("kubeconfig", &config);
        Setup {
            tools,
            central,
            remote,
            state: tempfile::tempdir().unwrap(),
        }
    }

    async fn deployer(&self, args: &[&str]) -> Output {
        deployer_with_path(args, &self.tools.path_env(), self.state.path(), &self.tools).await
    }
}

async fn deployer_with_path(
    args: &[&str],
    path: &std::ffi::OsStr,
    state: &Path,
    tools: &FakeTools,
) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        // The stack names its values files and manifests relative to the repository root.
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_clear()
        .env("PATH", path)
        .env("KUBECONFIG", tools.root.path().join("kubeconfig"))
        .env("LGTM_STATE_DIR", state)
        .output()
        .await
        .unwrap()
}

/// Steps and helm releases of `deployer all` for the stack in `deployer/src/stack/`.
const STEPS: usize = 41;
const RELEASES: usize = 17;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn calls_for(calls: &[String], profile: &str) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.starts_with("minikube") && c.contains(&format!(" {profile}")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_runs_the_expected_commands_and_writes_the_clusters() {
    let setup = Setup::new().await;
    // What MetalLB would give the ingress that helm (faked) installs.
    setup.central.put(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "traefik", "namespace": "traefik"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.49.201"}]}}
    }));
    let output = setup.deployer(&["all"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("add to /etc/hosts:  192.168.49.201 grafana.example.com"),
        "{stdout}"
    );

    let calls = setup.tools.calls();
    assert_eq!(
        calls_for(&calls, "lgtm-central"),
        [
            "minikube status -p lgtm-central -o json",
            "minikube start -p lgtm-central --cpus=6 --memory=16g \
             --dns-domain=lgtm-central.cluster.local --network=lgtm --container-runtime=containerd \
             --addons=metrics-server --addons=metallb --embed-certs",
            "minikube ip -p lgtm-central",
            "minikube -p lgtm-central kubectl -- apply --server-side --field-manager=lgtm-deployer \
             -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml",
            "minikube -p lgtm-central image build -t lgtm-demo-app:0.1.0 .",
            // The link step asks for the central node's address on the shared network.
            "minikube ip -p lgtm-central",
        ]
    );
    assert_eq!(
        calls_for(&calls, "lgtm-remote"),
        [
            "minikube status -p lgtm-remote -o json",
            "minikube start -p lgtm-remote --cpus=2 --memory=4g \
             --dns-domain=lgtm-remote.cluster.local --network=lgtm --container-runtime=containerd \
             --addons=metrics-server --addons=metallb --embed-certs",
            "minikube ip -p lgtm-remote",
            "minikube -p lgtm-remote kubectl -- apply --server-side --field-manager=lgtm-deployer \
             -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml",
            "minikube -p lgtm-remote image build -t lgtm-demo-app:0.1.0 .",
        ]
    );
    assert_eq!(
        calls[0], "minikube version --short",
        "versions are checked first"
    );
    let minikube_calls = calls.iter().filter(|c| c.starts_with("minikube")).count();
    assert_eq!(minikube_calls, 12, "{calls:?}");
    // Every release of the stack, once per cluster it belongs to, with its pinned version.
    let installs: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("helm upgrade --install"))
        .collect();
    assert_eq!(installs.len(), RELEASES, "{installs:?}");
    assert!(
        installs.iter().any(|c| c.starts_with(
            "helm upgrade --install mimir grafana/mimir-distributed --version 6.1.0 --namespace mimir"
        )),
        "{installs:?}"
    );
    assert!(
        calls.iter().any(|c| c.starts_with(
            "linkerd --context lgtm-central multicluster link-gen --cluster-name lgtm-central \
             --api-server-address https://192.168.49.2:8443"
        )),
        "{calls:?}"
    );
    // The two clusters start side by side: both starts come before either ip.
    let first_ip = calls
        .iter()
        .position(|c| c.starts_with("minikube ip"))
        .unwrap();
    let starts_before: Vec<_> = calls[..first_ip]
        .iter()
        .filter(|c| c.starts_with("minikube start"))
        .collect();
    assert_eq!(starts_before.len(), 2, "{calls:?}");

    for (api, pool) in [
        (&setup.central, "192.168.49.201-192.168.49.210"),
        (&setup.remote, "192.168.49.211-192.168.49.220"),
    ] {
        let config = api
            .get("v1", "ConfigMap", Some("metallb-system"), "config")
            .unwrap();
        let text = config["data"]["config"].as_str().unwrap();
        assert!(text.contains(&format!("  - {pool}\n")), "{text}");
    }
    for name in ["mimir", "loki", "tempo"] {
        let ns = setup.central.get("v1", "Namespace", None, name).unwrap();
        assert_eq!(
            ns["metadata"]["annotations"]["linkerd.io/inject"],
            "enabled"
        );
    }
    assert!(setup.remote.get("v1", "Namespace", None, "demo").is_some());
    // Generated credentials: kept in the state folder, the same in every namespace's Secret.
    let secret_key =
        std::fs::read_to_string(setup.state.path().join("credentials/rustfs-secret-key")).unwrap();
    for namespace in ["storage", "mimir", "loki", "tempo"] {
        let secret = setup
            .central
            .get("v1", "Secret", Some(namespace), "rustfs-credentials")
            .unwrap();
        assert_eq!(
            secret["stringData"]["RUSTFS_SECRET_KEY"],
            secret_key.as_str()
        );
    }
    assert!(
        setup
            .remote
            .get("apps/v1", "Deployment", Some("demo"), "loadgen")
            .is_some()
    );
    let dashboards = setup
        .central
        .get("v1", "ConfigMap", Some("observability"), "lgtm-dashboards")
        .unwrap();
    assert_eq!(dashboards["metadata"]["labels"]["grafana_dashboard"], "1");
    assert!(
        dashboards["data"]["demo-app.json"]
            .as_str()
            .unwrap()
            .contains("\"uid\": \"lgtm-demo-app\"")
    );
    assert!(setup.central.get("v1", "Namespace", None, "demo").is_none());
    assert!(setup.state.path().join("certs/trust-anchor.crt").exists());
    assert!(
        setup
            .state
            .path()
            .join("certs/issuer-lgtm-remote.key")
            .exists()
    );
    let stdout = text(&output.stdout);
    assert!(
        // All but the helm repos (local helm state), the Gateway API CRDs and image builds
        // (kubectl and minikube cannot tell) and the link (the fake link-gen prints nothing).
        stdout.contains(&format!("{} of {STEPS} steps changed something", STEPS - 6)),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_repeats_no_work() {
    let setup = Setup::new().await;
    let first = setup.deployer(&["all"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let anchor = std::fs::read(setup.state.path().join("certs/trust-anchor.crt")).unwrap();
    let config_before = setup
        .central
        .get("v1", "ConfigMap", Some("metallb-system"), "config")
        .unwrap();
    setup.tools.clear_calls();

    let second = setup.deployer(&["all"]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    let calls = setup.tools.calls();
    assert!(
        calls.iter().all(|c| !c.starts_with("minikube start")),
        "{calls:?}"
    );
    let stdout = text(&second.stdout);
    assert!(
        // helm decides itself whether a release changed, so each release step reports a change;
        // every other step (minikube, secrets, manifests, namespaces, link) has nothing to do.
        stdout.contains(&format!("{RELEASES} of {STEPS} steps changed something")),
        "{stdout}"
    );
    let config_after = setup
        .central
        .get("v1", "ConfigMap", Some("metallb-system"), "config")
        .unwrap();
    assert_eq!(
        config_before["metadata"]["resourceVersion"],
        config_after["metadata"]["resourceVersion"]
    );
    assert_eq!(
        std::fs::read(setup.state.path().join("certs/trust-anchor.crt")).unwrap(),
        anchor
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_names_the_step_the_command_and_its_stderr() {
    let setup = Setup::new().await;
    setup.tools.fail_minikube(
        "start",
        "X Exiting due to RSRC_INSUFFICIENT_CORES: Requested cpu count 6 is greater than the available cpus of 2\n",
    );
    let output = setup.deployer(&["all"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step `start lgtm-central` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`minikube start -p lgtm-central --cpus=6"),
        "{stderr}"
    );
    assert!(stderr.contains("RSRC_INSUFFICIENT_CORES"), "{stderr}");
    assert!(
        stderr.contains("help: see `minikube logs -p lgtm-central`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not started: metallb lgtm-central"),
        "{stderr}"
    );

    // Fixing the cause and running again resumes.
    std::fs::remove_file(setup.tools.root.path().join("fail-minikube-start")).unwrap();
    let again = setup.deployer(&["all"]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tools_are_reported_together_before_anything_starts() {
    let setup = Setup::new().await;
    let empty = FakeTools::empty();
    let output = deployer_with_path(
        &["all", "--driver", "docker"],
        empty.bin().as_os_str(),
        setup.state.path(),
        &setup.tools,
    )
    .await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: minikube, helm, linkerd, docker not found on PATH"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: install minikube (>= 1.34)"),
        "{stderr}"
    );
    assert!(stderr.contains("help: install docker"), "{stderr}");
    assert!(
        !setup.state.path().join("certs").exists(),
        "nothing started"
    );
    assert!(setup.central.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_tool_is_reported_before_anything_starts() {
    let setup = Setup::new().await;
    setup.tools.file("minikube-version", "v1.20.0\n");
    let output = setup.deployer(&["all"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: minikube v1.20.0 is older than 1.34"),
        "{stderr}"
    );
    assert!(stderr.contains("help: upgrade minikube"), "{stderr}");
    assert_eq!(
        setup.tools.calls(),
        [
            "minikube version --short",
            "helm version --short",
            "linkerd version --client --short"
        ]
    );
    assert!(
        !setup.state.path().join("certs").exists(),
        "nothing started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_deploys_only_the_central_cluster() {
    let setup = Setup::new().await;
    let output = setup.deployer(&["central"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let calls = setup.tools.calls();
    assert!(calls_for(&calls, "lgtm-remote").is_empty(), "{calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("--kube-context lgtm-remote")),
        "{calls:?}"
    );
    assert!(setup.remote.requests().is_empty());
    assert!(
        setup
            .central
            .get("v1", "Namespace", None, "mimir")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_both_clusters() {
    let setup = Setup::new().await;
    setup.tools.file("running-lgtm-central", "");
    setup.central.put(serde_json::json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "lgtm-central"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}
    }));
    let output = setup.deployer(&["status"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            "lgtm-central (lgtm-central.cluster.local)\n  profile: running\n  nodes ready: 1/1"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("link: Linkerd multicluster not installed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lgtm-remote (lgtm-remote.cluster.local)\n  profile: not running"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_needs_confirmation_and_keeps_the_certificates() {
    let setup = Setup::new().await;
    assert!(setup.deployer(&["certs"]).await.status.success());
    let refused = setup.deployer(&["destroy"]).await;
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("nothing was deleted"));
    assert!(setup.tools.calls().is_empty());

    let output = setup.deployer(&["destroy", "--yes"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        setup.tools.calls(),
        [
            "minikube delete -p lgtm-central",
            "minikube delete -p lgtm-remote"
        ]
    );
    assert!(setup.state.path().join("certs/trust-anchor.crt").exists());
}
