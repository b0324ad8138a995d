//! The embedded SQLite backend: one file in WAL mode with `synchronous=FULL`, so a change
//! is on disk before the caller acknowledges it. Writes go through a single connection
//! (SQLite has one writer anyway; queueing them in-process avoids busy retries), reads
//! through a small pool.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

mod backup;
mod bulk;
mod campaigns;
// Reviews, estimates, recurring services and calls: the same SQL on both backends (see
// assent_store::shared).
// Tenants, their senders and registrations: the same SQL on both backends (see
// assent_store::shared).
assent_store::shared_tenant_sql!(sqlx::Sqlite, SqliteStore, reader);
// Customers, the ledger's cold reads, single messages and a plan's plain writes, likewise.
assent_store::shared_store_sql!(sqlx::Sqlite, SqliteStore, reader);

mod cold {
    assent_store::shared_cold_sql!(sqlx::Sqlite, crate::SqliteStore, reader);
}
mod web;
mod writer;

mod relay {
    assent_store::shared_relay_sql!(sqlx::Sqlite, crate::SqliteStore, reader);
}
// Reassigned-number checks and status-callback history (see assent_store::shared::evidence).
mod evidence {
    assent_store::shared_evidence_sql!(
        sqlx::Sqlite,
        "SELECT value FROM json_each($2)",
        crate::SqliteStore,
        reader
    );
}

/// A page of a tenant's chain ([`chain::PAGE_SQL`]'s rows) as one JSON value: sqlx hands
/// each SQLite row over from its connection thread on its own, and that was most of the
/// chain's check (every proof, `assent ledger verify`) at about 11 µs an entry. Every
/// column is cast to the type it is read as, so a value Assent would never write still
/// reads (and fails to verify) rather than failing the read.
static CHAIN_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let text = [
        "tenant_id",
        "hash",
        "phone",
        "channel",
        "old_state",
        "new_state",
        "source",
        "actor",
        "message_sid",
        "body",
        "rule",
        "ip",
        "user_agent",
        "page",
        "disclosure",
        "request_id",
    ];
    let fields: Vec<String> = ["seq", "chain_seq", "occurred_at"]
        .iter()
        .map(|c| format!("'{c}', CAST({c} AS INTEGER)"))
        .chain(text.iter().map(|c| format!("'{c}', CAST({c} AS TEXT)")))
        .collect();
    format!(
        "SELECT json_group_array(json_object({})) FROM (SELECT * FROM consent_ledger \
         WHERE tenant_id = ?1 AND chain_seq > ?2 ORDER BY chain_seq LIMIT ?3)",
        fields.join(", ")
    )
});

assent_store::shared_chain_impl!(SqliteStore, reader, page = chain_page);

/// A page of the chain, read through [`CHAIN_PAGE`].
async fn chain_page(
    store: &SqliteStore,
    tenant_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<chain::ChainRow>> {
    let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(CHAIN_PAGE.as_str()))
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_one(&store.reader)
        .await?;
    let mut rows: Vec<chain::ChainRow> = serde_json::from_str(&json)
        .map_err(|e| StoreError::Database(format!("ledger chain page: {e}")))?;
    // An aggregate's order is its input's in practice, not by promise.
    rows.sort_unstable_by_key(|r| r.chain_seq);
    Ok(rows)
}

// Every list the API and the web app page through: the same SQL on both backends (see
// assent_store::shared::lists).
mod lists {
    assent_store::shared_list_sql!(
        sqlx::Sqlite,
        super::SqliteStore,
        reader,
        "json_extract(k.state, '$.marketing')"
    );
}
// The overview and the campaign data lists (see assent_store::shared::overview).
mod overview {
    assent_store::shared_overview_sql!(sqlx::Sqlite, super::SqliteStore, reader);
}
pub use backup::backup;

use assent_core::consent::ConsentState;
use assent_core::phone::E164;
use assent_store::codec::{self, ms, time};
use assent_store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

/// The schema, applied by sqlx's migrator. The files never change once released: sqlx
/// keeps each one's checksum and refuses a database whose applied files differ.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqliteStore {
    writer: SqlitePool,
    batch: writer::Writer,
    reader: SqlitePool,
    /// Tenants and registrations change rarely and only through this store (SQLite is
    /// one process's database), so snapshots read them from here, not the file.
    tenants: Mutex<(u64, HashMap<String, TenantContext>)>,
}

/// The slugs of the tenants in the SQLite file at `url`, read without creating, migrating
/// or changing it: none when the file or its tenants table does not exist.
pub async fn tenant_slugs(url: &str) -> Result<Vec<String>> {
    use sqlx::ConnectOptions;
    let opts = SqliteConnectOptions::from_str(url)?;
    if !opts.get_filename().exists() {
        return Ok(Vec::new());
    }
    let mut c = opts.read_only(true).connect().await?;
    let has_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tenants'")
            .fetch_optional(&mut c)
            .await?;
    let slugs = if has_table.is_some() {
        sqlx::query_scalar("SELECT slug FROM tenants")
            .fetch_all(&mut c)
            .await?
    } else {
        Vec::new()
    };
    let _ = sqlx::Connection::close(c).await;
    Ok(slugs)
}

