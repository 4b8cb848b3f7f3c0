//! The `max_deactivations` guard: a plan that deactivates more users than allowed fails, with the
//! counts, unless the run says `--allow-mass-deactivation`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::DeactivationLimit;

/// The flag that overrides the guard.
pub const OVERRIDE_FLAG: &str = "--allow-mass-deactivation";

/// The guard's reading of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Guard {
    /// `cleanup.max_deactivations` as configured, e.g. `10%` or `25`.
    pub setting: String,
    /// Active users in the target, the base of a percentage.
    pub active_users: u64,
    /// The most deactivations allowed.
    pub limit: u64,
    /// Deactivations in the plan.
    pub deactivations: u64,
    /// More deactivations than allowed.
    pub tripped: bool,
    /// Tripped, but the run was told to go ahead.
    pub overridden: bool,
}

impl Guard {
    #[must_use]
    pub fn check(
        limit: DeactivationLimit,
        active_users: u64,
        deactivations: u64,
        overridden: bool,
    ) -> Guard {
        let max = limit.limit(active_users);
        let tripped = deactivations > max;
        Guard {
            setting: limit.to_string(),
            active_users,
            limit: max,
            deactivations,
            tripped,
            overridden: tripped && overridden,
        }
    }

    /// Tripped and not overridden: the plan must not be applied or saved.
    #[must_use]
    pub fn blocks(&self) -> bool {
        self.tripped && !self.overridden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_above_the_limit() {
        let g = Guard::check(DeactivationLimit::Percent(10.0), 50, 5, false);
        assert!(!g.tripped);
        let g = Guard::check(DeactivationLimit::Percent(10.0), 50, 6, false);
        assert!(g.blocks());
        let g = Guard::check(DeactivationLimit::Count(1), 50, 6, true);
        assert!(g.tripped && g.overridden && !g.blocks());
    }
}
