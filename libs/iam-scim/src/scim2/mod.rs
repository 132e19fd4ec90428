//! SCIM 2.0 (RFC 7643/7644) as identity providers speak it: the schemas
//! served and the discovery documents generated from them (`schema.rs`),
//! the error form, PATCH applied to a resource's JSON (`patch.rs`), the
//! `attributes`/`excludedAttributes` projection (`attributes.rs`), and the
//! reading of a user or group from a request (`resources.rs`), forgiving
//! of what Okta and Entra ID send (any case, booleans as strings).

pub mod attributes;
pub mod patch;
pub mod resources;
pub mod schema;

use serde_json::{Value, json};

/// The core user schema.
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core group schema.
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise user extension.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// This service's user extension (`managedByIdentityProvider`).
pub const IAM_USER: &str = "urn:iam:params:scim:schemas:extension:iam:2.0:User";
/// A list answer.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// A Bulk request.
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// A Bulk answer.
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// An error.
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The media type of every answer.
pub const MEDIA_TYPE: &str = "application/scim+json";

/// The most operations a Bulk request may hold.
pub const BULK_MAX_OPERATIONS: usize = 1000;
/// The largest Bulk request, in bytes (1 MiB).
pub const BULK_MAX_PAYLOAD: usize = 1024 * 1024;
/// The most resources one list answer holds.
pub const MAX_RESULTS: i64 = 1000;

/// The `scimType` of an error (RFC 7644 §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// A filter that cannot be parsed or evaluated.
    InvalidFilter,
    /// Too many results, operations or bytes.
    TooMany,
    /// A unique attribute's value is taken.
    Uniqueness,
    /// An attribute that cannot be changed.
    Mutability,
    /// A body that is not a valid request.
    InvalidSyntax,
    /// A PATCH path that is not valid.
    InvalidPath,
    /// A PATCH path that selects nothing.
    NoTarget,
    /// A missing or invalid value.
    InvalidValue,
    /// Secrets in a URL.
    Sensitive,
}

impl ScimType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::Sensitive => "sensitive",
        }
    }
}

/// An error as RFC 7644 renders it: an HTTP status, a `scimType` where one
/// applies, and a sentence that says what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The kind, for 400, 409 and 413.
    pub scim_type: Option<ScimType>,
    /// What was wrong.
    pub detail: String,
}

impl ScimError {
    /// An error of `status` and `scim_type`.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// 400 with `scim_type`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// The error body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type.as_str());
        }
        body
    }
}

/// A boolean as clients send it: `true`, or the strings `"True"`/`"false"`
/// in any case (Entra ID sends `"active": "False"`).
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A list answer: `totalResults` matched, `resources` from `start_index`
/// (1-based), `itemsPerPage` the number actually returned.
pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// The `ServiceProviderConfig` document: exactly what is supported.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": BULK_MAX_OPERATIONS,
            "maxPayloadSize": BULK_MAX_PAYLOAD,
        },
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "API token",
            "description": "An API token of this service, sent as `Authorization: Bearer <secret>` \
                            (or `Authorization: Token <secret>`). It acts as its user in the token's organization.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}
