//! Start-up, health, readiness and metrics.

use std::process::{Command, Stdio};
use std::time::Duration;

use iam_test_databases::Kind;

use crate::support::{IAMD, run_to_exit, spawn_app};

both_backends!(
    health_and_readiness_answer_once_started,
    metrics_export_requests_appends_and_projection_lag,
    iamctl_bootstrap_does_what_a_first_start_does_once,
);

async fn health_and_readiness_answer_once_started(kind: Kind) {
    let app = spawn_app(kind).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

async fn metrics_export_requests_appends_and_projection_lag(kind: Kind) {
    let app = spawn_app(kind).await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for name in [
        "http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",status=\"200\"",
        "iam_eventstore_events_appended_total",
        "iam_projection_max_lag_events 0",
    ] {
        assert!(text.contains(name), "/metrics lacks `{name}`:\n{text}");
    }
}

#[tokio::test]
async fn a_first_start_creates_the_data_folder_for_the_default_database() {
    let folder = tempfile::tempdir().unwrap();
    let mut child = Command::new(IAMD)
        .current_dir(folder.path())
        .env_clear()
        .env("IAM_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let database = folder.path().join("data").join("iam.db");
    let mut waited = Duration::ZERO;
    while !database.exists() && waited < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(database.exists(), "iamd did not create ./data/iam.db");
}

#[tokio::test]
async fn an_invalid_database_url_stops_start_up_with_one_line_naming_the_variable() {
    let folder = tempfile::tempdir().unwrap();
    for url in [
        "mysql://root:secret@localhost/iam",
        "postgres://iam:secret@127.0.0.1:1/iam",
    ] {
        let (status, stderr) = run_to_exit(
            folder.path(),
            &[("IAM_DATABASE_URL", url), ("IAM_LISTEN", "127.0.0.1:0")],
        );
        assert!(!status.success(), "{url}: iamd must not start");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{url}: one line, got:\n{stderr}"
        );
        assert!(stderr.contains("IAM_DATABASE_URL"), "{url}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("secret"),
            "{url}: {stderr}"
        );
    }
}

/// Starts iamd on `url` without bootstrap variables; returns the process,
/// its address and what it printed up to the address.
fn start_without_bootstrap_settings(url: &str) -> (std::process::Child, String, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(IAMD)
        .env_clear()
        .env("IAM_LISTEN", "127.0.0.1:0")
        .env("IAM_DATABASE_URL", url)
        .env("RUST_LOG", "warn,iamd=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut address = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("listening on http://") {
            address = Some(line[at + "listening on ".len()..].trim().to_owned());
            lines.push(line);
            break;
        }
        lines.push(line);
    }
    (child, address.expect("iamd reports its address"), lines)
}

