//! The attributes served over SCIM 2.0, once: the `Schemas` discovery
//! document is generated from this table, and PATCH paths and the
//! `attributes` parameter resolve names against it (ignoring case, as SCIM
//! compares attribute names).

use serde_json::{Value, json};

use super::{ENTERPRISE_USER, GROUP, IAM_USER, USER};

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
    /// `complex`.
    Complex,
    /// `reference`.
    Reference,
    /// `dateTime`.
    DateTime,
}

/// Whether and how a client may change an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the service only.
    ReadOnly,
    /// Changed by clients.
    ReadWrite,
    /// Set by clients, never returned.
    WriteOnly,
    /// Set once, never changed (a sub-attribute of a value).
    Immutable,
}

/// When an attribute is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always, whatever `attributes` says.
    Always,
    /// Unless excluded.
    Default,
    /// Never.
    Never,
}

/// An attribute of a schema.
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    /// Its name, in its canonical case.
    pub name: &'static str,
    /// Its type.
    pub kind: Type,
    /// Whether it holds a list of values.
    pub multi_valued: bool,
    /// Whether a create must give it.
    pub required: bool,
    /// Whether case matters when comparing it.
    pub case_exact: bool,
    /// Who may change it.
    pub mutability: Mutability,
    /// When it is returned.
    pub returned: Returned,
    /// `none` or `server`.
    pub unique: bool,
    /// What it is.
    pub description: &'static str,
    /// Its sub-attributes (for `complex`).
    pub sub_attributes: &'static [Attribute],
    /// What it may refer to (for `reference`).
    pub reference_types: &'static [&'static str],
}

const fn attribute(name: &'static str, kind: Type, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        description,
        sub_attributes: &[],
        reference_types: &[],
    }
}

const fn read_only(mut attribute: Attribute) -> Attribute {
    attribute.mutability = Mutability::ReadOnly;
    attribute
}

const fn case_exact(mut attribute: Attribute) -> Attribute {
    attribute.case_exact = true;
    attribute
}

const fn multi(mut attribute: Attribute, sub_attributes: &'static [Attribute]) -> Attribute {
    attribute.multi_valued = true;
    attribute.sub_attributes = sub_attributes;
    attribute
}

const fn complex(mut attribute: Attribute, sub_attributes: &'static [Attribute]) -> Attribute {
    attribute.sub_attributes = sub_attributes;
    attribute
}

const fn reference(mut attribute: Attribute, types: &'static [&'static str]) -> Attribute {
    attribute.reference_types = types;
    attribute
}

const ID: Attribute = {
    let mut id = case_exact(read_only(attribute(
        "id",
        Type::String,
        "The service's id of the resource (a UUID).",
    )));
    id.returned = Returned::Always;
    id.unique = true;
    id
};

const EXTERNAL_ID: Attribute = case_exact(attribute(
    "externalId",
    Type::String,
    "The identity provider's id of the resource.",
));

const META: Attribute = read_only(complex(
    attribute(
        "meta",
        Type::Complex,
        "What the service records of the resource.",
    ),
    &[
        case_exact(read_only(attribute(
            "resourceType",
            Type::String,
            "`User` or `Group`.",
        ))),
        read_only(attribute("created", Type::DateTime, "When it was created.")),
        read_only(attribute(
            "lastModified",
            Type::DateTime,
            "When it last changed.",
        )),
        case_exact(read_only(reference(
            attribute("location", Type::Reference, "Its URL."),
            &["uri"],
        ))),
        case_exact(read_only(attribute(
            "version",
            Type::String,
            "Its version: the ETag that If-Match and If-None-Match compare.",
        ))),
    ],
));

/// The core user schema's attributes served.
pub static USER_ATTRIBUTES: &[Attribute] = &[
    ID,
    EXTERNAL_ID,
    {
        let mut user_name = attribute(
            "userName",
            Type::String,
            "The user's unique name: an email address, equal to the primary email when the user is created. \
             Unique across the service ignoring case; returned as given.",
        );
        user_name.required = true;
        user_name.unique = true;
        user_name
    },
    complex(
        attribute("name", Type::Complex, "The user's name."),
        &[
            attribute(
                "givenName",
                Type::String,
                "Given name (required by this service).",
            ),
            attribute(
                "familyName",
                Type::String,
                "Family name (required by this service).",
            ),
        ],
    ),
    multi(
        attribute(
            "emails",
            Type::Complex,
            "The user's address. The service keeps one: the primary one (or the only one).",
        ),
        &[
            attribute("value", Type::String, "The address."),
            attribute("type", Type::String, "`work`."),
            attribute(
                "primary",
                Type::Boolean,
                "Whether it is the primary address.",
            ),
        ],
    ),
    attribute(
        "active",
        Type::Boolean,
        "Whether the user may sign in and use its API tokens (the state `Active`).",
    ),
    {
        let mut password = attribute(
            "password",
            Type::String,
            "Set on create or replace; kept only as an Argon2id hash and never returned.",
        );
        password.mutability = Mutability::WriteOnly;
        password.returned = Returned::Never;
        password.case_exact = true;
        password
    },
    multi(
        attribute(
            "roles",
            Type::Complex,
            "The user's roles in its organization, by name (`End User`, `Account Administrator`, ...). \
             Only Network Administrator and Virtual Infrastructure Administrator combine. Without roles a \
             tenant user holds End User.",
        ),
        &[
            case_exact(attribute("value", Type::String, "The role's name.")),
            read_only(attribute("display", Type::String, "The role's name.")),
            read_only(attribute(
                "primary",
                Type::Boolean,
                "Whether it is the first role.",
            )),
        ],
    ),
    read_only(multi(
        attribute(
            "groups",
            Type::Complex,
            "The groups the user is a member of: plain groups and the built-in role groups. Change \
             membership through Groups.",
        ),
        &[
            case_exact(read_only(attribute(
                "value",
                Type::String,
                "The group's id.",
            ))),
            case_exact(read_only(reference(
                attribute("$ref", Type::Reference, "The group's URL."),
                &["Group"],
            ))),
            read_only(attribute(
                "display",
                Type::String,
                "The group's displayName.",
            )),
            read_only(attribute("type", Type::String, "`direct`.")),
        ],
    )),
    META,
];

