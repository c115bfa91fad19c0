//! The cluster layer against fakes that behave as minikube v1.38.1 does with two profiles on one
//! docker network (pkg/drivers/kic/kic.go, pkg/drivers/kic/oci/network_create.go and oci.go,
//! cmd/minikube/cmd/start.go), and the Kubernetes version the charts need.

mod support;

use std::process::Output;

use deployer::pins::ChartPins;
use deployer::tools::is_older;
use support::deploy::{Setup, text};
use support::fake_tools::FakeTools;

/// Runs the fake minikube as the deployer would.
fn minikube(tools: &FakeTools, args: &[&str]) -> std::process::Child {
    std::process::Command::new(tools.bin().join("minikube"))
        .args(args)
        .env("PATH", tools.path_env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: std::process::Child) -> Output {
    child.wait_with_output().unwrap()
}

fn read(tools: &FakeTools, file: &str) -> String {
    std::fs::read_to_string(tools.root.path().join(file))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn the_fake_refuses_a_second_node_at_the_first_ones_address_as_minikube_does() {
    let tools = FakeTools::new();
    let first = finished(minikube(
        &tools,
        &["start", "-p", "lgtm-central", "--network=lgtm"],
    ));
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(read(&tools, "ip-lgtm-central"), "192.168.49.2");

    // What the deployer did before: the second profile on the same network, no static IP.
    let second = finished(minikube(
        &tools,
        &["start", "-p", "lgtm-remote", "--network=lgtm"],
    ));
    assert_eq!(second.status.code(), Some(80));
    assert!(
        text(&second.stderr).contains("can't create with that IP, address already in use"),
        "{}",
        text(&second.stderr)
    );

    let beside = finished(minikube(
        &tools,
        &[
            "start",
            "-p",
            "lgtm-remote",
            "--network=lgtm",
            "--static-ip=192.168.49.3",
        ],
    ));
    assert!(beside.status.success(), "{}", text(&beside.stderr));
    assert_eq!(read(&tools, "attached-lgtm-remote"), "lgtm 192.168.49.3");

    // A static IP outside the network's subnet is refused by the engine.
    let elsewhere = finished(minikube(
        &tools,
        &[
            "start",
            "-p",
            "other",
            "--network=lgtm",
            "--static-ip=10.1.2.3",
        ],
    ));
    assert!(!elsewhere.status.success());
    assert!(text(&elsewhere.stderr).contains("does not belong to any of this network's subnets"));
}

#[test]
fn the_fake_refuses_more_cpus_than_docker_has_as_minikube_does() {
    let tools = FakeTools::new();
    tools.file(
        "docker-info.json",
        r#"{"NCPU":4,"MemTotal":8589934592,"OSType":"linux"}"#,
    );
    let refused = finished(minikube(
        &tools,
        &["start", "-p", "lgtm-central", "--cpus=6", "--network=lgtm"],
    ));
    assert_eq!(refused.status.code(), Some(29));
    assert!(
        text(&refused.stderr).contains(
            "RSRC_INSUFFICIENT_CORES: Requested cpu count 6 is greater than the available cpus of 4"
        ),
        "{}",
        text(&refused.stderr)
    );
    let fits = finished(minikube(
        &tools,
        &["start", "-p", "lgtm-central", "--cpus=4", "--network=lgtm"],
    ));
    assert!(fits.status.success(), "{}", text(&fits.stderr));
}

/// Two starts at once: the remote's start runs while the central's is creating the network.
fn start_both_at_once(tools: &FakeTools) {
    tools.file("creating-network-lgtm", "");
    let remote = finished(minikube(
        tools,
        &["start", "-p", "lgtm-remote", "--network=lgtm"],
    ));
    assert!(remote.status.success(), "minikube only warns");
    assert!(text(&remote.stderr).contains("Unable to create dedicated network"));
    std::fs::remove_file(tools.root.path().join("creating-network-lgtm")).unwrap();
    let central = finished(minikube(
        tools,
        &["start", "-p", "lgtm-central", "--network=lgtm"],
    ));
    assert!(central.status.success());
}

#[test]
fn two_starts_at_once_put_one_node_on_the_default_bridge_without_failing() {
    let tools = FakeTools::new();
    start_both_at_once(&tools);
    assert_eq!(read(&tools, "attached-lgtm-remote"), "bridge 172.17.0.2");
    assert_eq!(read(&tools, "attached-lgtm-central"), "lgtm 192.168.49.2");
    // With a static IP, failing to create the network is fatal instead.
    tools.file("creating-network-other", "");
    let fatal = finished(minikube(
        &tools,
        &[
            "start",
            "-p",
            "x",
            "--network=other",
            "--static-ip=192.168.70.3",
        ],
    ));
    assert!(!fatal.status.success());
    assert!(text(&fatal.stderr).contains("IF_DEDICATED_NETWORK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_joins_a_running_central_with_a_static_ip_it_keeps() {
    let setup = Setup::new().await;
    let central = finished(minikube(
        &setup.tools,
        &["start", "-p", "lgtm-central", "--network=lgtm"],
    ));
    assert!(central.status.success());
    setup.tools.clear_calls();

    let output = setup.deployer(&["remote"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let calls = setup.tools.calls();
    let start = calls
        .iter()
        .find(|c| c.starts_with("minikube start -p lgtm-remote"))
        .unwrap();
    assert!(start.contains(" --static-ip=192.168.49.3 "), "{start}");
    let kept = setup.state.path().join("network/lgtm-remote.static-ip");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "192.168.49.3\n");

    // Deleted by hand and started again: the same address, as minikube would keep it anyway.
    std::fs::write(&kept, "192.168.49.9\n").unwrap();
    assert!(
        finished(minikube(&setup.tools, &["delete", "-p", "lgtm-remote"]))
            .status
            .success()
    );
    setup.tools.clear_calls();
    let again = setup.deployer(&["remote"]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        setup
            .tools
            .calls()
            .iter()
            .any(|c| c.starts_with("minikube start -p lgtm-remote")
                && c.contains(" --static-ip=192.168.49.9 ")),
        "{:?}",
        setup.tools.calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_the_default_bridge_stops_the_deploy_before_the_link() {
    let setup = Setup::new().await;
    // Both profiles run, made by two starts at once: the remote landed on the default bridge.
    start_both_at_once(&setup.tools);

    let output = setup.deployer(&["all"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: step `network lgtm` failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "lgtm-remote's node (172.17.0.2) is not on network `lgtm` (attached to: bridge \
             (172.17.0.2)), so the clusters cannot reach each other"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: minikube could not put the node on the shared network")
            && stderr.contains("`minikube delete -p lgtm-remote`"),
        "{stderr}"
    );
    assert!(
        !setup
            .tools
            .calls()
            .iter()
            .any(|c| c.contains("multicluster link-gen")),
        "no link is made between clusters that cannot reach each other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_running_an_older_kubernetes_is_refused_before_any_chart() {
    let setup = Setup::new().await;
    // A profile made by minikube 1.34 without --kubernetes-version.
    setup.tools.file("minikube-version", "v1.34.0\n");
    let old = finished(minikube(
        &setup.tools,
        &["start", "-p", "lgtm-central", "--network=lgtm"],
    ));
    assert!(old.status.success());
    assert_eq!(read(&setup.tools, "k8s-lgtm-central"), "v1.31.0");
    setup.tools.file("minikube-version", "v1.38.1\n");
    setup.tools.clear_calls();

    let output = setup.deployer(&["central"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "lgtm-central runs Kubernetes v1.31.0, older than v1.32.0, the oldest the pinned \
             charts accept"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("`minikube delete -p lgtm-central`") && stderr.contains("v1.35.1"),
        "{stderr}"
    );
    let calls = setup.tools.calls();
    assert!(
        !calls.iter().any(|c| c.starts_with("helm upgrade")),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_profile_gets_the_pinned_kubernetes_whatever_minikube_defaults_to() {
    let setup = Setup::new().await;
    // A newer minikube whose own default moved on.
    setup.tools.file("minikube-version", "v1.39.0\n");
    let output = setup.deployer(&["central"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(read(&setup.tools, "k8s-lgtm-central"), "v1.35.1");
}

/// Each pinned chart's `kubeVersion` (its Chart.yaml in ../shared/upstream) accepts the pinned
/// Kubernetes version, and `kubernetes.minimum` is the highest of their floors.
#[test]
fn the_pinned_kubernetes_version_meets_every_chart_floor() {
    let pins = ChartPins::pinned();
    let upstream = support::repo::upstream_dir().join("charts");
    let mut floors = Vec::new();
    for chart in &pins.charts {
        let path = upstream
            .join(format!("{}-{}", chart.name, chart.version))
            .join("Chart.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some(constraint) = text
            .lines()
            .find_map(|l| l.strip_prefix("kubeVersion:"))
            .map(|c| c.trim().trim_matches(['"', '\'']).to_string())
        else {
            continue;
        };
        // The charts write `>=1.31.0-0`, `>= 1.22.0-0` or `^1.32.0-0`: a floor, and for `^`
        // the same major.
        let floor = constraint
            .trim_start_matches(['>', '=', '^', ' '])
            .trim_end_matches("-0")
            .to_string();
        assert_eq!(
            is_older(&pins.kubernetes.version, &floor),
            Some(false),
            "{} {} needs {constraint}",
            chart.name,
            chart.version
        );
        if constraint.starts_with('^') {
            assert_eq!(
                pins.kubernetes
                    .version
                    .trim_start_matches('v')
                    .split('.')
                    .next(),
                floor.split('.').next(),
                "{constraint}"
            );
        }
        floors.push((floor, chart.name.clone()));
    }
    assert!(floors.len() >= 10, "too few charts checked: {floors:?}");
    let highest = floors
        .iter()
        .map(|(f, _)| f)
        .max_by(|a, b| match is_older(a, b) {
            Some(true) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        })
        .unwrap();
    assert_eq!(
        pins.kubernetes.minimum.trim_start_matches('v'),
        highest.as_str(),
        "{floors:?}"
    );
}
