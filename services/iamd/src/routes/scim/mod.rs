//! SCIM 2.0 at `/scim/v2` for identity providers: the same application
//! layer, domain and log as the vCloud Air dialect, in RFC 7644's wire
//! format. Authentication is an API token (`Bearer` as identity providers
//! send it, or `Token`); every refusal is an RFC 7644 error with its
//! `scimType`; answers are `application/scim+json`.

pub(crate) mod bulk;
pub(crate) mod discovery;
pub(crate) mod groups;
pub(crate) mod lists;
pub(crate) mod users;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use futures::StreamExt;
use iam_app::{AppError, Refusal};
use iam_scim::scim2::{MEDIA_TYPE, ScimError, ScimType};
use serde_json::Value;

use crate::startup::AppState;

/// A refusal or a failure, answered in RFC 7644's error form.
#[derive(Debug)]
pub(crate) enum ScimApiError {
    /// A refusal with its status and `scimType`.
    Refused(ScimError),
    /// The service failed (logged; the caller hears only that).
    Internal(anyhow::Error),
}

impl fmt::Display for ScimApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScimApiError::Refused(error) => write!(f, "{} {}", error.status, error.detail),
            ScimApiError::Internal(error) => write!(f, "internal error: {error:#}"),
        }
    }
}

impl ScimApiError {
    pub(crate) fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimApiError::Refused(ScimError::new(status, scim_type, detail))
    }

    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    pub(crate) fn internal(error: impl Into<anyhow::Error>) -> Self {
        ScimApiError::Internal(error.into())
    }

    /// The error as a Bulk operation's `response` reports it, with its status.
    pub(crate) fn parts(&self) -> (u16, Value) {
        match self {
            ScimApiError::Refused(error) => (error.status, error.body()),
            ScimApiError::Internal(error) => match iam_app::storage::StorageFault::of(error) {
                Some(fault) => (503, ScimError::new(503, None, fault.message()).body()),
                None => (
                    500,
                    ScimError::new(500, None, "The service failed; the failure is logged.").body(),
                ),
            },
        }
    }
}

impl From<ScimError> for ScimApiError {
    fn from(error: ScimError) -> Self {
        ScimApiError::Refused(error)
    }
}

impl From<AppError> for ScimApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Internal(error) => ScimApiError::Internal(error),
            AppError::Refused { refusal, message } => {
                let (status, scim_type) = match refusal {
                    Refusal::Invalid => (400, Some(ScimType::InvalidValue)),
                    Refusal::Immutable => (400, Some(ScimType::Mutability)),
                    Refusal::Unauthenticated => (401, None),
                    Refusal::Forbidden => (403, None),
                    Refusal::NotFound => (404, None),
                    Refusal::Conflict => (409, Some(ScimType::Uniqueness)),
                    Refusal::Concurrent => (409, None),
                    Refusal::PreconditionFailed => (412, None),
                    Refusal::KeyReused => (422, None),
                    Refusal::Busy => (503, None),
                };
                Self::new(status, scim_type, message)
            }
        }
    }
}

impl From<iam_projections::Error> for ScimApiError {
    fn from(error: iam_projections::Error) -> Self {
        ScimApiError::Internal(error.into())
    }
}

impl ResponseError for ScimApiError {
    fn status_code(&self) -> StatusCode {
        let (status, _) = self.parts();
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ScimApiError::Refused(error) if error.status >= 500 => {
                tracing::error!(status = error.status, detail = %error.detail, "SCIM request failed");
            }
            ScimApiError::Refused(error) => {
                tracing::info!(status = error.status, scim_type = ?error.scim_type, "SCIM request refused");
            }
            ScimApiError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "SCIM request failed");
            }
        }
        let (_, body) = self.parts();
        let mut response = scim_json(self.status_code(), &body);
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status_code() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        response
    }
}

/// An answer in SCIM's media type.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE)))
        .json(body)
}

