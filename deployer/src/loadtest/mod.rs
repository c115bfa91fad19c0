//! `deployer loadtest`: runs the demo's load generator as a Job in the remote cluster and judges
//! the telemetry pipeline over the same window.
//!
//! - [`job`]: the Job object (the demo-app image's `loadgen`, meshed, restricted),
//! - [`run`]: applying it, following its pod's log, and its outcome (exit code, summary),
//! - [`pod_log`]: the loadgen's summary picked out of the pod log, log lines as progress,
//! - [`summary`]: the loadgen's JSON summary (demo-app/src/loadgen/summary.schema.json),
//! - [`exposition`]: reading Prometheus text expositions (the agent's /metrics),
//! - [`agent`]: the telemetry agent's span counters before and after, and their verdicts,
//! - [`prometheus`]: the remote Prometheus's remote-write failures and lag,
//! - [`backends`]: whether the central Mimir, Loki and Tempo received data in proportion,
//! - [`pipeline`]: the port-forwards those measurements go through; the HTTP client and the
//!   Mimir/Loki/Tempo answers' parsing are [`crate::verify`]'s,
//! - [`checks`]: a verdict (pass/warn/fail) with what was measured and a hint,
//! - [`report`]: the result as text or JSON; [`dry_run`]: what a run would do,
//! - [`error`]: what can go wrong, with help.

pub mod agent;
pub mod backends;
pub mod checks;
pub mod dry_run;
pub mod error;
pub mod exposition;
pub mod job;
pub mod pipeline;
pub mod pod_log;
pub mod prometheus;
pub mod report;
pub mod run;
pub mod summary;

use std::time::Duration;

pub use error::LoadtestError;

/// The demo namespace on the remote cluster, where the app and the Job run.
pub const NAMESPACE: &str = "demo";
/// The app's Service, as the loadgen reaches it from inside the cluster. A short name: the
/// cluster domain differs per cluster (see DESIGN.md), and `<svc>.<ns>.svc` resolves in each.
pub const APP_URL: &str = "http://app.demo.svc:8080";

/// `--rate`: requests per second (open loop), or `max` (closed loop, `--connections` workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    PerSecond(u32),
    Max,
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "max" => Ok(Rate::Max),
            number => match number.parse::<u32>() {
                // The loadgen's own range (demo-app/src/loadgen/limits.rs), in whole requests.
                Ok(rate) if (1..=1_000_000_000).contains(&rate) => Ok(Rate::PerSecond(rate)),
                _ => Err(format!(
                    "`{text}` is not a rate: give requests per second from 1 to 1000000000 \
                     (e.g. 200), or max"
                )),
            },
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::PerSecond(rate) => write!(f, "{rate}"),
            Rate::Max => f.write_str("max"),
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadtestSpec {
    pub rate: Rate,
    pub duration: Duration,
    /// Workers (each with its own connection) for `--rate max`.
    pub connections: u32,
    /// The loadgen exits 3 above this error ratio.
    pub max_error_ratio: f64,
    /// The Job's name, unique per run (see [`job::job_name`]).
    pub job_name: String,
    /// `lgtm-demo-app:<version>`, the image the deployer builds into the node.
    pub image: String,
}
