//! Headers every answer carries: `X-Content-Type-Options: nosniff`, and on
//! the APIs (which answer with user data, or refuse to) `Cache-Control:
//! no-store` unless a route chose otherwise. HTML pages set their own
//! Content-Security-Policy (`routes::console`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// The paths whose answers carry user data.
const DATA_PATHS: [&str; 3] = ["/api/", "/scim/", "/cloudapi/"];

/// Adds the headers (inner middleware answers its refusals as responses,
/// not errors, so that they pass here too).
pub(crate) async fn add(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let data = DATA_PATHS
        .iter()
        .any(|prefix| request.path().starts_with(prefix));
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if data && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}
