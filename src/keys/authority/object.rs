//! The key authority: one object per workspace (or per shard of a hot one) that every
//! authentication of its keys goes through. Serving them from one place is what keeps a revoke
//! effective from the very next request without asking D1 each time.
//!
//! This is the object's logic, in plain Rust. It keeps a mirror of the keys it has served and
//! their workspace, per-key rate counters and the uses not yet written to the catalogue. What
//! must survive a restart goes through the [`Ledger`] before the change is visible in memory.
//! The Durable Object adapter (`store::authority_object`) feeds it requests, the catalogue's
//! answers and the clock.
//!
//! - **Read-through.** A key the mirror lacks, or one being changed in the catalogue (held), is
//!   read from the catalogue (D1) instead. So an object that has not yet seen a key, or a
//!   database from before the authority existed, answers exactly as D1 does.
//! - **Holds.** A write that changes what authentication reads (revoke, reroll, leak, a
//!   workspace's `read_only`) first holds the keys or the workspace, then commits in D1, then
//!   releases with D1's fresh record. A hold is durable, so a held key is read through until
//!   its release arrives, even across a restart. A hold left behind by a caller that died is
//!   released by the alarm after [`HOLD_TIMEOUT_MS`], from D1.
//! - **Counters.** They live in memory. The first change after a save marks the key durably
//!   ("may have unsaved uses"), and the alarm saves them and clears the marks. A marked key
//!   restored after a restart has its window treated as spent. So a restart loses at most the
//!   rest of one window, and never admits more than the limit.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::keys::credits::{Calendar, Credits};
use crate::keys::limits::window_start;
use crate::keys::store::RateHits;
use crate::keys::usage::{hour_start, rate_allowed, settle, Ask, Counts, Outcome, HOUR_MS};
use crate::keys::{KeyRecord, Workspace};
use crate::storage::StoreError;

/// The hold target that stands for the workspace record itself.
pub const WHOLE_WORKSPACE: &str = "*";

/// How long after the first unsaved change the alarm saves counters and writes uses.
pub const FLUSH_INTERVAL_MS: i64 = 1_000;

/// `last_used_at` is written to the catalogue at most once a minute per key, as before.
pub const USE_WRITE_INTERVAL_MS: i64 = 60_000;

/// A hold older than this is released from D1 by the alarm: no D1 write runs that long, so the
/// caller that held it is gone, and D1's record is the truth.
pub const HOLD_TIMEOUT_MS: i64 = 5 * 60_000;

/// A key's fixed-window counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub window_start: i64,
    pub window_ms: i64,
    pub hits: u32,
}

/// What the object keeps durably: its storage, in the Durable Object's SQLite.
pub trait Ledger {
    fn save_key(&self, key: &KeyRecord) -> Result<(), StoreError>;
    fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError>;
    fn key_by_id(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError>;
    fn forget_key(&self, key_id: &str) -> Result<(), StoreError>;
    fn save_workspace(&self, workspace: &Workspace) -> Result<(), StoreError>;
    fn save_hold(&self, target: &str, hold_id: &str, since_ms: i64) -> Result<(), StoreError>;
    fn drop_hold(&self, target: &str, hold_id: &str) -> Result<(), StoreError>;
    /// Marks `key_id` as possibly having uses its saved counter lacks.
    fn mark_counting(&self, key_id: &str) -> Result<(), StoreError>;
    /// Saves these counters exactly and clears their marks.
    fn save_counters(&self, counters: &[(String, Counter)]) -> Result<(), StoreError>;
    fn drop_counters(&self, key_ids: &[String]) -> Result<(), StoreError>;
    /// Saves a key's usage of one hour, its counts absolute; `flushed`: the catalogue has them.
    fn save_usage(&self, row: &UsageRow, flushed: bool) -> Result<(), StoreError>;
    /// Forgets flushed usage of the hours before `hour_start`.
    fn drop_usage_before(&self, hour_start: i64) -> Result<(), StoreError>;
    /// Marks (or clears) a key whose balance the catalogue's copy lacks, so a restart still
    /// writes it.
    fn mark_credits_due(&self, key_id: &str, due: bool) -> Result<(), StoreError>;
    /// Keeps (`Some`) or forgets an audit entry the catalogue has not got yet.
    fn save_audit(&self, id: &str, event: Option<&AuditEvent>) -> Result<(), StoreError>;
    fn load(&self) -> Result<Snapshot, StoreError>;
}

/// One key's uses in one UTC hour, by outcome: counts from the first use, so writing them twice
/// is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    pub key_id: String,
    pub workspace_id: String,
    pub hour_start: i64,
    pub counts: Counts,
}

