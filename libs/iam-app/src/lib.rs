//! The application layer of the IAM service: what both HTTP dialects, the
//! change feed and `iamctl` call. Commands are loaded, decided by the pure
//! domain and appended here; callers are authenticated here; credentials,
//! bootstrap and the token sweep live here.
//!
//! It knows no HTTP: refusals are [`AppError`]s with a [`Refusal`] kind and
//! a sentence, which each dialect renders in its own format.

pub mod authentication;
pub mod bootstrap;
pub mod commands;
pub mod credentials;
mod error;
pub mod groups;
pub mod idempotency;
pub mod mailer;
pub mod passwords;
mod recent_callers;
pub mod storage;
pub mod token_expiry;
pub mod users;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use iam_eventstore::{Backend, EventStore};
use iam_projections::read_models::{
    AuditProjector, GroupsProjector, OrganizationsProjector, TokensProjector, UsersProjector,
};
use iam_projections::{InlineProjections, ProjectorStatus, ReadModels, Runner, RunnerHandle};

pub use authentication::Caller;
pub use error::{AppError, Refusal};

/// The service's state: the log, the read models, the projectors.
#[derive(Debug)]
pub struct App {
    /// The event log.
    pub store: Arc<dyn EventStore>,
    /// The read models (and the credential tables beside them).
    pub read_models: ReadModels,
    /// Lifetime of a login session.
    pub session_ttl: Duration,
    /// The length of a token lifetime day.
    pub token_day: Duration,
    /// The projectors that run inline, in the append's transaction.
    pub inline: InlineProjections,
    /// The projectors that follow the log (none yet: the audit index comes next).
    pub projections: RunnerHandle,
    /// Credentials resolved in the last half second.
    pub(crate) recent_callers: recent_callers::RecentCallers,
}

/// What opening the application needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://PATH` or `postgres://…`.
    pub database_url: String,
    /// Lifetime of a login session.
    pub session_ttl: Duration,
    /// The length of a token lifetime day.
    pub token_day: Duration,
}

impl App {
    /// Opens the store and the read models (creating their schemas),
    /// installs the inline projections (catching the read models up with
    /// the log) and starts the projectors that follow the log. Errors name
    /// `IAM_DATABASE_URL`, never the URL itself (it may hold a password).
    pub async fn open(options: &Options) -> anyhow::Result<App> {
        let store = open_store(&options.database_url).await?;
        let read_models = ReadModels::connect(&options.database_url)
            .await
            .context("IAM_DATABASE_URL: cannot open the read models")?;
        credentials::migrate(&read_models).await?;
        let inline = InlineProjections::new(vec![
            Arc::new(OrganizationsProjector),
            Arc::new(UsersProjector),
            Arc::new(TokensProjector),
            Arc::new(GroupsProjector),
        ]);
        store
            .install_inline(Arc::new(credentials::ServiceInline {
                projections: inline.clone(),
            }))
            .await
            .context("bringing the read models up to date with the log")?;
        // The audit index follows the log on its own: appends never wait for it.
        let projections = Runner::new(store.clone(), read_models.clone())
            .with(AuditProjector)
            .start()
            .await
            .context("starting the projectors")?;
        Ok(App {
            store,
            read_models,
            session_ttl: options.session_ttl,
            token_day: options.token_day,
            inline,
            projections,
            recent_callers: Default::default(),
        })
    }

    /// The checkpoint and lag of every projector, inline and following.
    /// Ends the session whose token is `token`, at once: also for a caller
    /// resolved in the last half second. Whether there was one.
    pub async fn end_session(&self, token: &str) -> anyhow::Result<bool> {
        let ended = credentials::end_session(&self.read_models, token).await?;
        self.recent_callers.clear();
        Ok(ended)
    }

    /// Whether answers read projector `name`'s read models right after a
    /// write (an inline projector), rather than saying how complete they are
    /// (the audit, which follows the log on its own).
    pub fn answers_wait_for(&self, name: &str) -> bool {
        self.inline.projectors().iter().any(|p| p.name() == name)
    }

    pub async fn projection_status(&self) -> iam_projections::Result<Vec<ProjectorStatus>> {
        let names = self.inline.projectors().iter().map(|p| p.name());
        let mut status = iam_projections::status_of(&*self.store, &self.read_models, names).await?;
        status.extend(self.projections.status().await?);
        Ok(status)
    }
}

/// Opens the event store, creating the SQLite file's folder when needed.
async fn open_store(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    if Backend::of_url(url) == Some(Backend::Sqlite)
        && let Some(folder) = sqlite_folder(url)
    {
        std::fs::create_dir_all(folder).with_context(|| {
            format!(
                "IAM_DATABASE_URL: cannot create the folder {}",
                folder.display()
            )
        })?;
    }
    let store = iam_eventstore::connect(url)
        .await
        .context("IAM_DATABASE_URL: cannot open the event store")?;
    tracing::info!(backend = %store.backend(), "event store open");
    Ok(store)
}

/// The folder of the file a `sqlite:` URL names, if it names one.
fn sqlite_folder(url: &str) -> Option<&Path> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::sqlite_folder;

    #[test]
    fn the_folder_of_a_sqlite_url_is_found() {
        assert_eq!(
            sqlite_folder("sqlite://data/iam.db"),
            Some(Path::new("data"))
        );
        assert_eq!(
            sqlite_folder("sqlite:///var/lib/iam/iam.db?mode=rwc"),
            Some(Path::new("/var/lib/iam"))
        );
        assert_eq!(sqlite_folder("sqlite://iam.db"), None);
        assert_eq!(sqlite_folder("sqlite::memory:"), None);
    }
}
