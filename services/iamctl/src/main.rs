//! `iamctl`: the operator's command line. It works on the database directly
//! (`IAM_DATABASE_URL`, SQLite or PostgreSQL), through the libraries (the
//! application layer for `bootstrap`; it never depends on the `iamd` crate). Only
//! `bootstrap` appends to the log (what a first start of `iamd` appends);
//! the `projections` commands read the log and write only read models.

mod audit;
mod feed;
mod import;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use iam_app::bootstrap::{Bootstrap, Outcome, Secret};
use iam_eventstore::EventStore;
use iam_projections::read_models::ALL;
use iam_projections::{Projector, ReadModels};

/// The operator's command line of the IAM provisioning service.
#[derive(Debug, Parser)]
#[command(name = "iamctl", version)]
struct Cli {
    /// The service's database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DATABASE`.
    #[arg(
        long,
        env = "IAM_DATABASE_URL",
        default_value = "sqlite://data/iam.db",
        global = true,
        hide_env_values = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the provider organization and its first Provider Administrator,
    /// as the first start of iamd does (same variables: IAM_BOOTSTRAP_ADMIN_EMAIL,
    /// IAM_BOOTSTRAP_ADMIN_PASSWORD, IAM_BOOTSTRAP_ORG_NAME). Changes nothing
    /// when the store already has a provider.
    Bootstrap {
        /// The administrator's address [default: admin@localhost.localdomain].
        #[arg(long, env = "IAM_BOOTSTRAP_ADMIN_EMAIL")]
        admin_email: Option<String>,
        /// Its password, 8 to 256 characters [default: generated and printed once].
        #[arg(long, env = "IAM_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: Option<String>,
        /// The provider organization's name.
        #[arg(long, env = "IAM_BOOTSTRAP_ORG_NAME", default_value = "Provider")]
        org_name: String,
    },
    /// Read models built from the event log.
    #[command(subcommand)]
    Projections(Projections),
    /// Provision the users of a CSV or JSON Lines file through the service's
    /// SCIM 2.0 API (--url, --token): existing users are left unchanged, bad
    /// rows are reported and do not stop the others. Exit 0 when every row
    /// is in place, 1 when some were rejected, 2 when it could not run.
    Import(import::ImportArgs),
    /// The audit, from the audit read model.
    #[command(subcommand)]
    Audit(Audit),
    /// The gRPC change feed of a running service.
    #[command(subcommand)]
    Feed(Feed),
}

#[derive(Debug, Subcommand)]
enum Feed {
    /// Print the feed as JSON Lines, from --from on and then live (--url,
    /// --token; --org and --type narrow it).
    Tail(feed::TailArgs),
}

#[derive(Debug, Subcommand)]
enum Audit {
    /// Write an organization's audit in position order, as JSON Lines or
    /// CSV (a progress line every 2 s on standard error, and the count at
    /// the end).
    Export(audit::ExportArgs),
}

#[derive(Debug, Subcommand)]
enum Projections {
    /// Each projector's checkpoint and how many events it lags behind the log.
    Status,
    /// Empty a projector's tables and replay the whole log into them (all
    /// projectors when no name is given). Stop the service first.
    Rebuild {
        /// The projector: organizations, users or tokens.
        name: Option<String>,
    },
    /// Replay the log into scratch tables and compare them with the live
    /// read models: exit 0 when equal, 1 with the differences when not.
    Verify,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("iamctl: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let projections = match cli.command {
        Command::Bootstrap {
            admin_email,
            admin_password,
            org_name,
        } => {
            let settings = Bootstrap {
                admin_email,
                admin_password: admin_password.map(Secret::new),
                org_name,
            };
            return bootstrap(&cli.database_url, settings).await;
        }
        Command::Projections(projections) => projections,
        Command::Import(args) => return import::run(args).await,
        Command::Feed(Feed::Tail(args)) => return feed::tail(args).await,
        Command::Audit(Audit::Export(args)) => {
            let read_models = ReadModels::connect(&cli.database_url)
                .await
                .context("IAM_DATABASE_URL: cannot open the read models")?;
            return audit::run(&read_models, args).await;
        }
    };
    let store: Arc<dyn EventStore> = iam_eventstore::connect(&cli.database_url)
        .await
        .context("IAM_DATABASE_URL: cannot open the event store")?;
    let read_models = ReadModels::connect(&cli.database_url)
        .await
        .context("IAM_DATABASE_URL: cannot open the read models")?;
    match projections {
        Projections::Status => status(&*store, &read_models).await,
        Projections::Rebuild { name } => rebuild(&store, &read_models, name.as_deref()).await,
        Projections::Verify => verify(&*store, &read_models).await,
    }
}

