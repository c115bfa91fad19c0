//! Shared by the integration tests: a fake Kubernetes API server, fake command-line tools, and
//! fake Mimir/Loki/Tempo query APIs.
#![allow(dead_code)]

pub mod fake_api;
pub mod fake_lgtm;
pub mod fake_tools;
pub mod repo;
