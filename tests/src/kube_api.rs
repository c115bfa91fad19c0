//! A fake Kubernetes API server for core/v1 Events: answers the list (`GET /api/v1/events`)
//! with an `EventList` of real Event objects, and the watch (`?watch=true`) with a stream of
//! watch events that then stays open, as the real API server does until its timeout.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct FakeKubeApi {
    addr: SocketAddr,
    lists: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct Script {
    list: Arc<Vec<Value>>,
    watch: Arc<Vec<Value>>,
    lists: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
}

impl FakeKubeApi {
    /// `list` is what the list returns (Event objects); `watch` the objects then sent as
    /// `ADDED` watch events.
    pub async fn start(list: Vec<Value>, watch: Vec<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Script {
            list: Arc::new(list),
            watch: Arc::new(watch),
            lists: Arc::default(),
            watches: Arc::default(),
        };
        let api = Self {
            addr,
            lists: script.lists.clone(),
            watches: script.watches.clone(),
        };
        let router = axum::Router::new()
            .route("/api/v1/events", axum::routing::get(events))
            .with_state(script);
        tokio::spawn(async move { axum::serve(listener, router).await });
        api
    }

    /// Writes a kubeconfig pointing at this server into `dir`; pass it as `KUBECONFIG`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
             users:\n- name: fake\n  user:\n    token: fake-token\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n",
            self.addr
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }

    pub fn watches(&self) -> usize {
        self.watches.load(Ordering::SeqCst)
    }
}

/// A core/v1 Event as the API server returns it.
pub fn event(uid: &str, resource_version: &str, pod: &str, reason: &str, kind: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{pod}.{uid}"),
            "namespace": "demo",
            "uid": uid,
            "resourceVersion": resource_version,
            "creationTimestamp": "2026-11-27T10:00:00Z"
        },
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": "demo"},
        "reason": reason,
        "message": format!("{reason} for {pod}"),
        "type": kind,
        "count": 1,
        "firstTimestamp": "2026-11-27T10:00:00Z",
        "lastTimestamp": "2026-11-27T10:00:01Z",
        "source": {"component": "kubelet", "host": "minikube"},
        "reportingComponent": "kubelet"
    })
}

async fn events(
    State(script): State<Script>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if params.get("watch").is_some_and(|w| w == "true" || w == "1") {
        script.watches.fetch_add(1, Ordering::SeqCst);
        let lines: Vec<Result<String, std::convert::Infallible>> = script
            .watch
            .iter()
            .map(|object| Ok(format!("{}\n", json!({"type": "ADDED", "object": object}))))
            .collect();
        // The real API server keeps a watch open for minutes; so do we.
        let stream = futures_util_stream(lines);
        return (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    script.lists.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "apiVersion": "v1",
        "kind": "EventList",
        "metadata": {"resourceVersion": "1000"},
        "items": *script.list,
    }))
    .into_response()
}

fn futures_util_stream(
    lines: Vec<Result<String, std::convert::Infallible>>,
) -> impl tokio_stream::Stream<Item = Result<String, std::convert::Infallible>> {
    use tokio_stream::StreamExt;
    tokio_stream::iter(lines).chain(tokio_stream::pending())
}