#[tokio::test]
async fn a_first_start_without_settings_writes_a_generated_password_that_must_be_changed() {
    let database = iam_test_databases::TestDatabase::sqlite().unwrap();
    let (mut first, address, printed) = start_without_bootstrap_settings(database.url());
    let announcement = printed
        .iter()
        .find(|line| {
            line.contains(
                "first start: log in as admin@localhost.localdomain with the password in ",
            )
        })
        .unwrap_or_else(|| panic!("no password line in {printed:#?}"));
    let path = announcement
        .split("with the password in ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let password = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(password.len() >= 20, "a generated password: {password:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the service's user reads {path}");
    }
    assert!(
        printed.iter().all(|line| !line.contains(&password)),
        "the password is in no line the service prints"
    );
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{address}/api/iam/login"))
        .basic_auth("admin@localhost.localdomain", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 201);
    let session = login.headers()["vchs-authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer: serde_json::Value = login.json().await.unwrap();
    assert_eq!(answer["passwordChangeRequired"], true, "{answer}");
    let refused = client
        .get(format!("{address}/api/iam/Users"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "nothing else before the change");
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert!(
        refused.to_string().contains("PUT /api/iam/Users/password"),
        "{refused}"
    );
    let changed = client
        .put(format!("{address}/api/iam/Users/password"))
        .bearer_auth(&session)
        .json(&serde_json::json!({ "currentPassword": password, "newPassword": "chosen by the admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);
    let listed = client
        .get(format!("{address}/api/iam/Users"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200, "then the session works");
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, _, printed) = start_without_bootstrap_settings(database.url());
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(
        printed
            .iter()
            .all(|line| !line.contains("first start") && !line.contains("created the provider")),
        "a restart creates nothing: {printed:#?}"
    );
}

#[tokio::test]
async fn the_openapi_description_covers_every_endpoint_and_swagger_ui_is_served_offline() {
    let app = spawn_app(Kind::Sqlite).await;
    let document: serde_json::Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/api/iam/login", "post"),
        ("/api/iam/Users", "post"),
        ("/api/iam/Users", "get"),
        ("/api/iam/Users/{id}", "get"),
        ("/api/iam/Users/{id}", "put"),
        ("/api/iam/Users/{id}", "delete"),
        ("/api/org", "get"),
        ("/api/orgs", "post"),
        ("/api/orgs/{org_id}/members", "post"),
        ("/cloudapi/1.0.0/roles", "get"),
        ("/api/iam/Users/{id}/tokens", "post"),
        ("/api/iam/Users/{id}/tokens", "get"),
        ("/api/iam/Users/{id}/tokens/{token_id}/download", "post"),
        ("/api/iam/Users/{id}/tokens/{token_id}/revoke", "post"),
        ("/api/iam/tokens", "get"),
        ("/api/iam/Roles", "get"),
        ("/api/iam/Roles/{role_id}/Users", "get"),
        ("/api/iam/logout", "post"),
        ("/api/iam/Users/password", "put"),
        ("/api/iam/Users/{id}/password", "put"),
        ("/api/iam/Users/{id}/password/reset", "put"),
        ("/api/iam/password/reset", "post"),
        ("/api/sc/instances", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    // Every security requirement names a defined scheme; every endpoint
    // behind authentication takes sessions, API tokens and the tenant context.
    let schemes = &document["components"]["securitySchemes"];
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let names: Vec<&String> = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|requirement| requirement.as_object().unwrap().keys())
                .collect();
            for name in &names {
                assert!(
                    schemes[name.as_str()].is_object(),
                    "{method} {path}: undefined security scheme {name}"
                );
            }
            // Login and the completion of a reset take no caller.
            let behind_caller = (path.starts_with("/api/") || path.starts_with("/cloudapi/"))
                && path != "/api/iam/login"
                && path != "/api/iam/password/reset";
            if behind_caller {
                assert!(
                    names.iter().any(|name| *name == "bearer")
                        && names.iter().any(|name| *name == "token"),
                    "{method} {path}: {names:?}"
                );
                let described = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| {
                        p["name"] == "X-VMware-VCloud-Tenant-Context" && p["in"] == "header"
                    })
                    .count();
                assert_eq!(
                    described, 1,
                    "{method} {path} must describe the tenant-context header once"
                );
            }
        }
    }
    let create = &document["paths"]["/api/iam/Users"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/UserRequest"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/User"
    );
    for schema in ["User", "UserList", "UserRequest", "ErrorBody"] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }

    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    assert_eq!(app.get("/docs/swagger-ui-bundle.js").await.status(), 200);
}

async fn iamctl_bootstrap_does_what_a_first_start_does_once(kind: Kind) {
    let database = iam_test_databases::TestDatabase::new(kind).await.unwrap();
    let iamctl = std::path::Path::new(IAMD).with_file_name("iamctl");
    let run = || {
        let output = Command::new(&iamctl)
            .arg("bootstrap")
            .env_clear()
            .env("IAM_DATABASE_URL", database.url())
            .env("IAM_BOOTSTRAP_ADMIN_EMAIL", "ops@example.com")
            .env("IAM_BOOTSTRAP_ADMIN_PASSWORD", "ops password 1")
            .env("IAM_BOOTSTRAP_ORG_NAME", "Example MSP")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = run();
    assert!(
        first.contains(
            "created the provider organization `Example MSP` and its administrator ops@example.com"
        ),
        "{first}"
    );
    assert!(
        !first.contains("ops password 1"),
        "a configured password is never printed"
    );
    let second = run();
    assert!(second.contains("nothing changed"), "{second}");

    let (mut child, address, _) = start_without_bootstrap_settings(database.url());
    let login = reqwest::Client::new()
        .post(format!("{address}/api/iam/login"))
        .basic_auth("ops@example.com", Some("ops password 1"))
        .send()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(login.status(), 201);
}

#[tokio::test]
async fn answers_are_not_sniffed_and_user_data_is_never_stored_by_a_cache() {
    let app = spawn_app(Kind::Sqlite).await;
    let admin = app.admin().await;
    let answers = [
        app.request(reqwest::Method::GET, "/api/iam/Users", &admin, None)
            .send()
            .await
            .unwrap(),
        app.request(reqwest::Method::GET, "/api/iam/nowhere", &admin, None)
            .send()
            .await
            .unwrap(),
        app.request(reqwest::Method::GET, "/scim/v2/Users", "not-a-token", None)
            .send()
            .await
            .unwrap(),
        app.request(
            reqwest::Method::GET,
            "/api/iam/Users?count=abc",
            &admin,
            None,
        )
        .send()
        .await
        .unwrap(),
        app.request(reqwest::Method::GET, "/cloudapi/1.0.0/roles", &admin, None)
            .send()
            .await
            .unwrap(),
    ];
    for answer in answers {
        let url = answer.url().clone();
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{url}"
        );
        assert_eq!(answer.headers()["cache-control"], "no-store", "{url}");
    }
    let page = app.get("/console/").await;
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(
        app.get("/healthz").await.headers()["x-content-type-options"],
        "nosniff"
    );
}

#[tokio::test]
async fn a_session_naming_another_providers_tenant_hears_what_a_made_up_one_hears() {
    let app = spawn_app(Kind::Sqlite).await;
    let admin = app.admin().await;
    let acme = app.create_tenant(&admin, "Acme", true).await;
    let globex = app.create_tenant(&admin, "Globex", true).await;
    let mut boss = crate::support::user_body("boss@acme.example", &["Account Administrator"]);
    boss["password"] = serde_json::json!("the boss's password");
    assert_eq!(
        app.create_user(&admin, Some(&acme), &boss).await.status(),
        201
    );
    let boss = app.login("boss@acme.example", "the boss's password").await;
    let answer = |tenant: String| {
        let request = app.request(reqwest::Method::GET, "/api/iam/Users", &boss, Some(&tenant));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.text().await.unwrap().replace(&tenant, "ORG"),
            )
        }
    };
    let foreign = answer(globex.clone()).await;
    assert_eq!(foreign.0, 403);
    assert_eq!(
        foreign,
        answer("0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f70".to_owned()).await
    );
}

