//! The audit: a scripted story of a user's life, after which the audit
//! query, the user's history and `asOf` at each step tell that story
//! exactly; who may read the audit; and one tenant's audit never showing
//! another's events.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, TestApp, iamctl, spawn_app, user_body};

both_backends!(
    the_audit_history_and_as_of_tell_a_users_story,
    only_administrators_and_auditors_read_the_audit_and_tenants_stay_apart,
);

const PASSWORD: &str = "a good long password";

/// Creates a user with a password in `tenant` as the provider
/// administrator; returns its id.
async fn user_with_password(
    app: &TestApp,
    admin: &str,
    tenant: &str,
    email: &str,
    roles: &[&str],
) -> String {
    let mut body = user_body(email, roles);
    body["password"] = json!(PASSWORD);
    let response = app.create_user(admin, Some(tenant), &body).await;
    assert_eq!(response.status(), 201, "create {email}");
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

/// The audit as `session` sees it in `tenant`, every page of `query`,
/// once the audit has caught up with an entry of type `until_type`.
async fn audit(
    app: &TestApp,
    session: &str,
    tenant: Option<&str>,
    query: &str,
    until_type: &str,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/iam/audit?pageSize=3&{query}");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = app.get_json(&path, session, tenant).await;
            entries.extend(page["entries"].as_array().unwrap().iter().cloned());
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        if entries.iter().any(|entry| entry["type"] == until_type) {
            return entries;
        }
        assert!(
            Instant::now() < deadline,
            "the audit never showed {until_type}: {entries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PUTs `user` with `change` applied to its current body; returns the
/// request id the service answered with.
async fn put_user(
    app: &TestApp,
    session: &str,
    tenant: Option<&str>,
    user: &str,
    change: impl FnOnce(&mut Value),
) -> String {
    let path = format!("/api/iam/Users/{user}");
    let mut body = app.get_json(&path, session, tenant).await;
    change(&mut body);
    let response = app
        .request(Method::PUT, &path, session, tenant)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "PUT {path}");
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The moment after a step: its events are committed before it answered,
/// and the next step's come after.
async fn moment() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    now
}

async fn as_of(app: &TestApp, session: &str, user: &str, at: DateTime<Utc>) -> reqwest::Response {
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    app.request(
        Method::GET,
        &format!("/api/iam/Users/{user}"),
        session,
        None,
    )
    .query(&[("asOf", at.as_str())])
    .send()
    .await
    .unwrap()
}

async fn the_audit_history_and_as_of_tell_a_users_story(kind: Kind) {
    let app = spawn_app(kind).await;
    let provider_admin = app.admin().await;
    let tenant = app.create_tenant(&provider_admin, "Acme", true).await;
    let boss_id = user_with_password(
        &app,
        &provider_admin,
        &tenant,
        "boss@acme.example",
        &["Account Administrator"],
    )
    .await;
    let boss = app.login("boss@acme.example", PASSWORD).await;
    let before_anything = moment().await;

    // 1. An administrator creates a user.
    let response = app
        .create_user(&boss, None, &user_body("jill@acme.example", &["End User"]))
        .await;
    assert_eq!(response.status(), 201);
    let jill = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let after_create = moment().await;
    // 2. … changes its roles.
    let roles_request = put_user(&app, &boss, None, &jill, |body| {
        body["roles"] = json!({"roles": [{"name": "Read-Only Administrator"}]});
    })
    .await;
    let after_roles = moment().await;
    // 3. … creates and downloads a token (its own).
    let token: Value = app
        .create_token(&boss, &boss_id, 1)
        .await
        .json()
        .await
        .unwrap();
    let token_id = token["id"].as_str().unwrap().to_owned();
    let secret: Value = app
        .download_token(&boss, &boss_id, &token_id)
        .await
        .json()
        .await
        .unwrap();
    let secret = secret["token"].as_str().unwrap().to_owned();
    // … and with it, as an identity provider would, a group.
    let group = app
        .client
        .post(app.url("/scim/v2/Groups"))
        .header("Authorization", format!("Bearer {secret}"))
        .header("Content-Type", "application/scim+json")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Auditors",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(group.status(), 201);
    // 4. A provider administrator acts in the tenant.
    put_user(&app, &provider_admin, Some(&tenant), &jill, |body| {
        body["givenName"] = json!("Jillian");
    })
    .await;
    let after_provider = moment().await;
    // 5. The user is deactivated, 6. deleted.
    put_user(&app, &boss, None, &jill, |body| {
        body["state"] = json!("Inactive");
    })
    .await;
    let after_deactivation = moment().await;
    let response = app
        .request(
            Method::DELETE,
            &format!("/api/iam/Users/{jill}"),
            &boss,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let after_deletion = moment().await;
    // 7. Someone fails to log in: a wrong password, and a name nobody has.
    assert_eq!(
        app.try_login("boss@acme.example", "not the password")
            .await
            .status(),
        401
    );
    assert_eq!(
        app.try_login("nobody@acme.example", "a guessed password")
            .await
            .status(),
        401
    );

    // The audit of the tenant, newest first.
    let entries = audit(&app, &boss, None, "", "LoginFailed").await;
    let positions: Vec<i64> = entries
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first, and pages neither repeat nor skip: {positions:?}"
    );
    assert!(
        entries
            .iter()
            .all(|entry| entry["organization"] == tenant.as_str())
    );
    let about_jill: Vec<&Value> = entries
        .iter()
        .filter(|entry| entry["userId"] == jill.as_str())
        .collect();
    let types: Vec<&str> = about_jill
        .iter()
        .rev()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.first(),
        Some(&"UserCreated"),
        "jill's story starts with her creation: {types:?}"
    );
    assert_eq!(types.last(), Some(&"UserDeleted"), "{types:?}");
    let created = about_jill.last().unwrap();
    assert_eq!(created["actor"]["id"], boss_id.as_str());
    assert_eq!(created["actor"]["userName"], "boss@acme.example");
    assert_eq!(created["authentication"]["method"], "session");
    assert_eq!(created["sourceAddress"], "127.0.0.1");
    assert_eq!(created["changes"]["userName"]["after"], "jill@acme.example");
    // The role change, found by its request id.
    let by_request = audit(
        &app,
        &boss,
        None,
        &format!("requestId={roles_request}"),
        "UserRolesChanged",
    )
    .await;
    assert_eq!(by_request.len(), 1, "{by_request:#?}");
    let roles = &by_request[0]["changes"]["roles"];
    assert_ne!(roles["before"], roles["after"], "{roles}");
    // The token, created and downloaded, and nothing secret anywhere.
    let token_types: Vec<&str> = entries
        .iter()
        .filter(|e| e["subject"]["id"] == token_id.as_str())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(token_types, ["TokenDownloaded", "TokenCreated"]);
    let everything = serde_json::to_string(&entries).unwrap();
    for secret_text in [secret.as_str(), PASSWORD, "not the password", "secretHash"] {
        assert!(
            !everything.contains(secret_text),
            "{secret_text} leaked into the audit"
        );
    }
    // The provider administrator, acting in the tenant.
    let by_provider: Vec<&&Value> = about_jill
        .iter()
        .filter(|e| e["actor"]["userName"] == ADMIN)
        .collect();
    assert_eq!(by_provider.len(), 1, "{about_jill:#?}");
    assert_ne!(by_provider[0]["actor"]["organization"], tenant.as_str());
    assert_eq!(by_provider[0]["organization"], tenant.as_str());
    // The failed login with a wrong password is the tenant's; the unknown
    // name is the provider's, without the password tried.
    let failed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["type"] == "LoginFailed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["details"]["reason"], "wrongPassword");
    assert_eq!(failed[0]["userId"], boss_id.as_str());
    let provider_failures = audit(
        &app,
        &provider_admin,
        None,
        "type=LoginFailed",
        "LoginFailed",
    )
    .await;
    assert!(
        provider_failures
            .iter()
            .any(|e| e["details"]["userName"] == "nobody@acme.example"
                && e["details"]["reason"] == "unknownUser"),
        "{provider_failures:#?}"
    );
    // Filters: by user and by type, and a time range that holds nothing.
    let jill_only = audit(&app, &boss, None, &format!("userId={jill}"), "UserDeleted").await;
    assert_eq!(jill_only.len(), about_jill.len());
    let two_types = audit(
        &app,
        &boss,
        None,
        "type=UserCreated&type=UserDeleted",
        "UserDeleted",
    )
    .await;
    assert!(
        two_types
            .iter()
            .all(|e| ["UserCreated", "UserDeleted"].contains(&e["type"].as_str().unwrap()))
    );
    let since = after_deletion.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let late = app
        .get_json(
            &format!(
                "/api/iam/audit?since={}&type=UserCreated",
                since.replace('+', "%2B")
            ),
            &boss,
            None,
        )
        .await;
    assert_eq!(late["entries"], json!([]));

    // The history tells the same story, oldest first.
    let history = app
        .get_json(&format!("/api/iam/Users/{jill}/history"), &boss, None)
        .await;
    let history_types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(history_types, types);
    assert_eq!(history["events"][1]["changes"]["roles"], *roles);

    // asOf at each step, the deleted user included.
    assert_eq!(
        as_of(&app, &boss, &jill, before_anything).await.status(),
        404
    );
    let at = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let created = at(as_of(&app, &boss, &jill, after_create).await).await;
    assert_eq!(created["roles"]["roles"][0]["name"], "End User");
    let with_roles = at(as_of(&app, &boss, &jill, after_roles).await).await;
    assert_eq!(
        with_roles["roles"]["roles"][0]["name"],
        "Read-Only Administrator"
    );
    assert_eq!(with_roles["givenName"], created["givenName"]);
    let renamed = at(as_of(&app, &boss, &jill, after_provider).await).await;
    assert_eq!(renamed["givenName"], "Jillian");
    let inactive = at(as_of(&app, &boss, &jill, after_deactivation).await).await;
    assert_eq!(inactive["state"], "Inactive");
    assert_eq!(
        as_of(&app, &boss, &jill, after_deletion).await.status(),
        404
    );

    // The export tells it too, oldest first, as JSON Lines and as CSV.
    let folder = tempfile::tempdir().unwrap();
    let jsonl = folder.path().join("audit.jsonl");
    let text = export(&app, &tenant, "jsonl", &jsonl);
    assert!(
        text.contains(&format!("exported {} entries", entries.len())),
        "{text}"
    );
    let exported: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut newest_first = exported.clone();
    newest_first.reverse();
    assert_eq!(newest_first, entries, "the export holds what the API shows");
    let csv = folder.path().join("audit.csv");
    export(&app, &tenant, "csv", &csv);
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(&header[..4], ["position", "time", "organization", "type"]);
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), entries.len());
    let roles_row = records
        .iter()
        .find(|r| &r[3] == "UserRolesChanged")
        .unwrap();
    assert_eq!(&roles_row[12], roles_request.as_str(), "{roles_row:?}");
    let (code, text) = iamctl(
        app.database_url(),
        &["audit", "export", "--org", "not-an-id", "--format", "csv"],
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--org"), "{text}");

    // OCSF: every class the export emits is valid against the published
    // 1.5.0 schema.
    let ocsf = folder.path().join("audit.ocsf.jsonl");
    export(&app, &tenant, "ocsf", &ocsf);
    let events: Vec<Value> = std::fs::read_to_string(&ocsf)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.len(), entries.len());
    let mut classes: Vec<i64> = events
        .iter()
        .map(|e| e["class_uid"].as_i64().unwrap())
        .collect();
    classes.sort_unstable();
    classes.dedup();
    assert_eq!(
        classes,
        [3001, 3002, 3004, 3005, 3006],
        "every IAM class the story touches"
    );
    let scim_scoped = events
        .iter()
        .find(|e| e["class_uid"] == 3006)
        .expect("the group");
    assert_eq!(scim_scoped["actor"]["user"]["name"], "boss@acme.example");
    let report = validate_ocsf(&ocsf);
    assert!(report.contains("class 3005:"), "{report}");
}

