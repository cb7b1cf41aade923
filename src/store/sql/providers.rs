//! Provider configs and agent routes.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::exec::{int, opt_int, opt_text, text, Executor, Outcome, Statement, Value};
use super::webhooks::{enqueue_statement, queue_statement};
use super::{insert_audit_statement, outcome, Guard, SqlStore};
use crate::audit::AuditEvent;
use crate::keys::MeteredFallback;
use crate::outbox::OutboxEvent;
use crate::page::Cursor;
use crate::providers::funds::Funds;
use crate::providers::model_list::Listing;
use crate::providers::record::BOUND_BLOB_PREFIX;
use crate::providers::store::OfferedModels;
use crate::providers::{AgentRoute, KeyStatus, ProviderId, ProviderRecord};
use crate::store::{Precondition, ProviderStore, Resolution, Saved, StoreError};

pub(crate) const PROVIDER_COLUMNS: &str = "workspace_id, provider, api_host, model, fallback_model, config, key_hint, status, \
    validated_at, provider_reason, funds, version, blob_name, kek_id, is_default, updated_at";

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
    provider_reason: Option<String>,
    funds: Option<String>,
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
        let config: Map<String, Json> =
            serde_json::from_str(&self.config).map_err(|e| StoreError::Failed(format!("config column: {e}")))?;
        let funds = match self.funds.as_deref() {
            Some(text) => {
                Some(serde_json::from_str::<StoredFunds>(text).map_err(|e| StoreError::Failed(format!("funds column: {e}")))?.into())
            }
            None => None,
        };
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
            provider_reason: self.provider_reason,
            funds,
            version: self.version,
            blob_name: self.blob_name,
            kek_id: self.kek_id,
            is_default: self.is_default != 0,
            updated_at: self.updated_at,
        })
    }
}

/// The `funds` column: what `Funds` holds, with its time in Unix ms.
#[derive(serde::Serialize, Deserialize)]
struct StoredFunds {
    remaining: f64,
    currency: Option<String>,
    checked_at: i64,
}

impl From<StoredFunds> for Funds {
    fn from(stored: StoredFunds) -> Funds {
        Funds { remaining: stored.remaining, currency: stored.currency, checked_at: stored.checked_at }
    }
}

fn funds_text(funds: Option<&Funds>) -> Value {
    match funds {
        Some(f) => {
            let stored = StoredFunds { remaining: f.remaining, currency: f.currency.clone(), checked_at: f.checked_at };
            text(&serde_json::json!(stored).to_string())
        }
        None => Value::Null,
    }
}

#[derive(Deserialize)]
struct RouteRow {
    workspace_id: String,
    agent_id: String,
    provider: Option<String>,
    model: Option<String>,
    metered_fallback: Option<String>,
    updated_at: i64,
}

impl RouteRow {
    fn into_route(self) -> AgentRoute {
        AgentRoute {
            workspace_id: self.workspace_id,
            agent_id: self.agent_id,
            provider: self.provider.as_deref().and_then(ProviderId::parse),
            model: self.model,
            metered_fallback: self.metered_fallback.as_deref().and_then(MeteredFallback::parse),
            updated_at: self.updated_at,
        }
    }
}

pub(crate) fn provider_records(outcome: &Outcome) -> Result<Vec<ProviderRecord>, StoreError> {
    outcome.rows::<ProviderRow>()?.into_iter().map(ProviderRow::into_record).collect()
}

fn first_record(outcome: &Outcome) -> Result<Option<ProviderRecord>, StoreError> {
    Ok(provider_records(outcome)?.into_iter().next())
}

/// A config's columns as named binds, but `is_default`, which each write decides.
pub(crate) fn record_binds(record: &ProviderRecord) -> Vec<(&'static str, Value)> {
    vec![
        ("workspace_id", text(&record.workspace_id)),
        ("provider", text(record.provider.as_str())),
        ("api_host", text(&record.api_host)),
        ("model", opt_text(record.model.as_deref())),
        ("fallback_model", opt_text(record.fallback_model.as_deref())),
        ("config", text(&Json::Object(record.config.clone()).to_string())),
        ("key_hint", text(&record.key_hint)),
        ("status", text(record.status.as_str())),
        ("validated_at", opt_int(record.validated_at)),
        ("provider_reason", opt_text(record.provider_reason.as_deref())),
        ("funds", funds_text(record.funds.as_ref())),
        ("version", int(record.version)),
        ("blob_name", text(&record.blob_name)),
        ("kek_id", text(&record.kek_id)),
        ("updated_at", int(record.updated_at)),
    ]
}

