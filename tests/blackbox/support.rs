//! Starting `iamd` for a test, and talking to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use iam_test_databases::{Kind, TestDatabase};

/// The path of the binary under test.
pub(crate) const IAMD: &str = env!("CARGO_BIN_EXE_iamd");

/// A running `iamd`, killed when dropped.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    /// Behind a lock so that a signal can be sent through a shared reference
    /// while requests are in flight.
    process: Mutex<Child>,
    /// Kept alive (and its file) as long as the process; shared by replicas.
    database: Arc<TestDatabase>,
    /// What the process printed (its log), up to [`KEPT_LOG_LINES`] lines.
    log: Arc<Mutex<Vec<String>>>,
}

/// The most log lines a test app keeps.
const KEPT_LOG_LINES: usize = 200_000;

impl Drop for TestApp {
    fn drop(&mut self) {
        let process = self
            .process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = process.kill();
        let _ = process.wait();
    }
}

/// The administrator every test app is bootstrapped with.
pub(crate) const ADMIN: &str = "admin@provider.example.com";
/// Its password.
pub(crate) const ADMIN_PASSWORD: &str = "correct horse battery";

/// Starts `iamd` on a fresh database of `kind` and waits until it listens.
pub(crate) async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(kind, &[]).await
}

/// Starts `iamd` with extra environment variables.
pub(crate) async fn spawn_app_with(kind: Kind, env: &[(&str, &str)]) -> TestApp {
    let database = TestDatabase::new(kind).await.expect("a test database");
    start(Arc::new(database), env)
}

/// Starts `iamd` on `database` (with extra environment variables).
pub(crate) fn spawn_app_on(database: TestDatabase, env: &[(&str, &str)]) -> TestApp {
    start(Arc::new(database), env)
}

/// Several `iamd` processes on one PostgreSQL database.
pub(crate) struct Replicas {
    pub(crate) apps: Vec<TestApp>,
    /// The database they share (each app holds it too).
    _database: Arc<TestDatabase>,
}

/// Starts `n` `iamd` processes on one fresh PostgreSQL database (all
/// bootstrapped with [`ADMIN`]): the first alone, so that it bootstraps the
/// empty database, then the others at once; waits until each listens.
pub(crate) async fn spawn_replicas(n: usize) -> Replicas {
    replicas(n, 1, &[]).await
}

/// [`spawn_replicas`] with extra environment variables for each.
pub(crate) async fn spawn_replicas_with(n: usize, env: &[(&str, &str)]) -> Replicas {
    replicas(n, 1, env).await
}

/// Starts `n` `iamd` processes at once on one fresh, empty PostgreSQL
/// database, so that they all bootstrap it at the same moment.
pub(crate) async fn spawn_replicas_at_once(n: usize) -> Replicas {
    replicas(n, 0, &[]).await
}

/// `n` replicas: `alone` of them one after the other, then the rest at once.
async fn replicas(n: usize, alone: usize, env: &[(&str, &str)]) -> Replicas {
    let database = Arc::new(
        TestDatabase::new(Kind::Postgres)
            .await
            .expect("a test database"),
    );
    let mut apps: Vec<TestApp> = (0..alone.min(n))
        .map(|_| start(Arc::clone(&database), env))
        .collect();
    // Launched before any is waited for: they migrate and bootstrap at once.
    let launched: Vec<Launched> = (apps.len()..n).map(|_| launch(&database, env)).collect();
    apps.extend(
        launched
            .into_iter()
            .map(|launched| listening(launched, Arc::clone(&database))),
    );
    Replicas {
        apps,
        _database: database,
    }
}

fn start(database: Arc<TestDatabase>, env: &[(&str, &str)]) -> TestApp {
    let launched = launch(&database, env);
    listening(launched, database)
}

