//! Database faults. PostgreSQL going away under load (every connection
//! cut, new ones refused, as a restart does), through a TCP proxy in the
//! test: requests fail fast with 503 rather than hang, and the service
//! recovers by itself once the database is back. The SQLite store on a
//! disk that fills up (a small tmpfs; root only): writes are 503, reads
//! keep working, nothing is half-written.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iam_test_databases::{Kind, TestDatabase};
use reqwest::{Client, Method};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{VCA_JSON, spawn_app_on, user_body};

/// A TCP proxy to the database that can cut every connection and refuse
/// new ones until it is restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (accept_up, accept_cuts) = (Arc::clone(&up), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    // The database is away: the connection ends at once.
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = accept_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, cuts }
    }

    /// Every connection ends; new ones end at once.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// One create: when it was sent, how long it took, and its status (0: no answer).
#[derive(Debug, Clone)]
struct Attempt {
    sent: Instant,
    took: Duration,
    status: u16,
    retry_after: bool,
    message: String,
}

// Two workers: starting the app blocks one while the proxy serves on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_under_load_is_503_at_once_and_the_service_recovers_by_itself() {
    let database = TestDatabase::new(Kind::Postgres)
        .await
        .expect("a test database");
    let url = database.url().to_owned();
    // postgres://user@host:port/db → the proxy's port in its place.
    let (head, rest) = url.split_once('@').unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(authority.to_owned()).await;
    let proxied = format!("{head}@127.0.0.1:{}/{path}", proxy.port);
    let app = spawn_app_on(database, &[("IAM_DATABASE_URL", proxied.as_str())]);
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;

    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let base = app.url("").trim_end_matches('/').to_owned();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (attempts, stop, counter) = (attempts.clone(), stop.clone(), counter.clone());
            let (base, admin, tenant) = (base.clone(), admin.clone(), tenant.clone());
            tokio::spawn(async move {
                let http = Client::new();
                for _ in 0..2000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    let answer = http
                        .request(Method::POST, format!("{base}/api/iam/Users"))
                        .bearer_auth(&admin)
                        .header("Accept", VCA_JSON)
                        .header("X-VMware-VCloud-Tenant-Context", &tenant)
                        .timeout(Duration::from_secs(60))
                        .json(&user_body(&format!("u{n}@acme.example"), &["End User"]))
                        .send()
                        .await;
                    let attempt = match answer {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let retry_after = response.headers().contains_key("retry-after");
                            let body: Value = response.json().await.unwrap_or_default();
                            Attempt {
                                sent,
                                took: sent.elapsed(),
                                status,
                                retry_after,
                                message: body["Errors"][0]["description"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned(),
                            }
                        }
                        Err(_) => Attempt {
                            sent,
                            took: sent.elapsed(),
                            status: 0,
                            retry_after: false,
                            message: String::new(),
                        },
                    };
                    let failed = attempt.status != 201;
                    attempts
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(attempt);
                    if failed {
                        // A client that is refused backs off a little.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let cut_at = Instant::now();
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restored_at = Instant::now();
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let attempts = attempts.lock().unwrap().clone();
    let during: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent >= cut_at + Duration::from_millis(200) && a.sent < restored_at)
        .collect();
    let refused: Vec<&&Attempt> = during.iter().filter(|a| a.status == 503).collect();
    println!(
        "{} creates; during the outage {} sent, {} answered 503, slowest {:?}; statuses {:?}",
        attempts.len(),
        during.len(),
        refused.len(),
        during.iter().map(|a| a.took).max().unwrap_or_default(),
        {
            let mut statuses: Vec<u16> = during.iter().map(|a| a.status).collect();
            statuses.sort_unstable();
            statuses.dedup();
            statuses
        }
    );
    assert!(!during.is_empty(), "requests were sent during the outage");
    for attempt in &during {
        assert!(
            attempt.status == 503 || attempt.status == 201,
            "during the outage: {attempt:?}"
        );
        assert!(
            attempt.took < Duration::from_secs(5),
            "a request hung during the outage: {attempt:?}"
        );
    }
    let first = refused.first().expect("the outage was answered 503");
    assert!(first.retry_after, "503 says when to come back: {first:?}");
    assert!(
        first.message.to_lowercase().contains("database"),
        "the message says what is wrong: {first:?}"
    );
    // Recovered without a restart: the last second's creates all succeed.
    let recovered: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent > restored_at + Duration::from_secs(6))
        .collect();
    assert!(!recovered.is_empty());
    assert!(
        recovered.iter().all(|a| a.status == 201),
        "after the database came back: {:?}",
        recovered
            .iter()
            .filter(|a| a.status != 201)
            .collect::<Vec<_>>()
    );
    let health = app.get("/readyz").await;
    assert_eq!(health.status(), 200);
}

