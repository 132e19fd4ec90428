//! Building and running the application: open the store, start the
//! projectors, bind the listener, serve.

use std::net::TcpListener;
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tracing_actix_web::TracingLogger;

use crate::configuration::Settings;
use crate::routes::{
    audit, console, health, login, organizations, passwords, role_queries, roles, scim, tokens,
    users,
};

/// What every request handler can reach: the application layer, and what
/// only the HTTP service needs beside it. It dereferences to the
/// [`iam_app::App`], so handlers reach the store and the read models as
/// `state.store` and pass `&state` where the application layer wants `&App`.
#[derive(Debug)]
pub struct AppState {
    /// The application layer.
    pub app: Arc<iam_app::App>,
    /// Rendering of `/metrics`.
    pub prometheus: PrometheusHandle,
    /// The readiness bound on projection lag.
    pub ready_max_lag: u64,
    /// The proxies whose `X-Forwarded-For` is believed (`IAM_TRUSTED_PROXIES`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Failed logins, counted per name and address.
    pub login_throttle: Arc<crate::throttle::LoginThrottle>,
    /// The sender of password-reset mail; `None` without `IAM_SMTP_URL`.
    pub mailer: Option<Arc<iam_app::mailer::Mailer>>,
}

impl Deref for AppState {
    type Target = iam_app::App;

    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

impl AppState {
    /// Opens the application layer (store, read models, projectors):
    /// everything but the HTTP server.
    pub async fn open(
        settings: &Settings,
        mailer: Option<Arc<iam_app::mailer::Mailer>>,
    ) -> anyhow::Result<web::Data<AppState>> {
        let prometheus = crate::prometheus::handle().context("installing the metrics recorder")?;
        let app = iam_app::App::open(&iam_app::Options {
            database_url: settings.database_url.clone(),
            session_ttl: settings.session_ttl,
            token_day: settings.token_day,
        })
        .await?;
        Ok(web::Data::new(AppState {
            app: Arc::new(app),
            prometheus,
            ready_max_lag: settings.ready_max_lag,
            trusted_proxies: settings.trusted_proxies.clone().into(),
            login_throttle: Arc::new(crate::throttle::LoginThrottle::new(settings.login_limits)),
            mailer,
        }))
    }
}

/// Where a generated bootstrap password goes: beside the SQLite database,
/// or in the working directory.
fn bootstrap_password_file(database_url: &str) -> std::path::PathBuf {
    const NAME: &str = "bootstrap-admin-password";
    let folder = database_url
        .strip_prefix("sqlite://")
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .and_then(|path| {
            std::path::Path::new(path)
                .parent()
                .map(std::path::Path::to_path_buf)
        })
        .filter(|folder| !folder.as_os_str().is_empty());
    match folder {
        Some(folder) => folder.join(NAME),
        None => std::path::PathBuf::from(NAME),
    }
}

/// Writes `secret` to `path`, readable and writable by this user only.
fn write_private_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // A file left by an earlier start keeps its mode: narrow it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{secret}")?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        writeln!(file, "{secret}")?;
        file.sync_all()
    }
}

