//! The organization and user read models: built live from domain events,
//! and equal to what a rebuild from the log produces.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use iam_domain::group::GroupEvent;
use iam_domain::organization::OrgEvent;
use iam_domain::token::TokenEvent;
use iam_domain::user::Profile;
use iam_domain::user::UserEvent;
use iam_domain::{GroupId, OrgId, OrgKind, Role, TokenId, UserId, UserState};
use iam_eventstore::{EventData, EventStore, ExpectedRevision};
use iam_projections::read_models::{
    AuditProjector, GroupsProjector, OrganizationsProjector, QueryValue, TokensProjector,
    UsersProjector,
};
use iam_projections::{Projector, ReadModels, Runner, rebuild, verify};
use iam_test_databases::{Kind, TestDatabase};
use serde::Serialize;
use uuid::Uuid;

fn data(event: &impl Serialize) -> (String, serde_json::Value) {
    let value = serde_json::to_value(event).unwrap();
    (
        value["type"].as_str().unwrap().to_owned(),
        value["data"].clone(),
    )
}

async fn append(
    store: &Arc<dyn EventStore>,
    stream: String,
    events: Vec<(String, serde_json::Value)>,
) -> u64 {
    let events = events
        .into_iter()
        .map(|(t, d)| EventData::new(Uuid::new_v4(), t, d))
        .collect();
    store
        .append(&stream, ExpectedRevision::Any, events)
        .await
        .unwrap()
        .last_position()
        .unwrap()
}

fn at(second: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, second)
        .single()
        .unwrap()
}

/// "Now" for token queries: 20 days after the events.
fn now() -> i64 {
    (at(0) + chrono::Duration::days(20)).timestamp_millis()
}

/// Every row of the tables, as text, in a stable order.
async fn dump(read_models: &ReadModels) -> Vec<String> {
    let mut rows = Vec::new();
    for user in [1u128, 2, 3, 4, 5] {
        let id = UserId::new(Uuid::from_u128(user)).to_string();
        rows.push(format!("{:?}", read_models.user(&id).await.unwrap()));
    }
    for org in [100u128, 101] {
        let id = OrgId::new(Uuid::from_u128(org)).to_string();
        rows.push(format!(
            "{:?}",
            read_models.organization(&id).await.unwrap()
        ));
        rows.push(format!(
            "{:?}",
            read_models.members_of(&id, None, 0, 100).await.unwrap()
        ));
        rows.push(format!("{:?}", read_models.role_counts(&id).await.unwrap()));
        let (groups, total) = read_models
            .groups_where(&id, "1 = 1", Vec::new(), "g.display_name_key", 0, 100)
            .await
            .unwrap();
        let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
        rows.push(format!("{groups:?} {total}"));
        rows.push(format!(
            "{:?}",
            read_models.group_members(&ids).await.unwrap()
        ));
        rows.push(format!(
            "{:?}",
            read_models
                .tokens_in(&id, None, None, now(), 0, 100)
                .await
                .unwrap()
        ));
    }
    rows
}

