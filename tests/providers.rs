//! The provider use cases over SQLite and a scripted provider: configure's three
//! checks, atomic replacement, encryption at rest, re-validation, routing and resolve.

mod support;

use std::cell::RefCell;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::error::ApiError;
use keywarden::page::PageRequest;
use keywarden::providers::service::{self, Configure, Resolved};
use keywarden::providers::validation::{ProbeRequest, ProbeResponse, ProviderClient, TransportFailure};
use keywarden::providers::{AgentRoute, KeyStatus, ProviderId};
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::{Precondition, ProviderStore};
use keywarden::vault::Keks;
use serde_json::json;
use support::*;

const WS: &str = "ws_test";
const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// A fresh database with the workspace `WS` in it.
fn store() -> SqliteStore {
    let store = SqliteStore::default();
    store.add_workspace_row(WS);
    store
}

/// Answers every probe with the next scripted response and remembers the requests.
#[derive(Default)]
struct ScriptedProvider {
    answers: RefCell<Vec<Result<ProbeResponse, TransportFailure>>>,
    seen: RefCell<Vec<ProbeRequest>>,
}

impl ScriptedProvider {
    fn answering(answers: Vec<Result<ProbeResponse, TransportFailure>>) -> Self {
        ScriptedProvider { answers: RefCell::new(answers), seen: RefCell::default() }
    }
}

impl ProviderClient for ScriptedProvider {
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure> {
        self.seen.borrow_mut().push(request.clone());
        let mut answers = self.answers.borrow_mut();
        if answers.is_empty() {
            panic!("unexpected provider call to {}", request.url);
        }
        answers.remove(0)
    }
}

fn ok(body: serde_json::Value) -> Result<ProbeResponse, TransportFailure> {
    Ok(ProbeResponse { status: 200, headers: vec![], body: body.to_string() })
}

fn status(code: u16, body: serde_json::Value) -> Result<ProbeResponse, TransportFailure> {
    Ok(ProbeResponse { status: code, headers: vec![], body: body.to_string() })
}

fn models(ids: &[&str]) -> Result<ProbeResponse, TransportFailure> {
    ok(json!({"object": "list", "data": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()}))
}

fn request(provider: ProviderId, key: &str) -> Configure {
    Configure { provider, api_key: key.into(), api_host: None, model: None, fallback_model: None, config: None, make_default: false }
}

fn configure(
    store: &SqliteStore,
    client: &ScriptedProvider,
    keks: &Keks,
    request: Configure,
) -> Result<keywarden::providers::ProviderRecord, ApiError> {
    block_on(service::configure(
        &with(store, client, keks, 1_000),
        &Precondition::unconditional(WS),
        request,
        AuditEvent::new(Some(WS), "provider.configured", 1_000),
    ))
}

fn resolve(store: &SqliteStore, keks: &Keks, agent: Option<&str>, provider: Option<ProviderId>) -> Resolved {
    block_on(service::resolve(&with(store, &Offline, keks, 0), &Precondition::unconditional(WS), agent, provider)).unwrap()
}

#[test]
fn a_valid_key_is_stored_encrypted_and_resolves() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o", "gpt-4o-mini"])]);
    let key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
    let record = configure(&store, &client, &keks, Configure { model: Some("gpt-4o".into()), ..request(ProviderId::OpenAi, key) }).unwrap();
    assert_eq!((record.status, record.version, record.is_default), (KeyStatus::Valid, 1, true));
    assert_eq!(record.key_hint, "...2345");
    assert!(!format!("{:?}", store.all_providers()).contains(key), "the key is in D1's row");
    let blob = store.blobs().get(&record.blob_name).cloned().unwrap();
    assert!(!blob.contains(key) && !blob.contains("c2stcHJvai1hYmNk"), "the blob shows the key");
    match resolve(&store, &keks, None, None) {
        Resolved::Byok { api_key, model, .. } => assert_eq!((api_key.as_str(), model.as_deref()), (key, Some("gpt-4o"))),
        other => panic!("expected byok, got {other:?}"),
    }
}

#[test]
fn a_key_of_another_provider_is_refused_without_calling_anyone() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::default();
    let error = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-ant-api03-abc")).unwrap_err();
    assert_eq!(error, ApiError::WrongProvider { detected: "anthropic".into() });
    assert!(client.seen.borrow().is_empty());
    assert!(store.all_providers().is_empty() && store.blobs().is_empty());
}

#[test]
fn an_insecure_host_is_refused_before_any_call() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::default();
    for host in ["http://api.openai.com/v1", "https://169.254.169.254", "https://10.0.0.5/v1"] {
        let error = configure(&store, &client, &keks, Configure { api_host: Some(host.into()), ..request(ProviderId::OpenAi, "sk-abc") })
            .unwrap_err();
        assert!(matches!(error, ApiError::InvalidHost { .. }), "{host}: {error:?}");
    }
    assert!(client.seen.borrow().is_empty());
}

