//! The key authority's rules (`keys::authority`), over the ledger SQL a Durable Object runs,
//! here on an in-memory SQLite that outlives each "restart".

use keywarden::keys::authority::CreditChange;
use keywarden::keys::authority::{Admission, Authority, Counter, Ledger, Lookup, HOLD_TIMEOUT_MS, WHOLE_WORKSPACE};
use keywarden::keys::credits::{Calendar, Credits};
use keywarden::keys::store::RateHits;
use keywarden::keys::usage::{Ask, Outcome};
use keywarden::keys::{Capabilities, KeyRecord, RateLimit, Workspace};
use keywarden::store::authority_ledger::SqlLedger;
use keywarden::store::sqlite::ObjectSqlite;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// A request that asks nothing of the key but to be live: one credit, any address.
static ASK: Ask = Ask { ip: None, check_ip: false, capabilities: Vec::new(), cost: 1 };

fn workspace(read_only: bool) -> Workspace {
    Workspace {
        id: "ws_a".into(),
        name: "Acme".into(),
        read_only,
        default_capabilities: Capabilities::default(),
        created_at: 0,
        max_key_lifetime_seconds: None,
        leak_policy: Default::default(),
        metered_fallback: Default::default(),
    }
}

fn key(id: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        workspace_id: "ws_a".into(),
        name: format!("key {id}"),
        key_hash: format!("hash_{id}"),
        prefix: "kw_live_".into(),
        last4: "abcd".into(),
        capabilities: Capabilities::parse(&["keys:read"]).unwrap(),
        subject: None,
        rate_limit: None,
        created_at: 0,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        rerolled_from: None,
        old_key_grace_ms: None,
        allowed_ips: None,
        credits: None,
    }
}

fn limited(id: &str, limit: u32) -> KeyRecord {
    KeyRecord { rate_limit: Some(RateLimit { limit, window_seconds: 60 }), ..key(id) }
}

/// An object that has read `key` through from the catalogue once, at `now`.
fn serving(ledger: &impl Ledger, key: &KeyRecord, now: i64) -> Authority {
    let mut authority = Authority::default();
    admit_through(&mut authority, ledger, key, now);
    authority
}

fn admit_through(authority: &mut Authority, ledger: &impl Ledger, key: &KeyRecord, now: i64) -> Admission {
    let Lookup::ReadThrough { generation } = authority.lookup(ledger, &key.key_hash, now, Some(&ASK)).unwrap() else {
        panic!("an unknown key is read through");
    };
    authority
        .read_through(ledger, generation, Some((key.clone(), workspace(false))), now, Some(&ASK))
        .unwrap()
        .expect("nothing came in between")
}

fn answered(authority: &mut Authority, ledger: &impl Ledger, hash: &str, now: i64) -> Admission {
    match authority.lookup(ledger, hash, now, Some(&ASK)).unwrap() {
        Lookup::Answered(admission) => *admission,
        other => panic!("expected the mirror to answer for {hash}, got {other:?}"),
    }
}

fn is_live_at(admission: &Admission, now: i64) -> bool {
    admission.found.as_ref().is_some_and(|(key, _)| key.is_live(now))
}

fn hits(admission: &Admission) -> u32 {
    admission.rate_hits.expect("a rate-limited live key is counted").hits
}

#[test]
fn an_unknown_key_is_read_through_and_then_answered_from_the_mirror() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 1_000);
    let admission = answered(&mut authority, &ledger, "hash_k1", 2_000);
    assert!(is_live_at(&admission, 2_000), "the mirrored key is live: {admission:?}");
}

#[test]
fn a_key_the_catalogue_does_not_have_is_not_found_and_not_remembered() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = Authority::default();
    let Lookup::ReadThrough { generation } = authority.lookup(&ledger, "hash_none", 0, Some(&ASK)).unwrap() else { panic!() };
    let admission = authority.read_through(&ledger, generation, None, 0, Some(&ASK)).unwrap().unwrap();
    assert_eq!(admission.found, None);
    assert!(matches!(authority.lookup(&ledger, "hash_none", 0, Some(&ASK)).unwrap(), Lookup::ReadThrough { .. }), "still read through");
}

