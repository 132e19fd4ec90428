//! API tokens end to end: lifecycle, download once under concurrency,
//! `Authorization: Token`, scoping, and what happens to a token's user.

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, error_of, spawn_app, spawn_app_with, user_body};

both_backends!(
    a_token_goes_pending_enabled_revoked_and_authenticates_only_while_enabled,
    ten_concurrent_first_downloads_yield_exactly_one_secret,
    a_token_used_outside_its_organization_gets_the_scoping_message,
    bad_lifetimes_and_roles_without_token_authentication_are_refused,
    deleting_or_deactivating_a_user_stops_its_tokens,
    a_token_expires_after_its_lifetime_and_the_sweep_records_it,
    the_sweep_revokes_the_tokens_a_stopped_deletion_left_live,
    a_provider_administrators_token_in_a_tenant_acts_only_there,
    a_role_without_token_authentication_stops_the_users_tokens,
    the_role_query_counts_holders_and_lists_them,
);

/// A tenant with an Account Administrator `jill` who has a password; returns
/// (admin session, tenant id, jill's session, jill's id).
async fn tenant_with_jill(app: &TestApp, roles: &[&str]) -> (String, String, String, String) {
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("jill@example.com", roles);
    body["password"] = json!("jills password");
    let created: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    let jill = app.login("jill@example.com", "jills password").await;
    (
        admin,
        tenant,
        jill,
        created["id"].as_str().unwrap().to_owned(),
    )
}

async fn create_token(app: &TestApp, session: &str, user: &str, days: i64) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!("/api/iam/Users/{user}/tokens"),
        session,
        None,
    )
    .json(&json!({ "name": "ci", "description": "deploys", "lifetimeDays": days }))
    .send()
    .await
    .unwrap()
}

async fn download(app: &TestApp, session: &str, user: &str, token: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!("/api/iam/Users/{user}/tokens/{token}/download"),
        session,
        None,
    )
    .send()
    .await
    .unwrap()
}

fn with_token(app: &TestApp, secret: &str, path: &str) -> reqwest::RequestBuilder {
    app.client
        .get(app.url(path))
        .header("Authorization", format!("Token {secret}"))
        .header("Accept", crate::support::VCA_JSON)
}

