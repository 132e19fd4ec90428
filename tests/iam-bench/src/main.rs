//! `iam-bench`, the HTTP benchmark of `iamd`: starts the service on a fresh
//! database, creates users at several concurrencies beside `/healthz` at
//! the same concurrency, reads users from a large population, compares API
//! token with session authentication, times SCIM 2.0 Bulk requests of a
//! thousand creates, and prints the medians over runs as
//! one markdown table (`--json` keeps every figure, `--baseline` compares
//! with an earlier one).
//!
//! `iam-bench import` measures bulk provisioning instead (see `import`).
//!
//! This file reads the options and runs the phases in order; starting the
//! service, the load loops, the API calls and the report each have their
//! own module. It never looks inside the service's database, except to
//! measure its size.

mod api;
mod import;
mod load;
mod population;
mod report;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use serde::Serialize;

use crate::api::{Api, Credential};
use crate::load::{Bounds, Outcome, percentile};
use crate::population::Population;
use crate::report::{Figures, Report};
use crate::server::{ADMIN, ADMIN_PASSWORD, Server};

/// How long the projectors may take to catch up after a phase.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Measures iamd over HTTP: user creation against /healthz, reads among a
/// population, API token against session authentication.
#[derive(Debug, Parser)]
#[command(name = "iam-bench", version)]
struct Args {
    #[command(subcommand)]
    scenario: Option<Scenario>,
    /// The iamd binary [default: `iamd` beside this executable].
    #[arg(long, global = true)]
    iamd: Option<PathBuf>,
    /// An empty PostgreSQL database (`postgres://USER@HOST:PORT/DATABASE`),
    /// or a new SQLite file (`sqlite://PATH`, kept afterwards) [default: a
    /// fresh SQLite file in a temporary folder, removed afterwards].
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// The concurrent connections of the create and /healthz phases [default: 1,16,64].
    #[arg(long, value_delimiter = ',')]
    connections: Option<Vec<usize>>,
    /// The time limit of each phase, in seconds [default: 5].
    #[arg(long)]
    seconds: Option<f64>,
    /// The request limit of each create and /healthz phase [default: 200000].
    #[arg(long)]
    max_requests: Option<u64>,
    /// The users created in the tenant before the read phases [default: 100000].
    #[arg(long)]
    population: Option<usize>,
    /// The request limit of each read phase, and of each kind of
    /// authentication [default: 2000].
    #[arg(long)]
    reads: Option<u64>,
    /// The Bulk requests of 1,000 creates each phase sends [default: 3].
    #[arg(long)]
    bulk_requests: Option<u64>,
    /// How many times every phase runs; the table shows medians [default: 3].
    #[arg(long)]
    runs: Option<usize>,
    /// A smoke test: 1 s phases, 2000 users, 200 reads, 1 run (options
    /// given explicitly still win).
    #[arg(long)]
    quick: bool,
    /// Writes every figure (medians and each run's) to this JSON file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Compares requests per second with this earlier `--json` file.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

/// The benchmarks other than the default HTTP one.
#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// Bulk provisioning: `iamctl import` of 100,000 users (1,000,000 with
    /// --large) into a fresh iamd, the same file again, lookups among them,
    /// then `iamctl projections rebuild`.
    Import {
        /// Import 1,000,000 users.
        #[arg(long)]
        large: bool,
        /// Import this many users instead (overrides --large).
        #[arg(long)]
        users: Option<usize>,
        /// The requests of each lookup phase [default: 2000].
        #[arg(long = "lookups", default_value_t = 2000)]
        reads: u64,
        /// `iamctl import --batch-size` [default: iamctl's].
        #[arg(long)]
        batch_size: Option<usize>,
        /// `iamctl import --concurrency` [default: iamctl's].
        #[arg(long)]
        concurrency: Option<usize>,
    },
}

/// What the phases run with, once defaults and `--quick` are applied.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    connections: Vec<usize>,
    seconds: f64,
    max_requests: u64,
    population: usize,
    reads: u64,
    bulk_requests: u64,
    runs: usize,
}

