//! Group commit for the one SQLite writer. Each write runs inside a savepoint of a shared
//! open transaction; a committer task commits whatever has gathered in one durable write,
//! and every writer waits for the commit that holds its change before it returns. A burst
//! of inbound STOPs costs one fsync, not one each, and nobody is acknowledged early.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use assent_store::{Result, StoreError};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, MutexGuard, Notify, watch};

pub(crate) struct Shared {
    pool: SqlitePool,
    state: Mutex<State>,
    /// The highest batch number committed (or failed).
    done: watch::Sender<u64>,
    failed: std::sync::Mutex<HashSet<u64>>,
    wake: Arc<Notify>,
}

struct State {
    tx: Option<Transaction<'static, Sqlite>>,
    /// The batch the open transaction belongs to.
    batch: u64,
    /// A savepoint left open by a write that returned early: roll it back first.
    open_savepoint: bool,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
}

impl Writer {
    pub(crate) fn new(pool: SqlitePool) -> Writer {
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            pool,
            state: Mutex::new(State {
                tx: None,
                batch: 1,
                open_savepoint: false,
            }),
            done: watch::Sender::new(0),
            failed: std::sync::Mutex::new(HashSet::new()),
            wake: wake.clone(),
        });
        tokio::spawn(committer(Arc::downgrade(&shared), wake));
        Writer { shared }
    }

    /// Starts a write: the caller gets the connection inside a fresh savepoint.
    pub(crate) async fn begin(&self) -> Result<Write<'_>> {
        let mut state = self.shared.state.lock().await;
        if state.tx.is_none() {
            state.tx = Some(self.shared.pool.begin_with("BEGIN IMMEDIATE").await?);
        }
        if state.open_savepoint {
            exec(&mut state, "ROLLBACK TO SAVEPOINT w").await?;
            exec(&mut state, "RELEASE SAVEPOINT w").await?;
            state.open_savepoint = false;
        }
        exec(&mut state, "SAVEPOINT w").await?;
        state.open_savepoint = true;
        Ok(Write {
            state,
            shared: &self.shared,
        })
    }

    /// A guard that asks for a commit of whatever is open when it is dropped: for a caller
    /// that keeps several writes and commits the last, in case it never gets there.
    pub(crate) fn commit_soon_on_drop(&self) -> CommitSoon<'_> {
        CommitSoon(&self.shared.wake)
    }
}

pub(crate) struct CommitSoon<'a>(&'a Notify);

impl Drop for CommitSoon<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Lets the committer notice the store is gone and stop.
        self.shared.wake.notify_one();
    }
}

async fn exec(state: &mut State, sql: &'static str) -> Result<()> {
    let Some(tx) = state.tx.as_mut() else {
        return Err(StoreError::Database("no open write transaction".into()));
    };
    sqlx::query(sql).execute(&mut **tx).await?;
    Ok(())
}

pub(crate) struct Write<'a> {
    state: MutexGuard<'a, State>,
    shared: &'a Shared,
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        // A write that returns early (a duplicate, a refusal, an error) leaves its
        // savepoint open: the committer undoes it and ends the transaction now, rather
        // than holding the database's write lock until some later write comes along.
        if self.state.open_savepoint {
            self.shared.wake.notify_one();
        }
    }
}

