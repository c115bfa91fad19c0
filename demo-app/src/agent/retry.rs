//! When to try again: jittered exponential backoff that yields to the server's own hint
//! (HTTP `Retry-After`, gRPC `google.rpc.RetryInfo`), and the error classes that decide
//! whether to retry at all (the Collector's exporterhelper rules).

use std::time::Duration;

use prost::Message;
use rand::Rng;

#[derive(Debug, Clone, Copy)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// Each delay is drawn from `[d * (1 - j), d * (1 + j)]`, so many agents that lost the same
    /// backend do not come back in lockstep.
    pub jitter: f64,
    /// Give a batch up (and count it as failed) once retrying it took this long.
    pub max_elapsed: Duration,
}

/// The delays of one batch's retries.
pub struct Backoff {
    policy: BackoffPolicy,
    current: Duration,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            current: policy.initial,
        }
    }

    /// The next delay; a server hint wins over our schedule (capped by `max` so a bogus hint
    /// cannot park the queue for hours).
    pub fn next_delay(&mut self, server_hint: Option<Duration>) -> Duration {
        let base = self.current;
        self.current = self
            .current
            .mul_f64(self.policy.multiplier)
            .min(self.policy.max);
        if let Some(hint) = server_hint {
            return hint.min(self.policy.max);
        }
        let j = self.policy.jitter.clamp(0.0, 1.0);
        let factor = if j > 0.0 {
            rand::rng().random_range(1.0 - j..=1.0 + j)
        } else {
            1.0
        };
        base.mul_f64(factor).min(self.policy.max)
    }

    pub fn max_elapsed(&self) -> Duration {
        self.policy.max_elapsed
    }
}

/// Why an export attempt failed, as far as retrying goes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another try (connection refused, 429, 502-504, UNAVAILABLE, ...).
    #[error("{reason}")]
    Retryable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The destination will never take this data (bad request, unauthorised, ...).
    #[error("{reason}")]
    Permanent { reason: String },
}

/// HTTP statuses the Collector's OTLP/HTTP exporter retries; every other 4xx/5xx is permanent.
pub fn http_status_is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and treated as absent).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// gRPC codes the Collector's OTLP exporter retries. RESOURCE_EXHAUSTED only with a retry
/// hint: without one it means "this will never fit", e.g. a message over the server's limit.
pub fn grpc_code_is_retryable(code: tonic::Code, has_retry_info: bool) -> bool {
    use tonic::Code::*;
    match code {
        Cancelled | DeadlineExceeded | Aborted | OutOfRange | Unavailable | DataLoss => true,
        ResourceExhausted => has_retry_info,
        _ => false,
    }
}

/// `google.rpc.Status`, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types_any::Any>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

mod prost_types_any {
    /// `google.protobuf.Any` (declared here to avoid a dependency for one message).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The server's retry delay from a status's details, if it sent one.
pub fn grpc_retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    let any = status
        .details
        .iter()
        .find(|d| d.type_url == RETRY_INFO_TYPE)?;
    let delay = RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay?;
    let seconds = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos).ok()?;
    Some(Duration::new(seconds, nanos))
}

/// Encodes a status-details blob carrying a RetryInfo (for tests and fake upstreams).
pub fn encode_retry_info(code: i32, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    RpcStatus {
        code,
        message: String::new(),
        details: vec![prost_types_any::Any {
            type_url: RETRY_INFO_TYPE.to_owned(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
            jitter,
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[test]
    fn grows_to_the_cap_and_hints_win() {
        let mut b = Backoff::new(policy(0.0));
        let delays: Vec<_> = (0..6).map(|_| b.next_delay(None)).collect();
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[3], Duration::from_millis(800));
        assert_eq!(delays[5], Duration::from_secs(1));
        assert_eq!(
            b.next_delay(Some(Duration::from_millis(5))),
            Duration::from_millis(5)
        );
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(3600))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let d = Backoff::new(policy(0.5)).next_delay(None);
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(150),
                "{d:?}"
            );
        }
    }

    #[test]
    fn classifies_like_the_collector() {
        assert!(http_status_is_retryable(429) && http_status_is_retryable(503));
        assert!(!http_status_is_retryable(400) && !http_status_is_retryable(500));
        assert!(grpc_code_is_retryable(tonic::Code::Unavailable, false));
        assert!(!grpc_code_is_retryable(tonic::Code::InvalidArgument, false));
        assert!(!grpc_code_is_retryable(
            tonic::Code::ResourceExhausted,
            false
        ));
        assert!(grpc_code_is_retryable(tonic::Code::ResourceExhausted, true));
    }

    #[test]
    fn reads_retry_hints() {
        assert_eq!(parse_retry_after(Some(" 7 ")), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        let blob = encode_retry_info(14, Duration::from_millis(1500));
        assert_eq!(grpc_retry_delay(&blob), Some(Duration::from_millis(1500)));
        assert_eq!(grpc_retry_delay(b"\xff\xff"), None);
    }
}
