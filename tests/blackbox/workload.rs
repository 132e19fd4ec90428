//! A randomized workload of more than 1,000 commands (users, role changes,
//! Organization Owners, tokens created, downloaded, revoked and expired,
//! deletions) against the real service, after which `iamctl projections
//! verify` finds the read models equal to a rebuild from the log.

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{iamctl, spawn_app_with, user_body};

both_backends!(a_randomized_workload_leaves_read_models_equal_to_a_rebuild,);

/// xorshift64*: a small deterministic generator, so that a failing run can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ROLE_SETS: [&[&str]; 7] = [
    &["End User"],
    &["Account Administrator"],
    &["Read-Only Administrator"],
    &["Network Administrator"],
    &["Virtual Infrastructure Administrator"],
    &[
        "Network Administrator",
        "Virtual Infrastructure Administrator",
    ],
    &["End User", "Account Administrator"], // refused: 400
];

async fn a_randomized_workload_leaves_read_models_equal_to_a_rebuild(kind: Kind) {
    let seed = 0x5eed_0000_0000_0001 ^ u64::from(kind == Kind::Postgres);
    println!("workload seed: {seed:#x}");
    let mut random = Random(seed);
    // Token lifetimes are counted in seconds here (1 to 365), and the sweep
    // runs every second: some tokens expire, and their expiry is recorded,
    // while the workload runs.
    let mut app = spawn_app_with(
        kind,
        &[("IAM_TOKEN_DAY_SECS", "1"), ("IAM_TOKEN_SWEEP_SECS", "1")],
    )
    .await;
    let admin = app.admin().await;
    let tenants = [
        app.create_tenant(&admin, "Acme", true).await,
        app.create_tenant(&admin, "Globex", true).await,
    ];
    // The administrator and a second provider user are Organization Owners
    // of both tenants; the second is deleted halfway.
    let admin_id = app.users(&admin, None).await["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops: Value = app
        .create_user(
            &admin,
            None,
            &user_body(
                "ops@provider.example.com",
                &["Provider Account Administrator"],
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    let ops_id = ops["id"].as_str().unwrap().to_owned();
    for tenant in &tenants {
        for member in [&admin_id, &ops_id] {
            let added = app.add_member(&admin, tenant, member).await;
            assert_eq!(added.status(), 201, "member");
        }
    }
    let mut users: Vec<(String, usize, Value)> = Vec::new(); // (id, tenant, last body)
    let mut tokens: Vec<(String, String, usize)> = Vec::new(); // (user, token, tenant)
    let mut commands = 0;
    while commands < 1050 {
        let tenant_index = random.below(2);
        let tenant = tenants[tenant_index].as_str();
        let action = random.below(100);
        commands += 1;
        if commands == 525 {
            let response = app
                .request(
                    Method::DELETE,
                    &format!("/api/iam/Users/{ops_id}"),
                    &admin,
                    None,
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204, "delete an Organization Owner");
            continue;
        }
        if action < 35 || users.len() < 5 {
            let roles = ROLE_SETS[random.below(ROLE_SETS.len())];
            // Now and then a name that is already taken: 409.
            let n = if random.below(20) == 0 && commands > 1 {
                commands - 1
            } else {
                commands
            };
            let body = user_body(&format!("user{n}@example.com"), roles);
            let response = app.create_user(&admin, Some(tenant), &body).await;
            let status = response.status().as_u16();
            assert!(
                [201, 400, 409].contains(&status),
                "create {roles:?}: {status}"
            );
            if status == 201 {
                let created: Value = response.json().await.unwrap();
                users.push((
                    created["id"].as_str().unwrap().to_owned(),
                    tenant_index,
                    created,
                ));
            }
        } else if action < 58 && !users.is_empty() {
            let at = random.below(users.len());
            let (id, home, body) = &mut users[at];
            let mut changed = body.clone();
            changed["givenName"] = json!(format!("Given{}", random.below(1000)));
            changed["state"] = json!(if random.below(4) == 0 {
                "Inactive"
            } else {
                "Active"
            });
            let roles = ROLE_SETS[random.below(ROLE_SETS.len() - 1)];
            changed["roles"] =
                json!({ "roles": roles.iter().map(|r| json!({ "name": r })).collect::<Vec<_>>() });
            changed.as_object_mut().unwrap().remove("meta");
            let response = app
                .request(
                    Method::PUT,
                    &format!("/api/iam/Users/{id}"),
                    &admin,
                    Some(&tenants[*home]),
                )
                .json(&changed)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "replace");
            *body = response.json().await.unwrap();
        } else if action < 65 && users.len() > 5 {
            let (id, home, _) = users.swap_remove(random.below(users.len()));
            let response = app
                .request(
                    Method::DELETE,
                    &format!("/api/iam/Users/{id}"),
                    &admin,
                    Some(&tenants[home]),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204, "delete");
            tokens.retain(|(user, _, _)| *user != id);
        } else if action < 82 && !users.is_empty() {
            // A third of the tokens are the administrator's own, in a
            // tenant where it is Organization Owner: those it downloads.
            let (id, home) = if random.below(3) == 0 {
                (&admin_id, &tenant_index)
            } else {
                let (id, home, _) = &users[random.below(users.len())];
                (id, home)
            };
            // A quarter live only seconds, so that they expire during the run.
            let lifetime = if random.below(4) == 0 {
                1 + random.below(5)
            } else {
                1 + random.below(365)
            };
            let response = app
                .request(
                    Method::POST,
                    &format!("/api/iam/Users/{id}/tokens"),
                    &admin,
                    Some(&tenants[*home]),
                )
                .json(&json!({ "name": "t", "lifetimeDays": lifetime }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // 403 for roles without token authentication.
            assert!([201, 403].contains(&status), "token: {status}");
            if status == 201 {
                let token: Value = response.json().await.unwrap();
                tokens.push((id.clone(), token["id"].as_str().unwrap().to_owned(), *home));
            }
        } else if action < 90 && tokens.iter().any(|(user, _, _)| *user == admin_id) {
            let own: Vec<_> = tokens
                .iter()
                .filter(|(user, _, _)| *user == admin_id)
                .collect();
            let (user, token, home) = own[random.below(own.len())];
            let response = app
                .request(
                    Method::POST,
                    &format!("/api/iam/Users/{user}/tokens/{token}/download"),
                    &admin,
                    Some(&tenants[*home]),
                )
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            // 409 downloaded already; 400 revoked or expired.
            assert!([200, 400, 409].contains(&status), "download: {status}");
        } else if !tokens.is_empty() {
            let (user, token, home) = &tokens[random.below(tokens.len())];
            let response = app
                .request(
                    Method::POST,
                    &format!("/api/iam/Users/{user}/tokens/{token}/revoke"),
                    &admin,
                    Some(&tenants[*home]),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "revoke");
        } else {
            commands -= 1;
        }
    }
    assert!(commands >= 1000);

    // The log holds every kind of change the workload claims to make.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(app.database_url()).await.unwrap();
    let recorded_types = || async {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT event_type, COUNT(*) FROM events GROUP BY event_type",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    // Expiries are recorded by the sweep, each second: on a fast run the
    // last short-lived tokens may still be due.
    let mut recorded = recorded_types().await;
    for _ in 0..300 {
        if recorded.iter().any(|(kind, _)| kind == "TokenExpired") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        recorded = recorded_types().await;
    }
    println!("workload events: {recorded:?}");
    for wanted in [
        "UserCreated",
        "UserRolesChanged",
        "UserDeleted",
        "OrganizationMemberAdded",
        "UserStateChanged",
        "TokenCreated",
        "TokenDownloaded",
        "TokenRevoked",
        "TokenExpired",
    ] {
        assert!(
            recorded
                .iter()
                .any(|(kind, count)| kind == wanted && *count > 0),
            "no {wanted} in {recorded:?}"
        );
    }

    let (code, report) = iamctl(app.database_url(), &["projections", "verify"]);
    assert_eq!(code, 0, "verify after {commands} commands:\n{report}");
    for projector in ["organizations", "users", "tokens"] {
        assert!(
            report.contains(&format!("{projector}: equal to a rebuild")),
            "{report}"
        );
    }
    let (code, status) = iamctl(app.database_url(), &["projections", "status"]);
    assert_eq!(code, 0, "{status}");

    // A read model changed behind the projectors' back is caught.
    sqlx::query("UPDATE read_tokens SET name = 'tampered'")
        .execute(&pool)
        .await
        .unwrap();
    let (code, report) = iamctl(app.database_url(), &["projections", "verify"]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("tokens: DIFFERS")
            && report.contains("read_tokens: only live:")
            && report.contains("tampered"),
        "{report}"
    );
    // An offline rebuild (the service stopped) repairs it.
    app.stop();
    let (code, report) = iamctl(app.database_url(), &["projections", "rebuild", "tokens"]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("rebuilt tokens up to position"), "{report}");
    let (code, report) = iamctl(app.database_url(), &["projections", "verify"]);
    assert_eq!(code, 0, "{report}");
}
