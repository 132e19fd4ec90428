//! `X-Request-Id`: taken from the request when a client sends one (a short
//! printable value), generated otherwise, echoed on the response and
//! recorded in the metadata of every event the request appends.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

const HEADER: &str = "x-request-id";
const MAX_LENGTH: usize = 128;

/// The request's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestId(pub String);

/// Assigns the request id and echoes it.
pub(crate) async fn assign(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let given = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| {
            !value.is_empty()
                && value.len() <= MAX_LENGTH
                && value.chars().all(|c| c.is_ascii_graphic())
        });
    let id = given.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.call(request).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
    Ok(response)
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let id = request.extensions().get::<RequestId>().cloned();
        std::future::ready(Ok(
            id.unwrap_or_else(|| RequestId(uuid::Uuid::new_v4().to_string()))
        ))
    }
}
