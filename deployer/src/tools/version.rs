//! Checking that each found tool is recent enough, before anything starts.

use std::fmt;

use super::{CommandSpec, Tool, Toolbox, runner};

/// A tool that answered with a version below [`Tool::minimum_version`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutdatedTool {
    pub tool: Tool,
    pub found: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.outdated))]
pub struct OutdatedTools {
    pub outdated: Vec<OutdatedTool>,
}

fn describe(outdated: &[OutdatedTool]) -> String {
    let lines: Vec<String> = outdated.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

impl fmt::Display for OutdatedTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is older than {}",
            self.tool,
            self.found,
            self.tool.minimum_version()
        )
    }
}

impl OutdatedTools {
    pub fn help(&self) -> String {
        let lines: Vec<String> = self
            .outdated
            .iter()
            .map(|o| format!("upgrade {}: {}", o.tool, o.tool.install_hint()))
            .collect();
        lines.join("\n")
    }
}

/// How to ask a tool for its version, in a form that prints only the version.
fn version_command(tool: Tool) -> CommandSpec {
    let args: &[&str] = match tool {
        Tool::Minikube => &["version", "--short"],
        Tool::Helm => &["version", "--short"],
        Tool::Linkerd => &["version", "--client", "--short"],
        Tool::Docker | Tool::Podman => &["version", "--format", "{{.Client.Version}}"],
    };
    CommandSpec::new(
        tool,
        args.iter().copied(),
        format!("check the {tool} version"),
    )
    .allow_failure()
    .timeout(std::time::Duration::from_secs(30))
}

/// Asks every tool in the toolbox for its version. A version that cannot be read or compared
/// (a development build, another release channel) is let through: the tool may well work.
pub async fn check_versions(toolbox: &Toolbox) -> Result<(), OutdatedTools> {
    let mut outdated = Vec::new();
    for tool in toolbox.tools() {
        let Ok(output) = runner::run(toolbox, &version_command(tool)).await else {
            continue;
        };
        let found = output.stdout.trim().to_string();
        if is_older(&found, tool.minimum_version()) == Some(true) {
            outdated.push(OutdatedTool { tool, found });
        }
    }
    if outdated.is_empty() {
        Ok(())
    } else {
        Err(OutdatedTools { outdated })
    }
}

/// Some(true) when `found` is older than `minimum`; None when they cannot be compared.
/// Both may carry a prefix (`v1.38.1`, `edge-26.8.3`) and a suffix (`v3.16.2+g13654a5`).
pub fn is_older(found: &str, minimum: &str) -> Option<bool> {
    let (found_channel, found_numbers) = split_version(found.lines().next()?)?;
    let (minimum_channel, minimum_numbers) = split_version(minimum)?;
    (found_channel == minimum_channel).then(|| found_numbers < minimum_numbers)
}

fn split_version(text: &str) -> Option<(String, Vec<u64>)> {
    let text = text.trim();
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let channel = text[..start].trim_end_matches(['v', '-']).to_string();
    let numbers: Vec<u64> = text[start..]
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect::<Option<_>>()?;
    Some((channel, numbers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_versions_of_each_shape() {
        assert_eq!(is_older("v1.38.1", "1.34"), Some(false));
        assert_eq!(is_older("v1.20.0", "1.34"), Some(true));
        assert_eq!(is_older("v3.16.2+g13654a5", "3.16"), Some(false));
        assert_eq!(is_older("v4.0.1", "3.16"), Some(false));
        assert_eq!(is_older("edge-26.8.3", "edge-26.8.3"), Some(false));
        assert_eq!(is_older("edge-25.4.1", "edge-26.8.3"), Some(true));
        assert_eq!(is_older("stable-2.14.10", "edge-26.8.3"), None);
        assert_eq!(is_older("", "1.34"), None);
        assert_eq!(is_older("28.0.1", "24"), Some(false));
    }
}