impl SqliteStore {
    /// A write for the statements written once in assent_store::shared: through the one
    /// writer, durable when `commit` returns.
    async fn write(&self) -> Result<writer::Write<'_>> {
        self.batch.begin().await
    }

    /// The tagged audience page of tenant's phones after `after_phone` up to `end` (`None`:
    /// to the last): the records of that range of phones and their consent, each as one
    /// range of an index, read at once on two connections when `two` (and a second is
    /// free within [`SECOND_READER_WAIT`]), else one after the other on `c`.
    #[allow(clippy::too_many_arguments)]
    async fn tagged_range(
        &self,
        mut c: sqlx::pool::PoolConnection<sqlx::Sqlite>,
        ctx: &TenantContext,
        tenant_id: &str,
        tags: &[String],
        after_phone: &str,
        end: Option<String>,
        two: bool,
    ) -> Result<AudiencePage> {
        let last = end.as_deref().unwrap_or(MAX_PHONE);
        let records =
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(AUDIENCE_RECORDS.as_str()))
                .bind(tenant_id)
                .bind(after_phone)
                .bind(last)
                .bind(codec::to_json(&tags))
                .fetch_one(&mut *c);
        // The second connection is waited for only briefly: several pages read at once
        // (fan-outs, previews) could otherwise each hold one connection of the pool and
        // wait for another. Without one, the consent is read after the records.
        let consent = async {
            if !two {
                return Ok(None);
            }
            match tokio::time::timeout(SECOND_READER_WAIT, self.reader.acquire()).await {
                Ok(second) => Ok(Some(
                    audience_consent(&mut *second?, tenant_id, after_phone, last).await?,
                )),
                Err(_) => Ok::<_, StoreError>(None),
            }
        };
        let (records, consent) = tokio::join!(records, consent);
        let records = records?;
        let consent = match consent? {
            Some(json) => json,
            None => audience_consent(&mut c, tenant_id, after_phone, last).await?,
        };
        drop(c);
        let mut folded = fold_snapshots(&records, ctx)?;
        folded.sort_unstable_by(|a, b| a.phone.as_str().cmp(b.phone.as_str()));
        let states: Vec<(std::borrow::Cow<str>, Option<ConsentState>)> =
            serde_json::from_str(&consent)
                .map_err(|e| StoreError::Database(format!("consent: {e}")))?;
        // Both are in phone order: walked side by side.
        let mut states = states.into_iter().peekable();
        for f in &mut folded {
            while states
                .next_if(|(p, _)| p.as_ref() < f.phone.as_str())
                .is_some()
            {}
            if let Some((_, state)) = states.next_if(|(p, _)| p.as_ref() == f.phone.as_str())
                && let Some(state) = state
            {
                f.snap.consent = state;
            }
        }
        // The next page starts after this one's range, whatever of it was on a record.
        let next = end.as_deref().map(codec::phone).transpose()?;
        Ok(audience(folded, next, true))
    }

    /// Opens (creating if needed) `sqlite://PATH`.
    pub async fn open(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            // A fan-out writes thousands of rows per transaction: with SQLite's default 2 MB
            // page cache their pages spill to the WAL before the commit, and are written again.
            .connect_with(
                opts.clone()
                    .pragma("cache_size", "-32768")
                    .pragma("wal_autocheckpoint", "16384"),
            )
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            // Each lookup of a page outside a connection's cache is a read() from the OS;
            // the default 2 MB cache holds little of a large audience's indexes.
            .connect_with(opts.clone().read_only(false).pragma("cache_size", "-16384"))
            .await?;
        // Checkpoints copy the WAL into the database file. Left to the writer, a commit now
        // and then also does that copy while every other write waits; a connection of their
        // own does it beside the writes, and the writer's automatic one finds little left.
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if checkpointer.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpointer)
                    .await
                {
                    tracing::debug!(error = %e, "background checkpoint");
                }
            }
        });
        Ok(SqliteStore {
            batch: writer::Writer::new(writer.clone()),
            writer,
            reader,
            tenants: Mutex::new((0, HashMap::new())),
        })
    }

    async fn tenant_context(
        &self,
        conn: &mut SqliteConnection,
        tenant_id: &str,
    ) -> Result<TenantContext> {
        let cached = {
            let m = self.tenants.lock().ok();
            m.map(|m| (m.0, m.1.get(tenant_id).cloned()))
        };
        let generation = match cached {
            Some((_, Some(c))) => return Ok(c),
            Some((g, None)) => g,
            None => u64::MAX,
        };
        let c = load_tenant_context(conn, tenant_id).await?;
        // A change committed while we read would make this copy stale: keep it only if
        // nothing was forgotten meanwhile.
        if let Ok(mut m) = self.tenants.lock()
            && m.0 == generation
        {
            m.1.insert(tenant_id.to_string(), c.clone());
        }
        Ok(c)
    }

    fn forget_tenant(&self, tenant_id: &str) {
        if let Ok(mut m) = self.tenants.lock() {
            m.0 += 1;
            m.1.remove(tenant_id);
        }
    }

    /// Benchmarks only: copies the WAL into the database file and empties it, so a timed
    /// write does not share the machine with the checkpoint of what came before it.
    pub async fn checkpoint(&self) -> Result<()> {
        let w = self.batch.begin().await?;
        w.commit().await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Benchmarks only: marks phones opted in to marketing directly (no ledger entries),
    /// to seed a large audience quickly.
    pub async fn bench_opt_in(
        &self,
        tenant_id: &str,
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let state = codec::to_json(&ConsentState {
            marketing: assent_core::consent::MarketingStatus::OptedIn,
            ..Default::default()
        });
        for chunk in phones.chunks(20_000) {
            let mut w = self.batch.begin().await?;
            let rows = chunk
                .iter()
                .map(|p| {
                    vec![
                        tenant_id.into(),
                        p.as_str().into(),
                        state.clone().into(),
                        ms(now).into(),
                    ]
                })
                .collect();
            bulk::insert(
                w.conn(),
                "INSERT OR REPLACE INTO consent (tenant_id, phone, state, updated_at)",
                4,
                rows,
            )
            .await?;
            w.commit().await?;
        }
        Ok(())
    }

    /// Benchmarks only: the raw cost of writing `n` rows in one transaction (a hundred per
    /// statement, as the fan-out writes them).
    pub async fn raw_bulk_rows(&self, n: u64) -> Result<()> {
        let mut w = self.batch.begin().await?;
        // A table of its own each time: `bench campaign` runs this before and after the
        // fan-out, and the second must not replace the first's rows.
        for sql in [
            "DROP TABLE IF EXISTS bench_bulk",
            "CREATE TABLE bench_bulk (k TEXT PRIMARY KEY, a TEXT, b INTEGER)",
        ] {
            sqlx::query(sql).execute(w.conn()).await?;
        }
        // Put together a page at a time, as a fan-out writes them.
        let mut i = 0u64;
        while i < n {
            let end = (i + 5_000).min(n);
            let rows = (i..end)
                .map(|k| {
                    vec![
                        format!("row{k}").into(),
                        "+17375550000 campaign send".into(),
                        (k as i64).into(),
                    ]
                })
                .collect();
            bulk::insert(
                w.conn(),
                "INSERT OR REPLACE INTO bench_bulk (k, a, b)",
                3,
                rows,
            )
            .await?;
            i = end;
        }
        w.commit().await
    }

    /// The raw durable-transaction rate of this file, for benchmarks: one UPSERT and one
    /// INSERT per transaction.
    pub async fn raw_transaction(&self, i: u64) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_raw (k TEXT PRIMARY KEY, n INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bench_raw (k, n) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1",
        )
        .bind(format!("k{}", i % 1000))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO bench_raw (k, n) VALUES (?, 0)")
            .bind(format!("row{i}"))
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
    }
}

/// Chains `entries` after the tenant's head (SQLite has one writer, so the head read here
/// is still the head at commit) and moves the head: each entry's (chain seq, hash).
async fn chain_ledger(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    entries: &[NewLedgerEntry],
) -> Result<Vec<(i64, String)>> {
    let (seq, hash): (i64, String) = sqlx::query_as(shared::chain::HEAD_TAKE_SQL)
        .bind(tenant_id)
        .bind(decide::chain::GENESIS)
        .fetch_one(&mut *conn)
        .await?;
    let links = decide::chain::extend((seq, &hash), tenant_id, entries);
    if let Some((seq, hash)) = links.last() {
        sqlx::query(shared::chain::HEAD_SET_SQL)
            .bind(tenant_id)
            .bind(seq)
            .bind(hash)
            .execute(&mut *conn)
            .await?;
    }
    Ok(links)
}

async fn append_ledger(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    entries: &[NewLedgerEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let links = chain_ledger(conn, tenant_id, entries).await?;
    for (e, (chain_seq, hash)) in entries.iter().zip(links) {
        sqlx::query(
            "INSERT INTO consent_ledger (tenant_id, phone, channel, old_state, new_state, source, actor, \
             occurred_at, message_sid, body, rule, ip, user_agent, page, disclosure, request_id, chain_seq, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant_id)
        .bind(e.phone.as_str())
        .bind(e.channel)
        .bind(e.old_state)
        .bind(e.new_state)
        .bind(e.source)
        .bind(&e.actor)
        .bind(ms(e.occurred_at))
        .bind(&e.evidence.message_sid)
        .bind(&e.evidence.text)
        .bind(&e.evidence.rule)
        .bind(&e.evidence.ip)
        .bind(&e.evidence.user_agent)
        .bind(&e.evidence.page)
        .bind(&e.evidence.disclosure)
        .bind(&e.evidence.request)
        .bind(chain_seq)
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A message as one JSON array, read back by [`MessageEntry`]: every read of messages
/// selects this, so the column list and its decoder are written once. (Statements that
/// return many aggregate them into one value; see [`snapshot_sql`] for why.)
const MESSAGE_JSON: &str = "json_array(id, tenant_id, direction, channel, from_number, to_number, phone, body, \
     kind, purpose, status, reason, provider_id, segments, priority, due_at, expires_at, idempotency_key, \
     created_at, updated_at)";

#[derive(serde::Deserialize)]
struct MessageEntry(
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    i64,
    i64,
);

fn message_from_entry(e: MessageEntry) -> Result<Message> {
    Ok(Message {
        id: e.0,
        tenant_id: e.1,
        direction: codec::column("direction", &e.2)?,
        channel: codec::column("channel", &e.3)?,
        from: codec::phone(&e.4)?,
        to: codec::phone(&e.5)?,
        phone: codec::phone(&e.6)?,
        body: e.7,
        kind: codec::column("kind", &e.8)?,
        purpose: codec::purpose(e.9.as_deref())?,
        status: codec::column("status", &e.10)?,
        reason: e.11.map(MessageReason::from),
        provider_id: e.12,
        segments: e.13 as u32,
        priority: e.14 as u8,
        due_at: time(e.15),
        expires_at: e.16.map(time),
        idempotency_key: e.17,
        created_at: time(e.18),
        updated_at: time(e.19),
    })
}

pub(crate) async fn insert_message(conn: &mut SqliteConnection, m: &Message) -> Result<()> {
    bulk::insert(conn, MESSAGE_INSERT, 21, vec![message_row(m)]).await?;
    Ok(())
}

pub(crate) const MESSAGE_INSERT: &str = "INSERT INTO messages (id, tenant_id, direction, channel, from_number, to_number, \
     phone, body, kind, purpose, status, reason, provider_id, segments, priority, due_at, expires_at, idempotency_key, \
     handed_off_at, created_at, updated_at)";

/// One message as a row for [`bulk::insert`] (21 columns, as [`MESSAGE_INSERT`]).
pub(crate) fn message_row(m: &Message) -> Vec<bulk::Val> {
    let handed_off = decide::handed_off(m.status).then(|| ms(m.updated_at));
    vec![
        m.id.clone().into(),
        m.tenant_id.clone().into(),
        m.direction.as_str().into(),
        m.channel.as_str().into(),
        m.from.as_str().into(),
        m.to.as_str().into(),
        m.phone.as_str().into(),
        m.body.clone().into(),
        m.kind.as_str().into(),
        m.purpose.map(|p| p.as_str().to_string()).into(),
        m.status.as_str().into(),
        m.reason.as_ref().map(|r| r.as_str().to_string()).into(),
        m.provider_id.clone().into(),
        (m.segments as i64).into(),
        (m.priority as i64).into(),
        ms(m.due_at).into(),
        m.expires_at.map(ms).into(),
        m.idempotency_key.clone().into(),
        handed_off.into(),
        ms(m.created_at).into(),
        ms(m.updated_at).into(),
    ]
}

use assent_store::shared::TenantContext;
use assent_store::shared::chain;

/// Everything about one phone in a single statement: on the one writer connection every
/// statement is a round trip, and inbound keyword processing runs this on every text.
async fn load_snapshot(
    conn: &mut SqliteConnection,
    ctx: TenantContext,
    phone: &E164,
    now_ms: i64,
) -> Result<PhoneSnapshot> {
    load_snapshots(conn, &ctx, std::slice::from_ref(phone), now_ms)
        .await?
        .remove(phone)
        .ok_or(StoreError::NotFound)
}

/// The statements below are put together once: claims and fan-out pages run them often.
static SNAPSHOTS_OF_LIST: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| snapshot_sql("SELECT value FROM json_each(?3)"));
static AUDIENCE_OPTED_IN_SNAPSHOTS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| snapshot_sql(AUDIENCE_OPTED_IN));
static AUDIENCE_RECORDS: std::sync::LazyLock<String> = std::sync::LazyLock::new(records_sql);
static CLAIM_DUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT json_group_array({MESSAGE_JSON}) FROM (SELECT * FROM messages \
         WHERE status IN ('queued', 'deferred') AND due_at <= ? ORDER BY priority, due_at LIMIT ?)"
    )
});

