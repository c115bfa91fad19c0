//! The demo-app image: built once, on this machine by the driver's container engine (or inside
//! one profile's node), and put into every node that runs it as an archive.
//!
//! minikube's `image build`, `image save` and `image load` exit 0 even when they failed on the
//! node, so each step reads `minikube image ls` afterwards; comparing image IDs before and after
//! is also what tells a re-run that nothing changed. The engine's image ID and the node's need
//! not be equal (Docker's containerd image store names an image by its manifest, the node by its
//! config), so what was loaded into each node is kept beside the archive.

use std::path::{Path, PathBuf};

use crate::container;
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
    #[error("{tag} is not on this machine after `{engine} build`, though it reported success")]
    NotBuilt { tag: String, engine: String },
    #[error("no image archive at {} (the build step writes it)", .path.display())]
    NoArchive { path: PathBuf },
    #[error("cannot keep the image record {}: {source}", .path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
            ImageError::NotBuilt { engine, tag } => {
                format!("run `{engine} build -t {tag} .` by hand to see the build log")
            }
            ImageError::NoArchive { .. } => {
                "run `deployer all` again: the build step saves the archive first".to_string()
            }
            ImageError::Record { .. } => "check the state folder's permissions".to_string(),
        }
    }
}

/// Where the ID of the image in `archive` is kept (written when the archive is saved).
pub fn archived_id_file(archive: &Path) -> PathBuf {
    archive.with_extension("id")
}

/// Where the image last loaded into `profile` from `archive` is kept: the archive's ID and the
/// ID the node listed afterwards.
pub fn loaded_image_file(archive: &Path, profile: &str) -> PathBuf {
    archive.with_extension(format!("{profile}.loaded"))
}

/// Built by the engine with its cache (a cache hit when the sources did not change), then saved
/// to the archive the nodes load, unless the archive already holds this very image.
pub async fn build_on_host(
    deployer: &Deployer,
    image: &ImageBuild,
    archive: &Path,
) -> Result<Outcome, StepError> {
    let driver = deployer.settings.driver;
    let before = host_image_id(deployer, &image.tag).await?;
    deployer
        .run(&container::build(driver, &image.tag, &image.context))
        .await?;
    let after = host_image_id(deployer, &image.tag)
        .await?
        .ok_or_else(|| ImageError::NotBuilt {
            tag: image.tag.clone(),
            engine: driver.to_string(),
        })?;
    let id_file = archived_id_file(archive);
    let archived = read_record(&id_file)?;
    let detail = format!("{} ({})", image.tag, short(&after));
    if archived.as_deref() == Some(after.as_str()) && archive.exists() {
        return Ok(Outcome::Unchanged(format!("{detail}, sources unchanged")));
    }
    make_parent(archive)?;
    deployer
        .run(&container::save(driver, &image.tag, archive))
        .await?;
    if std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(ImageError::EmptyArchive {
            path: archive.to_path_buf(),
        }
        .into());
    }
    write_record(&id_file, &after)?;
    Ok(Outcome::Changed(
        if before.as_deref() == Some(after.as_str()) {
            format!("{detail} saved to {}", archive.display())
        } else {
            format!("built {detail}")
        },
    ))
}

/// Loads the archive unless the node lists the image this archive put there last time.
pub async fn load(
    deployer: &Deployer,
    profile: &str,
    image: &ImageBuild,
    archive: &Path,
) -> Result<Outcome, StepError> {
    let archived = read_record(&archived_id_file(archive))?
        .filter(|_| archive.exists())
        .ok_or_else(|| ImageError::NoArchive {
            path: archive.to_path_buf(),
        })?;
    let record = loaded_image_file(archive, profile);
    let in_node = image_id(deployer, profile, &image.tag).await?;
    let expected = in_node.as_ref().map(|id| format!("{archived} {id}"));
    if expected.is_some() && read_record(&record)? == expected {
        return Ok(Outcome::Unchanged(format!(
            "{} in {profile} is the one last built ({})",
            image.tag,
            short(&archived)
        )));
    }
    deployer
        .run(&minikube::image_load(profile, archive))
        .await?;
    let loaded = image_id(deployer, profile, &image.tag)
        .await?
        .ok_or_else(|| missing(profile, image, "load"))?;
    write_record(&record, &format!("{archived} {loaded}"))?;
    Ok(Outcome::Changed(format!(
        "{} loaded into {profile} ({})",
        image.tag,
        short(&archived)
    )))
}

async fn host_image_id(deployer: &Deployer, tag: &str) -> Result<Option<String>, StepError> {
    let output = deployer
        .run(&container::image_id(deployer.settings.driver, tag))
        .await?;
    let id = output.stdout.trim();
    Ok((output.exit_code == Some(0) && !id.is_empty()).then(|| id.to_string()))
}

fn read_record(path: &Path) -> Result<Option<String>, StepError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ImageError::Record {
            path: path.to_path_buf(),
            source,
        }
        .into()),
    }
}

fn write_record(path: &Path, text: &str) -> Result<(), StepError> {
    make_parent(path)?;
    std::fs::write(path, format!("{text}\n")).map_err(|source| {
        ImageError::Record {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
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
