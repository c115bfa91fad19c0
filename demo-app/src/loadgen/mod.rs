//! `demo-app loadgen`: an open-loop load generator for the demo app (and the pipeline behind it).
//!
//! - [`schedule`]: when each request is due (constant rate, optional linear ramp).
//! - [`workload`]: what to send (weighted list/post/vote, realistic payloads, known ids).
//! - [`client`]: how it is sent (pooled HTTP/1.1, a client span that starts the trace).
//! - [`stats`]: outcomes, the HDR latency histogram, progress, the summary (`--output json`).
//! - [`metrics`]: its own Prometheus metrics on `--metrics-addr`.
//!
//! Open loop (`--rate N`): requests are sent when due whether or not earlier ones finished;
//! latency is measured from the intended send time, so a slow target shows up as latency
//! instead of silently lowering the rate (coordinated omission). When `--max-in-flight`
//! requests are outstanding, a due send is counted as missed, never delayed.
//! Closed loop (`--rate max`): `--connections` workers send back to back.

pub mod client;
pub mod limits;
pub mod metrics;
pub mod schedule;
pub mod stats;
pub mod workload;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::cli::parse_ratio;
use client::Sender;
use metrics::LoadgenMetrics;
use schedule::Schedule;
use stats::{Counters, Mode, Recorder, RunInfo, Sample, Summary};
use workload::{KnownIds, Mix};

/// `--rate`: requests per second, or `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSecond(f64),
    Max,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "max" {
            return Ok(Rate::Max);
        }
        limits::per_second(s, limits::RATE, "200")
            .map(Rate::PerSecond)
            .map_err(|e| format!("{e}, or max"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Base URL(s) of the app to load, comma-separated; requests go round-robin.
    #[arg(long = "target", env = "LOADGEN_TARGETS", value_delimiter = ',', required = true, value_parser = parse_http_url)]
    pub targets: Vec<Url>,

    /// Requests per second (open loop), or `max` for closed-loop maximum throughput.
    #[arg(
        long,
        env = "LOADGEN_RATE",
        default_value = "10",
        allow_negative_numbers = true
    )]
    pub rate: Rate,

    /// Ramp the rate linearly from --ramp-from to --rate over this long.
    #[arg(long, env = "LOADGEN_RAMP_UP", default_value = "0s", value_parser = limits::parse_ramp_up)]
    pub ramp_up: Duration,

    /// Starting rate of the ramp, requests per second.
    #[arg(long, env = "LOADGEN_RAMP_FROM", default_value_t = 0.0, value_parser = limits::parse_ramp_from)]
    pub ramp_from: f64,

    /// Workers for --rate max, each with its own connection.
    #[arg(long, env = "LOADGEN_CONNECTIONS", default_value_t = 32, value_parser = limits::parse_connections)]
    pub connections: usize,

    /// How long to send; 0 runs until SIGTERM/SIGINT.
    #[arg(long, env = "LOADGEN_DURATION", default_value = "30s", value_parser = limits::parse_run_duration)]
    pub duration: Duration,

    /// Stop after this many intended sends (whichever of --duration/--requests comes first).
    #[arg(long, env = "LOADGEN_REQUESTS", value_parser = limits::parse_requests)]
    pub requests: Option<u64>,

    /// Most requests outstanding at once; due sends beyond it are counted as missed.
    #[arg(long, env = "LOADGEN_MAX_IN_FLIGHT", default_value_t = 1000, value_parser = limits::parse_max_in_flight)]
    pub max_in_flight: u64,

    /// Timeout of each request.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "5s", value_parser = limits::parse_timeout)]
    pub timeout: Duration,

    /// Weighted mix of operations.
    #[arg(long, env = "LOADGEN_MIX", default_value = "list=8,post=1,vote=1")]
    pub mix: Mix,

    /// Path prefix of the API (`/api` for the app; empty for the db's own API).
    #[arg(long, env = "LOADGEN_API_PREFIX", default_value = "/api")]
    pub api_prefix: String,

    /// Summary format at the end (json: see the README for the schema).
    #[arg(long, env = "LOADGEN_OUTPUT", value_enum, default_value = "human")]
    pub output: Output,

    /// Serve the load generator's metrics on this address (for Prometheus).
    #[arg(long, env = "LOADGEN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Without a terminal (e.g. in a Kubernetes Job, where the live line is not shown), log a
    /// progress line this often; 0 turns it off.
    #[arg(long, env = "LOADGEN_PROGRESS_INTERVAL", default_value = "10s", value_parser = limits::parse_progress_interval)]
    pub progress_interval: Duration,

    /// Exit with status 3 when the error ratio exceeds this (e.g. 0.01).
    #[arg(long, env = "LOADGEN_MAX_ERROR_RATIO", value_parser = parse_ratio)]
    pub max_error_ratio: Option<f64>,

    /// Seed of the workload's random choices [default: random].
    #[arg(long, env = "LOADGEN_SEED")]
    pub seed: Option<u64>,
}