impl Settings {
    fn of(args: &Args) -> Result<Self> {
        let quick = args.quick;
        let settings = Settings {
            connections: args.connections.clone().unwrap_or_else(|| vec![1, 16, 64]),
            seconds: args.seconds.unwrap_or(if quick { 1.0 } else { 5.0 }),
            max_requests: args.max_requests.unwrap_or(200_000),
            population: args
                .population
                .unwrap_or(if quick { 2_000 } else { 100_000 }),
            reads: args.reads.unwrap_or(if quick { 200 } else { 2_000 }),
            bulk_requests: args.bulk_requests.unwrap_or(if quick { 1 } else { 3 }),
            runs: args.runs.unwrap_or(if quick { 1 } else { 3 }),
        };
        ensure!(
            !settings.connections.is_empty() && !settings.connections.contains(&0),
            "--connections: expected numbers of at least 1"
        );
        ensure!(
            settings.seconds.is_finite() && settings.seconds > 0.0,
            "--seconds: expected a positive number"
        );
        ensure!(
            settings.max_requests > 0,
            "--max-requests: expected at least 1"
        );
        ensure!(settings.population > 0, "--population: expected at least 1");
        ensure!(settings.reads > 0, "--reads: expected at least 1");
        ensure!(settings.runs > 0, "--runs: expected at least 1");
        ensure!(
            settings.bulk_requests > 0,
            "--bulk-requests: expected at least 1"
        );
        Ok(settings)
    }

