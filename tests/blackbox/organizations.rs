//! Organizations, the tenant-context header, the paged role listing, and
//! bootstrap across restarts.

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, error_of, spawn_app, user_body};

both_backends!(
    the_tenant_context_header_works_as_the_matrix_says,
    a_provider_administrator_added_to_a_tenant_is_listed_there_as_organization_owner,
    role_listing_pages_from_one_and_refuses_page_sizes_over_128,
    bootstrap_happens_once_and_a_restart_changes_nothing,
);

async fn the_tenant_context_header_works_as_the_matrix_says(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let globex = app.create_tenant(&admin, "Globex", false).await;
    let mut body = user_body("jill@acme.example.com", &["Account Administrator"]);
    body["password"] = json!("jills password");
    assert_eq!(
        app.create_user(&admin, Some(&acme), &body).await.status(),
        201
    );
    let jill = app.login("jill@acme.example.com", "jills password").await;
    let users = |token: &str, tenant: Option<&str>| {
        let request = app.request(Method::GET, "/api/iam/Users", token, tenant);
        async move { request.send().await.unwrap() }
    };
    let names = |body: Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };

    // Provider administrator without the header: the provider's users.
    assert_eq!(
        names(users(&admin, None).await.json().await.unwrap()),
        [ADMIN]
    );
    // With the header: the tenant's users.
    assert_eq!(
        names(users(&admin, Some(&acme)).await.json().await.unwrap()),
        ["jill@acme.example.com"]
    );
    // Header names are case-insensitive.
    let lower = app
        .request(Method::GET, "/api/iam/Users", &admin, None)
        .header("x-vmware-vcloud-tenant-context", &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(
        names(lower.json().await.unwrap()),
        ["jill@acme.example.com"]
    );
    // A tenant user naming its own organization, and without the header.
    assert_eq!(users(&jill, Some(&acme)).await.status(), 200);
    assert_eq!(
        names(users(&jill, None).await.json().await.unwrap()),
        ["jill@acme.example.com"]
    );
    // A tenant user naming another organization, or the provider: 403.
    assert_eq!(error_of(users(&jill, Some(&globex)).await).await.0, 403);
    let provider: Value = app
        .request(Method::GET, "/api/org", &admin, None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let provider_id = provider["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Provider")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error_of(users(&jill, Some(&provider_id)).await).await.0,
        403
    );
    // Unknown or malformed organizations: 403.
    assert_eq!(
        error_of(users(&admin, Some("6ccb9c49-55f4-4591-83c3-c63b1e295287")).await)
            .await
            .0,
        403
    );
    assert_eq!(
        error_of(users(&admin, Some("not-an-id")).await).await.0,
        403
    );
    // The provider reads a tenant that does not delegate user management, but does not write there.
    assert_eq!(users(&admin, Some(&globex)).await.status(), 200);
    let refused = app
        .create_user(
            &admin,
            Some(&globex),
            &user_body("x@globex.example.com", &["End User"]),
        )
        .await;
    let (status, message) = error_of(refused).await;
    assert_eq!(status, 403);
    assert!(message.contains("does not delegate"), "{message}");
    // A tenant's user is invisible from another organization: 404, not 403.
    let jills: Value = users(&admin, Some(&acme)).await.json().await.unwrap();
    let jill_path = format!(
        "/api/iam/Users/{}",
        jills["users"][0]["id"].as_str().unwrap()
    );
    let from_globex = app
        .request(Method::GET, &jill_path, &admin, Some(&globex))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(from_globex).await.0, 404);
    let from_provider = app
        .request(Method::GET, &jill_path, &admin, None)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(from_provider).await.0, 404);

    // The organizations each can see.
    let visible: Value = app
        .request(Method::GET, "/api/org", &admin, None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(visible["organizations"].as_array().unwrap().len(), 3);
    let own: Value = app
        .request(Method::GET, "/api/org", &jill, None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        own["organizations"],
        json!([{ "id": acme, "name": "Acme", "kind": "Tenant" }])
    );
    // Only a provider administrator creates organizations.
    let denied = app
        .request(Method::POST, "/api/orgs", &jill, None)
        .json(&json!({ "name": "Mine" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(denied).await.0, 403);
}

async fn a_provider_administrator_added_to_a_tenant_is_listed_there_as_organization_owner(
    kind: Kind,
) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let provider_users: Value = app.users(&admin, None).await;
    let admin_user = provider_users["users"][0].clone();
    let added = app
        .request(
            Method::POST,
            &format!("/api/orgs/{acme}/members"),
            &admin,
            None,
        )
        .json(&json!({ "userId": admin_user["id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let again = app
        .request(
            Method::POST,
            &format!("/api/orgs/{acme}/members"),
            &admin,
            None,
        )
        .json(&json!({ "userId": admin_user["id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "adding twice changes nothing");
    let listed: Value = app.users(&admin, Some(&acme)).await;
    let owner = &listed["users"][0];
    assert_eq!(owner["userName"], ADMIN);
    assert_eq!(owner["roles"]["roles"][0]["name"], "Organization Owner");
    assert_eq!(
        owner["companyId"], admin_user["companyId"],
        "its companyId stays the provider's"
    );
}

async fn role_listing_pages_from_one_and_refuses_page_sizes_over_128(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let page = |query: &str, tenant: Option<&str>| {
        let request = app.request(
            Method::GET,
            &format!("/cloudapi/1.0.0/roles{query}"),
            &admin,
            tenant,
        );
        async move { request.send().await.unwrap() }
    };
    let provider: Value = page("", None).await.json().await.unwrap();
    assert_eq!(
        (
            provider["resultTotal"].as_u64(),
            provider["page"].as_u64(),
            provider["pageSize"].as_u64()
        ),
        (Some(3), Some(1), Some(25))
    );
    assert_eq!(provider["associations"], Value::Null);
    let names: Vec<&str> = provider["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Provider Administrator",
            "Provider Account Administrator",
            "Provider Business Specialist"
        ]
    );
    let role = &provider["values"][0];
    assert!(role["id"].as_str().unwrap().starts_with("urn:vcloud:role:"));
    assert!(
        role["bundleKey"].is_string()
            && role["readOnly"].is_boolean()
            && role["description"].is_string()
    );

    let tenant: Value = page("?pageSize=2", Some(&acme)).await.json().await.unwrap();
    assert_eq!(
        (tenant["resultTotal"].as_u64(), tenant["pageCount"].as_u64()),
        (Some(6), Some(3))
    );
    assert_eq!(tenant["values"].as_array().unwrap().len(), 2);
    let past_end: Value = page("?page=9&pageSize=2", Some(&acme))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(past_end["values"], json!([]));
    assert_eq!(past_end["page"], 9);
    assert_eq!(error_of(page("?page=0", None).await).await.0, 400);
    assert_eq!(error_of(page("?pageSize=129", None).await).await.0, 400);
    assert_eq!(page("?pageSize=128", None).await.status(), 200);
}

async fn bootstrap_happens_once_and_a_restart_changes_nothing(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let before: Value = app
        .request(Method::GET, "/api/org", &admin, None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = app.restart();
    let admin = app.login(ADMIN, ADMIN_PASSWORD).await;
    let after: Value = app
        .request(Method::GET, "/api/org", &admin, None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let users: Value = app.users(&admin, None).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);
}
