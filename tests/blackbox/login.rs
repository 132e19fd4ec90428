//! `POST /api/iam/login` and sessions.

use std::time::Duration;

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::Value;

use crate::support::{
    ADMIN, ADMIN_PASSWORD, VCA_JSON, error_of, spawn_app, spawn_app_with, user_body,
};

both_backends!(
    login_answers_201_with_a_token_and_refuses_alike_for_unknown_users_and_wrong_passwords,
    a_request_without_credentials_is_403_and_with_bad_ones_401,
    an_inactive_user_cannot_log_in_and_its_session_stops_working,
    an_expired_session_is_refused,
    logout_ends_the_session_at_once_and_is_audited,
    expired_sessions_are_purged,
    odd_requests_are_answered_in_the_dialects_error_form,
    a_role_change_ends_the_users_sessions,
    two_hundred_parallel_logins_keep_memory_flat,
    failed_logins_are_slowed_then_refused_per_name_and_per_address,
);

async fn login_answers_201_with_a_token_and_refuses_alike_for_unknown_users_and_wrong_passwords(
    kind: Kind,
) {
    let app = spawn_app(kind).await;
    let response = app.try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], VCA_JSON);
    assert!(response.headers()["vchs-authorization"].len() >= 40);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        serde_json::json!({ "serviceGroupIds": [] })
    );

    let wrong_password = error_of(app.try_login(ADMIN, "not the password").await).await;
    let unknown_user = error_of(app.try_login("nobody@example.com", ADMIN_PASSWORD).await).await;
    assert_eq!(wrong_password.0, 401);
    assert_eq!(wrong_password, unknown_user, "the same answer for both");

    let no_credentials = app
        .client
        .post(app.url("/api/iam/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(no_credentials).await.0, 403);
}

async fn a_request_without_credentials_is_403_and_with_bad_ones_401(kind: Kind) {
    let app = spawn_app(kind).await;
    let anonymous = app
        .client
        .get(app.url("/api/iam/Users"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(anonymous).await.0, 403);
    let forged = app
        .request(Method::GET, "/api/iam/Users", "forged-token", None)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(forged).await.0, 401);
    let basic = app
        .client
        .get(app.url("/api/iam/Users"))
        .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(basic).await.0, 401);
}

async fn an_inactive_user_cannot_log_in_and_its_session_stops_working(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("jill@example.com", &["Account Administrator"]);
    body["password"] = serde_json::json!("jills password");
    let created: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        created.get("password").is_none(),
        "a password is never answered"
    );
    let jill = app.login("jill@example.com", "jills password").await;
    assert_eq!(
        app.request(Method::GET, "/api/iam/Users", &jill, None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let mut inactive = created.clone();
    inactive["state"] = serde_json::json!("Inactive");
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
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
        error_of(app.try_login("jill@example.com", "jills password").await)
            .await
            .0,
        401
    );
    let refused = app
        .request(Method::GET, "/api/iam/Users", &jill, None)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(refused).await.0, 401);
}