/// Usage is kept in the object this long after its hour ends, once written to the catalogue.
pub const USAGE_KEPT_MS: i64 = 2 * HOUR_MS;

/// How a credits change sets the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreditChange {
    Add(u64),
    Set(u64),
    /// Moves the whole balance, refill included, out of the key (to a reroll's successor): the
    /// answer is what was taken, and the key is left with none.
    Take,
    /// Gives back a balance `Take` moved out, when the reroll it was for did not happen.
    Return(Credits),
}

/// What the object reads back from its ledger when it starts (keys are read when asked for).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub workspace: Option<Workspace>,
    /// Each hold's target, its writer's hold id, and since when.
    pub holds: Vec<(String, String, i64)>,
    /// Each counter, and whether it is marked (uses may have been lost).
    pub counters: Vec<(String, Counter, bool)>,
    /// The usage it keeps, and whether each row reached the catalogue.
    pub usage: Vec<(UsageRow, bool)>,
    /// The keys whose balance the catalogue's copy lacks.
    pub credits_due: Vec<String>,
    /// Audit entries of changes made here that the catalogue has not got yet.
    pub audits_due: Vec<AuditEvent>,
}

/// The answer to one authentication: the key and its workspace (`None`: no such key), and for a
/// live, rate-limited key whose use was counted, its counter after this use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    pub found: Option<(KeyRecord, Workspace)>,
    pub rate_hits: Option<RateHits>,
    /// How a counted use of a live key came out.
    #[serde(default)]
    pub outcome: Option<Outcome>,
}

/// Whether the mirror can answer, or the catalogue must be read first.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Answered(Box<Admission>),
    /// Read the key by hash from the catalogue, then call [`Authority::read_through`] with this
    /// generation.
    ReadThrough {
        generation: u64,
    },
}

/// A use to write to the catalogue's `last_used_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub key_id: String,
    pub at: i64,
}

/// The mirror keeps at most this many key records in memory; the rest are read from the
/// ledger (the object's SQLite, a local read) when asked for, so a workspace of any size fits
/// an object's memory.
pub const KEYS_CACHED: usize = 10_000;

#[derive(Debug, Default)]
pub struct Authority {
    workspace: Option<Workspace>,
    /// Recently used records of the mirror, by hash, and their hashes by id.
    keys: HashMap<String, KeyRecord>,
    hash_of: HashMap<String, String>,
    /// Every writer's hold by (target, hold id): a target is held while any writer holds it.
    holds: HashMap<(String, String), i64>,
    counters: HashMap<String, Counter>,
    unsaved: HashSet<String>,
    uses: HashMap<String, i64>,
    /// Keys restored with a marked counter, and when: their window at that moment is spent.
    spent: HashMap<String, i64>,
    /// Bumped by every hold and release: a read-through that started before one is stale.
    generation: u64,
    /// Usage by (key id, hour), and the rows the catalogue has not got yet.
    usage: HashMap<(String, i64), UsageRow>,
    usage_due: HashSet<(String, i64)>,
    /// Keys whose balance changed since it was last written to the catalogue.
    credits_due: HashSet<String>,
    /// Audit entries of changes made here, by id, that the catalogue has not got yet.
    audits_due: BTreeMap<String, AuditEvent>,
    calendar: Calendar,
}

