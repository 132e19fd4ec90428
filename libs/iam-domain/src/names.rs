//! Parsed values of a user's identity: [`Email`] and [`UserName`].

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// The longest address a mail system accepts (RFC 5321: 254 octets).
const MAX_EMAIL_LENGTH: usize = 254;

/// Why a name or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not an email address.
    #[error("`{0}` is not a valid email address (expected something like jill@example.com)")]
    InvalidEmail(String),
    /// Too long.
    #[error("{field} is {length} characters long; at most {max} are allowed")]
    TooLong {
        /// Which value.
        field: &'static str,
        /// How long it was.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// Empty or only white space.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Holds a control character (a NUL, a line break, an escape, …).
    #[error("{0} must not contain control characters such as NUL, tab, line breaks or escapes")]
    ControlCharacter(&'static str),
}

/// Refuses text with a control character: such text is no name or address,
/// can forge log lines, and PostgreSQL's JSON refuses a NUL outright.
pub(crate) fn refuse_control_characters(field: &'static str, value: &str) -> Result<(), NameError> {
    if value.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter(field));
    }
    Ok(())
}

/// An email address, checked against RFC 5322 (with a dot-separated domain),
/// trimmed, stored as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(NameError::Empty("email"));
        }
        refuse_control_characters("email", value)?;
        if value.chars().count() > MAX_EMAIL_LENGTH {
            return Err(NameError::TooLong {
                field: "email",
                length: value.chars().count(),
                max: MAX_EMAIL_LENGTH,
            });
        }
        let domain_has_dot = value.rsplit_once('@').is_some_and(|(_, domain)| {
            domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
        if !email_address::EmailAddress::is_valid(value) || !domain_has_dot {
            return Err(NameError::InvalidEmail(value.to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user name: an email address, unique across the service compared
/// case-insensitively, immutable once the user exists. Stored as given;
/// equality and hashing ignore case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(Email);

impl UserName {
    /// Parses a user name (it must be an email address).
    pub fn parse(value: &str) -> Result<Self, NameError> {
        Email::parse(value).map(Self).map_err(|error| match error {
            NameError::InvalidEmail(value) => NameError::InvalidEmail(value),
            NameError::Empty(_) => NameError::Empty("userName"),
            NameError::ControlCharacter(_) => NameError::ControlCharacter("userName"),
            NameError::TooLong { length, max, .. } => NameError::TooLong {
                field: "userName",
                length,
                max,
            },
        })
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The form uniqueness is decided on: lower case.
    pub fn canonical(&self) -> String {
        self.0.as_str().to_lowercase()
    }

    /// Whether `email` is the same address as this name (ignoring case).
    pub fn matches(&self, email: &Email) -> bool {
        self.canonical() == email.as_str().to_lowercase()
    }
}

impl PartialEq for UserName {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl Eq for UserName {}

impl Hash for UserName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical().hash(state);
    }
}

impl TryFrom<String> for UserName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<UserName> for String {
    fn from(name: UserName) -> Self {
        name.0.into()
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's given or family name: trimmed, not empty, at most 128 characters.
pub fn person_name(field: &'static str, value: &str) -> Result<String, NameError> {
    const MAX: usize = 128;
    let value = value.trim();
    if value.is_empty() {
        return Err(NameError::Empty(field));
    }
    refuse_control_characters(field, value)?;
    let length = value.chars().count();
    if length > MAX {
        return Err(NameError::TooLong {
            field,
            length,
            max: MAX,
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_in_names_and_addresses() {
        for bad in ["nul\u{0}byte", "line\nbreak", "tab\there", "esc\u{1b}[31m"] {
            assert_eq!(
                person_name("givenName", bad),
                Err(NameError::ControlCharacter("givenName")),
                "{bad:?}"
            );
            assert!(
                Email::parse(&format!("{bad}@example.com")).is_err(),
                "{bad:?}"
            );
        }
        assert!(person_name("givenName", "Zoë O'Brien-Łukasz").is_ok());
    }

    #[test]
    fn addresses_are_checked_for_real() {
        for good in [
            "jill@example.com",
            "  Jill.O'Brien+iam@sub.example.co.uk ",
            "a@b.io",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "jill",
            "jill@",
            "@example.com",
            "jill@@example.com",
            "jill@localhost",
            "jill @example.com",
            "jill@example.com.",
        ] {
            assert!(
                matches!(Email::parse(bad), Err(NameError::InvalidEmail(_))),
                "{bad}"
            );
        }
        assert_eq!(Email::parse("   "), Err(NameError::Empty("email")));
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(
            Email::parse(&long),
            Err(NameError::TooLong { .. })
        ));
    }

    #[test]
    fn user_names_compare_case_insensitively_and_keep_their_case() {
        let a = UserName::parse("Jill@Example.com").unwrap();
        let b = UserName::parse(" jill@example.COM").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Jill@Example.com");
        assert_eq!(a.canonical(), "jill@example.com");
        assert!(a.matches(&Email::parse("JILL@example.com").unwrap()));
    }

    #[test]
    fn person_names_are_trimmed_and_bounded() {
        assert_eq!(person_name("givenName", "  Jill "), Ok("Jill".into()));
        assert_eq!(
            person_name("givenName", " "),
            Err(NameError::Empty("givenName"))
        );
        assert!(person_name("familyName", &"x".repeat(129)).is_err());
        // Injection strings are names like any other: stored literally.
        assert!(person_name("familyName", "Robert'); DROP TABLE users;--").is_ok());
    }
}
