//! The external commands whose answers go into the bundle: `helm status` and `helm history` of
//! the failed release, the tail of `minikube logs` per profile, and `minikube image ls` after an
//! image step. Each is bounded; a failure is
//! kept as text (it is part of the picture), never raised.

use std::time::Duration;

use crate::steps::Deployer;
use crate::tools::{CommandSpec, Tool};

use super::scope::Scope;

/// Lines of `minikube logs` kept (its own default is 60).
const MINIKUBE_LOG_LINES: &str = "200";

/// (file name in the bundle, what the command printed).
pub type Output = (String, String);

pub async fn collect(deployer: &Deployer, scope: &Scope, bound: Duration) -> Vec<Output> {
    let mut commands: Vec<(String, CommandSpec)> = Vec::new();
    if let Some((context, release)) = &scope.release {
        for (file, args) in [
            ("helm-status.txt", vec!["status"]),
            ("helm-history.txt", vec!["history", "--max", "10"]),
        ] {
            let mut args: Vec<String> = args.into_iter().map(String::from).collect();
            args.extend([
                release.name.clone(),
                "--namespace".into(),
                release.namespace.clone(),
                "--kube-context".into(),
                context.clone(),
            ]);
            let spec = CommandSpec::new(Tool::Helm, args, "describe the failed release");
            commands.push((file.to_string(), spec));
        }
    }
    for profile in &scope.profiles {
        let spec = CommandSpec::new(
            Tool::Minikube,
            ["-p", profile, "logs", "--length", MINIKUBE_LOG_LINES],
            format!("the tail of minikube's logs of {profile}"),
        );
        commands.push((format!("minikube-logs-{profile}.txt"), spec));
    }
    for profile in &scope.image_profiles {
        let spec = CommandSpec::new(
            Tool::Minikube,
            ["-p", profile, "image", "ls", "--format", "table"],
            format!("the images in {profile}'s node"),
        );
        commands.push((format!("minikube-image-ls-{profile}.txt"), spec));
    }
    let runs = commands.into_iter().map(|(file, spec)| async move {
        let spec = spec.allow_failure().timeout(bound);
        let text = match deployer.run(&spec).await {
            Ok(output) => format!("$ {spec}\n{}{}", output.stdout, output.stderr),
            Err(error) => format!("$ {spec}\n{error}\n"),
        };
        (file, text)
    });
    futures::future::join_all(runs).await
}
