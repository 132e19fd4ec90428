//! The one error type of the domain.

use crate::names::NameError;
use crate::policy::Denied;
use crate::roles::RoleSetError;

/// Why a command was refused. Every message says what was wrong and how to
/// fix it; the service renders them as 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The aggregate does not exist (or was deleted).
    #[error("the {0} does not exist")]
    NotFound(&'static str),
    /// The aggregate already exists.
    #[error("the {0} already exists")]
    AlreadyExists(&'static str),
    /// A name or address is malformed.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The roles are not a valid combination.
    #[error(transparent)]
    Roles(#[from] RoleSetError),
    /// `userName` and `email` differ.
    #[error("userName `{user_name}` must be the same address as email `{email}`")]
    UserNameIsNotEmail {
        /// The name given.
        user_name: String,
        /// The address given.
        email: String,
    },
    /// A token's secret is shown once; it was already downloaded.
    #[error(
        "the token was already downloaded: its secret is shown only once; revoke it and create a new one"
    )]
    AlreadyDownloaded,
    /// A field that cannot change was changed.
    #[error("{0} cannot be changed")]
    Immutable(&'static str),
    /// A local change of a user that an identity provider manages.
    #[error(
        "this user is managed by the identity provider (it was provisioned over SCIM 2.0): {0} there; here it may only be read or deactivated"
    )]
    ManagedByIdentityProvider(&'static str),
    /// Any other invalid value.
    #[error("{0}")]
    Invalid(String),
    /// The actor may not do this.
    #[error(transparent)]
    Denied(#[from] Denied),
}