#[test]
fn an_expired_key_is_found_but_not_live_and_not_counted() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let expiring = KeyRecord { expires_at: Some(5_000), ..limited("k1", 3) };
    let mut authority = serving(&ledger, &expiring, 1_000);
    let admission = answered(&mut authority, &ledger, "hash_k1", 5_000);
    assert!(!is_live_at(&admission, 5_000), "expired at 5,000");
    assert_eq!(admission.rate_hits, None, "a dead key spends nothing");
}

#[test]
fn a_key_in_grace_is_live_until_its_revocation_time() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let graced = KeyRecord { revoked_at: Some(10_000), ..key("k1") };
    let mut authority = serving(&ledger, &graced, 1_000);
    assert!(is_live_at(&answered(&mut authority, &ledger, "hash_k1", 9_999), 9_999));
    assert!(!is_live_at(&answered(&mut authority, &ledger, "hash_k1", 10_000), 10_000));
}

#[test]
fn the_capabilities_come_from_the_mirrored_record() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    let admission = answered(&mut authority, &ledger, "hash_k1", 1);
    let (record, _) = admission.found.unwrap();
    assert!(record.capabilities.grants("keys:read"));
    assert!(!record.capabilities.grants("keys:write"));
}

#[test]
fn the_rate_limit_admits_exactly_the_limit_in_a_window_and_resets_with_the_next() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &limited("k1", 5), 0);
    let counts: Vec<u32> = (1..=5).map(|i| hits(&answered(&mut authority, &ledger, "hash_k1", i))).collect();
    assert_eq!(counts, vec![2, 3, 4, 5, 6], "the read-through counted the first use");
    assert_eq!(hits(&answered(&mut authority, &ledger, "hash_k1", MINUTE - 1)), 7);
    let next_window = answered(&mut authority, &ledger, "hash_k1", MINUTE);
    assert_eq!(next_window.rate_hits, Some(RateHits { hits: 1, window_start: MINUTE }));
}

#[test]
fn a_held_key_is_read_through_until_released_with_the_catalogues_record() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let live = key("k1");
    let mut authority = serving(&ledger, &live, 0);
    authority.hold(&ledger, &["k1".to_string()], "h1", 10).unwrap();
    assert!(matches!(authority.lookup(&ledger, "hash_k1", 11, Some(&ASK)).unwrap(), Lookup::ReadThrough { .. }), "held: read through");
    let revoked = KeyRecord { revoked_at: Some(12), ..live };
    let generation = authority.generation();
    assert!(authority.release_key(&ledger, "k1", "h1", Some(revoked), generation).unwrap());
    assert!(!is_live_at(&answered(&mut authority, &ledger, "hash_k1", 13), 13), "the release brought the revocation");
}

#[test]
fn a_read_through_that_a_hold_overtook_is_read_again() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = Authority::default();
    let live = key("k1");
    let Lookup::ReadThrough { generation } = authority.lookup(&ledger, "hash_k1", 0, Some(&ASK)).unwrap() else { panic!() };
    authority.hold(&ledger, &["k1".to_string()], "h1", 1).unwrap();
    let stale = authority.read_through(&ledger, generation, Some((live, workspace(false))), 2, Some(&ASK)).unwrap();
    assert_eq!(stale, None, "a record read before the hold may predate the revoke");
}

#[test]
fn a_held_key_read_through_does_not_join_the_mirror() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    authority.hold(&ledger, &["k1".to_string()], "h1", 1).unwrap();
    let Lookup::ReadThrough { generation } = authority.lookup(&ledger, "hash_k1", 2, Some(&ASK)).unwrap() else { panic!() };
    let changed = KeyRecord { name: "changed in flight".into(), ..key("k1") };
    authority.read_through(&ledger, generation, Some((changed, workspace(false))), 2, Some(&ASK)).unwrap().unwrap();
    assert_eq!(ledger.key_by_id("k1").unwrap().unwrap().name, "key k1", "the ledger still has the record from before the hold");
}

