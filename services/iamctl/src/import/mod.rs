//! `iamctl import FILE`: provisions the users of a CSV or JSON Lines file
//! through the service's SCIM 2.0 API (never the database), so that every
//! rule and every audit entry applies.
//!
//! The file is read as a stream in batches. For each batch the users that
//! already exist are looked up (by `externalId`, else `userName`, many per
//! request), and the others are sent in one SCIM `Bulk` request, whose
//! creates the service commits in shared group commits. Several batches are
//! in flight at once. A row that exists is `unchanged`, so running the same
//! file again creates nothing; a retried batch cannot create duplicates
//! because `userName` is unique (a create that lost such a race is counted
//! as unchanged). Rows the service or the domain's rules refuse go to the
//! error report with their line; the good rows go on.

mod rows;
mod state;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use iam_domain::OrgKind;
use iam_scim::scim2::BULK_MAX_OPERATIONS;
use serde_json::{Value, json};

use rows::{Identity, Rejected, Row, RowResult};

/// How many identities one lookup request names (a filter of `or`ed
/// equalities, well under the service's 200 comparisons).
const LOOKUP_CHUNK: usize = 100;

/// What `iamctl import` is asked to do.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ImportArgs {
    /// The CSV or JSON Lines file (`-`: standard input; gzip is detected).
    file: String,
    /// The service's base URL.
    #[arg(long, env = "IAM_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API token of an administrator of the organization to import into.
    #[arg(long, env = "IAM_TOKEN", hide_env_values = true)]
    token: String,
    /// A tenant to import into (sent as X-VMware-VCloud-Tenant-Context).
    #[arg(long)]
    tenant: Option<String>,
    /// Rows per SCIM Bulk request.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Bulk requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Where to write the rejected rows (CSV: line, userName, message).
    #[arg(long)]
    errors: Option<String>,
    /// Check every row and report what would change, writing nothing.
    #[arg(long)]
    dry_run: bool,
    /// Update users that exist with other values (names, email, state,
    /// roles); without it they are left as they are.
    #[arg(long)]
    update: bool,
    /// Deactivate (never delete) the organization's users that the file
    /// does not contain. Try it with --dry-run first: that lists them.
    #[arg(long)]
    deactivate_missing: bool,
    /// Seconds between the plain progress lines printed when standard error
    /// is not a terminal (on a terminal, a progress bar is drawn instead).
    #[arg(long, default_value_t = 2.0)]
    progress_every: f64,
    /// The file that records how far the import got, so that the same
    /// command started again after an interruption resumes there
    /// [default: FILE.import-state beside the input; none for standard input].
    #[arg(long)]
    state: Option<String>,
}

/// The counts the summary reports.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Counts {
    created: u64,
    updated: u64,
    unchanged: u64,
    /// Of the unchanged: users whose values differ from their row (left as
    /// they are without `--update`).
    differing: u64,
    rejected: u64,
    #[serde(default)]
    deactivated: u64,
}

impl Counts {
    fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.rejected
    }

    fn add(&mut self, other: Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.differing += other.differing;
        self.rejected += other.rejected;
        self.deactivated += other.deactivated;
    }
}

