//! Identifiers of aggregates: UUIDs chosen by the caller (the domain never
//! generates them), and the names of their streams in the log.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub fn new(id: Uuid) -> Self {
                Self(id)
            }

            /// Parses the hyphenated form.
            pub fn parse(value: &str) -> Option<Self> {
                Uuid::parse_str(value.trim()).ok().map(Self)
            }

            /// The UUID.
            pub fn uuid(self) -> Uuid {
                self.0
            }

            /// The name of the aggregate's stream in the log.
            pub fn stream(self) -> String {
                format!(concat!($prefix, "-{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An organization's id (a user's `companyId` in the vCloud Air dialect).
    OrgId,
    "org"
);
id_type!(
    /// A user's id.
    UserId,
    "user"
);
id_type!(
    /// An API token's id.
    TokenId,
    "token"
);
id_type!(
    /// A plain group's id.
    GroupId,
    "group"
);
