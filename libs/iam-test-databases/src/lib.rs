//! Throwaway databases for tests, one per test.
//!
//! SQLite: a new file in a temporary folder that is removed with the
//! [`TestDatabase`]. PostgreSQL: a new database on the server whose URL is
//! in `IAM_TEST_POSTGRES_URL` (`./scripts/test.sh` starts a throwaway
//! cluster and sets it). A PostgreSQL test without that variable fails with
//! a message that says how to run it; it never passes silently.
//!
//! This crate only hands out URLs; it knows nothing of the event store.

use std::fmt;

use anyhow::{Context, bail};
use sqlx::Connection;
use tempfile::TempDir;

/// The variable that holds the URL of the test PostgreSQL server.
pub const POSTGRES_URL_VARIABLE: &str = "IAM_TEST_POSTGRES_URL";

/// Which kind of database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQLite file.
    Sqlite,
    /// A database on the test PostgreSQL server.
    Postgres,
}

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    kind: Kind,
    /// Keeps the SQLite file's folder alive as long as the database.
    _folder: Option<TempDir>,
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish()
    }
}

impl TestDatabase {
    /// A fresh database of `kind`.
    pub async fn new(kind: Kind) -> anyhow::Result<Self> {
        match kind {
            Kind::Sqlite => Self::sqlite(),
            Kind::Postgres => Self::postgres().await,
        }
    }

    /// A fresh SQLite file in a temporary folder.
    pub fn sqlite() -> anyhow::Result<Self> {
        let folder = tempfile::tempdir().context("creating a temporary folder")?;
        let path = folder.path().join("iam.db");
        Ok(Self {
            url: format!("sqlite://{}", path.display()),
            kind: Kind::Sqlite,
            _folder: Some(folder),
        })
    }

    /// A fresh database on the test PostgreSQL server.
    pub async fn postgres() -> anyhow::Result<Self> {
        let Ok(server) = std::env::var(POSTGRES_URL_VARIABLE) else {
            bail!(
                "{POSTGRES_URL_VARIABLE} is not set: run ./scripts/test.sh, which starts a \
                 throwaway PostgreSQL cluster, or point it at a server where tests may create databases"
            );
        };
        let name = format!("iam_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&server)
            .await
            .with_context(|| format!("connecting to {POSTGRES_URL_VARIABLE}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .context("creating a test database")?;
        admin.close().await.ok();
        Ok(Self {
            url: with_database(&server, &name)?,
            kind: Kind::Postgres,
            _folder: None,
        })
    }

    /// The database's URL (`sqlite://…` or `postgres://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What kind of database it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// `server` with its database name replaced by `database`.
fn with_database(server: &str, database: &str) -> anyhow::Result<String> {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority_start = base
        .find("://")
        .context("the PostgreSQL URL has no scheme")?
        + 3;
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |offset| authority_start + offset);
    let mut url = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5/postgres?sslmode=disable", "t").unwrap(),
            "postgres://u@127.0.0.1:5/t?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5", "t").unwrap(),
            "postgres://u@h:5/t"
        );
    }
}
