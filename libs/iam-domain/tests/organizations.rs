//! Given/when/then tests of the organization aggregate.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use iam_domain::organization::{self, OrgCommand, OrgEvent};
use iam_domain::{DomainError, OrgId, OrgKind, Role, UserId};
use uuid::Uuid;

fn id(n: u128) -> OrgId {
    OrgId::new(Uuid::from_u128(n))
}

fn tenant_created() -> OrgEvent {
    OrgEvent::OrganizationCreated {
        id: id(2),
        name: "Acme".into(),
        kind: OrgKind::Tenant,
        provider: Some(id(1)),
        delegates_user_management: true,
        at: Utc.timestamp_opt(0, 0).single().unwrap(),
    }
}

fn given(events: &[OrgEvent], command: OrgCommand) -> Result<Vec<OrgEvent>, DomainError> {
    let state = events.iter().fold(None, organization::apply);
    organization::decide(state.as_ref(), command)
}

fn add(user: u128, home: u128, role: Role) -> OrgCommand {
    OrgCommand::AddMember {
        user: UserId::new(Uuid::from_u128(user)),
        user_organization: id(home),
        user_role: role,
        at: Utc.timestamp_opt(1, 0).single().unwrap(),
    }
}

#[test]
fn a_tenant_is_created_under_its_provider() {
    let events = given(
        &[],
        OrgCommand::CreateTenant {
            id: id(2),
            name: " Acme ".into(),
            provider: id(1),
            delegates_user_management: true,
            at: Utc.timestamp_opt(0, 0).single().unwrap(),
        },
    )
    .unwrap();
    assert_eq!(events, [tenant_created()]);
}

#[test]
fn a_provider_administrator_added_to_a_tenant_becomes_its_organization_owner_once() {
    let events = given(&[tenant_created()], add(7, 1, Role::ProviderAdministrator)).unwrap();
    assert!(matches!(
        events[..],
        [OrgEvent::OrganizationMemberAdded {
            role: Role::OrganizationOwner,
            ..
        }]
    ));
    let again = given(
        &[tenant_created(), events[0].clone()],
        add(7, 1, Role::ProviderAdministrator),
    )
    .unwrap();
    assert!(again.is_empty(), "adding a member twice changes nothing");
}

#[test]
fn only_provider_managers_of_the_tenants_own_provider_can_be_added() {
    assert!(
        given(
            &[tenant_created()],
            add(7, 1, Role::ProviderBusinessSpecialist)
        )
        .is_err()
    );
    assert!(given(&[tenant_created()], add(7, 9, Role::ProviderAdministrator)).is_err());
    assert_eq!(
        given(&[], add(7, 1, Role::ProviderAdministrator)),
        Err(DomainError::NotFound("organization"))
    );
}
