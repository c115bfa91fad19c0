//! Hostile and broken clients against every listener, as real processes on port-0 sockets
//! driven by raw TCP clients: heads that stall, connections that idle, bodies that stall,
//! `Expect: 100-continue` with an oversized body, more stalled clients than the process has
//! file descriptors; and a link URL that the db and the app must judge alike.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::otlp::OtlpSink;
use testkit::process::{AgentProc, DemoPair, Proc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_demo-app");
const QUIET: (&str, &str) = ("OTEL_SDK_DISABLED", "true");

/// Reads until the peer closes (EOF or reset) or `timeout` passes; returns what was read and
/// when the connection closed, if it did.
async fn read_until_closed(
    stream: &mut TcpStream,
    timeout: Duration,
) -> (Vec<u8>, Option<Instant>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (got, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(Instant::now())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status code and JSON body of the first HTTP/1.1 response in `raw`.
fn parse_response(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    let json = serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {text:?}"));
    (status, json)
}

/// A process started by `sh` with at most `fds` open files (the attack ran under 256).
fn spawn_with_fd_limit(name: &str, fds: u32, args: &[&str]) -> Proc {
    let script = format!("ulimit -n {fds} && exec \"$0\" \"$@\"");
    let mut argv = vec!["-c", script.as_str(), BIN];
    argv.extend_from_slice(args);
    Proc::spawn(name, "sh", &argv, &[QUIET])
}

#[tokio::test]
async fn stalled_heads_are_cut_and_the_bound_keeps_the_process_serving() {
    // As many clients stalled mid-headers as the process may open files: before, they took
    // every descriptor and kept everyone else out.
    const FDS: u32 = 32;
    const BOUND: usize = 8;
    let db = spawn_with_fd_limit(
        "db",
        FDS,
        &[
            "serve",
            "--role",
            "db",
            "--listen",
            "127.0.0.1:0",
            "--header-read-timeout",
            "1s",
            "--max-connections",
            &BOUND.to_string(),
        ],
    );
    let addr = db.listen_addr().await;
    let started = Instant::now();
    let mut closers = tokio::task::JoinSet::new();
    for _ in 0..FDS {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /links HTTP/1.1\r\nHost: db\r\nX-Slow: ")
            .await
            .unwrap();
        closers.spawn(async move { read_until_closed(&mut s, Duration::from_secs(15)).await.1 });
    }

    // A new client behind them all is served once the stalled ones before it are cut.
    let fresh = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::get(format!("http://{addr}/links?limit=1")),
    )
    .await
    .expect("a new client is served within 10 s while others stall")
    .unwrap();
    assert_eq!(fresh.status(), 200);

    let mut closed_after: Vec<Duration> = Vec::new();
    while let Some(closed) = closers.join_next().await {
        let at = closed
            .unwrap()
            .expect("every stalled connection is closed by the server");
        closed_after.push(at - started);
    }
    closed_after.sort();
    // The first BOUND were accepted at once and cut one header timeout later.
    let first_round = closed_after[BOUND - 1];
    assert!(
        first_round >= Duration::from_millis(900) && first_round < Duration::from_secs(3),
        "the first {BOUND} closed after {first_round:?}, want about 1 s: {closed_after:?}"
    );
    let limit_lines: Vec<Value> = db
        .logs()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("connection limit reached"))
        })
        .collect();
    assert_eq!(
        limit_lines.len(),
        1,
        "logged once, not per connection: {limit_lines:?}"
    );
    assert_eq!(limit_lines[0]["max_connections"], BOUND);
    assert_eq!(limit_lines[0]["listener"], "api");
}

/// A connection that sends nothing, and one left idle after a complete request, to `addr`.
async fn idle_pair(addr: SocketAddr, request: &[u8]) -> (TcpStream, TcpStream) {
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(request).await.unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 "), "{head:?}");
    (silent, kept)
}

