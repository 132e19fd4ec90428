//! The `iamd` under test: started as a child process on a free loopback port,
//! its address read from its log, its CPU time read from `/proc`, and killed
//! when dropped (also when the benchmark fails).
//!
//! This module knows nothing of HTTP: it owns the process, not the API.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The provider administrator the service is bootstrapped with.
pub(crate) const ADMIN: &str = "admin@bench.example.com";
/// Its password.
pub(crate) const ADMIN_PASSWORD: &str = "bench password 0123";

/// How long `iamd` may take to say where it listens (migrations included).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many of the last log lines are kept to explain a failure.
const LOG_TAIL_LINES: usize = 60;

/// A running `iamd`, killed when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    process: Child,
    /// `http://127.0.0.1:PORT`.
    address: String,
    database_url: String,
    log: Log,
    stderr_reader: Option<JoinHandle<()>>,
    ticks_per_second: u64,
    /// The SQLite file's folder, removed after the process is killed (fields
    /// drop after `Drop::drop` has run).
    _data: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The last lines `iamd` wrote on stdout and stderr.
#[derive(Debug, Clone, Default)]
struct Log(Arc<Mutex<VecDeque<String>>>);

impl Log {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == LOG_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    fn tail(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        lines.iter().cloned().collect()
    }
}

impl Server {
    /// Starts `iamd` on `database_url`, or on a fresh SQLite file in a
    /// temporary folder when there is none, and waits until it listens.
    pub(crate) fn start(iamd: &Path, database_url: Option<&str>) -> Result<Self> {
        let (data, database_url) = match database_url {
            Some(url) => (None, url.to_owned()),
            None => {
                let folder = tempfile::Builder::new()
                    .prefix("iam-bench.")
                    .tempdir()
                    .context("cannot create a temporary folder for the SQLite database")?;
                let url = format!("sqlite://{}/iam.db", folder.path().display());
                (Some(folder), url)
            }
        };
        let ticks_per_second = clock_ticks_per_second();
        let mut process = Command::new(iamd)
            .env_clear()
            .env("IAM_LISTEN", "127.0.0.1:0")
            .env("IAM_DATABASE_URL", &database_url)
            .env("IAM_BOOTSTRAP_ADMIN_EMAIL", ADMIN)
            .env("IAM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // The default 900 s would end the session in the middle of a
            // long population.
            .env("IAM_SESSION_TTL_SECS", "86400")
            // The start-up line with the address is at info level.
            .env("RUST_LOG", "warn,iamd=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", iamd.display()))?;
        let log = Log::default();
        let stdout = process.stdout.take();
        let stderr = process.stderr.take();
        let mut server = Server {
            process,
            address: String::new(),
            database_url,
            log: log.clone(),
            stderr_reader: stderr.map(|stderr| drain(stderr, log.clone(), None)),
            ticks_per_second,
            _data: data,
        };
        let (found, address) = mpsc::channel();
        if let Some(stdout) = stdout {
            // Detached: it keeps draining the log so that the child never
            // blocks on a full pipe, and ends when the child does.
            drain(stdout, log, Some(found));
        }
        match address.recv_timeout(START_TIMEOUT) {
            Ok(address) => {
                server.address = address;
                Ok(server)
            }
            Err(RecvTimeoutError::Timeout) => Err(server.failed_start(&format!(
                "iamd did not say where it listens within {} s",
                START_TIMEOUT.as_secs()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                Err(server.failed_start("iamd closed its log before it listened"))
            }
        }
    }

    /// Stops the process and says how it ended, with the last lines it wrote.
    fn failed_start(&mut self, what: &str) -> anyhow::Error {
        let status = self.stop();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let status = match status {
            Some(status) => status.to_string(),
            None => "unknown exit status".to_owned(),
        };
        anyhow::anyhow!(
            "{what} ({status}); its last lines:\n{}",
            self.log_tail().join("\n")
        )
    }

    /// Kills the process unless it has already ended; returns how it ended.
    fn stop(&mut self) -> Option<ExitStatus> {
        // An exit of its own (a bad setting) has a more telling status than the
        // kill; give it a moment to be collected.
        for _ in 0..20 {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        self.process.wait().ok()
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// The database it runs on.
    pub(crate) fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Kills the process and hands over the temporary SQLite folder, if any,
    /// so that the database outlives the service (for an offline rebuild).
    pub(crate) fn stop_keeping_data(mut self) -> Option<tempfile::TempDir> {
        let _ = self.process.kill();
        let _ = self.process.wait();
        self._data.take()
    }

    /// Its resident memory now, and at its peak so far.
    pub(crate) fn memory(&self) -> Result<Memory> {
        let path = format!("/proc/{}/status", self.process.id());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        memory_of(&status).with_context(|| format!("no VmRSS and VmHWM in {path}"))
    }

    /// The last lines `iamd` wrote, to explain failed requests.
    pub(crate) fn log_tail(&self) -> Vec<String> {
        self.log.tail()
    }

    /// The CPU time (user and system, all threads) the process has used so far.
    pub(crate) fn cpu_time(&self) -> Result<Duration> {
        let path = format!("/proc/{}/stat", self.process.id());
        let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let ticks = cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))?;
        Ok(Duration::from_secs_f64(
            ticks as f64 / self.ticks_per_second as f64,
        ))
    }
}

/// A process's resident memory, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    pub(crate) resident_kib: u64,
    pub(crate) peak_kib: u64,
}

/// `VmRSS` and `VmHWM` of a `/proc/PID/status` text (`VmHWM:   123456 kB`).
pub(crate) fn memory_of(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
    };
    Some(Memory {
        resident_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

/// Reads `stream` line by line into `log`; sends the address to `found`
/// once the service reports it.
fn drain(
    stream: impl Read + Send + 'static,
    log: Log,
    mut found: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(address) = listening_address(&line)
                && let Some(found) = found.take()
            {
                let _ = found.send(address.to_owned());
            }
            log.push(line);
        }
    })
}

