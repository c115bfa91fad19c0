//! Port-forwards through the API server (kube-rs over WebSockets), so `verify`, `loadtest` and
//! `grafana` need no kubectl.
//!
//! A [`PortForward`] listens on a local TCP port; every accepted connection gets its own
//! forwarding stream to the pod (the API server's stream carries one connection per port).
//! A forward to a Service picks one ready pod behind it, as `kubectl port-forward svc/...` does,
//! and picks again when that pod goes away, so a long `deployer grafana` survives a rollout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::KubeError;

/// What a forward goes to: a named pod, or whichever ready pod backs a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pod { name: String, port: u16 },
    Service { name: String, port: u16 },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Pod { name, port } => write!(f, "pod/{name}:{port}"),
            Target::Service { name, port } => write!(f, "service/{name}:{port}"),
        }
    }
}

/// A pod and the container port a forward reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub pod: String,
    pub port: u16,
}

/// A running forward; dropping it closes the listener and every open connection.
pub struct PortForward {
    local: SocketAddr,
    description: String,
    task: JoinHandle<()>,
}

impl PortForward {
    /// Forwards `bind` (port 0 picks a free one) to a Service's port in `namespace`.
    /// Fails up front when no ready pod backs the service, so the caller can say why.
    pub async fn to_service(
        client: &Client,
        namespace: &str,
        service: &str,
        port: u16,
        bind: SocketAddr,
    ) -> Result<PortForward, KubeError> {
        let target = Target::Service {
            name: service.to_string(),
            port,
        };
        Self::open(client, namespace, target, bind).await
    }

