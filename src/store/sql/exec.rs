//! The one interface the SQL runs through: statements with named binds, an executor that runs
//! them as one atomic batch, and the rows and change counts that come back. D1 executes them in
//! the Worker (`store::d1`), SQLite in native tests (`store::sqlite`): the same SQL text.

use serde::de::DeserializeOwned;
use serde_json::Map;

use crate::storage::StoreError;

/// A bound value, as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

pub fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

pub fn int(value: i64) -> Value {
    Value::Integer(value)
}

pub fn opt_text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

pub fn opt_int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, int)
}

pub fn json_text(value: &serde_json::Value) -> Value {
    Value::Text(value.to_string())
}

/// One statement, its `:name` binds compiled once to the positional `?N` that D1 takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    /// In `?N` order: `binds[0]` is `?1`.
    pub binds: Vec<Value>,
    /// The name each bind had, in the same order.
    pub names: Vec<&'static str>,
}

impl Statement {
    /// Compiles `sql`, whose parameters are written `:name`, against `binds` (names without
    /// the colon). A name the SQL uses but `binds` lacks is an error; a bind the SQL does not
    /// use is left out (D1 refuses extra parameters).
    pub fn new(sql: &str, binds: &[(&'static str, Value)]) -> Result<Statement, StoreError> {
        let mut out = String::with_capacity(sql.len());
        let (mut names, mut values): (Vec<&'static str>, Vec<Value>) = (Vec::new(), Vec::new());
        let mut chars = sql.char_indices().peekable();
        let (mut quoted, mut previous) = (false, ' ');
        while let Some((at, c)) = chars.next() {
            if c == '\'' {
                quoted = !quoted;
            }
            let starts_name =
                !quoted && c == ':' && previous != ':' && chars.peek().is_some_and(|(_, n)| n.is_ascii_alphabetic() || *n == '_');
            previous = c;
            if !starts_name {
                out.push(c);
                continue;
            }
            let mut end = at + 1;
            while let Some((i, n)) = chars.peek().copied() {
                if !(n.is_ascii_alphanumeric() || n == '_') {
                    break;
                }
                end = i + n.len_utf8();
                chars.next();
            }
            let name = &sql[at + 1..end];
            let index = match names.iter().position(|known| *known == name) {
                Some(index) => index,
                None => {
                    let (known, value) = binds
                        .iter()
                        .find(|(known, _)| *known == name)
                        .ok_or_else(|| StoreError::Failed(format!("statement uses :{name}, which is not bound")))?;
                    names.push(known);
                    values.push(value.clone());
                    names.len() - 1
                }
            };
            out.push_str(&format!("?{}", index + 1));
        }
        Ok(Statement { sql: out, binds: values, names })
    }
}

/// What one statement gave back: its rows (column name to value) and the rows it changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub rows: Vec<Map<String, serde_json::Value>>,
    pub changes: usize,
}

impl Outcome {
    pub fn rows<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.rows.iter().map(|row| row_as(row)).collect()
    }

    pub fn first<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        self.rows.first().map(row_as).transpose()
    }
}

fn row_as<T: DeserializeOwned>(row: &Map<String, serde_json::Value>) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::Object(row.clone())).map_err(|e| StoreError::Failed(format!("row: {e}")))
}

/// Runs statements. A batch is atomic: every statement commits or none does, and a failure's
/// text (a trigger's `RAISE` message included) comes back as `StoreError::Failed`.
#[allow(async_fn_in_trait)]
pub trait Executor {
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<Outcome>, StoreError>;

    async fn query(&self, statement: Statement) -> Result<Outcome, StoreError> {
        let mut outcomes = self.batch(vec![statement]).await?;
        outcomes.pop().ok_or_else(|| StoreError::Failed("a batch of one returned nothing".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compile_to_positions_in_order_of_first_use() {
        let statement =
            Statement::new("SELECT :b, :a, ':c', :b, x::int", &[("a", int(1)), ("b", text("two")), ("unused", Value::Null)]).unwrap();
        assert_eq!(statement.sql, "SELECT ?1, ?2, ':c', ?1, x::int");
        assert_eq!(statement.binds, vec![text("two"), int(1)]);
        assert_eq!(statement.names, vec!["b", "a"]);
    }

    #[test]
    fn a_name_without_a_bind_is_an_error() {
        assert!(Statement::new("SELECT :missing", &[]).is_err());
    }
}
