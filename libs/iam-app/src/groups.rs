//! Groups: plain groups are aggregates (`group-<uuid>` streams) whose
//! `displayName` is unique in their organization (a claim taken in the
//! append's transaction); the built-in role groups are the roles of a
//! tenant, with stable ids, whose membership is role assignment.

use std::collections::BTreeSet;

use iam_domain::group::{self, Group, GroupCommand, GroupEvent, GroupFields};
use iam_domain::user::UserCommand;
use iam_domain::{GroupId, OrgId, OrgKind, Role, UserId};
use iam_eventstore::Claim;
use uuid::Uuid;

use crate::commands::{
    Cause, UserWritten, append_of, as_created, changed_since_read, load, run_user_command,
};
use crate::idempotency::Creation;
use crate::{App, AppError, Refusal};

/// The claim kind that keeps group names unique in an organization.
pub const GROUP_NAME_CLAIM: &str = "groupName";

/// The namespace of the role groups' ids (UUIDv5 of organization and role).
const ROLE_GROUP_NAMESPACE: Uuid = Uuid::from_u128(0x3f0e_2c6a_9d1b_4e57_8a2f_6b5c_1d9e_7a40);

/// The claim that `display_name` is taken in `organization`.
pub fn name_claim(organization: OrgId, display_name: &str) -> Claim {
    Claim::new(
        GROUP_NAME_CLAIM,
        format!("{organization}/{}", display_name.trim().to_lowercase()),
    )
}

/// The stable id of `role`'s group in `organization`.
pub fn role_group_id(organization: OrgId, role: Role) -> Uuid {
    Uuid::new_v5(
        &ROLE_GROUP_NAMESPACE,
        format!("{organization}/{}", role.entry().bundle_key).as_bytes(),
    )
}

/// The tenant role whose group in `organization` has id `id`.
pub fn role_of_group(organization: OrgId, kind: OrgKind, id: &str) -> Option<Role> {
    let id = Uuid::parse_str(id.trim()).ok()?;
    role_groups(kind).find(|role| role_group_id(organization, *role) == id)
}

/// The roles that have a built-in group in an organization of `kind`: the
/// tenant roles, in a tenant; none in the provider.
pub fn role_groups(kind: OrgKind) -> impl Iterator<Item = Role> {
    let tenant = kind == OrgKind::Tenant;
    Role::assignable_in(OrgKind::Tenant).filter(move |_| tenant)
}

/// A group as its stream leaves it, and the stream's revision.
pub async fn load_group(app: &App, id: GroupId) -> Result<(Option<Group>, Option<u64>), AppError> {
    load(app, &id.stream(), group::apply).await
}

/// A group as its creation left it, for the answer to a retried create.
pub async fn created_group(app: &App, id: GroupId) -> Result<GroupWritten, AppError> {
    let (group, _, revision) = as_created(app, &id.stream(), group::apply).await?;
    Ok(GroupWritten { group, revision })
}

/// What a group command wrote: the group as it leaves it and its revision.
#[derive(Debug)]
pub struct GroupWritten {
    /// The group (`None`: deleted).
    pub group: Option<Group>,
    /// The stream's revision after it (the ETag).
    pub revision: Option<u64>,
}

/// Refuses a plain group named after a role: that name is the role group's.
fn not_a_role_name(display_name: &str) -> Result<(), AppError> {
    if let Some(role) = group::role_named(display_name) {
        return Err(AppError::conflict(format!(
            "displayName `{}` is the built-in group of the role {role}: membership of it is role \
             assignment; use that group (find it with filter=displayName eq \"{role}\").",
            display_name.trim()
        )));
    }
    Ok(())
}

