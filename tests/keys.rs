//! The platform-key use cases over SQLite: authentication with its limits,
//! creation rules, revocation, reroll, verify and leak reports.

mod support;

use futures_executor::block_on;
use keywarden::audit::AuditEvent;
use keywarden::error::ApiError;
use keywarden::keys::auth::{authenticate, Caller};
use keywarden::keys::leaks::{self, LeakReport, Reporter};
use keywarden::keys::service::{self, Expiry, GraceStarts, NewKey};
use keywarden::keys::verify::Verification;
use keywarden::keys::verify::{verify, VerifyCode};
use keywarden::keys::{Capabilities, KeyPrefix, PlatformKey, RateLimit};
use keywarden::name::Name;
use keywarden::outbox::OutboxEvent;
use keywarden::store::sqlite::SqliteStore;
use keywarden::store::{KeyStore, LeakPlan, LeakRevocation, PlannedRevocation, Precondition};
use keywarden::vault::Keks;
use keywarden::webhooks::secrets;
use keywarden::workspaces::{self, NewWorkspace, WorkspacePatch};
use support::*;

const T0: i64 = 1_800_000_000_000; // on a minute boundary

struct World {
    store: SqliteStore,
    owner: Caller,
    owner_key: PlatformKey,
}

fn prefix() -> KeyPrefix {
    KeyPrefix::default()
}

fn caps(items: &[&str]) -> Capabilities {
    Capabilities::parse(items).unwrap()
}

fn world() -> World {
    let store = SqliteStore::default();
    let owner_key = add_workspace(&store, "Acme");
    let owner = login(&store, &owner_key, T0);
    World { store, owner, owner_key }
}

fn add_workspace(store: &SqliteStore, name: &str) -> PlatformKey {
    let new = NewWorkspace {
        name: Name::parse(name).unwrap(),
        default_capabilities: caps(&["desktop:read", "desktop:chat"]),
        metered_fallback: Default::default(),
    };
    block_on(workspaces::create(&at(store, T0), new)).unwrap().plaintext
}

fn login(store: &SqliteStore, key: &PlatformKey, now: i64) -> Caller {
    block_on(authenticate(&at(store, now), Some(key.expose()), Some("10.0.0.1"), None)).expect("key authenticates").caller
}

/// A verify that asks for `required`, one credit, from no particular address.
fn asking(required: &[&str]) -> Verification {
    Verification { required: caps(required), ip: None, cost: 1 }
}

fn new_key(name: &str, capabilities: Option<&[&str]>) -> NewKey {
    NewKey {
        name: Name::parse(name).unwrap(),
        capabilities: capabilities.map(caps),
        subject: None,
        expiry: Expiry::Never,
        allowed_ips: None,
        credits: None,
        rate_limit: None,
    }
}

fn issue(world: &World, new: NewKey) -> PlatformKey {
    block_on(service::create(&at(&world.store, T0), &world.owner, new)).unwrap().1
}

fn auth_error(store: &SqliteStore, key: &str, ip: &str, now: i64) -> ApiError {
    block_on(authenticate(&at(store, now), Some(key), Some(ip), None)).expect_err("authentication should fail").error
}

fn unknown_key() -> PlatformKey {
    PlatformKey::generate(&prefix())
}

#[test]
fn a_malformed_key_is_refused_without_a_storage_lookup() {
    let world = world();
    let before = world.store.round_trips();
    let text = world.owner_key.expose();
    let last = if text.ends_with('0') { '1' } else { '0' };
    let bad_checksum = format!("{}{last}", &text[..text.len() - 1]);
    for presented in ["", "kw_live_short", "sk_live_abc", bad_checksum.as_str()] {
        assert_eq!(auth_error(&world.store, presented, "10.0.0.9", T0), ApiError::Unauthorized, "{presented}");
    }
    assert_eq!(world.store.round_trips(), before, "a malformed key reached the store");
    assert!(world.store.count("auth_failures") == 0, "malformed keys are not counted");
}

#[test]
fn unknown_revoked_and_expired_keys_get_the_same_401() {
    let world = world();
    let expiring = issue(&world, NewKey { expiry: Expiry::InSeconds(60), ..new_key("short", None) });
    let revoked = issue(&world, new_key("gone", None));
    let revoked_id = login(&world.store, &revoked, T0).key.id;
    block_on(service::revoke(&at(&world.store, T0 + 1), &world.owner, &revoked_id)).unwrap();

    assert_eq!(auth_error(&world.store, unknown_key().expose(), "10.0.0.2", T0), ApiError::Unauthorized);
    assert_eq!(auth_error(&world.store, revoked.expose(), "10.0.0.2", T0 + 2), ApiError::Unauthorized);
    assert_eq!(auth_error(&world.store, expiring.expose(), "10.0.0.2", T0 + 60_000), ApiError::Unauthorized);
    assert!(block_on(authenticate(&at(&world.store, T0 + 59_999), Some(expiring.expose()), None, None)).is_ok());
}

#[test]
fn the_eleventh_failure_from_one_ip_blocks_it_for_the_rest_of_the_window_whatever_the_key() {
    let world = world();
    for attempt in 1..=10 {
        let rejection =
            block_on(authenticate(&at(&world.store, T0 + attempt * 100), Some(unknown_key().expose()), Some("203.0.113.7"), None))
                .expect_err("unknown key");
        assert_eq!(rejection.error, ApiError::Unauthorized, "attempt {attempt}");
        let expected_block = (attempt == 10).then(|| "203.0.113.7".to_string());
        assert_eq!(rejection.blocked_ip, expected_block, "the tenth failure, and only it, reports the block");
    }
    let blocked = auth_error(&world.store, unknown_key().expose(), "203.0.113.7", T0 + 1_500);
    assert_eq!(blocked, ApiError::TooManyFailedAttempts { retry_after: 59 });
    let with_valid_key = auth_error(&world.store, world.owner_key.expose(), "203.0.113.7", T0 + 30_000);
    assert_eq!(with_valid_key, ApiError::TooManyFailedAttempts { retry_after: 30 });
    assert!(block_on(authenticate(&at(&world.store, T0 + 30_000), Some(world.owner_key.expose()), Some("198.51.100.1"), None)).is_ok());
    assert!(block_on(authenticate(&at(&world.store, T0 + 60_000), Some(world.owner_key.expose()), Some("203.0.113.7"), None)).is_ok());

    let audit = world.store.audit();
    let blocks: Vec<_> = audit.iter().filter(|e| e.action == "auth.ip_blocked").collect();
    assert_eq!(blocks.len(), 1, "audited once per block");
    assert_eq!(blocks[0].workspace_id, None, "operator-level entry");
    assert_eq!(blocks[0].ip.as_deref(), Some("203.0.113.7"));
}

