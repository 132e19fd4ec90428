//! PATCH (RFC 7644 §3.5.2) applied to a resource's JSON representation.
//!
//! The service reads the resource as it would answer it, applies every
//! operation here, and then reads the end result exactly as it reads a PUT
//! body: so a PATCH is validated on its end result, never operation by
//! operation (one PATCH may replace `userName` and the primary email
//! together), and one that would leave the resource invalid changes nothing.
//!
//! It accepts what identity providers send: `op` in any case, attribute
//! names in any case and schema-qualified, pathless operations whose value
//! is an object (with dotted names inside it: `"name.givenName"`), value
//! paths (`emails[type eq "work"].value`, `members[value eq "…"]`), and a
//! `remove` of `members` with a list of values. Attributes the service does
//! not serve are kept in the document and then ignored, as a PUT ignores them.

use serde_json::{Map, Value};

use super::schema::{self, Attribute, Type};
use super::{ScimError, ScimType};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, parse_patch_path};

/// A PATCH operation's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `add`.
    Add,
    /// `replace`.
    Replace,
    /// `remove`.
    Remove,
}

/// One operation of a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// What it does.
    pub op: Op,
    /// Where (none: the value is an object of attributes).
    pub path: Option<String>,
    /// With what.
    pub value: Option<Value>,
}

/// The schemas of a resource type: its core attributes at the top level of
/// its JSON, and each extension's in an object under the extension's URN.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSchema {
    /// The core schema's URN.
    pub core: &'static str,
    /// The core attributes.
    pub attributes: &'static [Attribute],
    /// The extensions: URN and attributes.
    pub extensions: &'static [(&'static str, &'static [Attribute])],
}

/// Users: the core schema, the enterprise extension and this service's.
pub const USER_SCHEMA: ResourceSchema = ResourceSchema {
    core: super::USER,
    attributes: schema::USER_ATTRIBUTES,
    extensions: &[
        (super::ENTERPRISE_USER, schema::ENTERPRISE_ATTRIBUTES),
        (super::IAM_USER, schema::IAM_ATTRIBUTES),
    ],
};

/// Groups.
pub const GROUP_SCHEMA: ResourceSchema = ResourceSchema {
    core: super::GROUP,
    attributes: schema::GROUP_ATTRIBUTES,
    extensions: &[],
};

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidSyntax, detail)
}

fn invalid_value(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::InvalidValue, detail)
}

/// Reads a PATCH request body: `Operations`, each with an `op` in any case,
/// an optional `path` and a `value`.
pub fn parse(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let object = body
        .as_object()
        .ok_or_else(|| syntax("A PATCH body is a JSON object with `schemas` and `Operations`."))?;
    let operations = get_ignoring_case(object, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| syntax("A PATCH body needs `Operations`: a list of {op, path, value}."))?;
    operations
        .iter()
        .enumerate()
        .map(|(index, operation)| {
            let at = || format!("Operations[{index}]");
            let operation = operation
                .as_object()
                .ok_or_else(|| syntax(format!("{} is not an object.", at())))?;
            let op = get_ignoring_case(operation, "op")
                .and_then(Value::as_str)
                .ok_or_else(|| syntax(format!("{} has no `op`.", at())))?;
            let op = match op.trim().to_ascii_lowercase().as_str() {
                "add" => Op::Add,
                "replace" => Op::Replace,
                "remove" => Op::Remove,
                other => {
                    return Err(syntax(format!(
                        "{}: `{other}` is not a PATCH op; use add, replace or remove.",
                        at()
                    )));
                }
            };
            let path = match get_ignoring_case(operation, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(path)) if path.trim().is_empty() => None,
                Some(Value::String(path)) => Some(path.trim().to_owned()),
                Some(_) => return Err(syntax(format!("{}: `path` is not a string.", at()))),
            };
            let value = get_ignoring_case(operation, "value").cloned();
            if op != Op::Remove && value.is_none() {
                return Err(invalid_value(format!("{}: {op:?} needs a `value`.", at())));
            }
            Ok(Operation { op, path, value })
        })
        .collect()
}

