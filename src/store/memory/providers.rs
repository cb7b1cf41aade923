//! Provider configs, routes and blobs in memory.

use super::MemoryStore;
use crate::audit::AuditEvent;
use crate::providers::record::BOUND_BLOB_PREFIX;
use crate::providers::{AgentRoute, KeyStatus, ProviderId, ProviderRecord};
use crate::store::{BlobStore, Precondition, ProviderStore, Resolution, StoreError};

impl ProviderStore for MemoryStore {
    async fn provider(&self, workspace_id: &str, provider: ProviderId) -> Result<Option<ProviderRecord>, StoreError> {
        Ok(self.providers.borrow().get(&(workspace_id.to_string(), provider)).cloned())
    }

    async fn providers(&self, workspace_id: &str) -> Result<Vec<ProviderRecord>, StoreError> {
        let mut list: Vec<_> = self.providers.borrow().values().filter(|p| p.workspace_id == workspace_id).cloned().collect();
        list.sort_by_key(|p| p.provider.as_str());
        Ok(list)
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
        self.advance_clock(record.updated_at);
        self.hold(precondition)?;
        let mut providers = self.providers.borrow_mut();
        let key = (record.workspace_id.clone(), record.provider);
        let current = providers.get(&key);
        if current.map(|p| p.version) != expected_version || current.map(|p| p.blob_name.as_str()) != retired_blob {
            return Ok(false);
        }
        let had_default = providers.values().any(|p| p.workspace_id == record.workspace_id && p.is_default);
        let was_default = providers.get(&key).is_some_and(|p| p.is_default);
        let mut stored = record.clone();
        stored.is_default = make_default || was_default || !had_default;
        if make_default {
            for other in providers.values_mut().filter(|p| p.workspace_id == record.workspace_id) {
                other.is_default = false;
            }
        }
        providers.insert(key, stored);
        self.retired_blobs.borrow_mut().extend(retired_blob.map(|name| (name.to_string(), record.updated_at)));
        self.audit.borrow_mut().push(audit.clone());
        Ok(true)
    }

    async fn remove_provider(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<ProviderRecord>, StoreError> {
        self.advance_clock(now_ms);
        self.hold(precondition)?;
        let removed = self.providers.borrow_mut().remove(&(precondition.workspace_id.clone(), provider));
        if let Some(record) = &removed {
            self.retired_blobs.borrow_mut().push((record.blob_name.clone(), now_ms));
            self.audit.borrow_mut().push(audit.clone());
        }
        Ok(removed)
    }

    async fn set_provider_status(
        &self,
        precondition: &Precondition,
        provider: ProviderId,
        version: i64,
        status: KeyStatus,
        validated_at: i64,
    ) -> Result<(), StoreError> {
        self.advance_clock(validated_at);
        self.hold(precondition)?;
        let key = (precondition.workspace_id.clone(), provider);
        if let Some(record) = self.providers.borrow_mut().get_mut(&key).filter(|r| r.version == version) {
            record.status = status;
            record.validated_at = Some(validated_at);
        }
        Ok(())
    }

    async fn route(&self, workspace_id: &str, agent_id: &str) -> Result<Option<AgentRoute>, StoreError> {
        Ok(self.routes.borrow().get(&(workspace_id.to_string(), agent_id.to_string())).cloned())
    }

    async fn save_route(&self, route: &AgentRoute, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError> {
        self.advance_clock(route.updated_at);
        self.hold(precondition)?;
        self.routes.borrow_mut().insert((route.workspace_id.clone(), route.agent_id.clone()), route.clone());
        self.audit.borrow_mut().push(audit.clone());
        Ok(())
    }

    async fn remove_route(&self, precondition: &Precondition, agent_id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        self.hold(precondition)?;
        let removed = self.routes.borrow_mut().remove(&(precondition.workspace_id.clone(), agent_id.to_string())).is_some();
        if removed {
            self.audit.borrow_mut().push(audit.clone());
        }
        Ok(removed)
    }

    async fn resolution(
        &self,
        precondition: &Precondition,
        agent_id: Option<&str>,
        provider: Option<ProviderId>,
    ) -> Result<Resolution, StoreError> {
        self.hold(precondition)?;
        let workspace_id = precondition.workspace_id.as_str();
        let route = match agent_id {
            Some(agent) => self.route(workspace_id, agent).await?,
            None => None,
        };
        let providers = self.providers.borrow();
        let chosen = match (provider, &route) {
            (Some(p), _) => Some(p),
            (None, Some(route)) => route.provider,
            (None, None) => providers.values().find(|p| p.workspace_id == workspace_id && p.is_default).map(|p| p.provider),
        };
        let config = chosen.and_then(|p| providers.get(&(workspace_id.to_string(), p)).cloned());
        Ok(Resolution { route, config })
    }

    async fn configs_not_under(&self, current_kek: &str, limit: usize) -> Result<Vec<ProviderRecord>, StoreError> {
        let stale = |p: &&ProviderRecord| p.kek_id != current_kek || !p.blob_name.starts_with(BOUND_BLOB_PREFIX);
        Ok(self.providers.borrow().values().filter(stale).take(limit).cloned().collect())
    }

    async fn repoint_blob(
        &self,
        record: &ProviderRecord,
        old_blob: &str,
        new_blob: &str,
        new_kek: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.repoint(record, old_blob, new_blob, new_kek, now_ms))
    }
}

impl MemoryStore {
    /// The rewrap half of `ProviderStore`, kept apart to keep the trait impl readable.
    fn repoint(&self, record: &ProviderRecord, old_blob: &str, new_blob: &str, new_kek: &str, now_ms: i64) -> bool {
        let mut providers = self.providers.borrow_mut();
        let Some(stored) = providers.get_mut(&(record.workspace_id.clone(), record.provider)).filter(|p| p.blob_name == old_blob) else {
            return false;
        };
        stored.blob_name = new_blob.to_string();
        stored.kek_id = new_kek.to_string();
        self.retired_blobs.borrow_mut().push((old_blob.to_string(), now_ms));
        true
    }
}

impl BlobStore for MemoryStore {
    async fn put_blob(&self, name: &str, blob: &str) -> Result<(), StoreError> {
        self.blobs.borrow_mut().insert(name.to_string(), blob.to_string());
        Ok(())
    }

    async fn get_blob(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.blobs.borrow().get(name).cloned())
    }

    async fn delete_blob(&self, name: &str) -> Result<(), StoreError> {
        self.blobs.borrow_mut().remove(name);
        Ok(())
    }
}
