//! The vCloud Air dialect's content negotiation: clients ask for
//! `application/json;version=5.7`; any other version is 406. Bodies are
//! JSON of at most 1 MiB; anything else is refused in the dialect's error
//! format, before a handler runs.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::JsonPayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};

use crate::error::ApiError;

/// The API version this service speaks.
pub(crate) const API_VERSION: &str = "5.7";
/// The content type of every `/api` response.
pub(crate) const VCA_CONTENT_TYPE: &str = "application/json;version=5.7";
/// The largest request body accepted.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Refuses (406) a request whose `Accept` header admits no JSON of version 5.7.
pub(crate) async fn require_supported_version(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let accept: Vec<&str> = request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .collect();
    if request.path().starts_with("/api/")
        && !accept.is_empty()
        && !accepts_our_json(&accept.join(","))
    {
        let refusal = ApiError::new(
            actix_web::http::StatusCode::NOT_ACCEPTABLE,
            format!(
                "This service speaks version {API_VERSION} of the API; send Accept: {VCA_CONTENT_TYPE} \
                 (or no version)."
            ),
        );
        // A response, not an error: the outer middleware adds its headers.
        return Ok(request.error_response(refusal).map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether an `Accept` header admits `application/json;version=5.7`.
fn accepts_our_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let json = matches!(
            media.as_str(),
            "application/json" | "application/*" | "*/*" | ""
        );
        let version = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("version"))
            .map(|(_, value)| value.trim().trim_matches('"').to_owned());
        json && version.is_none_or(|version| version == API_VERSION)
    })
}

/// The JSON extractor's limits and error rendering.
pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .content_type(|mime| mime.essence_str() == "application/json")
        .error_handler(json_error)
}

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let status = actix_web::ResponseError::status_code(&error);
    let refusal = match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Send the body as JSON, with Content-Type: {VCA_CONTENT_TYPE}."),
        ),
        JsonPayloadError::Deserialize(error) => ApiError::bad_request(format!(
            "The body is not valid JSON for this request: {}.",
            without_the_value(&error.to_string())
        )),
        other => ApiError::new(
            status,
            format!("The request body could not be read: {other}."),
        ),
    };
    refusal.into()
}

/// A deserialization error without the value it quotes: serde says
/// "invalid type: string \"hunter2\", expected a boolean", and the value may
/// be a password sent in the wrong place. What is kept names the kind that
/// came, the kind expected, and where.
pub(crate) fn without_the_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        let Some(start) = message.find(prefix) else {
            continue;
        };
        let after = start + prefix.len();
        let rest = &message[after..];
        // The kind, then the value in backticks or double quotes, then ", expected".
        let Some(quote) = rest.find(['`', '"']) else {
            continue;
        };
        let Some(end) = rest.rfind(", expected") else {
            continue;
        };
        if end <= quote {
            continue;
        }
        return format!(
            "{}{}{}",
            &message[..after],
            rest[..quote].trim_end(),
            &rest[end..]
        );
    }
    message.to_owned()
}

/// A JSON response in the dialect's content type.
pub(crate) fn vca_json(
    status: actix_web::http::StatusCode,
    body: &impl serde::Serialize,
) -> actix_web::HttpResponse {
    actix_web::HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(VCA_CONTENT_TYPE),
        ))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::accepts_our_json;

    #[test]
    fn version_5_7_or_no_version_is_accepted_and_others_are_not() {
        for accept in [
            "application/json;version=5.7",
            "application/json",
            "*/*",
            "application/json; version=\"5.7\"",
            "text/html, application/json;version=5.7",
        ] {
            assert!(accepts_our_json(accept), "{accept}");
        }
        for accept in [
            "application/json;version=5.6",
            "application/xml",
            "text/html",
        ] {
            assert!(!accepts_our_json(accept), "{accept}");
        }
    }
}

#[cfg(test)]
mod value_tests {
    use super::without_the_value;

    #[test]
    fn a_value_in_the_wrong_place_is_not_repeated() {
        assert_eq!(
            without_the_value(
                "invalid type: integer `12345678`, expected a string at line 1 column 20"
            ),
            "invalid type: integer, expected a string at line 1 column 20"
        );
        assert_eq!(
            without_the_value(
                r#"invalid type: string "hunter2, expected", expected a boolean at line 1 column 9"#
            ),
            "invalid type: string, expected a boolean at line 1 column 9"
        );
        assert_eq!(
            without_the_value("missing field `email` at line 1 column 2"),
            "missing field `email` at line 1 column 2"
        );
    }
}
