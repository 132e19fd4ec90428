//! List parameters (RFC 7644 §3.4.2): `filter`, `sortBy`, `sortOrder`,
//! `startIndex`, `count`, `attributes` and `excludedAttributes`, and how a
//! filter or a sort becomes SQL over each read model. Filters are evaluated
//! by the database with bound parameters; an attribute that cannot be
//! filtered on is `invalidFilter`, never "everything".

use iam_eventstore::Backend;
use iam_projections::read_models::QueryValue;
use iam_scim::filter::{AttrPath, CompValue, Filter, parse_filter};
use iam_scim::filter_sql::{Bind, Dialect, Kind, Resolve, Target, to_sql};
use iam_scim::scim2::attributes::Selection;
use iam_scim::scim2::patch::ResourceSchema;
use iam_scim::scim2::{ENTERPRISE_USER, GROUP, IAM_USER, MAX_RESULTS, ScimType, USER};

use super::ScimApiError;

/// The parameters of a list or of a GET of one resource.
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) filter: Option<String>,
    pub(crate) sort_by: Option<String>,
    pub(crate) descending: bool,
    pub(crate) start_index: i64,
    pub(crate) count: i64,
    pub(crate) attributes: Option<String>,
    pub(crate) excluded: Option<String>,
}

impl ListQuery {
    /// Reads the parameters (their names in any case; `+` is a space).
    pub(crate) fn parse(pairs: &[(String, String)]) -> Result<Self, ScimApiError> {
        let mut query = ListQuery {
            start_index: 1,
            count: MAX_RESULTS,
            ..ListQuery::default()
        };
        for (name, value) in pairs {
            let number = |what: &str| {
                value.trim().parse::<i64>().map_err(|_| {
                    ScimApiError::invalid_value(format!(
                        "`{what}` must be an integer, not `{value}`."
                    ))
                })
            };
            match name.to_ascii_lowercase().as_str() {
                "filter" => query.filter = Some(value.clone()),
                "sortby" => query.sort_by = Some(value.clone()),
                "sortorder" => {
                    query.descending = match value.trim().to_ascii_lowercase().as_str() {
                        "ascending" | "" => false,
                        "descending" => true,
                        _ => {
                            return Err(ScimApiError::invalid_value(
                                "`sortOrder` is `ascending` or `descending`.",
                            ));
                        }
                    }
                }
                // Below 1 is taken as 1 and a negative count as 0 (RFC 7644 §3.4.2.4).
                "startindex" => query.start_index = number("startIndex")?.max(1),
                "count" => query.count = number("count")?.clamp(0, MAX_RESULTS),
                "attributes" => query.attributes = Some(value.clone()),
                "excludedattributes" => query.excluded = Some(value.clone()),
                _ => {}
            }
        }
        Ok(query)
    }

    /// The `attributes`/`excludedAttributes` selection for `schema`.
    pub(crate) fn selection(&self, schema: &ResourceSchema) -> Selection {
        Selection::new(self.attributes.as_deref(), self.excluded.as_deref(), schema)
    }
}

fn dialect(backend: Backend) -> Dialect {
    match backend {
        Backend::Sqlite => Dialect::Sqlite,
        Backend::Postgres => Dialect::Postgres,
    }
}

fn invalid_filter(detail: impl Into<String>) -> ScimApiError {
    ScimApiError::new(400, Some(ScimType::InvalidFilter), detail)
}

/// The SQL condition of `filter` (true without one) and its parameters,
/// numbered from `$2` (`$1` is the organization).
pub(crate) fn condition(
    filter: Option<&str>,
    resolve: &impl Resolve,
    backend: Backend,
) -> Result<(String, Vec<QueryValue>), ScimApiError> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(("1 = 1".to_owned(), Vec::new()));
    };
    let parsed = parse_filter(filter)
        .map_err(|error| invalid_filter(format!("The filter cannot be read: {error}.")))?;
    if names_password(&parsed) {
        return Err(ScimApiError::new(
            400,
            Some(ScimType::Sensitive),
            "A filter cannot name `password`: passwords are never sent in a URL, nor compared by one.",
        ));
    }
    let condition = to_sql(&parsed, resolve, dialect(backend), 2)
        .map_err(|error| invalid_filter(format!("The filter cannot be used: {error}.")))?;
    let binds = condition
        .binds
        .into_iter()
        .map(|bind| match bind {
            Bind::Text(text) => QueryValue::Text(text),
            Bind::Integer(integer) => QueryValue::Integer(integer),
        })
        .collect();
    Ok((condition.sql, binds))
}

