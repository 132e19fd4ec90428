//! Given/when/then tests of the user aggregate: given past events, when a
//! command is decided, then these events (or this refusal).

// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use iam_domain::user::{self, NewUser, Replacement, UserCommand, UserEvent};
use iam_domain::{
    DomainError, NameError, OrgId, OrgKind, Profile, Role, RoleSetError, Source, UserId, UserState,
};
use uuid::Uuid;

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, second)
        .single()
        .expect("a valid time")
}

fn org() -> OrgId {
    OrgId::new(Uuid::from_u128(1))
}

fn user_id() -> UserId {
    UserId::new(Uuid::from_u128(2))
}

fn jill() -> NewUser {
    NewUser {
        id: user_id(),
        organization: org(),
        organization_kind: OrgKind::Tenant,
        user_name: "jill@example.com".into(),
        email: "jill@example.com".into(),
        given_name: "Jill".into(),
        family_name: "test12345".into(),
        state: "Active".into(),
        roles: vec!["End User".into()],
        with_password: false,
        profile: Profile::default(),
        source: Source::Local,
    }
}

fn created() -> UserEvent {
    UserEvent::UserCreated {
        id: user_id(),
        organization: org(),
        user_name: "jill@example.com".into(),
        email: "jill@example.com".into(),
        given_name: "Jill".into(),
        family_name: "test12345".into(),
        state: UserState::Active,
        roles: vec![Role::EndUser],
        at: at(0),
        profile: Profile::default(),
        managed: false,
    }
}

fn replacement() -> Replacement {
    Replacement {
        user_name: "jill@example.com".into(),
        email: "jill@example.com".into(),
        given_name: "Jill".into(),
        family_name: "test12345".into(),
        state: "Active".into(),
        roles: vec!["End User".into()],
        organization_kind: OrgKind::Tenant,
        profile: None,
        with_password: false,
        source: Source::Local,
    }
}

/// Decides `command` on the state that `given` leaves.
fn given(events: &[UserEvent], command: UserCommand) -> Result<Vec<UserEvent>, DomainError> {
    let state = events.iter().fold(None, user::apply);
    user::decide(state.as_ref(), command)
}

#[test]
fn create_records_the_user_as_given() {
    let events = given(
        &[],
        UserCommand::Create {
            user: jill(),
            at: at(0),
        },
    )
    .unwrap();
    assert_eq!(events, [created()]);
}

#[test]
fn create_with_a_password_records_only_that_it_was_set() {
    let user = NewUser {
        with_password: true,
        ..jill()
    };
    let events = given(&[], UserCommand::Create { user, at: at(0) }).unwrap();
    assert_eq!(events[1], UserEvent::UserPasswordSet { at: at(0) });
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.to_lowercase().contains("hash"), "{json}");
}

#[test]
fn create_accepts_a_user_name_that_differs_from_email_only_in_case_and_space() {
    let user = NewUser {
        user_name: " Jill@Example.com ".into(),
        ..jill()
    };
    assert!(given(&[], UserCommand::Create { user, at: at(0) }).is_ok());
}

#[test]
fn create_rejects_user_name_that_differs_from_email() {
    let user = NewUser {
        user_name: "jack@example.com".into(),
        ..jill()
    };
    let error = given(&[], UserCommand::Create { user, at: at(0) }).unwrap_err();
    assert_eq!(
        error.to_string(),
        "userName `jack@example.com` must be the same address as email `jill@example.com`"
    );
}

#[test]
fn create_rejects_an_invalid_email() {
    let user = NewUser {
        user_name: "jill".into(),
        email: "jill".into(),
        ..jill()
    };
    let error = given(&[], UserCommand::Create { user, at: at(0) }).unwrap_err();
    assert!(
        matches!(error, DomainError::Name(NameError::InvalidEmail(_))),
        "{error}"
    );
}

#[test]
fn create_rejects_conflicting_and_unknown_roles() {
    let user = NewUser {
        roles: vec!["End User".into(), "Read-Only Administrator".into()],
        ..jill()
    };
    let error = given(&[], UserCommand::Create { user, at: at(0) }).unwrap_err();
    assert!(matches!(
        error,
        DomainError::Roles(RoleSetError::Conflict(_))
    ));
    let user = NewUser {
        roles: vec!["Root".into()],
        ..jill()
    };
    let error = given(&[], UserCommand::Create { user, at: at(0) }).unwrap_err();
    assert!(matches!(
        error,
        DomainError::Roles(RoleSetError::Unknown(..))
    ));
    let user = NewUser {
        roles: vec![],
        ..jill()
    };
    let error = given(&[], UserCommand::Create { user, at: at(0) }).unwrap_err();
    assert!(matches!(error, DomainError::Roles(RoleSetError::Empty)));
}