#[test]
fn every_refusal_stores_nothing() {
    let cases = [
        (status(401, json!({"error": {"code": "invalid_api_key"}})), ApiError::InvalidKey { provider_status: 401 }),
        (status(429, json!({"error": {"code": "insufficient_quota"}})), ApiError::QuotaExceeded { provider_status: 429 }),
        (status(503, json!({})), ApiError::ProviderUnavailable { provider_status: Some(503) }),
        (Err(TransportFailure::Timeout), ApiError::ProviderUnavailable { provider_status: None }),
        (Err(TransportFailure::TooLarge), ApiError::ProviderUnavailable { provider_status: None }),
        (models(&["gpt-4o"]), ApiError::InvalidModel { field: "model".into() }),
    ];
    for (answer, expected) in cases {
        let (store, keks) = (store(), Keks::parse(K1).unwrap());
        let client = ScriptedProvider::answering(vec![answer]);
        let error =
            configure(&store, &client, &keks, Configure { model: Some("gpt-5-turbo".into()), ..request(ProviderId::OpenAi, "sk-abc") })
                .unwrap_err();
        assert_eq!(error, expected);
        assert!(store.all_providers().is_empty() && store.blobs().is_empty(), "stored after {expected:?}");
    }
}

#[test]
fn a_long_model_list_is_checked_for_the_wanted_models_wherever_they_sit() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let mut ids: Vec<String> = (0..30_000).map(|i| format!("filler-model-{i:06}")).collect();
    ids.push("gpt-4o-2024-08-06".into());
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let client = ScriptedProvider::answering(vec![models(&id_refs)]);
    let record = configure(&store, &client, &keks, Configure { model: Some("gpt-4o".into()), ..request(ProviderId::OpenAi, "sk-abc") });
    assert_eq!(record.map(|r| r.status), Ok(KeyStatus::Valid));
}

#[test]
fn openrouter_checks_the_key_at_key_and_the_model_in_its_public_list() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![
        ok(json!({"data": {"label": "x", "limit_remaining": null}})),
        models(&["anthropic/claude-sonnet-4.5"]),
    ]);
    let record = configure(
        &store,
        &client,
        &keks,
        Configure { model: Some("anthropic/claude-sonnet-4.5".into()), ..request(ProviderId::OpenRouter, "sk-or-v1-abc") },
    );
    assert!(record.is_ok(), "{record:?}");
    let urls: Vec<String> = client.seen.borrow().iter().map(|r| r.url.clone()).collect();
    assert_eq!(urls, vec!["https://openrouter.ai/api/v1/key", "https://openrouter.ai/api/v1/models"]);
}

#[test]
fn a_replacement_bumps_the_version_and_keeps_the_old_blob_until_the_cron() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o"]), models(&["gpt-4o"])]);
    let first = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-first")).unwrap();
    let second = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-second")).unwrap();
    assert_eq!(second.version, 2);
    assert_ne!(first.blob_name, second.blob_name);
    assert!(store.blobs().contains_key(&first.blob_name), "a resolve that read the old pointer still finds its blob");
    assert_eq!(store.retired_blobs(), vec![(first.blob_name, 1_000)]);
    assert!(matches!(resolve(&store, &keks, None, None), Resolved::Byok { ref api_key, .. } if api_key == "sk-second"));
}

#[test]
fn the_first_provider_is_the_default_and_default_true_moves_it() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[]), ok(json!({"data": []})), models(&[])]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-a")).unwrap();
    let anthropic = configure(&store, &client, &keks, request(ProviderId::Anthropic, "sk-ant-b")).unwrap();
    assert!(!anthropic.is_default);
    configure(&store, &client, &keks, Configure { make_default: true, ..request(ProviderId::DeepSeek, "sk-c") }).unwrap();
    let defaults: Vec<ProviderId> =
        block_on(store.providers(WS)).unwrap().into_iter().filter(|p| p.is_default).map(|p| p.provider).collect();
    assert_eq!(defaults, vec![ProviderId::DeepSeek]);
}

