//! When each request of an open-loop run is meant to be sent: a constant arrival rate, with an
//! optional linear ramp from a starting rate. Send times are computed from the request's
//! index (not by adding intervals), so rounding never accumulates and the achieved rate
//! matches the target over any run length.

use std::time::Duration;

/// The arrival rate over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Requests per second at the start of the ramp (equals `rate` without a ramp).
    pub from: f64,
    /// Requests per second after the ramp.
    pub rate: f64,
    /// How long the ramp lasts (zero: no ramp).
    pub ramp: Duration,
}

impl Schedule {
    pub fn constant(rate: f64) -> Self {
        Self {
            from: rate,
            rate,
            ramp: Duration::ZERO,
        }
    }

    /// Requests due by `t` since the start (the integral of the rate).
    pub fn due_by(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        let ramp = self.ramp.as_secs_f64();
        if ramp == 0.0 {
            self.rate * t
        } else if t <= ramp {
            self.from * t + (self.rate - self.from) * t * t / (2.0 * ramp)
        } else {
            self.from * ramp + (self.rate - self.from) * ramp / 2.0 + self.rate * (t - ramp)
        }
    }

    /// When request number `i` (from 0) is due, since the start.
    pub fn send_time(&self, i: u64) -> Duration {
        let n = i as f64;
        let ramp = self.ramp.as_secs_f64();
        let in_ramp = self.due_by(self.ramp);
        let secs = if n < in_ramp && ramp > 0.0 {
            // Solve from*t + (rate-from)/(2*ramp)*t² = n for t.
            let a = (self.rate - self.from) / (2.0 * ramp);
            let b = self.from;
            if a.abs() < f64::EPSILON {
                n / b
            } else {
                (-b + (b * b + 4.0 * a * n).sqrt()) / (2.0 * a)
            }
        } else {
            ramp + (n - in_ramp) / self.rate
        };
        // Saturates: a send due beyond Duration::MAX is never due (NaN cannot occur: the
        // rates are finite and above 0, see `limits`).
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
    }

    /// How many sends are due before `t`: the first index whose send time is `t` or later (by
    /// bisection over `send_time` itself, so it agrees with the sending loop exactly).
    pub fn due_before(&self, t: Duration) -> u64 {
        // An upper bound from the integral (+2 for rounding); `as` saturates at u64::MAX.
        let mut high = (self.due_by(t).max(0.0).ceil() as u64).saturating_add(2);
        let mut low = 0u64;
        while low < high {
            let mid = low.midpoint(high);
            if self.send_time(mid) < t {
                low = mid.saturating_add(1);
            } else {
                high = mid;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_spaces_requests_evenly() {
        let s = Schedule::constant(200.0);
        assert_eq!(s.send_time(0), Duration::ZERO);
        assert_eq!(s.send_time(200), Duration::from_secs(1));
        assert!((s.due_by(Duration::from_secs(5)) - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn ramp_starts_slow_and_reaches_the_rate() {
        let s = Schedule {
            from: 0.0,
            rate: 100.0,
            ramp: Duration::from_secs(10),
        };
        // 500 requests during the ramp (the triangle), then 100/s.
        assert!((s.due_by(Duration::from_secs(10)) - 500.0).abs() < 1e-9);
        assert!((s.send_time(500).as_secs_f64() - 10.0).abs() < 1e-9);
        assert!((s.send_time(600).as_secs_f64() - 11.0).abs() < 1e-9);
        // Halfway through the ramp: 125 requests due (0.5 * 50/s * 5 s).
        assert!((s.send_time(125).as_secs_f64() - 5.0).abs() < 1e-9);
        // Monotonic.
        let times: Vec<_> = (0..1000).map(|i| s.send_time(i)).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn sends_due_before_a_time_agree_with_the_send_times() {
        let s = Schedule::constant(1e7);
        assert_eq!(s.due_before(Duration::ZERO), 0);
        assert_eq!(s.due_before(Duration::from_secs(3)), 30_000_000);
        let ramp = Schedule {
            from: 0.0,
            rate: 100.0,
            ramp: Duration::from_secs(10),
        };
        let n = ramp.due_before(Duration::from_secs(5));
        assert!(ramp.send_time(n) >= Duration::from_secs(5));
        assert!(ramp.send_time(n - 1) < Duration::from_secs(5));
    }

    #[test]
    fn send_times_beyond_any_duration_saturate_instead_of_panicking() {
        let s = Schedule::constant(1e-30);
        assert_eq!(s.send_time(1), Duration::MAX);
        assert_eq!(s.due_before(Duration::from_secs(3600)), 1);
    }

    #[test]
    fn ramp_down_works_too() {
        let s = Schedule {
            from: 100.0,
            rate: 50.0,
            ramp: Duration::from_secs(2),
        };
        let n = s.due_by(Duration::from_secs(2));
        assert!((n - 150.0).abs() < 1e-9);
        assert!((s.send_time(150).as_secs_f64() - 2.0).abs() < 1e-6);
    }
}
