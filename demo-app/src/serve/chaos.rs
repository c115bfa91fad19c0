//! Failure and latency injection, so dashboards have something to show: a steady error ratio
//! and added latency, plus an optional periodic "chaos window" with harsher settings. Seeded,
//! so a run can be repeated. `GET /chaos` shows the state, `PUT /chaos {"enabled": bool}`
//! switches injection on and off at runtime.

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use tracing::field::Empty;

use super::error::{ApiError, Json};
use crate::cli::parse_duration;
use crate::middleware::{self, Screen};
use crate::telemetry::int_attribute;
use crate::telemetry::metrics::{FaultKind, HttpMetrics};
use tower::Service;

/// An added-latency distribution: `none`, `fixed:50ms`, `uniform:10ms..200ms`, `exp:20ms`
/// (exponential with that mean, capped at ten times the mean).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    None,
    Fixed(Duration),
    Uniform(Duration, Duration),
    Exponential(Duration),
}

impl FromStr for Latency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "use none, fixed:50ms, uniform:10ms..200ms or exp:20ms";
        let s = s.trim();
        if s == "none" {
            return Ok(Latency::None);
        }
        let (kind, arg) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not a latency distribution: {hint}"))?;
        match kind {
            "fixed" => Ok(Latency::Fixed(parse_duration(arg)?)),
            "exp" => Ok(Latency::Exponential(parse_duration(arg)?)),
            "uniform" => {
                let (lo, hi) = arg.split_once("..").ok_or_else(|| {
                    format!("{s:?}: uniform needs a range, e.g. uniform:10ms..200ms")
                })?;
                let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
                if lo > hi {
                    return Err(format!("{s:?}: the range's low end is above its high end"));
                }
                Ok(Latency::Uniform(lo, hi))
            }
            other => Err(format!("unknown latency distribution {other:?}: {hint}")),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Latency::None => f.write_str("none"),
            Latency::Fixed(d) => write!(f, "fixed:{}ms", d.as_millis()),
            Latency::Uniform(lo, hi) => {
                write!(f, "uniform:{}ms..{}ms", lo.as_millis(), hi.as_millis())
            }
            Latency::Exponential(d) => write!(f, "exp:{}ms", d.as_millis()),
        }
    }
}

impl Latency {
    fn sample(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Uniform(lo, hi) if lo == hi => lo,
            Latency::Uniform(lo, hi) => rng.random_range(lo..=hi),
            Latency::Exponential(mean) => {
                let u: f64 = rng.random();
                mean.mul_f64((-(1.0 - u).ln()).min(10.0))
            }
        }
    }
}

