//! The role catalog and the rule of which roles a user may hold together.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::organization::OrgKind;

/// Every role the service knows. The order is the catalog's listing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Tenant: user management and account settings.
    AccountAdministrator,
    /// Tenant: virtual data centers and VMs; combinable with Network Administrator.
    VirtualInfrastructureAdministrator,
    /// Tenant: networks; combinable with Virtual Infrastructure Administrator.
    NetworkAdministrator,
    /// Tenant: reads everything, changes nothing.
    ReadOnlyAdministrator,
    /// Tenant: creates and manages VMs.
    EndUser,
    /// Provider: manages the provider, its tenants and their users.
    ProviderAdministrator,
    /// Provider: manages provider users and tenant accounts.
    ProviderAccountAdministrator,
    /// Provider: reads tenants and users.
    ProviderBusinessSpecialist,
    /// Held in a tenant by a provider (account) administrator added to it.
    OrganizationOwner,
}

/// What the catalog says of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleEntry {
    /// The role.
    pub role: Role,
    /// The vCloud Air id, stable across restarts and installations.
    pub id: &'static str,
    /// The display name, as clients send it.
    pub name: &'static str,
    /// What it allows.
    pub description: &'static str,
    /// The vCloud Director bundle key.
    pub bundle_key: &'static str,
    /// The uuid of the `urn:vcloud:role:<uuid>` form, stable everywhere.
    pub urn_uuid: Uuid,
    /// Which kind of organization the role belongs to.
    pub scope: RoleScope,
}

/// Where a role can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleScope {
    /// Held by tenant users in their own organization.
    Tenant,
    /// Held by provider users in the provider organization.
    Provider,
    /// Held in a tenant by a provider user who is a member of it.
    TenantMembership,
}

const CATALOG: [RoleEntry; 9] = [
    RoleEntry {
        role: Role::AccountAdministrator,
        id: "2",
        name: "Account Administrator",
        description: "Allows user management and account settings.",
        bundle_key: "ROLE_ACCOUNT_ADMINISTRATOR",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c01),
        scope: RoleScope::Tenant,
    },
    RoleEntry {
        role: Role::VirtualInfrastructureAdministrator,
        id: "3",
        name: "Virtual Infrastructure Administrator",
        description: "Allows management of virtual data centers, VMs and their storage.",
        bundle_key: "ROLE_VIRTUAL_INFRASTRUCTURE_ADMINISTRATOR",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c02),
        scope: RoleScope::Tenant,
    },
    RoleEntry {
        role: Role::NetworkAdministrator,
        id: "4",
        name: "Network Administrator",
        description: "Allows management of networks, gateways and firewall rules.",
        bundle_key: "ROLE_NETWORK_ADMINISTRATOR",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c03),
        scope: RoleScope::Tenant,
    },
    RoleEntry {
        role: Role::ReadOnlyAdministrator,
        id: "5",
        name: "Read-Only Administrator",
        description: "Allows viewing of account settings, users and VMs without changing them.",
        bundle_key: "ROLE_READ_ONLY_ADMINISTRATOR",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c04),
        scope: RoleScope::Tenant,
    },
    RoleEntry {
        role: Role::EndUser,
        id: "6",
        name: "End User",
        description: "Allows creation and management of VMs.",
        bundle_key: "ROLE_END_USER",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c05),
        scope: RoleScope::Tenant,
    },
    RoleEntry {
        role: Role::ProviderAdministrator,
        id: "101",
        name: "Provider Administrator",
        description: "Allows management of the provider, its tenant organizations and their users.",
        bundle_key: "ROLE_PROVIDER_ADMINISTRATOR",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c65),
        scope: RoleScope::Provider,
    },
    RoleEntry {
        role: Role::ProviderAccountAdministrator,
        id: "102",
        name: "Provider Account Administrator",
        description: "Allows management of provider users and of tenant organizations' users.",
        bundle_key: "ROLE_PROVIDER_ACCOUNT_ADMINISTRATOR",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c66),
        scope: RoleScope::Provider,
    },
    RoleEntry {
        role: Role::ProviderBusinessSpecialist,
        id: "103",
        name: "Provider Business Specialist",
        description: "Allows viewing of tenant organizations and their users.",
        bundle_key: "ROLE_PROVIDER_BUSINESS_SPECIALIST",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c67),
        scope: RoleScope::Provider,
    },
    RoleEntry {
        role: Role::OrganizationOwner,
        id: "100",
        name: "Organization Owner",
        description: "Allows user management in a tenant organization, held by a provider administrator added to it.",
        bundle_key: "ROLE_ORGANIZATION_OWNER",
        urn_uuid: Uuid::from_u128(0x6c2b1f0e_53a4_4c5e_9a8e_1d7f3b2a4c64),
        scope: RoleScope::TenantMembership,
    },
];