impl Authority {
    /// The object as its ledger left it. A marked counter may lack uses, so the window its key
    /// was in at `now_ms` counts as spent.
    pub fn restore(snapshot: Snapshot, now_ms: i64) -> Self {
        let mut authority = Authority { workspace: snapshot.workspace, ..Authority::default() };
        authority.credits_due = snapshot.credits_due.into_iter().collect();
        authority.audits_due = snapshot.audits_due.into_iter().map(|event| (event.id.clone(), event)).collect();
        for (row, flushed) in snapshot.usage {
            let slot = (row.key_id.clone(), row.hour_start);
            if !flushed {
                authority.usage_due.insert(slot.clone());
            }
            authority.usage.insert(slot, row);
        }
        authority.holds = snapshot.holds.into_iter().map(|(target, hold_id, since)| ((target, hold_id), since)).collect();
        for (key_id, counter, marked) in snapshot.counters {
            if marked {
                authority.spent.insert(key_id.clone(), now_ms);
            }
            authority.counters.insert(key_id, counter);
        }
        authority
    }

    /// When this object's credits refill (`CREDIT_DAY_MS` in tests).
    pub fn with_calendar(mut self, calendar: Calendar) -> Self {
        self.calendar = calendar;
        self
    }

    /// The workspace this object serves, once it has read it.
    pub fn workspace_id(&self) -> Option<String> {
        self.workspace.as_ref().map(|workspace| workspace.id.clone())
    }

    /// The mirror's record of the key with this hash: from memory, else from the ledger.
    fn mirrored(&mut self, ledger: &impl Ledger, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        if let Some(key) = self.keys.get(key_hash) {
            return Ok(Some(key.clone()));
        }
        let found = ledger.key_by_hash(key_hash)?;
        if let Some(key) = &found {
            self.cache(key.clone());
        }
        Ok(found)
    }

    fn mirrored_by_id(&mut self, ledger: &impl Ledger, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        if let Some(key) = self.hash_of.get(key_id).and_then(|hash| self.keys.get(hash)) {
            return Ok(Some(key.clone()));
        }
        let found = ledger.key_by_id(key_id)?;
        if let Some(key) = &found {
            self.cache(key.clone());
        }
        Ok(found)
    }

    fn cache(&mut self, key: KeyRecord) {
        if self.keys.len() >= KEYS_CACHED && !self.keys.contains_key(&key.key_hash) {
            self.keys.clear();
            self.hash_of.clear();
        }
        self.hash_of.insert(key.id.clone(), key.key_hash.clone());
        self.keys.insert(key.key_hash.clone(), key);
    }

    fn is_held(&self, target: &str) -> bool {
        self.holds.keys().any(|(held, _)| held == target)
    }

    fn workspace_held(&self) -> bool {
        self.is_held(WHOLE_WORKSPACE)
    }

    /// Changes with every hold and release: what a read of the catalogue is checked against.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Authenticates the key with this hash from the mirror, or says to read it through.
    /// `count` counts the use (and records it) when the key is live.
    pub fn lookup(&mut self, ledger: &impl Ledger, key_hash: &str, now_ms: i64, count: Option<&Ask>) -> Result<Lookup, StoreError> {
        let read_through = Lookup::ReadThrough { generation: self.generation };
        let (Some(workspace), false) = (self.workspace.clone(), self.workspace_held()) else { return Ok(read_through) };
        let Some(key) = self.mirrored(ledger, key_hash)?.filter(|key| !self.is_held(&key.id)) else {
            return Ok(read_through);
        };
        Ok(Lookup::Answered(Box::new(self.admit(ledger, key, workspace, now_ms, count)?)))
    }

    /// Answers from the catalogue's record, read after [`Lookup::ReadThrough`] gave
    /// `generation`; `None` when a hold or release came in between, and it must be read again.
    /// A record nothing holds joins the mirror.
    pub fn read_through(
        &mut self,
        ledger: &impl Ledger,
        generation: u64,
        found: Option<(KeyRecord, Workspace)>,
        now_ms: i64,
        count: Option<&Ask>,
    ) -> Result<Option<Admission>, StoreError> {
        if generation != self.generation {
            return Ok(None);
        }
        let Some((key, workspace)) = found else { return Ok(Some(Admission { found: None, rate_hits: None, outcome: None })) };
        if !self.workspace_held() && self.workspace.as_ref() != Some(&workspace) {
            ledger.save_workspace(&workspace)?;
            self.workspace = Some(workspace.clone());
        }
        let key = self.adopted(ledger, key)?;
        if !self.is_held(&key.id) && self.mirrored(ledger, &key.key_hash)?.as_ref() != Some(&key) {
            self.remember(ledger, key.clone())?;
        }
        self.admit(ledger, key, workspace, now_ms, count).map(Some)
    }

