//! The provider use cases: configure (three checks, then store atomically), read, remove,
//! re-validate, route agents, and resolve a key for the runtime.

use serde_json::{json, Map, Value};

use super::catalog::{detect_other_provider, key_shape_ok, ProviderId};
use super::fallback::{self, MeteredFallback, Unusable};
use super::host::ApiHost;
use super::record::{key_hint, AgentRoute, KeyStatus, ProviderRecord, BOUND_BLOB_PREFIX};
use super::store::{BlobStore, OfferedModels, ProviderStore, Saved};
use super::validation::{validate_live, Candidate, ProviderClient};
use crate::audit::store::AuditStore;
use crate::audit::AuditEvent;
use crate::crypto::random::random_base62;
use crate::deps::Deps;
use crate::error::{echoed, ApiError};
use crate::keys::auth::Caller;
use crate::outbox::OutboxEvent;
use crate::page::{Cursor, Page, PageRequest};
use crate::storage::{Precondition, StoreError};
use crate::vault::{self, Keks, SecretContext};

const MAX_MODEL_CHARS: usize = 200;
const MAX_CONFIG_VALUE_CHARS: usize = 200;

/// A configure request after its JSON was read.
#[derive(Debug, Clone)]
pub struct Configure {
    pub provider: ProviderId,
    pub api_key: String,
    pub api_host: Option<String>,
    pub model: Option<String>,
    pub fallback_model: Option<String>,
    pub config: Option<Map<String, Value>>,
    pub make_default: bool,
    /// Store a key that authenticated but could not be proven by listing models (restricted,
    /// or refused by region) as `unverified` instead of refusing it.
    pub allow_unverified: bool,
}

impl Configure {
    /// A new key for a provider keeps what is configured for it (host, models, settings)
    /// wherever the request names nothing new: Waypath's configure and the rotation webhook.
    pub fn keeping(mut self, current: Option<&ProviderRecord>) -> Configure {
        if let Some(current) = current {
            self.api_host = self.api_host.or_else(|| Some(current.api_host.clone()));
            self.model = self.model.or_else(|| current.model.clone());
            self.fallback_model = self.fallback_model.or_else(|| current.fallback_model.clone());
            self.config = self.config.or_else(|| Some(current.config.clone()));
        }
        self
    }
}

pub fn check_model(field: &str, model: Option<String>) -> Result<Option<String>, ApiError> {
    match model {
        Some(m) if m.is_empty() || m.chars().count() > MAX_MODEL_CHARS || m.chars().any(char::is_control) => {
            Err(ApiError::invalid_request(field, format!("`{field}` must be 1 to {MAX_MODEL_CHARS} printable characters.")))
        }
        other => Ok(other),
    }
}

/// The provider's `config`: only its own fields, the required ones present, defaults filled.
pub fn check_config(provider: ProviderId, config: Option<Map<String, Value>>) -> Result<Map<String, Value>, ApiError> {
    let config = config.unwrap_or_default();
    let fields = provider.config_fields();
    if let Some(unknown) = config.keys().find(|k| !fields.iter().any(|f| f.name == k.as_str())) {
        let field = format!("config.{}", echoed(unknown));
        return Err(ApiError::invalid_request(&field, format!("`{field}` is not a setting of {}.", provider.display_name())));
    }
    let mut checked = Map::new();
    for spec in fields {
        let field = format!("config.{}", spec.name);
        match config.get(spec.name) {
            Some(Value::String(text))
                if !text.is_empty() && text.len() <= MAX_CONFIG_VALUE_CHARS && text.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                checked.insert(spec.name.into(), json!(text));
            }
            Some(Value::Null) | None if !spec.required => {
                if let Some(default) = spec.default {
                    checked.insert(spec.name.into(), json!(default));
                }
            }
            None | Some(Value::Null) => {
                return Err(ApiError::invalid_request(&field, format!("`{field}` is required for {}.", provider.display_name())))
            }
            Some(_) => {
                return Err(ApiError::invalid_request(
                    &field,
                    format!("`{field}` must be 1 to {MAX_CONFIG_VALUE_CHARS} printable characters without spaces."),
                ))
            }
        }
    }
    Ok(checked)
}

