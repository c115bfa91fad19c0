//! One kube-rs client per context, made on first use (a context exists only once its cluster
//! has started) and kept for the rest of the run.

use std::collections::HashMap;
use std::path::PathBuf;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use tokio::sync::Mutex;

use super::KubeError;

pub struct Clients {
    /// A PATH-style list like KUBECONFIG; None reads kube's defaults (~/.kube/config).
    kubeconfig: Option<PathBuf>,
    made: Mutex<HashMap<String, Client>>,
}

impl Clients {
    pub fn new(kubeconfig: Option<PathBuf>) -> Self {
        Clients {
            kubeconfig,
            made: Mutex::new(HashMap::new()),
        }
    }

    pub async fn client(&self, context: &str) -> Result<Client, KubeError> {
        let mut made = self.made.lock().await;
        if let Some(client) = made.get(context) {
            return Ok(client.clone());
        }
        let kubeconfig = self.read_kubeconfig()?;
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| KubeError::Context {
                context: context.to_string(),
                source,
            })?;
        let client = Client::try_from(config).map_err(|source| KubeError::Client {
            context: context.to_string(),
            source,
        })?;
        made.insert(context.to_string(), client.clone());
        Ok(client)
    }

    fn read_kubeconfig(&self) -> Result<Kubeconfig, KubeError> {
        let Some(list) = &self.kubeconfig else {
            return Kubeconfig::read().map_err(KubeError::Kubeconfig);
        };
        let mut merged: Option<Kubeconfig> = None;
        for path in std::env::split_paths(list) {
            if path.as_os_str().is_empty() {
                continue;
            }
            let next = Kubeconfig::read_from(&path).map_err(KubeError::Kubeconfig)?;
            merged = Some(match merged {
                None => next,
                Some(first) => first.merge(next).map_err(KubeError::Kubeconfig)?,
            });
        }
        merged.map_or_else(|| Kubeconfig::read().map_err(KubeError::Kubeconfig), Ok)
    }
}
