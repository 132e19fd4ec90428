//! What the service knows of a request's origin, recorded in the metadata of
//! every event the request appends: its own id (always generated, echoed in
//! `X-Request-Id`), the `X-Request-Id` the client sent (kept beside it, never
//! instead of it), the client's address and its `User-Agent`.
//!
//! The address is the peer's. `X-Forwarded-For` is believed only when the
//! peer is a proxy listed in `IAM_TRUSTED_PROXIES`, and then only as far as
//! the chain of trusted proxies goes: the nearest address that is not one is
//! the client.

use std::net::IpAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use ipnet::IpNet;

use crate::startup::AppState;

const HEADER: &str = "x-request-id";
/// The longest client request id or user agent kept.
const MAX_LENGTH: usize = 256;

/// Where a request came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestContext {
    /// The server's id of the request.
    pub(crate) id: String,
    /// The `X-Request-Id` the client sent (a short printable value).
    pub(crate) client_id: Option<String>,
    /// The client's address.
    pub(crate) source_address: Option<String>,
    /// The client's `User-Agent`.
    pub(crate) user_agent: Option<String>,
    /// Whether the request is on SCIM 2.0 (an identity provider's token).
    pub(crate) scim: bool,
}

/// Records the request's context and echoes its id.
pub(crate) async fn assign(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| {
                !value.is_empty()
                    && value.len() <= MAX_LENGTH
                    && value.chars().all(|c| c == ' ' || c.is_ascii_graphic())
            })
            .map(str::to_owned)
    };
    let trusted = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.trusted_proxies.clone())
        .unwrap_or_default();
    let peer = request.peer_addr().map(|address| address.ip());
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let id = uuid::Uuid::new_v4().to_string();
    let context = RequestContext {
        id: id.clone(),
        client_id: header(HEADER).filter(|id| !id.contains(' ')),
        source_address: peer.map(|peer| client_address(peer, &forwarded, &trusted).to_string()),
        user_agent: header("user-agent"),
        scim: request.path().starts_with("/scim/"),
    };
    request.extensions_mut().insert(context);
    let mut response = next.call(request).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(HEADER), value);
    }
    Ok(response)
}

/// The client's address: `peer`, or, when `peer` is a trusted proxy, the
/// nearest address of `forwarded` (`X-Forwarded-For`, nearest last) that is
/// not a trusted proxy. What is not an address ends the walk.
fn client_address(peer: IpAddr, forwarded: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    for hop in forwarded.rsplit(',') {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let context = request.extensions().get::<RequestContext>().cloned();
        std::future::ready(Ok(context.unwrap_or_else(|| RequestContext {
            id: uuid::Uuid::new_v4().to_string(),
            client_id: None,
            source_address: None,
            user_agent: None,
            scim: false,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let chain = "198.51.100.7, 203.0.113.9, 10.1.1.1";
        assert_eq!(
            client_address(ip("192.0.2.1"), chain, &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), chain, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), "", &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), "nonsense", &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_address(ip("10.2.2.2"), "10.3.3.3", &trusted),
            ip("10.3.3.3")
        );
        assert_eq!(client_address(ip("127.0.0.1"), chain, &[]), ip("127.0.0.1"));
    }
}
