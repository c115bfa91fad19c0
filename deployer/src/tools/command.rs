//! One external command as data: what to run, why, and what to tell the user when it fails.

use std::fmt;
use std::time::Duration;

use super::Tool;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub tool: Tool,
    pub args: Vec<String>,
    /// What the command is for, in words ("start the lgtm-central cluster").
    pub summary: String,
    /// Kill the command after this long.
    pub timeout: Option<Duration>,
    /// A non-zero exit is an answer, not a failure (e.g. `minikube status` of a stopped profile).
    pub allow_failure: bool,
    /// What the user can do when the command fails.
    pub hint: Option<String>,
}

impl CommandSpec {
    pub fn new<I, S>(tool: Tool, args: I, summary: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CommandSpec {
            tool,
            args: args.into_iter().map(Into::into).collect(),
            summary: summary.into(),
            timeout: None,
            allow_failure: false,
            hint: None,
        }
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn allow_failure(mut self) -> Self {
        self.allow_failure = true;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The command line as a user would type it in a POSIX shell.
impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tool.program())?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_a_shell_line() {
        let command = CommandSpec::new(Tool::Helm, ["--set", "a=b c", "it's"], "test");
        assert_eq!(command.to_string(), r"helm --set 'a=b c' 'it'\''s'");
    }
}
