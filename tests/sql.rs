//! The SQL of the storage ports against real SQLite: what only the end-to-end suite covered
//! before. Conditional upserts, races decided by one statement, leases, and the commit-time
//! preconditions of migration 0007.

mod support;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::keys::limits::FAILED_ATTEMPT_LIMIT;
use keywarden::keys::record::KeySpec;
use keywarden::keys::{Capabilities, KeyPrefix, KeyRecord, PlatformKey, RateLimit};
use keywarden::name::Name;
use keywarden::outbox::{Attempt, OutboxEvent, LEASE_MS};
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::{
    AuthProbe, KeyStore, LeakPlan, PlannedRevocation, Precondition, ReceiptClaim, Refusal, StoreError, WebhookStore, WorkspaceStore,
};
use keywarden::workspaces::{self, NewWorkspace, WorkspacePatch};
use serde_json::json;

const T0: i64 = 1_800_000_000_000;

fn workspace(store: &SqliteStore) -> (String, KeyRecord) {
    let new = NewWorkspace {
        name: Name::parse("Acme").unwrap(),
        default_capabilities: Capabilities::parse(&["desktop:read"]).unwrap(),
        metered_fallback: Default::default(),
    };
    let created = block_on(workspaces::create(&support::at(store, T0), new)).unwrap();
    (created.workspace.id, created.owner_key)
}

fn key(store: &SqliteStore, workspace_id: &str, rate_limit: Option<RateLimit>, expires_at: Option<i64>) -> (KeyRecord, PlatformKey) {
    let spec = KeySpec {
        workspace_id: workspace_id.into(),
        name: Name::parse("k").unwrap(),
        capabilities: Capabilities::parse(&["keys:read"]).unwrap(),
        subject: None,
        rate_limit,
        expires_at,
        rerolled_from: None,
        allowed_ips: None,
        credits: None,
    };
    let (record, plaintext) = KeyRecord::issue(spec, &KeyPrefix::default(), T0);
    let audit = AuditEvent::new(Some(workspace_id), "key.created", T0);
    block_on(store.insert_key(&record, &audit, &Precondition::unconditional(workspace_id))).unwrap();
    (record, plaintext)
}

fn probe<'a>(hash: &'a str, ip: Option<&'a str>, now_ms: i64) -> AuthProbe<'a> {
    AuthProbe {
        key_hash: hash,
        ip,
        ip_window_start: now_ms / 60_000 * 60_000,
        now_ms,
        count_use_in: None,
        ask: Box::leak(Box::default()),
        calendar: Default::default(),
    }
}

/// A notification whose data the batch stamps.
fn note(workspace_id: &str) -> OutboxEvent {
    OutboxEvent::new(workspace_id, "api_key.revoked", json!({"key_id": "k"}), T0)
}

fn set_endpoint(store: &SqliteStore, workspace_id: &str) {
    store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) \
         VALUES (:ws, 'https://h.example', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(workspace_id.into()))],
    );
}

fn audit(workspace_id: &str, action: &str) -> AuditEvent {
    AuditEvent::new(Some(workspace_id), action, T0)
}

#[test]
fn failed_attempts_count_within_a_window_and_restart_in_the_next() {
    let store = SqliteStore::default();
    for expected in 1..=3 {
        assert_eq!(block_on(store.record_auth_failure("10.0.0.1", T0)).unwrap(), expected);
    }
    assert_eq!(block_on(store.record_auth_failure("10.0.0.2", T0)).unwrap(), 1, "per address");
    assert_eq!(block_on(store.record_auth_failure("10.0.0.1", T0 + 60_000)).unwrap(), 1, "a new window starts over");
    assert_eq!(store.count("auth_failures"), 2, "one row per address");
}

