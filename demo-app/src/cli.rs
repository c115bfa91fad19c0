//! The command line. Every flag can also be set by the environment variable shown in `--help`
//! (flag, then env, then default: clap implements the order once, for all of them).

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::agent::AgentArgs;
use crate::loadgen::LoadgenArgs;
use crate::serve::ServeArgs;
use crate::telemetry::{LogOutput, TelemetryArgs};

#[derive(Debug, Parser)]
#[command(
    name = "demo-app",
    version,
    about = "The LGTM PoC demo workload: a small link-voting service (db and app roles) that \
             emits Prometheus metrics with exemplars, JSON logs with trace ids and OTLP traces",
    after_help = "Examples:\n  \
      demo-app serve --role db --listen 127.0.0.1:8081\n  \
      demo-app serve --role app --listen 127.0.0.1:8080 --db-url http://127.0.0.1:8081\n  \
      OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 demo-app serve --role db"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[derive(Debug, Subcommand)]
// Parsed once at start-up: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the sample microservice in one role (db keeps the links, app is the user-facing API).
    #[command(after_help = "Examples:\n  \
      demo-app serve --role db\n  \
      demo-app serve --role app --db-url http://db-0:8080,http://db-1:8080\n  \
      demo-app serve --role app --db-url http://db:8080 --error-ratio 0.05 --latency exp:20ms\n  \
      demo-app serve --role db --chaos-every 5m --chaos-for 30s --chaos-seed 7\n\n\
      Toggle injection at runtime:\n  \
      curl -X PUT -H 'content-type: application/json' -d '{\"enabled\":false}' localhost:8080/chaos")]
    Serve(ServeArgs),

    /// Load the app at a constant rate (open loop) or as fast as it goes, and report latency
    /// (corrected for coordinated omission), outcomes and missed sends.
    #[command(after_help = "Examples:\n  \
      demo-app loadgen --target http://127.0.0.1:8080 --rate 200 --duration 1m\n  \
      demo-app loadgen --target http://app:8080 --rate 50 --duration 0 --metrics-addr 0.0.0.0:9090\n  \
      demo-app loadgen --target http://app:8080 --rate 1000 --ramp-up 30s --duration 2m --output json\n  \
      demo-app loadgen --target http://db:8080 --api-prefix '' --mix list=1 --rate max --connections 64\n\n\
      Exit status: 0 done, 2 bad input or target unreachable, 3 not passed (error ratio above\n\
      --max-error-ratio, no request completed, or requests lost), 1 the load generator failed.\n\
      Logs go to stderr; stdout has the progress line (on a terminal) and the summary.")]
    Loadgen(LoadgenArgs),

    /// Run the telemetry agent: receive OTLP traces, relay them to Tempo with the tenant
    /// header, and (optionally) ship Kubernetes events to Loki.
    #[command(after_help = "Examples:\n  \
      demo-app agent --upstream tempo-distributor.tempo.svc:4317 --tenant remote01 \\\n    \
        --resource-attribute k8s.cluster.name=lgtm-remote\n  \
      demo-app agent --upstream http://tempo:4318 --upstream-protocol http --tenant remote01 \\\n    \
        --header Authorization='Bearer xyz' --overflow drop --queue-max-bytes 33554432\n  \
      AGENT_UPSTREAM=tempo:4317 AGENT_TENANT=remote01 \\\n    \
        AGENT_EVENTS_LOKI_URL=http://loki-gateway.loki.svc demo-app agent\n\n\
      Self-metrics (Collector names), /healthz and /readyz on --metrics-listen (:8888):\n  \
      curl localhost:8888/metrics | grep otelcol_")]
    Agent(AgentArgs),
}

impl Command {
    /// The OpenTelemetry `service.name` used unless OTEL_SERVICE_NAME says otherwise.
    pub fn default_service_name(&self) -> &'static str {
        match self {
            Command::Serve(args) => args.role.service_name(),
            Command::Loadgen(_) => "demo-loadgen",
            Command::Agent(_) => "demo-agent",
        }
    }

    /// Where the JSON logs go: stderr for commands whose stdout is a report.
    pub fn log_output(&self) -> LogOutput {
        match self {
            Command::Serve(_) => LogOutput::Stdout,
            Command::Loadgen(_) => LogOutput::Stderr,
            Command::Agent(_) => LogOutput::Stdout,
        }
    }
}

/// Parses durations such as `250ms`, `2s`, `5m`, `1h` or `1.5s` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: use e.g. 250ms, 2s, 5m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in duration {s:?}: use us, ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?} is not a duration: {e}"))
}

/// Parses a ratio in [0, 1], e.g. `0.05`.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a ratio between 0 and 1 (e.g. 0.05)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn listener_flags_take_each_subcommands_env_prefix() {
        let mut cli = Cli::command();
        cli.build();
        for (sub, prefix) in [("serve", "DEMO_"), ("agent", "AGENT_")] {
            let command = cli.find_subcommand(sub).unwrap();
            for id in [
                "header_read_timeout",
                "idle_timeout",
                "body_timeout",
                "max_connections",
            ] {
                let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
                let env = arg.get_env().unwrap().to_string_lossy();
                assert_eq!(env, format!("{prefix}{}", id.to_ascii_uppercase()));
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn ratios() {
        assert_eq!(parse_ratio("0.25").unwrap(), 0.25);
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("NaN").is_err());
    }
}
