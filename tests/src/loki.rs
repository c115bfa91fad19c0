//! A fake Loki push endpoint (`POST /loki/api/v1/push`, JSON) that keeps every entry with
//! its stream labels and the tenant header, for assertions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;

/// One pushed log line.
#[derive(Debug, Clone)]
pub struct LokiEntry {
    pub tenant: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub timestamp_ns: String,
    pub line: String,
}

#[derive(Clone, Default)]
pub struct FakeLoki {
    entries: Arc<Mutex<Vec<LokiEntry>>>,
    addr: Option<SocketAddr>,
}

impl FakeLoki {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let loki = Self {
            addr: Some(listener.local_addr().unwrap()),
            ..Self::default()
        };
        let router = axum::Router::new()
            .route("/loki/api/v1/push", axum::routing::post(push))
            .with_state(loki.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        loki
    }

    /// `http://127.0.0.1:<port>` (clients append `/loki/api/v1/push`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr.expect("started"))
    }

    pub fn entries(&self) -> Vec<LokiEntry> {
        self.entries.lock().unwrap().clone()
    }
}

async fn push(
    axum::extract::State(loki): axum::extract::State<FakeLoki>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let tenant = headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut received = Vec::new();
    for stream in body["streams"].as_array().into_iter().flatten() {
        let labels: BTreeMap<String, String> = stream["stream"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        for value in stream["values"].as_array().into_iter().flatten() {
            received.push(LokiEntry {
                tenant: tenant.clone(),
                labels: labels.clone(),
                timestamp_ns: value[0].as_str().unwrap_or_default().to_owned(),
                line: value[1].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    loki.entries.lock().unwrap().extend(received);
    StatusCode::NO_CONTENT
}