/// Whether the filter names the `password` attribute anywhere.
fn names_password(filter: &Filter) -> bool {
    match filter {
        Filter::Present(path) | Filter::Compare { path, .. } => path.names("password", None),
        Filter::ValuePath { path, filter } => {
            path.names("password", None) || names_password(filter)
        }
        Filter::And(left, right) | Filter::Or(left, right) => {
            names_password(left) || names_password(right)
        }
        Filter::Not(inner) => names_password(inner),
    }
}

/// Whether `schema` (a filter's or sort's qualifier) is `expected` or absent.
fn in_schema(path: &AttrPath, expected: &[&str]) -> bool {
    path.schema
        .as_deref()
        .is_none_or(|schema| expected.iter().any(|e| e.eq_ignore_ascii_case(schema)))
}

const fn text(sql: &'static str) -> Target {
    Target::Column {
        sql,
        kind: Kind::Text {
            case_exact: false,
            lowercase: false,
        },
    }
}

const fn exact(sql: &'static str) -> Target {
    Target::Column {
        sql,
        kind: Kind::Text {
            case_exact: true,
            lowercase: false,
        },
    }
}

const fn lowercase(sql: &'static str) -> Target {
    Target::Column {
        sql,
        kind: Kind::Text {
            case_exact: false,
            lowercase: true,
        },
    }
}

/// Users' attributes in `read_users u`.
pub(crate) struct UserColumns;

impl Resolve for UserColumns {
    fn resolve(&self, parent: Option<&AttrPath>, path: &AttrPath) -> Option<Target> {
        if let Some(parent) = parent {
            // emails[type eq "work" and value co "@example.com"]
            if !parent.names("emails", None) || !in_schema(parent, &[USER]) {
                return None;
            }
            return match path.attribute.to_ascii_lowercase().as_str() {
                "value" => Some(text("u.email")),
                "type" => Some(Target::Constant(CompValue::String("work".into()))),
                "primary" => Some(Target::Constant(CompValue::Bool(true))),
                _ => None,
            };
        }
        if in_schema(path, &[ENTERPRISE_USER]) && path.schema.is_some() {
            return if path.names("employeeNumber", None) {
                Some(exact("u.employee_number"))
            } else if path.names("department", None) {
                Some(text("u.department"))
            } else if path.names("manager", None) || path.names("manager", Some("value")) {
                Some(exact("u.manager_id"))
            } else {
                None
            };
        }
        if path.schema.is_some() && in_schema(path, &[IAM_USER]) {
            return path
                .names("managedByIdentityProvider", None)
                .then_some(Target::Condition("u.managed = 1"));
        }
        if !in_schema(path, &[USER]) {
            return None;
        }
        let names = |a, s| path.names(a, s);
        Some(if names("id", None) {
            lowercase("u.id")
        } else if names("userName", None) {
            lowercase("u.user_name_key")
        } else if names("externalId", None) {
            exact("u.external_id")
        } else if names("emails", None) || names("emails", Some("value")) {
            text("u.email")
        } else if names("emails", Some("type")) {
            Target::Constant(CompValue::String("work".into()))
        } else if names("name", Some("givenName")) {
            text("u.given_name")
        } else if names("name", Some("familyName")) {
            text("u.family_name")
        } else if names("active", None) {
            Target::Condition("u.state = 'Active'")
        } else if names("meta", Some("created")) {
            Target::Column {
                sql: "u.created_at",
                kind: Kind::Millis,
            }
        } else if names("meta", Some("lastModified")) {
            Target::Column {
                sql: "u.modified_at",
                kind: Kind::Millis,
            }
        } else if names("employeeNumber", None) {
            exact("u.employee_number")
        } else if names("department", None) {
            text("u.department")
        } else {
            return None;
        })
    }
}

