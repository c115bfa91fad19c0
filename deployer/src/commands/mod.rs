//! One file per command; [`run`] dispatches.

mod deploy;
mod destroy;
mod doctor;
pub mod grafana;
mod loadtest;
mod status;
mod summary;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::error::DeployerError;
use crate::plan::Target;
use crate::settings::Settings;

/// Whether the command's spans are exported when an OTLP endpoint is set: the deploy commands
/// when they run for real. (`grafana` runs until Ctrl-C, so its trace would never end.)
pub fn exports_its_trace(cli: &Cli) -> bool {
    let deploys = matches!(
        cli.command,
        Command::Certs { .. } | Command::Central | Command::Remote | Command::All
    );
    deploys && !cli.global.dry_run
}

pub async fn run(cli: &Cli) -> Result<(), DeployerError> {
    cli.global.check()?;
    let settings = Settings::from_args(&cli.global);
    let dry_run = cli.global.dry_run;
    match &cli.command {
        Command::Certs { force } => {
            deploy::deploy(&settings, Target::Certs { force: *force }, "certs", dry_run).await
        }
        Command::Central => deploy::deploy(&settings, Target::Central, "central", dry_run).await,
        Command::Remote => deploy::deploy(&settings, Target::Remote, "remote", dry_run).await,
        Command::All => deploy::deploy(&settings, Target::All, "all", dry_run).await,
        Command::Status { output } => status::status(&settings, *output, dry_run).await,
        Command::Doctor => doctor::doctor(&settings, dry_run).await,
        Command::Grafana { address, port } => {
            grafana::grafana(&settings, *address, *port, dry_run).await
        }
        Command::Loadtest(args) => loadtest::loadtest(&settings, args, dry_run).await,
        Command::Verify(args) => verify::verify(&settings, args, dry_run).await,
        Command::Destroy { yes } => destroy::destroy(&settings, *yes, dry_run).await,
    }
}
