//! The audit review page in a real browser: Debian's chromium, driven by
//! Playwright from `scripts/lib/console_e2e.py` (both installed by
//! `scripts/test.sh`). After the audit story (a user created, its roles
//! changed, a token created and downloaded, the provider administrator
//! acting in the tenant, a user deactivated and deleted, a failed login), it
//! signs in, checks that the timeline tells all of it, picks the tenant, filters, opens an
//! entry and checks its highlighted diff, opens the user's history and
//! `asOf`, downloads the view, and checks that a Read-Only Administrator
//! sees the page while an End User is refused, and that another tenant's
//! administrator sees none of this tenant's events. Screenshots of the main
//! views go to `target/console-screenshots/<backend>/`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use iam_test_databases::Kind;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, spawn_app, user_body};

both_backends!(the_audit_page_works_in_a_real_browser_for_those_who_may_audit,);

const PASSWORD: &str = "a good long password";

async fn the_audit_page_works_in_a_real_browser_for_those_who_may_audit(kind: Kind) {
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut created = Vec::new();
    for (email, role) in [
        ("boss@acme.example", "Account Administrator"),
        ("ro@acme.example", "Read-Only Administrator"),
        ("eu@acme.example", "End User"),
        ("jill@acme.example", "End User"),
    ] {
        let mut body = user_body(email, &[role]);
        body["password"] = json!(PASSWORD);
        let response = app.create_user(&admin, Some(&tenant), &body).await;
        assert_eq!(response.status(), 201);
        created.push(response.json::<Value>().await.unwrap());
    }
    let jill = created[3]["id"].as_str().unwrap().to_owned();
    let other = app.create_tenant(&admin, "Other", true).await;
    let mut body = user_body("boss@other.example", &["Account Administrator"]);
    body["password"] = json!(PASSWORD);
    let response = app.create_user(&admin, Some(&other), &body).await;
    assert_eq!(response.status(), 201);
    let boss = app.login("boss@acme.example", PASSWORD).await;
    let path = format!("/api/iam/Users/{jill}");
    let mut body = app.get_json(&path, &boss, None).await;
    body["roles"] = json!({"roles": [{"name": "Network Administrator"}]});
    let response = app
        .request(Method::PUT, &path, &boss, None)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The rest of the audit story, with a second user: a token created and
    // downloaded, the provider administrator acting in the tenant, the user
    // deactivated and deleted, and a failed login.
    let jack_body = user_body("jack@acme.example", &["End User"]);
    let response = app.create_user(&boss, None, &jack_body).await;
    assert_eq!(response.status(), 201);
    let jack = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let boss_id = created[0]["id"].as_str().unwrap();
    let token: Value = app
        .create_token(&boss, boss_id, 1)
        .await
        .json()
        .await
        .unwrap();
    let downloaded = app
        .download_token(&boss, boss_id, token["id"].as_str().unwrap())
        .await;
    assert_eq!(downloaded.status(), 200);
    let jack_path = format!("/api/iam/Users/{jack}");
    for (session, tenant_context, field, value) in [
        (&admin, Some(tenant.as_str()), "givenName", json!("Jackson")),
        (&boss, None, "state", json!("Inactive")),
    ] {
        let mut body = app.get_json(&jack_path, session, tenant_context).await;
        body[field] = value;
        let response = app
            .request(Method::PUT, &jack_path, session, tenant_context)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = app
        .request(Method::DELETE, &jack_path, &boss, None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.try_login("boss@acme.example", "not the password")
            .await
            .status(),
        401
    );
    // The audit follows the log on its own: wait until it shows the story.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = app
            .get_json("/api/iam/audit?type=LoginFailed", &boss, None)
            .await;
        if !page["entries"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the audit never showed the role change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let python = std::env::var("IAM_TEST_PYTHON").expect(
        "IAM_TEST_PYTHON names the Python with Playwright: run ./scripts/test.sh, which installs it",
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let screenshots = root.join(format!("target/console-screenshots/{kind:?}").to_lowercase());
    let output = Command::new(python)
        .arg(root.join("scripts/lib/console_e2e.py"))
        .arg(app.url("").trim_end_matches('/'))
        .arg(&tenant)
        .arg(&screenshots)
        .env("CONSOLE_ADMIN", format!("boss@acme.example:{PASSWORD}"))
        .env("CONSOLE_READ_ONLY", format!("ro@acme.example:{PASSWORD}"))
        .env("CONSOLE_END_USER", format!("eu@acme.example:{PASSWORD}"))
        .env(
            "CONSOLE_OTHER_TENANT",
            format!("boss@other.example:{PASSWORD}"),
        )
        .env("CONSOLE_ROLE_CHANGE_USER", &jill)
        .env("CONSOLE_PROVIDER_ADMIN", ADMIN)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser test failed:\n{report}"
    );
    assert!(report.contains("an End User is refused"), "{report}");
    assert!(
        report.contains("another tenant's administrator sees only its own audit"),
        "{report}"
    );
    assert!(screenshots.join("timeline.png").exists());
}