#[test]
fn a_use_counts_against_the_keys_window_but_not_from_a_blocked_address() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    let (record, _) = key(&store, &ws, Some(RateLimit { limit: 5, window_seconds: 60 }), None);
    let hits = |ip, now| block_on(store.authenticate(&probe(&record.key_hash, Some(ip), now))).unwrap().rate_hits.map(|h| h.hits);
    assert_eq!(hits("10.0.0.1", T0), Some(1));
    assert_eq!(hits("10.0.0.1", T0 + 1), Some(2));
    assert_eq!(hits("10.0.0.1", T0 + 60_000), Some(1), "the next window starts over");
    for _ in 0..FAILED_ATTEMPT_LIMIT {
        block_on(store.record_auth_failure("10.6.6.6", T0 + 60_000)).unwrap();
    }
    let blocked = block_on(store.authenticate(&probe(&record.key_hash, Some("10.6.6.6"), T0 + 60_001))).unwrap();
    assert_eq!((blocked.ip_failures, blocked.rate_hits), (FAILED_ATTEMPT_LIMIT, None), "a blocked address spends nothing");
    assert_eq!(hits("10.0.0.1", T0 + 60_002), Some(2));
}

#[test]
fn a_use_is_not_counted_for_another_workspace_or_a_dead_key() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    let (limited, _) = key(&store, &ws, Some(RateLimit { limit: 5, window_seconds: 60 }), Some(T0 + 1_000));
    let other = AuthProbe { count_use_in: Some("ws_other"), ..probe(&limited.key_hash, None, T0) };
    let found = block_on(store.authenticate(&other)).unwrap();
    assert!(found.found.is_some() && found.rate_hits.is_none(), "found, but another workspace's budget is not spent");
    let expired = block_on(store.authenticate(&probe(&limited.key_hash, None, T0 + 1_000))).unwrap();
    assert_eq!(expired.rate_hits, None, "an expired key is not counted");
    let unknown = block_on(store.authenticate(&probe("no-such-hash", None, T0))).unwrap();
    assert!(unknown.found.is_none());
    assert_eq!(store.count("rate_windows"), 0);
}

#[test]
fn of_two_deliveries_of_one_webhook_id_only_the_first_is_processed() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0)).unwrap(), ReceiptClaim::Won);
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0 + 1)).unwrap(), ReceiptClaim::Pending);
    block_on(store.finish_receipt(&ws, "wh_1", 200, "{\"ok\":true}")).unwrap();
    let answered = ReceiptClaim::Answered { status: 200, body: "{\"ok\":true}".into() };
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0 + 2)).unwrap(), answered);
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0 + 120_000)).unwrap(), answered, "an answer is never taken over");
}

#[test]
fn a_stale_or_released_claim_is_taken_over() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0)).unwrap(), ReceiptClaim::Won);
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0 + 60_001)).unwrap(), ReceiptClaim::Won, "the first delivery died");
    block_on(store.release_receipt(&ws, "wh_1")).unwrap();
    assert_eq!(block_on(store.claim_receipt(&ws, "wh_1", T0 + 60_002)).unwrap(), ReceiptClaim::Won, "released: processed again");
}

#[test]
fn an_attempt_counts_only_under_the_lease_that_claimed_it() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) VALUES (:ws, 'https://h.example', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(ws.clone()))],
    );
    let event = OutboxEvent::new(&ws, "api_key.revoked", json!({}), T0);
    assert!(block_on(store.enqueue(&event, T0)).unwrap());
    let first = block_on(store.claim_delivery(Some(&event.id), T0)).unwrap().expect("due");
    assert_eq!(block_on(store.claim_delivery(None, T0 + 1)).unwrap(), None, "leased");
    let second = block_on(store.claim_delivery(None, T0 + LEASE_MS)).unwrap().expect("the lease ran out");
    assert_ne!(first.lease, second.lease);
    block_on(store.record_attempt(&first, Attempt::Delivered { status: 200 }, None, T0 + LEASE_MS + 1)).unwrap();
    assert_eq!(store.outbox()[0].delivered_at, None, "the first claimant's late result does not count");
    block_on(store.record_attempt(&second, Attempt::Failed { status: Some(500) }, Some(T0 + 2 * LEASE_MS), T0 + LEASE_MS + 2)).unwrap();
    let row = &store.outbox()[0];
    assert_eq!((row.attempts, row.last_status, row.next_attempt_at, row.lease_token.as_deref()), (2, Some(500), T0 + 2 * LEASE_MS, None));
}

