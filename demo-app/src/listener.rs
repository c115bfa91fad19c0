//! Serving an axum router on a TCP listener with bounds that a stalled, slow or idle client
//! cannot get around. Every listener of the binary (db and app, their metrics, the agent's
//! OTLP/HTTP, OTLP/gRPC and metrics listeners) goes through [`serve`], configured by
//! [`ListenerArgs`].
//!
//! Why our own accept loop instead of `axum::serve`: axum builds its hyper connections without
//! a timer, so hyper's HTTP/1 header-read timeout never runs (hyper-1.12.0
//! `src/common/time.rs` `Time::check`: a default timeout without a timer is ignored), and it
//! accepts without bound. hyper's own header timer would not be enough either: it starts when
//! the connection is ready to read a head, so it also cuts the keep-alive idle wait
//! (`src/proto/h1/conn.rs`: `poll_read_head`, and `State::idle` re-arms the read), and
//! nothing times out hyper-util's protocol sniffing (`src/server/conn/auto/mod.rs`
//! `ReadVersion`: a client that connects and sends nothing) nor an HTTP/2 connection without
//! open streams. So each connection gets a watchdog (see [`activity`]) with these rules:
//!
//! - no request in flight and nothing received: closed after `--idle-timeout` (from accept,
//!   or from the end of the last response);
//! - HTTP/1, no request in flight, and the first bytes of a request received: its head must
//!   be complete within `--header-read-timeout` of those first bytes, or the connection is
//!   closed;
//! - a request in flight is bounded by its body timeout (the handlers' `--body-timeout`).
//!
//! At most `--max-connections` connections are open per listener; past that the listener
//! stops accepting (new clients wait in the kernel's accept queue, they are not refused) and
//! says so in one log line per [`LIMIT_LOG_EVERY`].

pub mod activity;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::cli::parse_duration;
use activity::{Activity, Expiry, GuardedBody, TrackedIo};

/// Client-connection bounds shared by every listener. The env variable of each flag is set
/// by the subcommand that flattens this (`DEMO_*` for serve, `AGENT_*` for the agent).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Client connections (every listener)")]
pub struct ListenerArgs {
    /// An HTTP/1 request's headers must arrive whole within this long of its first byte;
    /// a slower client is disconnected.
    #[arg(long, default_value = "10s", value_parser = parse_timeout)]
    pub header_read_timeout: Duration,

    /// A connection with no request in flight is closed after this long: a new connection
    /// that sends nothing, an HTTP/1 keep-alive connection, an HTTP/2 connection without
    /// open streams (keep it above the clients' pool idle timeouts, 30-60 s here).
    #[arg(long, default_value = "75s", value_parser = parse_timeout)]
    pub idle_timeout: Duration,

    /// A request body must arrive whole within this long of its headers (a stalled one is
    /// answered 408 / DEADLINE_EXCEEDED and the connection closed).
    #[arg(long, default_value = "15s", value_parser = parse_timeout)]
    pub body_timeout: Duration,

    /// Most client connections open at once on each listener; further clients wait in the
    /// accept queue until one closes.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
}

impl ListenerArgs {
    fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
        }
    }
}

/// The connection timeouts the watchdog applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
}

/// A timeout flag: a duration above zero (zero would close every connection at once).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: a timeout must be above zero")),
        d => Ok(d),
    }
}

/// How often, at most, the listener logs that it is at its connection bound.
pub const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// How long an idle connection told to close (HTTP/2 GOAWAY) may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `stop` is cancelled; then stops accepting, lets every
/// open connection finish its requests (idle ones close at once, HTTP/2 ones get GOAWAY) and
/// returns once all are closed. `name` labels the log lines (`api`, `metrics`, `grpc`...).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    args: &ListenerArgs,
    name: &'static str,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let limits = args.limits();
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let mut at_limit = LimitLog::new(name, limits.max_connections);
    let mut accept_errors = Throttle::default();
    loop {
        let permit = tokio::select! {
            permit = take_slot(&slots, &mut at_limit) => permit,
            () = stop.cancelled() => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    router.clone(),
                    limits,
                    stop.clone(),
                    permit,
                ));
            }
            Err(e) => accept_failed(name, e, &mut accept_errors).await,
        }
    }
    drop(listener);
    // Every connection holds a slot until it ends: all slots back means all closed.
    let _all = slots.acquire_many(limits.max_connections).await;
    Ok(())
}