async fn bootstrap(database_url: &str, settings: Bootstrap) -> anyhow::Result<ExitCode> {
    let options = iam_app::Options {
        database_url: database_url.to_owned(),
        session_ttl: std::time::Duration::from_secs(900),
        token_day: std::time::Duration::from_secs(86_400),
    };
    match iam_app::bootstrap::bootstrap_database(&options, &settings).await? {
        Outcome::AlreadyDone => println!("the store already has a provider: nothing changed"),
        Outcome::Created {
            admin,
            generated_password,
        } => {
            println!(
                "created the provider organization `{}` and its administrator {admin}",
                settings.org_name
            );
            if let Some(password) = generated_password {
                println!("log in as {admin} with password {password} (shown once)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(store: &dyn EventStore, read_models: &ReadModels) -> anyhow::Result<ExitCode> {
    let head = store.head_position().await?;
    println!("log head: position {head}");
    println!("{:<16} {:>12} {:>10}", "projector", "checkpoint", "lag");
    for projector in ALL {
        let checkpoint: i64 = sqlx::query_scalar(
            "SELECT COALESCE((SELECT position FROM projection_checkpoints WHERE name = $1), 0)",
        )
        .bind(projector.name())
        .fetch_one(read_models.pool())
        .await?;
        let lag = head.saturating_sub(checkpoint as u64);
        println!("{:<16} {checkpoint:>12} {lag:>10}", projector.name());
    }
    Ok(ExitCode::SUCCESS)
}

fn selected(name: Option<&str>) -> anyhow::Result<Vec<&'static dyn Projector>> {
    match name {
        None => Ok(ALL.to_vec()),
        Some(name) => ALL
            .iter()
            .find(|projector| projector.name() == name)
            .map(|projector| vec![*projector])
            .ok_or_else(|| {
                let names: Vec<&str> = ALL.iter().map(|p| p.name()).collect();
                anyhow::anyhow!(
                    "no projector is named `{name}`; the projectors are: {}",
                    names.join(", ")
                )
            }),
    }
}

async fn rebuild(
    store: &Arc<dyn EventStore>,
    read_models: &ReadModels,
    name: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let projectors = selected(name)?;
    let names: Vec<&str> = projectors.iter().map(|p| p.name()).collect();
    let names = names.join(", ");
    let started = Instant::now();
    println!("rebuilding {names} …");
    let position = iam_projections::rebuild_all(store, read_models, &projectors)
        .await
        .with_context(|| format!("rebuilding {names}"))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "rebuilt {names} up to position {position} in {seconds:.2} s ({:.0} events/s)",
        position as f64 / seconds.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

async fn verify(store: &dyn EventStore, read_models: &ReadModels) -> anyhow::Result<ExitCode> {
    let mut equal = true;
    for projector in ALL {
        let found = iam_projections::verify(store, read_models, projector)
            .await
            .with_context(|| format!("verifying {}", projector.name()))?;
        if found.differences.is_empty() {
            println!(
                "{}: equal to a rebuild from the log (position {})",
                found.projector, found.position
            );
        } else {
            equal = false;
            println!(
                "{}: DIFFERS from a rebuild from the log (position {}):",
                found.projector, found.position
            );
            for difference in &found.differences {
                println!("  {difference}");
            }
        }
    }
    Ok(if equal {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
