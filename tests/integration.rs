//! The single integration-test binary (one link step, one process start for the whole suite).

mod support;

mod cli;
mod config_errors;
mod convergence;
mod render;
mod schema_sync;
