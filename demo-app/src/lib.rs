//! The demo-app: one binary, three jobs, one telemetry contract.
//!
//! Layout (a folder per subcommand, shared pieces at the top):
//! - [`cli`]: the command line (clap); every flag can also come from an env var.
//! - [`telemetry`]: what every subcommand emits, set up once: JSON logs with trace ids
//!   ([`telemetry::logs`]), Prometheus/OpenMetrics metrics with exemplars
//!   ([`telemetry::metrics`]), OTLP traces and W3C propagation ([`telemetry::traces`]), and the
//!   HTTP server middleware that ties the three together per request ([`telemetry::http`]).
//! - [`agent`]: `demo-app agent`, the per-cluster telemetry agent (OTLP relay to Tempo with the
//!   tenant; Kubernetes events to Loki).
//! - [`serve`]: `demo-app serve --role db|app`, the sample microservice (loadgen -> app -> db).
//! - [`loadgen`]: `demo-app loadgen`, the open-loop load generator (its own traces start the
//!   trace loadgen -> app -> db).
//! - [`shutdown`]: SIGTERM/SIGINT as a future that subcommands take as a parameter.
//! - [`listener`]: the accept loop every listener uses: header, idle and body timeouts, a
//!   bound on open connections, graceful shutdown.
//! - [`middleware`]: tower middleware that passes a request straight on when it has nothing
//!   to do (db/app body reading and fault injection).
//!
//! `main.rs` only parses the command line, starts telemetry and calls into these modules, so
//! tests drive the same code over real sockets.

pub mod agent;
pub mod cli;
pub mod listener;
pub mod loadgen;
pub mod middleware;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
