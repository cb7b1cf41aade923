//! The SQLite executor for native tests: the SQL of `store::sql`, exactly as D1 runs it, over a
//! fresh in-memory SQLite with every migration applied, and a clock the test controls.
//!
//! D1 is SQLite; what this adds to match it: foreign keys enforced (D1 turns them on), every
//! batch in one transaction (D1's batches are atomic), and `julianday('now')` (the database
//! clock of migration 0007's trigger and of `DB_NOW_MS`) read from the test's clock. The clock
//! moves forward to any time a statement binds as `:now` (or a row's `:at`/`:created_at`/
//! `:updated_at`/`:validated_at`), as D1's would have passed it, and to [`Sqlite::advance_clock`].

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use super::sql::{Executor, Outcome, SqlStore, Statement, Value};
use crate::audit::AuditEvent;
use crate::keys::KeyRecord;
use crate::providers::ProviderRecord;
use crate::storage::StoreError;
use crate::store::{BlobStore, Endpoint, SealedSecret};

/// Binds that carry the caller's clock; the database clock is never behind them.
const CLOCK_BINDS: &[&str] = &["now", "at", "created_at", "updated_at", "validated_at"];

pub struct Sqlite {
    connection: Connection,
    clock: Arc<AtomicI64>,
    round_trips: Cell<u32>,
    /// The KV namespace of encrypted blobs, faked as a map.
    blobs: RefCell<HashMap<String, String>>,
}

/// Every storage port over SQLite, with blobs in a map.
pub type SqliteStore = SqlStore<Sqlite>;

impl Default for SqliteStore {
    fn default() -> Self {
        SqlStore::over(Sqlite::new())
    }
}

fn sql_error(error: rusqlite::Error) -> StoreError {
    StoreError::Failed(error.to_string())
}

impl Sqlite {
    /// A fresh in-memory database with `migrations/*.sql` applied in order.
    pub fn new() -> Self {
        let connection = Connection::open_in_memory().expect("SQLite opens in memory");
        let clock = Arc::new(AtomicI64::new(0));
        let read = Arc::clone(&clock);
        connection
            .create_scalar_function("julianday", 1, FunctionFlags::SQLITE_UTF8, move |context| {
                let argument: String = context.get(0)?;
                if argument != "now" {
                    return Err(rusqlite::Error::UserFunctionError(
                        format!("the test julianday only knows 'now', not {argument:?}").into(),
                    ));
                }
                Ok(read.load(Ordering::SeqCst) as f64 / 86_400_000.0 + 2_440_587.5)
            })
            .expect("julianday is replaceable");
        connection.pragma_update(None, "foreign_keys", "ON").expect("foreign keys on");
        let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut migrations: Vec<_> = std::fs::read_dir(directory)
            .expect("migrations/ is readable")
            .map(|entry| entry.expect("a migration").path())
            .filter(|path| path.extension().is_some_and(|e| e == "sql"))
            .collect();
        migrations.sort();
        for path in migrations {
            let sql = std::fs::read_to_string(&path).expect("a migration is readable");
            connection.execute_batch(&sql).unwrap_or_else(|e| panic!("{} applies: {e}", path.display()));
        }
        Sqlite { connection, clock, round_trips: Cell::new(0), blobs: RefCell::new(HashMap::new()) }
    }

    /// Moves the database clock forward to `now_ms` if that is later; returns it.
    pub fn advance_clock(&self, now_ms: i64) -> i64 {
        self.clock.fetch_max(now_ms, Ordering::SeqCst).max(now_ms)
    }

    /// Batches and queries run so far: what reached the database.
    pub fn round_trips(&self) -> u32 {
        self.round_trips.get()
    }

    fn run(&self, statement: &Statement) -> Result<Outcome, StoreError> {
        let rows = query(&self.connection, &statement.sql, &statement.binds)?;
        Ok(Outcome { rows, changes: self.connection.changes() as usize })
    }
}

/// Runs one statement with positional binds; its rows as JSON objects, as D1 returns them.
fn query(connection: &Connection, sql: &str, binds: &[Value]) -> Result<Vec<Map<String, Json>>, StoreError> {
    let mut prepared = connection.prepare(sql).map_err(sql_error)?;
    for (index, value) in binds.iter().enumerate() {
        let value = match value {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Integer(v) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*v)),
            Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
        };
        prepared.raw_bind_parameter(index + 1, value).map_err(sql_error)?;
    }
    let columns: Vec<String> = prepared.column_names().into_iter().map(String::from).collect();
    let mut rows = prepared.raw_query();
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        let mut map = Map::new();
        for (index, column) in columns.iter().enumerate() {
            let value = match row.get_ref(index).map_err(sql_error)? {
                ValueRef::Null => Json::Null,
                ValueRef::Integer(v) => Json::from(v),
                ValueRef::Real(v) => Json::from(v),
                ValueRef::Text(v) => Json::from(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(_) => return Err(StoreError::Failed(format!("column {column} is a blob"))),
            };
            map.insert(column.clone(), value);
        }
        found.push(map);
    }
    Ok(found)
}

