//! Router tests (tower `oneshot`): every route of both roles and every kind of bad input
//! gets the right status and a JSON error body; nothing panics and the router keeps serving.
//! The app's db is a real db router on a port-0 socket.

use axum::Router;
use axum::body::Body;
use clap::Parser;
use demo_app::cli::{Cli, Command};
use demo_app::serve::{self, Parts, ServeArgs};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn args(extra: &[&str]) -> ServeArgs {
    let argv = ["demo-app", "serve"].iter().chain(extra);
    match Cli::try_parse_from(argv)
        .expect("valid test arguments")
        .command
    {
        Command::Serve(a) => a,
        other => unreachable!("parsed `serve` as {other:?}"),
    }
}

fn router_for(extra: &[&str]) -> Router {
    let a = args(extra);
    let mut parts = Parts::new(&a, true).unwrap();
    serve::router(&a, &mut parts)
}

fn db() -> Router {
    router_for(&["--role", "db", "--chaos-seed", "1"])
}

/// An app router whose db is a real db server on a port-0 socket.
async fn app() -> Router {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, db()).await });
    router_for(&["--role", "app", "--db-url", &format!("http://{addr}")])
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the status and the `{"error": {"code", "message"}}` shape; returns the code.
    fn expect_error(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
        let body = self.json();
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body["error"]["code"].as_str().unwrap().to_owned()
    }
}

