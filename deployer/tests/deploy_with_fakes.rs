//! `deployer all` end to end with fake minikube/helm/linkerd on PATH and one fake API server per
//! cluster behind a kubeconfig.

mod support;

use support::deploy::{Setup, deployer_with_path, text};
use support::fake_tools::FakeTools;

/// Steps and helm releases of `deployer all` for the stack in `deployer/src/stack/`.
const STEPS: usize = 45;
const RELEASES: usize = 19;

fn sorted(mut calls: Vec<String>) -> Vec<String> {
    calls.sort();
    calls
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
    let gateway_api_url = "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.5.1/standard-install.yaml";
    let kubectl = |profile: &str, verb: &str| {
        format!(
            "minikube -p {profile} kubectl -- --context={profile} {verb} --server-side \
             --field-manager=lgtm-deployer -f {gateway_api_url}"
        )
    };
    let archive = setup.state.path().join("images/lgtm-demo-app-0.1.0.tar");
    let archive = archive.display();
    // The image steps run beside the charts, so only the order within a cluster's chain is
    // fixed; compare the calls sorted.
    assert_eq!(
        sorted(calls_for(&calls, "lgtm-central")),
        sorted(vec![
            "minikube status -p lgtm-central -o json".to_string(),
            "minikube start -p lgtm-central --driver=docker --kubernetes-version=v1.35.1 --cpus=6 \
             --memory=16g --disk-size=40g --dns-domain=lgtm-central.cluster.local --network=lgtm \
             --container-runtime=containerd --addons=metrics-server --addons=metallb --embed-certs"
                .to_string(),
            // MetalLB's pool.
            "minikube ip -p lgtm-central".to_string(),
            // The remote's start looks for the central node to take an address beside it.
            "minikube status -p lgtm-central -o json".to_string(),
            "minikube ip -p lgtm-central".to_string(),
            // The network check.
            "minikube ip -p lgtm-central".to_string(),
            kubectl("lgtm-central", "diff"),
            kubectl("lgtm-central", "apply"),
            // Is the image there already? Then load the archive and check that it arrived.
            "minikube -p lgtm-central image ls --format json".to_string(),
            format!("minikube -p lgtm-central image load {archive}"),
            "minikube -p lgtm-central image ls --format json".to_string(),
            // The link step asks for the central node's address on the shared network.
            "minikube ip -p lgtm-central".to_string(),
        ])
    );
    assert_eq!(
        sorted(calls_for(&calls, "lgtm-remote")),
        sorted(vec![
            // The central start: is the remote already on the network?
            "minikube status -p lgtm-remote -o json".to_string(),
            "minikube status -p lgtm-remote -o json".to_string(),
            "minikube start -p lgtm-remote --driver=docker --kubernetes-version=v1.35.1 --cpus=2 \
             --memory=4g --disk-size=20g --dns-domain=lgtm-remote.cluster.local --network=lgtm \
             --static-ip=192.168.49.3 --container-runtime=containerd --addons=metrics-server \
             --addons=metallb --embed-certs"
                .to_string(),
            "minikube ip -p lgtm-remote".to_string(),
            "minikube ip -p lgtm-remote".to_string(),
            kubectl("lgtm-remote", "diff"),
            kubectl("lgtm-remote", "apply"),
            "minikube -p lgtm-remote image ls --format json".to_string(),
            format!("minikube -p lgtm-remote image load {archive}"),
            "minikube -p lgtm-remote image ls --format json".to_string(),
        ])
    );
    // Built once, on this machine, not in a node; saved once for both nodes to load.
    let docker: Vec<&String> = calls.iter().filter(|c| c.starts_with("docker")).collect();
    assert_eq!(
        sorted(docker.iter().map(|c| c.to_string()).collect()),
        sorted(vec![
            "docker version --format {{.Client.Version}}".to_string(),
            // The preflight: the engine's CPUs and memory against the profiles.
            "docker info --format {{json .}}".to_string(),
            "docker image inspect --format {{.Id}} lgtm-demo-app:0.1.0".to_string(),
            "docker build -t lgtm-demo-app:0.1.0 .".to_string(),
            "docker image inspect --format {{.Id}} lgtm-demo-app:0.1.0".to_string(),
            format!("docker save -o {archive} lgtm-demo-app:0.1.0"),
            "docker container inspect --format {{json .NetworkSettings.Networks}} lgtm-central"
                .to_string(),
            "docker container inspect --format {{json .NetworkSettings.Networks}} lgtm-remote"
                .to_string(),
        ])
    );
    assert!(
        !calls.iter().any(|c| c.contains(" image build ")),
        "no node compiles: {calls:?}"
    );
    let position = |call: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(call))
            .unwrap_or_else(|| panic!("no call {call}: {calls:?}"))
    };
    let saved = position("docker save");
    for profile in ["lgtm-central", "lgtm-remote"] {
        assert!(saved < position(&format!("minikube -p {profile} image load")));
    }
    // The remote starts once the central node runs, beside it on the network; both nodes are
    // checked before the link.
    assert!(position("minikube start -p lgtm-central") < position("minikube start -p lgtm-remote"));
    assert!(
        position("docker container inspect") > position("minikube start -p lgtm-remote"),
        "{calls:?}"
    );
    assert!(position("docker container inspect") < position("linkerd --context lgtm-central"));
    // The stores install once the bucket Job is done; the link once the gateway has its address.
    let buckets = position("controller: job storage/rustfs-buckets-");
    for release in ["mimir", "loki", "tempo"] {
        assert!(
            buckets < position(&format!("helm upgrade --install {release} ")),
            "{release}: {calls:?}"
        );
    }
    assert!(
        position("controller: service linkerd-multicluster/linkerd-gateway")
            < position("linkerd --context lgtm-central multicluster link-gen"),
        "{calls:?}"
    );
    let link = setup
        .remote
        .get(
            "multicluster.linkerd.io/v1alpha3",
            "Link",
            Some("linkerd-multicluster"),
            "lgtm-central",
        )
        .expect("the link is applied to the remote");
    assert_eq!(link["spec"]["gatewayAddress"], support::deploy::GATEWAY_IP);
    // The central agent runs the copied image (the plan test checks that it waits for it).
    assert!(
        setup
            .central
            .get(
                "apps/v1",
                "Deployment",
                Some("observability"),
                "telemetry-agent"
            )
            .is_some()
    );
    assert_eq!(
        calls[0], "minikube version --short",
        "versions are checked first"
    );
    let minikube_calls = calls.iter().filter(|c| c.starts_with("minikube")).count();
    assert_eq!(minikube_calls, 23, "{calls:?}");
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
        // All but the helm repos (local helm state) and the network check (which only looks).
        stdout.contains(&format!(
            "{} of {STEPS} steps changed something, 2 unchanged",
            STEPS - 2
        )),
        "{stdout}"
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
        stderr.contains("`minikube start -p lgtm-central --driver=docker"),
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
async fn an_image_build_that_fails_quietly_is_caught() {
    // minikube logs a failed build on the node and still exits 0 (the build in a node is what
    // --image-builder cluster does).
    let setup = Setup::new().await;
    setup.tools.file("build-fails-quietly", "");
    let output = setup
        .deployer(&["remote", "--image-builder", "cluster"])
        .await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step `image lgtm-remote/lgtm-demo-app:0.1.0` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "lgtm-demo-app:0.1.0 is not in lgtm-remote after `minikube image build`, though \
             minikube reported success"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: minikube logs the cause instead of failing"),
        "{stderr}"
    );
    // The agent that would run the image was not applied.
    assert!(
        setup
            .remote
            .get(
                "apps/v1",
                "Deployment",
                Some("observability"),
                "telemetry-agent"
            )
            .is_none()
    );
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
        stderr.contains("help: install minikube (>= 1.38.1)"),
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
    // minikube 1.34 would make Kubernetes v1.31.0, below mimir-distributed's floor.
    setup.tools.file("minikube-version", "v1.34.0\n");
    let output = setup.deployer(&["all"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: minikube v1.34.0 is older than 1.38.1"),
        "{stderr}"
    );
    assert!(stderr.contains("help: upgrade minikube"), "{stderr}");
    assert_eq!(
        setup.tools.calls(),
        [
            "minikube version --short",
            "helm version --short",
            "linkerd version --client --short",
            "docker version --format {{.Client.Version}}"
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
    // Only a look: were the remote on the network, the central node would need a static IP.
    assert_eq!(
        calls_for(&calls, "lgtm-remote"),
        ["minikube status -p lgtm-remote -o json"],
        "{calls:?}"
    );
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
    // No pool written yet: said, with the fix.
    assert!(
        stdout
            .contains("  MetalLB: no pool (metallb-system/config is missing): run `deployer all`"),
        "{stdout}"
    );
    // A manual `minikube start` re-enables the addon with its unconfigured template.
    setup.central.put(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "config", "namespace": "metallb-system"},
        "data": {"config": "address-pools:\n- name: default\n  protocol: layer2\n  addresses:\n  - -\n"}
    }));
    let reset = text(&setup.deployer(&["status"]).await.stdout);
    assert!(
        reset.contains("  MetalLB: the pool is `-`, not an address range"),
        "{reset}"
    );
    let json = setup.deployer(&["status", "--output", "json"]).await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        json["clusters"][0]["metallb_problem"]
            .as_str()
            .unwrap()
            .contains("not an address range"),
        "{json}"
    );
    assert!(
        stdout.contains("lgtm-remote (lgtm-remote.cluster.local)\n  profile: not running"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_needs_confirmation_and_keeps_the_certificates() {
    let setup = Setup::new().await;
    assert!(setup.deployer(&["all"]).await.status.success());
    let kept_ip = setup.state.path().join("network/lgtm-remote.static-ip");
    assert!(kept_ip.exists());
    setup.tools.clear_calls();
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
            "minikube delete -p lgtm-remote",
            "docker network rm lgtm"
        ]
    );
    assert!(text(&output.stdout).contains("remove the lgtm network: done"));
    assert!(setup.state.path().join("certs/trust-anchor.crt").exists());
    assert!(!kept_ip.exists(), "a new profile may take any address");
    assert!(!setup.tools.root.path().join("network-lgtm").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_keeps_a_network_another_container_uses() {
    let setup = Setup::new().await;
    assert!(setup.deployer(&["all"]).await.status.success());
    // Someone else's container on the same network.
    setup.tools.file("attached-someone", "lgtm 192.168.49.50\n");
    let output = setup.deployer(&["destroy", "--yes"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("network lgtm kept: Error response from daemon: error while removing network: network lgtm id 5b0d3c7e has active endpoints"),
        "{}",
        text(&output.stdout)
    );
}
