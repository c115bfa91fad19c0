//! Adding charts, manifests and the link to the stack is only data: the plan orders the new steps
//! and the engine runs them (helm and linkerd faked, Kubernetes behind fake API servers).

mod support;

use std::time::Duration;

use clap::Parser;
use deployer::engine::{PlainProgress, run_plan};
use deployer::helm::{HelmRelease, HelmRepo};
use deployer::plan::describe::render_plan;
use deployer::plan::{Target, build_plan, required_tools};
use deployer::settings::Settings;
use deployer::stack::{ManifestFile, Stack, Workload};
use deployer::steps::Deployer;
use deployer::tools::{Tool, Toolbox};
use support::fake_api::{FakeApi, kubeconfig};
use support::fake_tools::FakeTools;

const LINK: &str = "apiVersion: multicluster.linkerd.io/v1alpha3
kind: Link
metadata:
  name: lgtm-central
spec:
  targetClusterName: lgtm-central
  targetClusterDomain: lgtm-central.cluster.local
";

fn stack(manifest: &std::path::Path) -> Stack {
    // A small stack of its own (the real one names files under manifests/ and many releases).
    let namespaces = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    let mut stack = Stack {
        central: deployer::stack::ClusterWorkloads {
            namespaces: namespaces(&["mimir", "loki", "tempo"]),
            workloads: Vec::new(),
        },
        remote: deployer::stack::ClusterWorkloads {
            namespaces: namespaces(&["demo", "mimir", "loki", "tempo"]),
            workloads: Vec::new(),
        },
        ..Stack::default()
    };
    stack.repos.push(HelmRepo {
        name: "linkerd".into(),
        url: "https://helm.linkerd.io/edge".into(),
    });
    let mut control_plane = HelmRelease::new(
        "linkerd-control-plane",
        "linkerd",
        "linkerd/linkerd-control-plane",
        "2026.8.3",
    );
    control_plane.set_file.push((
        "identityTrustAnchorsPEM".into(),
        ".state/certs/trust-anchor.crt".into(),
    ));
    control_plane.timeout = Some(Duration::from_secs(600));
    for cluster in [&mut stack.central, &mut stack.remote] {
        cluster.workloads.push(Workload::Release(HelmRelease::new(
            "linkerd-crds",
            "linkerd",
            "linkerd/linkerd-crds",
            "2026.8.3",
        )));
        cluster
            .workloads
            .push(Workload::Release(control_plane.clone()));
    }
    stack
        .central
        .workloads
        .push(Workload::Manifest(ManifestFile {
            name: "settings".into(),
            path: manifest.to_path_buf(),
            namespace: "mimir".into(),
        }));
    stack.link = true;
    stack
}

fn settings(kubeconfig: &std::path::Path, state: &std::path::Path) -> Settings {
    let cli = deployer::Cli::parse_from([
        "deployer".as_ref(),
        "all".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--wait-timeout".as_ref(),
        "2m".as_ref(),
    ]);
    Settings::from_args(&cli.global)
}

