//! In-memory storage for native tests: the same contract as the D1 adapter, over maps.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};

mod providers;
mod webhooks;

use super::{
    is_after, is_live, AuditStore, AuthFinding, AuthProbe, Endpoint, KeyStore, LeakPlan, LeakRevocation, Precondition, RateHits, Refusal,
    Revocation, SealedSecret, StoreError, WorkspaceStore,
};
use crate::audit::AuditEvent;
use crate::keys::limits::{window_start, FAILED_ATTEMPT_LIMIT};
use crate::keys::KeyRecord;
use crate::page::Cursor;
use crate::providers::{AgentRoute, ProviderId, ProviderRecord};
use crate::webhooks::outbox::OutboxEvent;
use crate::workspaces::{Workspace, WorkspacePatch};

#[derive(Default)]
pub struct MemoryStore {
    pub workspaces: RefCell<HashMap<String, Workspace>>,
    pub keys: RefCell<HashMap<String, KeyRecord>>,
    pub audit: RefCell<Vec<AuditEvent>>,
    /// ip → (window start, failures)
    pub auth_failures: RefCell<HashMap<String, (i64, u32)>>,
    /// key id → (window start, hits)
    pub rate_windows: RefCell<HashMap<String, (i64, u32)>>,
    /// How many authentication lookups reached the store.
    pub lookups: Cell<u32>,
    /// Ids of the keys a leak report revoked (`api_keys.revoked_reason = 'leaked'` in D1).
    pub revoked_as_leaked: RefCell<HashSet<String>>,
    pub providers: RefCell<HashMap<(String, ProviderId), ProviderRecord>>,
    pub routes: RefCell<HashMap<(String, String), AgentRoute>>,
    pub blobs: RefCell<HashMap<String, String>>,
    /// (workspace, provider) → when the scheduled handler last took it for re-validation
    pub checked: RefCell<HashMap<(String, ProviderId), i64>>,
    /// (blob name, retired at)
    pub retired_blobs: RefCell<Vec<(String, i64)>>,
    /// (secret, expires_at)
    pub webhook_secrets: RefCell<Vec<(SealedSecret, Option<i64>)>>,
    /// (workspace, webhook id) → (claimed at, the first answer once there is one)
    pub receipts: RefCell<HashMap<(String, String), Receipt>>,
    pub endpoints: RefCell<HashMap<String, Endpoint>>,
    /// (event, next attempt, lease until, delivered, gave up)
    pub outbox: RefCell<Vec<OutboxRow>>,
    /// The store's own clock, as D1's: the latest time any call has shown it. Preconditions
    /// are judged by it, so a key revoked at some time is dead for every later write.
    pub clock: Cell<i64>,
}

/// When a webhook id was claimed, and its first answer (status, body) once there is one.
pub type Receipt = (i64, Option<(u16, String)>);

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub event: OutboxEvent,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub delivered_at: Option<i64>,
    pub gave_up_at: Option<i64>,
    pub last_status: Option<u16>,
}

impl MemoryStore {
    /// Moves the store's clock forward to `now_ms` if that is later, and returns it.
    pub fn advance_clock(&self, now_ms: i64) -> i64 {
        self.clock.set(self.clock.get().max(now_ms));
        self.clock.get()
    }

    /// The commit-time check of a write, as the D1 trigger makes it.
    pub fn hold(&self, precondition: &Precondition) -> Result<(), StoreError> {
        let now_ms = self.clock.get();
        if let Some(key_id) = &precondition.key_id {
            let live = self.keys.borrow().get(key_id).is_some_and(|k| k.workspace_id == precondition.workspace_id && is_live(k, now_ms));
            if !live {
                return Err(StoreError::Refused(Refusal::CallerNotLive));
            }
        }
        if precondition.writable && self.workspaces.borrow().get(&precondition.workspace_id).is_none_or(|w| w.read_only) {
            return Err(StoreError::Refused(Refusal::WorkspaceReadOnly));
        }
        Ok(())
    }

    fn newest_first(mut keys: Vec<KeyRecord>) -> Vec<KeyRecord> {
        keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        keys
    }
}

impl WorkspaceStore for MemoryStore {
    async fn insert_workspace(&self, workspace: &Workspace, owner_key: &KeyRecord, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut keys = self.keys.borrow_mut();
        if keys.values().any(|k| k.key_hash == owner_key.key_hash) {
            return Err(StoreError::Failed("UNIQUE constraint failed: api_keys.key_hash".into()));
        }
        self.workspaces.borrow_mut().insert(workspace.id.clone(), workspace.clone());
        keys.insert(owner_key.id.clone(), owner_key.clone());
        self.audit.borrow_mut().push(audit.clone());
        Ok(())
    }

