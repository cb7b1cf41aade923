//! The provider use cases over SQLite and a scripted provider: configure's three
//! checks, atomic replacement, encryption at rest, re-validation, routing and resolve.

mod support;

use std::cell::RefCell;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::error::ApiError;
use keywarden::page::PageRequest;
use keywarden::providers::fallback::{MeteredFallback, Unusable};
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
    Configure {
        provider,
        api_key: key.into(),
        api_host: None,
        model: None,
        fallback_model: None,
        config: None,
        make_default: false,
        allow_unverified: false,
    }
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
    block_on(service::resolve(&with(store, &Offline, keks, 0), &Precondition::unconditional(WS), agent, provider, MeteredFallback::Allow))
        .unwrap()
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
    let deepseek_balance = ok(json!({"is_available": true, "balance_infos": []}));
    let client = ScriptedProvider::answering(vec![models(&[]), ok(json!({"data": []})), models(&[]), deepseek_balance]);
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
    assert_eq!(resolve(&store, &keks, None, None), Resolved::Metered { reason: "no_byok_configured", fell_back_from: None });
    let client = ScriptedProvider::answering(vec![models(&[]), ok(json!({"data": []}))]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    configure(&store, &client, &keks, request(ProviderId::Anthropic, "sk-ant-x")).unwrap();
    let route = |agent: &str, provider: Option<ProviderId>, model: Option<&str>| {
        block_on(store.save_route(
            &AgentRoute {
                workspace_id: WS.into(),
                agent_id: agent.into(),
                provider,
                model: model.map(str::to_string),
                metered_fallback: None,
                updated_at: 1,
            },
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
        Resolved::Metered { reason, .. } => format!("metered:{reason}"),
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
        let route =
            AgentRoute { workspace_id: WS.into(), agent_id: agent.into(), provider: None, model: None, metered_fallback: None, updated_at };
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
    assert_eq!(
        resolve(&store, &keks, None, None),
        Resolved::Metered { reason: "byok_invalid", fell_back_from: Some((ProviderId::OpenAi, Unusable::ByokInvalid)) }
    );
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
    let error = block_on(service::resolve(
        &with(&store, &Offline, &keks, 0),
        &Precondition::unconditional(WS),
        None,
        Some(ProviderId::Anthropic),
        MeteredFallback::Allow,
    ))
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
    let error = block_on(service::resolve(
        &with(&store, &Offline, &keks, 0),
        &Precondition::unconditional(WS),
        None,
        Some(ProviderId::OpenAi),
        MeteredFallback::Allow,
    ))
    .unwrap_err();
    assert!(matches!(error, ApiError::DecryptionFailed { .. }), "the retired key opened: {error:?}");
}

#[test]
fn a_pointer_whose_blob_is_not_visible_yet_answers_retry() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&[])]);
    let record = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    store.blobs().remove(&record.blob_name);
    let error =
        block_on(service::resolve(&with(&store, &Offline, &keks, 0), &Precondition::unconditional(WS), None, None, MeteredFallback::Allow))
            .unwrap_err();
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

fn revalidate(store: &SqliteStore, client: &ScriptedProvider, keks: &Keks, now_ms: i64) -> service::Revalidation {
    block_on(service::revalidate(
        &with(store, client, keks, now_ms),
        &Precondition::unconditional(WS),
        ProviderId::OpenAi,
        AuditEvent::new(Some(WS), "provider.invalidated", now_ms),
    ))
    .unwrap()
}

