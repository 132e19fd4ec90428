//! Black-box tests: each starts the real `iamd` binary on port 0 with a
//! fresh SQLite file or a fresh PostgreSQL database, and speaks HTTP to it.

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod audit;
mod console;
mod crash;
mod deploy;
mod faults;
mod feed;
mod fuzz;
mod import;
mod isolation;
mod login;
mod organizations;
mod otlp;
mod passwords;
mod replicas;
mod schemathesis;
mod scim;
mod secrets;
mod startup;
mod tokens;
mod traces;
mod users;
mod vca_client;
mod workload;