#[test]
fn create_rejects_an_unknown_state_and_empty_names() {
    let user = NewUser {
        state: "Suspended".into(),
        ..jill()
    };
    assert!(given(&[], UserCommand::Create { user, at: at(0) }).is_err());
    let user = NewUser {
        given_name: "  ".into(),
        ..jill()
    };
    assert!(given(&[], UserCommand::Create { user, at: at(0) }).is_err());
}

#[test]
fn create_twice_is_refused() {
    let error = given(
        &[created()],
        UserCommand::Create {
            user: jill(),
            at: at(1),
        },
    )
    .unwrap_err();
    assert_eq!(error, DomainError::AlreadyExists("user"));
}

#[test]
fn replace_records_one_fact_per_changed_field() {
    let replacement = Replacement {
        email: "jill.new@example.com".into(),
        family_name: "Hill".into(),
        state: "Inactive".into(),
        roles: vec![
            "Network Administrator".into(),
            "Virtual Infrastructure Administrator".into(),
        ],
        ..replacement()
    };
    let events = given(
        &[created()],
        UserCommand::Replace {
            replacement,
            at: at(5),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        [
            UserEvent::UserEmailChanged {
                email: "jill.new@example.com".into(),
                at: at(5)
            },
            UserEvent::UserRenamed {
                given_name: "Jill".into(),
                family_name: "Hill".into(),
                at: at(5)
            },
            UserEvent::UserStateChanged {
                state: UserState::Inactive,
                at: at(5)
            },
            UserEvent::UserRolesChanged {
                roles: vec![
                    Role::VirtualInfrastructureAdministrator,
                    Role::NetworkAdministrator
                ],
                at: at(5),
                displaced: vec![],
                defaulted: false,
            },
        ]
    );
}

#[test]
fn replace_with_the_same_fields_records_nothing() {
    let events = given(
        &[created()],
        UserCommand::Replace {
            replacement: replacement(),
            at: at(5),
        },
    )
    .unwrap();
    assert!(events.is_empty());
}

#[test]
fn replace_rejects_a_changed_user_name_even_in_case() {
    for name in ["jack@example.com", "JILL@example.com"] {
        let replacement = Replacement {
            user_name: name.into(),
            ..replacement()
        };
        let error = given(
            &[created()],
            UserCommand::Replace {
                replacement,
                at: at(5),
            },
        )
        .unwrap_err();
        assert_eq!(error, DomainError::Immutable("userName"), "{name}");
    }
}

#[test]
fn replace_applies_the_role_rule() {
    let replacement = Replacement {
        roles: vec!["Account Administrator".into(), "End User".into()],
        ..replacement()
    };
    let error = given(
        &[created()],
        UserCommand::Replace {
            replacement,
            at: at(5),
        },
    )
    .unwrap_err();
    assert!(matches!(
        error,
        DomainError::Roles(RoleSetError::Conflict(_))
    ));
}

#[test]
fn a_deleted_user_cannot_be_replaced_or_deleted_again() {
    let history = [created(), UserEvent::UserDeleted { at: at(9) }];
    assert_eq!(
        given(
            &history,
            UserCommand::Replace {
                replacement: replacement(),
                at: at(10)
            }
        ),
        Err(DomainError::NotFound("user"))
    );
    assert_eq!(
        given(
            &history,
            UserCommand::Delete {
                source: Source::Local,
                at: at(10)
            }
        ),
        Err(DomainError::NotFound("user"))
    );
}

#[test]
fn apply_tracks_the_current_fields_and_modified_time() {
    let history = [
        created(),
        UserEvent::UserStateChanged {
            state: UserState::Inactive,
            at: at(3),
        },
        UserEvent::UserRolesChanged {
            roles: vec![Role::AccountAdministrator],
            at: at(4),
            displaced: vec![],
            defaulted: false,
        },
    ];
    let user = history.iter().fold(None, user::apply).unwrap();
    assert_eq!(user.state, UserState::Inactive);
    assert_eq!(user.roles, [Role::AccountAdministrator]);
    assert_eq!((user.created_at, user.modified_at), (at(0), at(4)));
}

#[test]
fn events_serialize_with_their_type_and_camel_case_fields() {
    let json = serde_json::to_value(created()).unwrap();
    assert_eq!(json["type"], "UserCreated");
    assert_eq!(json["data"]["userName"], "jill@example.com");
    assert_eq!(json["data"]["roles"][0], "EndUser");
    let back: UserEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, created());
}

fn managed_jill() -> Vec<UserEvent> {
    let mut new = jill();
    new.source = Source::IdentityProvider;
    new.profile = Profile {
        external_id: Some(" 00u1 ".into()),
        ..Profile::default()
    };
    user::decide(
        None,
        UserCommand::Create {
            user: new,
            at: at(0),
        },
    )
    .unwrap()
}

