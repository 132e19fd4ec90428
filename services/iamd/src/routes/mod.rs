//! HTTP routes, one module per resource.

pub(crate) mod health;
