//! Users as the application answers them: the row after a write, built
//! from what was decided, and a user as seen from the caller's organization.

use iam_domain::user::User;
use iam_domain::{OrgKind, UserId};
use iam_projections::read_models::UserRow;

use crate::{App, AppError, Caller};

/// The row of `user` at `revision`, as the users read model holds it: the
/// answer to a write, built from the state the write decided on and its
/// events rather than read back. `None` for a deleted user.
pub fn row_of(user: &User, revision: u64) -> Option<UserRow> {
    (!user.deleted).then(|| UserRow {
        id: user.id.to_string(),
        organization_id: user.organization.to_string(),
        user_name: user.user_name.as_str().to_owned(),
        email: user.email.as_str().to_owned(),
        given_name: user.given_name.clone(),
        family_name: user.family_name.clone(),
        state: user.state.as_str().to_owned(),
        roles: user.roles.clone(),
        created_at: user.created_at.timestamp_millis(),
        modified_at: user.modified_at.timestamp_millis(),
        revision: revision as i64,
        profile: user.profile.clone(),
        managed: user.managed,
    })
}

/// The user `id` as seen from the caller's effective organization: a user
/// whose home it is, or (in a tenant) one of its Organization Owners.
/// Anything else is 404, the same answer as for an id nobody has, so that
/// other organizations' users stay invisible (also to API tokens).
pub async fn visible_user(
    state: &App,
    caller: &Caller,
    id: &str,
) -> Result<(UserRow, bool), AppError> {
    let not_found =
        || AppError::not_found(format!("There is no user `{id}` in this organization."));
    let id = UserId::parse(id).ok_or_else(not_found)?.to_string();
    let row = state.read_models.user(&id).await?.ok_or_else(not_found)?;
    let effective = caller.effective.id.to_string();
    if row.organization_id == effective {
        return Ok((row, false));
    }
    if caller.effective.kind == OrgKind::Tenant
        && state.read_models.is_member(&effective, &id).await?
    {
        return Ok((row, true));
    }
    // A user of another organization: answered exactly as one that does
    // not exist, so that no caller learns that it does.
    Err(not_found())
}