#[test]
fn a_held_workspace_reads_every_key_through_and_its_release_brings_read_only() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    authority.hold(&ledger, &[WHOLE_WORKSPACE.to_string()], "h1", 1).unwrap();
    assert!(matches!(authority.lookup(&ledger, "hash_k1", 2, Some(&ASK)).unwrap(), Lookup::ReadThrough { .. }));
    let generation = authority.generation();
    assert!(authority.release_workspace(&ledger, "h1", Some(workspace(true)), generation).unwrap());
    let (_, seen) = answered(&mut authority, &ledger, "hash_k1", 3).found.unwrap();
    assert!(seen.read_only, "the next authentication sees the workspace read-only");
}

#[test]
fn holds_survive_a_restart() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    authority.hold(&ledger, &["k1".to_string()], "h1", 5).unwrap();
    let mut restarted = Authority::restore(ledger.load().unwrap(), 6);
    assert!(matches!(restarted.lookup(&ledger, "hash_k1", 6, Some(&ASK)).unwrap(), Lookup::ReadThrough { .. }), "still held");
}

#[test]
fn a_revoked_key_stays_revoked_after_a_restart() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    authority.hold(&ledger, &["k1".to_string()], "h1", 1).unwrap();
    let generation = authority.generation();
    assert!(authority.release_key(&ledger, "k1", "h1", Some(KeyRecord { revoked_at: Some(2), ..key("k1") }), generation).unwrap());
    drop(authority);
    let mut restarted = Authority::restore(ledger.load().unwrap(), 3);
    assert!(!is_live_at(&answered(&mut restarted, &ledger, "hash_k1", 3), 3), "the mirror kept the revocation");
}

#[test]
fn a_hold_older_than_the_timeout_is_stale() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = Authority::default();
    authority.hold(&ledger, &["k1".to_string()], "h1", 1_000).unwrap();
    assert!(authority.stale_holds(1_000 + HOLD_TIMEOUT_MS - 1).is_empty());
    assert_eq!(authority.stale_holds(1_000 + HOLD_TIMEOUT_MS), vec![("k1".to_string(), "h1".to_string())]);
    assert_eq!(authority.next_alarm(2_000), Some(1_000 + HOLD_TIMEOUT_MS), "the alarm wakes for it");
}

#[test]
fn saved_counters_come_back_exactly_after_a_restart() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &limited("k1", 5), 0);
    answered(&mut authority, &ledger, "hash_k1", 1);
    authority.flush(&ledger, 2).unwrap();
    let mut restarted = Authority::restore(ledger.load().unwrap(), 3);
    assert_eq!(hits(&answered(&mut restarted, &ledger, "hash_k1", 3)), 3, "two saved uses, then this one");
}

#[test]
fn uses_not_saved_before_a_restart_spend_the_rest_of_that_window_and_no_more() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &limited("k1", 5), 0);
    authority.flush(&ledger, 1).unwrap();
    answered(&mut authority, &ledger, "hash_k1", 2);
    drop(authority); // one unsaved use, lost with the object's memory
    let mut restarted = Authority::restore(ledger.load().unwrap(), 3);
    let after = answered(&mut restarted, &ledger, "hash_k1", 4);
    assert!(hits(&after) > 5, "the window counts as spent, so nothing beyond the limit is admitted: {after:?}");
    let next_window = answered(&mut restarted, &ledger, "hash_k1", MINUTE);
    assert_eq!(hits(&next_window), 1, "only that one window is lost");
}

#[test]
fn a_spent_window_stays_spent_through_a_second_restart() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &limited("k1", 5), 0);
    drop(authority);
    authority = Authority::restore(ledger.load().unwrap(), 10);
    authority.flush(&ledger, 20).unwrap();
    drop(authority);
    let mut again = Authority::restore(ledger.load().unwrap(), 30);
    assert!(hits(&answered(&mut again, &ledger, "hash_k1", 31)) > 5, "the mark outlived the flush");
}

