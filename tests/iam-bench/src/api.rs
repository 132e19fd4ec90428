//! The calls the benchmark makes on iamd's vCloud Air identity API: the
//! set-up (login, tenant, API token) and the requests the load phases repeat.
//!
//! Every call checks the status it expects and reads the whole body, so
//! that the connection goes back to the pool and a failure says what the
//! service answered. Nothing here measures time: that is `load`'s job.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

/// The vCloud Air dialect's media type.
const VCA_JSON: &str = "application/json;version=5.7";
/// The header a provider user names a tenant with.
const TENANT_CONTEXT: &str = "X-VMware-VCloud-Tenant-Context";
/// How much of an unexpected body an error message quotes.
const QUOTED_BODY_CHARS: usize = 300;

/// How a request authenticates: its whole `Authorization` header value.
#[derive(Debug, Clone)]
pub(crate) struct Credential(Arc<str>);

impl Credential {
    /// A login session (`Authorization: Bearer …`).
    pub(crate) fn session(token: &str) -> Self {
        Self(format!("Bearer {token}").into())
    }

    /// An API token (`Authorization: Token iam_…`).
    pub(crate) fn api_token(secret: &str) -> Self {
        Self(format!("Token {secret}").into())
    }

    /// An API token's secret, as `iamctl` takes it in `IAM_TOKEN`; empty for
    /// a session.
    pub(crate) fn secret(&self) -> &str {
        self.0.strip_prefix("Token ").unwrap_or_default()
    }
}

/// A client of one iamd, with a pool of keep-alive connections.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: Arc<str>,
}

/// The part of a user the benchmark needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    pub(crate) id: String,
    #[serde(rename = "userName")]
    pub(crate) user_name: String,
}

