//! VMware's own vCloud Air client against the service: the `VCA` class of
//! pyvcloud 18 (scripts/lib/pyvcloud_e2e.py), inside a tenant.

use std::path::Path;
use std::process::Command;

use iam_test_databases::Kind;
use serde_json::{Value, json};

use crate::support::{spawn_app_with, user_body};

both_backends!(the_published_client_manages_users_roles_and_passwords);

async fn the_published_client_manages_users_roles_and_passwords(kind: Kind) {
    let mut relay = crate::passwords::Relay::start().await;
    let smtp = format!("smtp://127.0.0.1:{}", relay.port);
    let app = spawn_app_with(
        kind,
        &[
            ("IAM_SMTP_URL", smtp.as_str()),
            ("IAM_PUBLIC_URL", "http://iam.example.test"),
        ],
    )
    .await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut boss = user_body("boss@acme.example", &["Account Administrator"]);
    boss["password"] = json!("the boss's password");
    assert_eq!(
        app.create_user(&admin, Some(&tenant), &boss).await.status(),
        201
    );

    let (python, pyvcloud) = match (
        std::env::var("IAM_TEST_PYTHON"),
        std::env::var("IAM_TEST_PYVCLOUD"),
    ) {
        (Ok(python), Ok(pyvcloud)) => (python, pyvcloud),
        _ => panic!(
            "IAM_TEST_PYTHON and IAM_TEST_PYVCLOUD name the Python and pyvcloud 18: run \
             ./scripts/test.sh, which installs them"
        ),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(python)
        .arg(root.join("scripts/lib/pyvcloud_e2e.py"))
        .arg(app.url("").trim_end_matches('/'))
        .arg("boss@acme.example")
        .arg("the boss's password")
        .arg("a new boss password")
        .env("IAM_TEST_PYVCLOUD", pyvcloud)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pyvcloud failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(seen["instances"], json!([]), "{seen}");
    assert_eq!(seen["users_before"], json!(["boss@acme.example"]), "{seen}");
    assert_eq!(seen["created"], "jack@acme.example");
    let mut after: Vec<&str> = seen["users_after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user.as_str().unwrap())
        .collect();
    after.sort_unstable();
    assert_eq!(after, ["boss@acme.example", "jack@acme.example"], "{seen}");
    assert_eq!(seen["still_signed_in"], true, "the changing session stays");
    let rights = &seen["roles"]["Account Administrator"];
    assert!(
        rights.as_array().unwrap().contains(&json!("Create Users")),
        "{seen}"
    );
    let mail = relay.next_mail(std::time::Duration::from_secs(30)).await;
    assert!(mail.contains("To: jack@acme.example"), "{mail}");
    app.login("boss@acme.example", "a new boss password").await;
}
