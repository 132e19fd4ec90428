//! Crash under load: while 16 clients create and update users and create
//! and revoke tokens, `iamd` is killed with SIGKILL three times and started
//! again on the same store. Every write answered 2xx is there afterwards,
//! none is there twice, and the read models equal a rebuild from the log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iam_test_databases::Kind;
use reqwest::{Client, Method};
use serde_json::{Value, json};

use crate::support::{VCA_JSON, iamctl, spawn_app, user_body};

both_backends!(sigkill_under_load_loses_no_acknowledged_write_and_duplicates_none);

const CLIENTS: usize = 16;
const ROUNDS: usize = 3;
/// How long the clients write before each kill.
const BEFORE_KILL: Duration = Duration::from_millis(1200);
/// The most requests one client sends in a round (a bound on the loop).
const MAX_REQUESTS: usize = 400;

/// What the service acknowledged, and what it may have done unacknowledged.
#[derive(Default)]
struct Ledger {
    /// Created users: id → userName.
    users: HashMap<String, String>,
    /// Per user, the last `givenName` acknowledged, and every one sent
    /// after it without an answer (it may have committed before the kill).
    names: HashMap<String, (String, Vec<String>)>,
    /// Created tokens: token id → owner id.
    tokens: HashMap<String, String>,
    /// Tokens whose revocation was acknowledged.
    revoked: HashSet<String>,
    /// Acknowledged writes, all kinds.
    acknowledged: usize,
    /// Requests that got no answer (the kill).
    unanswered: usize,
}

/// One client's writes in one round, until `stop`.
async fn client(
    number: usize,
    round: usize,
    base: String,
    session: String,
    tenant: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let http = Client::new();
    let request = |method: Method, path: &str| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(&session)
            .header("Accept", VCA_JSON)
            .header("X-VMware-VCloud-Tenant-Context", &tenant)
            .timeout(Duration::from_secs(10))
    };
    let mut mine: Vec<String> = Vec::new();
    let mut my_tokens: Vec<String> = Vec::new();
    for n in 0..MAX_REQUESTS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let lock = || ledger.lock().unwrap_or_else(PoisonError::into_inner);
        match (n % 4, mine.last().cloned()) {
            (0, _) | (_, None) => {
                let user_name = format!("c{number}-r{round}-{n}@acme.example");
                let sent = request(Method::POST, "/api/iam/Users")
                    .json(&user_body(&user_name, &["End User"]))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 201 => {
                        let body: Value = response.json().await.unwrap_or_default();
                        let id = body["id"].as_str().unwrap_or_default().to_owned();
                        let mut ledger = lock();
                        ledger.users.insert(id.clone(), user_name);
                        ledger.names.insert(id.clone(), ("Jill".into(), Vec::new()));
                        ledger.acknowledged += 1;
                        mine.push(id);
                    }
                    Ok(_) => {}
                    Err(_) => lock().unanswered += 1,
                }
            }
            (1, Some(user)) => {
                let given = format!("G{round}x{n}");
                let mut body = user_body(&lock().users[&user], &["End User"]);
                body["givenName"] = json!(given);
                let sent = request(Method::PUT, &format!("/api/iam/Users/{user}"))
                    .json(&body)
                    .send()
                    .await;
                let mut ledger = lock();
                match sent {
                    Ok(response) if response.status() == 200 => {
                        ledger.names.insert(user, (given, Vec::new()));
                        ledger.acknowledged += 1;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        ledger.unanswered += 1;
                        if let Some((_, maybe)) = ledger.names.get_mut(&user) {
                            maybe.push(given);
                        }
                    }
                }
            }
            (2, Some(user)) => {
                let sent = request(Method::POST, &format!("/api/iam/Users/{user}/tokens"))
                    .json(&json!({ "name": "ci", "description": "crash test", "lifetimeDays": 30 }))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 201 => {
                        let body: Value = response.json().await.unwrap_or_default();
                        let id = body["id"].as_str().unwrap_or_default().to_owned();
                        let mut ledger = lock();
                        ledger.tokens.insert(id.clone(), user);
                        ledger.acknowledged += 1;
                        my_tokens.push(id);
                    }
                    Ok(_) => {}
                    Err(_) => lock().unanswered += 1,
                }
            }
            (_, Some(_)) => {
                let Some(token) = my_tokens.pop() else {
                    continue;
                };
                let owner = lock().tokens[&token].clone();
                let sent = request(
                    Method::POST,
                    &format!("/api/iam/Users/{owner}/tokens/{token}/revoke"),
                )
                .send()
                .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        let mut ledger = lock();
                        ledger.revoked.insert(token);
                        ledger.acknowledged += 1;
                    }
                    Ok(_) => {}
                    Err(_) => lock().unanswered += 1,
                }
            }
        }
    }
}