    /// The bounds of a phase of at most `max_requests` requests.
    fn bounds(&self, max_requests: u64) -> Bounds {
        Bounds {
            duration: Duration::from_secs_f64(self.seconds),
            max_requests,
        }
    }
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("iam-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark; `false` when a request failed.
fn run(args: &Args) -> Result<bool> {
    let settings = Settings::of(args)?;
    // Read first, so that a wrong path fails before minutes of load.
    let baseline = args
        .baseline
        .as_deref()
        .map(Report::read_json)
        .transpose()?;
    let iamd = match &args.iamd {
        Some(path) => path.clone(),
        None => beside_this_executable("iamd")?,
    };
    ensure!(
        iamd.exists(),
        "{} does not exist: build it (cargo build --release -p iamd) or name it with --iamd",
        iamd.display()
    );
    let backend = match &args.database_url {
        Some(url) if url.starts_with("postgres") => "postgres",
        Some(_) | None => "sqlite",
    };
    let server = Server::start(&iamd, args.database_url.as_deref())?;
    eprintln!("iamd listens on {} ({backend})", server.address());
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if let Some(Scenario::Import {
        large,
        users,
        reads,
        batch_size,
        concurrency,
    }) = &args.scenario
    {
        let iamctl = iamd.with_file_name("iamctl");
        ensure!(
            iamctl.exists(),
            "{} does not exist: build it (cargo build --release -p iamctl)",
            iamctl.display()
        );
        let settings = import::ImportSettings {
            users: users.unwrap_or(if *large { 1_000_000 } else { 100_000 }),
            reads: *reads,
            batch_size: *batch_size,
            concurrency: *concurrency,
        };
        ensure!(settings.users > 0, "--users: expected at least 1");
        ensure!(settings.reads > 0, "--lookups: expected at least 1");
        let report = runtime.block_on(import::bench(server, &iamctl, backend, &settings))?;
        print!("{}", report.markdown());
        if let Some(path) = &args.json {
            report.write_json(path)?;
        }
        return Ok(!report.failed());
    }
    let report = runtime.block_on(bench(&server, &settings, backend))?;
    print!("{}", report.markdown(baseline.as_ref()));
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    let failed: Vec<String> = report
        .failed_rows()
        .map(|row| format!("{} at {}", row.phase, row.connections))
        .collect();
    if failed.is_empty() {
        return Ok(true);
    }
    eprintln!(
        "iam-bench: requests failed in: {}; iamd's last lines:",
        failed.join(", ")
    );
    for line in server.log_tail() {
        eprintln!("  {line}");
    }
    Ok(false)
}

/// `name` in the folder of this executable (where cargo builds the workspace's binaries).
fn beside_this_executable(name: &str) -> Result<PathBuf> {
    Ok(std::env::current_exe()
        .context("cannot locate this executable")?
        .with_file_name(name))
}

/// What every phase's requests need: the client, the credentials, the
/// tenant and the population.
#[derive(Debug)]
struct Target {
    api: Api,
    /// The provider administrator's session.
    admin: Credential,
    /// The provider administrator's API token, scoped to the provider.
    token: Credential,
    /// The API token of the tenant's administrator, as an identity provider uses it.
    scim_token: Credential,
    admin_id: String,
    tenant: String,
    population: Population,
    /// Makes this benchmark's user names differ from any earlier one's.
    bench_id: String,
}

/// The request a phase repeats.
#[derive(Debug, Clone, Copy)]
enum Request {
    /// Create a new End User in the tenant.
    Create { run: usize, connections: usize },
    /// `GET /healthz`.
    Health,
    /// Read a user of the population by id; `offset` makes each run pick others.
    UserById { offset: u64 },
    /// Find a user of the population with `filter=userName eq`.
    UserByName { offset: u64 },
    /// Read the administrator itself, with its session on even numbers and
    /// its API token on odd ones.
    SessionOrToken,
    /// Create `BULK_SIZE` users in one SCIM 2.0 Bulk request.
    Bulk { run: usize },
}

/// The creates in one Bulk request of the Bulk phase.
const BULK_SIZE: usize = 1000;

// The phases' row names in the report.
const CREATE: &str = "create";
const HEALTHZ: &str = "healthz";
const USER_BY_ID: &str = "GET user by id";
const USER_BY_NAME: &str = "filter userName eq";
const SESSION: &str = "session auth";
const TOKEN: &str = "token auth";
const BULK: &str = "SCIM Bulk of 1,000 creates";

/// Logs in, makes the tenant, the API token and the population, then runs
/// every phase `settings.runs` times.
async fn bench(server: &Server, settings: &Settings, backend: &str) -> Result<Report> {
    let target = set_up(server, settings).await?;
    let settings_json = serde_json::to_value(settings).context("cannot encode the settings")?;
    let mut bench = Bench {
        server,
        settings,
        target,
        report: Report::new(backend, settings_json),
    };
    for run in 1..=settings.runs {
        eprintln!("run {run}/{}", settings.runs);
        for &connections in &settings.connections {
            bench.create_beside_healthz(run, connections).await?;
        }
        bench.reads(run).await?;
        bench.session_against_token(run).await?;
        bench.bulk(run).await?;
    }
    Ok(bench.report)
}

/// Everything the phases need before the first run.
async fn set_up(server: &Server, settings: &Settings) -> Result<Arc<Target>> {
    let most_connections = settings
        .connections
        .iter()
        .copied()
        .chain([population::CONNECTIONS])
        .max()
        .unwrap_or(population::CONNECTIONS);
    let api = Api::new(server.address(), most_connections)?;
    let admin = api.login(ADMIN, ADMIN_PASSWORD).await?;
    let tenant = api.create_tenant(&admin, "Bench").await?;
    let admin_id = api.find_user(&admin, None, ADMIN).await?.id;
    // Without the tenant header: the token is scoped to the provider, where
    // the administrator lives.
    let token = api.create_api_token(&admin, &admin_id).await?;
    let bench_id: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect();
    let provisioner = format!("scim-{bench_id}@bench.example.com");
    let provisioner_id = api
        .create_tenant_admin(&admin, &tenant, &provisioner, ADMIN_PASSWORD)
        .await?;
    let provisioner_session = api.login(&provisioner, ADMIN_PASSWORD).await?;
    let scim_token = api
        .create_api_token(&provisioner_session, &provisioner_id)
        .await?;
    let started = Instant::now();
    let population = population::populate(
        &api,
        &admin,
        &tenant,
        &format!("{bench_id}-p"),
        settings.population,
    )
    .await?;
    settle(&api).await;
    eprintln!(
        "populated {} users in {:.1} s",
        settings.population,
        started.elapsed().as_secs_f64()
    );
    Ok(Arc::new(Target {
        api,
        admin,
        token,
        scim_token,
        admin_id,
        tenant,
        population,
        bench_id,
    }))
}

/// A benchmark under way: the service, what the phases need, and the
/// figures so far.
#[derive(Debug)]
struct Bench<'a> {
    server: &'a Server,
    settings: &'a Settings,
    target: Arc<Target>,
    report: Report,
}

impl Bench<'_> {
    /// Creates users from `connections` connections, then reads /healthz
    /// from as many, to compare the two.
    async fn create_beside_healthz(&mut self, run: usize, connections: usize) -> Result<()> {
        let bounds = self.settings.bounds(self.settings.max_requests);
        let (create, create_cpu) = self
            .measured(Request::Create { run, connections }, connections, bounds)
            .await
            .with_context(|| format!("{CREATE} at {connections} connections"))?;
        let (health, health_cpu) = self
            .measured(Request::Health, connections, bounds)
            .await
            .with_context(|| format!("{HEALTHZ} at {connections} connections"))?;
        let vs_healthz = (health.requests_per_second() > 0.0)
            .then(|| create.requests_per_second() / health.requests_per_second());
        let create_figures = figures_of(&create, create_cpu, vs_healthz);
        self.record(run, CREATE, connections, &create, create_figures);
        let health_figures = figures_of(&health, health_cpu, None);
        self.record(run, HEALTHZ, connections, &health, health_figures);
        Ok(())
    }

