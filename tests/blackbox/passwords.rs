//! Passwords: change, set, and reset by e-mail through a real SMTP
//! exchange with a relay on loopback; the generated bootstrap password.

use std::time::Duration;

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{TestApp, error_of, spawn_app, spawn_app_with, user_body};

both_backends!(
    a_user_changes_its_password_and_its_other_sessions_end,
    an_administrator_sets_a_password_and_the_users_sessions_end,
    a_mailed_reset_code_sets_the_password_once,
    a_reset_is_mailed_once_the_relay_is_back,
);

/// An SMTP relay on loopback that keeps every message it is handed.
pub(crate) struct Relay {
    pub(crate) port: u16,
    mails: mpsc::UnboundedReceiver<String>,
}

impl Relay {
    pub(crate) async fn start() -> Relay {
        Self::start_on(0).await
    }

    async fn start_on(port: u16) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, mails) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, sender.clone()));
            }
        });
        Relay { port, mails }
    }

    /// The next message (headers and body), within `limit`.
    pub(crate) async fn next_mail(&mut self, limit: Duration) -> String {
        tokio::time::timeout(limit, self.mails.recv())
            .await
            .expect("a mail reaches the relay in time")
            .unwrap()
    }
}

/// The relay's side of one SMTP session: every command succeeds.
async fn converse(stream: tokio::net::TcpStream, mails: mpsc::UnboundedSender<String>) {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let _ = writer.write_all(b"220 relay.test ESMTP\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let command = line.to_ascii_uppercase();
        let answer: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250 relay.test\r\n"
        } else if command.starts_with("DATA") {
            let _ = writer.write_all(b"354 end with a dot\r\n").await;
            let mut mail = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "." {
                    break;
                }
                mail.push_str(line.strip_prefix('.').unwrap_or(&line));
                mail.push('\n');
            }
            let _ = mails.send(mail);
            b"250 queued\r\n"
        } else if command.starts_with("QUIT") {
            let _ = writer.write_all(b"221 bye\r\n").await;
            break;
        } else {
            b"250 ok\r\n"
        };
        if writer.write_all(answer).await.is_err() {
            break;
        }
    }
}

