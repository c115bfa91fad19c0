//! JSON log lines on stdout, one object per line, with the trace and span ids of the request
//! the line was written in (taken from the OpenTelemetry context), so Loki can link to Tempo.
//!
//! Why not `tracing_subscriber::fmt().json()`: it costs about 20 µs per line here (it builds a
//! `serde_json::Value` map per event and writes through a locked `LineWriter`, a syscall per
//! line). This layer formats straight into a reused buffer and appends the bytes to a shared
//! buffer that a writer thread flushes in batches: it wakes once for the first line after a
//! flush, then lingers [`LINGER`] (or until [`FLUSH_BYTES`] are pending) so that under load one
//! `write(2)` and one wake-up carry hundreds of lines instead of one each.
//!
//! A request never waits for the log: when [`MAX_PENDING_BYTES`] are pending (stdout is slower
//! than the lines come), further lines are dropped and counted in
//! `demo_app_log_lines_dropped_total` ([`dropped_lines_counter`]).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry::Context;
use opentelemetry::trace::TraceContextExt;
use prometheus_client::metrics::counter::Counter;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Context as LayerContext, Filter};
use tracing_subscriber::registry::LookupSpan;

/// Pending bytes beyond which new lines are dropped (and counted) rather than wait.
const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;

/// Pending bytes that end the writer's linger early: one `write(2)` of about this size.
const FLUSH_BYTES: usize = 64 * 1024;

/// How long the writer lets lines accumulate after the first one: the most a line waits before
/// it is written (when fewer than [`FLUSH_BYTES`] come in that time).
const LINGER: Duration = Duration::from_millis(5);

/// Lines dropped because the writer could not keep up. Global because the log pipeline is: one
/// subscriber per process, installed by [`super::Telemetry::init`].
static DROPPED_LINES: LazyLock<Counter<u64, AtomicU64>> = LazyLock::new(Counter::default);

/// The counter of dropped log lines, to register in a metrics registry.
pub fn dropped_lines_counter() -> Counter<u64, AtomicU64> {
    DROPPED_LINES.clone()
}

/// The log layer's filter: `RUST_LOG` for events. Spans pass it only when `RUST_LOG` has a
/// span directive (`[name]` or `[{field}]`), which needs them: the layer writes events alone,
/// and a span that no layer wants is never created, which is what makes `OTEL_SDK_DISABLED`
/// free.
pub fn log_filter<S>(env: EnvFilter, directives: &str) -> impl Filter<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let events_only = (!directives.contains('[')).then(|| filter_fn(|meta| meta.is_event()));
    env.and(events_only)
}

/// A `tracing` layer that writes each event as one JSON object per line.
pub struct JsonLayer {
    sink: Arc<Pending>,
}

/// Flushes and stops the writer thread when dropped; owned by `main` so the last lines of a
/// shutting-down process are written.
pub struct LogGuard {
    sink: Arc<Pending>,
    writer: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Pending {
    state: Mutex<PendingState>,
    /// Signalled for the first line after a flush, at [`FLUSH_BYTES`], and on close.
    filled: Condvar,
}

#[derive(Default)]
struct PendingState {
    bytes: Vec<u8>,
    closed: bool,
}

/// Creates the layer and its writer thread, writing to `out` (stdout in the binary).
pub fn json_layer(out: Box<dyn Write + Send>) -> (JsonLayer, LogGuard) {
    let sink = Arc::new(Pending::default());
    let writer_sink = sink.clone();
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_loop(&writer_sink, out))
        .expect("spawning the log writer thread");
    (
        JsonLayer { sink: sink.clone() },
        LogGuard {
            sink,
            writer: Some(writer),
        },
    )
}

