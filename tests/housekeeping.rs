//! The scheduled handler's work and the webhook secrets over SQLite: each task
//! does its job once however often it runs, and notifications are signed and retried.

mod support;

use std::cell::RefCell;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::housekeeping::{self, BLOB_GRACE_MS, REVALIDATE_AFTER_MS};
use keywarden::outbox::{Attempt, Notifier, OutboxEvent};
use keywarden::providers::service::{self, Configure};
use keywarden::providers::validation::{ProbeRequest, ProbeResponse, ProviderClient, TransportFailure};
use keywarden::providers::{KeyStatus, ProviderId};
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::{Precondition, WebhookStore};
use keywarden::vault::Keks;
use keywarden::webhooks::secrets;
use keywarden::webhooks::signature;
use serde_json::json;
use support::*;

const WS: &str = "ws_test";
const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const DAY: i64 = 24 * 3_600_000;

/// A fresh database with the workspace `WS` in it.
fn store() -> SqliteStore {
    let store = SqliteStore::default();
    store.add_workspace_row(WS);
    store
}

/// Answers every probe with the same status.
struct Provider(RefCell<u16>);

impl ProviderClient for Provider {
    async fn send(&self, _request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        Ok(ProbeResponse { status: *self.0.borrow(), headers: vec![], body: json!({"data": []}).to_string() })
    }
}

/// Records deliveries and answers with the scripted outcomes, then success.
/// (url, headers, body) of one delivery.
type Delivery = (String, Vec<(String, String)>, String);

#[derive(Default)]
struct Receiver {
    outcomes: RefCell<Vec<Attempt>>,
    received: RefCell<Vec<Delivery>>,
}

impl Notifier for Receiver {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Attempt {
        self.received.borrow_mut().push((url.to_string(), headers.to_vec(), body.to_string()));
        let mut outcomes = self.outcomes.borrow_mut();
        if outcomes.is_empty() {
            Attempt::Delivered { status: 204 }
        } else {
            outcomes.remove(0)
        }
    }
}

fn configure(store: &SqliteStore, provider: &Provider, keks: &Keks, key: &str, now: i64) {
    let request = Configure {
        allow_unverified: false,
        provider: ProviderId::OpenAi,
        api_key: key.into(),
        api_host: None,
        model: None,
        fallback_model: None,
        config: None,
        make_default: false,
    };
    block_on(service::configure(
        &with(store, provider, keks, now),
        &Precondition::unconditional(WS),
        request,
        AuditEvent::new(Some(WS), "provider.configured", now),
    ))
    .unwrap();
}

fn run(store: &SqliteStore, provider: &Provider, receiver: &Receiver, keks: &Keks, now: i64) -> housekeeping::Report {
    let report = block_on(housekeeping::run(&with(store, &Both(provider, receiver), keks, now)));
    assert_eq!(report.errors, Vec::<String>::new(), "a task failed");
    report
}

fn set_endpoint(store: &SqliteStore, keks: &Keks, now: i64) -> signature::WebhookSecret {
    let audit = AuditEvent::new(Some(WS), "notifications.endpoint_set", now);
    block_on(secrets::set_endpoint(
        &with(store, &Offline, keks, now),
        &Precondition::unconditional(WS),
        "https://hooks.example.com/keywarden",
        audit,
    ))
    .unwrap()
    .1
}

#[test]
fn a_key_gone_bad_is_invalidated_audited_and_notified_once_however_often_the_cron_runs() {
    let (store, keks, receiver) = (store(), Keks::parse(K1).unwrap(), Receiver::default());
    let provider = Provider(RefCell::new(200));
    set_endpoint(&store, &keks, 0);
    configure(&store, &provider, &keks, "sk-live", 0);
    *provider.0.borrow_mut() = 401;

    assert_eq!(run(&store, &provider, &receiver, &keks, DAY - 1).revalidated, 0, "checked less than 24 h ago");
    let first = run(&store, &provider, &receiver, &keks, REVALIDATE_AFTER_MS + 1);
    let second = run(&store, &provider, &receiver, &keks, REVALIDATE_AFTER_MS + 2);
    assert_eq!((first.revalidated, first.invalidated), (1, 1));
    assert_eq!((second.revalidated, second.invalidated), (0, 0));
    let status = store.all_providers()[0].status;
    assert_eq!(status, KeyStatus::Invalid);
    let invalidations = store.audit().iter().filter(|e| e.action == "provider.invalidated").count();
    assert_eq!(invalidations, 1);
    let notified: Vec<String> = receiver.received.borrow().iter().map(|(_, _, body)| body.clone()).collect();
    assert_eq!(notified.len(), 1);
    assert!(notified[0].contains("provider_key.invalidated") && !notified[0].contains("sk-live"), "{}", notified[0]);
}

