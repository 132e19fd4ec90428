//! The vCloud Air user resource.

use iam_domain::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::SCIM_CORE_1_0;
use validator::{Validate, ValidationError};

/// The most roles a request may name (the schema's `maxItems` of `roles`).
pub const MAX_ROLES: usize = 16;
/// The longest role name a request may send (the schema's `maxLength`).
pub const MAX_ROLE_NAME: usize = 128;

/// The limits on `roles.roles` (one level down, where `validate`'s own
/// length check cannot reach through the generic wrapper).
fn role_names_fit(roles: &Roles<RoleName>) -> Result<(), ValidationError> {
    let too_long = roles
        .roles
        .iter()
        .filter_map(|role| role.name.as_deref())
        .any(|name| name.chars().count() > MAX_ROLE_NAME);
    if roles.roles.len() > MAX_ROLES || too_long {
        return Err(ValidationError::new("length").with_message(
            format!("at most {MAX_ROLES} roles, each name at most {MAX_ROLE_NAME} characters")
                .into(),
        ));
    }
    Ok(())
}

/// `meta`: creation and modification times in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Meta {
    /// Created.
    pub created: i64,
    /// Last modified.
    pub modified: i64,
}

/// A role as responses show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    /// What it allows.
    pub description: String,
    /// Its name.
    pub name: String,
    /// Its vCloud Air id.
    pub id: String,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        let entry = role.entry();
        Self {
            description: entry.description.to_owned(),
            name: entry.name.to_owned(),
            id: entry.id.to_owned(),
        }
    }
}

/// `{"roles": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Roles<T> {
    /// The roles.
    #[schema(max_items = 16)]
    pub roles: Vec<T>,
}

/// `{"serviceGroupIds": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceGroupIds {
    /// The ids.
    #[serde(rename = "serviceGroupIds")]
    pub service_group_ids: Vec<String>,
}

/// A user as the API answers it (field order as in the vCloud Air documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Times.
    pub meta: Meta,
    /// `["urn:scim:schemas:core:1.0"]`.
    pub schemas: Vec<String>,
    /// `Active` or `Inactive`.
    pub state: String,
    /// The user's id.
    pub id: String,
    /// The home organization's id.
    #[serde(rename = "companyId")]
    pub company_id: String,
    /// Always null here.
    #[serde(rename = "customerNumber")]
    pub customer_number: Option<String>,
    /// Address.
    pub email: String,
    /// Family name.
    #[serde(rename = "familyName")]
    pub family_name: String,
    /// Given name.
    #[serde(rename = "givenName")]
    pub given_name: String,
    /// Roles, with descriptions and ids.
    pub roles: Roles<RoleView>,
    /// Service groups (none yet).
    #[serde(rename = "serviceGroupIds")]
    pub service_group_ids: ServiceGroupIds,
    /// When the terms of service were accepted (never, here).
    #[serde(rename = "tosAcceptDate")]
    pub tos_accept_date: Option<i64>,
    /// Whether they were.
    #[serde(rename = "tosAccepted")]
    pub tos_accepted: bool,
    /// The unique name.
    #[serde(rename = "userName")]
    pub user_name: String,
    /// Added to the vCloud Air shape: whether an identity provider manages
    /// the user (it was provisioned over SCIM 2.0). Its names, email, roles
    /// and password then change only there; here it may be read and
    /// deactivated.
    #[serde(rename = "managedByIdentityProvider")]
    pub managed_by_identity_provider: bool,
}

impl User {
    /// The schemas every user carries.
    pub fn schemas() -> Vec<String> {
        vec![SCIM_CORE_1_0.to_owned()]
    }
}

/// `{"users": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// The users.
    pub users: Vec<User>,
}

/// A role as requests name it (`id` and `description` are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleName {
    /// The role's name.
    #[schema(max_length = 128)]
    pub name: Option<String>,
}

/// The body of a create (`POST`) or replace (`PUT`). Every element is
/// optional here so that the service can name the missing one.
///
/// Its limits are declared once, here: `validate` enforces them (the
/// service refuses a body past one with a 400 naming the element) and the
/// `schema` attribute beside each states the same bound in the OpenAPI
/// description (a black-box test checks that they agree).
#[derive(Clone, Default, PartialEq, Deserialize, ToSchema, Validate)]
pub struct UserRequest {
    /// Must include `urn:scim:schemas:core:1.0` when present.
    #[schema(max_items = 8)]
    #[validate(length(max = 8))]
    pub schemas: Option<Vec<String>>,
    /// `Active` or `Inactive`.
    #[schema(max_length = 16)]
    #[validate(length(max = 16))]
    pub state: Option<String>,
    /// Address.
    #[schema(max_length = 254)]
    #[validate(length(max = 254))]
    pub email: Option<String>,
    /// Family name.
    #[serde(rename = "familyName")]
    #[schema(max_length = 128)]
    #[validate(length(max = 128))]
    pub family_name: Option<String>,
    /// Given name.
    #[serde(rename = "givenName")]
    #[schema(max_length = 128)]
    #[validate(length(max = 128))]
    pub given_name: Option<String>,
    /// `{"roles": [{"name": ...}]}`: at most [`MAX_ROLES`] names of at
    /// most [`MAX_ROLE_NAME`] characters.
    #[validate(custom(function = "role_names_fit"))]
    pub roles: Option<Roles<RoleName>>,
    /// Must equal `email`.
    #[serde(rename = "userName")]
    #[schema(max_length = 254)]
    #[validate(length(max = 254))]
    pub user_name: Option<String>,
    /// Optional password (create only); never stored in the log.
    #[schema(min_length = 8, max_length = 256)]
    #[validate(length(min = 8, max = 256))]
    pub password: Option<String>,
    /// Immutable (PUT: must be unchanged when present).
    pub id: Option<Value>,
    /// Immutable.
    #[serde(rename = "companyId")]
    pub company_id: Option<Value>,
    /// Immutable.
    #[serde(rename = "tosAccepted")]
    pub tos_accepted: Option<Value>,
    /// Immutable.
    #[serde(rename = "tosAcceptDate")]
    pub tos_accept_date: Option<Value>,
    /// Immutable.
    pub meta: Option<Value>,
}

impl std::fmt::Debug for UserRequest {
    // Written by hand so that a password never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRequest")
            .field("state", &self.state)
            .field("email", &self.email)
            .field("familyName", &self.family_name)
            .field("givenName", &self.given_name)
            .field("roles", &self.roles)
            .field("userName", &self.user_name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_request_parses() {
        let body = r#"{
            "schemas": ["urn:scim:schemas:core:1.0"],
            "state": "Active",
            "email": "jill@example.com",
            "familyName": "test12345",
            "givenName": "Jill",
            "roles": { "roles": [ { "name": "End User" } ] },
            "userName": "jill@example.com"
        }"#;
        let request: UserRequest = serde_json::from_str(body).unwrap();
        assert_eq!(
            request.roles.unwrap().roles[0].name.as_deref(),
            Some("End User")
        );
        assert_eq!(request.user_name.as_deref(), Some("jill@example.com"));
    }

    #[test]
    fn a_request_never_shows_its_password_when_debugged() {
        let request: UserRequest = serde_json::from_str(r#"{"password": "hunter2"}"#).unwrap();
        let shown = format!("{request:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn a_role_serializes_with_description_name_and_id() {
        let json = serde_json::to_value(RoleView::from(Role::EndUser)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"description": "Allows creation and management of VMs.", "name": "End User", "id": "6"})
        );
    }
}
