//! The key authority's ledger in SQL: the tables of each authority object's own SQLite
//! database. The Durable Object runs the SQL over `state.storage().sql()`, and native tests
//! run the same text over rusqlite.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::sql::Value;
use crate::audit::AuditEvent;
use crate::keys::authority::{Counter, Ledger, Snapshot, UsageRow};
use crate::keys::usage::Counts;
use crate::keys::{KeyRecord, Workspace};
use crate::storage::StoreError;

/// SQL that runs at once, as a Durable Object's storage does: positional `?` binds, rows back
/// as JSON objects.
pub trait SyncSql {
    fn run(&self, sql: &str, binds: Vec<Value>) -> Result<Vec<Map<String, Json>>, StoreError>;
}

/// The tables, created when an object starts; `IF NOT EXISTS` makes that idempotent.
const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS workspace (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS holds (target TEXT NOT NULL, hold_id TEXT NOT NULL, since INTEGER NOT NULL, \
     PRIMARY KEY (target, hold_id))",
    "CREATE TABLE IF NOT EXISTS counters (key_id TEXT PRIMARY KEY, window_start INTEGER NOT NULL, window_ms INTEGER NOT NULL, \
     hits INTEGER NOT NULL, marked INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS usage (key_id TEXT NOT NULL, hour_start INTEGER NOT NULL, workspace_id TEXT NOT NULL, \
     counts TEXT NOT NULL, flushed INTEGER NOT NULL, PRIMARY KEY (key_id, hour_start))",
    "CREATE TABLE IF NOT EXISTS credits_due (key_id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS audits_due (id TEXT PRIMARY KEY, event TEXT NOT NULL)",
];

pub struct SqlLedger<X: SyncSql> {
    sql: X,
}

fn encode(value: &impl serde::Serialize) -> Result<Value, StoreError> {
    serde_json::to_string(value).map(Value::Text).map_err(|e| StoreError::Failed(format!("ledger record: {e}")))
}

fn rows<T: DeserializeOwned>(rows: Vec<Map<String, Json>>) -> Result<Vec<T>, StoreError> {
    rows.into_iter()
        .map(|row| serde_json::from_value(Json::Object(row)).map_err(|e| StoreError::Failed(format!("ledger row: {e}"))))
        .collect()
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Failed(format!("ledger record: {e}")))
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
}

#[derive(Deserialize)]
struct HoldRow {
    target: String,
    hold_id: String,
    since: i64,
}

#[derive(Deserialize)]
struct UsageLedgerRow {
    key_id: String,
    hour_start: i64,
    workspace_id: String,
    counts: String,
    flushed: i64,
}

#[derive(Deserialize)]
struct CounterRow {
    key_id: String,
    window_start: i64,
    window_ms: i64,
    hits: i64,
    marked: i64,
}

impl<X: SyncSql> SqlLedger<X> {
    /// The ledger over `sql`, with its tables created.
    pub fn open(sql: X) -> Result<Self, StoreError> {
        for statement in SCHEMA {
            sql.run(statement, Vec::new())?;
        }
        Ok(SqlLedger { sql })
    }
}

impl<X: SyncSql> SqlLedger<X> {
    fn one_key(&self, sql: &str, bind: &str) -> Result<Option<KeyRecord>, StoreError> {
        match rows::<RecordRow>(self.sql.run(sql, vec![Value::Text(bind.to_string())])?)?.first() {
            Some(row) => decode(&row.record).map(Some),
            None => Ok(None),
        }
    }
}

