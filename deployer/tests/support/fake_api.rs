//! A small fake Kubernetes API server on a real socket. It keeps real API objects in memory and
//! answers the requests kube-rs makes: discovery, get, list, watch, server-side apply and merge
//! patches, deletes, port-forwards and pod logs. Enough to run the deployer's Kubernetes layer against;
//! not a conformance fake.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// A kind the fake serves: (group, version, plural, kind, namespaced).
type KindRow = (&'static str, &'static str, &'static str, &'static str, bool);

const KINDS: &[KindRow] = &[
    ("", "v1", "namespaces", "Namespace", false),
    ("", "v1", "nodes", "Node", false),
    ("", "v1", "configmaps", "ConfigMap", true),
    ("", "v1", "services", "Service", true),
    ("", "v1", "pods", "Pod", true),
    ("", "v1", "events", "Event", true),
    (
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
    ),
    ("", "v1", "endpoints", "Endpoints", true),
    ("", "v1", "secrets", "Secret", true),
    ("", "v1", "serviceaccounts", "ServiceAccount", true),
    ("apps", "v1", "deployments", "Deployment", true),
    ("batch", "v1", "jobs", "Job", true),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    // Served as if helm had installed kube-prometheus-stack's and cert-manager's CRDs.
    (
        "monitoring.coreos.com",
        "v1",
        "servicemonitors",
        "ServiceMonitor",
        true,
    ),
    ("cert-manager.io", "v1", "certificates", "Certificate", true),
    (
        "cert-manager.io",
        "v1",
        "clusterissuers",
        "ClusterIssuer",
        false,
    ),
    ("multicluster.linkerd.io", "v1alpha3", "links", "Link", true),
];

#[derive(Clone)]
pub struct FakeApi {
    pub url: String,
    state: Arc<State>,
}

struct State {
    /// "group/version/plural" -> "namespace/name" (or "name") -> object
    objects: Mutex<BTreeMap<String, BTreeMap<String, Value>>>,
    resource_version: AtomicU64,
    events: broadcast::Sender<(String, Value)>,
    requests: Mutex<Vec<String>>,
    /// Groups that discovery reports; Linkerd's only when "installed".
    groups: Mutex<Vec<&'static str>>,
    /// "namespace/pod" -> where a port-forward to that pod really connects (any port).
    pod_sockets: Mutex<BTreeMap<String, std::net::SocketAddr>>,
    /// "namespace/pod" -> the log its containers wrote (stdout and stderr, merged as the
    /// kubelet does).
    pod_logs: Mutex<BTreeMap<String, String>>,
    /// Once this file exists, every request hangs (an API server that stopped answering).
    hang_when: Mutex<Option<std::path::PathBuf>>,
    /// Where `GET /version` reads the cluster's Kubernetes version (the fake minikube writes it
    /// when it starts the profile); v1.35.1 when unset or missing.
    version_file: Mutex<Option<std::path::PathBuf>>,
}

impl FakeApi {
    pub async fn start() -> Self {
        let (events, _) = broadcast::channel(256);
        let state = Arc::new(State {
            objects: Mutex::new(BTreeMap::new()),
            resource_version: AtomicU64::new(100),
            events,
            requests: Mutex::new(Vec::new()),
            groups: Mutex::new(vec![
                "apps",
                "batch",
                "rbac.authorization.k8s.io",
                "monitoring.coreos.com",
                "cert-manager.io",
            ]),
            pod_sockets: Mutex::new(BTreeMap::new()),
            pod_logs: Mutex::new(BTreeMap::new()),
            hang_when: Mutex::new(None),
            version_file: Mutex::new(None),
        });
        let router = Router::new()
            .route(
                "/api/v1/namespaces/{namespace}/pods/{pod}/portforward",
                axum::routing::get(port_forward::upgrade).with_state(state.clone()),
            )
            .route(
                "/api/v1/namespaces/{namespace}/pods/{pod}/log",
                axum::routing::get(pod_log).with_state(state.clone()),
            )
            .route(
                "/version",
                axum::routing::get(version).with_state(state.clone()),
            )
            .fallback({
                let state = state.clone();
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let state = state.clone();
                    async move { handle(&state, method, uri, headers, body) }
                }
            })
            .layer(axum::middleware::from_fn_with_state(state.clone(), hang));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeApi { url, state }
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Makes `multicluster.linkerd.io` discoverable, as installing linkerd-multicluster does.
    pub fn install_linkerd_multicluster(&self) {
        self.state
            .groups
            .lock()
            .unwrap()
            .push("multicluster.linkerd.io");
    }