fn check_key(provider: ProviderId, api_key: &str) -> Result<(), ApiError> {
    if !key_shape_ok(api_key) {
        return Err(ApiError::invalid_request("api_key", "`api_key` must be 1 to 512 printable characters without whitespace."));
    }
    match detect_other_provider(provider, api_key) {
        Some(other) => Err(ApiError::WrongProvider { detected: other.as_str().to_string() }),
        None => Ok(()),
    }
}

fn check_host(provider: ProviderId, api_host: Option<&str>, allow_insecure: bool) -> Result<ApiHost, ApiError> {
    let text = match api_host.or(provider.default_host()) {
        Some(text) => text,
        None => return Err(ApiError::invalid_request("api_host", format!("`api_host` is required for {}.", provider.display_name()))),
    };
    ApiHost::parse(text, allow_insecure).map_err(|reason| ApiError::InvalidHost { field: "api_host".into(), reason })
}

/// The key's encryption context binds the blob's name; a config stored before names were bound
/// (a blob name of the old form) may still point at an unbound blob.
fn context<'a>(record: &'a ProviderRecord) -> SecretContext<'a> {
    SecretContext {
        workspace_id: &record.workspace_id,
        kind: record.provider.as_str(),
        version: record.version,
        name: &record.blob_name,
        accepts_unbound: !record.blob_name.starts_with(BOUND_BLOB_PREFIX),
    }
}

/// A fresh, never reused name for a blob of this config version.
fn new_blob_name(workspace_id: &str, provider: ProviderId, version: i64) -> String {
    format!("{BOUND_BLOB_PREFIX}{workspace_id}/{}/{version}-{}", provider.as_str(), random_base62(8))
}

/// Validates and stores a provider key, replacing the current one atomically: the new blob is
/// written under a fresh name before the pointer moves, and the old blob stays readable until
/// the scheduled handler deletes it after a grace period.
pub async fn configure<S: ProviderStore, B: BlobStore, C: ProviderClient>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    request: Configure,
    audit: AuditEvent,
) -> Result<ProviderRecord, ApiError> {
    Ok(configure_notifying(deps, precondition, request, audit, RotationNotice::Never).await?.0)
}

/// When configuring tells the workspace's endpoint `provider_key.rotated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationNotice {
    Never,
    /// Only when the key replaces a configured one (`PUT /v1/providers/{provider}`).
    IfReplaced,
    /// Every time (a rotation a signed webhook asked for).
    Always,
}

