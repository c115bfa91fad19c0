//! The demo-app image: built once into one profile, copied into the others as an archive.
//!
//! minikube's `image build`, `image save` and `image load` exit 0 even when they failed on the
//! node, so each step reads `minikube image ls` afterwards; comparing image IDs before and after
//! is also what tells a re-run that nothing changed.

use std::path::{Path, PathBuf};

use crate::engine::Outcome;
use crate::minikube::{self, ImageListError};
use crate::stack::ImageBuild;

use super::{Deployer, StepError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    List(#[from] ImageListError),
    #[error(
        "{tag} is not in {profile} after `minikube image {operation}`, though minikube reported success"
    )]
    Missing {
        profile: String,
        tag: String,
        operation: &'static str,
    },
    #[error("`minikube image save` wrote no image to {}", .path.display())]
    EmptyArchive { path: PathBuf },
}

impl ImageError {
    pub fn help(&self) -> String {
        match self {
            ImageError::List(_) => "check `minikube image ls --format json` by hand".to_string(),
            ImageError::Missing {
                profile, operation, ..
            } => format!(
                "minikube logs the cause instead of failing: run `minikube -p {profile} image \
                 {operation} ... --alsologtostderr` by hand, or see `minikube logs -p {profile}`"
            ),
            ImageError::EmptyArchive { .. } => {
                "the source cluster may have stopped; see `minikube status` and run again"
                    .to_string()
            }
        }
    }
}

/// The build is a cache hit when the sources did not change; whether it made a new image is
/// read from the image ID before and after.
pub async fn build(
    deployer: &Deployer,
    profile: &str,
    image: &ImageBuild,
) -> Result<Outcome, StepError> {
    let before = image_id(deployer, profile, &image.tag).await?;
    deployer
        .run(&minikube::image_build(profile, &image.tag, &image.context))
        .await?;
    let after = image_id(deployer, profile, &image.tag)
        .await?
        .ok_or_else(|| missing(profile, image, "build"))?;
    let detail = format!("{} in {profile} ({})", image.tag, short(&after));
    Ok(if before.as_deref() == Some(after.as_str()) {
        Outcome::Unchanged(format!("{detail}, sources unchanged"))
    } else {
        Outcome::Changed(format!("built {detail}"))
    })
}

/// Skipped when `to` already has the very image `from` has; otherwise saved to `archive`, loaded,
/// and the archive removed (it is as large as the image and of no use afterwards).
pub async fn copy(
    deployer: &Deployer,
    from: &str,
    to: &str,
    image: &ImageBuild,
    archive: &Path,
) -> Result<Outcome, StepError> {
    let source = image_id(deployer, from, &image.tag)
        .await?
        .ok_or_else(|| missing(from, image, "build"))?;
    if image_id(deployer, to, &image.tag).await?.as_deref() == Some(source.as_str()) {
        return Ok(Outcome::Unchanged(format!(
            "{} in {to} is the one built in {from} ({})",
            image.tag,
            short(&source)
        )));
    }
    make_parent(archive)?;
    deployer
        .run(&minikube::image_save(from, &image.tag, archive))
        .await?;
    let saved = std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0);
    if saved == 0 {
        return Err(ImageError::EmptyArchive {
            path: archive.to_path_buf(),
        }
        .into());
    }
    deployer.run(&minikube::image_load(to, archive)).await?;
    let _ = std::fs::remove_file(archive);
    image_id(deployer, to, &image.tag)
        .await?
        .ok_or_else(|| missing(to, image, "load"))?;
    Ok(Outcome::Changed(format!(
        "{} loaded into {to} from {from} ({}, {} MB)",
        image.tag,
        short(&source),
        saved / 1_000_000
    )))
}

async fn image_id(
    deployer: &Deployer,
    profile: &str,
    tag: &str,
) -> Result<Option<String>, StepError> {
    let listed = deployer.run(&minikube::image_list(profile)).await?;
    Ok(minikube::image_id(&listed.stdout, tag).map_err(ImageError::from)?)
}

fn missing(profile: &str, image: &ImageBuild, operation: &'static str) -> StepError {
    ImageError::Missing {
        profile: profile.to_string(),
        tag: image.tag.clone(),
        operation,
    }
    .into()
}

fn make_parent(archive: &Path) -> Result<(), StepError> {
    let Some(folder) = archive.parent() else {
        return Ok(());
    };
    std::fs::create_dir_all(folder).map_err(|source| StepError::Input {
        path: folder.to_path_buf(),
        source,
    })
}

/// `sha256:0123456789ab…` is enough to tell images apart in a progress line.
fn short(id: &str) -> &str {
    let end = id
        .char_indices()
        .nth("sha256:".len() + 12)
        .map_or(id.len(), |(i, _)| i);
    &id[..end]
}
