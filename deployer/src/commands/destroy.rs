//! `destroy`: deletes both minikube profiles after a confirmation; certificates stay, so a new
//! `deployer all` gives a mesh with the same trust anchor.

use std::io::{BufRead, IsTerminal, Write};

use crate::error::DeployerError;
use crate::minikube;
use crate::settings::Settings;
use crate::tools::{Tool, Toolbox, runner};

pub async fn destroy(settings: &Settings, yes: bool, dry_run: bool) -> Result<(), DeployerError> {
    let commands: Vec<_> = settings
        .clusters()
        .iter()
        .map(|c| minikube::delete(&c.profile))
        .collect();
    if dry_run {
        for command in &commands {
            println!("$ {command}");
        }
        println!(
            "(certificates in {} are kept)",
            settings.certs_dir().display()
        );
        return Ok(());
    }
    let toolbox = Toolbox::find_on_path([Tool::Minikube])?;
    if !yes {
        let profiles: Vec<&str> = settings
            .clusters()
            .iter()
            .map(|c| c.profile.as_str())
            .collect();
        confirm(&format!(
            "Delete the minikube profiles {} and everything in them? [y/N] ",
            profiles.join(" and ")
        ))?;
    }
    for command in &commands {
        runner::run(&toolbox, command).await?;
        println!("{}: done", command.summary);
    }
    println!("certificates kept in {}", settings.certs_dir().display());
    Ok(())
}

fn confirm(question: &str) -> Result<(), DeployerError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        // Without a terminal there is nobody to ask; deleting clusters needs an explicit --yes.
        return Err(DeployerError::NotConfirmed);
    }
    eprint!("{question}");
    std::io::stderr().flush().map_err(DeployerError::Prompt)?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(DeployerError::Prompt)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(DeployerError::NotConfirmed),
    }
}
