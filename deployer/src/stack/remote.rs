//! lgtm-remote: Linkerd with the link controller, Prometheus writing to the central Mimir, the
//! telemetry agent, the log shipper and the demo. Everything it sends goes through the Linkerd
//! mirrors of the central services (`<service>-lgtm-central`).

use super::{ClusterWorkloads, Context, Workload, names};

/// The mirrors of mimir-distributor, loki-write and tempo-distributor are made in the namespace
/// of the same name, so those must exist on the remote too.
const MESHED: &[&str] = &["observability", "demo", "mimir", "loki", "tempo"];

pub(super) fn workloads(context: &Context) -> ClusterWorkloads {
    let cluster = &context.settings.remote;
    let release = |name: &str, namespace: &str, chart: &str| {
        Workload::Release(context.release(cluster, name, namespace, chart))
    };
    // No identityTrustDomain: linkerd-multicluster reads it only for the gateway, which the
    // remote does not run.
    let multicluster = context.release(
        cluster,
        "linkerd-multicluster",
        "linkerd-multicluster",
        "linkerd-multicluster",
    );
    ClusterWorkloads {
        namespaces: names(MESHED),
        workloads: vec![
            context.gateway_api(),
            release("linkerd-crds", "linkerd", "linkerd-crds"),
            context.monitor_crds(),
            Workload::Release(context.linkerd_control_plane(cluster)),
            Workload::Release(multicluster),
            release("monitor", "observability", "kube-prometheus-stack"),
            Workload::Image(super::ImageBuild::demo_app()),
            context.manifest(cluster, "telemetry-agent", "observability"),
            release("log-shipper", "observability", "vector"),
            context.manifest(cluster, "demo", "demo"),
        ],
    }
}