    /// Port-forwards to `namespace/pod` will connect to `to` (a real local server standing in for
    /// the pod's container).
    pub fn serve_pod(&self, namespace: &str, pod: &str, to: std::net::SocketAddr) {
        self.state
            .pod_sockets
            .lock()
            .unwrap()
            .insert(format!("{namespace}/{pod}"), to);
    }

    /// The pod is gone: port-forwards to it get 404 from now on.
    pub fn unserve_pod(&self, namespace: &str, pod: &str) {
        self.state
            .pod_sockets
            .lock()
            .unwrap()
            .remove(&format!("{namespace}/{pod}"));
    }

    /// Every request hangs once `file` exists (a test's fake tool can create it mid-run).
    pub fn hang_when(&self, file: &std::path::Path) {
        *self.state.hang_when.lock().unwrap() = Some(file.to_path_buf());
    }

    /// What `GET .../pods/{pod}/log?container=...` answers; `previous` is the instance before the
    /// last restart (`previous=true`).
    pub fn set_container_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        log: &str,
    ) {
        let suffix = if previous { "/previous" } else { "" };
        self.state.pod_logs.lock().unwrap().insert(
            format!("{namespace}/{pod}/{container}{suffix}"),
            log.to_string(),
        );
    }

    /// What `GET .../pods/{pod}/log` answers from now on.
    pub fn set_pod_log(&self, namespace: &str, pod: &str, log: &str) {
        self.state
            .pod_logs
            .lock()
            .unwrap()
            .insert(format!("{namespace}/{pod}"), log.to_string());
    }

    /// The cluster's Kubernetes version is the one in `path` (e.g. `v1.31.0`).
    pub fn version_from(&self, path: std::path::PathBuf) {
        *self.state.version_file.lock().unwrap() = Some(path);
    }

    /// A controller that finishes its work only some time after the object exists, later than
    /// a client that does not wait would look: once a client watches `plural` for the object
    /// `name` (kube-rs `await_condition` lists and watches with `metadata.name=<name>`), `patch`
    /// is merged into the stored object (which must exist by then) and watchers are told.
    /// `done` runs after the patch (e.g. to note the moment in the fake tools' call log).
    pub fn when_awaited(
        &self,
        plural: &str,
        name: &str,
        patch: Value,
        done: impl FnOnce() + Send + 'static,
    ) {
        let api = self.clone();
        let (plural, name) = (plural.to_string(), name.to_string());
        let path = format!("/{plural}?");
        let selector = format!("metadata.name%3D{name}");
        tokio::spawn(async move {
            loop {
                let awaited = api.requests().iter().any(|r| {
                    r.contains(&path) && r.contains(&selector) && r.contains("watch=true")
                });
                if let Some(mut object) = awaited.then(|| api.find(&plural, &name)).flatten() {
                    merge(&mut object, &patch);
                    api.put(object);
                    done();
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
    }

    /// The stored object of collection `<plural>` named `name` (any namespace).
    fn find(&self, plural: &str, name: &str) -> Option<Value> {
        let objects = self.state.objects.lock().unwrap();
        objects
            .iter()
            .filter(|(collection, _)| collection.ends_with(&format!("/{plural}")))
            .flat_map(|(_, by_key)| by_key.values())
            .find(|o| o["metadata"]["name"] == name)
            .cloned()
    }

    /// Stores an object as a controller would (e.g. a status update), telling watchers.
    pub fn put(&self, object: Value) {
        let (collection, key) = locate(&object);
        store(&self.state, &collection, &key, object);
    }

    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let row = KINDS.iter().find(|r| r.3 == kind && gv(r) == api_version)?;
        let collection = collection_of(row);
        let key = match namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        self.state
            .objects
            .lock()
            .unwrap()
            .get(&collection)?
            .get(&key)
            .cloned()
    }

    /// "METHOD /path?query" of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The write requests only (PATCH, PUT, POST, DELETE).
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }
}

/// `GET /version`, as the API server answers it (k8s.io/apimachinery version.Info).
async fn version(axum::extract::State(state): axum::extract::State<Arc<State>>) -> Response {
    let path = state.version_file.lock().unwrap().clone();
    let git_version = path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "v1.35.1".to_string());
    let numbers: Vec<&str> = git_version.trim_start_matches('v').split('.').collect();
    json_response(
        StatusCode::OK,
        &json!({
            "major": numbers.first().copied().unwrap_or("1"),
            "minor": numbers.get(1).copied().unwrap_or("35"),
            "gitVersion": git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25.6",
            "compiler": "gc",
            "platform": "linux/amd64"
        }),
    )
}

