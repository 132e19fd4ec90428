//! `/api/iam/Users` end to end: the documented example, the role rule, every
//! PUT rule, deletion, duplicates under concurrency, and refusals of bad input.

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{VCA_JSON, error_of, spawn_app, spawn_app_with, user_body};

both_backends!(
    the_documented_example_is_answered_with_every_documented_field,
    of_the_32_subsets_of_tenant_roles_the_allowed_ones_are_created_and_the_rest_refused,
    put_replaces_changeable_elements_and_refuses_every_immutable_one,
    put_honours_if_match,
    concurrent_puts_with_one_etag_change_the_user_once_and_the_rest_get_412,
    a_name_with_a_control_character_is_refused_with_400_and_writes_nothing,
    a_user_created_with_a_password_can_log_in_as_soon_as_it_is_answered,
    an_idempotency_key_answers_a_retry_with_the_original_user_even_after_a_restart,
    organizations_and_tokens_honour_idempotency_keys,
    a_deleted_user_is_gone_from_get_and_list,
    twenty_concurrent_creates_with_one_user_name_yield_exactly_one_user,
    bad_input_is_refused_in_the_dialects_error_format_and_writes_nothing,
    a_user_as_it_was_at_a_past_moment_is_answered_with_as_of,
    every_event_records_who_did_it_where_and_in_which_request,
    x_forwarded_for_is_believed_only_from_a_trusted_proxy,
    only_a_provider_administrator_touches_provider_administrators_and_nobody_changes_itself,
);

async fn the_documented_example_is_answered_with_every_documented_field(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let response = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], VCA_JSON);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/iam/Users/{id}"));
    assert_eq!(created["companyId"], tenant.as_str());
    assert_eq!(created["schemas"], json!(["urn:scim:schemas:core:1.0"]));
    assert_eq!(created["state"], "Active");
    assert_eq!(created["customerNumber"], Value::Null);
    assert_eq!(
        (created["email"].as_str(), created["userName"].as_str()),
        (Some("jill@example.com"), Some("jill@example.com"))
    );
    assert_eq!(
        (
            created["givenName"].as_str(),
            created["familyName"].as_str()
        ),
        (Some("Jill"), Some("test12345"))
    );
    assert_eq!(
        created["roles"],
        json!({ "roles": [{ "description": "Allows creation and management of VMs.", "name": "End User", "id": "6" }] })
    );
    assert_eq!(created["serviceGroupIds"], json!({ "serviceGroupIds": [] }));
    assert_eq!(
        (
            created["tosAcceptDate"].clone(),
            created["tosAccepted"].clone()
        ),
        (Value::Null, json!(false))
    );
    let meta = &created["meta"];
    assert!(
        meta["created"].as_i64().unwrap() > 1_700_000_000_000,
        "epoch milliseconds: {meta}"
    );
    assert_eq!(meta["created"], meta["modified"]);

    let fetched = app
        .request(Method::GET, &location, &admin, Some(&tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["etag"], "\"0\"");
    assert_eq!(fetched.json::<Value>().await.unwrap(), created);

    let list: Value = app.users(&admin, Some(&tenant)).await;
    assert_eq!(list, json!({ "users": [created.clone()] }));
    let filtered: Value = app
        .request(
            Method::GET,
            "/api/iam/Users?filter=userName%20eq%20%22JILL@example.com%22",
            &admin,
            Some(&tenant),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["users"].as_array().unwrap().len(), 1);
}

async fn of_the_32_subsets_of_tenant_roles_the_allowed_ones_are_created_and_the_rest_refused(
    kind: Kind,
) {
    const ROLES: [&str; 5] = [
        "Account Administrator",
        "Virtual Infrastructure Administrator",
        "Network Administrator",
        "Read-Only Administrator",
        "End User",
    ];
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut created = 0;
    for mask in 0u32..32 {
        let roles: Vec<&str> = ROLES
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, r)| *r)
            .collect();
        let email = format!("user{mask}@example.com");
        let response = app
            .create_user(&admin, Some(&tenant), &user_body(&email, &roles))
            .await;
        let allowed = roles.len() == 1
            || roles
                == [
                    "Virtual Infrastructure Administrator",
                    "Network Administrator",
                ];
        if allowed {
            assert_eq!(response.status(), 201, "{roles:?}");
            created += 1;
        } else {
            let (status, message) = error_of(response).await;
            assert_eq!(status, 400, "{roles:?}");
            if roles.len() > 1 {
                for role in &roles {
                    assert!(message.contains(role), "{roles:?}: {message}");
                }
            }
        }
    }
    let list: Value = app.users(&admin, Some(&tenant)).await;
    assert_eq!(list["users"].as_array().unwrap().len(), created);
    assert_eq!(created, 6);
}

