//! `iamctl import` end to end: the real `iamctl` binary provisions a file
//! through the real `iamd`'s SCIM 2.0 API, on SQLite and PostgreSQL.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app, user_body};

both_backends!(
    an_import_creates_good_rows_reports_bad_ones_and_a_rerun_changes_nothing,
    gzipped_json_lines_from_standard_input,
    an_import_killed_midway_resumes_and_every_row_is_there_once,
    progress_is_a_plain_line_without_a_terminal_and_a_bar_on_one,
);

/// The `iamctl` binary, built beside `iamd` by `cargo test --workspace`.
fn iamctl() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_iamd")).with_file_name("iamctl");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p iamctl` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// A tenant and the API token of its administrator: (tenant id, secret).
async fn tenant_token(app: &TestApp) -> (String, String) {
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Imported", true).await;
    let mut body = user_body("hr@imported.example", &["Account Administrator"]);
    body["password"] = json!("hr import password");
    let created: Value = app
        .create_user(&admin, Some(&tenant), &body)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let session = app.login("hr@imported.example", "hr import password").await;
    let token: Value = app
        .create_token(&session, id, 1)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = app
        .download_token(&session, id, token["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    (tenant, secret["token"].as_str().unwrap().to_owned())
}

fn import(app: &TestApp, token: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut child = Command::new(iamctl())
        .arg("import")
        .args(args)
        .args(["--url", &app.url("")])
        .env("IAM_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(&bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

async fn user_with_name(app: &TestApp, token: &str, user_name: &str) -> Value {
    let body: Value = reqwest::Client::new()
        .get(app.url("/scim/v2/Users"))
        .query(&[("filter", format!("userName eq \"{user_name}\""))])
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["Resources"][0].clone()
}

async fn users_in_tenant(app: &TestApp, token: &str) -> i64 {
    // A client of its own: the app's pooled connections may have idled out
    // while iamctl ran.
    let body: Value = reqwest::Client::new()
        .get(app.url("/scim/v2/Users?count=0"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["totalResults"].as_i64().unwrap()
}

async fn an_import_creates_good_rows_reports_bad_ones_and_a_rerun_changes_nothing(
    kind: iam_test_databases::Kind,
) {
    let app = spawn_app(kind).await;
    let (_, token) = tenant_token(&app).await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("people.csv");
    let errors = folder.path().join("errors.csv");
    let mut csv = String::from("userName,email,givenName,familyName,roles,state,externalId\n");
    for n in 0..1200 {
        let roles = match n % 3 {
            0 => "End User",
            1 => "Network Administrator;Virtual Infrastructure Administrator",
            _ => "",
        };
        csv.push_str(&format!(
            "p{n}@imported.example,,Person,Number {n},{roles},Active,hr-{n}\n"
        ));
    }
    // Bad rows of every kind, at known lines (the header is line 1).
    let bad = [
        "mismatch@imported.example,other@imported.example,Bad,Row,,,",
        "noname@imported.example,,,Row,,,",
        "conflict@imported.example,,Bad,Row,Account Administrator;End User,,",
        "unknown@imported.example,,Bad,Row,Wizard,,",
        "asleep@imported.example,,Bad,Row,,Asleep,",
        "not-an-address,,Bad,Row,,,",
    ];
    for row in bad {
        csv.push_str(row);
        csv.push('\n');
    }
    std::fs::write(&file, csv).unwrap();
    let args = [
        file.to_str().unwrap(),
        "--errors",
        errors.to_str().unwrap(),
        "--batch-size",
        "250",
    ];

    let dry = import(&app, &token, &[&args[..], &["--dry-run"]].concat(), None);
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        dry.status.code(),
        Some(1),
        "{stdout} {}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        stdout.contains("would create 1200, would update 0, unchanged 0, rejected 6"),
        "{stdout}"
    );
    assert_eq!(
        users_in_tenant(&app, &token).await,
        1,
        "a dry run writes nothing"
    );

    let first = import(&app, &token, &args, None);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{stdout} {}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("created 1200, updated 0, unchanged 0, rejected 6"),
        "{stdout}"
    );
    assert_eq!(users_in_tenant(&app, &token).await, 1201);
    let report = std::fs::read_to_string(&errors).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "line,userName,message");
    assert_eq!(lines.len(), 7, "{report}");
    for (index, line) in lines[1..].iter().enumerate() {
        assert!(
            line.starts_with(&format!("{},", 1202 + index)),
            "the report names each bad row's line: {report}"
        );
    }
    assert!(
        report.contains("Account Administrator and End User"),
        "{report}"
    );

    let again = import(&app, &token, &args, None);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("created 0, updated 0, unchanged 1200, rejected 6"),
        "{stdout}"
    );
    assert_eq!(
        users_in_tenant(&app, &token).await,
        1201,
        "a rerun creates nothing"
    );

    // What the rows said is what the users are.
    let body: Value = app
        .client
        .get(app.url("/scim/v2/Users?filter=externalId%20eq%20%22hr-1%22"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = &body["Resources"][0];
    assert_eq!(user["userName"], "p1@imported.example");
    assert_eq!(user["roles"].as_array().unwrap().len(), 2);

    // The export changes: three people change names, roles or state.
    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("p3@imported.example,,Person,Number 3,End User,Active", "p3@imported.example,,Persona,Number 3,End User,Active")
        .replace("p4@imported.example,,Person,Number 4,Network Administrator;Virtual Infrastructure Administrator,Active", "p4@imported.example,,Person,Number 4,Account Administrator,Active")
        .replace("p5@imported.example,,Person,Number 5,,Active", "p5@imported.example,,Person,Number 5,,Inactive");
    std::fs::write(&file, changed).unwrap();
    let kept = import(&app, &token, &args, None);
    let stdout = String::from_utf8_lossy(&kept.stdout);
    assert!(stdout.contains("updated 0, unchanged 1200"), "{stdout}");
    assert!(
        stdout.contains("3 of the unchanged users differ"),
        "{stdout}"
    );
    let dry = import(
        &app,
        &token,
        &[&args[..], &["--update", "--dry-run"]].concat(),
        None,
    );
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would update 3, unchanged 1197"));
    let updated = import(&app, &token, &[&args[..], &["--update"]].concat(), None);
    let stdout = String::from_utf8_lossy(&updated.stdout);
    assert!(
        stdout.contains("created 0, updated 3, unchanged 1197, rejected 6"),
        "{stdout}"
    );
    let user_with = |external: &str| {
        let url = app.url(&format!(
            "/scim/v2/Users?filter=externalId%20eq%20%22{external}%22"
        ));
        let client = reqwest::Client::new();
        let token = token.clone();
        async move {
            let body: Value = client
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["Resources"][0].clone()
        }
    };
    assert_eq!(user_with("hr-3").await["name"]["givenName"], "Persona");
    assert_eq!(
        user_with("hr-4").await["roles"][0]["value"],
        "Account Administrator"
    );
    assert_eq!(user_with("hr-5").await["active"], false);

    // Someone the export no longer has is deactivated, after a dry run
    // that says who; the importing administrator itself is never touched.
    let stray = reqwest::Client::new()
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("Content-Type", "application/scim+json")
        .body(json!({"userName": "stray@imported.example", "name": {"givenName": "S", "familyName": "T"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 201);
    let dry = import(
        &app,
        &token,
        &[&args[..], &["--deactivate-missing", "--dry-run"]].concat(),
        None,
    );
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains("would deactivate stray@imported.example"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would deactivate 1 users the file does not contain"),
        "{stdout}"
    );
    assert_eq!(
        user_with_name(&app, &token, "stray@imported.example").await["active"],
        true
    );
    let run = import(
        &app,
        &token,
        &[&args[..], &["--deactivate-missing"]].concat(),
        None,
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("deactivated 1 users the file does not contain"),
        "{stdout}"
    );
    assert_eq!(
        user_with_name(&app, &token, "stray@imported.example").await["active"],
        false
    );
    assert_eq!(
        user_with_name(&app, &token, "hr@imported.example").await["active"],
        true
    );
    assert_eq!(
        user_with_name(&app, &token, "p0@imported.example").await["active"],
        true
    );

    // Unknown columns stop the import before any row: exit 2.
    let wrong = folder.path().join("wrong.csv");
    std::fs::write(&wrong, "userName,shoeSize\nx@imported.example,44\n").unwrap();
    let refused = import(&app, &token, &[wrong.to_str().unwrap()], None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`shoeSize`"));
}

async fn gzipped_json_lines_from_standard_input(kind: iam_test_databases::Kind) {
    let app = spawn_app(kind).await;
    let (_, token) = tenant_token(&app).await;
    let mut lines = String::new();
    for n in 0..50 {
        // Either dialect, line by line.
        let line = if n % 2 == 0 {
            json!({"schemas": ["urn:scim:schemas:core:1.0"], "userName": format!("j{n}@imported.example"),
                   "email": format!("j{n}@imported.example"), "givenName": "J", "familyName": "Son",
                   "state": "Active", "roles": {"roles": [{"name": "End User"}]}})
        } else {
            json!({"userName": format!("j{n}@imported.example"), "name": {"givenName": "J", "familyName": "Son"},
                   "emails": [{"value": format!("j{n}@imported.example"), "primary": true}], "active": true})
        };
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(lines.as_bytes()).unwrap();
    let output = import(&app, &token, &["-"], Some(gzip.finish().unwrap()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("created 50, updated 0, unchanged 0, rejected 0"),
        "{stdout}"
    );
    assert_eq!(users_in_tenant(&app, &token).await, 51);
}

async fn an_import_killed_midway_resumes_and_every_row_is_there_once(
    kind: iam_test_databases::Kind,
) {
    let app = spawn_app(kind).await;
    let (_, token) = tenant_token(&app).await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("company.csv");
    let mut csv = String::from("userName,givenName,familyName\n");
    for n in 0..6000 {
        csv.push_str(&format!("k{n}@imported.example,Kay,Number {n}\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let state = folder.path().join("company.csv.import-state");
    let args = [
        file.to_str().unwrap(),
        "--batch-size",
        "100",
        "--concurrency",
        "1",
    ];
    let mut child = Command::new(iamctl())
        .arg("import")
        .args(args)
        .args(["--url", &app.url("")])
        .env("IAM_TOKEN", &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few batches are recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let done = std::fs::read_to_string(&state)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|saved| saved["doneBatches"].as_u64())
            .unwrap_or(0);
        if done >= 5 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress recorded");
        assert!(
            child.try_wait().unwrap().is_none(),
            "it finished before it could be killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = users_in_tenant(&app, &token).await;
    assert!(
        partial > 1 && partial < 6001,
        "{partial} users after the kill"
    );

    let rerun = import(&app, &token, &args, None);
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    assert!(stdout.contains("were done in an earlier run"), "{stdout}");
    assert!(stdout.contains("6000 rows in"), "{stdout}");
    assert_eq!(
        users_in_tenant(&app, &token).await,
        6001,
        "every row exactly once"
    );
    assert!(!state.exists(), "a completed import leaves no state behind");
}

async fn progress_is_a_plain_line_without_a_terminal_and_a_bar_on_one(
    kind: iam_test_databases::Kind,
) {
    let app = spawn_app(kind).await;
    let (_, token) = tenant_token(&app).await;
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("people.csv");
    let mut csv = String::from("userName,givenName,familyName\n");
    for n in 0..600 {
        csv.push_str(&format!("g{n}@imported.example,Gee,Number {n}\n"));
    }
    std::fs::write(&file, csv).unwrap();

    // Not a terminal: plain lines (here one per batch).
    let plain = import(
        &app,
        &token,
        &[
            file.to_str().unwrap(),
            "--batch-size",
            "100",
            "--progress-every",
            "0",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&plain.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" rows (")).collect();
    assert!(lines.len() >= 5, "{stderr}");
    assert!(
        lines
            .last()
            .unwrap()
            .contains("600 rows (600 created, 0 updated, 0 unchanged, 0 rejected)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no terminal codes without a terminal: {stderr:?}"
    );

    // A terminal (a pseudo-terminal from script(1)): a bar with the rows
    // done, rows/s and ETA; the summary still ends the output.
    let command = format!(
        "{} import {} --url {} --batch-size 100",
        iamctl().display(),
        file.display(),
        app.url("")
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("IAM_TOKEN", &token)
        .env("COLUMNS", "160")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("600/600 rows"), "{shown:?}");
    assert!(shown.contains("ETA"), "{shown:?}");
    assert!(
        shown.contains("created 0, updated 0, unchanged 600, rejected 0"),
        "{shown:?}"
    );
}