/// Writes a page of composed recipients (`?2`, a JSON array of `[campaign, step, phone,
/// message id, skip reason]`) of tenant `?1`. The page is materialized first, so the plan
/// walks it and finds each row by its primary key: joined with `json_each` directly, the
/// planner put the tenant's whole send log outside and the JSON inside (plans.rs pins it).
pub const COMPOSE_RECIPIENTS: &str = "WITH v AS MATERIALIZED (SELECT json_extract(j.value, '$[0]') AS c, \
       json_extract(j.value, '$[1]') AS s, json_extract(j.value, '$[2]') AS p, \
       json_extract(j.value, '$[3]') AS m, json_extract(j.value, '$[4]') AS k FROM json_each(?2) AS j) \
     UPDATE campaign_recipients SET message_id = v.m, skip_reason = v.k FROM v \
     WHERE campaign_recipients.tenant_id = ?1 AND campaign_recipients.campaign_id = v.c \
       AND campaign_recipients.step = v.s AND campaign_recipients.phone = v.p";

/// What the gate reads about each phone of a set `p(phone)` (tenant ?1, start of the
/// frequency-cap window ?2): one entry per customer record holding the phone (or one with
/// NULLs when none does), folded by [`fold_snapshots`]. Plain lookups joined, no sorting:
/// this runs for every message handed off and every phone of a fan-out. ?5, when not NULL,
/// is a JSON array of tags, and `tagged` says whether the record's customer has one of them.
/// The entries come back as one JSON array in one row: sqlx hands each row over from its
/// connection thread on its own, which costs more than the lookups.
fn snapshot_sql(phones: &str) -> String {
    format!(
        "WITH p(phone) AS ({phones}) SELECT json_group_array({}) \
         FROM p LEFT JOIN consent k ON k.tenant_id = ?1 AND k.phone = p.phone \
         LEFT JOIN contact_methods cm INDEXED BY contact_methods_phone ON cm.tenant_id = ?1 AND cm.phone = p.phone \
         LEFT JOIN customers c ON c.tenant_id = cm.tenant_id AND c.id = cm.customer_id",
        snapshot_entry("p.phone")
    )
}

/// The same entries for the records of tenant ?1's phones after ?2 up to ?3, read in
/// index order (?4 is the JSON array of tags). Without the consent and the recent
/// marketing hand-offs, a look-up per record each: the page's consent is read as one range
/// of its phones ([`AUDIENCE_CONSENT`]), and the hand-offs only defer (the frequency cap),
/// which decides nobody's place in an audience; the message's composing reads them
/// ([`CampaignStore::audience_members`]).
fn records_sql() -> String {
    format!(
        "SELECT json_group_array({}) FROM (SELECT phone, customer_id, job_notifications, marketing_updates \
           FROM contact_methods INDEXED BY contact_methods_phone WHERE tenant_id = ?1 AND phone > ?2 \
           AND phone <= ?3 ORDER BY phone) cm \
         JOIN customers c ON c.tenant_id = ?1 AND c.id = cm.customer_id",
        entry_sql("cm.phone", "NULL", "NULL", "?4")
    )
}

/// The phone of tenant ?1's (?3 + 1)-th customer record after phone ?2, in index order:
/// where a tagged audience page ends.
pub const AUDIENCE_PAGE_END: &str = "SELECT phone FROM contact_methods INDEXED BY contact_methods_phone \
     WHERE tenant_id = ?1 AND phone > ?2 ORDER BY phone LIMIT 1 OFFSET ?3";

/// How long a tagged audience page waits for its second reader connection.
const SECOND_READER_WAIT: Duration = Duration::from_millis(20);

/// [`AUDIENCE_CONSENT`] on `conn`.
async fn audience_consent(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    after: &str,
    last: &str,
) -> Result<String> {
    Ok(sqlx::query_scalar(AUDIENCE_CONSENT)
        .bind(tenant_id)
        .bind(after)
        .bind(last)
        .fetch_one(conn)
        .await?)
}

/// [`AUDIENCE_PAGE_END`] on `conn`: the last phone of the page of `limit` records after
/// `after_phone`, `None` when fewer are left.
async fn audience_page_end(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    after_phone: &str,
    limit: usize,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(AUDIENCE_PAGE_END)
        .bind(tenant_id)
        .bind(after_phone)
        .bind(i64::try_from(limit.max(1) - 1).unwrap_or(i64::MAX))
        .fetch_optional(conn)
        .await?)
}

/// Above every E.164 number: the end of the last page's range.
const MAX_PHONE: &str = "+\u{10ffff}";

/// The consent of tenant ?1's phones after ?2 up to ?3, as a JSON array of `[phone,
/// state]` in phone order: one range of the primary key.
pub const AUDIENCE_CONSENT: &str = "SELECT json_group_array(json_array(phone, json(state))) FROM \
     (SELECT phone, state FROM consent WHERE tenant_id = ?1 AND phone > ?2 AND phone <= ?3 ORDER BY phone)";

/// One entry, as [`SnapshotEntry`] reads it.
fn snapshot_entry(phone: &str) -> String {
    entry_sql(
        phone,
        "json(k.state)",
        &format!(
            "(SELECT group_concat(handed_off_at) FROM messages WHERE tenant_id = ?1 AND phone = {phone} \
             AND purpose = 'marketing' AND handed_off_at > ?2)"
        ),
        "?5",
    )
}

/// `tags`: the parameter holding the JSON array of tags, or NULL for every record.
fn entry_sql(phone: &str, consent: &str, recent: &str, tags: &str) -> String {
    format!(
        "json_array({phone}, {consent}, cm.job_notifications, cm.marketing_updates, c.created_at, c.address, c.name, \
           CASE WHEN {tags} IS NULL THEN 1 ELSE EXISTS (SELECT 1 FROM customer_tags t WHERE t.tenant_id = ?1 \
             AND t.customer_id = c.id AND t.tag IN (SELECT value FROM json_each({tags}))) END, \
           {recent})"
    )
}