#[test]
fn the_flush_saves_counters_and_returns_the_uses_due_once() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &limited("k1", 5), 1_000);
    answered(&mut authority, &ledger, "hash_k1", 2_000);
    assert_eq!(authority.next_alarm(2_000), Some(3_000), "unsaved work wakes the alarm a second later");
    let due = authority.flush(&ledger, 3_000).unwrap();
    assert_eq!(due.iter().map(|u| (u.key_id.as_str(), u.at)).collect::<Vec<_>>(), vec![("k1", 2_000)]);
    authority.uses_written(&ledger, &due).unwrap();
    let saved = ledger.load().unwrap();
    assert_eq!(saved.counters, vec![("k1".to_string(), Counter { window_start: 0, window_ms: MINUTE, hits: 2 }, false)]);
    assert_eq!(ledger.key_by_id("k1").unwrap().unwrap().last_used_at, Some(2_000), "the mirror knows the use reached the catalogue");
    let usage = authority.usage_due();
    assert_eq!(usage.len(), 1, "the use is counted in its hour");
    authority.usage_written(&ledger, &usage, 3_000).unwrap();
    assert_eq!(authority.next_alarm(3_000), None, "nothing left to do");
}

#[test]
fn a_use_within_a_minute_of_the_last_written_one_is_not_written() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &KeyRecord { last_used_at: Some(1_000), ..key("k1") }, 30_000);
    assert!(authority.flush(&ledger, 31_000).unwrap().is_empty());
    answered(&mut authority, &ledger, "hash_k1", 61_000);
    assert_eq!(authority.flush(&ledger, 62_000).unwrap().len(), 1, "a minute after the last one, it is written");
}

#[test]
fn uses_that_could_not_be_written_are_kept_for_the_next_flush() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 1_000);
    let due = authority.flush(&ledger, 2_000).unwrap();
    authority.keep_uses(due.clone());
    assert_eq!(authority.flush(&ledger, 3_000).unwrap(), due);
}

#[test]
fn a_key_beyond_the_memory_cache_is_answered_from_the_ledger() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("first"), 0);
    for i in 0..keywarden::keys::authority::KEYS_CACHED {
        admit_through(&mut authority, &ledger, &key(&format!("k{i}")), 1);
    }
    let admission = answered(&mut authority, &ledger, "hash_first", 2);
    assert!(is_live_at(&admission, 2), "read back from the ledger, not through to D1");
}

#[test]
fn one_writers_release_leaves_another_writers_hold_in_place() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    authority.hold(&ledger, &["k1".to_string()], "reroll", 1).unwrap();
    authority.hold(&ledger, &["k1".to_string()], "revoke", 2).unwrap();
    let generation = authority.generation();
    let graced = KeyRecord { revoked_at: Some(86_400_000), ..key("k1") };
    assert!(authority.release_key(&ledger, "k1", "reroll", Some(graced), generation).unwrap());
    assert!(
        matches!(authority.lookup(&ledger, "hash_k1", 3, Some(&ASK)).unwrap(), Lookup::ReadThrough { .. }),
        "the revoke still holds it, even if its own release never arrives"
    );
    let mut restarted = Authority::restore(ledger.load().unwrap(), 4);
    assert!(matches!(restarted.lookup(&ledger, "hash_k1", 4, Some(&ASK)).unwrap(), Lookup::ReadThrough { .. }), "and across a restart");
}

#[test]
fn a_release_whose_read_another_release_overtook_is_read_again() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 0);
    authority.hold(&ledger, &["k1".to_string()], "first", 1).unwrap();
    authority.hold(&ledger, &["k1".to_string()], "second", 2).unwrap();
    let first_read_at = authority.generation();
    let revoked = KeyRecord { revoked_at: Some(3), ..key("k1") };
    let second_read_at = authority.generation();
    assert!(authority.release_key(&ledger, "k1", "second", Some(revoked), second_read_at).unwrap());
    let stale = key("k1");
    assert!(!authority.release_key(&ledger, "k1", "first", Some(stale), first_read_at).unwrap(), "read before the other release: refused");
    let again = authority.generation();
    assert!(authority.release_key(&ledger, "k1", "first", Some(KeyRecord { revoked_at: Some(3), ..key("k1") }), again).unwrap());
    assert!(!is_live_at(&answered(&mut authority, &ledger, "hash_k1", 4), 4), "the revocation stands");
}

