//! The telemetry agent's span counters (demo-app/src/agent/metrics.rs, named like the
//! OpenTelemetry Collector's; counters carry `_total` in the exposition), scraped before and
//! after the run, and what their increase says.

use super::checks::{Check, Verdict, proportion_verdict, ratio};
use super::exposition::{self, ExpositionError, Sample};
use crate::stack::endpoints::REMOTE_AGENT_ADMIN;

const ACCEPTED: &str = "otelcol_receiver_accepted_spans_total";
const REFUSED: &str = "otelcol_receiver_refused_spans_total";
const SENT: &str = "otelcol_exporter_sent_spans_total";
const SEND_FAILED: &str = "otelcol_exporter_send_failed_spans_total";
const ENQUEUE_FAILED: &str = "otelcol_exporter_enqueue_failed_spans_total";
const QUEUE_SIZE: &str = "otelcol_exporter_queue_size";

/// One scrape's span counters, summed over receivers/exporters. A counter not yet incremented
/// is absent from the exposition, which is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpanCounters {
    pub accepted: f64,
    pub refused: f64,
    pub sent: f64,
    pub send_failed: f64,
    /// Spans that did not fit in the queue (refused or dropped, per the agent's --overflow).
    pub enqueue_failed: f64,
    /// A gauge: spans waiting in the queue at the time of the scrape.
    pub queue_size: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentMetricsError {
    #[error(transparent)]
    Exposition(#[from] ExpositionError),
    #[error("the metrics have no otelcol_* samples: is this the telemetry agent's /metrics?")]
    NotTheAgent,
}

impl SpanCounters {
    pub fn from_exposition(text: &str) -> Result<Self, AgentMetricsError> {
        let samples = exposition::parse(text)?;
        // A counter appears only after its first increment (a fresh agent shows just its queue
        // gauges), so any otelcol_ sample says this is the agent.
        if !samples.iter().any(|s| s.name.starts_with("otelcol_")) {
            return Err(AgentMetricsError::NotTheAgent);
        }
        let total = |name: &str| exposition::sum(&samples, name).unwrap_or(0.0);
        Ok(SpanCounters {
            accepted: total(ACCEPTED),
            refused: total(REFUSED),
            sent: total(SENT),
            send_failed: total(SEND_FAILED),
            enqueue_failed: total(ENQUEUE_FAILED),
            queue_size: gauge(&samples, QUEUE_SIZE),
        })
    }

    /// `after - before` for the counters; the queue size is `after`'s. None when a counter went
    /// down: the agent restarted in between, so the difference means nothing.
    pub fn increase_since(&self, before: &SpanCounters) -> Option<SpanCounters> {
        let diff = |a: f64, b: f64| (a >= b).then_some(a - b);
        Some(SpanCounters {
            accepted: diff(self.accepted, before.accepted)?,
            refused: diff(self.refused, before.refused)?,
            sent: diff(self.sent, before.sent)?,
            send_failed: diff(self.send_failed, before.send_failed)?,
            enqueue_failed: diff(self.enqueue_failed, before.enqueue_failed)?,
            queue_size: self.queue_size,
        })
    }

    pub fn lost(&self) -> f64 {
        self.refused + self.enqueue_failed + self.send_failed
    }
}

fn gauge(samples: &[Sample], name: &str) -> f64 {
    exposition::sum(samples, name).unwrap_or(0.0)
}

/// What the agent's increase says, given how many requests the loadgen sent. Every request
/// makes several spans (loadgen client, app server, app -> db client, db server), and the
/// demo's steady loadgen and Linkerd's proxies add more, so `accepted >= requests` is expected.
pub fn judge(increase: Option<&SpanCounters>, requests_sent: u64) -> Vec<Check> {
    let scrape = format!("scrape {REMOTE_AGENT_ADMIN}/metrics before and after");
    let Some(increase) = increase else {
        return vec![
            Check::new(
                "agent: spans",
                Verdict::Warn,
                "a counter went down between the scrapes: the agent restarted during the run",
            )
            .hint("look at the agent's restarts and logs (namespace observability)")
            .query(scrape),
        ];
    };
    vec![
        accepted(increase, requests_sent).query(scrape.clone()),
        forwarded(increase).query(scrape.clone()),
        lost(increase).query(scrape),
    ]
}

fn accepted(increase: &SpanCounters, requests_sent: u64) -> Check {
    let name = "agent: spans accepted";
    let detail = format!(
        "{} spans accepted for {requests_sent} requests sent",
        increase.accepted
    );
    let verdict = match ratio(increase.accepted, requests_sent as f64) {
        Some(r) => proportion_verdict(r, 1.0),
        None => Verdict::Warn,
    };
    Check::new(name, verdict, detail).hint(
        "spans are not reaching the agent: check OTEL_EXPORTER_OTLP_ENDPOINT of the demo, \
         the agent's readiness, and its otelcol_receiver_refused_spans",
    )
}

fn forwarded(increase: &SpanCounters) -> Check {
    let name = "agent: spans forwarded to Tempo";
    let Some(share) = ratio(increase.sent, increase.accepted) else {
        return Check::new(name, Verdict::Warn, "no spans accepted, none to forward")
            .hint("see `agent: spans accepted`");
    };
    let detail = format!(
        "{} of {} accepted spans sent ({:.1}%), {} still queued",
        increase.sent,
        increase.accepted,
        share * 100.0,
        increase.queue_size
    );
    Check::new(name, proportion_verdict(share, 0.99), detail).hint(
        "the agent cannot keep up with or reach tempo-distributor-lgtm-central: check the link \
         (`deployer status`), otelcol_exporter_queue_size and agent_exporter_send_retries",
    )
}

fn lost(increase: &SpanCounters) -> Check {
    let name = "agent: spans lost";
    let lost = increase.lost();
    let detail = format!(
        "refused {}, dropped (queue full) {}, failed to send {}",
        increase.refused, increase.enqueue_failed, increase.send_failed
    );
    let verdict = match ratio(lost, increase.accepted + increase.refused) {
        _ if lost == 0.0 => Verdict::Pass,
        Some(share) if share <= 0.01 => Verdict::Warn,
        _ => Verdict::Fail,
    };
    Check::new(name, verdict, detail).hint(
        "the agent's queue overflowed or Tempo refused spans: raise the agent's queue size, \
         lower --rate, or look at the tempo-distributor's logs for rate limits",
    )
}