fn gv(row: &KindRow) -> String {
    if row.0.is_empty() {
        row.1.to_string()
    } else {
        format!("{}/{}", row.0, row.1)
    }
}

fn collection_of(row: &KindRow) -> String {
    format!("{}/{}", gv(row), row.2)
}

fn locate(object: &Value) -> (String, String) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let row = KINDS
        .iter()
        .find(|r| r.3 == kind && gv(r) == api_version)
        .unwrap_or_else(|| panic!("the fake does not serve {api_version} {kind}"));
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let key = match object["metadata"]["namespace"].as_str() {
        Some(ns) if row.4 => format!("{ns}/{name}"),
        _ => name.to_string(),
    };
    (collection_of(row), key)
}

fn next_version(state: &State) -> String {
    (state.resource_version.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

/// Saves, giving a new resourceVersion only when the content changed (as the real server does).
fn store(state: &State, collection: &str, key: &str, mut object: Value) -> Value {
    let mut objects = state.objects.lock().unwrap();
    let existing = objects.get(collection).and_then(|c| c.get(key)).cloned();
    let event;
    match existing {
        Some(old) if without_version(&old) == without_version(&object) => return old,
        Some(old) => {
            object["metadata"]["uid"] = old["metadata"]["uid"].clone();
            object["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            event = "MODIFIED";
        }
        None => {
            object["metadata"]["uid"] = json!(format!("uid-{key}"));
            object["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
            event = "ADDED";
        }
    }
    object["metadata"]["resourceVersion"] = json!(next_version(state));
    objects
        .entry(collection.to_string())
        .or_default()
        .insert(key.to_string(), object.clone());
    let _ = state.events.send((
        collection.to_string(),
        json!({ "type": event, "object": object.clone() }),
    ));
    object
}

fn without_version(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("uid");
        meta.remove("creationTimestamp");
    }
    copy
}

/// JSON merge patch (RFC 7386), also used as the fake's approximation of server-side apply.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

struct Request {
    row: &'static KindRow,
    namespace: Option<String>,
    name: Option<String>,
    query: BTreeMap<String, String>,
}

fn handle(state: &State, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {uri}"));
    let path = uri.path().trim_end_matches('/');
    if let Some(response) = discovery(state, path) {
        return response;
    }
    let Some(request) = parse(path, uri.query().unwrap_or("")) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no route {path}"),
        );
    };
    match (method, &request.name) {
        (Method::GET, Some(_)) => get_one(state, &request),
        (Method::GET, None) if is_watch(&request) => watch(state, &request),
        (Method::GET, None) => list(state, &request),
        (Method::PATCH, Some(_)) => patch(state, &request, &headers, &body),
        (Method::DELETE, Some(_)) => delete(state, &request),
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not faked",
        ),
    }
}