/// Runs `iamctl audit export` of `organization` in `format` to `output`,
/// expecting success; returns what it printed.
fn export(app: &TestApp, organization: &str, format: &str, output: &std::path::Path) -> String {
    let output = output.to_str().unwrap();
    let (code, text) = iamctl(
        app.database_url(),
        &[
            "audit",
            "export",
            "--org",
            organization,
            "--format",
            format,
            "--output",
            output,
        ],
    );
    assert_eq!(code, 0, "{text}");
    text
}

/// Validates an OCSF export with the validator `scripts/test.sh` installs
/// (`IAM_TEST_PYTHON`); returns its report, or fails with it.
fn validate_ocsf(path: &std::path::Path) -> String {
    let python = std::env::var("IAM_TEST_PYTHON").expect(
        "IAM_TEST_PYTHON names the Python with the test tools: run ./scripts/test.sh, \
         which installs it",
    );
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/ocsf_validate.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "OCSF validation failed:\n{report}");
    report
}

async fn only_administrators_and_auditors_read_the_audit_and_tenants_stay_apart(kind: Kind) {
    let app = spawn_app(kind).await;
    let provider_admin = app.admin().await;
    let acme = app.create_tenant(&provider_admin, "Acme", true).await;
    let other = app.create_tenant(&provider_admin, "Other", true).await;
    user_with_password(
        &app,
        &provider_admin,
        &acme,
        "ro@acme.example",
        &["Read-Only Administrator"],
    )
    .await;
    user_with_password(
        &app,
        &provider_admin,
        &acme,
        "eu@acme.example",
        &["End User"],
    )
    .await;
    user_with_password(
        &app,
        &provider_admin,
        &other,
        "boss@other.example",
        &["Account Administrator"],
    )
    .await;
    let read_only = app.login("ro@acme.example", PASSWORD).await;
    let end_user = app.login("eu@acme.example", PASSWORD).await;
    let other_boss = app.login("boss@other.example", PASSWORD).await;

    let seen = audit(&app, &read_only, None, "", "LoginSucceeded").await;
    assert!(
        seen.iter()
            .any(|e| e["changes"]["userName"]["after"] == "eu@acme.example")
    );
    let refused = app
        .request(Method::GET, "/api/iam/audit", &end_user, None)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let refused = app
        .request(
            Method::GET,
            &format!(
                "/api/iam/Users/{}/history",
                "0190f0f0-0000-7000-8000-000000000000"
            ),
            &end_user,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // An organization's events are its own audit's, whatever tenant the
    // request named: a tenant created from inside Acme is not Acme's news.
    let third = app
        .request(Method::POST, "/api/orgs", &provider_admin, Some(&acme))
        .json(&json!({ "name": "Third", "delegatesUserManagement": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 201);
    let third = third.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let acme_admin = app.login("ro@acme.example", PASSWORD).await;
    let acme_audit = audit(&app, &acme_admin, None, "", "LoginSucceeded").await;
    assert!(
        !serde_json::to_string(&acme_audit).unwrap().contains(&third),
        "{acme_audit:#?}"
    );
    // A tenant names only itself.
    let foreign = app
        .request(Method::GET, "/api/iam/audit", &other_boss, Some(&acme))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let others = audit(&app, &other_boss, None, "", "LoginSucceeded").await;
    assert!(!others.is_empty());
    assert!(
        others.iter().all(|e| e["organization"] == other.as_str()),
        "{others:#?}"
    );
    let text = serde_json::to_string(&others).unwrap();
    assert!(
        !text.contains("acme.example") && !text.contains(&acme),
        "{text}"
    );
    let (code, exported) = iamctl(
        app.database_url(),
        &["audit", "export", "--org", &other, "--format", "jsonl"],
    );
    assert_eq!(code, 0, "{exported}");
    assert!(exported.contains("boss@other.example"), "{exported}");
    assert!(
        !exported.contains("acme.example") && !exported.contains(&acme),
        "{exported}"
    );
}
