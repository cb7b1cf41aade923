//! Receiving signed events (`webhooks::inbound::receive`) over the test store: the signature
//! decides before anything is read, each webhook-id is processed once, and a replay gets the
//! first answer again.

mod support;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::error::ApiError;
use keywarden::keys::Capabilities;
use keywarden::name::Name;
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::{KeyStore, Precondition};
use keywarden::vault::Keks;
use keywarden::webhooks::inbound::{receive, Answer, SignedHeaders};
use keywarden::webhooks::secrets;
use keywarden::webhooks::signature::WebhookSecret;
use keywarden::workspaces::{self, NewWorkspace};
use serde_json::json;
use support::*;

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NOW: i64 = 1_800_000_000_000;

struct Sender {
    store: SqliteStore,
    keks: Keks,
    workspace_id: String,
    owner_key_id: String,
    secret: WebhookSecret,
}

fn sender() -> Sender {
    let (store, keks) = (SqliteStore::default(), Keks::parse(K1).unwrap());
    let new = NewWorkspace {
        name: Name::parse("Acme").unwrap(),
        default_capabilities: Capabilities::parse(&["keys:read"]).unwrap(),
        metered_fallback: Default::default(),
    };
    let created = block_on(workspaces::create(&at(&store, NOW), new)).unwrap();
    let workspace_id = created.workspace.id.clone();
    let audit = AuditEvent::new(Some(&workspace_id), "webhook.secret_rotated", NOW);
    let precondition = Precondition::workspace_writable(&workspace_id);
    let (secret, _) = block_on(secrets::rotate_inbound(&with(&store, &Offline, &keks, NOW), &precondition, 0, audit)).unwrap();
    Sender { store, keks, workspace_id, owner_key_id: created.owner_key.id, secret }
}

fn signed(secret: &WebhookSecret, id: &str, body: &str) -> SignedHeaders {
    let timestamp = NOW / 1000;
    SignedHeaders::check(Some(id.into()), Some(timestamp.to_string()), Some(secret.sign(id, timestamp, body.as_bytes()))).unwrap()
}

fn deliver(sender: &Sender, workspace_id: &str, headers: &SignedHeaders, body: &str) -> Result<Answer, ApiError> {
    block_on(receive(&with(&sender.store, &Offline, &sender.keks, NOW), workspace_id, headers, body.as_bytes()))
}

fn revoke_event(key_id: &str) -> String {
    json!({"type": "api_key.revoke", "data": {"key_id": key_id}}).to_string()
}

#[test]
fn a_signed_revoke_event_revokes_the_key_and_notifies_once() {
    let sender = sender();
    sender.store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) \
         VALUES (:ws, 'https://hooks.example.com/k', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(sender.workspace_id.clone()))],
    );
    let body = revoke_event(&sender.owner_key_id);
    let answer = deliver(&sender, &sender.workspace_id, &signed(&sender.secret, "msg_1", &body), &body).unwrap();
    assert_eq!((answer.status, answer.body["status"].as_str(), answer.replayed), (200, Some("revoked"), false), "{answer:?}");
    assert_eq!(answer.queued, 1, "the revocation is notified, queued in its own batch");
    let outbox = sender.store.outbox();
    assert_eq!((outbox.len(), outbox[0].event_type.as_str()), (1, "api_key.revoked"));
    assert_eq!(outbox[0].payload()["data"]["reason"], "webhook");
    let key = block_on(sender.store.key(&sender.workspace_id, &sender.owner_key_id)).unwrap().unwrap();
    assert!(key.revoked_at.is_some(), "the key is revoked in storage");
}

#[test]
fn a_second_delivery_of_an_id_gets_the_first_answer_and_changes_nothing() {
    let sender = sender();
    let body = revoke_event(&sender.owner_key_id);
    let headers = signed(&sender.secret, "msg_twice", &body);
    let first = deliver(&sender, &sender.workspace_id, &headers, &body).unwrap();
    let again = deliver(&sender, &sender.workspace_id, &headers, &body).unwrap();
    assert!(again.replayed, "the replay says so");
    assert_eq!((again.status, &again.body), (first.status, &first.body), "the same answer");
    assert_eq!(again.queued, 0, "a replay notifies nothing");
    let received = sender.store.audit().iter().filter(|e| e.action == "webhook.received").count();
    assert_eq!(received, 1, "processed once");
}

#[test]
fn a_wrong_signature_and_an_unknown_workspace_look_the_same() {
    let sender = sender();
    let body = revoke_event(&sender.owner_key_id);
    let forged = signed(&WebhookSecret::generate(), "msg_forged", &body);
    assert_eq!(deliver(&sender, &sender.workspace_id, &forged, &body), Err(ApiError::InvalidSignature));
    let honest = signed(&sender.secret, "msg_elsewhere", &body);
    assert_eq!(deliver(&sender, "ws_unknown", &honest, &body), Err(ApiError::InvalidSignature));
    let key = block_on(sender.store.key(&sender.workspace_id, &sender.owner_key_id)).unwrap().unwrap();
    assert!(key.revoked_at.is_none(), "nothing was processed");
}

#[test]
fn a_stale_timestamp_is_refused_before_processing() {
    let sender = sender();
    let body = revoke_event(&sender.owner_key_id);
    let old = NOW / 1000 - 301;
    let headers =
        SignedHeaders::check(Some("msg_old".into()), Some(old.to_string()), Some(sender.secret.sign("msg_old", old, body.as_bytes())));
    assert_eq!(deliver(&sender, &sender.workspace_id, &headers.unwrap(), &body), Err(ApiError::StaleWebhook));
}

#[test]
fn the_senders_mistake_is_the_answer_and_is_replayed_as_such() {
    let sender = sender();
    let body = json!({"type": "invoice.paid", "data": {}}).to_string();
    let headers = signed(&sender.secret, "msg_unknown_type", &body);
    let first = deliver(&sender, &sender.workspace_id, &headers, &body).unwrap();
    assert_eq!((first.status, first.body["error"]["code"].as_str()), (400, Some("unsupported_event")), "{first:?}");
    let again = deliver(&sender, &sender.workspace_id, &headers, &body).unwrap();
    assert!(again.replayed && again.status == 400, "{again:?}");
}

#[test]
fn a_field_of_the_event_data_is_named_by_its_path() {
    let sender = sender();
    let body = json!({"type": "api_key.revoke", "data": {}}).to_string();
    let answer = deliver(&sender, &sender.workspace_id, &signed(&sender.secret, "msg_no_key", &body), &body).unwrap();
    assert_eq!(answer.body["error"]["field"], "data.key_id", "{answer:?}");
}