/// Applies `operations` in order to `resource` (the resource's JSON as the
/// service answers it).
pub fn apply(
    resource: &mut Value,
    operations: &[Operation],
    schema: &ResourceSchema,
) -> Result<(), ScimError> {
    for operation in operations {
        apply_one(resource, operation, schema)?;
    }
    Ok(())
}

fn apply_one(
    resource: &mut Value,
    operation: &Operation,
    schema: &ResourceSchema,
) -> Result<(), ScimError> {
    let Some(path) = &operation.path else {
        if operation.op == Op::Remove {
            return Err(ScimError::bad_request(
                ScimType::NoTarget,
                "A remove needs a `path` naming what to remove.",
            ));
        }
        let Some(Value::Object(values)) = &operation.value else {
            return Err(invalid_value(
                "An add or replace without `path` needs a `value` that is an object of attributes.",
            ));
        };
        for (name, value) in values {
            // An extension's URN names an object of its attributes.
            if let Some((urn, attributes)) = extension(schema, name) {
                let Value::Object(inner) = value else {
                    return Err(invalid_value(format!("`{name}` must be an object.")));
                };
                for (inner_name, inner_value) in inner {
                    let path = parse_path(&format!("{urn}:{inner_name}"))?;
                    set(
                        resource,
                        schema,
                        (urn, attributes),
                        &path,
                        operation.op,
                        inner_value,
                    )?;
                }
                continue;
            }
            // Okta and Entra send `id` and `schemas` with pathless values:
            // read-only, and the end result is read as a PUT is (ignoring them).
            if name.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let path = parse_path(name)?;
            let target = container_of(schema, &path)?;
            set(resource, schema, target, &path, operation.op, value)?;
        }
        return Ok(());
    };
    if let Some((urn, attributes)) = extension(schema, path) {
        // The extension itself: replace or add its attributes.
        let Some(Value::Object(inner)) = &operation.value else {
            if operation.op == Op::Remove {
                if let Some(object) = resource.as_object_mut() {
                    object.retain(|key, _| !key.eq_ignore_ascii_case(urn));
                }
                return Ok(());
            }
            return Err(invalid_value(format!("`{path}` must be given an object.")));
        };
        for (inner_name, inner_value) in inner {
            let path = parse_path(&format!("{urn}:{inner_name}"))?;
            set(
                resource,
                schema,
                (urn, attributes),
                &path,
                operation.op,
                inner_value,
            )?;
        }
        return Ok(());
    }
    let parsed = parse_patch_path(path).map_err(|error| {
        ScimError::bad_request(
            ScimType::InvalidPath,
            format!("`{path}` is not a valid path: {error}."),
        )
    })?;
    let target = container_of(schema, &parsed.path)?;
    let attribute = schema::find(target.1, &parsed.path.attribute);
    if attribute.is_some_and(|a| a.mutability == schema::Mutability::ReadOnly) {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("`{path}` is read-only and cannot be changed."),
        ));
    }
    let empty = Value::Null;
    let value = operation.value.as_ref().unwrap_or(&empty);
    match (parsed.filter, attribute) {
        (None, _) => set(resource, schema, target, &parsed.path, operation.op, value),
        (Some(filter), Some(attribute)) if attribute.multi_valued => {
            let container = container_mut(resource, target.0, schema);
            let values = container
                .entry(attribute.name.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !values.is_array() {
                *values = Value::Array(Vec::new());
            }
            let Value::Array(values) = values else {
                return Ok(());
            };
            filtered(
                values,
                attribute,
                &filter,
                parsed.sub_attribute.as_deref(),
                operation.op,
                value,
                path,
            )
        }
        (Some(_), Some(_)) => Err(ScimError::bad_request(
            ScimType::InvalidPath,
            format!("`{path}`: only a multi-valued attribute can be selected with a filter."),
        )),
        // An attribute the service does not serve: nothing to change.
        (Some(_), None) => Ok(()),
    }
}

