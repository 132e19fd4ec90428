//! Who may do what, as pure functions of the actor, the effective
//! organization and the target.
//!
//! | actor (home organization, role)                  | in its home organization          | in a tenant of its provider (tenant-context header) |
//! |---|---|---|
//! | tenant Account Administrator                      | read, create, replace, delete users | — (403)                                          |
//! | tenant Read-Only Administrator                    | read users                        | — (403)                                             |
//! | tenant End User, Virtual Infrastructure or Network Administrator | read itself only   | — (403)                                             |
//! | provider Provider Administrator / Provider Account Administrator | read, create, replace, delete provider users | read users; create, replace, delete them only when the tenant delegates user management to the provider |
//! | provider Provider Business Specialist             | read provider users               | read users                                          |
//!
//! Acting in another organization is allowed only to provider users, in
//! tenants of their own provider; everyone else gets 403 for any other
//! organization.

use crate::ids::{OrgId, UserId};
use crate::organization::{OrgKind, Organization};
use crate::roles::Role;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user.
    pub user: UserId,
    /// Its home organization.
    pub home: OrgId,
    /// The kind of its home organization.
    pub home_kind: OrgKind,
    /// Its roles in its home organization.
    pub roles: Vec<Role>,
}

/// What is asked of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    /// Read one or list.
    Read,
    /// Create.
    Create,
    /// Replace.
    Replace,
    /// Delete.
    Delete,
}

impl UserAction {
    fn verb(self) -> &'static str {
        match self {
            UserAction::Read => "read",
            UserAction::Create => "create",
            UserAction::Replace => "change",
            UserAction::Delete => "delete",
        }
    }
}

/// A refusal, with a message for the caller (answered 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

impl Actor {
    fn holds(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    fn is_provider_manager(&self) -> bool {
        self.home_kind == OrgKind::Provider
            && (self.holds(Role::ProviderAdministrator)
                || self.holds(Role::ProviderAccountAdministrator))
    }
}

/// Whether `actor` may work inside `organization` (its home, or for a
/// provider user a tenant of its provider).
pub fn may_act_in(actor: &Actor, organization: &Organization) -> Result<(), Denied> {
    if organization.id == actor.home {
        return Ok(());
    }
    let tenant_of_actors_provider =
        organization.kind == OrgKind::Tenant && organization.provider == Some(actor.home);
    if actor.home_kind == OrgKind::Provider && tenant_of_actors_provider {
        return Ok(());
    }
    Err(Denied(format!(
        "You cannot act in organization {}: tenant users may name only their own organization, and \
         provider users only tenants of their provider.",
        organization.id
    )))
}

/// Whether `actor` may do `action` to users of `organization` (the
/// effective organization); `target` is the user concerned, when there is
/// one. Call [`may_act_in`] first.
pub fn may_manage_users(
    actor: &Actor,
    organization: &Organization,
    action: UserAction,
    target: Option<UserId>,
) -> Result<(), Denied> {
    let denied = |why: &str| {
        Err(Denied(format!(
            "You are not allowed to {} users in this organization: {why}",
            action.verb()
        )))
    };
    may_act_in(actor, organization)?;
    if organization.id != actor.home {
        // A provider user inside a tenant of its provider.
        return match action {
            UserAction::Read => Ok(()),
            _ if !actor.is_provider_manager() => denied(
                "only Provider Administrators and Provider Account Administrators manage tenant users.",
            ),
            _ if !organization.delegates_user_management => {
                denied("this tenant does not delegate user management to its provider.")
            }
            _ => Ok(()),
        };
    }
    match actor.home_kind {
        OrgKind::Provider if actor.is_provider_manager() => Ok(()),
        OrgKind::Provider if action == UserAction::Read => Ok(()),
        OrgKind::Provider => denied("a Provider Business Specialist only reads."),
        OrgKind::Tenant if actor.holds(Role::AccountAdministrator) => Ok(()),
        OrgKind::Tenant
            if action == UserAction::Read && actor.holds(Role::ReadOnlyAdministrator) =>
        {
            Ok(())
        }
        OrgKind::Tenant if action == UserAction::Read && target == Some(actor.user) => Ok(()),
        OrgKind::Tenant if action == UserAction::Read => {
            denied("your role lets you see only your own user.")
        }
        OrgKind::Tenant => denied("only Account Administrators manage users."),
    }
}

/// Whether `actor` may read the audit of `organization` (the effective
/// organization): Account and Read-Only Administrators their own tenant's;
/// Provider Administrators, Provider Account Administrators and Provider
/// Business Specialists the provider's and, from inside one, a tenant's.
pub fn may_audit(actor: &Actor, organization: &Organization) -> Result<(), Denied> {
    may_act_in(actor, organization)?;
    let allowed = match actor.home_kind {
        OrgKind::Provider => {
            actor.is_provider_manager() || actor.holds(Role::ProviderBusinessSpecialist)
        }
        OrgKind::Tenant => {
            actor.holds(Role::AccountAdministrator) || actor.holds(Role::ReadOnlyAdministrator)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(Denied(
            "You are not allowed to read the audit: it is for Account and Read-Only Administrators, \
             and for provider administrators and Provider Business Specialists."
                .into(),
        ))
    }
}

/// Whether `actor` may create tenant organizations or add members to them.
pub fn may_manage_organizations(actor: &Actor) -> Result<(), Denied> {
    if actor.home_kind == OrgKind::Provider && actor.holds(Role::ProviderAdministrator) {
        Ok(())
    } else {
        Err(Denied(
            "Only a Provider Administrator can create tenant organizations or add members to them."
                .into(),
        ))
    }
}

/// What is asked of API tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// Create a token for the owner.
    Create,
    /// Download its secret (once).
    Download,
    /// Revoke it.
    Revoke,
}

/// The user a token belongs to, as the token policy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The user.
    pub user: UserId,
    /// Its home organization.
    pub home: OrgId,
    /// Its roles at home.
    pub roles: Vec<Role>,
    /// Whether it is an Organization Owner of the effective organization
    /// (how a provider user holds tokens scoped to a tenant).
    pub owner_of_effective: bool,
}

