//! The peers of the request-path benchmark (`tests/bench/request_path.sh`): what the demo
//! service does on its list path with nothing else, so the benchmark can say what our
//! middleware, telemetry and client cost on top of plain axum.
//!
//! - `bare_axum serve <port> <links.json>`: answers `GET /links?limit=N` with the first N links
//!   of the file (the db's own answer, saved by the benchmark), serialized per request as the db
//!   does.
//! - `bare_axum proxy <port> <upstream-url>`: answers `GET /api/links?limit=N` by calling the
//!   upstream's `/links?limit=N` through one shared reqwest client, decoding the links and
//!   encoding them again, as the app does.
//!
//! Usage: cargo run --release -p testkit --example bare_axum -- serve 8081 links.json

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// The db's link, field for field.
#[derive(Clone, Serialize, Deserialize)]
struct Link {
    id: u64,
    title: String,
    url: String,
    votes: u64,
    created: String,
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

const DEFAULT_LIMIT: usize = 20;

async fn list(State(links): State<Arc<Vec<Link>>>, Query(q): Query<Limit>) -> Json<Vec<Link>> {
    let n = q.limit.unwrap_or(DEFAULT_LIMIT).min(links.len());
    Json(links[..n].to_vec())
}

struct Upstream {
    client: reqwest::Client,
    base: String,
}

async fn proxy(
    State(up): State<Arc<Upstream>>,
    Query(q): Query<Limit>,
) -> Result<Json<Vec<Link>>, StatusCode> {
    let url = format!(
        "{}/links?limit={}",
        up.base,
        q.limit.unwrap_or(DEFAULT_LIMIT)
    );
    let response = up
        .client
        .get(url)
        .send()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let body = response
        .bytes()
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    let links = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(Json(links))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, port, arg) = match args.as_slice() {
        [mode, port, arg] => (mode.as_str(), port, arg),
        _ => usage(),
    };
    let app = match mode {
        "serve" => {
            let text =
                std::fs::read_to_string(arg).unwrap_or_else(|e| fail(&format!("{arg}: {e}")));
            let links: Vec<Link> =
                serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("{arg}: {e}")));
            axum::Router::new()
                .route("/links", get(list))
                .with_state(Arc::new(links))
        }
        "proxy" => axum::Router::new()
            .route("/api/links", get(proxy))
            .with_state(Arc::new(Upstream {
                client: reqwest::Client::new(),
                base: arg.trim_end_matches('/').to_owned(),
            })),
        _ => usage(),
    };
    let healthz = axum::Router::new().route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| fail(&format!("port {port}: {e}")));
    axum::serve(listener, app.merge(healthz))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
}

fn usage() -> ! {
    fail("usage: bare_axum serve <port> <links.json> | bare_axum proxy <port> <upstream-url>")
}

fn fail(message: &str) -> ! {
    eprintln!("bare_axum: {message}");
    std::process::exit(2)
}
