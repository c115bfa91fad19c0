//! What `verify` checks and where: the backends' URLs, and per tenant the queries that prove its
//! data arrived. The queries follow the manifests: the `cluster` label is Prometheus's external
//! label and the log shipper's `cluster` label (manifests/*/monitor.yaml, manifests/*/vector.yaml).

use std::time::Duration;

/// Tenant of the data the remote cluster sends (its Prometheus, log shipper and agent).
pub const REMOTE_TENANT: &str = "remote01";
/// Tenant of the central cluster's own data.
pub const LOCAL_TENANT: &str = "_local";
/// The `cluster` label the remote cluster's Prometheus and log shipper add.
pub const REMOTE_CLUSTER_LABEL: &str = "lgtm-remote";
/// The `cluster` label the central cluster's Prometheus and log shipper add.
pub const LOCAL_CLUSTER_LABEL: &str = "lgtm-central";
/// The demo's `OTEL_SERVICE_NAME`s (manifests/remote/demo.yaml): one request's trace spans all.
pub const DEMO_SERVICES: [&str; 3] = ["loadgen", "app", "db"];

/// Base URLs (`http://host:port`, no trailing path) of what `verify` talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Mimir's query-frontend; the Prometheus API is under `/prometheus` there.
    pub mimir: String,
    /// Loki's read path.
    pub loki: String,
    /// Tempo's query-frontend.
    pub tempo: String,
    /// The demo app on the remote cluster, for the burst; `None` relies on the steady loadgen.
    pub app: Option<String>,
}

/// How long and how hard `verify` tries.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub tenants: Vec<TenantPlan>,
    /// The whole run ends by then: every check polls until its data shows up or this passes.
    pub deadline: Duration,
    pub poll_interval: Duration,
    /// One HTTP request may take this long (a hung backend must not eat the whole deadline).
    pub request_timeout: Duration,
    /// Requests sent to the demo app before checking; 0 relies on the steady loadgen.
    pub burst: u32,
    /// How far back log lines, exemplars and searched traces may lie.
    pub lookback: Duration,
}

impl VerifyOptions {
    /// The defaults of `deployer verify` for the given tenants.
    pub fn new(tenants: Vec<TenantPlan>) -> Self {
        VerifyOptions {
            tenants,
            deadline: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            burst: 20,
            lookback: Duration::from_secs(600),
        }
    }
}

/// The checks of one tenant, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPlan {
    pub tenant: String,
    pub metrics: MetricSpec,
    pub logs: LogSpec,
    pub traces: TraceSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSpec {
    /// A selector of counters that rise while the tenant's pipeline works.
    pub counter: String,
    /// A selector of histogram buckets that carry `trace_id` exemplars; `None` skips the check.
    pub exemplars: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    /// A LogQL stream selector.
    pub selector: String,
    /// The lines must carry a top-level `trace_id` (the demo's JSON lines do).
    pub require_trace_id: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceSpec {
    /// Look up trace ids seen in the logs and exemplars; a trace must span all these services.
    ById { services: Vec<String> },
    /// Search with TraceQL for any trace. Not `required`: its absence only warns.
    Search { traceql: String, required: bool },
}

impl TenantPlan {
    /// remote01: the demo's request counters, exemplars, JSON logs and loadgen -> app -> db traces.
    pub fn remote() -> Self {
        let demo = format!("cluster=\"{REMOTE_CLUSTER_LABEL}\",namespace=\"demo\"");
        TenantPlan {
            tenant: REMOTE_TENANT.to_string(),
            metrics: MetricSpec {
                counter: format!("http_server_request_duration_seconds_count{{{demo}}}"),
                exemplars: Some(format!(
                    "http_server_request_duration_seconds_bucket{{{demo}}}"
                )),
            },
            logs: LogSpec {
                selector: format!("{{{demo}}}"),
                require_trace_id: true,
            },
            traces: TraceSpec::ById {
                services: DEMO_SERVICES.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    /// _local: only what the central cluster sends about itself. Its Prometheus scrapes itself
    /// (the counter grows every scrape), its log shipper ships every container's lines (none of
    /// them promise a trace_id), and its Linkerd proxies report spans only for requests that
    /// arrive with a sampled `traceparent`, which nothing on central is sure to send: so the
    /// trace search only warns, and there is no exemplar check.
    pub fn local() -> Self {
        TenantPlan {
            tenant: LOCAL_TENANT.to_string(),
            metrics: MetricSpec {
                counter: format!(
                    "prometheus_tsdb_head_samples_appended_total{{cluster=\"{LOCAL_CLUSTER_LABEL}\"}}"
                ),
                exemplars: None,
            },
            logs: LogSpec {
                selector: format!("{{cluster=\"{LOCAL_CLUSTER_LABEL}\"}}"),
                require_trace_id: false,
            },
            traces: TraceSpec::Search {
                traceql: "{}".to_string(),
                required: false,
            },
        }
    }

    /// The plan for a tenant name `verify` knows.
    pub fn for_tenant(tenant: &str) -> Option<Self> {
        match tenant {
            REMOTE_TENANT => Some(Self::remote()),
            LOCAL_TENANT => Some(Self::local()),
            _ => None,
        }
    }
}

impl TenantPlan {
    /// What the checks ask, one line each, for `--dry-run`.
    pub fn describe(&self) -> Vec<String> {
        let tenant = &self.tenant;
        let mut lines = vec![format!(
            "{tenant}: Mimir has {} and it grows",
            self.metrics.counter
        )];
        if let Some(selector) = &self.metrics.exemplars {
            lines.push(format!(
                "{tenant}: Mimir has an exemplar with a trace_id on {selector}"
            ));
        }
        let with_trace_id = if self.logs.require_trace_id {
            " with a trace_id"
        } else {
            ""
        };
        lines.push(format!(
            "{tenant}: Loki has lines{with_trace_id} for {}",
            self.logs.selector
        ));
        lines.push(match &self.traces {
            TraceSpec::ById { services } => format!(
                "{tenant}: Tempo has a trace seen in those logs or exemplars, spanning {}",
                services.join(", ")
            ),
            TraceSpec::Search { traceql, required } => format!(
                "{tenant}: Tempo search {traceql} finds a trace{}",
                if *required {
                    ""
                } else {
                    " (only warns if none)"
                }
            ),
        });
        lines
    }
}
