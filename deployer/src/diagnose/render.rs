//! The diagnosis as the user reads it: a few lines per problem, its fix, then the bundle.

use std::fmt::Write;

use super::findings::Finding;
use super::{Diagnosis, PlaceOutcome};

/// The lines printed under the error (without the bundle line, which comes last).
pub fn render(diagnosis: &Diagnosis) -> String {
    let mut out = format!(
        "diagnosis of `{}` ({:.1}s):",
        diagnosis.step,
        diagnosis.elapsed.as_secs_f64()
    );
    if diagnosis.places.is_empty() {
        out.push_str("\n  nothing in the clusters to look at for this step; see the error above");
    }
    for place in &diagnosis.places {
        render_place(&mut out, place);
    }
    out
}

fn render_place(out: &mut String, place: &PlaceOutcome) {
    let where_ = format!("namespace {} in {}", place.namespace, place.context);
    match &place.result {
        Err(reason) => {
            let _ = write!(out, "\n  {where_}: {reason}");
        }
        Ok(look) if look.findings.is_empty() => {
            let _ = write!(
                out,
                "\n  {where_}: nothing wrong seen (pods ready, no pending claims, failed Jobs or \
                 LoadBalancers without an address)"
            );
        }
        Ok(look) => {
            for finding in &look.findings {
                out.push('\n');
                out.push_str(&finding_lines(finding, "  "));
            }
        }
    }
}

/// `pod ns/name: problem`, the log tail indented with `| `, then `fix: ...`.
pub fn finding_lines(finding: &Finding, indent: &str) -> String {
    let mut out = format!(
        "{indent}{} {}/{}: {}",
        finding.object, finding.namespace, finding.name, finding.problem
    );
    if !finding.log.is_empty()
        && let Some(container) = &finding.container
    {
        let _ = write!(out, "\n{indent}  last log lines of {container}:");
        for line in &finding.log {
            let _ = write!(out, "\n{indent}  | {line}");
        }
    }
    let _ = write!(out, "\n{indent}  fix: {}", finding.hint);
    out
}

/// The last line of a failed run: where the bundle is.
pub fn bundle_line(diagnosis: &Diagnosis) -> String {
    match &diagnosis.bundle {
        Ok(path) => format!(
            "diagnostics of `{}` saved in {}/ (secrets masked; attach it to a bug report)",
            diagnosis.step,
            path.display()
        ),
        Err(reason) => format!(
            "could not save the diagnostics of `{}`: {reason}",
            diagnosis.step
        ),
    }
}