fn parse_http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if url.scheme() != "http" || url.host_str().is_none() {
        return Err(format!(
            "{s:?}: give an http:// URL with a host, e.g. http://app:8080"
        ));
    }
    Ok(url)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("cannot reach {target}: {reason}; is the app running there? check --target")]
    Unreachable { target: String, reason: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("the load test failed: {0}; its results are lost, so no summary is reported")]
    Internal(String),
    #[error("cannot serve metrics on {addr}: {source}; choose another --metrics-addr")]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl LoadgenError {
    /// 2 for what the user can fix (input, an unreachable target, a busy address); 1 when the
    /// load generator itself failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadgenError::Internal(_) => 1,
            _ => 2,
        }
    }
}

/// Everything the request tasks share.
struct Shared {
    sender: Sender,
    ids: KnownIds,
    mix: Mix,
    prefix: String,
    counters: Arc<Counters>,
    max_in_flight: u64,
    metrics: LoadgenMetrics,
    samples: mpsc::UnboundedSender<Sample>,
}

/// Runs the load test until its end (duration, request count or `shutdown`), then waits for
/// the requests still in flight (up to the request timeout) and returns the summary.
pub async fn run(
    args: LoadgenArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, LoadgenError> {
    validate(&args)?;
    let max_idle = usize::try_from(args.max_in_flight).unwrap_or(usize::MAX);
    let sender = Sender::new(&args.targets, args.timeout, max_idle);
    sender
        .preflight()
        .await
        .map_err(|(target, reason)| LoadgenError::Unreachable { target, reason })?;
    let metrics = LoadgenMetrics::default();
    if let Some(addr) = args.metrics_addr {
        serve_metrics(addr, &metrics).await?;
    }

    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_signal.cancel();
    });

    let (tx, rx) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        sender,
        ids: KnownIds::default(),
        mix: args.mix,
        prefix: args.api_prefix.trim_end_matches('/').to_owned(),
        counters: counters.clone(),
        max_in_flight: args.max_in_flight,
        metrics,
        samples: tx,
    });
    let start = Instant::now();
    let progress = std::io::stdout().is_terminal();
    let finished = CancellationToken::new();
    let report = if progress {
        Report::Line
    } else if args.progress_interval.is_zero() {
        Report::Quiet
    } else {
        Report::Log(args.progress_interval)
    };
    let collector = tokio::spawn(collect(
        rx,
        counters.clone(),
        start,
        report,
        finished.clone(),
    ));
    let seed = args.seed.unwrap_or_else(rand::random);
    tracing::info!(
        targets = ?args.targets.iter().map(Url::as_str).collect::<Vec<_>>(),
        rate = ?args.rate,
        duration_s = args.duration.as_secs_f64(),
        seed,
        "load test started"
    );

    let (mode, target_rate) = match args.rate {
        Rate::PerSecond(rate) => {
            let schedule = Schedule {
                from: if args.ramp_up.is_zero() {
                    rate
                } else {
                    args.ramp_from
                },
                rate,
                ramp: args.ramp_up,
            };
            open_loop(&shared, &args, schedule, start, &stop, seed).await;
            (Mode::Open, Some(rate))
        }
        Rate::Max => {
            closed_loop(&shared, &args, start, &stop, seed).await;
            (Mode::Closed, None)
        }
    };
    let window = start.elapsed();
    drain(&counters, args.timeout).await;
    drop(shared);
    finished.cancel();
    let recorder = collected(collector.await)?;
    if progress {
        println!();
    }
    let summary = recorder.summary(
        RunInfo {
            targets: args.targets.iter().map(|u| u.to_string()).collect(),
            mode,
            target_rate,
            duration: window,
            max_error_ratio: args.max_error_ratio,
        },
        &counters,
    );
    tracing::info!(
        sent = summary.requests.sent,
        completed = summary.requests.completed,
        missed = summary.requests.missed,
        error_ratio = summary.error_ratio,
        "load test finished"
    );
    Ok(summary)
}

/// The collector's recorder, or an error when its task failed: its samples are gone, and an
/// empty recorder in their place would make a passing summary of a run that measured nothing.
fn collected(joined: Result<Recorder, tokio::task::JoinError>) -> Result<Recorder, LoadgenError> {
    joined.map_err(|e| LoadgenError::Internal(format!("the sample collector failed ({e})")))
}