async fn call(router: &Router, method: &str, uri: &str, body: Payload) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    let body = match body {
        Some((content_type, bytes)) => {
            req = req.header(header::CONTENT_TYPE, content_type);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    Reply {
        status: response.status(),
        content_type: response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
        body: response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    }
}

/// A request body with its content type.
type Payload = Option<(&'static str, Vec<u8>)>;

/// method, URI, body, expected status, expected error code.
type Case<U> = (&'static str, U, Payload, StatusCode, &'static str);

fn json_body(v: Value) -> Payload {
    Some(("application/json", serde_json::to_vec(&v).unwrap()))
}

#[tokio::test]
async fn db_lists_adds_shows_and_votes() {
    let db = db();
    let list = call(&db, "GET", "/links?limit=2", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json().as_array().unwrap().len(), 2, "seeded links");

    let added = call(
        &db,
        "POST",
        "/links",
        json_body(json!({"title": " Rust ", "url": "https://rust-lang.org"})),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let link = added.json();
    assert_eq!(link["title"], "Rust");
    assert_eq!(link["votes"], 0);
    let id = link["id"].as_u64().unwrap();

    let shown = call(&db, "GET", &format!("/links/{id}"), None).await;
    assert_eq!(shown.json()["url"], "https://rust-lang.org/");
    let voted = call(&db, "POST", &format!("/links/{id}/vote"), None).await;
    assert_eq!(voted.json()["votes"], 1);
    let top = call(&db, "GET", "/links?limit=1", None).await.json();
    assert_eq!(
        top[0]["id"].as_u64(),
        Some(id),
        "the voted link ranks first"
    );
}

#[tokio::test]
async fn db_rejects_bad_input_with_json_errors() {
    let db = db();
    let long_title = "t".repeat(500);
    let cases: Vec<Case<String>> = vec![
        (
            "POST",
            "/links".into(),
            Some(("application/json", b"{not json".to_vec())),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "POST",
            "/links".into(),
            json_body(json!({"title": "x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/links".into(),
            json_body(json!({"title": "x", "url": "http://a", "extra": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/links".into(),
            json_body(json!({"title": "x", "url": "ftp://a.example"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/links".into(),
            json_body(json!({"title": "x", "url": "not a url"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/links".into(),
            json_body(json!({"title": long_title, "url": "http://a.example"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/links".into(),
            Some(("text/plain", b"{}".to_vec())),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/links".into(),
            Some(("application/json", vec![b' '; 64 * 1024])),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "GET",
            "/links/999999".into(),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            "/links/999999/vote".into(),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            "/links/abc/vote".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "POST",
            "/links/-1/vote".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "GET",
            "/links?limit=abc".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "GET",
            "/links?limit=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "GET",
            "/links?limit=100000".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "GET",
            "/links?color=red".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "DELETE",
            "/links".into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "POST",
            "/healthz".into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "GET",
            "/nowhere".into(),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "PUT",
            "/chaos".into(),
            json_body(json!({"enabled": "yes"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let reply = call(&db, method, &uri, body).await;
        assert_eq!(reply.expect_error(status), code, "{method} {uri}");
    }
    // Still serving after all of that.
    assert_eq!(
        call(&db, "GET", "/links", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn probes_and_metrics() {
    let db = db();
    assert_eq!(
        call(&db, "GET", "/healthz", None).await.json()["status"],
        "ok"
    );
    assert_eq!(
        call(&db, "GET", "/readyz", None).await.json()["status"],
        "ready"
    );
    call(&db, "GET", "/links", None).await;
    let text = call(&db, "GET", "/metrics", None).await;
    assert!(text.content_type.starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(text.body).unwrap();
    assert!(
        text.contains(r#"http_server_request_duration_seconds_count{method="GET",route="/links",status_code="200"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("route=\"/healthz\""),
        "probes are not traced: {text}"
    );
    let om = db
        .clone()
        .oneshot(
            Request::get("/metrics")
                .header(
                    header::ACCEPT,
                    "application/openmetrics-text; version=1.0.0",
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        om.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
}

#[tokio::test]
async fn chaos_toggle_switches_injection() {
    let db = router_for(&["--role", "db", "--error-ratio", "1", "--chaos-seed", "3"]);
    let failed = call(&db, "GET", "/links", None).await;
    assert_eq!(
        failed.expect_error(StatusCode::INTERNAL_SERVER_ERROR),
        "internal"
    );
    // Neither the switch nor an unmatched path is injected, even at an error ratio of 1.
    assert_eq!(
        call(&db, "GET", "/chaos", None).await.json()["enabled"],
        true
    );
    assert_eq!(
        call(&db, "GET", "/no-such-route", None).await.status,
        StatusCode::NOT_FOUND
    );

    let off = call(&db, "PUT", "/chaos", json_body(json!({"enabled": false}))).await;
    assert_eq!(off.json()["enabled"], false);
    assert_eq!(
        call(&db, "GET", "/links", None).await.status,
        StatusCode::OK
    );
    // Probes are never failed on purpose.
    call(&db, "PUT", "/chaos", json_body(json!({"enabled": true}))).await;
    assert_eq!(
        call(&db, "GET", "/healthz", None).await.status,
        StatusCode::OK
    );
    let metrics = String::from_utf8(call(&db, "GET", "/metrics", None).await.body).unwrap();
    assert!(
        metrics.contains(r#"demo_app_injected_faults_total{kind="error"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn app_api_goes_through_the_db() {
    let app = app().await;
    let list = call(&app, "GET", "/api/links?limit=3", None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json().as_array().unwrap().len(), 3);

    let added = call(
        &app,
        "POST",
        "/api/links",
        json_body(json!({"title": "t", "url": "http://x.example"})),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let id = added.json()["id"].as_u64().unwrap();
    let voted = call(&app, "POST", &format!("/api/links/{id}/vote"), None).await;
    assert_eq!(voted.json()["votes"], 1);

    let page = call(&app, "GET", "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"));
    assert!(
        String::from_utf8(page.body)
            .unwrap()
            .contains("http://x.example/")
    );

    let form = Some((
        "application/x-www-form-urlencoded",
        b"title=Form&url=https%3A%2F%2Fform.example".to_vec(),
    ));
    let posted = call(&app, "POST", "/post", form).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER);
    let voted = call(&app, "POST", &format!("/vote/{id}"), None).await;
    assert_eq!(voted.status, StatusCode::SEE_OTHER);
    assert_eq!(
        call(&app, "GET", "/readyz", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn app_rejects_bad_input_and_passes_db_errors_through() {
    let app = app().await;
    let cases: Vec<Case<&str>> = vec![
        (
            "POST",
            "/api/links",
            Some(("application/json", b"[".to_vec())),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "POST",
            "/api/links",
            json_body(json!({"url": "http://x"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/api/links",
            json_body(json!({"title": "t", "url": "mailto:a@b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "POST",
            "/api/links",
            Some(("application/json", vec![b' '; 100_000])),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "POST",
            "/api/links/424242/vote",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "POST",
            "/api/links/x/vote",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "GET",
            "/api/links?limit=-3",
            None,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "PATCH",
            "/api/links",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            "POST",
            "/post",
            Some(("application/x-www-form-urlencoded", b"title=t".to_vec())),
            StatusCode::BAD_REQUEST,
            "invalid_form",
        ),
        (
            "POST",
            "/vote/999999",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (method, uri, body, status, code) in cases {
        let reply = call(&app, method, uri, body).await;
        assert_eq!(reply.expect_error(status), code, "{method} {uri}");
    }
}

#[tokio::test]
async fn app_without_a_db_is_not_ready_and_answers_502() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = router_for(&[
        "--role",
        "app",
        "--db-url",
        &format!("http://{addr}"),
        "--db-timeout",
        "1s",
    ]);
    let reply = call(&app, "GET", "/api/links", None).await;
    assert_eq!(reply.expect_error(StatusCode::BAD_GATEWAY), "internal");
    assert!(
        !String::from_utf8_lossy(&reply.body).contains("127.0.0.1"),
        "internal detail is not leaked"
    );
    let ready = call(&app, "GET", "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["reason"], "no db answers");
}

#[test]
fn app_requires_a_db_url_and_flags_are_validated() {
    let err = Cli::try_parse_from(["demo-app", "serve", "--role", "app"]).unwrap_err();
    assert!(err.to_string().contains("--db-url"), "{err}");
    let err = Cli::try_parse_from([
        "demo-app",
        "serve",
        "--role",
        "app",
        "--db-url",
        "not-a-url",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("--db-url"), "{err}");
    let err = Cli::try_parse_from(["demo-app", "serve", "--role", "db", "--error-ratio", "2"])
        .unwrap_err();
    assert!(err.to_string().contains("ratio"), "{err}");
    let err = Cli::try_parse_from(["demo-app", "serve", "--role", "db", "--latency", "gauss:1s"])
        .unwrap_err();
    assert!(err.to_string().contains("latency"), "{err}");
    let a = args(&["--role", "db", "--chaos-every", "10s", "--chaos-for", "1m"]);
    assert!(
        Parts::new(&a, true).is_err(),
        "window longer than its period"
    );
}