async fn put_replaces_changeable_elements_and_refuses_every_immutable_one(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let created: Value = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
    let put = |body: Value| {
        app.request(Method::PUT, &path, &admin, Some(&tenant))
            .json(&body)
            .send()
    };

    let mut changed = created.clone();
    changed["email"] = json!("jill.hill@example.com");
    changed["familyName"] = json!("Hill");
    changed["state"] = json!("Inactive");
    // Role ids and descriptions in the body are ignored: names count.
    changed["roles"] = json!({ "roles": [
        { "name": "Network Administrator", "id": "999", "description": "ignored" },
        { "name": "Virtual Infrastructure Administrator" } ] });
    let response = put(changed.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"4\"");
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["email"], "jill.hill@example.com");
    assert_eq!(
        replaced["userName"], "jill@example.com",
        "updating email does not change userName"
    );
    assert_eq!(replaced["state"], "Inactive");
    assert_eq!(replaced["roles"]["roles"][0]["id"], "3");
    assert!(replaced["meta"]["modified"].as_i64() >= replaced["meta"]["created"].as_i64());

    for (element, value) in [
        ("userName", json!("other@example.com")),
        ("id", json!("00000000-0000-0000-0000-000000000000")),
        ("companyId", json!("00000000-0000-0000-0000-000000000000")),
        ("tosAccepted", json!(true)),
        ("tosAcceptDate", json!(1400665149048_i64)),
        ("meta", json!({ "created": 1, "modified": 2 })),
    ] {
        let mut body = replaced.clone();
        body[element] = value;
        let (status, message) = error_of(put(body).await.unwrap()).await;
        assert_eq!(status, 400, "{element}");
        assert!(message.contains(element), "{element}: {message}");
    }
    for element in [
        "email",
        "givenName",
        "familyName",
        "state",
        "roles",
        "userName",
    ] {
        let mut body = replaced.clone();
        body.as_object_mut().unwrap().remove(element);
        let (status, message) = error_of(put(body).await.unwrap()).await;
        assert_eq!(status, 400, "{element}");
        assert!(message.contains(element), "{element}: {message}");
    }
    let mut conflicting = replaced.clone();
    conflicting["roles"] =
        json!({ "roles": [{ "name": "End User" }, { "name": "Account Administrator" }] });
    assert_eq!(error_of(put(conflicting).await.unwrap()).await.0, 400);

    let now: Value = app
        .request(Method::GET, &path, &admin, Some(&tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now, replaced, "refused PUTs wrote nothing");
}

