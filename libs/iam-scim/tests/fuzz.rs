//! Property-based fuzzing on stable Rust (proptest): the SCIM filter
//! parser and its SQL translation, the PATCH path parser and PATCH bodies.
//! No input panics; a filter prints back to the same filter. Failing cases
//! proptest finds are kept in `tests/fuzz.proptest-regressions` and run
//! first every time.

use iam_scim::filter::{
    AttrPath, CompValue, CompareOp, Filter, MAX_DEPTH, parse_filter, parse_patch_path,
};
use iam_scim::filter_sql::{Dialect, Kind, Resolve, Target, to_sql};
use iam_scim::scim2::patch::{self, GROUP_SCHEMA, USER_SCHEMA};
use proptest::prelude::*;
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z][a-zA-Z0-9_-]{0,8}".prop_filter("not a keyword", |name| {
        !["and", "or", "not", "pr", "true", "false", "null"]
            .iter()
            .any(|keyword| name.eq_ignore_ascii_case(keyword))
    })
}

fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::weighted(0.2, Just(ENTERPRISE.to_owned())),
        name(),
        prop::option::weighted(0.3, name()),
    )
        .prop_map(|(schema, attribute, sub_attribute)| AttrPath {
            schema,
            attribute,
            sub_attribute,
        })
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        (-1.0e9f64..1.0e9).prop_filter_map("finite", |x| {
            serde_json::Number::from_f64(x).map(CompValue::Number)
        }),
        any::<String>().prop_map(CompValue::String),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Co),
        Just(CompareOp::Sw),
        Just(CompareOp::Ew),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
    ]
}

/// A filter without value paths (the inside of one).
fn plain_filter() -> impl Strategy<Value = Filter> {
    let leaf =
        prop_oneof![
            attr_path().prop_map(Filter::Present),
            (attr_path(), compare_op(), comp_value())
                .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        ];
    leaf.prop_recursive(6, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    let value_path = (
        (
            name(),
            prop::option::weighted(0.2, Just(ENTERPRISE.to_owned())),
        ),
        plain_filter(),
    )
        .prop_map(|((attribute, schema), filter)| Filter::ValuePath {
            path: AttrPath {
                schema,
                attribute,
                sub_attribute: None,
            },
            filter: Box::new(filter),
        });
    prop_oneof![3 => plain_filter(), 1 => value_path]
}

/// Text that looks like a filter often enough to reach deep into the parser.
fn filterish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("userName".to_owned()),
        Just("emails".to_owned()),
        Just("name.givenName".to_owned()),
        Just(format!("{ENTERPRISE}:manager")),
        Just(" eq ".to_owned()),
        Just(" co ".to_owned()),
        Just(" pr".to_owned()),
        Just(" and ".to_owned()),
        Just(" or ".to_owned()),
        Just("not ".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(".value".to_owned()),
        Just("\"x\\u00e9\\\"y\"".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("12.5e3".to_owned()),
        Just("-0".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Resolves every attribute to a text column, every `active` to a
/// condition, and every `meta.created` to milliseconds: the translation's
/// every branch.
struct Everything;

impl Resolve for Everything {
    fn resolve(&self, _: Option<&AttrPath>, path: &AttrPath) -> Option<Target> {
        Some(if path.names("active", None) {
            Target::Condition("u.state = 'Active'")
        } else if path.names("meta", Some("created")) {
            Target::Column {
                sql: "u.created_at",
                kind: Kind::Millis,
            }
        } else if path.attribute.len().is_multiple_of(3) {
            Target::Constant(CompValue::String("work".into()))
        } else {
            Target::Column {
                sql: "u.user_name",
                kind: Kind::Text {
                    case_exact: path.attribute.len().is_multiple_of(2),
                    lowercase: false,
                },
            }
        })
    }
}

/// A JSON value of any shape, small.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        filterish().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_owned()),
                    Just("path".to_owned()),
                    Just("value".to_owned()),
                    Just("Operations".to_owned()),
                    Just("schemas".to_owned()),
                    Just("userName".to_owned()),
                    Just("emails".to_owned()),
                    Just("members".to_owned()),
                    Just("name.givenName".to_owned()),
                    name(),
                ],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A PATCH body: mostly well-formed operations with odd paths and values.
fn patch_body() -> impl Strategy<Value = Value> {
    let operation = (
        prop_oneof![Just("add"), Just("Replace"), Just("remove"), Just("move")],
        prop::option::of(prop_oneof![
            filterish(),
            attr_path().prop_map(|p| p.to_string())
        ]),
        prop::option::of(json_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut operation = json!({ "op": op });
            if let Some(path) = path {
                operation["path"] = json!(path);
            }
            if let Some(value) = value {
                operation["value"] = value;
            }
            operation
        });
    prop_oneof![
        prop::collection::vec(operation, 0..4).prop_map(|operations| json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        })),
        json_value(),
    ]
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f70",
        "userName": "jill@example.com",
        "name": { "givenName": "Jill", "familyName": "Hill" },
        "emails": [{ "value": "jill@example.com", "type": "work", "primary": true }],
        "active": true,
        "groups": [],
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f71",
        "displayName": "Ops",
        "members": [{ "value": "0190d6c2-7c51-7e2a-8d1f-2b3c4d5e6f70" }],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_filter_prints_back_to_itself(filter in filter()) {
        let text = filter.to_string();
        let parsed = parse_filter(&text);
        prop_assert_eq!(parsed, Ok(filter), "{}", text);
    }

    #[test]
    fn no_text_panics_the_filter_parser_or_the_translation(text in filterish()) {
        if let Ok(filter) = parse_filter(&text) {
            // What parses prints back to what parses the same.
            prop_assert_eq!(parse_filter(&filter.to_string()), Ok(filter.clone()));
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                if let Ok(condition) = to_sql(&filter, &Everything, dialect, 3) {
                    // Values travel only as parameters.
                    let placeholders = condition.sql.matches('$').count();
                    prop_assert_eq!(placeholders, condition.binds.len(), "{}", condition.sql);
                }
            }
        }
        let _ = parse_patch_path(&text);
    }

    #[test]
    fn any_string_is_refused_or_parsed_never_a_panic(text in any::<String>()) {
        let _ = parse_filter(&text);
        let _ = parse_patch_path(&text);
    }

    #[test]
    fn no_patch_body_panics_parsing_or_applying(body in patch_body()) {
        if let Ok(operations) = patch::parse(&body) {
            let mut resource = user();
            let _ = patch::apply(&mut resource, &operations, &USER_SCHEMA);
            let mut resource = group();
            let _ = patch::apply(&mut resource, &operations, &GROUP_SCHEMA);
        }
    }
}

#[test]
fn nesting_past_the_limit_is_refused_not_a_stack_overflow() {
    for depth in [MAX_DEPTH + 1, 10_000] {
        let text = format!("{}userName pr{}", "(".repeat(depth), ")".repeat(depth));
        assert!(parse_filter(&text).is_err(), "depth {depth}");
        let text = format!("{}userName pr", "not (".repeat(depth));
        assert!(parse_filter(&text).is_err(), "depth {depth}");
    }
}
