//! HTTP routes, one module per resource.

pub(crate) mod health;
pub(crate) mod login;
pub(crate) mod organizations;
pub(crate) mod paging;
pub(crate) mod role_queries;
pub(crate) mod roles;
pub(crate) mod tokens;
pub(crate) mod users;
