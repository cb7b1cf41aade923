//! The key authority's Durable Object: a thin adapter around `keys::authority::Authority`,
//! with its ledger in the object's SQLite storage and D1 as the catalogue it reads through.
//!
//! It answers only the internal protocol (`store::authority::PROTOCOL`), which no client can
//! reach: a Durable Object is addressed only through its namespace binding. Its alarm saves
//! the counters, writes `last_used_at` to D1 and times out abandoned holds.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use worker::{durable_object, wasm_bindgen, Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State};

use super::authority::{AuthenticateMessage, CreditsAnswer, CreditsMessage, SettleAnswer, SettleMessage, TargetsMessage, PROTOCOL};
use super::authority_ledger::{SqlLedger, SyncSql};
use super::d1::D1Store;
use super::sql::Value;
use crate::keys::authority::{Authority, Ledger, Lookup, WHOLE_WORKSPACE};
use crate::keys::credits::{Calendar, Credits};
use crate::keys::store::KeyStore;
use crate::settings;
use crate::storage::StoreError;
use crate::workspaces::store::WorkspaceStore;

/// A read-through that keeps being overtaken by holds is given up after this many reads.
const READ_ATTEMPTS: usize = 3;

pub struct ObjectSql(SqlStorage);

impl SyncSql for ObjectSql {
    fn run(&self, sql: &str, binds: Vec<Value>) -> std::result::Result<Vec<Map<String, Json>>, StoreError> {
        let binds: Vec<SqlStorageValue> = binds
            .into_iter()
            .map(|value| match value {
                Value::Null => SqlStorageValue::Null,
                Value::Integer(v) => SqlStorageValue::Integer(v),
                Value::Real(v) => SqlStorageValue::Float(v),
                Value::Text(v) => SqlStorageValue::String(v),
            })
            .collect();
        let cursor = self.0.exec(sql, binds).map_err(|e| StoreError::Failed(format!("object storage: {e}")))?;
        cursor.to_array::<Map<String, Json>>().map_err(|e| StoreError::Failed(format!("object storage rows: {e}")))
    }
}

#[durable_object]
pub struct KeyAuthorityObject {
    state: State,
    env: Env,
    ledger: std::result::Result<SqlLedger<ObjectSql>, String>,
    authority: RefCell<Option<Authority>>,
    /// The alarm this instance has set, so a busy object sets it once per flush.
    alarm_at: Cell<Option<i64>>,
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn answer(status: u16, body: &impl Serialize) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

fn refused(error: StoreError) -> Result<Response> {
    let status = if error == StoreError::Unavailable { 503 } else { 500 };
    answer(status, &json!({"error": error.to_string()}))
}

impl KeyAuthorityObject {
    fn ledger(&self) -> std::result::Result<&SqlLedger<ObjectSql>, StoreError> {
        self.ledger.as_ref().map_err(|e| StoreError::Failed(e.clone()))
    }

    /// D1, counting its statements in `statements`.
    fn catalogue(&self, statements: Rc<Cell<usize>>) -> std::result::Result<D1Store, StoreError> {
        let db = self.env.d1("DB").map_err(|e| StoreError::Failed(format!("the DB binding: {e}")))?;
        Ok(D1Store::counting(db, statements))
    }

    /// Runs `work` on the authority, restored from the ledger the first time.
    fn with<T>(
        &self,
        work: impl FnOnce(&mut Authority, &SqlLedger<ObjectSql>) -> std::result::Result<T, StoreError>,
    ) -> std::result::Result<T, StoreError> {
        let ledger = self.ledger()?;
        let mut slot = self.authority.borrow_mut();
        if slot.is_none() {
            let day_ms = settings::credit_day_ms(self.env.var("CREDIT_DAY_MS").ok().map(|v| v.to_string()).as_deref())
                .map_err(StoreError::Failed)?;
            let calendar = Calendar { day_ms };
            *slot = Some(Authority::restore(ledger.load()?, now_ms()).with_calendar(calendar));
        }
        work(slot.as_mut().expect("restored above"), ledger)
    }

    /// Sets the alarm when there is work for it sooner than the one already set.
    async fn schedule(&self) -> std::result::Result<(), StoreError> {
        let now = now_ms();
        let Some(at) = self.with(|authority, _| Ok(authority.next_alarm(now)))? else { return Ok(()) };
        if self.alarm_at.get().is_some_and(|set| set <= at) {
            return Ok(());
        }
        self.state.storage().set_alarm(at - now).await.map_err(|e| StoreError::Failed(format!("set alarm: {e}")))?;
        self.alarm_at.set(Some(at));
        Ok(())
    }

