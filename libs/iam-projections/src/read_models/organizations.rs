//! The `organizations` projector: organizations (`read_organizations`) and
//! the provider users who are Organization Owners of a tenant
//! (`read_memberships`), and the queries answered from them.

use async_trait::async_trait;
use iam_domain::OrgKind;
use iam_domain::organization::OrgEvent;
use iam_eventstore::RecordedEvent;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use super::{decode, millis};
use crate::rows::execute_for_rows;
use crate::{Projector, Result};

/// Organizations and their Organization Owners.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrganizationsProjector;

#[async_trait]
impl Projector for OrganizationsProjector {
    fn name(&self) -> &'static str {
        "organizations"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["read_memberships", "read_organizations"]
    }

    async fn apply(&self, connection: &mut AnyConnection, events: &[RecordedEvent]) -> Result<()> {
        let mut organizations = Vec::new();
        let mut memberships = Vec::new();
        for recorded in events {
            let Some(event) = decode::<OrgEvent>(self.name(), "org-", recorded)? else {
                continue;
            };
            match event {
                OrgEvent::OrganizationCreated {
                    id,
                    name,
                    kind,
                    provider,
                    delegates_user_management,
                    at,
                } => organizations.push(json!({
                    "id": id.to_string(),
                    "name": name,
                    "kind": kind_name(kind),
                    "provider": provider.map(|p| p.to_string()),
                    "delegates": i64::from(delegates_user_management),
                    "at": millis(at),
                })),
                OrgEvent::OrganizationMemberAdded { user, role, at } => memberships.push(json!({
                    "organization": recorded.stream.trim_start_matches("org-"),
                    "user": user.to_string(),
                    "role": format!("{role:?}"),
                    "at": millis(at),
                })),
            }
        }
        execute_for_rows(
            connection,
            "INSERT INTO read_organizations (id, name, kind, provider_id, delegates, created_at) \
             SELECT j.value ->> 'id', j.value ->> 'name', j.value ->> 'kind', j.value ->> 'provider', \
                    CAST(j.value ->> 'delegates' AS INTEGER), CAST(j.value ->> 'at' AS BIGINT) FROM {rows}",
            organizations,
        )
        .await?;
        // `WHERE true` tells SQLite's parser that ON CONFLICT is not a join's ON.
        execute_for_rows(
            connection,
            "INSERT INTO read_memberships (organization_id, user_id, role, added_at) \
             SELECT j.value ->> 'organization', j.value ->> 'user', j.value ->> 'role', \
                    CAST(j.value ->> 'at' AS BIGINT) FROM {rows} WHERE true \
             ON CONFLICT (organization_id, user_id) DO NOTHING",
            memberships,
        )
        .await
    }
}

/// The spelling of an organization kind in the read models.
pub fn kind_name(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::Provider => "Provider",
        OrgKind::Tenant => "Tenant",
    }
}

/// A row of `read_organizations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `Provider` or `Tenant`.
    pub kind: String,
    /// A tenant's provider.
    pub provider_id: Option<String>,
    /// Whether the provider manages its users.
    pub delegates: bool,
}

fn organization_row(row: &sqlx::any::AnyRow) -> Result<OrganizationRow> {
    Ok(OrganizationRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        provider_id: row.try_get("provider_id")?,
        delegates: row.try_get::<i64, _>("delegates")? != 0,
    })
}

impl crate::ReadModels {
    /// Whether `user` is an Organization Owner of `organization`.
    pub async fn is_member(&self, organization: &str, user: &str) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM read_memberships WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(organization.to_owned())
        .bind(user.to_owned())
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }

    /// One organization by id (from memory once read: see [`crate::ReadModels`]).
    pub async fn organization(&self, id: &str) -> Result<Option<OrganizationRow>> {
        if let Ok(cache) = self.organizations.read()
            && let Some(row) = cache.get(id)
        {
            return Ok(Some(row.clone()));
        }
        let row = sqlx::query(
            "SELECT id, name, kind, provider_id, delegates FROM read_organizations WHERE id = $1",
        )
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let row = row.as_ref().map(organization_row).transpose()?;
        if let (Some(row), Ok(mut cache)) = (&row, self.organizations.write()) {
            cache.insert(row.id.clone(), row.clone());
        }
        Ok(row)
    }

    /// The provider organization, if one was created.
    pub async fn provider(&self) -> Result<Option<OrganizationRow>> {
        let row = sqlx::query(
            "SELECT id, name, kind, provider_id, delegates FROM read_organizations \
             WHERE kind = 'Provider' ORDER BY created_at LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(organization_row).transpose()
    }

    /// `organization` and, for a provider, its tenants, by name.
    pub async fn organizations_visible_from(
        &self,
        organization: &str,
    ) -> Result<Vec<OrganizationRow>> {
        let rows = sqlx::query(
            "SELECT id, name, kind, provider_id, delegates FROM read_organizations \
             WHERE id = $1 OR provider_id = $1 ORDER BY kind, name",
        )
        .bind(organization.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(organization_row).collect()
    }
}