fn validate(args: &LoadgenArgs) -> Result<(), LoadgenError> {
    if args.max_in_flight == 0 {
        return Err(LoadgenError::Config(
            "--max-in-flight must be at least 1".into(),
        ));
    }
    if args.connections == 0 {
        return Err(LoadgenError::Config(
            "--connections must be at least 1".into(),
        ));
    }
    if args.ramp_from < 0.0 || !args.ramp_from.is_finite() {
        return Err(LoadgenError::Config("--ramp-from must be 0 or more".into()));
    }
    if matches!(args.rate, Rate::Max) && !args.ramp_up.is_zero() {
        return Err(LoadgenError::Config(
            "--ramp-up needs a rate (--rate N), not --rate max".into(),
        ));
    }
    Ok(())
}

async fn serve_metrics(addr: SocketAddr, metrics: &LoadgenMetrics) -> Result<(), LoadgenError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| LoadgenError::MetricsBind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(metrics_addr = %local, "serving metrics");
    let router = crate::telemetry::metrics::router(metrics.registry());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(())
}

/// Sends each request when it is due; counts it as missed when the in-flight cap is reached.
/// The wall clock ends the run: when the rate is above what this machine can schedule, the loop
/// falls behind, and at the end of the window the sends that were due but never started are
/// counted as behind schedule (instead of being sent late, long after `--duration`).
async fn open_loop(
    shared: &Arc<Shared>,
    args: &LoadgenArgs,
    schedule: Schedule,
    start: Instant,
    stop: &CancellationToken,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    // The sending window ends at the duration or when request N+1 would be due.
    let by_duration = (!args.duration.is_zero()).then_some(args.duration);
    let by_count = args.requests.map(|n| schedule.send_time(n));
    let window = match (by_duration, by_count) {
        (Some(d), Some(c)) => Some(d.min(c)),
        (d, c) => d.or(c),
    };
    // `None` (no window, or one beyond what an Instant can hold): only a signal ends the run.
    let end = window.and_then(|w| start.checked_add(w));
    let mut i: u64 = 0;
    loop {
        let due = schedule.send_time(i);
        if window.is_some_and(|w| due >= w) {
            // Wait out the window, so the achieved rate is measured over the whole of it.
            if let Some(end) = end {
                tokio::select! {
                    () = tokio::time::sleep_until(end) => {}
                    () = stop.cancelled() => {}
                }
            }
            return;
        }
        let Some(due_at) = start.checked_add(due) else {
            // Due beyond any representable instant: never, so only a signal ends the run.
            stop.cancelled().await;
            return;
        };
        let now = Instant::now();
        if due_at > now {
            tokio::select! {
                () = tokio::time::sleep_until(due_at) => {}
                () = stop.cancelled() => return,
            }
        } else if stop.is_cancelled() || end.is_some_and(|end| now >= end) {
            // Behind schedule when the run ends (its window, or a signal): what was due by
            // then and never started is counted, not sent.
            let elapsed = now.duration_since(start);
            let until = window.map_or(elapsed, |w| elapsed.min(w));
            let behind = schedule.due_before(until).saturating_sub(i);
            let c = &shared.counters;
            c.intended.fetch_add(behind, Ordering::Relaxed);
            c.behind_schedule.fetch_add(behind, Ordering::Relaxed);
            return;
        }
        launch(shared, due_at, &mut rng);
        i = i.saturating_add(1);
        if i.is_multiple_of(512) {
            // Behind schedule the loop never sleeps: let the request tasks run.
            tokio::task::yield_now().await;
        }
    }
}

/// Starts one request meant to go out at `due_at`, or counts it as missed.
fn launch(shared: &Arc<Shared>, due_at: Instant, rng: &mut StdRng) {
    let c = &shared.counters;
    c.intended.fetch_add(1, Ordering::Relaxed);
    if c.in_flight.load(Ordering::Relaxed) >= shared.max_in_flight {
        c.missed.fetch_add(1, Ordering::Relaxed);
        shared.metrics.missed();
        return;
    }
    c.sent.fetch_add(1, Ordering::Relaxed);
    // Counted before the task is spawned, so the cap holds for tasks not yet running.
    let in_flight = InFlight::start(&shared.counters);
    let op = shared.mix.pick(rng);
    let planned = workload::plan(op, &shared.prefix, &shared.ids, rng);
    let shared = shared.clone();
    tokio::spawn(async move {
        let _in_flight = in_flight;
        one_request(&shared, planned, due_at).await;
    });
}

/// One request in flight: counted from its start until it ends, and counted as lost when its
/// task panics (it then has no outcome, and the summary cannot pass).
struct InFlight(Arc<Counters>);

