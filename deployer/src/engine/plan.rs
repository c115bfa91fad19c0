//! Plans: steps as data, validated so that every step comes after what it needs.

use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Step<A> {
    pub name: String,
    pub depends_on: Vec<String>,
    pub action: A,
    /// How long the step usually takes; only for the critical-path estimate.
    pub estimate: Duration,
}

impl<A> Step<A> {
    pub fn new(name: impl Into<String>, action: A, estimate: Duration) -> Self {
        Step {
            name: name.into(),
            depends_on: Vec::new(),
            action,
            estimate,
        }
    }

    pub fn after<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(names.into_iter().map(Into::into));
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("two steps are named `{0}`")]
    DuplicateName(String),
    #[error("step `{step}` depends on `{missing}`, which is not in the plan")]
    UnknownDependency { step: String, missing: String },
    #[error("step `{step}` depends on `{later}`, which comes after it (cycle or wrong order)")]
    OutOfOrder { step: String, later: String },
}

/// Steps in an order where each step's dependencies come before it.
#[derive(Debug, Clone)]
pub struct Plan<A> {
    steps: Vec<Step<A>>,
}

/// The longest chain of dependent steps, by estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalPath {
    pub steps: Vec<String>,
    pub total: Duration,
}

impl<A> Plan<A> {
    /// Requiring dependencies to come first rules out cycles and gives a stable order to print.
    pub fn new(steps: Vec<Step<A>>) -> Result<Self, PlanError> {
        let mut position = HashMap::new();
        for (index, step) in steps.iter().enumerate() {
            if position.insert(step.name.as_str(), index).is_some() {
                return Err(PlanError::DuplicateName(step.name.clone()));
            }
        }
        for (index, step) in steps.iter().enumerate() {
            for dependency in &step.depends_on {
                match position.get(dependency.as_str()) {
                    None => {
                        return Err(PlanError::UnknownDependency {
                            step: step.name.clone(),
                            missing: dependency.clone(),
                        });
                    }
                    Some(&at) if at >= index => {
                        return Err(PlanError::OutOfOrder {
                            step: step.name.clone(),
                            later: dependency.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(Plan { steps })
    }

    pub fn steps(&self) -> &[Step<A>] {
        &self.steps
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// What the original scripts take: every step one after the other.
    pub fn serial_estimate(&self) -> Duration {
        self.serial_with(|s| s.estimate)
    }

    /// Every step one after the other, each taking `duration(step)`.
    pub fn serial_with(&self, duration: impl Fn(&Step<A>) -> Duration) -> Duration {
        self.steps.iter().map(duration).sum()
    }

    /// What this engine takes at best: the longest chain of dependencies, by estimate.
    pub fn critical_path(&self) -> CriticalPath {
        self.critical_path_with(|s| s.estimate)
    }

    /// The longest chain of dependencies, each step taking `duration(step)` (e.g. what it took
    /// in the last run).
    pub fn critical_path_with(&self, duration: impl Fn(&Step<A>) -> Duration) -> CriticalPath {
        // finish[i]: earliest finish of step i; via[i]: the dependency that finishes last.
        let mut finish: Vec<Duration> = Vec::with_capacity(self.steps.len());
        let mut via: Vec<Option<usize>> = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let latest = step
                .depends_on
                .iter()
                .filter_map(|d| self.index_of(d))
                .max_by_key(|&i| finish[i]);
            let start = latest.map(|i| finish[i]).unwrap_or_default();
            finish.push(start + duration(step));
            via.push(latest);
        }
        let mut at = (0..self.steps.len()).max_by_key(|&i| finish[i]);
        let total = at.map(|i| finish[i]).unwrap_or_default();
        let mut chain = Vec::new();
        while let Some(i) = at {
            chain.push(self.steps[i].name.clone());
            at = via[i];
        }
        chain.reverse();
        CriticalPath {
            steps: chain,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, secs: u64, after: &[&str]) -> Step<()> {
        Step::new(name, (), Duration::from_secs(secs)).after(after.iter().copied())
    }

    #[test]
    fn rejects_bad_plans() {
        let duplicate = Plan::new(vec![step("a", 1, &[]), step("a", 1, &[])]);
        assert_eq!(duplicate.unwrap_err(), PlanError::DuplicateName("a".into()));
        let unknown = Plan::new(vec![step("a", 1, &["x"])]);
        assert!(matches!(unknown, Err(PlanError::UnknownDependency { .. })));
        let order = Plan::new(vec![step("a", 1, &["b"]), step("b", 1, &[])]);
        assert!(matches!(order, Err(PlanError::OutOfOrder { .. })));
        let itself = Plan::new(vec![step("a", 1, &["a"])]);
        assert!(matches!(itself, Err(PlanError::OutOfOrder { .. })));
    }

    #[test]
    fn finds_the_critical_path() {
        let plan = Plan::new(vec![
            step("certs", 1, &[]),
            step("central", 100, &[]),
            step("remote", 60, &[]),
            step("central-ns", 5, &["central"]),
            step("remote-ns", 5, &["remote"]),
            step("link", 10, &["central-ns", "remote-ns", "certs"]),
        ])
        .unwrap();
        let path = plan.critical_path();
        assert_eq!(path.steps, ["central", "central-ns", "link"]);
        assert_eq!(path.total, Duration::from_secs(115));
        assert_eq!(plan.serial_estimate(), Duration::from_secs(181));
    }

    #[test]
    fn measured_durations_move_the_critical_path() {
        let plan = Plan::new(vec![
            step("central", 100, &[]),
            step("remote", 60, &[]),
            step("link", 10, &["central", "remote"]),
        ])
        .unwrap();
        // The central cluster started faster than estimated: the remote is now the long pole.
        let measured = |s: &Step<()>| match s.name.as_str() {
            "central" => Duration::from_secs(20),
            _ => s.estimate,
        };
        let path = plan.critical_path_with(measured);
        assert_eq!(path.steps, ["remote", "link"]);
        assert_eq!(path.total, Duration::from_secs(70));
        assert_eq!(plan.serial_with(measured), Duration::from_secs(90));
    }
}