/// The URL in `iamd`'s `listening on http://ADDR` line, if `line` is that line.
fn listening_address(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("listening on ")?;
    rest.split_whitespace()
        .next()
        .filter(|url| url.starts_with("http://"))
}

/// The length of a clock tick, in which `/proc/PID/stat` counts CPU time.
/// Asked of `getconf` once; Linux has used 100 on every common architecture
/// for decades, so that is the answer when `getconf` is missing.
fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks: &u64| ticks > 0)
        .unwrap_or(100)
}

/// `utime + stime` (fields 14 and 15, in clock ticks) of a `/proc/PID/stat`
/// line. The second field, the command name, is in parentheses and may hold
/// spaces and parentheses itself, so fields are counted after the last `)`.
fn cpu_ticks(stat: &str) -> Result<u64> {
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        bail!("no `)` closing the command name");
    };
    // After the name come field 3 (the state) onwards.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Result<u64> {
        let text = fields
            .get(number - 3)
            .with_context(|| format!("no field {number}"))?;
        text.parse()
            .with_context(|| format!("field {number} is not a number: {text:?}"))
    };
    Ok(field(14)? + field(15)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_adds_user_and_system_time() {
        let stat = "4242 (iamd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 987654321 4321 18446744073709551615";
        assert_eq!(cpu_ticks(stat).unwrap(), 325);
    }

    #[test]
    fn cpu_ticks_counts_fields_after_a_name_with_spaces_and_parentheses() {
        let stat = "7 (a (weird) name) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 7);
    }

    #[test]
    fn cpu_ticks_refuses_a_truncated_line() {
        assert!(cpu_ticks("7 (iamd) R 1 7").is_err());
        assert!(cpu_ticks("no name at all").is_err());
    }

    #[test]
    fn memory_is_read_from_proc_status() {
        let status = "Name:\tiamd\nVmPeak:\t 900000 kB\nVmHWM:\t  180224 kB\nVmRSS:\t  150000 kB\n";
        assert_eq!(
            memory_of(status),
            Some(Memory {
                resident_kib: 150_000,
                peak_kib: 180_224
            })
        );
        assert_eq!(memory_of("Name:\tiamd\n"), None);
    }

    #[test]
    fn listening_address_is_read_from_the_start_up_line() {
        let line =
            "2026-11-23T10:00:00.000000Z  INFO iamd::startup: listening on http://127.0.0.1:41234";
        assert_eq!(listening_address(line), Some("http://127.0.0.1:41234"));
        assert_eq!(listening_address("INFO iamd: migrations done"), None);
    }
}
