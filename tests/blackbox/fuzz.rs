//! Property-based fuzzing of the JSON bodies of both dialects, over HTTP:
//! bodies made by bending valid ones (a field's value replaced by any JSON,
//! a field dropped, fields added) never get a server error. Each failing
//! body is printed; keep it as a case in `KEPT_CASES`.

use iam_test_databases::Kind;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::scim::Scim;

both_backends!(no_json_body_of_either_dialect_gets_a_server_error);

/// Bodies once found to fail, sent first every run (none yet).
const KEPT_CASES: &[(&str, &str)] = &[];

/// How many bodies each endpoint gets per run.
const CASES: usize = 40;

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|x| json!(x)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("End User")),
        Just(json!("jill@acme.example")),
        Just(json!("x".repeat(5000))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z.:$]{1,12}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// `valid`, bent: each field kept, dropped or given any value, and maybe
/// more fields; sometimes not an object at all.
fn bent(valid: Value) -> impl Strategy<Value = Value> {
    let fields: Vec<(String, Value)> = valid
        .as_object()
        .map(|object| object.clone().into_iter().collect())
        .unwrap_or_default();
    let count = fields.len();
    let choices = prop::collection::vec((0..4u8, any_json()), count);
    let extra = prop::collection::btree_map("[a-zA-Z]{1,10}", any_json(), 0..3);
    prop_oneof![
        9 => (choices, extra).prop_map(move |(choices, extra)| {
            let mut object = Map::new();
            for ((name, value), (choice, other)) in fields.iter().zip(choices) {
                match choice {
                    0 | 1 => {
                        object.insert(name.clone(), value.clone());
                    }
                    2 => {}
                    _ => {
                        object.insert(name.clone(), other);
                    }
                }
            }
            object.extend(extra);
            Value::Object(object)
        }),
        1 => any_json(),
    ]
}

fn vca_user(email: &str) -> Value {
    json!({
        "schemas": ["urn:scim:schemas:core:1.0"],
        "state": "Active",
        "email": email,
        "familyName": "Hill",
        "givenName": "Jill",
        "roles": { "roles": [{ "name": "End User" }] },
        "userName": email,
        "password": "a fine password",
    })
}

fn scim_user(email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": { "givenName": "Jack", "familyName": "Sprat" },
        "emails": [{ "value": email, "type": "work", "primary": true }],
        "active": true,
        "externalId": "00u1",
        "roles": [{ "value": "End User" }],
    })
}

async fn no_json_body_of_either_dialect_gets_a_server_error(kind: Kind) {
    let scim = Scim::new(kind).await;
    let (status, created) = scim.post("/Users", scim_user("jack@acme.example")).await;
    assert_eq!(status, 201, "{created}");
    let scim_id = created["id"].as_str().unwrap().to_owned();
    let (status, group) = scim
        .post(
            "/Groups",
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops" }),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();
    let created: Value = scim
        .app
        .create_user(
            &scim.admin,
            Some(&scim.tenant),
            &vca_user("jill@acme.example"),
        )
        .await
        .json()
        .await
        .unwrap();
    let vca_id = created["id"].as_str().unwrap().to_owned();

    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            { "op": "replace", "path": "name.givenName", "value": "John" },
            { "op": "add", "path": "emails[type eq \"work\"].value", "value": "jack@acme.example" },
        ],
    });
    let bulk = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            { "method": "POST", "path": "/Users", "bulkId": "a", "data": scim_user("bulk@acme.example") },
            { "method": "PATCH", "path": format!("/Groups/{group_id}"), "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "add", "path": "members", "value": [{ "value": "bulkId:a" }] }],
            } },
        ],
    });
    let endpoints: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            "/api/iam/Users".into(),
            vca_user("new@acme.example"),
        ),
        (
            Method::PUT,
            format!("/api/iam/Users/{vca_id}"),
            vca_user("jill@acme.example"),
        ),
        (
            Method::PUT,
            "/api/iam/Users/password".into(),
            json!({ "currentPassword": "a", "newPassword": "b" }),
        ),
        (
            Method::POST,
            "/api/iam/password/reset".into(),
            json!({ "code": "c", "newPassword": "a fine password" }),
        ),
        (
            Method::POST,
            "/scim/v2/Users".into(),
            scim_user("new@acme.example"),
        ),
        (
            Method::PUT,
            format!("/scim/v2/Users/{scim_id}"),
            scim_user("jack@acme.example"),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Users/{scim_id}"),
            patch.clone(),
        ),
        (Method::PATCH, format!("/scim/v2/Groups/{group_id}"), patch),
        (Method::POST, "/scim/v2/Bulk".into(), bulk),
    ];

    let send = |method: Method, path: String, body: String| {
        let request = if path.starts_with("/scim/") {
            scim.app
                .client
                .request(method, scim.app.url(&path))
                .bearer_auth(&scim.secret)
                .header("Content-Type", "application/scim+json")
        } else {
            scim.app
                .request(method, &path, &scim.admin, Some(&scim.tenant))
                .header("Content-Type", "application/json")
        };
        async move {
            let response = request.body(body).send().await.unwrap();
            response.status().as_u16()
        }
    };
    for (path, body) in KEPT_CASES {
        let (method, path) = path.split_once(' ').unwrap();
        let status = send(method.parse().unwrap(), path.to_owned(), (*body).to_owned()).await;
        assert!(
            status < 500,
            "{method} {path} answered {status} to the kept case {body}"
        );
    }
    let mut runner = TestRunner::default();
    for (method, path, valid) in endpoints {
        let strategy = bent(valid);
        for _ in 0..CASES {
            let body = strategy
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .to_string();
            let status = send(method.clone(), path.clone(), body.clone()).await;
            assert!(
                status < 500,
                "{method} {path} answered {status}; keep this case in KEPT_CASES: {body}"
            );
        }
    }
    // Still answering, and the store still consistent.
    let (status, _) = scim.get(&format!("/Users/{scim_id}")).await;
    assert!(status == 200 || status == 404, "{status}");
}