/// A started process that has not yet said where it listens; killed when
/// dropped (also when a test panics before it became a [`TestApp`]).
struct Launched {
    process: Option<Child>,
    /// Gets the address the process reports.
    address: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// Starts the process.
fn launch(database: &TestDatabase, env: &[(&str, &str)]) -> Launched {
    let mut command = Command::new(IAMD);
    command
        .env_clear()
        .env("IAM_LISTEN", "127.0.0.1:0")
        .env("IAM_DATABASE_URL", database.url())
        .env("IAM_BOOTSTRAP_ADMIN_EMAIL", ADMIN)
        .env("IAM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // The start-up line with the address is at info level.
        .env("RUST_LOG", "warn,iamd=info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut process = command.spawn().expect("iamd starts");
    let log = Arc::default();
    let address = listening_address(&mut process, Arc::clone(&log));
    Launched {
        process: Some(process),
        address,
        log,
    }
}

/// Waits (at most 60 s) until the launched process says where it listens.
fn listening(mut launched: Launched, database: Arc<TestDatabase>) -> TestApp {
    let Ok(address) = launched.address.recv_timeout(Duration::from_secs(60)) else {
        panic!("iamd exited, or did not report its address within 60 s (its stderr is above)");
    };
    let process = launched.process.take().expect("not yet taken");
    TestApp {
        address,
        client: reqwest::Client::new(),
        process: Mutex::new(process),
        database,
        log: Arc::clone(&launched.log),
    }
}

/// Reads the child's log until it says where it listens (sent on the
/// returned channel); keeps draining (and keeping) the log afterwards so
/// that the child never blocks on a full pipe.
fn listening_address(process: &mut Child, log: Arc<Mutex<Vec<String>>>) -> mpsc::Receiver<String> {
    let stdout = process.stdout.take().expect("stdout is piped");
    let (found, address) = mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            {
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() < KEPT_LOG_LINES {
                    log.push(line.clone());
                }
            }
            if let Some(at) = line.find("listening on http://") {
                // Up to the end of the address (a JSON log line goes on).
                let url: String = line[at + "listening on ".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                if let Some(found) = found.take() {
                    let _ = found.send(url);
                }
            }
        }
    });
    address
}

impl TestApp {
    /// Stops the process, keeping its database (for offline tools).
    pub(crate) fn stop(&mut self) {
        let process = self
            .process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = process.kill();
        let _ = process.wait();
    }

    /// Stops this process and starts another on the same database.
    pub(crate) fn restart(self) -> TestApp {
        self.restart_with(&[])
    }

    /// Stops this process and starts another on the same database, with
    /// extra environment variables.
    pub(crate) fn restart_with(mut self, env: &[(&str, &str)]) -> TestApp {
        self.stop();
        start(Arc::clone(&self.database), env)
    }

    /// What the process has printed so far: its log.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The database the app runs on (to read its log directly).
    pub(crate) fn database_url(&self) -> &str {
        self.database.url()
    }

    /// The child process, locked.
    fn locked_process(&self) -> std::sync::MutexGuard<'_, Child> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGKILL, at once: the process gets no chance to finish anything.
    /// Returns how it ended.
    pub(crate) fn kill_9(&self) -> ExitStatus {
        let mut process = self.locked_process();
        process.kill().expect("SIGKILL sent");
        process.wait().expect("the killed process is reaped")
    }

