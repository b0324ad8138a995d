//! Multi-row INSERTs for imports and fan-outs: on sqlx's SQLite driver every statement is
//! a round trip to the connection's thread, so a hundred rows per statement is a hundred
//! times fewer of them.

use assent_store::Result;
use sqlx::SqliteConnection;

#[derive(Clone, PartialEq)]
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
/// most 100 rows. Every row must have as many values as `head` has columns. A column whose
/// value is the same in every row of a statement is bound once: sqlx's cost is per bound
/// value, and a fan-out's rows share most of theirs (tenant, sender, kind, times).
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    head: &str,
    columns: usize,
    rows: Vec<Vec<Val>>,
) -> Result<u64> {
    let mut affected = 0;
    let mut rows = rows.into_iter().peekable();
    let mut next = None;
    if rows.peek().is_some() {
        next = Some(statement(head, columns, rows.by_ref().take(100).collect()));
    }
    while let Some(q) = next.take() {
        // The next statement is put together while this one runs on the connection's
        // thread: otherwise that thread waits for it.
        let following = async {
            if rows.peek().is_some() {
                Some(statement(head, columns, rows.by_ref().take(100).collect()))
            } else {
                None
            }
        };
        let (done, following) = tokio::join!(q.execute(&mut *conn), following);
        affected += done?.rows_affected();
        next = following;
    }
    Ok(affected)
}

/// One multi-row INSERT of `chunk`, as [`insert`] describes.
fn statement(head: &str, columns: usize, chunk: Vec<Vec<Val>>) -> Query<'static> {
    let shared: Vec<bool> = (0..columns)
        .map(|k| chunk.len() > 1 && chunk.iter().all(|r| r[k] == chunk[0][k]))
        .collect();
    let varying = shared.iter().filter(|s| !**s).count();
    let mixed = varying != 0 && varying != columns;
    let sql = if !mixed {
        let one = format!("({})", vec!["?"; columns].join(", "));
        format!(
            "{head} VALUES {}",
            vec![one.as_str(); chunk.len()].join(", ")
        )
    } else {
        // SELECT s.c0, v.column1, s.c2, … FROM (SELECT ? AS c0, ? AS c2) s, (VALUES (?), (?)) v
        let mut next = 0;
        let select = shared
            .iter()
            .enumerate()
            .map(|(k, s)| {
                if *s {
                    format!("s.c{k}")
                } else {
                    next += 1;
                    format!("v.column{next}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let once = (0..columns)
            .filter(|k| shared[*k])
            .map(|k| format!("? AS c{k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let one = format!("({})", vec!["?"; varying].join(", "));
        format!(
            "{head} SELECT {select} FROM (SELECT {once}) s, (VALUES {}) v",
            vec![one.as_str(); chunk.len()].join(", ")
        )
    };
    // Only placeholders are generated; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    if mixed {
        for (v, _) in chunk[0].iter().zip(&shared).filter(|(_, s)| **s) {
            q = bind(q, v.clone());
        }
    }
    for row in chunk {
        for (v, s) in row.into_iter().zip(&shared) {
            if !(mixed && *s) {
                q = bind(q, v);
            }
        }
    }
    q
}

type Query<'a> = sqlx::query::Query<'a, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind(q: Query<'_>, v: Val) -> Query<'_> {
    match v {
        Val::Text(t) => q.bind(t),
        Val::Int(i) => q.bind(i),
    }
}