    /// Reads users of the population by id, then by name, from one connection.
    async fn reads(&mut self, run: usize) -> Result<()> {
        let reads = self.settings.reads;
        // Each run and phase reads its own users.
        let offset = (run as u64) * reads * 2;
        for (phase, request) in [
            (USER_BY_ID, Request::UserById { offset }),
            (
                USER_BY_NAME,
                Request::UserByName {
                    offset: offset + reads,
                },
            ),
        ] {
            let (outcome, cpu) = self
                .measured(request, 1, self.settings.bounds(reads))
                .await
                .with_context(|| phase.to_owned())?;
            let figures = figures_of(&outcome, cpu, None);
            self.record(run, phase, 1, &outcome, figures);
        }
        Ok(())
    }

    /// Reads the administrator with its session and its API token in turn,
    /// from one connection, so that both meet the same conditions.
    async fn session_against_token(&mut self, run: usize) -> Result<()> {
        let bounds = self.settings.bounds(self.settings.reads * 2);
        let outcome = phase(&self.target, Request::SessionOrToken, 1, bounds)
            .await
            .context("session and token authentication")?;
        let (session, token) = outcome.split(|number| number.is_multiple_of(2));
        let session_figures = figures_of(&session, None, None);
        let token_figures = figures_of(&token, None, None);
        self.report.record_token_vs_session(
            (token_figures.p50_ms)
                .zip(session_figures.p50_ms)
                .map(|(token, session)| token / session),
        );
        self.record(run, SESSION, 1, &session, session_figures);
        self.record(run, TOKEN, 1, &token, token_figures);
        Ok(())
    }

    /// Creates users a thousand at a time with SCIM 2.0 Bulk requests, one
    /// after another from one connection: a row is one Bulk request.
    async fn bulk(&mut self, run: usize) -> Result<()> {
        let bounds = self.settings.bounds(self.settings.bulk_requests);
        let (outcome, cpu) = self
            .measured(Request::Bulk { run }, 1, bounds)
            .await
            .context("SCIM Bulk")?;
        let figures = figures_of(&outcome, cpu, None);
        self.record(run, BULK, 1, &outcome, figures);
        Ok(())
    }

    /// Runs one phase and measures iamd's CPU time per request over it, the
    /// projectors' catching up afterwards included (that work is the
    /// requests' too).
    async fn measured(
        &self,
        request: Request,
        connections: usize,
        bounds: Bounds,
    ) -> Result<(Outcome, Option<f64>)> {
        let before = self.server.cpu_time()?;
        let outcome = phase(&self.target, request, connections, bounds).await?;
        settle(&self.target.api).await;
        let after = self.server.cpu_time()?;
        let per_request = (outcome.requests() > 0)
            .then(|| after.saturating_sub(before).as_secs_f64() * 1e6 / outcome.requests() as f64);
        Ok((outcome, per_request))
    }

