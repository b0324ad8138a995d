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
    /// next write that commits (a caller writing several parts commits the last).
    pub(crate) async fn keep(mut self) -> Result<()> {
        exec(&mut self.state, "RELEASE SAVEPOINT w").await?;
        self.state.open_savepoint = false;
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
