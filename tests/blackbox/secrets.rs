//! Secrets never leave: after a scenario that uses every kind of secret
//! (passwords, a password in a malformed body, a session token, an API
//! token secret, a reset code), run at `RUST_LOG=trace` with traces
//! exported to an in-process OTLP receiver, none of them appears in the
//! log, the exported spans, the events or any table of the database.

use std::time::Duration;

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::otlp::Receiver;
use crate::passwords::Relay;
use crate::support::{ADMIN_PASSWORD, TestApp, spawn_app_with, user_body};

both_backends!(no_secret_reaches_the_log_the_spans_the_events_or_a_table);

/// Every secret the scenario used, and the texts it searched.
struct Secrets(Vec<String>);

impl Secrets {
    fn keep(&mut self, secret: &str) -> String {
        assert!(
            secret.len() >= 8,
            "a secret long enough to search: {secret}"
        );
        self.0.push(secret.to_owned());
        secret.to_owned()
    }

    /// Fails naming the place and the kind of secret found in `text`, as
    /// text or as the hex of its bytes (how a blob column is searched).
    fn assert_absent(&self, place: &str, text: &str) {
        for secret in &self.0 {
            let hex: String = secret.bytes().map(|byte| format!("{byte:02X}")).collect();
            assert!(
                !text.contains(secret.as_str()) && !text.contains(&hex),
                "a secret ({}…) is in {place}",
                &secret[..4]
            );
        }
    }
}

async fn no_secret_reaches_the_log_the_spans_the_events_or_a_table(kind: Kind) {
    let receiver = Receiver::start().await;
    let mut relay = Relay::start().await;
    let smtp = format!("smtp://127.0.0.1:{}", relay.port);
    let app = spawn_app_with(
        kind,
        &[
            ("RUST_LOG", "trace"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("IAM_SMTP_URL", smtp.as_str()),
            ("IAM_PUBLIC_URL", "http://iam.example.test"),
        ],
    )
    .await;
    let mut secrets = Secrets(vec![ADMIN_PASSWORD.to_owned()]);
    let admin = app.admin().await;
    secrets.keep(&admin);
    let tenant = app.create_tenant(&admin, "Acme", true).await;

    // A user created with a password, and a body whose password is no string.
    let first = secrets.keep("jills-first-secret-9f3a");
    let mut body = user_body("jill@acme.example", &["Account Administrator"]);
    body["password"] = json!(first);
    let jill: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    let jill = jill["id"].as_str().unwrap().to_owned();
    let mut odd = user_body("odd@acme.example", &["End User"]);
    odd["password"] = json!(7_316_402_958_113_u64);
    secrets.keep("7316402958113");
    assert_eq!(
        app.create_user(&admin, Some(&tenant), &odd).await.status(),
        400
    );

    // Logins, right and wrong; a change; a set; a reset by mail.
    let wrong = secrets.keep("not-jills-password-41c2");
    assert_eq!(
        app.try_login("jill@acme.example", &wrong).await.status(),
        401
    );
    let session = app.login("jill@acme.example", &first).await;
    secrets.keep(&session);
    let second = secrets.keep("jills-second-secret-77d0");
    let changed = app
        .request(Method::PUT, "/api/iam/Users/password", &session, None)
        .json(&json!({ "currentPassword": first, "newPassword": second }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let third = secrets.keep("set-by-admin-secret-0be1");
    let set = app
        .request(
            Method::PUT,
            &format!("/api/iam/Users/{jill}/password"),
            &admin,
            Some(&tenant),
        )
        .json(&json!({ "newPassword": third }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    let reset = app
        .request(
            Method::PUT,
            &format!("/api/iam/Users/{jill}/password/reset"),
            &admin,
            Some(&tenant),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    let mail = relay.next_mail(Duration::from_secs(30)).await;
    let code = secrets.keep(&crate::passwords::reset_code(&mail));
    let fourth = secrets.keep("chosen-after-reset-5a6b");
    let completed = reqwest::Client::new()
        .post(app.url("/api/iam/password/reset"))
        .json(&json!({ "code": code, "newPassword": fourth }))
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 204);
    let session = app.login("jill@acme.example", &fourth).await;
    secrets.keep(&session);

    // An API token: created, downloaded, used on both dialects.
    let token: Value = app
        .create_token(&session, &jill, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = app
        .download_token(&session, &jill, token["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let secret = secrets.keep(secret["token"].as_str().unwrap());
    for path in ["/api/iam/Users", "/scim/v2/Users"] {
        let used = app
            .client
            .get(app.url(path))
            .header("Authorization", format!("Token {secret}"))
            .send()
            .await
            .unwrap();
        assert_eq!(used.status(), 200, "{path}");
    }
    let logout = app
        .request(Method::POST, "/api/iam/logout", &session, None)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);

    // The spans go out in batches: stop the service gracefully, which
    // flushes them, and wait for the receiver to have them.
    app.terminate();
    assert!(app.exit_within(Duration::from_secs(30)).await.is_some());
    let spans = receiver.spans();
    assert!(
        spans.len() > 20,
        "the receiver got the spans: {}",
        spans.len()
    );
    let log = app.log();
    assert!(log.len() > 100, "a trace-level log: {} lines", log.len());

    secrets.assert_absent("the log", &log.join("\n"));
    secrets.assert_absent("the exported spans", &format!("{spans:?}"));
    for (table, rows) in every_table(&app).await {
        secrets.assert_absent(&format!("table {table}"), &rows);
    }
}

/// Every table of the app's database, each as the text of all its rows.
async fn every_table(app: &TestApp) -> Vec<(String, String)> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(app.database_url()).await.unwrap();
    let postgres = app.database_url().starts_with("postgres");
    let tables: Vec<String> = if postgres {
        sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    } else {
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    assert!(tables.iter().any(|table| table == "events"), "{tables:?}");
    let mut texts = Vec::new();
    for table in tables {
        let sql = if postgres {
            format!("SELECT row_to_json(t)::text AS row FROM \"{table}\" t")
        } else {
            let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{table}')"
            )))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                // A blob is searched as hex (so are the secrets).
                let column = row.get::<String, _>("name");
                format!(
                    "CASE WHEN typeof(\"{column}\") = 'blob' THEN hex(\"{column}\") \
                     ELSE CAST(\"{column}\" AS TEXT) END"
                )
            })
            .collect();
            format!(
                "SELECT json_array({}) AS row FROM \"{table}\"",
                columns.join(", ")
            )
        };
        let rows: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("row"))
            .collect();
        texts.push((table, rows.join("\n")));
    }
    let events = &texts.iter().find(|(table, _)| table == "events").unwrap().1;
    assert!(
        events.contains("UserPasswordReset") && events.contains("TokenDownloaded"),
        "the scenario's events are there"
    );
    texts
}
