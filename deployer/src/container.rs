//! The container engine behind the minikube driver (docker or podman), called directly for what
//! minikube cannot do well: building the demo-app image on the host (not inside a 2-CPU node
//! beside its etcd and API server) and telling which networks a node container is really on.
//! docker and podman take the same arguments for everything here.

use std::path::Path;
use std::time::Duration;

use crate::settings::Driver;
use crate::tools::CommandSpec;

/// Builds the image with the engine's own cache, kept between runs: unchanged sources are a
/// cache hit in seconds, a code change recompiles only what the Dockerfile's layers say.
pub fn build(driver: Driver, tag: &str, context: &Path) -> CommandSpec {
    CommandSpec::new(
        driver.tool(),
        ["build", "-t", tag, &context.display().to_string()],
        format!("build {tag} with {driver}"),
    )
    // A first build compiles the workspace in release mode.
    .timeout(Duration::from_secs(1800))
    .hint(format!(
        "run the deployer from the repository root, where the Dockerfile is; try `{driver} build -t \
         {tag} .` by hand to see the whole build log"
    ))
}

/// The image's ID on the host; exits non-zero when there is no such image, which is an answer.
pub fn image_id(driver: Driver, tag: &str) -> CommandSpec {
    CommandSpec::new(
        driver.tool(),
        ["image", "inspect", "--format", "{{.Id}}", tag],
        format!("read the ID of {tag}"),
    )
    .allow_failure()
    .timeout(Duration::from_secs(60))
}

/// Writes the image to an archive that `minikube image load` takes (docker and podman both
/// write the docker-archive format by default).
pub fn save(driver: Driver, tag: &str, archive: &Path) -> CommandSpec {
    CommandSpec::new(
        driver.tool(),
        ["save", "-o", &archive.display().to_string(), tag],
        format!("save {tag} to {}", archive.display()),
    )
    .timeout(Duration::from_secs(600))
    .hint("check the free disk space of the state folder")
}

/// The networks the profile's node container is attached to, as JSON by network name.
pub fn node_networks(driver: Driver, profile: &str) -> CommandSpec {
    CommandSpec::new(
        driver.tool(),
        [
            "container",
            "inspect",
            "--format",
            "{{json .NetworkSettings.Networks}}",
            profile,
        ],
        format!("read the networks of {profile}'s node"),
    )
    .timeout(Duration::from_secs(60))
    .hint(format!(
        "is the {profile} cluster running? see `minikube status -p {profile}`"
    ))
}

/// Removes the shared network; the engine refuses while a container is attached to it.
pub fn remove_network(driver: Driver, network: &str) -> CommandSpec {
    CommandSpec::new(
        driver.tool(),
        ["network", "rm", network],
        format!("remove the {network} network"),
    )
    .allow_failure()
    .timeout(Duration::from_secs(60))
}
