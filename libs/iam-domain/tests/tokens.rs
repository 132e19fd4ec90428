//! Given/when/then tests of API tokens, and their permission matrix for
//! every pair of roles.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use iam_domain::policy::{Actor, TokenAction, TokenOwner, may_manage_tokens};
use iam_domain::token::{self, TokenCommand, TokenEvent, TokenStatus};
use iam_domain::{DomainError, OrgId, OrgKind, Organization, Role, TokenId, UserId};
use uuid::Uuid;

fn at(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap() + Duration::days(day)
}

fn create(lifetime_days: i64) -> TokenCommand {
    TokenCommand::Create {
        id: TokenId::new(Uuid::from_u128(9)),
        user: UserId::new(Uuid::from_u128(1)),
        organization: OrgId::new(Uuid::from_u128(2)),
        name: "ci".into(),
        description: "deploys".into(),
        lifetime_days,
        day: Duration::days(1),
        at: at(0),
    }
}

fn given(events: &[TokenEvent], command: TokenCommand) -> Result<Vec<TokenEvent>, DomainError> {
    let state = events.iter().fold(None, token::apply);
    token::decide(state.as_ref(), command)
}

fn created() -> Vec<TokenEvent> {
    given(&[], create(30)).unwrap()
}

fn downloaded() -> Vec<TokenEvent> {
    let mut events = created();
    events.extend(
        given(
            &events,
            TokenCommand::Download {
                secret_hash: "ab".repeat(32),
                at: at(1),
            },
        )
        .unwrap(),
    );
    events
}

#[test]
fn a_token_is_created_pending_with_its_expiry() {
    let events = created();
    assert!(
        matches!(&events[..], [TokenEvent::TokenCreated { expires_at, .. }] if *expires_at == at(30))
    );
    let token = events.iter().fold(None, token::apply).unwrap();
    assert_eq!(token.status, TokenStatus::Pending);
}

#[test]
fn a_lifetime_outside_1_to_365_days_is_refused() {
    for days in [0, -1, 366] {
        assert!(
            matches!(given(&[], create(days)), Err(DomainError::Invalid(_))),
            "{days}"
        );
    }
    assert!(given(&[], create(1)).is_ok() && given(&[], create(365)).is_ok());
}

#[test]
fn the_first_download_enables_it_and_a_second_is_refused() {
    let events = downloaded();
    let token = events.iter().fold(None, token::apply).unwrap();
    assert_eq!(
        (token.status, token.secret_hash.as_deref().map(str::len)),
        (TokenStatus::Enabled, Some(64))
    );
    let again = given(
        &events,
        TokenCommand::Download {
            secret_hash: "cd".repeat(32),
            at: at(2),
        },
    );
    assert_eq!(again, Err(DomainError::AlreadyDownloaded));
    assert!(
        DomainError::AlreadyDownloaded
            .to_string()
            .contains("already downloaded")
    );
}

#[test]
fn revoking_twice_changes_nothing_and_a_revoked_token_cannot_be_downloaded() {
    let mut events = created();
    events.extend(given(&events, TokenCommand::Revoke { at: at(1) }).unwrap());
    assert_eq!(
        given(&events, TokenCommand::Revoke { at: at(2) }),
        Ok(vec![])
    );
    assert!(
        given(
            &events,
            TokenCommand::Download {
                secret_hash: "ab".repeat(32),
                at: at(2)
            }
        )
        .is_err()
    );
}

#[test]
fn a_token_is_expired_once_its_lifetime_is_over_whatever_its_status() {
    let events = downloaded();
    let token = events.iter().fold(None, token::apply).unwrap();
    assert_eq!(token.status_at(at(29)), TokenStatus::Enabled);
    assert_eq!(
        token.status_at(at(30)),
        TokenStatus::Expired,
        "before any event records it"
    );
    assert_eq!(
        given(&events, TokenCommand::Expire { at: at(29) }),
        Ok(vec![]),
        "not before its time"
    );
    let expired = given(&events, TokenCommand::Expire { at: at(31) }).unwrap();
    assert_eq!(expired, [TokenEvent::TokenExpired { at: at(31) }]);
    let mut events = events;
    events.extend(expired);
    assert_eq!(
        given(&events, TokenCommand::Expire { at: at(32) }),
        Ok(vec![]),
        "the sweep is idempotent"
    );
    let mut revoked = created();
    revoked.extend(given(&revoked, TokenCommand::Revoke { at: at(1) }).unwrap());
    assert_eq!(
        given(&revoked, TokenCommand::Expire { at: at(40) })
            .unwrap()
            .len(),
        1,
        "revoked tokens expire too"
    );
    assert!(
        given(
            &created(),
            TokenCommand::Download {
                secret_hash: "ab".repeat(32),
                at: at(30)
            }
        )
        .is_err()
    );
}