fn parse_path(text: &str) -> Result<AttrPath, ScimError> {
    let parsed = parse_patch_path(text).map_err(|error| {
        ScimError::bad_request(
            ScimType::InvalidPath,
            format!("`{text}` is not a valid attribute name: {error}."),
        )
    })?;
    if parsed.filter.is_some() {
        return Err(ScimError::bad_request(
            ScimType::InvalidPath,
            format!("`{text}`: a value filter is not allowed inside a value."),
        ));
    }
    Ok(parsed.path)
}

fn extension(schema: &ResourceSchema, name: &str) -> Option<(&'static str, &'static [Attribute])> {
    schema
        .extensions
        .iter()
        .find(|(urn, _)| urn.eq_ignore_ascii_case(name.trim()))
        .copied()
}

/// Where `path`'s attribute lives: the core (`""`) or an extension, with
/// that schema's attributes. An unqualified name the core lacks is looked
/// up in the extensions.
fn container_of(
    schema: &ResourceSchema,
    path: &AttrPath,
) -> Result<(&'static str, &'static [Attribute]), ScimError> {
    match &path.schema {
        Some(urn) if urn.eq_ignore_ascii_case(schema.core) => Ok(("", schema.attributes)),
        Some(urn) => extension(schema, urn).ok_or_else(|| {
            ScimError::bad_request(
                ScimType::InvalidPath,
                format!("`{urn}` is not a schema of this resource."),
            )
        }),
        None => {
            if schema::find(schema.attributes, &path.attribute).is_some() {
                return Ok(("", schema.attributes));
            }
            Ok(schema
                .extensions
                .iter()
                .find(|(_, attributes)| schema::find(attributes, &path.attribute).is_some())
                .copied()
                .unwrap_or(("", schema.attributes)))
        }
    }
}

/// The object that holds a schema's attributes: the resource itself for
/// the core (`""`), else the extension's object (created when absent).
fn container_mut<'a>(
    resource: &'a mut Value,
    urn: &str,
    schema: &ResourceSchema,
) -> &'a mut Map<String, Value> {
    if !resource.is_object() {
        *resource = Value::Object(Map::new());
    }
    let Value::Object(object) = resource else {
        unreachable!("made an object above")
    };
    if urn.is_empty() {
        return object;
    }
    // A client's spelling of the URN is replaced by the canonical one.
    let existing = object
        .keys()
        .find(|key| key.eq_ignore_ascii_case(urn) && key.as_str() != urn)
        .cloned();
    if let Some(key) = existing
        && let Some(value) = object.remove(&key)
    {
        object.insert(urn.to_owned(), value);
    }
    let _ = schema;
    let slot = object
        .entry(urn.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Value::Object(inner) = slot else {
        unreachable!("made an object above")
    };
    inner
}

