//! Who is calling, and in which organization.
//!
//! Missing credentials are refused as forbidden, invalid or expired ones as
//! unauthenticated (as the vCloud Air API answers). The tenant context names
//! the effective organization: provider users may name tenants of their
//! provider, tenant users only their own organization; anything else is
//! forbidden. An API token acts only in its own organization, checked here,
//! before any permission check.

use iam_domain::policy::{Actor, may_act_in, token_authentication_enabled};
use iam_domain::{OrgId, OrgKind, Organization, UserId};
use iam_projections::read_models::{OrganizationRow, UserRow};

use crate::credentials;
use crate::recent_callers::Resolved;
use crate::{App, AppError};

/// The refusal of a token used outside its organization (SPEC §4, verbatim).
pub const TOKEN_NOT_SCOPED: &str = "API token is not scoped to this organization.";

/// An authenticated caller and the organization it acts in.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller as the policy sees it.
    pub actor: Actor,
    /// The caller's user row.
    pub user: UserRow,
    /// The organization the request works on.
    pub effective: Organization,
    /// Whether the caller authenticated with an API token (then every
    /// resource outside the token's organization is refused with
    /// [`TOKEN_NOT_SCOPED`]).
    pub via_token: bool,
    /// The id of that API token.
    pub token_id: Option<String>,
    /// Whether the caller's session may only change its password (it
    /// logged in with a generated bootstrap password).
    pub must_change_password: bool,
}

impl Caller {
    /// 403 with [`TOKEN_NOT_SCOPED`] when the caller authenticated with an
    /// API token and `organization` is not the token's; sessions pass.
    pub fn require_token_scope(&self, organization: OrgId) -> Result<(), AppError> {
        if self.via_token && organization != self.effective.id {
            return Err(AppError::forbidden(TOKEN_NOT_SCOPED));
        }
        Ok(())
    }
}

/// A read-model organization as the domain sees it.
pub fn organization(row: &OrganizationRow) -> Option<Organization> {
    Some(Organization {
        id: OrgId::parse(&row.id)?,
        name: row.name.clone(),
        kind: if row.kind == "Provider" {
            OrgKind::Provider
        } else {
            OrgKind::Tenant
        },
        provider: row.provider_id.as_deref().and_then(OrgId::parse),
        delegates_user_management: row.delegates,
        members: Default::default(),
    })
}

