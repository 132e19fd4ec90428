//! The user aggregate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{OrgId, UserId};
use crate::names::{Email, UserName, person_name};
use crate::organization::OrgKind;
use crate::roles::{Role, RoleSet};

/// Whether a user may sign in and use its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserState {
    /// Signs in; its tokens work.
    Active,
    /// Cannot sign in; its tokens stop working until it is active again.
    Inactive,
}

impl UserState {
    /// Parses `Active` or `Inactive` (any case, as vCloud Air clients send it).
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(UserState::Active),
            "inactive" => Ok(UserState::Inactive),
            _ => Err(DomainError::Invalid(format!(
                "state `{value}` is not a user state; use `Active` or `Inactive`"
            ))),
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "Active",
            UserState::Inactive => "Inactive",
        }
    }
}

/// A user as its events leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Its home organization.
    pub organization: OrgId,
    /// Its unique, immutable name.
    pub user_name: UserName,
    /// Its address (may change; the name does not).
    pub email: Email,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Active or inactive.
    pub state: UserState,
    /// Its roles in its home organization.
    pub roles: Vec<Role>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub modified_at: DateTime<Utc>,
    /// Whether it was deleted (then every command answers "not found").
    pub deleted: bool,
}

/// The fields a client gives when it creates a user (already typed, not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The new user's id.
    pub id: UserId,
    /// Its home organization.
    pub organization: OrgId,
    /// What kind of organization that is (decides the roles it may hold).
    pub organization_kind: OrgKind,
    /// `userName`, which must equal `email`.
    pub user_name: String,
    /// `email`.
    pub email: String,
    /// `givenName`.
    pub given_name: String,
    /// `familyName`.
    pub family_name: String,
    /// `state`.
    pub state: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Whether a password comes with it (kept beside the log, never in it).
    pub with_password: bool,
}

/// The fields of a full replacement (`PUT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// `userName`: must be unchanged.
    pub user_name: String,
    /// `email`.
    pub email: String,
    /// `givenName`.
    pub given_name: String,
    /// `familyName`.
    pub family_name: String,
    /// `state`.
    pub state: String,
    /// Role names.
    pub roles: Vec<String>,
    /// The kind of the user's home organization.
    pub organization_kind: OrgKind,
}