/// A tmpfs of a few MiB, mounted for a test and unmounted when dropped.
struct SmallDisk {
    folder: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this process may not mount (not root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let folder = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(folder.path())
            .status()
            .ok()?
            .success();
        mounted.then_some(SmallDisk { folder })
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.folder.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount: {status}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.folder.path())
            .status();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// The SQLite store on a disk that fills up: writes answer 503 saying so,
/// reads keep working, every acknowledged write is there and the read
/// models equal a rebuild; once space is freed, writes work again.
#[tokio::test]
async fn a_full_disk_refuses_writes_with_503_and_keeps_reads() {
    if !is_root() {
        println!("skipped: mounting a small disk (tmpfs) needs root");
        return;
    }
    let disk = SmallDisk::mount("3m").expect("root mounts a tmpfs");
    let url = format!("sqlite://{}/iam.db", disk.folder.path().display());
    let app = spawn_app_on(
        TestDatabase::sqlite().unwrap(),
        &[("IAM_DATABASE_URL", url.as_str())],
    );
    let admin = app.admin().await;
    let tenant = app.create_tenant(&admin, "Acme", true).await;
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    let refusal = loop {
        assert!(
            acknowledged.len() < 20_000 && started.elapsed() < Duration::from_secs(120),
            "the disk never filled"
        );
        let mut body = user_body(
            &format!("u{}@acme.example", acknowledged.len()),
            &["End User"],
        );
        body["familyName"] = serde_json::json!("F".repeat(128));
        let response = app.create_user(&admin, Some(&tenant), &body).await;
        match response.status().as_u16() {
            201 => {
                let created: Value = response.json().await.unwrap();
                acknowledged.push(created["id"].as_str().unwrap().to_owned());
            }
            status => {
                let retry_after = response.headers().contains_key("retry-after");
                let body: Value = response.json().await.unwrap_or_default();
                break (status, retry_after, body);
            }
        }
    };
    println!(
        "the disk filled after {} creates: {:?}",
        acknowledged.len(),
        refusal
    );
    let (status, retry_after, body) = refusal;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after);
    assert!(body.to_string().contains("no space left"), "{body}");
    // Reads keep working, and every acknowledged create is there.
    for id in &acknowledged {
        let user = app
            .get_json(&format!("/api/iam/Users/{id}"), &admin, Some(&tenant))
            .await;
        assert_eq!(user["id"], id.as_str());
    }
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the service is alive"
    );
    // Nothing half-written: the read models equal a rebuild from the log.
    let (code, report) = crate::support::iamctl(&url, &["projections", "verify"]);
    assert_eq!(code, 0, "{report}");
    // Space freed: writes work again, without a restart.
    disk.grow("64m");
    let mut again = None;
    for attempt in 0..50 {
        let response = app
            .create_user(
                &admin,
                Some(&tenant),
                &user_body(&format!("after{attempt}@acme.example"), &["End User"]),
            )
            .await;
        if response.status() == 201 {
            again = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(again.is_some(), "writes work again once there is space");
}
