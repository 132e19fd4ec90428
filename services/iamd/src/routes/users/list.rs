//! `GET /api/iam/Users`: `{"users": [...]}` of the effective organization.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use iam_domain::policy::{UserAction, may_manage_users};
use iam_scim::vca::UserList;
use serde::Deserialize;

use super::view;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::startup::AppState;

const DEFAULT_COUNT: i64 = 100;
const MAX_COUNT: i64 = 1000;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<i64>,
    count: Option<i64>,
}

/// The users of the effective organization (and its Organization Owners).
#[utoipa::path(
    tag = "users",
    description = "The users of the effective organization (and, in a tenant, its Organization Owners).",
    params(
        ("filter" = Option<String>, Query, description = "SCIM 1.1 filter: `userName eq \"jill@example.com\"`"),
        ("startIndex" = Option<i64>, Query, description = "First result, from 1"),
        ("count" = Option<i64>, Query, description = "Results per page (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "The users", body = iam_scim::vca::UserList),
        (status = 400, description = "Unsupported filter or paging", body = iam_scim::error::ErrorBody),
        (status = 403, description = "Not allowed, or no credentials", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/Users")]
#[tracing::instrument(skip_all, fields(organization = %caller.effective.id))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let start_index = query.start_index.unwrap_or(1);
    let count = query.count.unwrap_or(DEFAULT_COUNT);
    if start_index < 1 {
        return Err(ApiError::bad_request("`startIndex` counts from 1."));
    }
    if !(0..=MAX_COUNT).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "`count` must be between 0 and {MAX_COUNT}."
        )));
    }
    let user_name = query.filter.as_deref().map(user_name_filter).transpose()?;
    let everyone = may_manage_users(&caller.actor, &caller.effective, UserAction::Read, None);
    let rows = state
        .read_models
        .members_of(
            &caller.effective.id.to_string(),
            user_name.as_deref(),
            start_index - 1,
            count,
        )
        .await?;
    let users = match everyone {
        Ok(()) => rows.iter().map(|(row, owner)| view(row, *owner)).collect(),
        // Roles that see only themselves list only themselves.
        Err(denied) => {
            may_manage_users(
                &caller.actor,
                &caller.effective,
                UserAction::Read,
                Some(caller.actor.user),
            )
            .map_err(|_| ApiError::forbidden(denied.0))?;
            rows.iter()
                .filter(|(row, _)| row.id == caller.user.id)
                .map(|(row, owner)| view(row, *owner))
                .collect()
        }
    };
    Ok(vca_json(StatusCode::OK, &UserList { users }))
}

/// The name a SCIM 1.1 filter `userName eq "…"` asks for.
fn user_name_filter(filter: &str) -> Result<String, ApiError> {
    let unsupported = || {
        ApiError::bad_request(format!(
            "The filter `{filter}` is not supported; use userName eq \"jill@example.com\"."
        ))
    };
    let mut words = filter.trim().splitn(3, char::is_whitespace);
    let (Some(attribute), Some(operator), Some(value)) = (words.next(), words.next(), words.next())
    else {
        return Err(unsupported());
    };
    if !attribute.eq_ignore_ascii_case("userName") || !operator.eq_ignore_ascii_case("eq") {
        return Err(unsupported());
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .ok_or_else(unsupported)?;
    Ok(value.replace("\\\"", "\""))
}

#[cfg(test)]
mod tests {
    use super::user_name_filter;

    #[test]
    fn a_user_name_equality_filter_is_understood() {
        assert_eq!(
            user_name_filter(r#"userName eq "jill@example.com""#).unwrap(),
            "jill@example.com"
        );
        assert_eq!(
            user_name_filter(r#"USERNAME EQ "Jill@Example.com""#).unwrap(),
            "Jill@Example.com"
        );
        assert!(user_name_filter(r#"email eq "x""#).is_err());
        assert!(user_name_filter("userName eq jill").is_err());
        assert!(user_name_filter("userName").is_err());
    }
}