fn missing_scope() -> Result<ProbeResponse, TransportFailure> {
    status(
        401,
        json!({"error": {"message": "You have insufficient permissions for this operation. Missing scopes: api.model.read.",
                         "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

#[test]
fn a_restricted_key_is_refused_with_the_providers_reason_and_nothing_is_stored() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![missing_scope()]);
    let refused = configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-restricted"));
    assert_eq!(refused, Err(ApiError::KeyRestricted { provider_status: 401, provider_reason: "insufficient_permissions".into() }));
    assert!(store.all_providers().is_empty() && store.blobs().is_empty(), "nothing stored after a refusal");
}

#[test]
fn allow_unverified_stores_a_restricted_key_as_unverified_and_it_resolves() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![missing_scope()]);
    let record =
        configure(&store, &client, &keks, Configure { allow_unverified: true, ..request(ProviderId::OpenAi, "sk-restricted") }).unwrap();
    assert_eq!((record.status, record.provider_reason.as_deref()), (KeyStatus::Unverified, Some("insufficient_permissions")));
    assert!(matches!(resolve(&store, &keks, None, None), Resolved::Byok { ref api_key, .. } if api_key == "sk-restricted"));
}

#[test]
fn allow_unverified_never_stores_a_key_the_provider_calls_wrong() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![status(401, json!({"error": {"code": "invalid_api_key"}}))]);
    let refused = configure(&store, &client, &keks, Configure { allow_unverified: true, ..request(ProviderId::OpenAi, "sk-wrong") });
    assert_eq!(refused, Err(ApiError::InvalidKey { provider_status: 401 }));
    assert!(store.all_providers().is_empty());
}

#[test]
fn an_openrouter_key_with_a_credit_limit_carries_its_funds() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![
        ok(json!({"data": {"label": "x", "limit": 10, "usage": 2.5, "limit_remaining": 7.5}})),
        models(&["openai/gpt-4o"]),
    ]);
    let record = configure(&store, &client, &keks, request(ProviderId::OpenRouter, "sk-or-v1-abc")).unwrap();
    let funds = record.funds.expect("funds are known");
    assert_eq!((funds.remaining, funds.currency, funds.checked_at), (7.5, None, 1_000), "OpenRouter counts credits");
}

#[test]
fn a_deepseek_account_with_nothing_left_is_quota_exceeded_and_not_stored() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![
        models(&["deepseek-chat"]),
        ok(json!({"is_available": false, "balance_infos": [{"currency": "USD", "total_balance": "0.00"}]})),
    ]);
    let refused = configure(&store, &client, &keks, request(ProviderId::DeepSeek, "sk-broke"));
    assert_eq!(refused, Err(ApiError::QuotaExceeded { provider_status: 200 }));
    assert!(store.all_providers().is_empty());
    let asked: Vec<String> = client.seen.borrow().iter().map(|r| r.url.clone()).collect();
    assert_eq!(asked, vec!["https://api.deepseek.com/models", "https://api.deepseek.com/user/balance"]);
}

#[test]
fn a_deepseek_balance_that_cannot_be_read_leaves_funds_unknown_and_the_key_valid() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&["deepseek-chat"]), status(500, json!({}))]);
    let record = configure(&store, &client, &keks, request(ProviderId::DeepSeek, "sk-fine")).unwrap();
    assert_eq!((record.status, record.funds), (KeyStatus::Valid, None));
}

#[test]
fn a_re_validation_that_finds_a_key_run_dry_makes_it_quota_exceeded_with_a_notice() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![
        ok(json!({"data": {"limit": 10, "limit_remaining": 4}})),
        models(&[]),
        ok(json!({"data": {"limit": 10, "limit_remaining": 0}})),
    ]);
    configure(&store, &client, &keks, request(ProviderId::OpenRouter, "sk-or-v1-abc")).unwrap();
    let result = block_on(service::revalidate(
        &with(&store, &client, &keks, 2_000),
        &Precondition::unconditional(WS),
        ProviderId::OpenRouter,
        AuditEvent::new(Some(WS), "provider.invalidated", 2_000),
    ))
    .unwrap();
    assert_eq!(result.record.status, KeyStatus::QuotaExceeded);
    assert_eq!(result.record.funds.map(|f| (f.remaining, f.checked_at)), Some((0.0, 2_000)), "the dry funds are recorded");
    assert!(result.notice.is_some(), "usable before, not now");
    assert_eq!(store.all_providers()[0].status, KeyStatus::QuotaExceeded);
}

#[test]
fn a_re_validation_that_finds_a_key_restricted_keeps_it_usable_as_unverified() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o"]), missing_scope()]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    let result = revalidate(&store, &client, &keks, 2_000);
    assert_eq!((result.record.status, result.record.provider_reason.as_deref()), (KeyStatus::Unverified, Some("insufficient_permissions")));
    assert!(result.notice.is_none(), "an unverified key is still handed out: nothing was invalidated");
    assert!(matches!(result.error, Some(ApiError::KeyRestricted { .. })));
    assert!(matches!(resolve(&store, &keks, None, None), Resolved::Byok { .. }));
}

