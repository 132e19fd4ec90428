//! The isolation matrix: for every endpoint of both dialects that names a
//! resource, a principal of tenant A (a session, an API token, the same
//! token as a SCIM bearer) addressing a resource of tenant B gets 403 or
//! 404, with the same status and body as for a resource that does not
//! exist, and B's resources are unchanged afterwards. Naming tenant B in
//! the tenant-context header is 403.

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app_with, user_body};

both_backends!(a_tenant_learns_nothing_of_another_tenants_resources);

/// An id no resource has.
const NOBODY: &str = "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f70";
const NO_TOKEN: &str = "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f71";
const NO_GROUP: &str = "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f72";

/// A tenant with an Account Administrator, its session, its API token's
/// secret and id, a user and a group.
struct Tenant {
    id: String,
    session: String,
    secret: String,
    token_id: String,
    boss_id: String,
    user_id: String,
    group_id: String,
}

async fn tenant(app: &TestApp, admin: &str, name: &str) -> Tenant {
    let id = app.create_tenant(admin, name, true).await;
    let domain = format!("{}.example", name.to_lowercase());
    let mut boss = user_body(&format!("boss@{domain}"), &["Account Administrator"]);
    boss["password"] = json!("the boss's password");
    let boss: Value = app
        .create_user(admin, Some(&id), &boss)
        .await
        .json()
        .await
        .unwrap();
    let boss_id = boss["id"].as_str().unwrap().to_owned();
    let user: Value = app
        .create_user(
            admin,
            Some(&id),
            &user_body(&format!("jill@{domain}"), &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let session = app
        .login(&format!("boss@{domain}"), "the boss's password")
        .await;
    let token: Value = app
        .create_token(&session, &boss_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap().to_owned();
    let secret: Value = app
        .download_token(&session, &boss_id, &token_id)
        .await
        .json()
        .await
        .unwrap();
    let group: Value = app
        .client
        .post(app.url("/scim/v2/Groups"))
        .bearer_auth(secret["token"].as_str().unwrap())
        .json(&json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Tenant {
        id,
        session,
        secret: secret["token"].as_str().unwrap().to_owned(),
        token_id,
        boss_id,
        user_id: user["id"].as_str().unwrap().to_owned(),
        group_id: group["id"].as_str().unwrap().to_owned(),
    }
}

/// How a principal of tenant A authenticates.
#[derive(Debug, Clone, Copy)]
enum Principal {
    Session,
    ApiToken,
    ScimBearer,
}

/// Every request that names a resource: method, path (with `{user}`,
/// `{token}`, `{group}`, `{org}`) and body.
fn requests() -> Vec<(Method, &'static str, Option<Value>)> {
    let vca_user = json!({
        "schemas": ["urn:scim:schemas:core:1.0"], "state": "Active",
        "email": "x@acme.example", "familyName": "X", "givenName": "X",
        "roles": { "roles": [{ "name": "End User" }] }, "userName": "x@acme.example",
    });
    let scim_user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x@acme.example",
        "name": { "givenName": "X", "familyName": "X" },
        "emails": [{ "value": "x@acme.example", "primary": true }],
    });
    let scim_group = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Taken" });
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "displayName", "value": "Taken" }],
    });
    let user_patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "path": "active", "value": false }],
    });
    vec![
        (Method::GET, "/api/iam/Users/{user}", None),
        (Method::PUT, "/api/iam/Users/{user}", Some(vca_user)),
        (Method::DELETE, "/api/iam/Users/{user}", None),
        (Method::GET, "/api/iam/Users/{user}/history", None),
        (
            Method::GET,
            "/api/iam/Users/{user}?asOf=2026-01-01T00:00:00Z",
            None,
        ),
        (
            Method::PUT,
            "/api/iam/Users/{user}/password",
            Some(json!({ "newPassword": "taken over!" })),
        ),
        (Method::PUT, "/api/iam/Users/{user}/password/reset", None),
        (Method::GET, "/api/iam/Users/{user}/tokens", None),
        (
            Method::POST,
            "/api/iam/Users/{user}/tokens",
            Some(json!({ "name": "x", "description": "x", "lifetimeDays": 30 })),
        ),
        (
            Method::POST,
            "/api/iam/Users/{user}/tokens/{token}/download",
            None,
        ),
        (
            Method::POST,
            "/api/iam/Users/{user}/tokens/{token}/revoke",
            None,
        ),
        (Method::GET, "/api/iam/tokens?userId={user}", None),
        (
            Method::POST,
            "/api/orgs/{org}/members",
            Some(json!({ "userId": "{user}" })),
        ),
        (Method::GET, "/scim/v2/Users/{user}", None),
        (Method::PUT, "/scim/v2/Users/{user}", Some(scim_user)),
        (Method::PATCH, "/scim/v2/Users/{user}", Some(user_patch)),
        (Method::DELETE, "/scim/v2/Users/{user}", None),
        (Method::GET, "/scim/v2/Groups/{group}", None),
        (Method::PUT, "/scim/v2/Groups/{group}", Some(scim_group)),
        (Method::PATCH, "/scim/v2/Groups/{group}", Some(patch)),
        (Method::DELETE, "/scim/v2/Groups/{group}", None),
        (
            Method::POST,
            "/scim/v2/Bulk",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    { "method": "DELETE", "path": "/Users/{user}" },
                    { "method": "DELETE", "path": "/Groups/{group}" },
                ],
            })),
        ),
    ]
}

