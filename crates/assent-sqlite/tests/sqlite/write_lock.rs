//! A write that returns early must not keep the database's write lock: another process on
//! the same file (a CLI import beside `assent serve`) would get SQLITE_BUSY until some later
//! write happened to come along.

use std::str::FromStr;
use std::time::Duration;

use assent_sqlite::SqliteStore;
use assent_store::prelude::*;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

#[tokio::test]
async fn a_write_that_returns_early_releases_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/lock.db", dir.path().display());
    let store = SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let now = chrono::Utc::now();
    let limit = [("k".to_string(), 1, chrono::Duration::days(1))];
    assert!(store.take_hits(&limit, now).await.unwrap());
    // Refused: the write returns without committing anything.
    assert!(!store.take_hits(&limit, now).await.unwrap());

    // Another process's connection, which does not wait for locks.
    let mut other = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let mut released = false;
    for _ in 0..100 {
        if sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .is_ok()
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(released, "the store still holds the write lock");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    drop(store);
}