/// [`configure`], with the `provider_key.rotated` notice `notice` asks for committed in the
/// save's own batch; also answers the id of the notification queued, if one was.
pub async fn configure_notifying<S: ProviderStore, B: BlobStore, C: ProviderClient>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    request: Configure,
    audit: AuditEvent,
    notice: RotationNotice,
) -> Result<(ProviderRecord, Option<String>), ApiError> {
    let (store, blobs, keks, now_ms) = (deps.store, deps.blobs, deps.keks()?, deps.now_ms);
    let workspace_id = precondition.workspace_id.as_str();
    let provider = request.provider;
    check_key(provider, &request.api_key)?;
    let host = check_host(provider, request.api_host.as_deref(), deps.allow_insecure_hosts())?;
    let config = check_config(provider, request.config)?;
    let model = check_model("model", request.model)?;
    let fallback_model = check_model("fallback_model", request.fallback_model)?;
    let candidate = Candidate {
        provider,
        api_key: &request.api_key,
        host: &host,
        config: &config,
        model: model.as_deref(),
        fallback_model: fallback_model.as_deref(),
    };
    let checked = validate_live(deps.client, &candidate, now_ms).await;
    let (status, provider_reason) = match checked.verdict {
        Ok(()) => (KeyStatus::Valid, None),
        Err(ApiError::KeyRestricted { provider_reason, .. } | ApiError::RegionUnsupported { provider_reason, .. })
            if request.allow_unverified =>
        {
            (KeyStatus::Unverified, Some(provider_reason))
        }
        Err(refused) => return Err(refused),
    };

    let current = store.provider(workspace_id, provider).await?;
    let version = current.as_ref().map_or(1, |c| c.version + 1);
    let record = ProviderRecord {
        workspace_id: workspace_id.to_string(),
        provider,
        api_host: host.as_str().to_string(),
        model,
        fallback_model,
        config,
        key_hint: key_hint(&request.api_key),
        status,
        validated_at: Some(now_ms),
        provider_reason,
        funds: checked.funds,
        version,
        blob_name: new_blob_name(workspace_id, provider, version),
        kek_id: keks.current_id().to_string(),
        is_default: false,
        updated_at: now_ms,
    };
    let blob = vault::seal(keks, request.api_key.as_bytes(), &context(&record)).map_err(ApiError::internal)?;
    blobs.put_blob(&record.blob_name, &blob).await?;
    let detail = json!({"version": version, "replaced": current.is_some(), "key_hint": record.key_hint, "status": status.as_str()});
    let audit = audit.target(provider.as_str()).detail(detail);
    let expected = current.as_ref().map(|c| c.version);
    let retired = current.as_ref().map(|c| c.blob_name.as_str());
    let notify = match notice {
        RotationNotice::Never => false,
        RotationNotice::IfReplaced => version > 1,
        RotationNotice::Always => true,
    };
    let data = json!({"provider": provider.as_str(), "version": version, "key_hint": record.key_hint});
    let notification = notify.then(|| OutboxEvent::new(workspace_id, "provider_key.rotated", data, now_ms));
    let listing = checked.listing.as_ref();
    let saved = store.save_provider(&record, expected, request.make_default, retired, listing, &audit, notification.as_ref(), precondition);
    let queued = match saved.await {
        Ok(Saved::Won { queued }) => queued,
        Ok(Saved::Lost) => {
            blobs.delete_blob(&record.blob_name).await?;
            return Err(ApiError::Conflict);
        }
        Err(refused @ StoreError::Refused(_)) => {
            // The batch was rolled back: nothing points at the new blob.
            blobs.delete_blob(&record.blob_name).await?;
            return Err(refused.into());
        }
        // Whether the batch committed is unknown: the blob stays, at worst an orphan.
        Err(failed) => return Err(failed.into()),
    };
    let saved = store.provider(workspace_id, provider).await?.ok_or_else(|| ApiError::internal("saved provider vanished"))?;
    Ok((saved, notification.filter(|_| queued).map(|n| n.id)))
}

/// A new key for a provider, keeping what is configured for it (host, models, settings)
/// wherever the request names nothing new: Waypath's configure and the rotation webhook.
pub async fn replace_key<S: ProviderStore, B: BlobStore, C: ProviderClient>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    request: Configure,
    audit: AuditEvent,
    notice: RotationNotice,
) -> Result<(ProviderRecord, Option<String>), ApiError> {
    let current = deps.store.provider(&precondition.workspace_id, request.provider).await?;
    configure_notifying(deps, precondition, request.keeping(current.as_ref()), audit, notice).await
}

pub async fn get<S: ProviderStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    workspace_id: &str,
    provider: ProviderId,
) -> Result<ProviderRecord, ApiError> {
    deps.store.provider(workspace_id, provider).await?.ok_or(ApiError::NotConfigured)
}

/// The workspace's configured providers.
pub async fn list<S: ProviderStore, B, C>(deps: &Deps<'_, S, B, C>, workspace_id: &str) -> Result<Vec<ProviderRecord>, ApiError> {
    Ok(deps.store.providers(workspace_id).await?)
}

pub async fn remove<S: ProviderStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    provider: ProviderId,
) -> Result<ProviderRecord, ApiError> {
    caller.require("providers:write")?;
    caller.require_writable()?;
    let now_ms = deps.now_ms;
    let audit = caller.audit("provider.removed", now_ms).target(provider.as_str());
    deps.store.remove_provider(&caller.write_precondition(), provider, now_ms, &audit).await?.ok_or(ApiError::NotConfigured)
}

