use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demo_app::cli::{Cli, Command};
use demo_app::telemetry::Telemetry;
use demo_app::{agent, serve, shutdown};

/// How long flushing spans at exit may take, after the servers have drained.
const SPAN_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if matches!(cli.command, Command::Agent(_)) {
        // The agent relays spans; exporting its own would loop them back into itself.
        cli.telemetry.otel_sdk_disabled = true;
    }
    let telemetry = match Telemetry::init(&cli.telemetry, cli.command.default_service_name()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("demo-app: {e}");
            return ExitCode::from(2);
        }
    };
    let code = match cli.command {
        Command::Serve(args) => {
            match serve::run(args, telemetry.request_log, shutdown::signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "demo-app stopped with an error");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Agent(args) => match agent::run(args, shutdown::signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "agent stopped with an error");
                ExitCode::FAILURE
            }
        },
    };
    telemetry.shutdown(SPAN_FLUSH_DEADLINE);
    code
}
