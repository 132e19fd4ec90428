//! `GET /api/iam/audit`: the audit of the effective organization, newest
//! first, from the audit read model, filtered and paged with an opaque
//! cursor that stays stable while new events arrive (it is a position:
//! later events only ever get higher ones).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iam_domain::UserId;
use iam_domain::policy::may_audit;
use iam_projections::read_models::{AuditFilter, AuditRow};
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::startup::AppState;

/// Entries in a page unless `pageSize` says otherwise, and at most.
const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;
/// What a cursor says before the position, so that a stray value is refused.
const CURSOR_PREFIX: &str = "before:";

/// The audit of the effective organization.
#[utoipa::path(
    tag = "audit",
    params(
        ("since" = Option<String>, Query, description = "Entries at or after this RFC 3339 time"),
        ("until" = Option<String>, Query, description = "Entries before this RFC 3339 time"),
        ("actor" = Option<String>, Query, description = "The actor's id or userName"),
        ("userId" = Option<String>, Query, description = "Entries about this user"),
        ("type" = Option<String>, Query, description = "An event type; repeat it for several"),
        ("requestId" = Option<String>, Query, description = "The server's request id, or the X-Request-Id the client sent"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the page before"),
        ("pageSize" = Option<u32>, Query, description = "Default 100, at most 1000"),
    ),
    responses(
        (status = 200, description = "`{\"entries\": [...], \"nextCursor\", \"completeUpTo\"}`: newest first; `completeUpTo` is the log position up to which the audit is complete", body = inline(Value)),
        (status = 400, description = "A time, id, cursor or page size that cannot be read", body = iam_scim::error::ErrorBody),
        (status = 403, description = "The caller may not read this organization's audit", body = iam_scim::error::ErrorBody),
    ),
)]
#[get("/api/iam/audit")]
pub(crate) async fn query(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    may_audit(&caller.actor, &caller.effective).map_err(|denied| ApiError::forbidden(denied.0))?;
    let (filter, page_size) = filter_of(&query)?;
    // Read the checkpoint first: every entry up to it is then in the page's
    // range, whatever the projector adds meanwhile.
    let complete_up_to = state.read_models.audit_complete_up_to().await?;
    let organization = caller.effective.id.to_string();
    let mut rows = state
        .read_models
        .audit(&organization, &filter, page_size + 1)
        .await?;
    let next_cursor = if rows.len() > page_size as usize {
        rows.truncate(page_size as usize);
        rows.last()
            .map(|row| URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{}", row.position)))
    } else {
        None
    };
    let entries: Vec<Value> = rows.iter().map(AuditRow::to_json).collect();
    Ok(vca_json(
        StatusCode::OK,
        &json!({
            "entries": entries,
            "nextCursor": next_cursor,
            "completeUpTo": complete_up_to,
        }),
    ))
}

/// The filter and page size a query string asks for, or 400.
fn filter_of(pairs: &[(String, String)]) -> Result<(AuditFilter, u32), ApiError> {
    let mut filter = AuditFilter::default();
    let mut page_size = DEFAULT_PAGE_SIZE;
    let time = |name: &str, value: &str| {
        chrono::DateTime::parse_from_rfc3339(value)
            .map(|at| at.timestamp_millis())
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "`{name}` must be an RFC 3339 time, e.g. 2026-11-30T08:00:00Z; got `{value}`."
                ))
            })
    };
    for (name, value) in pairs {
        match name.as_str() {
            "since" => filter.since = Some(time(name, value)?),
            "until" => filter.until = Some(time(name, value)?),
            "actor" => filter.actor = Some(value.trim().to_owned()),
            "userId" => {
                let id = UserId::parse(value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`userId` must be a user's id (a UUID), not `{value}`."
                    ))
                })?;
                filter.user = Some(id.to_string());
            }
            "type" => filter.types.push(value.trim().to_owned()),
            "requestId" => filter.request = Some(value.trim().to_owned()),
            "cursor" => filter.before = Some(cursor_position(value)?),
            "pageSize" => {
                page_size = value
                    .parse()
                    .ok()
                    .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`pageSize` must be a number from 1 to {MAX_PAGE_SIZE}; got `{value}`."
                        ))
                    })?;
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Unknown parameter `{name}`: the audit takes since, until, actor, userId, type, \
                     requestId, cursor and pageSize."
                )));
            }
        }
    }
    Ok((filter, page_size))
}

/// The position a cursor stands for.
fn cursor_position(cursor: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX)?.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "`cursor` is not one this service gave: pass `nextCursor` as it came.",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_its_position_and_nothing_else_passes() {
        let cursor = URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}42"));
        assert_eq!(cursor_position(&cursor).unwrap(), 42);
        assert!(cursor_position("42").is_err());
        assert!(cursor_position(&URL_SAFE_NO_PAD.encode("after:42")).is_err());
    }

    #[test]
    fn types_repeat_and_unknown_parameters_are_refused() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (filter, size) = filter_of(&pairs(&[
            ("type", "UserCreated"),
            ("type", "UserDeleted"),
            ("since", "2026-11-30T08:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(filter.types, ["UserCreated", "UserDeleted"]);
        assert_eq!(filter.since, Some(1_796_025_600_000));
        assert_eq!(size, DEFAULT_PAGE_SIZE);
        assert!(filter_of(&pairs(&[("since", "yesterday")])).is_err());
        assert!(filter_of(&pairs(&[("pageSize", "0")])).is_err());
        assert!(filter_of(&pairs(&[("color", "red")])).is_err());
    }
}