/// Reads and decrypts the current key of a config. A pointer whose blob KV does not show yet
/// is a 503 with `Retry-After: 1`, never an older key.
pub async fn open_key(blobs: &impl BlobStore, keks: &Keks, record: &ProviderRecord) -> Result<String, ApiError> {
    let blob = blobs.get_blob(&record.blob_name).await?.ok_or(ApiError::SecretUnavailable)?;
    let plaintext = vault::open(keks, &blob, &context(record)).map_err(|e| ApiError::DecryptionFailed { detail: e.to_string() })?;
    String::from_utf8(plaintext).map_err(ApiError::internal)
}

/// A re-validation's result: the config with its fresh status, why it is not valid (when the
/// provider refused it or could not answer), and whether it just went bad.
#[derive(Debug, Clone, PartialEq)]
pub struct Revalidation {
    pub record: ProviderRecord,
    pub error: Option<ApiError>,
    /// The key was usable before and is not now: it was audited, and this tells the endpoint,
    /// both in the status update's batch.
    pub notice: Option<OutboxEvent>,
    /// Whether `notice` was queued (the workspace has an endpoint), for a first attempt.
    pub queued: bool,
}

impl Revalidation {
    /// The `provider.invalidated` audit detail and notification data: never the key.
    fn invalidation_data(&self) -> Value {
        json!({"provider": self.record.provider.as_str(), "status": self.record.status.as_str(), "version": self.record.version})
    }
}

/// Re-validates the stored key live and records the fresh status. Conclusive answers change
/// the status; a provider that cannot answer leaves it as it was and says why in `error`. A
/// key that just went bad is audited as `invalidated` says (who asked) and comes back with
/// the `provider_key.invalidated` notice to send: the route and the cron do the same.
pub async fn revalidate<S: ProviderStore + AuditStore, B: BlobStore, C: ProviderClient>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    provider: ProviderId,
    invalidated: AuditEvent,
) -> Result<Revalidation, ApiError> {
    let (store, now_ms) = (deps.store, deps.now_ms);
    let record = get(deps, &precondition.workspace_id, provider).await?;
    // The stored host passed the policy when it was configured, perhaps under an older and
    // weaker one: check it again before the key is sent anywhere. The key itself is no worse
    // for it, so its status stays.
    let host = match ApiHost::parse(&record.api_host, deps.allow_insecure_hosts()) {
        Ok(host) => host,
        Err(reason) => {
            let error = ApiError::InvalidHost { field: "api_host".into(), reason };
            return Ok(Revalidation { record, error: Some(error), notice: None, queued: false });
        }
    };
    let api_key = open_key(deps.blobs, deps.keks()?, &record).await?;
    let candidate = Candidate {
        provider,
        api_key: &api_key,
        host: &host,
        config: &record.config,
        model: record.model.as_deref(),
        fallback_model: record.fallback_model.as_deref(),
    };
    let checked = validate_live(deps.client, &candidate, now_ms).await;
    let (status, provider_reason) = match &checked.verdict {
        Ok(()) => (Some(KeyStatus::Valid), None),
        Err(ApiError::InvalidKey { .. } | ApiError::InvalidModel { .. }) => (Some(KeyStatus::Invalid), None),
        Err(ApiError::QuotaExceeded { .. }) => (Some(KeyStatus::QuotaExceeded), None),
        // It authenticated: still handed out, and tried again by the cron.
        Err(ApiError::KeyRestricted { provider_reason, .. } | ApiError::RegionUnsupported { provider_reason, .. }) => {
            (Some(KeyStatus::Unverified), Some(provider_reason.clone()))
        }
        Err(_) => (None, None),
    };
    let mut revalidation = Revalidation { record: record.clone(), error: checked.verdict.err(), notice: None, queued: false };
    let Some(status) = status else { return Ok(revalidation) };
    revalidation.record.status = status;
    revalidation.record.validated_at = Some(now_ms);
    revalidation.record.provider_reason = provider_reason;
    revalidation.record.funds = checked.funds;
    // A key that just went bad: its audit entry and notification commit with the status.
    let mut invalidation = None;
    if record.status.usable() && !status.usable() {
        let data = revalidation.invalidation_data();
        let audit = invalidated.target(provider.as_str()).detail(data.clone());
        invalidation = Some((audit, OutboxEvent::new(&record.workspace_id, "provider_key.invalidated", data, now_ms)));
    }
    let invalidation_ref = invalidation.as_ref().map(|(audit, notice)| (audit, notice));
    let listing = checked.listing.as_ref();
    revalidation.queued = store.set_provider_status(precondition, &revalidation.record, listing, invalidation_ref).await?;
    revalidation.notice = invalidation.map(|(_, notice)| notice);
    Ok(revalidation)
}

