//! The API token aggregate: Pending → Enabled (at its one download) →
//! Revoked; Expired once its lifetime is over, whatever its status was.
//!
//! The secret itself never enters the domain: the service generates it,
//! shows it once, and hands the domain only its SHA-256 (a hash of 256
//! random bits may be in the log).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{OrgId, TokenId, UserId};
use crate::names::person_name;

/// Shortest lifetime a token may be created with, in days.
pub const MIN_LIFETIME_DAYS: u32 = 1;
/// Longest lifetime a token may be created with, in days.
pub const MAX_LIFETIME_DAYS: u32 = 365;

/// Where a token is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenStatus {
    /// Created, never downloaded.
    Pending,
    /// Downloaded: authenticates until revoked or expired.
    Enabled,
    /// Revoked.
    Revoked,
    /// Its lifetime is over.
    Expired,
}

impl TokenStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Pending => "Pending",
            TokenStatus::Enabled => "Enabled",
            TokenStatus::Revoked => "Revoked",
            TokenStatus::Expired => "Expired",
        }
    }
}

/// A token as its events leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Its id.
    pub id: TokenId,
    /// The user it authenticates as.
    pub user: UserId,
    /// The one organization it is scoped to.
    pub organization: OrgId,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its lifetime ends.
    pub expires_at: DateTime<Utc>,
    /// Its recorded status.
    pub status: TokenStatus,
    /// SHA-256 (hex) of its secret, once downloaded.
    pub secret_hash: Option<String>,
}

impl Token {
    /// Its status at `now`: Expired once the lifetime is over, even before
    /// an event records it.
    pub fn status_at(&self, now: DateTime<Utc>) -> TokenStatus {
        if now >= self.expires_at {
            TokenStatus::Expired
        } else {
            self.status
        }
    }
}

/// What can be asked of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCommand {
    /// Create a token for `user`, scoped to `organization`.
    Create {
        /// Its id.
        id: TokenId,
        /// The owner.
        user: UserId,
        /// The organization it is scoped to.
        organization: OrgId,
        /// Its name.
        name: String,
        /// Its description (may be empty).
        description: String,
        /// 1 to 365.
        lifetime_days: i64,
        /// The length of a lifetime day: one day, shorter only in tests.
        day: Duration,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Its one download: the service shows the secret and records its hash.
    Download {
        /// SHA-256 (hex) of the secret shown.
        secret_hash: String,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Revoke it (again: nothing changes).
    Revoke {
        /// Now.
        at: DateTime<Utc>,
    },
    /// Record that its lifetime is over (the sweep).
    Expire {
        /// Now.
        at: DateTime<Utc>,
    },
}

/// What happened to a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TokenEvent {
    /// A token was created (Pending).
    TokenCreated {
        /// Its id.
        id: TokenId,
        /// The owner.
        user: UserId,
        /// Its organization.
        organization: OrgId,
        /// Its name.
        name: String,
        /// Its description.
        description: String,
        /// When its lifetime ends.
        #[serde(rename = "expiresAt")]
        expires_at: DateTime<Utc>,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was downloaded (Enabled); only the hash of the secret is recorded.
    TokenDownloaded {
        /// SHA-256 (hex) of the secret.
        #[serde(rename = "secretHash")]
        secret_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// It was revoked.
    TokenRevoked {
        /// When.
        at: DateTime<Utc>,
    },
    /// Its lifetime ended.
    TokenExpired {
        /// When.
        at: DateTime<Utc>,
    },
}

impl TokenEvent {
    /// The event's type name in the log.
    pub fn event_type(&self) -> &'static str {
        match self {
            TokenEvent::TokenCreated { .. } => "TokenCreated",
            TokenEvent::TokenDownloaded { .. } => "TokenDownloaded",
            TokenEvent::TokenRevoked { .. } => "TokenRevoked",
            TokenEvent::TokenExpired { .. } => "TokenExpired",
        }
    }
}

/// Decides `command` against the token's current state.
pub fn decide(
    state: Option<&Token>,
    command: TokenCommand,
) -> Result<Vec<TokenEvent>, DomainError> {
    match command {
        TokenCommand::Create {
            id,
            user,
            organization,
            name,
            description,
            lifetime_days,
            day,
            at,
        } => {
            if state.is_some() {
                return Err(DomainError::AlreadyExists("token"));
            }
            if !(i64::from(MIN_LIFETIME_DAYS)..=i64::from(MAX_LIFETIME_DAYS))
                .contains(&lifetime_days)
            {
                return Err(DomainError::Invalid(format!(
                    "lifetimeDays must be between {MIN_LIFETIME_DAYS} and {MAX_LIFETIME_DAYS}; got {lifetime_days}"
                )));
            }
            let description = description.trim().to_owned();
            crate::names::refuse_control_characters("description", &description)?;
            if description.chars().count() > 1024 {
                return Err(DomainError::Invalid(
                    "description is longer than 1024 characters".into(),
                ));
            }
            Ok(vec![TokenEvent::TokenCreated {
                id,
                user,
                organization,
                name: person_name("name", &name)?,
                description,
                expires_at: at + day * lifetime_days as i32,
                at,
            }])
        }
        TokenCommand::Download { secret_hash, at } => {
            let token = state.ok_or(DomainError::NotFound("token"))?;
            match token.status_at(at) {
                TokenStatus::Pending => Ok(vec![TokenEvent::TokenDownloaded { secret_hash, at }]),
                TokenStatus::Enabled => Err(DomainError::AlreadyDownloaded),
                TokenStatus::Revoked => Err(DomainError::Invalid(
                    "the token was revoked; create a new one".into(),
                )),
                TokenStatus::Expired => Err(DomainError::Invalid(
                    "the token has expired; create a new one".into(),
                )),
            }
        }
        TokenCommand::Revoke { at } => {
            let token = state.ok_or(DomainError::NotFound("token"))?;
            match token.status_at(at) {
                TokenStatus::Pending | TokenStatus::Enabled => {
                    Ok(vec![TokenEvent::TokenRevoked { at }])
                }
                TokenStatus::Revoked | TokenStatus::Expired => Ok(Vec::new()),
            }
        }
        TokenCommand::Expire { at } => {
            let token = state.ok_or(DomainError::NotFound("token"))?;
            if at >= token.expires_at && token.status != TokenStatus::Expired {
                Ok(vec![TokenEvent::TokenExpired { at }])
            } else {
                Ok(Vec::new())
            }
        }
    }
}

/// The token after `event`.
pub fn apply(state: Option<Token>, event: &TokenEvent) -> Option<Token> {
    if let TokenEvent::TokenCreated {
        id,
        user,
        organization,
        name,
        description,
        expires_at,
        at,
    } = event
    {
        return Some(Token {
            id: *id,
            user: *user,
            organization: *organization,
            name: name.clone(),
            description: description.clone(),
            created_at: *at,
            expires_at: *expires_at,
            status: TokenStatus::Pending,
            secret_hash: None,
        });
    }
    let mut token = state?;
    match event {
        TokenEvent::TokenCreated { .. } => {}
        TokenEvent::TokenDownloaded { secret_hash, .. } => {
            token.status = TokenStatus::Enabled;
            token.secret_hash = Some(secret_hash.clone());
        }
        TokenEvent::TokenRevoked { .. } => token.status = TokenStatus::Revoked,
        TokenEvent::TokenExpired { .. } => token.status = TokenStatus::Expired,
    }
    Some(token)
}
