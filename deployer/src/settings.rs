//! What the deployer works with, resolved once from the command line (see [`crate::cli`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::retention::Retention;

/// Which of the two clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Central,
    Remote,
}

impl Role {
    /// The last octets of the MetalLB pool, on the network of `minikube ip`. The two ranges do not
    /// overlap, so both clusters can share one minikube network.
    pub fn pool_octets(self) -> (u8, u8) {
        match self {
            Role::Central => (201, 210),
            Role::Remote => (211, 220),
        }
    }
}

/// The minikube driver. Only the two container drivers are offered: both clusters join one
/// container network (`minikube start --network`, which only these drivers implement), so each
/// reaches the other's node, gateway and LoadBalancer pool on Linux and macOS alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    Docker,
    Podman,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Docker => "docker",
            Driver::Podman => "podman",
        }
    }

    /// The container engine's CLI, which the driver needs and which builds the image.
    pub fn tool(self) -> crate::tools::Tool {
        match self {
            Driver::Docker => crate::tools::Tool::Docker,
            Driver::Podman => crate::tools::Tool::Podman,
        }
    }
}

impl std::str::FromStr for Driver {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "docker" => Ok(Driver::Docker),
            "podman" => Ok(Driver::Podman),
            other => Err(format!(
                "minikube driver `{other}` cannot run this PoC: both clusters must join one \
                 container network (`--network`), which only the docker and podman drivers have; \
                 use --driver=docker (the default) or --driver=podman"
            )),
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the demo-app image is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageBuilder {
    // The driver's container engine on this machine, then loaded into each node. (Plain
    // comments: documented variants would turn clap's whole help into its long form.)
    Host,
    // Inside lgtm-central's node (`minikube image build`), then copied into lgtm-remote.
    Cluster,
}

/// One minikube cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub role: Role,
    /// The minikube profile; minikube names the kube context after it.
    pub profile: String,
    pub domain: String,
    pub cpus: u16,
    pub memory: String,
    /// minikube's `--disk-size` for a new profile.
    pub disk_size: String,
}

impl ClusterSpec {
    pub fn context(&self) -> &str {
        &self.profile
    }
}

/// How long each backend keeps its data in the central object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub metrics: Retention,
    pub logs: Retention,
    pub traces: Retention,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub central: ClusterSpec,
    pub remote: ClusterSpec,
    pub retention: RetentionSettings,
    pub driver: Driver,
    pub image_builder: ImageBuilder,
    pub network: String,
    /// `minikube start --kubernetes-version` (`kubernetes.version` in manifests/charts.yaml).
    pub kubernetes_version: String,
    /// The oldest Kubernetes the pinned charts accept (`kubernetes.minimum`).
    pub kubernetes_minimum: String,
    pub start_timeout: Duration,
    pub wait_timeout: Duration,
    /// Bound of the diagnosis after a step fails.
    pub diagnose_timeout: Duration,
    /// Machine checks whose FAIL does not stop a deploy.
    pub ignore_preflight_errors: Vec<crate::preflight::Topic>,
}

impl Settings {
    pub fn from_args(args: &GlobalArgs) -> Self {
        let kubernetes = crate::pins::ChartPins::pinned().kubernetes;
        Settings {
            state_dir: args.state_dir.clone(),
            kubeconfig: args.kubeconfig.clone(),
            central: ClusterSpec {
                role: Role::Central,
                profile: args.central_profile.clone(),
                domain: args.central_domain.clone(),
                cpus: args.central_cpus,
                memory: args.central_memory.clone(),
                disk_size: args.central_disk_size.clone(),
            },
            remote: ClusterSpec {
                role: Role::Remote,
                profile: args.remote_profile.clone(),
                domain: args.remote_domain.clone(),
                cpus: args.remote_cpus,
                memory: args.remote_memory.clone(),
                disk_size: args.remote_disk_size.clone(),
            },
            retention: RetentionSettings {
                metrics: args.metrics_retention,
                logs: args.logs_retention,
                traces: args.traces_retention,
            },
            driver: args.driver,
            image_builder: args.image_builder,
            network: args.network.clone(),
            kubernetes_version: kubernetes.version,
            kubernetes_minimum: kubernetes.minimum,
            start_timeout: args.start_timeout,
            wait_timeout: args.wait_timeout,
            diagnose_timeout: args.diagnose_timeout,
            ignore_preflight_errors: args.ignore_preflight_errors.clone(),
        }
    }

    pub fn cluster(&self, role: Role) -> &ClusterSpec {
        match role {
            Role::Central => &self.central,
            Role::Remote => &self.remote,
        }
    }

    pub fn clusters(&self) -> [&ClusterSpec; 2] {
        [&self.central, &self.remote]
    }

    pub fn certs_dir(&self) -> PathBuf {
        self.state_dir.join("certs")
    }

    /// The other cluster of the pair.
    pub fn peer(&self, cluster: &ClusterSpec) -> &ClusterSpec {
        match cluster.role {
            Role::Central => &self.remote,
            Role::Remote => &self.central,
        }
    }
}