/// The limits a wire type declares are in the OpenAPI description, and the
/// service holds requests to exactly them: one character past a `maxLength`
/// is a 400 naming the element; at the bound, no length refusal.
#[tokio::test]
async fn the_described_length_limits_are_the_enforced_ones() {
    let app = spawn_app(Kind::Sqlite).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let document: serde_json::Value = app
        .get("/api-docs/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let properties = document["components"]["schemas"]["UserRequest"]["properties"]
        .as_object()
        .expect("UserRequest is described")
        .clone();
    let bounded: Vec<(String, u64)> = properties
        .iter()
        .filter_map(|(name, property)| Some((name.clone(), property["maxLength"].as_u64()?)))
        .collect();
    let names: Vec<&str> = bounded.iter().map(|(name, _)| name.as_str()).collect();
    for expected in [
        "email",
        "userName",
        "givenName",
        "familyName",
        "state",
        "password",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} has no maxLength: {names:?}"
        );
    }
    assert_eq!(properties["schemas"]["maxItems"], 8);
    let mut n = 0;
    for (name, max) in bounded {
        for (length, refused) in [(max + 1, true), (max, false)] {
            n += 1;
            let mut body = crate::support::user_body(&format!("u{n}@acme.example"), &["End User"]);
            let value = if name == "email" || name == "userName" {
                let domain = "@acme.example";
                format!("{}{domain}", "a".repeat(length as usize - domain.len()))
            } else {
                "x".repeat(length as usize)
            };
            body[name.as_str()] = serde_json::json!(value);
            let response = app.create_user(&admin, Some(&tenant), &body).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let about_length = text.contains(&format!("`{name}`"))
                && (text.contains("too long") || text.contains("characters long"));
            if refused {
                assert_eq!(status, 400, "{name} at {length}: {text}");
                assert!(about_length, "{name} at {length}: {text}");
            } else {
                assert!(!about_length, "{name} at its bound {length}: {text}");
            }
        }
    }
}

/// An engine whose advisory locks do not exclude each other (simulated on
/// PostgreSQL by functions of the same names that grant every lock, found
/// first on the search path) is refused at start-up, with one line that
/// names the variable and says why.
#[tokio::test]
async fn an_engine_with_no_op_advisory_locks_is_refused_at_start_up() {
    use sqlx::Connection;
    let database = iam_test_databases::TestDatabase::new(Kind::Postgres)
        .await
        .expect("a test database");
    let mut connection = sqlx::PgConnection::connect(database.url()).await.unwrap();
    for statement in [
        "CREATE FUNCTION public.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE sql AS 'SELECT'",
        "CREATE FUNCTION public.pg_try_advisory_xact_lock(bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    ] {
        sqlx::query(statement)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let url = format!(
        "{}?options=-c%20search_path%3Dpublic%2Cpg_catalog",
        database.url()
    );
    let folder = tempfile::tempdir().unwrap();
    let (status, stderr) = run_to_exit(
        folder.path(),
        &[
            ("IAM_DATABASE_URL", url.as_str()),
            ("IAM_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert!(!status.success(), "iamd must not start: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("IAM_DATABASE_URL") && stderr.contains("advisory locks do not exclude"),
        "{stderr}"
    );
}

/// `/metrics` lists what the README says: logins and token
/// authentications by outcome, append latency and group size, projection
/// lag, and the change feed's subscribers.
#[tokio::test]
async fn metrics_cover_logins_tokens_appends_projections_and_the_feed() {
    let app =
        crate::support::spawn_app_with(Kind::Sqlite, &[("IAM_GRPC_LISTEN", "127.0.0.1:0")]).await;
    let admin = app.admin().await;
    assert_eq!(
        app.try_login(crate::support::ADMIN, "wrong password")
            .await
            .status(),
        401
    );
    let refused = app
        .client
        .get(app.url("/api/iam/Users"))
        .header("Authorization", "Token iam_not_a_real_token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    app.create_tenant(&admin, "Acme", true).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    for name in [
        "iam_logins_total{outcome=\"succeeded\"} 1",
        "iam_logins_total{outcome=\"failed\"} 1",
        "iam_token_authentications_total{outcome=\"refused\"} 1",
        "iam_eventstore_append_seconds",
        "iam_eventstore_commit_seconds",
        "iam_eventstore_group_appends",
        "iam_projection_lag_events",
        "http_request_duration_seconds",
    ] {
        assert!(text.contains(name), "/metrics lacks `{name}`:\n{text}");
    }
}