#[test]
fn the_models_a_key_was_offered_are_kept_and_replaced_by_the_next_validation() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o", "o3-mini"]), models(&["gpt-5"])]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    let deps = with(&store, &Offline, &keks, 1_500);
    let (_, offered) = block_on(service::offered_models(&deps, WS, ProviderId::OpenAi)).unwrap();
    assert_eq!(offered.map(|o| (o.ids, o.listed_at)), Some((vec!["gpt-4o".to_string(), "o3-mini".to_string()], 1_000)));
    revalidate(&store, &client, &keks, 2_000);
    let (_, offered) = block_on(service::offered_models(&deps, WS, ProviderId::OpenAi)).unwrap();
    assert_eq!(offered.map(|o| o.ids), Some(vec!["gpt-5".to_string()]));
}

#[test]
fn a_key_stored_unverified_forgets_the_list_of_the_key_it_replaced() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o"]), missing_scope()]);
    configure(&store, &client, &keks, request(ProviderId::OpenAi, "sk-first")).unwrap();
    configure(&store, &client, &keks, Configure { allow_unverified: true, ..request(ProviderId::OpenAi, "sk-second") }).unwrap();
    let (record, offered) = block_on(service::offered_models(&with(&store, &Offline, &keks, 0), WS, ProviderId::OpenAi)).unwrap();
    assert_eq!((record.version, offered), (2, None));
}

fn azure(deployment: &str) -> Configure {
    let mut config = serde_json::Map::new();
    config.insert("deployment".into(), json!(deployment));
    Configure {
        api_host: Some("https://res.openai.azure.com".into()),
        config: Some(config),
        ..request(ProviderId::Azure, "0123456789abcdef0123456789abcdef")
    }
}

#[test]
fn an_azure_deployment_that_does_not_exist_is_invalid_model_on_config_deployment() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let missing =
        status(404, json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}));
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o"]), missing]);
    let refused = configure(&store, &client, &keks, azure("gone"));
    assert_eq!(refused, Err(ApiError::InvalidModel { field: "config.deployment".into() }));
    assert!(store.all_providers().is_empty());
    let deployment_probe = client.seen.borrow()[1].clone();
    assert_eq!(deployment_probe.method(), "POST");
    assert!(deployment_probe.url.starts_with("https://res.openai.azure.com/openai/deployments/gone/chat/completions?api-version="));
}

#[test]
fn an_azure_deployment_that_refuses_the_empty_body_exists() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    let refuses = status(400, json!({"error": {"message": "'messages' is a required property", "type": "invalid_request_error"}}));
    let client = ScriptedProvider::answering(vec![models(&["gpt-4o"]), refuses]);
    assert_eq!(configure(&store, &client, &keks, azure("gpt4o-prod")).map(|r| r.status), Ok(KeyStatus::Valid));
}

fn resolve_with(store: &SqliteStore, keks: &Keks, agent: Option<&str>, consent: MeteredFallback) -> Result<Resolved, ApiError> {
    block_on(service::resolve(&with(store, &Offline, keks, 0), &Precondition::unconditional(WS), agent, None, consent))
}

fn invalid_openai(store: &SqliteStore, keks: &Keks) {
    let client = ScriptedProvider::answering(vec![models(&[]), status(401, json!({}))]);
    configure(store, &client, keks, request(ProviderId::OpenAi, "sk-openai")).unwrap();
    revalidate(store, &client, keks, 2_000);
}

#[test]
fn deny_refuses_a_fallback_with_the_reason_it_would_have_given() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    invalid_openai(&store, &keks);
    assert_eq!(
        resolve_with(&store, &keks, None, MeteredFallback::Deny),
        Err(ApiError::ByokUnavailable { reason: "byok_invalid".into(), provider: "openai".into() })
    );
    assert!(matches!(resolve_with(&store, &keks, None, MeteredFallback::Allow), Ok(Resolved::Metered { reason: "byok_invalid", .. })));
}

