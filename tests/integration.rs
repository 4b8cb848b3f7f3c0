//! The single integration-test binary (one link step, one process start for the whole suite).

mod fakes;
mod support;

mod atlassian;
mod cli;
mod config_errors;
mod convergence;
mod entra;
mod explain;
mod fault_matrix;
mod file_target;
mod google;
mod hardening;
mod keycloak;
mod okta;
mod onelogin;
mod progress;
mod render;
mod saved_plans;
mod schema_sync;
mod scim_source;
mod show;
mod targeted;
mod third_party_scim;
mod validate;
mod write_faults;