fn discovery(state: &State, path: &str) -> Option<Response> {
    let groups = state.groups.lock().unwrap().clone();
    let body = match path {
        "/api" => {
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        }
        "/apis" => {
            let list: Vec<Value> = groups
                .iter()
                .filter_map(|g| KINDS.iter().find(|r| r.0 == *g))
                .map(|r| {
                    let version = json!({"groupVersion": gv(r), "version": r.1});
                    json!({"name": r.0, "versions": [version.clone()], "preferredVersion": version})
                })
                .collect();
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list})
        }
        _ => {
            let group_version = path
                .strip_prefix("/api/")
                .or_else(|| path.strip_prefix("/apis/"))?;
            let rows: Vec<&KindRow> = KINDS.iter().filter(|r| gv(r) == group_version).collect();
            let served = rows
                .first()
                .is_some_and(|r| r.0.is_empty() || groups.contains(&r.0));
            if rows.is_empty() || !served {
                return None;
            }
            let resources: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "name": r.2, "singularName": "", "namespaced": r.4, "kind": r.3,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
                    })
                })
                .collect();
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
        }
    };
    Some(json_response(StatusCode::OK, &body))
}

fn parse(path: &str, query: &str) -> Option<Request> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), *plural, tail.first()),
        [plural, tail @ ..] => (None, *plural, tail.first()),
        [] => return None,
    };
    let row = KINDS
        .iter()
        .find(|r| r.0 == group && r.1 == version && r.2 == plural)?;
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    Some(Request {
        row,
        namespace,
        name: name.map(|n| n.to_string()),
        query,
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn key_of(request: &Request) -> String {
    let name = request.name.clone().unwrap_or_default();
    match (&request.namespace, request.row.4) {
        (Some(ns), true) => format!("{ns}/{name}"),
        _ => name,
    }
}

fn get_one(state: &State, request: &Request) -> Response {
    let found = state
        .objects
        .lock()
        .unwrap()
        .get(&collection_of(request.row))
        .and_then(|c| c.get(&key_of(request)))
        .cloned();
    match found {
        Some(object) => json_response(StatusCode::OK, &object),
        None => not_found(request),
    }
}

fn not_found(request: &Request) -> Response {
    let name = request.name.clone().unwrap_or_default();
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", request.row.2),
    )
}

fn matches(request: &Request, object: &Value) -> bool {
    let meta = &object["metadata"];
    if let Some(ns) = &request.namespace
        && meta["namespace"].as_str() != Some(ns)
    {
        return false;
    }
    if let Some(selector) = request.query.get("fieldSelector")
        && let Some(name) = selector.strip_prefix("metadata.name=")
        && meta["name"].as_str() != Some(name)
    {
        return false;
    }
    if let Some(selector) = request.query.get("labelSelector") {
        for term in selector.split(',') {
            if let Some((key, value)) = term.split_once('=')
                && meta["labels"][key].as_str() != Some(value)
            {
                return false;
            }
        }
    }
    true
}

fn list(state: &State, request: &Request) -> Response {
    let items: Vec<Value> = state
        .objects
        .lock()
        .unwrap()
        .get(&collection_of(request.row))
        .map(|c| {
            c.values()
                .filter(|o| matches(request, o))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let version = state.resource_version.load(Ordering::SeqCst).to_string();
    json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", request.row.3),
            "apiVersion": gv(request.row),
            "metadata": {"resourceVersion": version},
            "items": items,
        }),
    )
}

fn is_watch(request: &Request) -> bool {
    matches!(
        request.query.get("watch").map(String::as_str),
        Some("true" | "1")
    )
}