/// Asserts the connection is closed about `idle` after `since` (not before, not much after).
async fn assert_closed_when_idle(
    mut stream: TcpStream,
    idle: Duration,
    since: Instant,
    what: &str,
) {
    let (_, closed) = read_until_closed(&mut stream, idle * 5).await;
    let closed = closed.unwrap_or_else(|| panic!("{what}: still open after {:?}", idle * 5));
    let after = closed - since;
    assert!(
        after >= idle.mul_f64(0.8) && after < idle * 4,
        "{what}: closed after {after:?}, want about {idle:?}"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_on_every_listener() {
    let idle = Duration::from_secs(1);
    let timeouts = ["--idle-timeout", "1s", "--header-read-timeout", "10s"];
    let mut db_args = vec![
        "serve",
        "--role",
        "db",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    db_args.extend(timeouts);
    let db = Proc::spawn("db", BIN, &db_args, &[QUIET]);
    let sink = OtlpSink::start().await;
    let upstream = sink.grpc_endpoint();
    let agent = AgentProc::start(BIN, &upstream, "t1", &timeouts, &[]).await;

    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let http_listeners = [
        ("db api", db.listen_addr().await, get("/healthz")),
        ("db metrics", db.metrics_addr().await, get("/metrics")),
        ("agent http", agent.http, get("/nothing")),
        ("agent metrics", agent.metrics, get("/healthz")),
    ];
    let mut checks = tokio::task::JoinSet::new();
    for (name, addr, request) in http_listeners {
        let since = Instant::now();
        let (silent, kept) = idle_pair(addr, &request).await;
        let kept_since = Instant::now();
        checks.spawn(assert_closed_when_idle(silent, idle, since, name));
        checks.spawn(assert_closed_when_idle(kept, idle, kept_since, name));
    }
    // HTTP/2 on the gRPC listener: a connection without streams gets GOAWAY, then is closed.
    let mut h2 = TcpStream::connect(agent.grpc).await.unwrap();
    let since = Instant::now();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let (frames, closed) = read_until_closed(&mut h2, idle * 5).await;
    let closed = closed.expect("an idle HTTP/2 connection is closed");
    assert!(closed - since >= idle.mul_f64(0.8), "{:?}", closed - since);
    assert!(frame_types(&frames).contains(&7), "a GOAWAY frame first");
    while let Some(done) = checks.join_next().await {
        done.unwrap();
    }
}

/// The types of the HTTP/2 frames in `bytes` (9-byte headers: length, type, flags, stream).
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = bytes.get(9 + len..).unwrap_or_default();
    }
    types
}

async fn demo_pair(extra: &[&str]) -> DemoPair {
    // The db gets the same settings through the environment (flag, then env, then default).
    DemoPair::start(BIN, &[QUIET, ("DEMO_BODY_TIMEOUT", "1s")], &[QUIET], extra).await
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_on_db_and_app() {
    let pair = demo_pair(&["--body-timeout", "1s"]).await;
    let app = pair.app.listen_addr().await;
    let db = pair.db.listen_addr().await;
    for (addr, path) in [(db, "/links"), (app, "/api/links")] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":"
        );
        let sent = Instant::now();
        s.write_all(head.as_bytes()).await.unwrap();
        let (raw, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(
            closed.is_some(),
            "{path}: answered and closed, got {:?}",
            String::from_utf8_lossy(&raw)
        );
        let (status, body) = parse_response(&raw);
        assert_eq!(status, 408, "{path}: {body}");
        assert_eq!(body["error"]["code"], "request_timeout");
        assert!(
            sent.elapsed() >= Duration::from_millis(900),
            "{path}: not before the timeout"
        );
    }
}

#[tokio::test]
async fn expect_continue_over_the_limit_gets_413_without_uploading() {
    let pair = demo_pair(&[]).await;
    let sink = OtlpSink::start().await;
    let upstream = sink.grpc_endpoint();
    let agent = AgentProc::start(BIN, &upstream, "t1", &[], &[]).await;
    let targets = [
        (pair.db.listen_addr().await, "/links", "application/json"),
        (
            pair.app.listen_addr().await,
            "/api/links",
            "application/json",
        ),
        (agent.http, "/v1/traces", "application/x-protobuf"),
    ];
    for (addr, path, content_type) in targets {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // The body is never sent: the answer must come without it.
        let (raw, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(
            !text.contains("100 Continue"),
            "{path}: asked for the upload: {text:?}"
        );
        let (status, body) = parse_response(&raw);
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], "body_too_large", "{path}: {body}");
    }
}

#[tokio::test]
async fn db_and_app_judge_a_link_url_alike() {
    let pair = demo_pair(&[]).await;
    let db = format!("http://{}/links", pair.db.listen_addr().await);
    let app = format!("{}/api/links", pair.app_url);
    let client = reqwest::Client::new();
    let post = async |url: &str, link: &str| {
        let body = serde_json::json!({"title": "t", "url": link});
        client
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // 2,017 bytes as sent, 6,017 once percent-encoded (what is stored).
    let encoded = format!("http://x.example/{}", "é".repeat(1000));
    // 2,519 bytes as sent, 18 once the dot segments are resolved.
    let dotted = format!("http://x.example/{}z", "a/../".repeat(500));
    for (link, want) in [(encoded, 422), (dotted, 201)] {
        let (direct, through_app) = (post(&db, &link).await, post(&app, &link).await);
        assert_eq!(
            (direct, through_app),
            (want, want),
            "db and app answer alike for a {}-byte URL",
            link.len()
        );
    }
}
