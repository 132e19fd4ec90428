//! Users as the application answers them: the row after a write, built
//! from what was decided, and a user as seen from the caller's organization.

use iam_domain::user::UserEvent;
use iam_domain::{OrgId, OrgKind, UserId};
use iam_projections::read_models::UserRow;

use crate::{App, AppError, Caller};

/// The user's row after `events`, built from what a write decided rather
/// than read back: the answer to a write. `revision` is the append's.
pub fn row_after(
    mut row: Option<UserRow>,
    events: &[UserEvent],
    revision: Option<u64>,
) -> Option<UserRow> {
    for event in events {
        if let UserEvent::UserCreated {
            id,
            organization,
            user_name,
            email,
            given_name,
            family_name,
            state,
            roles,
            at,
        } = event
        {
            row = Some(UserRow {
                id: id.to_string(),
                organization_id: organization.to_string(),
                user_name: user_name.trim().to_owned(),
                email: email.clone(),
                given_name: given_name.clone(),
                family_name: family_name.clone(),
                state: state.as_str().to_owned(),
                roles: roles.clone(),
                created_at: at.timestamp_millis(),
                modified_at: at.timestamp_millis(),
                revision: 0,
            });
            continue;
        }
        let Some(current) = row.as_mut() else {
            continue;
        };
        match event {
            UserEvent::UserCreated { .. } => {}
            UserEvent::UserEmailChanged { email, at } => {
                current.email = email.clone();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserRenamed {
                given_name,
                family_name,
                at,
            } => {
                current.given_name = given_name.clone();
                current.family_name = family_name.clone();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserStateChanged { state, at } => {
                current.state = state.as_str().to_owned();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserRolesChanged { roles, at } => {
                current.roles = roles.clone();
                current.modified_at = at.timestamp_millis();
            }
            UserEvent::UserPasswordSet { at } => current.modified_at = at.timestamp_millis(),
            UserEvent::UserDeleted { .. } => row = None,
        }
    }
    if let (Some(current), Some(revision)) = (row.as_mut(), revision) {
        current.revision = revision as i64;
    }
    row
}

/// The user `id` as seen from the caller's effective organization: a user
/// whose home it is, or (in a tenant) one of its Organization Owners.
/// Anything else is 404, so that other organizations' users stay invisible.
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
    // A user of another organization: an API token hears why; a session
    // does not learn that it exists.
    if let Some(home) = OrgId::parse(&row.organization_id) {
        caller.require_token_scope(home)?;
    }
    Err(not_found())
}