/// Re-wraps up to `limit` stored provider keys still sealed under an older KEK, or in a blob of
/// before names were bound (which comes out bound to its new name), each into a blob under a new
/// name that the config then points at; the ciphertext of the key is kept. Returns how many
/// moved. Safe to run twice at once: a repoint only lands on the blob it read.
pub async fn rewrap_stale<S: ProviderStore, B: BlobStore, C>(deps: &Deps<'_, S, B, C>, limit: usize) -> Result<usize, ApiError> {
    let (store, blobs, keks, now_ms) = (deps.store, deps.blobs, deps.keks()?, deps.clock_ms());
    let mut moved = 0;
    for record in store.configs_not_under(keks.current_id(), limit).await? {
        let Some(blob) = blobs.get_blob(&record.blob_name).await? else { continue };
        let new_name = new_blob_name(&record.workspace_id, record.provider, record.version);
        let Some(rewrapped) =
            vault::rewrap(keks, &blob, &context(&record), &new_name).map_err(|e| ApiError::DecryptionFailed { detail: e.to_string() })?
        else {
            continue;
        };
        blobs.put_blob(&new_name, &rewrapped).await?;
        if store.repoint_blob(&record, &record.blob_name, &new_name, keks.current_id(), now_ms).await? {
            moved += 1;
        } else {
            blobs.delete_blob(&new_name).await?;
        }
    }
    Ok(moved)
}

/// An agent id: 1 to 128 characters of `[A-Za-z0-9._:-]`.
pub fn check_agent_id(agent_id: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&agent_id.len()) && agent_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_request("agent_id", "`agent_id` must be 1 to 128 characters of [A-Za-z0-9._:-]."))
    }
}

/// Routes an agent to metered billing (`provider: None`) or to a configured provider.
pub async fn set_route<S: ProviderStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    caller: &Caller,
    route: AgentRoute,
) -> Result<AgentRoute, ApiError> {
    caller.require("providers:write")?;
    caller.require_writable()?;
    let store = deps.store;
    if let Some(provider) = route.provider {
        if store.provider(&caller.workspace.id, provider).await?.is_none() {
            return Err(ApiError::ProviderNotConfigured { provider: provider.as_str().to_string() });
        }
    }
    let audit = caller.audit("agent.routed", route.updated_at).target(route.agent_id.clone()).detail(route.to_json());
    store.save_route(&route, &audit, &caller.write_precondition()).await?;
    Ok(route)
}

/// An agent's route.
pub async fn route<S: ProviderStore, B, C>(deps: &Deps<'_, S, B, C>, workspace_id: &str, agent_id: &str) -> Result<AgentRoute, ApiError> {
    deps.store.route(workspace_id, agent_id).await?.ok_or(ApiError::NotConfigured)
}

/// The workspace's routed agents, most recently changed first, one page at a time.
pub async fn routes<S: ProviderStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    workspace_id: &str,
    page: &PageRequest,
) -> Result<Page<AgentRoute>, ApiError> {
    let rows = deps.store.routes_after(workspace_id, page.after.as_ref(), page.limit + 1).await?;
    Ok(Page::from_rows(rows, page.limit, |route| Cursor { position: route.updated_at, id: route.agent_id.clone() }))
}

/// Removes an agent's route (it then resolves to the workspace default); idempotent.
pub async fn remove_route<S: ProviderStore, B, C>(deps: &Deps<'_, S, B, C>, caller: &Caller, agent_id: &str) -> Result<(), ApiError> {
    caller.require("providers:write")?;
    caller.require_writable()?;
    let audit = caller.audit("agent.unrouted", deps.now_ms).target(agent_id.to_string());
    deps.store.remove_route(&caller.write_precondition(), agent_id, &audit).await?;
    Ok(())
}

