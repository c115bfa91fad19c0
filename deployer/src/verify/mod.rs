//! `deployer verify`'s checks: does data from both clusters reach the central Mimir, Loki and
//! Tempo? Given plain base URLs (the command opens port-forwards and passes their addresses), it
//! sends a burst to the demo app, then per tenant polls until the data shows up or the deadline
//! passes, and reports each check with its query, latency and, on failure, the likely cause.
//!
//! - [`options`]: the endpoints, the knobs, and each tenant's checks as data,
//! - [`burst`]: requests to the demo app,
//! - [`metrics`] (Mimir), [`logs`] (Loki), [`traces`] (Tempo): the checks,
//! - [`prometheus`], [`loki`], [`tempo`]: the backends' answers, parsed,
//! - [`http`]: requests as a tenant and what their failures mean; [`poll`]: asking until a deadline,
//! - [`hints`]: the likely causes when data does not show up,
//! - [`report`]: the rows, as a text table or JSON.

pub mod burst;
pub mod hints;
pub mod http;
pub mod logs;
pub mod loki;
pub mod metrics;
pub mod options;
pub mod poll;
pub mod prometheus;
pub mod report;
mod scope;
pub mod tempo;
mod tenant;
pub mod traces;

use tokio::time::Instant;

pub use options::{Endpoints, TenantPlan, VerifyOptions};
pub use report::{CheckKind, CheckResult, Status, VerifyReport};

use http::{BackendClient, http_client};
use poll::Poller;
use scope::TenantScope;
use tenant::{TenantClients, check_tenant};

/// Runs every check and reports them all; never stops at the first failure, so one run shows
/// everything that is wrong.
pub async fn verify(endpoints: &Endpoints, options: &VerifyOptions) -> VerifyReport {
    let started = Instant::now();
    let http = http_client(options.request_timeout);
    let client = |base: &str, tenant: Option<&str>| {
        BackendClient::new(http.clone(), base, tenant, options.request_timeout)
    };
    let app = endpoints.app.as_deref().map(|base| client(base, None));
    let burst = burst::run_burst(app.as_ref(), options.burst).await;
    let mut rows = vec![burst.row];

    let poller = Poller::new(started, started + options.deadline, options.poll_interval);
    let tenants = options.tenants.iter().map(|plan| {
        let tenant = Some(plan.tenant.as_str());
        let clients = TenantClients {
            mimir: client(&endpoints.mimir, tenant),
            loki: client(&endpoints.loki, tenant),
            tempo: client(&endpoints.tempo, tenant),
        };
        let scope = TenantScope {
            tenant: &plan.tenant,
            poller,
            lookback: options.lookback,
        };
        let ours = &burst.trace_ids;
        async move { check_tenant(&clients, &scope, plan, ours).await }
    });
    for tenant_rows in futures::future::join_all(tenants).await {
        rows.extend(tenant_rows);
    }
    VerifyReport::new(rows, started.elapsed())
}