/// The enterprise user extension's attributes served.
pub static ENTERPRISE_ATTRIBUTES: &[Attribute] = &[
    attribute("employeeNumber", Type::String, "The employee number."),
    attribute("department", Type::String, "The department."),
    complex(
        attribute(
            "manager",
            Type::Complex,
            "The user's manager (its id; a plain id string is accepted too).",
        ),
        &[
            case_exact(attribute("value", Type::String, "The manager's id.")),
            case_exact(read_only(reference(
                attribute("$ref", Type::Reference, "The manager's URL."),
                &["User"],
            ))),
            read_only(attribute(
                "displayName",
                Type::String,
                "The manager's userName.",
            )),
        ],
    ),
];

/// This service's user extension: what it adds.
pub static IAM_ATTRIBUTES: &[Attribute] = &[read_only(attribute(
    "managedByIdentityProvider",
    Type::Boolean,
    "Whether an identity provider manages the user (it was provisioned over SCIM 2.0): its names, \
     email, roles and password then change only over SCIM 2.0.",
))];

/// The group schema's attributes served.
pub static GROUP_ATTRIBUTES: &[Attribute] = &[
    ID,
    EXTERNAL_ID,
    {
        let mut name = attribute(
            "displayName",
            Type::String,
            "The group's name, unique in the organization ignoring case. The built-in role groups are named \
             after the roles and cannot be renamed or deleted.",
        );
        name.required = true;
        name.unique = true;
        name
    },
    multi(
        attribute(
            "members",
            Type::Complex,
            "The group's members: users of its organization. Membership of a role group is role assignment.",
        ),
        &[
            case_exact(Attribute {
                mutability: Mutability::Immutable,
                ..attribute("value", Type::String, "The member's id.")
            }),
            case_exact(read_only(reference(
                attribute("$ref", Type::Reference, "The member's URL."),
                &["User"],
            ))),
            read_only(attribute("display", Type::String, "The member's userName.")),
            read_only(attribute("type", Type::String, "`User`.")),
        ],
    ),
    META,
];

/// The attributes of the schema `urn`.
pub fn attributes_of(urn: &str) -> Option<&'static [Attribute]> {
    Some(match urn {
        _ if urn.eq_ignore_ascii_case(USER) => USER_ATTRIBUTES,
        _ if urn.eq_ignore_ascii_case(ENTERPRISE_USER) => ENTERPRISE_ATTRIBUTES,
        _ if urn.eq_ignore_ascii_case(IAM_USER) => IAM_ATTRIBUTES,
        _ if urn.eq_ignore_ascii_case(GROUP) => GROUP_ATTRIBUTES,
        _ => return None,
    })
}

/// The attribute named `name` (ignoring case) among `attributes`.
pub fn find(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name))
}

fn describe(attribute: &Attribute) -> Value {
    let mut value = json!({
        "name": attribute.name,
        "type": match attribute.kind {
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Complex => "complex",
            Type::Reference => "reference",
            Type::DateTime => "dateTime",
        },
        "multiValued": attribute.multi_valued,
        "description": attribute.description,
        "required": attribute.required,
        "caseExact": attribute.case_exact,
        "mutability": match attribute.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::WriteOnly => "writeOnly",
            Mutability::Immutable => "immutable",
        },
        "returned": match attribute.returned {
            Returned::Always => "always",
            Returned::Default => "default",
            Returned::Never => "never",
        },
        "uniqueness": if attribute.unique { "server" } else { "none" },
    });
    if !attribute.sub_attributes.is_empty() {
        value["subAttributes"] = attribute.sub_attributes.iter().map(describe).collect();
    }
    if !attribute.reference_types.is_empty() {
        value["referenceTypes"] = json!(attribute.reference_types);
    }
    value
}

/// The `Schemas` resources, each with its `meta.location` under `base`
/// (`https://host/scim/v2`).
pub fn schemas(base: &str) -> Vec<Value> {
    [
        (USER, "User", "A user of an organization.", USER_ATTRIBUTES),
        (
            ENTERPRISE_USER,
            "EnterpriseUser",
            "The enterprise user extension: the attributes served.",
            ENTERPRISE_ATTRIBUTES,
        ),
        (
            IAM_USER,
            "IamUser",
            "What this service adds to a user.",
            IAM_ATTRIBUTES,
        ),
        (
            GROUP,
            "Group",
            "A group of users of an organization.",
            GROUP_ATTRIBUTES,
        ),
    ]
    .into_iter()
    .map(|(id, name, description, attributes)| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes
                .iter()
                // `id` and `meta` are common attributes, not the schema's.
                .filter(|a| a.name != "id" && a.name != "meta")
                .map(describe)
                .collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
        })
    })
    .collect()
}

/// The `ResourceTypes` resources.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A user of the organization of the API token.",
            "schema": USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER, "required": false},
                {"schema": IAM_USER, "required": false},
            ],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A plain group, or a built-in role group whose membership is role assignment.",
            "schema": GROUP,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}