#[test]
fn a_user_created_by_an_identity_provider_is_managed_and_keeps_its_profile() {
    let events = managed_jill();
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["data"]["managedByIdentityProvider"], true);
    assert_eq!(json["data"]["profile"]["externalId"], "00u1");
    // Events written before the profile existed still read.
    let old = serde_json::to_value(created()).unwrap();
    assert!(old["data"].get("profile").is_none());
    assert!(old["data"].get("managedByIdentityProvider").is_none());
    let user = events.iter().fold(None, user::apply).unwrap();
    assert!(user.managed);
    assert_eq!(user.profile.external_id.as_deref(), Some("00u1"));
}

#[test]
fn a_managed_user_changes_locally_only_its_state() {
    let history = managed_jill();
    let mut deactivate = replacement();
    deactivate.state = "Inactive".into();
    assert_eq!(
        given(
            &history,
            UserCommand::Replace {
                replacement: deactivate,
                at: at(1)
            }
        ),
        Ok(vec![UserEvent::UserStateChanged {
            state: UserState::Inactive,
            at: at(1)
        }])
    );
    for change in [
        |r: &mut Replacement| r.given_name = "Jane".into(),
        |r: &mut Replacement| r.email = "other@example.com".into(),
        |r: &mut Replacement| r.roles = vec!["Account Administrator".into()],
    ] {
        let mut replacement = replacement();
        change(&mut replacement);
        assert!(matches!(
            given(
                &history,
                UserCommand::Replace {
                    replacement,
                    at: at(1)
                }
            ),
            Err(DomainError::ManagedByIdentityProvider(_))
        ));
    }
    assert!(matches!(
        given(
            &history,
            UserCommand::SetPassword {
                source: Source::Local,
                at: at(1)
            }
        ),
        Err(DomainError::ManagedByIdentityProvider(_))
    ));
    for command in [
        UserCommand::RequestPasswordReset {
            source: Source::Local,
            at: at(1),
        },
        UserCommand::CompletePasswordReset { at: at(1) },
    ] {
        assert!(matches!(
            given(&history, command),
            Err(DomainError::ManagedByIdentityProvider(_))
        ));
    }
    let mut renamed = replacement();
    renamed.source = Source::IdentityProvider;
    renamed.given_name = "Jane".into();
    assert!(
        given(
            &history,
            UserCommand::Replace {
                replacement: renamed,
                at: at(1)
            }
        )
        .is_ok()
    );
}

#[test]
fn an_identity_provider_renames_a_user_with_its_address_together() {
    let history = managed_jill();
    let mut renamed = replacement();
    renamed.source = Source::IdentityProvider;
    renamed.user_name = "Jill.Hill@example.com".into();
    renamed.email = "jill.hill@EXAMPLE.com".into();
    assert_eq!(
        given(
            &history,
            UserCommand::Replace {
                replacement: renamed.clone(),
                at: at(1)
            }
        ),
        Ok(vec![UserEvent::UserNameChanged {
            user_name: "Jill.Hill@example.com".into(),
            email: "jill.hill@EXAMPLE.com".into(),
            at: at(1)
        }])
    );
    renamed.email = "jill@example.com".into();
    assert!(matches!(
        given(
            &history,
            UserCommand::Replace {
                replacement: renamed,
                at: at(1)
            }
        ),
        Err(DomainError::UserNameIsNotEmail { .. })
    ));
}

#[test]
fn joining_a_role_group_displaces_conflicting_roles_and_records_it() {
    let events = given(
        &[created()],
        UserCommand::JoinRole {
            role: Role::AccountAdministrator,
            organization_kind: OrgKind::Tenant,
            at: at(1),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        [UserEvent::UserRolesChanged {
            roles: vec![Role::AccountAdministrator],
            at: at(1),
            displaced: vec![Role::EndUser],
            defaulted: false,
        }]
    );
    let left = given(
        &[created(), events[0].clone()],
        UserCommand::LeaveRole {
            role: Role::AccountAdministrator,
            organization_kind: OrgKind::Tenant,
            at: at(2),
        },
    )
    .unwrap();
    assert_eq!(
        left,
        [UserEvent::UserRolesChanged {
            roles: vec![Role::EndUser],
            at: at(2),
            displaced: vec![],
            defaulted: true,
        }]
    );
}

#[test]
fn a_reset_request_is_valid_for_a_day_and_changes_nothing_of_the_user() {
    let history = [created()];
    let events = given(
        &history,
        UserCommand::RequestPasswordReset {
            source: Source::Local,
            at: at(5),
        },
    )
    .unwrap();
    assert_eq!(
        events,
        vec![UserEvent::UserPasswordResetRequested {
            at: at(5),
            expires_at: at(5) + iam_domain::user::PASSWORD_RESET_VALIDITY,
        }]
    );
    let before = history.iter().fold(None, user::apply);
    let after = events.iter().fold(before.clone(), user::apply);
    assert_eq!(before, after);
}
