//! Schema-driven fuzzing: schemathesis (from PyPI, in the test script's
//! virtual environment) generates requests from the served OpenAPI
//! description, as an administrator's session in a tenant for the identity
//! API and as an identity provider's API token for SCIM 2.0. No answer is a
//! server error, and every answer fits the schema described for it.

use std::process::Command;

use iam_test_databases::Kind;
use serde_json::{Value, json};

use crate::support::{spawn_app, user_body};

both_backends!(generated_requests_get_no_server_error_and_answers_fit_the_schema);

async fn generated_requests_get_no_server_error_and_answers_fit_the_schema(kind: Kind) {
    let schemathesis = std::env::var("IAM_TEST_SCHEMATHESIS").expect(
        "IAM_TEST_SCHEMATHESIS names schemathesis: run ./scripts/test.sh, which installs it",
    );
    let app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut idp = user_body("idp@acme.example", &["Account Administrator"]);
    idp["password"] = json!("provisioning password");
    let idp: Value = app
        .create_user(&admin, Some(&tenant), &idp)
        .await
        .json()
        .await
        .unwrap();
    let idp = idp["id"].as_str().unwrap();
    let session = app.login("idp@acme.example", "provisioning password").await;
    let token: Value = app
        .create_token(&session, idp, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = app
        .download_token(&session, idp, token["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let secret = secret["token"].as_str().unwrap();

    let description = app.url("/api-docs/openapi.json");
    let bearer = |credential: &str| format!("Authorization: Bearer {credential}");
    let tenant_context = format!("X-VMware-VCloud-Tenant-Context: {tenant}");
    // The identity API as the administrator in the tenant (leaving out what
    // would end or lock out that session), then SCIM 2.0 with the token.
    let runs: [(&str, Vec<String>); 2] = [
        (
            "the identity API",
            vec![
                "-H".into(),
                bearer(&admin),
                "-H".into(),
                tenant_context,
                "--exclude-path".into(),
                "/api/iam/logout".into(),
                "--exclude-path".into(),
                "/api/iam/login".into(),
                "--exclude-path".into(),
                "/api/iam/Users/password".into(),
                "--exclude-path-regex".into(),
                "^/scim/".into(),
            ],
        ),
        (
            "SCIM 2.0",
            vec![
                "-H".into(),
                bearer(secret),
                "--include-path-regex".into(),
                "^/scim/".into(),
            ],
        ),
    ];
    for (what, arguments) in runs {
        let output = Command::new(&schemathesis)
            // Its cache and reports go under target/, not into the checkout.
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .arg("run")
            .arg(&description)
            .args(&arguments)
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance",
                "--max-examples",
                "25",
                "--workers",
                "2",
                "--no-color",
            ])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis found failures in {what}:\n{report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary = report
            .lines()
            .find(|line| line.contains("generated,"))
            .unwrap_or_default();
        println!("{what}: {}", summary.trim());
        assert!(summary.contains("passed"), "{what}: {report}");
    }
}