async fn sigkill_under_load_loses_no_acknowledged_write_and_duplicates_none(kind: Kind) {
    let mut app = spawn_app(kind).await;
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let base = app.url("").trim_end_matches('/').to_owned();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|number| {
                tokio::spawn(client(
                    number,
                    round,
                    base.clone(),
                    admin.clone(),
                    tenant.clone(),
                    Arc::clone(&ledger),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        tokio::time::sleep(BEFORE_KILL).await;
        let status = app.kill_9();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "round {round}: {status}"
        );
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.unwrap();
        }
        app = app.restart();
    }
    let ledger = Arc::try_unwrap(ledger)
        .ok()
        .expect("the clients are done")
        .into_inner()
        .unwrap();
    println!(
        "{ROUNDS} kills in {:?}: {} writes acknowledged, {} requests unanswered, {} users, {} tokens",
        started.elapsed(),
        ledger.acknowledged,
        ledger.unanswered,
        ledger.users.len(),
        ledger.tokens.len()
    );
    assert!(
        ledger.acknowledged > 100,
        "the load wrote: {}",
        ledger.acknowledged
    );
    assert!(ledger.unanswered > 0, "the kills cut requests off");

    // Every acknowledged user is there, with an acknowledged (or a later,
    // unanswered) name.
    for (id, user_name) in &ledger.users {
        let user = app
            .get_json(&format!("/api/iam/Users/{id}"), &admin, Some(&tenant))
            .await;
        assert_eq!(
            user["userName"],
            user_name.as_str(),
            "acknowledged user {id}"
        );
        let (acknowledged, maybe) = &ledger.names[id];
        let given = user["givenName"].as_str().unwrap();
        assert!(
            given == acknowledged || maybe.iter().any(|name| name == given),
            "{user_name}: givenName {given}, last acknowledged {acknowledged}"
        );
    }
    // Every acknowledged token is there; every acknowledged revocation holds.
    for (token, owner) in &ledger.tokens {
        let tokens = app
            .get_json(
                &format!("/api/iam/Users/{owner}/tokens"),
                &admin,
                Some(&tenant),
            )
            .await;
        let found = tokens["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == token.as_str())
            .unwrap_or_else(|| panic!("acknowledged token {token} is gone"));
        if ledger.revoked.contains(token) {
            assert_eq!(found["status"], "Revoked", "{found}");
        }
    }

    // Nothing twice: one UserCreated per user name, one TokenCreated per token.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(app.database_url()).await.unwrap();
    for (kind, field) in [("UserCreated", "userName"), ("TokenCreated", "id")] {
        let data: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(data AS TEXT) FROM events WHERE event_type = '{kind}'"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut seen = HashSet::new();
        for data in data {
            let value: Value = serde_json::from_str(&data).unwrap();
            let key = value[field].to_string();
            assert!(seen.insert(key.clone()), "{kind} twice for {key}");
        }
    }
    let (code, report) = iamctl(app.database_url(), &["projections", "verify"]);
    assert_eq!(code, 0, "after {ROUNDS} kills:\n{report}");
}
