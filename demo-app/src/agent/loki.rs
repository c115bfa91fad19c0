//! Loki's push API (`POST /loki/api/v1/push`, JSON body) for Kubernetes events: one stream per
//! label set (namespace, kind, name, reason, type), the tenant in `X-Scope-OrgID`.

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

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Event;
use serde_json::json;

use super::exporter::TENANT_HEADER;
use super::retry::{SendError, parse_retry_after};

/// One event, ready to push.
#[derive(Debug, Clone, PartialEq)]
pub struct LokiEntry {
    pub labels: BTreeMap<&'static str, String>,
    /// Unix nanoseconds.
    pub timestamp_ns: i128,
    pub line: String,
}

/// The event as a Loki entry: labels that select it, a JSON line with the rest.
pub fn entry(event: &Event) -> LokiEntry {
    let object = &event.involved_object;
    let namespace = event
        .metadata
        .namespace
        .clone()
        .or_else(|| object.namespace.clone())
        .unwrap_or_default();
    let mut labels = BTreeMap::new();
    labels.insert("job", "kubernetes-events".to_owned());
    for (key, value) in [
        ("namespace", Some(namespace.clone())),
        ("kind", object.kind.clone()),
        ("name", object.name.clone()),
        ("reason", event.reason.clone()),
        ("type", event.type_.clone()),
    ] {
        // Loki drops empty label values anyway; leave them out (e.g. Nodes have no namespace).
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            labels.insert(key, v);
        }
    }
    let line = json!({
        "message": event.message,
        "reason": event.reason,
        "type": event.type_,
        "count": event.count,
        "namespace": namespace,
        "kind": object.kind,
        "name": object.name,
        "uid": event.metadata.uid,
        "component": event.source.as_ref().and_then(|s| s.component.clone()).or_else(|| event.reporting_component.clone()),
        "host": event.source.as_ref().and_then(|s| s.host.clone()),
    })
    .to_string();
    LokiEntry {
        labels,
        timestamp_ns: timestamp_ns(event),
        line,
    }
}

/// When the event last happened: lastTimestamp, eventTime, firstTimestamp, creation time,
/// or now.
fn timestamp_ns(event: &Event) -> i128 {
    event
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(event.event_time.as_ref().map(|t| t.0))
        .or(event.first_timestamp.as_ref().map(|t| t.0))
        .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .map(|t| t.as_nanosecond())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128)
        })
}

/// The push body: entries grouped into streams by label set, in time order within each.
pub fn push_body(entries: &[LokiEntry]) -> serde_json::Value {
    let mut streams: BTreeMap<&BTreeMap<&'static str, String>, Vec<&LokiEntry>> = BTreeMap::new();
    for e in entries {
        streams.entry(&e.labels).or_default().push(e);
    }
    let streams: Vec<_> = streams
        .into_iter()
        .map(|(labels, mut values)| {
            values.sort_by_key(|e| e.timestamp_ns);
            json!({
                "stream": labels,
                "values": values.iter().map(|e| [e.timestamp_ns.to_string(), e.line.clone()]).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "streams": streams })
}

pub struct LokiClient {
    client: reqwest::Client,
    push_url: String,
    tenant: String,
}

impl LokiClient {
    pub fn new(base: &url::Url, tenant: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let base = base.as_str().trim_end_matches('/');
        let push_url = if base.ends_with("/loki/api/v1/push") {
            base.to_owned()
        } else {
            format!("{base}/loki/api/v1/push")
        };
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            push_url,
            tenant: tenant.to_owned(),
        })
    }

    pub async fn push(&self, entries: &[LokiEntry]) -> Result<(), SendError> {
        let response = self
            .client
            .post(&self.push_url)
            .header(TENANT_HEADER, &self.tenant)
            .json(&push_body(entries))
            .send()
            .await
            .map_err(|e| SendError::Retryable {
                reason: format!("Loki not reachable: {e}"),
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = parse_retry_after(
            response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
        );
        let body = response.text().await.unwrap_or_default();
        let reason = format!(
            "Loki answered HTTP {status}: {}",
            body.chars().take(256).collect::<String>()
        );
        // Loki answers 5xx when ingesters are unhappy (worth retrying) and 4xx for data it
        // will never take (too old, too long, bad labels), except 429 (rate limited).
        if status.is_server_error() || status.as_u16() == 429 {
            Err(SendError::Retryable {
                reason,
                retry_after,
            })
        } else {
            Err(SendError::Permanent { reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": "web-1.17f", "namespace": "demo", "uid": "u1", "resourceVersion": "5"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "demo"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting", "count": 3,
            "lastTimestamp": "2026-11-27T10:00:00Z",
            "source": {"component": "kubelet"}
        }))
        .unwrap()
    }

    #[test]
    fn labels_line_and_time() {
        let e = entry(&event());
        assert_eq!(e.labels["namespace"], "demo");
        assert_eq!(e.labels["kind"], "Pod");
        assert_eq!(e.labels["name"], "web-1");
        assert_eq!(e.labels["reason"], "BackOff");
        assert_eq!(e.labels["type"], "Warning");
        assert_eq!(e.timestamp_ns, 1_795_773_600_000_000_000);
        let line: serde_json::Value = serde_json::from_str(&e.line).unwrap();
        assert_eq!(line["message"], "Back-off restarting");
        assert_eq!(line["component"], "kubelet");
        let body = push_body(&[e.clone(), e]);
        assert_eq!(body["streams"].as_array().unwrap().len(), 1);
        assert_eq!(body["streams"][0]["values"][0][0], "1795773600000000000");
    }
}