fn watch(state: &State, request: &Request) -> Response {
    let collection = collection_of(request.row);
    let receiver = state.events.subscribe();
    let since: u64 = request
        .query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Objects changed after the client's list, then everything that happens from now on.
    let backlog: Vec<Value> = state
        .objects
        .lock()
        .unwrap()
        .get(&collection)
        .map(|c| {
            c.values()
                .filter(|o| matches(request, o))
                .filter(|o| {
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|v| v > since)
                })
                .map(|o| json!({"type": "MODIFIED", "object": o}))
                .collect()
        })
        .unwrap_or_default();
    let filter = Request {
        row: request.row,
        namespace: request.namespace.clone(),
        name: None,
        query: request.query.clone(),
    };
    let live = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter_map(move |(from, event)| {
        let keep = from == collection && matches(&filter, &event["object"]);
        async move { keep.then_some(event) }
    });
    let events = futures::stream::iter(backlog)
        .chain(live)
        .map(|event| Ok::<_, Infallible>(Bytes::from(format!("{event}\n"))));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(events))
        .unwrap()
}

fn patch(state: &State, request: &Request, headers: &HeaderMap, body: &Bytes) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "body is not JSON");
    };
    let collection = collection_of(request.row);
    let key = key_of(request);
    let existing = state
        .objects
        .lock()
        .unwrap()
        .get(&collection)
        .and_then(|c| c.get(&key))
        .cloned();
    let is_apply = content_type.starts_with("application/apply-patch");
    if is_apply && !request.query.contains_key("fieldManager") {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "fieldManager is required for apply",
        );
    }
    let mut object = match (existing, is_apply) {
        (Some(old), _) => old,
        (None, true) => json!({}),
        (None, false) => return not_found(request),
    };
    merge(&mut object, &patch);
    object["apiVersion"] = json!(gv(request.row));
    object["kind"] = json!(request.row.3);
    object["metadata"]["name"] = json!(request.name.clone().unwrap_or_default());
    if let (Some(ns), true) = (&request.namespace, request.row.4) {
        object["metadata"]["namespace"] = json!(ns);
    }
    let saved = store(state, &collection, &key, object);
    json_response(StatusCode::OK, &saved)
}

/// Removes the object and tells watchers. The real server answers a delete with the object (or,
/// while finalizers run, the object with a deletionTimestamp); the fake has no finalizers.
fn delete(state: &State, request: &Request) -> Response {
    let collection = collection_of(request.row);
    let removed = state
        .objects
        .lock()
        .unwrap()
        .get_mut(&collection)
        .and_then(|c| c.remove(&key_of(request)));
    match removed {
        Some(object) => {
            let _ = state.events.send((
                collection,
                json!({"type": "DELETED", "object": object.clone()}),
            ));
            json_response(StatusCode::OK, &object)
        }
        None => not_found(request),
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    json_response(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16()
        }),
    )
}

/// `pods/{name}/log`: the pod's log as text/plain. With `follow=true` the lines arrive one by
/// one, as from a running container, and the stream ends when the log does (the container
/// exited). A pod that does not exist is a 404, as on a real server.
async fn pod_log(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    axum::extract::Path((namespace, pod)): axum::extract::Path<(String, String)>,
    uri: Uri,
) -> Response {
    state.requests.lock().unwrap().push(format!("GET {uri}"));
    let exists = state
        .objects
        .lock()
        .unwrap()
        .get("v1/pods")
        .is_some_and(|pods| pods.contains_key(&format!("{namespace}/{pod}")));
    if !exists {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{pod}\" not found"),
        );
    }
    let query = uri.query().unwrap_or_default();
    let Some(log) = container_log(&state, &namespace, &pod, query) else {
        // The real server's answer when there is no previous instance.
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("previous terminated container in pod \"{pod}\" not found"),
        );
    };
    let log = tail(&log, query);
    let follow = query.contains("follow=true");
    let body = if follow {
        let lines: Vec<String> = log.split_inclusive('\n').map(str::to_string).collect();
        let stream = futures::stream::iter(lines).then(|line| async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            Ok::<_, Infallible>(Bytes::from(line))
        });
        Body::from_stream(stream)
    } else {
        Body::from(log)
    };
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain")
        .body(body)
        .unwrap()
}