/// Whether a user holding `roles` may authenticate with API tokens: not when
/// its only roles are Read-Only Administrator or Provider Business
/// Specialist. Checked when a token is created or downloaded, and each time
/// one is used (the user's roles may have changed since).
pub fn token_authentication_enabled(roles: &[Role]) -> Result<(), Denied> {
    let disabled = |role: &Role| {
        matches!(
            role,
            Role::ReadOnlyAdministrator | Role::ProviderBusinessSpecialist
        )
    };
    if roles.iter().all(disabled) {
        let names: Vec<&str> = roles.iter().map(|role| role.name()).collect();
        return Err(Denied(format!(
            "Token authentication is not enabled for the role {}; sign in with a password, or ask an \
             administrator for a role that allows API tokens.",
            names.join(" and ")
        )));
    }
    Ok(())
}

/// Whether `actor` may do `action` to a token of `owner` scoped to
/// `organization` (the effective organization).
///
/// - Token authentication is not enabled for users whose only roles are
///   Read-Only Administrator or Provider Business Specialist: nobody creates
///   or downloads their tokens (tokens they held before a role change can
///   still be revoked).
/// - Every other user creates, downloads and revokes its own tokens, in its
///   home organization or in a tenant where it is Organization Owner.
/// - An Account Administrator creates and revokes tokens of its
///   organization's users; a Provider (Account) Administrator of provider
///   users, and of users of tenants that delegate user management.
/// - Nobody downloads another user's token.
pub fn may_manage_tokens(
    actor: &Actor,
    organization: &Organization,
    owner: &TokenOwner,
    action: TokenAction,
) -> Result<(), Denied> {
    may_act_in(actor, organization)?;
    if action != TokenAction::Revoke {
        // Revoking stays possible: it is how such a user's old tokens go.
        token_authentication_enabled(&owner.roles)?;
    }
    let scoped_here = owner.home == organization.id || owner.owner_of_effective;
    if !scoped_here {
        return Err(Denied(format!(
            "The user does not belong to organization {}, so it cannot hold tokens there.",
            organization.id
        )));
    }
    if owner.user == actor.user {
        return Ok(());
    }
    if action == TokenAction::Download {
        return Err(Denied(
            "Nobody downloads another user's token; its owner must download it.".into(),
        ));
    }
    let account_admin_of_owner = actor.home_kind == OrgKind::Tenant
        && actor.holds(Role::AccountAdministrator)
        && owner.home == actor.home;
    let provider_manager_of_owner = actor.is_provider_manager()
        && (owner.home == actor.home
            || (organization.id == owner.home
                && organization.provider == Some(actor.home)
                && organization.delegates_user_management));
    if account_admin_of_owner || provider_manager_of_owner {
        Ok(())
    } else {
        Err(Denied("You may manage only your own tokens here.".into()))
    }
}
