//! The service's error type: every refusal is rendered once, here, in the
//! SCIM 1.1 error body of the vCloud Air dialect. 5xx bodies say nothing
//! internal; their cause chain is logged once.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use iam_domain::DomainError;
use iam_scim::error::ErrorBody;

use crate::negotiation::VCA_CONTENT_TYPE;

/// A refused or failed request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl ApiError {
    /// A refusal with `status` and a message for the caller.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500: logs the cause, tells the caller nothing internal.
    pub(crate) fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        tracing::error!(error = format!("{cause:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The service could not complete the request; it has been logged. Try again later.",
        )
    }

    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header((
                header::CONTENT_TYPE,
                HeaderValue::from_static(VCA_CONTENT_TYPE),
            ))
            .json(ErrorBody::new(self.status.as_u16(), &self.message))
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let status = match &error {
            DomainError::NotFound(_) => StatusCode::NOT_FOUND,
            DomainError::AlreadyExists(_) | DomainError::AlreadyDownloaded => StatusCode::CONFLICT,
            DomainError::Denied(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, sentence(&error.to_string()))
    }
}

impl From<iam_eventstore::Error> for ApiError {
    fn from(error: iam_eventstore::Error) -> Self {
        match error {
            iam_eventstore::Error::WrongExpectedVersion { .. } => ApiError::conflict(
                "The resource was changed by another request at the same time; read it again and retry.",
            ),
            iam_eventstore::Error::ClaimHeld { claim, .. }
                if claim.kind == crate::commands::USER_NAME_CLAIM =>
            {
                ApiError::conflict(format!(
                    "userName `{}` is already taken: user names are unique across the service (ignoring case).",
                    claim.value
                ))
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<iam_projections::Error> for ApiError {
    fn from(error: iam_projections::Error) -> Self {
        ApiError::internal(error)
    }
}

/// `text` as a sentence: capitalized (unless it starts with an identifier
/// such as `userName`, whose case is part of its name), ending with a full stop.
fn sentence(text: &str) -> String {
    let first_word = text.split_whitespace().next().unwrap_or_default();
    let is_identifier =
        first_word.chars().skip(1).any(char::is_uppercase) || first_word.starts_with('`');
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) if !is_identifier => first.to_uppercase().chain(chars).collect(),
        _ => text.to_owned(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn messages_become_sentences_but_identifiers_keep_their_case() {
        assert_eq!(
            sentence("a user must hold at least one role"),
            "A user must hold at least one role."
        );
        assert_eq!(
            sentence("userName cannot be changed"),
            "userName cannot be changed."
        );
        assert_eq!(sentence("Done."), "Done.");
    }
}
