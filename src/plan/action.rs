//! The actions a plan can hold, in the order they are applied.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use crate::model::Attributes;
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
    #[serde(default, skip_serializing_if = "Attributes::is_empty")]
    #[schemars(with = "BTreeMap<String, String>")]
    pub attributes: Attributes,
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
    #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
    pub reason_code: ReasonCode,
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
    // Shared between the members given the same reason: at scale, millions of membership changes
    // share a few thousand reasons.
    #[schemars(with = "String")]
    pub reason: std::sync::Arc<str>,
    #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
    pub reason_code: ReasonCode,
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

/// Why something is in the plan, as a stable code next to each human `reason` (of an action, a member
/// of a membership change, a field of an update, a user left alone). Codes are never renamed or given
/// another meaning within a plan format major version; new ones may come with a minor version, so a
/// reader must accept codes it does not know (idsync reads them as `unknown`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// `create_user`, `link_user`: the user is in a source and in scope.
    InSource,
    /// `create_user`, `link_user`: in a source and a member of a `users.require_groups` group.
    InRequiredGroup,
    /// `reactivate_user`: active in its source again.
    ActiveInSource,
    /// `update_user`: the email changed in the source (matched by the IdP's immutable id).
    Rename,
    /// `update_user`: fields differ from what the source and templates give.
    FieldsDiffer,
    /// A field change: the value comes from the source's field.
    SourceField,
    /// A field change: the value comes from a `users.attributes` template.
    AttributeTemplate,
    /// A field change: `externalId` takes the IdP's immutable id, used to match renames.
    ImmutableId,
    /// A field change made at apply: a create met an existing user (409), which was adopted.
    AdoptedOnCreate,
    /// `create_group`, `add_members` and their members: a `groups.mappings` entry.
    MappedGroup,
    /// `create_group`, `add_members` and their members: `groups.default_groups`.
    DefaultGroup,
    /// `remove_members` and its members: no mapping or default group puts the user there any more.
    NoLongerDerived,
    /// A member removed: in no source, and `groups.manage_unmapped_members` is on.
    UnmanagedMember,
    /// `deactivate_user`: deactivated or suspended in the identity provider.
    DisabledInIdp,
    /// `deactivate_user`: still in the identity provider, but excluded by `users.exclude`.
    ExcludedByRule,
    /// `deactivate_user`: still in the identity provider, but in none of `users.require_groups`.
    NotInRequiredGroups,
    /// `deactivate_user`: in no source (`cleanup.deactivate_missing`).
    GoneFromSources,
    /// `revoke_api_tokens`: the account is deactivated by this plan (`cleanup.revoke_api_tokens`).
    DeactivatedByPlan,
    /// `revoke_api_tokens`: the account is already deactivated but still holds API tokens.
    TokensLingering,
    /// Left alone: matched by `cleanup.protect`.
    Protected,
    /// Left alone: an organization or site admin (`cleanup.skip_admins`).
    Admin,
    /// Left alone: the email's domain is not verified in the organization.
    DomainNotVerified,
    /// Left alone: the account belongs to another identity-provider directory of the organization.
    OtherDirectory,
    /// Left alone: the account's email is wanted for a source user matched by externalId to another
    /// account (a rename onto an email this account holds).
    EmailContested,
    /// Left alone: a source left the user's record out (no email, not a user), so not taken for gone.
    LeftOutBySource,
    /// Left alone: `cleanup.deactivate_missing` is false.
    DeactivateMissingOff,
    /// Left alone: last active within `cleanup.grace_days`.
    InactiveGrace,
    /// Left alone: no last-active date, and `cleanup.without_last_active` is `keep`.
    NoLastActive,
    /// Not written: a plan of format 2.0 (before codes), or a code this idsync does not know.
    #[default]
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

