//! Fake Mimir, Loki and Tempo query APIs and a fake demo app, on 127.0.0.1, answering with the
//! documented response shapes. Each backend checks the `X-Scope-OrgID` header (missing: 401
//! "no org id", as Mimir and Loki answer; a tenant it does not know: 401) and keys its data by
//! tenant and `cluster` label, as the real ones do. A [`Scenario`] says what data exists and when.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use deployer::verify::Endpoints;

/// The trace the remote's logs and exemplars point to.
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The trace a search in _local finds.
pub const LOCAL_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    None,
    WithoutTraceId,
    WithTraceId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceShape {
    /// `/api/traces/<id>` as Tempo 2.x answers: `{"batches": [...]}`.
    Batches,
    /// OTLP JSON: `{"resourceSpans": [...]}`.
    ResourceSpans,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub tenants: Vec<&'static str>,
    /// Every backend answers "nothing" until this long after start.
    pub data_after: Duration,
    pub series: bool,
    pub growing: bool,
    pub exemplars: bool,
    pub logs: Logs,
    /// `None`: Tempo answers 404 "trace not found".
    pub trace: Option<TraceShape>,
    /// The services the remote trace spans.
    pub trace_services: Vec<&'static str>,
    /// A search in _local finds a trace.
    pub local_trace: bool,
    /// The burst's requests show up as the newest log lines, their traces (app and db only) in
    /// Tempo, as they would in the real pipeline.
    pub burst_in_logs: bool,
}

impl Default for Scenario {
    /// Everything works.
    fn default() -> Self {
        Scenario {
            tenants: vec!["remote01", "_local"],
            data_after: Duration::ZERO,
            series: true,
            growing: true,
            exemplars: true,
            logs: Logs::WithTraceId,
            trace: Some(TraceShape::Batches),
            trace_services: vec!["loadgen", "app", "db"],
            local_trace: true,
            burst_in_logs: false,
        }
    }
}

struct Fake {
    scenario: Scenario,
    started: Instant,
    /// Counter values rise by one per query when the scenario says they grow.
    queries: AtomicU64,
    app_requests: AtomicU64,
    /// The trace ids of the `traceparent`s the app received.
    burst_trace_ids: Mutex<Vec<String>>,
}

type Shared = Arc<Fake>;

impl Fake {
    fn has_data(&self) -> bool {
        self.started.elapsed() >= self.scenario.data_after
    }

    /// The tenant of a request, or the answer that rejects it.
    fn tenant(&self, headers: &HeaderMap) -> Result<String, (StatusCode, &'static str)> {
        let Some(tenant) = headers.get("x-scope-orgid").and_then(|v| v.to_str().ok()) else {
            return Err((StatusCode::UNAUTHORIZED, "no org id\n"));
        };
        if !self.scenario.tenants.contains(&tenant) {
            return Err((StatusCode::UNAUTHORIZED, "invalid tenant\n"));
        }
        Ok(tenant.to_string())
    }
}

/// The request's tenant (`X-Scope-OrgID`), checked against the scenario's tenants as Mimir, Loki
/// and Tempo do: a request without one, or with another, gets 401.
struct Tenant(String);

impl axum::extract::FromRequestParts<Shared> for Tenant {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        fake: &Shared,
    ) -> Result<Self, Self::Rejection> {
        fake.tenant(&parts.headers).map(Tenant)
    }
}

/// The first of `keys` that is missing or does not parse as a `T`.
fn unparsable<'k, T: std::str::FromStr>(
    params: &std::collections::HashMap<String, String>,
    keys: &[&'k str],
) -> Option<&'k str> {
    keys.iter()
        .copied()
        .find(|key| params.get(*key).and_then(|v| v.parse::<T>().ok()).is_none())
}

/// The `cluster` label of each tenant's data.
fn cluster_of(tenant: &str) -> &'static str {
    if tenant == "remote01" {
        "lgtm-remote"
    } else {
        "lgtm-central"
    }
}

pub struct FakeLgtm {
    pub mimir: String,
    pub loki: String,
    pub tempo: String,
    pub app: String,
    fake: Shared,
}