    fn remember(&mut self, ledger: &impl Ledger, key: KeyRecord) -> Result<(), StoreError> {
        ledger.save_key(&key)?;
        self.cache(key);
        Ok(())
    }

    /// The catalogue's record with this object's balance, which is the live one once the object
    /// has the key (the catalogue's is a copy written in batches).
    fn adopted(&mut self, ledger: &impl Ledger, mut fresh: KeyRecord) -> Result<KeyRecord, StoreError> {
        if let Some(mirrored) = self.mirrored_by_id(ledger, &fresh.id)? {
            if mirrored.credits.is_some() {
                fresh.credits = mirrored.credits;
            }
        }
        Ok(fresh)
    }

    /// Takes the catalogue's record of a key this object does not mirror yet (as a read-through
    /// would), so that its credits can be changed here.
    pub fn adopt(&mut self, ledger: &impl Ledger, fresh: KeyRecord) -> Result<(), StoreError> {
        if self.mirrored_by_id(ledger, &fresh.id)?.is_none() {
            self.remember(ledger, fresh)?;
        }
        Ok(())
    }

    /// The key's balance as of `now_ms`: `Ok(None)` when the object does not mirror the key
    /// (adopt it first), `Ok(Some(None))` for an unmetered key.
    pub fn credits(&mut self, ledger: &impl Ledger, key_id: &str, now_ms: i64) -> Result<Option<Option<Credits>>, StoreError> {
        let calendar = self.calendar;
        Ok(self.mirrored_by_id(ledger, key_id)?.map(|key| key.credits.map(|credits| credits.current(calendar, now_ms))))
    }

    /// Changes a mirrored key's balance (an unmetered key becomes metered, without a refill);
    /// `None` when the object does not mirror the key.
    pub fn change_credits(
        &mut self,
        ledger: &impl Ledger,
        key_id: &str,
        change: CreditChange,
        now_ms: i64,
    ) -> Result<Option<Credits>, StoreError> {
        let Some(mut key) = self.mirrored_by_id(ledger, key_id)? else { return Ok(None) };
        let calendar = self.calendar;
        let mut credits = key.credits.unwrap_or_else(|| Credits::new(0, None, calendar, now_ms));
        // What the key keeps, and what the answer says.
        let (kept, answer) = match change {
            CreditChange::Add(amount) => {
                credits.add(amount, calendar, now_ms);
                (credits, credits)
            }
            CreditChange::Set(remaining) => {
                credits.set(remaining, calendar, now_ms);
                (credits, credits)
            }
            CreditChange::Take => match key.credits {
                Some(held) => (Credits { remaining: 0, refill: None, refilled_at: now_ms }, held.current(calendar, now_ms)),
                None => return Ok(None),
            },
            CreditChange::Return(returned) => {
                credits.take_back(returned, calendar, now_ms);
                (credits, credits)
            }
        };
        key.credits = Some(kept);
        self.remember(ledger, key)?;
        self.owe_credits(ledger, key_id)?;
        Ok(Some(answer))
    }

    /// The catalogue's copy of this balance is due; marked durably once, not on every spend.
    fn owe_credits(&mut self, ledger: &impl Ledger, key_id: &str) -> Result<(), StoreError> {
        if !self.credits_due.contains(key_id) {
            ledger.mark_credits_due(key_id, true)?;
            self.credits_due.insert(key_id.to_string());
        }
        Ok(())
    }

    fn paid_credits(&mut self, ledger: &impl Ledger, key_id: &str) -> Result<(), StoreError> {
        if self.credits_due.remove(key_id) {
            ledger.mark_credits_due(key_id, false)?;
        }
        Ok(())
    }

