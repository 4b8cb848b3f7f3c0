//! idsync keeps Atlassian Cloud's users and groups in line with a company's identity provider,
//! declaratively: desired state (one YAML file plus what the IdP says) → a reviewable plan → apply.
//!
//! The flow: [`config`] → [`sources`] (IdP snapshots) → [`desired`] (mapping rules applied); the
//! [`target`] snapshot → [`diff`] → [`plan::Plan`] → [`render`] (text, markdown, json) and
//! [`apply`] (executor) → [`report`].

pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod desired;
pub mod diff;
pub mod error;
pub mod exit;
pub mod explain;
pub mod http;
pub mod model;
pub mod output;
pub mod plan;
pub mod progress;
pub mod render;
pub mod report;
pub mod snapshot_file;
pub mod sources;
pub mod target;

pub use config::Config;
pub use error::Error;
pub use exit::ExitStatus;