/// Creates a plain group, claiming its name in the organization.
pub async fn create_group(
    app: &App,
    id: GroupId,
    organization: OrgId,
    fields: GroupFields,
    cause: &Cause,
    creation: &Creation,
) -> Result<GroupWritten, AppError> {
    not_a_role_name(&fields.display_name)?;
    let events = group::decide(
        None,
        GroupCommand::Create {
            id,
            organization,
            fields,
            at: chrono::Utc::now(),
        },
    )?;
    let Some(GroupEvent::GroupCreated { display_name, .. }) = events.first() else {
        return Err(AppError::internal(anyhow::anyhow!(
            "creating a group decided no GroupCreated event"
        )));
    };
    let append = append_of(
        id.stream(),
        None,
        &events,
        GroupEvent::event_type,
        cause,
        Some(creation),
    )?
    .claim(name_claim(organization, display_name));
    let result = app.store.submit(append).await?;
    Ok(GroupWritten {
        group: events.iter().fold(None, group::apply),
        revision: result.revision,
    })
}

/// Decides and appends a change or deletion of a plain group, expecting
/// `if_match` when given (412 otherwise); a rename moves the name's claim.
pub async fn run_group_command(
    app: &App,
    id: GroupId,
    command: GroupCommand,
    cause: &Cause,
    if_match: Option<u64>,
) -> Result<GroupWritten, AppError> {
    if let GroupCommand::Change { fields, .. } = &command {
        not_a_role_name(&fields.display_name)?;
    }
    let (current, revision) = load_group(app, id).await?;
    if if_match.is_some_and(|expected| revision != Some(expected)) {
        return Err(changed_since_read("group", revision));
    }
    let events = group::decide(current.as_ref(), command)?;
    let Some(before) = current.clone().filter(|_| !events.is_empty()) else {
        return Ok(GroupWritten {
            group: current,
            revision,
        });
    };
    let mut append = append_of(
        id.stream(),
        revision,
        &events,
        GroupEvent::event_type,
        cause,
        None,
    )?;
    for event in &events {
        match event {
            GroupEvent::GroupRenamed { display_name, .. } => {
                let (old, new) = (
                    name_claim(before.organization, &before.display_name),
                    name_claim(before.organization, display_name),
                );
                if old != new {
                    append = append.release(old).claim(new);
                }
            }
            GroupEvent::GroupDeleted { .. } => {
                append = append.release(name_claim(before.organization, &before.display_name));
            }
            _ => {}
        }
    }
    match app.store.submit(append).await {
        Err(iam_eventstore::Error::WrongExpectedVersion { current, .. }) if if_match.is_some() => {
            Err(changed_since_read("group", current))
        }
        Err(error) => Err(error.into()),
        Ok(result) => Ok(GroupWritten {
            group: events.iter().fold(current, group::apply),
            revision: result.revision,
        }),
    }
}

/// Moves the users `joined` into `role`'s group in a tenant and `left` out of it: users who
/// join it are moved out of the roles it excludes; users who leave it keep
/// their other roles, or End User when none is left. Each user's change is
/// its own event (identity providers send these moves unordered, so a
/// concurrent change to the same user is decided again, not refused).
pub async fn set_role_members(
    app: &App,
    role: Role,
    joined: &BTreeSet<UserId>,
    left: &BTreeSet<UserId>,
    cause: &Cause,
) -> Result<(), AppError> {
    let at = chrono::Utc::now();
    for (users, joining) in [(joined, true), (left, false)] {
        for user in users {
            let command = if joining {
                UserCommand::JoinRole {
                    role,
                    organization_kind: OrgKind::Tenant,
                    at,
                }
            } else {
                UserCommand::LeaveRole {
                    role,
                    organization_kind: OrgKind::Tenant,
                    at,
                }
            };
            run_user_command_converging(app, *user, command, cause).await?;
        }
    }
    Ok(())
}

/// Runs a user command, deciding it again when another request changed the
/// user meanwhile (a few times, then the conflict is the answer).
pub async fn run_user_command_converging(
    app: &App,
    user: UserId,
    command: UserCommand,
    cause: &Cause,
) -> Result<UserWritten, AppError> {
    let mut attempts = 0;
    loop {
        match run_user_command(app, user, command.clone(), cause, None).await {
            Err(error) if error.refusal() == Some(Refusal::Concurrent) && attempts < 32 => {
                attempts += 1;
            }
            other => return other,
        }
    }
}
