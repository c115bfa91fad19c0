use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use demo_app::cli::{Cli, Command};
use demo_app::loadgen::{self, Output};
use demo_app::telemetry::Telemetry;
use demo_app::{agent, serve, shutdown};

/// How long flushing spans at exit may take, after the work has drained.
const SPAN_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Exit status for bad input or an unreachable target (clap uses 2 for bad flags too).
const EXIT_USAGE: u8 = 2;
/// Exit status of `loadgen` when the error ratio is above `--max-error-ratio`.
const EXIT_TOO_MANY_ERRORS: u8 = 3;

#[tokio::main]
async fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if matches!(cli.command, Command::Agent(_)) {
        // The agent relays spans; exporting its own would loop them back into itself.
        cli.telemetry.otel_sdk_disabled = true;
    }
    let telemetry = match Telemetry::init(
        &cli.telemetry,
        cli.command.default_service_name(),
        cli.command.log_output(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("demo-app: {e}");
            return ExitCode::from(EXIT_USAGE);
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
        Command::Loadgen(args) => run_loadgen(args).await,
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

async fn run_loadgen(args: loadgen::LoadgenArgs) -> ExitCode {
    let output = args.output;
    let summary = match loadgen::run(args, shutdown::signal()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "load test failed");
            eprintln!("demo-app loadgen: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match output {
        Output::Json => serde_json::to_writer_pretty(&mut out, &summary)
            .map_err(std::io::Error::other)
            .and_then(|()| std::io::Write::write_all(&mut out, b"\n")),
        Output::Human => summary.write_human(&mut out),
    };
    if let Err(e) = written {
        eprintln!("demo-app loadgen: cannot write the summary: {e}");
    }
    if summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_TOO_MANY_ERRORS)
    }
}
