//! Progress per step with elapsed time: spinners on a terminal, one line per event otherwise
//! (CI logs, pipes, tests).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::run::Outcome;

pub trait Progress {
    fn started(&self, step: &str);
    fn finished(&self, step: &str, outcome: &Outcome, elapsed: Duration);
    fn failed(&self, step: &str, error: &str, elapsed: Duration);
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

/// Plain lines on stderr.
pub struct PlainProgress {
    silent: bool,
}

impl PlainProgress {
    pub fn new() -> Self {
        PlainProgress { silent: false }
    }

    /// Prints nothing; for tests of the engine itself.
    pub fn silent() -> Self {
        PlainProgress { silent: true }
    }

    fn line(&self, text: String) {
        if !self.silent {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }
}

impl Default for PlainProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for PlainProgress {
    fn started(&self, step: &str) {
        self.line(format!("-> {step}"));
    }

    fn finished(&self, step: &str, outcome: &Outcome, elapsed: Duration) {
        let mark = if outcome.changed() { "ok" } else { "unchanged" };
        let detail = outcome.detail();
        self.line(format!("{mark} {step} ({}): {detail}", seconds(elapsed)));
    }

    fn failed(&self, step: &str, _error: &str, elapsed: Duration) {
        // The error itself is printed once, in full, at the end.
        self.line(format!("FAILED {step} ({})", seconds(elapsed)));
    }
}

/// One spinner per running step, each showing its elapsed time.
pub struct TerminalProgress {
    bars: MultiProgress,
    by_step: Mutex<HashMap<String, ProgressBar>>,
}

impl TerminalProgress {
    pub fn new() -> Self {
        TerminalProgress {
            bars: MultiProgress::new(),
            by_step: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, step: &str) -> Option<ProgressBar> {
        self.by_step
            .lock()
            .ok()
            .and_then(|mut bars| bars.remove(step))
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn started(&self, step: &str) {
        let bar = self.bars.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}") {
            bar.set_style(style);
        }
        bar.set_message(step.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut bars) = self.by_step.lock() {
            bars.insert(step.to_string(), bar);
        }
    }

    fn finished(&self, step: &str, outcome: &Outcome, elapsed: Duration) {
        if let Some(bar) = self.take(step) {
            let mark = if outcome.changed() { "✓" } else { "=" };
            bar.set_style(ProgressStyle::default_spinner());
            bar.finish_with_message(format!(
                "{mark} {step} ({}): {}",
                seconds(elapsed),
                outcome.detail()
            ));
        }
    }

    fn failed(&self, step: &str, _error: &str, elapsed: Duration) {
        if let Some(bar) = self.take(step) {
            bar.set_style(ProgressStyle::default_spinner());
            bar.finish_with_message(format!("✗ {step} ({})", seconds(elapsed)));
        }
    }
}
