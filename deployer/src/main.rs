use std::process::ExitCode;

use clap::Parser;
use deployer::telemetry::{Export, Telemetry};
use deployer::{Cli, DeployerError, Report};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if cli.global.verbose {
        "deployer=debug"
    } else {
        "warn"
    };
    // Only a real deploy is exported: a dry run builds no exporter and makes no spans.
    let export = if deployer::commands::exports_its_trace(&cli) {
        Export::from_env(|name| std::env::var(name).ok())
    } else {
        Ok(Export::Off)
    };
    let telemetry = match export.and_then(|export| Telemetry::install(default_level, &export)) {
        Ok(telemetry) => telemetry,
        Err(error) => return fail(&error.into()),
    };
    let result = deployer::run(&cli).await;
    // Flushed whether the command succeeded or not: a failed deploy's trace matters most.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &DeployerError) -> ExitCode {
    eprintln!("{}", Report(error));
    ExitCode::from(error.exit_code())
}