#[test]
fn the_log_holds_only_the_hash_of_a_secret() {
    let json = serde_json::to_string(&downloaded()).unwrap();
    assert!(json.contains("secretHash"));
    assert!(!json.contains("iam_"));
}

// The permission matrix.

const PROVIDER: u128 = 1;
const TENANT: u128 = 2;
const TENANT_ROLES: [Role; 5] = [
    Role::AccountAdministrator,
    Role::VirtualInfrastructureAdministrator,
    Role::NetworkAdministrator,
    Role::ReadOnlyAdministrator,
    Role::EndUser,
];
const PROVIDER_ROLES: [Role; 3] = [
    Role::ProviderAdministrator,
    Role::ProviderAccountAdministrator,
    Role::ProviderBusinessSpecialist,
];
/// The one combination of roles a user may hold.
const VIA_NA: [Role; 2] = [
    Role::VirtualInfrastructureAdministrator,
    Role::NetworkAdministrator,
];

/// Every role set a user can hold: each role alone, then VIA + NA.
fn role_sets() -> Vec<Vec<Role>> {
    TENANT_ROLES
        .iter()
        .chain(&PROVIDER_ROLES)
        .map(|role| vec![*role])
        .chain([VIA_NA.to_vec()])
        .collect()
}

fn org(id: u128, delegates: bool) -> Organization {
    Organization {
        id: OrgId::new(Uuid::from_u128(id)),
        name: String::new(),
        kind: if id == PROVIDER {
            OrgKind::Provider
        } else {
            OrgKind::Tenant
        },
        provider: (id != PROVIDER).then(|| OrgId::new(Uuid::from_u128(PROVIDER))),
        delegates_user_management: delegates,
        members: BTreeSet::new(),
    }
}

fn home_of(roles: &[Role]) -> u128 {
    if PROVIDER_ROLES.contains(&roles[0]) {
        PROVIDER
    } else {
        TENANT
    }
}

fn actor(roles: &[Role]) -> Actor {
    Actor {
        user: UserId::new(Uuid::from_u128(10)),
        home: OrgId::new(Uuid::from_u128(home_of(roles))),
        home_kind: if home_of(roles) == PROVIDER {
            OrgKind::Provider
        } else {
            OrgKind::Tenant
        },
        roles: roles.to_vec(),
    }
}

/// What `actor` may do to `owner`'s tokens in `organization`: `C` create,
/// `R` revoke, `D` download, in that order; `-` refused.
fn letters(actor: &Actor, organization: &Organization, owner: &TokenOwner) -> String {
    [
        (TokenAction::Create, 'C'),
        (TokenAction::Revoke, 'R'),
        (TokenAction::Download, 'D'),
    ]
    .iter()
    .map(|(action, letter)| {
        if may_manage_tokens(actor, organization, owner, *action).is_ok() {
            *letter
        } else {
            '-'
        }
    })
    .collect()
}

/// The rights of a user holding `actor_roles` over the tokens of a user
/// holding `owner_roles` (itself when `same_user`), scoped to the owner's
/// home organization.
fn rights(actor_roles: &[Role], owner_roles: &[Role], same_user: bool, delegates: bool) -> String {
    let actor = actor(actor_roles);
    let owner = TokenOwner {
        user: if same_user {
            actor.user
        } else {
            UserId::new(Uuid::from_u128(20))
        },
        home: OrgId::new(Uuid::from_u128(home_of(owner_roles))),
        roles: owner_roles.to_vec(),
        owner_of_effective: false,
    };
    letters(&actor, &org(home_of(owner_roles), delegates), &owner)
}

#[test]
fn every_user_manages_its_own_tokens_unless_its_role_has_no_token_authentication() {
    for roles in role_sets() {
        let expected = match roles[..] {
            // Such a user's old tokens (from before a role change) can
            // still be revoked; nothing else.
            [Role::ReadOnlyAdministrator | Role::ProviderBusinessSpecialist] => "-R-",
            _ => "CRD",
        };
        assert_eq!(
            rights(&roles, &roles, true, true),
            expected,
            "{roles:?} for itself"
        );
    }
}

