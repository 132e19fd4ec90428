//! The `Caller` extractor: authenticates a request through the application
//! layer ([`iam_app::authentication`]) from its `Authorization` and
//! `X-VMware-VCloud-Tenant-Context` headers.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, web};

use crate::error::ApiError;
use crate::startup::AppState;

/// The tenant-context header (matched case-insensitively, like every header).
pub(crate) const TENANT_CONTEXT: &str = "x-vmware-vcloud-tenant-context";

/// The refusal of a request that names more than one tenant: which one it
/// means cannot be guessed.
pub(crate) fn several_tenant_contexts(request: &HttpRequest) -> Option<String> {
    let count = request.headers().get_all(TENANT_CONTEXT).count();
    (count > 1).then(|| {
        format!("Send one X-VMware-VCloud-Tenant-Context header; this request has {count}.")
    })
}

/// An authenticated caller and the organization it acts in.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) iam_app::Caller);

impl Deref for Caller {
    type Target = iam_app::Caller;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { Ok(authenticate(&request).await?) })
    }
}

async fn authenticate(request: &HttpRequest) -> Result<Caller, ApiError> {
    if let Some(refusal) = several_tenant_contexts(request) {
        return Err(ApiError::bad_request(refusal));
    }
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state is missing")))?;
    // A header that is not text is passed as text that matches nothing.
    let header = |name| {
        request
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap_or_default())
    };
    let caller = iam_app::authentication::authenticate(
        &state.app,
        header(actix_web::http::header::AUTHORIZATION.as_str()),
        header(TENANT_CONTEXT),
    )
    .await?;
    if caller.must_change_password && !changes_password_or_leaves(request) {
        return Err(ApiError::forbidden(MUST_CHANGE_PASSWORD));
    }
    Ok(Caller(caller))
}

/// The refusal of a session opened with a generated password: it may only
/// change the password (or log out).
pub(crate) const MUST_CHANGE_PASSWORD: &str = "Your password was generated at the first start: change it before anything else, with      PUT /api/iam/Users/password and {\"currentPassword\", \"newPassword\"}.";

/// Whether `request` is the password change or the logout.
fn changes_password_or_leaves(request: &HttpRequest) -> bool {
    let method = request.method();
    let path = request.path().trim_end_matches('/');
    (method == actix_web::http::Method::PUT && path == "/api/iam/Users/password")
        || (method == actix_web::http::Method::POST && path == "/api/iam/logout")
}