/// A Durable Object's own SQLite database, as native tests stand it in: in memory, its SQL run
/// at once. It outlives the objects a test starts over it, as the object's storage does.
pub struct ObjectSqlite {
    connection: Connection,
}

impl Default for ObjectSqlite {
    fn default() -> Self {
        ObjectSqlite { connection: Connection::open_in_memory().expect("SQLite opens in memory") }
    }
}

impl super::authority_ledger::SyncSql for &ObjectSqlite {
    fn run(&self, sql: &str, binds: Vec<Value>) -> Result<Vec<Map<String, Json>>, StoreError> {
        query(&self.connection, sql, &binds)
    }
}

impl Default for Sqlite {
    fn default() -> Self {
        Sqlite::new()
    }
}

impl Executor for Sqlite {
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, StoreError> {
        self.round_trips.set(self.round_trips.get() + 1);
        for statement in &statements {
            for (name, value) in statement.names.iter().zip(&statement.binds) {
                if let (true, Value::Integer(at)) = (CLOCK_BINDS.contains(name), value) {
                    self.advance_clock(*at);
                }
            }
        }
        let transaction = self.connection.unchecked_transaction().map_err(sql_error)?;
        let outcomes = statements.iter().map(|statement| self.run(statement)).collect::<Result<Vec<_>, _>>()?;
        transaction.commit().map_err(sql_error)?;
        Ok(outcomes)
    }
}

impl BlobStore for SqliteStore {
    async fn put_blob(&self, name: &str, blob: &str) -> Result<(), StoreError> {
        self.executor().blobs.borrow_mut().insert(name.to_string(), blob.to_string());
        Ok(())
    }

    async fn get_blob(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.executor().blobs.borrow().get(name).cloned())
    }

    async fn delete_blob(&self, name: &str) -> Result<(), StoreError> {
        self.executor().blobs.borrow_mut().remove(name);
        Ok(())
    }
}

/// A row of the outbox as stored, for tests to look at.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct OutboxRow {
    pub id: String,
    pub workspace_id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub lease_until: Option<i64>,
    pub lease_token: Option<String>,
    pub delivered_at: Option<i64>,
    pub gave_up_at: Option<i64>,
    pub last_status: Option<i64>,
}

impl OutboxRow {
    pub fn payload(&self) -> Json {
        serde_json::from_str(&self.payload).unwrap_or(Json::Null)
    }
}

/// What tests look at and change directly, beside the ports.
impl SqliteStore {
    pub fn advance_clock(&self, now_ms: i64) -> i64 {
        self.executor().advance_clock(now_ms)
    }

    pub fn round_trips(&self) -> u32 {
        self.executor().round_trips()
    }