/// Plain groups' attributes in `read_groups g`.
pub(crate) struct GroupColumns;

impl Resolve for GroupColumns {
    fn resolve(&self, parent: Option<&AttrPath>, path: &AttrPath) -> Option<Target> {
        if parent.is_some() || !in_schema(path, &[GROUP]) {
            return None;
        }
        let names = |a, s| path.names(a, s);
        Some(if names("id", None) {
            lowercase("g.id")
        } else if names("displayName", None) {
            lowercase("g.display_name_key")
        } else if names("externalId", None) {
            exact("g.external_id")
        } else if names("meta", Some("created")) {
            Target::Column {
                sql: "g.created_at",
                kind: Kind::Millis,
            }
        } else if names("meta", Some("lastModified")) {
            Target::Column {
                sql: "g.modified_at",
                kind: Kind::Millis,
            }
        } else {
            return None;
        })
    }
}

/// The ORDER BY of a list: `sortBy` (a column the resolver knows), then the
/// id, so that pages are stable.
///
/// With a filter, the sort key is an expression rather than the bare
/// column, so that the database looks the filter up by its own index and
/// sorts what it finds. On the bare column SQLite chose the index that
/// gives the order and scanned the whole organization in it to find, say,
/// one `externalId`: a lookup cost grew with the organization.
pub(crate) fn order(
    query: &ListQuery,
    resolve: &impl Resolve,
    default: &str,
    id: &str,
) -> Result<String, ScimApiError> {
    let direction = if query.descending { "DESC" } else { "ASC" };
    let (column, number) = match query
        .sort_by
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => (default.to_owned(), false),
        Some(sort_by) => {
            let path = iam_scim::filter::parse_patch_path(sort_by)
                .ok()
                .filter(|path| path.filter.is_none())
                .map(|path| path.path)
                .ok_or_else(|| invalid_sort(sort_by))?;
            match resolve.resolve(None, &path) {
                Some(Target::Column { sql, kind }) => match kind {
                    Kind::Text {
                        case_exact: false,
                        lowercase: false,
                    } => (format!("LOWER({sql})"), false),
                    Kind::Text { .. } => (sql.to_owned(), false),
                    Kind::Millis | Kind::Integer => (sql.to_owned(), true),
                },
                _ => return Err(invalid_sort(sort_by)),
            }
        }
    };
    let filtered = query
        .filter
        .as_deref()
        .is_some_and(|f| !f.trim().is_empty());
    let (column, id) = match (filtered, number) {
        (false, _) => (column, id.to_owned()),
        (true, false) => (format!("({column} || '')"), format!("({id} || '')")),
        (true, true) => (format!("({column} + 0)"), format!("({id} || '')")),
    };
    Ok(format!("{column} {direction}, {id} {direction}"))
}

fn invalid_sort(sort_by: &str) -> ScimApiError {
    ScimApiError::invalid_value(format!(
        "`sortBy={sort_by}` names no attribute that can be sorted on; use for example userName, \
         name.familyName, meta.created or displayName."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(filter: Option<&str>, sort_by: Option<&str>) -> ListQuery {
        ListQuery {
            filter: filter.map(str::to_owned),
            sort_by: sort_by.map(str::to_owned),
            start_index: 1,
            count: 10,
            ..ListQuery::default()
        }
    }

    #[test]
    fn a_filtered_list_sorts_on_expressions_so_the_filter_picks_the_index() {
        let plain = order(&query(None, None), &UserColumns, "u.user_name_key", "u.id").unwrap();
        assert_eq!(plain, "u.user_name_key ASC, u.id ASC");
        let filtered = order(
            &query(Some("externalId eq \"x\""), None),
            &UserColumns,
            "u.user_name_key",
            "u.id",
        )
        .unwrap();
        assert_eq!(filtered, "(u.user_name_key || '') ASC, (u.id || '') ASC");
        let by_time = order(
            &query(Some("active eq true"), Some("meta.created")),
            &UserColumns,
            "u.user_name_key",
            "u.id",
        )
        .unwrap();
        assert_eq!(by_time, "(u.created_at + 0) ASC, (u.id || '') ASC");
    }
}