fn write_loop(sink: &Pending, mut out: Box<dyn Write + Send>) {
    let mut batch = Vec::with_capacity(FLUSH_BYTES);
    while sink.take_batch(&mut batch) {
        // A broken stdout must not take the service down; there is nowhere else to report it.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
    }
    let _ = out.flush();
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.sink.lock().closed = true;
        self.sink.filled.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        let before = state.bytes.len();
        if before.saturating_add(line.len()) > MAX_PENDING_BYTES {
            drop(state);
            DROPPED_LINES.inc();
            return;
        }
        state.bytes.extend_from_slice(line);
        let crossed = before < FLUSH_BYTES && state.bytes.len() >= FLUSH_BYTES;
        drop(state);
        // Only these two wake the writer: the first line starts its linger, a full batch ends it.
        if before == 0 || crossed {
            self.filled.notify_one();
        }
    }

    /// Waits for lines, lingers for more, and swaps them into `batch` (empty on entry). False
    /// once closed and drained.
    fn take_batch(&self, batch: &mut Vec<u8>) -> bool {
        let mut state = self.lock();
        while state.bytes.is_empty() && !state.closed {
            state = self.filled.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        let lingering_until = Instant::now() + LINGER;
        while state.bytes.len() < FLUSH_BYTES && !state.closed {
            let left = lingering_until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .filled
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if state.bytes.is_empty() {
            return false; // closed, nothing left
        }
        std::mem::swap(batch, &mut state.bytes);
        true
    }
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        LINE.with(|line| {
            // A re-entrant event (logging while formatting) gets a fresh buffer.
            let mut fresh;
            let mut borrowed = line.try_borrow_mut();
            let buf: &mut String = match borrowed.as_deref_mut() {
                Ok(buf) => buf,
                Err(_) => {
                    fresh = String::new();
                    &mut fresh
                }
            };
            buf.clear();
            format_event(buf, event, SystemTime::now());
            self.sink.push(buf.as_bytes());
        });
    }
}

/// Formats one event as a JSON object followed by a newline.
fn format_event(buf: &mut String, event: &Event<'_>, now: SystemTime) {
    let meta = event.metadata();
    buf.push_str("{\"timestamp\":\"");
    write_rfc3339(buf, now);
    buf.push_str("\",\"level\":\"");
    buf.push_str(meta.level().as_str());
    buf.push_str("\",\"target\":");
    push_json_str(buf, meta.target());
    Context::map_current(|cx| {
        let span = cx.span();
        let ids = span.span_context();
        if ids.is_valid() {
            buf.push_str(",\"trace_id\":\"");
            push_hex(buf, &ids.trace_id().to_bytes());
            buf.push_str("\",\"span_id\":\"");
            push_hex(buf, &ids.span_id().to_bytes());
            buf.push('"');
        }
    });
    event.record(&mut JsonFields { buf });
    buf.push_str("}\n");
}

