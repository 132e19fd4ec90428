//! Logins and logouts, as the audit records them: each attempt, successful
//! or not, and each logout is an event on its organization's login stream (`login-<organization uuid>`).
//! Never the password that was tried.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{OrgId, UserId};

/// The stream of `organization`'s logins.
pub fn stream(organization: OrgId) -> String {
    format!("login-{organization}")
}

/// Why a login was refused (the caller hears one answer for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoginFailure {
    /// No user has that name.
    UnknownUser,
    /// The password did not match.
    WrongPassword,
    /// The user is inactive.
    Inactive,
    /// Too many failed logins for the name or from the address: refused
    /// before the password was checked.
    Throttled,
}

/// A login attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LoginEvent {
    /// A user logged in.
    LoginSucceeded {
        /// The user.
        user: UserId,
        /// Its organization.
        organization: OrgId,
        /// Its `userName`.
        #[serde(rename = "userName")]
        user_name: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user ended its session.
    LoggedOut {
        /// The user.
        user: UserId,
        /// Its organization.
        organization: OrgId,
        /// Its `userName`.
        #[serde(rename = "userName")]
        user_name: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A login was refused.
    LoginFailed {
        /// The user the name belongs to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserId>,
        /// The user's organization, or the provider's for an unknown name.
        organization: OrgId,
        /// The name that was tried.
        #[serde(rename = "userName")]
        user_name: String,
        /// Why.
        reason: LoginFailure,
        /// When.
        at: DateTime<Utc>,
    },
}

impl LoginEvent {
    /// Its type, as the log records it.
    pub fn event_type(&self) -> &'static str {
        match self {
            LoginEvent::LoginSucceeded { .. } => "LoginSucceeded",
            LoginEvent::LoggedOut { .. } => "LoggedOut",
            LoginEvent::LoginFailed { .. } => "LoginFailed",
        }
    }

    /// The organization whose audit it belongs to.
    pub fn organization(&self) -> OrgId {
        match self {
            LoginEvent::LoginSucceeded { organization, .. }
            | LoginEvent::LoggedOut { organization, .. }
            | LoginEvent::LoginFailed { organization, .. } => *organization,
        }
    }
}
