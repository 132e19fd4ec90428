//! `iam-bench import`: bulk provisioning as an operator runs it. It writes
//! an HR export of `users` rows, imports it with `iamctl import` into a
//! tenant of a fresh `iamd`, imports it again (every row unchanged), reads
//! single users among them, then stops `iamd`, rebuilds the projections
//! from the log with `iamctl projections rebuild`, and exports the tenant's
//! audit with `iamctl audit export`, watching the exporter's memory.
//!
//! It reports the wall time and users/s of both imports, `iamd`'s peak
//! resident memory, the database's size per user, the p50 and p99 of three
//! lookups with every user present, and the rebuild's events/s. It runs once:
//! a million-user import takes minutes, and its figures are rates over the
//! whole run, not samples.

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::api::{Api, Credential};
use crate::load::{self, Bounds, percentile};
use crate::report::Machine;
use crate::server::{ADMIN, ADMIN_PASSWORD, Server};

/// How an import benchmark runs.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ImportSettings {
    /// The rows of the imported file.
    pub(crate) users: usize,
    /// The requests of each lookup phase.
    pub(crate) reads: u64,
    /// `iamctl import --batch-size`, when not its default.
    pub(crate) batch_size: Option<usize>,
    /// `iamctl import --concurrency`, when not its default.
    pub(crate) concurrency: Option<usize>,
}

/// What an import benchmark found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImportReport {
    pub(crate) backend: String,
    pub(crate) machine: Machine,
    pub(crate) date: String,
    pub(crate) settings: serde_json::Value,
    /// The first import, into an empty tenant.
    pub(crate) import: Run,
    /// The same file again: every row is found unchanged.
    pub(crate) rerun: Run,
    /// `iamd`'s resident memory.
    pub(crate) iamd_rss_mib: Rss,
    /// The database's size on disk (the SQLite file with its WAL, or
    /// `pg_database_size`) ÷ the users imported.
    pub(crate) database_bytes_per_user: f64,
    pub(crate) lookups: Vec<Lookup>,
    /// One line per projector.
    pub(crate) rebuild: Vec<Rebuilt>,
    /// `iamctl audit export` of the tenant, after the rebuild.
    pub(crate) export: Export,
}

/// `iamctl audit export --format jsonl` of the tenant's whole audit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Export {
    pub(crate) entries: u64,
    pub(crate) seconds: f64,
    pub(crate) entries_per_second: f64,
    /// `iamctl`'s peak resident memory (VmHWM), sampled every 50 ms.
    pub(crate) peak_rss_mib: f64,
}

/// `iamd`'s resident memory in MiB: before the import, its peak (VmHWM)
/// until the end of each import and of the whole benchmark, and at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Rss {
    pub(crate) before: f64,
    pub(crate) peak_in_import: f64,
    pub(crate) peak_in_rerun: f64,
    pub(crate) peak: f64,
    pub(crate) after_lookups: f64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One `iamctl import` run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) seconds: f64,
    pub(crate) users_per_second: f64,
    /// iamctl's own summary line.
    pub(crate) summary: String,
}

/// A lookup repeated from one connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Lookup {
    pub(crate) what: String,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
}

/// One projector rebuilt from the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Rebuilt {
    pub(crate) projector: String,
    pub(crate) events: u64,
    pub(crate) seconds: f64,
    pub(crate) events_per_second: f64,
}

/// The anchors the issue compares with: users per second.
const KEYCLOAK_USERS_PER_SECOND: f64 = 69.0;
const ZITADEL_USERS_PER_SECOND: f64 = 16.0;

