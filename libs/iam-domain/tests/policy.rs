//! The permission policy, as a table: every kind of actor against its home
//! organization, a tenant of its provider, and a foreign organization.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use iam_domain::policy::{
    Actor, UserAction, may_act_in, may_manage_organizations, may_manage_users,
};
use iam_domain::{OrgId, OrgKind, Organization, Role, UserId};
use uuid::Uuid;

const PROVIDER: u128 = 1;
const TENANT: u128 = 2;
const OTHER_TENANT: u128 = 3;
const FOREIGN_PROVIDER: u128 = 4;

fn org(id: u128, kind: OrgKind, provider: Option<u128>, delegates: bool) -> Organization {
    Organization {
        id: OrgId::new(Uuid::from_u128(id)),
        name: format!("org {id}"),
        kind,
        provider: provider.map(|p| OrgId::new(Uuid::from_u128(p))),
        delegates_user_management: delegates,
        members: BTreeSet::new(),
    }
}

fn actor(home: u128, kind: OrgKind, role: Role) -> Actor {
    Actor {
        user: UserId::new(Uuid::from_u128(100)),
        home: OrgId::new(Uuid::from_u128(home)),
        home_kind: kind,
        roles: vec![role],
    }
}

/// `R` read, `W` read and write, `S` read only itself, `-` nothing.
fn rights(actor: &Actor, organization: &Organization) -> char {
    let other = Some(UserId::new(Uuid::from_u128(200)));
    let may = |action| may_manage_users(actor, organization, action, other).is_ok();
    let writes = [UserAction::Create, UserAction::Replace, UserAction::Delete].map(may);
    assert!(
        writes.iter().all(|w| *w == writes[0]),
        "writes are all or nothing"
    );
    match (may(UserAction::Read), writes[0]) {
        (true, true) => 'W',
        (true, false) => 'R',
        (false, true) => panic!("a writer that cannot read"),
        (false, false) => {
            if may_manage_users(actor, organization, UserAction::Read, Some(actor.user)).is_ok() {
                'S'
            } else {
                '-'
            }
        }
    }
}

#[test]
fn the_user_permission_table_holds_for_every_actor_and_organization() {
    let provider = org(PROVIDER, OrgKind::Provider, None, false);
    let delegating = org(TENANT, OrgKind::Tenant, Some(PROVIDER), true);
    let not_delegating = org(OTHER_TENANT, OrgKind::Tenant, Some(PROVIDER), false);
    let foreign = org(FOREIGN_PROVIDER, OrgKind::Provider, None, false);
    //                                                     home  delegating  not-delegating  foreign
    let table: [(Actor, [char; 4]); 8] = [
        (
            actor(TENANT, OrgKind::Tenant, Role::AccountAdministrator),
            ['W', 'W', '-', '-'],
        ),
        (
            actor(TENANT, OrgKind::Tenant, Role::ReadOnlyAdministrator),
            ['R', 'R', '-', '-'],
        ),
        (
            actor(TENANT, OrgKind::Tenant, Role::EndUser),
            ['S', 'S', '-', '-'],
        ),
        (
            actor(
                TENANT,
                OrgKind::Tenant,
                Role::VirtualInfrastructureAdministrator,
            ),
            ['S', 'S', '-', '-'],
        ),
        (
            actor(TENANT, OrgKind::Tenant, Role::NetworkAdministrator),
            ['S', 'S', '-', '-'],
        ),
        (
            actor(PROVIDER, OrgKind::Provider, Role::ProviderAdministrator),
            ['W', 'W', 'R', '-'],
        ),
        (
            actor(
                PROVIDER,
                OrgKind::Provider,
                Role::ProviderAccountAdministrator,
            ),
            ['W', 'W', 'R', '-'],
        ),
        (
            actor(
                PROVIDER,
                OrgKind::Provider,
                Role::ProviderBusinessSpecialist,
            ),
            ['R', 'R', 'R', '-'],
        ),
    ];
    for (actor, expected) in table {
        let home = if actor.home_kind == OrgKind::Provider {
            &provider
        } else {
            &delegating
        };
        let got = [
            rights(&actor, home),
            rights(&actor, &delegating),
            rights(&actor, &not_delegating),
            rights(&actor, &foreign),
        ];
        assert_eq!(got, expected, "{:?}", actor.roles);
    }
}

#[test]
fn tenant_users_may_name_only_their_own_organization() {
    let tenant_admin = actor(TENANT, OrgKind::Tenant, Role::AccountAdministrator);
    assert!(
        may_act_in(
            &tenant_admin,
            &org(TENANT, OrgKind::Tenant, Some(PROVIDER), true)
        )
        .is_ok()
    );
    let refusal = may_act_in(
        &tenant_admin,
        &org(OTHER_TENANT, OrgKind::Tenant, Some(PROVIDER), true),
    );
    assert!(
        refusal
            .unwrap_err()
            .to_string()
            .contains("tenant users may name only their own organization")
    );
}

#[test]
fn provider_users_act_only_in_tenants_of_their_own_provider() {
    let admin = actor(PROVIDER, OrgKind::Provider, Role::ProviderAdministrator);
    assert!(may_act_in(&admin, &org(TENANT, OrgKind::Tenant, Some(PROVIDER), false)).is_ok());
    assert!(
        may_act_in(
            &admin,
            &org(OTHER_TENANT, OrgKind::Tenant, Some(FOREIGN_PROVIDER), true)
        )
        .is_err()
    );
    assert!(
        may_act_in(
            &admin,
            &org(FOREIGN_PROVIDER, OrgKind::Provider, None, false)
        )
        .is_err()
    );
}

#[test]
fn only_provider_administrators_manage_organizations() {
    assert!(
        may_manage_organizations(&actor(
            PROVIDER,
            OrgKind::Provider,
            Role::ProviderAdministrator
        ))
        .is_ok()
    );
    for (home, kind, role) in [
        (
            PROVIDER,
            OrgKind::Provider,
            Role::ProviderAccountAdministrator,
        ),
        (
            PROVIDER,
            OrgKind::Provider,
            Role::ProviderBusinessSpecialist,
        ),
        (TENANT, OrgKind::Tenant, Role::AccountAdministrator),
    ] {
        assert!(
            may_manage_organizations(&actor(home, kind, role)).is_err(),
            "{role}"
        );
    }
}