#[test]
fn a_reroll_of_a_key_revoked_first_makes_no_successor() {
    let store = SqliteStore::default();
    let (ws, owner) = workspace(&store);
    let (old, _) = key(&store, &ws, None, None);
    let precondition = Precondition { workspace_id: ws.clone(), key_id: Some(owner.id.clone()), writable: true };
    block_on(store.revoke_key(&precondition, &old.id, T0 + 10, &audit(&ws, "key.revoked"), &note(&ws))).unwrap();
    let spec = KeySpec {
        workspace_id: ws.clone(),
        name: Name::parse("k").unwrap(),
        capabilities: old.capabilities.clone(),
        subject: None,
        rate_limit: None,
        expires_at: None,
        rerolled_from: Some(old.id.clone()),
        allowed_ips: None,
        credits: None,
    };
    let (successor, _) = KeyRecord::issue(spec, &KeyPrefix::default(), T0 + 20);
    let ended =
        block_on(store.reroll_key(&old.id, &successor, 60_000, T0 + 20, &audit(&ws, "key.rerolled"), &note(&ws), &precondition)).unwrap();
    assert_eq!(ended, None);
    assert!(block_on(store.key(&ws, &successor.id)).unwrap().is_none(), "no successor");
    assert!(store.audit().iter().all(|e| e.action != "key.rerolled"), "nothing audited");
}

#[test]
fn a_reroll_ends_the_old_key_after_its_grace_and_happens_once() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    let (old, _) = key(&store, &ws, None, None);
    let spec = |from: &KeyRecord| KeySpec {
        workspace_id: ws.clone(),
        name: Name::parse("k").unwrap(),
        capabilities: from.capabilities.clone(),
        subject: None,
        rate_limit: None,
        expires_at: None,
        rerolled_from: Some(from.id.clone()),
        allowed_ips: None,
        credits: None,
    };
    let unconditional = Precondition::unconditional(&ws);
    let (first, _) = KeyRecord::issue(spec(&old), &KeyPrefix::default(), T0 + 1);
    let ended =
        block_on(store.reroll_key(&old.id, &first, 60_000, T0 + 1, &audit(&ws, "key.rerolled"), &note(&ws), &unconditional)).unwrap();
    assert_eq!(ended.map(|e| e.old_key_stops_at), Some(T0 + 1 + 60_000));
    let (second, _) = KeyRecord::issue(spec(&old), &KeyPrefix::default(), T0 + 2);
    let again =
        block_on(store.reroll_key(&old.id, &second, 600_000, T0 + 2, &audit(&ws, "key.rerolled"), &note(&ws), &unconditional)).unwrap();
    assert_eq!(again, None, "a key is rerolled once: the second reroll makes nothing");
    assert!(store.keys().iter().all(|k| k.id != second.id), "no second successor");
    assert_eq!(block_on(store.successor_of(&old.id)).unwrap(), Some(first.id.clone()));
    assert_eq!(store.keys().iter().find(|k| k.id == old.id).unwrap().revoked_at, Some(T0 + 1 + 60_000), "the first grace stands");
}