/// `text` with the ids of B's (or no) resources filled in.
fn fill(text: &str, ids: [&str; 4]) -> String {
    text.replace("{user}", ids[0])
        .replace("{token}", ids[1])
        .replace("{group}", ids[2])
        .replace("{org}", ids[3])
}

async fn a_tenant_learns_nothing_of_another_tenants_resources(kind: Kind) {
    // A relay, so that a reset gets as far as looking the user up.
    let relay = crate::passwords::Relay::start().await;
    let smtp = format!("smtp://127.0.0.1:{}", relay.port);
    let app = spawn_app_with(kind, &[("IAM_SMTP_URL", smtp.as_str())]).await;
    let admin = app.admin().await;
    let a = tenant(&app, &admin, "Acme").await;
    let b = tenant(&app, &admin, "Globex").await;
    let existing = [
        b.user_id.as_str(),
        b.token_id.as_str(),
        b.group_id.as_str(),
        b.id.as_str(),
    ];
    let missing = [
        NOBODY,
        NO_TOKEN,
        NO_GROUP,
        "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f73",
    ];
    let before = app.users(&b.session, None).await;

    for principal in [
        Principal::Session,
        Principal::ApiToken,
        Principal::ScimBearer,
    ] {
        for (method, path, body) in requests() {
            let scim = path.starts_with("/scim/");
            if scim != matches!(principal, Principal::ScimBearer)
                && !matches!(principal, Principal::ApiToken)
            {
                continue;
            }
            let answer = |ids: [&str; 4]| {
                let url = app.url(&fill(path, ids));
                let mut request = app.client.request(method.clone(), url);
                request = match principal {
                    Principal::Session => request.bearer_auth(&a.session),
                    Principal::ApiToken => {
                        request.header("Authorization", format!("Token {}", a.secret))
                    }
                    Principal::ScimBearer => request.bearer_auth(&a.secret),
                };
                if let Some(body) = &body {
                    request = request
                        .header(
                            "Content-Type",
                            if scim {
                                "application/scim+json"
                            } else {
                                "application/json"
                            },
                        )
                        .body(fill(&body.to_string(), ids));
                }
                let hide: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
                async move {
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let mut text = response.text().await.unwrap();
                    for id in &hide {
                        text = text.replace(id.as_str(), "ID");
                    }
                    (status, text)
                }
            };
            let foreign = answer(existing).await;
            let nothing = answer(missing).await;
            let what = format!("{principal:?} {method} {path}");
            if path.contains('?') && !path.contains("asOf") {
                // A query by another tenant's id finds what one by no id finds.
                assert!([200, 403, 404].contains(&foreign.0), "{what}: {foreign:?}");
            } else if path == "/scim/v2/Bulk" {
                // Each operation is answered inside a 200.
                assert_eq!(foreign.0, 200, "{what}: {foreign:?}");
                assert!(!foreign.1.contains("\"204\""), "{what}: {foreign:?}");
            } else {
                assert!(
                    [403, 404].contains(&foreign.0),
                    "{what} answered {}: {}",
                    foreign.0,
                    foreign.1
                );
            }
            assert_eq!(
                foreign, nothing,
                "{what}: an answer that tells B's resource exists"
            );
        }
        // Naming tenant B as the tenant to act in.
        let mut request = app
            .client
            .get(app.url(if matches!(principal, Principal::ScimBearer) {
                "/scim/v2/Users"
            } else {
                "/api/iam/Users"
            }))
            .header("X-VMware-VCloud-Tenant-Context", &b.id);
        request = match principal {
            Principal::Session => request.bearer_auth(&a.session),
            Principal::ApiToken => request.header("Authorization", format!("Token {}", a.secret)),
            Principal::ScimBearer => request.bearer_auth(&a.secret),
        };
        let status = request.send().await.unwrap().status().as_u16();
        assert_eq!(status, 403, "{principal:?} naming tenant B");
    }

    // Nothing of B changed: its users, its token, its group.
    assert_eq!(app.users(&b.session, None).await, before);
    let tokens = app
        .get_json(
            &format!("/api/iam/Users/{}/tokens", b.boss_id),
            &b.session,
            None,
        )
        .await;
    assert!(tokens.to_string().contains("Enabled"), "{tokens}");
    let group = app
        .client
        .get(app.url(&format!("/scim/v2/Groups/{}", b.group_id)))
        .bearer_auth(&b.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(group.status(), 200);
}
