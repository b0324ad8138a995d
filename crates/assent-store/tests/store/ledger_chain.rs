//! The ledger's hash chain on both backends: every write path chains its entries, the
//! chain holds under concurrent writers, entries written before the chain existed are
//! chained by the migration (in their order), and an edited row is named by `verify`.
//!
//! PostgreSQL runs are `#[ignore]`d like the contract suite's (`--run-ignored all` with
//! `ASSENT_TEST_POSTGRES_URL` runs them).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::shared::chain::{self, ChainCheck};
use assent_store::*;
use chrono::{DateTime, TimeZone, Utc};

/// The migration that added the chain, per backend.
const SQLITE_CHAIN: i64 = 21;
const POSTGRES_CHAIN: i64 = 20;

enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres { server: String, name: String },
}

impl Backend {
    async fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }
    async fn postgres() -> Option<Backend> {
        use sqlx::Connection;
        static N: AtomicU32 = AtomicU32::new(0);
        let server = assent_store::testing::postgres_url_or_skip()?;
        let name = format!(
            "assent_chain_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\""),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        Some(Backend::Postgres { server, name })
    }
    fn url(&self) -> String {
        match self {
            Backend::Sqlite(dir) => format!("sqlite://{}/chain.db?mode=rwc", dir.path().display()),
            Backend::Postgres { server, name } => assent_store::testing::database_url(server, name),
        }
    }
    async fn store(&self) -> Arc<dyn Store> {
        let url = self.url();
        let store: Arc<dyn Store> = match self {
            Backend::Sqlite(_) => Arc::new(assent_sqlite::SqliteStore::open(&url).await.unwrap()),
            Backend::Postgres { .. } => {
                Arc::new(assent_postgres::PostgresStore::open(&url).await.unwrap())
            }
        };
        store.migrate().await.unwrap();
        store
    }
    /// Runs raw SQL on the database, outside the store.
    async fn sql(&self, sql: &str) -> Result<()> {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            Backend::Sqlite(_) => {
                let mut c = sqlx::SqliteConnection::connect(&self.url()).await?;
                sqlx::raw_sql(sql).execute(&mut c).await?;
                c.close().await?;
            }
            Backend::Postgres { .. } => {
                let mut c = sqlx::PgConnection::connect(&self.url()).await?;
                sqlx::raw_sql(sql).execute(&mut c).await?;
                c.close().await?;
            }
        }
        Ok(())
    }
    /// SQL that lets a row of the ledger be edited (someone bypassing Assent).
    fn drop_guard(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "DROP TRIGGER consent_ledger_no_update",
            Backend::Postgres { .. } => {
                "ALTER TABLE consent_ledger DISABLE TRIGGER consent_ledger_no_change"
            }
        }
    }
    /// The backend's migration files before the chain's, in version order.
    fn files_before_chain(&self) -> Vec<(i64, String)> {
        let (dir, chain) = match self {
            Backend::Sqlite(_) => ("assent-sqlite", SQLITE_CHAIN),
            Backend::Postgres { .. } => ("assent-postgres", POSTGRES_CHAIN),
        };
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../{dir}/migrations"));
        let mut out: Vec<(i64, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .map(|p| {
                let name = p.file_name().unwrap().to_str().unwrap().to_string();
                let version = name.split('_').next().unwrap().parse().unwrap();
                (version, std::fs::read_to_string(&p).unwrap())
            })
            .filter(|(v, _)| *v < chain)
            .collect();
        out.sort_by_key(|f| f.0);
        out
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let Backend::Postgres { server, name } = self else {
            return;
        };
        let (server, sql) = (
            server.clone(),
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                })
        })
        .join();
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 18, 0, 0).unwrap()
}

fn phone(n: u32) -> E164 {
    E164::parse(&format!("+1512555{:04}", 200 + n)).unwrap()
}

fn tenant(id: &str, n: u32) -> Tenant {
    Tenant {
        id: id.into(),
        slug: format!("{id}-slug"),
        name: format!("Tenant {id}"),
        time_zone: assent_core::Tz::America__Chicago,
        settings: Settings::default(),
        senders: Senders {
            transactional: Some(phone(900 + 2 * n)),
            marketing: Some(phone(901 + 2 * n)),
            former: vec![],
        },
        created_at: now(),
    }
}

fn entry(p: &E164, body: &str) -> NewLedgerEntry {
    NewLedgerEntry {
        phone: p.clone(),
        channel: "marketing".parse().unwrap(),
        old_state: "pending".parse().unwrap(),
        new_state: "opted_in".parse().unwrap(),
        source: Source::Keyword,
        actor: "customer".into(),
        occurred_at: now(),
        evidence: Evidence {
            message_sid: Some(format!("SM{body}")),
            text: Some(body.into()),
            ..Default::default()
        },
    }
}