/// The log for `?container=..&previous=..`: a container's own log when the test set one, else the
/// pod's; None for a previous instance nobody set.
fn container_log(state: &State, namespace: &str, pod: &str, query: &str) -> Option<String> {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let logs = state.pod_logs.lock().unwrap();
    let previous = param("previous").as_deref() == Some("true");
    if let Some(container) = param("container") {
        let suffix = if previous { "/previous" } else { "" };
        if let Some(log) = logs.get(&format!("{namespace}/{pod}/{container}{suffix}")) {
            return Some(log.clone());
        }
    }
    if previous {
        return None;
    }
    Some(
        logs.get(&format!("{namespace}/{pod}"))
            .cloned()
            .unwrap_or_default(),
    )
}

/// `tailLines=N`: the last N lines, as the kubelet answers.
fn tail(log: &str, query: &str) -> String {
    let Some(count) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("tailLines="))
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return log.to_string();
    };
    let lines: Vec<&str> = log.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(count)..].concat()
}

/// Holds every request forever once the test's hang file exists.
async fn hang(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let file = state.hang_when.lock().unwrap().clone();
    if file.is_some_and(|f| f.exists()) {
        std::future::pending::<()>().await;
    }
    next.run(request).await
}

/// A kubeconfig with one context per (name, server).
pub fn kubeconfig(contexts: &[(&str, &str)]) -> String {
    let mut clusters = String::new();
    let mut entries = String::new();
    for (name, server) in contexts {
        clusters.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {server}\n"
        ));
        entries.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: fake\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}contexts:\n{entries}users:\n- name: fake\n  user:\n    token: fake\ncurrent-context: {}\n",
        contexts.first().map(|c| c.0).unwrap_or_default()
    )
}

/// The API server's side of `pods/{name}/portforward`: the v4.channel.k8s.io WebSocket protocol
/// (one data and one error channel per port, each opened by a frame naming the port).
mod port_forward {
    use std::sync::Arc;

    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use axum::extract::{Path, Query, State as Extract};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::State;

    #[derive(serde::Deserialize)]
    pub struct Ports {
        ports: u16,
    }

    pub async fn upgrade(
        Extract(state): Extract<Arc<State>>,
        Path((namespace, pod)): Path<(String, String)>,
        Query(Ports { ports }): Query<Ports>,
        upgrade: WebSocketUpgrade,
    ) -> Response {
        let key = format!("{namespace}/{pod}");
        state.requests.lock().unwrap().push(format!(
            "GET /api/v1/namespaces/{namespace}/pods/{pod}/portforward?ports={ports}"
        ));
        let Some(to) = state.pod_sockets.lock().unwrap().get(&key).copied() else {
            return super::status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("pods \"{pod}\" not found"),
            );
        };
        upgrade
            .protocols(["v4.channel.k8s.io"])
            .on_upgrade(move |socket| relay(socket, ports, to))
            .into_response()
    }

    async fn relay(socket: WebSocket, port: u16, to: std::net::SocketAddr) {
        let (mut sink, mut stream) = socket.split();
        let [lo, hi] = port.to_le_bytes();
        for channel in [0u8, 1] {
            if sink
                .send(Message::Binary(vec![channel, lo, hi].into()))
                .await
                .is_err()
            {
                return;
            }
        }
        let Ok(tcp) = tokio::net::TcpStream::connect(to).await else {
            let _ = sink
                .send(Message::Binary(
                    [&[1u8][..], b"connection refused"].concat().into(),
                ))
                .await;
            return;
        };
        let (mut from_pod, mut to_pod) = tcp.into_split();
        let upstream = async move {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Binary(bytes) = message
                    && bytes.len() > 1
                    && bytes[0] == 0
                    && to_pod.write_all(&bytes[1..]).await.is_err()
                {
                    break;
                }
            }
            let _ = to_pod.shutdown().await;
        };
        let downstream = async move {
            let mut buffer = vec![0u8; 16 * 1024];
            while let Ok(n) = from_pod.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                let frame = [&[0u8][..], &buffer[..n]].concat();
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.send(Message::Close(None)).await;
        };
        tokio::join!(upstream, downstream);
    }
}