impl Role {
    /// Every role, in catalog order.
    pub fn all() -> impl Iterator<Item = Role> {
        CATALOG.iter().map(|entry| entry.role)
    }

    /// The catalog entry of this role.
    pub fn entry(self) -> &'static RoleEntry {
        // The catalog lists every variant exactly once (tested below).
        CATALOG
            .iter()
            .find(|entry| entry.role == self)
            .unwrap_or(&CATALOG[0])
    }

    /// The role a display name names (exactly, as the vCloud Air API spells it).
    pub fn from_name(name: &str) -> Option<Role> {
        CATALOG
            .iter()
            .find(|entry| entry.name == name.trim())
            .map(|entry| entry.role)
    }

    /// The role an id (`"6"`) or `urn:vcloud:role:<uuid>` names.
    pub fn from_id(id: &str) -> Option<Role> {
        let id = id.trim();
        let urn = id
            .strip_prefix("urn:vcloud:role:")
            .and_then(|uuid| Uuid::parse_str(uuid).ok());
        CATALOG
            .iter()
            .find(|entry| entry.id == id || Some(entry.urn_uuid) == urn)
            .map(|entry| entry.role)
    }

    /// The roles users of an organization of `kind` may be given.
    pub fn assignable_in(kind: OrgKind) -> impl Iterator<Item = Role> {
        let scope = match kind {
            OrgKind::Tenant => RoleScope::Tenant,
            OrgKind::Provider => RoleScope::Provider,
        };
        CATALOG
            .iter()
            .filter(move |e| e.scope == scope)
            .map(|e| e.role)
    }

    /// The roles held in an organization of `kind`: those its users may be
    /// given and, in a tenant, Organization Owner (held through membership).
    pub fn held_in(kind: OrgKind) -> impl Iterator<Item = Role> {
        CATALOG
            .iter()
            .filter(move |e| match kind {
                OrgKind::Provider => e.scope == RoleScope::Provider,
                OrgKind::Tenant => e.scope != RoleScope::Provider,
            })
            .map(|e| e.role)
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        self.entry().name
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The roles one user holds in its home organization: never empty, and a
/// combination the rules allow. Once you hold one, it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleSet(BTreeSet<Role>);

/// Why a set of roles was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleSetError {
    /// No role at all.
    #[error("a user must hold at least one role")]
    Empty,
    /// A name that is not a role.
    #[error("`{0}` is not a role; the roles are: {1}")]
    Unknown(String, String),
    /// A role that users of this kind of organization cannot hold.
    #[error("{role} cannot be given to a user of a {kind} organization; its roles are: {allowed}")]
    NotAssignable {
        /// The role.
        role: Role,
        /// The kind of organization.
        kind: OrgKind,
        /// What it allows instead.
        allowed: String,
    },
    /// Roles that exclude each other.
    #[error("{} cannot be combined; only Network Administrator and Virtual Infrastructure Administrator may be held together", list(.0))]
    Conflict(Vec<Role>),
}

