//! HTTP routes, one module per resource.

pub(crate) mod audit;
pub(crate) mod console;
pub(crate) mod fallback;
pub(crate) mod health;
pub(crate) mod login;
pub(crate) mod organizations;
pub(crate) mod paging;
pub(crate) mod passwords;
pub(crate) mod role_queries;
pub(crate) mod roles;
pub(crate) mod scim;
pub(crate) mod tokens;
pub(crate) mod users;

/// The `Idempotency-Key` header of a create, as text (a value that is not
/// text is passed as an empty string, which the application refuses).
pub(crate) fn idempotency_key(request: &actix_web::HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(iam_app::idempotency::IDEMPOTENCY_KEY)
        .map(|value| value.to_str().unwrap_or_default())
}
