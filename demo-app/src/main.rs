use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demo_app::cli::{Cli, Command};
use demo_app::telemetry::Telemetry;
use demo_app::{serve, shutdown};

/// How long flushing spans at exit may take, after the servers have drained.
const SPAN_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match Telemetry::init(&cli.telemetry, cli.command.default_service_name()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("demo-app: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(args, telemetry.request_log, shutdown::signal()).await,
    };
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "demo-app stopped with an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown(SPAN_FLUSH_DEADLINE);
    code
}
