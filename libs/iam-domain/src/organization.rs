//! The organization aggregate: the provider and its tenants, and the
//! provider users added to a tenant as its Organization Owners.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{OrgId, UserId};
use crate::names::person_name;
use crate::roles::Role;

/// The two kinds of organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrgKind {
    /// The MSP that runs the service.
    Provider,
    /// A customer of the provider.
    Tenant,
}

impl fmt::Display for OrgKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrgKind::Provider => "provider",
            OrgKind::Tenant => "tenant",
        })
    }
}

/// An organization as its events leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id.
    pub id: OrgId,
    /// Its name.
    pub name: String,
    /// Provider or tenant.
    pub kind: OrgKind,
    /// A tenant's provider.
    pub provider: Option<OrgId>,
    /// Whether the provider's administrators may manage this tenant's users.
    pub delegates_user_management: bool,
    /// Provider users added to this tenant (Organization Owners).
    pub members: BTreeSet<UserId>,
}

/// What can be asked of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgCommand {
    /// Create the provider organization (at bootstrap).
    CreateProvider {
        /// Its id.
        id: OrgId,
        /// Its name.
        name: String,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Create a tenant of `provider`.
    CreateTenant {
        /// Its id.
        id: OrgId,
        /// Its name.
        name: String,
        /// The provider it belongs to.
        provider: OrgId,
        /// Whether the provider may manage its users (default on).
        delegates_user_management: bool,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Add a provider user to this tenant, as Organization Owner.
    AddMember {
        /// The provider user.
        user: UserId,
        /// The user's home organization.
        user_organization: OrgId,
        /// The user's provider role.
        user_role: Role,
        /// Now.
        at: DateTime<Utc>,
    },
}

/// What happened to an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrgEvent {
    /// An organization was created.
    OrganizationCreated {
        /// Its id.
        id: OrgId,
        /// Its name.
        name: String,
        /// Provider or tenant.
        kind: OrgKind,
        /// A tenant's provider.
        provider: Option<OrgId>,
        /// Whether the provider may manage its users.
        #[serde(rename = "delegatesUserManagement")]
        delegates_user_management: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// A provider user was added to a tenant and holds Organization Owner there.
    OrganizationMemberAdded {
        /// The user.
        user: UserId,
        /// The role it holds in the tenant (Organization Owner).
        role: Role,
        /// When.
        at: DateTime<Utc>,
    },
}

impl OrgEvent {
    /// The event's type name in the log.
    pub fn event_type(&self) -> &'static str {
        match self {
            OrgEvent::OrganizationCreated { .. } => "OrganizationCreated",
            OrgEvent::OrganizationMemberAdded { .. } => "OrganizationMemberAdded",
        }
    }
}

/// Decides `command` against the organization's current state.
pub fn decide(
    state: Option<&Organization>,
    command: OrgCommand,
) -> Result<Vec<OrgEvent>, DomainError> {
    match command {
        OrgCommand::CreateProvider { id, name, at } => {
            if state.is_some() {
                return Err(DomainError::AlreadyExists("organization"));
            }
            Ok(vec![OrgEvent::OrganizationCreated {
                id,
                name: person_name("name", &name)?,
                kind: OrgKind::Provider,
                provider: None,
                delegates_user_management: false,
                at,
            }])
        }
        OrgCommand::CreateTenant {
            id,
            name,
            provider,
            delegates_user_management,
            at,
        } => {
            if state.is_some() {
                return Err(DomainError::AlreadyExists("organization"));
            }
            Ok(vec![OrgEvent::OrganizationCreated {
                id,
                name: person_name("name", &name)?,
                kind: OrgKind::Tenant,
                provider: Some(provider),
                delegates_user_management,
                at,
            }])
        }
        OrgCommand::AddMember {
            user,
            user_organization,
            user_role,
            at,
        } => {
            let org = state.ok_or(DomainError::NotFound("organization"))?;
            if org.kind != OrgKind::Tenant {
                return Err(DomainError::Invalid(
                    "provider users can only be added to tenant organizations".into(),
                ));
            }
            if org.provider != Some(user_organization) {
                return Err(DomainError::Invalid(
                    "only users of this tenant's provider can be added to it".into(),
                ));
            }
            if !matches!(
                user_role,
                Role::ProviderAdministrator | Role::ProviderAccountAdministrator
            ) {
                return Err(DomainError::Invalid(format!(
                    "a {user_role} cannot be an Organization Owner; add a Provider Administrator or \
                     Provider Account Administrator"
                )));
            }
            if org.members.contains(&user) {
                return Ok(Vec::new());
            }
            Ok(vec![OrgEvent::OrganizationMemberAdded {
                user,
                role: Role::OrganizationOwner,
                at,
            }])
        }
    }
}

/// The organization after `event`.
pub fn apply(state: Option<Organization>, event: &OrgEvent) -> Option<Organization> {
    match event {
        OrgEvent::OrganizationCreated {
            id,
            name,
            kind,
            provider,
            delegates_user_management,
            ..
        } => Some(Organization {
            id: *id,
            name: name.clone(),
            kind: *kind,
            provider: *provider,
            delegates_user_management: *delegates_user_management,
            members: BTreeSet::new(),
        }),
        OrgEvent::OrganizationMemberAdded { user, .. } => state.map(|mut org| {
            org.members.insert(*user);
            org
        }),
    }
}