/// A connection slot; waits (and says so, rate-limited) when all are taken.
async fn take_slot(slots: &Arc<Semaphore>, log: &mut LimitLog) -> OwnedSemaphorePermit {
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return permit;
    }
    log.hit();
    // The semaphore is never closed, so acquiring only waits.
    loop {
        if let Ok(permit) = slots.clone().acquire_owned().await {
            return permit;
        }
    }
}

/// Lets a log line through at most once per [`LIMIT_LOG_EVERY`], counting the occurrences.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttle {
    /// `Some(occurrences since the last line)` when a line may be logged now.
    fn tick(&mut self) -> Option<u64> {
        self.since_last = self.since_last.saturating_add(1);
        if self.last.is_some_and(|t| t.elapsed() < LIMIT_LOG_EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.since_last))
    }
}

/// One warning per [`LIMIT_LOG_EVERY`] while the bound keeps being hit, with how often.
struct LimitLog {
    name: &'static str,
    max: u32,
    throttle: Throttle,
}

impl LimitLog {
    fn new(name: &'static str, max: u32) -> Self {
        Self {
            name,
            max,
            throttle: Throttle::default(),
        }
    }

    fn hit(&mut self) {
        if let Some(times_hit) = self.throttle.tick() {
            tracing::warn!(
                listener = self.name,
                max_connections = self.max,
                times_hit,
                "connection limit reached: new clients wait until a connection closes (raise --max-connections if this is normal load)"
            );
        }
    }
}

/// An accept error is a per-connection failure (reset before accept) or a resource limit
/// (EMFILE/ENFILE): neither stops the listener; the latter waits a moment so the loop does
/// not spin, and is logged at most once per [`LIMIT_LOG_EVERY`].
async fn accept_failed(name: &'static str, e: std::io::Error, throttle: &mut Throttle) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted) {
        return;
    }
    if let Some(times) = throttle.tick() {
        tracing::warn!(listener = name, error = %e, times, "cannot accept connections (out of file descriptors? lower --max-connections or raise the limit); retrying");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    if let Err(e) = stream.set_nodelay(true) {
        // Only latency: responses wait on Nagle's algorithm.
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    let activity = Activity::new();
    let io = TokioIo::new(TrackedIo::new(stream, activity.clone()));
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = in_flight.begin_request();
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(Body::new)).await?;
            Ok::<_, Infallible>(response.map(|body| Body::new(GuardedBody::new(body, guard))))
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut watchdog = activity.watchdog(limits);
    let mut stopping = false;
    let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            // The connection first: the watchdog reads what its poll changed.
            biased;
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            expiry = &mut watchdog, if grace.is_none() => {
                tracing::debug!(%peer, reason = expiry.as_str(), "closing the connection");
                if expiry == Expiry::HeaderTimeout {
                    return; // nothing to finish: drop it now
                }
                conn.as_mut().graceful_shutdown();
                grace = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
            () = until(grace.as_mut()), if grace.is_some() => return,
        }
    }
}

/// Completes when the sleep does (never without one).
async fn until(sleep: Option<&mut std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_must_be_positive() {
        assert_eq!(parse_timeout("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_timeout("0s").unwrap_err().contains("above zero"));
        assert!(parse_timeout("x").is_err());
    }

    #[test]
    fn a_throttled_line_goes_out_once_per_interval_with_the_count() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.tick(), Some(1));
        assert_eq!(throttle.tick(), None, "no second line within the interval");
        assert_eq!(throttle.tick(), None);
        throttle.last = Instant::now().checked_sub(LIMIT_LOG_EVERY);
        assert_eq!(throttle.tick(), Some(3), "the next line says how many");
    }
}