#[test]
fn resolve_follows_request_then_route_then_default_then_metered() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    assert_eq!(resolve(&store, &keks, None, None), Resolved::Metered { reason: "no_byok_configured" });
    let client = ScriptedProvider::answering(vec![models(&[]), ok(json!({"data": []}))]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    configure(&store, &client, &keks, request(ProviderId::Anthropic, "sk-ant-x")).unwrap();
    let route = |agent: &str, provider: Option<ProviderId>, model: Option<&str>| {
        block_on(store.save_route(
            &AgentRoute { workspace_id: WS.into(), agent_id: agent.into(), provider, model: model.map(str::to_string), updated_at: 1 },
            &AuditEvent::new(Some(WS), "agent.routed", 1),
            &Precondition::unconditional(WS),
        ))
        .unwrap()
    };
    route("metered-bot", None, None);
    route("claude-bot", Some(ProviderId::Anthropic), Some("claude-sonnet-4-5"));
    route("gone-bot", Some(ProviderId::Gemini), None);

    let provider_of = |resolved: Resolved| match resolved {
        Resolved::Byok { record, model, .. } => format!("{}:{}", record.provider.as_str(), model.unwrap_or_default()),
        Resolved::Metered { reason } => format!("metered:{reason}"),
    };
    assert_eq!(provider_of(resolve(&store, &keks, None, None)), "openai:");
    assert_eq!(provider_of(resolve(&store, &keks, Some("claude-bot"), None)), "anthropic:claude-sonnet-4-5");
    assert_eq!(provider_of(resolve(&store, &keks, Some("metered-bot"), None)), "metered:agent_routed_metered");
    assert_eq!(provider_of(resolve(&store, &keks, Some("gone-bot"), None)), "metered:provider_removed");
    assert_eq!(provider_of(resolve(&store, &keks, Some("metered-bot"), Some(ProviderId::Anthropic))), "anthropic:");
    assert_eq!(provider_of(resolve(&store, &keks, Some("unrouted"), None)), "openai:");
    assert_eq!(provider_of(resolve(&store, &keks, None, Some(ProviderId::Gemini))), "metered:no_byok_configured");
}

#[test]
fn routes_page_most_recently_changed_first_and_ties_break_by_agent_id() {
    let store = store();
    let route = |agent: &str, updated_at: i64| {
        let route = AgentRoute { workspace_id: WS.into(), agent_id: agent.into(), provider: None, model: None, updated_at };
        block_on(store.save_route(&route, &AuditEvent::new(Some(WS), "agent.routed", updated_at), &Precondition::unconditional(WS)))
            .unwrap()
    };
    route("old-bot", 1);
    route("support.bot:eu", 5);
    route("support.bot:us", 5);
    route("new-bot", 9);
    route("old-bot", 7); // re-routing moves it up the list

    let deps = at(&store, 10);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = PageRequest::parse(Some("2"), cursor.as_deref()).unwrap();
        let page = block_on(service::routes(&deps, WS, &page)).unwrap();
        seen.extend(page.items.iter().map(|r| r.agent_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["new-bot", "old-bot", "support.bot:us", "support.bot:eu"], "each agent once, newest change first");
    let other = block_on(service::routes(&deps, "ws_other", &PageRequest::default())).unwrap();
    assert!(other.items.is_empty(), "another workspace's routes are not listed");
}

#[test]
fn an_invalidated_key_resolves_metered_byok_invalid() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[]), status(401, json!({}))]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    let result = block_on(service::revalidate(
        &with(&store, &client, &keks, 2_000),
        &Precondition::unconditional(WS),
        ProviderId::OpenAi,
        AuditEvent::new(Some(WS), "provider.invalidated", 2_000),
    ))
    .unwrap();
    let (record, error) = (result.record, result.error);
    assert!(result.notice.is_some(), "valid before, invalid now");
    assert_eq!(record.status, KeyStatus::Invalid);
    assert_eq!(error, Some(ApiError::InvalidKey { provider_status: 401 }));
    assert_eq!(resolve(&store, &keks, None, None), Resolved::Metered { reason: "byok_invalid" });
}

#[test]
fn a_provider_that_cannot_answer_leaves_the_status_as_it_was() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[]), Err(TransportFailure::Network)]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    let result = block_on(service::revalidate(
        &with(&store, &client, &keks, 2_000),
        &Precondition::unconditional(WS),
        ProviderId::OpenAi,
        AuditEvent::new(Some(WS), "provider.invalidated", 2_000),
    ))
    .unwrap();
    let (record, error) = (result.record, result.error);
    assert!(result.notice.is_none());
    assert_eq!((record.status, record.validated_at), (KeyStatus::Valid, Some(1_000)));
    assert_eq!(error, Some(ApiError::ProviderUnavailable { provider_status: None }));
}

#[test]
fn a_new_first_kek_keeps_stored_keys_resolving() {
    let store = store();
    let client = ScriptedProvider::answering(vec![models(&[])]);
    configure(&store, &client, &Keks::parse(K1).unwrap(), request(ProviderId::OpenAi, "sk-kept")).unwrap();
    let rotated = Keks::parse(&format!("{K2},{K1}")).unwrap();
    assert!(matches!(resolve(&store, &rotated, None, None), Resolved::Byok { ref api_key, .. } if api_key == "sk-kept"));
}

