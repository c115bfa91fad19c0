//! External tools: which ones exist ([`Tool`]), finding them all up front ([`Toolbox`]), checking
//! their versions ([`check_versions`]) and running them ([`runner`]).

mod command;
mod find;
pub mod runner;
mod version;

pub use command::CommandSpec;
pub use find::{MissingTool, MissingTools, Toolbox};
pub use runner::{CommandOutput, RunError};
pub use version::{OutdatedTool, OutdatedTools, check_versions, is_older};

/// A program the deployer calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    Minikube,
    Helm,
    Linkerd,
    Docker,
    Podman,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Minikube => "minikube",
            Tool::Helm => "helm",
            Tool::Linkerd => "linkerd",
            Tool::Docker => "docker",
            Tool::Podman => "podman",
        }
    }

    /// The version the deployer is written and documented against; older releases may lack a flag
    /// it passes. Shown in install hints, not checked.
    pub fn minimum_version(self) -> &'static str {
        match self {
            // The first release whose supported Kubernetes versions include the pinned one
            // (`kubernetes.version` in manifests/charts.yaml); older ones search GitHub for it.
            Tool::Minikube => "1.38.1",
            // helm 3 syntax (`upgrade --install`, `--set-file`; `--take-ownership` since 3.17);
            // helm 4 keeps it.
            Tool::Helm => "3.17",
            // `multicluster link-gen` and the charts pinned by the stack (DESIGN.md section 4).
            Tool::Linkerd => "edge-26.8.3",
            Tool::Docker => "24",
            Tool::Podman => "4.9",
        }
    }

    pub fn install_hint(self) -> &'static str {
        match self {
            Tool::Minikube => {
                "see https://minikube.sigs.k8s.io/docs/start/ (or `brew install minikube`)"
            }
            Tool::Helm => "see https://helm.sh/docs/intro/install/ (or `brew install helm`)",
            Tool::Linkerd => {
                "`curl --proto '=https' -sSfL https://run.linkerd.io/install-edge | sh`, then add ~/.linkerd2/bin to PATH"
            }
            Tool::Docker => {
                "install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/"
            }
            Tool::Podman => "see https://podman.io/docs/installation",
        }
    }
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.program())
    }
}
