//! The Worker's side of the key authority: which object owns a key, the IP guard, and the
//! internal protocol to the objects (`store::authority_object`).
//!
//! The hot path is: the hash's location (isolate memory, else KV, else D1's `key_hash` index;
//! a key's workspace and id never change, so no cache of them can be stale), then one `fetch`
//! to that object. A successful authentication issues no D1 statement once the location is
//! known in the isolate or in KV.
//!
//! The failed-attempt block: failures are counted in D1 as before (exactly, on the failure
//! path only). The 10th blocks the IP in this isolate's memory and in KV until its window
//! ends, and the success path checks both (KV at most once per IP per isolate every 5 s). A
//! guess is refused exactly everywhere, because every failure reads D1's count. A valid key
//! sent from a blocked IP is refused wherever the block is known: at once in this isolate, and
//! elsewhere once KV shows it (up to about a minute, KV's propagation, comparable to the
//! window). The Rate Limiting binding was not used: it counts every call it is asked about,
//! so it cannot tell "is this IP blocked?" without counting, and it is per location.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_util::future::{join_all, LocalBoxFuture};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::wasm_bindgen::JsValue;
use worker::{Date, Env, KvStore, Method, ObjectNamespace, Request, RequestInit};

use super::d1::D1Store;
use crate::audit::AuditEvent;
use crate::keys::authority::{Admission, Change, CreditChange, KeyAuthority, WHOLE_WORKSPACE};
use crate::keys::credits::Credits;
use crate::keys::limits::FAILED_ATTEMPT_LIMIT;
use crate::keys::store::{AuthFinding, AuthProbe, KeyStore};
use crate::keys::usage::Ask;
use crate::keys::KeyRecord;
use crate::storage::StoreError;

/// The protocol's version: its paths start with it, so an object and a Worker of different
/// deploys never misread each other.
pub const PROTOCOL: &str = "/authority/v1";

/// The isolate keeps at most this many locations; past it, it starts again (they are cheap to
/// read back).
const LOCATIONS_KEPT: usize = 100_000;

/// Which object a key lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub workspace_id: String,
    pub key_id: String,
}

/// How long the isolate trusts what KV said about an IP's block.
const IP_CHECK_KEPT_MS: i64 = 5_000;

/// What the isolate knows of an IP: blocked until `until` (0: not blocked), as of `checked_at`.
#[derive(Debug, Clone, Copy)]
struct IpCheck {
    until: i64,
    checked_at: i64,
}

thread_local! {
    static LOCATIONS: RefCell<HashMap<String, Location>> = RefCell::new(HashMap::new());
    static BLOCKED_IPS: RefCell<HashMap<String, IpCheck>> = RefCell::new(HashMap::new());
}

fn remember_ip(ip: &str, check: IpCheck) {
    BLOCKED_IPS.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.len() >= LOCATIONS_KEPT {
            seen.clear();
        }
        seen.insert(ip.to_string(), check);
    });
}

/// The request to an object: authenticate a hash.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuthenticateMessage {
    pub key_hash: String,
    pub now_ms: i64,
    /// What the use asks of the key; `None` counts nothing.
    pub ask: Option<Ask>,
}

/// The request to an object: read (`change: None`) or change a key's credits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditsMessage {
    pub key_id: String,
    pub change: Option<CreditChange>,
    pub now_ms: i64,
    /// Recorded with the change, by the object.
    #[serde(default)]
    pub audit: Option<AuditEvent>,
}

/// An object's answer about a key's credits: `found` is false when D1 has no such key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreditsAnswer {
    pub found: bool,
    pub credits: Option<Credits>,
}

/// The request to an object: bring D1's usage and balances up to date, and answer these keys'
/// live balances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleMessage {
    pub key_ids: Vec<String>,
    pub now_ms: i64,
}

/// An object's answer to a settle: the live balances of the metered keys it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettleAnswer {
    pub balances: Vec<(String, Credits)>,
}