/// Settings for injection (from flags).
#[derive(Debug, Clone)]
pub struct ChaosSettings {
    pub enabled: bool,
    pub error_ratio: f64,
    pub latency: Latency,
    /// A harsher window of `length` every `every`, if set.
    pub window: Option<ChaosWindow>,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChaosWindow {
    #[serde(serialize_with = "as_secs")]
    pub every: Duration,
    #[serde(serialize_with = "as_secs")]
    pub length: Duration,
    pub error_ratio: f64,
    #[serde(serialize_with = "as_display")]
    pub latency: Latency,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn as_display<S: serde::Serializer>(l: &Latency, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(l)
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub delay: Duration,
    pub fail: bool,
}

impl Fault {
    /// What is injected, as the `chaos.fault` span attribute.
    pub fn kind(&self) -> &'static str {
        match (self.delay.is_zero(), self.fail) {
            (true, false) => "none",
            (false, false) => "latency",
            (true, true) => "error",
            (false, true) => "latency+error",
        }
    }
}

pub struct Chaos {
    settings: ChaosSettings,
    enabled: AtomicBool,
    started: Instant,
    /// Where in its period the first window starts, derived from the seed.
    phase: Duration,
    rng: Mutex<StdRng>,
}

impl Chaos {
    pub fn new(settings: ChaosSettings) -> Arc<Self> {
        let mut rng = StdRng::seed_from_u64(settings.seed);
        let phase = settings
            .window
            .as_ref()
            .map_or(Duration::ZERO, |w| w.every.mul_f64(rng.random::<f64>()));
        Arc::new(Self {
            enabled: AtomicBool::new(settings.enabled),
            settings,
            started: Instant::now(),
            phase,
            rng: Mutex::new(rng),
        })
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    fn in_window(&self, now: Instant) -> bool {
        self.settings.window.as_ref().is_some_and(|w| {
            // Saturating: the phase comes from --chaos-every, which may be absurdly long.
            let t = now.duration_since(self.started).saturating_add(self.phase);
            let every = w.every.as_nanos().max(1);
            (t.as_nanos() % every) < w.length.as_nanos()
        })
    }

    /// Decides the fault for one request; nothing when injection is off.
    pub fn decide(&self, now: Instant) -> Fault {
        let none = Fault {
            delay: Duration::ZERO,
            fail: false,
        };
        if !self.enabled() {
            return none;
        }
        let (ratio, latency) = match &self.settings.window {
            Some(w) if self.in_window(now) => (w.error_ratio, w.latency),
            _ => (self.settings.error_ratio, self.settings.latency),
        };
        if ratio == 0.0 && latency == Latency::None {
            return none;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        Fault {
            delay: latency.sample(&mut *rng),
            fail: ratio > 0.0 && rng.random::<f64>() < ratio,
        }
    }
}

/// Where `GET`/`PUT` of the injection's state is served: never injected, so injection can
/// always be switched off.
pub const CHAOS_PATH: &str = "/chaos";

/// Delays and/or fails API requests as [`Chaos::decide`]s; install with
/// `ScreenLayer(Injection::new(..))` around the routes. A request with nothing injected goes
/// straight on. Only requests that matched a route are injected, and not [`CHAOS_PATH`]'s:
/// unmatched paths get their 404 as they are.
#[derive(Clone)]
pub struct Injection {
    chaos: Arc<Chaos>,
    metrics: Arc<HttpMetrics>,
}

impl Injection {
    pub fn new(chaos: Arc<Chaos>, metrics: HttpMetrics) -> Self {
        Self {
            chaos,
            metrics: Arc::new(metrics),
        }
    }
}

impl Screen for Injection {
    type Work = Fault;

    fn screen(&self, request: &Request) -> Option<Fault> {
        if !self.chaos.enabled() {
            return None;
        }
        let route = request.extensions().get::<MatchedPath>()?;
        if route.as_str() == CHAOS_PATH {
            return None;
        }
        let fault = self.chaos.decide(Instant::now());
        (!fault.delay.is_zero() || fault.fail).then_some(fault)
    }

    async fn handle<S>(self, fault: Fault, request: Request, inner: S) -> Response
    where
        S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
        S::Future: Send,
    {
        match inject(fault, &self.metrics).await {
            Some(failed) => failed,
            None => middleware::call(inner, request).await,
        }
    }
}

/// Applies `fault`: sleeps its delay, then gives the failure answer when it fails the request.
async fn inject(fault: Fault, metrics: &HttpMetrics) -> Option<Response> {
    // A span per injected fault, so a slow or failed trace says why in Tempo.
    let span = tracing::info_span!(
        "inject fault",
        chaos.fault = fault.kind(),
        chaos.delay_ms = int_attribute(fault.delay.as_millis()),
        otel.status_description = Empty,
    );
    if !fault.delay.is_zero() {
        metrics.count_fault(FaultKind::latency);
        tokio::time::sleep(fault.delay)
            .instrument(span.clone())
            .await;
    }
    if !fault.fail {
        return None;
    }
    metrics.count_fault(FaultKind::error);
    span.record("otel.status_description", INJECTED_FAILURE);
    drop(span);
    Some(
        ApiError::internal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure",
            INJECTED_FAILURE.into(),
        )
        .into_response(),
    )
}

const INJECTED_FAILURE: &str = "failure injected on purpose (--error-ratio / chaos window)";

#[derive(Debug, Serialize)]
pub struct ChaosState {
    pub enabled: bool,
    pub error_ratio: f64,
    pub latency: String,
    pub window: Option<ChaosWindow>,
    pub in_window: bool,
    pub seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    pub enabled: bool,
}

pub async fn show(State(chaos): State<Arc<Chaos>>) -> Json<ChaosState> {
    Json(state(&chaos))
}

pub async fn toggle(State(chaos): State<Arc<Chaos>>, Json(t): Json<Toggle>) -> Json<ChaosState> {
    chaos.set_enabled(t.enabled);
    tracing::info!(enabled = t.enabled, "fault injection toggled");
    Json(state(&chaos))
}

fn state(chaos: &Chaos) -> ChaosState {
    ChaosState {
        enabled: chaos.enabled(),
        error_ratio: chaos.settings.error_ratio,
        latency: chaos.settings.latency.to_string(),
        window: chaos.settings.window.clone(),
        in_window: chaos.in_window(Instant::now()),
        seed: chaos.settings.seed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(error_ratio: f64, latency: Latency) -> ChaosSettings {
        ChaosSettings {
            enabled: true,
            error_ratio,
            latency,
            window: None,
            seed: 7,
        }
    }

    #[test]
    fn parses_latency_specs() {
        assert_eq!("none".parse::<Latency>().unwrap(), Latency::None);
        assert_eq!(
            "fixed:50ms".parse::<Latency>().unwrap(),
            Latency::Fixed(Duration::from_millis(50))
        );
        assert_eq!(
            "uniform:10ms..20ms".parse::<Latency>().unwrap(),
            Latency::Uniform(Duration::from_millis(10), Duration::from_millis(20))
        );
        assert!("uniform:20ms..10ms".parse::<Latency>().is_err());
        assert!(
            "gauss:1s"
                .parse::<Latency>()
                .unwrap_err()
                .contains("unknown")
        );
        assert!("50ms".parse::<Latency>().is_err());
    }

    #[test]
    fn error_ratio_is_respected_and_seeded() {
        let run = || {
            let chaos = Chaos::new(settings(0.2, Latency::None));
            let now = Instant::now();
            (0..10_000).filter(|_| chaos.decide(now).fail).count()
        };
        let failed = run();
        assert!((1_700..2_300).contains(&failed), "{failed}");
        assert_eq!(failed, run(), "same seed, same decisions");
    }

    #[test]
    fn latency_stays_in_its_distribution() {
        let chaos = Chaos::new(settings(
            0.0,
            Latency::Uniform(Duration::from_millis(10), Duration::from_millis(20)),
        ));
        for _ in 0..1000 {
            let d = chaos.decide(Instant::now()).delay;
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
        let exp = Chaos::new(settings(
            0.0,
            Latency::Exponential(Duration::from_millis(10)),
        ));
        let mean = (0..10_000)
            .map(|_| exp.decide(Instant::now()).delay.as_secs_f64())
            .sum::<f64>()
            / 10_000.0;
        assert!((0.008..0.012).contains(&mean), "{mean}");
    }

    #[test]
    fn toggled_off_injects_nothing() {
        let chaos = Chaos::new(settings(1.0, Latency::Fixed(Duration::from_secs(1))));
        assert!(chaos.decide(Instant::now()).fail);
        chaos.set_enabled(false);
        assert_eq!(chaos.decide(Instant::now()).delay, Duration::ZERO);
        assert!(!chaos.decide(Instant::now()).fail);
    }

    #[test]
    fn window_applies_its_own_settings_part_of_the_time() {
        let mut s = settings(0.0, Latency::None);
        s.window = Some(ChaosWindow {
            every: Duration::from_secs(10),
            length: Duration::from_secs(3),
            error_ratio: 1.0,
            latency: Latency::None,
        });
        let chaos = Chaos::new(s);
        let start = chaos.started;
        let failing = (0..1000)
            .filter(|i| chaos.decide(start + Duration::from_millis(i * 10)).fail)
            .count();
        assert_eq!(failing, 300, "3 s of every 10 s");
    }
}