#[test]
fn a_rate_limited_key_is_refused_past_its_limit_until_the_window_ends() {
    let world = world();
    let limited = issue(&world, NewKey { rate_limit: Some(RateLimit { limit: 2, window_seconds: 10 }), ..new_key("limited", None) });
    for hit in 1..=2u32 {
        let ok = block_on(authenticate(&at(&world.store, T0 + 1_000), Some(limited.expose()), None, None)).unwrap();
        assert_eq!(ok.rate.unwrap().remaining, 2 - hit);
    }
    let refused = block_on(authenticate(&at(&world.store, T0 + 1_000), Some(limited.expose()), None, None)).unwrap_err();
    assert_eq!(refused.error, ApiError::RateLimited { retry_after: 9 });
    assert_eq!(refused.rate.unwrap().remaining, 0);
    assert!(block_on(authenticate(&at(&world.store, T0 + 10_000), Some(limited.expose()), None, None)).is_ok());
}

#[test]
fn last_used_is_touched_at_most_once_a_minute() {
    let world = world();
    let first = block_on(authenticate(&at(&world.store, T0), Some(world.owner_key.expose()), None, None)).unwrap();
    assert!(first.needs_touch);
    let id = first.caller.key.id.clone();
    block_on(keywarden::store::KeyStore::touch_last_used(&world.store, &id, T0)).unwrap();
    let soon = block_on(authenticate(&at(&world.store, T0 + 59_000), Some(world.owner_key.expose()), None, None)).unwrap();
    assert!(!soon.needs_touch);
    let later = block_on(authenticate(&at(&world.store, T0 + 60_000), Some(world.owner_key.expose()), None, None)).unwrap();
    assert!(later.needs_touch);
}

#[test]
fn a_new_key_takes_the_workspace_defaults_when_no_capabilities_are_given() {
    let world = world();
    let (record, _) = block_on(service::create(&at(&world.store, T0), &world.owner, new_key("CI", None))).unwrap();
    assert_eq!(record.capabilities, caps(&["desktop:read", "desktop:chat"]));
}

#[test]
fn a_key_cannot_mint_a_broader_key() {
    let world = world();
    let minter = issue(&world, new_key("minter", Some(&["keys:write", "desktop:read"])));
    let minter = login(&world.store, &minter, T0);
    let refused = block_on(service::create(&at(&world.store, T0), &minter, new_key("x", Some(&["desktop:*"]))));
    assert_eq!(refused.unwrap_err(), ApiError::CapabilityEscalation { capability: "desktop:*".into() });
    let defaults = block_on(service::create(&at(&world.store, T0), &minter, new_key("x", None)));
    assert_eq!(defaults.unwrap_err(), ApiError::CapabilityEscalation { capability: "desktop:chat".into() });
    assert!(block_on(service::create(&at(&world.store, T0), &minter, new_key("x", Some(&["desktop:read"])))).is_ok());
}

#[test]
fn reserved_capabilities_gate_the_key_routes() {
    let world = world();
    let reader = login(&world.store, &issue(&world, new_key("reader", Some(&["keys:read"]))), T0);
    let error = block_on(service::create(&at(&world.store, T0), &reader, new_key("x", Some(&[])))).unwrap_err();
    assert_eq!(error, ApiError::MissingCapability { required: "keys:write".into() });
    assert!(block_on(service::get(&at(&world.store, 0), &reader, &reader.key.id)).is_ok());
}

#[test]
fn a_read_only_workspace_refuses_writes_but_serves_reads() {
    let world = world();
    let patch = WorkspacePatch { read_only: Some(true), ..Default::default() };
    block_on(workspaces::update(&at(&world.store, 0), &world.owner.workspace.id, &patch)).unwrap();
    let owner = login(&world.store, &world.owner_key, T0);
    let create = block_on(service::create(&at(&world.store, T0), &owner, new_key("x", None)));
    assert_eq!(create.unwrap_err(), ApiError::WorkspaceReadOnly);
    let revoke = block_on(service::revoke(&at(&world.store, T0), &owner, &owner.key.id));
    assert_eq!(revoke.unwrap_err(), ApiError::WorkspaceReadOnly);
    assert!(block_on(service::get(&at(&world.store, 0), &owner, &owner.key.id)).is_ok());
}

#[test]
fn revoking_twice_answers_the_first_time_and_audits_once() {
    let world = world();
    let key = issue(&world, new_key("k", None));
    let id = login(&world.store, &key, T0).key.id;
    let first = block_on(service::revoke(&at(&world.store, T0 + 5), &world.owner, &id)).unwrap();
    let again = block_on(service::revoke(&at(&world.store, T0 + 9), &world.owner, &id)).unwrap();
    assert_eq!(first.key.revoked_at, Some(T0 + 5));
    assert!(first.revoked_now, "the first revoke is the one that revoked it");
    assert_eq!(again.key.revoked_at, Some(T0 + 5));
    assert!(!again.revoked_now, "a repeat revokes nothing");
    let revocations = world.store.audit().iter().filter(|e| e.action == "key.revoked").count();
    assert_eq!(revocations, 1);
}

#[test]
fn another_workspaces_key_is_not_found() {
    let world = world();
    let other_owner = login(&world.store, &add_workspace(&world.store, "Other"), T0);
    let error = block_on(service::get(&at(&world.store, 0), &other_owner, &world.owner.key.id)).unwrap_err();
    assert_eq!(error, ApiError::NotFound);
    let error = block_on(service::revoke(&at(&world.store, T0), &other_owner, &world.owner.key.id)).unwrap_err();
    assert_eq!(error, ApiError::NotFound);
}

#[test]
fn reroll_keeps_the_old_key_for_its_grace_period_only() {
    let world = world();
    let old = issue(
        &world,
        NewKey { rate_limit: Some(RateLimit { limit: 9, window_seconds: 60 }), ..new_key("rolling", Some(&["desktop:read"])) },
    );
    let old_id = login(&world.store, &old, T0).key.id;
    let rerolled = block_on(service::reroll(&at(&world.store, T0), &world.owner, &old_id, 30, GraceStarts::Now)).unwrap();
    let (successor, new_key_text) = (rerolled.successor, rerolled.key);
    assert_eq!(rerolled.old_key_stops_at, T0 + 30_000);
    assert_eq!(successor.rerolled_from.as_deref(), Some(old_id.as_str()));
    assert_eq!(successor.name, "rolling");
    assert_eq!(successor.capabilities, caps(&["desktop:read"]));
    assert_eq!(successor.rate_limit, Some(RateLimit { limit: 9, window_seconds: 60 }));
    assert!(block_on(authenticate(&at(&world.store, T0 + 29_999), Some(old.expose()), None, None)).is_ok());
    assert!(block_on(authenticate(&at(&world.store, T0 + 30_000), Some(old.expose()), None, None)).is_err());
    assert!(block_on(authenticate(&at(&world.store, T0 + 30_000), Some(new_key_text.expose()), None, None)).is_ok());
}

