//! Building and running the application: open the store, start the
//! projectors, bind the listener, serve.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use iam_eventstore::{Backend, EventStore};
use iam_projections::read_models::{OrganizationsProjector, TokensProjector, UsersProjector};
use iam_projections::{InlineProjections, ProjectorStatus, ReadModels, Runner, RunnerHandle};
use metrics_exporter_prometheus::PrometheusHandle;
use tracing_actix_web::TracingLogger;

use crate::configuration::Settings;
use crate::routes::{health, login, organizations, role_queries, roles, tokens, users};

/// What every request handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The event log.
    pub store: Arc<dyn EventStore>,
    /// The read models (and the credential tables beside them).
    pub read_models: ReadModels,
    /// Lifetime of a login session.
    pub session_ttl: std::time::Duration,
    /// The length of a token lifetime day.
    pub token_day: std::time::Duration,
    /// The projectors that run inline, in the append's transaction.
    pub inline: InlineProjections,
    /// The projectors that follow the log (none yet: the audit index comes next).
    pub projections: RunnerHandle,
    /// Rendering of `/metrics`.
    pub prometheus: PrometheusHandle,
    /// The readiness bound on projection lag.
    pub ready_max_lag: u64,
    /// Credentials resolved in the last half second.
    pub(crate) recent_callers: crate::recent_callers::RecentCallers,
}

impl AppState {
    /// Opens the store and the read models (creating their schemas) and
    /// starts the projectors: everything but the HTTP server.
    pub async fn open(settings: &Settings) -> anyhow::Result<web::Data<AppState>> {
        let prometheus = crate::prometheus::handle().context("installing the metrics recorder")?;
        let store = open_store(&settings.database_url).await?;
        let read_models = ReadModels::connect(&settings.database_url)
            .await
            .context("IAM_DATABASE_URL: cannot open the read models")?;
        crate::credentials::migrate(&read_models).await?;
        let inline = InlineProjections::new(vec![
            Arc::new(OrganizationsProjector),
            Arc::new(UsersProjector),
            Arc::new(TokensProjector),
        ]);
        // Installing the hook also catches the read models up with the log.
        store
            .install_inline(Arc::new(crate::credentials::ServiceInline {
                projections: inline.clone(),
            }))
            .await
            .context("bringing the read models up to date with the log")?;
        let projections = Runner::new(store.clone(), read_models.clone())
            .start()
            .await
            .context("starting the projectors")?;
        Ok(web::Data::new(AppState {
            store,
            read_models,
            session_ttl: settings.session_ttl,
            token_day: settings.token_day,
            inline,
            projections,
            prometheus,
            ready_max_lag: settings.ready_max_lag,
            recent_callers: Default::default(),
        }))
    }
}

impl AppState {
    /// The checkpoint and lag of every projector, inline and following.
    pub async fn projection_status(&self) -> iam_projections::Result<Vec<ProjectorStatus>> {
        let names = self.inline.projectors().iter().map(|p| p.name());
        let mut status = iam_projections::status_of(&*self.store, &self.read_models, names).await?;
        status.extend(self.projections.status().await?);
        Ok(status)
    }
}

/// A built application: listening, not yet serving.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the store, starts the projectors and binds `settings.listen`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = AppState::open(&settings).await?;
        match crate::bootstrap::run(&state, &settings.bootstrap).await? {
            crate::bootstrap::Outcome::AlreadyDone => {}
            crate::bootstrap::Outcome::Created {
                admin,
                generated_password,
            } => {
                tracing::info!(admin = %admin, "created the provider organization and its administrator");
                if let Some(password) = generated_password {
                    // Shown once, on the console only: never through the log.
                    println!(
                        "iamd: first start: log in as {admin} with password {password} \
                         (shown once; set IAM_BOOTSTRAP_ADMIN_PASSWORD to choose it)"
                    );
                }
            }
        }

        if settings.token_day != std::time::Duration::from_secs(86_400) {
            tracing::warn!(
                seconds = settings.token_day.as_secs(),
                "IAM_TOKEN_DAY_SECS shortens a token lifetime day: a test setting, not for production"
            );
        }
        tokio::spawn(crate::token_expiry::sweep_forever(
            state.clone(),
            settings.token_sweep_interval,
        ));

        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("IAM_LISTEN: cannot bind {}", settings.listen))?;
        let address = listener.local_addr()?;
        let port = address.port();
        let openapi = <crate::openapi::ApiDoc as utoipa::OpenApi>::openapi();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::negotiation::require_supported_version))
                .wrap(from_fn(crate::prometheus::record_request))
                .wrap(TracingLogger::default())
                .wrap(from_fn(crate::request_id::assign))
                .app_data(state.clone())
                .app_data(crate::negotiation::json_config())
                .app_data(web::PayloadConfig::new(crate::negotiation::MAX_BODY_BYTES))
                .service(health::healthz)
                .service(health::readyz)
                .service(health::metrics)
                .service(login::login)
                .service(users::create::create)
                .service(users::list::list)
                .service(users::get::get)
                .service(users::replace::replace)
                .service(users::delete::delete)
                .service(organizations::list)
                .service(organizations::create)
                .service(organizations::add_member)
                .service(roles::list)
                .service(role_queries::list)
                .service(role_queries::holders)
                .service(tokens::create)
                .service(tokens::list_of_user)
                .service(tokens::download)
                .service(tokens::revoke)
                .service(tokens::query)
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .url("/api-docs/openapi.json", openapi.clone()),
                )
        })
        .listen(listener)?
        .run();
        // Black-box tests read the port from this line: keep its wording.
        tracing::info!("listening on http://{address}");
        Ok(Self { port, server })
    }

    /// The port the listener is bound to (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT or SIGTERM).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("the HTTP server failed")
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
