//! `assent backup PATH`, a real process, copies the SQLite database while another process
//! keeps writing consent-ledger entries through the store: the copy passes SQLite's
//! integrity check and holds every entry committed before the backup started. For
//! PostgreSQL it refuses and points to pg_dump.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use assent_core::phone::E164;
use assent_store::*;
use chrono::Utc;
use sqlx::Connection;

fn tenant() -> Tenant {
    Tenant {
        id: "t-backup".into(),
        slug: "backup-co".into(),
        name: "Backup Co".into(),
        time_zone: assent_core::Tz::America__Chicago,
        settings: Settings::default(),
        senders: Senders::default(),
        created_at: Utc::now(),
    }
}

fn entry(phone: &E164, i: u64) -> NewLedgerEntry {
    let (old, new) = if i.is_multiple_of(2) {
        ("opted_in", "opted_out")
    } else {
        ("opted_out", "opted_in")
    };
    NewLedgerEntry {
        phone: phone.clone(),
        channel: "transactional".parse().unwrap(),
        old_state: old.parse().unwrap(),
        new_state: new.parse().unwrap(),
        source: assent_core::consent::Source::Keyword,
        actor: "customer".into(),
        occurred_at: Utc::now(),
        evidence: Evidence::default(),
    }
}

async fn seqs(url: &str) -> BTreeSet<i64> {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT seq FROM consent_ledger")
        .fetch_all(&mut c)
        .await
        .unwrap();
    let _ = c.close().await;
    rows.into_iter().map(|(s,)| s).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_is_consistent_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/live.db", dir.path().display());
    let store = Arc::new(assent_sqlite::SqliteStore::open(&url).await.unwrap());
    store.migrate().await.unwrap();
    let t = tenant();
    store.create_tenant(&t, "key-backup").await.unwrap();

    // A writer that keeps committing ledger entries until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop, tenant_id) = (store.clone(), stop.clone(), t.id.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let phone = E164::parse(&format!("+1512555{:04}", i % 500)).unwrap();
                let e = entry(&phone, i / 500);
                store
                    .transact(&tenant_id, &phone, Utc::now(), None, &mut |_| Plan {
                        ledger: vec![e.clone()],
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                i += 1;
            }
            i
        })
    };
    // Some entries first, so the backup has something to copy under way.
    while seqs(&url).await.len() < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = seqs(&url).await;
    let copy = dir.path().join("copy.db");
    let out = tokio::task::spawn_blocking({
        let (url, copy) = (url.clone(), copy.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_assent"))
                .arg("backup")
                .arg(&copy)
                .env("ASSENT_DATABASE_URL", &url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"backup\""));
    assert!(!dir.path().join("copy.db.partial").exists());

    let copy_url = format!("sqlite://{}", copy.display());
    let mut c = sqlx::SqliteConnection::connect(&copy_url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let _ = c.close().await;
    let copied = seqs(&copy_url).await;
    let missing: Vec<&i64> = before.difference(&copied).collect();
    assert!(
        missing.is_empty(),
        "entries missing from the copy: {missing:?}"
    );
    eprintln!(
        "{} entries before the backup, {} in the copy, {written} written in all",
        before.len(),
        copied.len()
    );

    // A second backup to the same path is refused; the first copy is left as it was.
    let again = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("backup")
        .arg(&copy)
        .env("ASSENT_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(seqs(&copy_url).await, copied);
}

#[test]
fn a_postgres_backup_points_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("backup")
        .arg(dir.path().join("x.db"))
        .env("ASSENT_DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