/// How often the read models' planner statistics are checked (PostgreSQL).
const STATISTICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

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
        // Bound first: the links in mail name the bound address by default.
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("IAM_LISTEN: cannot bind {}", settings.listen))?;
        let address = listener.local_addr()?;
        let port = address.port();
        let mailer = match &settings.smtp_url {
            None => None,
            Some(smtp_url) => Some(Arc::new(iam_app::mailer::Mailer::new(
                &iam_app::mailer::MailSettings {
                    smtp_url: smtp_url.clone(),
                    from: settings.mail_from.clone(),
                    public_url: settings
                        .public_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{address}")),
                },
            )?)),
        };
        let state = AppState::open(&settings, mailer.clone()).await?;
        if let Some(mailer) = mailer {
            tokio::spawn(mailer.run_forever(state.app.read_models.clone()));
        }
        match iam_app::bootstrap::run(&state, &settings.bootstrap).await? {
            iam_app::bootstrap::Outcome::AlreadyDone => {}
            iam_app::bootstrap::Outcome::Created {
                admin,
                generated_password,
            } => {
                tracing::info!(admin = %admin, "created the provider organization and its administrator");
                if let Some(password) = generated_password {
                    // Never through the log stream: into a file only this
                    // user may read, whose path is shown.
                    let path = bootstrap_password_file(&settings.database_url);
                    write_private_file(&path, &password).with_context(|| {
                        format!("writing the generated password to {}", path.display())
                    })?;
                    println!(
                        "iamd: first start: log in as {admin} with the password in {} \
                         (readable only by this user; change it at first use, or set \
                         IAM_BOOTSTRAP_ADMIN_PASSWORD to choose it)",
                        path.display()
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
        tokio::spawn(iam_projections::statistics::refresh_forever(
            state.app.read_models.clone(),
            STATISTICS_INTERVAL,
        ));
        tokio::spawn(iam_app::credentials::purge_sessions_forever(
            state.app.read_models.clone(),
            settings.token_sweep_interval,
        ));
        tokio::spawn(iam_app::token_expiry::sweep_forever(
            state.app.clone(),
            settings.token_sweep_interval,
        ));

        if let Some(grpc_listen) = &settings.grpc_listen {
            let listener = tokio::net::TcpListener::bind(grpc_listen)
                .await
                .with_context(|| format!("IAM_GRPC_LISTEN: cannot bind {grpc_listen}"))?;
            let grpc_address = listener.local_addr()?;
            let feed = crate::feed::Feed::server(state.app.clone());
            tokio::spawn(async move {
                let served = tonic::transport::Server::builder()
                    .add_service(feed)
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                    .await;
                if let Err(error) = served {
                    tracing::error!(error = %error, "the change feed stopped");
                }
            });
            // Black-box tests read the feed's port from this line.
            tracing::info!("change feed listening on grpc://{grpc_address}");
        }
        let openapi = <crate::openapi::ApiDoc as utoipa::OpenApi>::openapi();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(crate::negotiation::require_supported_version))
                .wrap(from_fn(crate::prometheus::record_request))
                // The request's context first, so that its root span
                // carries the request's id and the client address it decided.
                .wrap(TracingLogger::<crate::telemetry::RootSpan>::new())
                .wrap(from_fn(crate::request_context::assign))
                .wrap(from_fn(crate::security_headers::add))
                .app_data(state.clone())
                .app_data(crate::negotiation::json_config())
                .app_data(crate::routes::fallback::query_config())
                .app_data(web::PayloadConfig::new(crate::negotiation::MAX_BODY_BYTES))
                .service(health::healthz)
                .service(health::readyz)
                .service(health::metrics)
                .service(login::login)
                .service(login::logout)
                .service(login::instances)
                // Before `PUT /api/iam/Users/{id}`, which would take "password" for an id.
                .service(passwords::change)
                .service(passwords::set)
                .service(passwords::request_reset)
                .service(passwords::complete_reset)
                .service(users::create::create)
                .service(users::list::list)
                .service(users::get::get)
                .service(users::history::history)
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
                .service(audit::query)
                .service(console::bare)
                .service(console::index)
                .service(console::file)
                .service(scim::discovery::config)
                .service(scim::discovery::all_resource_types)
                .service(scim::discovery::resource_type)
                .service(scim::discovery::all_schemas)
                .service(scim::discovery::schema_by_id)
                .service(scim::users::me)
                .service(scim::users::create)
                .service(scim::users::list)
                .service(scim::users::get)
                .service(scim::users::replace)
                .service(scim::users::modify)
                .service(scim::users::remove)
                .service(scim::groups::create)
                .service(scim::groups::list)
                .service(scim::groups::get)
                .service(scim::groups::replace)
                .service(scim::groups::modify)
                .service(scim::groups::remove)
                .service(scim::bulk::bulk)
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .url("/api-docs/openapi.json", openapi.clone()),
                )
                .default_service(web::to(crate::routes::fallback::not_found))
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
