//! The IAM provisioning service as a library: configuration, start-up,
//! routes, telemetry. `main.rs` only reads the settings and calls
//! [`startup::Application::build`]; tests start the same application on
//! port 0.
//!
//! This is the only crate that knows actix-web.

mod caller;
pub mod configuration;
mod error;
pub mod feed;
mod limits;
mod negotiation;
mod openapi;
pub mod prometheus;
mod request_context;
mod routes;
mod security_headers;
pub mod startup;
pub mod telemetry;
pub mod throttle;
