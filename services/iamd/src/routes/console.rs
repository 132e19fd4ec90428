//! `/console/`: the audit review page and the password-reset page. Their files are compiled into
//! the binary (no CDN: it works offline), and every answer forbids inline
//! script and every other origin. The page signs in with `/api/iam/login`
//! and keeps the session token in its memory, never in a URL.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, get, web};

/// What the page may load and where it may connect: itself only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");
const ICON: &str = include_str!("../../console/favicon.svg");
const RESET_PAGE: &str = include_str!("../../console/reset.html");
const RESET_SCRIPT: &str = include_str!("../../console/reset.js");

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut response = HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// `/console` without the slash: the page is at `/console/`.
#[get("/console")]
pub(crate) async fn bare() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

/// The page.
#[get("/console/")]
pub(crate) async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// Its script, style sheet and icon.
#[get("/console/{file}")]
pub(crate) async fn file(file: web::Path<String>) -> HttpResponse {
    match file.as_str() {
        "console.js" => asset("text/javascript; charset=utf-8", SCRIPT),
        "console.css" => asset("text/css; charset=utf-8", STYLE),
        "favicon.svg" => asset("image/svg+xml", ICON),
        // The page a password-reset mail links to.
        "reset.html" => asset("text/html; charset=utf-8", RESET_PAGE),
        "reset.js" => asset("text/javascript; charset=utf-8", RESET_SCRIPT),
        _ => HttpResponse::NotFound().finish(),
    }
}