/// An answer with the resource's ETag (and `Location`, for a create).
pub(crate) fn resource_response(
    status: StatusCode,
    resource: &Value,
    version: &Version,
    location: Option<&str>,
) -> HttpResponse {
    let mut response = scim_json(status, resource);
    if let Ok(value) = HeaderValue::from_str(&version.tag()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A resource's version, its ETag: the revision of its stream, and a
/// digest of what its answer shows from elsewhere (a user's groups, a
/// group's members), so that `If-None-Match` never answers 304 for an
/// answer that changed. Writes compare the revision only: that is what a
/// write changes and what the log checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) revision: i64,
    pub(crate) digest: u64,
}

impl Version {
    /// The ETag: weak, since the answer is not only the stream's.
    pub(crate) fn tag(&self) -> String {
        format!("W/\"{}-{:x}\"", self.revision, self.digest)
    }
}

/// An FNV-1a digest of `parts`, in order.
pub(crate) fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The ETag a request requires (`If-Match`, or a Bulk operation's
/// `version`): none, `*`, or tags of which one must be current.
#[derive(Debug, Clone, Default)]
pub(crate) struct Precondition(Option<String>);

impl Precondition {
    /// The request's `If-Match`.
    pub(crate) fn of(http: &HttpRequest) -> Self {
        Self::from_tags(
            http.headers()
                .get(header::IF_MATCH)
                .map(|tags| tags.to_str().unwrap_or_default().to_owned()),
        )
    }

    /// Given tags (`*` is none).
    pub(crate) fn from_tags(tags: Option<String>) -> Self {
        Self(tags.filter(|tags| !tags.split(',').any(|tag| tag.trim() == "*")))
    }

    /// Whether the client named a version.
    pub(crate) fn given(&self) -> bool {
        self.0.is_some()
    }

    /// The revision to expect, or 412 when no tag names `version`'s
    /// revision (a role group, which has no stream: its whole version).
    pub(crate) fn check(
        &self,
        version: &Version,
        whole: bool,
    ) -> Result<Option<u64>, ScimApiError> {
        let Some(tags) = &self.0 else {
            return Ok(None);
        };
        let current = version.tag();
        let inner = |tag: &str| {
            tag.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_owned()
        };
        let matches = tags.split(',').any(|tag| {
            let tag = inner(tag);
            if whole {
                return tag == inner(&current);
            }
            tag.split('-').next().and_then(|r| r.parse::<i64>().ok()) == Some(version.revision)
        });
        if matches {
            return Ok(Some(version.revision as u64));
        }
        Err(ScimApiError::new(
            412,
            None,
            format!(
                "The resource has changed since you read it (its version is now {current}); read it again and retry."
            ),
        ))
    }
}

/// Whether `If-None-Match` names the current version (then the answer is 304).
pub(crate) fn not_modified(http: &HttpRequest, version: &Version) -> bool {
    let Some(tags) = http.headers().get(header::IF_NONE_MATCH) else {
        return false;
    };
    let current = version.tag();
    let inner = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    tags.to_str()
        .unwrap_or_default()
        .split(',')
        .any(|tag| tag.trim() == "*" || inner(tag) == inner(&current))
}

/// 304 with the current ETag.
pub(crate) fn not_modified_response(version: &Version) -> HttpResponse {
    let mut response = HttpResponse::NotModified().finish();
    if let Ok(value) = HeaderValue::from_str(&version.tag()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Whether `error` is a 412: a version that is no longer current.
pub(crate) fn is_stale(error: &ScimApiError) -> bool {
    matches!(error, ScimApiError::Refused(ScimError { status: 412, .. }))
}

/// How often a change without `If-Match` is decided again when another
/// request changed the same resource first. Each round at least one of the
/// racing requests commits, so this many concurrent changes of one resource
/// all succeed.
pub(crate) const RETRIES: usize = 32;

/// A pause before deciding a change again, growing with the attempts, so
/// that racing requests spread out.
pub(crate) async fn back_off(attempt: usize) {
    let millis = (attempt as u64).min(10);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

/// The service's SCIM base URL as the client reached it
/// (`http://host:port/scim/v2`), for `location` and `$ref`.
pub(crate) fn base_url(http: &HttpRequest) -> String {
    let info = http.connection_info();
    format!("{}://{}/scim/v2", info.scheme(), info.host())
}

/// Reads a JSON body of at most `limit` bytes, sent as
/// `application/scim+json` or `application/json` (415 otherwise; 413 past
/// the limit; 400 `invalidSyntax` when it is not JSON).
pub(crate) async fn json_body(
    http: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Value, ScimApiError> {
    let content_type = http
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != MEDIA_TYPE && essence != "application/json" {
        return Err(ScimApiError::new(
            415,
            None,
            format!(
                "Send the body as JSON, with Content-Type: {MEDIA_TYPE} (or application/json)."
            ),
        ));
    }
    let too_large = || {
        ScimApiError::new(
            413,
            Some(ScimType::TooMany),
            format!("The request body is larger than {limit} bytes."),
        )
    };
    let declared = http
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ScimApiError::new(
                400,
                Some(ScimType::InvalidSyntax),
                format!("The body could not be read: {error}."),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|error| {
        ScimApiError::new(
            400,
            Some(ScimType::InvalidSyntax),
            format!(
                "The body is not valid JSON: {}.",
                crate::negotiation::without_the_value(&error.to_string())
            ),
        )
    })
}

/// The most a request body other than Bulk may hold.
pub(crate) const MAX_BODY: usize = crate::negotiation::MAX_BODY_BYTES;

/// An API token's caller: `Authorization: Bearer <secret>` (as identity
/// providers send it) or `Token <secret>`, acting as its user in the
/// token's organization. Anything else is 401.
#[derive(Debug, Clone)]
pub(crate) struct ScimCaller(pub(crate) iam_app::Caller);

impl std::ops::Deref for ScimCaller {
    type Target = iam_app::Caller;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for ScimCaller {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { Ok(authenticate(&request).await?) })
    }
}

async fn authenticate(request: &HttpRequest) -> Result<ScimCaller, ScimApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ScimApiError::internal(anyhow::anyhow!("application state is missing")))?;
    let unauthorized = || {
        ScimApiError::new(
            401,
            None,
            "Send an API token of this service as Authorization: Bearer <secret>.",
        )
    };
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(unauthorized)?;
    let (scheme, secret) = authorization
        .trim()
        .split_once(' ')
        .ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
        return Err(unauthorized());
    }
    if let Some(refusal) = crate::caller::several_tenant_contexts(request) {
        return Err(ScimApiError::invalid_value(refusal));
    }
    let tenant_context = request
        .headers()
        .get(crate::caller::TENANT_CONTEXT)
        .map(|value| value.to_str().unwrap_or_default());
    let caller = iam_app::authentication::authenticate(
        &state.app,
        Some(&format!("Token {}", secret.trim())),
        tenant_context,
    )
    .await
    .map_err(|error| match error.refusal() {
        // Missing or unusable credentials are 401 here, whatever the reason.
        Some(Refusal::Unauthenticated) => ScimApiError::new(401, None, error.to_string()),
        _ => error.into(),
    })?;
    Ok(ScimCaller(caller))
}

/// What caused a change: as in the vCloud Air dialect.
pub(crate) use crate::routes::users::cause;

/// RFC 3339 with milliseconds, for `meta.created` and `meta.lastModified`.
pub(crate) fn time(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