#[test]
fn replaced_blobs_are_deleted_once_their_grace_has_passed() {
    let (store, keks, receiver) = (store(), Keks::parse(K1).unwrap(), Receiver::default());
    let provider = Provider(RefCell::new(200));
    configure(&store, &provider, &keks, "sk-one", 0);
    configure(&store, &provider, &keks, "sk-two", 0);
    assert_eq!(store.blobs().len(), 2);
    assert_eq!(run(&store, &provider, &receiver, &keks, BLOB_GRACE_MS - 1).blobs_deleted, 0, "still in its grace period");
    let report = run(&store, &provider, &receiver, &keks, BLOB_GRACE_MS + 1);
    assert_eq!(report.blobs_deleted, 1);
    assert_eq!(store.blobs().len(), 1);
    assert_eq!(run(&store, &provider, &receiver, &keks, BLOB_GRACE_MS + 2).blobs_deleted, 0);
}

#[test]
fn secrets_under_an_old_kek_are_rewrapped_once() {
    let (store, receiver) = (store(), Receiver::default());
    let provider = Provider(RefCell::new(200));
    let old = Keks::parse(K1).unwrap();
    configure(&store, &provider, &old, "sk-kept", 0);
    set_endpoint(&store, &old, 0);
    block_on(secrets::rotate_inbound(
        &with(&store, &Offline, &old, 0),
        &Precondition::unconditional(WS),
        60,
        AuditEvent::new(Some(WS), "webhook.secret_rotated", 0),
    ))
    .unwrap();
    let rotated = Keks::parse(&format!("{K2},{K1}")).unwrap();
    assert_eq!(run(&store, &provider, &receiver, &rotated, 1).rewrapped, 3);
    assert_eq!(run(&store, &provider, &receiver, &rotated, 2).rewrapped, 0);
    let only_new = Keks::parse(K2).unwrap();
    assert_eq!(block_on(secrets::honoured(&with(&store, &Offline, &only_new, 3), WS)).unwrap().len(), 1);
}

#[test]
fn a_failed_notification_is_retried_with_backoff_and_signed_each_time() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let provider = Provider(RefCell::new(200));
    let receiver = Receiver { outcomes: RefCell::new(vec![Attempt::Failed { status: Some(503) }]), ..Receiver::default() };
    let secret = set_endpoint(&store, &keks, 0);
    let event = OutboxEvent::new(WS, "api_key.revoked", json!({"key_id": "key_1"}), 1_000);
    assert!(block_on(store.enqueue(&event, 1_000)).unwrap());

    assert_eq!(run(&store, &provider, &receiver, &keks, 1_000).delivered, 0);
    assert_eq!(run(&store, &provider, &receiver, &keks, 20_000).delivered, 0, "not due before the backoff");
    assert_eq!(run(&store, &provider, &receiver, &keks, 31_000).delivered, 1);
    assert_eq!(run(&store, &provider, &receiver, &keks, 99_000).delivered, 0, "delivered once");

    let received = receiver.received.borrow();
    assert_eq!(received.len(), 2);
    for (url, headers, body) in received.iter() {
        assert_eq!(url, "https://hooks.example.com/keywarden");
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(header("webhook-id"), event.id, "the same id on every attempt");
        let now = header("webhook-timestamp").parse::<i64>().unwrap();
        let verdict = signature::verify(
            std::slice::from_ref(&secret),
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            body.as_bytes(),
            now,
        );
        assert_eq!(verdict, Ok(()));
    }
}

#[test]
fn a_notification_for_a_workspace_without_an_endpoint_is_not_queued() {
    let store = store();
    let event = OutboxEvent::new(WS, "api_key.revoked", json!({}), 0);
    assert!(!block_on(store.enqueue(&event, 0)).unwrap());
    assert!(store.outbox().is_empty());
}

