//! The one place an external command runs: it logs the command with its purpose, captures its
//! output, enforces the timeout and turns a failure into an error that carries stderr.
//!
//! Each command is a `tracing` span (a child of the step that runs it): its purpose as the name,
//! the command line, the cluster it addresses and its exit code; a failure sets the error status.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tracing::{Instrument, Span, field};

use super::{CommandSpec, Toolbox};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// None when the process was ended by a signal.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}){}", stderr_block(.stderr))]
    Failed {
        command: String,
        status: String,
        stderr: String,
        hint: Option<String>,
    },
    #[error("`{command}` did not finish within {}s", .after.as_secs())]
    Timeout {
        command: String,
        after: Duration,
        hint: Option<String>,
    },
}

impl RunError {
    pub fn command(&self) -> &str {
        match self {
            RunError::Spawn { command, .. }
            | RunError::Failed { command, .. }
            | RunError::Timeout { command, .. } => command,
        }
    }

    pub fn hint(&self) -> Option<&str> {
        match self {
            RunError::Spawn { .. } => Some("check that the tool is installed and executable"),
            RunError::Failed { hint, .. } | RunError::Timeout { hint, .. } => hint.as_deref(),
        }
    }
}

fn stderr_block(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!(":\n{stderr}")
    }
}

/// Runs `spec` with the tool found in `toolbox`.
pub async fn run(toolbox: &Toolbox, spec: &CommandSpec) -> Result<CommandOutput, RunError> {
    let command_line = spec.to_string();
    let span = tracing::info_span!(
        "command",
        otel.name = spec.summary.as_str(),
        process.command_line = command_line.as_str(),
        process.executable.name = spec.tool.program(),
        deployer.cluster = addressed_cluster(&spec.args),
        process.exit.code = field::Empty,
        otel.status_code = field::Empty,
        otel.status_description = field::Empty,
    );
    let result = run_and_wait(toolbox, spec, command_line)
        .instrument(span.clone())
        .await;
    if let Err(error) = &result {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", error.to_string());
    }
    result
}

/// The profile or context a command line names (`-p`, `--profile`, `--context`,
/// `--kube-context`), so a command span says which cluster it talked to.
fn addressed_cluster(args: &[String]) -> Option<&str> {
    const FLAGS: [&str; 4] = ["-p", "--profile", "--context", "--kube-context"];
    args.iter().enumerate().find_map(|(i, arg)| {
        if FLAGS.contains(&arg.as_str()) {
            return args.get(i + 1).map(String::as_str);
        }
        let (flag, value) = arg.split_once('=')?;
        FLAGS.contains(&flag).then_some(value)
    })
}

async fn run_and_wait(
    toolbox: &Toolbox,
    spec: &CommandSpec,
    command_line: String,
) -> Result<CommandOutput, RunError> {
    tracing::info!(command = %command_line, "{}", spec.summary);
    let mut command = Command::new(toolbox.path(spec.tool));
    if let Some(kubeconfig) = toolbox.kubeconfig() {
        command.env("KUBECONFIG", kubeconfig);
    }
    let child = command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A timed-out or abandoned command must not outlive the deployer.
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| RunError::Spawn {
            command: command_line.clone(),
            source,
        })?;

    let waited = match spec.timeout {
        Some(limit) => tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| RunError::Timeout {
                command: command_line.clone(),
                after: limit,
                hint: spec.hint.clone(),
            })?,
        None => child.wait_with_output().await,
    };
    let output = waited.map_err(|source| RunError::Spawn {
        command: command_line.clone(),
        source,
    })?;

    let result = CommandOutput {
        exit_code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    tracing::debug!(command = %command_line, exit_code = ?result.exit_code, stderr = %result.stderr.trim(), "finished");
    if let Some(code) = result.exit_code {
        Span::current().record("process.exit.code", code);
    }
    if result.success() || spec.allow_failure {
        Ok(result)
    } else {
        Err(RunError::Failed {
            command: command_line,
            status: output.status.to_string(),
            stderr: result.stderr,
            hint: spec.hint.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::Tool;

    fn toolbox_with_script(dir: &std::path::Path, body: &str) -> Toolbox {
        testkit::write_executable(&dir.join("helm"), &format!("#!/bin/sh\n{body}\n"));
        Toolbox::find([Tool::Helm], Some(dir.as_os_str())).unwrap()
    }

    #[tokio::test]
    async fn captures_output() {
        let dir = tempfile::tempdir().unwrap();
        let toolbox = toolbox_with_script(dir.path(), r#"echo "out $1"; echo err >&2"#);
        let spec = CommandSpec::new(Tool::Helm, ["x"], "say x");
        let output = run(&toolbox, &spec).await.unwrap();
        assert_eq!(output.stdout, "out x\n");
        assert_eq!(output.stderr, "err\n");
    }

    #[tokio::test]
    async fn failure_keeps_stderr_and_hint() {
        let dir = tempfile::tempdir().unwrap();
        let toolbox = toolbox_with_script(dir.path(), "echo broken >&2; exit 3");
        let spec = CommandSpec::new(Tool::Helm, ["up"], "fail").hint("try again");
        let err = run(&toolbox, &spec).await.unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
        assert_eq!(err.command(), "helm up");
        assert_eq!(err.hint(), Some("try again"));
        let allowed = run(&toolbox, &spec.clone().allow_failure()).await.unwrap();
        assert_eq!(allowed.exit_code, Some(3));
    }

    #[test]
    fn finds_the_cluster_a_command_addresses() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            addressed_cluster(&args(&["start", "-p", "lgtm-central"])),
            Some("lgtm-central")
        );
        assert_eq!(
            addressed_cluster(&args(&["upgrade", "--kube-context", "lgtm-remote"])),
            Some("lgtm-remote")
        );
        assert_eq!(
            addressed_cluster(&args(&["kubectl", "--", "--context=lgtm-remote", "apply"])),
            Some("lgtm-remote")
        );
        assert_eq!(addressed_cluster(&args(&["version", "--short"])), None);
        assert_eq!(addressed_cluster(&args(&["-p"])), None);
    }

    #[tokio::test]
    async fn times_out() {
        let dir = tempfile::tempdir().unwrap();
        let toolbox = toolbox_with_script(dir.path(), "sleep 5");
        let spec = CommandSpec::new(Tool::Helm, Vec::<String>::new(), "sleep")
            .timeout(Duration::from_millis(100));
        let err = run(&toolbox, &spec).await.unwrap_err();
        assert!(matches!(err, RunError::Timeout { .. }));
    }
}
