//! `.state/diagnostics/<UTC time>-<step>/`: everything a bug report needs about a failed step,
//! every file passed through [`Masker`] first. Layout:
//!
//! ```text
//! step.txt                                 the step, the command and its error (stderr)
//! diagnosis.txt                            what the terminal showed
//! <context>/<namespace>/events.txt         the namespace's events, oldest first
//! <context>/<namespace>/pods/<pod>.json    status (and images, resources) of each pod not ready
//! <context>/<namespace>/logs/<pod>.<container>[.previous].log
//! commands/helm-status.txt, helm-history.txt, minikube-logs-<profile>.txt
//! inputs/<file>                            our values files or manifest
//! ```

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::{Value, json};

use super::Diagnosis;
use super::look::Look;
use super::mask::Masker;
use super::render::render;

pub struct Contents<'a> {
    pub diagnosis: &'a Diagnosis,
    pub error: &'a str,
    pub command: Option<&'a str>,
    pub outputs: &'a [(String, String)],
    pub inputs: &'a [PathBuf],
}

pub fn diagnostics_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("diagnostics")
}

/// Writes the bundle and returns its folder.
pub fn write(state_dir: &Path, contents: &Contents) -> std::io::Result<PathBuf> {
    let masker = Masker::from_state(state_dir);
    let dir = diagnostics_dir(state_dir).join(format!(
        "{}-{}",
        utc_stamp(),
        slug(&contents.diagnosis.step)
    ));
    std::fs::create_dir_all(&dir)?;
    let put = |relative: &str, text: &str| -> std::io::Result<()> {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, masker.text(text))
    };
    let command = contents.command.unwrap_or("(no external command)");
    put(
        "step.txt",
        &format!(
            "step: {}\ncommand: {command}\nerror:\n{}\n",
            contents.diagnosis.step, contents.error
        ),
    )?;
    put(
        "diagnosis.txt",
        &format!("{}\n", render(contents.diagnosis)),
    )?;
    for place in &contents.diagnosis.places {
        let base = format!("{}/{}", slug(&place.context), slug(&place.namespace));
        match &place.result {
            Ok(look) => write_look(&base, look, &masker, &put)?,
            Err(reason) => put(&format!("{base}/not-looked.txt"), reason)?,
        }
    }
    for (file, text) in contents.outputs {
        put(&format!("commands/{}", slug(file)), text)?;
    }
    for input in contents.inputs {
        if let (Some(name), Ok(text)) = (input.file_name(), std::fs::read_to_string(input)) {
            put(&format!("inputs/{}", name.to_string_lossy()), &text)?;
        }
    }
    Ok(dir)
}

fn write_look(
    base: &str,
    look: &Look,
    masker: &Masker,
    put: &impl Fn(&str, &str) -> std::io::Result<()>,
) -> std::io::Result<()> {
    put(&format!("{base}/events.txt"), &events_text(&look.events))?;
    for pod in &look.pods {
        let mut summary = pod_summary(pod);
        masker.json(&mut summary);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        put(&format!("{base}/pods/{}.json", slug(&name)), &text)?;
    }
    for log in &look.logs {
        let suffix = if log.previous { ".previous" } else { "" };
        let file = format!("{}.{}{suffix}.log", slug(&log.pod), slug(&log.container));
        put(&format!("{base}/logs/{file}"), &log.text)?;
    }
    Ok(())
}

/// One line per event, oldest first, like the Events table of `kubectl describe`.
fn events_text(events: &[Event]) -> String {
    let mut lines: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let time = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .unwrap_or_default();
            let line = format!(
                "{time}  {}  {}  {}/{}  x{}  {}",
                e.type_.as_deref().unwrap_or("-"),
                e.reason.as_deref().unwrap_or("-"),
                e.involved_object.kind.as_deref().unwrap_or("-"),
                e.involved_object.name.as_deref().unwrap_or("-"),
                e.count.unwrap_or(1),
                e.message.as_deref().unwrap_or("").trim()
            );
            (time, line)
        })
        .collect();
    lines.sort();
    let mut text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
    if text.is_empty() {
        text = "(no events)\n".into();
    }
    text
}

/// What a pod's state needs, without its whole spec: env values are masked anyway, and volumes
/// or annotations add nothing to a diagnosis.
fn pod_summary(pod: &Pod) -> Value {
    let containers: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
        .map(|c| {
            json!({
                "name": c.name, "image": c.image, "resources": c.resources,
                "env": c.env, "readinessProbe": c.readiness_probe,
            })
        })
        .collect();
    json!({
        "name": pod.metadata.name,
        "namespace": pod.metadata.namespace,
        "labels": pod.metadata.labels,
        "node": pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "containers": containers,
        "status": pod.status,
    })
}

/// `20261127T200000Z`: sorts by time and is safe in every file system.
fn utc_stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// A step name as a file name: `release lgtm-central/mimir` -> `release-lgtm-central-mimir`.
pub fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("release lgtm-central/mimir"),
            "release-lgtm-central-mimir"
        );
        assert_eq!(
            slug("image lgtm-remote/lgtm-demo-app:0.1.0"),
            "image-lgtm-remote-lgtm-demo-app-0.1.0"
        );
        assert_eq!(slug("../x"), "x");
    }
}