/// Authenticates a request from its `Authorization` header and, if sent,
/// its `X-VMware-VCloud-Tenant-Context` header (`None` for a header that is
/// absent; a value that is not text is passed as an empty string). Missing
/// credentials are refused as forbidden, invalid ones as unauthenticated.
pub async fn authenticate(
    state: &App,
    authorization: Option<&str>,
    tenant_context: Option<&str>,
) -> Result<Caller, AppError> {
    let Some(authorization) = authorization else {
        return Err(AppError::forbidden(
            "Authentication is required: log in with POST /api/iam/login and send Authorization: Bearer <token>.",
        ));
    };
    let session_invalid =
        || AppError::unauthorized("The session token is invalid or has expired; log in again.");
    let (scheme, token) = authorization
        .trim()
        .split_once(' ')
        .ok_or_else(session_invalid)?;
    let via_token = scheme.eq_ignore_ascii_case("token");
    // Once the credential is read, what can still go missing (a user deleted
    // meanwhile, say) is explained in the credential's own terms.
    let invalid = move || {
        if via_token {
            AppError::unauthorized(TOKEN_INVALID)
        } else {
            session_invalid()
        }
    };
    // A session or an API token costs one indexed read (the credential
    // joined with its user), or none when the same credential was resolved
    // in the last half second. Organizations come from memory after their
    // first read.
    let hash = credentials::sha256_hex(token.trim());
    let key = format!("{}:{hash}", if via_token { "token" } else { "bearer" });
    let resolved = match state.recent_callers.get(&key) {
        Some(resolved) => resolved,
        None => {
            let now = chrono::Utc::now().timestamp_millis();
            let resolved = if via_token {
                let holder = api_token_holder(state, token.trim(), &hash, now).await;
                let outcome = if holder.is_ok() {
                    "accepted"
                } else {
                    "refused"
                };
                metrics::counter!("iam_token_authentications_total", "outcome" => outcome)
                    .increment(1);
                holder?
            } else if scheme.eq_ignore_ascii_case("bearer") {
                let (user, must_change_password) = state
                    .read_models
                    .user_of_session(&hash, now)
                    .await?
                    .ok_or_else(invalid)?;
                Resolved {
                    user,
                    token_scope: None,
                    token_id: None,
                    must_change_password,
                }
            } else {
                return Err(AppError::unauthorized(
                    "Send Authorization: Bearer <session token> or Token <API token> (Basic credentials are \
                     accepted only by POST /api/iam/login).",
                ));
            };
            state.recent_callers.insert(key, resolved.clone());
            resolved
        }
    };
    let Resolved {
        user,
        token_scope,
        token_id,
        must_change_password,
    } = resolved;
    if user.state != "Active" {
        return Err(AppError::unauthorized(
            "The user is inactive; an administrator can activate it again.",
        ));
    }
    let home_row = state
        .read_models
        .organization(&user.organization_id)
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("user {} has no organization", user.id))
        })?;
    let home = organization(&home_row).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "organization {} is unreadable",
            home_row.id
        ))
    })?;
    let actor = Actor {
        user: UserId::parse(&user.id).ok_or_else(invalid)?,
        home: home.id,
        home_kind: home.kind,
        roles: user.roles.clone(),
    };
    // An API token acts only in its organization: checked here, before any
    // permission check, so that a foreign organization always hears why.
    if let Some(scope) = &token_scope {
        let named = tenant_context.map(|v| OrgId::parse(v.trim()));
        if named.is_some_and(|named| named.map(|id| id.to_string()).as_ref() != Some(scope)) {
            return Err(AppError::forbidden(TOKEN_NOT_SCOPED));
        }
        // The user's roles may have changed since the token was downloaded.
        token_authentication_enabled(&actor.roles)
            .map_err(|denied| AppError::forbidden(denied.0))?;
        let row = state
            .read_models
            .organization(scope)
            .await?
            .ok_or_else(invalid)?;
        let effective = organization(&row).ok_or_else(invalid)?;
        return Ok(Caller {
            actor,
            user,
            effective,
            via_token: true,
            token_id,
            must_change_password: false,
        });
    }
    let effective = match tenant_context {
        None => home,
        Some(value) => {
            let named = value.trim();
            let unknown = || {
                AppError::forbidden(format!(
                    "Organization `{named}` named by X-VMware-VCloud-Tenant-Context does not exist or is not \
                     visible to you."
                ))
            };
            let row = match OrgId::parse(named) {
                Some(id) => state.read_models.organization(&id.to_string()).await?,
                None => None,
            };
            let organization = row.as_ref().and_then(organization).ok_or_else(unknown)?;
            // One answer whether the organization exists or not.
            may_act_in(&actor, &organization).map_err(|_| unknown())?;
            organization
        }
    };
    Ok(Caller {
        actor,
        user,
        effective,
        via_token: false,
        token_id: None,
        must_change_password,
    })
}

/// The refusal of an API token that does not authenticate (401).
const TOKEN_INVALID: &str =
    "The API token is invalid, revoked or expired; download a new one, or log in with a password.";

/// The user and organization of an enabled API token whose secret hashes
/// to `hash`, or 401.
async fn api_token_holder(
    state: &App,
    secret: &str,
    hash: &str,
    now: i64,
) -> Result<Resolved, AppError> {
    use subtle::ConstantTimeEq;
    let invalid = || AppError::unauthorized(TOKEN_INVALID);
    // A malformed secret (wrong prefix, length or checksum) costs no lookup.
    if !iam_domain::token_secret::is_well_formed(secret) {
        return Err(invalid());
    }
    let holder = state
        .read_models
        .user_of_token(hash, now)
        .await?
        .ok_or_else(invalid)?;
    let matches: bool = holder.secret_hash.as_bytes().ct_eq(hash.as_bytes()).into();
    if !matches || holder.status != "Enabled" {
        return Err(invalid());
    }
    Ok(Resolved {
        user: holder.user,
        token_scope: Some(holder.organization_id),
        token_id: Some(holder.token_id),
        must_change_password: false,
    })
}
