//! `POST /api/iam/login`: Basic credentials for a session token.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiError;
use crate::negotiation::vca_json;
use crate::request_context::RequestContext;
use crate::routes::users::{cause, request_cause};
use crate::startup::AppState;
use iam_app::commands::{Authentication, Cause, record_login};
use iam_app::credentials;
use iam_domain::login::{LoginEvent, LoginFailure};
use iam_domain::{OrgId, UserId};

/// The one answer for every failed login, so that it does not tell whether
/// the user exists.
const REFUSED: &str = "The user name or password is incorrect, or the user is inactive.";

/// The longest user name there is (an address: RFC 5321's 254 octets).
const MAX_USER_NAME_CHARS: usize = 254;

/// Logs in: 201 with the session token in `vchs-authorization`.
#[utoipa::path(
    tag = "session",
    description = "Log in with Basic credentials; the session token comes back in the `vchs-authorization` header.",
    responses(
        (status = 201, description = "Logged in", body = inline(serde_json::Value),
         headers(("vchs-authorization" = String, description = "The session token, for `Authorization: Bearer`"))),
        (status = 401, description = "Wrong user name or password, or an inactive user", body = iam_scim::error::ErrorBody),
        (status = 403, description = "No credentials", body = iam_scim::error::ErrorBody),
    ),
    security(("basic" = []))
)]
#[post("/api/iam/login")]
#[tracing::instrument(skip_all)]
pub(crate) async fn login(
    state: web::Data<AppState>,
    http: HttpRequest,
    context: RequestContext,
) -> Result<HttpResponse, ApiError> {
    let Some(authorization) = http.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::forbidden(
            "Send Authorization: Basic <base64 of userName:password> to log in.",
        ));
    };
    let (user_name, password) = basic_credentials(authorization.to_str().unwrap_or_default())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "The Authorization header must be Basic <base64 of userName:password>.",
            )
        })?;
    // No user has a longer name: refused before it is counted, looked up
    // or audited (a name is kept in memory and in the log).
    if user_name.chars().count() > MAX_USER_NAME_CHARS {
        return Err(ApiError::unauthorized(REFUSED));
    }
    let address = context.source_address.as_deref();
    if let Err(refused) = state.login_throttle.check(&user_name, address) {
        return throttled(&state, &context, &user_name, refused).await;
    }
    let user = state.read_models.user_by_name(&user_name).await?;
    let hash = match &user {
        Some(user) => credentials::password_hash(&state.read_models, &user.id)
            .await
            .map_err(ApiError::internal)?,
        None => None,
    };
    // Verify even for an unknown user (against a decoy), so that both take as long.
    let verified = credentials::verify_password(password, hash).await?;
    let at = chrono::Utc::now();
    // Every attempt is audited in the organization of the user it names; an
    // unknown name in the provider's. The caller hears one answer for all.
    let (event, accepted) = match &user {
        None => {
            let provider = state.read_models.provider().await?;
            let organization = provider
                .as_ref()
                .and_then(|row| OrgId::parse(&row.id))
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no provider organization")))?;
            let event = LoginEvent::LoginFailed {
                user: None,
                organization,
                user_name: user_name.clone(),
                reason: LoginFailure::UnknownUser,
                at,
            };
            (event, None)
        }
        Some(row) => {
            let id = UserId::parse(&row.id);
            let organization = OrgId::parse(&row.organization_id);
            let (Some(id), Some(organization)) = (id, organization) else {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "user {} is unreadable",
                    row.id
                )));
            };
            let failure = if !verified {
                Some(LoginFailure::WrongPassword)
            } else if row.state != "Active" {
                Some(LoginFailure::Inactive)
            } else {
                None
            };
            match failure {
                Some(reason) => (
                    LoginEvent::LoginFailed {
                        user: Some(id),
                        organization,
                        user_name: row.user_name.clone(),
                        reason,
                        at,
                    },
                    None,
                ),
                None => (
                    LoginEvent::LoginSucceeded {
                        user: id,
                        organization,
                        user_name: row.user_name.clone(),
                        at,
                    },
                    Some(row),
                ),
            }
        }
    };
    let cause = Cause {
        actor: accepted.map(|row| row.id.clone()),
        actor_user_name: accepted.map(|row| row.user_name.clone()),
        actor_organization: accepted.map(|row| row.organization_id.clone()),
        organization: Some(event.organization().to_string()),
        ..request_cause(&context, Authentication::Password)
    };
    record_login(&state.app, &event, &cause).await?;
    let outcome = if accepted.is_some() {
        "succeeded"
    } else {
        "failed"
    };
    metrics::counter!("iam_logins_total", "outcome" => outcome).increment(1);
    let Some(user) = accepted else {
        // Each failure holds the answer back a little longer (the limit
        // then refuses the name or address outright).
        let delay = state.login_throttle.failed(&user_name, address);
        tokio::time::sleep(delay).await;
        return Err(ApiError::unauthorized(REFUSED));
    };
    state.login_throttle.succeeded(&user_name);
    let session = credentials::open_session(&state.read_models, &user.id, state.session_ttl)
        .await
        .map_err(ApiError::internal)?;
    let body = if session.must_change_password {
        json!({
            "serviceGroupIds": [],
            "passwordChangeRequired": true,
            "message": crate::caller::MUST_CHANGE_PASSWORD,
        })
    } else {
        json!({ "serviceGroupIds": [] })
    };
    let mut response = vca_json(StatusCode::CREATED, &body);
    let value = HeaderValue::from_str(&session.token).map_err(ApiError::internal)?;
    let headers = response.headers_mut();
    headers.insert(HeaderName::from_static("vchs-authorization"), value);
    // The answer carries a credential: no cache keeps it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// 429 with `Retry-After` for a name or address that failed too often, the
