//! What one connection is doing, as its watchdog needs to know: how many requests are in
//! flight (counted from the service call until the response body is dropped, i.e. written
//! or abandoned), since when it has been idle, and whether the first bytes of a next request
//! have arrived. The socket wrapper [`TrackedIo`] reports bytes received; the body wrapper
//! [`GuardedBody`] ends a request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Limits;

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing in flight for `--idle-timeout`.
    Idle,
    /// An HTTP/1 request's head did not arrive whole within `--header-read-timeout`.
    HeaderTimeout,
}

impl Expiry {
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::Idle => "idle timeout",
            Expiry::HeaderTimeout => "header read timeout",
        }
    }
}

/// The HTTP/2 connection preface (RFC 9113, section 3.4); anything else is HTTP/1.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// This many bytes of the HTTP/2 preface seen so far (treated as HTTP/1 meanwhile, so a
    /// stalled preface is bounded by the header timeout too).
    Sniffing(usize),
    Http1,
    Http2,
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    idle_since: Instant,
    /// When the first byte arrived while nothing was in flight (HTTP/1: a head begins).
    head_started: Option<Instant>,
    protocol: Protocol,
}

#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
                protocol: Protocol::Sniffing(0),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn received(&self, bytes: &[u8]) {
        let mut s = self.state();
        if let Protocol::Sniffing(seen) = s.protocol {
            s.protocol = sniff(seen, bytes);
        }
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
        }
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_add(1);
        s.head_started = None;
        RequestGuard(self.clone())
    }

    fn end_request(&self) {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
    }

    /// When the connection expires as things stand, and why; `None` while a request is in
    /// flight (or when the deadline is beyond what an `Instant` can hold).
    fn deadline(&self, limits: Limits) -> Option<(Instant, Expiry)> {
        let s = self.state();
        if s.in_flight > 0 {
            return None;
        }
        match s.head_started {
            Some(started) if s.protocol != Protocol::Http2 => started
                .checked_add(limits.header_read_timeout)
                .map(|at| (at, Expiry::HeaderTimeout)),
            _ => s
                .idle_since
                .checked_add(limits.idle_timeout)
                .map(|at| (at, Expiry::Idle)),
        }
    }

    /// A future that completes when the connection has expired under `limits`.
    pub fn watchdog(self: &Arc<Self>, limits: Limits) -> Watchdog {
        let first = recheck_at(Instant::now(), limits);
        Watchdog {
            activity: self.clone(),
            limits,
            sleep: Box::pin(tokio::time::sleep_until(first.into())),
            armed: first,
        }
    }
}

/// Completes when its connection has expired. It is polled in the connection's own task,
/// after the connection (a biased `select!`), so it sees every change the connection made in
/// that poll without being woken for it: no wake-up, lock or timer work per request.
///
/// Its one timer is moved earlier only when the deadline moves earlier (a request head
/// begins). A deadline that moved later (a request ended) is left alone: the timer fires
/// early, the deadline is checked again and the timer set to it.
pub struct Watchdog {
    activity: Arc<Activity>,
    limits: Limits,
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// When `sleep` fires.
    armed: Instant,
}

impl Watchdog {
    fn arm(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at.into());
        self.armed = at;
    }
}

impl Future for Watchdog {
    type Output = Expiry;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Expiry> {
        loop {
            let deadline = self.activity.deadline(self.limits);
            if let Some((at, _)) = deadline
                && at < self.armed
            {
                self.arm(at);
            }
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            match deadline {
                Some((at, why)) if at <= now => return Poll::Ready(why),
                Some((at, _)) => self.arm(at),
                // A request in flight has no deadline here; look again after an idle period.
                None => {
                    let next = recheck_at(now, self.limits);
                    self.arm(next);
                }
            }
        }
    }
}

/// When to look again while no deadline is known: an idle period on, at most an hour (so an
/// enormous `--idle-timeout` cannot overflow an `Instant`).
fn recheck_at(now: Instant, limits: Limits) -> Instant {
    const MAX_RECHECK: Duration = Duration::from_secs(3600);
    now + limits.idle_timeout.min(MAX_RECHECK)
}