    /// Counts one use of `key` in its hour, durably.
    fn count_usage(&mut self, ledger: &impl Ledger, key: &KeyRecord, outcome: Outcome, now_ms: i64) -> Result<(), StoreError> {
        let hour = hour_start(now_ms);
        let slot = (key.id.clone(), hour);
        let row = self.usage.entry(slot.clone()).or_insert_with(|| UsageRow {
            key_id: key.id.clone(),
            workspace_id: key.workspace_id.clone(),
            hour_start: hour,
            counts: Counts::default(),
        });
        row.counts.add(outcome);
        ledger.save_usage(row, false)?;
        self.usage_due.insert(slot);
        Ok(())
    }

    fn admit(
        &mut self,
        ledger: &impl Ledger,
        mut key: KeyRecord,
        workspace: Workspace,
        now_ms: i64,
        count: Option<&Ask>,
    ) -> Result<Admission, StoreError> {
        let mut rate_hits = None;
        let mut outcome = None;
        if let Some(ask) = count.filter(|_| key.is_live(now_ms)) {
            if let Some(limit) = key.rate_limit {
                let window_ms = limit.window_seconds as i64 * 1000;
                let window = window_start(now_ms, window_ms);
                if !self.unsaved.contains(&key.id) {
                    ledger.mark_counting(&key.id)?;
                    self.unsaved.insert(key.id.clone());
                }
                let fresh = |start| Counter { window_start: start, window_ms, hits: 0 };
                let counter = self.counters.entry(key.id.clone()).or_insert(fresh(window));
                if let Some(restored_at) = self.spent.remove(&key.id) {
                    let spent_window = window_start(restored_at, window_ms);
                    if counter.window_start != spent_window || counter.window_ms != window_ms {
                        *counter = fresh(spent_window);
                    }
                    counter.hits = counter.hits.max(limit.limit);
                }
                if counter.window_start != window || counter.window_ms != window_ms {
                    *counter = fresh(window);
                }
                counter.hits = counter.hits.saturating_add(1);
                rate_hits = Some(RateHits { hits: counter.hits, window_start: counter.window_start });
            }
            let last = self.uses.entry(key.id.clone()).or_insert(now_ms);
            *last = (*last).max(now_ms);
            let rate_allowed = rate_allowed(key.rate_limit, rate_hits);
            let before = key.credits;
            let settled = settle(key.allowed_ips.as_ref(), &key.capabilities, &mut key.credits, ask, rate_allowed, self.calendar, now_ms);
            if key.credits != before {
                // The balance is durable before the answer leaves, like the rest of the ledger.
                self.remember(ledger, key.clone())?;
                self.owe_credits(ledger, &key.id)?;
            }
            self.count_usage(ledger, &key, settled, now_ms)?;
            outcome = Some(settled);
        }
        if let Some(used) = self.uses.get(&key.id) {
            key.last_used_at = Some(key.last_used_at.map_or(*used, |at| at.max(*used)));
        }
        Ok(Admission { found: Some((key, workspace)), rate_hits, outcome })
    }

    /// Holds `targets` (key ids, or [`WHOLE_WORKSPACE`]) for the writer `hold_id`: they are
    /// read through until every writer holding them has released them.
    pub fn hold(&mut self, ledger: &impl Ledger, targets: &[String], hold_id: &str, now_ms: i64) -> Result<(), StoreError> {
        for target in targets {
            ledger.save_hold(target, hold_id, now_ms)?;
            self.holds.entry((target.clone(), hold_id.to_string())).or_insert(now_ms);
        }
        self.generation += 1;
        Ok(())
    }

    /// Releases `hold_id`'s hold of a key with the catalogue's record of it (`None`: gone), read
    /// after [`Authority::generation`] gave `generation`. `false`, and nothing changed, when a
    /// hold or release came in between: that record may predate another writer's commit, so
    /// it must be read again.
    pub fn release_key(
        &mut self,
        ledger: &impl Ledger,
        key_id: &str,
        hold_id: &str,
        fresh: Option<KeyRecord>,
        generation: u64,
    ) -> Result<bool, StoreError> {
        if generation != self.generation {
            return Ok(false);
        }
        match fresh {
            Some(key) => {
                let key = self.adopted(ledger, key)?;
                self.remember(ledger, key)?
            }
            None => {
                ledger.forget_key(key_id)?;
                if let Some(hash) = self.hash_of.remove(key_id) {
                    self.keys.remove(&hash);
                }
            }
        }
        self.end_hold(ledger, key_id, hold_id)?;
        Ok(true)
    }