/// One ledger entry for `p`, through `transact` (as a keyword reply writes it).
async fn append(store: &dyn Store, tenant_id: &str, p: &E164, body: &str) {
    let e = entry(p, body);
    let mut plan = move |_: &PhoneSnapshot| Plan {
        ledger: vec![e.clone()],
        ..Default::default()
    };
    store
        .transact(tenant_id, p, now(), None, &mut plan)
        .await
        .unwrap();
}

/// The tenant's chained rows, all of them (tests only: small ledgers).
async fn rows(store: &dyn Store, tenant_id: &str) -> Vec<chain::ChainRow> {
    store
        .ledger_chain_page(tenant_id, 0, 100_000)
        .await
        .unwrap()
}

fn holds(check: &ChainCheck, entries: i64) {
    assert!(check.holds(), "{:?}", check.broken);
    assert_eq!(check.verified, entries);
}

/// Runs a scenario on SQLite and (ignored unless asked) PostgreSQL.
macro_rules! both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::$scenario(super::Backend::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
                async fn $scenario() {
                    let Some(b) = super::Backend::postgres().await else { return };
                    super::$scenario(b).await;
                }
            )*
        }
    };
}

both!(
    every_write_path_chains_its_entries,
    concurrent_writers_never_fork_a_tenant_chain,
    entries_written_before_the_chain_are_chained_by_the_migration,
    an_edited_row_is_named_by_verify,
    a_value_assent_never_writes_is_named_not_a_failed_read,
    a_chain_longer_than_a_page_verifies_in_order,
    a_second_check_reads_what_was_added_and_the_stretches_asked_for,
    an_entry_rewritten_with_every_hash_after_it_is_found_by_the_marks,
    a_phones_deleted_entry_is_found_by_the_stretches_it_was_in,
);

/// transact, create_customer, create_customers (the import's bulk path) and set_toggles
/// all chain; two tenants keep separate chains.
async fn every_write_path_chains_its_entries(b: Backend) {
    let store = b.store().await;
    let (t1, t2) = (tenant("t1", 0), tenant("t2", 1));
    for t in [&t1, &t2] {
        store
            .create_tenant(t, &format!("key-{}", t.id))
            .await
            .unwrap();
    }
    append(&*store, "t1", &phone(1), "YES").await;
    append(&*store, "t2", &phone(1), "YES").await;
    store
        .create_customer(
            "t1",
            &customer("c1", &phone(2)),
            &[entry(&phone(2), "form")],
        )
        .await
        .unwrap();
    let bulk: Vec<(Customer, Vec<NewLedgerEntry>)> = (3..8)
        .map(|n| {
            (
                customer(&format!("c{n}"), &phone(n)),
                vec![entry(&phone(n), "import a"), entry(&phone(n), "import b")],
            )
        })
        .collect();
    store.create_customers("t1", &bulk).await.unwrap();
    store
        .set_toggles(
            "t1",
            "c1",
            &phone(2),
            (true, true),
            &[entry(&phone(2), "toggle")],
        )
        .await
        .unwrap();
    append(&*store, "t1", &phone(1), "STOP").await;

    let check = chain::verify(&*store, "t1").await.unwrap();
    holds(&check, 14);
    let rows1 = rows(&*store, "t1").await;
    let seqs: Vec<i64> = rows1.iter().map(|r| r.chain_seq.unwrap()).collect();
    assert_eq!(seqs, (1..=14).collect::<Vec<_>>());
    // Chain order is commit order.
    assert!(rows1.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(rows1.last().unwrap().body.as_deref(), Some("STOP"));
    assert_eq!(
        store.ledger_head("t1").await.unwrap(),
        Some((14, check.head.clone()))
    );
    // The other tenant's chain starts at 1 and is its own.
    let check2 = chain::verify(&*store, "t2").await.unwrap();
    holds(&check2, 1);
    assert_ne!(check2.head, check.head);
    // The hash is on every entry the API reads.
    let read = testing::phone_ledger(&*store, "t1", &phone(1))
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[1].hash.as_deref(), Some(check.head.as_str()));
    assert_eq!(read[1].chain_seq, Some(14));
}

