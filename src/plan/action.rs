//! The actions a plan can hold, in the order they are applied.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user's fields as idsync wants them on the target. `None` leaves the target's value alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserFields {
    pub email: String,
    #[serde(rename = "userName", default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(
        rename = "externalId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    #[serde(rename = "givenName", default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(
        rename = "familyName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub family_name: Option<String>,
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// One field of an `update_user`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    /// `email`, `userName`, `externalId`, `givenName`, `familyName`, `displayName`, or an attribute.
    pub field: String,
    #[serde(default)]
    pub from: Option<String>,
    pub to: String,
    /// What produced the new value (a template, or the source's field).
    pub reason: String,
}

/// A member in a membership change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    /// The user's key (lower-cased email, as wanted after this plan).
    pub key: String,
    /// How the target refers to the user (SCIM id); absent for a user this plan creates or links,
    /// resolved when the plan is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why: the IdP group and mapping, or `default_groups`, or the rule that removes it.
    pub reason: String,
}

/// Why a user is deactivated.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeactivateCause {
    /// Deactivated or suspended in the identity provider.
    DisabledInSource,
    /// Still in the identity provider but dropped by a rule (`exclude`, `require_groups`).
    OutOfScope,
    /// In no source at all.
    GoneFromSources,
}

/// One change. The JSON form is tagged by `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateUser {
        key: String,
        user: UserFields,
        reason: String,
    },
    /// An account that exists in the organization but not in the SCIM directory (JIT-provisioned):
    /// created through SCIM with the same email, which links it.
    LinkUser {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        user: UserFields,
        reason: String,
    },
    CreateGroup {
        group: String,
        reason: String,
    },
    AddMembers {
        group: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
        /// 1-based batch number within this group's additions, and how many batches there are.
        batch: [usize; 2],
        members: Vec<Member>,
        reason: String,
    },
    UpdateUser {
        key: String,
        id: String,
        changes: Vec<FieldChange>,
        reason: String,
    },
    ReactivateUser {
        key: String,
        id: String,
        reason: String,
    },
    RemoveMembers {
        group: String,
        group_id: String,
        batch: [usize; 2],
        members: Vec<Member>,
        reason: String,
    },
    DeactivateUser {
        key: String,
        id: String,
        /// The Atlassian account id, for revoking API tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        cause: DeactivateCause,
        reason: String,
    },
    /// Revokes every API token of a deactivated account (`cleanup.revoke_api_tokens`): planned for
    /// each deactivation, and for any deactivated user who still holds tokens, whichever run
    /// deactivated them, so a revocation that failed is tried again.
    RevokeApiTokens {
        key: String,
        /// How the target refers to the user (SCIM id): what the plan's fingerprint re-checks.
        id: String,
        /// The Atlassian account id the tokens belong to.
        account_id: String,
        /// Tokens the account held when planned; absent when not known (listed when applied).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens: Option<usize>,
        reason: String,
    },
}

/// The kinds of action, in the order they are applied.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    CreateUser,
    LinkUser,
    CreateGroup,
    AddMembers,
    UpdateUser,
    ReactivateUser,
    RemoveMembers,
    DeactivateUser,
    RevokeApiTokens,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::CreateUser,
        Kind::LinkUser,
        Kind::CreateGroup,
        Kind::AddMembers,
        Kind::UpdateUser,
        Kind::ReactivateUser,
        Kind::RemoveMembers,
        Kind::DeactivateUser,
        Kind::RevokeApiTokens,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CreateUser => "create_user",
            Kind::LinkUser => "link_user",
            Kind::CreateGroup => "create_group",
            Kind::AddMembers => "add_members",
            Kind::UpdateUser => "update_user",
            Kind::ReactivateUser => "reactivate_user",
            Kind::RemoveMembers => "remove_members",
            Kind::DeactivateUser => "deactivate_user",
            Kind::RevokeApiTokens => "revoke_api_tokens",
        }
    }
}

impl Action {
    #[must_use]
    pub fn kind(&self) -> Kind {
        match self {
            Action::CreateUser { .. } => Kind::CreateUser,
            Action::LinkUser { .. } => Kind::LinkUser,
            Action::CreateGroup { .. } => Kind::CreateGroup,
            Action::AddMembers { .. } => Kind::AddMembers,
            Action::UpdateUser { .. } => Kind::UpdateUser,
            Action::ReactivateUser { .. } => Kind::ReactivateUser,
            Action::RemoveMembers { .. } => Kind::RemoveMembers,
            Action::DeactivateUser { .. } => Kind::DeactivateUser,
            Action::RevokeApiTokens { .. } => Kind::RevokeApiTokens,
        }
    }

    /// The user key or group name the action is about; with the kind and batch, its sort key.
    #[must_use]
    pub fn subject(&self) -> &str {
        match self {
            Action::CreateUser { key, .. }
            | Action::LinkUser { key, .. }
            | Action::UpdateUser { key, .. }
            | Action::ReactivateUser { key, .. }
            | Action::DeactivateUser { key, .. }
            | Action::RevokeApiTokens { key, .. } => key,
            Action::CreateGroup { group, .. }
            | Action::AddMembers { group, .. }
            | Action::RemoveMembers { group, .. } => group,
        }
    }

    /// The batch number of a membership change; 0 for other actions.
    #[must_use]
    pub fn batch(&self) -> usize {
        match self {
            Action::AddMembers { batch, .. } | Action::RemoveMembers { batch, .. } => batch[0],
            _ => 0,
        }
    }

    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Action::CreateUser { reason, .. }
            | Action::LinkUser { reason, .. }
            | Action::CreateGroup { reason, .. }
            | Action::AddMembers { reason, .. }
            | Action::UpdateUser { reason, .. }
            | Action::ReactivateUser { reason, .. }
            | Action::RemoveMembers { reason, .. }
            | Action::DeactivateUser { reason, .. }
            | Action::RevokeApiTokens { reason, .. } => reason,
        }
    }

    /// How many changes this action stands for: members for a membership change, else one.
    #[must_use]
    pub fn weight(&self) -> usize {
        match self {
            Action::AddMembers { members, .. } | Action::RemoveMembers { members, .. } => {
                members.len()
            }
            _ => 1,
        }
    }
}