    pub async fn open(
        client: &Client,
        namespace: &str,
        target: Target,
        bind: SocketAddr,
    ) -> Result<PortForward, KubeError> {
        let description = format!("{namespace}/{target}");
        let resolver = Resolver {
            client: client.clone(),
            namespace: namespace.to_string(),
            target,
            current: Mutex::new(None),
        };
        resolver.backend(false).await?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| KubeError::Listen { addr: bind, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| KubeError::Listen { addr: bind, source })?;
        tracing::info!(%local, to = %description, "port-forward listening");
        let task = tokio::spawn(accept_loop(listener, Arc::new(resolver)));
        Ok(PortForward {
            local,
            description,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// `http://127.0.0.1:PORT`, for HTTP clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }

    /// "namespace/service/name:port", for messages.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, resolver: Arc<Resolver>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // E.g. out of file descriptors: wait a little instead of spinning on the error.
                tracing::warn!(%error, "port-forward: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let resolver = resolver.clone();
        connections.spawn(async move {
            if let Err(error) = forward_connection(socket, &resolver).await {
                tracing::warn!(%peer, to = %resolver.target, %error, "port-forward: connection failed");
            }
        });
        // Reap finished connections so a long-lived forward does not grow.
        while connections.try_join_next().is_some() {}
    }
    // `connections` is dropped with the task, which aborts the open ones.
}

async fn forward_connection(mut socket: TcpStream, resolver: &Resolver) -> Result<(), KubeError> {
    let (backend, mut forwarder) = match resolver.connect(false).await {
        Ok(connected) => connected,
        // The pod may have gone away since it was chosen: choose again, once.
        Err(_) => resolver.connect(true).await?,
    };
    let mut upstream =
        forwarder
            .take_stream(backend.port)
            .ok_or_else(|| KubeError::PortForward {
                target: resolver.target.to_string(),
                reason: "the API server gave no stream for the port".into(),
            })?;
    let errors = forwarder.take_error(backend.port);
    let copied = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
    let _ = socket.shutdown().await;
    drop(upstream);
    if let Some(errors) = errors
        && let Some(message) = errors.await
    {
        tracing::warn!(pod = %backend.pod, port = backend.port, %message, "port-forward: the kubelet reported an error");
    }
    let _ = forwarder.join().await;
    copied.map(|_| ()).map_err(|error| KubeError::PortForward {
        target: resolver.target.to_string(),
        reason: error.to_string(),
    })
}

/// Finds the pod behind a target and remembers it until a connection to it fails.
struct Resolver {
    client: Client,
    namespace: String,
    target: Target,
    current: Mutex<Option<Backend>>,
}

impl Resolver {
    async fn connect(&self, fresh: bool) -> Result<(Backend, kube::api::Portforwarder), KubeError> {
        let backend = self.backend(fresh).await?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let forwarder = pods
            .portforward(&backend.pod, &[backend.port])
            .await
            .map_err(KubeError::api(format!(
                "port-forward to pod {}/{}:{}",
                self.namespace, backend.pod, backend.port
            )))?;
        Ok((backend, forwarder))
    }

    async fn backend(&self, fresh: bool) -> Result<Backend, KubeError> {
        if !fresh && let Some(known) = self.current.lock().expect("not poisoned").clone() {
            return Ok(known);
        }
        let backend = match &self.target {
            Target::Pod { name, port } => Backend {
                pod: name.clone(),
                port: *port,
            },
            Target::Service { name, port } => {
                service_backend(&self.client, &self.namespace, name, *port).await?
            }
        };
        *self.current.lock().expect("not poisoned") = Some(backend.clone());
        Ok(backend)
    }
}

/// One ready pod behind a Service and the container port its `port` maps to.
pub async fn service_backend(
    client: &Client,
    namespace: &str,
    service: &str,
    port: u16,
) -> Result<Backend, KubeError> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let found = services.get(service).await.map_err(KubeError::api(format!(
        "read service {namespace}/{service}"
    )))?;
    let not_forwardable = |reason: String| KubeError::PortForward {
        target: format!("{namespace}/service/{service}:{port}"),
        reason,
    };
    let spec = found.spec.unwrap_or_default();
    let selector = spec
        .selector
        .filter(|s| !s.is_empty())
        .ok_or_else(|| not_forwardable("the service has no pod selector".into()))?;
    let service_port = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.port == i32::from(port))
        .ok_or_else(|| not_forwardable(format!("the service has no port {port}")))?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let labels = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut candidates = pods
        .list(&ListParams::default().labels(&labels))
        .await
        .map_err(KubeError::api(format!(
            "list pods of service {namespace}/{service}"
        )))?
        .items;
    candidates.sort_by_key(|pod| pod.name_any());
    let pod = candidates
        .into_iter()
        .find(is_ready)
        .ok_or_else(|| KubeError::NoReadyPod {
            namespace: namespace.to_string(),
            service: service.to_string(),
        })?;
    let container_port = match service_port.target_port {
        None => port,
        Some(IntOrString::Int(number)) => u16::try_from(number)
            .map_err(|_| not_forwardable(format!("target port {number} is out of range")))?,
        Some(IntOrString::String(name)) => named_port(&pod, &name).ok_or_else(|| {
            not_forwardable(format!("no container of the pod names port `{name}`"))
        })?,
    };
    Ok(Backend {
        pod: pod.name_any(),
        port: container_port,
    })
}

/// Running, not being deleted, and its Ready condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn named_port(pod: &Pod, name: &str) -> Option<u16> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("a pod")
    }

    #[test]
    fn only_running_ready_pods_that_are_not_terminating_are_ready() {
        let ready = json!({"metadata": {"name": "a"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(is_ready(&pod(ready.clone())));
        let mut terminating = ready.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-11-27T00:00:00Z");
        assert!(!is_ready(&pod(terminating)));
        let not_ready = json!({"metadata": {"name": "a"}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(!is_ready(&pod(not_ready)));
        let pending = json!({"metadata": {"name": "a"}, "status": {"phase": "Pending"}});
        assert!(!is_ready(&pod(pending)));
    }

    #[test]
    fn named_ports_resolve_through_any_container() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "proxy", "ports": [{"name": "linkerd-admin", "containerPort": 4191}]},
            {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}
        ]}}));
        assert_eq!(named_port(&p, "http"), Some(8080));
        assert_eq!(named_port(&p, "grpc"), None);
    }
}
