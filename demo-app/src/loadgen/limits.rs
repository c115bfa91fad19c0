//! The range of every numeric `loadgen` flag, checked while clap parses the command line (so a
//! value outside it exits 2 with `invalid value '...' for '--flag'` and the range, before
//! anything runs). The bounds keep all the run's time arithmetic (send times, deadlines,
//! `Instant` + `Duration`) far from overflow, and each says why it is where it is.

use std::time::Duration;

use crate::cli::parse_duration;

/// `--rate`: one request per 1000 s at the least; `1e9`/s is beyond any one machine (the
/// scheduler counts what it cannot send in time as behind schedule).
pub const RATE: (f64, f64) = (0.001, 1e9);
/// `--ramp-from`: 0 (start from nothing) up to the largest `--rate`.
pub const RAMP_FROM: (f64, f64) = (0.0, RATE.1);
/// `--duration` and `--ramp-up`: 30 days (0 = until SIGTERM/SIGINT for `--duration`).
pub const LONGEST_RUN: Duration = Duration::from_secs(30 * 24 * 3600);
/// `--timeout`: above 0 (a request needs some time), at most an hour (the latency histogram's
/// top; the run's end waits this long for requests still in flight).
pub const TIMEOUT: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(3600));
/// `--progress-interval`: 0 (off), or 100 ms to a day.
pub const PROGRESS_INTERVAL: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(24 * 3600));
/// `--connections`: each is a task and a socket.
pub const CONNECTIONS: (u64, u64) = (1, 10_000);
/// `--max-in-flight`: each in-flight request may hold a socket (and a file descriptor).
pub const MAX_IN_FLIGHT: (u64, u64) = (1, 1_000_000);
/// `--requests`: 10^12 sends outlast any run (over 11 days at 10^6/s).
pub const REQUESTS: (u64, u64) = (1, 1_000_000_000_000);
/// One weight of `--mix`: three of them add up without overflow.
pub const MIX_WEIGHT_MAX: u32 = 1_000_000;

/// A number of requests per second within `range`, named after `flag` in the message.
pub fn per_second(text: &str, (min, max): (f64, f64), example: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && (min..=max).contains(&r) => Ok(r),
        _ => Err(format!(
            "give requests per second from {min} to {max:e} (e.g. {example})"
        )),
    }
}

/// `--ramp-from`.
pub fn parse_ramp_from(text: &str) -> Result<f64, String> {
    per_second(text, RAMP_FROM, "10")
}

fn whole(text: &str, (min, max): (u64, u64), example: u64) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("give a whole number from {min} to {max} (e.g. {example})"))
}

/// `--connections`.
pub fn parse_connections(text: &str) -> Result<usize, String> {
    let n = whole(text, CONNECTIONS, 32)?;
    usize::try_from(n).map_err(|_| format!("{n} connections do not fit this machine"))
}

/// `--max-in-flight`.
pub fn parse_max_in_flight(text: &str) -> Result<u64, String> {
    whole(text, MAX_IN_FLIGHT, 1000)
}

/// `--requests`.
pub fn parse_requests(text: &str) -> Result<u64, String> {
    whole(text, REQUESTS, 1000)
}

fn duration_within(
    text: &str,
    (min, max): (Duration, Duration),
    zero: Option<&str>,
    example: &str,
) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() && zero.is_some() {
        return Ok(d);
    }
    if (min..=max).contains(&d) {
        return Ok(d);
    }
    let zero = zero.map_or(String::new(), |z| format!(", or 0 {z}"));
    Err(format!(
        "give a duration from {} to {}{zero} (e.g. {example})",
        show(min),
        show(max)
    ))
}

/// `--duration`: 0 runs until a signal.
pub fn parse_run_duration(text: &str) -> Result<Duration, String> {
    duration_within(
        text,
        (Duration::from_millis(1), LONGEST_RUN),
        Some("to run until SIGTERM/SIGINT"),
        "30s, 5m",
    )
}

/// `--ramp-up`: 0 is no ramp.
pub fn parse_ramp_up(text: &str) -> Result<Duration, String> {
    duration_within(
        text,
        (Duration::from_millis(1), LONGEST_RUN),
        Some("for no ramp"),
        "30s",
    )
}

/// `--timeout`: never 0.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    duration_within(text, TIMEOUT, None, "5s")
}

/// `--progress-interval`: 0 turns it off.
pub fn parse_progress_interval(text: &str) -> Result<Duration, String> {
    duration_within(text, PROGRESS_INTERVAL, Some("to turn it off"), "10s")
}

/// A bound in the unit a user would type.
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms < 1000 => format!("{ms}ms"),
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ => format!("{}s", d.as_secs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_outside_their_range_are_refused_with_the_range() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        let zero = parse_timeout("0s").unwrap_err();
        assert!(zero.contains("from 1ms to 1h"), "{zero}");
        assert!(parse_timeout("2h").is_err());
        assert_eq!(parse_run_duration("0"), Ok(Duration::ZERO));
        let long = parse_run_duration("999999999h").unwrap_err();
        assert!(long.contains("720h") && long.contains("or 0"), "{long}");
        assert_eq!(parse_progress_interval("0"), Ok(Duration::ZERO));
        assert!(parse_progress_interval("50ms").is_err());
        assert!(parse_progress_interval("25h").is_err());
    }

    #[test]
    fn counts_and_rates_outside_their_range_are_refused() {
        assert!(parse_connections("0").is_err());
        assert!(parse_connections("10001").is_err());
        assert_eq!(parse_max_in_flight("1"), Ok(1));
        assert!(parse_requests("0").unwrap_err().contains("from 1 to"));
        assert!(parse_ramp_from("-1").is_err());
        assert!(parse_ramp_from("NaN").is_err());
        assert!(parse_ramp_from("inf").is_err());
        assert_eq!(parse_ramp_from("0"), Ok(0.0));
    }
}