    async fn authenticate(&self, message: AuthenticateMessage) -> std::result::Result<Json, StoreError> {
        let (hash, now, count) = (message.key_hash.as_str(), message.now_ms, message.ask.as_ref());
        for _ in 0..READ_ATTEMPTS {
            let generation = match self.with(|authority, ledger| authority.lookup(ledger, hash, now, count))? {
                Lookup::Answered(admission) => return Ok(json!(admission)),
                Lookup::ReadThrough { generation } => generation,
            };
            let statements = Rc::new(Cell::new(0));
            let found = self.catalogue(statements.clone())?.key_with_workspace(hash).await?;
            worker::console_log!("{}", json!({"level": "info", "msg": "authority read-through", "d1_statements": statements.get()}));
            if let Some(admission) = self.with(|authority, ledger| authority.read_through(ledger, generation, found, now, count))? {
                return Ok(json!(admission));
            }
        }
        Err(StoreError::Unavailable)
    }

    /// A key's live balance, changed first if the message says how. A key the object does not
    /// serve yet is read from D1 first; a change is written to D1 at once, so D1's copy (what
    /// lists show) follows an operator's change without waiting for the alarm.
    async fn credits(&self, message: CreditsMessage) -> std::result::Result<Json, StoreError> {
        let key_id = message.key_id.as_str();
        if self.with(|authority, ledger| authority.credits(ledger, key_id, message.now_ms))?.is_none() {
            let Some(fresh) = self.catalogue(Rc::default())?.key_by_id(key_id).await? else {
                return Ok(json!(CreditsAnswer { found: false, credits: None }));
            };
            self.with(|authority, ledger| authority.adopt(ledger, fresh))?;
        }
        let credits = match message.change {
            None => self.with(|authority, ledger| authority.credits(ledger, key_id, message.now_ms))?.flatten(),
            Some(change) => {
                let now = message.now_ms;
                let changed = self.with(|authority, ledger| match message.audit {
                    Some(audit) => authority.change_credits_audited(ledger, key_id, change, now, audit),
                    None => authority.change_credits(ledger, key_id, change, now),
                })?;
                let catalogue = self.catalogue(Rc::default())?;
                if let Some(Some(credits)) = self.with(|authority, ledger| authority.credits(ledger, key_id, now))? {
                    // The change stands whatever D1 says, and the answer is not an error the
                    // caller would retry: what D1 refuses now, the alarm writes.
                    self.copy_credits(&catalogue, &[(key_id.to_string(), credits)]).await?;
                }
                self.copy_audits(&catalogue).await?;
                changed
            }
        };
        Ok(json!(CreditsAnswer { found: true, credits }))
    }

    /// Writes balances to D1's copy; one not written stays due, for the next alarm.
    async fn copy_credits(&self, catalogue: &D1Store, balances: &[(String, Credits)]) -> std::result::Result<(), StoreError> {
        if let Err(error) = self.write_credits(catalogue, balances).await {
            let line = json!({"level": "error", "msg": "balances left for the next alarm", "detail": error.to_string()});
            worker::console_error!("{line}");
        }
        Ok(())
    }

    /// Writes the audit entries D1 lacks; one not written stays due, for the next alarm.
    async fn copy_audits(&self, catalogue: &D1Store) -> std::result::Result<(), StoreError> {
        let due = self.with(|authority, _| Ok(authority.audits_due()))?;
        if due.is_empty() {
            return Ok(());
        }
        match catalogue.append_audit_once(&due).await {
            Ok(()) => self.with(|authority, ledger| authority.audits_written(ledger, &due)),
            Err(error) => {
                let line = json!({"level": "error", "msg": "audit entries left for the next alarm", "detail": error.to_string()});
                worker::console_error!("{line}");
                Ok(())
            }
        }
    }

    async fn write_credits(&self, catalogue: &D1Store, balances: &[(String, Credits)]) -> std::result::Result<(), StoreError> {
        catalogue.record_credits(balances).await?;
        self.with(|authority, ledger| authority.credits_written(ledger, balances))
    }

    /// Writes the usage rows and balances D1's copy lacks. Each is tried whatever the other's
    /// outcome; what is not written stays due.
    async fn write_counts(&self, catalogue: &D1Store, now: i64) -> std::result::Result<(), StoreError> {
        let usage = self.with(|authority, _| Ok(authority.usage_due()))?;
        let usage_written = match usage.is_empty() {
            true => Ok(()),
            false => match catalogue.record_usage(&self.state.id().to_string(), &usage).await {
                Ok(()) => self.with(|authority, ledger| authority.usage_written(ledger, &usage, now)),
                Err(error) => Err(error),
            },
        };
        let credits = self.with(|authority, ledger| authority.credits_due(ledger))?;
        let credits_written = match credits.is_empty() {
            true => Ok(()),
            false => self.write_credits(catalogue, &credits).await,
        };
        usage_written.and(credits_written)
    }