impl FakeLgtm {
    pub async fn start(scenario: Scenario) -> Self {
        let fake = Arc::new(Fake {
            scenario,
            started: Instant::now(),
            queries: AtomicU64::new(0),
            app_requests: AtomicU64::new(0),
            burst_trace_ids: Mutex::new(Vec::new()),
        });
        FakeLgtm {
            mimir: serve(mimir(fake.clone())).await,
            loki: serve(loki(fake.clone())).await,
            tempo: serve(tempo(fake.clone())).await,
            app: serve(app(fake.clone())).await,
            fake,
        }
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            mimir: self.mimir.clone(),
            loki: self.loki.clone(),
            tempo: self.tempo.clone(),
            app: Some(self.app.clone()),
        }
    }

    pub fn app_requests(&self) -> u64 {
        self.fake.app_requests.load(Ordering::SeqCst)
    }

    /// The trace ids of the valid, sampled `traceparent`s the app received.
    pub fn burst_trace_ids(&self) -> Vec<String> {
        self.fake.burst_trace_ids.lock().unwrap().clone()
    }
}

/// Serves `router` on a free port; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A base URL where nothing listens (connection refused).
pub async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A base URL that accepts connections and never answers.
pub async fn hanging_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

fn bad_data(message: &str) -> Response {
    let body = json!({"status": "error", "errorType": "bad_data", "error": message});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

// ---- Mimir: the Prometheus API under /prometheus ----

fn mimir(fake: Shared) -> Router {
    Router::new()
        .route("/prometheus/api/v1/query", get(instant_query))
        .route("/prometheus/api/v1/query_exemplars", get(query_exemplars))
        .with_state(fake)
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn instant_query(
    State(fake): State<Shared>,
    Tenant(tenant): Tenant,
    Query(params): Params,
) -> Response {
    let Some(query) = params.get("query") else {
        return bad_data("invalid parameter \"query\": unknown position");
    };
    let cluster = cluster_of(&tenant);
    let mut result = Vec::new();
    let matches = query.contains(&format!("cluster=\"{cluster}\""));
    if fake.has_data() && fake.scenario.series && matches {
        let count = fake.queries.fetch_add(1, Ordering::SeqCst);
        let grown = if fake.scenario.growing { count } else { 0 };
        let name = query.split('{').next().unwrap_or_default();
        for (route, base) in [("/api/links", 100), ("/api/links/{id}/vote", 20)] {
            result.push(json!({
                "metric": {"__name__": name, "cluster": cluster, "route": route},
                "value": [1_795_773_600.781, (base + grown).to_string()]
            }));
        }
    }
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
        .into_response()
}

async fn query_exemplars(
    State(fake): State<Shared>,
    Tenant(tenant): Tenant,
    Query(params): Params,
) -> Response {
    if let Some(key) = unparsable::<f64>(&params, &["start", "end"]) {
        return bad_data(&format!("invalid parameter \"{key}\""));
    }
    let mut data = Vec::new();
    if fake.has_data() && fake.scenario.exemplars && tenant == "remote01" {
        data.push(json!({
            "seriesLabels": {"__name__": "http_server_request_duration_seconds_bucket",
                             "cluster": "lgtm-remote", "le": "0.05"},
            "exemplars": [{"labels": {"trace_id": TRACE_ID}, "value": "0.012",
                           "timestamp": 1_795_773_600.479}]
        }));
    }
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

// ---- Loki: the read path ----

fn loki(fake: Shared) -> Router {
    Router::new()
        .route("/loki/api/v1/query_range", get(query_range))
        .with_state(fake)
}

async fn query_range(
    State(fake): State<Shared>,
    Tenant(tenant): Tenant,
    Query(params): Params,
) -> Response {
    if let Some(key) = unparsable::<u128>(&params, &["start", "end"]) {
        return (StatusCode::BAD_REQUEST, format!("invalid {key}")).into_response();
    }
    let cluster = cluster_of(&tenant);
    let selects = params
        .get("query")
        .is_some_and(|q| q.contains(&format!("cluster=\"{cluster}\"")));
    let mut result = Vec::new();
    if fake.has_data() && selects && fake.scenario.burst_in_logs && tenant == "remote01" {
        result.push(json!({
            "stream": {"cluster": cluster, "namespace": "demo", "app": "db", "container": "db"},
            "values": burst_log_values(&fake.burst_trace_ids.lock().unwrap())
        }));
    }
    if fake.has_data() && selects && fake.scenario.logs != Logs::None {
        result.push(json!({
            "stream": {"cluster": cluster, "namespace": "demo", "app": "app", "container": "app"},
            "values": log_values(fake.scenario.logs == Logs::WithTraceId && tenant == "remote01")
        }));
    }
    axum::Json(json!({
        "status": "success",
        "data": {"resultType": "streams", "result": result,
                 "stats": {"summary": {"totalLinesProcessed": 2}}}
    }))
    .into_response()
}

/// Two lines as the demo writes them, newest first (direction=backward).
fn log_values(with_trace_id: bool) -> Value {
    let ids = if with_trace_id {
        format!(",\"trace_id\":\"{TRACE_ID}\",\"span_id\":\"00f067aa0ba902b7\"")
    } else {
        String::new()
    };
    json!([
        [
            "1795773600000000000",
            format!(
                "{{\"timestamp\":\"2026-11-27T18:00:00.000000Z\",\"level\":\"INFO\",\"target\":\"demo_app\"{ids},\"message\":\"request served\",\"status\":200}}"
            )
        ],
        [
            "1795773500000000000",
            "{\"timestamp\":\"2026-11-27T17:58:20.000000Z\",\"level\":\"INFO\",\"target\":\"demo_app\",\"message\":\"listening\"}"
        ]
    ])
}

/// A line per burst request, newer than [`log_values`]'s.
fn burst_log_values(trace_ids: &[String]) -> Value {
    let values: Vec<Value> = trace_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!([
                format!("{}", 1_795_773_700_000_000_000u128 + i as u128),
                format!(
                    "{{\"level\":\"INFO\",\"trace_id\":\"{id}\",\"message\":\"request served\"}}"
                )
            ])
        })
        .collect();
    Value::Array(values)
}

// ---- Tempo: the query-frontend ----

fn tempo(fake: Shared) -> Router {
    Router::new()
        .route("/api/traces/{id}", get(trace_by_id))
        .route("/api/search", get(search))
        .with_state(fake)
}

async fn trace_by_id(
    State(fake): State<Shared>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Response {
    let not_found = (StatusCode::NOT_FOUND, "trace not found\n").into_response();
    if !fake.has_data() {
        return not_found;
    }
    let from_burst = fake.burst_trace_ids.lock().unwrap().contains(&id);
    let (services, shape) = match (tenant.as_str(), id.as_str()) {
        // The burst's traces start at app: no loadgen span.
        ("remote01", _) if from_burst => (vec!["app", "db"], TraceShape::Batches),
        ("remote01", TRACE_ID) => match fake.scenario.trace {
            Some(shape) => (fake.scenario.trace_services.clone(), shape),
            None => return not_found,
        },
        ("_local", LOCAL_TRACE_ID) if fake.scenario.local_trace => {
            (vec!["linkerd-proxy"], TraceShape::Batches)
        }
        _ => return not_found,
    };
    let batches: Vec<Value> = services
        .iter()
        .map(|service| resource_spans(service, cluster_of(&tenant)))
        .collect();
    let body = match shape {
        TraceShape::Batches => json!({"batches": batches}),
        TraceShape::ResourceSpans => json!({"resourceSpans": batches}),
    };
    axum::Json(body).into_response()
}

fn resource_spans(service: &str, cluster: &str) -> Value {
    json!({
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "k8s.cluster.name", "value": {"stringValue": cluster}}
        ]},
        "scopeSpans": [{
            "scope": {"name": "demo-app"},
            "spans": [{"traceId": "S/kvNXezTaajzpKdDg5HNg==", "spanId": "APBnqgupArc=",
                       "name": "GET /api/links", "kind": "SPAN_KIND_SERVER",
                       "startTimeUnixNano": "1795773600000000000",
                       "endTimeUnixNano": "1795773600012000000"}]
        }]
    })
}