/// Many writers of one tenant at once (different phones, so the phone locks do not
/// serialise them): every entry gets its own place, the chain has no gap or fork and
/// verifies.
async fn concurrent_writers_never_fork_a_tenant_chain(b: Backend) {
    let store = b.store().await;
    store
        .create_tenant(&tenant("t1", 0), "key-t1")
        .await
        .unwrap();
    let (writers, each) = (12u32, 8u32);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                append(&*store, "t1", &phone(w * 100 + i), &format!("w{w} i{i}")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = i64::from(writers * each);
    let check = chain::verify(&*store, "t1").await.unwrap();
    holds(&check, n);
    let rows = rows(&*store, "t1").await;
    assert_eq!(rows.len() as i64, n);
    let seqs: Vec<i64> = rows.iter().map(|r| r.chain_seq.unwrap()).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert_eq!(store.ledger_head("t1").await.unwrap().unwrap().0, n);
}

/// A database whose ledger was written before the chain existed: migrating chains its
/// entries per tenant in their seq order, puts the guard back, and new entries follow on.
async fn entries_written_before_the_chain_are_chained_by_the_migration(b: Backend) {
    // The schema as it was before the chain, applied by the former runner's record (the
    // store carries those files over and runs only the newer ones).
    b.sql(
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    for (version, sql) in b.files_before_chain() {
        b.sql(&sql).await.unwrap();
        b.sql(&format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ({version}, 0)"
        ))
        .await
        .unwrap();
    }
    let mut old = String::new();
    for (tid, slug) in [("t1", "acme"), ("t2", "bolt")] {
        old.push_str(&format!(
            "INSERT INTO tenants (id, slug, name, time_zone, api_key_hash, settings, created_at) \
             VALUES ('{tid}', '{slug}', '{slug}', 'America/Chicago', 'hash-{tid}', '{{}}', 1700000000000);"
        ));
    }
    // Interleaved tenants, evidence with and without its optional parts.
    for (i, tid) in ["t1", "t2", "t1", "t1", "t2", "t1"].iter().enumerate() {
        let body = if i % 2 == 0 {
            "'YES'".to_string()
        } else {
            "NULL".to_string()
        };
        old.push_str(&format!(
            "INSERT INTO consent_ledger (tenant_id, phone, channel, old_state, new_state, source, actor, \
             occurred_at, message_sid, body, rule, ip, user_agent, page, disclosure) VALUES \
             ('{tid}', '+1512555020{i}', 'marketing', 'pending', 'opted_in', 'keyword', 'customer', \
             {}, 'SM{i}', {body}, NULL, '203.0.113.{i}', NULL, NULL, 'Reply YES');",
            1_700_000_000_000i64 + i as i64
        ));
    }
    b.sql(&old).await.unwrap();

    let store = b.store().await;
    let c1 = chain::verify(&*store, "t1").await.unwrap();
    holds(&c1, 4);
    holds(&chain::verify(&*store, "t2").await.unwrap(), 2);
    let r1 = rows(&*store, "t1").await;
    let phones: Vec<&str> = r1.iter().map(|r| r.phone.as_str()).collect();
    assert_eq!(
        phones,
        [
            "+15125550200",
            "+15125550202",
            "+15125550203",
            "+15125550205"
        ],
        "chained in their order"
    );
    // The guard is back: the ledger refuses an edit again.
    assert!(
        b.sql("UPDATE consent_ledger SET body = 'edited'")
            .await
            .is_err(),
        "the append-only guard is back after the backfill"
    );
    // Opening again changes nothing; a new entry follows the old ones.
    let store = b.store().await;
    assert_eq!(chain::verify(&*store, "t1").await.unwrap(), c1);
    append(&*store, "t1", &phone(9), "YES").await;
    holds(&chain::verify(&*store, "t1").await.unwrap(), 5);
}

/// Tenant t1 with `n` entries, one `transact` each.
async fn with_entries(b: &Backend, n: i64) -> Arc<dyn Store> {
    let store = b.store().await;
    store
        .create_tenant(&tenant("t1", 0), "key-t1")
        .await
        .unwrap();
    for i in 0..n {
        append(&*store, "t1", &phone(i as u32), &format!("YES {i}")).await;
    }
    store
}

/// Someone drops the guard and edits an entry's body: verify names that entry; the
/// entries before it still verify.
async fn an_edited_row_is_named_by_verify(b: Backend) {
    let store = with_entries(&b, 5).await;
    holds(&chain::verify(&*store, "t1").await.unwrap(), 5);
    let third = rows(&*store, "t1").await[2].seq;
    assert!(
        b.sql(&format!(
            "UPDATE consent_ledger SET body = 'NO' WHERE seq = {third}"
        ))
        .await
        .is_err(),
        "the guard refuses the edit"
    );
    b.sql(&format!(
        "{}; UPDATE consent_ledger SET body = 'NO' WHERE seq = {third}",
        b.drop_guard()
    ))
    .await
    .unwrap();
    let check = chain::verify(&*store, "t1").await.unwrap();
    let broken = check.broken.clone().expect("the edit is found");
    assert_eq!(broken.row, Some(third));
    assert_eq!(broken.chain_seq, 3);
    assert_eq!(check.verified, 2);
    assert!(
        broken.to_string().contains(&format!("seq {third}")),
        "{broken}"
    );
}

/// A column holding what Assent never writes (here a channel no version knew) still reads,
/// and the check names its row instead of failing.
async fn a_value_assent_never_writes_is_named_not_a_failed_read(b: Backend) {
    let store = with_entries(&b, 3).await;
    let second = rows(&*store, "t1").await[1].seq;
    b.sql(&format!(
        "{}; UPDATE consent_ledger SET channel = 'carrier pigeon' WHERE seq = {second}",
        b.drop_guard()
    ))
    .await
    .unwrap();
    let read = rows(&*store, "t1").await;
    assert_eq!(read[1].channel, "carrier pigeon");
    let check = chain::verify(&*store, "t1").await.unwrap();
    let broken = check.broken.expect("the unreadable row is found");
    assert_eq!((broken.row, broken.chain_seq), (Some(second), 2));
    assert!(broken.why.contains("decode"), "{}", broken.why);
}

/// Pages of the chain come back in chain order and follow each other, past the first page.
async fn a_chain_longer_than_a_page_verifies_in_order(b: Backend) {
    let n = chain::PAGE_SIZE + 5;
    let store = with_entries(&b, n).await;
    let page = store.ledger_chain_page("t1", 3, 4).await.unwrap();
    let seqs: Vec<Option<i64>> = page.iter().map(|r| r.chain_seq).collect();
    assert_eq!(seqs, [Some(4), Some(5), Some(6), Some(7)]);
    holds(&chain::verify(&*store, "t1").await.unwrap(), n);
}

/// A [`ChainStore`] that counts the entries its pages hand over.
struct Counting {
    inner: Arc<dyn Store>,
    read: std::sync::atomic::AtomicI64,
}

impl Counting {
    fn take(&self) -> i64 {
        self.read.swap(0, Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl ChainStore for Counting {
    async fn ledger_head(&self, tenant_id: &str) -> Result<Option<(i64, String)>> {
        self.inner.ledger_head(tenant_id).await
    }
    async fn ledger_chain_page(
        &self,
        tenant_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<chain::ChainRow>> {
        let rows = self
            .inner
            .ledger_chain_page(tenant_id, after, limit)
            .await?;
        self.read.fetch_add(rows.len() as i64, Ordering::Relaxed);
        Ok(rows)
    }
    async fn ledger_unchained(&self, tenant_id: &str) -> Result<Option<i64>> {
        self.inner.ledger_unchained(tenant_id).await
    }
}

/// `n` customers of one phone each, with one ledger entry each, in one bulk write.
/// A customer `id` ("Customer {id}") with the one phone `p`, its job texts on.
fn customer(id: &str, p: &E164) -> Customer {
    Customer {
        id: id.into(),
        name: format!("Customer {id}"),
        address: None,
        tags: vec![],
        phones: vec![ContactMethod {
            number: p.clone(),
            job_notifications: true,
            marketing_updates: false,
        }],
        created_at: now(),
    }
}

async fn bulk(store: &dyn Store, tenant_id: &str, n: u32) {
    let batch: Vec<(Customer, Vec<NewLedgerEntry>)> = (0..n)
        .map(|i| {
            let p = E164::parse(&format!("+1737{:07}", 2_000_000 + i)).unwrap();
            (
                customer(&format!("c{i}"), &p),
                vec![entry(&p, &format!("import {i}"))],
            )
        })
        .collect();
    store.create_customers(tenant_id, &batch).await.unwrap();
}

/// Tenant t1 with 2,500 entries (two and a half stretches), checked once.
async fn verified_2500(b: &Backend) -> (Arc<dyn Store>, chain::Verified) {
    let store = b.store().await;
    store
        .create_tenant(&tenant("t1", 0), "key-t1")
        .await
        .unwrap();
    bulk(&*store, "t1", 2500).await;
    let mut v = chain::Verified::default();
    holds(
        &chain::verify_since(&*store, "t1", &mut v, None, &[])
            .await
            .unwrap(),
        2500,
    );
    (store, v)
}

/// After the first check, a second reads the entries added since and, again, the stretch
/// between two marks around each entry asked for: not the whole chain.
async fn a_second_check_reads_what_was_added_and_the_stretches_asked_for(b: Backend) {
    let store = b.store().await;
    store
        .create_tenant(&tenant("t1", 0), "key-t1")
        .await
        .unwrap();
    bulk(&*store, "t1", 2500).await;
    let counting = Counting {
        inner: store.clone(),
        read: Default::default(),
    };
    let mut v = chain::Verified::default();
    holds(
        &chain::verify_since(&counting, "t1", &mut v, None, &[])
            .await
            .unwrap(),
        2500,
    );
    assert_eq!(
        counting.take(),
        2500,
        "the first check reads the whole chain"
    );
    for i in 0..3 {
        append(&*store, "t1", &phone(i), &format!("YES {i}")).await;
    }
    holds(
        &chain::verify_since(&counting, "t1", &mut v, None, &[1500, 1501])
            .await
            .unwrap(),
        2503,
    );
    assert_eq!(
        counting.take(),
        3 + chain::MARK,
        "the 3 new entries and entries 1001 to 2000 once"
    );
    holds(
        &chain::verify_since(&counting, "t1", &mut v, None, &[])
            .await
            .unwrap(),
        2503,
    );
    assert_eq!(counting.take(), 0);
    assert_eq!(v.seq(), 2503);
}

/// Whoever can write to the database can edit an entry and rewrite the stored hashes
/// after it up to the next mark (or all of them, and the head): each entry then recomputes
/// from the one before it. What this process verified before still tells: the stretch no
/// longer ends on the hash it computed at the mark. Without reading that stretch again the
/// check holds, which is why a proof names its phone's stretches.
async fn an_entry_rewritten_with_every_hash_after_it_is_found_by_the_marks(b: Backend) {
    let (store, mut v) = verified_2500(&b).await;

    let mut sql = vec![b.drop_guard().to_string()];
    let mut prev = assent_store::decide::chain::GENESIS.to_string();
    for r in rows(&*store, "t1").await {
        let k = r.chain_seq.unwrap();
        let mut e = r.entry().unwrap();
        if k == 1500 {
            e.evidence.text = Some("NO".into());
            sql.push(format!(
                "UPDATE consent_ledger SET body = 'NO' WHERE seq = {}",
                r.seq
            ));
        }
        let h = assent_store::decide::chain::hash(&prev, "t1", k, &e);
        if (1500..=2000).contains(&k) {
            sql.push(format!(
                "UPDATE consent_ledger SET hash = '{h}' WHERE seq = {}",
                r.seq
            ));
        }
        prev = h;
    }
    b.sql(&sql.join("; ")).await.unwrap();

    holds(
        &chain::verify_since(&*store, "t1", &mut v.clone(), None, &[10])
            .await
            .unwrap(),
        2500,
    );
    let check = chain::verify_since(&*store, "t1", &mut v, None, &[1500])
        .await
        .unwrap();
    let broken = check.broken.expect("the rewrite is found");
    assert!(
        broken
            .why
            .contains("entries 1001 to 2000 no longer hash to what this server verified"),
        "{}",
        broken.why
    );
    assert_eq!(v.seq(), 2500);
}

/// A phone's entry deleted after it was verified is not among the phone's entries any
/// more, so nothing names its stretch but the phone: the filters remember it was there.
async fn a_phones_deleted_entry_is_found_by_the_stretches_it_was_in(b: Backend) {
    let (store, mut v) = verified_2500(&b).await;
    let gone = rows(&*store, "t1").await[1499].clone();
    assert_eq!(gone.chain_seq, Some(1500));
    let guard = match b {
        Backend::Sqlite(_) => "DROP TRIGGER consent_ledger_no_delete",
        Backend::Postgres { .. } => b.drop_guard(),
    };
    b.sql(&format!(
        "{guard}; DELETE FROM consent_ledger WHERE seq = {}",
        gone.seq
    ))
    .await
    .unwrap();

    let other = rows(&*store, "t1").await[10].phone.clone();
    holds(
        &chain::verify_since(&*store, "t1", &mut v.clone(), Some(&other), &[])
            .await
            .unwrap(),
        2500,
    );
    let check = chain::verify_since(&*store, "t1", &mut v, Some(&gone.phone), &[])
        .await
        .unwrap();
    let broken = check.broken.expect("the deletion is found");
    assert_eq!(broken.chain_seq, 1500, "{broken}");
}
