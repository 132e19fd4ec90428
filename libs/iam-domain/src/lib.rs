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

/// The type name of every event the domain records, as the log stores it:
/// what the change feed's contracts must each have a message for. Kept
/// beside the enums; the test below fails when an enum's variant is
/// missing here.
pub const EVENT_TYPES: &[&str] = &[
    "OrganizationCreated",
    "OrganizationMemberAdded",
    "UserCreated",
    "UserNameChanged",
    "UserProfileChanged",
    "UserEmailChanged",
    "UserRenamed",
    "UserStateChanged",
    "UserRolesChanged",
    "UserPasswordSet",
    "UserPasswordResetRequested",
    "UserPasswordReset",
    "UserDeleted",
    "GroupCreated",
    "GroupRenamed",
    "GroupExternalIdChanged",
    "GroupMembersAdded",
    "GroupMembersRemoved",
    "GroupDeleted",
    "TokenCreated",
    "TokenDownloaded",
    "TokenRevoked",
    "TokenExpired",
    "LoginSucceeded",
    "LoggedOut",
    "LoginFailed",
];

pub use error::DomainError;
pub use ids::{GroupId, OrgId, TokenId, UserId};
pub use names::{Email, NameError, UserName, person_name};
pub use organization::{OrgKind, Organization};
pub use roles::{Role, RoleEntry, RoleScope, RoleSet, RoleSetError};
pub use user::{Profile, Source, User, UserState};

#[cfg(test)]
mod event_types_tests {
    /// Every name an `event_type()` match returns (read from the sources,
    /// so that a new variant cannot be missed) is in `EVENT_TYPES`, and
    /// nothing else is.
    #[test]
    fn every_event_type_is_listed() {
        let sources = [
            include_str!("organization.rs"),
            include_str!("user.rs"),
            include_str!("group.rs"),
            include_str!("token.rs"),
            include_str!("login.rs"),
        ];
        let mut named: Vec<String> = Vec::new();
        for source in sources {
            let start = source
                .find("pub fn event_type(&self)")
                .expect("an event_type function");
            let body = &source[start..];
            let body = &body[..body.find("\n    }\n").expect("its end")];
            for line in body.lines() {
                if let Some((_, name)) = line.split_once("=> \"") {
                    named.push(name.trim_end_matches(['"', ',']).to_owned());
                }
            }
        }
        named.sort();
        let mut listed: Vec<String> = super::EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect();
        listed.sort();
        assert_eq!(named, listed);
    }
}
