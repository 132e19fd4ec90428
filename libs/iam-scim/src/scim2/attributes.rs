//! The `attributes` and `excludedAttributes` parameters (RFC 7644 §3.9),
//! applied to a resource's JSON: `id` (returned always) and `schemas` stay.

use serde_json::{Map, Value};

use super::patch::ResourceSchema;
use super::schema;
use crate::filter::parse_patch_path;

/// Which attributes to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only these (`attributes`), as (schema URN or `""`, name, sub-attribute).
    pub only: Option<Vec<(String, String, Option<String>)>>,
    /// All but these (`excludedAttributes`).
    pub excluded: Vec<(String, String, Option<String>)>,
}

fn names(list: &str, resource: &ResourceSchema) -> Vec<(String, String, Option<String>)> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .filter_map(|name| {
            // The URN of an extension alone names all of it.
            if let Some((urn, _)) = resource
                .extensions
                .iter()
                .find(|(urn, _)| urn.eq_ignore_ascii_case(name))
            {
                return Some(((*urn).to_owned(), String::new(), None));
            }
            let path = parse_patch_path(name).ok()?.path;
            let (urn, attributes) = match &path.schema {
                Some(urn) if urn.eq_ignore_ascii_case(resource.core) => ("", resource.attributes),
                Some(urn) => *resource
                    .extensions
                    .iter()
                    .find(|(u, _)| u.eq_ignore_ascii_case(urn))?,
                None if schema::find(resource.attributes, &path.attribute).is_some() => {
                    ("", resource.attributes)
                }
                None => *resource
                    .extensions
                    .iter()
                    .find(|(_, attributes)| schema::find(attributes, &path.attribute).is_some())?,
            };
            let attribute = schema::find(attributes, &path.attribute)?;
            let sub = path
                .sub_attribute
                .and_then(|sub| schema::find(attribute.sub_attributes, &sub))
                .map(|sub| sub.name.to_owned());
            Some((urn.to_owned(), attribute.name.to_owned(), sub))
        })
        .collect()
}

impl Selection {
    /// The selection the two parameters make (names the schema does not
    /// know select nothing).
    pub fn new(
        attributes: Option<&str>,
        excluded: Option<&str>,
        resource: &ResourceSchema,
    ) -> Self {
        Self {
            only: attributes
                .filter(|list| !list.trim().is_empty())
                .map(|list| names(list, resource)),
            excluded: excluded
                .map(|list| names(list, resource))
                .unwrap_or_default(),
        }
    }

    /// Whether the answer leaves out `name` (to skip reading it at all).
    pub fn leaves_out(&self, name: &str) -> bool {
        let named = |names: &[(String, String, Option<String>)]| {
            names
                .iter()
                .any(|(urn, n, sub)| urn.is_empty() && n == name && sub.is_none())
        };
        match &self.only {
            Some(only) => !only.iter().any(|(urn, n, _)| urn.is_empty() && n == name),
            None => named(&self.excluded),
        }
    }

    /// Applies the selection to `resource`.
    pub fn apply(&self, resource: &mut Value) {
        let Value::Object(object) = resource else {
            return;
        };
        for (urn, name, sub) in &self.excluded {
            if name == "id" {
                continue;
            }
            remove(object, urn, name, sub.as_deref());
        }
        let Some(only) = &self.only else {
            return;
        };
        let mut kept = Map::new();
        for key in ["schemas", "id"] {
            if let Some(value) = object.get(key) {
                kept.insert(key.to_owned(), value.clone());
            }
        }
        for (urn, name, sub) in only {
            let source = if urn.is_empty() {
                Some(&*object)
            } else {
                object.get(urn.as_str()).and_then(Value::as_object)
            };
            let Some(source) = source else { continue };
            let target = if urn.is_empty() {
                &mut kept
            } else {
                match kept
                    .entry(urn.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                {
                    Value::Object(inner) => inner,
                    _ => continue,
                }
            };
            if name.is_empty() {
                target.extend(source.iter().map(|(k, v)| (k.clone(), v.clone())));
                continue;
            }
            let Some(value) = source.get(name.as_str()) else {
                continue;
            };
            match sub {
                None => {
                    target.insert(name.clone(), value.clone());
                }
                Some(sub) => {
                    let picked = pick(value, sub);
                    match (target.get_mut(name.as_str()), picked) {
                        (Some(Value::Object(existing)), Value::Object(more)) => {
                            existing.extend(more)
                        }
                        (_, picked) => {
                            target.insert(name.clone(), picked);
                        }
                    }
                }
            }
        }
        *object = kept;
    }
}

/// Only `sub` of a complex value (or of each value of a list).
fn pick(value: &Value, sub: &str) -> Value {
    match value {
        Value::Array(values) => Value::Array(values.iter().map(|v| pick(v, sub)).collect()),
        Value::Object(object) => {
            let mut picked = Map::new();
            if let Some(inner) = object.get(sub) {
                picked.insert(sub.to_owned(), inner.clone());
            }
            Value::Object(picked)
        }
        other => other.clone(),
    }
}

fn remove(object: &mut Map<String, Value>, urn: &str, name: &str, sub: Option<&str>) {
    let container = if urn.is_empty() {
        object
    } else if name.is_empty() {
        object.remove(urn);
        return;
    } else {
        match object.get_mut(urn) {
            Some(Value::Object(inner)) => inner,
            _ => return,
        }
    };
    match sub {
        None => {
            container.remove(name);
        }
        Some(sub) => match container.get_mut(name) {
            Some(Value::Object(inner)) => {
                inner.remove(sub);
            }
            Some(Value::Array(values)) => {
                for value in values.iter_mut().filter_map(Value::as_object_mut) {
                    value.remove(sub);
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim2::patch::{GROUP_SCHEMA, USER_SCHEMA};

    #[test]
    fn attributes_keep_id_and_what_is_named_and_excluded_drops() {
        let user = json!({
            "schemas": ["s"], "id": "1", "userName": "a@b.c",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@b.c", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "employeeNumber": "7"},
        });
        let mut only = user.clone();
        Selection::new(
            Some("USERNAME,name.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None,
            &USER_SCHEMA,
        )
        .apply(&mut only);
        assert_eq!(
            only,
            json!({"schemas": ["s"], "id": "1", "userName": "a@b.c", "name": {"givenName": "A"},
                   "emails": [{"value": "a@b.c"}],
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D"}})
        );
        let mut group = json!({"id": "g", "displayName": "G", "members": [{"value": "1"}]});
        let selection = Selection::new(None, Some("members"), &GROUP_SCHEMA);
        assert!(selection.leaves_out("members"));
        selection.apply(&mut group);
        assert_eq!(group, json!({"id": "g", "displayName": "G"}));
    }
}
