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
    /// What the identity provider keeps of it (SCIM 2.0).
    pub profile: Profile,
    /// Whether an identity provider manages it (it was provisioned over
    /// SCIM 2.0): its names, address, roles and password change only there.
    pub managed: bool,
}

/// What an identity provider keeps of a user beyond the vCloud Air fields:
/// its own id for the user and the enterprise extension's attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The identity provider's id of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Enterprise extension: `employeeNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    /// Enterprise extension: `department`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Enterprise extension: `manager.value`, the manager's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
}

/// How long a password-reset code stays valid (reference document 002:
/// the user follows a mailed link).
pub const PASSWORD_RESET_VALIDITY: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The longest profile value accepted, in characters.
const PROFILE_VALUE_MAX: usize = 256;

impl Profile {
    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        *self == Profile::default()
    }

    /// Trims each value (an empty one is absent) and refuses control
    /// characters and overlong values, naming the attribute.
    pub fn checked(self) -> Result<Profile, DomainError> {
        fn field(name: &str, value: Option<String>) -> Result<Option<String>, DomainError> {
            let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if value.chars().any(char::is_control) {
                return Err(DomainError::Invalid(format!(
                    "{name} contains a control character; send printable text"
                )));
            }
            if value.chars().count() > PROFILE_VALUE_MAX {
                return Err(DomainError::Invalid(format!(
                    "{name} is longer than {PROFILE_VALUE_MAX} characters"
                )));
            }
            Ok(Some(value))
        }
        Ok(Profile {
            external_id: field("externalId", self.external_id)?,
            employee_number: field("employeeNumber", self.employee_number)?,
            department: field("department", self.department)?,
            manager: field("manager", self.manager)?,
        })
    }
}