/// The protocol after `bytes` more, with `seen` bytes of the HTTP/2 preface matched so far.
fn sniff(seen: usize, bytes: &[u8]) -> Protocol {
    let rest = H2_PREFACE.get(seen..).unwrap_or_default();
    let n = rest.len().min(bytes.len());
    if rest.get(..n) != bytes.get(..n) {
        return Protocol::Http1;
    }
    match seen.saturating_add(n) {
        matched if matched >= H2_PREFACE.len() => Protocol::Http2,
        matched => Protocol::Sniffing(matched),
    }
}

/// One request in flight; ends it when dropped.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// A response body that keeps its request in flight until hyper is done with it.
pub struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl GuardedBody {
    pub fn new(inner: Body, guard: RequestGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that reports what it receives to the connection's [`Activity`].
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Some(new) = buf.filled().get(before..)
            && !new.is_empty()
        {
            self.activity.received(new);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(60),
        max_connections: 1,
    };

    #[test]
    fn sniffs_http2_by_its_preface_in_pieces() {
        assert_eq!(sniff(0, b"GET / HTTP/1.1"), Protocol::Http1);
        assert_eq!(sniff(0, b"PRI * HT"), Protocol::Sniffing(8));
        assert_eq!(sniff(8, b"TP/2.0\r\n\r\nSM\r\n\r\n\0\0"), Protocol::Http2);
        assert_eq!(sniff(8, b"XX"), Protocol::Http1);
        assert_eq!(sniff(0, b""), Protocol::Sniffing(0));
    }

    #[test]
    fn deadlines_follow_what_the_connection_does() {
        let a = Activity::new();
        let (at, why) = a.deadline(LIMITS).unwrap();
        assert_eq!(why, Expiry::Idle);
        assert!(at > Instant::now() + Duration::from_secs(50));
        a.received(b"GET / HT");
        assert_eq!(a.deadline(LIMITS).unwrap().1, Expiry::HeaderTimeout);
        let guard = a.begin_request();
        assert!(a.deadline(LIMITS).is_none(), "no deadline while in flight");
        a.received(b"body bytes");
        drop(guard);
        assert_eq!(a.deadline(LIMITS).unwrap().1, Expiry::Idle);

        let h2 = Activity::new();
        h2.received(H2_PREFACE);
        assert_eq!(
            h2.deadline(LIMITS).unwrap().1,
            Expiry::Idle,
            "HTTP/2 frames between streams are not a head"
        );
        let huge = Limits {
            idle_timeout: Duration::MAX,
            ..LIMITS
        };
        assert!(Activity::new().deadline(huge).is_none(), "no overflow");
    }

    const SHORT: Limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(900),
        max_connections: 1,
    };

    /// Polls the watchdog alongside `during` (as the connection's task would, after the
    /// connection) and says when and why it fired.
    async fn fires(a: &Arc<Activity>, during: impl Future<Output = ()>) -> (Duration, Expiry) {
        let started = Instant::now();
        let mut dog = a.watchdog(SHORT);
        tokio::pin!(during);
        let mut during_done = false;
        loop {
            tokio::select! {
                biased;
                () = &mut during, if !during_done => during_done = true,
                why = &mut dog => return (started.elapsed(), why),
            }
        }
    }

    #[tokio::test]
    async fn the_watchdog_fires_at_the_idle_then_the_header_deadline_without_being_woken() {
        let idle = Activity::new();
        let (after, why) = fires(&idle, async {}).await;
        assert_eq!(why, Expiry::Idle);
        assert!(after >= SHORT.idle_timeout, "{after:?}");

        // A head begins after the timer was set for the (later) idle deadline: the timer
        // must move earlier.
        let head = Activity::new();
        let (after, why) = fires(&head, async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            head.received(b"GET / HT");
        })
        .await;
        assert_eq!(why, Expiry::HeaderTimeout);
        assert!(
            after >= Duration::from_millis(400) && after < SHORT.idle_timeout,
            "header deadline, not the idle one: {after:?}"
        );
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_cut_and_idleness_counts_from_its_end() {
        let a = Activity::new();
        let (after, why) = fires(&a, async {
            let guard = a.begin_request();
            // Longer than both timeouts: the timer fires meanwhile and finds nothing due.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            drop(guard);
        })
        .await;
        assert_eq!(why, Expiry::Idle);
        assert!(
            after >= Duration::from_millis(1200) + SHORT.idle_timeout,
            "idle from the end of the request: {after:?}"
        );
    }
}
