//! Retention periods on the command line (`--metrics-retention 7d`), in whole days: Loki's
//! retention must be a multiple of its 24h index period, and days are what people size disks by.

use std::fmt;

/// A retention of whole days, at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    pub const fn days(days: u32) -> Self {
        Retention { days }
    }

    pub fn in_days(self) -> u32 {
        self.days
    }

    /// In hours (`168h`): the one form Mimir and Loki (Prometheus durations) and Tempo (Go
    /// durations, which have no `d`) all read.
    pub fn as_hours(self) -> String {
        format!("{}h", u64::from(self.days) * 24)
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}d", self.days)
    }
}

/// `7d`, or hours that make whole days (`168h`).
pub fn parse_retention(text: &str) -> Result<Retention, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not a retention: write whole days, e.g. 7d (or 168h)");
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u32 = number.parse().map_err(|_| invalid())?;
    let days = match unit {
        "d" => value,
        "h" if value.is_multiple_of(24) => value / 24,
        "h" => {
            return Err(format!(
                "`{text}` is not whole days: Loki keeps logs by its 24h index period; use e.g. {}d",
                value.div_ceil(24)
            ));
        }
        _ => return Err(invalid()),
    };
    if days == 0 {
        return Err(format!("`{text}`: keep data at least 1d"));
    }
    Ok(Retention { days })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_days_and_whole_days_of_hours() {
        assert_eq!(parse_retention("7d"), Ok(Retention::days(7)));
        assert_eq!(parse_retention("72h"), Ok(Retention::days(3)));
        assert_eq!(Retention::days(7).as_hours(), "168h");
        assert_eq!(Retention::days(3).to_string(), "3d");
    }

    #[test]
    fn rejects_what_the_backends_cannot_keep() {
        assert!(parse_retention("36h").unwrap_err().contains("2d"));
        assert!(parse_retention("0d").is_err());
        assert!(parse_retention("1w").is_err());
        assert!(parse_retention("").is_err());
    }
}