fn list(roles: &[Role]) -> String {
    let names: Vec<&str> = roles.iter().map(|role| role.name()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl RoleSet {
    /// Parses role names for a user of an organization of `kind`:
    /// tenant users hold one tenant role, or Network Administrator together
    /// with Virtual Infrastructure Administrator; provider users hold exactly
    /// one provider role. Repeated names count once.
    pub fn parse<S: AsRef<str>>(kind: OrgKind, names: &[S]) -> Result<Self, RoleSetError> {
        let mut roles = BTreeSet::new();
        for name in names {
            let name = name.as_ref();
            let role = Role::from_name(name).ok_or_else(|| {
                RoleSetError::Unknown(
                    name.to_owned(),
                    list(&Role::assignable_in(kind).collect::<Vec<_>>()),
                )
            })?;
            roles.insert(role);
        }
        Self::from_roles(kind, roles)
    }

    /// Checks a set of roles for a user of an organization of `kind`.
    pub fn from_roles(kind: OrgKind, roles: BTreeSet<Role>) -> Result<Self, RoleSetError> {
        if roles.is_empty() {
            return Err(RoleSetError::Empty);
        }
        if let Some(&role) = roles
            .iter()
            .find(|role| !Role::assignable_in(kind).any(|r| r == **role))
        {
            return Err(RoleSetError::NotAssignable {
                role,
                kind,
                allowed: list(&Role::assignable_in(kind).collect::<Vec<_>>()),
            });
        }
        let allowed_pair = [
            Role::VirtualInfrastructureAdministrator,
            Role::NetworkAdministrator,
        ];
        if roles.len() > 1 && !(roles.len() == 2 && allowed_pair.iter().all(|r| roles.contains(r)))
        {
            return Err(RoleSetError::Conflict(roles.into_iter().collect()));
        }
        Ok(Self(roles))
    }

    /// The roles after a user holding `current` joins `role` (membership of
    /// the role's group), and the roles it was moved out of: joining an
    /// exclusive role displaces every other; Network Administrator and
    /// Virtual Infrastructure Administrator keep each other.
    pub fn joining(
        kind: OrgKind,
        current: &[Role],
        role: Role,
    ) -> Result<(Self, Vec<Role>), RoleSetError> {
        let pair = [
            Role::VirtualInfrastructureAdministrator,
            Role::NetworkAdministrator,
        ];
        let (kept, displaced): (Vec<Role>, Vec<Role>) = current
            .iter()
            .partition(|held| **held == role || (pair.contains(held) && pair.contains(&role)));
        let mut roles: BTreeSet<Role> = kept.into_iter().collect();
        roles.insert(role);
        Ok((Self::from_roles(kind, roles)?, displaced))
    }

    /// The roles after a user holding `current` leaves `role`, and whether
    /// it was given End User because no role was left.
    pub fn leaving(
        kind: OrgKind,
        current: &[Role],
        role: Role,
    ) -> Result<(Self, bool), RoleSetError> {
        let mut roles: BTreeSet<Role> = current.iter().copied().filter(|r| *r != role).collect();
        let defaulted = roles.is_empty();
        if defaulted {
            if kind != OrgKind::Tenant {
                return Err(RoleSetError::Empty);
            }
            roles.insert(Role::EndUser);
        }
        Ok((Self::from_roles(kind, roles)?, defaulted))
    }

    /// The roles, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set holds `role`.
    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT_ROLES: [&str; 5] = [
        "Account Administrator",
        "Virtual Infrastructure Administrator",
        "Network Administrator",
        "Read-Only Administrator",
        "End User",
    ];

    #[test]
    fn joining_an_exclusive_role_displaces_the_others_and_the_pair_stays() {
        use Role::*;
        let tenant = OrgKind::Tenant;
        let (roles, displaced) =
            RoleSet::joining(tenant, &[EndUser], AccountAdministrator).unwrap();
        assert_eq!(roles.iter().collect::<Vec<_>>(), [AccountAdministrator]);
        assert_eq!(displaced, [EndUser]);
        let (roles, displaced) = RoleSet::joining(
            tenant,
            &[VirtualInfrastructureAdministrator],
            NetworkAdministrator,
        )
        .unwrap();
        assert_eq!(
            roles.iter().collect::<Vec<_>>(),
            [VirtualInfrastructureAdministrator, NetworkAdministrator]
        );
        assert!(displaced.is_empty());
        let (roles, displaced) = RoleSet::joining(
            tenant,
            &[VirtualInfrastructureAdministrator, NetworkAdministrator],
            ReadOnlyAdministrator,
        )
        .unwrap();
        assert_eq!(roles.iter().collect::<Vec<_>>(), [ReadOnlyAdministrator]);
        assert_eq!(
            displaced,
            [VirtualInfrastructureAdministrator, NetworkAdministrator]
        );
        assert!(RoleSet::joining(tenant, &[EndUser], ProviderAdministrator).is_err());
    }

    #[test]
    fn leaving_the_last_role_defaults_to_end_user() {
        use Role::*;
        let tenant = OrgKind::Tenant;
        let (roles, defaulted) =
            RoleSet::leaving(tenant, &[AccountAdministrator], AccountAdministrator).unwrap();
        assert_eq!(roles.iter().collect::<Vec<_>>(), [EndUser]);
        assert!(defaulted);
        let (roles, defaulted) = RoleSet::leaving(
            tenant,
            &[VirtualInfrastructureAdministrator, NetworkAdministrator],
            NetworkAdministrator,
        )
        .unwrap();
        assert_eq!(
            roles.iter().collect::<Vec<_>>(),
            [VirtualInfrastructureAdministrator]
        );
        assert!(!defaulted);
        let (_, defaulted) = RoleSet::leaving(tenant, &[EndUser], AccountAdministrator).unwrap();
        assert!(!defaulted);
    }

    #[test]
    fn every_role_is_in_the_catalog_once_with_distinct_ids() {
        let mut ids = BTreeSet::new();
        let mut uuids = BTreeSet::new();
        for role in Role::all() {
            assert_eq!(role.entry().role, role);
            assert!(ids.insert(role.entry().id));
            assert!(uuids.insert(role.entry().urn_uuid));
        }
        assert_eq!(ids.len(), 9);
    }

    #[test]
    fn a_tenant_holds_its_roles_and_organization_owner_a_provider_its_own() {
        let names = |kind| Role::held_in(kind).map(Role::name).collect::<Vec<_>>();
        let mut tenant = TENANT_ROLES.to_vec();
        tenant.push("Organization Owner");
        assert_eq!(names(OrgKind::Tenant), tenant);
        assert_eq!(
            names(OrgKind::Provider),
            [
                "Provider Administrator",
                "Provider Account Administrator",
                "Provider Business Specialist"
            ]
        );
    }

    #[test]
    fn end_user_has_the_documented_id_and_description() {
        let entry = Role::EndUser.entry();
        assert_eq!(
            (entry.id, entry.description),
            ("6", "Allows creation and management of VMs.")
        );
        assert_eq!(
            Role::AccountAdministrator.entry().description,
            "Allows user management and account settings."
        );
    }

    #[test]
    fn of_the_32_subsets_of_tenant_roles_exactly_the_documented_six_are_allowed() {
        let mut allowed = Vec::new();
        for mask in 0u32..32 {
            let names: Vec<&str> = TENANT_ROLES
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, n)| *n)
                .collect();
            if RoleSet::parse(OrgKind::Tenant, &names).is_ok() {
                allowed.push(names);
            }
        }
        assert_eq!(
            allowed,
            vec![
                vec!["Account Administrator"],
                vec!["Virtual Infrastructure Administrator"],
                vec!["Network Administrator"],
                vec![
                    "Virtual Infrastructure Administrator",
                    "Network Administrator"
                ],
                vec!["Read-Only Administrator"],
                vec!["End User"],
            ]
        );
    }

    #[test]
    fn a_conflict_names_the_conflicting_roles() {
        let error =
            RoleSet::parse(OrgKind::Tenant, &["End User", "Account Administrator"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Account Administrator and End User cannot be combined; only Network Administrator and \
             Virtual Infrastructure Administrator may be held together"
        );
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_list_of_roles() {
        let error = RoleSet::parse(OrgKind::Tenant, &["Superuser"]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`Superuser` is not a role; the roles are: Account Administrator")
        );
    }

    #[test]
    fn tenant_users_cannot_hold_provider_roles_or_organization_owner() {
        for name in ["Provider Administrator", "Organization Owner"] {
            let error = RoleSet::parse(OrgKind::Tenant, &[name]).unwrap_err();
            assert!(
                matches!(error, RoleSetError::NotAssignable { .. }),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn provider_users_hold_exactly_one_provider_role() {
        assert!(RoleSet::parse(OrgKind::Provider, &["Provider Business Specialist"]).is_ok());
        assert!(
            RoleSet::parse(
                OrgKind::Provider,
                &["Provider Administrator", "Provider Account Administrator"]
            )
            .is_err()
        );
        assert!(RoleSet::parse(OrgKind::Provider, &["End User"]).is_err());
        assert_eq!(
            RoleSet::parse::<&str>(OrgKind::Provider, &[]),
            Err(RoleSetError::Empty)
        );
    }

    #[test]
    fn roles_are_found_by_id_and_by_urn() {
        assert_eq!(Role::from_id("6"), Some(Role::EndUser));
        let urn = format!(
            "urn:vcloud:role:{}",
            Role::NetworkAdministrator.entry().urn_uuid
        );
        assert_eq!(Role::from_id(&urn), Some(Role::NetworkAdministrator));
        assert_eq!(Role::from_id("urn:vcloud:role:not-a-uuid"), None);
    }
}
