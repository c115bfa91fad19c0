//! `demo-app serve --role db|app`: the sample microservice.
//!
//! - [`db`]: the in-memory link store behind a JSON API; [`links`] is the domain.
//! - [`app`]: the user-facing API and HTML page, calling db through [`db_client`].
//! - [`chaos`]: failure and latency injection with a runtime toggle.
//! - [`error`]: the JSON error type and extractors whose rejections use it.
//! - this file: flags, the router both roles share (health, readiness, metrics, fallbacks,
//!   telemetry middleware) and [`run`], which serves until shutdown and then drains.

pub mod app;
pub mod body;
pub mod chaos;
pub mod db;
pub mod db_client;
pub mod error;
pub mod links;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use url::Url;

use crate::cli::{parse_duration, parse_ratio};
use crate::listener::{self, ListenerArgs};
use crate::middleware::ScreenLayer;
use crate::telemetry::http::{HttpTelemetry, TrackLayer};
use crate::telemetry::metrics::{self, Metrics};
use body::BodyLimits;
use chaos::{Chaos, ChaosSettings, ChaosWindow, Latency};
use db_client::DbClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Keeps the links (in memory).
    Db,
    /// The user-facing API and page; calls db.
    App,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Db => "db",
            Role::App => "app",
        }
    }

    pub fn service_name(self) -> &'static str {
        match self {
            Role::Db => "demo-db",
            Role::App => "demo-app",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("header_read_timeout", |a| a.env("DEMO_HEADER_READ_TIMEOUT")),
    mut_arg("idle_timeout", |a| a.env("DEMO_IDLE_TIMEOUT")),
    mut_arg("body_timeout", |a| a.env("DEMO_BODY_TIMEOUT")),
    mut_arg("max_connections", |a| a.env("DEMO_MAX_CONNECTIONS"))
)]
pub struct ServeArgs {
    /// Which part of the service to run.
    #[arg(long, env = "DEMO_ROLE", value_enum)]
    pub role: Role,

    /// Address to serve the API on (port 0 picks a free port; the log says which).
    #[arg(long, env = "DEMO_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Serve /metrics on this separate address instead of the API address.
    #[arg(long, env = "DEMO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// db base URL(s) for the app role, comma-separated; calls go round-robin.
    #[arg(
        long = "db-url",
        env = "DEMO_DB_URLS",
        value_delimiter = ',',
        required_if_eq("role", "app")
    )]
    pub db_urls: Vec<Url>,

    /// Timeout of each call from app to db.
    #[arg(long, env = "DEMO_DB_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub db_timeout: Duration,

    /// Most links the db keeps; the oldest goes when it is full.
    #[arg(long, env = "DEMO_MAX_LINKS", default_value_t = 10_000)]
    pub max_links: usize,

    /// Largest request body accepted, in bytes (larger gets 413).
    #[arg(long, env = "DEMO_MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// After SIGTERM/SIGINT, how long in-flight requests may take before the process exits.
    #[arg(long, env = "DEMO_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    #[command(flatten)]
    pub listener: ListenerArgs,

    #[command(flatten)]
    pub chaos: ChaosArgs,
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Failure and latency injection")]
pub struct ChaosArgs {
    /// Share of API requests answered with an injected 500.
    #[arg(long, env = "DEMO_ERROR_RATIO", default_value = "0", value_parser = parse_ratio)]
    pub error_ratio: f64,

    /// Latency added to API requests: none, fixed:50ms, uniform:10ms..200ms, exp:20ms.
    #[arg(long, env = "DEMO_LATENCY", default_value = "none")]
    pub latency: Latency,

    /// Start a chaos window this often (e.g. 5m); off when unset.
    #[arg(long, env = "DEMO_CHAOS_EVERY", value_parser = parse_duration)]
    pub chaos_every: Option<Duration>,

    /// How long each chaos window lasts.
    #[arg(long, env = "DEMO_CHAOS_FOR", default_value = "30s", value_parser = parse_duration)]
    pub chaos_for: Duration,

    /// Error ratio inside a chaos window.
    #[arg(long, env = "DEMO_CHAOS_ERROR_RATIO", default_value = "0.5", value_parser = parse_ratio)]
    pub chaos_error_ratio: f64,

    /// Added latency inside a chaos window.
    #[arg(
        long,
        env = "DEMO_CHAOS_LATENCY",
        default_value = "uniform:100ms..500ms"
    )]
    pub chaos_latency: Latency,

    /// Seed for injection decisions and the window's phase [default: random].
    #[arg(long, env = "DEMO_CHAOS_SEED")]
    pub chaos_seed: Option<u64>,

    /// Start with injection switched on (PUT /chaos toggles it at runtime).
    #[arg(long, env = "DEMO_INJECTION_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub injection_enabled: bool,
}