/// The request to an object: hold or release keys or the workspace, for one writer.
#[derive(Debug, Serialize, Deserialize)]
pub struct TargetsMessage {
    pub workspace_id: String,
    pub targets: Vec<String>,
    pub hold_id: String,
}

/// How the objects are laid out: the generation of objects in use, and how many per workspace.
/// Both are part of every object's name, so a change of either starts from fresh objects that
/// read everything through from D1, and an object of another layout is never asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub epoch: String,
    pub shards: u32,
}

impl Layout {
    /// The object of a key: one of its workspace's `shards`, chosen by the key.
    pub fn object_of(&self, workspace_id: &str, key_id: &str) -> String {
        self.object(workspace_id, crc32fast::hash(key_id.as_bytes()) % self.shards.max(1))
    }

    pub fn object(&self, workspace_id: &str, shard: u32) -> String {
        format!("{}/{workspace_id}/{shard}of{}", self.epoch, self.shards.max(1))
    }
}

pub struct DurableAuthority {
    objects: ObjectNamespace,
    kv: KvStore,
    catalogue: D1Store,
    layout: Layout,
}

fn failed(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("{what}: {error}"))
}

impl DurableAuthority {
    /// `d1_statements` counts the statements of its lookups with the request's own.
    pub fn from_env(env: &Env, layout: Layout, d1_statements: Rc<Cell<usize>>) -> Result<Self, String> {
        Ok(DurableAuthority {
            objects: env.durable_object("AUTHORITY").map_err(|e| format!("the AUTHORITY binding: {e}"))?,
            kv: env.kv("SECRETS").map_err(|e| format!("the SECRETS binding: {e}"))?,
            catalogue: D1Store::counting(env.d1("DB").map_err(|e| format!("the DB binding: {e}"))?, d1_statements),
            layout,
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(&self, object: &str, op: &str, body: &impl Serialize) -> Result<T, StoreError> {
        let stub = self.objects.id_from_name(object).and_then(|id| id.get_stub()).map_err(|e| failed("authority stub", e))?;
        let text = serde_json::to_string(body).map_err(|e| StoreError::Failed(format!("authority message: {e}")))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(JsValue::from_str(&text)));
        let request =
            Request::new_with_init(&format!("https://authority{PROTOCOL}/{op}"), &init).map_err(|e| failed("authority request", e))?;
        // Never retried: an authentication may have counted a use before the answer was lost.
        // An object that cannot be reached now (reset, moved, overloaded) is worth retrying
        // later; the caller decides, never this call.
        let mut response = stub.fetch_with_request(request).await.map_err(|_| StoreError::Unavailable)?;
        let answer = response.text().await.map_err(|e| failed("authority answer", e))?;
        match response.status_code() {
            200 => serde_json::from_str(&answer).map_err(|e| StoreError::Failed(format!("authority answer: {e}"))),
            503 => Err(StoreError::Unavailable),
            status => Err(StoreError::Failed(format!("authority {op} answered {status}: {answer}"))),
        }
    }

    async fn locate(&self, key_hash: &str) -> Result<Option<Location>, StoreError> {
        if let Some(found) = LOCATIONS.with(|cache| cache.borrow().get(key_hash).cloned()) {
            return Ok(Some(found));
        }
        let name = format!("keyloc:{key_hash}");
        let mut found = self.kv.get(&name).json::<Location>().await.ok().flatten();
        if found.is_none() {
            found = self.catalogue.location_of_key(key_hash).await?.map(|(workspace_id, key_id)| Location { workspace_id, key_id });
            if let Some(location) = &found {
                // Best effort: a location missing from KV is read from D1 again, nothing worse.
                if let Ok(put) = self.kv.put(&name, json!(location).to_string()) {
                    let _ = put.execute().await;
                }
            }
        }
        if let Some(location) = &found {
            LOCATIONS.with(|cache| {
                let mut cache = cache.borrow_mut();
                if cache.len() >= LOCATIONS_KEPT {
                    cache.clear();
                }
                cache.insert(key_hash.to_string(), location.clone());
            });
        }
        Ok(found)
    }

    /// Whether `ip` is blocked: known here, or in KV. An answer from KV is kept in the isolate
    /// for [`IP_CHECK_KEPT_MS`], so a busy client costs one KV read per isolate that often.
    async fn blocked(&self, ip: &str, now_ms: i64) -> bool {
        let known = BLOCKED_IPS.with(|seen| seen.borrow().get(ip).copied());
        if let Some(seen) = known {
            if seen.until > now_ms {
                return true;
            }
            if seen.checked_at > now_ms - IP_CHECK_KEPT_MS {
                return false;
            }
        }
        let until = self.kv.get(&format!("ipblock:{ip}")).text().await.ok().flatten().and_then(|text| text.parse::<i64>().ok());
        let seen = IpCheck { until: until.unwrap_or(0), checked_at: now_ms };
        remember_ip(ip, seen);
        seen.until > now_ms
    }

    /// The objects a change touches, with the targets each holds.
    fn objects_of(&self, change: &Change) -> Vec<(String, Vec<String>)> {
        let mut objects: Vec<(String, Vec<String>)> = Vec::new();
        if change.whole_workspace {
            for shard in 0..self.layout.shards.max(1) {
                objects.push((self.layout.object(&change.workspace_id, shard), vec![WHOLE_WORKSPACE.to_string()]));
            }
        }
        for (name, key_ids) in self.by_object(&change.workspace_id, &change.key_ids) {
            match objects.iter_mut().find(|(object, _)| *object == name) {
                Some((_, targets)) => targets.extend(key_ids),
                None => objects.push((name, key_ids)),
            }
        }
        objects
    }

    /// The workspace's keys grouped by the object that owns each.
    fn by_object(&self, workspace_id: &str, key_ids: &[String]) -> Vec<(String, Vec<String>)> {
        let mut objects: Vec<(String, Vec<String>)> = Vec::new();
        for key_id in key_ids {
            let name = self.layout.object_of(workspace_id, key_id);
            match objects.iter_mut().find(|(object, _)| *object == name) {
                Some((_, ids)) => ids.push(key_id.clone()),
                None => objects.push((name, vec![key_id.clone()])),
            }
        }
        objects
    }

    /// Sends `op` to every object the change touches, all at once (a sharded workspace's
    /// change reaches each shard).
    async fn send_targets(&self, change: &Change, hold_id: &str, op: &str) -> Result<(), StoreError> {
        let calls = self.objects_of(change).into_iter().map(|(object, targets)| async move {
            let message = TargetsMessage { workspace_id: change.workspace_id.clone(), targets, hold_id: hold_id.to_string() };
            self.call::<serde_json::Value>(&object, op, &message).await
        });
        join_all(calls).await.into_iter().try_for_each(|outcome| outcome.map(drop))
    }
}

impl KeyAuthority for DurableAuthority {
    fn authenticate<'a>(&'a self, probe: &'a AuthProbe<'a>) -> LocalBoxFuture<'a, Result<AuthFinding, StoreError>> {
        Box::pin(async move {
            if let Some(ip) = probe.ip {
                if self.blocked(ip, probe.now_ms).await {
                    return Ok(AuthFinding { ip_failures: FAILED_ATTEMPT_LIMIT, ..AuthFinding::default() });
                }
            }
            let Some(location) = self.locate(probe.key_hash).await? else { return Ok(AuthFinding::default()) };
            // Verify counts (and answers) only keys of the caller's own workspace.
            if probe.count_use_in.is_some_and(|workspace_id| workspace_id != location.workspace_id) {
                return Ok(AuthFinding::default());
            }
            let object = self.layout.object_of(&location.workspace_id, &location.key_id);
            let message = AuthenticateMessage { key_hash: probe.key_hash.to_string(), now_ms: probe.now_ms, ask: Some(probe.ask.clone()) };
            let admission: Admission = self.call(&object, "authenticate", &message).await?;
            Ok(AuthFinding {
                found: admission.found,
                ip_failures: 0,
                rate_hits: admission.rate_hits,
                use_recorded: true,
                outcome: admission.outcome,
            })
        })
    }

