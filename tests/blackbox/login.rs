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
