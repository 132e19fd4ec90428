//! The service's error type: every refusal is rendered once, here, in the
//! SCIM 1.1 error body of the vCloud Air dialect. 5xx bodies say nothing
//! internal; their cause chain is logged once.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use iam_app::{AppError, Refusal};
use iam_domain::DomainError;
use iam_scim::error::ErrorBody;

use crate::negotiation::VCA_CONTENT_TYPE;

/// A refused or failed request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds to wait before trying again (`Retry-After`), for 429 and 503.
    retry_after: Option<u64>,
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
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
        }
    }

    /// 429, with the seconds to wait.
    pub(crate) fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
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

    /// 500: logs the cause, tells the caller nothing internal. A fault of
    /// the database itself (unreachable, full, read-only) is 503 with
    /// `Retry-After` and a sentence that says which.
    pub(crate) fn internal(cause: impl Into<anyhow::Error>) -> Self {
        let cause = cause.into();
        if let Some(fault) = iam_app::storage::StorageFault::of(&cause) {
            tracing::warn!(
                error = format!("{cause:#}"),
                ?fault,
                "the database failed the request"
            );
            return Self::new(StatusCode::SERVICE_UNAVAILABLE, fault.message());
        }
        tracing::error!(error = format!("{cause:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The service could not complete the request; it has been logged. Try again later.",
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(VCA_CONTENT_TYPE),
        ));
        if let Some(seconds) = self.retry_after {
            // Say when to come back.
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(ErrorBody::new(self.status.as_u16(), &self.message))
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Refused { refusal, message } => {
                let status = match refusal {
                    Refusal::Invalid | Refusal::Immutable => StatusCode::BAD_REQUEST,
                    Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
                    Refusal::Forbidden => StatusCode::FORBIDDEN,
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Conflict | Refusal::Concurrent => StatusCode::CONFLICT,
                    Refusal::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
                    Refusal::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
                    Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
                };
                Self::new(status, message)
            }
            AppError::Internal(cause) => Self::internal(cause),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        AppError::from(error).into()
    }
}

impl From<iam_eventstore::Error> for ApiError {
    fn from(error: iam_eventstore::Error) -> Self {
        AppError::from(error).into()
    }
}

impl From<iam_projections::Error> for ApiError {
    fn from(error: iam_projections::Error) -> Self {
        ApiError::internal(error)
    }
}
