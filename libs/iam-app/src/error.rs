//! The application layer's error: a refusal of what was asked (with a
//! sentence for the caller that says what was wrong and how to fix it), or a
//! failure of the service itself. Each dialect renders it in its own format;
//! nothing here knows HTTP.

use iam_domain::DomainError;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request is malformed or breaks a rule (HTTP 400).
    Invalid,
    /// The credentials are invalid or expired (401).
    Unauthenticated,
    /// The caller may not do this (403).
    Forbidden,
    /// No such resource, as far as the caller can see (404).
    NotFound,
    /// The resource's state forbids it: taken, already done, changed
    /// concurrently (409).
    Conflict,
    /// The resource changed since the caller read it (412).
    PreconditionFailed,
    /// An idempotency key was reused for another request (422).
    KeyReused,
    /// An attribute that cannot be changed (400; SCIM's `mutability`).
    Immutable,
    /// Another request changed the same resource at the same moment (409;
    /// reading it again and retrying succeeds). Not a uniqueness conflict.
    Concurrent,
    /// The service is at capacity for this kind of work (503, with
    /// `Retry-After`): trying again in a moment succeeds.
    Busy,
}

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Refused: nothing was written.
    #[error("{message}")]
    Refused {
        /// Why.
        refusal: Refusal,
        /// A sentence for the caller.
        message: String,
    },
    /// The service failed; the cause is for the log, not for the caller.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// A refusal.
    pub fn refused(refusal: Refusal, message: impl Into<String>) -> Self {
        AppError::Refused {
            refusal,
            message: message.into(),
        }
    }

    /// Malformed or against a rule.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::refused(Refusal::Invalid, message)
    }

    /// Invalid or expired credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::refused(Refusal::Unauthenticated, message)
    }

    /// Not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::refused(Refusal::Forbidden, message)
    }

    /// Not there (or not visible).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::refused(Refusal::NotFound, message)
    }

    /// In conflict with the resource's state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::refused(Refusal::Conflict, message)
    }

    /// A failure of the service.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }

    /// The refusal, if this is one.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            AppError::Refused { refusal, .. } => Some(*refusal),
            AppError::Internal(_) => None,
        }
    }
}

impl From<DomainError> for AppError {
    fn from(error: DomainError) -> Self {
        let refusal = match &error {
            DomainError::NotFound(_) => Refusal::NotFound,
            DomainError::AlreadyExists(_) | DomainError::AlreadyDownloaded => Refusal::Conflict,
            DomainError::Denied(_) => Refusal::Forbidden,
            DomainError::Immutable(_) => Refusal::Immutable,
            _ => Refusal::Invalid,
        };
        Self::refused(refusal, sentence(&error.to_string()))
    }
}

impl From<iam_eventstore::Error> for AppError {
    fn from(error: iam_eventstore::Error) -> Self {
        match error {
            iam_eventstore::Error::WrongExpectedVersion { .. } => AppError::refused(
                Refusal::Concurrent,
                "The resource was changed by another request at the same time; read it again and retry.",
            ),
            iam_eventstore::Error::ClaimHeld { claim, .. }
                if claim.kind == crate::commands::USER_NAME_CLAIM =>
            {
                AppError::conflict(format!(
                    "userName `{}` is already taken: user names are unique across the service (ignoring case).",
                    claim.value
                ))
            }
            iam_eventstore::Error::ClaimHeld { claim, .. }
                if claim.kind == crate::groups::GROUP_NAME_CLAIM =>
            {
                let name = claim
                    .value
                    .split_once('/')
                    .map_or(claim.value.as_str(), |(_, name)| name);
                AppError::conflict(format!(
                    "displayName `{name}` is already taken: group names are unique in an organization (ignoring case)."
                ))
            }
            // A reset code works once; its value (a hash) is not repeated.
            iam_eventstore::Error::ClaimHeld { claim, .. }
                if claim.kind == crate::commands::RESET_CODE_CLAIM =>
            {
                AppError::forbidden(crate::passwords::RESET_CODE_INVALID)
            }
            // Another uniqueness claim (one provider per store, say): the
            // state of the store refuses it, as with a user name.
            iam_eventstore::Error::ClaimHeld { claim, .. } => AppError::conflict(format!(
                "{} `{}` is already taken.",
                claim.kind, claim.value
            )),
            other => AppError::internal(other),
        }
    }
}

impl From<iam_projections::Error> for AppError {
    fn from(error: iam_projections::Error) -> Self {
        AppError::internal(error)
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