#[test]
fn reroll_with_no_grace_ends_the_old_key_at_once_and_a_dead_key_cannot_be_rerolled() {
    let world = world();
    let old = issue(&world, new_key("rolling", None));
    let old_id = login(&world.store, &old, T0).key.id;
    block_on(service::reroll(&at(&world.store, T0), &world.owner, &old_id, 0, GraceStarts::Now)).unwrap();
    assert!(block_on(authenticate(&at(&world.store, T0), Some(old.expose()), None, None)).is_err());
    let again = block_on(service::reroll(&at(&world.store, T0 + 1), &world.owner, &old_id, 0, GraceStarts::Now));
    assert_eq!(again.unwrap_err(), ApiError::KeyRevoked);
}

#[test]
fn verify_answers_a_code_for_every_outcome() {
    let world = world();
    let verify_code = |presented: &str, required: &[&str], now: i64| {
        block_on(verify(&at(&world.store, now), &world.owner, presented, &asking(required))).unwrap().code
    };
    let chat = issue(&world, new_key("chat", Some(&["desktop:*"])));
    let expiring = issue(&world, NewKey { expiry: Expiry::InSeconds(1), ..new_key("e", None) });
    let limited = issue(&world, NewKey { rate_limit: Some(RateLimit { limit: 1, window_seconds: 60 }), ..new_key("l", None) });
    let revoked = issue(&world, new_key("r", None));
    let revoked_id = login(&world.store, &revoked, T0).key.id;
    block_on(service::revoke(&at(&world.store, T0), &world.owner, &revoked_id)).unwrap();
    let foreign = add_workspace(&world.store, "Other");

    assert_eq!(verify_code(chat.expose(), &["desktop:chat"], T0), VerifyCode::Valid);
    assert_eq!(verify_code("kw_live_nope", &[], T0), VerifyCode::Malformed);
    assert_eq!(verify_code(unknown_key().expose(), &[], T0), VerifyCode::NotFound);
    assert_eq!(verify_code(foreign.expose(), &[], T0), VerifyCode::NotFound);
    assert_eq!(verify_code(revoked.expose(), &[], T0 + 1), VerifyCode::Revoked);
    assert_eq!(verify_code(expiring.expose(), &[], T0 + 1_000), VerifyCode::Expired);
    assert_eq!(verify_code(chat.expose(), &["keys:read"], T0), VerifyCode::InsufficientCapabilities);
    assert_eq!(verify_code(limited.expose(), &[], T0), VerifyCode::Valid);
    assert_eq!(verify_code(limited.expose(), &[], T0), VerifyCode::RateLimited);
}

#[test]
fn verify_does_not_spend_another_workspaces_rate_limit() {
    let world = world();
    let other = add_workspace(&world.store, "Other");
    let other_owner = login(&world.store, &other, T0);
    let limited = block_on(service::create(
        &at(&world.store, T0),
        &other_owner,
        NewKey { rate_limit: Some(RateLimit { limit: 1, window_seconds: 60 }), ..new_key("l", None) },
    ))
    .unwrap()
    .1;
    for _ in 0..3 {
        block_on(verify(&at(&world.store, T0), &world.owner, limited.expose(), &asking(&[]))).unwrap();
    }
    assert!(block_on(authenticate(&at(&world.store, T0), Some(limited.expose()), None, None)).is_ok());
}

#[test]
fn a_leak_report_revokes_live_keys_of_any_workspace_and_labels_each_token() {
    let world = world();
    let other = add_workspace(&world.store, "Other");
    let reports: Vec<LeakReport> = [world.owner_key.expose(), other.expose(), "kw_live_not_ours", unknown_key().expose()]
        .iter()
        .map(|token| LeakReport { token: token.to_string(), kind: None, url: Some("https://gist.example/x".into()), source: None })
        .collect();
    let labels = block_on(leaks::report(&at(&world.store, T0), &reports, None, Reporter::Operator)).unwrap().0;
    let positives: Vec<bool> = labels.iter().map(|l| l.true_positive).collect();
    assert_eq!(positives, vec![true, true, false, false]);
    assert_eq!(labels[0].token_hash, world.owner_key.hash());
    assert!(block_on(authenticate(&at(&world.store, T0), Some(world.owner_key.expose()), None, None)).is_err());
    let again = block_on(leaks::report(&at(&world.store, T0 + 1), &reports, None, Reporter::Operator)).unwrap().0;
    assert_eq!(again.iter().map(|l| l.true_positive).collect::<Vec<_>>(), positives, "a retried report labels the same");
    let audit = format!("{:?}", world.store.audit());
    assert!(!audit.contains(world.owner_key.expose()), "token in audit");
    assert_eq!(world.store.audit().iter().filter(|e| e.action == "leaks.reported").count(), 2, "each report on the operator trail");
}

#[test]
fn a_token_quoted_in_the_reports_url_never_reaches_the_audit_trail() {
    let world = world();
    let token = world.owner_key.expose().to_string();
    let reports = vec![LeakReport {
        token: token.clone(),
        kind: Some(token.clone()),
        url: Some(format!("https://paste.example/raw?key={token}")),
        source: Some(format!("found {token} in a commit")),
    }];
    let labels = block_on(leaks::report(&at(&world.store, T0), &reports, None, Reporter::Operator)).unwrap().0;
    assert!(labels[0].true_positive);
    let audit = format!("{:?}", world.store.audit());
    assert!(!audit.contains(&token), "token in audit: {audit}");
    assert!(audit.contains("https://paste.example/raw?key=[redacted]"));
}

#[test]
fn a_workspace_leak_report_touches_only_that_workspace() {
    let world = world();
    let other = add_workspace(&world.store, "Other");
    let reports = vec![LeakReport { token: other.expose().to_string(), kind: None, url: None, source: None }];
    let labels = block_on(leaks::report(&at(&world.store, T0), &reports, Some(&world.owner.workspace.id), Reporter::Webhook)).unwrap().0;
    assert!(!labels[0].true_positive);
    assert!(block_on(authenticate(&at(&world.store, T0), Some(other.expose()), None, None)).is_ok());
}

