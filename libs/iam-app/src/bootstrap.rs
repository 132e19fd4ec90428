//! First start: create the provider organization and its first Provider
//! Administrator. Idempotent: a start that finds a provider changes nothing,
//! and a claim makes concurrent first starts of several replicas create
//! exactly one.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iam_domain::organization::OrgCommand;
use iam_domain::user::{NewUser, UserCommand};
use iam_domain::{OrgId, OrgKind, UserId};
use iam_eventstore::Claim;

use crate::commands::{Authentication, Cause, create_user, run_org_command};
use crate::{App, AppError, Options, Refusal, credentials};

/// The provider and administrator a start with an empty store creates.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// `IAM_BOOTSTRAP_ADMIN_EMAIL` (default `admin@localhost.localdomain`).
    pub admin_email: Option<String>,
    /// `IAM_BOOTSTRAP_ADMIN_PASSWORD` (default: generated and printed once).
    pub admin_password: Option<Secret>,
    /// `IAM_BOOTSTRAP_ORG_NAME` (default `Provider`).
    pub org_name: String,
}

/// A secret setting: shown as `<redacted>` by `Debug`, so that logging the
/// settings never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Keeps `secret`.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The administrator created when no address is configured.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost.localdomain";

/// What bootstrap did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A provider already existed.
    AlreadyDone,
    /// The provider and its administrator were created; the generated
    /// password, when none was configured, is to be shown once.
    Created {
        /// The administrator's user name.
        admin: String,
        /// The generated password, if one was generated.
        generated_password: Option<String>,
    },
}

/// What a first start of `iamd` with these settings would create, without
/// serving: `iamctl bootstrap`.
pub async fn bootstrap_database(
    options: &Options,
    settings: &Bootstrap,
) -> anyhow::Result<Outcome> {
    let state = App::open(options).await?;
    run(&state, settings).await
}

/// Creates the provider and its administrator when the store has none.
pub async fn run(state: &App, settings: &Bootstrap) -> anyhow::Result<Outcome> {
    if state.read_models.provider().await?.is_some() {
        return Ok(Outcome::AlreadyDone);
    }
    let cause = Cause {
        authentication: Some(Authentication::Bootstrap),
        request_id: Some("bootstrap".into()),
        ..Cause::default()
    };
    let provider = OrgId::new(uuid::Uuid::now_v7());
    let created = run_org_command(
        state,
        provider,
        OrgCommand::CreateProvider {
            id: provider,
            name: settings.org_name.clone(),
            at: chrono::Utc::now(),
        },
        &cause,
        vec![Claim::new("bootstrap", "provider")],
        None,
    )
    .await;
    match created {
        Ok(_) => {}
        // Another replica bootstrapped at the same moment.
        Err(error)
            if matches!(
                error.refusal(),
                Some(Refusal::Conflict | Refusal::Concurrent)
            ) =>
        {
            return Ok(Outcome::AlreadyDone);
        }
        Err(error) => return Err(api_error("creating the provider organization", error)),
    }

    let admin = settings
        .admin_email
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN_EMAIL.to_owned());
    let (password, generated) = match &settings.admin_password {
        Some(password) => (password.expose().to_owned(), false),
        None => (generated_password()?, true),
    };
    credentials::check_password(&password)
        .map_err(|why| anyhow::anyhow!("IAM_BOOTSTRAP_ADMIN_PASSWORD: the {why}"))?;
    let hash = credentials::hash_password(password.clone()).await?;
    let id = UserId::new(uuid::Uuid::now_v7());
    let user = NewUser {
        id,
        organization: provider,
        organization_kind: OrgKind::Provider,
        user_name: admin.clone(),
        email: admin.clone(),
        given_name: "Provider".into(),
        family_name: "Administrator".into(),
        state: "Active".into(),
        roles: vec!["Provider Administrator".into()],
        with_password: true,
        profile: Default::default(),
        source: Default::default(),
    };
    create_user(
        state,
        UserCommand::Create {
            user,
            at: chrono::Utc::now(),
        },
        &cause,
        // A generated password must be changed at first use.
        Some(crate::commands::NewPassword {
            must_change: generated,
            ..crate::commands::NewPassword::hashed(hash)
        }),
        &crate::idempotency::Creation::unkeyed(),
    )
    .await
    .map_err(|error| {
        api_error(
            "IAM_BOOTSTRAP_ADMIN_EMAIL: creating the administrator",
            error,
        )
    })?;
    Ok(Outcome::Created {
        admin,
        generated_password: generated.then_some(password),
    })
}

fn api_error(doing: &str, error: AppError) -> anyhow::Error {
    anyhow::anyhow!("{doing}: {error}")
}

fn generated_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("{error}"))
        .context("generating a password")?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
