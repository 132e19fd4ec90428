//! Wire formats of the identity API: the vCloud Air SCIM 1.0 dialect
//! (`/api/iam/...`), the SCIM 1.1 error body, and the SCIM 2.0 filter
//! language and the SCIM 2.0 resources, PATCH and discovery documents. Shapes only: no HTTP, no storage. Requests keep every element optional so that a missing one is
//! reported by name rather than as a parse failure.

pub mod error;
pub mod filter;
pub mod filter_sql;
pub mod scim2;
pub mod vca;

/// The schema URN of the vCloud Air dialect.
pub const SCIM_CORE_1_0: &str = "urn:scim:schemas:core:1.0";
