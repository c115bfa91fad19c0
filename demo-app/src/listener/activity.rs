//! What one connection is doing, as its watchdog needs to know: how many requests are in
//! flight (counted from the service call until the response body is dropped, i.e. written
//! or abandoned), since when it has been idle, and whether the first bytes of a next request
//! have arrived. The socket wrapper [`TrackedIo`] reports bytes received; the body wrapper
//! [`GuardedBody`] ends a request.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

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
    changed: Notify,
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
            changed: Notify::new(),
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
            self.changed.notify_one();
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
            self.changed.notify_one();
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

    /// Completes when the connection has expired under `limits`.
    pub async fn expired(self: Arc<Self>, limits: Limits) -> Expiry {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                None => changed.await,
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
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
    use std::time::Duration;

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
}