/// The code of the reset link in `mail` (undoing quoted-printable).
pub(crate) fn reset_code(mail: &str) -> String {
    let text = mail.replace("=\n", "").replace("=3D", "=");
    let link = "http://iam.example.test/console/reset.html#code=";
    let at = text
        .find(link)
        .unwrap_or_else(|| panic!("no reset link in:\n{mail}"));
    text[at + link.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// A tenant with user jill (End User, with `password`); the admin's session,
/// the tenant and jill's id.
async fn tenant_with_jill(app: &TestApp, password: &str) -> (String, String, String) {
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut body = user_body("jill@acme.example", &["End User"]);
    body["password"] = json!(password);
    let created = app.create_user(&admin, Some(&tenant), &body).await;
    assert_eq!(created.status(), 201);
    let jill: Value = created.json().await.unwrap();
    (admin, tenant, jill["id"].as_str().unwrap().to_owned())
}

async fn status_of_own_user(app: &TestApp, session: &str, id: &str) -> u16 {
    app.request(Method::GET, &format!("/api/iam/Users/{id}"), session, None)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn change_password(
    app: &TestApp,
    session: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    app.request(Method::PUT, "/api/iam/Users/password", session, None)
        .json(&json!({ "currentPassword": current, "newPassword": new }))
        .send()
        .await
        .unwrap()
}

async fn a_user_changes_its_password_and_its_other_sessions_end(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, jill) = tenant_with_jill(&app, "first password").await;
    let here = app.login("jill@acme.example", "first password").await;
    let elsewhere = app.login("jill@acme.example", "first password").await;

    let wrong = change_password(&app, &here, "not my password", "second password").await;
    assert_eq!(error_of(wrong).await.0, 403, "a wrong current password");
    let short = change_password(&app, &here, "first password", "short").await;
    let (status, message) = error_of(short).await;
    assert_eq!(status, 400);
    assert!(message.contains("between 8 and 256"), "{message}");

    let changed = change_password(&app, &here, "first password", "second password").await;
    assert_eq!(changed.status(), 204);
    assert_eq!(changed.headers()["cache-control"], "no-store");
    assert_eq!(
        status_of_own_user(&app, &here, &jill).await,
        200,
        "the session that changed it stays"
    );
    assert_eq!(
        status_of_own_user(&app, &elsewhere, &jill).await,
        401,
        "the others end"
    );
    assert_eq!(
        app.try_login("jill@acme.example", "first password")
            .await
            .status(),
        401
    );
    app.login("jill@acme.example", "second password").await;

    let history = app
        .get_json(
            &format!("/api/iam/Users/{jill}/history"),
            &admin,
            Some(&tenant),
        )
        .await
        .to_string();
    assert!(history.contains("UserPasswordSet"), "{history}");
    assert!(
        !history.contains("second password") && !history.contains("argon2"),
        "the log keeps no password: {history}"
    );
}

async fn an_administrator_sets_a_password_and_the_users_sessions_end(kind: Kind) {
    let app = spawn_app(kind).await;
    let (admin, tenant, jill) = tenant_with_jill(&app, "first password").await;
    let session = app.login("jill@acme.example", "first password").await;

    // An End User manages no one, not even through this door.
    let mut body = user_body("jack@acme.example", &["End User"]);
    body["password"] = json!("jacks password");
    let jack: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    let jack = jack["id"].as_str().unwrap();
    let refused = app
        .request(
            Method::PUT,
            &format!("/api/iam/Users/{jack}/password"),
            &session,
            None,
        )
        .json(&json!({ "newPassword": "taken over" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(refused).await.0, 403);

    let set = app
        .request(
            Method::PUT,
            &format!("/api/iam/Users/{jill}/password"),
            &admin,
            Some(&tenant),
        )
        .json(&json!({ "newPassword": "set by admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    assert_eq!(status_of_own_user(&app, &session, &jill).await, 401);
    app.login("jill@acme.example", "set by admin").await;
    assert_eq!(
        app.try_login("jill@acme.example", "first password")
            .await
            .status(),
        401
    );
}

/// iamd mailing through `relay`, with links to iam.example.test.
async fn app_with_relay(kind: Kind, relay_port: u16) -> TestApp {
    let smtp = format!("smtp://127.0.0.1:{relay_port}");
    spawn_app_with(
        kind,
        &[
            ("IAM_SMTP_URL", smtp.as_str()),
            ("IAM_MAIL_FROM", "iam@example.test"),
            ("IAM_PUBLIC_URL", "http://iam.example.test/"),
        ],
    )
    .await
}

async fn request_reset(app: &TestApp, admin: &str, tenant: &str, user: &str) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("/api/iam/Users/{user}/password/reset"),
        admin,
        Some(tenant),
    )
    .send()
    .await
    .unwrap()
}

async fn complete_reset(app: &TestApp, code: &str, new: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/iam/password/reset"))
        .json(&json!({ "code": code, "newPassword": new }))
        .send()
        .await
        .unwrap()
}

async fn a_mailed_reset_code_sets_the_password_once(kind: Kind) {
    let mut relay = Relay::start().await;
    let app = app_with_relay(kind, relay.port).await;
    let (admin, tenant, jill) = tenant_with_jill(&app, "forgotten password").await;
    let session = app.login("jill@acme.example", "forgotten password").await;

    let requested = request_reset(&app, &admin, &tenant, &jill).await;
    assert_eq!(requested.status(), 204);
    assert_eq!(
        status_of_own_user(&app, &session, &jill).await,
        401,
        "a reset ends the user's sessions"
    );
    let mail = relay.next_mail(Duration::from_secs(30)).await;
    assert!(mail.contains("To: jill@acme.example"), "{mail}");
    assert!(mail.contains("From: iam@example.test"), "{mail}");
    let first = reset_code(&mail);
    assert!(first.len() >= 43, "256 bits: {first}");

    // A newer request voids the older code.
    assert_eq!(
        request_reset(&app, &admin, &tenant, &jill).await.status(),
        204
    );
    let second = reset_code(&relay.next_mail(Duration::from_secs(30)).await);
    assert_ne!(first, second);
    let stale = complete_reset(&app, &first, "chosen by jill").await;
    let (status, message) = error_of(stale).await;
    assert_eq!(status, 403);
    assert!(message.contains("not valid"), "{message}");

    let short = complete_reset(&app, &second, "short").await;
    assert_eq!(error_of(short).await.0, 400);
    let reset = complete_reset(&app, &second, "chosen by jill").await;
    assert_eq!(reset.status(), 204);
    app.login("jill@acme.example", "chosen by jill").await;
    assert_eq!(
        app.try_login("jill@acme.example", "forgotten password")
            .await
            .status(),
        401
    );
    let again = complete_reset(&app, &second, "chosen again").await;
    assert_eq!(error_of(again).await.0, 403, "a code works once");
    assert_eq!(
        error_of(complete_reset(&app, "made-up", "chosen again").await)
            .await
            .0,
        403
    );

    let history = app
        .get_json(
            &format!("/api/iam/Users/{jill}/history"),
            &admin,
            Some(&tenant),
        )
        .await
        .to_string();
    for event in ["UserPasswordResetRequested", "UserPasswordReset"] {
        assert!(history.contains(event), "{event} in {history}");
    }
    for secret in [&first, &second] {
        assert!(!history.contains(secret.as_str()), "the log keeps no code");
    }
}

async fn a_reset_is_mailed_once_the_relay_is_back(kind: Kind) {
    // A port with no relay behind it yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = app_with_relay(kind, port).await;
    let (admin, tenant, jill) = tenant_with_jill(&app, "forgotten password").await;
    let requested = request_reset(&app, &admin, &tenant, &jill).await;
    assert_eq!(
        requested.status(),
        204,
        "a relay that is down does not fail the request"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut relay = Relay::start_on(port).await;
    let mail = relay.next_mail(Duration::from_secs(45)).await;
    let code = reset_code(&mail);
    let reset = complete_reset(&app, &code, "chosen by jill").await;
    assert_eq!(
        reset.status(),
        204,
        "{code}: {}",
        reset.text().await.unwrap()
    );
    app.login("jill@acme.example", "chosen by jill").await;
}

#[tokio::test]
async fn without_a_relay_a_reset_is_refused_with_the_variable_and_the_alternative() {
    let app = spawn_app(Kind::Sqlite).await;
    let (admin, tenant, jill) = tenant_with_jill(&app, "first password").await;
    let (status, message) = error_of(request_reset(&app, &admin, &tenant, &jill).await).await;
    assert_eq!(status, 409);
    assert!(
        message.contains("IAM_SMTP_URL") && message.contains("/password"),
        "{message}"
    );
}
