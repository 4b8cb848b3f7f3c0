//! The single integration-test binary (one link step, one process start for the whole suite).

// `unreachable_pub` (Cargo.toml's [lints.rust]) guards the library's surface; this binary has none,
// and its helpers (tests/support/) are `pub` for the test modules beside them.
#![allow(unreachable_pub)]

// The fakes are the crate `idsync-fakes` (crates/fakes); tests reach them as `crate::fakes`.
use idsync_fakes as fakes;
mod support;

/// The fakes' own tests (tests/fakes/), through plain reqwest. They run in this binary rather than
/// in a test binary of the fakes crate: one link step for the whole suite.
#[path = "fakes"]
mod fakes_selftest {
    use idsync_fakes::{
        atlassian, directory, entra, google, keycloak, okta, onelogin, Faults, Storm,
    };

    mod directory_selftest;
    mod entra_selftest;
    mod google_selftest;
    mod keycloak_selftest;
    mod okta_selftest;
    mod onelogin_selftest;
    mod selftest;
}

mod atlassian;
mod cli;
mod config_errors;
mod conformance;
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
mod partial_plans;
mod progress;
mod render;
mod saved_plans;
mod schema_sync;
mod scim_source;
mod show;
mod sync_user;
mod targeted;
mod third_party_scim;
mod validate;
mod write_faults;
