//! SCIM filters translated to SQL, evaluated by SQLite and by PostgreSQL:
//! both databases select the same rows, the ones the filter means.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use iam_scim::filter::{AttrPath, CompValue, parse_filter};
use iam_scim::filter_sql::{Bind, Dialect, Kind, Resolve, Target, to_sql};
use iam_test_databases::{Kind as Database, TestDatabase};
use sqlx::Connection;

/// Users with one email each, as a read model might keep them.
struct Users;

impl Resolve for Users {
    fn resolve(&self, parent: Option<&AttrPath>, path: &AttrPath) -> Option<Target> {
        let text = |sql, case_exact, lowercase| Target::Column {
            sql,
            kind: Kind::Text {
                case_exact,
                lowercase,
            },
        };
        match parent {
            Some(parent) if parent.names("emails", None) => {
                if path.names("value", None) {
                    Some(text("email", false, false))
                } else if path.names("type", None) {
                    Some(Target::Constant(CompValue::String("work".into())))
                } else {
                    None
                }
            }
            Some(_) => None,
            None if path.names("userName", None) => Some(text("user_name_key", false, true)),
            None if path.names("externalId", None) => Some(text("external_id", true, false)),
            None if path.names("emails", None) => Some(text("email", false, false)),
            None if path.names("active", None) => Some(Target::Condition("state = 'Active'")),
            None if path.names("meta", Some("lastModified")) => Some(Target::Column {
                sql: "modified_at",
                kind: Kind::Millis,
            }),
            None => None,
        }
    }
}

/// A row: id, userName key, email, externalId, state, modified_at.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    i64,
);

const ROWS: [Row; 4] = [
    (
        "1",
        "bjensen@example.com",
        "BJensen@Example.com",
        Some("00uA"),
        "Active",
        1_000,
    ),
    (
        "2",
        "jsmith@example.org",
        "jsmith@example.org",
        Some("00ua"),
        "Inactive",
        2_000,
    ),
    (
        "3",
        "50%_off@example.com",
        "50%_off@example.com",
        None,
        "Active",
        3_000,
    ),
    (
        "4",
        "zed@example.net",
        "zed@example.net",
        Some(""),
        "Active",
        4_000,
    ),
];

async fn selected(database: Database, filter: &str) -> Vec<String> {
    let db = TestDatabase::new(database).await.expect("a test database");
    sqlx::any::install_default_drivers();
    // A fresh SQLite file must be created on connecting.
    let url = match database {
        Database::Sqlite => format!("{}?mode=rwc", db.url()),
        Database::Postgres => db.url().to_owned(),
    };
    let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE users (id TEXT PRIMARY KEY, user_name_key TEXT NOT NULL, email TEXT NOT NULL, \
         external_id TEXT, state TEXT NOT NULL, modified_at BIGINT NOT NULL)",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    for (id, name, email, external, state, modified) in ROWS {
        sqlx::query("INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(name)
            .bind(email)
            .bind(external)
            .bind(state)
            .bind(modified)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    let dialect = match database {
        Database::Sqlite => Dialect::Sqlite,
        Database::Postgres => Dialect::Postgres,
    };
    let condition = to_sql(&parse_filter(filter).unwrap(), &Users, dialect, 1).unwrap();
    let sql = format!("SELECT id FROM users WHERE {} ORDER BY id", condition.sql);
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for bind in condition.binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Integer(number) => query.bind(number),
        };
    }
    query.fetch_all(&mut connection).await.unwrap()
}

const CASES: [(&str, &[&str]); 17] = [
    (r#"userName eq "BJENSEN@example.com""#, &["1"]),
    (r#"userName ne "bjensen@example.com""#, &["2", "3", "4"]),
    (r#"emails co "EXAMPLE.COM""#, &["1", "3"]),
    // `%` and `_` are characters, not wildcards.
    (r#"emails co "%_""#, &["3"]),
    (r#"emails co "5_%""#, &[]),
    (r#"emails sw "b""#, &["1"]),
    (r#"emails ew ".org""#, &["2"]),
    // externalId is case-exact.
    (r#"externalId eq "00uA""#, &["1"]),
    (r#"externalId sw "00u""#, &["1", "2"]),
    ("externalId pr", &["1", "2"]),
    (r#"active eq true and not (emails ew ".net")"#, &["1", "3"]),
    (
        r#"active eq "False" or meta.lastModified ge "1970-01-01T00:00:03Z""#,
        &["2", "3", "4"],
    ),
    (r#"emails[type eq "work" and value sw "JS"]"#, &["2"]),
    (r#"emails[type eq "home"]"#, &[]),
    // Equalities joined by `or` are one list, still case-exact or not.
    (
        r#"externalId eq "00uA" or externalId eq "00UA" or externalId eq "nobody""#,
        &["1"],
    ),
    (
        r#"userName eq "BJENSEN@example.com" or (userName eq "nobody" or emails eq "JSmith@example.org")"#,
        &["1", "2"],
    ),
    (
        r#"emails eq "BJENSEN@example.com" or emails eq "JSMITH@EXAMPLE.ORG""#,
        &["1", "2"],
    ),
];

async fn both_databases_select_what_the_filter_means(database: Database) {
    for (filter, expected) in CASES {
        assert_eq!(selected(database, filter).await, expected, "{filter}");
    }
}

#[tokio::test]
async fn sqlite_selects_what_the_filter_means() {
    both_databases_select_what_the_filter_means(Database::Sqlite).await;
}

#[tokio::test]
async fn postgres_selects_what_the_filter_means() {
    both_databases_select_what_the_filter_means(Database::Postgres).await;
}