const ROUTE_COLUMNS: &str = "workspace_id, agent_id, provider, model, metered_fallback, updated_at";

/// Replaces the config's kept model list, in a batch, if `condition` (SQL) holds.
fn listing_statement(record: &ProviderRecord, listing: &Listing, condition: &str) -> Result<Statement, StoreError> {
    Statement::new(
        &format!(
            "INSERT INTO provider_models (workspace_id, provider, version, models, truncated, listed_at) \
             SELECT :workspace_id, :provider, :version, :models, :truncated, :listed_at WHERE {condition} \
             ON CONFLICT (workspace_id, provider) DO UPDATE SET version = excluded.version, models = excluded.models, \
             truncated = excluded.truncated, listed_at = excluded.listed_at"
        ),
        &[
            ("workspace_id", text(&record.workspace_id)),
            ("provider", text(record.provider.as_str())),
            ("version", int(record.version)),
            ("models", text(&serde_json::json!(listing.ids).to_string())),
            ("truncated", int(listing.truncated as i64)),
            ("listed_at", int(record.validated_at.unwrap_or(record.updated_at))),
            ("won_blob_name", text(&record.blob_name)),
        ],
    )
}

impl<E: Executor> ProviderStore for SqlStore<E> {
    async fn provider(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<ProviderRecord>, StoreError> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE workspace_id = :workspace_id AND provider = :provider");
        let binds = [("workspace_id", text(workspace_id)), ("provider", text(provider.as_str()))];
        first_record(&self.query(Statement::new(&sql, &binds)?).await?)
    }

    async fn providers(&self, workspace_id: &str) -> Result<Vec<ProviderRecord>, StoreError> {
        let sql = format!("SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE workspace_id = :workspace_id ORDER BY provider");
        provider_records(&self.query(Statement::new(&sql, &[("workspace_id", text(workspace_id))])?).await?)
    }

    async fn save_provider(
        &self,
        record: &ProviderRecord,
        expected_version: Option<i64>,
        make_default: bool,
        retired_blob: Option<&str>,
        listing: Option<&Listing>,
        audit: &AuditEvent,
        notification: Option<&OutboxEvent>,
        precondition: &Precondition,
    ) -> Result<Saved, StoreError> {
        let mut binds = record_binds(record);
        binds.extend([
            ("make_default", int(make_default as i64)),
            ("expected_version", opt_int(expected_version)),
            ("retired_blob", opt_text(retired_blob)),
        ]);
        // Writes only if the stored version is still the one this change read (NULL: none).
        let upsert = Statement::new(
            &format!(
                "INSERT INTO provider_configs ({PROVIDER_COLUMNS}) VALUES (:workspace_id, :provider, :api_host, :model, \
                 :fallback_model, :config, :key_hint, :status, :validated_at, :provider_reason, :funds, :version, :blob_name, :kek_id, \
                 CASE WHEN :make_default = 1 OR NOT EXISTS (SELECT 1 FROM provider_configs WHERE workspace_id = :workspace_id \
                 AND is_default = 1) THEN 1 ELSE 0 END, :updated_at) \
                 ON CONFLICT (workspace_id, provider) DO UPDATE SET api_host = excluded.api_host, model = excluded.model, \
                 fallback_model = excluded.fallback_model, config = excluded.config, key_hint = excluded.key_hint, \
                 status = excluded.status, validated_at = excluded.validated_at, provider_reason = excluded.provider_reason, \
                 funds = excluded.funds, version = excluded.version, \
                 blob_name = excluded.blob_name, kek_id = excluded.kek_id, \
                 is_default = MAX(provider_configs.is_default, :make_default), updated_at = excluded.updated_at, checked_at = NULL \
                 WHERE provider_configs.version = :expected_version AND provider_configs.blob_name = :retired_blob"
            ),
            &binds,
        )?;
        // The new blob name is in the table only if this change won; everything else hangs on it.
        let move_default = Statement::new(
            "UPDATE provider_configs SET is_default = 0 WHERE workspace_id = :workspace_id AND provider != :provider \
             AND :make_default = 1 AND EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = :blob_name)",
            &binds,
        )?;
        let retire = Statement::new(
            "INSERT OR IGNORE INTO retired_blobs (blob_name, retired_at) SELECT :retired_blob, :updated_at \
             WHERE :retired_blob IS NOT NULL AND EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = :blob_name)",
            &binds,
        )?;
        let won = Guard {
            sql: "EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = :won_blob_name)",
            binds: vec![("won_blob_name", text(&record.blob_name))],
        };
        let audit = insert_audit_statement(audit, Some(won))?;
        let check = Statement::new("SELECT 1 AS won FROM provider_configs WHERE blob_name = :blob_name", &binds)?;
        let won_sql = "EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = :won_blob_name)";
        // A key stored without a list (unverified) is offered no model known: the old list goes.
        let models = match listing {
            Some(listing) => listing_statement(record, listing, won_sql)?,
            None => Statement::new(
                &format!("DELETE FROM provider_models WHERE workspace_id = :workspace_id AND provider = :provider AND {won_sql}"),
                &[
                    ("workspace_id", text(&record.workspace_id)),
                    ("provider", text(record.provider.as_str())),
                    ("won_blob_name", text(&record.blob_name)),
                ],
            )?,
        };
        let mut statements = vec![upsert, move_default, retire, audit, check, models];
        if let Some(notification) = notification {
            statements.push(queue_statement(
                notification,
                record.updated_at,
                Some("EXISTS (SELECT 1 FROM provider_configs WHERE blob_name = :won_blob_name)"),
                None,
                &[("won_blob_name", text(&record.blob_name))],
            )?);
        }
        let outcomes = self.batch_under(precondition, statements).await?;
        if outcome(&outcomes, 4)?.rows.is_empty() {
            return Ok(Saved::Lost);
        }
        let queued = notification.is_some() && outcome(&outcomes, 6)?.changes > 0;
        Ok(Saved::Won { queued })
    }