#[test]
fn rewrapping_moves_stale_keys_to_the_current_kek_and_keeps_them_resolving() {
    let store = store();
    let client = ScriptedProvider::answering(vec![models(&[]), ok(json!({"data": []}))]);
    let old = Keks::parse(K1).unwrap();
    let first = configure(&store, &client, &old, request(ProviderId::OpenAi, "sk-kept")).unwrap();
    configure(&store, &client, &old, request(ProviderId::Anthropic, "sk-ant-kept")).unwrap();
    let rotated = Keks::parse(&format!("{K2},{K1}")).unwrap();

    assert_eq!(block_on(service::rewrap_stale(&with(&store, &Offline, &rotated, 5_000), 1)).unwrap(), 1, "bounded per run");
    assert_eq!(block_on(service::rewrap_stale(&with(&store, &Offline, &rotated, 5_000), 10)).unwrap(), 1);
    assert_eq!(block_on(service::rewrap_stale(&with(&store, &Offline, &rotated, 5_000), 10)).unwrap(), 0, "nothing left to do");
    assert!(block_on(store.providers(WS)).unwrap().iter().all(|p| p.kek_id == "k2"));
    assert!(store.retired_blobs().iter().any(|(name, _)| *name == first.blob_name));

    let only_new = Keks::parse(K2).unwrap();
    assert!(
        matches!(resolve(&store, &only_new, None, Some(ProviderId::OpenAi)), Resolved::Byok { ref api_key, .. } if api_key == "sk-kept")
    );
    assert!(
        matches!(resolve(&store, &only_new, None, Some(ProviderId::Anthropic)), Resolved::Byok { ref api_key, .. } if api_key == "sk-ant-kept")
    );
}

#[test]
fn a_blob_moved_under_another_pointer_fails_to_decrypt_and_says_so() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[]), ok(json!({"data": []}))]);
    let openai = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    let anthropic = configure(&store, &client, &keks, request(ProviderId::Anthropic, "sk-ant-x")).unwrap();
    let stolen = store.blobs().get(&openai.blob_name).cloned().unwrap();
    store.blobs().insert(anthropic.blob_name.clone(), stolen);
    let error =
        block_on(service::resolve(&with(&store, &Offline, &keks, 0), &Precondition::unconditional(WS), None, Some(ProviderId::Anthropic)))
            .unwrap_err();
    assert!(matches!(error, ApiError::DecryptionFailed { .. }), "{error:?}");
    assert_eq!(error.status(), 500);
}

#[test]
fn a_blob_retired_by_a_removal_does_not_open_under_the_next_config_of_the_same_version() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[]), models(&[])]);
    let first = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-first-owner")).unwrap();
    let retired = store.blobs().get(&first.blob_name).cloned().unwrap();
    block_on(store.remove_provider(
        &Precondition::unconditional(WS),
        ProviderId::OpenAi,
        1_500,
        &AuditEvent::new(Some(WS), "provider.removed", 1_500),
    ))
    .unwrap();
    let second = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-second-owner")).unwrap();
    assert_eq!((second.workspace_id.as_str(), second.provider, second.version), (WS, ProviderId::OpenAi, 1), "the same context");
    store.blobs().insert(second.blob_name.clone(), retired);
    let error =
        block_on(service::resolve(&with(&store, &Offline, &keks, 0), &Precondition::unconditional(WS), None, Some(ProviderId::OpenAi)))
            .unwrap_err();
    assert!(matches!(error, ApiError::DecryptionFailed { .. }), "the retired key opened: {error:?}");
}

#[test]
fn a_pointer_whose_blob_is_not_visible_yet_answers_retry() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[])]);
    let record = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    store.blobs().remove(&record.blob_name);
    let error = block_on(service::resolve(&with(&store, &Offline, &keks, 0), &Precondition::unconditional(WS), None, None)).unwrap_err();
    assert_eq!(error, ApiError::SecretUnavailable);
}

#[test]
fn a_replaced_key_is_notified_in_the_saves_own_batch() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) \
         VALUES (:ws, 'https://hooks.example.com/k', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(WS.into()))],
    );
    let client = ScriptedProvider::answering(vec![models(&[]), models(&[])]);
    let save = |key: &str| {
        block_on(service::configure_notifying(
            &with(&store, &client, &keks, 1_000),
            &Precondition::unconditional(WS),
            request(ProviderId::OpenAi, key),
            AuditEvent::new(Some(WS), "provider.configured", 1_000),
            service::RotationNotice::IfReplaced,
        ))
        .unwrap()
    };
    let (first, none) = save("sk-first-0123456789");
    assert_eq!((first.version, none), (1, None), "a first key replaces nothing");
    let (second, queued) = save("sk-second-0123456789");
    let outbox = store.outbox();
    assert_eq!((second.version, queued.as_deref(), outbox.len()), (2, Some(outbox[0].id.as_str()), 1));
    assert_eq!(outbox[0].event_type, "provider_key.rotated");
    assert_eq!(outbox[0].payload()["data"]["version"], 2);
}
