//! The D1 executor: runs the SQL of `store::sql` over the Worker's `DB` binding.

use std::cell::Cell;
use std::rc::Rc;

use serde_json::Map;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

use super::sql::{Executor, Outcome, SqlStore, Statement, Value};
use crate::storage::StoreError;

pub struct D1 {
    db: D1Database,
    /// Statements sent so far, shared by the stores of one request: what its log line reports.
    statements: Rc<Cell<usize>>,
}

/// Every storage port over D1.
pub type D1Store = SqlStore<D1>;

impl D1Store {
    pub fn new(db: D1Database) -> Self {
        D1Store::counting(db, Rc::default())
    }

    /// A store whose statements are added to `statements`.
    pub fn counting(db: D1Database, statements: Rc<Cell<usize>>) -> Self {
        SqlStore::over(D1 { db, statements })
    }
}

/// D1 has no BigInt: integers travel as JS numbers, exact below 2^53 (Unix ms fits).
fn js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Integer(value) => JsValue::from_f64(*value as f64),
        Value::Real(value) => JsValue::from_f64(*value),
        Value::Text(value) => JsValue::from_str(value),
    }
}

fn failed(error: worker::Error) -> StoreError {
    StoreError::Failed(error.to_string())
}

impl D1 {
    fn prepare(&self, statement: &Statement) -> Result<D1PreparedStatement, StoreError> {
        let binds: Vec<JsValue> = statement.binds.iter().map(js).collect();
        self.db.prepare(&statement.sql).bind(&binds).map_err(failed)
    }
}

fn outcome(result: &D1Result) -> Result<Outcome, StoreError> {
    let rows = result.results::<Map<String, serde_json::Value>>().map_err(failed)?;
    let changes = result.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0);
    Ok(Outcome { rows, changes })
}

impl Executor for D1 {
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, StoreError> {
        self.statements.set(self.statements.get() + statements.len());
        let prepared = statements.iter().map(|s| self.prepare(s)).collect::<Result<Vec<_>, _>>()?;
        let results = self.db.batch(prepared).await.map_err(failed)?;
        results.iter().map(outcome).collect()
    }

    async fn query(&self, statement: Statement) -> Result<Outcome, StoreError> {
        self.statements.set(self.statements.get() + 1);
        outcome(&self.prepare(&statement)?.all().await.map_err(failed)?)
    }
}