impl InFlight {
    fn start(counters: &Arc<Counters>) -> Self {
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(counters.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        if std::thread::panicking() {
            self.0.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends one request and records it; latency counts from `intended`.
async fn one_request(shared: &Shared, planned: workload::PlannedRequest, intended: Instant) {
    let reply = shared.sender.send(&planned).await;
    let latency = intended.elapsed();
    if shared.mix.needs_ids()
        && let Some(body) = &reply.body
    {
        shared.ids.remember(workload::ids_in(body));
    }
    shared
        .metrics
        .record(planned.operation, reply.outcome, latency, &reply.span);
    let _ = shared.samples.send(Sample {
        operation: planned.operation,
        outcome: reply.outcome,
        latency,
    });
}

/// `--connections` workers sending back to back until the end.
async fn closed_loop(
    shared: &Arc<Shared>,
    args: &LoadgenArgs,
    start: Instant,
    stop: &CancellationToken,
    seed: u64,
) {
    let deadline = (!args.duration.is_zero())
        .then(|| start.checked_add(args.duration))
        .flatten();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..args.connections {
        let shared = shared.clone();
        let stop = stop.clone();
        let limit = args.requests;
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
        workers.spawn(async move {
            let c = &shared.counters;
            loop {
                if stop.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let n = c.intended.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|l| n >= l) {
                    c.intended.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                c.sent.fetch_add(1, Ordering::Relaxed);
                let _in_flight = InFlight::start(&shared.counters);
                let op = shared.mix.pick(&mut rng);
                let planned = workload::plan(op, &shared.prefix, &shared.ids, &mut rng);
                one_request(&shared, planned, Instant::now()).await;
            }
        });
    }
    // Workers notice the stop token after their current request (bounded by the timeout). A
    // worker that panicked has counted its request as lost (see `InFlight`).
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a load worker failed; the summary will not pass");
        }
    }
}

/// Waits until no request is in flight (each ends by its timeout at the latest).
async fn drain(counters: &Counters, timeout: Duration) {
    let grace = timeout.saturating_add(Duration::from_secs(1));
    let deadline = Instant::now().checked_add(grace);
    while counters.in_flight.load(Ordering::Relaxed) > 0
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How progress is shown while the test runs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Report {
    /// On a terminal: the live line, rewritten every second.
    Line,
    /// Elsewhere (a pod's log, a CI log): an info log line this often.
    Log(Duration),
    Quiet,
}

/// Records samples until `finished` (after the drain), showing progress as `report` says.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<Sample>,
    counters: Arc<Counters>,
    start: Instant,
    report: Report,
    finished: CancellationToken,
) -> Recorder {
    let mut recorder = Recorder::default();
    let period = match report {
        Report::Log(every) => every,
        Report::Line | Report::Quiet => Duration::from_secs(1),
    };
    // The first tick of `interval` is immediate; progress at 0 s says nothing. (The period is
    // bounded by `--progress-interval`'s range; one beyond any Instant would mean no progress.)
    let first = start.checked_add(period);
    let report = if first.is_some() {
        report
    } else {
        Report::Quiet
    };
    let mut tick = tokio::time::interval_at(first.unwrap_or(start), period);
    loop {
        tokio::select! {
            sample = rx.recv() => match sample {
                Some(s) => recorder.record(&s),
                None => break,
            },
            () = finished.cancelled() => {
                while let Ok(s) = rx.try_recv() {
                    recorder.record(&s);
                }
                break;
            }
            _ = tick.tick(), if report != Report::Quiet => {
                if report == Report::Line {
                    let line = recorder.progress_line(start.elapsed(), &counters);
                    let mut out = std::io::stdout().lock();
                    let _ = write!(out, "\r\x1b[2K{line}");
                    let _ = out.flush();
                } else {
                    recorder.log_progress(start.elapsed(), &counters);
                }
            }
        }
    }
    recorder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_collector_is_an_error_not_an_empty_passing_summary() {
        let joined = tokio::spawn(async {
            if std::hint::black_box(true) {
                panic!("the collector panics");
            }
            Recorder::default()
        })
        .await;
        let result = collected(joined);
        assert!(
            matches!(&result, Err(LoadgenError::Internal(m)) if m.contains("collector")),
            "{:?}",
            result.err()
        );
        assert_eq!(result.err().map(|e| e.exit_code()), Some(1));
    }

    #[tokio::test]
    async fn a_request_task_that_panics_is_counted_lost_and_leaves_the_in_flight_count() {
        let counters = Arc::new(Counters::default());
        let guard = InFlight::start(&counters);
        assert_eq!(counters.in_flight.load(Ordering::Relaxed), 1);
        let joined = tokio::spawn(async move {
            let _guard = guard;
            if std::hint::black_box(true) {
                panic!("a request task panics");
            }
        })
        .await;
        assert!(joined.is_err());
        assert_eq!(counters.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(counters.lost.load(Ordering::Relaxed), 1);
        let summary = Recorder::default().summary(
            RunInfo {
                targets: vec!["http://x".into()],
                mode: Mode::Open,
                target_rate: Some(1.0),
                duration: Duration::from_secs(1),
                max_error_ratio: None,
            },
            &counters,
        );
        assert!(!summary.passed);
    }
}
