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

/// Whether `actor` may make the change `events` (decided for `target`, or
/// for a new user when `None`) to an account: only a Provider Administrator
/// grants or removes Provider Administrator or changes a Provider
/// Administrator's account, and nobody changes its own roles or state.
/// Call it with the events a command decided, whatever the dialect that
/// asked: a role given by a PUT, a PATCH or a role group's membership is
/// the same `UserRolesChanged`.
pub fn may_change_account(
    actor: &Actor,
    target: Option<&crate::user::User>,
    events: &[crate::user::UserEvent],
) -> Result<(), Denied> {
    use crate::user::UserEvent;
    let held = |roles: &[Role]| roles.contains(&Role::ProviderAdministrator);
    let was_provider_administrator = target.is_some_and(|user| held(&user.roles));
    let touches_provider_administrator = was_provider_administrator
        || events.iter().any(|event| match event {
            UserEvent::UserCreated { roles, .. } | UserEvent::UserRolesChanged { roles, .. } => {
                held(roles) != was_provider_administrator
            }
            _ => false,
        });
    if touches_provider_administrator && !actor.holds(Role::ProviderAdministrator) {
        return Err(Denied(
            "Only a Provider Administrator may grant or remove Provider Administrator, or change a \
             Provider Administrator's account."
                .into(),
        ));
    }
    let own = target.is_some_and(|user| user.id == actor.user);
    let roles_or_state = events.iter().any(|event| {
        matches!(
            event,
            UserEvent::UserRolesChanged { .. } | UserEvent::UserStateChanged { .. }
        )
    });
    if own && roles_or_state {
        return Err(Denied(
            "You cannot change your own roles or state: ask another administrator.".into(),
        ));
    }
    Ok(())
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

/// The names of the rights `role` grants, as `/api/iam/Roles` lists them
/// (vca-cli shows them). They are read off the rules above, by asking each
/// rule about a user who holds only `role`, so they cannot disagree with
/// what the service enforces.
pub fn rights_of(role: Role) -> Vec<&'static str> {
    use crate::roles::RoleScope;
    use uuid::Uuid;
    let home = OrgId::new(Uuid::from_u128(1));
    let tenant_id = OrgId::new(Uuid::from_u128(2));
    let home_kind = match role.entry().scope {
        RoleScope::Provider => OrgKind::Provider,
        RoleScope::Tenant => OrgKind::Tenant,
        // A provider user in a tenant: what it may do is its provider role's.
        RoleScope::TenantMembership => {
            return vec!["Act in This Tenant as Its Provider Role Allows"];
        }
    };
    let actor = Actor {
        user: UserId::new(Uuid::from_u128(3)),
        home,
        home_kind,
        roles: vec![role],
    };
    let organization = |id, kind, provider| Organization {
        id,
        name: String::new(),
        kind,
        provider,
        delegates_user_management: true,
        members: Default::default(),
    };
    let own = organization(home, home_kind, None);
    let tenant = organization(tenant_id, OrgKind::Tenant, Some(home));
    let other = Some(UserId::new(Uuid::from_u128(4)));
    let users = |organization: &Organization, action| {
        may_manage_users(&actor, organization, action, other).is_ok()
    };
    let mut rights = Vec::new();
    for (action, right) in [
        (UserAction::Read, "View Users"),
        (UserAction::Create, "Create Users"),
        (
            UserAction::Replace,
            "Edit Users, Set and Reset Their Passwords",
        ),
        (UserAction::Delete, "Delete Users"),
    ] {
        if users(&own, action) {
            rights.push(right);
        }
    }
    rights.push("Change Own Password");
    if home_kind == OrgKind::Provider {
        if users(&tenant, UserAction::Read) {
            rights.push("View Tenant Users");
        }
        if users(&tenant, UserAction::Create) {
            rights.push("Manage Users of Tenants That Delegate It");
        }
    }
    if may_audit(&actor, &own).is_ok() {
        rights.push("View Audit");
    }
    if token_authentication_enabled(&actor.roles).is_ok() {
        rights.push("Use Own API Tokens");
    }
    if may_manage_organizations(&actor).is_ok() {
        rights.push("Manage Tenant Organizations");
    }
    if actor.holds(Role::ProviderAdministrator) {
        rights.push("Grant Provider Administrator");
    }
    rights
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::user::{Profile, User, UserEvent, UserState};
    use crate::{Email, UserName};

    #[test]
    fn rights_follow_the_rules() {
        let admin = rights_of(Role::AccountAdministrator);
        for right in [
            "View Users",
            "Create Users",
            "Delete Users",
            "View Audit",
            "Use Own API Tokens",
        ] {
            assert!(admin.contains(&right), "{right} in {admin:?}");
        }
        let user = rights_of(Role::EndUser);
        assert!(
            !user.contains(&"View Users") && !user.contains(&"Create Users"),
            "{user:?}"
        );
        assert!(user.contains(&"Change Own Password") && user.contains(&"Use Own API Tokens"));
        let reader = rights_of(Role::ReadOnlyAdministrator);
        assert!(reader.contains(&"View Users") && reader.contains(&"View Audit"));
        assert!(!reader.contains(&"Create Users") && !reader.contains(&"Use Own API Tokens"));
        let provider = rights_of(Role::ProviderAdministrator);
        for right in [
            "Manage Tenant Organizations",
            "Grant Provider Administrator",
            "Manage Users of Tenants That Delegate It",
        ] {
            assert!(provider.contains(&right), "{right} in {provider:?}");
        }
        let account = rights_of(Role::ProviderAccountAdministrator);
        assert!(
            !account.contains(&"Manage Tenant Organizations")
                && !account.contains(&"Grant Provider Administrator")
        );
    }

    fn actor(id: u128, role: Role) -> Actor {
        Actor {
            user: UserId::new(Uuid::from_u128(id)),
            home: OrgId::new(Uuid::from_u128(1)),
            home_kind: match role.entry().scope {
                crate::RoleScope::Provider => OrgKind::Provider,
                _ => OrgKind::Tenant,
            },
            roles: vec![role],
        }
    }

    fn user(id: u128, role: Role) -> User {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 30, 8, 0, 0)
            .single()
            .unwrap();
        User {
            id: UserId::new(Uuid::from_u128(id)),
            organization: OrgId::new(Uuid::from_u128(1)),
            user_name: UserName::parse("someone@example.com").unwrap(),
            email: Email::parse("someone@example.com").unwrap(),
            given_name: "Some".into(),
            family_name: "One".into(),
            state: UserState::Active,
            roles: vec![role],
            created_at: at,
            modified_at: at,
            deleted: false,
            profile: Profile::default(),
            managed: false,
        }
    }

    fn roles_changed(roles: Vec<Role>) -> UserEvent {
        UserEvent::UserRolesChanged {
            roles,
            at: Utc::now(),
            displaced: Vec::new(),
            defaulted: false,
        }
    }

    fn deactivated() -> UserEvent {
        UserEvent::UserStateChanged {
            state: UserState::Inactive,
            at: Utc::now(),
        }
    }

    /// Every role as actor against every role as target: granting Provider
    /// Administrator, taking it away, and any change to a Provider
    /// Administrator's account are a Provider Administrator's alone; nobody
    /// changes its own roles or state.
    #[test]
    fn every_role_against_every_other_for_the_account_rules() {
        const PA: Role = Role::ProviderAdministrator;
        for acting in Role::all() {
            for held in Role::all() {
                let actor = actor(10, acting);
                let other = user(20, held);
                let may_touch_pa = acting == PA;
                let target_is_pa = held == PA;
                // Grant Provider Administrator.
                let grant = may_change_account(&actor, Some(&other), &[roles_changed(vec![PA])]);
                assert_eq!(
                    grant.is_ok(),
                    may_touch_pa,
                    "{acting:?} granting Provider Administrator to {held:?}"
                );
                // Move the target to another role (which removes PA from a PA).
                let moved = may_change_account(
                    &actor,
                    Some(&other),
                    &[roles_changed(vec![Role::ProviderBusinessSpecialist])],
                );
                assert_eq!(
                    moved.is_ok(),
                    !target_is_pa || may_touch_pa,
                    "{acting:?} changing the roles of {held:?}"
                );
                // Any other change to the account, e.g. its state, or its deletion.
                for change in [deactivated(), UserEvent::UserDeleted { at: Utc::now() }] {
                    assert_eq!(
                        may_change_account(&actor, Some(&other), &[change]).is_ok(),
                        !target_is_pa || may_touch_pa,
                        "{acting:?} changing the account of {held:?}"
                    );
                }
                // Its own roles and state: never, whoever it is.
                let own = user(10, acting);
                for change in [roles_changed(vec![held]), deactivated()] {
                    assert!(
                        may_change_account(&actor, Some(&own), &[change]).is_err(),
                        "{acting:?} changing its own roles or state"
                    );
                }
            }
        }
    }

    #[test]
    fn creating_a_provider_administrator_takes_one() {
        let created = |roles: Vec<Role>| UserEvent::UserCreated {
            id: UserId::new(Uuid::from_u128(30)),
            organization: OrgId::new(Uuid::from_u128(1)),
            user_name: "new@example.com".into(),
            email: "new@example.com".into(),
            given_name: "New".into(),
            family_name: "User".into(),
            state: UserState::Active,
            roles,
            at: Utc::now(),
            profile: Profile::default(),
            managed: false,
        };
        let account_admin = actor(10, Role::ProviderAccountAdministrator);
        assert!(
            may_change_account(
                &account_admin,
                None,
                &[created(vec![Role::ProviderAdministrator])]
            )
            .is_err()
        );
        assert!(
            may_change_account(
                &account_admin,
                None,
                &[created(vec![Role::ProviderBusinessSpecialist])]
            )
            .is_ok()
        );
        let provider_admin = actor(10, Role::ProviderAdministrator);
        assert!(
            may_change_account(
                &provider_admin,
                None,
                &[created(vec![Role::ProviderAdministrator])]
            )
            .is_ok()
        );
    }
}
