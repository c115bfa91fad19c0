use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot read the kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("kube context `{context}` is not usable: {source}")]
    Context {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot make a client for context `{context}`: {source}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("{action}: {source}")]
    Api {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("document {index} of the manifest is not a Kubernetes object: {reason}")]
    Manifest { index: usize, reason: String },
    #[error("timed out after {}s waiting for {what}", .after.as_secs())]
    Timeout { what: String, after: Duration },
    #[error("cannot listen on {addr} for a port-forward: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot port-forward to {target}: {reason}")]
    PortForward { target: String, reason: String },
    #[error("no ready pod backs service {namespace}/{service}")]
    NoReadyPod { namespace: String, service: String },
    #[error("job {namespace}/{name} failed: {message}")]
    JobFailed {
        namespace: String,
        name: String,
        message: String,
    },
    #[error("watching {what} failed: {source}")]
    Wait {
        what: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
}

impl KubeError {
    pub fn api(action: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
        let action = action.into();
        move |source| KubeError::Api { action, source }
    }

    pub fn help(&self) -> Option<&'static str> {
        match self {
            KubeError::Kubeconfig(_) | KubeError::Context { .. } => Some(
                "minikube writes the contexts when it starts a cluster; check `minikube profile list` \
                 and --kubeconfig / KUBECONFIG",
            ),
            KubeError::Client { .. } | KubeError::Api { .. } => {
                Some("is the cluster running? see `deployer status`")
            }
            KubeError::Manifest { .. } => Some("fix the manifest file"),
            KubeError::Listen { .. } => {
                Some("another program uses that local port; choose another with --port")
            }
            KubeError::PortForward { .. } => Some(
                "check the service and its pods (`deployer status`); the deployer forwards to the \
                 ports the stack defines",
            ),
            KubeError::NoReadyPod { .. } => Some(
                "the pods behind it are starting or failing; see `deployer status`, then run the \
                 same command again",
            ),
            KubeError::JobFailed { .. } => Some(
                "its pod's log says why (`minikube -p <profile> kubectl -- logs -n <namespace> \
                 job/<name>`); a failed Job is not run again by applying it, so delete it \
                 (`minikube -p <profile> kubectl -- delete job -n <namespace> <name>`) and run the \
                 deployer again",
            ),
            KubeError::Timeout { .. } | KubeError::Wait { .. } => Some(
                "the cluster may be short of CPU or memory; raise --wait-timeout or look at the pods",
            ),
        }
    }
}
