//! Provider configs and agent routes in D1.

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::wasm_bindgen::JsValue;

use super::{insert_audit_statement, int, opt_text, store_error, text, D1Store, Guard};
use crate::audit::AuditEvent;
use crate::providers::record::BOUND_BLOB_PREFIX;
use crate::providers::{AgentRoute, KeyStatus, ProviderId, ProviderRecord};
use crate::store::{Precondition, ProviderStore, Resolution, StoreError};

pub(crate) const PROVIDER_COLUMNS: &str = "workspace_id, provider, api_host, model, fallback_model, config, key_hint, status, \
    validated_at, version, blob_name, kek_id, is_default, updated_at";

#[derive(Deserialize)]
pub(crate) struct ProviderRow {
    workspace_id: String,
    provider: String,
    api_host: String,
    model: Option<String>,
    fallback_model: Option<String>,
    config: String,
    key_hint: String,
    status: String,
    validated_at: Option<i64>,
    version: i64,
    blob_name: String,
    kek_id: String,
    is_default: i64,
    updated_at: i64,
}

impl ProviderRow {
    pub(crate) fn into_record(self) -> Result<ProviderRecord, StoreError> {
        let provider =
            ProviderId::parse(&self.provider).ok_or_else(|| StoreError::Failed(format!("unknown provider column `{}`", self.provider)))?;
        let status =
            KeyStatus::parse(&self.status).ok_or_else(|| StoreError::Failed(format!("unknown status column `{}`", self.status)))?;
        let config: Map<String, Value> =
            serde_json::from_str(&self.config).map_err(|e| StoreError::Failed(format!("config column: {e}")))?;
        Ok(ProviderRecord {
            workspace_id: self.workspace_id,
            provider,
            api_host: self.api_host,
            model: self.model,
            fallback_model: self.fallback_model,
            config,
            key_hint: self.key_hint,
            status,
            validated_at: self.validated_at,
            version: self.version,
            blob_name: self.blob_name,
            kek_id: self.kek_id,
            is_default: self.is_default != 0,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Deserialize)]
struct RouteRow {
    workspace_id: String,
    agent_id: String,
    provider: Option<String>,
    model: Option<String>,
    updated_at: i64,
}

impl RouteRow {
    fn into_route(self) -> AgentRoute {
        AgentRoute {
            workspace_id: self.workspace_id,
            agent_id: self.agent_id,
            provider: self.provider.as_deref().and_then(ProviderId::parse),
            model: self.model,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct Won {
    #[allow(dead_code)]
    won: i64,
}

fn first_record(result: Option<&worker::D1Result>) -> Result<Option<ProviderRecord>, StoreError> {
    let Some(result) = result else { return Ok(None) };
    result.results::<ProviderRow>().map_err(store_error)?.into_iter().next().map(ProviderRow::into_record).transpose()
}

impl ProviderStore for D1Store {
    async fn provider(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<ProviderRecord>, StoreError> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE workspace_id = ?1 AND provider = ?2");
        let row: Option<ProviderRow> =
            self.statement(&sql, &[text(workspace_id), text(provider.as_str())])?.first(None).await.map_err(store_error)?;
        row.map(ProviderRow::into_record).transpose()
    }

    async fn providers(&self, workspace_id: &str) -> Result<Vec<ProviderRecord>, StoreError> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE workspace_id = ?1 ORDER BY provider");
        let result = self.statement(&sql, &[text(workspace_id)])?.all().await.map_err(store_error)?;
        result.results::<ProviderRow>().map_err(store_error)?.into_iter().map(ProviderRow::into_record).collect()
    }

    async fn save_provider(
        &self,
        record: &ProviderRecord,
        expected_version: Option<i64>,
        make_default: bool,
        retired_blob: Option<&str>,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<bool, StoreError> {
        // Writes only if the stored version is still the one this change read (NULL: none).
        let upsert = self.statement(
            &format!(
                "INSERT INTO provider_configs ({PROVIDER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                 CASE WHEN ?13 = 1 OR NOT EXISTS (SELECT 1 FROM provider_configs WHERE workspace_id = ?1 AND is_default = 1) THEN 1 ELSE 0 END, ?14) \
                 ON CONFLICT (workspace_id, provider) DO UPDATE SET api_host = excluded.api_host, model = excluded.model, \
                 fallback_model = excluded.fallback_model, config = excluded.config, key_hint = excluded.key_hint, \
                 status = excluded.status, validated_at = excluded.validated_at, version = excluded.version, \
                 blob_name = excluded.blob_name, kek_id = excluded.kek_id, \
                 is_default = MAX(provider_configs.is_default, ?13), updated_at = excluded.updated_at, checked_at = NULL \
                 WHERE provider_configs.version = ?15 AND provider_configs.blob_name = ?16"
            ),
            &[
                text(&record.workspace_id),
                text(record.provider.as_str()),
                text(&record.api_host),
                opt_text(record.model.as_deref()),
                opt_text(record.fallback_model.as_deref()),
                text(&Value::Object(record.config.clone()).to_string()),
                text(&record.key_hint),
                text(record.status.as_str()),
                record.validated_at.map_or(JsValue::NULL, int),
                int(record.version),
                text(&record.blob_name),
                text(&record.kek_id),
                int(make_default as i64),
                int(record.updated_at),
                expected_version.map_or(JsValue::NULL, int),
                opt_text(retired_blob),
            ],
        )?;
        // The new blob name is in the table only if this change won; everything else hangs on it.
        let move_default = self.statement(
            "UPDATE provider_configs SET is_default = 0 WHERE workspace_id = ?1 AND provider != ?2 AND ?3 = 1 \
             AND EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = ?4)",
            &[text(&record.workspace_id), text(record.provider.as_str()), int(make_default as i64), text(&record.blob_name)],
        )?;
        let retire = self.statement(
            "INSERT OR IGNORE INTO retired_blobs (blob_name, retired_at) SELECT ?1, ?2 \
             WHERE ?1 IS NOT NULL AND EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = ?3)",
            &[opt_text(retired_blob), int(record.updated_at), text(&record.blob_name)],
        )?;
        let won = Guard { sql: "EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = ?9)", args: vec![text(&record.blob_name)] };
        let audit = insert_audit_statement(self, audit, Some(won))?;
        let check = self.statement("SELECT 1 AS won FROM provider_configs WHERE blob_name = ?1", &[text(&record.blob_name)])?;
        let results = self.batch_under(precondition, vec![upsert, move_default, retire, audit, check]).await?;
        let won = results.get(4).map(|r| r.results::<Won>()).transpose().map_err(store_error)?;
        Ok(won.is_some_and(|rows| !rows.is_empty()))
    }

    async fn remove_provider(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<ProviderRecord>, StoreError> {
        let args = [text(&precondition.workspace_id), text(provider.as_str())];
        let retire = self.statement(
            "INSERT OR IGNORE INTO retired_blobs (blob_name, retired_at) \
             SELECT blob_name, ?3 FROM provider_configs WHERE workspace_id = ?1 AND provider = ?2",
            &[args[0].clone(), args[1].clone(), int(now_ms)],
        )?;
        let delete = self.statement(
            &format!("DELETE FROM provider_configs WHERE workspace_id = ?1 AND provider = ?2 RETURNING {PROVIDER_COLUMNS}"),
            &args,
        )?;
        let audit = insert_audit_statement(self, audit, Some(Guard { sql: "changes() > 0", args: vec![] }))?;
        let results = self.batch_under(precondition, vec![retire, delete, audit]).await?;
        first_record(results.get(1))
    }

    async fn set_provider_status(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        version: i64,
        status: KeyStatus,
        validated_at: i64,
    ) -> Result<(), StoreError> {
        let update = self.statement(
            "UPDATE provider_configs SET status = ?4, validated_at = ?5 WHERE workspace_id = ?1 AND provider = ?2 AND version = ?3",
            &[text(&precondition.workspace_id), text(provider.as_str()), int(version), text(status.as_str()), int(validated_at)],
        )?;
        self.batch_under(precondition, vec![update]).await?;
        Ok(())
    }

    async fn route(&self, workspace_id: &str, agent_id: &str) -> Result<Option<AgentRoute>, StoreError> {
        let row: Option<RouteRow> = self
            .statement(
                "SELECT workspace_id, agent_id, provider, model, updated_at FROM agent_routes WHERE workspace_id = ?1 AND agent_id = ?2",
                &[text(workspace_id), text(agent_id)],
            )?
            .first(None)
            .await
            .map_err(store_error)?;
        Ok(row.map(RouteRow::into_route))
    }

    async fn save_route(&self, route: &AgentRoute, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError> {
        let upsert = self.statement(
            "INSERT INTO agent_routes (workspace_id, agent_id, provider, model, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (workspace_id, agent_id) DO UPDATE SET provider = excluded.provider, model = excluded.model, \
             updated_at = excluded.updated_at",
            &[
                text(&route.workspace_id),
                text(&route.agent_id),
                opt_text(route.provider.map(ProviderId::as_str)),
                opt_text(route.model.as_deref()),
                int(route.updated_at),
            ],
        )?;
        let audit = insert_audit_statement(self, audit, None)?;
        self.batch_under(precondition, vec![upsert, audit]).await?;
        Ok(())
    }

    async fn remove_route(&self, precondition: &Precondition, agent_id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        let delete = self.statement(
            "DELETE FROM agent_routes WHERE workspace_id = ?1 AND agent_id = ?2",
            &[text(&precondition.workspace_id), text(agent_id)],
        )?;
        let audit = insert_audit_statement(self, audit, Some(Guard { sql: "changes() > 0", args: vec![] }))?;
        let results = self.batch_under(precondition, vec![delete, audit]).await?;
        Ok(results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0) > 0)
    }

    async fn resolution(
        &self,
        precondition: &Precondition,
        agent_id: Option<&str>,
        provider: Option<ProviderId>,
    ) -> Result<Resolution, StoreError> {
        let args = [text(&precondition.workspace_id), opt_text(agent_id), opt_text(provider.map(ProviderId::as_str))];
        let route = self.statement(
            "SELECT workspace_id, agent_id, provider, model, updated_at FROM agent_routes WHERE workspace_id = ?1 AND agent_id = ?2",
            &args[..2],
        )?;
        // The requested provider, else the agent's route (none if routed to metered), else the default.
        let config = self.statement(
            &format!(
                "SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE workspace_id = ?1 AND provider = (CASE \
                 WHEN ?3 IS NOT NULL THEN ?3 \
                 WHEN EXISTS (SELECT 1 FROM agent_routes WHERE workspace_id = ?1 AND agent_id = ?2) \
                   THEN (SELECT provider FROM agent_routes WHERE workspace_id = ?1 AND agent_id = ?2) \
                 ELSE (SELECT provider FROM provider_configs WHERE workspace_id = ?1 AND is_default = 1 LIMIT 1) END)"
            ),
            &args,
        )?;
        let results = self.batch_under(precondition, vec![route, config]).await?;
        let route = match results.first() {
            Some(result) => result.results::<RouteRow>().map_err(store_error)?.into_iter().next().map(RouteRow::into_route),
            None => None,
        };
        Ok(Resolution { route, config: first_record(results.get(1))? })
    }

    async fn configs_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<ProviderRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE kek_id != ?1 OR substr(blob_name, 1, length(?3)) != ?3 LIMIT ?2"
        );
        let result =
            self.statement(&sql, &[text(current_kek), int(limit as i64), text(BOUND_BLOB_PREFIX)])?.all().await.map_err(store_error)?;
        result.results::<ProviderRow>().map_err(store_error)?.into_iter().map(ProviderRow::into_record).collect()
    }

    async fn repoint_blob(
        &self,
        record: &ProviderRecord,
        old_blob: &str,
        new_blob: &str,
        new_kek: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let repoint = self.statement(
            "UPDATE provider_configs SET blob_name = ?4, kek_id = ?5 WHERE workspace_id = ?1 AND provider = ?2 AND blob_name = ?3",
            &[text(&record.workspace_id), text(record.provider.as_str()), text(old_blob), text(new_blob), text(new_kek)],
        )?;
        let retire = self.statement(
            "INSERT OR IGNORE INTO retired_blobs (blob_name, retired_at) SELECT ?1, ?2 WHERE changes() > 0",
            &[text(old_blob), int(now_ms)],
        )?;
        let results = self.db.batch(vec![repoint, retire]).await.map_err(store_error)?;
        let changed = results.first().and_then(|r| r.meta().ok().flatten()).and_then(|m| m.changes).unwrap_or(0);
        Ok(changed > 0)
    }
}