    async fn remove_provider(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<ProviderRecord>, StoreError> {
        let binds = [("workspace_id", text(&precondition.workspace_id)), ("provider", text(provider.as_str())), ("now", int(now_ms))];
        let retire = Statement::new(
            "INSERT OR IGNORE INTO retired_blobs (blob_name, retired_at) \
             SELECT blob_name, :now FROM provider_configs WHERE workspace_id = :workspace_id AND provider = :provider",
            &binds,
        )?;
        let delete = Statement::new(
            &format!(
                "DELETE FROM provider_configs WHERE workspace_id = :workspace_id AND provider = :provider RETURNING {PROVIDER_COLUMNS}"
            ),
            &binds,
        )?;
        let audit = insert_audit_statement(audit, Some(Guard::after_a_change()))?;
        let models = Statement::new("DELETE FROM provider_models WHERE workspace_id = :workspace_id AND provider = :provider", &binds)?;
        let outcomes = self.batch_under(precondition, vec![retire, delete, audit, models]).await?;
        first_record(outcome(&outcomes, 1)?)
    }

    async fn set_provider_status(
        &self,
        precondition: &Precondition,
        validated: &ProviderRecord,
        listing: Option<&Listing>,
        invalidation: Option<(&AuditEvent, &OutboxEvent)>,
    ) -> Result<bool, StoreError> {
        let validated_at = validated.validated_at.unwrap_or(validated.updated_at);
        let update = Statement::new(
            "UPDATE provider_configs SET status = :status, validated_at = :validated_at, provider_reason = :provider_reason, \
             funds = :funds WHERE workspace_id = :workspace_id AND provider = :provider AND version = :version",
            &[
                ("workspace_id", text(&precondition.workspace_id)),
                ("provider", text(validated.provider.as_str())),
                ("version", int(validated.version)),
                ("status", text(validated.status.as_str())),
                ("validated_at", int(validated_at)),
                ("provider_reason", opt_text(validated.provider_reason.as_deref())),
                ("funds", funds_text(validated.funds.as_ref())),
            ],
        )?;
        let mut statements = vec![update];
        if let Some(listing) = listing {
            // Only while the config is still the one validated: a replacement keeps its own list.
            let same_config = "EXISTS (SELECT 1 FROM provider_configs WHERE workspace_id = :workspace_id \
                AND provider = :provider AND version = :version AND blob_name = :won_blob_name)";
            statements.push(listing_statement(validated, listing, same_config)?);
        }
        let audit_at = statements.len();
        if let Some((audit, notification)) = invalidation {
            statements.push(insert_audit_statement(audit, None)?);
            statements.push(enqueue_statement(notification, validated_at)?);
        }
        let outcomes = self.batch_under(precondition, statements).await?;
        Ok(invalidation.is_some() && outcome(&outcomes, audit_at + 1)?.changes > 0)
    }

    async fn offered_models(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<OfferedModels>, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            models: String,
            truncated: i64,
            listed_at: i64,
        }
        // A list kept for an older version of the config says nothing about its key.
        let statement = Statement::new(
            "SELECT m.models, m.truncated, m.listed_at FROM provider_models m JOIN provider_configs c \
             ON c.workspace_id = m.workspace_id AND c.provider = m.provider AND c.version = m.version \
             WHERE m.workspace_id = :workspace_id AND m.provider = :provider",
            &[("workspace_id", text(workspace_id)), ("provider", text(provider.as_str()))],
        )?;
        let Some(row) = self.query(statement).await?.first::<Row>()? else { return Ok(None) };
        let ids: Vec<String> = serde_json::from_str(&row.models).map_err(|e| StoreError::Failed(format!("models column: {e}")))?;
        Ok(Some(OfferedModels { ids, truncated: row.truncated != 0, listed_at: row.listed_at }))
    }