impl ChaosArgs {
    pub fn settings(&self) -> Result<ChaosSettings, ServeError> {
        let window = match self.chaos_every {
            None => None,
            Some(every) if self.chaos_for > every || every.is_zero() => {
                return Err(ServeError::Config(format!(
                    "--chaos-for ({:?}) must be shorter than --chaos-every ({every:?})",
                    self.chaos_for
                )));
            }
            Some(every) => Some(ChaosWindow {
                every,
                length: self.chaos_for,
                error_ratio: self.chaos_error_ratio,
                latency: self.chaos_latency,
            }),
        };
        Ok(ChaosSettings {
            enabled: self.injection_enabled,
            error_ratio: self.error_ratio,
            latency: self.latency,
            window,
            seed: self.chaos_seed.unwrap_or_else(rand::random),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {addr}: {source} (is another process using the port? choose another with --listen / --metrics-listen)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("server failed: {0}")]
    Server(#[from] std::io::Error),
}

/// Whether the process should receive traffic: false while draining, and for the app role
/// while no db answers.
#[derive(Clone)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
    db: Option<Arc<DbClient>>,
}

impl Readiness {
    async fn check(&self) -> Result<(), &'static str> {
        if self.draining.load(Ordering::Relaxed) {
            return Err("shutting down");
        }
        match &self.db {
            Some(db) if !db.any_ready().await => Err("no db answers"),
            _ => Ok(()),
        }
    }
}

/// Everything both roles' routers are built from.
pub struct Parts {
    pub metrics: Metrics,
    pub chaos: Arc<Chaos>,
    pub readiness: Readiness,
    pub request_log: bool,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    /// Serve /metrics on the API router (false when it has its own listener).
    pub metrics_on_api: bool,
}

impl Parts {
    pub fn new(args: &ServeArgs, request_log: bool) -> Result<Self, ServeError> {
        Ok(Self {
            metrics: Metrics::new(args.role.as_str()),
            chaos: Chaos::new(args.chaos.settings()?),
            readiness: Readiness {
                draining: Arc::new(AtomicBool::new(false)),
                db: None,
            },
            request_log,
            max_body_bytes: args.max_body_bytes,
            body_timeout: args.listener.body_timeout,
            metrics_on_api: args.metrics_listen.is_none(),
        })
    }
}

/// The role's full router: its API plus everything shared.
pub fn router(args: &ServeArgs, parts: &mut Parts) -> Router {
    let api = match args.role {
        Role::Db => db::routes(db::DbState::new(links::Store::seeded(args.max_links))),
        Role::App => {
            let client = DbClient::new(
                args.db_urls.clone(),
                args.db_timeout,
                parts.metrics.http.clone(),
            );
            parts.readiness.db = Some(client.clone());
            app::routes(client)
        }
    };
    shared_router(api, parts)
}

/// Adds to a role's API: `/chaos`, JSON fallbacks, then one middleware stack on all of those:
/// telemetry, body limits and injection (which leaves `/chaos` and unmatched paths alone).
/// `/healthz`, `/readyz` and `/metrics` stay untraced so probes and scrapes do not flood traces
/// and logs.
pub fn shared_router(api: Router, parts: &Parts) -> Router {
    let injection = ScreenLayer(chaos::Injection::new(
        parts.chaos.clone(),
        parts.metrics.http.clone(),
    ));
    let telemetry = HttpTelemetry::new(parts.metrics.http.clone(), parts.request_log);
    let bodies = ScreenLayer(BodyLimits {
        max_bytes: parts.max_body_bytes,
        timeout: parts.body_timeout,
    });
    let traced = Router::new()
        .merge(api)
        .route(
            chaos::CHAOS_PATH,
            get(chaos::show)
                .put(chaos::toggle)
                .with_state(parts.chaos.clone()),
        )
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        // One stack, so each route is wrapped (and boxed) once for all three. The body reader
        // is inside the telemetry, so 408 and 413 are counted and logged like any answer; the
        // injection is inside both, so injected failures and delays are too.
        .layer(
            ServiceBuilder::new()
                .layer(TrackLayer(telemetry))
                .layer(bodies)
                .layer(injection),
        );
    let mut probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(parts.readiness.clone()));
    if parts.metrics_on_api {
        probes = probes.merge(metrics_router(parts.metrics.clone()));
    }
    probes
        .method_not_allowed_fallback(error::wrong_method)
        .layer(bodies)
        .merge(traced)
}

/// `/metrics` alone, for a separate listener.
pub fn metrics_router(metrics: Metrics) -> Router {
    metrics::router(metrics.registry())
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    match readiness.check().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not ready", "reason": reason})),
        )
            .into_response(),
    }
}

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// (up to `--shutdown-timeout`) and returns. Telemetry flushing is the caller's (`main`'s).
pub async fn run(
    args: ServeArgs,
    request_log: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let mut parts = Parts::new(&args, request_log)?;
    let api = router(&args, &mut parts);
    let listener = bind(args.listen).await?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    tracing::info!(
        role = args.role.as_str(),
        addr = %listener.local_addr()?,
        metrics_addr = %metrics_listener.as_ref().map_or(listener.local_addr(), |l| l.local_addr())?,
        db_urls = ?args.db_urls.iter().map(Url::as_str).collect::<Vec<_>>(),
        "listening"
    );

    let stop = CancellationToken::new();
    let mut servers = tokio::task::JoinSet::new();
    let limits = args.listener.clone();
    servers.spawn({
        let (limits, stop) = (limits.clone(), stop.clone());
        async move { listener::serve(listener, api, &limits, "api", stop).await }
    });
    if let Some(l) = metrics_listener {
        let router = metrics_router(parts.metrics.clone());
        let stop = stop.clone();
        servers.spawn(async move { listener::serve(l, router, &limits, "metrics", stop).await });
    }

    tokio::select! {
        () = shutdown => {}
        Some(ended) = servers.join_next() => {
            // A server only ends early on an I/O error: stop the other one too.
            stop.cancel();
            return match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServeError::Server(e)),
                Err(e) => Err(ServeError::Server(std::io::Error::other(e))),
            };
        }
    }
    parts.readiness.draining.store(true, Ordering::Relaxed);
    stop.cancel();
    tracing::info!(
        deadline_s = args.shutdown_timeout.as_secs_f64(),
        "draining in-flight requests"
    );
    let drained = tokio::time::timeout(args.shutdown_timeout, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) => tracing::info!("all requests finished; stopped"),
        Err(_) => tracing::warn!(
            "shutdown deadline passed with requests still in flight; they are abandoned"
        ),
    }
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}
