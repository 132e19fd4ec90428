//! Reading a user or a group from a SCIM 2.0 request body (a POST, a PUT,
//! or the end result of a PATCH): attribute names in any case, booleans as
//! strings, extension attributes under their URN. Attributes the service
//! does not serve are ignored; read-only ones (`id`, `meta`, `groups`) too.

use std::fmt;

use iam_domain::Profile;
use serde_json::{Map, Value};

use super::patch::{USER_SCHEMA, get_ignoring_case, normalize};
use super::schema::{self, Attribute};
use super::{ENTERPRISE_USER, ScimError, ScimType};

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

/// A user as a request gives it: every attribute optional, so that the
/// service can say which one is missing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UserInput {
    /// `userName`.
    pub user_name: Option<String>,
    /// The primary email's value (or the only one's, or the first work one's).
    pub email: Option<String>,
    /// `name.givenName`.
    pub given_name: Option<String>,
    /// `name.familyName`.
    pub family_name: Option<String>,
    /// `active`.
    pub active: Option<bool>,
    /// `roles[].value`, when `roles` is given.
    pub roles: Option<Vec<String>>,
    /// `externalId` and the enterprise extension's attributes.
    pub profile: Profile,
    /// `password` (never logged: `Debug` redacts it).
    pub password: Option<String>,
}

impl fmt::Debug for UserInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserInput")
            .field("user_name", &self.user_name)
            .field("email", &self.email)
            .field("given_name", &self.given_name)
            .field("family_name", &self.family_name)
            .field("active", &self.active)
            .field("roles", &self.roles)
            .field("profile", &self.profile)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn text(object: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match get_ignoring_case(object, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        // Numbers are accepted as text (an employee number sent as 42).
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(invalid(format!("`{name}` must be a string."))),
    }
}

fn core<'a>(name: &str) -> &'a Attribute {
    schema::find(USER_SCHEMA.attributes, name).unwrap_or(&schema::USER_ATTRIBUTES[0])
}