/// Runs the import benchmark against `server`, with `iamctl` beside it.
pub(crate) async fn bench(
    server: Server,
    iamctl: &Path,
    backend: &str,
    settings: &ImportSettings,
) -> Result<ImportReport> {
    let folder = tempfile::Builder::new()
        .prefix("iam-bench-import.")
        .tempdir()
        .context("cannot create a temporary folder for the import file")?;
    let file = folder.path().join("users.csv");
    let started = Instant::now();
    write_export(&file, settings.users)?;
    eprintln!(
        "wrote {} rows to {} in {:.1} s",
        settings.users,
        file.display(),
        started.elapsed().as_secs_f64()
    );

    let api = Api::new(server.address(), 4)?;
    let admin = api.login(ADMIN, ADMIN_PASSWORD).await?;
    let tenant = api.create_tenant(&admin, "Import").await?;
    let importer = "importer@import.example.com";
    let importer_id = api
        .create_tenant_admin(&admin, &tenant, importer, ADMIN_PASSWORD)
        .await?;
    let session = api.login(importer, ADMIN_PASSWORD).await?;
    let token = api.create_api_token(&session, &importer_id).await?;

    let before = server.memory()?;
    let import = run_import(iamctl, server.address(), &token, &file, settings)?;
    let after_import = server.memory()?;
    ensure!(
        import
            .summary
            .contains(&format!("created {}", settings.users)),
        "the import did not create every row: {}",
        import.summary
    );
    let rerun = run_import(iamctl, server.address(), &token, &file, settings)?;
    let after_rerun = server.memory()?;
    ensure!(
        rerun
            .summary
            .contains(&format!("unchanged {}", settings.users)),
        "the second import changed something: {}",
        rerun.summary
    );

    let lookups = lookups(&api, &token, settings).await?;
    let memory = server.memory()?;
    let database_bytes = database_size(&server).await?;
    let database_url = server.database_url().to_owned();
    let data = server.stop_keeping_data();
    let rebuild = rebuild(iamctl, &database_url)?;
    let export = export(iamctl, &database_url, &tenant)?;
    drop(data);
    let settings_json = serde_json::to_value(settings).context("cannot encode the settings")?;
    Ok(ImportReport {
        backend: backend.to_owned(),
        machine: Machine::this_one(),
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        settings: settings_json,
        import,
        rerun,
        iamd_rss_mib: Rss {
            before: mib(before.resident_kib),
            peak_in_import: mib(after_import.peak_kib),
            peak_in_rerun: mib(after_rerun.peak_kib),
            peak: mib(memory.peak_kib),
            after_lookups: mib(memory.resident_kib),
        },
        database_bytes_per_user: database_bytes as f64 / settings.users as f64,
        lookups,
        rebuild,
        export,
    })
}

/// The user name, e-mail and externalId of row `n` of the export.
fn user_name(n: usize) -> String {
    format!("employee{n:07}@import.example.com")
}

fn external_id(n: usize) -> String {
    format!("hr-{n:07}")
}

/// Writes an HR export of `users` rows in `iamctl import`'s CSV format: one
/// administrator in a hundred, the rest End Users.
fn write_export(path: &Path, users: usize) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let write = |out: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
        writeln!(
            out,
            "userName,email,givenName,familyName,roles,state,externalId"
        )?;
        for n in 0..users {
            let name = user_name(n);
            let role = if n % 100 == 0 {
                "Read-Only Administrator"
            } else {
                "End User"
            };
            writeln!(
                out,
                "{name},{name},Given{n},Family{},{role},active,{}",
                n % 997,
                external_id(n)
            )?;
        }
        out.flush()
    };
    write(&mut out).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `iamctl import` on `file` and times it; its progress lines and
/// summary go to this process's standard error as they come.
fn run_import(
    iamctl: &Path,
    address: &str,
    token: &Credential,
    file: &Path,
    settings: &ImportSettings,
) -> Result<Run> {
    let mut command = Command::new(iamctl);
    command
        .arg("import")
        .arg(file)
        .args(["--url", address, "--progress-every", "10"])
        .env("IAM_TOKEN", token.secret())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(size) = settings.batch_size {
        command.args(["--batch-size", &size.to_string()]);
    }
    if let Some(concurrency) = settings.concurrency {
        command.args(["--concurrency", &concurrency.to_string()]);
    }
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", iamctl.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprint!("{stdout}");
    if !output.status.success() {
        bail!("iamctl import failed ({}): {stdout}", output.status);
    }
    let summary = stdout.lines().next().unwrap_or_default().to_owned();
    Ok(Run {
        seconds,
        users_per_second: settings.users as f64 / seconds,
        summary,
    })
}

