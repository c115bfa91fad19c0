//! The stack's services the deployer itself talks to, through port-forwards (`verify`,
//! `loadtest`, `grafana`): one place for their cluster, namespace, name and port, checked against
//! the manifests and the Grafana data sources by the tests.

use std::net::SocketAddr;

use kube::Client;

use crate::k8s::{KubeError, PortForward};
use crate::settings::Role;

/// A Service port in one of the two clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort {
    pub cluster: Role,
    pub namespace: &'static str,
    pub service: &'static str,
    pub port: u16,
}

impl ServicePort {
    /// Forwards a free local port to this service (`client` is its cluster's).
    pub async fn forward(&self, client: &Client) -> Result<PortForward, KubeError> {
        self.forward_from(client, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
    }

    pub async fn forward_from(
        &self,
        client: &Client,
        bind: SocketAddr,
    ) -> Result<PortForward, KubeError> {
        PortForward::to_service(client, self.namespace, self.service, self.port, bind).await
    }

    /// The in-cluster address, as the Grafana data sources write it.
    pub fn in_cluster_url(&self) -> String {
        format!(
            "http://{}.{}.svc:{}",
            self.service, self.namespace, self.port
        )
    }
}

impl std::fmt::Display for ServicePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/service/{}:{}",
            self.namespace, self.service, self.port
        )
    }
}

/// mimir-distributed (release `mimir`): the query-frontend's HTTP port; the Prometheus API is
/// under `/prometheus` there ([`crate::verify::prometheus::PROMETHEUS_PREFIX`]).
pub const MIMIR_QUERY_FRONTEND: ServicePort = ServicePort {
    cluster: Role::Central,
    namespace: "mimir",
    service: "mimir-query-frontend",
    port: 8080,
};

/// loki (release `loki`, SimpleScalable): the read path, which answers queries.
pub const LOKI_READ: ServicePort = ServicePort {
    cluster: Role::Central,
    namespace: "loki",
    service: "loki-read",
    port: 3100,
};

/// tempo-distributed (release `tempo`): the query-frontend's HTTP port.
pub const TEMPO_QUERY_FRONTEND: ServicePort = ServicePort {
    cluster: Role::Central,
    namespace: "tempo",
    service: "tempo-query-frontend",
    port: 3200,
};

/// kube-prometheus-stack's Grafana (release `monitor`); the pod listens on 3000.
pub const GRAFANA: ServicePort = ServicePort {
    cluster: Role::Central,
    namespace: "observability",
    service: "monitor-grafana",
    port: 80,
};

/// The demo's front (manifests/remote/demo.yaml).
pub const DEMO_APP: ServicePort = ServicePort {
    cluster: Role::Remote,
    namespace: "demo",
    service: "app",
    port: 8080,
};

/// The remote telemetry agent's admin port: /metrics, /healthz, /readyz
/// (manifests/remote/telemetry-agent.yaml).
pub const REMOTE_AGENT_ADMIN: ServicePort = ServicePort {
    cluster: Role::Remote,
    namespace: "observability",
    service: "telemetry-agent",
    port: 8888,
};

/// The remote kube-prometheus-stack's Prometheus (`fullnameOverride: monitor`).
pub const REMOTE_PROMETHEUS: ServicePort = ServicePort {
    cluster: Role::Remote,
    namespace: "observability",
    service: "monitor-prometheus",
    port: 9090,
};