    async fn record_fallback(
        &self,
        audit: &AuditEvent,
        notice: &OutboxEvent,
        agent_key: &str,
        provider: ProviderId,
        quiet_ms: i64,
    ) -> Result<bool, StoreError> {
        let binds = [
            ("workspace_id", text(&notice.workspace_id)),
            ("agent_id", text(agent_key)),
            ("provider", text(provider.as_str())),
            ("now", int(notice.created_at)),
            ("quiet_since", int(notice.created_at - quiet_ms)),
            ("notice_id", text(&notice.id)),
        ];
        // Claims the hour for this notice unless another claimed it within the hour, and only
        // when there is an endpoint to send it to: an endpoint set later in the hour still
        // hears of the next fallback.
        let claim = Statement::new(
            "INSERT INTO fallback_notices (workspace_id, agent_id, provider, notified_at, notice_id) \
             SELECT :workspace_id, :agent_id, :provider, :now, :notice_id \
             WHERE EXISTS (SELECT 1 FROM notification_endpoints WHERE workspace_id = :workspace_id) \
             ON CONFLICT (workspace_id, agent_id, provider) DO UPDATE SET notified_at = excluded.notified_at, \
             notice_id = excluded.notice_id WHERE fallback_notices.notified_at <= :quiet_since",
            &binds,
        )?;
        let claimed = "EXISTS (SELECT 1 FROM fallback_notices WHERE workspace_id = :outbox_workspace_id \
            AND agent_id = :fallback_agent AND provider = :fallback_provider AND notice_id = :outbox_id)";
        let extra = [("fallback_agent", text(agent_key)), ("fallback_provider", text(provider.as_str()))];
        let queue = queue_statement(notice, notice.created_at, Some(claimed), None, &extra)?;
        let outcomes = self.batch(vec![claim, insert_audit_statement(audit, None)?, queue]).await?;
        Ok(outcome(&outcomes, 2)?.changes > 0)
    }

    async fn route(&self, workspace_id: &str, agent_id: &str) -> Result<Option<AgentRoute>, StoreError> {
        let outcome = self
            .query(Statement::new(
                &format!("SELECT {ROUTE_COLUMNS} FROM agent_routes WHERE workspace_id = :workspace_id AND agent_id = :agent_id"),
                &[("workspace_id", text(workspace_id)), ("agent_id", text(agent_id))],
            )?)
            .await?;
        Ok(outcome.first::<RouteRow>()?.map(RouteRow::into_route))
    }

    async fn routes_after(&self, workspace_id: &str, after: Option<&Cursor>, limit: usize) -> Result<Vec<AgentRoute>, StoreError> {
        let sql = format!(
            "SELECT {ROUTE_COLUMNS} FROM agent_routes WHERE workspace_id = :workspace_id \
             AND (:after_updated_at IS NULL OR (updated_at, agent_id) < (:after_updated_at, :after_agent_id)) \
             ORDER BY updated_at DESC, agent_id DESC LIMIT :limit"
        );
        let binds = [
            ("workspace_id", text(workspace_id)),
            ("after_updated_at", after.map_or(Value::Null, |c| int(c.position))),
            ("after_agent_id", after.map_or(Value::Null, |c| text(&c.id))),
            ("limit", int(limit as i64)),
        ];
        let rows = self.query(Statement::new(&sql, &binds)?).await?.rows::<RouteRow>()?;
        Ok(rows.into_iter().map(RouteRow::into_route).collect())
    }