async fn builds_and_rebuilds_the_same_rows(kind: Kind) {
    let database = TestDatabase::new(kind).await.unwrap();
    let store = iam_eventstore::connect(database.url()).await.unwrap();
    let read_models = ReadModels::connect(database.url()).await.unwrap();
    let provider = OrgId::new(Uuid::from_u128(100));
    let tenant = OrgId::new(Uuid::from_u128(101));
    let user = |n: u128| UserId::new(Uuid::from_u128(n));
    let created = |n: u128, org: OrgId, name: &str, roles: Vec<Role>| UserEvent::UserCreated {
        id: user(n),
        organization: org,
        user_name: name.into(),
        email: name.into(),
        given_name: "Given".into(),
        family_name: "Family".into(),
        state: UserState::Active,
        roles,
        at: at(n as u32),
        profile: Profile::default(),
        managed: false,
    };

    append(
        &store,
        provider.stream(),
        vec![data(&OrgEvent::OrganizationCreated {
            id: provider,
            name: "Provider".into(),
            kind: OrgKind::Provider,
            provider: None,
            delegates_user_management: false,
            at: at(0),
        })],
    )
    .await;
    append(
        &store,
        tenant.stream(),
        vec![data(&OrgEvent::OrganizationCreated {
            id: tenant,
            name: "Acme".into(),
            kind: OrgKind::Tenant,
            provider: Some(provider),
            delegates_user_management: true,
            at: at(0),
        })],
    )
    .await;
    append(
        &store,
        user(1).stream(),
        vec![data(&created(
            1,
            provider,
            "Admin@Example.com",
            vec![Role::ProviderAdministrator],
        ))],
    )
    .await;
    append(
        &store,
        user(2).stream(),
        vec![
            data(&created(2, tenant, "jill@example.com", vec![Role::EndUser])),
            data(&UserEvent::UserEmailChanged {
                email: "jill.hill@example.com".into(),
                at: at(10),
            }),
            data(&UserEvent::UserRolesChanged {
                roles: vec![
                    Role::NetworkAdministrator,
                    Role::VirtualInfrastructureAdministrator,
                ],
                at: at(11),
                displaced: vec![],
                defaulted: false,
            }),
            data(&UserEvent::UserStateChanged {
                state: UserState::Inactive,
                at: at(12),
            }),
        ],
    )
    .await;
    append(
        &store,
        user(3).stream(),
        vec![
            data(&created(3, tenant, "gone@example.com", vec![Role::EndUser])),
            data(&UserEvent::UserDeleted { at: at(13) }),
        ],
    )
    .await;
    append(
        &store,
        user(4).stream(),
        vec![
            data(&created(
                4,
                tenant,
                "jack@example.com",
                vec![Role::AccountAdministrator],
            )),
            data(&UserEvent::UserRenamed {
                given_name: "Jack".into(),
                family_name: "Black".into(),
                at: at(14),
            }),
            data(&UserEvent::UserPasswordSet { at: at(15) }),
        ],
    )
    .await;
    append(
        &store,
        tenant.stream(),
        vec![data(&OrgEvent::OrganizationMemberAdded {
            user: user(1),
            role: Role::OrganizationOwner,
            at: at(16),
        })],
    )
    .await;
    // An identity provider's user: renamed with its address, its profile
    // changed; and groups that it joins and leaves.
    let mut managed = created(
        5,
        tenant,
        "Pat@Example.com",
        vec![Role::ReadOnlyAdministrator],
    );
    if let UserEvent::UserCreated {
        profile,
        managed: m,
        ..
    } = &mut managed
    {
        *profile = Profile {
            external_id: Some("00u5".into()),
            ..Profile::default()
        };
        *m = true;
    }
    append(
        &store,
        user(5).stream(),
        vec![
            data(&managed),
            data(&UserEvent::UserNameChanged {
                user_name: "Pat.Lee@Example.com".into(),
                email: "pat.lee@example.com".into(),
                at: at(17),
            }),
            data(&UserEvent::UserProfileChanged {
                profile: Profile {
                    external_id: None,
                    employee_number: Some("42".into()),
                    department: Some("Sales".into()),
                    manager: Some(user(4).to_string()),
                },
                at: at(18),
            }),
        ],
    )
    .await;
    let group = |n: u128| GroupId::new(Uuid::from_u128(n));
    append(
        &store,
        group(70).stream(),
        vec![
            data(&GroupEvent::GroupCreated {
                id: group(70),
                organization: tenant,
                display_name: "Sales".into(),
                external_id: Some("okta-1".into()),
                members: vec![user(5)],
                at: at(19),
            }),
            data(&GroupEvent::GroupRenamed {
                display_name: "Sales EMEA".into(),
                at: at(20),
            }),
            data(&GroupEvent::GroupExternalIdChanged {
                external_id: None,
                at: at(20),
            }),
            data(&GroupEvent::GroupMembersAdded {
                members: vec![user(4), user(2)],
                at: at(21),
            }),
            data(&GroupEvent::GroupMembersRemoved {
                members: vec![user(4)],
                at: at(22),
            }),
        ],
    )
    .await;
    append(
        &store,
        group(71).stream(),
        vec![
            data(&GroupEvent::GroupCreated {
                id: group(71),
                organization: tenant,
                display_name: "Gone".into(),
                external_id: None,
                members: vec![user(2)],
                at: at(23),
            }),
            data(&GroupEvent::GroupDeleted { at: at(24) }),
        ],
    )
    .await;
    let token = |n: u128| TokenId::new(Uuid::from_u128(n));
    let token_created = |n: u128, owner: UserId, days: i64| TokenEvent::TokenCreated {
        id: token(n),
        user: owner,
        organization: tenant,
        name: format!("token {n}"),
        description: String::new(),
        expires_at: at(0) + chrono::Duration::days(days),
        at: at(0),
    };
    append(
        &store,
        token(50).stream(),
        vec![
            data(&token_created(50, user(4), 30)),
            data(&TokenEvent::TokenDownloaded {
                secret_hash: "f".repeat(64),
                at: at(1),
            }),
        ],
    )
    .await;
    append(
        &store,
        token(51).stream(),
        vec![
            data(&token_created(51, user(4), 30)),
            data(&TokenEvent::TokenRevoked { at: at(2) }),
        ],
    )
    .await;
    let head = append(
        &store,
        token(52).stream(),
        vec![data(&token_created(52, user(2), 1))],
    )
    .await;

    let runner = Runner::new(store.clone(), read_models.clone())
        .with(OrganizationsProjector)
        .with(UsersProjector)
        .with(TokensProjector)
        .with(GroupsProjector)
        .start()
        .await
        .unwrap();
    runner.wait_for(head).await.unwrap();
    let live = dump(&read_models).await;
    drop(runner);

    // An identity provider's renamed user, its profile, and its groups.
    let tenant_key = tenant.to_string();
    let (found, total) = read_models
        .users_where(
            &tenant_key,
            "u.user_name_key = $2 AND u.department = $3",
            vec![
                QueryValue::Text("pat.lee@example.com".into()),
                QueryValue::Text("Sales".into()),
            ],
            "u.user_name_key",
            0,
            10,
        )
        .await
        .unwrap();
    assert_eq!(total, 1);
    let pat = &found[0];
    assert_eq!(
        (pat.user_name.as_str(), pat.email.as_str(), pat.managed),
        ("Pat.Lee@Example.com", "pat.lee@example.com", true)
    );
    assert_eq!(
        pat.profile.external_id, None,
        "the whole profile was replaced"
    );
    assert_eq!(pat.profile.employee_number.as_deref(), Some("42"));
    assert_eq!(
        read_models
            .user_by_name("pat@example.com")
            .await
            .unwrap()
            .map(|u| u.id),
        None,
        "the old name is gone"
    );
    let sales = read_models
        .group(&group(70).to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (sales.display_name.as_str(), sales.external_id.as_deref()),
        ("Sales EMEA", None)
    );
    let members: Vec<String> = read_models
        .group_members(std::slice::from_ref(&sales.id))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, name)| name)
        .collect();
    assert_eq!(members, ["jill@example.com", "Pat.Lee@Example.com"]);
    assert!(
        read_models
            .group(&group(71).to_string())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        read_models
            .groups_of_users(&[user(5).to_string()])
            .await
            .unwrap(),
        [(
            user(5).to_string(),
            sales.id.clone(),
            "Sales EMEA".to_owned()
        )]
    );

    // What the events say, read back.
    let jill = read_models
        .user(&user(2).to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (jill.email.as_str(), jill.state.as_str(), jill.revision),
        ("jill.hill@example.com", "Inactive", 3)
    );
    assert_eq!(
        jill.roles,
        [
            Role::NetworkAdministrator,
            Role::VirtualInfrastructureAdministrator
        ]
    );
    assert_eq!(jill.modified_at, at(12).timestamp_millis());
    assert!(
        read_models
            .user(&user(3).to_string())
            .await
            .unwrap()
            .is_none(),
        "a deleted user has no row"
    );
    assert_eq!(
        read_models
            .user_by_name("admin@EXAMPLE.com")
            .await
            .unwrap()
            .unwrap()
            .user_name,
        "Admin@Example.com"
    );
    let members = read_models
        .members_of(&tenant.to_string(), None, 0, 100)
        .await
        .unwrap();
    let listed: Vec<(&str, bool)> = members
        .iter()
        .map(|(row, owner)| (row.user_name.as_str(), *owner))
        .collect();
    assert_eq!(
        listed,
        [
            ("Admin@Example.com", true),
            ("jack@example.com", false),
            ("jill@example.com", false),
            ("Pat.Lee@Example.com", false)
        ]
    );

    // Tokens: Expired is derived from the lifetime at query time.
    let tenant_id = tenant.to_string();
    let tokens = read_models
        .tokens_in(&tenant_id, None, None, now(), 0, 100)
        .await
        .unwrap();
    let statuses: Vec<&str> = tokens.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(statuses, ["Enabled", "Revoked", "Expired"]);
    let enabled = read_models
        .tokens_in(&tenant_id, Some("Enabled"), None, now(), 0, 100)
        .await
        .unwrap();
    assert_eq!(enabled.len(), 1);
    let of_jill = read_models
        .tokens_in(&tenant_id, None, Some(&user(2).to_string()), now(), 0, 100)
        .await
        .unwrap();
    assert_eq!(of_jill.len(), 1);
    let by_secret = read_models
        .token_by_secret_hash(&"f".repeat(64), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_secret.0.id, token(50).to_string());
    assert!(
        read_models
            .token_by_secret_hash(&"0".repeat(64), now())
            .await
            .unwrap()
            .is_none()
    );
    // Roles: who holds what in the tenant, Organization Owners included.
    let counts = read_models.role_counts(&tenant_id).await.unwrap();
    assert_eq!(
        counts,
        [
            ("AccountAdministrator".to_owned(), 1),
            ("NetworkAdministrator".to_owned(), 1),
            ("OrganizationOwner".to_owned(), 1),
            ("ReadOnlyAdministrator".to_owned(), 1),
            ("VirtualInfrastructureAdministrator".to_owned(), 1),
        ]
    );
    let owners = read_models
        .role_holders(&tenant_id, "OrganizationOwner", 0, 10)
        .await
        .unwrap();
    assert_eq!(owners[0].user_name, "Admin@Example.com");
    assert!(
        read_models
            .role_holders(&tenant_id, "EndUser", 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "deleted and changed users hold nothing"
    );

    // The audit projector runs only under a runner: here it is built by its
    // first rebuild, and verified like the others below.
    let projectors: [&dyn Projector; 5] = [
        &OrganizationsProjector,
        &UsersProjector,
        &TokensProjector,
        &GroupsProjector,
        &AuditProjector,
    ];
    for projector in projectors {
        assert_eq!(
            rebuild(&store, &read_models, projector).await.unwrap(),
            head
        );
    }
    assert_eq!(
        dump(&read_models).await,
        live,
        "a rebuild from the log gives the live rows"
    );

    // verify: rebuilt scratch tables equal the live ones ...
    for projector in iam_projections::read_models::ALL {
        let found = verify(&*store, &read_models, projector).await.unwrap();
        assert_eq!(
            (found.position, found.differences.len()),
            (head, 0),
            "{}: {:?}",
            found.projector,
            found.differences
        );
    }
    // ... until a live row is changed behind the projector's back.
    sqlx::query(
        "UPDATE read_users SET given_name = 'Tampered' WHERE user_name_key = 'jack@example.com'",
    )
    .execute(read_models.pool())
    .await
    .unwrap();
    let found = verify(&*store, &read_models, &UsersProjector)
        .await
        .unwrap();
    assert_eq!(found.differences.len(), 2, "{:?}", found.differences);
    assert!(
        found.differences[0].starts_with("read_users: only live:")
            && found.differences[0].contains("Tampered")
    );
    assert!(
        found.differences[1].starts_with("read_users: only rebuilt:")
            && found.differences[1].contains("Jack")
    );
    assert_eq!(
        dump(&read_models).await.len(),
        live.len(),
        "verify left no scratch table behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_models_are_built_and_rebuilt_alike() {
    builds_and_rebuilds_the_same_rows(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_models_are_built_and_rebuilt_alike() {
    builds_and_rebuilds_the_same_rows(Kind::Postgres).await;
}

/// A bulk load leaves PostgreSQL's planner with no statistics until
/// autovacuum comes by; `statistics::refresh` analyzes the tables that
/// changed, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statistics_are_refreshed_after_a_bulk_load() {
    let database = TestDatabase::new(Kind::Postgres).await.unwrap();
    let _store = iam_eventstore::connect(database.url()).await.unwrap();
    let read_models = ReadModels::connect(database.url()).await.unwrap();
    let organization = Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO read_users (id, organization_id, user_name, user_name_key, email, given_name, \
         family_name, state, roles, created_at, modified_at, revision, external_id) \
         SELECT 'u' || n, $1, 'u' || n, 'u' || n, 'u' || n, 'G', 'F', 'Active', 'End User', 0, 0, 1, \
                'hr-' || n FROM generate_series(1, 5000) AS n",
    )
    .bind(&organization)
    .execute(read_models.pool())
    .await
    .unwrap();
    // The server counts changed rows a moment after the commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let analyzed = loop {
        let analyzed = iam_projections::statistics::refresh(&read_models)
            .await
            .unwrap();
        if !analyzed.is_empty() || std::time::Instant::now() > deadline {
            break analyzed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(analyzed, ["read_users"]);
    let analyzed_once: bool = sqlx::query_scalar(
        "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'read_users'",
    )
    .fetch_one(read_models.pool())
    .await
    .unwrap();
    assert!(analyzed_once);
    assert!(
        iam_projections::statistics::refresh(&read_models)
            .await
            .unwrap()
            .is_empty(),
        "fresh statistics are left alone"
    );
}

#[tokio::test]
async fn sqlite_statistics_need_no_refresh() {
    let database = TestDatabase::new(Kind::Sqlite).await.unwrap();
    let _store = iam_eventstore::connect(database.url()).await.unwrap();
    let read_models = ReadModels::connect(database.url()).await.unwrap();
    assert!(
        iam_projections::statistics::refresh(&read_models)
            .await
            .unwrap()
            .is_empty()
    );
}
