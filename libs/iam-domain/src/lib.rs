//! The IAM domain: organizations, users, groups and roles; their commands, events and
//! invariants; the role catalog; the permission policy.
//!
//! Pure: no I/O, no async, no clock, no random numbers, no HTTP or SQL
//! types. Aggregates are `decide(&state, command) -> events` and
//! `apply(state, &event) -> state`; time and new ids arrive inside the
//! commands. Values that have rules are parsed once into newtypes
//! ([`UserName`], [`Email`], [`RoleSet`]) so that holding one means it is valid.

mod error;
pub mod group;
mod ids;
pub mod login;
mod names;
pub mod organization;
pub mod policy;
mod roles;
pub mod token;
pub mod token_secret;
pub mod user;

pub use error::DomainError;
pub use ids::{GroupId, OrgId, TokenId, UserId};
pub use names::{Email, NameError, UserName, person_name};
pub use organization::{OrgKind, Organization};
pub use roles::{Role, RoleEntry, RoleScope, RoleSet, RoleSetError};
pub use user::{Profile, Source, User, UserState};
