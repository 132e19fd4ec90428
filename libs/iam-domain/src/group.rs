//! The plain group aggregate (SCIM 2.0 `Groups`): a named set of users of one
//! organization that grants nothing. The built-in role groups are not
//! aggregates: their membership is the users' roles.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{GroupId, OrgId, UserId};
use crate::roles::Role;

/// The longest `displayName` or `externalId`, in characters.
const GROUP_TEXT_MAX: usize = 256;

/// A group as its events leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// Its organization.
    pub organization: OrgId,
    /// Its name, unique in the organization ignoring case.
    pub display_name: String,
    /// The identity provider's id of it.
    pub external_id: Option<String>,
    /// Its members (users of its organization).
    pub members: BTreeSet<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub modified_at: DateTime<Utc>,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// A group's changeable fields, as a create or a replacement gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFields {
    /// `displayName`.
    pub display_name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `members` (already checked to be users of the organization).
    pub members: BTreeSet<UserId>,
}

/// What can be asked of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCommand {
    /// Create it.
    Create {
        /// Its id.
        id: GroupId,
        /// Its organization.
        organization: OrgId,
        /// Its fields.
        fields: GroupFields,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Bring it to these fields (PUT, or the end result of a PATCH).
    Change {
        /// The fields it should have.
        fields: GroupFields,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Delete it.
    Delete {
        /// Now.
        at: DateTime<Utc>,
    },
}

/// What happened to a group. Shapes never change once released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum GroupEvent {
    /// A group was created.
    GroupCreated {
        /// Its id.
        id: GroupId,
        /// Its organization.
        organization: OrgId,
        /// Its name.
        #[serde(rename = "displayName")]
        display_name: String,
        /// The identity provider's id of it.
        #[serde(
            rename = "externalId",
            default,
            skip_serializing_if = "Option::is_none"
        )]
        external_id: Option<String>,
        /// Its first members.
        members: Vec<UserId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was renamed.
    GroupRenamed {
        /// The new name.
        #[serde(rename = "displayName")]
        display_name: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The identity provider's id of it changed.
    GroupExternalIdChanged {
        /// The new id (none: removed).
        #[serde(rename = "externalId")]
        external_id: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Users joined it.
    GroupMembersAdded {
        /// Who.
        members: Vec<UserId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Users left it.
    GroupMembersRemoved {
        /// Who.
        members: Vec<UserId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was deleted.
    GroupDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl GroupEvent {
    /// The event's type name in the log.
    pub fn event_type(&self) -> &'static str {
        match self {
            GroupEvent::GroupCreated { .. } => "GroupCreated",
            GroupEvent::GroupRenamed { .. } => "GroupRenamed",
            GroupEvent::GroupExternalIdChanged { .. } => "GroupExternalIdChanged",
            GroupEvent::GroupMembersAdded { .. } => "GroupMembersAdded",
            GroupEvent::GroupMembersRemoved { .. } => "GroupMembersRemoved",
            GroupEvent::GroupDeleted { .. } => "GroupDeleted",
        }
    }
}

/// A checked `displayName`: trimmed, not empty, printable, not too long,
/// and not the name of a role (those are the built-in role groups').
pub fn display_name(value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::Invalid(
            "displayName is empty; a group needs a name".to_owned(),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::Invalid(
            "displayName contains a control character; send printable text".to_owned(),
        ));
    }
    if value.chars().count() > GROUP_TEXT_MAX {
        return Err(DomainError::Invalid(format!(
            "displayName is longer than {GROUP_TEXT_MAX} characters"
        )));
    }
    Ok(value.to_owned())
}

/// The role a group name names, ignoring case (`account administrator`).
pub fn role_named(display_name: &str) -> Option<Role> {
    Role::all().find(|role| role.name().eq_ignore_ascii_case(display_name.trim()))
}

fn external_id(value: Option<String>) -> Result<Option<String>, DomainError> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().any(char::is_control) || value.chars().count() > GROUP_TEXT_MAX {
        return Err(DomainError::Invalid(format!(
            "externalId must be printable text of at most {GROUP_TEXT_MAX} characters"
        )));
    }
    Ok(Some(value))
}

/// Decides `command` against the group's current state.
pub fn decide(
    state: Option<&Group>,
    command: GroupCommand,
) -> Result<Vec<GroupEvent>, DomainError> {
    match command {
        GroupCommand::Create {
            id,
            organization,
            fields,
            at,
        } => {
            if state.is_some() {
                return Err(DomainError::AlreadyExists("group"));
            }
            Ok(vec![GroupEvent::GroupCreated {
                id,
                organization,
                display_name: display_name(&fields.display_name)?,
                external_id: external_id(fields.external_id)?,
                members: fields.members.into_iter().collect(),
                at,
            }])
        }
        GroupCommand::Change { fields, at } => {
            let group = live(state)?;
            let name = display_name(&fields.display_name)?;
            let external = external_id(fields.external_id)?;
            let mut events = Vec::new();
            if name != group.display_name {
                events.push(GroupEvent::GroupRenamed {
                    display_name: name,
                    at,
                });
            }
            if external != group.external_id {
                events.push(GroupEvent::GroupExternalIdChanged {
                    external_id: external,
                    at,
                });
            }
            let added: Vec<UserId> = fields.members.difference(&group.members).copied().collect();
            let removed: Vec<UserId> = group.members.difference(&fields.members).copied().collect();
            if !added.is_empty() {
                events.push(GroupEvent::GroupMembersAdded { members: added, at });
            }
            if !removed.is_empty() {
                events.push(GroupEvent::GroupMembersRemoved {
                    members: removed,
                    at,
                });
            }
            Ok(events)
        }
        GroupCommand::Delete { at } => {
            live(state)?;
            Ok(vec![GroupEvent::GroupDeleted { at }])
        }
    }
}

fn live(state: Option<&Group>) -> Result<&Group, DomainError> {
    state
        .filter(|group| !group.deleted)
        .ok_or(DomainError::NotFound("group"))
}

/// The group after `event`.
pub fn apply(state: Option<Group>, event: &GroupEvent) -> Option<Group> {
    if let GroupEvent::GroupCreated {
        id,
        organization,
        display_name,
        external_id,
        members,
        at,
    } = event
    {
        return Some(Group {
            id: *id,
            organization: *organization,
            display_name: display_name.clone(),
            external_id: external_id.clone(),
            members: members.iter().copied().collect(),
            created_at: *at,
            modified_at: *at,
            deleted: false,
        });
    }
    let mut group = state?;
    match event {
        GroupEvent::GroupCreated { .. } => {}
        GroupEvent::GroupRenamed { display_name, at } => {
            group.display_name = display_name.clone();
            group.modified_at = *at;
        }
        GroupEvent::GroupExternalIdChanged { external_id, at } => {
            group.external_id = external_id.clone();
            group.modified_at = *at;
        }
        GroupEvent::GroupMembersAdded { members, at } => {
            group.members.extend(members.iter().copied());
            group.modified_at = *at;
        }
        GroupEvent::GroupMembersRemoved { members, at } => {
            for member in members {
                group.members.remove(member);
            }
            group.modified_at = *at;
        }
        GroupEvent::GroupDeleted { at } => {
            group.deleted = true;
            group.modified_at = *at;
        }
    }
    Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> UserId {
        UserId::new(uuid::Uuid::from_u128(n))
    }

    fn fields(name: &str, members: &[u128]) -> GroupFields {
        GroupFields {
            display_name: name.to_owned(),
            external_id: None,
            members: members.iter().map(|n| user(*n)).collect(),
        }
    }

    #[test]
    fn a_change_records_only_what_differs_as_additions_and_removals() {
        let at = Utc::now();
        let created = decide(
            None,
            GroupCommand::Create {
                id: GroupId::new(uuid::Uuid::from_u128(9)),
                organization: OrgId::new(uuid::Uuid::from_u128(8)),
                fields: fields("Sales", &[1, 2]),
                at,
            },
        )
        .unwrap();
        let group = created.iter().fold(None, apply);
        let events = decide(
            group.as_ref(),
            GroupCommand::Change {
                fields: fields("Sales", &[2, 3]),
                at,
            },
        )
        .unwrap();
        assert_eq!(
            events,
            [
                GroupEvent::GroupMembersAdded {
                    members: vec![user(3)],
                    at
                },
                GroupEvent::GroupMembersRemoved {
                    members: vec![user(1)],
                    at
                },
            ]
        );
        let unchanged = decide(
            group.as_ref(),
            GroupCommand::Change {
                fields: fields(" Sales ", &[1, 2]),
                at,
            },
        )
        .unwrap();
        assert!(unchanged.is_empty(), "{unchanged:?}");
    }

    #[test]
    fn names_are_checked_and_role_names_recognized() {
        assert!(display_name("  ").is_err());
        assert!(display_name("a\u{7}b").is_err());
        assert_eq!(
            role_named("account ADMINISTRATOR"),
            Some(Role::AccountAdministrator)
        );
        assert_eq!(role_named("Sales"), None);
    }
}
