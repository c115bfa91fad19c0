//! What goes into each cluster, as data. The plan turns this into steps; adding a chart or a
//! manifest to the stack is adding a value here. Chart versions come from `manifests/charts.yaml`
//! ([`crate::pins`]); values live in `manifests/<cluster>/`; only what depends on the settings
//! (cluster domain, certificate paths) is added here as `--set` / `--set-file`.

mod central;
pub mod endpoints;
mod remote;

use std::path::PathBuf;

use crate::helm::{HelmRelease, HelmRepo};
use crate::pins::ChartPins;
use crate::settings::{ClusterSpec, Settings};

/// A file of Kubernetes objects (multi-document YAML), applied server-side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Short name for the step ("grafana-dashboards").
    pub name: String,
    pub path: PathBuf,
    /// For namespaced objects that name none.
    pub namespace: String,
}

/// A Secret whose values the deployer generates once and keeps in the state folder
/// ([`crate::credentials`]), so no password is ever written in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSecret {
    pub name: String,
    pub namespace: String,
    pub entries: Vec<SecretEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEntry {
    pub key: String,
    pub value: SecretValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// Not secret (e.g. the user name `admin`).
    Fixed(String),
    /// The credential of this name in the state folder, made on first use.
    Generated(String),
}

/// A manifest published by its project as a release asset, applied by URL (server-side) with the
/// kubectl that minikube provides, so the user installs no kubectl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteManifest {
    pub name: String,
    pub url: String,
}

/// The demo-app image, built from the repository's Dockerfile straight into a cluster's node
/// (`minikube image build`), so pods run it with `imagePullPolicy: Never` and no registry. As a
/// workload it means "the image is in this cluster before what follows"; the plan builds it once
/// and copies it into the other clusters that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBuild {
    /// `lgtm-demo-app:<demo-app crate version>`, never `latest`.
    pub tag: String,
    /// The build context: the repository root.
    pub context: PathBuf,
}

impl ImageBuild {
    pub fn demo_app() -> Self {
        ImageBuild {
            tag: format!("lgtm-demo-app:{}", demo_app_version()),
            context: PathBuf::from("."),
        }
    }

    /// The archive the image is copied between clusters in: `lgtm-demo-app-0.1.0.tar`.
    pub fn archive_file_name(&self) -> String {
        format!("{}.tar", self.tag.replace([':', '/'], "-"))
    }
}

/// The demo-app crate's version, read from its Cargo.toml at compile time, so the image tag the
/// manifests use (checked by the tests) and the one built are the same.
pub fn demo_app_version() -> &'static str {
    const CARGO_TOML: &str = include_str!("../../demo-app/Cargo.toml");
    CARGO_TOML
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("demo-app/Cargo.toml has a version line")
}

/// Grafana dashboards: every `*.json` of a folder in one ConfigMap, labelled for the Grafana
/// sidecar (kube-prometheus-stack's `grafana.sidecar.dashboards`) that loads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboards {
    pub name: String,
    pub namespace: String,
    pub dir: PathBuf,
}

