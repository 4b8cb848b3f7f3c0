//! idsync keeps Atlassian Cloud's users and groups in line with a company's identity provider,
//! declaratively: desired state (one YAML file plus what the IdP says) → a reviewable plan → apply.
//!
//! The flow: [`config`] (compiled into [`rules`]) → [`sources`] (IdP snapshots) and the
//! [`targets`] snapshot, read at once by the [`engine`] → [`desired`] (rules applied) → [`diff`] →
//! [`plan::Plan`] → [`render`] (text, markdown, json) and [`apply`] (executor) → [`report`].
//! docs/ARCHITECTURE.md has the layers and the imports that must never exist.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod desired;
pub(crate) mod diff;
pub(crate) mod digest;
pub mod engine;
pub mod error;
pub mod exit;
pub(crate) mod explain;
pub mod http;
#[cfg(test)]
mod layering;
pub mod model;
pub mod output;
pub mod plan;
pub mod progress;
pub mod render;
pub(crate) mod report;
pub(crate) mod rules;
pub(crate) mod scim;
pub mod snapshot_file;
pub mod sources;
pub mod targets;

#[cfg(test)]
mod planner_tests;

pub use config::Config;
pub use error::Error;
pub use exit::ExitStatus;
