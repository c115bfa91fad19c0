//! The container engine behind minikube's docker or podman driver: how many CPUs and how much
//! memory it has (`docker info --format '{{json .}}'`: NCPU, MemTotal, OperatingSystem,
//! DockerRootDir; `podman info --format json`: host.cpus, host.memTotal, store.graphRoot; the same
//! fields minikube reads in pkg/drivers/kic/oci/info.go). minikube refuses a profile asking for
//! more than the engine has ("Requested cpu count ... is greater than the available cpus",
//! RSRC_OVER_ALLOC_MEM), so that is a FAIL; two profiles that fit alone but not together only
//! compete, so that is a WARN.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::settings::ClusterSpec;
use crate::tools::{CommandSpec, Tool, Toolbox, runner};

use super::Check;
use super::memory::{Memory, parse_memory, show_mib};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub tool: Tool,
    pub cpus: u64,
    pub memory_mib: u64,
    /// Docker Desktop runs the engine in a VM whose size is a setting.
    pub desktop: bool,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Missing(Tool),
    Unreachable { tool: Tool, message: String },
    Info(EngineInfo),
}

impl Engine {
    pub fn info(&self) -> Option<&EngineInfo> {
        match self {
            Engine::Info(info) => Some(info),
            _ => None,
        }
    }
}

/// Asks the driver's engine (`tool`: docker or podman) found on `search_path`.
pub async fn read_engine(tool: Tool, search_path: Option<&OsStr>) -> Engine {
    let Ok(toolbox) = Toolbox::find([tool], search_path) else {
        return Engine::Missing(tool);
    };
    let output = runner::run(&toolbox, &info_command(tool)).await;
    match output {
        Ok(output) => parse_info(tool, &output.stdout).unwrap_or_else(|| Engine::Unreachable {
            tool,
            message: first_line(&output.stderr),
        }),
        Err(error) => Engine::Unreachable {
            tool,
            message: first_line(&error.to_string()),
        },
    }
}

fn info_command(tool: Tool) -> CommandSpec {
    let args: &[&str] = match tool {
        Tool::Podman => &["info", "--format", "json"],
        _ => &["info", "--format", "{{json .}}"],
    };
    CommandSpec::new(
        tool,
        args.iter().copied(),
        format!("read the {tool} engine's CPUs and memory"),
    )
    // docker prints its JSON (with zeros) and exits 1 when the daemon is down.
    .allow_failure()
    .timeout(Duration::from_secs(20))
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no answer")
        .trim()
        .to_string()
}

/// None when the answer has no CPUs (the daemon did not answer) or is not JSON.
pub fn parse_info(tool: Tool, stdout: &str) -> Option<Engine> {
    let json: Value = serde_json::from_str(stdout.trim()).ok()?;
    // Go decodes JSON field names case-insensitively, and podman's names vary in case.
    let (cpus, memory, data_dir, desktop) = match tool {
        Tool::Podman => {
            let host = field(&json, "host")?;
            let store = field(&json, "store");
            (
                field(host, "cpus")?.as_u64()?,
                field(host, "memTotal")?.as_u64()?,
                store
                    .and_then(|s| field(s, "graphRoot"))
                    .and_then(Value::as_str),
                false,
            )
        }
        _ => (
            field(&json, "NCPU")?.as_u64()?,
            field(&json, "MemTotal")?.as_u64()?,
            field(&json, "DockerRootDir").and_then(Value::as_str),
            field(&json, "OperatingSystem")
                .and_then(Value::as_str)
                .is_some_and(|os| os.contains("Docker Desktop")),
        ),
    };
    if cpus == 0 || memory == 0 {
        return None;
    }
    Some(Engine::Info(EngineInfo {
        tool,
        cpus,
        memory_mib: memory / (1024 * 1024),
        desktop,
        // Docker Desktop's data folder is inside its VM, not on this host's disk.
        data_dir: data_dir
            .filter(|d| !d.is_empty() && !desktop)
            .map(PathBuf::from),
    }))
}

fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// The driver's engine must answer (minikube's docker and podman drivers run the nodes in it),
/// and each profile must fit in it.
pub fn engine_checks(engine: &Engine, clusters: &[&ClusterSpec]) -> Vec<Check> {
    const NAME: &str = "container engine";
    match engine {
        Engine::Missing(tool) => vec![Check::fail(
            NAME,
            format!("--driver={tool} but {tool} is not on PATH"),
            format!("install {tool}: {}", tool.install_hint()),
        )],
        Engine::Unreachable { tool, message } => {
            let fix = match tool {
                Tool::Podman => {
                    "start it: `podman machine start` (macOS, Windows), or check `podman info`"
                }
                _ => {
                    "start Docker Desktop, or on Linux `sudo systemctl start docker` (and join the \
                     `docker` group to run it without sudo)"
                }
            };
            vec![Check::fail(
                NAME,
                format!("{tool} does not answer: {message}"),
                fix,
            )]
        }
        Engine::Info(info) => vec![cpu_check(info, clusters), memory_check(info, clusters)],
    }
}

fn cpu_check(info: &EngineInfo, clusters: &[&ClusterSpec]) -> Check {
    let name = format!("{} CPUs", info.tool);
    let asked: Vec<String> = clusters
        .iter()
        .map(|c| format!("{} {}", c.profile, c.cpus))
        .collect();
    let too_big: Vec<&&ClusterSpec> = clusters
        .iter()
        .filter(|c| u64::from(c.cpus) > info.cpus)
        .collect();
    if too_big.is_empty() {
        return Check::pass(
            name,
            format!(
                "{} has {}; profiles ask {}",
                info.tool,
                info.cpus,
                asked.join(", ")
            ),
        );
    }
    let flags: Vec<String> = too_big
        .iter()
        .map(|c| format!("--{}-cpus={}", role(c), info.cpus))
        .collect();
    Check::fail(
        name,
        format!(
            "{} has {} CPUs; {} (minikube refuses a profile larger than its engine)",
            info.tool,
            info.cpus,
            asked.join(", ")
        ),
        format!(
            "{}; or pass {}",
            grow_engine(info, "CPU limit"),
            flags.join(" ")
        ),
    )
}

fn memory_check(info: &EngineInfo, clusters: &[&ClusterSpec]) -> Check {
    let name = format!("{} memory", info.tool);
    let has = show_mib(info.memory_mib);
    let mut asked = Vec::new();
    let mut total = 0;
    let mut too_big = Vec::new();
    for cluster in clusters {
        match parse_memory(&cluster.memory) {
            Some(Memory::Mib(mib)) => {
                asked.push(format!("{} {}", cluster.profile, show_mib(mib)));
                total += mib;
                if mib > info.memory_mib {
                    too_big.push(format!("--{}-memory", role(cluster)));
                }
            }
            Some(Memory::EngineDecides) => {
                asked.push(format!("{} {}", cluster.profile, cluster.memory))
            }
            None => {
                return Check::fail(
                    name,
                    format!(
                        "{}'s memory `{}` is not a size minikube reads",
                        cluster.profile, cluster.memory
                    ),
                    format!("give --{}-memory as e.g. 16g or 8192m", role(cluster)),
                );
            }
        }
    }
    let asked = asked.join(", ");
    if !too_big.is_empty() {
        return Check::fail(
            name,
            format!(
                "{} has {has}; {asked} (minikube refuses a profile larger than its engine)",
                info.tool
            ),
            format!(
                "{}; or lower {}",
                grow_engine(info, "Memory limit"),
                too_big.join(" and ")
            ),
        );
    }
    if clusters.len() > 1 && total > info.memory_mib {
        return Check::warn(
            name,
            format!(
                "{} has {has}; together {asked} ask {}: the clusters will compete, and pods may be OOMKilled or stay Pending",
                info.tool,
                show_mib(total)
            ),
            format!(
                "{}; or lower --central-memory / --remote-memory",
                grow_engine(info, "Memory limit")
            ),
        );
    }
    Check::pass(
        name,
        format!("{} has {has}; profiles ask {asked}", info.tool),
    )
}

/// Where the engine's size is set.
fn grow_engine(info: &EngineInfo, setting: &str) -> String {
    if info.desktop {
        format!(
            "raise Docker Desktop's Settings > Resources > Advanced > {setting}, then Apply & restart"
        )
    } else if info.tool == Tool::Podman {
        "resize the podman machine: `podman machine stop; podman machine set --cpus N --memory MiB; podman machine start`".to_string()
    } else {
        "this host is the engine: run on a larger machine".to_string()
    }
}

fn role(cluster: &ClusterSpec) -> &'static str {
    match cluster.role {
        crate::settings::Role::Central => "central",
        crate::settings::Role::Remote => "remote",
    }
}