async fn a_token_goes_pending_enabled_revoked_and_authenticates_only_while_enabled(kind: Kind) {
    let app = spawn_app(kind).await;
    let (_, tenant, jill, jill_id) = tenant_with_jill(&app, &["Account Administrator"]).await;
    let created = create_token(&app, &jill, &jill_id, 30).await;
    assert_eq!(created.status(), 201);
    let token: Value = created.json().await.unwrap();
    assert_eq!(
        (token["status"].as_str(), token["organizationId"].as_str()),
        (Some("Pending"), Some(tenant.as_str()))
    );
    assert!(
        token.get("token").is_none() && token.get("secret").is_none(),
        "no secret before the download"
    );
    let token_id = token["id"].as_str().unwrap().to_owned();

    let first = download(&app, &jill, &jill_id, &token_id).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let secret = first.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("iam_") && secret.len() == 53, "{secret}");
    let second = download(&app, &jill, &jill_id, &token_id).await;
    let (status, message) = error_of(second).await;
    assert_eq!(status, 409);
    assert!(message.contains("already downloaded"), "{message}");

    let listed: Value = app
        .get_json(&format!("/api/iam/Users/{jill_id}/tokens"), &jill, None)
        .await;
    assert_eq!(listed["tokens"][0]["status"], "Enabled");
    assert!(
        !listed.to_string().contains(&secret),
        "listings never show a secret"
    );

    let authenticated = with_token(&app, &secret, "/api/iam/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(authenticated.status(), 200);
    let last = if secret.ends_with('A') { 'B' } else { 'A' };
    let forged = with_token(&app, &format!("{}{last}", &secret[..52]), "/api/iam/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged).await.0, 401);

    let revoked = app
        .request(
            Method::POST,
            &format!("/api/iam/Users/{jill_id}/tokens/{token_id}/revoke"),
            &jill,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.json::<Value>().await.unwrap()["status"], "Revoked");
    let again = app
        .request(
            Method::POST,
            &format!("/api/iam/Users/{jill_id}/tokens/{token_id}/revoke"),
            &jill,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "revoking again changes nothing");
    let refused = with_token(&app, &secret, "/api/iam/Users")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(refused).await.0,
        401,
        "a revoked token stops as soon as the revocation is answered"
    );

    let query: Value = app
        .get_json("/api/iam/tokens?status=Revoked", &jill, None)
        .await;
    assert_eq!(query["tokens"].as_array().unwrap().len(), 1);
    let none: Value = app
        .get_json("/api/iam/tokens?status=Enabled", &jill, None)
        .await;
    assert_eq!(none["tokens"], json!([]));
    assert_eq!(
        error_of(
            app.request(Method::GET, "/api/iam/tokens?status=Lost", &jill, None)
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        400
    );
}

async fn ten_concurrent_first_downloads_yield_exactly_one_secret(kind: Kind) {
    let app = spawn_app(kind).await;
    let (_, _, jill, jill_id) = tenant_with_jill(&app, &["End User"]).await;
    let token: Value = create_token(&app, &jill, &jill_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap();
    let downloads = (0..10).map(|_| download(&app, &jill, &jill_id, token_id));
    let responses = futures::future::join_all(downloads).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
}

async fn a_token_used_outside_its_organization_gets_the_scoping_message(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, jill, jill_id) = tenant_with_jill(&app, &["Account Administrator"]).await;
    let other = app.create_tenant(&admin, "Globex", true).await;
    let token: Value = create_token(&app, &jill, &jill_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret = download(&app, &jill, &jill_id, token["id"].as_str().unwrap())
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        with_token(&app, &secret, "/api/iam/Users")
            .header("X-VMware-VCloud-Tenant-Context", &tenant)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for organization in [other.as_str(), "6ccb9c49-55f4-4591-83c3-c63b1e295287"] {
        let refused = with_token(&app, &secret, "/api/iam/Users")
            .header("X-VMware-VCloud-Tenant-Context", organization)
            .send()
            .await
            .unwrap();
        let (status, message) = error_of(refused).await;
        assert_eq!(
            (status, message.as_str()),
            (403, "API token is not scoped to this organization.")
        );
    }
    // A resource of another organization (the provider administrator) is
    // answered as one that does not exist: status and body alike.
    let providers: Value = app.users(&admin, None).await;
    let admin_id = providers["users"][0]["id"].as_str().unwrap();
    let unknown_id = "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f70";
    for path in [
        "/api/iam/Users/{}",
        "/api/iam/Users/{}/tokens",
        "/api/iam/Users/{}/history",
    ] {
        let answer = |id: String| {
            let path = path.replace("{}", &id);
            let request = with_token(&app, &secret, &path);
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                (status, body.replace(&id, "ID"))
            }
        };
        let foreign = answer(admin_id.to_owned()).await;
        assert_eq!(foreign.0, 404, "{path}: {foreign:?}");
        assert_eq!(foreign, answer(unknown_id.to_owned()).await, "{path}");
    }
}

async fn bad_lifetimes_and_roles_without_token_authentication_are_refused(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, jill, jill_id) = tenant_with_jill(&app, &["Account Administrator"]).await;
    for days in [0, 366, -3] {
        let (status, message) = error_of(create_token(&app, &jill, &jill_id, days).await).await;
        assert_eq!(status, 400, "{days}");
        assert!(message.contains("between 1 and 365"), "{message}");
    }
    let mut reader = user_body("reader@example.com", &["Read-Only Administrator"]);
    reader["password"] = json!("readers password");
    let reader_row: Value = app
        .create_user(&admin, Some(&tenant), &reader)
        .await
        .json()
        .await
        .unwrap();
    let reader_session = app.login("reader@example.com", "readers password").await;
    let refused = create_token(
        &app,
        &reader_session,
        reader_row["id"].as_str().unwrap(),
        30,
    )
    .await;
    let (status, message) = error_of(refused).await;
    assert_eq!(status, 403);
    assert!(
        message
            .contains("Token authentication is not enabled for the role Read-Only Administrator"),
        "{message}"
    );
    // An Account Administrator creates a token for another user, but never downloads it.
    let mut bob = user_body("bob@example.com", &["End User"]);
    bob["password"] = json!("bobs password");
    let bob_row: Value = app
        .create_user(&admin, Some(&tenant), &bob)
        .await
        .json()
        .await
        .unwrap();
    let bob_id = bob_row["id"].as_str().unwrap();
    let for_bob: Value = create_token(&app, &jill, bob_id, 7)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(for_bob["userId"], bob_id);
    let (status, _) =
        error_of(download(&app, &jill, bob_id, for_bob["id"].as_str().unwrap()).await).await;
    assert_eq!(status, 403);
    let bob_session = app.login("bob@example.com", "bobs password").await;
    assert_eq!(
        download(&app, &bob_session, bob_id, for_bob["id"].as_str().unwrap())
            .await
            .status(),
        200
    );
    // An End User reads only its own tokens; the administrator revokes them.
    let (status, message) = error_of(
        app.request(
            Method::GET,
            &format!("/api/iam/tokens?userId={jill_id}"),
            &bob_session,
            None,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "{message}");
    let revoked = app
        .request(
            Method::POST,
            &format!(
                "/api/iam/Users/{bob_id}/tokens/{}/revoke",
                for_bob["id"].as_str().unwrap()
            ),
            &jill,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let own: Value = app.get_json("/api/iam/tokens", &bob_session, None).await;
    assert_eq!(
        (
            &own["resultTotal"],
            &own["pageCount"],
            &own["tokens"][0]["status"]
        ),
        (&json!(1), &json!(1), &json!("Revoked"))
    );
}

async fn deleting_or_deactivating_a_user_stops_its_tokens(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, _, _) = tenant_with_jill(&app, &["Account Administrator"]).await;
    let mut bob = user_body("bob@example.com", &["End User"]);
    bob["password"] = json!("bobs password");
    let bob_row: Value = app
        .create_user(&admin, Some(&tenant), &bob)
        .await
        .json()
        .await
        .unwrap();
    let bob_id = bob_row["id"].as_str().unwrap();
    let bob_session = app.login("bob@example.com", "bobs password").await;
    let token: Value = create_token(&app, &bob_session, bob_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret = download(&app, &bob_session, bob_id, token["id"].as_str().unwrap())
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/iam/Users/{bob_id}");
    assert_eq!(
        with_token(&app, &secret, &path)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let mut inactive = bob_row.clone();
    inactive["state"] = json!("Inactive");
    assert_eq!(
        app.request(Method::PUT, &path, &admin, Some(&tenant))
            .json(&inactive)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        error_of(with_token(&app, &secret, &path).send().await.unwrap())
            .await
            .0,
        401
    );
    let mut active = inactive.clone();
    active["state"] = json!("Active");
    active["meta"] = Value::Null;
    active.as_object_mut().unwrap().remove("meta");
    assert_eq!(
        app.request(Method::PUT, &path, &admin, Some(&tenant))
            .json(&active)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with_token(&app, &secret, &path)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "active again: the token works again"
    );

    assert_eq!(
        app.request(Method::DELETE, &path, &admin, Some(&tenant))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        error_of(
            with_token(&app, &secret, "/api/iam/Users")
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        401
    );
    let tokens: Value = app
        .get_json(
            &format!("/api/iam/tokens?userId={bob_id}"),
            &admin,
            Some(&tenant),
        )
        .await;
    assert_eq!(
        tokens["tokens"][0]["status"], "Revoked",
        "deleting a user revokes its tokens"
    );
}

/// The events of stream `stream`, straight from the log.
async fn events_of(app: &TestApp, stream: &str) -> Vec<String> {
    let store = iam_eventstore::connect(app.database_url()).await.unwrap();
    store
        .read_stream(
            stream,
            iam_eventstore::Direction::Forwards,
            iam_eventstore::StreamStart::Edge,
            100,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.event_type)
        .collect()
}

/// Waits (up to 30 s) until stream `stream` holds an event of type `wanted`.
async fn until_recorded(app: &TestApp, stream: &str, wanted: &str) -> bool {
    for _ in 0..300 {
        if events_of(app, stream).await.iter().any(|t| t == wanted) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// The sweep's interval in tests where it must not run after start-up.
const NO_SWEEP: (&str, &str) = ("IAM_TOKEN_SWEEP_SECS", "86400");

async fn a_token_expires_after_its_lifetime_and_the_sweep_records_it(kind: Kind) {
    // The test hook: a token "day" lasts five seconds (time enough to
    // create, download and use the token on a loaded machine). The sweep
    // waits a day, so the expiry is first seen only as the read model
    // derives it.
    let app = spawn_app_with(kind, &[("IAM_TOKEN_DAY_SECS", "5"), NO_SWEEP]).await;
    let (_, _, jill, jill_id) = tenant_with_jill(&app, &["End User"]).await;
    let token: Value = create_token(&app, &jill, &jill_id, 1)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap().to_owned();
    let secret = download(&app, &jill, &jill_id, &token_id)
        .await
        .json::<Value>()
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        with_token(&app, &secret, "/api/iam/Users")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Once its lifetime is over it stops authenticating (polled, with a deadline).
    let mut status = 200;
    for _ in 0..300 {
        status = with_token(&app, &secret, "/api/iam/Users")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "an expired token does not authenticate");
    let listed: Value = app
        .get_json(&format!("/api/iam/Users/{jill_id}/tokens"), &jill, None)
        .await;
    assert_eq!(listed["tokens"][0]["status"], "Expired");
    let stream = format!("token-{token_id}");
    assert_eq!(
        events_of(&app, &stream).await,
        ["TokenCreated", "TokenDownloaded"],
        "Expired before any event records it"
    );
    // The sweep runs at start-up, then every second.
    let app = app.restart_with(&[("IAM_TOKEN_DAY_SECS", "5"), ("IAM_TOKEN_SWEEP_SECS", "1")]);
    assert!(
        until_recorded(&app, &stream, "TokenExpired").await,
        "the sweep appends TokenExpired"
    );
}

async fn the_sweep_revokes_the_tokens_a_stopped_deletion_left_live(kind: Kind) {
    let app = spawn_app_with(kind, &[NO_SWEEP]).await;
    let (_, _, jill, jill_id) = tenant_with_jill(&app, &["End User"]).await;
    let token: Value = create_token(&app, &jill, &jill_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap().to_owned();
    assert_eq!(
        download(&app, &jill, &jill_id, &token_id).await.status(),
        200
    );
    // A deletion that stopped after its first append: the user is deleted in
    // the log, its token was never revoked.
    let store = iam_eventstore::connect(app.database_url()).await.unwrap();
    store
        .append(
            &format!("user-{jill_id}"),
            iam_eventstore::ExpectedRevision::StreamExists,
            vec![iam_eventstore::EventData::new(
                uuid::Uuid::new_v4(),
                "UserDeleted",
                json!({ "at": chrono::Utc::now() }),
            )],
        )
        .await
        .unwrap();
    let stream = format!("token-{token_id}");
    assert_eq!(
        events_of(&app, &stream).await,
        ["TokenCreated", "TokenDownloaded"]
    );
    let app = app.restart_with(&[("IAM_TOKEN_SWEEP_SECS", "1")]);
    assert!(
        until_recorded(&app, &stream, "TokenRevoked").await,
        "the sweep revokes the deleted user's token"
    );
}

async fn the_role_query_counts_holders_and_lists_them(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, jill, _) = tenant_with_jill(&app, &["Account Administrator"]).await;
    for (email, roles) in [
        ("a@example.com", vec!["End User"]),
        ("b@example.com", vec!["End User"]),
        (
            "c@example.com",
            vec![
                "Network Administrator",
                "Virtual Infrastructure Administrator",
            ],
        ),
    ] {
        assert_eq!(
            app.create_user(&admin, Some(&tenant), &user_body(email, &roles))
                .await
                .status(),
            201
        );
    }
    let providers = app.users(&admin, None).await;
    let admin_id = providers["users"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.add_member(&admin, &tenant, &admin_id).await.status(),
        201
    );
    let roles: Value = app.get_json("/api/iam/Roles", &jill, None).await;
    let count = |name: &str| {
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["members"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count("Account Administrator"), 1);
    assert_eq!(count("End User"), 2);
    assert_eq!(count("Network Administrator"), 1);
    assert_eq!(count("Read-Only Administrator"), 0);
    assert_eq!(count("Organization Owner"), 1);

    let end_users: Value = app
        .get_json("/api/iam/Roles/6/Users?pageSize=1", &jill, None)
        .await;
    assert_eq!(end_users["users"].as_array().unwrap().len(), 1);
    assert_eq!(end_users["users"][0]["userName"], "a@example.com");
    let second_page: Value = app
        .get_json("/api/iam/Roles/6/Users?pageSize=1&page=2", &jill, None)
        .await;
    assert_eq!(second_page["users"][0]["userName"], "b@example.com");
    let owners: Value = app.get_json("/api/iam/Roles/100/Users", &jill, None).await;
    assert_eq!(
        owners["users"][0]["roles"]["roles"][0]["name"],
        "Organization Owner"
    );
    assert_eq!(owners["resultTotal"], 1);
    // A deleted Organization Owner is neither counted nor listed.
    let mut second = user_body(
        "second@provider.example.com",
        &["Provider Account Administrator"],
    );
    second["password"] = json!("seconds password");
    let second: Value = app
        .create_user(&admin, None, &second)
        .await
        .json()
        .await
        .unwrap();
    let second_id = second["id"].as_str().unwrap();
    let added = app.add_member(&admin, &tenant, second_id).await;
    assert_eq!(added.status(), 201);
    let owner_count = || async {
        let roles: Value = app.get_json("/api/iam/Roles", &jill, None).await;
        let owners: Value = app.get_json("/api/iam/Roles/100/Users", &jill, None).await;
        let counted = roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "Organization Owner")
            .unwrap()["members"]
            .clone();
        (
            counted,
            owners["resultTotal"].clone(),
            owners["users"].as_array().unwrap().len(),
        )
    };
    assert_eq!(owner_count().await, (json!(2), json!(2), 2));
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/iam/Users/{second_id}"),
            &admin,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(owner_count().await, (json!(1), json!(1), 1));
    assert_eq!(
        error_of(
            app.request(Method::GET, "/api/iam/Roles/101/Users", &jill, None)
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        404,
        "a provider role is not a tenant's"
    );
}

async fn a_provider_administrators_token_in_a_tenant_acts_only_there(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let globex = app.create_tenant(&admin, "Globex", true).await;
    let providers = app.users(&admin, None).await;
    let admin_id = providers["users"][0]["id"].as_str().unwrap().to_owned();
    let in_acme = |method: Method, path: &str| app.request(method, path, &admin, Some(&acme));
    let tokens = format!("/api/iam/Users/{admin_id}/tokens");
    let body = json!({ "name": "acme", "description": "acme scripts", "lifetimeDays": 30 });
    let (status, _) = error_of(
        in_acme(Method::POST, &tokens)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        status, 404,
        "not yet Organization Owner of Acme: not one of its users"
    );
    let member = app.add_member(&admin, &acme, &admin_id).await;
    assert_eq!(member.status(), 201);
    let token: Value = in_acme(Method::POST, &tokens)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["organizationId"], acme.as_str());
    let secret: Value = in_acme(
        Method::POST,
        &format!("{tokens}/{}/download", token["id"].as_str().unwrap()),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = secret["token"].as_str().unwrap().to_owned();
    let as_token = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("Authorization", format!("Token {secret}"))
            .header("Accept", crate::support::VCA_JSON)
    };

    // Inside Acme, with or without the header (its id in any case).
    let users: Value = as_token(Method::GET, "/api/iam/Users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, [crate::support::ADMIN], "Acme's Organization Owner");
    let shouted = as_token(Method::GET, "/api/iam/Users")
        .header("X-VMware-VCloud-Tenant-Context", acme.to_uppercase())
        .send()
        .await
        .unwrap();
    assert_eq!(shouted.status(), 200);
    let organizations: Value = as_token(Method::GET, "/api/org")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let visible: Vec<&str> = organizations["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|org| org["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        visible,
        [acme.as_str()],
        "a token sees from its organization"
    );

    // Anything of the provider or of Globex: the scoping message, before
    // any permission check.
    let refusals = [
        as_token(Method::GET, "/api/iam/Users").header("X-VMware-VCloud-Tenant-Context", &globex),
        as_token(Method::POST, "/api/orgs").json(&json!({ "name": "Initech" })),
        as_token(Method::POST, &format!("/api/orgs/{globex}/members"))
            .json(&json!({ "userId": admin_id })),
        as_token(Method::GET, &format!("/api/iam/Users/{admin_id}/tokens"))
            .header("X-VMware-VCloud-Tenant-Context", &globex),
    ];
    for request in refusals {
        let (status, message) = error_of(request.send().await.unwrap()).await;
        assert_eq!(
            (status, message.as_str()),
            (403, "API token is not scoped to this organization.")
        );
    }
    let organizations: Value = app.get_json("/api/org", &admin, None).await;
    assert_eq!(
        organizations["organizations"].as_array().unwrap().len(),
        3,
        "no tenant was created"
    );
}

async fn a_role_without_token_authentication_stops_the_users_tokens(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, jill, jill_id) = tenant_with_jill(&app, &["End User"]).await;
    let enabled: Value = create_token(&app, &jill, &jill_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = download(&app, &jill, &jill_id, enabled["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let secret = secret["token"].as_str().unwrap().to_owned();
    let pending: Value = create_token(&app, &jill, &jill_id, 30)
        .await
        .json()
        .await
        .unwrap();
    let pending = pending["id"].as_str().unwrap().to_owned();
    let path = format!("/api/iam/Users/{jill_id}");
    let set_role = |role: &'static str| {
        let app = &app;
        let (admin, tenant, path) = (&admin, &tenant, &path);
        async move {
            let mut user: Value = app.get_json(path, admin, Some(tenant)).await;
            user["roles"] = json!({ "roles": [{ "name": role }] });
            let response = app
                .request(Method::PUT, path, admin, Some(tenant))
                .json(&user)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{role}");
        }
    };

    set_role("Read-Only Administrator").await;
    let (status, message) = error_of(with_token(&app, &secret, &path).send().await.unwrap()).await;
    assert_eq!(
        (status, message.as_str()),
        (
            403,
            "Token authentication is not enabled for the role Read-Only Administrator; sign in with a \
             password, or ask an administrator for a role that allows API tokens."
        )
    );
    // The role change ended jill's session: she signs in again.
    let jill = app.login("jill@example.com", "jills password").await;
    let (status, _) = error_of(download(&app, &jill, &jill_id, &pending).await).await;
    assert_eq!(status, 403, "nor can a pending token be downloaded");
    let revoked = app
        .request(
            Method::POST,
            &format!("/api/iam/Users/{jill_id}/tokens/{pending}/revoke"),
            &jill,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200, "its old tokens can still be revoked");

    set_role("End User").await;
    assert_eq!(
        with_token(&app, &secret, &path)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the role allows tokens again"
    );
}