async fn an_expired_session_is_refused(kind: Kind) {
    let app = spawn_app_with(kind, &[("IAM_SESSION_TTL_SECS", "1")]).await;
    let admin = app.admin().await;
    assert_eq!(
        app.request(Method::GET, "/api/iam/Users", &admin, None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = app
        .request(Method::GET, "/api/iam/Users", &admin, None)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(expired).await.0, 401);
}

async fn logout_ends_the_session_at_once_and_is_audited(kind: Kind) {
    let app = spawn_app(kind).await;
    let response = app.try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let session = response.headers()["vchs-authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    // Used once, so that the service has it among the callers it resolved
    // in the last half second.
    assert_eq!(
        app.request(Method::GET, "/api/iam/Users", &session, None)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let logout = app
        .request(Method::POST, "/api/iam/logout", &session, None)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let after = app
        .request(Method::GET, "/api/iam/Users", &session, None)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "the session ended at once");
    let again = app
        .request(Method::POST, "/api/iam/logout", &session, None)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    // The logout is in the provider's audit.
    let auditor = app.admin().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = app
            .get_json("/api/iam/audit?type=LoggedOut", &auditor, None)
            .await;
        if let Some(entry) = page["entries"].as_array().unwrap().first() {
            assert_eq!(entry["details"]["userName"], ADMIN);
            assert!(
                !page.to_string().contains(&session),
                "no session token in the audit"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no LoggedOut in the audit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn expired_sessions_are_purged(kind: Kind) {
    use sqlx::Connection;
    let app = spawn_app_with(
        kind,
        &[("IAM_SESSION_TTL_SECS", "1"), ("IAM_TOKEN_SWEEP_SECS", "1")],
    )
    .await;
    app.admin().await;
    sqlx::any::install_default_drivers();
    let mut database = sqlx::AnyConnection::connect(app.database_url())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&mut database)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} expired sessions are still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn odd_requests_are_answered_in_the_dialects_error_form(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    // Two tenant-context headers: which one is meant cannot be guessed.
    let two = app
        .request(Method::GET, "/api/iam/Users", &admin, Some(&tenant))
        .header("X-VMware-VCloud-Tenant-Context", tenant.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 400);
    assert!(
        error_of(two)
            .await
            .1
            .contains("one X-VMware-VCloud-Tenant-Context")
    );
    // A query string that cannot be read.
    let count = app
        .request(
            Method::GET,
            "/api/iam/Users?count=abc",
            &admin,
            Some(&tenant),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 400);
    assert_eq!(count.headers()["content-type"], VCA_JSON);
    let (_, message) = error_of(count).await;
    assert!(
        message.contains("query string") && !message.contains("abc"),
        "{message}"
    );
    // No such route, in either dialect.
    let missing = app
        .request(Method::GET, "/api/iam/Nothing", &admin, None)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(error_of(missing).await.1.contains("No such resource"));
    let scim = app
        .client
        .get(app.url("/scim/v2/Nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(scim.status(), 404);
    let body: Value = scim.json().await.unwrap();
    assert_eq!(
        body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    // A value in the wrong place may be a secret: never repeated.
    let mut body = user_body("jill@example.com", &["End User"]);
    body["password"] = serde_json::json!(86_753_091_234_u64);
    let wrong = app
        .request(Method::POST, "/api/iam/Users", &admin, Some(&tenant))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let (_, message) = error_of(wrong).await;
    assert!(
        message.contains("expected a string") && !message.contains("8675309"),
        "{message}"
    );
    // What the published vCloud Air client asks for after every login.
    let instances = app
        .request(Method::GET, "/api/sc/instances", &admin, None)
        .send()
        .await
        .unwrap();
    assert_eq!(instances.status(), 200);
    assert_eq!(
        instances.json::<Value>().await.unwrap(),
        serde_json::json!({ "instances": [] })
    );
}

async fn a_role_change_ends_the_users_sessions(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("jill@example.com", &["Read-Only Administrator"]);
    body["password"] = serde_json::json!("a good long password");
    let created: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    let jill = app.login("jill@example.com", "a good long password").await;
    let users = app
        .request(Method::GET, "/api/iam/Users", &jill, None)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    let path = format!("/api/iam/Users/{}", created["id"].as_str().unwrap());
    let mut changed = app.get_json(&path, &admin, Some(&tenant)).await;
    changed["roles"] = serde_json::json!({"roles": [{"name": "End User"}]});
    let put = app
        .request(Method::PUT, &path, &admin, Some(&tenant))
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let after = app
        .request(Method::GET, "/api/iam/Users", &jill, None)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        401,
        "the session ended with the role change"
    );
    // A new login works, under the new role.
    let again = app.login("jill@example.com", "a good long password").await;
    let own = app.get_json(&path, &again, None).await;
    assert_eq!(own["roles"]["roles"][0]["name"], "End User");
}

/// Argon2id takes 19 MiB per hash; unbounded, 64 parallel logins took
/// `iamd` from 236 MB to 1.37 GB. Hashing is bounded to about a core each:
/// the rest wait their turn, or hear 503 with Retry-After.
async fn two_hundred_parallel_logins_keep_memory_flat(kind: Kind) {
    let app = spawn_app(kind).await;
    app.admin().await;
    let (_, peak_before) = app.memory_kib();
    let logins = (0..200).map(|n| {
        let app = &app;
        async move {
            let password = if n % 2 == 0 {
                ADMIN_PASSWORD
            } else {
                "a wrong password"
            };
            let response = app.try_login(ADMIN, password).await;
            let status = response.status().as_u16();
            if status == 503 {
                assert_eq!(response.headers()["retry-after"], "1");
            }
            status
        }
    });
    let statuses = futures::future::join_all(logins).await;
    assert!(
        statuses
            .iter()
            .all(|status| [201, 401, 429, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&201),
        "some logins went through: {statuses:?}"
    );
    let (_, peak_after) = app.memory_kib();
    let grew_mib = peak_after.saturating_sub(peak_before) / 1024;
    println!(
        "200 parallel logins: peak RSS {} MiB before, {} MiB after (+{grew_mib} MiB); {} answered 503",
        peak_before / 1024,
        peak_after / 1024,
        statuses.iter().filter(|status| **status == 503).count()
    );
    assert!(
        grew_mib < 120,
        "the peak grew by {grew_mib} MiB under 200 parallel logins"
    );
}

async fn failed_logins_are_slowed_then_refused_per_name_and_per_address(kind: Kind) {
    let app = spawn_app_with(
        kind,
        &[
            ("IAM_LOGIN_MAX_FAILURES", "3"),
            ("IAM_LOGIN_MAX_FAILURES_PER_ADDRESS", "8"),
            ("IAM_LOGIN_LOCKOUT_SECS", "600"),
        ],
    )
    .await;
    let wrong = |name: &'static str| {
        let app = &app;
        async move { app.try_login(name, "a wrong password").await.status() }
    };
    // Two failures, then a success: the count starts again.
    assert_eq!(wrong(ADMIN).await, 401);
    assert_eq!(wrong(ADMIN).await, 401);
    assert_eq!(app.try_login(ADMIN, ADMIN_PASSWORD).await.status(), 201);
    // Three failures in a row: the name is refused, the right password too.
    for _ in 0..3 {
        assert_eq!(wrong(ADMIN).await, 401);
    }
    let refused = app.try_login(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    // A name nobody has is counted and refused alike: no existence oracle.
    for _ in 0..3 {
        assert_eq!(wrong("nobody@example.com").await, 401);
    }
    assert_eq!(wrong("nobody@example.com").await, 429);
    // The address has now failed 8 times: any other name from it is refused.
    assert_eq!(wrong("somebody@example.com").await, 429);
    // The refusals are audited, in the provider's organization here.
    let store = iam_eventstore::connect(app.database_url()).await.unwrap();
    let log = store.read_all(1, 1000).await.unwrap();
    let throttled = log
        .iter()
        .filter(|e| e.event_type == "LoginFailed" && e.data["reason"] == "throttled")
        .count();
    // ADMIN's lockout, then the unknown name's (whose refusal is also the
    // address's first); the address's later refusal of another name is not
    // logged again.
    assert_eq!(
        throttled, 2,
        "each lockout's first refusal is in the log, once"
    );
}