/// What can be asked of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Create it.
    Create {
        /// The fields.
        user: NewUser,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Replace its changeable fields.
    Replace {
        /// The fields.
        replacement: Replacement,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Record that its password was set (the hash is kept beside the log).
    SetPassword {
        /// Now.
        at: DateTime<Utc>,
    },
    /// Delete it.
    Delete {
        /// Now.
        at: DateTime<Utc>,
    },
}

/// What happened to a user. Shapes never change once released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    /// A user was created.
    UserCreated {
        /// Its id.
        id: UserId,
        /// Its home organization.
        organization: OrgId,
        /// Its name.
        #[serde(rename = "userName")]
        user_name: String,
        /// Its address.
        email: String,
        /// Given name.
        #[serde(rename = "givenName")]
        given_name: String,
        /// Family name.
        #[serde(rename = "familyName")]
        family_name: String,
        /// Active or inactive.
        state: UserState,
        /// Its roles.
        roles: Vec<Role>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its address changed (its name did not).
    UserEmailChanged {
        /// The new address.
        email: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its given or family name changed.
    UserRenamed {
        /// Given name.
        #[serde(rename = "givenName")]
        given_name: String,
        /// Family name.
        #[serde(rename = "familyName")]
        family_name: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// It became active or inactive.
    UserStateChanged {
        /// The new state.
        state: UserState,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its roles changed.
    UserRolesChanged {
        /// The new roles.
        roles: Vec<Role>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its password was set or changed (no hash: the log keeps no secret).
    UserPasswordSet {
        /// When.
        at: DateTime<Utc>,
    },
    /// It was deleted.
    UserDeleted {
        /// When.
        at: DateTime<Utc>,
    },
}

impl UserEvent {
    /// The event's type name in the log.
    pub fn event_type(&self) -> &'static str {
        match self {
            UserEvent::UserCreated { .. } => "UserCreated",
            UserEvent::UserEmailChanged { .. } => "UserEmailChanged",
            UserEvent::UserRenamed { .. } => "UserRenamed",
            UserEvent::UserStateChanged { .. } => "UserStateChanged",
            UserEvent::UserRolesChanged { .. } => "UserRolesChanged",
            UserEvent::UserPasswordSet { .. } => "UserPasswordSet",
            UserEvent::UserDeleted { .. } => "UserDeleted",
        }
    }
}

/// Decides `command` against the user's current state.
pub fn decide(state: Option<&User>, command: UserCommand) -> Result<Vec<UserEvent>, DomainError> {
    match command {
        UserCommand::Create { user, at } => {
            if state.is_some() {
                return Err(DomainError::AlreadyExists("user"));
            }
            create(user, at)
        }
        UserCommand::Replace { replacement, at } => {
            let user = live(state)?;
            replace(user, replacement, at)
        }
        UserCommand::SetPassword { at } => {
            live(state)?;
            Ok(vec![UserEvent::UserPasswordSet { at }])
        }
        UserCommand::Delete { at } => {
            live(state)?;
            Ok(vec![UserEvent::UserDeleted { at }])
        }
    }
}

fn live(state: Option<&User>) -> Result<&User, DomainError> {
    state
        .filter(|user| !user.deleted)
        .ok_or(DomainError::NotFound("user"))
}

fn create(user: NewUser, at: DateTime<Utc>) -> Result<Vec<UserEvent>, DomainError> {
    let user_name = UserName::parse(&user.user_name)?;
    let email = Email::parse(&user.email)?;
    if !user_name.matches(&email) {
        return Err(DomainError::UserNameIsNotEmail {
            user_name: user_name.to_string(),
            email: email.to_string(),
        });
    }
    let roles = RoleSet::parse(user.organization_kind, &user.roles)?;
    let mut events = vec![UserEvent::UserCreated {
        id: user.id,
        organization: user.organization,
        user_name: user_name.to_string(),
        email: email.to_string(),
        given_name: person_name("givenName", &user.given_name)?,
        family_name: person_name("familyName", &user.family_name)?,
        state: UserState::parse(&user.state)?,
        roles: roles.iter().collect(),
        at,
    }];
    if user.with_password {
        events.push(UserEvent::UserPasswordSet { at });
    }
    Ok(events)
}

fn replace(
    user: &User,
    replacement: Replacement,
    at: DateTime<Utc>,
) -> Result<Vec<UserEvent>, DomainError> {
    let user_name = UserName::parse(&replacement.user_name)?;
    if user_name != user.user_name || user_name.as_str() != user.user_name.as_str() {
        return Err(DomainError::Immutable("userName"));
    }
    let email = Email::parse(&replacement.email)?;
    let given_name = person_name("givenName", &replacement.given_name)?;
    let family_name = person_name("familyName", &replacement.family_name)?;
    let state = UserState::parse(&replacement.state)?;
    let roles: Vec<Role> = RoleSet::parse(replacement.organization_kind, &replacement.roles)?
        .iter()
        .collect();
    let mut events = Vec::new();
    if email != user.email {
        events.push(UserEvent::UserEmailChanged {
            email: email.to_string(),
            at,
        });
    }
    if given_name != user.given_name || family_name != user.family_name {
        events.push(UserEvent::UserRenamed {
            given_name,
            family_name,
            at,
        });
    }
    if state != user.state {
        events.push(UserEvent::UserStateChanged { state, at });
    }
    if roles != user.roles {
        events.push(UserEvent::UserRolesChanged { roles, at });
    }
    Ok(events)
}

/// The user after `event`. Events were checked when decided: applying them
/// only records them.
pub fn apply(state: Option<User>, event: &UserEvent) -> Option<User> {
    if let UserEvent::UserCreated {
        id,
        organization,
        user_name,
        email,
        given_name,
        family_name,
        state: user_state,
        roles,
        at,
    } = event
    {
        return Some(User {
            id: *id,
            organization: *organization,
            // A stored name or address that no longer parses leaves the
            // user out rather than inventing one.
            user_name: UserName::parse(user_name).ok()?,
            email: Email::parse(email).ok()?,
            given_name: given_name.clone(),
            family_name: family_name.clone(),
            state: *user_state,
            roles: roles.clone(),
            created_at: *at,
            modified_at: *at,
            deleted: false,
        });
    }
    let mut user = state?;
    match event {
        UserEvent::UserCreated { .. } => {}
        UserEvent::UserEmailChanged { email, at } => {
            if let Ok(email) = Email::parse(email) {
                user.email = email;
            }
            user.modified_at = *at;
        }
        UserEvent::UserRenamed {
            given_name,
            family_name,
            at,
        } => {
            user.given_name = given_name.clone();
            user.family_name = family_name.clone();
            user.modified_at = *at;
        }
        UserEvent::UserStateChanged { state, at } => {
            user.state = *state;
            user.modified_at = *at;
        }
        UserEvent::UserRolesChanged { roles, at } => {
            user.roles = roles.clone();
            user.modified_at = *at;
        }
        UserEvent::UserPasswordSet { at } => user.modified_at = *at,
        UserEvent::UserDeleted { at } => {
            user.deleted = true;
            user.modified_at = *at;
        }
    }
    Some(user)
}