#[test]
fn a_write_for_a_caller_revoked_meanwhile_is_refused_whole() {
    let store = SqliteStore::default();
    let (ws, owner) = workspace(&store);
    let (caller, _) = key(&store, &ws, None, None);
    let as_caller = Precondition { workspace_id: ws.clone(), key_id: Some(caller.id.clone()), writable: true };
    let as_owner = Precondition { key_id: Some(owner.id.clone()), ..as_caller.clone() };
    block_on(store.revoke_key(&as_owner, &caller.id, T0 + 5, &audit(&ws, "key.revoked"), &note(&ws))).unwrap();
    let (late, _) = KeyRecord::issue(
        KeySpec {
            workspace_id: ws.clone(),
            name: Name::parse("late").unwrap(),
            capabilities: caller.capabilities.clone(),
            subject: None,
            rate_limit: None,
            expires_at: None,
            rerolled_from: None,
            allowed_ips: None,
            credits: None,
        },
        &KeyPrefix::default(),
        T0 + 6,
    );
    let before = store.audit().len();
    let refused = block_on(store.insert_key(&late, &audit(&ws, "key.created"), &as_caller));
    assert_eq!(refused, Err(StoreError::Refused(Refusal::CallerNotLive)));
    assert!(block_on(store.key(&ws, &late.id)).unwrap().is_none());
    assert_eq!(store.audit().len(), before, "the audit entry rolled back with the key");
}

#[test]
fn a_key_revoked_for_later_is_live_until_then_by_the_database_clock() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    let (caller, _) = key(&store, &ws, None, Some(T0 + 1_000));
    let as_caller = Precondition { workspace_id: ws.clone(), key_id: Some(caller.id.clone()), writable: false };
    let append = |at| block_on(store.remove_endpoint(&as_caller, &AuditEvent::new(Some(&ws), "x", at)));
    assert_eq!(append(T0 + 999), Ok(false), "live");
    store.advance_clock(T0 + 1_000);
    assert_eq!(append(T0 + 999), Err(StoreError::Refused(Refusal::CallerNotLive)), "expired by the database clock");
}

#[test]
fn a_write_to_a_workspace_made_read_only_meanwhile_is_refused() {
    let store = SqliteStore::default();
    let (ws, owner) = workspace(&store);
    let precondition = Precondition { workspace_id: ws.clone(), key_id: Some(owner.id.clone()), writable: true };
    let patch = WorkspacePatch { read_only: Some(true), ..WorkspacePatch::default() };
    block_on(store.update_workspace(&ws, &patch)).unwrap();
    let (record, _) = KeyRecord::issue(
        KeySpec {
            workspace_id: ws.clone(),
            name: Name::parse("late").unwrap(),
            capabilities: owner.capabilities.clone(),
            subject: None,
            rate_limit: None,
            expires_at: None,
            rerolled_from: None,
            allowed_ips: None,
            credits: None,
        },
        &KeyPrefix::default(),
        T0,
    );
    let refused = block_on(store.insert_key(&record, &audit(&ws, "key.created"), &precondition));
    assert_eq!(refused, Err(StoreError::Refused(Refusal::WorkspaceReadOnly)));
    assert_eq!(block_on(store.insert_key(&record, &audit(&ws, "key.created"), &precondition.even_read_only())), Ok(()));
}

#[test]
fn a_leak_report_revokes_only_what_is_still_live_with_exactly_its_entries_and_notifications() {
    let store = SqliteStore::default();
    let (ws, owner) = workspace(&store);
    store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) VALUES (:ws, 'https://h.example', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(ws.clone()))],
    );
    let keys: Vec<KeyRecord> = (0..3).map(|_| key(&store, &ws, None, None).0).collect();
    let hashes: Vec<String> = keys.iter().map(|k| k.key_hash.clone()).collect();
    let as_owner = Precondition { workspace_id: ws.clone(), key_id: Some(owner.id.clone()), writable: true };
    block_on(store.revoke_key(&as_owner, &keys[1].id, T0 + 1, &audit(&ws, "key.revoked"), &note(&ws))).unwrap();
    let revocations = keys
        .iter()
        .map(|k| PlannedRevocation {
            key_id: k.id.clone(),
            workspace_id: ws.clone(),
            grace_ms: Some(0),
            audit: vec![audit(&ws, "key.leaked").target(k.id.clone())],
            notifications: vec![OutboxEvent::new(&ws, "api_key.revoked", json!({"key_id": k.id}), T0 + 2)],
        })
        .collect();
    let summary = AuditEvent::new(None, "leaks.reported", T0 + 2).detail(json!({"tokens": 3}));
    let plan = LeakPlan { key_hashes: &hashes, workspace_id: Some(&ws), now_ms: T0 + 2, revocations, summary: Some(summary) };
    let outcome = block_on(store.revoke_leaked(&plan)).unwrap();
    let revoked: Vec<&str> = outcome.revoked.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(revoked.len(), 2);
    assert!(!revoked.contains(&keys[1].id.as_str()), "revoked by something else first");
    assert_eq!(outcome.leaked_hashes.len(), 2);
    let audit = store.audit();
    let leaked: Vec<_> = audit.iter().filter(|e| e.action == "key.leaked").map(|e| e.target.clone().unwrap()).collect();
    assert_eq!(leaked.len(), 2);
    assert!(!leaked.contains(&keys[1].id));
    let summary = audit.iter().find(|e| e.action == "leaks.reported").unwrap();
    assert_eq!(summary.detail["revoked"].as_array().map(Vec::len), Some(2));
    assert_eq!(summary.detail["tokens"], 3);
    assert_eq!(store.outbox().len(), 1 + 2, "the revoke's own, and one per key this report revoked");
    let again = block_on(store.revoke_leaked(&LeakPlan { revocations: vec![], summary: None, ..plan })).unwrap();
    assert_eq!((again.revoked.len(), again.leaked_hashes.len()), (0, 2), "a repeat still labels them leaked");
}