/// Runs an import: 0 when every row is in place, 1 when some were
/// rejected, 2 (an error) when it could not run.
pub(crate) async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.batch_size == 0 || args.batch_size > BULK_MAX_OPERATIONS {
        bail!("--batch-size must be between 1 and {}", BULK_MAX_OPERATIONS);
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let client = Client::new(&args)?;
    let kind = client.organization_kind().await?;
    let input = rows::open(&args.file)?;
    let rows = rows::rows(input, kind)?;
    // A dry run neither resumes nor records.
    let mut progress_state = match args.dry_run {
        true => None,
        false => state::Progress::open(&args)?,
    };
    let resumed = progress_state.as_ref().map_or(0, |p| p.done_batches);
    let mut errors = match &args.errors {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(resumed > 0)
                .truncate(resumed == 0)
                .open(path)
                .with_context(|| format!("--errors: cannot write {path}"))?;
            let mut writer = csv::Writer::from_writer(file);
            if resumed == 0 {
                writer.write_record(["line", "userName", "message"])?;
            }
            Some(writer)
        }
        None => None,
    };
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let progress_every = Duration::try_from_secs_f64(args.progress_every)
        .context("--progress-every: expected a number of seconds")?;
    // On a terminal, a bar (rows done, rows/s, ETA); otherwise a plain line
    // every few seconds.
    let bar = std::io::stderr().is_terminal().then(|| {
        let total = rows::count(&args.file).unwrap_or(0);
        let bar = if total > 0 {
            indicatif::ProgressBar::new(total)
        } else {
            indicatif::ProgressBar::no_length()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {human_pos}/{human_len} rows  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut counts = Counts::default();
    let mut batches = Batches {
        rows,
        size: args.batch_size,
    };
    // Batches an earlier run finished are skipped: their counts are in the state.
    let mut earlier = Counts::default();
    if let Some(progress) = &progress_state {
        for _ in 0..progress.done_batches {
            if batches.next().is_none() {
                break;
            }
        }
        earlier = progress.counts;
        if resumed > 0 {
            eprintln!(
                "resuming after {} rows done in an earlier run ({})",
                earlier.rows(),
                progress.path.display()
            );
        }
    }
    let client = &client;
    let mode = Mode {
        dry_run: args.dry_run,
        update: args.update,
    };
    // With --deactivate-missing, who the file names (its rows' identities
    // and user names): everyone else in the organization is deactivated.
    let mut named = Named::default();
    let track = args.deactivate_missing;
    let batches = batches.inspect(|batch| {
        if track {
            named.add(batch);
        }
    });
    let mut done = futures::stream::iter(batches)
        .map(|batch| async move { client.import(batch, mode).await })
        .buffered(args.concurrency);
    while let Some(outcome) = done.next().await {
        let (batch_counts, rejected) = outcome?;
        counts.add(batch_counts);
        for row in rejected {
            if let Some(writer) = errors.as_mut() {
                writer.write_record([row.line.to_string(), row.user_name, row.message])?;
            } else {
                eprintln!("line {}: {}: {}", row.line, row.user_name, row.message);
            }
        }
        if let Some(progress) = progress_state.as_mut() {
            // The report first, then the record that the batch is done.
            if let Some(writer) = errors.as_mut() {
                writer.flush()?;
            }
            let mut total = earlier;
            total.add(counts);
            progress.record_batch(total)?;
        }
        match &bar {
            Some(bar) => {
                bar.set_position(earlier.rows() + counts.rows());
                bar.set_message(format!(
                    "{} created, {} updated, {} unchanged, {} rejected",
                    counts.created, counts.updated, counts.unchanged, counts.rejected
                ));
            }
            None if last_progress.elapsed() >= progress_every => {
                last_progress = Instant::now();
                eprintln!("{}", progress(&counts, started.elapsed()));
            }
            None => {}
        }
    }
    drop(done);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(mut writer) = errors {
        writer.flush()?;
    }
    if args.deactivate_missing {
        if resumed > 0 {
            bail!(
                "--deactivate-missing needs the whole file in one run: this run resumed an earlier one; \
                 remove {} and run again",
                progress_state
                    .as_ref()
                    .map_or_else(String::new, |p| p.path.display().to_string())
            );
        }
        counts.deactivated = client.deactivate_missing(&named, mode).await?;
    }
    if let Some(progress) = progress_state {
        progress.finish()?;
    }
    let elapsed = started.elapsed();
    let done_now = counts.rows();
    counts.add(earlier);
    let (create, update) = if mode.dry_run {
        ("would create", "would update")
    } else {
        ("created", "updated")
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{create} {}, {update} {}, unchanged {}, rejected {}; {} rows in {:.1} s ({:.0} rows/s)",
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.rejected,
        counts.rows(),
        elapsed.as_secs_f64(),
        done_now as f64 / elapsed.as_secs_f64().max(1e-9)
    )?;
    if args.deactivate_missing {
        let verb = if mode.dry_run {
            "would deactivate"
        } else {
            "deactivated"
        };
        writeln!(
            out,
            "{verb} {} users the file does not contain",
            counts.deactivated
        )?;
    }
    if earlier.rows() > 0 {
        writeln!(
            out,
            "{} of them were done in an earlier run that was interrupted",
            earlier.rows()
        )?;
    }
    if counts.differing > 0 {
        writeln!(
            out,
            "{} of the unchanged users differ from their rows: --update changes them",
            counts.differing
        )?;
    }
    Ok(if counts.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn progress(counts: &Counts, elapsed: Duration) -> String {
    format!(
        "{} rows ({} created, {} updated, {} unchanged, {} rejected), {:.0} rows/s",
        counts.rows(),
        counts.created,
        counts.updated,
        counts.unchanged,
        counts.rejected,
        counts.rows() as f64 / elapsed.as_secs_f64().max(1e-9)
    )
}

/// What to do with rows.
#[derive(Debug, Clone, Copy)]
struct Mode {
    dry_run: bool,
    update: bool,
}

/// A user the service has, as a lookup answers it.
#[derive(Debug, Clone)]
struct Existing {
    id: String,
    /// The fields an import compares, in the form rows have them.
    fields: Value,
}

/// The fields of a SCIM user that an import sets, normalized for comparison.
fn comparable(user: &Value) -> Value {
    let mut roles: Vec<String> = user["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["value"].as_str().map(str::to_owned))
        .collect();
    roles.sort_unstable();
    json!({
        "userName": user["userName"],
        "givenName": user["name"]["givenName"],
        "familyName": user["name"]["familyName"],
        "email": user["emails"][0]["value"].as_str().map(str::to_lowercase),
        "active": user["active"],
        "roles": roles,
    })
}

/// Who an import file names: by `externalId` and by `userName`.
#[derive(Debug, Default)]
struct Named {
    external_ids: std::collections::HashSet<String>,
    user_names: std::collections::HashSet<String>,
}

impl Named {
    fn add(&mut self, batch: &[RowResult]) {
        for row in batch {
            // A rejected row still names its user: never deactivate it.
            let user_name = match row {
                Ok(row) => {
                    if let Identity::External(id) = &row.identity {
                        self.external_ids.insert(id.clone());
                    }
                    &row.user_name
                }
                Err(rejected) => &rejected.user_name,
            };
            self.user_names.insert(user_name.trim().to_lowercase());
        }
    }

    fn contains(&self, user: &Value) -> bool {
        user["externalId"]
            .as_str()
            .is_some_and(|id| self.external_ids.contains(id))
            || user["userName"]
                .as_str()
                .is_some_and(|name| self.user_names.contains(&name.to_lowercase()))
    }
}

/// The rows in batches of `size`.
struct Batches {
    rows: Box<dyn Iterator<Item = RowResult> + Send>,
    size: usize,
}

impl Iterator for Batches {
    type Item = Vec<RowResult>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch: Vec<RowResult> = self.rows.by_ref().take(self.size).collect();
        (!batch.is_empty()).then_some(batch)
    }
}

/// The service's SCIM 2.0 API, as the import's token.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    tenant: Option<String>,
}

impl Client {
    fn new(args: &ImportArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base: args.url.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
            tenant: args.tenant.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        match &self.tenant {
            Some(tenant) => request.header("X-VMware-VCloud-Tenant-Context", tenant),
            None => request,
        }
    }

    /// What kind of organization the import writes into, which decides the
    /// roles its users may hold.
    async fn organization_kind(&self) -> anyhow::Result<OrgKind> {
        // The vCloud Air dialect takes API tokens as `Token`.
        let response = self
            .http
            .get(format!("{}/api/org", self.base))
            .header("Authorization", format!("Token {}", self.token))
            .send()
            .await
            .with_context(|| format!("cannot reach the service at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "the service refused the token ({status}): {}",
                body["Errors"][0]["description"]
                    .as_str()
                    .unwrap_or("no reason given")
            );
        }
        let organizations = body["organizations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let effective = match &self.tenant {
            Some(tenant) => organizations.iter().find(|o| o["id"] == tenant.as_str()),
            None => organizations
                .iter()
                .find(|o| o["kind"] == "Provider")
                .or_else(|| organizations.first()),
        };
        Ok(match effective.and_then(|o| o["kind"].as_str()) {
            Some("Provider") => OrgKind::Provider,
            _ => OrgKind::Tenant,
        })
    }

    /// Imports one batch: rows already there are unchanged (or, with
    /// `--update` and other values, updated), the others are created, all
    /// in one Bulk request (none with `--dry-run`).
    async fn import(
        &self,
        batch: Vec<RowResult>,
        mode: Mode,
    ) -> anyhow::Result<(Counts, Vec<Rejected>)> {
        let mut counts = Counts::default();
        let mut rejected = Vec::new();
        let mut rows: Vec<Row> = Vec::new();
        for row in batch {
            match row {
                Ok(row) => rows.push(row),
                Err(row) => rejected.push(row),
            }
        }
        let existing = self.existing(&rows).await?;
        let mut operations = Vec::new();
        let mut sent: Vec<(&Row, bool)> = Vec::new();
        for row in &rows {
            match existing.get(&row.identity) {
                None => {
                    operations.push(json!({"method": "POST", "path": "/Users",
                        "bulkId": format!("line{}", row.line), "data": row.user}));
                    sent.push((row, true));
                }
                Some(user) if user.fields == comparable(&row.user) => counts.unchanged += 1,
                Some(_) if !mode.update => {
                    counts.unchanged += 1;
                    counts.differing += 1;
                }
                Some(user) => {
                    let value = json!({
                        "userName": row.user["userName"], "name": row.user["name"],
                        "emails": row.user["emails"], "active": row.user["active"],
                        "roles": row.user["roles"],
                    });
                    operations.push(
                        json!({"method": "PATCH", "path": format!("/Users/{}", user.id),
                        "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                 "Operations": [{"op": "replace", "value": value}]}}),
                    );
                    sent.push((row, false));
                }
            }
        }
        if mode.dry_run || operations.is_empty() {
            for (_, create) in &sent {
                if *create {
                    counts.created += 1;
                } else {
                    counts.updated += 1;
                }
            }
            counts.rejected = rejected.len() as u64;
            return Ok((counts, rejected));
        }
        let response = self
            .request(reqwest::Method::POST, "/scim/v2/Bulk")
            .header("Content-Type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": operations,
                })
                .to_string(),
            )
            .send()
            .await
            .context("a Bulk request failed")?;
        let status = response.status();
        let body: Value = response.json().await.context("a Bulk answer is not JSON")?;
        if !status.is_success() {
            bail!(
                "the service refused a Bulk request ({status}): {}",
                body["detail"].as_str().unwrap_or("no reason given")
            );
        }
        let answers = body["Operations"].as_array().cloned().unwrap_or_default();
        if answers.len() < sent.len() {
            bail!(
                "the service answered {} of {} operations of a Bulk request",
                answers.len(),
                sent.len()
            );
        }
        for ((row, _), answer) in sent.iter().zip(answers.iter()) {
            match answer["status"].as_str().unwrap_or_default() {
                "201" => counts.created += 1,
                "200" => counts.updated += 1,
                // Created meanwhile (another run, or a retry): in place.
                "409" if answer["response"]["scimType"] == "uniqueness" => counts.unchanged += 1,
                _ => rejected.push(Rejected {
                    line: row.line,
                    user_name: row.user_name.clone(),
                    message: answer["response"]["detail"]
                        .as_str()
                        .unwrap_or("refused without a reason")
                        .to_owned(),
                }),
            }
        }
        counts.rejected = rejected.len() as u64;
        Ok((counts, rejected))
    }

    /// Deactivates the active users of the organization that `named` does
    /// not name (listing them with `--dry-run`), except the token's own
    /// user; returns how many.
    async fn deactivate_missing(&self, named: &Named, mode: Mode) -> anyhow::Result<u64> {
        let myself = self.token_user().await?;
        let mut missing = Vec::new();
        let mut start = 1;
        loop {
            let response = self
                .request(reqwest::Method::GET, "/scim/v2/Users")
                .query(&[
                    ("filter", "active eq true"),
                    ("attributes", "userName,externalId"),
                    ("sortBy", "meta.created"),
                    ("startIndex", &start.to_string()),
                    ("count", "1000"),
                ])
                .send()
                .await
                .context("listing the organization's users failed")?;
            let body: Value = response.json().await.context("a list answer is not JSON")?;
            let page = body["Resources"].as_array().cloned().unwrap_or_default();
            for user in &page {
                if !named.contains(user) && user["id"].as_str() != Some(myself.as_str()) {
                    missing.push(user.clone());
                }
            }
            if page.is_empty() {
                break;
            }
            start += page.len();
        }
        if mode.dry_run {
            for user in &missing {
                println!(
                    "would deactivate {}",
                    user["userName"].as_str().unwrap_or_default()
                );
            }
            return Ok(missing.len() as u64);
        }
        let mut deactivated = 0;
        for chunk in missing.chunks(BULK_MAX_OPERATIONS) {
            let operations: Vec<Value> = chunk
                .iter()
                .map(|user| {
                    json!({"method": "PATCH", "path": format!("/Users/{}", user["id"].as_str().unwrap_or_default()),
                        "data": {"Operations": [{"op": "replace", "path": "active", "value": false}]}})
                })
                .collect();
            let response = self
                .request(reqwest::Method::POST, "/scim/v2/Bulk")
                .header("Content-Type", "application/scim+json")
                .body(json!({"Operations": operations}).to_string())
                .send()
                .await
                .context("a Bulk request failed")?;
            let body: Value = response.json().await.context("a Bulk answer is not JSON")?;
            for (user, answer) in chunk
                .iter()
                .zip(body["Operations"].as_array().into_iter().flatten())
            {
                if answer["status"] == "200" {
                    deactivated += 1;
                } else {
                    eprintln!(
                        "could not deactivate {}: {}",
                        user["userName"].as_str().unwrap_or_default(),
                        answer["response"]["detail"]
                            .as_str()
                            .unwrap_or("no reason given")
                    );
                }
            }
        }
        Ok(deactivated)
    }

    /// The id of the token's own user (never deactivated by the import):
    /// SCIM's `/Me`.
    async fn token_user(&self) -> anyhow::Result<String> {
        let response = self
            .request(reqwest::Method::GET, "/scim/v2/Me")
            .send()
            .await
            .context("cannot reach the service")?;
        let body: Value = response.json().await.context("a /Me answer is not JSON")?;
        body["id"]
            .as_str()
            .map(str::to_owned)
            .context("the service did not say whose token this is (GET /scim/v2/Me)")
    }

    /// The users the service already has for the identities of `rows`.
    async fn existing(
        &self,
        rows: &[Row],
    ) -> anyhow::Result<std::collections::HashMap<Identity, Existing>> {
        let mut found = std::collections::HashMap::new();
        for chunk in rows.chunks(LOOKUP_CHUNK) {
            let filter = chunk
                .iter()
                .map(|row| match &row.identity {
                    Identity::External(id) => format!("externalId eq {}", json!(id)),
                    Identity::UserName(name) => format!("userName eq {}", json!(name)),
                })
                .collect::<Vec<_>>()
                .join(" or ");
            let response = self
                .request(reqwest::Method::GET, "/scim/v2/Users")
                .query(&[
                    ("filter", filter.as_str()),
                    ("attributes", "userName,externalId,name,emails,active,roles"),
                    ("count", "1000"),
                ])
                .send()
                .await
                .context("a lookup request failed")?;
            let status = response.status();
            let body: Value = response
                .json()
                .await
                .context("a lookup answer is not JSON")?;
            if !status.is_success() {
                bail!(
                    "the service refused a lookup ({status}): {}",
                    body["detail"].as_str().unwrap_or("no reason given")
                );
            }
            for user in body["Resources"].as_array().into_iter().flatten() {
                let existing = Existing {
                    id: user["id"].as_str().unwrap_or_default().to_owned(),
                    fields: comparable(user),
                };
                if let Some(external_id) = user["externalId"].as_str() {
                    found.insert(Identity::External(external_id.to_owned()), existing.clone());
                }
                if let Some(name) = user["userName"].as_str() {
                    found.insert(Identity::UserName(name.to_lowercase()), existing);
                }
            }
        }
        Ok(found)
    }
}
