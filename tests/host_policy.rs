//! The host policy where the Worker sends requests to stored URLs: a provider host or a
//! notification endpoint stored under an older, weaker policy is checked again before any
//! request goes there.

mod support;

use std::cell::RefCell;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::error::ApiError;
use keywarden::outbox::{Attempt, Notifier, OutboxEvent};
use keywarden::providers::service::{self, Configure};
use keywarden::providers::validation::{ProbeRequest, ProbeResponse, ProviderClient, TransportFailure};
use keywarden::providers::{KeyStatus, ProviderId};
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::{Precondition, WebhookStore};
use keywarden::vault::Keks;
use keywarden::webhooks::delivery;
use keywarden::webhooks::secrets;
use serde_json::json;
use support::*;

const WS: &str = "ws_test";
const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A fresh database with the workspace `WS` in it.
fn store() -> SqliteStore {
    let store = SqliteStore::default();
    store.add_workspace_row(WS);
    store
}
/// A site-local literal, which the policy before the IANA registries admitted.
const STALE_URL: &str = "https://[fec0::1]/hook";

/// Accepts every key and remembers where it was asked.
#[derive(Default)]
struct Provider {
    asked: RefCell<Vec<String>>,
}

impl ProviderClient for Provider {
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        self.asked.borrow_mut().push(request.url.clone());
        Ok(ProbeResponse { status: 200, headers: vec![], body: json!({"data": []}).to_string() })
    }
}

#[derive(Default)]
struct Receiver {
    posted_to: RefCell<Vec<String>>,
}

impl Notifier for Receiver {
    async fn post(&self, url: &str, _headers: &[(String, String)], _body: &str) -> Attempt {
        self.posted_to.borrow_mut().push(url.to_string());
        Attempt::Delivered { status: 204 }
    }
}

#[test]
fn revalidation_refuses_a_stored_host_the_policy_no_longer_admits_without_sending_the_key() {
    let (store, keks, provider) = (store(), Keks::parse(K1).unwrap(), Provider::default());
    let request = Configure {
        allow_unverified: false,
        provider: ProviderId::OpenAi,
        api_key: "sk-proj-abcdefghijklmnopqrstuvwxyz012345".into(),
        api_host: None,
        model: None,
        fallback_model: None,
        config: None,
        make_default: false,
    };
    let audit = AuditEvent::new(Some(WS), "provider.configured", 0);
    block_on(service::configure(&with(&store, &provider, &keks, 0), &Precondition::unconditional(WS), request, audit)).unwrap();
    store.execute("UPDATE provider_configs SET api_host = 'https://[64:ff9b:1::a9fe:a9fe]'", &[]);
    provider.asked.borrow_mut().clear();

    let outcome = block_on(service::revalidate(
        &with(&store, &provider, &keks, 1_000),
        &Precondition::unconditional(WS),
        ProviderId::OpenAi,
        AuditEvent::new(Some(WS), "provider.invalidated", 1_000),
    ))
    .unwrap();

    assert!(matches!(&outcome.error, Some(ApiError::InvalidHost { field, .. }) if field == "api_host"), "got {:?}", outcome.error);
    assert_eq!(provider.asked.borrow().len(), 0, "no request may reach the refused host");
    assert_eq!((outcome.record.status, outcome.notice.is_none()), (KeyStatus::Valid, true), "the key is no worse for its host");
    assert_eq!(outcome.record.validated_at, Some(0), "nothing was validated");
}

#[test]
fn a_notification_to_an_endpoint_the_policy_no_longer_admits_is_not_posted_and_ends() {
    let (store, keks, receiver) = (store(), Keks::parse(K1).unwrap(), Receiver::default());
    let audit = AuditEvent::new(Some(WS), "notifications.endpoint_set", 0);
    block_on(secrets::set_endpoint(
        &with(&store, &Offline, &keks, 0),
        &Precondition::unconditional(WS),
        "https://hooks.example.com/keywarden",
        audit,
    ))
    .unwrap();
    store.execute("UPDATE notification_endpoints SET url = :url", &[("url", keywarden::store::sql::Value::Text(STALE_URL.into()))]);
    let event = OutboxEvent::new(WS, "api_key.revoked", json!({"key_id": "key_1"}), 0);
    assert!(block_on(store.enqueue(&event, 0)).unwrap());

    let pass = block_on(delivery::deliver_due(&with(&store, &receiver, &keks, 1_000), None, 5));

    assert_eq!(receiver.posted_to.borrow().len(), 0, "nothing may be posted to {STALE_URL}");
    assert_eq!(pass.errors.len(), 1, "the refusal is reported for the log: {:?}", pass.errors);
    assert!(pass.errors[0].contains("special-purpose"), "{}", pass.errors[0]);
    let row = store.outbox().into_iter().find(|row| row.id == event.id).unwrap();
    assert!(row.gave_up_at.is_some(), "the event ends rather than being retried: {row:?}");
    let later = block_on(delivery::deliver_due(&with(&store, &receiver, &keks, 10 * 3_600_000), None, 5));
    assert_eq!((later.delivered, receiver.posted_to.borrow().len()), (0, 0), "and is not tried again");
}