#[test]
fn the_matrix_holds_for_every_pair_of_role_sets() {
    // Rows: the actor's roles; columns: the other user's roles, in the order
    // AA, VIA, NA, ROA, EU (tenant users), PA, PAA, PBS (provider users),
    // then VIA + NA (a tenant user). The tenant delegates user management to
    // the provider.
    // Read-Only Administrators and Provider Business Specialists cannot
    // have tokens, but their old ones (from before a role change) can be
    // revoked.
    let manager_of_tenant = [
        "CR-", "CR-", "CR-", "-R-", "CR-", "---", "---", "---", "CR-",
    ];
    let manager_of_all = [
        "CR-", "CR-", "CR-", "-R-", "CR-", "CR-", "CR-", "-R-", "CR-",
    ];
    let nobody = ["---"; 9];
    let delegating: [(&[Role], [&str; 9]); 9] = [
        (&[Role::AccountAdministrator], manager_of_tenant),
        (&[Role::VirtualInfrastructureAdministrator], nobody),
        (&[Role::NetworkAdministrator], nobody),
        (&[Role::ReadOnlyAdministrator], nobody),
        (&[Role::EndUser], nobody),
        (&[Role::ProviderAdministrator], manager_of_all),
        (&[Role::ProviderAccountAdministrator], manager_of_all),
        (&[Role::ProviderBusinessSpecialist], nobody),
        (&VIA_NA, nobody),
    ];
    let owners = role_sets();
    for (actor, row) in delegating {
        for (owner, expected) in owners.iter().zip(row) {
            assert_eq!(
                rights(actor, owner, false, true),
                expected,
                "{actor:?} → {owner:?}"
            );
            // A tenant that does not delegate: provider administrators lose its users.
            let without_delegation = if home_of(actor) == PROVIDER && home_of(owner) == TENANT {
                "---"
            } else {
                expected
            };
            assert_eq!(
                rights(actor, owner, false, false),
                without_delegation,
                "{actor:?} → {owner:?}, not delegating"
            );
        }
    }
}

#[test]
fn a_tenant_user_has_no_rights_over_the_tokens_of_another_tenant() {
    let administrator = actor(&[Role::AccountAdministrator]);
    let other_tenant = org(3, true);
    let owner = TokenOwner {
        user: UserId::new(Uuid::from_u128(20)),
        home: other_tenant.id,
        roles: vec![Role::EndUser],
        owner_of_effective: false,
    };
    assert_eq!(letters(&administrator, &other_tenant, &owner), "---");
    // Nor from its own organization over that other tenant's user.
    let home = org(TENANT, true);
    assert_eq!(letters(&administrator, &home, &owner), "---");
}

#[test]
fn a_provider_administrator_holds_tokens_in_a_tenant_only_as_its_organization_owner() {
    let actor = Actor {
        user: UserId::new(Uuid::from_u128(10)),
        home: OrgId::new(Uuid::from_u128(PROVIDER)),
        home_kind: OrgKind::Provider,
        roles: vec![Role::ProviderAdministrator],
    };
    let mut owner = TokenOwner {
        user: actor.user,
        home: actor.home,
        roles: actor.roles.clone(),
        owner_of_effective: false,
    };
    let tenant = org(TENANT, true);
    assert!(may_manage_tokens(&actor, &tenant, &owner, TokenAction::Create).is_err());
    owner.owner_of_effective = true;
    assert!(may_manage_tokens(&actor, &tenant, &owner, TokenAction::Create).is_ok());
}

#[test]
fn the_refusal_for_roles_without_token_authentication_says_so() {
    let actor = Actor {
        user: UserId::new(Uuid::from_u128(10)),
        home: OrgId::new(Uuid::from_u128(TENANT)),
        home_kind: OrgKind::Tenant,
        roles: vec![Role::ReadOnlyAdministrator],
    };
    let owner = TokenOwner {
        user: actor.user,
        home: actor.home,
        roles: actor.roles.clone(),
        owner_of_effective: false,
    };
    let denied =
        may_manage_tokens(&actor, &org(TENANT, true), &owner, TokenAction::Create).unwrap_err();
    assert_eq!(
        denied.0,
        "Token authentication is not enabled for the role Read-Only Administrator; sign in with a \
         password, or ask an administrator for a role that allows API tokens."
    );
}