impl Write<'_> {
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        match self.state.tx.as_mut() {
            Some(tx) => tx,
            None => unreachable!("begin() always opens the transaction"),
        }
    }

    /// Keeps this write without waiting for it to be durable: it is committed with the
    /// next write that commits, or sooner if anyone's commit comes first. Returns the batch
    /// it went into, for [`Write::commit_after`]: a caller writing several parts commits
    /// the last and learns whether every part was committed.
    pub(crate) async fn keep(mut self) -> Result<u64> {
        exec(&mut self.state, "RELEASE SAVEPOINT w").await?;
        self.state.open_savepoint = false;
        Ok(self.state.batch)
    }

    /// [`Write::commit`], failing also when the commit of any batch in `kept` (parts
    /// kept earlier, which another write's commit may have taken) failed: their rows were
    /// rolled back, though this one's were not.
    pub(crate) async fn commit_after(self, kept: &[u64]) -> Result<()> {
        let shared = self.shared;
        self.commit().await?;
        let failed = shared
            .failed
            .lock()
            .map(|f| kept.iter().any(|b| f.contains(b)))
            .unwrap_or(true);
        if failed {
            return Err(StoreError::Database(
                "commit failed for an earlier part of this write".into(),
            ));
        }
        Ok(())
    }

    /// Keeps this write and returns once it is durably committed.
    pub(crate) async fn commit(mut self) -> Result<()> {
        exec(&mut self.state, "RELEASE SAVEPOINT w").await?;
        self.state.open_savepoint = false;
        let batch = self.state.batch;
        let shared = self.shared;
        let mut done = shared.done.subscribe();
        drop(self);
        shared.wake.notify_one();
        done.wait_for(|d| *d >= batch)
            .await
            .map_err(|_| StoreError::Database("the SQLite committer stopped".into()))?;
        if shared
            .failed
            .lock()
            .map(|f| f.contains(&batch))
            .unwrap_or(true)
        {
            return Err(StoreError::Database("commit failed".into()));
        }
        Ok(())
    }
}

async fn committer(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = shared.state.lock().await;
        if state.tx.is_none() {
            continue;
        }
        if state.open_savepoint {
            // A write that returned early without committing: its changes are dropped.
            let undone = async {
                exec(&mut state, "ROLLBACK TO SAVEPOINT w").await?;
                exec(&mut state, "RELEASE SAVEPOINT w").await
            }
            .await;
            state.open_savepoint = false;
            if let Err(e) = undone {
                tracing::error!(error = %e, "could not undo an abandoned write");
            }
        }
        if let Some(tx) = state.tx.take() {
            finish(&shared, &mut state, tx).await;
        }
    }
}

async fn finish(shared: &Shared, state: &mut State, tx: Transaction<'static, Sqlite>) {
    let batch = state.batch;
    state.batch += 1;
    if let Err(e) = tx.commit().await {
        tracing::error!(error = %e, batch, "SQLite commit failed");
        if let Ok(mut f) = shared.failed.lock() {
            if f.len() > 1000 {
                f.clear();
            }
            f.insert(batch);
        }
    }
    shared.done.send_replace(batch);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A part kept for a later commit can be committed sooner by another write's commit;
    /// when that commit fails, the part is rolled back, and the writer of the parts must
    /// hear of it from its last commit rather than count rows that are not there.
    #[tokio::test]
    async fn a_kept_part_lost_with_someone_elses_commit_fails_the_last_commit() {
        let dir = tempfile::tempdir().unwrap();
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
            "sqlite://{}/w.db",
            dir.path().display()
        ))
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        for sql in [
            "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE part (id INTEGER PRIMARY KEY)",
            // Checked at COMMIT: a row without its parent fails the whole transaction.
            "CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        let writer = Writer::new(pool.clone());

        let mut w = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO part (id) VALUES (1)")
            .execute(w.conn())
            .await
            .unwrap();
        let kept = w.keep().await.unwrap();

        // Someone else's write, whose commit fails, takes the kept part down with it.
        let mut other = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO child (parent) VALUES (42)")
            .execute(other.conn())
            .await
            .unwrap();
        assert!(other.commit().await.is_err());

        let mut w = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO part (id) VALUES (2)")
            .execute(w.conn())
            .await
            .unwrap();
        assert!(
            w.commit_after(&[kept]).await.is_err(),
            "the first part was rolled back: the write must not report success"
        );
        let parts: Vec<i64> = sqlx::query_scalar("SELECT id FROM part")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(parts, [2]);
    }
}
