//! gzip request bodies (the OpenTelemetry Collector's and Alloy's OTLP exporters compress by
//! default), inflated with a bound so a small "zip bomb" cannot blow up memory.

// Input reaches this module: no panics, no overflow (issue 15; tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use std::io::Read;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GunzipError {
    #[error("decompressed body larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("invalid gzip data: {0}")]
    Invalid(String),
}

/// Inflates `data`, refusing to produce more than `limit` bytes. Concatenated gzip members
/// are one stream (as Go's gzip reader, the Collector's, reads them); anything after the last
/// member that is not another valid member is an error, never silently ignored.
pub fn gunzip_bounded(data: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit));
    let read = flate2::read::MultiGzDecoder::new(data)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| GunzipError::Invalid(e.to_string()))?;
    if read > limit {
        return Err(GunzipError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_within_the_limit_only() {
        let data = vec![b'a'; 10_000];
        assert_eq!(gunzip_bounded(&gzip(&data), 10_000).unwrap(), data);
        assert_eq!(
            gunzip_bounded(&gzip(&data), 9_999),
            Err(GunzipError::TooLarge { limit: 9_999 })
        );
        assert!(matches!(
            gunzip_bounded(b"not gzip", 100),
            Err(GunzipError::Invalid(_))
        ));
    }

    #[test]
    fn trailing_garbage_after_a_member_is_an_error() {
        let two = [gzip(b"ab"), gzip(b"cd")].concat();
        assert_eq!(gunzip_bounded(&two, 100).unwrap(), b"abcd");
        let garbage = [gzip(b"ab"), b"garbage".to_vec()].concat();
        assert!(matches!(
            gunzip_bounded(&garbage, 100),
            Err(GunzipError::Invalid(_))
        ));
    }
}
