//! The likely causes when data does not show up, per check and tenant, in one place. A check
//! that finds nothing cannot know why; these name where the data comes from and what to look at.

use super::options::REMOTE_TENANT;

/// Where the tenant's data starts, for the sentences below.
fn origin(tenant: &str) -> &'static str {
    if tenant == REMOTE_TENANT {
        "the remote cluster"
    } else {
        "the central cluster"
    }
}

/// The remote sends through the Linkerd link; central's own data does not cross it.
fn link_advice(tenant: &str, mirrored: &str) -> String {
    if tenant == REMOTE_TENANT {
        format!(
            "; if the link is down, {mirrored}-lgtm-central is missing on the remote (see \
             `deployer status`)"
        )
    } else {
        String::new()
    }
}

pub fn no_series(tenant: &str) -> String {
    format!(
        "no series: Prometheus on {} does not reach Mimir with remote_write as tenant \
         `{tenant}`, or scrapes nothing that matches{}",
        origin(tenant),
        link_advice(tenant, "mimir-distributor")
    )
}

pub fn not_growing(tenant: &str) -> String {
    format!(
        "the series stopped growing: Prometheus on {} stopped scraping, or its remote_write \
         stalls (see prometheus_remote_storage_samples_failed_total); for the demo, is the loadgen \
         running?{}",
        origin(tenant),
        link_advice(tenant, "mimir-distributor")
    )
}

pub fn no_exemplar() -> String {
    "no exemplar with a trace_id: Prometheus needs the exemplar-storage feature and \
     sendExemplars on remote_write, Mimir max_global_exemplars_per_user > 0, and the demo adds \
     exemplars only to sampled requests"
        .to_string()
}

pub fn no_log_lines(tenant: &str) -> String {
    format!(
        "no log lines: the log shipper (vector, namespace observability) on {} does not push to \
         Loki as tenant `{tenant}`; look at its pods' logs{}",
        origin(tenant),
        link_advice(tenant, "loki-write")
    )
}

pub fn no_trace_id_in_logs() -> String {
    "lines arrived without a top-level trace_id: the log shipper must pass the demo's JSON line \
     unchanged (vector: encoding.codec text), and the demo writes trace_id only inside sampled \
     requests (OTEL_TRACES_SAMPLER)"
        .to_string()
}

pub fn no_trace_ids_to_look_up() -> String {
    "no trace id to look up: neither the logs nor the exemplars gave one (see those checks)"
        .to_string()
}

pub fn trace_not_found(tenant: &str) -> String {
    format!(
        "trace not found: the telemetry agent on {} may refuse or drop spans (queue full, Tempo \
         unreachable): check otelcol_exporter_send_failed_spans and \
         otelcol_exporter_enqueue_failed_spans in Mimir, and the agent's readiness{}",
        origin(tenant),
        link_advice(tenant, "tempo-distributor")
    )
}

pub fn services_missing(missing: &[String]) -> String {
    format!(
        "spans of {} never arrived: is their OTEL_EXPORTER_OTLP_ENDPOINT the telemetry agent, \
         and do they propagate traceparent?",
        missing.join(", ")
    )
}

pub fn no_trace_found_by_search(tenant: &str) -> String {
    format!(
        "no trace in tenant `{tenant}`: Linkerd's proxies on {} report spans only for requests \
         that arrive with a sampled traceparent, so this may be normal; if such requests exist, \
         check the agent's otelcol_exporter_send_failed_spans",
        origin(tenant)
    )
}

pub fn app_unreachable() -> String {
    "the demo app answered no request: the port-forward to app (namespace demo, remote cluster) \
     is down, or app is not ready (its db is down); see `deployer status`, or pass --burst 0 to \
     rely on the steady loadgen"
        .to_string()
}