/// The lookups, each from one connection, among users spread over the whole
/// export: by id (vCloud Air), by `userName eq` (vCloud Air) and by
/// `externalId eq` (SCIM 2.0).
async fn lookups(api: &Api, token: &Credential, settings: &ImportSettings) -> Result<Vec<Lookup>> {
    let reads = settings.reads;
    // Spread the rows read over the export with a stride prime to its size.
    let users = settings.users as u64;
    let pick = move |number: u64| (number.wrapping_mul(7_919) % users) as usize;
    let mut ids = Vec::new();
    for number in 0..reads {
        let user = api.find_user(token, None, &user_name(pick(number))).await?;
        ids.push(user.id);
    }
    let ids: Arc<Vec<String>> = Arc::new(ids);
    let bounds = Bounds {
        duration: Duration::from_secs(60),
        max_requests: reads,
    };
    let mut found = Vec::new();
    for kind in [Kind::Id, Kind::UserName, Kind::ExternalId] {
        let (api, token, ids) = (api.clone(), token.clone(), Arc::clone(&ids));
        let outcome = load::run(1, bounds, move |number| {
            let (api, token, ids) = (api.clone(), token.clone(), Arc::clone(&ids));
            async move {
                // Other rows than those whose ids were looked up, for the filters.
                let row = pick(number + reads);
                match kind {
                    Kind::Id => {
                        let id = &ids[number as usize % ids.len()];
                        api.get_user(&token, None, id).await
                    }
                    Kind::UserName => api.find_user(&token, None, &user_name(row)).await.map(drop),
                    Kind::ExternalId => api.scim_find_external_id(&token, &external_id(row)).await,
                }
            }
        })
        .await?;
        let what = kind.name();
        let sorted = outcome.sorted_latencies();
        let millis =
            |fraction| percentile(&sorted, fraction).map(|latency| latency.as_secs_f64() * 1e3);
        if let Some(error) = outcome.first_error() {
            eprintln!(
                "  {what}: {} of {} requests failed; the first: {error}",
                outcome.errors(),
                outcome.requests()
            );
        }
        found.push(Lookup {
            what: what.to_owned(),
            requests: outcome.requests(),
            errors: outcome.errors(),
            p50_ms: millis(0.5),
            p99_ms: millis(0.99),
        });
    }
    Ok(found)
}

/// A lookup phase: by what the user is found.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Id,
    UserName,
    ExternalId,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Id => "GET /api/iam/Users/{id}",
            Kind::UserName => "vCloud Air filter=userName eq",
            Kind::ExternalId => "SCIM 2.0 filter=externalId eq",
        }
    }
}

/// The database's size on disk, in bytes.
async fn database_size(server: &Server) -> Result<u64> {
    let url = server.database_url();
    if url.starts_with("postgres") {
        use sqlx::Connection as _;
        let mut connection = sqlx::PgConnection::connect(url)
            .await
            .context("cannot connect to PostgreSQL to measure the database")?;
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut connection)
            .await
            .context("cannot read pg_database_size")?;
        return Ok(size.max(0) as u64);
    }
    let path = url.trim_start_matches("sqlite://");
    let mut bytes = 0;
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(metadata) = std::fs::metadata(format!("{path}{suffix}")) {
            bytes += metadata.len();
        }
    }
    Ok(bytes)
}