impl<X: SyncSql> Ledger for SqlLedger<X> {
    fn save_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO keys (key_id, key_hash, record) VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET record = excluded.record";
        self.sql.run(sql, vec![Value::Text(key.id.clone()), Value::Text(key.key_hash.clone()), encode(key)?]).map(drop)
    }

    fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.one_key("SELECT record FROM keys WHERE key_hash = ?", key_hash)
    }

    fn key_by_id(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.one_key("SELECT record FROM keys WHERE key_id = ?", key_id)
    }

    fn forget_key(&self, key_id: &str) -> Result<(), StoreError> {
        self.sql.run("DELETE FROM keys WHERE key_id = ?", vec![Value::Text(key_id.to_string())])?;
        self.sql.run("DELETE FROM counters WHERE key_id = ?", vec![Value::Text(key_id.to_string())]).map(drop)
    }

    fn save_workspace(&self, workspace: &Workspace) -> Result<(), StoreError> {
        let sql = "INSERT INTO workspace (singleton, record) VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE SET record = excluded.record";
        self.sql.run(sql, vec![encode(workspace)?]).map(drop)
    }

    fn save_hold(&self, target: &str, hold_id: &str, since_ms: i64) -> Result<(), StoreError> {
        // A repeated hold by the same writer keeps its first time: the timeout counts from it.
        let sql = "INSERT INTO holds (target, hold_id, since) VALUES (?, ?, ?) ON CONFLICT (target, hold_id) DO NOTHING";
        self.sql.run(sql, vec![Value::Text(target.to_string()), Value::Text(hold_id.to_string()), Value::Integer(since_ms)]).map(drop)
    }

    fn drop_hold(&self, target: &str, hold_id: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM holds WHERE target = ? AND hold_id = ?";
        self.sql.run(sql, vec![Value::Text(target.to_string()), Value::Text(hold_id.to_string())]).map(drop)
    }

    fn mark_counting(&self, key_id: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO counters (key_id, window_start, window_ms, hits, marked) VALUES (?, 0, 0, 0, 1) \
                   ON CONFLICT (key_id) DO UPDATE SET marked = 1";
        self.sql.run(sql, vec![Value::Text(key_id.to_string())]).map(drop)
    }

    fn save_counters(&self, counters: &[(String, Counter)]) -> Result<(), StoreError> {
        let sql = "INSERT INTO counters (key_id, window_start, window_ms, hits, marked) VALUES (?, ?, ?, ?, 0) \
                   ON CONFLICT (key_id) DO UPDATE SET window_start = excluded.window_start, window_ms = excluded.window_ms, \
                   hits = excluded.hits, marked = 0";
        for (key_id, counter) in counters {
            let binds = vec![
                Value::Text(key_id.clone()),
                Value::Integer(counter.window_start),
                Value::Integer(counter.window_ms),
                Value::Integer(counter.hits as i64),
            ];
            self.sql.run(sql, binds)?;
        }
        Ok(())
    }

    fn drop_counters(&self, key_ids: &[String]) -> Result<(), StoreError> {
        for key_id in key_ids {
            self.sql.run("DELETE FROM counters WHERE key_id = ?", vec![Value::Text(key_id.clone())])?;
        }
        Ok(())
    }

    fn save_usage(&self, row: &UsageRow, flushed: bool) -> Result<(), StoreError> {
        let sql = "INSERT INTO usage (key_id, hour_start, workspace_id, counts, flushed) VALUES (?, ?, ?, ?, ?) \
                   ON CONFLICT (key_id, hour_start) DO UPDATE SET counts = excluded.counts, flushed = excluded.flushed";
        let binds = vec![
            Value::Text(row.key_id.clone()),
            Value::Integer(row.hour_start),
            Value::Text(row.workspace_id.clone()),
            encode(&row.counts)?,
            Value::Integer(flushed as i64),
        ];
        self.sql.run(sql, binds).map(drop)
    }

    fn drop_usage_before(&self, hour_start: i64) -> Result<(), StoreError> {
        self.sql.run("DELETE FROM usage WHERE hour_start < ? AND flushed = 1", vec![Value::Integer(hour_start)]).map(drop)
    }

    fn mark_credits_due(&self, key_id: &str, due: bool) -> Result<(), StoreError> {
        let sql = if due { "INSERT OR IGNORE INTO credits_due (key_id) VALUES (?)" } else { "DELETE FROM credits_due WHERE key_id = ?" };
        self.sql.run(sql, vec![Value::Text(key_id.to_string())]).map(drop)
    }

    fn save_audit(&self, id: &str, event: Option<&AuditEvent>) -> Result<(), StoreError> {
        match event {
            Some(event) => {
                let text = serde_json::to_string(event).map_err(|e| StoreError::Failed(format!("audit entry: {e}")))?;
                self.sql.run(
                    "INSERT OR REPLACE INTO audits_due (id, event) VALUES (?, ?)",
                    vec![Value::Text(id.to_string()), Value::Text(text)],
                )
            }
            None => self.sql.run("DELETE FROM audits_due WHERE id = ?", vec![Value::Text(id.to_string())]),
        }
        .map(drop)
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let workspace = match rows::<RecordRow>(self.sql.run("SELECT record FROM workspace", Vec::new())?)?.first() {
            Some(row) => Some(decode::<Workspace>(&row.record)?),
            None => None,
        };
        let holds = rows::<HoldRow>(self.sql.run("SELECT target, hold_id, since FROM holds", Vec::new())?)?
            .into_iter()
            .map(|row| (row.target, row.hold_id, row.since))
            .collect();
        let sql = "SELECT key_id, window_start, window_ms, hits, marked FROM counters";
        let counters = rows::<CounterRow>(self.sql.run(sql, Vec::new())?)?
            .into_iter()
            .map(|row| {
                let counter = Counter { window_start: row.window_start, window_ms: row.window_ms, hits: row.hits.max(0) as u32 };
                (row.key_id, counter, row.marked != 0)
            })
            .collect();
        let sql = "SELECT key_id, hour_start, workspace_id, counts, flushed FROM usage";
        let usage = rows::<UsageLedgerRow>(self.sql.run(sql, Vec::new())?)?
            .into_iter()
            .map(|row| {
                let counts: Counts = decode(&row.counts)?;
                Ok((UsageRow { key_id: row.key_id, workspace_id: row.workspace_id, hour_start: row.hour_start, counts }, row.flushed != 0))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        #[derive(Deserialize)]
        struct DueRow {
            key_id: String,
        }
        let credits_due =
            rows::<DueRow>(self.sql.run("SELECT key_id FROM credits_due", Vec::new())?)?.into_iter().map(|row| row.key_id).collect();
        #[derive(Deserialize)]
        struct AuditRow {
            event: String,
        }
        let audits_due = rows::<AuditRow>(self.sql.run("SELECT event FROM audits_due", Vec::new())?)?
            .iter()
            .map(|row| decode::<AuditEvent>(&row.event))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Snapshot { workspace, holds, counters, usage, credits_due, audits_due })
    }
}
