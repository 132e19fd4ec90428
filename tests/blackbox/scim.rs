//! SCIM 2.0 at `/scim/v2` end to end, as identity providers speak it: the
//! request shapes are those of Okta's and Microsoft Entra ID's published
//! SCIM provisioning examples (their quirks included), sent to the real
//! `iamd` over HTTP with an API token, on SQLite and PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

both_backends!(
    discovery_describes_what_is_served,
    only_an_api_token_authenticates_and_anything_else_is_401,
    an_okta_provisioning_sequence,
    an_entra_id_provisioning_sequence,
    lists_are_filtered_sorted_paged_and_projected_by_the_database,
    etags_guard_users_and_groups,
    errors_use_the_rfc_7644_form_and_change_nothing,
    bulk_creates_a_group_with_members_created_in_the_same_request,
    concurrent_changes_lose_nothing_and_versions_follow_what_is_shown,
    role_groups_assign_roles_and_converge,
    users_read_back_identically_in_both_dialects,
    deactivation_ends_sessions_and_reactivation_restores_tokens,
    a_create_retried_is_409_or_with_its_key_the_original_answer,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const IAM: &str = "urn:iam:params:scim:schemas:extension:iam:2.0:User";

/// A tenant with an Account Administrator whose API token an identity
/// provider uses.
pub(crate) struct Scim {
    pub(crate) app: TestApp,
    pub(crate) tenant: String,
    pub(crate) secret: String,
    /// The provider administrator's session (for the vCloud Air dialect).
    pub(crate) admin: String,
}

impl Scim {
    pub(crate) async fn new(kind: iam_test_databases::Kind) -> Self {
        let app = spawn_app(kind).await;
        let admin = app.admin().await;
        let tenant = app.create_tenant(&admin, "Acme", true).await;
        let mut body = crate::support::user_body("idp@acme.example", &["Account Administrator"]);
        body["password"] = json!("provisioning password");
        let created: Value = app
            .create_user(&admin, Some(&tenant), &body)
            .await
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        let session = app.login("idp@acme.example", "provisioning password").await;
        let token: Value = app
            .create_token(&session, &id, 30)
            .await
            .json()
            .await
            .unwrap();
        let secret: Value = app
            .download_token(&session, &id, token["id"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        Scim {
            app,
            tenant,
            secret: secret["token"].as_str().unwrap().to_owned(),
            admin,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.secret)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        answer(response).await
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn patch(&self, path: &str, operations: Value) -> (u16, Value) {
        self.send(
            Method::PATCH,
            path,
            Some(json!({"schemas": [PATCH_OP], "Operations": operations})),
        )
        .await
    }

    async fn delete(&self, path: &str) -> u16 {
        self.request(Method::DELETE, path)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The user as the vCloud Air dialect answers it.
    async fn vca_user(&self, id: &str) -> Value {
        self.app
            .get_json(
                &format!("/api/iam/Users/{id}"),
                &self.admin,
                Some(&self.tenant),
            )
            .await
    }

    /// Creates a user over SCIM; returns its resource.
    async fn create(&self, user_name: &str) -> Value {
        let (status, body) = self.post("/Users", user(user_name)).await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

/// The status and JSON body of an answer, checking SCIM's media type and,
/// for an error, RFC 7644's error form.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    if status == 204 || status == 304 {
        return (status, Value::Null);
    }
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/scim+json"),
        "{status}: {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    if status >= 400 {
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
            "{body}"
        );
        assert_eq!(
            body["status"],
            status.to_string(),
            "status is a string: {body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    (status, body)
}

/// A user as Okta's SCIM 2.0 provisioning creates it.
fn user(user_name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Jane Doe",
        "locale": "en-US",
        "externalId": format!("00u{}", user_name.len()),
        "groups": [],
        "active": true,
    })
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

async fn discovery_describes_what_is_served(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    let (status, config) = scim.get("/ServiceProviderConfig").await;
    assert_eq!(status, 200);
    assert_eq!(config["patch"]["supported"], true);
    assert_eq!(config["bulk"]["supported"], true);
    assert!(config["bulk"]["maxOperations"].as_u64().unwrap() >= 1000);
    assert!(config["bulk"]["maxPayloadSize"].as_u64().unwrap() >= 1024 * 1024);
    assert!(config["filter"]["maxResults"].as_u64().unwrap() > 0);
    assert_eq!(config["sort"]["supported"], true);
    assert_eq!(config["etag"]["supported"], true);
    assert_eq!(
        config["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );

    let (_, types) = scim.get("/ResourceTypes").await;
    let names: Vec<&str> = types["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User", "Group"]);

    let (_, schemas) = scim.get("/Schemas").await;
    let user_schema = schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == USER)
        .unwrap();
    let attribute = |name: &str| {
        user_schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} is described"))
            .clone()
    };
    let user_name = attribute("userName");
    assert_eq!(
        (
            &user_name["uniqueness"],
            &user_name["caseExact"],
            &user_name["mutability"],
            &user_name["returned"]
        ),
        (
            &json!("server"),
            &json!(false),
            &json!("readWrite"),
            &json!("default")
        )
    );
    assert_eq!(attribute("password")["returned"], "never");
    assert_eq!(attribute("groups")["mutability"], "readOnly");
    for name in ["externalId", "name", "emails", "active", "roles"] {
        attribute(name);
    }
    let (status, enterprise) = scim.get(&format!("/Schemas/{ENTERPRISE}")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = enterprise["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["employeeNumber", "department", "manager"]);
}

async fn only_an_api_token_authenticates_and_anything_else_is_401(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    let client = &scim.app.client;
    let url = scim.app.url("/scim/v2/Users");
    let ok = client
        .get(&url)
        .bearer_auth(&scim.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = client
        .get(&url)
        .header("Authorization", format!("Token {}", scim.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let session = scim
        .app
        .login("idp@acme.example", "provisioning password")
        .await;
    for authorization in [
        None,
        Some("Basic aWRwQGFjbWUuZXhhbXBsZTpwcm92aXNpb25pbmcgcGFzc3dvcmQ=".to_owned()),
        Some("Bearer not-a-token".to_owned()),
        Some(format!("Bearer {session}")),
        Some(format!("Bearer {}x", scim.secret)),
    ] {
        let mut request = client.get(&url);
        if let Some(authorization) = &authorization {
            request = request.header("Authorization", authorization);
        }
        let (status, body) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
    }
}

async fn an_okta_provisioning_sequence(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    // Okta looks the user up before it creates it.
    let (status, found) = scim
        .get("/Users?filter=userName%20eq%20%22jane.doe%40acme.example%22&startIndex=1&count=100")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            found["totalResults"].as_i64(),
            found["Resources"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );

    let mut body = user("jane.doe@acme.example");
    body["password"] = json!("t1meMa$heen");
    let response = scim
        .request(Method::POST, "/Users")
        .header("Content-Type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let (status, created) = answer(response).await;
    assert_eq!(status, 201, "{created}");
    let id = id_of(&created);
    assert!(
        location.ends_with(&format!("/scim/v2/Users/{id}")),
        "{location}"
    );
    assert_eq!(created["meta"]["resourceType"], "User");
    assert_eq!(created["meta"]["location"], location);
    assert_eq!(created["meta"]["version"], etag);
    assert!(created["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        created["roles"][0]["value"], "End User",
        "no roles: End User"
    );
    assert_eq!(created[IAM]["managedByIdentityProvider"], true);
    assert_eq!(created["externalId"], "00u21");
    assert!(
        created.get("password").is_none(),
        "the password is never returned"
    );
    assert!(!created.to_string().contains("t1meMa$heen"));

    let (status, again) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(
        (status, again["userName"].clone()),
        (200, json!("jane.doe@acme.example"))
    );
    // The password works for the vCloud Air login.
    scim.app.login("jane.doe@acme.example", "t1meMa$heen").await;

    // Deactivate and reactivate as Okta sends it: a pathless replace.
    let (status, deactivated) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": false}}]),
        )
        .await;
    assert_eq!((status, deactivated["active"].clone()), (200, json!(false)));
    assert_eq!(scim.vca_user(&id).await["state"], "Inactive");
    assert_eq!(
        scim.app
            .try_login("jane.doe@acme.example", "t1meMa$heen")
            .await
            .status(),
        401
    );
    let (status, reactivated) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"active": true}}]),
        )
        .await;
    assert_eq!((status, reactivated["active"].clone()), (200, json!(true)));

    // A profile update: Okta PUTs the whole user.
    let mut profile = created.clone();
    profile["name"]["givenName"] = json!("Janet");
    let (status, updated) = scim.put(&format!("/Users/{id}"), profile).await;
    assert_eq!(
        (status, updated["name"]["givenName"].clone()),
        (200, json!("Janet"))
    );
    assert_eq!(
        updated["roles"], created["roles"],
        "a PUT without roles keeps them"
    );

    // Group push: create with members, rename, then pushes that resend the name.
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Sales",
                   "members": [{"value": id, "display": "jane.doe@acme.example"}]}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let group_id = id_of(&group);
    assert_eq!(group["members"][0]["value"], id);
    let (_, member) = scim.get(&format!("/Users/{id}")).await;
    assert!(
        member["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["display"] == "Sales"),
        "{member}"
    );
    let (status, renamed) = scim
        .patch(
            &format!("/Groups/{group_id}"),
            json!([{"op": "replace", "value": {"id": group_id, "displayName": "Sales EMEA"}}]),
        )
        .await;
    assert_eq!(
        (status, renamed["displayName"].clone()),
        (200, json!("Sales EMEA"))
    );
    let (status, pushed) = scim
        .patch(
            &format!("/Groups/{group_id}"),
            json!([
                {"op": "replace", "value": {"id": group_id, "displayName": "Sales EMEA"}},
                {"op": "remove", "path": format!("members[value eq \"{id}\"]")},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{pushed}");
    assert_eq!(pushed["members"], json!([]));
    let (status, pushed) = scim
        .patch(
            &format!("/Groups/{group_id}"),
            json!([
                {"op": "replace", "value": {"id": group_id, "displayName": "Sales EMEA"}},
                {"op": "add", "path": "members", "value": [{"value": id, "display": "jane.doe@acme.example"}]},
            ]),
        )
        .await;
    assert_eq!(
        (status, pushed["members"].as_array().unwrap().len()),
        (200, 1)
    );

    // "Link to existing group": a role's group already exists.
    let (status, taken) = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "Account Administrator"}),
        )
        .await;
    assert_eq!(
        (status, taken["scimType"].clone()),
        (409, json!("uniqueness")),
        "{taken}"
    );
    let (_, found) = scim
        .get("/Groups?filter=displayName%20eq%20%22Account%20Administrator%22")
        .await;
    assert_eq!(found["totalResults"], 1);

    assert_eq!(scim.delete(&format!("/Groups/{group_id}")).await, 204);
    assert_eq!(scim.get(&format!("/Groups/{group_id}")).await.0, 404);
    assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.0, 404);
}

async fn an_entra_id_provisioning_sequence(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    // Test connection: a filter for a user that does not exist, `+` for spaces.
    let (status, none) = scim
        .get("/Users?filter=userName+eq+%22non-existent+user+9d3e%22")
        .await;
    assert_eq!((status, none["totalResults"].clone()), (200, json!(0)));
    let (status, none) = scim
        .get("/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
        .await;
    assert_eq!((status, none["totalResults"].clone()), (200, json!(0)));

    // Entra's published create: userName from the UPN, emails from mail.
    let mut create = json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@testuser.com",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "701984", "department": "Sales"},
    });
    let (status, refused) = scim.post("/Users", create.clone()).await;
    assert_eq!(
        (status, refused["scimType"].clone()),
        (400, json!("invalidValue")),
        "{refused}"
    );
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("one attribute") && detail.contains("userPrincipalName"),
        "{detail}"
    );
    assert_eq!(
        scim.get("/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
            .await
            .1["totalResults"],
        0
    );

    create["emails"][0]["value"] = json!("Test_User_ab6490ee@testuser.com");
    let (status, created) = scim.post("/Users", create).await;
    assert_eq!(status, 201, "{created}");
    let id = id_of(&created);
    assert_eq!(created[ENTERPRISE]["employeeNumber"], "701984");

    // Lookups by externalId and by userName in another case.
    let (_, by_external) = scim
        .get("/Users?filter=externalId+eq+%220a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef%22")
        .await;
    assert_eq!(by_external["Resources"][0]["id"], id);
    let (_, by_name) = scim
        .get("/Users?filter=userName+eq+%22test_user_AB6490EE%40TESTUSER.com%22")
        .await;
    assert_eq!(by_name["totalResults"], 1);
    assert_eq!(
        by_name["Resources"][0]["userName"], "Test_User_ab6490ee@testuser.com",
        "original case"
    );

    // A manager to point at.
    let manager = id_of(&scim.create("boss@testuser.com").await);
    // Entra's PATCH: capitalized ops, string booleans, value paths, a
    // schema-qualified manager sent as a plain id.
    let (status, patched) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager},
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {"op": "Add", "path": "title", "value": "ignored: not served"},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], false);
    assert_eq!(patched[ENTERPRISE]["manager"]["value"], manager);
    assert_eq!(patched["name"]["familyName"], "updatedFamilyName");
    let (status, reactivated) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": "True"}]),
        )
        .await;
    assert_eq!((status, reactivated["active"].clone()), (200, json!(true)));

    // A UPN change: userName and the work email together, in one PATCH.
    let (status, renamed) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "userName", "value": "Renamed_User@testuser.com"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "Renamed_User@testuser.com"},
            ]),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["userName"], "Renamed_User@testuser.com");
    let vca = scim.vca_user(&id).await;
    assert_eq!(
        (vca["userName"].clone(), vca["email"].clone()),
        (
            json!("Renamed_User@testuser.com"),
            json!("Renamed_User@testuser.com")
        )
    );
    // A PATCH that would leave userName and the email apart changes nothing.
    let (status, refused) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([
                {"op": "Replace", "path": "userName", "value": "other@testuser.com"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "third@testuser.com"},
                {"op": "Replace", "path": "name.givenName", "value": "Nope"},
            ]),
        )
        .await;
    assert_eq!(
        (status, refused["scimType"].clone()),
        (400, json!("invalidValue"))
    );
    let (_, unchanged) = scim.get(&format!("/Users/{id}")).await;
    assert_eq!(unchanged["meta"]["version"], renamed["meta"]["version"]);
    assert_eq!(unchanged["name"]["givenName"], "givenName");

    // Group provisioning.
    let (status, group) = scim
        .post(
            "/Groups",
            json!({"schemas": [GROUP], "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                   "displayName": "Group1DisplayName", "members": []}),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let group_id = id_of(&group);
    let (_, listed) = scim
        .get("/Groups?excludedAttributes=members&filter=displayName+eq+%22Group1DisplayName%22")
        .await;
    assert_eq!(listed["totalResults"], 1);
    assert!(listed["Resources"][0].get("members").is_none(), "{listed}");
    let (status, added) = scim
        .patch(
            &format!("/Groups/{group_id}"),
            json!([{"op": "Add", "path": "members", "value": [{"value": id}, {"value": manager}]}]),
        )
        .await;
    assert_eq!(
        (status, added["members"].as_array().unwrap().len()),
        (200, 2)
    );
    let (status, removed) = scim
        .patch(
            &format!("/Groups/{group_id}"),
            json!([{"op": "Remove", "path": "members", "value": [{"value": manager}]}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        removed["members"],
        json!([{"value": id, "$ref": removed["members"][0]["$ref"], "display": "Renamed_User@testuser.com", "type": "User"}])
    );
    let (_, renamed_group) = scim
        .patch(
            &format!("/Groups/{group_id}"),
            json!([{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]),
        )
        .await;
    assert_eq!(
        renamed_group["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert_eq!(scim.delete(&format!("/Groups/{group_id}")).await, 204);

    // Disable, then delete.
    let (status, _) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(scim.delete(&format!("/Users/{id}")).await, 204);
    assert_eq!(scim.get(&format!("/Users/{id}")).await.0, 404);
    assert_eq!(scim.delete(&format!("/Users/{id}")).await, 404);
}

async fn lists_are_filtered_sorted_paged_and_projected_by_the_database(
    kind: iam_test_databases::Kind,
) {
    let scim = Scim::new(kind).await;
    for name in [
        "ann@a.example",
        "bob@b.example",
        "cid@a.example",
        "dee@b.example",
        "eve@a.example",
    ] {
        scim.create(name).await;
    }
    let names = |list: &Value| -> Vec<String> {
        list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let query = |filter: &str| format!("/Users?filter={}", urlencode(filter));
    let (_, list) = scim
        .get(&query(
            r#"userName co "@A.EXAMPLE" and not (userName sw "c")"#,
        ))
        .await;
    assert_eq!(names(&list), ["ann@a.example", "eve@a.example"]);
    let (_, list) = scim
        .get(&query(
            r#"emails[type eq "work" and value ew "b.example"] or userName eq "eve@a.example""#,
        ))
        .await;
    assert_eq!(
        names(&list),
        ["bob@b.example", "dee@b.example", "eve@a.example"]
    );
    let (_, list) = scim
        .get(&query(
            "externalId pr and meta.created gt \"2000-01-01T00:00:00Z\"",
        ))
        .await;
    assert_eq!(
        list["totalResults"], 5,
        "the token's own user has no externalId"
    );
    // Attribute names in any case, and schema-qualified.
    let (_, list) = scim
        .get(&query(r#"USERNAME eq "ann@a.example" or urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@b.example""#))
        .await;
    assert_eq!(names(&list), ["ann@a.example", "bob@b.example"]);
    let (_, list) = scim
        .get(&query(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr"#,
        ))
        .await;
    assert_eq!(list["totalResults"], 0);
    let (status, refused) = scim.get(&query(r#"title eq "x""#)).await;
    assert_eq!(
        (status, refused["scimType"].clone()),
        (400, json!("invalidFilter"))
    );
    let (status, refused) = scim.get(&query(r#"password eq "secret""#)).await;
    assert_eq!(
        (status, refused["scimType"].clone()),
        (400, json!("sensitive"))
    );
    let deep = format!("{}userName pr{}", "(".repeat(1000), ")".repeat(1000));
    let (status, refused) = scim.get(&query(&deep)).await;
    assert_eq!(
        (status, refused["scimType"].clone()),
        (400, json!("invalidFilter")),
        "a nesting limit, not a crash"
    );
    let (status, refused) = scim.get(&query(r#"userName eq"#)).await;
    assert_eq!(
        (status, refused["scimType"].clone()),
        (400, json!("invalidFilter"))
    );

    // Sorting and pages: stable, with a correct total and page size.
    let (_, first) = scim
        .get("/Users?sortBy=userName&sortOrder=descending&startIndex=1&count=4")
        .await;
    assert_eq!(
        names(&first),
        [
            "idp@acme.example",
            "eve@a.example",
            "dee@b.example",
            "cid@a.example"
        ]
    );
    assert_eq!(
        (
            first["totalResults"].clone(),
            first["itemsPerPage"].clone(),
            first["startIndex"].clone()
        ),
        (json!(6), json!(4), json!(1))
    );
    let (_, second) = scim
        .get("/Users?sortBy=userName&sortOrder=descending&startIndex=5&count=4")
        .await;
    assert_eq!(names(&second), ["bob@b.example", "ann@a.example"]);
    assert_eq!(second["itemsPerPage"], 2);
    let (_, total) = scim.get("/Users?count=0").await;
    assert_eq!(
        (total["totalResults"].clone(), total["Resources"].clone()),
        (json!(6), json!([]))
    );

    // attributes and excludedAttributes.
    let (_, only) = scim
        .get(&format!(
            "{}&attributes=userName",
            query(r#"userName eq "ann@a.example""#)
        ))
        .await;
    let resource = only["Resources"][0].as_object().unwrap();
    let mut keys: Vec<&str> = resource.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "schemas", "userName"]);
    let id = resource["id"].as_str().unwrap();
    let (_, without) = scim
        .get(&format!("/Users/{id}?excludedAttributes=groups,emails"))
        .await;
    assert!(
        without.get("groups").is_none()
            && without.get("emails").is_none()
            && without.get("userName").is_some()
    );
}

/// Percent-encodes a query value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

async fn etags_guard_users_and_groups(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    let created = scim.create("etag@acme.example").await;
    let id = id_of(&created);
    let path = format!("/Users/{id}");
    let version = created["meta"]["version"].as_str().unwrap().to_owned();
    let not_modified = scim
        .request(Method::GET, &path)
        .header("If-None-Match", &version)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "name.givenName", "value": "Ed"}]});
    let changed = scim
        .request(Method::PATCH, &path)
        .header("If-Match", &version)
        .header("Content-Type", "application/scim+json")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let (status, stale) = answer(
        scim.request(Method::PUT, &path)
            .header("If-Match", &version)
            .header("Content-Type", "application/json")
            .body(created.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 412, "{stale}");
    let stale_delete = scim
        .request(Method::DELETE, &path)
        .header("If-Match", &version)
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), 412);
    assert_eq!(scim.get(&path).await.1["name"]["givenName"], "Ed");

    let (_, group) = scim.post("/Groups", json!({"displayName": "Tagged"})).await;
    let group_path = format!("/Groups/{}", id_of(&group));
    let group_version = group["meta"]["version"].as_str().unwrap().to_owned();
    let not_modified = scim
        .request(Method::GET, &group_path)
        .header("If-None-Match", &group_version)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let (status, _) = scim
        .patch(
            &group_path,
            json!([{"op": "replace", "path": "displayName", "value": "Tagged 2"}]),
        )
        .await;
    assert_eq!(status, 200);
    let stale = scim
        .request(Method::PATCH, &group_path)
        .header("If-Match", &group_version)
        .header("Content-Type", "application/scim+json")
        .body(
            json!({"Operations": [{"op": "replace", "path": "displayName", "value": "Tagged 3"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
}

async fn errors_use_the_rfc_7644_form_and_change_nothing(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    let scim_type = |body: &Value| body["scimType"].as_str().unwrap_or_default().to_owned();
    let (status, body) = answer(
        scim.request(Method::POST, "/Users")
            .header("Content-Type", "application/scim+json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, scim_type(&body)), (400, "invalidSyntax".into()));
    let (status, _) = answer(
        scim.request(Method::POST, "/Users")
            .header("Content-Type", "text/plain")
            .body(user("plain@acme.example").to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, body) = scim
        .post(
            "/Users",
            json!({"schemas": [USER], "name": {"givenName": "A", "familyName": "B"}}),
        )
        .await;
    assert_eq!((status, scim_type(&body)), (400, "invalidValue".into()));
    let mut conflicting = user("two@acme.example");
    conflicting["roles"] = json!([{"value": "Account Administrator"}, {"value": "End User"}]);
    let (status, body) = scim.post("/Users", conflicting).await;
    assert_eq!((status, scim_type(&body)), (400, "invalidValue".into()));
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("Account Administrator") && detail.contains("End User"),
        "{detail}"
    );
    assert_eq!(
        scim.get("/Users?filter=userName%20eq%20%22two%40acme.example%22")
            .await
            .1["totalResults"],
        0
    );

    let created = scim.create("err@acme.example").await;
    let id = id_of(&created);
    let path = format!("/Users/{id}");
    for (operations, expected) in [
        (
            json!([{"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "groups", "value": []}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "other"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "move", "path": "active", "value": true}]),
            "invalidSyntax",
        ),
        (
            json!([{"op": "replace", "path": "roles", "value": [{"value": "Network Administrator"}, {"value": "Read-Only Administrator"}]}]),
            "invalidValue",
        ),
    ] {
        let (status, body) = scim.patch(&path, operations.clone()).await;
        assert_eq!(
            (status, scim_type(&body)),
            (400, expected.to_owned()),
            "{operations}: {body}"
        );
    }
    let (_, after) = scim.get(&path).await;
    assert_eq!(
        after["meta"]["version"], created["meta"]["version"],
        "nothing was written"
    );
    // A manager must be a user of the organization.
    let (status, body) = scim
        .patch(&path, json!([{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": "7b0c6a1e-0000-4000-8000-000000000000"}]))
        .await;
    assert_eq!((status, scim_type(&body)), (400, "invalidValue".into()));

    let (_, roles) = scim
        .get("/Groups?filter=displayName%20eq%20%22End%20User%22")
        .await;
    let role_group = roles["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = scim
        .patch(
            &format!("/Groups/{role_group}"),
            json!([{"op": "replace", "path": "displayName", "value": "Users"}]),
        )
        .await;
    assert_eq!((status, scim_type(&body)), (400, "mutability".into()));
    let (status, body) = answer(
        scim.request(Method::DELETE, &format!("/Groups/{role_group}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, scim_type(&body)), (400, "mutability".into()));
    let (status, _) = scim.get("/Users/not-a-uuid").await;
    assert_eq!(status, 404);
}

async fn bulk_creates_a_group_with_members_created_in_the_same_request(
    kind: iam_test_databases::Kind,
) {
    let scim = Scim::new(kind).await;
    let request = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "failOnErrors": 10,
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": [GROUP], "displayName": "Bulk Team",
                      "members": [{"type": "User", "value": "bulkId:u1"}, {"type": "User", "value": "bulkId:u2"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk1@acme.example")},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": user("bulk2@acme.example")},
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"userName": "nameless@acme.example"}},
            {"method": "PATCH", "path": "/Users/bulkId:u1",
             "data": {"Operations": [{"op": "replace", "path": "name.givenName", "value": "First"}]}},
        ],
    });
    let (status, answer) = scim.post("/Bulk", request).await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<&str> = answer["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["201", "201", "201", "400", "200"], "{answer}");
    assert_eq!(
        answer["Operations"][3]["response"]["scimType"],
        "invalidValue"
    );
    let location = answer["Operations"][0]["location"].as_str().unwrap();
    let group_id = location.rsplit('/').next().unwrap();
    let (_, group) = scim.get(&format!("/Groups/{group_id}")).await;
    let mut members: Vec<&str> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["bulk1@acme.example", "bulk2@acme.example"]);
    let (_, first) = scim
        .get("/Users?filter=userName%20eq%20%22bulk1%40acme.example%22")
        .await;
    assert_eq!(first["Resources"][0]["name"]["givenName"], "First");

    // failOnErrors stops what is left once that many failed.
    let (_, stopped) = scim
        .post("/Bulk", json!({"failOnErrors": 1, "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "no-names@acme.example"}},
            {"method": "POST", "path": "/Users", "bulkId": "y", "data": user("after@acme.example")},
            {"method": "POST", "path": "/Users", "bulkId": "z", "data": user("late@acme.example")},
        ]}))
        .await;
    let statuses: Vec<&str> = stopped["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["400"],
        "nothing runs after the first error: {stopped}"
    );
    assert_eq!(
        scim.get("/Users?filter=userName%20eq%20%22after%40acme.example%22")
            .await
            .1["totalResults"],
        0
    );
    // An error found before anything runs counts too.
    let (_, stopped) = scim
        .post("/Bulk", json!({"failOnErrors": 1, "Operations": [
            {"method": "PATCH", "path": "/Users/bulkId:nope", "data": {"Operations": []}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": user("never@acme.example")},
        ]}))
        .await;
    assert_eq!(
        stopped["Operations"].as_array().unwrap().len(),
        1,
        "{stopped}"
    );
    assert_eq!(
        scim.get("/Users?filter=userName%20eq%20%22never%40acme.example%22")
            .await
            .1["totalResults"],
        0
    );
    // A delete runs before a later create of the same name.
    let doomed = id_of(&scim.create("reused@acme.example").await);
    let (_, reused) = scim
        .post("/Bulk", json!({"Operations": [
            {"method": "DELETE", "path": format!("Users/{doomed}")},
            {"method": "POST", "path": "/Users", "bulkId": "again", "data": user("reused@acme.example")},
        ]}))
        .await;
    let statuses: Vec<&str> = reused["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["204", "201"], "{reused}");
    // Limits are enforced with 413.
    let operations: Vec<Value> = (0..1001)
        .map(|n| json!({"method": "DELETE", "path": format!("/Users/{n}")}))
        .collect();
    let (status, body) = scim.post("/Bulk", json!({"Operations": operations})).await;
    assert_eq!((status, body["scimType"].clone()), (413, json!("tooMany")));
    let big = "x".repeat(1024 * 1024);
    let (status, _) = scim
        .post("/Bulk", json!({"Operations": [], "padding": big}))
        .await;
    assert_eq!(status, 413);
}

async fn role_groups_assign_roles_and_converge(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    let (_, groups) = scim.get("/Groups?sortBy=displayName").await;
    let role_group = |name: &str| {
        groups["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["displayName"] == name)
            .unwrap_or_else(|| panic!("{name} has a group: {groups}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let admins = role_group("Account Administrator");
    let network = role_group("Network Administrator");
    let infrastructure = role_group("Virtual Infrastructure Administrator");
    let read_only = role_group("Read-Only Administrator");
    // Ids are stable: the same in a second read.
    assert_eq!(
        scim.get("/Groups").await.1["Resources"][0]["id"],
        groups["Resources"][0]["id"]
    );

    let id = id_of(&scim.create("moved@acme.example").await);
    let roles = |user: Value| -> Vec<String> {
        user["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .collect()
    };
    let add = |group: String| {
        let id = id.clone();
        let scim = &scim;
        async move {
            let (status, body) = scim
                .patch(
                    &format!("/Groups/{group}"),
                    json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    add(network.clone()).await;
    assert_eq!(
        roles(scim.get(&format!("/Users/{id}")).await.1),
        ["Network Administrator"],
        "End User displaced"
    );
    add(infrastructure.clone()).await;
    assert_eq!(
        roles(scim.get(&format!("/Users/{id}")).await.1),
        [
            "Virtual Infrastructure Administrator",
            "Network Administrator"
        ],
        "the one pair that is kept"
    );
    add(read_only.clone()).await;
    assert_eq!(
        roles(scim.get(&format!("/Users/{id}")).await.1),
        ["Read-Only Administrator"]
    );
    // The vCloud Air dialect sees the same role.
    assert_eq!(
        scim.vca_user(&id).await["roles"]["roles"][0]["name"],
        "Read-Only Administrator"
    );
    let (_, members) = scim.get(&format!("/Groups/{read_only}")).await;
    assert_eq!(members["members"][0]["value"], id);
    // Unordered moves converge: removed from the group it has already left.
    let (status, _) = scim
        .patch(
            &format!("/Groups/{network}"),
            json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        roles(scim.get(&format!("/Users/{id}")).await.1),
        ["Read-Only Administrator"]
    );
    // Leaving the last role leaves End User.
    let (status, _) = scim
        .patch(
            &format!("/Groups/{read_only}"),
            json!([{"op": "remove", "path": "members", "value": [{"value": id}]}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        roles(scim.get(&format!("/Users/{id}")).await.1),
        ["End User"]
    );
    // A user's groups list its role group.
    let (_, user) = scim.get(&format!("/Users/{id}")).await;
    assert!(
        user["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["display"] == "End User")
    );
    add(admins).await;
    assert_eq!(
        roles(scim.get(&format!("/Users/{id}")).await.1),
        ["Account Administrator"]
    );
}

async fn users_read_back_identically_in_both_dialects(kind: iam_test_databases::Kind) {
    let scim = Scim::new(kind).await;
    let same = |scim_user: &Value, vca: &Value| {
        assert_eq!(scim_user["id"], vca["id"]);
        assert_eq!(scim_user["userName"], vca["userName"]);
        assert_eq!(scim_user["emails"][0]["value"], vca["email"]);
        assert_eq!(scim_user["name"]["givenName"], vca["givenName"]);
        assert_eq!(scim_user["name"]["familyName"], vca["familyName"]);
        assert_eq!(scim_user["active"], vca["state"] == "Active");
        let scim_roles: Vec<&Value> = scim_user["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["value"])
            .collect();
        let vca_roles: Vec<&Value> = vca["roles"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["name"])
            .collect();
        assert_eq!(scim_roles, vca_roles);
        assert_eq!(
            scim_user[IAM]["managedByIdentityProvider"],
            vca["managedByIdentityProvider"]
        );
    };
    // Changed over SCIM, read over both.
    let id = id_of(&scim.create("both@acme.example").await);
    let (_, patched) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "value": {"name.familyName": "Smith", "active": false}}]),
        )
        .await;
    let vca = scim.vca_user(&id).await;
    same(&patched, &vca);
    assert_eq!(vca["managedByIdentityProvider"], true);

    // A managed user changes locally only its state.
    let mut body = crate::support::user_body("both@acme.example", &["End User"]);
    body["givenName"] = json!("Jane");
    body["familyName"] = json!("Smith");
    body["state"] = json!("Active");
    let response = scim
        .app
        .request(
            Method::PUT,
            &format!("/api/iam/Users/{id}"),
            &scim.admin,
            Some(&scim.tenant),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "an emergency lock-out or its end is allowed"
    );
    body["givenName"] = json!("Local");
    let (status, message) = crate::support::error_of(
        scim.app
            .request(
                Method::PUT,
                &format!("/api/iam/Users/{id}"),
                &scim.admin,
                Some(&scim.tenant),
            )
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        message.contains("managed by the identity provider"),
        "{message}"
    );

    // Changed over the vCloud Air dialect, read over both.
    let local: Value = scim
        .app
        .create_user(
            &scim.admin,
            Some(&scim.tenant),
            &crate::support::user_body("local@acme.example", &["End User"]),
        )
        .await
        .json()
        .await
        .unwrap();
    let local_id = local["id"].as_str().unwrap();
    let mut replacement =
        crate::support::user_body("local@acme.example", &["Account Administrator"]);
    replacement["email"] = json!("local.other@acme.example");
    let response = scim
        .app
        .request(
            Method::PUT,
            &format!("/api/iam/Users/{local_id}"),
            &scim.admin,
            Some(&scim.tenant),
        )
        .json(&replacement)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, over_scim) = scim.get(&format!("/Users/{local_id}")).await;
    same(&over_scim, &scim.vca_user(local_id).await);
    assert_eq!(over_scim[IAM]["managedByIdentityProvider"], false);
    // And a SCIM change of a local user reads back in the vCloud Air dialect.
    let (_, patched) = scim
        .patch(
            &format!("/Users/{local_id}"),
            json!([{"op": "replace", "path": "name.givenName", "value": "Lou"}]),
        )
        .await;
    same(&patched, &scim.vca_user(local_id).await);
}

async fn deactivation_ends_sessions_and_reactivation_restores_tokens(
    kind: iam_test_databases::Kind,
) {
    let scim = Scim::new(kind).await;
    let mut body = user("worker@acme.example");
    body["password"] = json!("worker password 1");
    let (_, created) = scim.post("/Users", body).await;
    let id = id_of(&created);
    let session = scim
        .app
        .login("worker@acme.example", "worker password 1")
        .await;
    let token: Value = scim
        .app
        .create_token(&session, &id, 30)
        .await
        .json()
        .await
        .unwrap();
    let secret: Value = scim
        .app
        .download_token(&session, &id, token["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let secret = secret["token"].as_str().unwrap().to_owned();
    let user_path = format!("/api/iam/Users/{id}");
    let token_works = || async {
        scim.app
            .client
            .get(scim.app.url(&user_path))
            .header("Authorization", format!("Token {secret}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let session_works = || async {
        scim.app
            .request(Method::GET, &user_path, &session, None)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((token_works().await, session_works().await), (200, 200));
    let (status, _) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": false}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!((token_works().await, session_works().await), (401, 401));
    let (status, _) = scim
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "active", "value": true}]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(token_works().await, 200, "reactivating restores its tokens");
    assert_eq!(session_works().await, 401, "but not its sessions");
}

async fn a_create_retried_is_409_or_with_its_key_the_original_answer(
    kind: iam_test_databases::Kind,
) {
    let scim = Scim::new(kind).await;
    let first = scim.create("retry@acme.example").await;
    let (status, body) = scim.post("/Users", user("RETRY@acme.example")).await;
    assert_eq!(
        (status, body["scimType"].clone()),
        (409, json!("uniqueness"))
    );
    let (_, list) = scim
        .get("/Users?filter=userName%20eq%20%22retry%40acme.example%22")
        .await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], first["id"]);

    let keyed = |name: &str, key: &str| {
        scim.request(Method::POST, "/Users")
            .header("Content-Type", "application/scim+json")
            .header("Idempotency-Key", key)
            .body(user(name).to_string())
    };
    let (status, original) = answer(keyed("keyed@acme.example", "k-1").send().await.unwrap()).await;
    assert_eq!(status, 201);
    let (status, again) = answer(keyed("keyed@acme.example", "k-1").send().await.unwrap()).await;
    assert_eq!((status, again["id"].clone()), (201, original["id"].clone()));
    let (status, _) = answer(keyed("other@acme.example", "k-1").send().await.unwrap()).await;
    assert_eq!(status, 422);
    let (status, group) = answer(
        scim.request(Method::POST, "/Groups")
            .header("Content-Type", "application/scim+json")
            .header("Idempotency-Key", "g-1")
            .body(json!({"displayName": "Keyed"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let (status, again) = answer(
        scim.request(Method::POST, "/Groups")
            .header("Content-Type", "application/scim+json")
            .header("Idempotency-Key", "g-1")
            .body(json!({"displayName": "Keyed"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, again["id"].clone()), (201, group["id"].clone()));
}

async fn concurrent_changes_lose_nothing_and_versions_follow_what_is_shown(
    kind: iam_test_databases::Kind,
) {
    let scim = Scim::new(kind).await;
    let mut users = Vec::new();
    for n in 0..8 {
        users.push(id_of(&scim.create(&format!("c{n}@acme.example")).await));
    }
    // Eight members added to a plain group at once, one per request.
    let (_, group) = scim
        .post(
            "/Groups",
            json!({"displayName": "Busy", "externalId": "busy-1"}),
        )
        .await;
    let group_path = format!("/Groups/{}", id_of(&group));
    let adds = users.iter().map(|user| {
        scim.patch(
            &group_path,
            json!([{"op": "add", "path": "members", "value": [{"value": user}]}]),
        )
    });
    for (status, body) in futures::future::join_all(adds).await {
        assert_eq!(status, 200, "{body}");
    }
    let (_, busy) = scim.get(&group_path).await;
    assert_eq!(busy["members"].as_array().unwrap().len(), 8, "{busy}");
    // Removing externalId clears it.
    let (_, cleared) = scim
        .patch(&group_path, json!([{"op": "remove", "path": "externalId"}]))
        .await;
    assert!(cleared.get("externalId").is_none(), "{cleared}");

    // Role moves that race: u leaves Account Administrator for End User
    // while v joins Account Administrator, and w is deactivated while it
    // joins Network Administrator. Nothing either did is undone.
    let (_, roles) = scim.get("/Groups?excludedAttributes=members").await;
    let role_group = |name: &str| {
        let id = roles["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["displayName"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        format!("/Groups/{id}")
    };
    let (u, v, w) = (&users[0], &users[1], &users[2]);
    let scim = &scim;
    let add = |group: String, user: &String| {
        let operations = json!([{"op": "add", "path": "members", "value": [{"value": user}]}]);
        async move { scim.patch(&group, operations).await }
    };
    assert_eq!(add(role_group("Account Administrator"), u).await.0, 200);
    let w_path = format!("/Users/{w}");
    let deactivate = scim.patch(
        &w_path,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    let (a, b, c, d) = tokio::join!(
        add(role_group("End User"), u),
        add(role_group("Account Administrator"), v),
        add(role_group("Network Administrator"), w),
        deactivate,
    );
    for (status, body) in [a, b, c, d] {
        assert_eq!(status, 200, "{body}");
    }
    let role_of = |user: &String| {
        let path = format!("/Users/{user}");
        async move {
            let (_, body) = scim.get(&path).await;
            (
                body["roles"][0]["value"].as_str().unwrap().to_owned(),
                body["active"].clone(),
            )
        }
    };
    assert_eq!(role_of(u).await.0, "End User");
    assert_eq!(role_of(v).await.0, "Account Administrator");
    assert_eq!(
        role_of(w).await,
        ("Network Administrator".to_owned(), json!(false))
    );

    // A PATCH that removes every role leaves End User.
    let (status, body) = scim
        .patch(
            &format!("/Users/{v}"),
            json!([{"op": "remove", "path": "roles"}]),
        )
        .await;
    assert_eq!(
        (status, body["roles"][0]["value"].clone()),
        (200, json!("End User"))
    );

    // A user's version follows its groups: If-None-Match is not 304 once
    // its groups changed.
    let path = format!("/Users/{}", users[3]);
    let (_, before) = scim.get(&path).await;
    let version = before["meta"]["version"].as_str().unwrap().to_owned();
    let (status, _) = scim
        .patch(
            &group_path,
            json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[3])}]),
        )
        .await;
    assert_eq!(status, 200);
    let response = scim
        .request(Method::GET, &path)
        .header("If-None-Match", &version)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Its revision is unchanged, so a write with the old version still passes.
    let response = scim
        .request(Method::PATCH, &path)
        .header("If-Match", &version)
        .header("Content-Type", "application/scim+json")
        .body(
            json!({"Operations": [{"op": "replace", "path": "name.givenName", "value": "Kept"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A keyed create retried after its group was deleted answers the original.
    let keyed = || {
        scim.request(Method::POST, "/Groups")
            .header("Content-Type", "application/scim+json")
            .header("Idempotency-Key", "short-lived")
            .body(json!({"displayName": "Short-lived"}).to_string())
            .send()
    };
    let (status, first) = answer(keyed().await.unwrap()).await;
    assert_eq!(status, 201);
    assert_eq!(
        scim.delete(&format!("/Groups/{}", id_of(&first))).await,
        204
    );
    let (status, again) = answer(keyed().await.unwrap()).await;
    assert_eq!((status, again["id"].clone()), (201, first["id"].clone()));
}