    /// The process's resident memory now and at its peak so far, in KiB
    /// (`VmRSS` and `VmHWM` of `/proc/PID/status`).
    pub(crate) fn memory_kib(&self) -> (u64, u64) {
        let id = self.locked_process().id();
        let status = std::fs::read_to_string(format!("/proc/{id}/status")).expect("/proc status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| {
                    line.strip_prefix(name)?
                        .trim()
                        .strip_suffix("kB")?
                        .trim()
                        .parse()
                        .ok()
                })
                .unwrap_or_else(|| panic!("no {name} in /proc/{id}/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Sends SIGTERM (a graceful stop) and returns without waiting.
    pub(crate) fn terminate(&self) {
        let mut process = self.locked_process();
        assert!(
            process.try_wait().expect("the process's state").is_none(),
            "the process already exited before SIGTERM"
        );
        // Not yet reaped, so the pid is still this process's.
        let status = Command::new("kill")
            .args(["-TERM", &process.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits at most `limit` for the process to exit; returns its status
    /// and when it exited, or `None` if it still runs.
    pub(crate) async fn exit_within(&self, limit: Duration) -> Option<(ExitStatus, Instant)> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self
                .locked_process()
                .try_wait()
                .expect("the process's state")
            {
                return Some((status, Instant::now()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }
}

/// Runs `iamd` to completion with `env` in `folder`, returning its exit
/// status and what it printed on stderr.
pub(crate) fn run_to_exit(
    folder: &Path,
    env: &[(&str, &str)],
) -> (std::process::ExitStatus, String) {
    let output = Command::new(IAMD)
        .current_dir(folder)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("iamd runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `iamctl` (built beside `iamd`) on the database `url`; returns its
/// exit code and what it wrote on standard output and standard error.
pub(crate) fn iamctl(url: &str, args: &[&str]) -> (i32, String) {
    let binary = std::path::Path::new(IAMD).with_file_name("iamctl");
    assert!(
        binary.exists(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        binary.display()
    );
    let output = Command::new(binary)
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

/// The vCloud Air dialect's media type.
pub(crate) const VCA_JSON: &str = "application/json;version=5.7";

impl TestApp {
    /// Logs in; returns the session token.
    pub(crate) async fn login(&self, user: &str, password: &str) -> String {
        let response = self.try_login(user, password).await;
        assert_eq!(response.status(), 201, "login of {user}");
        response.headers()["vchs-authorization"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) async fn try_login(&self, user: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/iam/login"))
            .basic_auth(user, Some(password))
            .header("Accept", VCA_JSON)
            .send()
            .await
            .unwrap()
    }

    /// The bootstrapped provider administrator's session.
    pub(crate) async fn admin(&self) -> String {
        self.login(ADMIN, ADMIN_PASSWORD).await
    }

    /// A request with the dialect's headers, a session and an optional tenant context.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        tenant: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("Accept", VCA_JSON);
        if let Some(tenant) = tenant {
            request = request.header("X-VMware-VCloud-Tenant-Context", tenant);
        }
        request
    }

    /// GETs `path` as `session` (in `tenant`, if any), expecting 200; returns the body.
    pub(crate) async fn get_json(
        &self,
        path: &str,
        session: &str,
        tenant: Option<&str>,
    ) -> serde_json::Value {
        let response = self
            .request(reqwest::Method::GET, path, session, tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Adds provider user `user` to `tenant` as Organization Owner.
    pub(crate) async fn add_member(
        &self,
        admin: &str,
        tenant: &str,
        user: &str,
    ) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/api/orgs/{tenant}/members"),
            admin,
            None,
        )
        .json(&serde_json::json!({ "userId": user }))
        .send()
        .await
        .unwrap()
    }

    /// Creates a tenant organization as the provider administrator; returns its id.
    pub(crate) async fn create_tenant(&self, admin: &str, name: &str, delegates: bool) -> String {
        let response = self
            .request(reqwest::Method::POST, "/api/orgs", admin, None)
            .json(&serde_json::json!({ "name": name, "delegatesUserManagement": delegates }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// The `{"users": [...]}` the caller sees in `tenant` (or its home).
    pub(crate) async fn users(&self, token: &str, tenant: Option<&str>) -> serde_json::Value {
        let response = self
            .request(reqwest::Method::GET, "/api/iam/Users", token, tenant)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// POSTs a user body; returns the response.
    pub(crate) async fn create_user(
        &self,
        token: &str,
        tenant: Option<&str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.request(reqwest::Method::POST, "/api/iam/Users", token, tenant)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Creates an API token for `user` in the session's effective organization.
    pub(crate) async fn create_token(
        &self,
        session: &str,
        user: &str,
        days: i64,
    ) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/api/iam/Users/{user}/tokens"),
            session,
            None,
        )
        .json(&serde_json::json!({ "name": "ci", "description": "deploys", "lifetimeDays": days }))
        .send()
        .await
        .unwrap()
    }

    /// Downloads the secret of `user`'s token `token`.
    pub(crate) async fn download_token(
        &self,
        session: &str,
        user: &str,
        token: &str,
    ) -> reqwest::Response {
        self.request(
            reqwest::Method::POST,
            &format!("/api/iam/Users/{user}/tokens/{token}/download"),
            session,
            None,
        )
        .send()
        .await
        .unwrap()
    }
}

/// The body of the vCloud Air documentation's example, for `email`, with these roles.
pub(crate) fn user_body(email: &str, roles: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "schemas": ["urn:scim:schemas:core:1.0"],
        "state": "Active",
        "email": email,
        "familyName": "test12345",
        "givenName": "Jill",
        "roles": { "roles": roles.iter().map(|name| serde_json::json!({ "name": name })).collect::<Vec<_>>() },
        "userName": email,
    })
}

/// The SCIM error description of a refused request.
pub(crate) async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["Errors"][0]["code"], status.to_string(), "{body}");
    (
        status,
        body["Errors"][0]["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Defines each test twice: against SQLite and against PostgreSQL.
macro_rules! both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite { $(
            #[tokio::test]
            async fn $test() { super::$test(iam_test_databases::Kind::Sqlite).await; }
        )* }
        mod postgres { $(
            #[tokio::test]
            async fn $test() { super::$test(iam_test_databases::Kind::Postgres).await; }
        )* }
    };
}