async fn put_honours_if_match(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let created: Value = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
    let mut body = created.clone();
    body["givenName"] = json!("Jillian");
    let stale = app
        .request(Method::PUT, &path, &admin, Some(&tenant))
        .header("If-Match", "\"7\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(stale).await.0, 412);
    let fresh = app
        .request(Method::PUT, &path, &admin, Some(&tenant))
        .header("If-Match", "\"0\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let again = app
        .request(Method::PUT, &path, &admin, Some(&tenant))
        .header("If-Match", "\"0\"")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(again).await.0,
        412,
        "the ETag moved with the change"
    );
}

async fn a_deleted_user_is_gone_from_get_and_list(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let created: Value = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
    let deleted = app
        .request(Method::DELETE, &path, &admin, Some(&tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let fetched = app
        .request(Method::GET, &path, &admin, Some(&tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(fetched).await.0, 404);
    let list: Value = app.users(&admin, Some(&tenant)).await;
    assert_eq!(list, json!({ "users": [] }));
    let again = app
        .request(Method::DELETE, &path, &admin, Some(&tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await.0, 404);
    // The name is free again.
    let recreated = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await;
    assert_eq!(recreated.status(), 201);
}

async fn twenty_concurrent_creates_with_one_user_name_yield_exactly_one_user(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    // Differently cased: user names are unique ignoring case.
    let bodies: Vec<Value> = (0..20)
        .map(|i| {
            user_body(
                if i % 2 == 0 {
                    "race@example.com"
                } else {
                    "RACE@example.com"
                },
                &["End User"],
            )
        })
        .collect();
    let requests = bodies
        .iter()
        .map(|body| app.create_user(&admin, Some(&tenant), body));
    let responses = futures::future::join_all(requests).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    let list: Value = app.users(&admin, Some(&tenant)).await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1);
    let duplicate = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("Race@Example.com", &["End User"]),
        )
        .await;
    let (status, message) = error_of(duplicate).await;
    assert_eq!(status, 409);
    assert!(message.contains("already taken"), "{message}");
}

async fn bad_input_is_refused_in_the_dialects_error_format_and_writes_nothing(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let post = || app.request(Method::POST, "/api/iam/Users", &admin, Some(&tenant));

    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            post().json(&user_body("not-an-address", &["End User"])),
            400,
            "not a valid email",
        ),
        (
            post().json(&{
                let mut b = user_body("jill@example.com", &["End User"]);
                b["userName"] = json!("jack@example.com");
                b
            }),
            400,
            "must be the same address",
        ),
        (
            post().json(&user_body("jill@example.com", &["Superuser"])),
            400,
            "not a role",
        ),
        (
            post().json(&{
                let mut b = user_body("jill@example.com", &["End User"]);
                b.as_object_mut().unwrap().remove("givenName");
                b
            }),
            400,
            "givenName",
        ),
        (
            post().json(&user_body("jill@example.com", &["Organization Owner"])),
            400,
            "cannot be given",
        ),
        (
            post()
                .header("Content-Type", "application/json")
                .body("{\"state\": "),
            400,
            "not valid JSON",
        ),
        (
            post()
                .header("Content-Type", "application/json")
                .body(vec![0xff, 0xfe, b'{']),
            400,
            "not valid JSON",
        ),
        (
            post().header("Content-Type", "text/plain").body("{}"),
            415,
            "Content-Type",
        ),
        (
            post()
                .header("Content-Type", "application/json")
                .body(vec![b' '; 1024 * 1024 + 10]),
            413,
            "larger than",
        ),
        (
            app.client
                .get(app.url("/api/iam/Users"))
                .bearer_auth(&admin)
                .header("Accept", "application/json;version=5.6"),
            406,
            "version 5.7",
        ),
    ];
    for (request, expected, words) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["content-type"], VCA_JSON);
        let (status, message) = error_of(response).await;
        assert_eq!(status, expected, "{message}");
        assert!(message.contains(words), "expected `{words}` in: {message}");
    }
    // Injection strings are stored literally.
    let mut body = user_body("robert@example.com", &["End User"]);
    body["familyName"] = json!("Robert'); DROP TABLE read_users;--");
    let created: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(created["familyName"], "Robert'); DROP TABLE read_users;--");
    let list: Value = app.users(&admin, Some(&tenant)).await;
    assert_eq!(
        list["users"].as_array().unwrap().len(),
        1,
        "only the valid user was written"
    );
    // No version: the current one.
    let unversioned = app
        .client
        .get(app.url("/api/iam/Users"))
        .bearer_auth(&admin)
        .header("Accept", "application/json")
        .header("X-VMware-VCloud-Tenant-Context", &tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(unversioned.status(), 200);
    assert_eq!(unversioned.headers()["content-type"], VCA_JSON);
}

