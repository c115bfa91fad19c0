//! Readiness that reflects the exporter: not ready once exports have kept failing for longer
//! than a threshold (a health check that stays green while every export fails is the
//! complaint we must not repeat), and not ready while draining.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct ExportHealth {
    unready_after: Duration,
    /// When the current run of failures began; `None` after a success.
    failing_since: Mutex<Option<Instant>>,
    draining: AtomicBool,
}

impl ExportHealth {
    pub fn new(unready_after: Duration) -> Self {
        Self {
            unready_after,
            failing_since: Mutex::new(None),
            draining: AtomicBool::new(false),
        }
    }

    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.failing_since.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record_success(&self) {
        *self.since() = None;
    }

    pub fn record_failure(&self) {
        self.since().get_or_insert_with(Instant::now);
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `Err(reason)` when the agent should not get new traffic.
    pub fn check(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Relaxed) {
            return Err("shutting down".into());
        }
        match *self.since() {
            Some(since) if since.elapsed() >= self.unready_after => Err(format!(
                "exports have failed for {:.0}s (threshold {:.0}s)",
                since.elapsed().as_secs_f64(),
                self.unready_after.as_secs_f64()
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_unready_after_the_threshold_and_back_on_success() {
        let h = ExportHealth::new(Duration::ZERO);
        assert!(h.check().is_ok());
        h.record_failure();
        assert!(h.check().unwrap_err().contains("failed"));
        h.record_success();
        assert!(h.check().is_ok());
        let patient = ExportHealth::new(Duration::from_secs(3600));
        patient.record_failure();
        assert!(patient.check().is_ok());
        patient.start_draining();
        assert_eq!(patient.check().unwrap_err(), "shutting down");
    }
}