#[test]
fn a_held_keys_counter_outlives_the_flush_until_its_window_ends() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let limited_key = limited("k1", 3);
    let mut authority = Authority::default();
    authority.hold(&ledger, &["k1".to_string()], "h1", 0).unwrap();
    let mut counts = Vec::new();
    for now in 1..=5 {
        let admission = admit_through(&mut authority, &ledger, &limited_key, now);
        counts.push(hits(&admission));
        authority.flush(&ledger, now).unwrap();
    }
    assert_eq!(counts, vec![1, 2, 3, 4, 5], "every flush kept the count of a key only ever read through");
    authority.flush(&ledger, MINUTE).unwrap();
    assert_eq!(hits(&admit_through(&mut authority, &ledger, &limited_key, MINUTE)), 1, "a new window starts afresh");
}

fn with_credits(id: &str, remaining: u64) -> KeyRecord {
    KeyRecord { credits: Some(Credits::new(remaining, None, Calendar::default(), 0)), ..key(id) }
}

#[test]
fn the_object_spends_credits_itself_and_keeps_them_durable() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &with_credits("k1", 2), 1_000);
    assert_eq!(answered(&mut authority, &ledger, "hash_k1", 2_000).outcome, Some(Outcome::Valid));
    let dry = answered(&mut authority, &ledger, "hash_k1", 3_000);
    assert_eq!(dry.outcome, Some(Outcome::CreditsExhausted), "two credits: the read-through's use and one more");
    assert_eq!(ledger.key_by_id("k1").unwrap().unwrap().credits.map(|c| c.remaining), Some(0), "the ledger holds the balance");
    let mut restarted = Authority::restore(ledger.load().unwrap(), 4_000);
    assert_eq!(answered(&mut restarted, &ledger, "hash_k1", 4_000).outcome, Some(Outcome::CreditsExhausted), "a restart forgets nothing");
    assert_eq!(authority.credits_due(&ledger).unwrap().len(), 1, "the catalogue's copy is due");
}

#[test]
fn a_fresh_record_from_the_catalogue_keeps_the_objects_live_balance() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &with_credits("k1", 5), 1_000);
    let generation = authority.generation();
    authority.hold(&ledger, &["k1".to_string()], "h1", 2_000).unwrap();
    // The catalogue still says 5 (its copy lags); the object spent one already.
    assert!(authority.release_key(&ledger, "k1", "h1", Some(with_credits("k1", 5)), generation + 1).unwrap());
    assert_eq!(
        authority.credits(&ledger, "k1", 3_000).unwrap(),
        Some(Some(Credits { remaining: 4, ..with_credits("k1", 4).credits.unwrap() }))
    );
}

#[test]
fn a_credits_change_keeps_its_audit_entry_until_the_catalogue_has_it_even_across_a_restart() {
    use keywarden::audit::AuditEvent;
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 1_000);
    let audit = AuditEvent::new(Some("ws_a"), "key.credits_changed", 2_000).target("k1").detail(serde_json::json!({"add": 7}));
    let added = authority.change_credits_audited(&ledger, "k1", CreditChange::Add(7), 2_000, audit.clone()).unwrap().unwrap();
    assert_eq!(added.remaining, 7);
    assert!(authority.next_alarm(2_000).is_some(), "the alarm will write it");
    let restarted = Authority::restore(ledger.load().unwrap(), 3_000);
    let due = restarted.audits_due();
    assert_eq!(due.len(), 1, "kept durably with the change");
    assert_eq!(due[0].id, audit.id);
    assert_eq!(due[0].detail, serde_json::json!({"add": 7, "remaining": 7}), "with the balance after");
    let mut authority = restarted;
    authority.audits_written(&ledger, &due).unwrap();
    assert!(authority.audits_due().is_empty());
    assert!(Authority::restore(ledger.load().unwrap(), 4_000).audits_due().is_empty(), "and forgotten once written");
    let unserved = AuditEvent::new(Some("ws_a"), "key.credits_changed", 2_000);
    assert_eq!(authority.change_credits_audited(&ledger, "nope", CreditChange::Add(1), 2_000, unserved).unwrap(), None);
    assert!(authority.audits_due().is_empty(), "no change, no entry");
}