    /// Releases `hold_id`'s hold of the workspace with the catalogue's record of it, read after
    /// `generation`; `false` as for [`Authority::release_key`].
    pub fn release_workspace(
        &mut self,
        ledger: &impl Ledger,
        hold_id: &str,
        fresh: Option<Workspace>,
        generation: u64,
    ) -> Result<bool, StoreError> {
        if generation != self.generation {
            return Ok(false);
        }
        if let Some(workspace) = fresh {
            ledger.save_workspace(&workspace)?;
            self.workspace = Some(workspace);
        }
        self.end_hold(ledger, WHOLE_WORKSPACE, hold_id)?;
        Ok(true)
    }

    /// Ends `hold_id`'s hold of `target`, durably; a read begun before it is stale.
    fn end_hold(&mut self, ledger: &impl Ledger, target: &str, hold_id: &str) -> Result<(), StoreError> {
        ledger.drop_hold(target, hold_id)?;
        self.holds.remove(&(target.to_string(), hold_id.to_string()));
        self.generation += 1;
        Ok(())
    }

    /// The holds older than [`HOLD_TIMEOUT_MS`], as (target, hold id): the alarm releases them
    /// from D1.
    pub fn stale_holds(&self, now_ms: i64) -> Vec<(String, String)> {
        let mut stale: Vec<(String, String)> =
            self.holds.iter().filter(|(_, since)| **since <= now_ms - HOLD_TIMEOUT_MS).map(|(hold, _)| hold.clone()).collect();
        stale.sort();
        stale
    }

    /// Saves the counters changed since the last save and drops those whose window has ended;
    /// returns the uses due to be written to the catalogue (taken: hand back the ones that
    /// could not be written with [`Authority::keep_uses`]).
    pub fn flush(&mut self, ledger: &impl Ledger, now_ms: i64) -> Result<Vec<KeyUse>, StoreError> {
        let mut changed: Vec<(String, Counter)> =
            self.unsaved.iter().filter_map(|id| self.counters.get(id).map(|counter| (id.clone(), *counter))).collect();
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        ledger.save_counters(&changed)?;
        self.unsaved.clear();
        // A spent window must outlive a second restart, so its mark stays until the key is used.
        let counting: Vec<(String, Counter)> =
            self.counters.iter().filter(|(id, _)| !self.spent.contains_key(*id)).map(|(id, counter)| (id.clone(), *counter)).collect();
        let ended: Vec<String> =
            counting.into_iter().filter(|(_, counter)| counter.window_start + counter.window_ms <= now_ms).map(|(id, _)| id).collect();
        if !ended.is_empty() {
            ledger.drop_counters(&ended)?;
            for id in &ended {
                self.counters.remove(id);
            }
        }
        // A use within a minute of the last one written is not written, as D1 alone did.
        let mut due = Vec::new();
        for (key_id, at) in std::mem::take(&mut self.uses) {
            let written = self.mirrored_by_id(ledger, &key_id)?.and_then(|key| key.last_used_at);
            if written.is_none_or(|written| at >= written + USE_WRITE_INTERVAL_MS) {
                due.push(KeyUse { key_id, at });
            }
        }
        due.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(due)
    }

    /// Records that these uses reached the catalogue, so the mirror's records say so.
    pub fn uses_written(&mut self, ledger: &impl Ledger, written: &[KeyUse]) -> Result<(), StoreError> {
        for key_use in written {
            if let Some(mut key) = self.mirrored_by_id(ledger, &key_use.key_id)? {
                key.last_used_at = Some(key.last_used_at.map_or(key_use.at, |at| at.max(key_use.at)));
                self.remember(ledger, key)?;
            }
        }
        Ok(())
    }

    /// Hands back uses that could not be written, for the next flush.
    pub fn keep_uses(&mut self, unwritten: Vec<KeyUse>) {
        for key_use in unwritten {
            let last = self.uses.entry(key_use.key_id).or_insert(key_use.at);
            *last = (*last).max(key_use.at);
        }
    }