/// same whether the user exists; the lockout's first refusal is audited
/// like any failed login (the rest would only grow the log).
async fn throttled(
    state: &AppState,
    context: &RequestContext,
    user_name: &str,
    refused: crate::throttle::Refused,
) -> Result<HttpResponse, ApiError> {
    let answer = refused.answer("logins");
    metrics::counter!("iam_logins_total", "outcome" => "throttled").increment(1);
    if !refused.first {
        return Err(answer);
    }
    let row = state.read_models.user_by_name(user_name).await?;
    let organization = match &row {
        Some(row) => OrgId::parse(&row.organization_id),
        None => state
            .read_models
            .provider()
            .await?
            .and_then(|provider| OrgId::parse(&provider.id)),
    }
    .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no organization to audit the login in")))?;
    let event = LoginEvent::LoginFailed {
        user: row.as_ref().and_then(|row| UserId::parse(&row.id)),
        organization,
        user_name: row.map_or_else(|| user_name.to_owned(), |row| row.user_name),
        reason: LoginFailure::Throttled,
        at: chrono::Utc::now(),
    };
    let cause = Cause {
        organization: Some(organization.to_string()),
        ..request_cause(context, Authentication::Password)
    };
    record_login(&state.app, &event, &cause).await?;
    Err(answer)
}

/// Ends the caller's session at once: 204. An API token is revoked instead.
#[utoipa::path(
    tag = "session",
    responses(
        (status = 204, description = "The session has ended"),
        (status = 400, description = "The caller used an API token, which is revoked rather than logged out", body = iam_scim::error::ErrorBody),
        (status = 401, description = "No valid session", body = iam_scim::error::ErrorBody),
    ),
)]
#[post("/api/iam/logout")]
#[tracing::instrument(skip_all)]
pub(crate) async fn logout(
    state: web::Data<AppState>,
    caller: Caller,
    http: HttpRequest,
    context: RequestContext,
) -> Result<HttpResponse, ApiError> {
    if caller.via_token {
        return Err(ApiError::bad_request(
            "Logout ends a session; an API token is revoked instead \
             (POST /api/iam/Users/{id}/tokens/{tokenId}/revoke).",
        ));
    }
    let token = http
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    state
        .app
        .end_session(token)
        .await
        .map_err(ApiError::internal)?;
    let (Some(user), Some(organization)) = (
        UserId::parse(&caller.user.id),
        OrgId::parse(&caller.user.organization_id),
    ) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "the caller is unreadable"
        )));
    };
    let event = LoginEvent::LoggedOut {
        user,
        organization,
        user_name: caller.user.user_name.clone(),
        at: chrono::Utc::now(),
    };
    let mut cause = cause(&caller, &context);
    cause.organization = Some(organization.to_string());
    record_login(&state.app, &event, &cause).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `{"instances": []}`: this service holds no compute instances. The
/// published vCloud Air client (pyvcloud's `VCA`) asks for them after every
/// login.
#[utoipa::path(
    tag = "session",
    responses((status = 200, description = "`{\"instances\": []}`", body = inline(serde_json::Value))),
)]
#[get("/api/sc/instances")]
pub(crate) async fn instances(_caller: Caller) -> HttpResponse {
    vca_json(StatusCode::OK, &json!({ "instances": [] }))
}

/// `(userName, password)` from a Basic header value.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user_name, password) = decoded.split_once(':')?;
    Some((user_name.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::basic_credentials;

    #[test]
    fn basic_credentials_are_decoded() {
        // "jill@example.com:pa:ss" — the password may contain colons.
        let header = "Basic amlsbEBleGFtcGxlLmNvbTpwYTpzcw==";
        assert_eq!(
            basic_credentials(header),
            Some(("jill@example.com".into(), "pa:ss".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }
}