/// Runs `iamctl projections rebuild` on the stopped service's database and
/// reads its `rebuilt NAME up to position P in T s` lines.
fn rebuild(iamctl: &Path, database_url: &str) -> Result<Vec<Rebuilt>> {
    let output = Command::new(iamctl)
        .args(["projections", "rebuild"])
        .env("IAM_DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", iamctl.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprint!("{stdout}");
    ensure!(
        output.status.success(),
        "iamctl projections rebuild failed ({})",
        output.status
    );
    let rebuilt: Vec<Rebuilt> = stdout.lines().filter_map(rebuilt_line).collect();
    ensure!(
        !rebuilt.is_empty(),
        "iamctl projections rebuild printed no `rebuilt` line"
    );
    Ok(rebuilt)
}

/// Exports the tenant's audit as JSON Lines to /dev/null and watches the
/// exporter's memory while it runs: it must not grow with the audit.
fn export(iamctl: &Path, database_url: &str, tenant: &str) -> Result<Export> {
    let started = Instant::now();
    let mut child = Command::new(iamctl)
        .args([
            "audit",
            "export",
            "--org",
            tenant,
            "--format",
            "jsonl",
            "--output",
            "/dev/null",
        ])
        .env("IAM_DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", iamctl.display()))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(memory) = crate::server::memory_of(&text)
        {
            peak_kib = peak_kib.max(memory.peak_kib);
        }
        if let Some(status) = child.try_wait().context("cannot wait for iamctl")? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut report = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read as _;
        let _ = stderr.read_to_string(&mut report);
    }
    eprint!("{report}");
    ensure!(status.success(), "iamctl audit export failed ({status})");
    let entries = report
        .lines()
        .find_map(|line| {
            line.strip_prefix("exported ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .context("iamctl audit export printed no `exported N entries` line")?;
    Ok(Export {
        entries,
        seconds,
        entries_per_second: entries as f64 / seconds.max(1e-9),
        peak_rss_mib: mib(peak_kib),
    })
}

/// `rebuilt users up to position 1000123 in 4.213 s (…)`.
fn rebuilt_line(line: &str) -> Option<Rebuilt> {
    let rest = line.strip_prefix("rebuilt ")?;
    let (projector, rest) = rest.split_once(" up to position ")?;
    let (events, rest) = rest.split_once(" in ")?;
    let (seconds, _) = rest.split_once(" s")?;
    let events: u64 = events.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    Some(Rebuilt {
        projector: projector.to_owned(),
        events,
        seconds,
        events_per_second: if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        },
    })
}

impl ImportReport {
    pub(crate) fn failed(&self) -> bool {
        self.lookups.iter().any(|lookup| lookup.errors > 0)
    }

    pub(crate) fn write_json(&self, path: &PathBuf) -> Result<()> {
        let text = serde_json::to_string_pretty(self).context("cannot encode the report")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The markdown tables: the imports beside the anchors, then the
    /// lookups, then the rebuild.
    pub(crate) fn markdown(&self) -> String {
        let users = self.settings["users"].as_u64().unwrap_or(0);
        let mut text = format!(
            "backend: {} · machine: {} × {} · {}\n\n\
             | import of {users} users | seconds | users/s | × Keycloak (69/s) | × Zitadel (16/s) |\n\
             |---|---:|---:|---:|---:|\n",
            self.backend, self.machine.cpus, self.machine.model, self.date
        );
        for (what, run) in [
            ("into an empty tenant", &self.import),
            ("again (all unchanged)", &self.rerun),
        ] {
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "| {what} | {:.1} | {:.0} | {:.0} | {:.0} |",
                run.seconds,
                run.users_per_second,
                run.users_per_second / KEYCLOAK_USERS_PER_SECOND,
                run.users_per_second / ZITADEL_USERS_PER_SECOND,
            );
        }
        let _ = write!(
            text,
            "\niamd RSS: {:.0} MiB before, peak {:.0} MiB in the import, {:.0} MiB in the second, \
             {:.0} MiB after the lookups · database {:.0} bytes per user\n\n\
             | lookup among {users} users | requests | p50 ms | p99 ms |\n|---|---:|---:|---:|\n",
            self.iamd_rss_mib.before,
            self.iamd_rss_mib.peak_in_import,
            self.iamd_rss_mib.peak_in_rerun,
            self.iamd_rss_mib.after_lookups,
            self.database_bytes_per_user
        );
        for lookup in &self.lookups {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                lookup.what,
                lookup.requests,
                millis(lookup.p50_ms),
                millis(lookup.p99_ms)
            );
        }
        text.push_str(
            "\n| projections rebuild | events | seconds | events/s |\n|---|---:|---:|---:|\n",
        );
        for rebuilt in &self.rebuild {
            let _ = writeln!(
                text,
                "| {} | {} | {:.2} | {:.0} |",
                rebuilt.projector, rebuilt.events, rebuilt.seconds, rebuilt.events_per_second
            );
        }
        let _ = writeln!(
            text,
            "\niamctl audit export (JSON Lines): {} entries in {:.1} s, {:.0} entries/s, peak RSS {:.0} MiB",
            self.export.entries,
            self.export.seconds,
            self.export.entries_per_second,
            self.export.peak_rss_mib
        );
        text
    }
}

fn millis(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |ms| format!("{ms:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilt_lines_are_read_and_others_skipped() {
        let rebuilt = rebuilt_line("rebuilt users up to position 1000 in 0.50 s").unwrap();
        assert_eq!(rebuilt.projector, "users");
        assert_eq!(rebuilt.events, 1000);
        assert_eq!(rebuilt.events_per_second, 2000.0);
        assert!(rebuilt_line("rebuilding users …").is_none());
        assert!(rebuilt_line("rebuilt users up to position x in 1 s").is_none());
    }

    #[test]
    fn the_export_has_the_header_and_one_row_per_user() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("users.csv");
        write_export(&path, 3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0],
            "userName,email,givenName,familyName,roles,state,externalId"
        );
        assert_eq!(
            lines[1],
            "employee0000000@import.example.com,employee0000000@import.example.com,Given0,Family0,Read-Only Administrator,active,hr-0000000"
        );
    }
}