/// Writes each field as a top-level key; `message` is the event's text.
struct JsonFields<'a> {
    buf: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.buf.push(',');
        push_json_str(self.buf, field.name());
        self.buf.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(self.buf, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.buf.push_str(itoa::Buffer::new().format(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.buf.push_str(itoa::Buffer::new().format(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            self.buf.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            push_json_str(self.buf, &value.to_string());
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.buf.push_str(if value { "true" } else { "false" });
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        push_json_display(self.buf, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // The message of every event comes here (as `fmt::Arguments`): formatted straight
        // into the line, not into a `String` first.
        self.key(field);
        self.buf.push('"');
        let _ = write!(JsonEscaped(self.buf), "{value:?}");
        self.buf.push('"');
    }
}

/// Appends `value`'s `Display` text as a JSON string literal.
fn push_json_display(buf: &mut String, value: &dyn std::fmt::Display) {
    buf.push('"');
    let _ = write!(JsonEscaped(buf), "{value}");
    buf.push('"');
}

/// A `fmt::Write` that escapes what is written to it for the inside of a JSON string.
struct JsonEscaped<'a>(&'a mut String);

impl std::fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        push_json_str_contents(self.0, s);
        Ok(())
    }
}

/// Appends `bytes` as lowercase hex (trace and span ids, as W3C and OTLP/JSON spell them).
pub(crate) fn push_hex(buf: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    buf.reserve(bytes.len() * 2);
    for b in bytes {
        buf.push(char::from(DIGITS[usize::from(b >> 4)]));
        buf.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(buf: &mut String, s: &str) {
    buf.push('"');
    push_json_str_contents(buf, s);
    buf.push('"');
}

/// Appends `s` escaped for the inside of a JSON string: runs that need no escape (nearly all
/// text) are copied whole.
fn push_json_str_contents(buf: &mut String, s: &str) {
    let mut plain_from = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..0x20 => "",
            _ => continue,
        };
        // Every byte matched above is ASCII, so `i` is a character boundary.
        buf.push_str(&s[plain_from..i]);
        if escape.is_empty() {
            let _ = write!(buf, "\\u{byte:04x}");
        } else {
            buf.push_str(escape);
        }
        plain_from = i + 1;
    }
    buf.push_str(&s[plain_from..]);
}

/// `t` as RFC 3339 UTC with microseconds (also used for timestamps in API responses).
pub fn format_rfc3339(t: SystemTime) -> String {
    let mut s = String::with_capacity(27);
    write_rfc3339(&mut s, t);
    s
}

/// Appends `t` as RFC 3339 UTC with microseconds, e.g. `2026-11-27T18:01:02.123456Z`.
fn write_rfc3339(buf: &mut String, t: SystemTime) {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    // Digit by digit rather than `write!`: this runs for every log line.
    push_digits(buf, year.clamp(0, 9999) as u64, 4);
    buf.push('-');
    push_digits(buf, u64::from(month), 2);
    buf.push('-');
    push_digits(buf, u64::from(day), 2);
    buf.push('T');
    push_digits(buf, rem / 3600, 2);
    buf.push(':');
    push_digits(buf, (rem / 60) % 60, 2);
    buf.push(':');
    push_digits(buf, rem % 60, 2);
    buf.push('.');
    push_digits(buf, u64::from(since_epoch.subsec_micros()), 6);
    buf.push('Z');
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
fn push_digits(buf: &mut String, n: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10_u64.pow(place)) % 10;
        buf.push(char::from(b'0' + digit as u8));
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339_in_utc() {
        let mut buf = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_795_881_662_123_456);
        write_rfc3339(&mut buf, t);
        assert_eq!(buf, "2026-11-28T16:01:02.123456Z");
        buf.clear();
        write_rfc3339(&mut buf, UNIX_EPOCH + Duration::from_secs(951_782_400)); // leap day
        assert_eq!(buf, "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn escapes_json_strings() {
        let mut buf = String::new();
        push_json_str(&mut buf, "a\"b\\c\nd\u{1}é");
        assert_eq!(buf, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&buf).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn ids_are_lowercase_hex_as_w3c_spells_them() {
        use opentelemetry::trace::{SpanId, TraceId};
        let trace_id = TraceId::from_hex("04bf92f3577b34da6a3ce929d0e0e473").unwrap();
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let mut buf = String::new();
        push_hex(&mut buf, &trace_id.to_bytes());
        assert_eq!(buf, trace_id.to_string());
        buf.clear();
        push_hex(&mut buf, &span_id.to_bytes());
        assert_eq!(buf, "00f067aa0ba902b7");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Counts flushes (one per batch the writer hands over) and can hold every write until
    /// released, to play a stdout that cannot keep up.
    #[derive(Clone, Default)]
    struct SlowOut {
        bytes: Arc<Mutex<Vec<u8>>>,
        flushes: Arc<std::sync::atomic::AtomicUsize>,
        held: Arc<(Mutex<bool>, Condvar)>,
    }
    impl SlowOut {
        fn hold(&self, on: bool) {
            *self.held.0.lock().unwrap() = on;
            self.held.1.notify_all();
        }
    }
    impl Write for SlowOut {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut held = self.held.0.lock().unwrap();
            while *held {
                held = self.held.1.wait(held).unwrap();
            }
            self.bytes.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.flushes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
    }

    #[test]
    fn lines_are_written_in_batches_bounded_by_size_and_linger() {
        let out = SlowOut::default();
        let (layer, guard) = json_layer(Box::new(out.clone()));
        let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        // Lines as a busy server logs them: one every few tens of microseconds, each one
        // finding the writer idle (the old writer woke and wrote for nearly every line).
        let lines = 2_000;
        let started = Instant::now();
        for _ in 0..lines {
            layer.sink.push(&line);
            std::thread::sleep(Duration::from_micros(50));
        }
        let elapsed = started.elapsed();
        drop(guard);
        assert_eq!(
            out.bytes.lock().unwrap().len(),
            lines * line.len(),
            "nothing lost"
        );
        // Each batch either reached FLUSH_BYTES or lingered LINGER since its first line.
        let bound = lines * line.len() / FLUSH_BYTES
            + (elapsed.as_micros() / LINGER.as_micros()) as usize
            + 2;
        let flushes = out.flushes.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            flushes <= bound,
            "{flushes} flushes for {lines} lines in {elapsed:?}, bound {bound}"
        );
    }

    #[test]
    fn a_stalled_writer_never_blocks_the_caller_lines_beyond_the_bound_are_counted() {
        let out = SlowOut::default();
        out.hold(true);
        let (layer, guard) = json_layer(Box::new(out.clone()));
        let line = vec![b'y'; 1024];
        let pushes = MAX_PENDING_BYTES / line.len() * 2 + 10;
        let dropped_before = dropped_lines_counter().get();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..pushes {
                layer.sink.push(&line);
            }
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("pushing lines must not wait for a stalled writer");
        let dropped = dropped_lines_counter().get() - dropped_before;
        // The writer took at most one batch before it stalled; the buffer holds the rest.
        assert!(
            dropped as usize >= pushes - 2 * MAX_PENDING_BYTES / 1024,
            "{dropped}"
        );
        out.hold(false);
        drop(guard);
        let written = out.bytes.lock().unwrap().len() / 1024;
        assert_eq!(
            written as u64 + dropped,
            pushes as u64,
            "every line written or counted"
        );
    }

    /// The lines written to `out` so far, parsed.
    fn parsed(out: &Captured) -> Vec<serde_json::Value> {
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_carry_the_innermost_span_ids_and_rust_log_never_filters_spans() {
        use opentelemetry_sdk::trace::SdkTracerProvider;
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt;

        let provider = SdkTracerProvider::builder().build();
        let out = Captured::default();
        let (layer, guard) = json_layer(Box::new(out.clone()));
        let subscriber = tracing_subscriber::registry()
            .with(crate::telemetry::traces::span_layer(&provider))
            .with(layer.with_filter(log_filter(EnvFilter::new("warn"), "warn")));
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("outer");
            let _outer = outer.enter();
            tracing::warn!("in outer");
            tracing::info_span!("inner").in_scope(|| tracing::warn!("in inner"));
            tracing::info!("filtered out by the log level");
            tracing::warn!("back in outer");
        });
        drop(guard);
        let lines = parsed(&out);
        let messages: Vec<_> = lines.iter().map(|l| l["message"].clone()).collect();
        assert_eq!(messages, ["in outer", "in inner", "back in outer"]);
        let ids = |i: usize| (lines[i]["trace_id"].clone(), lines[i]["span_id"].clone());
        assert!(ids(0).0.is_string(), "info spans exist under RUST_LOG=warn");
        assert_eq!(
            ids(0),
            ids(2),
            "the outer span's ids again after the inner one"
        );
        assert_eq!(ids(1).0, ids(0).0, "one trace");
        assert_ne!(ids(1).1, ids(0).1, "the inner span's own id");
    }

    #[test]
    fn every_line_is_json_with_fields_and_trace_ids_inside_a_span_context() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        use tracing_subscriber::layer::SubscriberExt;

        let out = Captured::default();
        let (layer, guard) = json_layer(Box::new(out.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span_id = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                count = 3_u64,
                delta = -2_i64,
                duration_ms = 1.312,
                ok = true,
                route = "/links/{id}",
                "outside, \"quoted\"\tand {}",
                "formatted"
            );
            let cx = Context::new().with_remote_span_context(SpanContext::new(
                trace_id,
                span_id,
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ));
            let _attached = cx.attach();
            tracing::warn!(error = "bad \"thing\"", "inside");
        });
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "outside, \"quoted\"\tand formatted");
        assert_eq!(lines[0]["count"], 3);
        assert_eq!(lines[0]["delta"], -2);
        assert_eq!(lines[0]["duration_ms"], 1.312);
        assert_eq!(lines[0]["ok"], true);
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(lines[1]["span_id"], "00f067aa0ba902b7");
        assert_eq!(lines[1]["error"], "bad \"thing\"");
        assert_eq!(lines[1]["level"], "WARN");
    }

    #[test]
    fn without_the_span_layer_no_span_is_created_unless_rust_log_names_one() {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt;

        let spans_enabled = |directives: &str| {
            let (layer, _guard) = json_layer(Box::new(Captured::default()));
            let filter = log_filter(EnvFilter::new(directives), directives);
            let subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
            tracing::subscriber::with_default(subscriber, || {
                !tracing::info_span!("store").is_disabled()
            })
        };
        assert!(!spans_enabled("info"), "the log alone needs no span");
        assert!(
            spans_enabled("warn,[store]=info"),
            "a span directive needs the spans it names"
        );
    }
}