#[test]
fn a_revoke_queues_its_notification_in_its_own_batch_stamped_with_the_commits_time() {
    let store = SqliteStore::default();
    let (ws, owner) = workspace(&store);
    let as_owner = Precondition { workspace_id: ws.clone(), key_id: Some(owner.id.clone()), writable: true };
    let (first, _) = key(&store, &ws, None, None);
    let quiet = block_on(store.revoke_key(&as_owner, &first.id, T0 + 1_000, &audit(&ws, "key.revoked"), &note(&ws))).unwrap().unwrap();
    assert_eq!((quiet.revoked_now, quiet.queued), (true, None), "no endpoint: nothing queued");
    set_endpoint(&store, &ws);
    let (second, _) = key(&store, &ws, None, None);
    let event = note(&ws);
    let told = block_on(store.revoke_key(&as_owner, &second.id, T0 + 2_000, &audit(&ws, "key.revoked"), &event)).unwrap().unwrap();
    assert_eq!(told.queued.as_deref(), Some(event.id.as_str()));
    let row = &store.outbox()[0];
    assert_eq!(row.payload()["data"]["revoked_at"], keywarden::time::rfc3339(told.key.revoked_at.unwrap()));
    let repeat = block_on(store.revoke_key(&as_owner, &second.id, T0 + 3_000, &audit(&ws, "key.revoked"), &note(&ws))).unwrap().unwrap();
    assert_eq!((repeat.revoked_now, repeat.queued, store.outbox().len()), (false, None, 1), "a repeat tells nobody");
}

#[test]
fn a_reroll_queues_its_notification_with_when_the_old_key_stops() {
    let store = SqliteStore::default();
    let (ws, _) = workspace(&store);
    set_endpoint(&store, &ws);
    let (old, _) = key(&store, &ws, None, None);
    let spec = KeySpec {
        workspace_id: ws.clone(),
        name: Name::parse("k").unwrap(),
        capabilities: old.capabilities.clone(),
        subject: None,
        rate_limit: None,
        expires_at: None,
        rerolled_from: Some(old.id.clone()),
        allowed_ips: None,
        credits: None,
    };
    let (successor, _) = KeyRecord::issue(spec, &KeyPrefix::default(), T0 + 1);
    let event = note(&ws);
    let ended = block_on(store.reroll_key(
        &old.id,
        &successor,
        90_000,
        T0 + 1,
        &audit(&ws, "key.rerolled"),
        &event,
        &Precondition::unconditional(&ws),
    ))
    .unwrap()
    .unwrap();
    assert_eq!(ended.queued.as_deref(), Some(event.id.as_str()));
    assert_eq!(store.outbox()[0].payload()["data"]["old_key_stops_at"], keywarden::time::rfc3339(T0 + 1 + 90_000));
}