    /// Brings D1's usage and balances up to date with every use this object has answered, so
    /// a read of D1 that follows is exact; answers the live balances of the keys asked about
    /// that this object serves (the others' D1 copies are current).
    async fn settle(&self, message: SettleMessage) -> std::result::Result<Json, StoreError> {
        self.write_counts(&self.catalogue(Rc::default())?, message.now_ms).await?;
        let mut balances = Vec::new();
        for key_id in &message.key_ids {
            if let Some(Some(credits)) = self.with(|authority, ledger| authority.credits(ledger, key_id, message.now_ms))? {
                balances.push((key_id.clone(), credits));
            }
        }
        Ok(json!(SettleAnswer { balances }))
    }

    async fn hold(&self, message: TargetsMessage) -> std::result::Result<Json, StoreError> {
        let now = now_ms();
        self.with(|authority, ledger| authority.hold(ledger, &message.targets, &message.hold_id, now))?;
        Ok(json!({"held": message.targets}))
    }

    /// Releases `hold_id`'s hold of each target with D1's record of it, read after the hold's
    /// writer committed. A read that another hold or release overtook is read again; one that
    /// keeps being overtaken leaves the hold for the alarm (the target stays read through).
    async fn release(&self, workspace_id: Option<&str>, targets: &[String], hold_id: &str) -> std::result::Result<Json, StoreError> {
        let catalogue = self.catalogue(Rc::default())?;
        for target in targets {
            for _ in 0..READ_ATTEMPTS {
                let generation = self.with(|authority, _| Ok(authority.generation()))?;
                let released = if target == WHOLE_WORKSPACE {
                    let fresh = match workspace_id {
                        Some(id) => catalogue.workspace(id).await?,
                        None => None,
                    };
                    self.with(|authority, ledger| authority.release_workspace(ledger, hold_id, fresh, generation))?
                } else {
                    let fresh = catalogue.key_by_id(target).await?;
                    self.with(|authority, ledger| authority.release_key(ledger, target, hold_id, fresh, generation))?
                };
                if released {
                    break;
                }
            }
        }
        Ok(json!({"released": targets}))
    }

    async fn serve(&self, mut req: Request) -> std::result::Result<Json, StoreError> {
        let bad = |e: worker::Error| StoreError::Failed(format!("authority message: {e}"));
        let path = req.path();
        let op = path.strip_prefix(PROTOCOL).unwrap_or_default();
        let outcome = match op {
            "/authenticate" => self.authenticate(req.json().await.map_err(bad)?).await,
            "/hold" => self.hold(req.json().await.map_err(bad)?).await,
            "/credits" => self.credits(req.json().await.map_err(bad)?).await,
            "/settle" => self.settle(req.json().await.map_err(bad)?).await,
            "/release" => {
                let message: TargetsMessage = req.json().await.map_err(bad)?;
                self.release(Some(&message.workspace_id), &message.targets, &message.hold_id).await
            }
            _ => Err(StoreError::Failed(format!("no such authority operation: {path}"))),
        };
        // The answer stands without the alarm: the next request sets it.
        if let Err(error) = self.schedule().await {
            worker::console_error!("{}", json!({"level": "error", "msg": "authority alarm not set", "detail": error.to_string()}));
        }
        outcome
    }
}

impl DurableObject for KeyAuthorityObject {
    fn new(state: State, env: Env) -> Self {
        let ledger = SqlLedger::open(ObjectSql(state.storage().sql())).map_err(|e| e.to_string());
        KeyAuthorityObject { state, env, ledger, authority: RefCell::new(None), alarm_at: Cell::new(None) }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.serve(req).await {
            Ok(body) => answer(200, &body),
            Err(error) => refused(error),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.alarm_at.set(None);
        let now = now_ms();
        let outcome: std::result::Result<(), StoreError> = async {
            let due = self.with(|authority, ledger| authority.flush(ledger, now))?;
            if !due.is_empty() {
                match self.catalogue(Rc::default())?.record_uses(&due).await {
                    Ok(()) => self.with(|authority, ledger| authority.uses_written(ledger, &due))?,
                    Err(error) => {
                        self.with(|authority, _| {
                            authority.keep_uses(due);
                            Ok(())
                        })?;
                        return Err(error);
                    }
                }
            }
            // Usage, balances and holds are independent: one failing never holds up the others.
            let catalogue = self.catalogue(Rc::default())?;
            if let Err(error) = self.write_counts(&catalogue, now).await {
                let line = json!({"level": "error", "msg": "usage or balances left for the next alarm", "detail": error.to_string()});
                worker::console_error!("{line}");
            }
            self.copy_audits(&catalogue).await?;
            let (stale, workspace_id) = self.with(|authority, _| Ok((authority.stale_holds(now), authority.workspace_id())))?;
            for (target, hold_id) in stale {
                self.release(workspace_id.as_deref(), &[target], &hold_id).await?;
            }
            Ok(())
        }
        .await;
        self.schedule().await.map_err(|e| worker::Error::RustError(e.to_string()))?;
        outcome.map_err(|e| worker::Error::RustError(e.to_string()))?;
        Response::ok("")
    }
}