/// One entry of [`snapshot_sql`]: phone, consent, job toggle, marketing toggle, customer
/// created, address, name, tagged, recent marketing hand-offs.
#[derive(serde::Deserialize)]
struct SnapshotEntry<'a>(
    #[serde(borrow)] std::borrow::Cow<'a, str>,
    Option<ConsentState>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    i64,
    #[serde(borrow)] Option<std::borrow::Cow<'a, str>>,
);

/// A phone's snapshot folded from its entries, with the name for merge fields and
/// whether any of its records is tagged.
struct Folded {
    phone: E164,
    snap: PhoneSnapshot,
    name: Option<String>,
    tagged: bool,
}

struct Folding {
    snap: PhoneSnapshot,
    records: u32,
    address_at: i64,
    name_at: i64,
    name: Option<String>,
}

/// An audience page of folded phones: with tags, only the phones one of whose records is
/// tagged; without, every opted-in phone, on a record or not.
fn audience(folded: Vec<Folded>, next: Option<E164>, tagged_only: bool) -> AudiencePage {
    AudiencePage {
        members: folded
            .into_iter()
            .filter(|f| !tagged_only || f.tagged)
            .map(|f| {
                (
                    AudienceMember {
                        phone: f.phone,
                        name: f.name,
                    },
                    f.snap,
                )
            })
            .collect(),
        next,
    }
}

/// Folds the JSON of [`snapshot_sql`] into one snapshot per phone, in the order phones first
/// appear. Toggles are on only if on in every record; the address and the name are the
/// oldest customer's that has one (the name among tagged records).
fn fold_snapshots(json: &str, ctx: &TenantContext) -> Result<Vec<Folded>> {
    let entries: Vec<SnapshotEntry> =
        serde_json::from_str(json).map_err(|e| StoreError::Database(format!("snapshot: {e}")))?;
    // Mostly one entry a phone: grown one push at a time, the vector's copies of its
    // large elements were a sixth of the fold.
    let mut out: Vec<(E164, Folding)> = Vec::with_capacity(entries.len());
    let mut index: HashMap<std::borrow::Cow<str>, usize> = HashMap::with_capacity(entries.len());
    for SnapshotEntry(phone, consent, job, mk, created, address, name, tagged, recent) in entries {
        let i = match index.get(phone.as_ref()) {
            Some(&i) => i,
            None => {
                let recent = recent
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|t| t.parse::<i64>().ok().map(time))
                    .collect();
                out.push((
                    codec::phone(&phone)?,
                    Folding {
                        snap: PhoneSnapshot {
                            tenant: ctx.0.clone(),
                            registrations: ctx.1.clone(),
                            consent: consent.unwrap_or_default(),
                            toggles: assent_core::gate::Toggles {
                                on_a_record: false,
                                job_notifications: true,
                                marketing_updates: true,
                            },
                            address: None,
                            recent_marketing: recent,
                        },
                        records: 0,
                        address_at: i64::MAX,
                        name_at: i64::MAX,
                        name: None,
                    },
                ));
                index.insert(phone, out.len() - 1);
                out.len() - 1
            }
        };
        let f = &mut out[i].1;
        let (Some(job), Some(mk), Some(created)) = (job, mk, created) else {
            continue;
        };
        f.records += 1;
        f.snap.toggles.job_notifications &= job == 1;
        f.snap.toggles.marketing_updates &= mk == 1;
        if address.is_some() && created < f.address_at {
            f.address_at = created;
            f.snap.address = address;
        }
        if tagged == 1 && created < f.name_at {
            f.name_at = created;
            f.name = name;
        }
    }
    Ok(out
        .into_iter()
        .map(|(phone, mut f)| {
            let on = f.records > 0;
            f.snap.toggles = assent_core::gate::Toggles {
                on_a_record: on,
                job_notifications: on && f.snap.toggles.job_notifications,
                marketing_updates: on && f.snap.toggles.marketing_updates,
            };
            Folded {
                phone,
                snap: f.snap,
                tagged: f.name_at != i64::MAX,
                name: f.name,
            }
        })
        .collect())
}

/// Snapshots of many phones of one tenant in one statement: the hand-off of a
/// batch re-checks every message against its phone's current state.
async fn load_snapshots(
    conn: &mut SqliteConnection,
    ctx: &TenantContext,
    phones: &[E164],
    now_ms: i64,
) -> Result<HashMap<E164, PhoneSnapshot>> {
    let mut out = HashMap::with_capacity(phones.len());
    for f in load_folded(conn, ctx, phones, now_ms, &[]).await? {
        out.insert(f.phone, f.snap);
    }
    Ok(out)
}

/// [`load_snapshots`] folded, with each phone's name among its records tagged with one of
/// `tags` (among all of them when `tags` is empty).
async fn load_folded(
    conn: &mut SqliteConnection,
    ctx: &TenantContext,
    phones: &[E164],
    now_ms: i64,
    tags: &[String],
) -> Result<Vec<Folded>> {
    // The phones go in as one JSON array (?3): one prepared statement whatever their number.
    let list = serde_json::to_string(&phones.iter().map(E164::as_str).collect::<Vec<_>>())
        .map_err(|e| StoreError::Database(e.to_string()))?;
    let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(SNAPSHOTS_OF_LIST.as_str()))
        .bind(&ctx.0.id)
        .bind(decide::frequency_window_start(now_ms))
        .bind(list)
        .bind(None::<i64>)
        .bind((!tags.is_empty()).then(|| codec::to_json(&tags)))
        .fetch_one(&mut *conn)
        .await?;
    fold_snapshots(&json, ctx)
}

/// The phones of a page of a marketing audience, in order from an index (no sort, no list
/// held anywhere): ?3 is the last phone of the previous page, ?4 the page size.
const AUDIENCE_OPTED_IN: &str = "SELECT k.phone FROM consent k WHERE k.tenant_id = ?1 AND k.phone > ?3 \
     AND json_extract(k.state, '$.marketing') = 'opted_in' ORDER BY k.phone LIMIT ?4";

/// Messages as a JSON array of `[tenant_id, id]`, for statements that find each by its
/// tenant and id (the primary key; see docs/SCALING.md).
fn keys_json<'a>(messages: impl Iterator<Item = &'a Message>) -> Result<String> {
    let keys: Vec<[&str; 2]> = messages
        .map(|m| [m.tenant_id.as_str(), m.id.as_str()])
        .collect();
    serde_json::to_string(&keys).map_err(|e| StoreError::Database(e.to_string()))
}