#[test]
fn the_previous_inbound_secret_is_honoured_only_for_its_grace_period() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let rotate = |grace, now| {
        block_on(secrets::rotate_inbound(
            &with(&store, &Offline, &keks, now),
            &Precondition::unconditional(WS),
            grace,
            AuditEvent::new(Some(WS), "webhook.secret_rotated", now),
        ))
        .unwrap()
        .0
    };
    let first = rotate(3_600, 0);
    let second = rotate(10, 1_000);
    let honoured = |now| block_on(secrets::honoured(&with(&store, &Offline, &keks, now), WS)).unwrap();
    assert_eq!(honoured(10_999), vec![second.clone(), first]);
    assert_eq!(honoured(11_000), vec![second]);
    let stored = format!("{:?}", store.webhook_secret_rows());
    assert!(!stored.contains(&rotate(0, 2_000).expose()[6..]), "a secret is stored in the clear");
}

#[test]
fn one_item_that_cannot_be_opened_does_not_stop_the_other_tasks() {
    let (store, receiver) = (store(), Receiver::default());
    let provider = Provider(RefCell::new(200));
    let old = Keks::parse(K1).unwrap();
    set_endpoint(&store, &old, 0);
    let event = OutboxEvent::new(WS, "api_key.revoked", json!({"key_id": "key_1"}), 0);
    assert!(block_on(store.enqueue(&event, 0)).unwrap());
    configure(&store, &provider, &old, "sk-one", 0);
    configure(&store, &provider, &old, "sk-two", 0);
    // K1 is gone: nothing sealed under it opens any more.
    let unrelated = Keks::parse(K2).unwrap();
    let report = block_on(housekeeping::run(&with(&store, &Both(&provider, &receiver), &unrelated, BLOB_GRACE_MS + 1)));
    assert!(!report.errors.is_empty(), "the failures are reported");
    assert_eq!(report.blobs_deleted, 1, "blob clean-up still ran");
    let row = store.outbox()[0].clone();
    assert!(row.gave_up_at.is_some(), "an undeliverable event is ended, not retried forever");
}

#[test]
fn a_delivery_claimed_by_one_run_is_not_sent_by_another_until_its_lease_ends() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    set_endpoint(&store, &keks, 0);
    let event = OutboxEvent::new(WS, "api_key.revoked", json!({}), 0);
    block_on(store.enqueue(&event, 0)).unwrap();
    let first = block_on(store.claim_delivery(None, 0)).unwrap().expect("due");
    assert_eq!(block_on(store.claim_delivery(None, 1_000)).unwrap(), None, "held by the first claim");
    let second = block_on(store.claim_delivery(None, keywarden::outbox::LEASE_MS)).unwrap().expect("lease over");
    // The first claimant's late result no longer counts.
    block_on(store.record_attempt(&first, Attempt::Delivered { status: 200 }, None, 5)).unwrap();
    assert_eq!(store.outbox()[0].delivered_at, None);
    block_on(store.record_attempt(&second, Attempt::Delivered { status: 200 }, None, 6)).unwrap();
    assert_eq!(store.outbox()[0].delivered_at, Some(6));
}

#[test]
fn an_inconclusive_check_keeps_validated_at_and_waits_a_day_before_the_next() {
    let (store, keks, receiver) = (store(), Keks::parse(K1).unwrap(), Receiver::default());
    let provider = Provider(RefCell::new(200));
    configure(&store, &provider, &keks, "sk-live", 0);
    *provider.0.borrow_mut() = 503;
    let first = run(&store, &provider, &receiver, &keks, DAY + 1);
    assert_eq!(first.revalidated, 1);
    let record = store.all_providers()[0].clone();
    assert_eq!((record.status, record.validated_at), (KeyStatus::Valid, Some(0)), "an unavailable provider proves nothing");
    assert_eq!(run(&store, &provider, &receiver, &keks, DAY + 2).revalidated, 0, "checked, so not due again yet");
    assert_eq!(run(&store, &provider, &receiver, &keks, 2 * DAY + 2).revalidated, 1);
}
