//! `iamctl audit export`: an organization's audit, in position order, as
//! JSON Lines, CSV or OCSF events (`ocsf.rs`), from the audit read model in
//! the database. It reads a
//! page of entries at a time and writes each as it comes, so its memory
//! stays the same whatever the audit's size.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use iam_projections::ReadModels;
use iam_projections::read_models::{AuditFilter, AuditRow};

mod ocsf;

/// Entries read from the database at once.
const PAGE: u32 = 1000;
/// How often a long export says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// What `iamctl audit export` takes.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The organization whose audit to export.
    #[arg(long = "org")]
    organization: String,
    /// Entries at or after this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Entries before this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// The format.
    #[arg(long, value_enum)]
    format: Format,
    /// Where to write [default: standard output].
    #[arg(long)]
    output: Option<PathBuf>,
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line, as `GET /api/iam/audit` shows an entry.
    Jsonl,
    /// A header, then one row per entry, in the columns an auditor filters on.
    Csv,
    /// One Open Cybersecurity Schema Framework 1.5.0 event per line.
    Ocsf,
}

/// The CSV columns.
const COLUMNS: [&str; 19] = [
    "position",
    "time",
    "organization",
    "type",
    "subjectKind",
    "subjectId",
    "userId",
    "actorId",
    "actorUserName",
    "actorOrganization",
    "authentication",
    "tokenId",
    "requestId",
    "clientRequestId",
    "traceId",
    "sourceAddress",
    "userAgent",
    "changes",
    "details",
];

fn time(name: &str, value: Option<&str>) -> anyhow::Result<Option<i64>> {
    value
        .map(|value| {
            chrono::DateTime::parse_from_rfc3339(value)
                .map(|at| at.timestamp_millis())
                .with_context(|| format!("--{name}: expected an RFC 3339 time, e.g. 2026-11-30T08:00:00Z; got `{value}`"))
        })
        .transpose()
}

/// Runs the export; the line count goes to standard error at the end.
pub(crate) async fn run(read_models: &ReadModels, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let Some(organization) = iam_domain::OrgId::parse(&args.organization) else {
        bail!(
            "--org: expected an organization id (a UUID), got `{}`",
            args.organization
        );
    };
    let organization = organization.to_string();
    if read_models.organization(&organization).await?.is_none() {
        bail!("--org: no organization `{organization}`");
    }
    let mut filter = AuditFilter {
        since: time("since", args.since.as_deref())?,
        until: time("until", args.until.as_deref())?,
        after: Some(0),
        ..AuditFilter::default()
    };
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path)
                .with_context(|| format!("--output: cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = match args.format {
        Format::Jsonl => Sink::Jsonl(BufWriter::new(out)),
        Format::Ocsf => Sink::Ocsf(BufWriter::new(out)),
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(COLUMNS)?;
            Sink::Csv(Box::new(writer))
        }
    };
    let complete_up_to = read_models.audit_complete_up_to().await?;
    let started = Instant::now();
    let mut last_progress = started;
    let mut lines: u64 = 0;
    loop {
        let rows = read_models.audit(&organization, &filter, PAGE).await?;
        let Some(last) = rows.last() else { break };
        filter.after = Some(last.position);
        for row in &rows {
            sink.write(row)?;
            lines += 1;
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            eprintln!(
                "{lines} entries, up to position {}, {:.0} entries/s",
                filter.after.unwrap_or_default(),
                lines as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    sink.finish().context("cannot write the export")?;
    eprintln!(
        "exported {lines} entries of organization {organization} in {:.1} s (the audit is complete up to position {complete_up_to})",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where entries go, one at a time (both writers buffer a little and pass
/// the rest on).
enum Sink {
    Jsonl(BufWriter<Box<dyn Write>>),
    Ocsf(BufWriter<Box<dyn Write>>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
}

impl Sink {
    fn write(&mut self, row: &AuditRow) -> anyhow::Result<()> {
        match self {
            Sink::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &row.to_json())?;
                out.write_all(b"\n")?;
            }
            Sink::Ocsf(out) => {
                serde_json::to_writer(&mut *out, &ocsf::event(row))?;
                out.write_all(b"\n")?;
            }
            Sink::Csv(writer) => writer.write_record(csv_record(row))?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Jsonl(mut out) | Sink::Ocsf(mut out) => out.flush()?,
            Sink::Csv(mut writer) => writer.flush()?,
        }
        Ok(())
    }
}

/// `value` made safe for a spreadsheet: a cell that starts like a formula
/// (`=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so
/// that a user agent or a name typed at a failed login cannot run as one.
fn cell(value: String) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value
    }
}

fn csv_record(row: &AuditRow) -> [String; 19] {
    let text = |value: &Option<String>| cell(value.clone().unwrap_or_default());
    [
        row.position.to_string(),
        row.time().unwrap_or_default(),
        row.organization_id.clone(),
        row.event_type.clone(),
        row.subject_kind.clone(),
        row.subject_id.clone(),
        text(&row.user_id),
        text(&row.actor_id),
        text(&row.actor_user_name),
        text(&row.actor_organization_id),
        text(&row.authentication),
        text(&row.token_id),
        text(&row.request_id),
        text(&row.client_request_id),
        text(&row.trace_id),
        text(&row.source_address),
        text(&row.user_agent),
        row.changes.to_string(),
        row.details
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn a_cell_that_looks_like_a_formula_is_quoted() {
        assert_eq!(cell("=HYPERLINK(\"x\")".into()), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@sum".into()), "'@sum");
        assert_eq!(cell("curl/8".into()), "curl/8");
    }
}