    async fn save_route(&self, route: &AgentRoute, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError> {
        let upsert = Statement::new(
            &format!(
                "INSERT INTO agent_routes ({ROUTE_COLUMNS}) VALUES (:workspace_id, :agent_id, :provider, :model, \
                 :metered_fallback, :updated_at) ON CONFLICT (workspace_id, agent_id) DO UPDATE SET provider = excluded.provider, \
                 model = excluded.model, metered_fallback = excluded.metered_fallback, updated_at = excluded.updated_at"
            ),
            &[
                ("workspace_id", text(&route.workspace_id)),
                ("agent_id", text(&route.agent_id)),
                ("provider", opt_text(route.provider.map(ProviderId::as_str))),
                ("model", opt_text(route.model.as_deref())),
                ("metered_fallback", opt_text(route.metered_fallback.map(MeteredFallback::as_str))),
                ("updated_at", int(route.updated_at)),
            ],
        )?;
        let audit = insert_audit_statement(audit, None)?;
        self.batch_under(precondition, vec![upsert, audit]).await?;
        Ok(())
    }

    async fn remove_route(&self, precondition: &Precondition, agent_id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        let delete = Statement::new(
            "DELETE FROM agent_routes WHERE workspace_id = :workspace_id AND agent_id = :agent_id",
            &[("workspace_id", text(&precondition.workspace_id)), ("agent_id", text(agent_id))],
        )?;
        let audit = insert_audit_statement(audit, Some(Guard::after_a_change()))?;
        let outcomes = self.batch_under(precondition, vec![delete, audit]).await?;
        Ok(outcome(&outcomes, 0)?.changes > 0)
    }

    async fn resolution(
        &self,
        precondition: &Precondition,
        agent_id: Option<&str>,
        provider: Option<ProviderId>,
    ) -> Result<Resolution, StoreError> {
        let binds = [
            ("workspace_id", text(&precondition.workspace_id)),
            ("agent_id", opt_text(agent_id)),
            ("provider", opt_text(provider.map(ProviderId::as_str))),
        ];
        let route = Statement::new(
            &format!("SELECT {ROUTE_COLUMNS} FROM agent_routes WHERE workspace_id = :workspace_id AND agent_id = :agent_id"),
            &binds,
        )?;
        // The requested provider, else the agent's route (none if routed to metered), else the default.
        let config = Statement::new(
            &format!(
                "SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE workspace_id = :workspace_id AND provider = (CASE \
                 WHEN :provider IS NOT NULL THEN :provider \
                 WHEN EXISTS (SELECT 1 FROM agent_routes WHERE workspace_id = :workspace_id AND agent_id = :agent_id) \
                   THEN (SELECT provider FROM agent_routes WHERE workspace_id = :workspace_id AND agent_id = :agent_id) \
                 ELSE (SELECT provider FROM provider_configs WHERE workspace_id = :workspace_id AND is_default = 1 LIMIT 1) END)"
            ),
            &binds,
        )?;
        let outcomes = self.batch_under(precondition, vec![route, config]).await?;
        let route = outcome(&outcomes, 0)?.first::<RouteRow>()?.map(RouteRow::into_route);
        Ok(Resolution { route, config: first_record(outcome(&outcomes, 1)?)? })
    }

    async fn configs_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<ProviderRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROVIDER_COLUMNS} FROM provider_configs WHERE kek_id != :current_kek \
             OR substr(blob_name, 1, length(:bound_prefix)) != :bound_prefix LIMIT :limit"
        );
        let binds = [("current_kek", text(current_kek)), ("limit", int(limit as i64)), ("bound_prefix", text(BOUND_BLOB_PREFIX))];
        provider_records(&self.query(Statement::new(&sql, &binds)?).await?)
    }

    async fn repoint_blob(
        &self,
        record: &ProviderRecord,
        old_blob: &str,
        new_blob: &str,
        new_kek: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let repoint = Statement::new(
            "UPDATE provider_configs SET blob_name = :new_blob, kek_id = :new_kek \
             WHERE workspace_id = :workspace_id AND provider = :provider AND blob_name = :old_blob",
            &[
                ("workspace_id", text(&record.workspace_id)),
                ("provider", text(record.provider.as_str())),
                ("old_blob", text(old_blob)),
                ("new_blob", text(new_blob)),
                ("new_kek", text(new_kek)),
            ],
        )?;
        let retire = Statement::new(
            "INSERT OR IGNORE INTO retired_blobs (blob_name, retired_at) SELECT :old_blob, :now WHERE changes() > 0",
            &[("old_blob", text(old_blob)), ("now", int(now_ms))],
        )?;
        let outcomes = self.batch(vec![repoint, retire]).await?;
        Ok(outcome(&outcomes, 0)?.changes > 0)
    }
}