/// What resolve answers: a key, or metered billing and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Byok {
        record: Box<ProviderRecord>,
        api_key: String,
        model: Option<String>,
    },
    Metered {
        reason: &'static str,
        /// The configured provider whose key could not be used, when this is a fallback.
        fell_back_from: Option<(ProviderId, Unusable)>,
    },
}

impl Resolved {
    pub fn to_json(&self) -> Value {
        match self {
            Resolved::Byok { record, api_key, model } => json!({
                "mode": "byok",
                "provider": record.provider.as_str(),
                "api_key": api_key,
                "api_host": record.api_host,
                "model": model,
                "fallback_model": record.fallback_model,
                "config": record.config,
            }),
            Resolved::Metered { reason, .. } => json!({"mode": "metered", "reason": reason}),
        }
    }

    /// The audit detail: which path was taken, never the key.
    pub fn audit_detail(&self, agent_id: Option<&str>) -> Value {
        match self {
            Resolved::Byok { record, .. } => {
                json!({"mode": "byok", "provider": record.provider.as_str(), "version": record.version, "agent_id": agent_id})
            }
            Resolved::Metered { reason, .. } => json!({"mode": "metered", "reason": reason, "agent_id": agent_id}),
        }
    }
}

/// The resolution order: the request's provider; else the agent's routing; else the
/// workspace default; else metered. A configured key that cannot be used falls back to metered
/// only with consent (`workspace_consent`, unless the agent's routing says otherwise), else 409
/// `byok_unavailable`.
pub async fn resolve<S: ProviderStore, B: BlobStore, C>(
    deps: &Deps<'_, S, B, C>,
    precondition: &Precondition,
    agent_id: Option<&str>,
    provider: Option<ProviderId>,
    workspace_consent: MeteredFallback,
) -> Result<Resolved, ApiError> {
    let found = deps.store.resolution(precondition, agent_id, provider).await?;
    let consent = fallback::consent(workspace_consent, found.route.as_ref());
    let fall_back = |from: ProviderId, unusable: Unusable| {
        fallback::decide(consent, from, unusable).map(|reason| Resolved::Metered { reason, fell_back_from: Some((from, unusable)) })
    };
    let routed_to = if provider.is_none() { found.route.as_ref() } else { None };
    if let Some(route) = routed_to {
        let Some(routed_provider) = route.provider else {
            return Ok(Resolved::Metered { reason: "agent_routed_metered", fell_back_from: None });
        };
        if found.config.is_none() {
            return fall_back(routed_provider, Unusable::ProviderRemoved);
        }
    }
    let Some(record) = found.config else {
        return Ok(Resolved::Metered { reason: "no_byok_configured", fell_back_from: None });
    };
    if !record.status.usable() {
        return fall_back(record.provider, Unusable::ByokInvalid);
    }
    let api_key = open_key(deps.blobs, deps.keks()?, &record).await?;
    let model = routed_to.and_then(|r| r.model.clone()).or_else(|| record.model.clone());
    Ok(Resolved::Byok { record: Box::new(record), api_key, model })
}

/// Audits a resolve that fell back to metered as `resolve.fell_back`, and queues
/// `provider_key.fallback_used` unless one went out for the same agent and provider within the
/// hour. The id of the notification queued, if one was.
pub async fn record_fallback<S: ProviderStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    audit: AuditEvent,
    agent_id: Option<&str>,
    from: ProviderId,
    unusable: Unusable,
) -> Result<Option<String>, ApiError> {
    let data = fallback::notice_data(agent_id, from, unusable);
    let workspace_id = audit.workspace_id.clone().ok_or_else(|| ApiError::internal("a fallback outside a workspace"))?;
    let notice = OutboxEvent::new(&workspace_id, "provider_key.fallback_used", data.clone(), deps.now_ms);
    let audit = audit.target(from.as_str()).detail(data);
    let queued = deps.store.record_fallback(&audit, &notice, agent_id.unwrap_or(""), from, fallback::NOTICE_QUIET_MS).await?;
    Ok(queued.then_some(notice.id))
}

