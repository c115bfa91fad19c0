//! Checks of what helm renders from our values, read from the record that
//! `manifests/rendered/render.py` writes with a real `helm template` of every release of the plan
//! (CI has no helm and no charts, so it reads the committed record):
//! - the record is today's: the hashes of every values and object file and the releases' arguments
//!   match the repository and the plan, so a values change without a re-render fails;
//! - every workload's containers request CPU and memory and set a memory limit;
//! - the steady requests per cluster (with the Linkerd proxies injected at admission and the
//!   minikube system pods) fit the profile's CPUs and memory minus headroom;
//! - every image is pinned to a version tag.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;
use deployer::settings::{ClusterSpec, Settings};
use deployer::stack::{ClusterWorkloads, Stack};
use serde::Deserialize;
use support::repo::{relative, repo_root};

#[derive(Debug, Deserialize)]
struct Record {
    inputs: BTreeMap<String, String>,
    releases: Vec<RenderedRelease>,
    workloads: Vec<RenderedWorkload>,
}

#[derive(Debug, Deserialize)]
struct RenderedRelease {
    cluster: String,
    name: String,
    chart: String,
    version: String,
    namespace: String,
    args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RenderedWorkload {
    cluster: String,
    namespace: String,
    name: String,
    kind: String,
    replicas: u32,
    #[serde(default)]
    host_network: bool,
    #[serde(default)]
    pod_annotations: BTreeMap<String, String>,
    containers: Vec<Container>,
    helm_hook: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Container {
    name: String,
    /// `container`, `sidecar` (a native sidecar: runs beside the containers) or `init`.
    #[serde(rename = "type")]
    kind: String,
    image: Option<String>,
    #[serde(default)]
    requests: BTreeMap<String, String>,
    #[serde(default)]
    limits: BTreeMap<String, String>,
}

fn record() -> Record {
    let path = repo_root().join("manifests/rendered/record.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", relative(&path)))
}

fn default_settings() -> Settings {
    let cli = deployer::Cli::parse_from(["deployer", "all"]);
    Settings::from_args(&cli.global)
}

/// Containers the pinned charts give no resources key, with the reason they may go without.
/// Every entry must still be found, so the list cannot outlive what it excuses.
const NO_RESOURCES_KEY: &[(&str, &str, &str, &str)] = &[
    (
        "lgtm-central",
        "linkerd-gateway",
        "pause",
        "linkerd-multicluster's gateway template writes no resources for its pause container (the proxy beside it does the work)",
    ),
    (
        "lgtm-central",
        "namespace-metadata",
        "namespace-metadata",
        "linkerd-viz and linkerd-multicluster post-install Jobs (seconds long); their templates have no resources key",
    ),
    (
        "lgtm-remote",
        "namespace-metadata",
        "namespace-metadata",
        "linkerd-multicluster post-install Job (seconds long); its template has no resources key",
    ),
];

// ----- the record is today's -----

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file the record depends on: the pins and every file of manifests/central and /remote.
fn input_files() -> BTreeSet<String> {
    let mut files = BTreeSet::from(["manifests/charts.yaml".to_string()]);
    for cluster in ["central", "remote"] {
        for path in
            support::repo::files_under(&repo_root().join("manifests").join(cluster), &["yaml"])
        {
            files.insert(format!(
                "manifests/{cluster}/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    files
}

#[test]
fn the_record_was_rendered_from_todays_values_files() {
    let record = record();
    let today = input_files();
    let recorded: BTreeSet<String> = record.inputs.keys().cloned().collect();
    assert_eq!(
        recorded, today,
        "the files under manifests/ changed since the record was rendered: run manifests/rendered/render.py"
    );
    let stale: Vec<&String> = record
        .inputs
        .iter()
        .filter(|(path, hash)| {
            sha256_hex(&std::fs::read(repo_root().join(path)).unwrap()) != **hash
        })
        .map(|(path, _)| path)
        .collect();
    assert!(
        stale.is_empty(),
        "changed since manifests/rendered/record.json was rendered (run manifests/rendered/render.py): {stale:?}"
    );
}

/// The helm arguments of every release of the plan, as render.py records them from the dry-run.
fn planned_releases(
    settings: &Settings,
) -> Vec<(String, String, String, String, String, Vec<String>)> {
    let stack = Stack::current(settings);
    let mut found = Vec::new();
    for (cluster, workloads) in [
        (&settings.central, &stack.central),
        (&settings.remote, &stack.remote),
    ] {
        for release in workloads.releases() {
            let mut args = Vec::new();
            for file in &release.values_files {
                args.extend(["--values".to_string(), file.display().to_string()]);
            }
            for (key, value) in &release.set {
                args.extend(["--set".to_string(), format!("{key}={value}")]);
            }
            for (key, path) in &release.set_file {
                args.extend([
                    "--set-file".to_string(),
                    format!("{key}={}", path.display()),
                ]);
            }
            found.push((
                cluster.profile.clone(),
                release.name.clone(),
                release.chart.clone(),
                release.version.clone(),
                release.namespace.clone(),
                args,
            ));
        }
    }
    found
}

#[test]
fn the_record_has_every_release_of_the_plan_with_its_arguments() {
    let record = record();
    let recorded: Vec<_> = record
        .releases
        .iter()
        .map(|r| {
            (
                r.cluster.clone(),
                r.name.clone(),
                r.chart.clone(),
                r.version.clone(),
                r.namespace.clone(),
                r.args.clone(),
            )
        })
        .collect();
    let mut planned = planned_releases(&default_settings());
    let mut recorded_sorted = recorded.clone();
    planned.sort();
    recorded_sorted.sort();
    assert_eq!(
        recorded_sorted, planned,
        "the plan's helm releases or their --set arguments changed: run manifests/rendered/render.py"
    );
}

// ----- every workload requests CPU and memory -----

/// Helm test hooks are only created by `helm test`, never by a deploy.
fn deployed(record: &Record) -> impl Iterator<Item = &RenderedWorkload> {
    record
        .workloads
        .iter()
        .filter(|w| w.helm_hook.as_deref() != Some("test"))
}

/// Plain init containers run before the others and hold nothing while the pod runs; the pod's
/// request is the larger of the biggest init container and the sum of the rest, so an init container
/// without a request cannot make the pod ask for less than its containers do.
fn runs_with_the_pod(container: &Container) -> bool {
    container.kind != "init"
}

/// `(cluster workload/container, what is missing)` for containers without a CPU or memory request
/// or a memory limit, leaving out those `excused` names.
fn missing_resources(
    workloads: &[RenderedWorkload],
    excused: &[(&str, &str, &str, &str)],
) -> Vec<String> {
    let mut problems = Vec::new();
    for w in workloads {
        for c in w.containers.iter().filter(|c| runs_with_the_pod(c)) {
            if excused.iter().any(|(cluster, name, container, _)| {
                *cluster == w.cluster && *name == w.name && *container == c.name
            }) {
                continue;
            }
            let mut missing = Vec::new();
            for resource in ["cpu", "memory"] {
                if !c.requests.contains_key(resource) {
                    missing.push(format!("requests.{resource}"));
                }
            }
            if !c.limits.contains_key("memory") {
                missing.push("limits.memory".to_string());
            }
            if !missing.is_empty() {
                problems.push(format!(
                    "{} {}/{} {}: {}",
                    w.cluster,
                    w.namespace,
                    w.name,
                    c.name,
                    missing.join(", ")
                ));
            }
        }
    }
    problems
}

#[test]
fn every_rendered_container_requests_cpu_and_memory_and_has_a_memory_limit() {
    let record = record();
    let workloads: Vec<RenderedWorkload> = deployed(&record).cloned().collect();
    assert!(
        workloads.len() >= 50,
        "only {} workloads in the record",
        workloads.len()
    );
    let problems = missing_resources(&workloads, NO_RESOURCES_KEY);
    assert!(problems.is_empty(), "{problems:#?}");
    for (cluster, name, container, why) in NO_RESOURCES_KEY {
        let found = workloads.iter().any(|w| {
            w.cluster == *cluster
                && w.name == *name
                && w.containers
                    .iter()
                    .any(|c| c.name == *container && c.requests.is_empty())
        });
        assert!(
            found,
            "{cluster} {name}/{container} is excused ({why}) but no longer lacks requests: drop it from NO_RESOURCES_KEY"
        );
    }
}

#[test]
fn the_check_finds_a_container_without_requests() {
    let record = record();
    let mut workload = deployed(&record)
        .find(|w| w.name == "mimir-ingester")
        .unwrap()
        .clone();
    assert!(missing_resources(std::slice::from_ref(&workload), &[]).is_empty());
    workload.containers[0].requests.remove("memory");
    workload.containers[0].limits.clear();
    assert_eq!(
        missing_resources(&[workload], &[]),
        ["lgtm-central mimir/mimir-ingester ingester: requests.memory, limits.memory"]
    );
}

// ----- the sums fit the profiles -----

/// Millicores.
fn cpu(quantity: &str) -> u64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse().unwrap(),
        None => (quantity.parse::<f64>().unwrap() * 1000.0).round() as u64,
    }
}

/// MiB, from a Kubernetes quantity (`64Mi`, `1Gi`, `512M`, bytes) or minikube's `16g` / `4096m`.
fn mib(quantity: &str) -> u64 {
    let units: [(&str, f64); 8] = [
        ("Ki", 1.0 / 1024.0),
        ("Mi", 1.0),
        ("Gi", 1024.0),
        ("k", 1000.0 / 1_048_576.0),
        ("M", 1_000_000.0 / 1_048_576.0),
        ("G", 1_000_000_000.0 / 1_048_576.0),
        ("g", 1024.0),
        ("m", 1.0),
    ];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return (number.parse::<f64>().unwrap() * factor).round() as u64;
        }
    }
    (quantity.parse::<f64>().unwrap() / 1_048_576.0).round() as u64
}

/// What the minikube node's own pods request (they come with the node, not with the plan):
/// kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd 100m + 100Mi
/// (kubeadm's static pods), coredns 100m + 70Mi (kubeadm), kindnet 100m + 50Mi (minikube's CNI
/// with containerd: pkg/minikube/cni/kindnet.go), metrics-server 100m + 200Mi
/// (deploy/addons/metrics-server), metallb v0.9.6 controller and speaker with limits of 100m +
/// 100Mi each, which are their requests (deploy/addons/metallb/metallb.yaml.tmpl).
const SYSTEM_CPU_MILLI: u64 = 250 + 200 + 100 + 100 + 100 + 100 + 100 + 100 + 100;
const SYSTEM_MEMORY_MIB: u64 = 100 + 70 + 50 + 200 + 100 + 100;
/// Share of what is left after the system pods that the stack may request: the rest is for
/// bursts over requests, rollouts (a second pod while the first stops) and Jobs.
const HEADROOM_PERCENT: u64 = 20;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Requests {
    cpu_milli: u64,
    memory_mib: u64,
}

impl std::ops::AddAssign for Requests {
    fn add_assign(&mut self, other: Self) {
        self.cpu_milli += other.cpu_milli;
        self.memory_mib += other.memory_mib;
    }
}

fn container_requests(c: &Container) -> Requests {
    Requests {
        cpu_milli: c.requests.get("cpu").map_or(0, |q| cpu(q)),
        memory_mib: c.requests.get("memory").map_or(0, |q| mib(q)),
    }
}

/// The proxy linkerd-control-plane injects, as rendered into its own destination pod (the same
/// `proxy.resources` the injector uses).
fn proxy_requests(record: &Record, cluster: &str) -> Requests {
    let destination = record
        .workloads
        .iter()
        .find(|w| w.cluster == cluster && w.name == "linkerd-destination")
        .expect("linkerd-destination is rendered");
    let proxy = destination
        .containers
        .iter()
        .find(|c| c.name == "linkerd-proxy")
        .expect("the destination pod has its proxy");
    container_requests(proxy)
}

/// Whether the proxy injector adds a proxy at admission: a meshed namespace (annotated by the
/// deployer) or a pod annotated `enabled`, unless the pod says `disabled`, the chart already
/// rendered one, or the pod is on the host's network.
fn injected(w: &RenderedWorkload, meshed: &ClusterWorkloads) -> bool {
    let annotation = w
        .pod_annotations
        .get("linkerd.io/inject")
        .map(String::as_str);
    let wanted = annotation == Some("enabled")
        || (meshed.namespaces.contains(&w.namespace) && annotation != Some("disabled"));
    wanted && !w.host_network && !w.containers.iter().any(|c| c.name == "linkerd-proxy")
}

/// What the pods that run for as long as the stack does request: Deployments, StatefulSets,
/// DaemonSets (one node) and the operator's Prometheus, with their injected proxies. Jobs and
/// CronJobs come and go inside the headroom.
fn steady_requests(record: &Record, cluster: &ClusterSpec, meshed: &ClusterWorkloads) -> Requests {
    let proxy = proxy_requests(record, &cluster.profile);
    let mut total = Requests::default();
    for w in deployed(record).filter(|w| w.cluster == cluster.profile) {
        if !matches!(
            w.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "Prometheus"
        ) {
            continue;
        }
        let mut pod = Requests::default();
        for c in w.containers.iter().filter(|c| runs_with_the_pod(c)) {
            pod += container_requests(c);
        }
        if injected(w, meshed) {
            pod += proxy;
        }
        for _ in 0..w.replicas {
            total += pod;
        }
    }
    total
}

fn budget(cluster: &ClusterSpec) -> Requests {
    let keep =
        |total: u64, system: u64| total.saturating_sub(system) * (100 - HEADROOM_PERCENT) / 100;
    Requests {
        cpu_milli: keep(u64::from(cluster.cpus) * 1000, SYSTEM_CPU_MILLI),
        memory_mib: keep(mib(&cluster.memory), SYSTEM_MEMORY_MIB),
    }
}

fn over_budget(used: Requests, budget: Requests) -> Vec<String> {
    let mut problems = Vec::new();
    if used.cpu_milli > budget.cpu_milli {
        problems.push(format!("CPU {}m > {}m", used.cpu_milli, budget.cpu_milli));
    }
    if used.memory_mib > budget.memory_mib {
        problems.push(format!(
            "memory {}Mi > {}Mi",
            used.memory_mib, budget.memory_mib
        ));
    }
    problems
}

#[test]
fn the_requests_of_each_cluster_fit_its_profile_minus_headroom() {
    let record = record();
    let settings = default_settings();
    let stack = Stack::current(&settings);
    let mut problems = Vec::new();
    for (cluster, meshed) in [
        (&settings.central, &stack.central),
        (&settings.remote, &stack.remote),
    ] {
        let used = steady_requests(&record, cluster, meshed);
        let budget = budget(cluster);
        // Printed for the manifests README's table (cargo test -- --nocapture).
        println!(
            "{}: requests {}m CPU, {}Mi memory; budget {}m, {}Mi ({} CPUs, {} minus the system pods' {}m, {}Mi, minus {}%)",
            cluster.profile,
            used.cpu_milli,
            used.memory_mib,
            budget.cpu_milli,
            budget.memory_mib,
            cluster.cpus,
            cluster.memory,
            SYSTEM_CPU_MILLI,
            SYSTEM_MEMORY_MIB,
            HEADROOM_PERCENT
        );
        assert!(used.cpu_milli > 0 && used.memory_mib > 0);
        for problem in over_budget(used, budget) {
            problems.push(format!("{}: {problem}", cluster.profile));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_sum_counts_injected_proxies_and_fails_above_the_budget() {
    let record = record();
    let settings = default_settings();
    let stack = Stack::current(&settings);
    let with_proxies = steady_requests(&record, &settings.remote, &stack.remote);
    let unmeshed = ClusterWorkloads::default();
    let without = steady_requests(&record, &settings.remote, &unmeshed);
    assert!(
        with_proxies.cpu_milli > without.cpu_milli,
        "meshed namespaces add their proxies' requests"
    );
    let mut small = settings.remote.clone();
    small.cpus = 1;
    small.memory = "1g".to_string();
    assert_eq!(
        over_budget(with_proxies, budget(&small)),
        [
            format!("CPU {}m > 0m", with_proxies.cpu_milli),
            format!("memory {}Mi > 323Mi", with_proxies.memory_mib)
        ]
    );
}

// ----- images -----

/// The tag of an image reference (`repo:tag`, `repo:tag@sha256:...`), or None.
fn tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap();
    let last = name.rsplit('/').next().unwrap();
    last.split_once(':').map(|(_, tag)| tag)
}

#[test]
fn every_deployed_image_is_pinned_to_a_version() {
    let record = record();
    let mut problems = Vec::new();
    for w in deployed(&record) {
        for c in &w.containers {
            let image = c.image.as_deref().unwrap_or("");
            let pinned = tag(image).is_some_and(|t| {
                !["latest", "stable", "edge", "main"].contains(&t)
                    && t.chars().any(|ch| ch.is_ascii_digit())
            });
            if !pinned {
                problems.push(format!(
                    "{} {}/{} {}: `{image}`",
                    w.cluster, w.namespace, w.name, c.name
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "images without a version tag: {problems:#?}"
    );
    assert_eq!(tag("busybox:stable"), Some("stable"));
    assert_eq!(tag("registry:5000/a/b"), None);
    assert_eq!(tag("quay.io/x/y:v1.2@sha256:ab"), Some("v1.2"));
}