#[test]
fn an_expired_key_reported_as_leaked_is_a_false_positive() {
    let world = world();
    let brief = issue(&world, NewKey { expiry: Expiry::InSeconds(1), ..new_key("brief", None) });
    let reports = vec![LeakReport { token: brief.expose().to_string(), kind: None, url: None, source: None }];
    let labels = block_on(leaks::report(&at(&world.store, T0 + 1_000), &reports, None, Reporter::Operator)).unwrap().0;
    assert!(!labels[0].true_positive);
}

/// A key holding only `keys:read` and `keys:write`, as a delegated admin script would.
fn key_manager(world: &World) -> Caller {
    let key = issue(world, new_key("script", Some(&["keys:read", "keys:write"])));
    login(&world.store, &key, T0)
}

#[test]
fn a_key_writer_cannot_reroll_the_owner_key_into_its_rights() {
    let world = world();
    let manager = key_manager(&world);
    let error = block_on(service::reroll(&at(&world.store, T0), &manager, &world.owner.key.id, 0, GraceStarts::Now)).unwrap_err();
    assert_eq!(error, ApiError::CapabilityEscalation { capability: "*".into() });
    assert!(block_on(authenticate(&at(&world.store, T0 + 1), Some(world.owner_key.expose()), None, None)).is_ok(), "owner key still live");
}

#[test]
fn a_key_writer_cannot_revoke_the_owner_key() {
    let world = world();
    let manager = key_manager(&world);
    let error = block_on(service::revoke(&at(&world.store, T0), &manager, &world.owner.key.id)).unwrap_err();
    assert_eq!(error, ApiError::CapabilityEscalation { capability: "*".into() });
    assert!(block_on(authenticate(&at(&world.store, T0 + 1), Some(world.owner_key.expose()), None, None)).is_ok(), "owner key still live");
}

#[test]
fn a_key_writer_manages_keys_no_wider_than_itself() {
    let world = world();
    let manager = key_manager(&world);
    let reader = issue(&world, new_key("reader", Some(&["keys:read"])));
    let reader_id = login(&world.store, &reader, T0).key.id;
    assert!(block_on(service::reroll(&at(&world.store, T0), &manager, &reader_id, 0, GraceStarts::Now)).is_ok());
    let self_id = manager.key.id.clone();
    assert!(block_on(service::revoke(&at(&world.store, T0 + 1), &manager, &self_id)).is_ok(), "a key may revoke itself");
}

/// A key bounded in every way a child could escape: an hour to live, 20 requests an hour,
/// acting for a user.
fn bounded_parent(world: &World) -> Caller {
    let new = NewKey {
        subject: Some(serde_json::json!({"role": "user"})),
        expiry: Expiry::InSeconds(3_600),
        rate_limit: Some(RateLimit { limit: 20, window_seconds: 3_600 }),
        ..new_key("bounded", Some(&["keys:write", "keys:read"]))
    };
    let key = issue(world, new);
    login(&world.store, &key, T0)
}

fn escalated_field(result: Result<(keywarden::keys::KeyRecord, PlatformKey), ApiError>) -> String {
    match result {
        Err(ApiError::BoundEscalation { field }) => field,
        other => panic!("expected capability_escalation with a field, got {other:?}"),
    }
}

#[test]
fn a_child_key_inherits_its_parents_expiry_rate_limit_and_subject() {
    let world = world();
    let parent = bounded_parent(&world);
    let (child, _) = block_on(service::create(&at(&world.store, T0), &parent, new_key("child", Some(&["keys:read"])))).unwrap();
    assert_eq!(child.expires_at, parent.key.expires_at);
    assert_eq!(child.rate_limit, parent.key.rate_limit);
    assert_eq!(child.subject, Some(serde_json::json!({"role": "user"})));
}

#[test]
fn a_child_key_may_not_outlive_loosen_or_change_the_identity_of_its_parent() {
    let world = world();
    let parent = bounded_parent(&world);
    let create = |new: NewKey| block_on(service::create(&at(&world.store, T0), &parent, new));
    let later = NewKey { expiry: Expiry::InSeconds(7_200), ..new_key("later", Some(&["keys:read"])) };
    assert_eq!(escalated_field(create(later)), "expires_at");
    let looser = NewKey { rate_limit: Some(RateLimit { limit: 1_000, window_seconds: 3_600 }), ..new_key("looser", Some(&["keys:read"])) };
    assert_eq!(escalated_field(create(looser)), "rate_limit");
    let admin = NewKey { subject: Some(serde_json::json!({"role": "admin"})), ..new_key("admin", Some(&["keys:read"])) };
    assert_eq!(escalated_field(create(admin)), "subject");
    let keys = world.store.keys();
    assert!(!keys.iter().any(|k| ["later", "looser", "admin"].contains(&k.name.as_str())), "a refused child was stored");
}

#[test]
fn a_bounded_key_cannot_reroll_an_unbounded_key() {
    let world = world();
    let parent = bounded_parent(&world);
    let unbounded = issue(&world, new_key("unbounded", Some(&["keys:read"])));
    let unbounded_id = login(&world.store, &unbounded, T0).key.id;
    let error = block_on(service::reroll(&at(&world.store, T0), &parent, &unbounded_id, 0, GraceStarts::Now)).unwrap_err();
    assert_eq!(error, ApiError::BoundEscalation { field: "expires_at".into() });
}

#[test]
fn a_write_by_a_key_revoked_since_it_authenticated_is_refused() {
    let world = world();
    let manager = key_manager(&world);
    // Both requests arrived (and authenticated) at T0, before the revocation at T0 + 1.
    block_on(service::revoke(&at(&world.store, T0 + 1), &world.owner, &manager.key.id)).unwrap();
    let error = block_on(service::create(&at(&world.store, T0), &manager, new_key("late", Some(&["keys:read"])))).unwrap_err();
    assert_eq!(error, ApiError::Unauthorized);
    let error = block_on(service::reroll(&at(&world.store, T0), &manager, &manager.key.id, 0, GraceStarts::Now)).unwrap_err();
    assert_eq!(error, ApiError::Unauthorized);
    assert!(!world.store.keys().iter().any(|k| k.name == "late" || k.rerolled_from.as_deref() == Some(&manager.key.id)));
}

