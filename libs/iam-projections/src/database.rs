//! The read-model database: the same database as the log, through sqlx's
//! `Any` driver.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use iam_eventstore::Backend;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::read_models::OrganizationRow;
use crate::{Error, Result};

const MIGRATIONS_TABLE: &str = "iam_projections_migrations";

/// A pool of connections to the read-model database.
#[derive(Debug, Clone)]
pub struct ReadModels {
    pool: AnyPool,
    backend: Backend,
    /// Organizations already read. A row of `read_organizations` never
    /// changes once written (no event changes an organization's name, kind,
    /// provider or delegation), so a cached row is exact on every replica.
    pub(crate) organizations: Arc<RwLock<HashMap<String, OrganizationRow>>>,
}

impl ReadModels {
    /// Connects to the database `url` names (the store's URL) and creates
    /// the checkpoint table when needed. The database must exist: open the
    /// event store first.
    pub async fn connect(url: &str) -> Result<Self> {
        let backend = Backend::of_url(url).ok_or_else(|| {
            Error::Database(std::sync::Arc::new(sqlx::Error::Configuration(
                "expected a sqlite:// or postgres:// URL".into(),
            )))
        })?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            organizations: Arc::default(),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database it is, for the rare statement whose SQL differs.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}
