//! `minikube image` commands: build into a profile's node, list, save to an archive, load from
//! one (minikube >= 1.34 has all four). The demo-app image is built once, into one profile, and
//! copied into the other as an archive: copying takes seconds, building compiles the workspace.
//!
//! `image build`, `image save` and `image load` exit 0 even when they failed on the node (minikube
//! logs the failure and counts it as "not a failure"), so the steps check the result with
//! `image ls` ([`image_id`]) instead of trusting the exit status alone.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::tools::{CommandSpec, Tool};

/// Builds an image inside the profile's node; a rebuild of unchanged sources is a cache hit.
pub fn image_build(profile: &str, tag: &str, context: &Path) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        [
            "-p",
            profile,
            "image",
            "build",
            "-t",
            tag,
            &context.display().to_string(),
        ],
        format!("build {tag} in {profile}"),
    )
    // A first build compiles the workspace in release mode.
    .timeout(Duration::from_secs(1800))
    .hint("run the deployer from the repository root, where the Dockerfile is")
}

/// The images in the profile's container runtime, as JSON (what `crictl images` reports).
pub fn image_list(profile: &str) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        ["-p", profile, "image", "ls", "--format", "json"],
        format!("list the images in {profile}"),
    )
    .timeout(Duration::from_secs(120))
    .hint(format!(
        "is the {profile} cluster running? see `minikube status -p {profile}`"
    ))
}

/// Writes the image to an archive on this machine (the folder must exist).
pub fn image_save(profile: &str, tag: &str, archive: &Path) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        [
            "-p",
            profile,
            "image",
            "save",
            tag,
            &archive.display().to_string(),
        ],
        format!("save {tag} from {profile} to {}", archive.display()),
    )
    .timeout(Duration::from_secs(600))
    .hint(format!(
        "check that {profile} runs and has {tag} (`minikube -p {profile} image ls`), and that \
         there is disk space for the archive"
    ))
}

/// Loads an archive made by [`image_save`]. minikube takes the argument for a file because it
/// exists; a name that is no file would be looked up in a local Docker daemon instead.
pub fn image_load(profile: &str, archive: &Path) -> CommandSpec {
    CommandSpec::new(
        Tool::Minikube,
        [
            "-p",
            profile,
            "image",
            "load",
            &archive.display().to_string(),
        ],
        format!("load {} into {profile}", archive.display()),
    )
    .timeout(Duration::from_secs(600))
    .hint(format!(
        "see `minikube -p {profile} image ls`; if the node is short of disk, `minikube -p \
         {profile} ssh -- df -h`"
    ))
}

/// One entry of `minikube image ls --format json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct ListedImage {
    id: String,
    #[serde(default, rename = "repoTags")]
    repo_tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`minikube image ls --format json` printed something that is not an image list: {0}")]
pub struct ImageListError(pub String);

/// The ID of the image tagged `tag`, if the profile has it. containerd names an image built as
/// `name:tag` `docker.io/library/name:tag`, podman `localhost/name:tag`; all count.
pub fn image_id(list_json: &str, tag: &str) -> Result<Option<String>, ImageListError> {
    // minikube may print notices before the JSON line.
    let json = list_json
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('['))
        .unwrap_or("[]");
    let images: Vec<ListedImage> =
        serde_json::from_str(json).map_err(|e| ImageListError(e.to_string()))?;
    Ok(images
        .into_iter()
        .find(|image| {
            image
                .repo_tags
                .iter()
                .flatten()
                .any(|listed| names_tag(listed, tag))
        })
        .map(|image| image.id))
}

fn names_tag(listed: &str, tag: &str) -> bool {
    ["", "docker.io/library/", "docker.io/", "localhost/"]
        .iter()
        .any(|prefix| listed.strip_prefix(prefix) == Some(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape minikube prints (cruntime.ListImage), here for containerd.
    const LISTED: &str = r#"[{"id":"sha256:0a1b","repoDigests":[],"repoTags":["docker.io/library/lgtm-demo-app:0.1.0"],"size":"41234567"},{"id":"sha256:9f9f","repoDigests":null,"repoTags":null,"size":"1"}]"#;

    #[test]
    fn finds_the_image_by_tag_whatever_the_runtime_prefix() {
        assert_eq!(
            image_id(LISTED, "lgtm-demo-app:0.1.0"),
            Ok(Some("sha256:0a1b".to_string()))
        );
        assert_eq!(image_id(LISTED, "lgtm-demo-app:0.2.0"), Ok(None));
        assert_eq!(image_id("", "lgtm-demo-app:0.1.0"), Ok(None));
        let with_notice = format!("! a notice\n{LISTED}\n");
        assert!(matches!(
            image_id(&with_notice, "lgtm-demo-app:0.1.0"),
            Ok(Some(_))
        ));
        assert!(image_id("[{\"oops\":1}]", "x").is_err());
    }

    #[test]
    fn builds_the_commands() {
        let archive = Path::new(".lgtm-state/images/lgtm-demo-app-0.1.0.tar");
        assert_eq!(
            image_save("lgtm-remote", "lgtm-demo-app:0.1.0", archive).to_string(),
            "minikube -p lgtm-remote image save lgtm-demo-app:0.1.0 .lgtm-state/images/lgtm-demo-app-0.1.0.tar"
        );
        assert_eq!(
            image_load("lgtm-central", archive).to_string(),
            "minikube -p lgtm-central image load .lgtm-state/images/lgtm-demo-app-0.1.0.tar"
        );
        assert_eq!(
            image_list("lgtm-central").to_string(),
            "minikube -p lgtm-central image ls --format json"
        );
    }
}