/// Reads a user. A body that is not an object is `invalidSyntax`; an
/// attribute of the wrong type is `invalidValue`, naming it.
pub fn read_user(body: &Value) -> Result<UserInput, ScimError> {
    let object = body.as_object().ok_or_else(|| {
        ScimError::bad_request(ScimType::InvalidSyntax, "A user is a JSON object.")
    })?;
    let mut input = UserInput {
        user_name: text(object, "userName")?,
        password: text(object, "password")?,
        ..UserInput::default()
    };
    input.profile.external_id = text(object, "externalId")?;
    match get_ignoring_case(object, "name") {
        None | Some(Value::Null) => {}
        Some(Value::Object(name)) => {
            input.given_name = text(name, "givenName")?;
            input.family_name = text(name, "familyName")?;
        }
        Some(_) => {
            return Err(invalid(
                "`name` must be an object with givenName and familyName.",
            ));
        }
    }
    match get_ignoring_case(object, "active") {
        None | Some(Value::Null) => {}
        Some(value) => {
            input.active = Some(
                super::boolean(value).ok_or_else(|| invalid("`active` must be true or false."))?,
            );
        }
    }
    match get_ignoring_case(object, "emails").map(|v| normalize(v, core("emails"))) {
        None | Some(Value::Null) => {}
        Some(Value::Array(emails)) => input.email = primary_email(&emails)?,
        Some(_) => {
            return Err(invalid(
                "`emails` must be a list of {value, type, primary}.",
            ));
        }
    }
    match get_ignoring_case(object, "roles") {
        None | Some(Value::Null) => {}
        Some(Value::Array(roles)) => {
            let names = roles
                .iter()
                .map(|role| match role {
                    Value::String(name) => Ok(name.clone()),
                    Value::Object(role) => text(role, "value")?
                        .or(text(role, "display")?)
                        .ok_or_else(|| invalid("Every role needs a `value`: the role's name.")),
                    _ => Err(invalid(
                        "`roles` must be a list of {\"value\": \"<role name>\"}.",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            input.roles = Some(names);
        }
        Some(_) => {
            return Err(invalid(
                "`roles` must be a list of {\"value\": \"<role name>\"}.",
            ));
        }
    }
    match get_ignoring_case(object, ENTERPRISE_USER) {
        None | Some(Value::Null) => {}
        Some(Value::Object(enterprise)) => {
            input.profile.employee_number = text(enterprise, "employeeNumber")?;
            input.profile.department = text(enterprise, "department")?;
            let manager_attribute = schema::find(schema::ENTERPRISE_ATTRIBUTES, "manager")
                .unwrap_or(&schema::ENTERPRISE_ATTRIBUTES[0]);
            match get_ignoring_case(enterprise, "manager").map(|m| normalize(m, manager_attribute))
            {
                None | Some(Value::Null) => {}
                Some(Value::Object(manager)) => input.profile.manager = text(&manager, "value")?,
                Some(_) => {
                    return Err(invalid(
                        "`manager` must be {\"value\": \"<the manager's id>\"}.",
                    ));
                }
            }
        }
        Some(_) => return Err(invalid(format!("`{ENTERPRISE_USER}` must be an object."))),
    }
    Ok(input)
}

/// The address the service keeps: the primary one, or the only one, or the
/// first of type `work`, or the first.
fn primary_email(emails: &[Value]) -> Result<Option<String>, ScimError> {
    let value = |email: &Value| -> Result<Option<String>, ScimError> {
        match email {
            Value::Object(object) => text(object, "value"),
            Value::String(address) => Ok(Some(address.clone())),
            _ => Err(invalid("Every email must be {\"value\": \"<address>\"}.")),
        }
    };
    let is = |email: &Value, key: &str, expected: &Value| {
        email.get(key).is_some_and(|v| match (v, expected) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => super::boolean(a).is_some() && super::boolean(a) == super::boolean(b),
        })
    };
    let chosen = emails
        .iter()
        .find(|email| is(email, "primary", &Value::Bool(true)))
        .or_else(|| (emails.len() == 1).then(|| &emails[0]))
        .or_else(|| {
            emails
                .iter()
                .find(|e| is(e, "type", &Value::String("work".into())))
        })
        .or_else(|| emails.first());
    chosen.map(value).transpose().map(Option::flatten)
}

/// A group as a request gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInput {
    /// `displayName`.
    pub display_name: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `members[].value`, when `members` is given.
    pub members: Option<Vec<String>>,
}

/// Reads a group.
pub fn read_group(body: &Value) -> Result<GroupInput, ScimError> {
    let object = body.as_object().ok_or_else(|| {
        ScimError::bad_request(ScimType::InvalidSyntax, "A group is a JSON object.")
    })?;
    let members = match get_ignoring_case(object, "members") {
        None | Some(Value::Null) => None,
        Some(Value::Array(members)) => Some(
            members
                .iter()
                .map(|member| match member {
                    Value::Object(member) => text(member, "value")?
                        .ok_or_else(|| invalid("Every member needs a `value`: the user's id.")),
                    Value::String(id) => Ok(id.clone()),
                    _ => Err(invalid(
                        "`members` must be a list of {\"value\": \"<user id>\"}.",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(invalid(
                "`members` must be a list of {\"value\": \"<user id>\"}.",
            ));
        }
    };
    Ok(GroupInput {
        display_name: text(object, "displayName")?,
        external_id: text(object, "externalId")?,
        members,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_user_as_entra_id_sends_it() {
        let input = read_user(&json!({
            "schemas": [super::super::USER, ENTERPRISE_USER],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "UserName": "Test_User_ab6490ee@testuser.com",
            "active": "False",
            "emails": [{"primary": "true", "type": "work", "value": "Test_User_ab6490ee@testuser.com"}],
            "name": {"familyName": "familyName", "givenName": "givenName"},
            "displayName": "ignored",
            ENTERPRISE_USER: {"employeeNumber": 42, "department": "Sales", "manager": "26118915"},
        }))
        .unwrap();
        assert_eq!(
            input.user_name.as_deref(),
            Some("Test_User_ab6490ee@testuser.com")
        );
        assert_eq!(
            input.email.as_deref(),
            Some("Test_User_ab6490ee@testuser.com")
        );
        assert_eq!(input.active, Some(false));
        assert_eq!(input.profile.employee_number.as_deref(), Some("42"));
        assert_eq!(input.profile.manager.as_deref(), Some("26118915"));
        assert!(input.roles.is_none());
    }

    #[test]
    fn the_primary_email_wins_and_wrong_types_are_named() {
        let input = read_user(&json!({"emails": [
            {"value": "home@example.com", "type": "home"},
            {"value": "work@example.com", "primary": true},
        ]}))
        .unwrap();
        assert_eq!(input.email.as_deref(), Some("work@example.com"));
        let error = read_user(&json!({"active": "maybe"})).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
        assert!(error.detail.contains("active"));
        let input = read_user(&json!({"password": "s3cret!", "userName": "a@b.c"})).unwrap();
        assert!(!format!("{input:?}").contains("s3cret"));
    }

    #[test]
    fn a_group_with_members() {
        let group =
            read_group(&json!({"displayName": "Sales", "members": [{"value": "u1"}, "u2"]}))
                .unwrap();
        assert_eq!(group.members, Some(vec!["u1".to_owned(), "u2".to_owned()]));
    }
}