#[test]
fn deny_never_refuses_what_is_not_a_fallback() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    assert!(matches!(
        resolve_with(&store, &keks, None, MeteredFallback::Deny),
        Ok(Resolved::Metered { reason: "no_byok_configured", fell_back_from: None })
    ));
    let route =
        AgentRoute { workspace_id: WS.into(), agent_id: "m".into(), provider: None, model: None, metered_fallback: None, updated_at: 1 };
    block_on(store.save_route(&route, &AuditEvent::new(Some(WS), "agent.routed", 1), &Precondition::unconditional(WS))).unwrap();
    assert!(matches!(
        resolve_with(&store, &keks, Some("m"), MeteredFallback::Deny),
        Ok(Resolved::Metered { reason: "agent_routed_metered", .. })
    ));
}

#[test]
fn an_agents_routing_overrides_its_workspaces_consent() {
    let (store, keks) = (store(), Keks::parse(K1).unwrap());
    invalid_openai(&store, &keks);
    for (agent, consent) in [("lenient", MeteredFallback::Allow), ("strict", MeteredFallback::Deny)] {
        let route = AgentRoute {
            workspace_id: WS.into(),
            agent_id: agent.into(),
            provider: Some(ProviderId::OpenAi),
            model: None,
            metered_fallback: Some(consent),
            updated_at: 1,
        };
        block_on(store.save_route(&route, &AuditEvent::new(Some(WS), "agent.routed", 1), &Precondition::unconditional(WS))).unwrap();
    }
    assert!(matches!(
        resolve_with(&store, &keks, Some("lenient"), MeteredFallback::Deny),
        Ok(Resolved::Metered { reason: "byok_invalid", .. })
    ));
    assert!(matches!(resolve_with(&store, &keks, Some("strict"), MeteredFallback::Allow), Err(ApiError::ByokUnavailable { .. })));
}

#[test]
fn a_fallback_is_audited_every_time_and_notified_once_an_hour_per_agent_and_provider() {
    let store = store();
    store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) VALUES (:ws, 'https://h.example', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(WS.into()))],
    );
    let keks = Keks::parse(K1).unwrap();
    let record = |agent: Option<&str>, now_ms: i64| {
        let deps = with(&store, &Offline, &keks, now_ms);
        let audit = AuditEvent::new(Some(WS), "resolve.fell_back", now_ms);
        block_on(service::record_fallback(&deps, audit, agent, ProviderId::OpenAi, Unusable::ByokInvalid)).unwrap()
    };
    assert!(record(Some("a1"), 10_000).is_some(), "the first fallback is notified");
    assert!(record(Some("a1"), 10_000 + 3_599_999).is_none(), "within the hour: audited only");
    assert!(record(Some("a2"), 20_000).is_some(), "another agent is told apart");
    assert!(record(None, 20_000).is_some(), "a resolve without an agent counts as one agent");
    assert!(record(Some("a1"), 10_000 + 3_600_000).is_some(), "an hour later, again");
    assert_eq!(store.audit().iter().filter(|e| e.action == "resolve.fell_back").count(), 5);
    let notices = store.outbox();
    assert_eq!(notices.len(), 4);
}

#[test]
fn a_fallback_without_an_endpoint_keeps_the_hour_for_an_endpoint_set_later() {
    let store = store();
    let keks = Keks::parse(K1).unwrap();
    let record = |now_ms: i64| {
        let deps = with(&store, &Offline, &keks, now_ms);
        let audit = AuditEvent::new(Some(WS), "resolve.fell_back", now_ms);
        block_on(service::record_fallback(&deps, audit, Some("a1"), ProviderId::OpenAi, Unusable::ByokInvalid)).unwrap()
    };
    assert!(record(10_000).is_none(), "no endpoint: nothing to send");
    store.execute(
        "INSERT INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at) VALUES (:ws, 'https://h.example', 's', 'k1', 1, 0)",
        &[("ws", keywarden::store::sql::Value::Text(WS.into()))],
    );
    assert!(record(20_000).is_some(), "the first fallback the endpoint can hear of is notified");
    assert_eq!(store.outbox().len(), 1);
    assert_eq!(store.audit().iter().filter(|e| e.action == "resolve.fell_back").count(), 2, "both audited");
}
