//! Atlassian policy that holds whatever talks to Atlassian: the group names SCIM cannot push.

/// Atlassian's default product-access group names: SCIM cannot push groups with these names
/// (they are created in the directory but never reach the sites).
pub const PRODUCT_ACCESS_GROUPS: &[&str] = &[
    "administrators",
    "atlassian-addons-admin",
    "bitbucket-users",
    "confluence-administrators",
    "confluence-admins",
    "confluence-users",
    "jira-administrators",
    "jira-admins",
    "jira-core-users",
    "jira-product-discovery-users",
    "jira-servicedesk-users",
    "jira-servicemanagement-users",
    "jira-software-users",
    "jira-users",
    "jira-work-management-users",
    "opsgenie-users",
    "site-admins",
    "statuspage-users",
    "system-administrators",
    "trusted-users",
];

/// Whether a group name is one of Atlassian's default product-access groups.
#[must_use]
pub fn is_product_access_group(name: &str) -> bool {
    let lower = name.trim().to_lowercase();
    PRODUCT_ACCESS_GROUPS.contains(&lower.as_str())
}

/// Why Atlassian refuses a group of this name, for [`crate::targets::Target::reserved_group`].
#[must_use]
pub fn reserved_group(name: &str) -> Option<&'static str> {
    is_product_access_group(name)
        .then_some("an Atlassian default product-access group that SCIM cannot push")
}
