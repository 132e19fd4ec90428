//! Starting `iamd` for a test, and talking to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use iam_test_databases::{Kind, TestDatabase};

/// The path of the binary under test.
pub(crate) const IAMD: &str = env!("CARGO_BIN_EXE_iamd");

/// A running `iamd`, killed when dropped.
pub(crate) struct TestApp {
    pub(crate) address: String,
    pub(crate) client: reqwest::Client,
    process: Child,
    /// Kept alive (and its file) as long as the process.
    _database: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts `iamd` on a fresh database of `kind` and waits until it listens.
pub(crate) async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(kind, &[]).await
}

/// Starts `iamd` with extra environment variables.
pub(crate) async fn spawn_app_with(kind: Kind, env: &[(&str, &str)]) -> TestApp {
    let database = TestDatabase::new(kind).await.expect("a test database");
    let mut command = Command::new(IAMD);
    command
        .env_clear()
        .env("IAM_LISTEN", "127.0.0.1:0")
        .env("IAM_DATABASE_URL", database.url())
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut process = command.spawn().expect("iamd starts");
    let address = listening_address(&mut process);
    TestApp {
        address,
        client: reqwest::Client::new(),
        process,
        _database: database,
    }
}

/// Reads the child's log until it says where it listens; keeps draining the
/// log afterwards so that the child never blocks on a full pipe.
fn listening_address(process: &mut Child) -> String {
    let stdout = process.stdout.take().expect("stdout is piped");
    let (found, address) = mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("listening on http://") {
                let url = line[at + "listening on ".len()..].trim().to_owned();
                if let Some(found) = found.take() {
                    let _ = found.send(url);
                }
            }
        }
    });
    address
        .recv_timeout(Duration::from_secs(60))
        .expect("iamd did not report its address within 60 s")
}

impl TestApp {
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