/// The models the stored key was offered at its last validation that read a list; never asks
/// the provider.
pub async fn offered_models<S: ProviderStore, B, C>(
    deps: &Deps<'_, S, B, C>,
    workspace_id: &str,
    provider: ProviderId,
) -> Result<(ProviderRecord, Option<OfferedModels>), ApiError> {
    let record = get(deps, workspace_id, provider).await?;
    let models = deps.store.offered_models(workspace_id, provider).await?;
    Ok((record, models))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use futures_executor::block_on;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    /// A config as stored before names were bound: a blob name of the old form, an unbound blob.
    fn config_of_before(store: &SqliteStore, keks: &Keks, api_key: &str) -> ProviderRecord {
        let record = ProviderRecord {
            workspace_id: "ws_old".into(),
            provider: ProviderId::OpenAi,
            api_host: "https://api.openai.com/v1".into(),
            model: None,
            fallback_model: None,
            config: Map::new(),
            key_hint: key_hint(api_key),
            status: KeyStatus::Valid,
            validated_at: Some(1_000),
            provider_reason: None,
            funds: None,
            version: 1,
            blob_name: "pk/ws_old/openai/1-Ab3dEf9h".into(),
            kek_id: keks.current_id().into(),
            is_default: true,
            updated_at: 1_000,
        };
        store.blobs().insert(record.blob_name.clone(), vault::seal_unbound(keks, api_key.as_bytes(), &context(&record)));
        store.put_provider_row(&record);
        record
    }

    #[test]
    fn a_replacement_key_keeps_what_is_configured_unless_it_names_something_new() {
        let keks = Keks::parse(K1).unwrap();
        let mut current = config_of_before(&SqliteStore::default(), &keks, "sk-old-key-0123456789");
        current.api_host = "https://proxy.example.com/v1".into();
        current.model = Some("gpt-4o".into());
        current.fallback_model = Some("gpt-4o-mini".into());
        let bare = Configure {
            provider: ProviderId::OpenAi,
            api_key: "sk-new".into(),
            api_host: None,
            model: None,
            fallback_model: None,
            config: None,
            make_default: false,
            allow_unverified: false,
        };
        let kept = bare.clone().keeping(Some(&current));
        assert_eq!(kept.api_host.as_deref(), Some("https://proxy.example.com/v1"));
        assert_eq!((kept.model.as_deref(), kept.fallback_model.as_deref()), (Some("gpt-4o"), Some("gpt-4o-mini")));
        assert_eq!(kept.config, Some(Map::new()));
        let renamed = Configure { model: Some("gpt-5".into()), ..bare.clone() }.keeping(Some(&current));
        assert_eq!(renamed.model.as_deref(), Some("gpt-5"), "a model the request names wins");
        assert_eq!(bare.clone().keeping(None).api_host, None, "nothing configured: the provider's defaults apply later");
    }

    #[test]
    fn a_key_stored_before_names_were_bound_still_resolves() {
        let (store, keks) = (SqliteStore::default(), Keks::parse(K1).unwrap());
        config_of_before(&store, &keks, "sk-stored-long-ago");
        let resolved = block_on(resolve(
            &Deps::for_tests(&store, &store, &keks, 0),
            &Precondition::unconditional("ws_old"),
            None,
            None,
            MeteredFallback::Allow,
        ))
        .unwrap();
        assert!(matches!(resolved, Resolved::Byok { ref api_key, .. } if api_key == "sk-stored-long-ago"), "{resolved:?}");
    }

    #[test]
    fn the_rewrap_moves_a_key_of_before_to_a_bound_blob_once() {
        let (store, keks) = (SqliteStore::default(), Keks::parse(K1).unwrap());
        let old = config_of_before(&store, &keks, "sk-stored-long-ago");
        assert_eq!(block_on(rewrap_stale(&Deps::for_tests(&store, &store, &keks, 2_000), 25)), Ok(1), "upgraded though its KEK is current");
        let moved = block_on(store.provider("ws_old", ProviderId::OpenAi)).unwrap().unwrap();
        assert!(moved.blob_name.starts_with("pk/v2/ws_old/openai/1-"), "{}", moved.blob_name);
        assert!(vault::binds_name(&store.blobs()[&moved.blob_name]).unwrap());
        assert_eq!(block_on(open_key(&store, &keks, &moved)).unwrap(), "sk-stored-long-ago");
        assert!(store.retired_blobs().iter().any(|(name, _)| *name == old.blob_name), "the unbound blob is retired");
        assert_eq!(block_on(rewrap_stale(&Deps::for_tests(&store, &store, &keks, 3_000), 25)), Ok(0), "nothing left to upgrade");
    }

    #[test]
    fn an_unbound_blob_slipped_under_a_config_stored_since_does_not_open() {
        let (store, keks) = (SqliteStore::default(), Keks::parse(K1).unwrap());
        let old = config_of_before(&store, &keks, "sk-retired");
        let current = ProviderRecord { blob_name: new_blob_name("ws_old", ProviderId::OpenAi, 1), ..old.clone() };
        let stolen = store.blobs()[&old.blob_name].clone();
        store.blobs().insert(current.blob_name.clone(), stolen);
        assert!(matches!(block_on(open_key(&store, &keks, &current)), Err(ApiError::DecryptionFailed { .. })));
    }

    #[test]
    fn azure_needs_a_deployment_and_defaults_its_api_version() {
        let error = check_config(ProviderId::Azure, None).unwrap_err();
        assert!(matches!(error, ApiError::InvalidRequest { ref field, .. } if field == "config.deployment"));
        let mut config = Map::new();
        config.insert("deployment".into(), json!("gpt4o-prod"));
        let checked = check_config(ProviderId::Azure, Some(config)).unwrap();
        assert_eq!(checked["api_version"], "2024-10-21");
    }

    #[test]
    fn bedrock_needs_region_and_access_key_id() {
        let mut config = Map::new();
        config.insert("region".into(), json!("us-east-1"));
        let error = check_config(ProviderId::Bedrock, Some(config)).unwrap_err();
        assert!(matches!(error, ApiError::InvalidRequest { ref field, .. } if field == "config.access_key_id"));
    }

    #[test]
    fn a_long_unknown_config_field_is_named_by_its_first_64_characters_only() {
        let mut config = Map::new();
        config.insert("t".repeat(20_000), json!(0.2));
        let Err(ApiError::InvalidRequest { field, message }) = check_config(ProviderId::OpenAi, Some(config)) else {
            panic!("expected invalid_request")
        };
        assert_eq!(field, format!("config.{}…", "t".repeat(64)));
        assert!(message.chars().count() < 200, "{message}");
    }

    #[test]
    fn unknown_or_malformed_config_fields_are_named() {
        let mut config = Map::new();
        config.insert("temperature".into(), json!(0.2));
        let error = check_config(ProviderId::OpenAi, Some(config)).unwrap_err();
        assert!(matches!(error, ApiError::InvalidRequest { ref field, .. } if field == "config.temperature"));
        let mut config = Map::new();
        config.insert("deployment".into(), json!(42));
        let error = check_config(ProviderId::Azure, Some(config)).unwrap_err();
        assert!(matches!(error, ApiError::InvalidRequest { ref field, .. } if field == "config.deployment"));
    }

    #[test]
    fn keys_are_checked_for_shape_then_for_another_providers_prefix() {
        assert!(matches!(check_key(ProviderId::OpenAi, "has space"), Err(ApiError::InvalidRequest { .. })));
        assert_eq!(check_key(ProviderId::OpenAi, "sk-ant-api03-x"), Err(ApiError::WrongProvider { detected: "anthropic".into() }));
        assert_eq!(check_key(ProviderId::OpenAi, "sk-proj-abc"), Ok(()));
    }

    #[test]
    fn hosts_default_per_provider_and_are_required_where_there_is_none() {
        assert_eq!(check_host(ProviderId::OpenAi, None, false).unwrap().as_str(), "https://api.openai.com/v1");
        assert!(matches!(check_host(ProviderId::Azure, None, false), Err(ApiError::InvalidRequest { .. })));
        assert!(matches!(check_host(ProviderId::OpenAi, Some("http://api.openai.com"), false), Err(ApiError::InvalidHost { .. })));
    }
}
