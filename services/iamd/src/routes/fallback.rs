//! What answers a request no route takes, and a query string that cannot be
//! read: in the error form of the dialect the path belongs to (SCIM 2.0
//! under `/scim/`, the vCloud Air SCIM 1.1 form elsewhere), never an empty
//! body or plain text.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::routes::scim::ScimApiError;

fn refusal(request: &HttpRequest, status: u16, message: String) -> actix_web::Error {
    if request.path().starts_with("/scim/") {
        return ScimApiError::new(status, None, message).into();
    }
    match status {
        404 => ApiError::not_found(message).into(),
        _ => ApiError::bad_request(message).into(),
    }
}

/// 404 for a path no route serves.
pub(crate) async fn not_found(request: HttpRequest) -> HttpResponse {
    let message = format!(
        "No such resource: {} {}. The API is described at /api-docs/openapi.json.",
        request.method(),
        request.path()
    );
    refusal(&request, 404, message).error_response()
}

/// The query-string extractor's configuration: a query that cannot be read
/// is a 400 that says which parameter and what it expects, in the
/// dialect's form. The value itself is never repeated.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, request| {
        let reason = without_values(&match &error {
            actix_web::error::QueryPayloadError::Deserialize(inner) => inner.to_string(),
            other => other.to_string(),
        });
        refusal(
            request,
            400,
            format!("The query string cannot be read: {reason}."),
        )
    })
}

/// `text` with every value it quotes (between backticks, as serde quotes
/// them) left out: a query string may carry a secret by mistake.
fn without_values(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    for (index, part) in text.split('`').enumerate() {
        kept.push_str(if index % 2 == 0 { part } else { "…" });
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn quoted_values_are_left_out_of_messages() {
        assert_eq!(
            without_values("unknown variant `hunter2`, expected `a` or `b`"),
            "unknown variant …, expected … or …"
        );
        assert_eq!(
            without_values("invalid digit found in string"),
            "invalid digit found in string"
        );
    }
}