#[test]
fn a_write_in_a_workspace_made_read_only_since_it_authenticated_is_refused() {
    let world = world();
    let patch = WorkspacePatch { read_only: Some(true), ..WorkspacePatch::default() };
    block_on(workspaces::update(&at(&world.store, 0), &world.owner.workspace.id, &patch)).unwrap();
    let error = block_on(service::create(&at(&world.store, T0 + 1), &world.owner, new_key("late", None))).unwrap_err();
    assert_eq!(error, ApiError::WorkspaceReadOnly);
    assert!(!world.store.keys().iter().any(|k| k.name == "late"));
}

fn leaked(token: &str) -> LeakReport {
    LeakReport { token: token.to_string(), kind: None, url: None, source: None }
}

fn set_endpoint(world: &World) {
    let keks = Keks::parse("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let workspace = &world.owner.workspace.id;
    let audit = AuditEvent::new(Some(workspace), "notifications.endpoint_set", T0);
    block_on(secrets::set_endpoint(
        &with(&world.store, &Offline, &keks, T0),
        &Precondition::unconditional(workspace),
        "https://hooks.example.com/k",
        audit,
    ))
    .unwrap();
}

#[test]
fn a_key_revoked_by_a_leak_report_stays_a_true_positive_and_one_revoked_otherwise_a_false_one() {
    let world = world();
    let (by_leak, by_hand) = (issue(&world, new_key("leaked", None)), issue(&world, new_key("revoked", None)));
    let by_hand_id = login(&world.store, &by_hand, T0).key.id;
    block_on(service::revoke(&at(&world.store, T0), &world.owner, &by_hand_id)).unwrap();
    let first = block_on(leaks::report(&at(&world.store, T0 + 1), &[leaked(by_leak.expose())], None, Reporter::Operator)).unwrap().0;
    assert!(first[0].true_positive);
    for scope in [None, Some(world.owner.workspace.id.as_str())] {
        let retried = block_on(leaks::report(
            &at(&world.store, T0 + 2),
            &[leaked(by_leak.expose()), leaked(by_hand.expose())],
            scope,
            Reporter::Operator,
        ));
        let labels: Vec<bool> = retried.unwrap().0.iter().map(|l| l.true_positive).collect();
        assert_eq!(labels, vec![true, false], "scope {scope:?}");
    }
    let leaked_entries = world.store.audit().iter().filter(|e| e.action == "key.leaked").count();
    assert_eq!(leaked_entries, 2, "a retry audits nothing again (one workspace and one operator entry)");
}

#[test]
fn a_report_of_a_thousand_live_keys_revokes_audits_and_queues_every_one() {
    let world = world();
    set_endpoint(&world);
    let tokens: Vec<PlatformKey> = (0..1_000).map(|i| issue(&world, new_key(&format!("k{i}"), None))).collect();
    let reports: Vec<LeakReport> = tokens.iter().map(|t| leaked(t.expose())).collect();
    let (labels, revoked) = block_on(leaks::report(&at(&world.store, T0 + 1), &reports, None, Reporter::Operator)).unwrap();
    assert!(labels.iter().all(|l| l.true_positive));
    assert_eq!(revoked.len(), 1_000);
    let audit = world.store.audit();
    let count = |action: &str, operator: bool| audit.iter().filter(|e| e.action == action && e.workspace_id.is_none() == operator).count();
    assert_eq!((count("key.leaked", false), count("key.leaked", true)), (1_000, 1_000));
    let summary = audit.iter().find(|e| e.action == "leaks.reported").expect("summary");
    assert_eq!((summary.detail["tokens"].as_u64(), summary.detail["revoked"].as_array().map(Vec::len)), (Some(1_000), Some(1_000)));
    let outbox = world.store.outbox();
    assert_eq!(outbox.iter().filter(|row| row.event_type == "api_key.revoked").count(), 1_000);
    assert_eq!(outbox.iter().filter(|row| row.event_type == "api_key.leaked").count(), 1_000);
    let revoked_notice = outbox.iter().find(|row| row.event_type == "api_key.revoked").unwrap();
    assert_eq!(revoked_notice.payload()["data"]["reason"], "leaked");
}

#[test]
fn a_planned_revocation_whose_key_was_revoked_meanwhile_writes_nothing_for_it() {
    let world = world();
    let key = issue(&world, new_key("raced", None));
    let live = block_on(world.store.live_keys_by_hashes(&[key.hash()], None, T0)).unwrap();
    assert_eq!(live.len(), 1);
    block_on(service::revoke(&at(&world.store, T0), &world.owner, &live[0].0.id)).unwrap();
    let before = world.store.audit().len();
    let plan = LeakPlan {
        key_hashes: &[key.hash()],
        workspace_id: None,
        now_ms: T0 + 1,
        revocations: vec![PlannedRevocation {
            key_id: live[0].0.id.clone(),
            workspace_id: live[0].0.workspace_id.clone(),
            grace_ms: Some(0),
            audit: vec![AuditEvent::new(None, "key.leaked", T0 + 1)],
            notifications: vec![OutboxEvent::new(&live[0].0.workspace_id, "api_key.revoked", serde_json::json!({}), T0 + 1)],
        }],
        summary: Some(AuditEvent::new(None, "leaks.reported", T0 + 1)),
    };
    let outcome = block_on(world.store.revoke_leaked(&plan)).unwrap();
    assert_eq!(outcome, LeakRevocation::default(), "nothing revoked, and not a leak's revocation");
    let audit = world.store.audit();
    assert_eq!(audit.len(), before + 1, "only the summary");
    assert_eq!(audit.last().unwrap().detail["revoked"], serde_json::json!([]));
}

/// The world's owner, signed in again after the workspace got a lifetime policy of `seconds`.
fn under_lifetime_policy(world: &World, seconds: u64) -> Caller {
    let patch = WorkspacePatch { max_key_lifetime_seconds: Some(Some(seconds)), ..Default::default() };
    block_on(workspaces::update(&at(&world.store, T0), &world.owner.workspace.id, &patch)).unwrap();
    login(&world.store, &world.owner_key, T0)
}

fn lifetime_refusal(result: Result<impl std::fmt::Debug, ApiError>) -> (String, u64) {
    match result {
        Err(ApiError::LifetimeExceedsPolicy { field, max_seconds }) => (field, max_seconds),
        other => panic!("expected lifetime_exceeds_policy, got {other:?}"),
    }
}

#[test]
fn a_lifetime_policy_refuses_a_key_without_an_expiry() {
    let world = world();
    let owner = under_lifetime_policy(&world, 3_600);
    let refused =
        block_on(service::create(&at(&world.store, T0), &owner, new_key("forever", Some(&["keys:read"])))).map(|(record, _)| record);
    assert_eq!(lifetime_refusal(refused), ("expires_at".to_string(), 3_600));
}

#[test]
fn a_lifetime_policy_refuses_an_expiry_beyond_it_naming_the_field_sent() {
    let world = world();
    let owner = under_lifetime_policy(&world, 3_600);
    let too_long = NewKey { expiry: Expiry::InSeconds(3_601), ..new_key("long", Some(&["keys:read"])) };
    let refused = block_on(service::create(&at(&world.store, T0), &owner, too_long)).map(|(record, _)| record);
    assert_eq!(lifetime_refusal(refused).0, "expires_in");
    let at_limit = NewKey { expiry: Expiry::InSeconds(3_600), ..new_key("exact", Some(&["keys:read"])) };
    assert!(block_on(service::create(&at(&world.store, T0), &owner, at_limit)).is_ok(), "exactly the policy's lifetime is allowed");
}

#[test]
fn a_lifetime_policy_refuses_rerolling_a_key_that_never_expires() {
    let world = world();
    let forever = block_on(service::create(&at(&world.store, T0), &world.owner, new_key("old", Some(&["keys:read"])))).unwrap().0;
    let owner = under_lifetime_policy(&world, 3_600);
    let refused =
        block_on(service::reroll(&at(&world.store, T0), &owner, &forever.id, 0, GraceStarts::Now)).map(|rerolled| rerolled.successor);
    assert_eq!(lifetime_refusal(refused).0, "expires_at");
    assert_eq!(world.store.keys().iter().filter(|k| k.rerolled_from.as_deref() == Some(&forever.id)).count(), 0, "no successor");
}

#[test]
fn removing_the_lifetime_policy_admits_keys_without_an_expiry_again() {
    let world = world();
    under_lifetime_policy(&world, 3_600);
    let patch = WorkspacePatch { max_key_lifetime_seconds: Some(None), ..Default::default() };
    let workspace = block_on(workspaces::update(&at(&world.store, T0), &world.owner.workspace.id, &patch)).unwrap();
    assert_eq!(workspace.max_key_lifetime_seconds, None);
    let owner = login(&world.store, &world.owner_key, T0);
    assert!(block_on(service::create(&at(&world.store, T0), &owner, new_key("forever", Some(&["keys:read"])))).is_ok());
}

/// The world's workspace with a leak policy, and a fresh key of it reported leaked at T0 + 1.
fn leak_under(policy: keywarden::keys::LeakPolicy) -> (World, PlatformKey, Vec<keywarden::keys::leaks::LeakLabel>) {
    let world = world();
    set_endpoint(&world);
    let patch = WorkspacePatch { leak_policy: Some(policy), ..Default::default() };
    block_on(workspaces::update(&at(&world.store, T0), &world.owner.workspace.id, &patch)).unwrap();
    let token = issue(&world, new_key("leaky", Some(&["keys:read"])));
    let (labels, _) = block_on(leaks::report(&at(&world.store, T0 + 1), &[leaked(token.expose())], None, Reporter::GitHub)).unwrap();
    (world, token, labels)
}

fn leaked_notice(world: &World) -> serde_json::Value {
    world.store.outbox().into_iter().find(|row| row.event_type == "api_key.leaked").expect("api_key.leaked queued").payload()
}

#[test]
fn the_expire_policy_keeps_a_leaked_key_working_for_its_grace_then_it_stops() {
    use keywarden::keys::{LeakAction, LeakPolicy};
    let (world, token, labels) = leak_under(LeakPolicy { action: LeakAction::Expire, grace_seconds: 600 });
    assert!(labels[0].true_positive);
    assert!(block_on(authenticate(&at(&world.store, T0 + 599_000), Some(token.expose()), None, None)).is_ok(), "within the grace");
    assert!(block_on(authenticate(&at(&world.store, T0 + 601_001), Some(token.expose()), None, None)).is_err(), "after it");
    let notice = leaked_notice(&world);
    assert_eq!(
        (notice["data"]["action"].as_str(), notice["data"]["expires_at"].as_str()),
        (Some("expire"), Some(keywarden::time::rfc3339(T0 + 1 + 600_000).as_str()))
    );
    assert!(world.store.outbox().iter().all(|row| row.event_type != "api_key.revoked"), "not revoked yet: no api_key.revoked");
}

#[test]
fn the_notify_policy_only_tells_and_the_key_keeps_working() {
    use keywarden::keys::{LeakAction, LeakPolicy};
    let (world, token, labels) = leak_under(LeakPolicy { action: LeakAction::Notify, grace_seconds: 0 });
    assert!(labels[0].true_positive, "a live key of ours: true positive, whatever the policy");
    assert!(block_on(authenticate(&at(&world.store, T0 + 2), Some(token.expose()), None, None)).is_ok());
    let notice = leaked_notice(&world);
    assert_eq!(notice["data"]["action"], "notify");
    assert_eq!(notice["data"]["expires_at"], serde_json::Value::Null);
    assert_eq!(world.store.audit().iter().filter(|e| e.action == "key.leaked").count(), 2, "audited in the workspace and for the operator");
}

#[test]
fn the_revoke_policy_is_the_default_and_stops_the_key_at_once() {
    let (world, token, _) = leak_under(keywarden::keys::LeakPolicy::default());
    assert!(block_on(authenticate(&at(&world.store, T0 + 2), Some(token.expose()), None, None)).is_err());
    assert_eq!(leaked_notice(&world)["data"]["action"], "revoke");
}

#[test]
fn with_grace_from_first_use_the_old_key_works_until_the_successor_is_used_then_for_the_grace() {
    let world = world();
    let old = issue(&world, new_key("rolled", Some(&["keys:read"])));
    let old_id = login(&world.store, &old, T0).key.id;
    let rerolled = block_on(service::reroll(&at(&world.store, T0), &world.owner, &old_id, 60, GraceStarts::FirstUse)).unwrap();
    let day = 86_400_000;
    assert!(
        block_on(authenticate(&at(&world.store, T0 + 3 * day), Some(old.expose()), None, None)).is_ok(),
        "unused successor: the old key works on"
    );
    block_on(authenticate(&at(&world.store, T0 + 3 * day + 1_000), Some(rerolled.key.expose()), None, None)).expect("the successor works");
    assert!(block_on(authenticate(&at(&world.store, T0 + 3 * day + 60_000), Some(old.expose()), None, None)).is_ok(), "within the grace");
    assert!(block_on(authenticate(&at(&world.store, T0 + 3 * day + 61_001), Some(old.expose()), None, None)).is_err(), "after it");
    let successor = world.store.keys().into_iter().find(|k| k.id == rerolled.successor.id).unwrap();
    assert_eq!(successor.old_key_grace_ms, None, "the first use started it, once");
}

#[test]
fn with_grace_from_first_use_the_old_key_stops_after_thirty_days_at_most() {
    let world = world();
    let old = issue(&world, new_key("rolled", Some(&["keys:read"])));
    let old_id = login(&world.store, &old, T0).key.id;
    block_on(service::reroll(&at(&world.store, T0), &world.owner, &old_id, 60, GraceStarts::FirstUse)).unwrap();
    let cap = service::FIRST_USE_GRACE_CAP_MS;
    assert!(block_on(authenticate(&at(&world.store, T0 + cap - 1), Some(old.expose()), None, None)).is_ok());
    assert!(block_on(authenticate(&at(&world.store, T0 + cap + 1), Some(old.expose()), None, None)).is_err(), "30 days in all");
}

fn allowlist(entries: &[&str]) -> Option<keywarden::keys::allowlist::Allowlist> {
    Some(keywarden::keys::allowlist::Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap())
}

fn metered(name: &str, remaining: u64) -> NewKey {
    NewKey { credits: Some((remaining, None)), ..new_key(name, Some(&["*"])) }
}

fn verify_with(world: &World, key: &PlatformKey, ip: Option<&str>, cost: u64) -> VerifyCode {
    let asked = Verification { required: caps(&[]), ip: ip.map(str::to_string), cost };
    block_on(verify(&at(&world.store, T0), &world.owner, key.expose(), &asked)).unwrap().code
}

#[test]
fn a_key_with_an_allowlist_is_refused_from_elsewhere_without_counting_a_failure() {
    let world = world();
    let pinned = issue(&world, NewKey { allowed_ips: allowlist(&["192.0.2.0/24", "2001:db8::/32"]), ..new_key("server", None) });
    assert!(block_on(authenticate(&at(&world.store, T0), Some(pinned.expose()), Some("192.0.2.44"), None)).is_ok());
    assert!(block_on(authenticate(&at(&world.store, T0), Some(pinned.expose()), Some("2001:db8::5"), None)).is_ok());
    for _ in 0..12 {
        assert_eq!(auth_error(&world.store, pinned.expose(), "198.51.100.7", T0), ApiError::IpNotAllowed);
    }
    assert!(block_on(authenticate(&at(&world.store, T0), Some(pinned.expose()), Some("192.0.2.44"), None)).is_ok(), "no block");
}

#[test]
fn verify_checks_an_ip_only_when_it_is_given() {
    let world = world();
    let pinned = issue(&world, NewKey { allowed_ips: allowlist(&["203.0.113.7"]), ..new_key("server", None) });
    assert_eq!(verify_with(&world, &pinned, Some("203.0.113.8"), 1), VerifyCode::IpNotAllowed);
    assert_eq!(verify_with(&world, &pinned, Some("::ffff:203.0.113.7"), 1), VerifyCode::Valid);
    assert_eq!(verify_with(&world, &pinned, None, 1), VerifyCode::Valid);
}

#[test]
fn each_authentication_spends_one_credit_and_then_credits_are_exhausted() {
    let world = world();
    let key = issue(&world, metered("metered", 2));
    for _ in 0..2 {
        assert!(block_on(authenticate(&at(&world.store, T0), Some(key.expose()), None, None)).is_ok());
    }
    assert_eq!(auth_error(&world.store, key.expose(), "10.0.0.1", T0), ApiError::CreditsExhausted);
    assert_eq!(ApiError::CreditsExhausted.status(), 429);
}

#[test]
fn a_request_refused_for_a_missing_capability_spends_no_credit() {
    let world = world();
    let key = issue(&world, NewKey { credits: Some((1, None)), ..new_key("reader", Some(&["desktop:read"])) });
    let refused = block_on(authenticate(&at(&world.store, T0), Some(key.expose()), None, Some("keys:write"))).unwrap_err();
    assert_eq!(refused.error, ApiError::MissingCapability { required: "keys:write".into() });
    let allowed = block_on(authenticate(&at(&world.store, T0), Some(key.expose()), None, Some("desktop:read"))).unwrap();
    assert_eq!(allowed.caller.key.credits.map(|c| c.remaining), Some(0), "the one credit went to the allowed request");
}

#[test]
fn verify_spends_its_cost_exactly_and_never_overdraws() {
    let world = world();
    let (record, key) = block_on(service::create(&at(&world.store, T0), &world.owner, metered("metered", 300))).unwrap();
    let codes: Vec<VerifyCode> = (0..200).map(|_| verify_with(&world, &key, None, 3)).collect();
    assert_eq!(codes.iter().filter(|c| **c == VerifyCode::Valid).count(), 100);
    assert_eq!(codes.iter().filter(|c| **c == VerifyCode::UsageExceeded).count(), 100);
    let stored = block_on(world.store.key_by_id(&record.id)).unwrap().unwrap();
    assert_eq!(stored.credits.map(|c| c.remaining), Some(0));
    assert_eq!(verify_with(&world, &key, None, 0), VerifyCode::Valid, "a cost of 0 fits an empty balance");
}

#[test]
fn credits_can_be_added_or_set_and_a_reroll_carries_them_with_the_allowlist() {
    use keywarden::keys::authority::CreditChange;
    let world = world();
    let new = NewKey { allowed_ips: allowlist(&["10.0.0.0/8"]), ..metered("metered", 5) };
    let id = block_on(service::create(&at(&world.store, T0), &world.owner, new)).unwrap().0.id;
    let added = block_on(service::change_credits(&at(&world.store, T0), &world.owner, &id, CreditChange::Add(10))).unwrap();
    assert_eq!(added.credits.map(|c| c.remaining), Some(15));
    let set = block_on(service::change_credits(&at(&world.store, T0), &world.owner, &id, CreditChange::Set(2))).unwrap();
    assert_eq!(set.credits.map(|c| c.remaining), Some(2));
    let rerolled = block_on(service::reroll(&at(&world.store, T0 + 1), &world.owner, &id, 3_600, GraceStarts::Now)).unwrap();
    assert_eq!(rerolled.successor.credits.map(|c| c.remaining), Some(2));
    let old = block_on(world.store.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(old.credits.map(|c| (c.remaining, c.refill)), Some((0, None)), "the balance moved: two keys never spend it twice");
    assert_eq!(rerolled.successor.allowed_ips.map(|l| l.to_strings()), Some(vec!["10.0.0.0/8".to_string()]));
    let details: Vec<serde_json::Value> =
        world.store.audit().into_iter().filter(|e| e.action == "key.credits_changed").map(|e| e.detail).collect();
    assert_eq!(
        details,
        vec![serde_json::json!({"add": 10, "remaining": 15}), serde_json::json!({"set": 2, "remaining": 2})],
        "each change audited in its own batch, with the balance after"
    );
}

#[test]
fn usage_is_counted_per_key_and_hour_by_outcome() {
    let world = world();
    let new = NewKey { allowed_ips: allowlist(&["192.0.2.1"]), credits: Some((1, None)), ..new_key("reader", Some(&["desktop:read"])) };
    let (record, key) = block_on(service::create(&at(&world.store, T0), &world.owner, new)).unwrap();
    let hour = T0 - T0.rem_euclid(3_600_000);
    block_on(authenticate(&at(&world.store, T0), Some(key.expose()), Some("192.0.2.1"), None)).unwrap();
    let _ = block_on(authenticate(&at(&world.store, T0 + 1), Some(key.expose()), Some("192.0.2.1"), None));
    let _ = block_on(authenticate(&at(&world.store, T0 + 2), Some(key.expose()), Some("192.0.2.9"), None));
    let _ = block_on(authenticate(&at(&world.store, T0 + 3_600_000), Some(key.expose()), Some("192.0.2.1"), Some("keys:nope")));
    let rows = block_on(world.store.usage(&world.owner.workspace.id, &[record.id], 0, i64::MAX, 3_600_000)).unwrap();
    let by_hour: Vec<(i64, [u64; 5])> = rows.iter().map(|(_, hour, counts)| (*hour, counts.0)).collect();
    assert_eq!(by_hour, vec![(hour, [1, 0, 1, 0, 1]), (hour + 3_600_000, [0, 0, 0, 1, 0])]);
}

#[test]
fn usage_counted_by_several_objects_in_one_hour_adds_up_and_a_rewrite_changes_nothing() {
    use keywarden::keys::authority::UsageRow;
    use keywarden::keys::usage::Counts;
    let world = world();
    let (record, key) = block_on(service::create(&at(&world.store, T0), &world.owner, new_key("moved", None))).unwrap();
    let hour = T0 - T0.rem_euclid(3_600_000);
    let row = |valid| UsageRow {
        key_id: record.id.clone(),
        workspace_id: world.owner.workspace.id.clone(),
        hour_start: hour,
        counts: Counts([valid, 0, 0, 0, 0]),
    };
    // One use counted without the authority, then the key served by one object, then, after a
    // new layout, by another.
    block_on(authenticate(&at(&world.store, T0), Some(key.expose()), None, None)).unwrap();
    block_on(world.store.record_usage("object-a", &[row(3)])).unwrap();
    block_on(world.store.record_usage("object-b", &[row(2)])).unwrap();
    block_on(world.store.record_usage("object-a", &[row(3)])).unwrap();
    block_on(world.store.record_usage("object-a", &[row(1)])).unwrap();
    let rows = block_on(world.store.usage(&world.owner.workspace.id, std::slice::from_ref(&record.id), 0, i64::MAX, 3_600_000)).unwrap();
    let valid: Vec<u64> = rows.iter().map(|(_, _, counts)| counts.0[0]).collect();
    assert_eq!(valid, vec![1 + 3 + 2], "every counter's uses, each counted once; a late, lower count lowers nothing");
}

#[test]
fn a_reroll_that_fails_to_commit_gives_the_old_key_its_credits_and_refill_back() {
    use keywarden::keys::credits::{Interval, Refill};
    let world = world();
    let refill = Refill { amount: 10, interval: Interval::Day };
    let new = NewKey { credits: Some((7, Some(refill))), ..new_key("metered", None) };
    let (record, _) = block_on(service::create(&at(&world.store, T0), &world.owner, new)).unwrap();
    // D1 refusing the reroll's batch, after the balance was taken for the successor.
    world.store.execute(
        "CREATE TRIGGER refuse_successors BEFORE INSERT ON api_keys WHEN NEW.rerolled_from IS NOT NULL \
         BEGIN SELECT RAISE(ABORT, 'injected'); END",
        &[],
    );
    let refused = block_on(service::reroll(&at(&world.store, T0 + 1), &world.owner, &record.id, 3_600, GraceStarts::Now));
    assert!(refused.is_err(), "the reroll fails: {refused:?}");
    let old = block_on(world.store.key_by_id(&record.id)).unwrap().unwrap();
    assert_eq!(old.credits.map(|c| (c.remaining, c.refill)), Some((7, Some(refill))), "nothing lost with the failed reroll");
    assert_eq!(world.store.count("api_keys"), 2, "the owner key and the old key, no successor");
}

#[test]
fn a_credits_change_by_a_caller_revoked_or_made_read_only_since_it_authenticated_changes_nothing() {
    use keywarden::keys::authority::CreditChange;
    let world = world();
    let id = block_on(service::create(&at(&world.store, T0), &world.owner, metered("metered", 5))).unwrap().0.id;
    // `world.owner` authenticated before both: its view of itself and its workspace is stale.
    let patch = WorkspacePatch { read_only: Some(true), ..Default::default() };
    block_on(workspaces::update(&at(&world.store, T0), &world.owner.workspace.id, &patch)).unwrap();
    let refused = block_on(service::change_credits(&at(&world.store, T0 + 1), &world.owner, &id, CreditChange::Add(100)));
    assert_eq!(refused.unwrap_err(), ApiError::WorkspaceReadOnly);
    let patch = WorkspacePatch { read_only: Some(false), ..Default::default() };
    block_on(workspaces::update(&at(&world.store, T0), &world.owner.workspace.id, &patch)).unwrap();
    block_on(service::revoke(&at(&world.store, T0 + 2), &world.owner, &world.owner.key.id)).unwrap();
    let refused = block_on(service::change_credits(&at(&world.store, T0 + 3), &world.owner, &id, CreditChange::Set(1000)));
    assert_eq!(refused.unwrap_err(), ApiError::Unauthorized);
    let stored = block_on(world.store.key_by_id(&id)).unwrap().unwrap();
    assert_eq!(stored.credits.map(|c| c.remaining), Some(5), "neither change was made");
    assert!(!world.store.audit().iter().any(|e| e.action == "key.credits_changed"), "nor audited");
}
