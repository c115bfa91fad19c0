//! Durations on the command line: `500ms`, `90s`, `15m`, `1h`, or plain seconds.

use std::time::Duration;

/// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 90s, 15m or 1h"))?;
    let too_long = || format!("`{text}` is too long");
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "" | "s" => Ok(Duration::from_secs(value)),
        "m" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(too_long),
        "h" => value
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(too_long),
        _ => Err(format!(
            "unknown unit `{unit}` in `{text}`; use ms, s, m or h"
        )),
    }
}

/// Renders a duration the way `parse_duration` reads it (and helm's `--timeout` accepts).
pub fn format_duration(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

/// The range of each duration flag, checked while clap parses it: a value outside exits 2 with
/// the flag, the range and an example, instead of overflowing the `Instant` + `Duration` and
/// `timeout + grace` sums the deployer makes with it (`--wait-timeout 18446744073709551615`
/// used to panic a dry run in `helm::upgrade_install`).
pub mod limits {
    use std::time::Duration;

    use super::parse_duration;

    const SECOND: Duration = Duration::from_secs(1);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn within(text: &str, min: Duration, max: Duration, example: &str) -> Result<Duration, String> {
        let duration = parse_duration(text)?;
        if (min..=max).contains(&duration) {
            return Ok(duration);
        }
        Err(format!(
            "give a duration from {} to {} (e.g. {example})",
            show(min),
            show(max)
        ))
    }

    fn show(d: Duration) -> String {
        let s = d.as_secs();
        match s {
            0 => format!("{}ms", d.as_millis()),
            _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
            _ if s.is_multiple_of(60) => format!("{}m", s / 60),
            _ => format!("{s}s"),
        }
    }

    /// `--start-timeout`: one `minikube start`.
    pub fn start_timeout(text: &str) -> Result<Duration, String> {
        within(text, SECOND, DAY, "15m")
    }

    /// `--wait-timeout`: a rollout, a LoadBalancer IP, helm's `--timeout`.
    pub fn wait_timeout(text: &str) -> Result<Duration, String> {
        within(text, SECOND, DAY, "5m")
    }

    /// `--diagnose-timeout`.
    pub fn diagnose_timeout(text: &str) -> Result<Duration, String> {
        within(text, SECOND, HOUR, "20s")
    }

    /// `verify --deadline`.
    pub fn verify_deadline(text: &str) -> Result<Duration, String> {
        within(text, SECOND, DAY, "2m")
    }

    /// `verify --poll-interval`.
    pub fn poll_interval(text: &str) -> Result<Duration, String> {
        within(text, Duration::from_millis(10), HOUR, "2s")
    }

    /// `loadtest --duration`: whole seconds reach the loadgen (`0s` would run it until
    /// stopped), and at most the loadgen's own bound of 720h.
    pub fn loadtest_duration(text: &str) -> Result<Duration, String> {
        within(text, SECOND, 30 * DAY, "60s")
    }

    /// `loadtest --settle`.
    pub fn settle(text: &str) -> Result<Duration, String> {
        within(text, Duration::ZERO, DAY, "90s")
    }

    /// `loadtest --connections`: the loadgen's own range.
    pub fn connections(text: &str) -> Result<u32, String> {
        text.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| "give a whole number from 1 to 10000 (e.g. 32)".to_string())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn bounds_name_the_range() {
            assert_eq!(wait_timeout("5m"), Ok(Duration::from_secs(300)));
            let huge = wait_timeout("18446744073709551615").unwrap_err();
            assert!(huge.contains("from 1s to 24h"), "{huge}");
            assert!(wait_timeout("0").is_err());
            assert!(loadtest_duration("500ms").is_err());
            assert_eq!(settle("0s"), Ok(Duration::ZERO));
            assert!(poll_interval("5ms").unwrap_err().contains("from 10ms"));
            assert!(connections("0").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("99999999999999999h").is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }
}
