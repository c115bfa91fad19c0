//! `destroy`: deletes both minikube profiles after a confirmation, then their shared network when
//! nothing else uses it; certificates stay, so a new `deployer all` gives a mesh with the same
//! trust anchor.

use std::io::{BufRead, IsTerminal, Write};

use crate::container;
use crate::error::DeployerError;
use crate::minikube::{self, network};
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
            "$ {}    # kept when a container still uses it",
            container::remove_network(settings.driver, &settings.network)
        );
        println!(
            "(certificates in {} are kept)",
            settings.certs_dir().display()
        );
        return Ok(());
    }
    let toolbox = Toolbox::find_on_path([Tool::Minikube, settings.driver.tool()])?
        .with_kubeconfig(settings.kubeconfig.clone());
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
    for (command, cluster) in commands.iter().zip(settings.clusters()) {
        runner::run(&toolbox, command).await?;
        println!("{}: done", command.summary);
        // The profile is gone, and with it the static IP it was made with.
        if let Err(e) = network::forget_static_ip(&settings.state_dir, &cluster.profile) {
            eprintln!(
                "warning: cannot remove the kept static IP of {}: {e}",
                cluster.profile
            );
        }
    }
    remove_network(settings, &toolbox).await;
    println!("certificates kept in {}", settings.certs_dir().display());
    Ok(())
}

/// minikube labels the networks it creates with the network's own name and leaves them behind
/// when the last profile on them is deleted. The engine refuses to remove a network a container
/// still uses (another profile, a user's container): then it is kept, and said so.
async fn remove_network(settings: &Settings, toolbox: &Toolbox) {
    let command = container::remove_network(settings.driver, &settings.network);
    match runner::run(toolbox, &command).await {
        Ok(output) if output.success() => println!("{}: done", command.summary),
        Ok(output) => println!(
            "network {} kept: {}",
            settings.network,
            output
                .stderr
                .trim()
                .lines()
                .last()
                .unwrap_or("the engine refused")
        ),
        Err(e) => println!("network {} kept: {e}", settings.network),
    }
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