    /// The KV fake's blobs by name.
    pub fn blobs(&self) -> RefMut<'_, HashMap<String, String>> {
        self.executor().blobs.borrow_mut()
    }

    /// Runs one statement with `:name` binds outside any port, and returns its rows.
    pub fn sql<T: DeserializeOwned>(&self, sql: &str, binds: &[(&'static str, Value)]) -> Vec<T> {
        let statement = Statement::new(sql, binds).expect("the test's statement compiles");
        let outcome = self.executor().run(&statement).unwrap_or_else(|e| panic!("{sql}: {e}"));
        outcome.rows().expect("rows of the asked type")
    }

    /// Runs one statement and returns how many rows it changed.
    pub fn execute(&self, sql: &str, binds: &[(&'static str, Value)]) -> usize {
        let statement = Statement::new(sql, binds).expect("the test's statement compiles");
        self.executor().run(&statement).unwrap_or_else(|e| panic!("{sql}: {e}")).changes
    }

    /// Every audit entry, oldest first.
    pub fn audit(&self) -> Vec<AuditEvent> {
        let rows: Vec<super::sql::audit::AuditRow> =
            self.sql("SELECT seq, id, workspace_id, at, action, actor_key_id, target, ip, detail FROM audit_events ORDER BY seq", &[]);
        rows.into_iter().map(|row| row.into_entry().1).collect()
    }

    /// Every platform key, oldest first.
    pub fn keys(&self) -> Vec<KeyRecord> {
        let outcome = self
            .executor()
            .run(&Statement::new(&format!("SELECT {} FROM api_keys ORDER BY created_at, id", super::sql::KEY_COLUMNS), &[]).unwrap())
            .unwrap();
        super::sql::key_records(&outcome).unwrap()
    }

    /// Every provider config, by workspace and provider.
    pub fn all_providers(&self) -> Vec<ProviderRecord> {
        let sql = format!("SELECT {} FROM provider_configs ORDER BY workspace_id, provider", super::sql::providers::PROVIDER_COLUMNS);
        super::sql::providers::provider_records(&self.executor().run(&Statement::new(&sql, &[]).unwrap()).unwrap()).unwrap()
    }

    /// Retired blob names with when they were retired, in that order.
    pub fn retired_blobs(&self) -> Vec<(String, i64)> {
        #[derive(serde::Deserialize)]
        struct Row {
            blob_name: String,
            retired_at: i64,
        }
        let rows: Vec<Row> = self.sql("SELECT blob_name, retired_at FROM retired_blobs ORDER BY retired_at, blob_name", &[]);
        rows.into_iter().map(|r| (r.blob_name, r.retired_at)).collect()
    }

    /// The outbox, in the order rows were queued.
    pub fn outbox(&self) -> Vec<OutboxRow> {
        self.sql("SELECT * FROM outbox ORDER BY rowid", &[])
    }

    /// How many rows `table` holds.
    pub fn count(&self, table: &str) -> usize {
        #[derive(serde::Deserialize)]
        struct Row {
            n: i64,
        }
        let rows: Vec<Row> = self.sql(&format!("SELECT COUNT(*) AS n FROM {table}"), &[]);
        rows.first().map_or(0, |r| r.n as usize)
    }

    /// A bare workspace row, for tests that store what belongs to one without creating it.
    pub fn add_workspace_row(&self, id: &str) {
        self.execute(
            "INSERT OR IGNORE INTO workspaces (id, name, read_only, default_capabilities, created_at) VALUES (:id, :id, 0, '[]', 0)",
            &[("id", super::sql::exec::text(id))],
        );
    }

    /// Stores `record` as it is (its workspace row too), bypassing the port's conditions.
    pub fn put_provider_row(&self, record: &ProviderRecord) {
        use super::sql::exec::int;
        self.add_workspace_row(&record.workspace_id);
        let columns = super::sql::providers::PROVIDER_COLUMNS;
        let values = columns.split(", ").map(|c| format!(":{c}")).collect::<Vec<_>>().join(", ");
        self.execute(
            &format!("INSERT OR REPLACE INTO provider_configs ({columns}) VALUES ({values})"),
            &[super::sql::providers::record_binds(record), vec![("is_default", int(record.is_default as i64))]].concat(),
        );
    }

    /// Stores an inbound webhook secret as it is (its workspace row too).
    pub fn put_webhook_secret_row(&self, secret: &SealedSecret, expires_at: Option<i64>) {
        use super::sql::exec::{int, opt_int, opt_text, text};
        self.add_workspace_row(&secret.workspace_id);
        self.execute(
            "INSERT OR REPLACE INTO webhook_secrets (workspace_id, version, sealed, kek_id, created_at, expires_at, sealed_name) \
             VALUES (:workspace_id, :version, :sealed, :kek_id, :created_at, :expires_at, :sealed_name)",
            &[
                ("workspace_id", text(&secret.workspace_id)),
                ("version", int(secret.version)),
                ("sealed", text(&secret.sealed)),
                ("kek_id", text(&secret.kek_id)),
                ("created_at", int(secret.created_at)),
                ("expires_at", opt_int(expires_at)),
                ("sealed_name", opt_text(secret.name.as_deref())),
            ],
        );
    }

    /// Stores a notification endpoint as it is (its workspace row too).
    pub fn put_endpoint_row(&self, endpoint: &Endpoint) {
        use super::sql::exec::{int, opt_text, text};
        let secret = &endpoint.secret;
        self.add_workspace_row(&secret.workspace_id);
        self.execute(
            "INSERT OR REPLACE INTO notification_endpoints (workspace_id, url, sealed, kek_id, version, created_at, sealed_name) \
             VALUES (:workspace_id, :url, :sealed, :kek_id, :version, :created_at, :sealed_name)",
            &[
                ("workspace_id", text(&secret.workspace_id)),
                ("url", text(&endpoint.url)),
                ("sealed", text(&secret.sealed)),
                ("kek_id", text(&secret.kek_id)),
                ("version", int(secret.version)),
                ("created_at", int(secret.created_at)),
                ("sealed_name", opt_text(secret.name.as_deref())),
            ],
        );
    }

    /// Every inbound webhook secret, by workspace and version.
    pub fn webhook_secret_rows(&self) -> Vec<SealedSecret> {
        let sql = format!("SELECT {} FROM webhook_secrets ORDER BY workspace_id, version", super::sql::webhooks::SECRET_COLUMNS);
        let rows: Vec<super::sql::webhooks::SecretRow> = self.sql(&sql, &[]);
        rows.into_iter().map(super::sql::webhooks::SecretRow::into_secret).collect()
    }
}