#[test]
fn the_plan_orders_new_steps() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("settings.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n",
    )
    .unwrap();
    let settings = settings(&dir.path().join("kubeconfig"), dir.path());
    let plan = build_plan(&settings, &stack(&manifest), Target::All).unwrap();
    let names: Vec<&str> = plan.steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "certificates",
            "helm repos",
            "start lgtm-central",
            "metallb lgtm-central",
            "namespaces lgtm-central",
            "start lgtm-remote",
            "metallb lgtm-remote",
            "namespaces lgtm-remote",
            "network lgtm",
            "release lgtm-central/linkerd-crds",
            "release lgtm-central/linkerd-control-plane",
            "manifest lgtm-central/settings",
            "release lgtm-remote/linkerd-crds",
            "release lgtm-remote/linkerd-control-plane",
            "link lgtm-remote to lgtm-central",
        ]
    );
    let control_plane = &plan.steps()[10];
    assert_eq!(
        control_plane.depends_on,
        [
            "certificates",
            "helm repos",
            "metallb lgtm-central",
            "release lgtm-central/linkerd-crds"
        ]
    );
    let link = plan.steps().last().unwrap();
    assert!(
        link.depends_on
            .contains(&"manifest lgtm-central/settings".to_string())
    );
    assert!(
        link.depends_on
            .contains(&"release lgtm-remote/linkerd-control-plane".to_string())
    );
    assert_eq!(
        required_tools(&plan, &settings),
        [Tool::Minikube, Tool::Helm, Tool::Linkerd, Tool::Docker]
    );
    let text = render_plan(&plan, &settings, "all");
    assert!(text.contains(
        "$ helm upgrade --install linkerd-control-plane linkerd/linkerd-control-plane --version 2026.8.3 \
         --namespace linkerd --create-namespace --kube-context lgtm-remote \
         --set-file identityTrustAnchorsPEM=.state/certs/trust-anchor.crt --wait --timeout 600s"
    ), "{text}");
    assert!(
        text.contains("--kube-context lgtm-central --wait --timeout 120s"),
        "{text}"
    );
    assert!(text.contains("$ linkerd --context lgtm-central multicluster link-gen --cluster-name lgtm-central --api-server-address 'https://<ip of lgtm-central>:8443'"), "{text}");
    assert!(text.contains("     kind: ConfigMap"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_new_steps() {
    let tools = FakeTools::new();
    tools.file("out-linkerd", LINK);
    let central = FakeApi::start().await;
    let remote = FakeApi::start().await;
    remote.install_linkerd_multicluster();
    support::deploy::central_controllers(&central, &tools);
    tools.file(
        "kubeconfig",
        &kubeconfig(&[("lgtm-central", &central.url), ("lgtm-remote", &remote.url)]),
    );
    let manifest = tools.root.path().join("settings.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\n",
    )
    .unwrap();
    let settings = settings(
        &tools.root.path().join("kubeconfig"),
        &tools.root.path().join("state"),
    );
    let plan = build_plan(&settings, &stack(&manifest), Target::All).unwrap();
    let toolbox = Toolbox::find(required_tools(&plan, &settings), Some(&tools.path_env())).unwrap();
    let deployer = Deployer::new(settings, toolbox);

    let summary = run_plan(&plan, &deployer, &PlainProgress::silent())
        .await
        .unwrap();
    assert_eq!(summary.results.len(), 15);

    let calls = tools.calls();
    let helm: Vec<&String> = calls.iter().filter(|c| c.starts_with("helm")).collect();
    assert_eq!(
        helm[0],
        "helm repo add --force-update linkerd https://helm.linkerd.io/edge"
    );
    assert_eq!(helm[1], "helm repo update linkerd");
    assert_eq!(
        helm.len(),
        10,
        "repos once, then two releases per cluster, each looked up and installed: {helm:?}"
    );
    let central_releases: Vec<&&String> = helm
        .iter()
        .filter(|c| c.contains("--kube-context lgtm-central") && c.starts_with("helm upgrade"))
        .collect();
    assert!(central_releases[0].starts_with("helm upgrade --install linkerd-crds "));
    assert!(central_releases[1].starts_with("helm upgrade --install linkerd-control-plane "));
    assert_eq!(
        calls.last().unwrap(),
        "linkerd --context lgtm-central multicluster link-gen --cluster-name lgtm-central \
         --api-server-address https://192.168.49.2:8443"
    );
    assert!(central.get("v1", "ConfigMap", Some("mimir"), "s").is_some());
    let link = remote
        .get(
            "multicluster.linkerd.io/v1alpha3",
            "Link",
            Some("linkerd-multicluster"),
            "lgtm-central",
        )
        .expect("the link was applied to the remote cluster");
    assert_eq!(
        link["spec"]["targetClusterDomain"],
        "lgtm-central.cluster.local"
    );
}