#[test]
fn an_invalidation_commits_with_the_status_or_not_at_all() {
    use keywarden::providers::{KeyStatus, ProviderId, ProviderRecord};
    use keywarden::store::ProviderStore;
    let store = SqliteStore::default();
    let (ws, owner) = workspace(&store);
    set_endpoint(&store, &ws);
    let record = ProviderRecord {
        workspace_id: ws.clone(),
        provider: ProviderId::OpenAi,
        api_host: "https://api.openai.com/v1".into(),
        model: None,
        fallback_model: None,
        config: serde_json::Map::new(),
        key_hint: "sk-...1234".into(),
        status: KeyStatus::Valid,
        validated_at: Some(T0),
        provider_reason: None,
        funds: None,
        version: 1,
        blob_name: "pk/v2/x".into(),
        kek_id: "k1".into(),
        is_default: true,
        updated_at: T0,
    };
    store.put_provider_row(&record);
    let (audit, notice) = (audit(&ws, "provider.invalidated"), OutboxEvent::new(&ws, "provider_key.invalidated", json!({}), T0));
    let as_owner = Precondition { workspace_id: ws.clone(), key_id: Some(owner.id.clone()), writable: false };
    let ws_row = |key_id: &str| Precondition { key_id: Some(key_id.into()), ..as_owner.clone() };
    let invalid = ProviderRecord { status: KeyStatus::Invalid, validated_at: Some(T0 + 1), ..record.clone() };
    let refused = block_on(store.set_provider_status(&ws_row("key_gone"), &invalid, None, Some((&audit, &notice))));
    assert_eq!(refused, Err(StoreError::Refused(Refusal::CallerNotLive)));
    assert!(store.outbox().is_empty() && store.audit().iter().all(|e| e.action != "provider.invalidated"), "nothing of it committed");
    let queued = block_on(store.set_provider_status(&as_owner, &invalid, None, Some((&audit, &notice))));
    assert_eq!(queued, Ok(true));
    assert_eq!(store.all_providers()[0].status, KeyStatus::Invalid);
    assert_eq!(store.audit().iter().filter(|e| e.action == "provider.invalidated").count(), 1);
    assert_eq!(store.outbox()[0].id, notice.id);
}

#[test]
fn the_authoritys_reads_find_a_key_by_hash_or_id_without_counting_it() {
    let store = SqliteStore::default();
    let (workspace_id, _) = workspace(&store);
    let (record, _) = key(&store, &workspace_id, Some(RateLimit { limit: 1, window_seconds: 60 }), None);
    let (found, found_workspace) = block_on(store.key_with_workspace(&record.key_hash)).unwrap().expect("the key is there");
    assert_eq!((found.id.as_str(), found_workspace.id.as_str()), (record.id.as_str(), workspace_id.as_str()));
    assert_eq!(block_on(store.location_of_key(&record.key_hash)).unwrap(), Some((workspace_id.clone(), record.id.clone())));
    assert_eq!(block_on(store.key_by_id(&record.id)).unwrap().map(|k| k.key_hash), Some(record.key_hash.clone()));
    assert_eq!(block_on(store.key_with_workspace("no such hash")).unwrap(), None);
    let counted = store.sql::<serde_json::Value>("SELECT hits FROM rate_windows", &[]);
    assert!(counted.is_empty(), "reading through counts no use: {counted:?}");
}

#[test]
fn recorded_uses_move_last_used_at_forward_and_never_back() {
    use keywarden::keys::authority::KeyUse;
    let store = SqliteStore::default();
    let (workspace_id, _) = workspace(&store);
    let (first, _) = key(&store, &workspace_id, None, None);
    let (second, _) = key(&store, &workspace_id, None, None);
    let uses = [KeyUse { key_id: first.id.clone(), at: T0 + 5_000 }, KeyUse { key_id: second.id.clone(), at: T0 + 7_000 }];
    block_on(store.record_uses(&uses)).unwrap();
    block_on(store.record_uses(&[KeyUse { key_id: first.id.clone(), at: T0 + 1_000 }])).unwrap();
    let last_used = |id: &str| block_on(store.key_by_id(id)).unwrap().unwrap().last_used_at;
    assert_eq!((last_used(&first.id), last_used(&second.id)), (Some(T0 + 5_000), Some(T0 + 7_000)));
}