    /// The usage rows the catalogue lacks, to write there (absolute counts).
    pub fn usage_due(&self) -> Vec<UsageRow> {
        let mut due: Vec<UsageRow> = self.usage_due.iter().filter_map(|slot| self.usage.get(slot).cloned()).collect();
        due.sort_by(|a, b| (a.hour_start, &a.key_id).cmp(&(b.hour_start, &b.key_id)));
        due
    }

    /// Records that these rows reached the catalogue, and forgets usage of hours long over.
    pub fn usage_written(&mut self, ledger: &impl Ledger, written: &[UsageRow], now_ms: i64) -> Result<(), StoreError> {
        for row in written {
            let slot = (row.key_id.clone(), row.hour_start);
            // A use counted while the write was on its way keeps the row due.
            if self.usage.get(&slot) == Some(row) {
                ledger.save_usage(row, true)?;
                self.usage_due.remove(&slot);
            }
        }
        let cutoff = hour_start(now_ms) - USAGE_KEPT_MS;
        ledger.drop_usage_before(cutoff)?;
        let due = &self.usage_due;
        self.usage.retain(|slot, _| slot.1 >= cutoff || due.contains(slot));
        Ok(())
    }

    /// Changes the key's credits and keeps `audit` in the ledger in the same step, its detail's
    /// `remaining` the balance after: the change and its audit entry stand or fall together,
    /// and the entry reaches the catalogue with the next write that succeeds.
    pub fn change_credits_audited(
        &mut self,
        ledger: &impl Ledger,
        key_id: &str,
        change: CreditChange,
        now_ms: i64,
        mut audit: AuditEvent,
    ) -> Result<Option<Credits>, StoreError> {
        let Some(credits) = self.change_credits(ledger, key_id, change, now_ms)? else { return Ok(None) };
        audit.detail["remaining"] = serde_json::json!(credits.remaining);
        ledger.save_audit(&audit.id, Some(&audit))?;
        self.audits_due.insert(audit.id.clone(), audit);
        Ok(Some(credits))
    }

    /// The audit entries the catalogue lacks, oldest first.
    pub fn audits_due(&self) -> Vec<AuditEvent> {
        let mut due: Vec<AuditEvent> = self.audits_due.values().cloned().collect();
        due.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        due
    }

    /// Records that these entries reached the catalogue.
    pub fn audits_written(&mut self, ledger: &impl Ledger, written: &[AuditEvent]) -> Result<(), StoreError> {
        for event in written {
            if self.audits_due.remove(&event.id).is_some() {
                ledger.save_audit(&event.id, None)?;
            }
        }
        Ok(())
    }

    /// The balances the catalogue's copy lacks.
    pub fn credits_due(&mut self, ledger: &impl Ledger) -> Result<Vec<(String, Credits)>, StoreError> {
        let mut due = Vec::new();
        for key_id in self.credits_due.clone() {
            match self.mirrored_by_id(ledger, &key_id)?.and_then(|key| key.credits) {
                Some(credits) => due.push((key_id, credits)),
                None => self.paid_credits(ledger, &key_id)?,
            }
        }
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(due)
    }

    /// Records that these balances reached the catalogue (unless they changed since).
    pub fn credits_written(&mut self, ledger: &impl Ledger, written: &[(String, Credits)]) -> Result<(), StoreError> {
        for (key_id, credits) in written {
            if self.mirrored_by_id(ledger, key_id)?.and_then(|key| key.credits) == Some(*credits) {
                self.paid_credits(ledger, key_id)?;
            }
        }
        Ok(())
    }

    /// When the alarm has work: counters to save or uses to write soon, else the first hold
    /// to time out; `None` when there is nothing to do.
    pub fn next_alarm(&self, now_ms: i64) -> Option<i64> {
        if !self.unsaved.is_empty()
            || !self.uses.is_empty()
            || !self.usage_due.is_empty()
            || !self.credits_due.is_empty()
            || !self.audits_due.is_empty()
        {
            return Some(now_ms + FLUSH_INTERVAL_MS);
        }
        self.holds.values().min().map(|since| (since + HOLD_TIMEOUT_MS).max(now_ms))
    }
}