async fn a_user_as_it_was_at_a_past_moment_is_answered_with_as_of(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let created: Value = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let between = chrono_now();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let mut body = created.clone();
    body["givenName"] = json!("Jillian");
    assert_eq!(
        app.request(Method::PUT, &path, &admin, Some(&tenant))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let then: Value = app
        .request(
            Method::GET,
            &format!("{path}?asOf={between}"),
            &admin,
            Some(&tenant),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(then["givenName"], "Jill");
    let before = app
        .request(
            Method::GET,
            &format!("{path}?asOf=2000-01-01T00:00:00Z"),
            &admin,
            Some(&tenant),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(before).await.0, 404);
    let bad = app
        .request(
            Method::GET,
            &format!("{path}?asOf=yesterday"),
            &admin,
            Some(&tenant),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(bad).await.0, 400);
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn every_event_records_who_did_it_where_and_in_which_request(kind: Kind) {
    // The peer is 127.0.0.1, which is not a trusted proxy here: the
    // X-Forwarded-For a client sends is not believed.
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("jill@example.com", &["End User"]);
    body["password"] = json!("a secret password");
    let response = app
        .request(Method::POST, "/api/iam/Users", &admin, Some(&tenant))
        .header("X-Request-Id", "req-42")
        .header("User-Agent", "audit-test/1.0")
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        request_id.len(),
        36,
        "the server's own id answers, never the client's instead: {request_id}"
    );
    let created: Value = response.json().await.unwrap();
    let generated = app
        .request(Method::GET, "/api/iam/Users", &admin, Some(&tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(
        generated.headers()["x-request-id"].len(),
        36,
        "one is generated when absent"
    );

    let providers: Value = app.users(&admin, None).await;
    let admin_user = &providers["users"][0];
    let store = iam_eventstore::connect(app.database_url()).await.unwrap();
    let log = store.read_all(1, 1000).await.unwrap();
    let user_created = log
        .iter()
        .find(|e| e.event_type == "UserCreated" && e.data["userName"] == "jill@example.com")
        .expect("the creation is in the log");
    assert_eq!(
        user_created.stream,
        format!("user-{}", created["id"].as_str().unwrap())
    );
    let metadata = &user_created.metadata;
    assert_eq!(metadata["requestId"], request_id.as_str());
    assert_eq!(metadata["clientRequestId"], "req-42");
    assert_eq!(metadata["actor"], admin_user["id"]);
    assert_eq!(metadata["actorUserName"], admin_user["userName"]);
    assert_eq!(metadata["actorOrganization"], admin_user["companyId"]);
    assert_eq!(metadata["organization"], tenant.as_str());
    assert_eq!(metadata["authentication"], json!({"method": "session"}));
    assert_eq!(metadata["sourceAddress"], "127.0.0.1");
    assert_eq!(metadata["userAgent"], "audit-test/1.0");
    assert!(metadata.as_object().unwrap().contains_key("traceId"));

    // With an API token, the metadata names the token.
    let admin_id = admin_user["id"].as_str().unwrap();
    let token: Value = app
        .create_token(&admin, admin_id, 1)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap();
    let secret: Value = app
        .download_token(&admin, admin_id, token_id)
        .await
        .json()
        .await
        .unwrap();
    let created = app
        .client
        .post(app.url("/api/iam/Users"))
        .header(
            "Authorization",
            format!("Token {}", secret["token"].as_str().unwrap()),
        )
        .header("Accept", VCA_JSON)
        .json(&user_body(
            "tok@example.com",
            &["Provider Business Specialist"],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let log = store.read_all(1, 1000).await.unwrap();
    let by_token = log
        .iter()
        .find(|e| e.event_type == "UserCreated" && e.data["userName"] == "tok@example.com")
        .expect("the creation is in the log");
    assert_eq!(
        by_token.metadata["authentication"],
        json!({"method": "apiToken", "tokenId": token_id})
    );
    let everything = serde_json::to_string(
        &log.iter()
            .map(|e| (&e.data, &e.metadata))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        !everything.contains("a secret password"),
        "no password reaches the log"
    );
    assert!(
        !everything.contains("argon2"),
        "no password hash reaches the log"
    );
    assert!(
        log.iter().any(|e| e.event_type == "UserPasswordSet"),
        "only the fact that it was set"
    );
}

async fn concurrent_puts_with_one_etag_change_the_user_once_and_the_rest_get_412(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let created: Value = app
        .create_user(
            &admin,
            Some(&tenant),
            &user_body("jill@example.com", &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
    let puts = (0..8).map(|i| {
        let mut body = created.clone();
        body["givenName"] = json!(format!("Jill {i}"));
        app.request(Method::PUT, &path, &admin, Some(&tenant))
            .header("If-Match", "\"0\"")
            .json(&body)
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(puts)
        .await
        .into_iter()
        .map(|response| response.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "one winner: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 412),
        "{statuses:?}"
    );
    let user = app.get_json(&path, &admin, Some(&tenant)).await;
    assert_eq!(user["givenName"].as_str().unwrap().len(), "Jill 0".len());
}

async fn a_name_with_a_control_character_is_refused_with_400_and_writes_nothing(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("jill@example.com", &["End User"]);
    body["givenName"] = json!("Jill\u{0}");
    let refused = app.create_user(&admin, Some(&tenant), &body).await;
    let (status, message) = error_of(refused).await;
    assert_eq!(status, 400);
    assert!(message.contains("control characters"), "{message}");
    let users = app.users(&admin, Some(&tenant)).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 0);
}

async fn a_user_created_with_a_password_can_log_in_as_soon_as_it_is_answered(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    for i in 0..5 {
        let email = format!("user{i}@example.com");
        let mut body = user_body(&email, &["End User"]);
        body["password"] = json!("correct horse battery");
        let created = app.create_user(&admin, Some(&tenant), &body).await;
        assert_eq!(created.status(), 201);
        let login = app.try_login(&email, "correct horse battery").await;
        assert_eq!(login.status(), 201, "user {i} logs in right away");
    }
}

async fn an_idempotency_key_answers_a_retry_with_the_original_user_even_after_a_restart(
    kind: Kind,
) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let body = user_body("jill@example.com", &["End User"]);
    let create = |app: &crate::support::TestApp, body: &Value, key: &str| {
        app.request(Method::POST, "/api/iam/Users", &admin, Some(&tenant))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
    };
    // Five at once with one key: one user, and every answer names it.
    let answers = futures::future::join_all((0..5).map(|_| create(&app, &body, "k-1"))).await;
    let mut ids = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 201);
        let user: Value = answer.json().await.unwrap();
        ids.push(user["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let users = app.users(&admin, Some(&tenant)).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);

    // The same key with another body is 422, and writes nothing.
    let other = user_body("jack@example.com", &["End User"]);
    let (status, message) = error_of(create(&app, &other, "k-1").await.unwrap()).await;
    assert_eq!(status, 422);
    assert!(message.contains("different request"), "{message}");

    // After a restart, the retry still answers the original user.
    let app = app.restart();
    let admin_again = app.admin().await;
    let retry = app
        .request(Method::POST, "/api/iam/Users", &admin_again, Some(&tenant))
        .header("Idempotency-Key", "k-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    let user: Value = retry.json().await.unwrap();
    assert_eq!(user["id"].as_str().unwrap(), ids[0]);
    let users = app.users(&admin_again, Some(&tenant)).await;
    assert_eq!(users["users"].as_array().unwrap().len(), 1);

    // Without a key, the same body is a new request: the name is taken.
    let again = app.create_user(&admin_again, Some(&tenant), &body).await;
    assert_eq!(again.status(), 409);
}

async fn organizations_and_tokens_honour_idempotency_keys(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let create_org = |name: &str, key: &str| {
        app.request(Method::POST, "/api/orgs", &admin, None)
            .header("Idempotency-Key", key.to_owned())
            .json(&json!({ "name": name }))
            .send()
    };
    let first: Value = create_org("Acme", "org-1")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let retry = create_org("Acme", "org-1").await.unwrap();
    assert_eq!(retry.status(), 201);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    let (status, _) = error_of(create_org("Globex", "org-1").await.unwrap()).await;
    assert_eq!(status, 422);
    let orgs = app.get_json("/api/org", &admin, None).await;
    let tenants = orgs.to_string().matches("Tenant").count();
    assert_eq!(tenants, 1, "{orgs}");

    let me = app
        .get_json(
            "/api/iam/Users?filter=userName%20eq%20%22admin%40provider.example.com%22",
            &admin,
            None,
        )
        .await;
    let me = me["users"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/iam/Users/{me}/tokens");
    let create_token = |name: &str| {
        app.request(Method::POST, &path, &admin, None)
            .header("Idempotency-Key", "token-1")
            .json(&json!({ "name": name, "description": "", "lifetimeDays": 30 }))
            .send()
    };
    let first: Value = create_token("ci").await.unwrap().json().await.unwrap();
    let retry = create_token("ci").await.unwrap();
    assert_eq!(retry.status(), 201);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["id"], first["id"]);
    let (status, _) = error_of(create_token("other").await.unwrap()).await;
    assert_eq!(status, 422);
    let tokens = app.get_json(&path, &admin, None).await;
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1, "{tokens}");
}

async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy(kind: Kind) {
    // The test client plays the proxy at 127.0.0.1.
    let app = spawn_app_with(kind, &[("IAM_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    for (forwarded, expected, email) in [
        // The nearest address that is not a trusted proxy is the client.
        ("198.51.100.7, 203.0.113.9", "203.0.113.9", "a@example.com"),
        ("203.0.113.9, 10.1.2.3", "203.0.113.9", "b@example.com"),
        // Nonsense is not an address: the peer is.
        ("not an address", "127.0.0.1", "c@example.com"),
    ] {
        let response = app
            .request(Method::POST, "/api/iam/Users", &admin, Some(&tenant))
            .header("X-Forwarded-For", forwarded)
            .json(&user_body(email, &["End User"]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let store = iam_eventstore::connect(app.database_url()).await.unwrap();
        let log = store.read_all(1, 1000).await.unwrap();
        let created = log
            .iter()
            .find(|e| e.event_type == "UserCreated" && e.data["userName"] == email)
            .expect("the creation is in the log");
        assert_eq!(created.metadata["sourceAddress"], expected, "{forwarded}");
    }
}

async fn only_a_provider_administrator_touches_provider_administrators_and_nobody_changes_itself(
    kind: Kind,
) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let providers: Value = app.users(&admin, None).await;
    let bootstrap_id = providers["users"][0]["id"].as_str().unwrap().to_owned();
    let mut body = user_body(
        "paa@provider.example.com",
        &["Provider Account Administrator"],
    );
    body["password"] = json!("a good long password");
    let created = app.create_user(&admin, None, &body).await;
    assert_eq!(created.status(), 201);
    let paa_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let paa = app
        .login("paa@provider.example.com", "a good long password")
        .await;
    let put = |session: String, id: String, change: fn(&mut Value)| {
        let app = &app;
        async move {
            let path = format!("/api/iam/Users/{id}");
            let mut user = app.get_json(&path, &session, None).await;
            change(&mut user);
            let response = app
                .request(Method::PUT, &path, &session, None)
                .json(&user)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            if status == 200 {
                return (status, String::new());
            }
            let (_, message) = error_of(response).await;
            (status, message)
        }
    };
    // A Provider Account Administrator cannot promote itself …
    let (status, message) = put(paa.clone(), paa_id.clone(), |user| {
        user["roles"] = json!({"roles": [{"name": "Provider Administrator"}]});
    })
    .await;
    assert_eq!(status, 403, "{message}");
    // … nor demote or deactivate the Provider Administrator …
    for change in [
        (|user: &mut Value| {
            user["roles"] = json!({"roles": [{"name": "Provider Business Specialist"}]});
        }) as fn(&mut Value),
        |user: &mut Value| user["state"] = json!("Inactive"),
    ] {
        let (status, message) = put(paa.clone(), bootstrap_id.clone(), change).await;
        assert_eq!(status, 403, "{message}");
        assert!(
            message.contains("Only a Provider Administrator"),
            "{message}"
        );
    }
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/iam/Users/{bootstrap_id}"),
            &paa,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 403);
    // … nor create one.
    let created = app
        .create_user(
            &paa,
            None,
            &user_body("pa2@provider.example.com", &["Provider Administrator"]),
        )
        .await;
    assert_eq!(created.status(), 403);
    // Nobody changes its own roles or state, a Provider Administrator neither.
    let (status, message) = put(admin.clone(), bootstrap_id.clone(), |user| {
        user["state"] = json!("Inactive");
    })
    .await;
    assert_eq!(status, 403, "{message}");
    assert!(message.contains("your own roles or state"), "{message}");
    // What a Provider Administrator may do: promote the other.
    let (status, _) = put(admin.clone(), paa_id.clone(), |user| {
        user["roles"] = json!({"roles": [{"name": "Provider Administrator"}]});
    })
    .await;
    assert_eq!(status, 200);
    // An API token cannot mint API tokens: that needs a password session.
    let token: Value = app
        .create_token(&admin, &bootstrap_id, 1)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = app
        .download_token(&admin, &bootstrap_id, token["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let with_token = format!("Token {}", secret["token"].as_str().unwrap());
    let minted = app
        .client
        .post(app.url(&format!("/api/iam/Users/{bootstrap_id}/tokens")))
        .header("Authorization", &with_token)
        .header("Accept", VCA_JSON)
        .json(&json!({"name": "forever", "description": "x", "lifetimeDays": 365}))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 403);
    let (_, message) = error_of(minted).await;
    assert!(message.contains("password session"), "{message}");
    // It may still revoke itself.
    let revoked = app
        .client
        .post(app.url(&format!(
            "/api/iam/Users/{bootstrap_id}/tokens/{}/revoke",
            token["id"].as_str().unwrap()
        )))
        .header("Authorization", &with_token)
        .header("Accept", VCA_JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
}
