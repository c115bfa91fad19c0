//! lgtm-central: Linkerd (with the multicluster gateway), cert-manager, Prometheus and Grafana,
//! RustFS, Mimir, Loki, Tempo, the ingress, the telemetry agent and the log shipper.

use crate::settings::ClusterSpec;

use super::{
    ClusterWorkloads, Context, GeneratedSecret, SecretEntry, SecretValue, Workload, names,
    set_domain,
};

/// Namespaces whose pods the Linkerd proxy joins (linkerd, cert-manager and traefik are made by
/// helm and stay unmeshed).
const MESHED: &[&str] = &["observability", "storage", "mimir", "loki", "tempo"];

pub(super) fn workloads(context: &Context) -> ClusterWorkloads {
    let cluster = &context.settings.central;
    let retention = context.settings.retention;
    let release = |name: &str, namespace: &str, chart: &str| {
        Workload::Release(context.release(cluster, name, namespace, chart))
    };
    let mut workloads: Vec<Workload> = ["storage", "mimir", "loki", "tempo"]
        .iter()
        .map(|namespace| rustfs_credentials(namespace))
        .collect();
    workloads.push(grafana_admin());
    workloads.extend([
        context.gateway_api(),
        release("linkerd-crds", "linkerd", "linkerd-crds"),
        context.monitor_crds(),
        Workload::Release(context.linkerd_control_plane(cluster)),
        release("cert-manager", "cert-manager", "cert-manager"),
        // Before anything with a ServiceMonitor: it brings the CRD.
        release("monitor", "observability", "kube-prometheus-stack"),
        Workload::Release(with_domain(
            context,
            cluster,
            "linkerd-viz",
            "linkerd-viz",
            &["clusterDomain"],
        )),
        Workload::Release(with_domain(
            context,
            cluster,
            "linkerd-multicluster",
            "linkerd-multicluster",
            &["identityTrustDomain"],
        )),
        release("rustfs", "storage", "rustfs"),
        // The bucket Job runs to completion (the step waits for it) before the three stores
        // that write to the buckets; they need nothing of each other, so they install at once.
        context.manifest(cluster, "buckets", "storage"),
        Workload::SideBySide(vec![
            Workload::Release(with_retention(
                with_domain(context, cluster, "mimir", "mimir-distributed", &[]),
                "mimir.structuredConfig.limits.compactor_blocks_retention_period",
                retention.metrics,
            )),
            Workload::Release(with_retention(
                with_domain(context, cluster, "loki", "loki", &[]),
                "loki.limits_config.retention_period",
                retention.logs,
            )),
            // No cluster domain for tempo-distributed: it reads global.clusterDomain only in its
            // gateway (off), and renders short service names that resolve in any domain.
            Workload::Release(with_retention(
                context.release(cluster, "tempo", "tempo", "tempo-distributed"),
                "compactor.config.compaction.block_retention",
                retention.traces,
            )),
        ]),
        release("traefik", "traefik", "traefik"),
        context.manifest(cluster, "tls", "observability"),
        Workload::Dashboards(super::Dashboards {
            name: "lgtm-dashboards".to_string(),
            namespace: "observability".to_string(),
            dir: "manifests/dashboards".into(),
        }),
        Workload::Image(super::ImageBuild::demo_app()),
        context.manifest(cluster, "telemetry-agent", "observability"),
        release("log-shipper", "observability", "vector"),
    ]);
    ClusterWorkloads {
        namespaces: names(MESHED),
        workloads,
    }
}

/// A release whose chart takes the cluster domain under `keys` (and `global.clusterDomain` for the
/// Grafana charts, which is what `keys` empty means).
fn with_domain(
    context: &Context,
    cluster: &ClusterSpec,
    name: &str,
    chart: &str,
    keys: &[&str],
) -> crate::helm::HelmRelease {
    // Each of these releases has a namespace of its own name.
    let mut release = context.release(cluster, name, name, chart);
    if keys.is_empty() {
        // mimir-distributed's default ends in a dot (an absolute name); keep that form for it.
        let domain = if chart == "mimir-distributed" {
            format!("{}.", cluster.domain)
        } else {
            cluster.domain.clone()
        };
        release
            .set
            .push(("global.clusterDomain".to_string(), domain));
    } else {
        set_domain(&mut release, cluster, keys);
    }
    release
}

/// How long a backend keeps its data (`--metrics-retention` and friends), at the chart key that
/// sets its compactor's retention.
fn with_retention(
    mut release: crate::helm::HelmRelease,
    key: &str,
    retention: crate::retention::Retention,
) -> crate::helm::HelmRelease {
    release.set.push((key.to_string(), retention.as_hours()));
    release
}

/// The RustFS keys, in RustFS's own namespace and in each namespace whose pods read the buckets.
fn rustfs_credentials(namespace: &str) -> Workload {
    Workload::Secret(GeneratedSecret {
        name: "rustfs-credentials".to_string(),
        namespace: namespace.to_string(),
        entries: vec![
            generated("RUSTFS_ACCESS_KEY", "rustfs-access-key"),
            generated("RUSTFS_SECRET_KEY", "rustfs-secret-key"),
        ],
    })
}

fn grafana_admin() -> Workload {
    Workload::Secret(GeneratedSecret {
        name: "grafana-admin".to_string(),
        namespace: "observability".to_string(),
        entries: vec![
            SecretEntry {
                key: "admin-user".to_string(),
                value: SecretValue::Fixed("admin".to_string()),
            },
            generated("admin-password", "grafana-admin-password"),
        ],
    })
}

fn generated(key: &str, credential: &str) -> SecretEntry {
    SecretEntry {
        key: key.to_string(),
        value: SecretValue::Generated(credential.to_string()),
    }
}
