use crate::certs::CertError;
use crate::helm::{HelmOutputError, ValuesError};
use crate::k8s::KubeError;
use crate::minikube::NotAnIp;
use crate::minikube::network::NetworkError;
use crate::tools::RunError;

use super::cluster::ClusterError;
use super::image::ImageError;

/// Why a step failed; the engine adds which step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Command(#[from] RunError),
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error(transparent)]
    Minikube(#[from] NotAnIp),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    HelmOutput(#[from] HelmOutputError),
    #[error(transparent)]
    Values(#[from] ValuesError),
    #[error("cannot read {path}: {source}")]
    Input {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StepError {
    /// The external command that failed, if one did.
    pub fn command(&self) -> Option<&str> {
        match self {
            StepError::Command(e) => Some(e.command()),
            _ => None,
        }
    }

    pub fn help(&self) -> Option<String> {
        match self {
            StepError::Command(e) => e.hint().map(str::to_string),
            StepError::Kube(e) => e.help().map(str::to_string),
            StepError::Certs(e) => Some(e.help()),
            StepError::Minikube(_) => {
                Some("check `minikube status` and `minikube ip` for the profile".to_string())
            }
            StepError::Image(e) => Some(e.help()),
            StepError::Network(e) => Some(e.help()),
            StepError::Cluster(e) => Some(e.help()),
            StepError::HelmOutput(_) => Some(format!(
                "the deployer reads helm's JSON as helm {} prints it; see `helm version`",
                crate::tools::Tool::Helm.minimum_version()
            )),
            StepError::Values(ValuesError::Read { .. }) => {
                Some("run the deployer from the repository root".to_string())
            }
            StepError::Values(_) => Some("fix the values file named above".to_string()),
            StepError::Input { .. } => {
                Some("run the deployer from the repository root".to_string())
            }
        }
    }
}