/// Sets, adds to or removes the attribute `path` (maybe `attr.sub`) of the
/// schema `target` in `resource`.
fn set(
    resource: &mut Value,
    schema: &ResourceSchema,
    target: (&'static str, &'static [Attribute]),
    path: &AttrPath,
    op: Op,
    value: &Value,
) -> Result<(), ScimError> {
    let Some(attribute) = schema::find(target.1, &path.attribute) else {
        // Not served: keep it in the document, where the end result ignores it.
        let container = container_mut(resource, target.0, schema);
        match op {
            Op::Remove => {
                container.remove(&path.attribute);
            }
            Op::Add | Op::Replace => {
                container.insert(path.attribute.clone(), value.clone());
            }
        }
        return Ok(());
    };
    if attribute.mutability == schema::Mutability::ReadOnly {
        // Read-only values sent back unchanged (Okta sends `id`) are ignored.
        let container = container_mut(resource, target.0, schema);
        let current = get_ignoring_case(container, attribute.name);
        if op != Op::Remove && path.sub_attribute.is_none() && current == Some(value) {
            return Ok(());
        }
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("`{}` is read-only and cannot be changed.", attribute.name),
        ));
    }
    let container = container_mut(resource, target.0, schema);
    remove_other_spellings(container, attribute.name);
    if let Some(sub) = &path.sub_attribute {
        let Some(sub_attribute) = schema::find(attribute.sub_attributes, sub) else {
            return Ok(());
        };
        if attribute.multi_valued {
            // `emails.value`: the sub-attribute of every value.
            let Some(Value::Array(values)) = container.get_mut(attribute.name) else {
                if op == Op::Remove {
                    return Ok(());
                }
                let mut element = Map::new();
                element.insert(
                    sub_attribute.name.to_owned(),
                    normalize(value, sub_attribute),
                );
                container.insert(
                    attribute.name.to_owned(),
                    Value::Array(vec![Value::Object(element)]),
                );
                return Ok(());
            };
            for element in values.iter_mut().filter_map(Value::as_object_mut) {
                remove_other_spellings(element, sub_attribute.name);
                match op {
                    Op::Remove => {
                        element.remove(sub_attribute.name);
                    }
                    Op::Add | Op::Replace => {
                        element.insert(
                            sub_attribute.name.to_owned(),
                            normalize(value, sub_attribute),
                        );
                    }
                }
            }
            return Ok(());
        }
        let slot = container
            .entry(attribute.name.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(object) = slot else {
            return Ok(());
        };
        remove_other_spellings(object, sub_attribute.name);
        match op {
            Op::Remove => {
                object.remove(sub_attribute.name);
            }
            Op::Add | Op::Replace => {
                object.insert(
                    sub_attribute.name.to_owned(),
                    normalize(value, sub_attribute),
                );
            }
        }
        return Ok(());
    }
    match op {
        Op::Remove if attribute.multi_valued && !value.is_null() => {
            // `remove members` with a list of values: those values go.
            let doomed: Vec<Value> = as_list(value)
                .iter()
                .map(|v| normalize(v, attribute))
                .collect();
            if let Some(Value::Array(values)) = container.get_mut(attribute.name) {
                values.retain(|element| !doomed.iter().any(|d| same_value(element, d)));
            }
        }
        Op::Remove => {
            container.remove(attribute.name);
        }
        Op::Add if attribute.multi_valued => {
            let added: Vec<Value> = as_list(value)
                .iter()
                .map(|v| normalize(v, attribute))
                .collect();
            let slot = container
                .entry(attribute.name.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(values) = slot {
                for value in added {
                    if is_primary(&value) {
                        values.iter_mut().for_each(clear_primary);
                    }
                    match values
                        .iter_mut()
                        .find(|existing| same_value(existing, &value))
                    {
                        Some(existing) => merge(existing, value),
                        None => values.push(value),
                    }
                }
            }
        }
        Op::Replace if attribute.multi_valued => {
            let values = as_list(value)
                .iter()
                .map(|v| normalize(v, attribute))
                .collect();
            container.insert(attribute.name.to_owned(), Value::Array(values));
        }
        Op::Add | Op::Replace if attribute.kind == Type::Complex => {
            // Sub-attributes given replace theirs; the others stay.
            let value = normalize(value, attribute);
            match container.get_mut(attribute.name) {
                Some(existing) if existing.is_object() && value.is_object() => {
                    merge(existing, value)
                }
                _ => {
                    container.insert(attribute.name.to_owned(), value);
                }
            }
        }
        Op::Add | Op::Replace => {
            container.insert(attribute.name.to_owned(), normalize(value, attribute));
        }
    }
    Ok(())
}

/// An operation on the values of `attribute` that match `filter`.
fn filtered(
    values: &mut Vec<Value>,
    attribute: &'static Attribute,
    filter: &Filter,
    sub: Option<&str>,
    op: Op,
    value: &Value,
    path: &str,
) -> Result<(), ScimError> {
    let sub_attribute = match sub {
        Some(sub) => Some(schema::find(attribute.sub_attributes, sub).ok_or_else(|| {
            ScimError::bad_request(
                ScimType::InvalidPath,
                format!(
                    "`{path}`: `{sub}` is not a sub-attribute of `{}`.",
                    attribute.name
                ),
            )
        })?),
        None => None,
    };
    let matched: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, element)| matches(element, filter))
        .map(|(index, _)| index)
        .collect();
    match op {
        Op::Remove => {
            match sub_attribute {
                None => {
                    let mut index = 0;
                    values.retain(|_| {
                        let keep = !matched.contains(&index);
                        index += 1;
                        keep
                    });
                }
                Some(sub_attribute) => {
                    for index in matched {
                        if let Some(element) = values[index].as_object_mut() {
                            remove_other_spellings(element, sub_attribute.name);
                            element.remove(sub_attribute.name);
                        }
                    }
                }
            }
            Ok(())
        }
        Op::Add | Op::Replace if matched.is_empty() => {
            // `emails[type eq "work"].value` on a user without a work
            // address creates it, from the filter's equalities.
            let mut element = Map::new();
            if !equalities(filter, &mut element, attribute) {
                return Err(ScimError::bad_request(
                    ScimType::NoTarget,
                    format!(
                        "`{path}` matches no value, and its filter does not say what to create."
                    ),
                ));
            }
            match sub_attribute {
                Some(sub_attribute) => {
                    element.insert(
                        sub_attribute.name.to_owned(),
                        normalize(value, sub_attribute),
                    );
                }
                None => {
                    if let Value::Object(given) = normalize(value, attribute) {
                        element.extend(given);
                    }
                }
            }
            values.push(Value::Object(element));
            Ok(())
        }
        Op::Add | Op::Replace => {
            for index in matched {
                match sub_attribute {
                    Some(sub_attribute) => {
                        if let Some(element) = values[index].as_object_mut() {
                            remove_other_spellings(element, sub_attribute.name);
                            element.insert(
                                sub_attribute.name.to_owned(),
                                normalize(value, sub_attribute),
                            );
                        }
                    }
                    None => {
                        let value = normalize(value, attribute);
                        if op == Op::Replace {
                            values[index] = value;
                        } else {
                            merge(&mut values[index], value);
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

/// Collects `sub eq "x"` conjuncts of `filter` into `element`; false when
/// the filter is anything else.
fn equalities(filter: &Filter, element: &mut Map<String, Value>, attribute: &Attribute) -> bool {
    match filter {
        Filter::And(left, right) => {
            equalities(left, element, attribute) && equalities(right, element, attribute)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub_attribute.is_none() => {
            let name = schema::find(attribute.sub_attributes, &path.attribute)
                .map_or(path.attribute.as_str(), |sub| sub.name);
            element.insert(name.to_owned(), literal(value));
            true
        }
        _ => false,
    }
}

fn literal(value: &CompValue) -> Value {
    match value {
        CompValue::Null => Value::Null,
        CompValue::Bool(b) => Value::Bool(*b),
        CompValue::Number(n) => Value::Number(n.clone()),
        CompValue::String(s) => Value::String(s.clone()),
    }
}

/// Whether a value of a multi-valued attribute matches a value filter
/// (whose paths name its sub-attributes). Text compares ignoring case.
pub fn matches(element: &Value, filter: &Filter) -> bool {
    match filter {
        Filter::And(left, right) => matches(element, left) && matches(element, right),
        Filter::Or(left, right) => matches(element, left) || matches(element, right),
        Filter::Not(inner) => !matches(element, inner),
        Filter::Present(path) => sub_value(element, path)
            .is_some_and(|v| !v.is_null() && *v != Value::String(String::new())),
        Filter::Compare { path, op, value } => {
            let actual = sub_value(element, path);
            compare(actual, *op, value)
        }
        Filter::ValuePath { .. } => false,
    }
}

fn sub_value<'a>(element: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let object = element.as_object()?;
    // `value eq "x"` names the sub-attribute; `members.value` inside a
    // filter names it too.
    let name = path.sub_attribute.as_deref().unwrap_or(&path.attribute);
    get_ignoring_case(object, name)
}

fn compare(actual: Option<&Value>, op: CompareOp, expected: &CompValue) -> bool {
    let actual = actual.unwrap_or(&Value::Null);
    match (actual, expected) {
        (Value::Null, CompValue::Null) => op == CompareOp::Eq,
        (_, CompValue::Null) => op == CompareOp::Ne,
        (actual, CompValue::Bool(b)) => match super::boolean(actual) {
            Some(a) => match op {
                CompareOp::Eq => a == *b,
                CompareOp::Ne => a != *b,
                _ => false,
            },
            None => op == CompareOp::Ne,
        },
        (Value::String(a), CompValue::String(e)) => {
            let (a, e) = (a.to_lowercase(), e.to_lowercase());
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            }
        }
        (Value::Number(a), CompValue::Number(e)) => {
            let (Some(a), Some(e)) = (a.as_f64(), e.as_f64()) else {
                return false;
            };
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
                _ => false,
            }
        }
        _ => op == CompareOp::Ne,
    }
}

/// `value` as `attribute` holds it: object keys in their canonical case
/// (`Value` → `value`), booleans from strings (`"True"`), and a plain
/// string given for a complex attribute taken as its `value` (Entra ID
/// sends `manager` as an id).
pub fn normalize(value: &Value, attribute: &Attribute) -> Value {
    match value {
        Value::Array(values) if attribute.multi_valued => {
            Value::Array(values.iter().map(|v| normalize_one(v, attribute)).collect())
        }
        value => normalize_one(value, attribute),
    }
}

fn normalize_one(value: &Value, attribute: &Attribute) -> Value {
    match (attribute.kind, value) {
        (Type::Boolean, value) => super::boolean(value).map_or_else(|| value.clone(), Value::Bool),
        (Type::Complex, Value::Object(object)) => Value::Object(
            object
                .iter()
                .map(
                    |(key, inner)| match schema::find(attribute.sub_attributes, key) {
                        Some(sub) => (sub.name.to_owned(), normalize_one(inner, sub)),
                        None => (key.clone(), inner.clone()),
                    },
                )
                .collect(),
        ),
        (Type::Complex, Value::String(id))
            if schema::find(attribute.sub_attributes, "value").is_some() =>
        {
            let mut object = Map::new();
            object.insert("value".to_owned(), Value::String(id.clone()));
            Value::Object(object)
        }
        (_, value) => value.clone(),
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(values) => values.clone(),
        Value::Null => Vec::new(),
        value => vec![value.clone()],
    }
}

/// Two values of a multi-valued attribute are the same value when their
/// `value`s are equal (ignoring case), or when they are equal whole.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

fn is_primary(value: &Value) -> bool {
    value.get("primary").and_then(super::boolean) == Some(true)
}

fn clear_primary(value: &mut Value) {
    if let Some(object) = value.as_object_mut()
        && object.contains_key("primary")
    {
        object.insert("primary".to_owned(), Value::Bool(false));
    }
}

fn merge(existing: &mut Value, value: Value) {
    match (existing.as_object_mut(), value) {
        (Some(object), Value::Object(given)) => {
            for (key, inner) in given {
                object.insert(key, inner);
            }
        }
        (_, value) => *existing = value,
    }
}

/// Removes keys that spell `name` in another case, so that the canonical
/// key set next is the only one.
fn remove_other_spellings(object: &mut Map<String, Value>, name: &str) {
    object.retain(|key, _| key == name || !key.eq_ignore_ascii_case(name));
}

/// The value of `name` in `object`, matching the key ignoring case.
pub fn get_ignoring_case<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user() -> Value {
        json!({
            "schemas": [crate::scim2::USER],
            "id": "8c1d",
            "userName": "jill@example.com",
            "name": {"givenName": "Jill", "familyName": "Hill"},
            "emails": [{"value": "jill@example.com", "type": "work", "primary": true}],
            "active": true,
        })
    }

    fn patch(resource: &mut Value, operations: Value) -> Result<(), ScimError> {
        let operations = parse(&json!({ "Operations": operations }))?;
        apply(resource, &operations, &USER_SCHEMA)
    }

    #[test]
    fn ops_in_any_case_and_string_booleans() {
        let mut resource = user();
        patch(
            &mut resource,
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
        )
        .unwrap();
        assert_eq!(resource["active"], false);
        assert!(parse(&json!({"Operations": [{"op": "copy", "path": "x"}]})).is_err());
    }

    #[test]
    fn a_pathless_value_object_with_dotted_and_qualified_names() {
        let mut resource = user();
        patch(
            &mut resource,
            json!([{"op": "replace", "value": {
                "active": false,
                "name.givenName": "Jane",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
                "id": "8c1d",
            }}]),
        )
        .unwrap();
        assert_eq!(resource["active"], false);
        assert_eq!(
            resource["name"],
            json!({"givenName": "Jane", "familyName": "Hill"})
        );
        assert_eq!(
            resource[crate::scim2::ENTERPRISE_USER]["department"],
            "Sales"
        );
        // A read-only value that differs is refused.
        let error = patch(
            &mut resource,
            json!([{"op": "replace", "value": {"id": "other"}}]),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn value_paths_select_change_and_create_values() {
        let mut resource = user();
        patch(
            &mut resource,
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "jane@example.com"}]),
        )
        .unwrap();
        assert_eq!(resource["emails"][0]["value"], "jane@example.com");
        assert_eq!(resource["emails"][0]["primary"], true);

        let mut resource = user();
        resource.as_object_mut().unwrap().remove("emails");
        patch(
            &mut resource,
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "jill@example.com"}]),
        )
        .unwrap();
        assert_eq!(
            resource["emails"],
            json!([{"type": "work", "value": "jill@example.com"}])
        );
        let error = patch(
            &mut resource,
            json!([{"op": "add", "path": "emails[value co \"zzz\"].value", "value": "a@b.c"}]),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn schema_qualified_paths_and_a_manager_given_as_an_id() {
        let mut resource = user();
        patch(
            &mut resource,
            json!([{"op": "add",
                    "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                    "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]),
        )
        .unwrap();
        assert_eq!(
            resource[crate::scim2::ENTERPRISE_USER]["manager"],
            json!({"value": "26118915-6090-4610-87e4-49d8ca9f808d"})
        );
        patch(
            &mut resource,
            json!([{"op": "replace", "path": "NAME.GIVENNAME", "value": "Jo"}]),
        )
        .unwrap();
        assert_eq!(resource["name"]["givenName"], "Jo");
    }

    #[test]
    fn members_are_added_once_and_removed_by_filter_or_by_value_list() {
        let mut group = json!({"displayName": "Sales", "members": []});
        let operations = parse(&json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}, {"value": "c"}]},
            {"op": "add", "path": "members", "value": [{"Value": "a"}]},
            {"op": "remove", "path": "members[value eq \"b\"]"},
            {"op": "remove", "path": "members", "value": [{"value": "c"}]},
        ]}))
        .unwrap();
        apply(&mut group, &operations, &GROUP_SCHEMA).unwrap();
        assert_eq!(group["members"], json!([{"value": "a"}]));
        // Okta's rename sent with every push: a pathless replace, same name.
        let operations = parse(&json!({"Operations": [
            {"op": "replace", "value": {"id": "g1", "displayName": "Sales"}},
        ]}))
        .unwrap();
        let mut group = json!({"id": "g1", "displayName": "Sales"});
        apply(&mut group, &operations, &GROUP_SCHEMA).unwrap();
        assert_eq!(group["displayName"], "Sales");
    }

    #[test]
    fn read_only_paths_and_bad_paths_are_refused() {
        let mut resource = user();
        let error = patch(
            &mut resource,
            json!([{"op": "replace", "path": "groups", "value": []}]),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::Mutability));
        let error = patch(
            &mut resource,
            json!([{"op": "replace", "path": "emails[type eq", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::InvalidPath));
        let error = patch(&mut resource, json!([{"op": "remove"}])).unwrap_err();
        assert_eq!(error.scim_type, Some(ScimType::NoTarget));
    }
}
