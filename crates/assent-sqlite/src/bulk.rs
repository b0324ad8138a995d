//! Multi-row INSERTs for imports and fan-outs: on sqlx's SQLite driver every statement is
//! a round trip to the connection's thread, so a hundred rows per statement is a hundred
//! times fewer of them.

use assent_store::Result;
use sqlx::SqliteConnection;

use crate::db;

pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Int(Some(i64::from(v)))
    }
}

/// Inserts `rows` with `head` (`INSERT [OR IGNORE] INTO t (a, b, c)`), in statements of at
/// most 100 rows. Every row must have as many values as `head` has columns.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    head: &str,
    columns: usize,
    rows: Vec<Vec<Val>>,
) -> Result<u64> {
    let mut affected = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(100).collect();
        let one = format!("({})", vec!["?"; columns].join(", "));
        let sql = format!(
            "{head} VALUES {}",
            vec![one.as_str(); chunk.len()].join(", ")
        );
        // Only placeholders are generated; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in chunk {
            for v in row {
                q = match v {
                    Val::Text(t) => q.bind(t),
                    Val::Int(i) => q.bind(i),
                };
            }
        }
        affected += q.execute(&mut *conn).await.map_err(db)?.rows_affected();
    }
    Ok(affected)
}
