//! Shared by the integration tests: a fake Kubernetes API server and fake command-line tools.
#![allow(dead_code)]

pub mod deploy;
pub mod fake_api;
pub mod fake_tools;
pub mod repo;
