//! Finding every tool before anything starts, so a user learns about all missing tools at once.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use super::Tool;

/// The tools a run needs, each with its path.
#[derive(Debug, Clone, Default)]
pub struct Toolbox {
    paths: BTreeMap<Tool, PathBuf>,
    /// Given to every tool as KUBECONFIG, so helm, linkerd and minikube read and write the
    /// contexts the deployer's own client reads (`--kubeconfig`).
    kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingTool {
    pub tool: Tool,
}

/// Every required tool that is not on the search path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} not found on PATH", names(.missing))]
pub struct MissingTools {
    pub missing: Vec<MissingTool>,
}

fn names(missing: &[MissingTool]) -> String {
    let names: Vec<&str> = missing.iter().map(|m| m.tool.program()).collect();
    names.join(", ")
}

impl MissingTools {
    /// One line per tool: how to install it and which version is needed.
    pub fn help(&self) -> String {
        let lines: Vec<String> = self
            .missing
            .iter()
            .map(|m| {
                format!(
                    "install {} (>= {}): {}",
                    m.tool,
                    m.tool.minimum_version(),
                    m.tool.install_hint()
                )
            })
            .collect();
        lines.join("\n")
    }
}

impl fmt::Display for MissingTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tool.program())
    }
}

impl Toolbox {
    /// Looks for each tool in `search_path` (a PATH-style list of folders).
    pub fn find(
        required: impl IntoIterator<Item = Tool>,
        search_path: Option<&OsStr>,
    ) -> Result<Self, MissingTools> {
        let folders: Vec<PathBuf> = search_path
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default();
        let mut paths = BTreeMap::new();
        let mut missing = Vec::new();
        for tool in required {
            if paths.contains_key(&tool) || missing.iter().any(|m: &MissingTool| m.tool == tool) {
                continue;
            }
            match find_in(&folders, tool.program()) {
                Some(path) => {
                    paths.insert(tool, path);
                }
                None => missing.push(MissingTool { tool }),
            }
        }
        if missing.is_empty() {
            Ok(Toolbox {
                paths,
                kubeconfig: None,
            })
        } else {
            Err(MissingTools { missing })
        }
    }

    /// Looks on the process's PATH.
    pub fn find_on_path(required: impl IntoIterator<Item = Tool>) -> Result<Self, MissingTools> {
        let path = std::env::var_os("PATH");
        Self::find(required, path.as_deref())
    }

    /// Every tool run through this toolbox gets `KUBECONFIG=<path>` when one is given.
    pub fn with_kubeconfig(mut self, kubeconfig: Option<PathBuf>) -> Self {
        self.kubeconfig = kubeconfig;
        self
    }

    pub fn kubeconfig(&self) -> Option<&std::path::Path> {
        self.kubeconfig.as_deref()
    }

    /// The tools found, in a stable order.
    pub fn tools(&self) -> Vec<Tool> {
        self.paths.keys().copied().collect()
    }

    /// The path of a tool found earlier; falls back to the bare name so a tool missing from the
    /// toolbox still produces a readable spawn error rather than a panic.
    pub fn path(&self, tool: Tool) -> PathBuf {
        self.paths
            .get(&tool)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(tool.program()))
    }
}

fn find_in(folders: &[PathBuf], program: &str) -> Option<PathBuf> {
    folders
        .iter()
        .map(|folder| folder.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_missing_tool_at_once() {
        let empty = tempfile::tempdir().unwrap();
        let err = Toolbox::find(
            [Tool::Minikube, Tool::Helm, Tool::Minikube],
            Some(empty.path().as_os_str()),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "minikube, helm not found on PATH");
        assert!(err.help().contains("install helm (>= 3.17)"));
    }
}