    /// Adds a phase's figures to the report, with a progress line on stderr
    /// and the first failure if any.
    fn record(
        &mut self,
        run: usize,
        phase: &str,
        connections: usize,
        outcome: &Outcome,
        figures: Figures,
    ) {
        let p50 = figures
            .p50_ms
            .map_or("–".to_owned(), |ms| format!("{ms:.2}"));
        eprintln!(
            "  {phase} at {connections}: {:.0} requests/s, p50 {p50} ms ({} requests)",
            figures.requests_per_second, figures.requests
        );
        if let Some(error) = outcome.first_error() {
            eprintln!(
                "  run {run}, {phase} at {connections}: {} of {} requests failed; the first: {error}",
                figures.errors, figures.requests
            );
        }
        self.report.record(phase, connections, figures);
    }
}

/// Repeats `request` from `connections` connections within `bounds`.
async fn phase(
    target: &Arc<Target>,
    request: Request,
    connections: usize,
    bounds: Bounds,
) -> Result<Outcome> {
    let target = Arc::clone(target);
    load::run(connections, bounds, move |number| {
        let target = Arc::clone(&target);
        async move { send(&target, request, number).await }
    })
    .await
}

/// Sends request `number` of a phase.
async fn send(target: &Target, request: Request, number: u64) -> Result<()> {
    let api = &target.api;
    match request {
        Request::Create { run, connections } => {
            let user_name = format!(
                "u-{}-r{run}c{connections}-{number}@bench.example.com",
                target.bench_id
            );
            api.create_user(&target.admin, &target.tenant, &user_name)
                .await?;
        }
        Request::Health => api.health().await?,
        Request::UserById { offset } => {
            let user = target.population.pick(offset + number);
            api.get_user(&target.admin, Some(&target.tenant), &user.id)
                .await?;
        }
        Request::UserByName { offset } => {
            let user = target.population.pick(offset + number);
            let found = api
                .find_user(&target.admin, Some(&target.tenant), &user.user_name)
                .await?;
            if found.id != user.id {
                bail!("{} was found with id {}", user.user_name, found.id);
            }
        }
        Request::SessionOrToken => {
            let credential = if number.is_multiple_of(2) {
                &target.admin
            } else {
                &target.token
            };
            api.get_user(credential, None, &target.admin_id).await?;
        }
        Request::Bulk { run } => {
            let prefix = format!("b-{}-r{run}-{number}", target.bench_id);
            api.bulk_create(&target.scim_token, &prefix, BULK_SIZE)
                .await?;
        }
    }
    Ok(())
}

/// Waits until every projector has caught up with the log, so that work
/// left behind by one phase is not counted in the next; after
/// `SETTLE_LIMIT` it says so and goes on.
async fn settle(api: &Api) {
    let started = Instant::now();
    loop {
        match api.projection_lag().await {
            Ok(0) => return,
            Ok(lag) if started.elapsed() > SETTLE_LIMIT => {
                eprintln!(
                    "warning: projectors still {lag} events behind after {} s; going on",
                    SETTLE_LIMIT.as_secs()
                );
                return;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => {
                eprintln!("warning: cannot tell whether projectors caught up: {error:#}");
                return;
            }
        }
    }
}

/// A phase's figures from what its load loop measured.
fn figures_of(
    outcome: &Outcome,
    cpu_us_per_request: Option<f64>,
    vs_healthz: Option<f64>,
) -> Figures {
    let sorted = outcome.sorted_latencies();
    let millis =
        |fraction| percentile(&sorted, fraction).map(|latency| latency.as_secs_f64() * 1e3);
    Figures {
        requests: outcome.requests(),
        errors: outcome.errors(),
        requests_per_second: outcome.requests_per_second(),
        p50_ms: millis(0.5),
        p99_ms: millis(0.99),
        cpu_us_per_request,
        vs_healthz,
    }
}