    fn credits<'a>(
        &'a self,
        key: &'a KeyRecord,
        change: Option<CreditChange>,
        now_ms: i64,
        audit: Option<&'a AuditEvent>,
    ) -> LocalBoxFuture<'a, Result<Option<Credits>, StoreError>> {
        Box::pin(async move {
            let object = self.layout.object_of(&key.workspace_id, &key.id);
            let message = CreditsMessage { key_id: key.id.clone(), change, now_ms, audit: audit.cloned() };
            let answer: CreditsAnswer = self.call(&object, "credits", &message).await?;
            Ok(answer.credits)
        })
    }

    fn settle<'a>(
        &'a self,
        workspace_id: &'a str,
        key_ids: &'a [String],
        now_ms: i64,
    ) -> LocalBoxFuture<'a, Result<Vec<(String, Credits)>, StoreError>> {
        Box::pin(async move {
            let calls = self.by_object(workspace_id, key_ids).into_iter().map(|(object, key_ids)| async move {
                self.call::<SettleAnswer>(&object, "settle", &SettleMessage { key_ids, now_ms }).await
            });
            let mut balances = Vec::new();
            for answer in join_all(calls).await {
                balances.extend(answer?.balances);
            }
            Ok(balances)
        })
    }

    fn block_ip<'a>(&'a self, ip: &'a str, until_ms: i64) -> LocalBoxFuture<'a, ()> {
        Box::pin(async move {
            remember_ip(ip, IpCheck { until: until_ms, checked_at: Date::now().as_millis() as i64 });
            // KV keeps a value at least 60 s; the value itself says when the block ends.
            let ttl = ((until_ms - Date::now().as_millis() as i64) / 1000 + 1).max(60) as u64;
            if let Ok(put) = self.kv.put(&format!("ipblock:{ip}"), until_ms.to_string()) {
                let _ = put.expiration_ttl(ttl).execute().await;
            }
        })
    }

    fn hold<'a>(&'a self, change: &'a Change, hold_id: &'a str) -> LocalBoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.send_targets(change, hold_id, "hold"))
    }

    fn release<'a>(&'a self, change: &'a Change, hold_id: &'a str) -> LocalBoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.send_targets(change, hold_id, "release"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(epoch: &str, shards: u32) -> Layout {
        Layout { epoch: epoch.to_string(), shards }
    }

    #[test]
    fn a_workspace_of_one_shard_is_one_object_named_by_its_layout() {
        assert_eq!(layout("1", 1).object_of("ws_a", "key_1"), "1/ws_a/0of1");
    }

    #[test]
    fn a_sharded_workspace_puts_each_key_in_the_same_one_of_its_objects() {
        let four = layout("1", 4);
        let names: Vec<String> = (0..50).map(|i| four.object_of("ws_a", &format!("key_{i}"))).collect();
        assert!(
            names.iter().all(|name| ["1/ws_a/0of4", "1/ws_a/1of4", "1/ws_a/2of4", "1/ws_a/3of4"].contains(&name.as_str())),
            "{names:?}"
        );
        assert!(names.iter().collect::<std::collections::HashSet<_>>().len() > 1, "keys spread over the shards");
        assert_eq!(four.object_of("ws_a", "key_7"), four.object_of("ws_a", "key_7"));
    }

    #[test]
    fn another_epoch_or_shard_count_never_names_an_object_of_this_layout() {
        let names = [layout("1", 1), layout("2", 1), layout("1", 2)].map(|layout| layout.object("ws_a", 0));
        assert_eq!(names.iter().collect::<std::collections::HashSet<_>>().len(), 3, "{names:?}");
    }
}