async fn search(
    State(fake): State<Shared>,
    Tenant(tenant): Tenant,
    Query(params): Params,
) -> Response {
    if !params.contains_key("q") {
        return (StatusCode::BAD_REQUEST, "missing q").into_response();
    }
    let mut traces = Vec::new();
    if fake.has_data() && fake.scenario.local_trace && tenant == "_local" {
        traces.push(
            json!({"traceID": LOCAL_TRACE_ID, "rootServiceName": "linkerd-proxy",
                           "rootTraceName": "GET", "startTimeUnixNano": "1795773600000000000",
                           "durationMs": 12}),
        );
    }
    axum::Json(json!({"traces": traces, "metrics": {"inspectedBytes": "1024"}})).into_response()
}

// ---- the demo app ----

fn app(fake: Shared) -> Router {
    Router::new()
        .route("/api/links", get(list_links))
        .with_state(fake)
}

async fn list_links(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    fake.app_requests.fetch_add(1, Ordering::SeqCst);
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    if let Some(trace_id) = traceparent.and_then(sampled_trace_id) {
        fake.burst_trace_ids.lock().unwrap().push(trace_id);
    }
    axum::Json(json!([{"id": 1, "title": "LGTM", "url": "https://grafana.com", "votes": 3}]))
        .into_response()
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<flags>`) if it is sampled.
fn sampled_trace_id(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit());
    match parts.as_slice() {
        ["00", trace, span, "01"] if hex(trace, 32) && hex(span, 16) => Some(trace.to_string()),
        _ => None,
    }
}