/// Where a change comes from, which decides what it may change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// The vCloud Air dialect or `iamctl`: a managed user's names, address,
    /// roles and password are the identity provider's.
    #[default]
    Local,
    /// An identity provider over SCIM 2.0: may also change `userName`
    /// (the primary email with it).
    IdentityProvider,
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
    /// What the identity provider keeps of it.
    pub profile: Profile,
    /// Where it comes from: a user created by an identity provider is
    /// managed by it.
    pub source: Source,
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
    /// The profile; `None` keeps it (the vCloud Air dialect has none).
    pub profile: Option<Profile>,
    /// Whether a new password comes with it (kept beside the log).
    pub with_password: bool,
    /// Where it comes from.
    pub source: Source,
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
        /// Where it comes from.
        source: Source,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Start a reset by e-mail: a one-time code, valid for
    /// [`PASSWORD_RESET_VALIDITY`], is mailed to the user (the code is never
    /// in the log).
    RequestPasswordReset {
        /// Where it comes from.
        source: Source,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Complete a reset: the holder of the mailed code set a new password.
    CompletePasswordReset {
        /// Now.
        at: DateTime<Utc>,
    },
    /// Give it `role`, moving it out of the roles that conflict with it:
    /// membership of a role's group, which identity providers send
    /// unordered, converges rather than fails.
    JoinRole {
        /// The role joined.
        role: Role,
        /// The kind of the user's home organization.
        organization_kind: OrgKind,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Take `role` from it; without a role left it holds End User.
    LeaveRole {
        /// The role left.
        role: Role,
        /// The kind of the user's home organization.
        organization_kind: OrgKind,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Delete it.
    Delete {
        /// Where it comes from.
        source: Source,
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
        /// What the identity provider keeps of it (added later: absent in
        /// older events).
        #[serde(default, skip_serializing_if = "Profile::is_empty")]
        profile: Profile,
        /// Whether an identity provider manages it (added later).
        #[serde(
            default,
            rename = "managedByIdentityProvider",
            skip_serializing_if = "std::ops::Not::not"
        )]
        managed: bool,
    },
    /// Its name changed, and its address with it (SCIM 2.0 only: the
    /// vCloud Air dialect's userName is immutable).
    UserNameChanged {
        /// The new name.
        #[serde(rename = "userName")]
        user_name: String,
        /// The new address (the same, ignoring case).
        email: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// What the identity provider keeps of it changed (the whole new profile).
    UserProfileChanged {
        /// The new profile.
        profile: Profile,
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
        /// Roles it was moved out of because a joined role excludes them
        /// (added later: absent when nothing was displaced).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        displaced: Vec<Role>,
        /// Whether it was given End User because it left its last role.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        defaulted: bool,
    },
    /// Its password was set or changed (no hash: the log keeps no secret).
    UserPasswordSet {
        /// When.
        at: DateTime<Utc>,
    },
    /// A password reset by e-mail was requested: a one-time code goes to
    /// the user's address (the code is never in the log).
    UserPasswordResetRequested {
        /// When.
        at: DateTime<Utc>,
        /// When the code stops being valid.
        #[serde(rename = "expiresAt")]
        expires_at: DateTime<Utc>,
    },
    /// The holder of a reset code set a new password.
    UserPasswordReset {
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
            UserEvent::UserNameChanged { .. } => "UserNameChanged",
            UserEvent::UserProfileChanged { .. } => "UserProfileChanged",
            UserEvent::UserEmailChanged { .. } => "UserEmailChanged",
            UserEvent::UserRenamed { .. } => "UserRenamed",
            UserEvent::UserStateChanged { .. } => "UserStateChanged",
            UserEvent::UserRolesChanged { .. } => "UserRolesChanged",
            UserEvent::UserPasswordSet { .. } => "UserPasswordSet",
            UserEvent::UserPasswordResetRequested { .. } => "UserPasswordResetRequested",
            UserEvent::UserPasswordReset { .. } => "UserPasswordReset",
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
        UserCommand::SetPassword { source, at } => {
            let user = live(state)?;
            locally_managed(user, source, "change its password")?;
            Ok(vec![UserEvent::UserPasswordSet { at }])
        }
        UserCommand::RequestPasswordReset { source, at } => {
            let user = live(state)?;
            locally_managed(user, source, "reset its password")?;
            Ok(vec![UserEvent::UserPasswordResetRequested {
                at,
                expires_at: at + PASSWORD_RESET_VALIDITY,
            }])
        }
        UserCommand::CompletePasswordReset { at } => {
            let user = live(state)?;
            locally_managed(user, Source::Local, "reset its password")?;
            Ok(vec![UserEvent::UserPasswordReset { at }])
        }
        UserCommand::JoinRole {
            role,
            organization_kind,
            at,
        } => {
            let user = live(state)?;
            let (roles, displaced) = RoleSet::joining(organization_kind, &user.roles, role)?;
            Ok(roles_changed(user, roles, displaced, false, at))
        }
        UserCommand::LeaveRole {
            role,
            organization_kind,
            at,
        } => {
            let user = live(state)?;
            let (roles, defaulted) = RoleSet::leaving(organization_kind, &user.roles, role)?;
            Ok(roles_changed(user, roles, Vec::new(), defaulted, at))
        }
        UserCommand::Delete { source, at } => {
            let user = live(state)?;
            locally_managed(user, source, "delete it")?;
            Ok(vec![UserEvent::UserDeleted { at }])
        }
    }
}

fn roles_changed(
    user: &User,
    roles: RoleSet,
    displaced: Vec<Role>,
    defaulted: bool,
    at: DateTime<Utc>,
) -> Vec<UserEvent> {
    let roles: Vec<Role> = roles.iter().collect();
    if roles == user.roles {
        return Vec::new();
    }
    vec![UserEvent::UserRolesChanged {
        roles,
        at,
        displaced,
        defaulted,
    }]
}

fn live(state: Option<&User>) -> Result<&User, DomainError> {
    state
        .filter(|user| !user.deleted)
        .ok_or(DomainError::NotFound("user"))
}

/// Refuses a local change (`what`: "change its email") of a user an
/// identity provider manages.
fn locally_managed(user: &User, source: Source, what: &'static str) -> Result<(), DomainError> {
    if user.managed && source == Source::Local {
        return Err(DomainError::ManagedByIdentityProvider(what));
    }
    Ok(())
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
        profile: user.profile.checked()?,
        managed: user.source == Source::IdentityProvider,
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
    let renamed = user_name.as_str() != user.user_name.as_str();
    if renamed && replacement.source == Source::Local {
        return Err(DomainError::Immutable("userName"));
    }
    let email = Email::parse(&replacement.email)?;
    if renamed && !user_name.matches(&email) {
        return Err(DomainError::UserNameIsNotEmail {
            user_name: user_name.to_string(),
            email: email.to_string(),
        });
    }
    let given_name = person_name("givenName", &replacement.given_name)?;
    let family_name = person_name("familyName", &replacement.family_name)?;
    let state = UserState::parse(&replacement.state)?;
    let roles: Vec<Role> = RoleSet::parse(replacement.organization_kind, &replacement.roles)?
        .iter()
        .collect();
    let profile = replacement.profile.map(Profile::checked).transpose()?;
    let mut events = Vec::new();
    if renamed {
        events.push(UserEvent::UserNameChanged {
            user_name: user_name.to_string(),
            email: email.to_string(),
            at,
        });
    } else if email != user.email {
        locally_managed(user, replacement.source, "change its email")?;
        events.push(UserEvent::UserEmailChanged {
            email: email.to_string(),
            at,
        });
    }
    if given_name != user.given_name || family_name != user.family_name {
        locally_managed(user, replacement.source, "change its names")?;
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
        locally_managed(user, replacement.source, "change its roles")?;
        events.push(UserEvent::UserRolesChanged {
            roles,
            at,
            displaced: Vec::new(),
            defaulted: false,
        });
    }
    if let Some(profile) = profile
        && profile != user.profile
    {
        events.push(UserEvent::UserProfileChanged { profile, at });
    }
    if replacement.with_password {
        locally_managed(user, replacement.source, "change its password")?;
        events.push(UserEvent::UserPasswordSet { at });
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
        profile,
        managed,
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
            profile: profile.clone(),
            managed: *managed,
        });
    }
    let mut user = state?;
    match event {
        UserEvent::UserCreated { .. } => {}
        UserEvent::UserNameChanged {
            user_name,
            email,
            at,
        } => {
            if let (Ok(user_name), Ok(email)) = (UserName::parse(user_name), Email::parse(email)) {
                user.user_name = user_name;
                user.email = email;
            }
            user.modified_at = *at;
        }
        UserEvent::UserProfileChanged { profile, at } => {
            user.profile = profile.clone();
            user.modified_at = *at;
        }
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
        UserEvent::UserRolesChanged { roles, at, .. } => {
            user.roles = roles.clone();
            user.modified_at = *at;
        }
        UserEvent::UserPasswordSet { at } | UserEvent::UserPasswordReset { at } => {
            user.modified_at = *at
        }
        // Nothing of the user changes until the reset completes.
        UserEvent::UserPasswordResetRequested { .. } => {}
        UserEvent::UserDeleted { at } => {
            user.deleted = true;
            user.modified_at = *at;
        }
    }
    Some(user)
}