/// A claimed message that does not go now: deferred, blocked or expired.
async fn set_claim_outcome(
    conn: &mut SqliteConnection,
    o: &decide::Outcome,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE messages SET status = ?, reason = ?, due_at = ?, updated_at = ? \
         WHERE tenant_id = ? AND id = ?",
    )
    .bind(o.status)
    .bind(&o.reason)
    .bind(ms(o.due_at))
    .bind(now_ms)
    .bind(&o.tenant_id)
    .bind(&o.id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_plan(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    phone: &E164,
    plan: &Plan,
    now_ms: i64,
) -> Result<()> {
    write_consent(conn, tenant_id, phone, plan, now_ms).await?;
    append_ledger(conn, tenant_id, &plan.ledger).await?;
    for m in &plan.messages {
        insert_message(conn, m).await?;
    }
    write_plan_rest(conn, tenant_id, phone, plan, now_ms).await
}
/// Applies one update; a status only moves forward. False when the message is unknown.
async fn update_one(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    id: &str,
    u: &MessageUpdate,
) -> Result<bool> {
    // One statement: the row moves only from a status ranked below the new one (?1, a
    // JSON list of them, as decide::ranked_below says).
    let r = sqlx::query(
        "UPDATE messages SET \
           status = CASE WHEN status IN (SELECT value FROM json_each(?1)) THEN ?2 ELSE status END, \
           reason = CASE WHEN status IN (SELECT value FROM json_each(?1)) THEN ?3 ELSE reason END, \
           provider_id = COALESCE(provider_id, ?4), updated_at = ?5 WHERE tenant_id = ?6 AND id = ?7",
    )
    .bind(codec::to_json(&decide::ranked_below(u.status)))
    .bind(u.status)
    .bind(&u.reason)
    .bind(&u.provider_id)
    .bind(ms(u.at.unwrap_or_else(Utc::now)))
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

async fn insert_customer(
    conn: &mut SqliteConnection,
    tenant_id: &str,
    c: &Customer,
    ledger: &[NewLedgerEntry],
) -> Result<()> {
    insert_customer_rows(conn, tenant_id, c).await?;
    append_ledger(conn, tenant_id, ledger).await
}
const LEDGER_INSERT: &str = "INSERT INTO consent_ledger (tenant_id, phone, channel, old_state, new_state, source, actor, \
     occurred_at, message_sid, body, rule, ip, user_agent, page, disclosure, request_id, chain_seq, hash)";

fn ledger_row(tenant_id: &str, e: &NewLedgerEntry, link: (i64, String)) -> Vec<bulk::Val> {
    vec![
        tenant_id.into(),
        e.phone.as_str().into(),
        e.channel.as_str().into(),
        e.old_state.as_str().into(),
        e.new_state.as_str().into(),
        e.source.as_str().into(),
        e.actor.to_string().into(),
        ms(e.occurred_at).into(),
        e.evidence.message_sid.clone().into(),
        e.evidence.text.clone().into(),
        e.evidence.rule.clone().into(),
        e.evidence.ip.clone().into(),
        e.evidence.user_agent.clone().into(),
        e.evidence.page.clone().into(),
        e.evidence.disclosure.clone().into(),
        e.evidence.request.clone().into(),
        link.0.into(),
        link.1.into(),
    ]
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        // A file made before sqlx ran the migrations records them in `schema_migrations`.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let old: Vec<i64> = match sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        .fetch_optional(&mut *tx)
        .await?
        {
            Some(_) => {
                sqlx::query_scalar("SELECT version FROM schema_migrations")
                    .fetch_all(&mut *tx)
                    .await?
            }
            None => Vec::new(),
        };
        migrations::carry_over(&mut *tx, &MIGRATOR, &old).await?;
        tx.commit().await?;
        // `run_direct` is `run` on a connection (sqlx's own way round a lifetime error that
        // `run(&mut conn)` gets inside an `async_trait` method).
        MIGRATOR.run_direct(None, &mut *conn, false).await?;
        chain_backfill(&mut conn).await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        // Reads can succeed while every write fails (another process holds the file's
        // write lock): take the writer's lock too, and give it back unchanged (a write
        // dropped without commit is undone).
        let mut w = self.batch.begin().await?;
        sqlx::query("SELECT 1").execute(w.conn()).await?;
        Ok(())
    }

    async fn create_tenant(&self, t: &Tenant, api_key_hash: &str) -> Result<()> {
        let mut w = self.batch.begin().await?;
        create_tenant(w.conn(), t, api_key_hash).await?;
        relay::create_twilio_account(w.conn(), &t.id, &TwilioAccount::new_sid()).await?;
        w.commit().await
    }

    async fn update_settings(&self, tenant_id: &str, settings: &Settings) -> Result<()> {
        let mut w = self.batch.begin().await?;
        update_settings(w.conn(), tenant_id, settings).await?;
        w.commit().await?;
        self.forget_tenant(tenant_id);
        Ok(())
    }

    async fn set_senders(&self, tenant_id: &str, s: &Senders, now: DateTime<Utc>) -> Result<()> {
        let mut w = self.batch.begin().await?;
        set_senders(w.conn(), tenant_id, s, now).await?;
        w.commit().await?;
        self.forget_tenant(tenant_id);
        Ok(())
    }

    async fn save_registration(&self, tenant_id: &str, r: &Registration) -> Result<()> {
        let mut w = self.batch.begin().await?;
        save_registration(w.conn(), tenant_id, r).await?;
        w.commit().await?;
        self.forget_tenant(tenant_id);
        Ok(())
    }

    async fn update_profile(
        &self,
        tenant_id: &str,
        name: &str,
        time_zone: &assent_core::Tz,
    ) -> Result<()> {
        let mut w = self.batch.begin().await?;
        update_profile(w.conn(), tenant_id, name, time_zone.name()).await?;
        w.commit().await?;
        self.forget_tenant(tenant_id);
        Ok(())
    }
}

#[async_trait]
impl CustomerStore for SqliteStore {
    async fn create_customer(
        &self,
        tenant_id: &str,
        c: &Customer,
        ledger: &[NewLedgerEntry],
    ) -> Result<()> {
        let mut w = self.batch.begin().await?;
        insert_customer(w.conn(), tenant_id, c, ledger).await?;
        w.commit().await
    }

    async fn create_customers(
        &self,
        tenant_id: &str,
        customers: &[(Customer, Vec<NewLedgerEntry>)],
    ) -> Result<()> {
        for chunk in customers.chunks(5000) {
            let mut w = self.batch.begin().await?;
            let (mut cs, mut tags, mut phones, mut ledger) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (c, entries) in chunk {
                cs.push(vec![
                    tenant_id.into(),
                    c.id.clone().into(),
                    c.name.clone().into(),
                    c.address.clone().into(),
                    codec::to_json(&c.tags).into(),
                    ms(c.created_at).into(),
                ]);
                for t in &c.tags {
                    tags.push(vec![
                        tenant_id.into(),
                        c.id.clone().into(),
                        t.clone().into(),
                    ]);
                }
                for (i, p) in c.phones.iter().enumerate() {
                    phones.push(vec![
                        tenant_id.into(),
                        c.id.clone().into(),
                        p.number.as_str().into(),
                        (i as i64).into(),
                        p.job_notifications.into(),
                        p.marketing_updates.into(),
                    ]);
                }
                ledger.extend(entries.iter().cloned());
            }
            let links = chain_ledger(w.conn(), tenant_id, &ledger).await?;
            let ledger: Vec<Vec<bulk::Val>> = ledger
                .iter()
                .zip(links)
                .map(|(e, link)| ledger_row(tenant_id, e, link))
                .collect();
            bulk::insert(
                w.conn(),
                "INSERT INTO customers (tenant_id, id, name, address, tags, created_at)",
                6,
                cs,
            )
            .await?;
            bulk::insert(
                w.conn(),
                "INSERT OR IGNORE INTO customer_tags (tenant_id, customer_id, tag)",
                3,
                tags,
            )
            .await?;
            bulk::insert(
                w.conn(),
                "INSERT INTO contact_methods (tenant_id, customer_id, phone, position, job_notifications, marketing_updates)",
                6,
                phones,
            )
            .await?;
            bulk::insert(w.conn(), LEDGER_INSERT, 18, ledger).await?;
            w.commit().await?;
        }
        Ok(())
    }

    async fn add_phone(
        &self,
        tenant_id: &str,
        customer_id: &str,
        method: &ContactMethod,
        ledger: &[NewLedgerEntry],
    ) -> Result<()> {
        let mut w = self.batch.begin().await?;
        insert_phone_row(w.conn(), tenant_id, customer_id, method).await?;
        append_ledger(w.conn(), tenant_id, ledger).await?;
        w.commit().await
    }
    async fn remove_phone(&self, tenant_id: &str, customer_id: &str, phone: &E164) -> Result<()> {
        let mut w = self.batch.begin().await?;
        if delete_phone_row(w.conn(), tenant_id, customer_id, phone).await? == 0 {
            return Err(StoreError::NotFound);
        }
        w.commit().await
    }
    async fn set_toggles(
        &self,
        tenant_id: &str,
        customer_id: &str,
        phone: &E164,
        toggles: (bool, bool),
        ledger: &[NewLedgerEntry],
    ) -> Result<()> {
        let mut w = self.batch.begin().await?;
        if update_toggles(w.conn(), tenant_id, customer_id, phone, toggles).await? == 0 {
            return Err(StoreError::NotFound);
        }
        append_ledger(w.conn(), tenant_id, ledger).await?;
        w.commit().await
    }
}

#[async_trait]
impl ConsentStore for SqliteStore {
    async fn transact(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
        dedup: Option<&str>,
        plan: &mut Planner<'_>,
    ) -> Result<Transacted> {
        let mut w = self.batch.begin().await?;
        if let Some(key) = dedup {
            let seen =
                sqlx::query("SELECT 1 FROM messages WHERE tenant_id = ? AND provider_id = ?")
                    .bind(tenant_id)
                    .bind(key)
                    .fetch_optional(w.conn())
                    .await?;
            if seen.is_some() {
                return Ok(Transacted::Duplicate);
            }
        }
        let now = ms(now);
        let ctx = self.tenant_context(w.conn(), tenant_id).await?;
        let snap = load_snapshot(w.conn(), ctx, phone, now).await?;
        let p = plan(&snap);
        write_plan(w.conn(), tenant_id, phone, &p, now).await?;
        w.commit().await?;
        Ok(Transacted::Applied)
    }

    async fn snapshot(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
    ) -> Result<PhoneSnapshot> {
        let mut c = self.reader.acquire().await?;
        let ctx = self.tenant_context(&mut c, tenant_id).await?;
        load_snapshot(&mut c, ctx, phone, ms(now)).await
    }

    async fn snapshots(
        &self,
        tenant_id: &str,
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<Vec<PhoneSnapshot>> {
        let mut c = self.reader.acquire().await?;
        let ctx = self.tenant_context(&mut c, tenant_id).await?;
        let by_phone = load_snapshots(&mut c, &ctx, phones, ms(now)).await?;
        phones
            .iter()
            .map(|p| by_phone.get(p).cloned().ok_or(StoreError::NotFound))
            .collect()
    }

    async fn overdue_reviews(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, Review)>> {
        cold::overdue_reviews(&self.reader, now, limit).await
    }

    async fn review(&self, tenant_id: &str, id: &str) -> Result<Option<Review>> {
        cold::review(&self.reader, tenant_id, id).await
    }
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(&self, messages: &[Message]) -> Result<()> {
        // One write per 5,000, a hundred rows per statement.
        for chunk in messages.chunks(5000) {
            let mut w = self.batch.begin().await?;
            bulk::insert(
                w.conn(),
                MESSAGE_INSERT,
                21,
                chunk.iter().map(message_row).collect(),
            )
            .await?;
            w.commit().await?;
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<Message>> {
        let mut w = self.batch.begin().await?;
        let now_ms = ms(now);
        let json: String = sqlx::query_scalar(sqlx::AssertSqlSafe(CLAIM_DUE.as_str()))
            .bind(now_ms)
            .bind(limit as i64)
            .fetch_one(w.conn())
            .await?;
        let mut due: Vec<Message> = serde_json::from_str::<Vec<MessageEntry>>(&json)
            .map_err(|e| StoreError::Database(format!("claim: {e}")))?
            .into_iter()
            .map(message_from_entry)
            .collect::<Result<_>>()?;
        due.sort_by_key(|m| (m.priority, m.due_at));
        // Every phone's snapshot, a few statements for the whole batch.
        let mut snaps: HashMap<String, HashMap<E164, PhoneSnapshot>> = HashMap::new();
        let mut by_tenant: HashMap<&str, Vec<E164>> = HashMap::new();
        let mut seen: std::collections::HashSet<(&str, &E164)> = Default::default();
        for m in &due {
            if seen.insert((m.tenant_id.as_str(), &m.phone)) {
                by_tenant
                    .entry(m.tenant_id.as_str())
                    .or_default()
                    .push(m.phone.clone());
            }
        }
        for (tenant_id, phones) in by_tenant {
            let ctx = self.tenant_context(w.conn(), tenant_id).await?;
            let loaded = load_snapshots(w.conn(), &ctx, &phones, now_ms).await?;
            snaps.insert(tenant_id.to_string(), loaded);
        }
        let mut claim = decide::Claim::new(now);
        // Each sender's pace is kept under the tenant whose number it is.
        let mut sender_tenant: HashMap<String, String> = HashMap::new();
        for m in due {
            let Some(snap) = snaps
                .get_mut(&m.tenant_id)
                .and_then(|s| s.get_mut(&m.phone))
            else {
                continue;
            };
            let handoff = plan(&m, snap);
            if handoff == Handoff::Send {
                let pacer = &mut claim.pacer;
                if !pacer.knows_sender(&m.from) {
                    let tat = sqlx::query(
                        "SELECT tat FROM sender_pacing WHERE tenant_id = ? AND number = ?",
                    )
                    .bind(&m.tenant_id)
                    .bind(m.from.as_str())
                    .fetch_optional(w.conn())
                    .await?
                    .map(|r| r.try_get::<i64, _>("tat").map(time))
                    .transpose()?;
                    pacer.load_sender(&m.from, tat);
                    sender_tenant.insert(m.from.as_str().to_string(), m.tenant_id.clone());
                }
                if !pacer.knows_tenant(&m.tenant_id) {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COALESCE(SUM(n), 0) FROM tenant_handoffs WHERE tenant_id = ? AND hour >= ?",
                    )
                    .bind(&m.tenant_id)
                    .bind(first_counted_bucket(now_ms))
                    .fetch_one(w.conn())
                    .await?;
                    pacer.load_tenant(&m.tenant_id, u32::try_from(n).unwrap_or(u32::MAX));
                }
            }
            claim.settle(m, snap, handoff);
        }
        for o in &claim.held {
            set_claim_outcome(w.conn(), o, now_ms).await?;
        }
        let decide::Claim { pacer, sending, .. } = claim;
        if !sending.is_empty() {
            let ids = keys_json(sending.iter())?;
            sqlx::query(
                "UPDATE messages SET status = 'sending', reason = NULL, updated_at = ?1, handed_off_at = ?1, \
                 call_started_at = NULL FROM (SELECT value ->> 0 AS t, value ->> 1 AS id FROM json_each(?2)) AS k \
                 WHERE messages.tenant_id = k.t AND messages.id = k.id",
            )
            .bind(now_ms)
            .bind(ids)
            .execute(w.conn())
            .await?;
        }
        for (tenant_id, n) in pacer.handed_off() {
            sqlx::query(
                "INSERT INTO tenant_handoffs (tenant_id, hour, n) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (tenant_id, hour) DO UPDATE SET n = n + excluded.n",
            )
            .bind(tenant_id)
            .bind(handoff_bucket(now_ms))
            .bind(i64::from(n))
            .execute(w.conn())
            .await?;
            // Buckets older than any window are of no more use.
            sqlx::query("DELETE FROM tenant_handoffs WHERE tenant_id = ? AND hour < ?")
                .bind(tenant_id)
                .bind(decide::oldest_kept_bucket(now_ms))
                .execute(w.conn())
                .await?;
        }
        for (number, tat) in pacer.changed() {
            let Some(tenant_id) = sender_tenant.get(number.as_str()) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO sender_pacing (tenant_id, number, tat) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant_id, number) DO UPDATE SET tat = excluded.tat",
            )
            .bind(tenant_id)
            .bind(number)
            .bind(ms(tat))
            .execute(w.conn())
            .await?;
        }
        w.commit().await?;
        Ok(sending)
    }

    async fn update_message(&self, tenant_id: &str, id: &str, u: &MessageUpdate) -> Result<()> {
        let mut w = self.batch.begin().await?;
        if !update_one(w.conn(), tenant_id, id, u).await? {
            return Err(StoreError::NotFound);
        }
        w.commit().await
    }

    async fn update_messages(&self, updates: &[(String, String, MessageUpdate)]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut w = self.batch.begin().await?;
        // The common case, a hand-off the provider accepted, goes a few hundred per
        // statement; anything else one by one.
        let (accepted, other): (Vec<_>, Vec<_>) = updates
            .iter()
            .partition(|(_, _, u)| decide::is_acceptance(u));
        if !accepted.is_empty() {
            let at = accepted
                .iter()
                .filter_map(|(_, _, u)| u.at)
                .max()
                .unwrap_or_else(Utc::now);
            let pairs = serde_json::to_string(
                &accepted
                    .iter()
                    .map(|(t, id, u)| (t.as_str(), id.as_str(), u.provider_id.as_deref()))
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| StoreError::Database(e.to_string()))?;
            sqlx::query(
                "UPDATE messages SET \
                   status = CASE WHEN status IN (SELECT value FROM json_each(?3)) THEN 'sent' ELSE status END, \
                   reason = CASE WHEN status IN (SELECT value FROM json_each(?3)) THEN NULL ELSE reason END, \
                   provider_id = COALESCE(provider_id, v.pid), updated_at = ?1 \
                 FROM (SELECT value ->> 0 AS t, value ->> 1 AS id, value ->> 2 AS pid FROM json_each(?2)) AS v \
                 WHERE messages.tenant_id = v.t AND messages.id = v.id",
            )
            .bind(ms(at))
            .bind(pairs)
            .bind(codec::to_json(&decide::ranked_below(Some(MessageStatus::Sent))))
            .execute(w.conn())
            .await?;
        }
        for (tenant_id, id, u) in other {
            update_one(w.conn(), tenant_id, id, u).await?;
        }
        w.commit().await
    }

    async fn retry_later(
        &self,
        tenant_id: &str,
        id: &str,
        reason: &MessageReason,
        now: DateTime<Utc>,
        max_attempts: Option<u32>,
        backoff: &(dyn Fn(u32) -> chrono::Duration + Send + Sync),
    ) -> Result<MessageStatus> {
        let mut w = self.batch.begin().await?;
        let status = retry_later_in(
            w.conn(),
            tenant_id,
            id,
            reason,
            now,
            max_attempts,
            backoff,
            "",
        )
        .await?;
        w.commit().await?;
        Ok(status)
    }

    async fn start_calls(
        &self,
        starts: &[CallStart<'_>],
        now: DateTime<Utc>,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<bool>> {
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        // The one writer: a STOP written before this sees it blocked below; one written
        // after it finds these calls started and waits for their outcome.
        let mut w = self.batch.begin().await?;
        let now_ms = ms(now);
        let keys: Vec<(&str, &str, i64)> = starts
            .iter()
            .map(|s| {
                (
                    s.message.tenant_id.as_str(),
                    s.message.id.as_str(),
                    ms(s.claimed_at),
                )
            })
            .collect();
        let keys = serde_json::to_string(&keys).map_err(|e| StoreError::Database(e.to_string()))?;
        // Keyed by claim: a message asked about under two claims' times is ours under one
        // at most.
        let ours: HashSet<(String, String, i64)> = sqlx::query_as(
            "SELECT m.tenant_id, m.id, m.handed_off_at \
             FROM (SELECT value ->> 0 AS t, value ->> 1 AS id, value ->> 2 AS claimed_at \
                   FROM json_each(?1)) AS k \
             JOIN messages m ON m.tenant_id = k.t AND m.id = k.id \
             WHERE m.status = 'sending' AND m.call_started_at IS NULL AND m.handed_off_at = k.claimed_at",
        )
        .bind(&keys)
        .fetch_all(w.conn())
        .await?
        .into_iter()
        .collect();
        let claim = |s: &CallStart<'_>| {
            (
                s.message.tenant_id.clone(),
                s.message.id.clone(),
                ms(s.claimed_at),
            )
        };
        let mut by_tenant: HashMap<&str, Vec<E164>> = HashMap::new();
        for m in starts
            .iter()
            .filter(|s| ours.contains(&claim(s)))
            .map(|s| s.message)
        {
            let phones = by_tenant.entry(m.tenant_id.as_str()).or_default();
            if !phones.contains(&m.phone) {
                phones.push(m.phone.clone());
            }
        }
        let mut snaps: HashMap<String, HashMap<E164, PhoneSnapshot>> = HashMap::new();
        for (tenant_id, phones) in by_tenant {
            let ctx = self.tenant_context(w.conn(), tenant_id).await?;
            let loaded = load_snapshots(w.conn(), &ctx, &phones, now_ms).await?;
            snaps.insert(tenant_id.to_string(), loaded);
        }
        let mut go = Vec::with_capacity(starts.len());
        let mut started: Vec<&Message> = Vec::new();
        let mut held: Vec<&CallStart<'_>> = Vec::new();
        let mut decided_here: HashSet<(&str, &str)> = HashSet::new();
        for s in starts {
            let m = s.message;
            // Ours under this claim's time, and asked about once only in this write.
            let snap = match snaps.get(&m.tenant_id).and_then(|s| s.get(&m.phone)) {
                Some(snap)
                    if ours.contains(&claim(s))
                        && decided_here.insert((m.tenant_id.as_str(), m.id.as_str())) =>
                {
                    snap
                }
                _ => {
                    go.push(false);
                    continue;
                }
            };
            let held_back = decide::outcome(m, plan(m, snap));
            go.push(held_back.is_none());
            match held_back {
                None => started.push(m),
                Some(o) => {
                    set_claim_outcome(w.conn(), &o, now_ms).await?;
                    held.push(s);
                }
            }
        }
        if !held.is_empty() {
            // Not handed off after all: the frequency cap, which counts hand-offs by
            // `handed_off_at`, must not count these, nor the daily cap, which counted
            // the claim.
            let refunds: Vec<decide::Unstarted> = held
                .iter()
                .map(|s| decide::held_back(s.message, s.claimed_at))
                .collect();
            give_back_handoffs(w.conn(), &refunds, now).await?;
            sqlx::query(
                "UPDATE messages SET handed_off_at = NULL \
                 FROM (SELECT value ->> 0 AS t, value ->> 1 AS id FROM json_each(?1)) AS k \
                 WHERE messages.tenant_id = k.t AND messages.id = k.id",
            )
            .bind(keys_json(held.into_iter().map(|s| s.message))?)
            .execute(w.conn())
            .await?;
        }
        if !started.is_empty() {
            sqlx::query(
                "UPDATE messages SET call_started_at = ?1 \
                 FROM (SELECT value ->> 0 AS t, value ->> 1 AS id FROM json_each(?2)) AS k \
                 WHERE messages.tenant_id = k.t AND messages.id = k.id",
            )
            .bind(now_ms)
            .bind(keys_json(started.into_iter())?)
            .execute(w.conn())
            .await?;
        }
        w.commit().await?;
        Ok(go)
    }

    fn single_process(&self) -> bool {
        true
    }

    async fn recover_orphaned_sends(
        &self,
        claimed_before: DateTime<Utc>,
        started_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64)> {
        let mut w = self.batch.begin().await?;
        let r = recover_orphaned_sends(w.conn(), claimed_before, started_before, now, "").await?;
        w.commit().await?;
        Ok(r)
    }

    async fn requeue_unstarted(
        &self,
        keys: &[(&str, &str)],
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let keys = serde_json::to_string(keys).map_err(|e| StoreError::Database(e.to_string()))?;
        let mut w = self.batch.begin().await?;
        let unstarted: Vec<decide::Unstarted> = sqlx::query_as(
            "SELECT DISTINCT m.tenant_id, m.id, m.handed_off_at, m.segments FROM messages m \
             JOIN (SELECT value ->> 0 AS t, value ->> 1 AS id FROM json_each(?1)) AS k \
               ON m.tenant_id = k.t AND m.id = k.id \
             WHERE m.status = 'sending' AND m.call_started_at IS NULL AND m.handed_off_at = ?2",
        )
        .bind(keys)
        .bind(ms(claimed_at))
        .fetch_all(w.conn())
        .await?;
        let n = put_back_unstarted(w.conn(), &unstarted, now).await?;
        w.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn audience_page(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<AudiencePage> {
        let mut c = self.reader.acquire().await?;
        let ctx = self.tenant_context(&mut c, tenant_id).await?;
        let limit = limit.max(1);
        let after_phone = after.map_or("", |p| p.as_str());
        if tags.is_empty() {
            // The opted-in phones from the consent table, one statement per page.
            let json: String =
                sqlx::query_scalar(sqlx::AssertSqlSafe(AUDIENCE_OPTED_IN_SNAPSHOTS.as_str()))
                    .bind(tenant_id)
                    .bind(decide::frequency_window_start(ms(now)))
                    .bind(after_phone)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .bind(None::<String>)
                    .fetch_one(&mut *c)
                    .await?;
            let mut folded = fold_snapshots(&json, &ctx)?;
            // Pages follow each other by phone, whatever order the join produced.
            folded.sort_unstable_by(|a, b| a.phone.as_str().cmp(b.phone.as_str()));
            let next = (folded.len() == limit)
                .then(|| folded.last().map(|f| f.phone.clone()))
                .flatten();
            return Ok(audience(folded, next, false));
        }
        // With tags: the page ends at the phone of the limit-th record after `after` (all
        // of that phone's records belong to it), found first in the index.
        let end = audience_page_end(&mut c, tenant_id, after_phone, limit).await?;
        self.tagged_range(c, &ctx, tenant_id, tags, after_phone, end, true)
            .await
    }

    fn audience_ranges(&self) -> Option<&dyn AudienceRanges> {
        Some(self)
    }

    async fn audience_members(
        &self,
        tenant_id: &str,
        tags: &[String],
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<Vec<(AudienceMember, PhoneSnapshot)>> {
        let mut c = self.reader.acquire().await?;
        let ctx = self.tenant_context(&mut c, tenant_id).await?;
        let mut by_phone: HashMap<E164, Folded> = load_folded(&mut c, &ctx, phones, ms(now), tags)
            .await?
            .into_iter()
            .map(|f| (f.phone.clone(), f))
            .collect();
        phones
            .iter()
            .map(|p| {
                let f = by_phone.remove(p).ok_or(StoreError::NotFound)?;
                Ok((
                    AudienceMember {
                        phone: f.phone,
                        name: f.name,
                    },
                    f.snap,
                ))
            })
            .collect()
    }

    async fn compose_recipients(&self, tenant_id: &str, recipients: &[Recipient]) -> Result<u64> {
        let mut composed = 0;
        for chunk in recipients.chunks(5000) {
            let mut w = self.batch.begin().await?;
            composed += campaigns::compose_recipients(w.conn(), tenant_id, chunk).await?;
            w.commit().await?;
        }
        Ok(composed)
    }

    async fn add_recipients(&self, tenant_id: &str, recipients: &[Recipient]) -> Result<u64> {
        let mut added = 0;
        // A write a chunk, so others take their turn between them; durable together, one
        // commit for all (a fan-out hands over the pages that gathered while it wrote).
        // Cut short (an error, or this future dropped), what was kept is committed at once
        // rather than left holding the write lock until some other write.
        let _commit_kept = self.batch.commit_soon_on_drop();
        let chunks = recipients.chunks(5000);
        let last = chunks.len().saturating_sub(1);
        let mut kept = Vec::new();
        for (i, chunk) in chunks.enumerate() {
            let mut w = self.batch.begin().await?;
            added += campaigns::add_recipients(w.conn(), tenant_id, chunk).await?;
            if i == last {
                w.commit_after(&kept).await?;
            } else {
                kept.push(w.keep().await?);
            }
        }
        Ok(added)
    }

    async fn move_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        from: CampaignStatus,
        to: CampaignStatus,
        resumed_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut w = self.batch.begin().await?;
        let r = campaigns::move_campaign(w.conn(), tenant_id, campaign_id, from, to, resumed_at)
            .await?;
        w.commit().await?;
        Ok(r)
    }

    async fn hold_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut w = self.batch.begin().await?;
        let n = campaigns::hold_campaign(w.conn(), tenant_id, campaign_id, paused, now).await?;
        w.commit().await?;
        Ok(n)
    }
    async fn withdraw_estimate_steps(
        &self,
        tenant_id: &str,
        estimate_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut w = self.batch.begin().await?;
        let n = campaigns::withdraw_estimate_steps(w.conn(), tenant_id, estimate_id, now).await?;
        w.commit().await?;
        Ok(n)
    }
}

/// A tagged audience's pages end at a record count found in the index of phones, so their
/// ends are known ahead; the opted-in audience's are found only by reading consent.
#[async_trait]
impl AudienceRanges for SqliteStore {
    async fn audience_page_end(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
    ) -> Result<Option<PageEnd>> {
        if tags.is_empty() {
            return Ok(None);
        }
        let mut c = self.reader.acquire().await?;
        let end =
            audience_page_end(&mut c, tenant_id, after.map_or("", |p| p.as_str()), limit).await?;
        Ok(Some(match end {
            Some(phone) => PageEnd::At(codec::phone(&phone)?),
            None => PageEnd::Last,
        }))
    }

    async fn audience_range(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        end: &PageEnd,
        _now: DateTime<Utc>,
    ) -> Result<AudiencePage> {
        if tags.is_empty() {
            return Err(StoreError::Database(
                "the opted-in audience is read by audience_page".into(),
            ));
        }
        let mut c = self.reader.acquire().await?;
        let ctx = self.tenant_context(&mut c, tenant_id).await?;
        let end = match end {
            PageEnd::At(phone) => Some(phone.as_str().to_string()),
            PageEnd::Last => None,
        };
        // One connection: a fan-out reading pages ahead has its parallelism already.
        self.tagged_range(
            c,
            &ctx,
            tenant_id,
            tags,
            after.map_or("", |p| p.as_str()),
            end,
            false,
        )
        .await
    }
}

#[async_trait]
impl FormLimitStore for SqliteStore {
    async fn take_hits(
        &self,
        limits: &[(String, u32, chrono::Duration)],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        // The one writer serializes every check with its insert.
        let mut w = self.batch.begin().await?;
        let mut counts = Vec::with_capacity(limits.len());
        for (key, _, window) in limits {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM form_hits WHERE key = ? AND at > ?")
                    .bind(key)
                    .bind(ms(decide::hits_since(*window, now)))
                    .fetch_one(w.conn())
                    .await?;
            counts.push(n);
        }
        let Some(keys) = decide::take_hits(limits, &counts) else {
            return Ok(false);
        };
        for key in keys {
            sqlx::query("INSERT INTO form_hits (key, at) VALUES (?, ?)")
                .bind(key)
                .bind(ms(now))
                .execute(w.conn())
                .await?;
        }
        w.commit().await?;
        Ok(true)
    }

    async fn forget_hits(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut w = self.batch.begin().await?;
        let r = sqlx::query("DELETE FROM form_hits WHERE at <= ?")
            .bind(ms(before))
            .execute(w.conn())
            .await?;
        w.commit().await?;
        Ok(r.rows_affected())
    }
}

/// Chains the entries written before the ledger had a hash chain (migration 0021), once,
/// in their `seq` order, in one transaction. The append-only trigger is dropped for that
/// transaction only (SQLite's DDL is transactional) and put back as 0001 made it.
async fn chain_backfill(conn: &mut SqliteConnection) -> Result<()> {
    use assent_store::shared::chain::*;
    let tenants: Vec<String> = sqlx::query_scalar(BACKFILL_TENANTS_SQL)
        .fetch_all(&mut *conn)
        .await?;
    if tenants.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("DROP TRIGGER consent_ledger_no_update")
        .execute(&mut *tx)
        .await?;
    for tenant_id in &tenants {
        let (mut seq, mut hash): (i64, String) = sqlx::query_as(HEAD_SQL)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or_else(empty_head);
        let mut after = 0i64;
        loop {
            let rows: Vec<ChainRow> = sqlx::query_as(BACKFILL_PAGE_SQL)
                .bind(tenant_id)
                .bind(after)
                .bind(PAGE_SIZE)
                .fetch_all(&mut *tx)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for r in &rows {
                let entry = r.entry().ok_or_else(|| {
                    StoreError::Database(format!("ledger entry {} does not decode", r.seq))
                })?;
                seq += 1;
                hash = decide::chain::hash(&hash, tenant_id, seq, &entry);
                sqlx::query(BACKFILL_SET_SQL)
                    .bind(seq)
                    .bind(&hash)
                    .bind(r.seq)
                    .bind(tenant_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO ledger_heads (tenant_id, seq, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(tenant_id)
        .bind(seq)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledger\n\
         BEGIN SELECT RAISE(ABORT, 'consent_ledger is append-only'); END;",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(
        tenants = tenants.len(),
        "chained the ledger entries written before the hash chain"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tagged page reads on two reader connections when it can get them; with the pool
    /// taken by others (several pages read at once) it reads on the one it holds instead of
    /// waiting for a second while holding the first, which stalled every read of the store
    /// until the pool's acquire timeout.
    #[tokio::test]
    async fn a_tagged_page_reads_with_the_reader_pool_taken() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/a.db", dir.path().display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let now = Utc::now();
        let phone = E164::parse("+15125550200").unwrap();
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
        let c = Customer {
            id: "a".into(),
            name: "Customer a".into(),
            address: None,
            tags: vec!["vip".into()],
            phones: vec![ContactMethod {
                number: phone.clone(),
                job_notifications: true,
                marketing_updates: false,
            }],
            created_at: now,
        };
        store.create_customer(&t.id, &c, &[]).await.unwrap();
        // Every reader connection but one taken.
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.reader.acquire().await.unwrap());
        }
        let page = store
            .audience_page(&t.id, &["vip".to_string()], None, 10, now)
            .await
            .unwrap();
        assert_eq!(page.members.len(), 1);
        assert_eq!(page.members[0].0.phone, phone);
        assert!(page.next.is_none());
        drop(held);
    }

    /// The SQLite linked in is built as `.cargo/config.toml` asks: each connection with
    /// its own page cache and no global allocation counter. Built without that file, the
    /// writer and the readers contend for two process-wide mutexes on every page and
    /// allocation (a fan-out of 1,000,000 was a quarter slower).
    #[tokio::test]
    async fn sqlite_is_built_without_shared_page_cache_or_memory_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/a.db", dir.path().display()))
            .await
            .unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&store.reader)
            .await
            .unwrap();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
    }
}
