//! The command line itself: help on every command; status, rebuild and
//! verify on a fresh database of each backend.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use iam_test_databases::{Kind, TestDatabase};

const IAMCTL: &str = env!("CARGO_BIN_EXE_iamctl");

fn run(args: &[&str], url: &str) -> (i32, String) {
    let output = Command::new(IAMCTL)
        .args(args)
        .env("IAM_DATABASE_URL", url)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["projections", "--help"],
        vec!["projections", "status", "--help"],
        vec!["projections", "rebuild", "--help"],
        vec!["projections", "verify", "--help"],
        vec!["bootstrap", "--help"],
    ] {
        let (code, text) = run(&args, "sqlite://unused.db");
        assert_eq!(code, 0, "{args:?}: {text}");
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
}

#[tokio::test]
async fn status_rebuild_and_verify_work_on_an_empty_sqlite_store() {
    status_rebuild_and_verify_work_on_an_empty_store(Kind::Sqlite).await;
}

#[tokio::test]
async fn status_rebuild_and_verify_work_on_an_empty_postgres_store() {
    status_rebuild_and_verify_work_on_an_empty_store(Kind::Postgres).await;
}

async fn status_rebuild_and_verify_work_on_an_empty_store(kind: Kind) {
    let database = TestDatabase::new(kind).await.unwrap();
    let url = database.url();
    let (code, text) = run(&["projections", "status"], url);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("users") && text.contains("tokens") && text.contains("organizations"),
        "{text}"
    );
    let (code, text) = run(&["projections", "rebuild", "users"], url);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rebuilt users up to position 0"), "{text}");
    let (code, text) = run(&["projections", "rebuild", "nobody"], url);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no projector is named `nobody`"), "{text}");
    let (code, text) = run(&["projections", "verify"], url);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn an_unusable_database_url_is_one_line_naming_the_variable() {
    let (code, text) = run(
        &["projections", "status"],
        "mysql://root:secret@localhost/iam",
    );
    assert_eq!(code, 2);
    assert!(
        text.trim().lines().count() == 1
            && text.contains("IAM_DATABASE_URL")
            && !text.contains("secret"),
        "{text}"
    );
}