#[test]
fn credits_added_or_set_in_the_object_are_due_for_the_catalogue() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &key("k1"), 1_000);
    let added = authority.change_credits(&ledger, "k1", CreditChange::Add(7), 2_000).unwrap().unwrap();
    assert_eq!(added.remaining, 7, "an unmetered key becomes metered");
    assert_eq!(authority.change_credits(&ledger, "k1", CreditChange::Set(3), 2_000).unwrap().unwrap().remaining, 3);
    assert_eq!(authority.change_credits(&ledger, "nope", CreditChange::Add(1), 2_000).unwrap(), None, "not served here");
    let due = authority.credits_due(&ledger).unwrap();
    assert_eq!(due.iter().map(|(id, c)| (id.as_str(), c.remaining)).collect::<Vec<_>>(), vec![("k1", 3)]);
    authority.credits_written(&ledger, &due).unwrap();
    assert!(authority.credits_due(&ledger).unwrap().is_empty());
}

#[test]
fn usage_is_counted_by_hour_and_outcome_and_survives_a_restart_until_written() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &limited("k1", 2), 1_000);
    answered(&mut authority, &ledger, "hash_k1", 2_000);
    answered(&mut authority, &ledger, "hash_k1", 3_000);
    answered(&mut authority, &ledger, "hash_k1", HOUR + 1);
    let restarted = Authority::restore(ledger.load().unwrap(), HOUR + 2);
    let due = restarted.usage_due();
    let counts: Vec<(i64, [u64; 5])> = due.iter().map(|row| (row.hour_start, row.counts.0)).collect();
    assert_eq!(
        counts,
        vec![(0, [2, 1, 0, 0, 0]), (HOUR, [1, 0, 0, 0, 0])],
        "limit 2: the read-through and one more valid, one over, then a new hour"
    );
    let mut restarted = restarted;
    restarted.usage_written(&ledger, &due, HOUR + 3).unwrap();
    assert!(restarted.usage_due().is_empty());
    restarted.usage_written(&ledger, &[], 4 * HOUR).unwrap();
    assert!(ledger.load().unwrap().usage.is_empty(), "written hours long over are forgotten");
}

#[test]
fn a_balance_the_catalogue_lacks_is_still_due_after_a_restart() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let mut authority = serving(&ledger, &with_credits("k1", 3), 1_000);
    answered(&mut authority, &ledger, "hash_k1", 2_000);
    let mut restarted = Authority::restore(ledger.load().unwrap(), 3_000);
    let due = restarted.credits_due(&ledger).unwrap();
    assert_eq!(due.iter().map(|(id, c)| (id.as_str(), c.remaining)).collect::<Vec<_>>(), vec![("k1", 1)]);
    restarted.credits_written(&ledger, &due).unwrap();
    assert!(Authority::restore(ledger.load().unwrap(), 4_000).credits_due(&ledger).unwrap().is_empty(), "written: no longer due");
}

#[test]
fn taking_a_balance_moves_it_out_of_the_key_refill_and_all() {
    let db = ObjectSqlite::default();
    let ledger = SqlLedger::open(&db).unwrap();
    let refilled = KeyRecord {
        credits: Some(Credits::new(
            9,
            Some(keywarden::keys::credits::Refill { amount: 9, interval: keywarden::keys::credits::Interval::Day }),
            Calendar::default(),
            0,
        )),
        ..key("k1")
    };
    let mut authority = serving(&ledger, &refilled, 1_000);
    let taken = authority.change_credits(&ledger, "k1", CreditChange::Take, 2_000).unwrap().unwrap();
    assert_eq!(taken.remaining, 8, "what was left after the read-through's use");
    assert!(taken.refill.is_some(), "the successor gets the refill");
    let left = authority.credits(&ledger, "k1", 10 * 86_400_000).unwrap().unwrap().unwrap();
    assert_eq!((left.remaining, left.refill), (0, None), "nothing left, and no refill to come");
}