    async fn workspace(&self, id: &str) -> Result<Option<Workspace>, StoreError> {
        Ok(self.workspaces.borrow().get(id).cloned())
    }

    async fn workspaces_after(&self, after: Option<&Cursor>, limit: usize) -> Result<Vec<Workspace>, StoreError> {
        let mut rows: Vec<Workspace> = self
            .workspaces
            .borrow()
            .values()
            .filter(|w| after.is_none_or(|cursor| is_after(w.created_at, &w.id, cursor)))
            .cloned()
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.truncate(limit);
        Ok(rows)
    }

    async fn update_workspace(&self, id: &str, patch: &WorkspacePatch) -> Result<Option<Workspace>, StoreError> {
        let mut workspaces = self.workspaces.borrow_mut();
        let Some(workspace) = workspaces.get_mut(id) else { return Ok(None) };
        if let Some(name) = &patch.name {
            workspace.name = name.as_str().to_string();
        }
        if let Some(read_only) = patch.read_only {
            workspace.read_only = read_only;
        }
        if let Some(capabilities) = &patch.default_capabilities {
            workspace.default_capabilities = capabilities.clone();
        }
        Ok(Some(workspace.clone()))
    }
}

impl KeyStore for MemoryStore {
    async fn authenticate(&self, probe: &AuthProbe<'_>) -> Result<AuthFinding, StoreError> {
        self.advance_clock(probe.now_ms);
        self.lookups.set(self.lookups.get() + 1);
        let ip_failures = probe
            .ip
            .and_then(|ip| self.auth_failures.borrow().get(ip).copied())
            .filter(|(start, _)| *start == probe.ip_window_start)
            .map_or(0, |(_, failures)| failures);
        let key = self.keys.borrow().values().find(|k| k.key_hash == probe.key_hash).cloned();
        let found = key.and_then(|key| {
            let workspace = self.workspaces.borrow().get(&key.workspace_id).cloned()?;
            Some((key, workspace))
        });
        let mut rate_hits = None;
        if let Some((key, _)) = &found {
            let counts = probe.count_use_in.is_none_or(|ws| ws == key.workspace_id);
            if let (Some(limit), true, true, true) =
                (key.rate_limit, counts, is_live(key, probe.now_ms), ip_failures < FAILED_ATTEMPT_LIMIT)
            {
                let start = window_start(probe.now_ms, limit.window_seconds as i64 * 1000);
                let mut windows = self.rate_windows.borrow_mut();
                let entry = windows.entry(key.id.clone()).or_insert((start, 0));
                if entry.0 != start {
                    *entry = (start, 0);
                }
                entry.1 += 1;
                rate_hits = Some(RateHits { hits: entry.1, window_start: start });
            }
        }
        Ok(AuthFinding { found, ip_failures, rate_hits })
    }

