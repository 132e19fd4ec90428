//! The SCIM 1.1 error body: `{"Errors":[{"description":"...","code":"400"}]}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorEntry {
    /// What was wrong and how to fix it.
    pub description: String,
    /// The HTTP status, as a string.
    pub code: String,
}

/// The error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The errors (one, in practice).
    #[serde(rename = "Errors")]
    pub errors: Vec<ErrorEntry>,
}

impl ErrorBody {
    /// A body with one error.
    pub fn new(status: u16, description: impl Into<String>) -> Self {
        Self {
            errors: vec![ErrorEntry {
                description: description.into(),
                code: status.to_string(),
            }],
        }
    }
}
