//! Kubernetes events -> Loki (on when `--events-loki-url` is set): a kube-runtime watcher on
//! core/v1 Events, batched by count and time, pushed with the same retry policy as traces,
//! and remembered in a state file ([`super::sent_events`]) so a restart sends nothing twice.

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::loki::{LokiClient, LokiEntry, entry};
use super::metrics::{AgentMetrics, ExporterLabels};
use super::retry::{Backoff, BackoffPolicy, SendError};
use super::sent_events::{SentEvents, StateError};
use crate::cli::parse_duration;

const LABELS: ExporterLabels = ExporterLabels { exporter: "loki" };

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Kubernetes events to Loki")]
pub struct EventsArgs {
    /// Loki base URL (e.g. http://loki-gateway.loki.svc); setting it turns the events path on.
    /// The Kubernetes API is found as kubectl does: KUBECONFIG, ~/.kube/config, in-cluster.
    #[arg(long, env = "AGENT_EVENTS_LOKI_URL")]
    pub events_loki_url: Option<Url>,

    /// Remembers which events were sent, so a restart does not send them again.
    #[arg(
        long,
        env = "AGENT_EVENTS_STATE_FILE",
        default_value = "/var/lib/demo-agent/events-state.json"
    )]
    pub events_state_file: PathBuf,

    /// Watch one namespace only [default: all namespaces].
    #[arg(long, env = "AGENT_EVENTS_NAMESPACE")]
    pub events_namespace: Option<String>,

    /// Push once this many events wait.
    #[arg(long, env = "AGENT_EVENTS_BATCH_SIZE", default_value_t = 500)]
    pub events_batch_size: usize,

    /// Push what waits once the oldest event has waited this long.
    #[arg(long, env = "AGENT_EVENTS_BATCH_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub events_batch_timeout: Duration,

    /// How many sent events the state file remembers (Kubernetes keeps events for 1 h).
    #[arg(long, env = "AGENT_EVENTS_REMEMBER", default_value_t = 50_000)]
    pub events_remember: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "cannot reach the Kubernetes API configuration (KUBECONFIG, ~/.kube/config or in-cluster): {0}"
    )]
    Kube(#[from] kube::Error),
    #[error("cannot set up the Kubernetes client: {0}")]
    KubeConfig(#[from] kube::config::InferConfigError),
    #[error("cannot set up the Loki client: {0}")]
    Loki(#[from] reqwest::Error),
}

pub struct Pipeline {
    api: Api<Event>,
    loki: LokiClient,
    sent: SentEvents,
    batch_size: usize,
    batch_timeout: Duration,
    metrics: AgentMetrics,
    backoff: BackoffPolicy,
}

/// An event waiting to be pushed, with what identifies it in the state file.
struct Pending {
    uid: String,
    resource_version: String,
    entry: LokiEntry,
}

impl Pipeline {
    /// `None` when `--events-loki-url` is unset.
    pub async fn from_args(
        args: &EventsArgs,
        tenant: &str,
        metrics: AgentMetrics,
        backoff: BackoffPolicy,
    ) -> Result<Option<Self>, EventsError> {
        let Some(loki_url) = &args.events_loki_url else {
            return Ok(None);
        };
        let sent = SentEvents::load(&args.events_state_file, args.events_remember)?;
        let config = kube::Config::infer().await?;
        let client = kube::Client::try_from(config)?;
        let api = match &args.events_namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        tracing::info!(
            loki = %loki_url,
            remembered = sent.len(),
            state_file = %args.events_state_file.display(),
            "watching Kubernetes events"
        );
        Ok(Some(Self {
            api,
            loki: LokiClient::new(loki_url, tenant, Duration::from_secs(10))?,
            sent,
            batch_size: args.events_batch_size.max(1),
            batch_timeout: args.events_batch_timeout,
            metrics,
            backoff,
        }))
    }

    /// Watches and pushes until `stop`; then pushes what waits unless `abandon` comes first.
    pub async fn run(mut self, stop: CancellationToken, abandon: CancellationToken) {
        let events = watcher(self.api.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut events = std::pin::pin!(events);
        let mut pending: Vec<Pending> = Vec::new();
        let mut due = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(due), if !pending.is_empty() => {
                    self.flush(&mut pending, &abandon).await;
                }
                next = events.next() => match next {
                    Some(Ok(event)) => {
                        if pending.is_empty() {
                            let now = tokio::time::Instant::now();
                            // A huge --events-batch-timeout means "no time limit".
                            due = now
                                .checked_add(self.batch_timeout)
                                .or_else(|| now.checked_add(Duration::from_secs(31_536_000)))
                                .unwrap_or(now);
                        }
                        self.consider(event, &mut pending);
                        if pending.len() >= self.batch_size {
                            self.flush(&mut pending, &abandon).await;
                        }
                    }
                    // The watcher retries by itself (with backoff); say why it had to.
                    Some(Err(e)) => tracing::warn!(error = %e, "Kubernetes events watch failed; retrying"),
                    None => break,
                },
            }
        }
        if !pending.is_empty() {
            self.flush(&mut pending, &abandon).await;
        }
    }

    /// Queues an event unless it was sent already (or is waiting).
    fn consider(&mut self, event: Event, pending: &mut Vec<Pending>) {
        let uid = event.metadata.uid.clone().unwrap_or_default();
        let rv = event.metadata.resource_version.clone().unwrap_or_default();
        let duplicate = self.sent.was_sent(&uid, &rv)
            || pending
                .iter()
                .any(|p| p.uid == uid && p.resource_version == rv);
        if duplicate && !uid.is_empty() {
            self.metrics
                .skipped_log_records
                .get_or_create(&LABELS)
                .inc();
            return;
        }
        pending.push(Pending {
            entry: entry(&event),
            uid,
            resource_version: rv,
        });
    }

    /// Pushes `pending` (retrying per policy), then remembers it as sent.
    async fn flush(&mut self, pending: &mut Vec<Pending>, abandon: &CancellationToken) {
        let entries: Vec<LokiEntry> = pending.iter().map(|p| p.entry.clone()).collect();
        let n = entries.len() as u64;
        match self.push_with_retry(&entries, abandon).await {
            Ok(()) => {
                self.metrics
                    .sent_log_records
                    .get_or_create(&LABELS)
                    .inc_by(n);
                for p in pending.drain(..) {
                    self.sent.remember(p.uid, p.resource_version);
                }
                if let Err(e) = self.sent.save() {
                    tracing::error!(error = %e, "events were sent but cannot be remembered; a restart may send them again");
                }
            }
            Err(reason) => {
                self.metrics
                    .send_failed_log_records
                    .get_or_create(&LABELS)
                    .inc_by(n);
                tracing::error!(events = n, %reason, "Kubernetes events dropped");
                pending.clear();
            }
        }
    }

    async fn push_with_retry(
        &self,
        entries: &[LokiEntry],
        abandon: &CancellationToken,
    ) -> Result<(), String> {
        let mut backoff = Backoff::new(self.backoff);
        let started = tokio::time::Instant::now();
        loop {
            let (reason, hint) = match self.loki.push(entries).await {
                Ok(()) => return Ok(()),
                Err(SendError::Permanent { reason }) => return Err(reason),
                Err(SendError::Retryable {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            let delay = backoff.next_delay(hint);
            if started.elapsed().saturating_add(delay) > backoff.max_elapsed() {
                return Err(format!("retries exhausted: {reason}"));
            }
            tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, "pushing events to Loki failed; will retry");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = abandon.cancelled() => return Err(format!("shutdown deadline passed: {reason}")),
            }
        }
    }
}