    async fn record_auth_failure(&self, ip: &str, window_start: i64) -> Result<u32, StoreError> {
        let mut failures = self.auth_failures.borrow_mut();
        let entry = failures.entry(ip.to_string()).or_insert((window_start, 0));
        if entry.0 != window_start {
            *entry = (window_start, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }

    async fn insert_key(&self, key: &KeyRecord, audit: &AuditEvent, precondition: &Precondition) -> Result<(), StoreError> {
        self.advance_clock(key.created_at);
        self.hold(precondition)?;
        self.keys.borrow_mut().insert(key.id.clone(), key.clone());
        self.audit.borrow_mut().push(audit.clone());
        Ok(())
    }

    async fn key(&self, workspace_id: &str, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.keys.borrow().get(id).filter(|k| k.workspace_id == workspace_id).cloned())
    }

    async fn keys_after(
        &self,
        workspace_id: &str,
        include_revoked: bool,
        now_ms: i64,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let keys = self
            .keys
            .borrow()
            .values()
            .filter(|k| k.workspace_id == workspace_id)
            .filter(|k| include_revoked || k.revoked_at.is_none_or(|at| at > now_ms))
            .filter(|k| after.is_none_or(|cursor| is_after(k.created_at, &k.id, cursor)))
            .cloned()
            .collect();
        let mut keys = Self::newest_first(keys);
        keys.truncate(limit);
        Ok(keys)
    }

    async fn revoke_key(
        &self,
        precondition: &Precondition,
        id: &str,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> Result<Option<Revocation>, StoreError> {
        let now_ms = self.advance_clock(now_ms);
        self.hold(precondition)?;
        let mut keys = self.keys.borrow_mut();
        let Some(key) = keys.get_mut(id).filter(|k| k.workspace_id == precondition.workspace_id) else { return Ok(None) };
        let revoked_now = key.revoked_at.is_none_or(|at| at > now_ms);
        if revoked_now {
            key.revoked_at = Some(now_ms);
            self.audit.borrow_mut().push(audit.clone());
        }
        Ok(Some(Revocation { key: key.clone(), revoked_now }))
    }

    async fn reroll_key(
        &self,
        old_id: &str,
        successor: &KeyRecord,
        grace_ms: i64,
        now_ms: i64,
        audit: &AuditEvent,
        precondition: &Precondition,
    ) -> Result<Option<i64>, StoreError> {
        let now_ms = self.advance_clock(now_ms);
        self.hold(precondition)?;
        let mut keys = self.keys.borrow_mut();
        let Some(old) = keys.get_mut(old_id).filter(|k| is_live(k, now_ms)) else { return Ok(None) };
        let old_ends_at = now_ms + grace_ms;
        let stops_at = old.revoked_at.map_or(old_ends_at, |at| at.min(old_ends_at));
        old.revoked_at = Some(stops_at);
        keys.insert(successor.id.clone(), successor.clone());
        self.audit.borrow_mut().push(audit.clone());
        Ok(Some(stops_at))
    }

    async fn live_keys_by_hashes(
        &self,
        key_hashes: &[String],
        workspace_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let keys = self.keys.borrow();
        let in_scope = |key: &KeyRecord| workspace_id.is_none_or(|ws| ws == key.workspace_id);
        Ok(keys.values().filter(|k| key_hashes.contains(&k.key_hash) && in_scope(k) && is_live(k, now_ms)).cloned().collect())
    }

    async fn revoke_leaked(&self, plan: &LeakPlan<'_>) -> Result<LeakRevocation, StoreError> {
        let mut keys = self.keys.borrow_mut();
        let in_scope = |key: &KeyRecord| plan.workspace_id.is_none_or(|ws| ws == key.workspace_id);
        let mut revoked = Vec::new();
        for planned in &plan.revocations {
            let Some(key) = keys.get_mut(&planned.key_id).filter(|k| in_scope(k) && is_live(k, plan.now_ms)) else { continue };
            key.revoked_at = Some(plan.now_ms);
            self.revoked_as_leaked.borrow_mut().insert(key.id.clone());
            self.audit.borrow_mut().extend_from_slice(&planned.audit);
            if self.endpoints.borrow().contains_key(&key.workspace_id) {
                self.outbox.borrow_mut().push(OutboxRow {
                    event: planned.notification.clone(),
                    next_attempt_at: plan.now_ms,
                    lease_until: None,
                    delivered_at: None,
                    gave_up_at: None,
                    last_status: None,
                });
            }
            revoked.push(key.clone());
        }
        if let Some(summary) = &plan.summary {
            let mut summary = summary.clone();
            summary.detail["revoked"] = serde_json::json!(revoked.iter().map(|k| k.id.clone()).collect::<Vec<_>>());
            self.audit.borrow_mut().push(summary);
        }
        let leaked = self.revoked_as_leaked.borrow();
        let leaked_hashes = keys
            .values()
            .filter(|k| plan.key_hashes.contains(&k.key_hash) && in_scope(k) && leaked.contains(&k.id))
            .map(|k| k.key_hash.clone())
            .collect();
        Ok(LeakRevocation { revoked, leaked_hashes })
    }

    async fn touch_last_used(&self, key_id: &str, now_ms: i64) -> Result<(), StoreError> {
        if let Some(key) = self.keys.borrow_mut().get_mut(key_id) {
            if key.last_used_at.is_none_or(|at| at <= now_ms - 60_000) {
                key.last_used_at = Some(now_ms);
            }
        }
        Ok(())
    }
}

impl AuditStore for MemoryStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.audit.borrow_mut().extend_from_slice(events);
        Ok(())
    }

    async fn audit_before(
        &self,
        workspace_id: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
        let audit = self.audit.borrow();
        let mut rows: Vec<(i64, AuditEvent)> = audit
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i64 + 1, e.clone()))
            .filter(|(seq, e)| e.workspace_id.as_deref() == workspace_id && before.is_none_or(|b| *seq < b))
            .collect();
        rows.reverse();
        rows.truncate(limit);
        Ok(rows)
    }
}