/// One thing installed into a cluster, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    Manifest(ManifestFile),
    Release(HelmRelease),
    Secret(GeneratedSecret),
    Remote(RemoteManifest),
    Image(ImageBuild),
    Dashboards(Dashboards),
    /// Installed at the same time, after what comes before; what follows waits for all of them.
    SideBySide(Vec<Workload>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterWorkloads {
    /// Created first, annotated for Linkerd injection.
    pub namespaces: Vec<String>,
    /// Installed one after the other, after the namespaces.
    pub workloads: Vec<Workload>,
}

impl ClusterWorkloads {
    /// Every workload, the members of side-by-side groups included, in order.
    pub fn each(&self) -> impl Iterator<Item = &Workload> {
        self.workloads.iter().flat_map(|workload| match workload {
            Workload::SideBySide(members) => members.iter().collect::<Vec<_>>(),
            single => vec![single],
        })
    }

    /// The helm releases, the members of side-by-side groups included, in order.
    pub fn releases(&self) -> impl Iterator<Item = &HelmRelease> {
        self.each().filter_map(|workload| match workload {
            Workload::Release(release) => Some(release),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    pub repos: Vec<HelmRepo>,
    pub central: ClusterWorkloads,
    pub remote: ClusterWorkloads,
    /// Link the remote to the central cluster (`deployer all` only) once both have their
    /// workloads; needs linkerd-multicluster in both, which the stack's charts install.
    pub link: bool,
}

impl Stack {
    /// The whole PoC of DESIGN.md section 1 for these settings.
    pub fn current(settings: &Settings) -> Self {
        let pins = ChartPins::pinned();
        let context = Context {
            pins: &pins,
            settings,
        };
        Stack {
            repos: pins.helm_repos(),
            central: central::workloads(&context),
            remote: remote::workloads(&context),
            link: true,
        }
    }
}

/// What the per-cluster builders need.
struct Context<'a> {
    pins: &'a ChartPins,
    settings: &'a Settings,
}

impl Context<'_> {
    /// A release of a pinned chart with its values file `manifests/<folder>/<values>.yaml`.
    fn release(
        &self,
        cluster: &ClusterSpec,
        name: &str,
        namespace: &str,
        chart: &str,
    ) -> HelmRelease {
        let mut release = self.pins.release(name, namespace, chart);
        release
            .values_files
            .push(values_path(cluster, &values_file_name(name)));
        release
    }

    /// The Prometheus Operator's CRDs before linkerd-control-plane, whose PodMonitors need them
    /// (kube-prometheus-stack comes later, after Linkerd, so that its pods are meshed). No values
    /// file: the chart's defaults are what we want. It adopts the CRDs kube-prometheus-stack's own
    /// `crds/` folder made on clusters deployed before this release existed.
    fn monitor_crds(&self) -> Workload {
        let mut release =
            self.pins
                .release("monitor-crds", "observability", "prometheus-operator-crds");
        release.take_ownership = true;
        Workload::Release(release)
    }

    /// The Gateway API CRDs, which Linkerd needs before linkerd-crds.
    fn gateway_api(&self) -> Workload {
        let pin = self.pins.manifest_release("gateway-api");
        Workload::Remote(RemoteManifest {
            name: format!("gateway-api-{}", pin.version),
            url: pin.url.clone(),
        })
    }

    fn manifest(&self, cluster: &ClusterSpec, name: &str, namespace: &str) -> Workload {
        Workload::Manifest(ManifestFile {
            name: name.to_string(),
            path: values_path(cluster, &format!("{name}.yaml")),
            namespace: namespace.to_string(),
        })
    }

    /// linkerd-control-plane with the shared anchor and this cluster's issuer and domain.
    fn linkerd_control_plane(&self, cluster: &ClusterSpec) -> HelmRelease {
        let mut release = self.release(
            cluster,
            "linkerd-control-plane",
            "linkerd",
            "linkerd-control-plane",
        );
        let certs = self.settings.certs_dir();
        set_domain(
            &mut release,
            cluster,
            &["clusterDomain", "identityTrustDomain"],
        );
        release.set_file.extend([
            (
                "identityTrustAnchorsPEM".to_string(),
                certs.join("trust-anchor.crt"),
            ),
            (
                "identity.issuer.tls.crtPEM".to_string(),
                certs.join(format!("issuer-{}.crt", cluster.profile)),
            ),
            (
                "identity.issuer.tls.keyPEM".to_string(),
                certs.join(format!("issuer-{}.key", cluster.profile)),
            ),
        ]);
        release
    }
}

/// Release names map to values files; the Prometheus release is `monitor`, the log shipper's
/// values are named after its chart.
fn values_file_name(release: &str) -> String {
    match release {
        "log-shipper" => "vector.yaml".to_string(),
        other => format!("{other}.yaml"),
    }
}

fn values_path(cluster: &ClusterSpec, file: &str) -> PathBuf {
    let folder = match cluster.role {
        crate::settings::Role::Central => "central",
        crate::settings::Role::Remote => "remote",
    };
    PathBuf::from("manifests").join(folder).join(file)
}

/// Sets each of `keys` to the cluster's DNS domain (never hard-coded: each cluster has its own).
fn set_domain(release: &mut HelmRelease, cluster: &ClusterSpec, keys: &[&str]) {
    for key in keys {
        release.set.push((key.to_string(), cluster.domain.clone()));
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
