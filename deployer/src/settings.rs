//! What the deployer works with, resolved once from the command line (see [`crate::cli`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::GlobalArgs;

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

/// One minikube cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub role: Role,
    /// The minikube profile; minikube names the kube context after it.
    pub profile: String,
    pub domain: String,
    pub cpus: u16,
    pub memory: String,
}

impl ClusterSpec {
    pub fn context(&self) -> &str {
        &self.profile
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub central: ClusterSpec,
    pub remote: ClusterSpec,
    pub driver: Option<String>,
    pub network: String,
    pub start_timeout: Duration,
    pub wait_timeout: Duration,
    /// Bound of the diagnosis after a step fails.
    pub diagnose_timeout: Duration,
}

impl Settings {
    pub fn from_args(args: &GlobalArgs) -> Self {
        Settings {
            state_dir: args.state_dir.clone(),
            kubeconfig: args.kubeconfig.clone(),
            central: ClusterSpec {
                role: Role::Central,
                profile: args.central_profile.clone(),
                domain: args.central_domain.clone(),
                cpus: args.central_cpus,
                memory: args.central_memory.clone(),
            },
            remote: ClusterSpec {
                role: Role::Remote,
                profile: args.remote_profile.clone(),
                domain: args.remote_domain.clone(),
                cpus: args.remote_cpus,
                memory: args.remote_memory.clone(),
            },
            driver: args.driver.clone(),
            network: args.network.clone(),
            start_timeout: args.start_timeout,
            wait_timeout: args.wait_timeout,
            diagnose_timeout: args.diagnose_timeout,
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
}