impl ReasonCode {
    /// Every code idsync writes, in declaration order (for documentation and tests).
    pub const ALL: [ReasonCode; 28] = [
        ReasonCode::InSource,
        ReasonCode::InRequiredGroup,
        ReasonCode::ActiveInSource,
        ReasonCode::Rename,
        ReasonCode::FieldsDiffer,
        ReasonCode::SourceField,
        ReasonCode::AttributeTemplate,
        ReasonCode::ImmutableId,
        ReasonCode::AdoptedOnCreate,
        ReasonCode::MappedGroup,
        ReasonCode::DefaultGroup,
        ReasonCode::NoLongerDerived,
        ReasonCode::UnmanagedMember,
        ReasonCode::DisabledInIdp,
        ReasonCode::ExcludedByRule,
        ReasonCode::NotInRequiredGroups,
        ReasonCode::GoneFromSources,
        ReasonCode::DeactivatedByPlan,
        ReasonCode::TokensLingering,
        ReasonCode::Protected,
        ReasonCode::Admin,
        ReasonCode::DomainNotVerified,
        ReasonCode::OtherDirectory,
        ReasonCode::EmailContested,
        ReasonCode::LeftOutBySource,
        ReasonCode::DeactivateMissingOff,
        ReasonCode::InactiveGrace,
        ReasonCode::NoLastActive,
    ];

    #[must_use]
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn is_unknown(&self) -> bool {
        *self == ReasonCode::Unknown
    }

    /// The code as written in a plan.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InSource => "in_source",
            ReasonCode::InRequiredGroup => "in_required_group",
            ReasonCode::ActiveInSource => "active_in_source",
            ReasonCode::Rename => "rename",
            ReasonCode::FieldsDiffer => "fields_differ",
            ReasonCode::SourceField => "source_field",
            ReasonCode::AttributeTemplate => "attribute_template",
            ReasonCode::ImmutableId => "immutable_id",
            ReasonCode::AdoptedOnCreate => "adopted_on_create",
            ReasonCode::MappedGroup => "mapped_group",
            ReasonCode::DefaultGroup => "default_group",
            ReasonCode::NoLongerDerived => "no_longer_derived",
            ReasonCode::UnmanagedMember => "unmanaged_member",
            ReasonCode::DisabledInIdp => "disabled_in_idp",
            ReasonCode::ExcludedByRule => "excluded_by_rule",
            ReasonCode::NotInRequiredGroups => "not_in_required_groups",
            ReasonCode::GoneFromSources => "gone_from_sources",
            ReasonCode::DeactivatedByPlan => "deactivated_by_plan",
            ReasonCode::TokensLingering => "tokens_lingering",
            ReasonCode::Protected => "protected",
            ReasonCode::Admin => "admin",
            ReasonCode::DomainNotVerified => "domain_not_verified",
            ReasonCode::OtherDirectory => "other_directory",
            ReasonCode::EmailContested => "email_contested",
            ReasonCode::LeftOutBySource => "left_out_by_source",
            ReasonCode::DeactivateMissingOff => "deactivate_missing_off",
            ReasonCode::InactiveGrace => "inactive_grace",
            ReasonCode::NoLastActive => "no_last_active",
            ReasonCode::Unknown => "unknown",
        }
    }
}

/// One change. The JSON form is tagged by `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateUser {
        key: String,
        user: UserFields,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    /// An account that exists in the organization but not in the SCIM directory (JIT-provisioned):
    /// created through SCIM with the same email, which links it.
    LinkUser {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        user: UserFields,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    CreateGroup {
        group: String,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    AddMembers {
        group: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group_id: Option<String>,
        /// 1-based batch number within this group's additions, and how many batches there are.
        batch: [usize; 2],
        members: Vec<Member>,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    UpdateUser {
        key: String,
        id: String,
        changes: Vec<FieldChange>,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    ReactivateUser {
        key: String,
        id: String,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    RemoveMembers {
        group: String,
        group_id: String,
        batch: [usize; 2],
        members: Vec<Member>,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
    },
    DeactivateUser {
        key: String,
        id: String,
        /// The Atlassian account id, for revoking API tokens.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        cause: DeactivateCause,
        reason: String,
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
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
        #[serde(default, skip_serializing_if = "ReasonCode::is_unknown")]
        reason_code: ReasonCode,
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

    /// The code of [`reason`](Action::reason).
    #[must_use]
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Action::CreateUser { reason_code, .. }
            | Action::LinkUser { reason_code, .. }
            | Action::CreateGroup { reason_code, .. }
            | Action::AddMembers { reason_code, .. }
            | Action::UpdateUser { reason_code, .. }
            | Action::ReactivateUser { reason_code, .. }
            | Action::RemoveMembers { reason_code, .. }
            | Action::DeactivateUser { reason_code, .. }
            | Action::RevokeApiTokens { reason_code, .. } => *reason_code,
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

/// Why one action failed. The message names the object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ActionError(pub String);