const DAY: i64 = 24 * 3_600_000;

fn notices(store: &SqliteStore, event_type: &str) -> Vec<serde_json::Value> {
    store.outbox().into_iter().filter(|row| row.event_type == event_type).map(|row| row.payload()).collect()
}

#[test]
fn a_key_is_warned_once_seven_days_before_it_expires_however_often_the_cron_runs() {
    use keywarden::store::HousekeepingStore;
    let store = SqliteStore::default();
    let (workspace_id, _) = workspace(&store);
    set_endpoint(&store, &workspace_id);
    let (record, _) = key(&store, &workspace_id, None, Some(T0 + 10 * DAY));
    block_on(store.queue_expiry_notices(T0 + 2 * DAY, 100)).unwrap();
    assert!(notices(&store, "api_key.expiring").is_empty(), "eight days before: not yet");
    for run in 0..3 {
        block_on(store.queue_expiry_notices(T0 + 3 * DAY + run, 100)).unwrap();
    }
    let warned = notices(&store, "api_key.expiring");
    assert_eq!(warned.len(), 1, "once: {warned:?}");
    assert_eq!(warned[0]["data"]["key_id"], record.id.as_str());
    assert_eq!(warned[0]["data"]["name"], "k");
    assert_eq!(warned[0]["data"]["expires_at"], keywarden::time::rfc3339(T0 + 10 * DAY));
    for run in 0..3 {
        block_on(store.queue_expiry_notices(T0 + 10 * DAY + run, 100)).unwrap();
    }
    assert_eq!(notices(&store, "api_key.expired").len(), 1, "expired: announced once");
}

#[test]
fn a_key_made_to_expire_within_the_week_is_warned_as_it_is_made() {
    let store = SqliteStore::default();
    let (workspace_id, _) = workspace(&store);
    set_endpoint(&store, &workspace_id);
    key(&store, &workspace_id, None, Some(T0 + DAY));
    key(&store, &workspace_id, None, Some(T0 + 30 * DAY));
    assert_eq!(notices(&store, "api_key.expiring").len(), 1, "only the one expiring within 7 days");
}

#[test]
fn a_revoked_key_gets_no_expiry_notice_and_a_workspace_without_endpoint_none_later() {
    use keywarden::store::HousekeepingStore;
    let store = SqliteStore::default();
    let (workspace_id, _) = workspace(&store);
    let (quiet, _) = key(&store, &workspace_id, None, Some(T0 + 3 * DAY));
    block_on(store.queue_expiry_notices(T0 + DAY, 100)).unwrap();
    set_endpoint(&store, &workspace_id);
    block_on(store.queue_expiry_notices(T0 + DAY + 1, 100)).unwrap();
    assert!(notices(&store, "api_key.expiring").is_empty(), "marked when it was due, endpoint or not: {quiet:?}");
    let (revoked, _) = key(&store, &workspace_id, None, Some(T0 + 20 * DAY));
    store.execute(
        "UPDATE api_keys SET revoked_at = :at WHERE id = :id",
        &[("at", keywarden::store::sql::Value::Integer(T0)), ("id", keywarden::store::sql::Value::Text(revoked.id.clone()))],
    );
    block_on(store.queue_expiry_notices(T0 + 15 * DAY, 100)).unwrap();
    block_on(store.queue_expiry_notices(T0 + 20 * DAY, 100)).unwrap();
    assert!(
        notices(&store, "api_key.expiring").is_empty() && notices(&store, "api_key.expired").is_empty(),
        "a revoked key is not announced"
    );
}