#[derive(Debug, Deserialize)]
struct Users {
    users: Vec<User>,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Secret {
    token: String,
}

#[derive(Debug, Deserialize)]
struct Readiness {
    #[serde(default)]
    projectors: Vec<Projector>,
}

#[derive(Debug, Deserialize)]
struct Projector {
    lag: u64,
}

impl Api {
    /// A client of the service at `base` (`http://HOST:PORT`) that keeps up
    /// to `connections` idle connections open between requests.
    pub(crate) fn new(base: &str, connections: usize) -> Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(None)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.into(),
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        credential: &Credential,
        tenant: Option<&str>,
    ) -> RequestBuilder {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &*credential.0)
            .header("Accept", VCA_JSON);
        match tenant {
            Some(tenant) => request.header(TENANT_CONTEXT, tenant),
            None => request,
        }
    }

    /// Logs in with Basic credentials; returns the session.
    pub(crate) async fn login(&self, user: &str, password: &str) -> Result<Credential> {
        let response = self
            .client
            .post(format!("{}/api/iam/login", self.base))
            .basic_auth(user, Some(password))
            .header("Accept", VCA_JSON)
            .send()
            .await
            .context("login: request failed")?;
        let token = response
            .headers()
            .get("vchs-authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        expect(response, StatusCode::CREATED, "login").await?;
        let token = token.context("login: no vchs-authorization header in the answer")?;
        Ok(Credential::session(&token))
    }

    /// Creates a tenant organization; returns its id.
    pub(crate) async fn create_tenant(&self, admin: &Credential, name: &str) -> Result<String> {
        let response = self
            .request(Method::POST, "/api/orgs", admin, None)
            .json(&json!({ "name": name }))
            .send()
            .await
            .context("create tenant: request failed")?;
        let created: Created = parse(
            &expect(response, StatusCode::CREATED, "create tenant").await?,
            "create tenant",
        )?;
        Ok(created.id)
    }

    /// Creates an End User named `user_name` in `tenant`; returns its id.
    pub(crate) async fn create_user(
        &self,
        credential: &Credential,
        tenant: &str,
        user_name: &str,
    ) -> Result<String> {
        let response = self
            .request(Method::POST, "/api/iam/Users", credential, Some(tenant))
            .json(&json!({
                "schemas": ["urn:scim:schemas:core:1.0"],
                "state": "Active",
                "email": user_name,
                "familyName": "Hill",
                "givenName": "Jill",
                "roles": { "roles": [{ "name": "End User" }] },
                "userName": user_name,
            }))
            .send()
            .await
            .context("create user: request failed")?;
        let created: Created = parse(
            &expect(response, StatusCode::CREATED, "create user").await?,
            "create user",
        )?;
        Ok(created.id)
    }

    /// Creates an Account Administrator named `user_name` with `password` in
    /// `tenant`; returns its id.
    pub(crate) async fn create_tenant_admin(
        &self,
        credential: &Credential,
        tenant: &str,
        user_name: &str,
        password: &str,
    ) -> Result<String> {
        let response = self
            .request(Method::POST, "/api/iam/Users", credential, Some(tenant))
            .json(&json!({
                "schemas": ["urn:scim:schemas:core:1.0"],
                "state": "Active",
                "email": user_name,
                "familyName": "Provisioner",
                "givenName": "Scim",
                "roles": { "roles": [{ "name": "Account Administrator" }] },
                "userName": user_name,
                "password": password,
            }))
            .send()
            .await
            .context("create tenant administrator: request failed")?;
        let created: Created = parse(
            &expect(response, StatusCode::CREATED, "create tenant administrator").await?,
            "create tenant administrator",
        )?;
        Ok(created.id)
    }

    /// Creates `count` End Users in one SCIM 2.0 Bulk request, as an
    /// identity provider would, with the token of the tenant's
    /// administrator; fails unless every operation answered 201.
    pub(crate) async fn bulk_create(
        &self,
        token: &Credential,
        prefix: &str,
        count: usize,
    ) -> Result<()> {
        let operations: Vec<serde_json::Value> = (0..count)
            .map(|n| {
                let user_name = format!("{prefix}-{n}@bench.example.com");
                json!({
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": format!("u{n}"),
                    "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": user_name,
                        "name": {"givenName": "Bulk", "familyName": "User"},
                        "emails": [{"value": user_name, "type": "work", "primary": true}],
                        "externalId": format!("{prefix}-{n}"),
                        "active": true,
                    },
                })
            })
            .collect();
        let response = self
            .client
            .post(format!("{}/scim/v2/Bulk", self.base))
            .header("Authorization", &*token.0)
            .header("Content-Type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": operations,
                })
                .to_string(),
            )
            .send()
            .await
            .context("bulk: request failed")?;
        let body = expect(response, StatusCode::OK, "bulk").await?;
        let answer: serde_json::Value = parse(&body, "bulk")?;
        let created = answer["Operations"].as_array().map_or(0, |operations| {
            operations.iter().filter(|o| o["status"] == "201").count()
        });
        if created != count {
            bail!(
                "bulk: {created} of {count} users were created: {}",
                quote(&body)
            );
        }
        Ok(())
    }

    /// Reads one user by id.
    pub(crate) async fn get_user(
        &self,
        credential: &Credential,
        tenant: Option<&str>,
        id: &str,
    ) -> Result<()> {
        let response = self
            .request(
                Method::GET,
                &format!("/api/iam/Users/{id}"),
                credential,
                tenant,
            )
            .send()
            .await
            .context("get user: request failed")?;
        expect(response, StatusCode::OK, "get user").await?;
        Ok(())
    }

    /// Finds a user with `filter=userName eq "…"`; fails unless there is
    /// exactly one.
    pub(crate) async fn find_user(
        &self,
        credential: &Credential,
        tenant: Option<&str>,
        user_name: &str,
    ) -> Result<User> {
        let filter = format!("userName eq \"{user_name}\"");
        let response = self
            .request(Method::GET, "/api/iam/Users", credential, tenant)
            .query(&[("filter", filter.as_str())])
            .send()
            .await
            .context("find user: request failed")?;
        let found: Users = parse(
            &expect(response, StatusCode::OK, "find user").await?,
            "find user",
        )?;
        match <[User; 1]>::try_from(found.users) {
            Ok([user]) => Ok(user),
            Err(users) => bail!(
                "find user: {} users named {user_name}, expected one",
                users.len()
            ),
        }
    }

    /// Finds a user with SCIM 2.0 `filter=externalId eq "…"`; fails unless
    /// there is exactly one.
    pub(crate) async fn scim_find_external_id(
        &self,
        token: &Credential,
        external_id: &str,
    ) -> Result<()> {
        let filter = format!("externalId eq \"{external_id}\"");
        let response = self
            .client
            .get(format!("{}/scim/v2/Users", self.base))
            .header("Authorization", &*token.0)
            .query(&[("filter", filter.as_str())])
            .send()
            .await
            .context("SCIM find user: request failed")?;
        let body = expect(response, StatusCode::OK, "SCIM find user").await?;
        let answer: serde_json::Value = parse(&body, "SCIM find user")?;
        if answer["totalResults"] != 1 {
            bail!(
                "SCIM find user: {} users with externalId {external_id}, expected one",
                answer["totalResults"]
            );
        }
        Ok(())
    }

    /// Creates an API token for `user` in the caller's own organization and
    /// downloads its secret.
    pub(crate) async fn create_api_token(
        &self,
        owner: &Credential,
        user: &str,
    ) -> Result<Credential> {
        let tokens = format!("/api/iam/Users/{user}/tokens");
        let response = self
            .request(Method::POST, &tokens, owner, None)
            .json(&json!({ "name": "bench", "description": "bench", "lifetimeDays": 1 }))
            .send()
            .await
            .context("create token: request failed")?;
        let created: Created = parse(
            &expect(response, StatusCode::CREATED, "create token").await?,
            "create token",
        )?;
        let response = self
            .request(
                Method::POST,
                &format!("{tokens}/{}/download", created.id),
                owner,
                None,
            )
            .send()
            .await
            .context("download token: request failed")?;
        let secret: Secret = parse(
            &expect(response, StatusCode::OK, "download token").await?,
            "download token",
        )?;
        Ok(Credential::api_token(&secret.token))
    }

    /// `GET /healthz`, without credentials.
    pub(crate) async fn health(&self) -> Result<()> {
        let response = self
            .client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .context("healthz: request failed")?;
        expect(response, StatusCode::OK, "healthz").await?;
        Ok(())
    }

    /// How many events the furthest-behind projector still has to apply,
    /// from `/readyz` (which lists them whether it answers 200 or 503).
    pub(crate) async fn projection_lag(&self) -> Result<u64> {
        let response = self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .context("readyz: request failed")?;
        let body = response.bytes().await.context("readyz: body lost")?;
        let readiness: Readiness = parse(&body, "readyz")?;
        Ok(readiness
            .projectors
            .iter()
            .map(|projector| projector.lag)
            .max()
            .unwrap_or(0))
    }
}

/// Reads the body of `response`; fails unless its status is `expected`.
async fn expect(response: Response, expected: StatusCode, what: &str) -> Result<Vec<u8>> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("{what}: the body of the answer was lost"))?;
    if status != expected {
        bail!(
            "{what}: HTTP {status} (expected {expected}): {}",
            quote(&body)
        );
    }
    Ok(Vec::from(body))
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(body)
        .with_context(|| format!("{what}: unexpected body: {}", quote(body)))
}

/// The start of a body, for an error message.
fn quote(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(QUOTED_BODY_CHARS)
        .collect()
}
