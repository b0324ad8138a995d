//! A write that returns early must not keep the database's write lock: another process on
//! the same file (a CLI import beside `assent serve`) would get SQLITE_BUSY until some later
//! write happened to come along.

use std::str::FromStr;
use std::time::Duration;

use assent_core::phone::E164;
use assent_sqlite::SqliteStore;
use assent_store::prelude::*;
use assent_store::{Recipient, Senders, Settings, Tenant};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// A migrated store in a file of its own (the directory lives as long as the guard).
async fn migrated(file: &str) -> (tempfile::TempDir, String, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/{file}", dir.path().display());
    let store = SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    (dir, url, store)
}

/// Another process's connection to the file at `url`, which does not wait for locks.
async fn other_process(url: &str) -> sqlx::SqliteConnection {
    SqliteConnectOptions::from_str(url)
        .unwrap()
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_write_that_returns_early_releases_the_write_lock() {
    let (_dir, url, store) = migrated("lock.db").await;
    let now = chrono::Utc::now();
    let limit = [("k".to_string(), 1, chrono::Duration::days(1))];
    assert!(store.take_hits(&limit, now).await.unwrap());
    // Refused: the write returns without committing anything.
    assert!(!store.take_hits(&limit, now).await.unwrap());

    let mut other = other_process(&url).await;
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

/// A batch of recipients written in several parts and committed once is committed whole
/// when the call returns: another connection sees every row and can take the write lock.
#[tokio::test]
async fn a_batch_written_in_parts_is_committed_when_it_returns() {
    let (_dir, url, store) = migrated("parts.db").await;
    let now = chrono::Utc::now();
    let t = Tenant {
        id: "t1".into(),
        slug: "t1".into(),
        name: "Tenant".into(),
        time_zone: assent_core::Tz::America__Chicago,
        settings: Settings::default(),
        senders: Senders::default(),
        created_at: now,
    };
    store.create_tenant(&t, "key").await.unwrap();
    let batch: Vec<Recipient> = (0..12_000)
        .map(|k| {
            let phone = E164::parse(&format!("+1737{:07}", 2_000_000 + k)).unwrap();
            Recipient::new("c1", "send".into(), &phone, now)
        })
        .collect();
    assert_eq!(store.add_recipients(&t.id, &batch).await.unwrap(), 12_000);

    let mut other = other_process(&url).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("the write lock is free once the batch returns");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaign_recipients")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(n, 12_000);
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
}
