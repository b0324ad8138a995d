//! The PostgreSQL backend: the store for running several `assent serve` processes on one
//! database. It mirrors the SQLite backend method by method; what SQLite gets from its
//! single writer connection, this backend gets from locks that hold across processes:
//!
//! - every write that can change what the gate says about a phone (`transact`, the toggles
//!   of `create_customer` and `set_toggles`) first takes the phone's transaction-scoped
//!   advisory lock, `pg_advisory_xact_lock(hashtextextended(tenant_id || ':' || phone, 0))`,
//!   and only then reads; under READ COMMITTED each later statement sees what the previous
//!   holder committed;
//! - `claim_due` takes due rows `FOR UPDATE SKIP LOCKED`, and each message's phone lock with
//!   `pg_try_advisory_xact_lock`: a message whose phone is busy is left for a later claim
//!   rather than waited for (two claimers waiting on each other's phones would deadlock);
//! - a claim reads and writes a sender's pace and a tenant's 24-hour hand-off count only
//!   while it holds their advisory locks (taken the same non-waiting way), so the per-sender
//!   rate and the per-tenant daily cap hold across processes;
//! - an inbound `MessageSid` is checked under the phone's lock and is unique in
//!   `messages.provider_id`, so a webhook retried to another process changes nothing twice;
//! - migrations run under a session advisory lock, so processes may start together.

mod campaigns;
// Reviews, estimates, recurring services and calls: the same SQL on both backends (see
// assent_store::shared).
// Tenants, their senders and registrations: the same SQL on both backends (see
// assent_store::shared).
assent_store::shared_tenant_sql!(sqlx::Postgres, PostgresStore, pool);
// Customers, the ledger's cold reads, single messages and a plan's plain writes, likewise.
assent_store::shared_store_sql!(sqlx::Postgres, PostgresStore, pool);

mod cold {
    assent_store::shared_cold_sql!(sqlx::Postgres, crate::PostgresStore, pool);
}
mod web;

mod relay {
    assent_store::shared_relay_sql!(sqlx::Postgres, crate::PostgresStore, pool);
}
// Reassigned-number checks and status-callback history (see assent_store::shared::evidence).
mod evidence {
    assent_store::shared_evidence_sql!(
        sqlx::Postgres,
        "SELECT jsonb_array_elements_text($2::jsonb)",
        crate::PostgresStore,
        pool
    );
}
assent_store::shared_chain_impl!(PostgresStore, pool);

// Every list the API and the web app page through: the same SQL on both backends (see
// assent_store::shared::lists).
mod lists {
    assent_store::shared_list_sql!(
        sqlx::Postgres,
        super::PostgresStore,
        pool,
        "(k.state::json ->> 'marketing')"
    );
}
// The overview and the campaign data lists (see assent_store::shared::overview).
mod overview {
    assent_store::shared_overview_sql!(sqlx::Postgres, super::PostgresStore, pool);
}

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use assent_core::consent::ConsentState;
use assent_core::gate::Toggles;
use assent_core::phone::E164;
use assent_store::codec::{self, ms, time};
use assent_store::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, FromRow, PgConnection, PgPool, Row};

/// The schema, applied by sqlx's migrator. The files never change once released: sqlx
/// keeps each one's checksum and refuses a database whose applied files differ.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The session advisory lock the migration runner holds ("assent" in ASCII).
const MIGRATION_LOCK: i64 = 0x6173_7365_6e74;

/// How many connections one process keeps at most.
const MAX_CONNECTIONS: u32 = 16;
/// With the database down, a request fails after this long instead of queueing for half
/// a minute: well inside Twilio's 15 s webhook timeout, so Twilio retries.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening the store waits for the server's first answer: a host that drops
/// packets fails start-up within this, not after minutes of TCP retries.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(8);

/// Why a first connection failed, in the words an operator looks for first (connection
/// refused, authentication, TLS, no such database), with the driver's own message after.
fn connect_failure(options: &PgConnectOptions, e: &sqlx::Error) -> StoreError {
    let at = format!("{}:{}", options.get_host(), options.get_port());
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let cause = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is PostgreSQL running and listening there?)"
        }
        sqlx::Error::Io(_) => "network error",
        sqlx::Error::Tls(_) => "TLS failed",
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("28P01" | "28000")) => {
            "authentication failed"
        }
        sqlx::Error::Database(d) if d.code().as_deref() == Some("3D000") => {
            "no such database (create it first)"
        }
        _ if lower.contains("tls") || lower.contains("ssl") || lower.contains("certificate") => {
            "TLS failed"
        }
        _ if lower.contains("password") || lower.contains("authentication") => {
            "authentication failed"
        }
        _ => "could not connect",
    };
    StoreError::Database(format!("PostgreSQL at {at}: {cause}: {text}"))
}

/// A transaction with the write guard's shape that assent_store::shared's impls use.
struct Tx(sqlx::Transaction<'static, sqlx::Postgres>);

impl Tx {
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.0
    }

    async fn commit(self) -> Result<()> {
        Ok(self.0.commit().await?)
    }
}

pub struct PostgresStore {
    pool: PgPool,
    options: PgConnectOptions,
    bench_table_ready: AtomicBool,
    /// One claim at a time per process: the claims of one process's lanes would otherwise
    /// meet on the same senders' locks, and the one that loses has locked and read its
    /// rows for nothing.
    claiming: tokio::sync::Mutex<()>,
    /// Each tenant's context as last read, under its revision (see [`context_at`]).
    contexts: Contexts,
}

/// Tenants' contexts by id, each with the `tenants.revision` it was read under.
type Contexts = std::sync::Mutex<HashMap<String, (i64, TenantContext)>>;

/// The tenant's context for a snapshot read under `revision` (the tenant's revision, read
/// with the phones): this process's copy when it was read under the same revision, since
/// every change to the tenant, its senders or its registrations raises it (migration
/// 0037); read again otherwise. The copy is read after the revision, so it is never older
/// than the revision it is kept under (a later one only makes the next write read again).
async fn context_at(
    conn: &mut PgConnection,
    contexts: &Contexts,
    tenant_id: &str,
    revision: Option<i64>,
) -> Result<TenantContext> {
    let kept = |m: &HashMap<String, (i64, TenantContext)>| {
        m.get(tenant_id)
            .filter(|(r, _)| Some(*r) == revision)
            .map(|(_, c)| c.clone())
    };
    if let Some(c) = contexts.lock().ok().and_then(|m| kept(&m)) {
        return Ok(c);
    }
    let c = load_tenant_context(conn, tenant_id).await?;
    if let (Some(r), Ok(mut m)) = (revision, contexts.lock()) {
        m.insert(tenant_id.to_string(), (r, c.clone()));
    }
    Ok(c)
}

impl PostgresStore {
    /// A write for the statements written once in assent_store::shared: one transaction,
    /// committed by `commit`.
    async fn write(&self) -> Result<Tx> {
        Ok(Tx(self.pool.begin().await?))
    }

    /// Connects to `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`; the database must exist.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("assent");
        // One connection on its own first: the pool retries a refused connection until its
        // acquire timeout and then says only "pool timed out", losing the cause.
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(c)) => {
                let _ = c.close().await;
            }
            Ok(Err(e)) => return Err(connect_failure(&options, &e)),
            Err(_) => {
                return Err(StoreError::Database(format!(
                    "PostgreSQL at {}:{}: no answer within {} s (host down, or a firewall dropping packets?)",
                    options.get_host(),
                    options.get_port(),
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        Ok(PostgresStore {
            pool,
            options,
            bench_table_ready: AtomicBool::new(false),
            claiming: tokio::sync::Mutex::new(()),
            contexts: Default::default(),
        })
    }

    /// The raw durable-transaction rate of this database, for benchmarks: one UPSERT and
    /// one INSERT per transaction.
    pub async fn raw_transaction(&self, i: u64) -> Result<()> {
        if !self.bench_table_ready.load(Ordering::Relaxed) {
            // CREATE TABLE IF NOT EXISTS is not safe against itself running concurrently.
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(MIGRATION_LOCK + 1)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS bench_raw (k TEXT PRIMARY KEY, n BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            self.bench_table_ready.store(true, Ordering::Relaxed);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO bench_raw (k, n) VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = bench_raw.n + 1",
        )
        .bind(format!("k{}", i % 1000))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO bench_raw (k, n) VALUES ($1, 0) ON CONFLICT (k) DO NOTHING")
            .bind(format!("row{i}"))
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
    }

    /// Benchmarks only: opts `phones` in to marketing directly (no ledger), to seed large
    /// campaigns quickly.
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
            let numbers: Vec<&str> = chunk.iter().map(E164::as_str).collect();
            sqlx::query(
                "INSERT INTO consent (tenant_id, phone, state, updated_at) \
                 SELECT $1, p, $2, $3 FROM unnest($4::text[]) AS u(p) \
                 ON CONFLICT (tenant_id, phone) DO UPDATE SET state = excluded.state, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant_id)
            .bind(&state)
            .bind(ms(now))
            .bind(&numbers)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Benchmarks only: the raw cost of writing `n` rows in one transaction (5,000 per
    /// statement, as arrays), the baseline of `bench campaign` on PostgreSQL.
    pub async fn raw_bulk_rows(&self, n: u64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK + 1)
            .execute(&mut *tx)
            .await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_bulk (k TEXT PRIMARY KEY, a TEXT, b BIGINT)")
            .execute(&mut *tx)
            .await?;
        sqlx::query("TRUNCATE bench_bulk").execute(&mut *tx).await?;
        let mut i = 0u64;
        while i < n {
            let end = (i + 5_000).min(n);
            let keys: Vec<String> = (i..end).map(|k| format!("row{k}")).collect();
            let nums: Vec<i64> = (i..end).map(|k| k as i64).collect();
            sqlx::query(
                "INSERT INTO bench_bulk (k, a, b) \
                 SELECT k, '+17375550000 campaign send', b FROM unnest($1::text[], $2::bigint[]) AS u(k, b)",
            )
            .bind(&keys)
            .bind(&nums)
            .execute(&mut *tx)
            .await?;
            i = end;
        }
        Ok(tx.commit().await?)
    }
}

/// Waits for the phone's lock; it is released when the transaction ends.
async fn lock_phone(conn: &mut PgConnection, tenant_id: &str, phone: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))")
        .bind(tenant_id)
        .bind(phone)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The named locks a claim needs to hand `m` off: its sender's pace and its tenant's daily
/// count.
fn pace_locks(m: &Message) -> [String; 2] {
    [
        format!("sender:{}", m.from.as_str()),
        format!("daily:{}", m.tenant_id),
    ]
}

/// Takes the named locks nobody holds, all in one statement, never waiting; returns the
/// names now held. Claims use them for a sender's pace (`sender:NUMBER`) and a tenant's
/// daily count (`daily:TENANT`).
async fn try_lock_names(conn: &mut PgConnection, names: &[String]) -> Result<HashSet<String>> {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT k, pg_try_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, held)| held.then_some(k))
        .collect())
}

/// Takes the locks of several phones in one order, so two callers cannot deadlock.
async fn lock_phones<'a>(
    conn: &mut PgConnection,
    tenant_id: &str,
    phones: impl IntoIterator<Item = &'a E164>,
) -> Result<()> {
    let mut phones: Vec<&str> = phones.into_iter().map(E164::as_str).collect();
    phones.sort_unstable();
    phones.dedup();
    for p in phones {
        lock_phone(conn, tenant_id, p).await?;
    }
    Ok(())
}

/// Appends entries in their order (seq follows it), in one statement.
async fn append_ledger(
    conn: &mut PgConnection,
    tenant_id: &str,
    entries: &[NewLedgerEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&NewLedgerEntry) -> Option<&str>| -> Vec<Option<&str>> {
        entries.iter().map(f).collect()
    };
    // The tenant's head row, locked until this transaction ends: writers of one tenant
    // chain their entries one after the other, in commit order (docs/PROOF.md).
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
    let (chain_seqs, hashes): (Vec<i64>, Vec<String>) = links.into_iter().unzip();
    sqlx::query(
        "INSERT INTO consent_ledger (tenant_id, phone, channel, old_state, new_state, source, actor, \
         occurred_at, message_sid, body, rule, ip, user_agent, page, disclosure, request_id, chain_seq, hash) \
         SELECT $1, e.phone, e.channel, e.old_state, e.new_state, e.source, e.actor, e.occurred_at, \
           e.message_sid, e.body, e.rule, e.ip, e.user_agent, e.page, e.disclosure, e.request_id, \
           e.chain_seq, e.hash \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
           $16::text[], $17::bigint[], $18::text[]) \
         WITH ORDINALITY AS e(phone, channel, old_state, new_state, source, actor, occurred_at, \
           message_sid, body, rule, ip, user_agent, page, disclosure, request_id, chain_seq, hash, n) ORDER BY e.n",
    )
    .bind(tenant_id)
    .bind(col(|e| Some(e.phone.as_str())))
    .bind(col(|e| Some(e.channel.as_str())))
    .bind(col(|e| Some(e.old_state.as_str())))
    .bind(col(|e| Some(e.new_state.as_str())))
    .bind(col(|e| Some(e.source.as_str())))
    .bind(col(|e| Some(e.actor.as_str())))
    .bind(entries.iter().map(|e| ms(e.occurred_at)).collect::<Vec<i64>>())
    .bind(col(|e| e.evidence.message_sid.as_deref()))
    .bind(col(|e| e.evidence.text.as_deref()))
    .bind(col(|e| e.evidence.rule.as_deref()))
    .bind(col(|e| e.evidence.ip.as_deref()))
    .bind(col(|e| e.evidence.user_agent.as_deref()))
    .bind(col(|e| e.evidence.page.as_deref()))
    .bind(col(|e| e.evidence.disclosure.as_deref()))
    .bind(col(|e| e.evidence.request.as_deref()))
    .bind(chain_seqs)
    .bind(hashes)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn message_from(row: &PgRow) -> Result<Message> {
    shared::MessageRow::from_row(row)?.try_into()
}

/// Inserts messages in one statement, in the order given (their `seq` follows it).
pub(crate) async fn insert_messages(conn: &mut PgConnection, messages: &[Message]) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let text = |f: &dyn Fn(&Message) -> &str| -> Vec<&str> { messages.iter().map(f).collect() };
    let ids = text(&|m| m.id.as_str());
    let tenants = text(&|m| m.tenant_id.as_str());
    let directions = text(&|m| m.direction.as_str());
    let channels = text(&|m| m.channel.as_str());
    let froms = text(&|m| m.from.as_str());
    let tos = text(&|m| m.to.as_str());
    let phones = text(&|m| m.phone.as_str());
    let bodies = text(&|m| m.body.as_str());
    let kinds = text(&|m| m.kind.as_str());
    let statuses = text(&|m| m.status.as_str());
    let purposes: Vec<Option<&str>> = messages
        .iter()
        .map(|m| m.purpose.as_ref().map(|p| p.as_str()))
        .collect();
    let reasons: Vec<Option<String>> = messages
        .iter()
        .map(|m| m.reason.as_ref().map(|r| r.to_string()))
        .collect();
    let provider_ids: Vec<Option<&str>> =
        messages.iter().map(|m| m.provider_id.as_deref()).collect();
    let segments: Vec<i32> = messages.iter().map(|m| m.segments as i32).collect();
    let priorities: Vec<i32> = messages.iter().map(|m| m.priority as i32).collect();
    let due: Vec<i64> = messages.iter().map(|m| ms(m.due_at)).collect();
    let expires: Vec<Option<i64>> = messages.iter().map(|m| m.expires_at.map(ms)).collect();
    let keys: Vec<Option<&str>> = messages
        .iter()
        .map(|m| m.idempotency_key.as_deref())
        .collect();
    let handed_off: Vec<Option<i64>> = messages
        .iter()
        .map(|m| decide::handed_off(m.status).then(|| ms(m.updated_at)))
        .collect();
    let created: Vec<i64> = messages.iter().map(|m| ms(m.created_at)).collect();
    let updated: Vec<i64> = messages.iter().map(|m| ms(m.updated_at)).collect();
    // Each message's list keys go to `message_list` by a trigger (migration 0034).
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, direction, channel, from_number, to_number, phone, body, kind, \
         purpose, status, reason, provider_id, segments, priority, due_at, expires_at, idempotency_key, \
         handed_off_at, created_at, updated_at) \
         SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, \
           c19, c20, c21 \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
           $14::int[], $15::int[], $16::bigint[], $17::bigint[], $18::text[], $19::bigint[], \
           $20::bigint[], $21::bigint[]) WITH ORDINALITY \
           AS m(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, \
             c19, c20, c21, n) \
         ORDER BY n",
    )
    .bind(ids)
    .bind(tenants)
    .bind(directions)
    .bind(channels)
    .bind(froms)
    .bind(tos)
    .bind(phones)
    .bind(bodies)
    .bind(kinds)
    .bind(purposes)
    .bind(statuses)
    .bind(reasons)
    .bind(provider_ids)
    .bind(segments)
    .bind(priorities)
    .bind(due)
    .bind(expires)
    .bind(keys)
    .bind(handed_off)
    .bind(created)
    .bind(updated)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

use assent_store::shared::TenantContext;

/// A phone of a tenant: (tenant id, E.164 number).
type PhoneKey = (String, String);

/// Everything about several phones in a single statement (a round trip per read
/// otherwise): their consent, combined toggles, address and recent marketing hand-offs.
async fn load_phones(
    conn: &mut PgConnection,
    phones: &[PhoneKey],
    now_ms: i64,
) -> Result<HashMap<PhoneKey, PgRow>> {
    let tenant_ids: Vec<&str> = phones.iter().map(|k| k.0.as_str()).collect();
    let numbers: Vec<&str> = phones.iter().map(|k| k.1.as_str()).collect();
    // Toggles combine over every record holding the phone (on only if on in all); the
    // address is the oldest such customer's that has one (the id breaks ties).
    let rows = sqlx::query(
        "SELECT p.tenant_id, p.phone, \
           (SELECT state FROM consent WHERE tenant_id = p.tenant_id AND phone = p.phone) AS state, \
           (SELECT COUNT(*) FROM contact_methods WHERE tenant_id = p.tenant_id AND phone = p.phone) AS records, \
           (SELECT bool_and(job_notifications) FROM contact_methods \
              WHERE tenant_id = p.tenant_id AND phone = p.phone) AS job, \
           (SELECT bool_and(marketing_updates) FROM contact_methods \
              WHERE tenant_id = p.tenant_id AND phone = p.phone) AS mk, \
           (SELECT c.address FROM contact_methods cm JOIN customers c ON c.tenant_id = cm.tenant_id \
              AND c.id = cm.customer_id WHERE cm.tenant_id = p.tenant_id AND cm.phone = p.phone \
              AND c.address IS NOT NULL ORDER BY c.created_at, c.id LIMIT 1) AS address, \
           ARRAY(SELECT handed_off_at FROM messages WHERE tenant_id = p.tenant_id AND phone = p.phone \
              AND purpose = 'marketing' AND handed_off_at > $3) AS recent, \
           (SELECT revision FROM tenants WHERE id = p.tenant_id) AS revision \
         FROM unnest($1::text[], $2::text[]) AS p(tenant_id, phone)",
    )
    .bind(tenant_ids)
    .bind(numbers)
    .bind(decide::frequency_window_start(now_ms))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let key = (
                r.try_get::<String, _>("tenant_id")?,
                r.try_get::<String, _>("phone")?,
            );
            Ok((key, r))
        })
        .collect()
}

fn snapshot_from(row: &PgRow, (tenant, registrations): TenantContext) -> Result<PhoneSnapshot> {
    let consent = match row.try_get::<Option<String>, _>("state")? {
        Some(state) => codec::json::<ConsentState>("consent", &state)?,
        None => ConsentState::default(),
    };
    let records: i64 = row.try_get("records")?;
    let job: Option<bool> = row.try_get("job")?;
    let mk: Option<bool> = row.try_get("mk")?;
    let recent: Vec<i64> = row.try_get("recent")?;
    Ok(PhoneSnapshot {
        tenant,
        registrations,
        consent,
        toggles: Toggles {
            on_a_record: records > 0,
            job_notifications: records > 0 && job == Some(true),
            marketing_updates: records > 0 && mk == Some(true),
        },
        address: row.try_get("address")?,
        recent_marketing: recent.into_iter().map(time).collect(),
    })
}

async fn load_snapshot(
    conn: &mut PgConnection,
    ctx: TenantContext,
    phone: &E164,
    now_ms: i64,
) -> Result<PhoneSnapshot> {
    let key = (ctx.0.id.clone(), phone.as_str().to_string());
    let rows = load_phones(conn, std::slice::from_ref(&key), now_ms).await?;
    let row = rows.get(&key).ok_or(StoreError::NotFound)?;
    snapshot_from(row, ctx)
}

/// Tries every phone's lock in one statement, never waiting; returns the phones now held.
async fn try_lock_phones(
    conn: &mut PgConnection,
    phones: &[PhoneKey],
) -> Result<HashSet<PhoneKey>> {
    let tenant_ids: Vec<&str> = phones.iter().map(|k| k.0.as_str()).collect();
    let numbers: Vec<&str> = phones.iter().map(|k| k.1.as_str()).collect();
    let rows = sqlx::query(
        "SELECT k.tenant_id, k.phone, \
           pg_try_advisory_xact_lock(hashtextextended(k.tenant_id || ':' || k.phone, 0)) AS locked \
         FROM unnest($1::text[], $2::text[]) AS k(tenant_id, phone)",
    )
    .bind(tenant_ids)
    .bind(numbers)
    .fetch_all(&mut *conn)
    .await?;
    let mut held = HashSet::new();
    for r in rows {
        if r.try_get::<bool, _>("locked")? {
            held.insert((
                r.try_get::<String, _>("tenant_id")?,
                r.try_get::<String, _>("phone")?,
            ));
        }
    }
    Ok(held)
}

async fn write_plan(
    conn: &mut PgConnection,
    tenant_id: &str,
    phone: &E164,
    plan: &Plan,
    now_ms: i64,
) -> Result<()> {
    write_consent(conn, tenant_id, phone, plan, now_ms).await?;
    append_ledger(conn, tenant_id, &plan.ledger).await?;
    insert_messages(conn, &plan.messages).await?;
    write_plan_rest(conn, tenant_id, phone, plan, now_ms).await
}
/// Adds a claim's hand-offs to the tenant's hour bucket (the caller holds the tenant's
/// daily lock) and drops buckets older than any window.
async fn count_handoffs(
    conn: &mut PgConnection,
    tenant_id: &str,
    n: u32,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenant_handoffs (tenant_id, hour, n) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, hour) DO UPDATE SET n = tenant_handoffs.n + excluded.n",
    )
    .bind(tenant_id)
    .bind(handoff_bucket(now_ms))
    .bind(i64::from(n))
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM tenant_handoffs WHERE tenant_id = $1 AND hour < $2")
        .bind(tenant_id)
        .bind(decide::oldest_kept_bucket(now_ms))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Applies one update in one statement; a status only moves forward (the row's current
/// status is compared under its row lock). False when the message is unknown.
async fn update_one(
    conn: &mut PgConnection,
    tenant_id: &str,
    id: &str,
    u: &MessageUpdate,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE messages SET \
           status = CASE WHEN status = ANY($1) THEN $2 ELSE status END, \
           reason = CASE WHEN status = ANY($1) THEN $3 ELSE reason END, \
           provider_id = COALESCE(provider_id, $4), updated_at = $5 WHERE tenant_id = $6 AND id = $7",
    )
    .bind(decide::ranked_below(u.status))
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
    conn: &mut PgConnection,
    tenant_id: &str,
    c: &Customer,
    ledger: &[NewLedgerEntry],
) -> Result<()> {
    insert_customer_rows(conn, tenant_id, c).await?;
    append_ledger(conn, tenant_id, ledger).await
}
/// Inserts customers with their tags, contact methods and ledger entries, one statement
/// per table.
async fn insert_customers(
    conn: &mut PgConnection,
    tenant_id: &str,
    customers: &[(Customer, Vec<NewLedgerEntry>)],
) -> Result<()> {
    let (mut ids, mut names, mut addresses, mut tag_lists, mut created) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut tag_customers, mut tags) = (Vec::new(), Vec::new());
    let (mut cm_customers, mut cm_phones, mut positions, mut jobs, mut mks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ledger = Vec::new();
    for (c, entries) in customers {
        ids.push(c.id.as_str());
        names.push(c.name.as_str());
        addresses.push(c.address.as_deref());
        tag_lists.push(codec::to_json(&c.tags));
        created.push(ms(c.created_at));
        for t in &c.tags {
            tag_customers.push(c.id.as_str());
            tags.push(t.as_str());
        }
        for (i, p) in c.phones.iter().enumerate() {
            cm_customers.push(c.id.as_str());
            cm_phones.push(p.number.as_str());
            positions.push(i as i32);
            jobs.push(p.job_notifications);
            mks.push(p.marketing_updates);
        }
        ledger.extend(entries.iter().cloned());
    }
    sqlx::query(
        "INSERT INTO customers (tenant_id, id, name, address, tags, created_at) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])",
    )
    .bind(tenant_id)
    .bind(ids)
    .bind(names)
    .bind(addresses)
    .bind(tag_lists)
    .bind(created)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO customer_tags (tenant_id, customer_id, tag) \
         SELECT $1, * FROM unnest($2::text[], $3::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(tag_customers)
    .bind(tags)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO contact_methods (tenant_id, customer_id, phone, position, job_notifications, marketing_updates) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::bool[], $6::bool[])",
    )
    .bind(tenant_id)
    .bind(cm_customers)
    .bind(cm_phones)
    .bind(positions)
    .bind(jobs)
    .bind(mks)
    .execute(&mut *conn)
    .await?;
    append_ledger(conn, tenant_id, &ledger).await
}

/// A claim's decisions, written in one statement at its end.
#[derive(Default)]
struct Decided {
    tenant_ids: Vec<String>,
    ids: Vec<String>,
    statuses: Vec<&'static str>,
    reasons: Vec<Option<String>>,
    due_ats: Vec<i64>,
}

impl Decided {
    fn push(
        &mut self,
        key: (&str, &str),
        status: MessageStatus,
        reason: Option<String>,
        due_at: i64,
    ) {
        self.tenant_ids.push(key.0.to_string());
        self.ids.push(key.1.to_string());
        self.statuses.push(status.as_str());
        self.reasons.push(reason);
        self.due_ats.push(due_at);
    }

    async fn write(self, conn: &mut PgConnection, now_ms: i64) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE messages AS m SET status = d.status, reason = d.reason, due_at = d.due_at, \
               updated_at = $5, \
               handed_off_at = CASE WHEN d.status = 'sending' THEN $5 ELSE m.handed_off_at END, \
               call_started_at = CASE WHEN d.status = 'sending' THEN NULL ELSE m.call_started_at END \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $6::text[]) \
               AS d(id, status, reason, due_at, tenant_id) \
             WHERE m.tenant_id = d.tenant_id AND m.id = d.id",
        )
        .bind(self.ids)
        .bind(self.statuses)
        .bind(self.reasons)
        .bind(self.due_ats)
        .bind(now_ms)
        .bind(self.tenant_ids)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Carries a database made before sqlx ran the migrations (its record is
/// `schema_migrations`) over to sqlx's record, then applies what is missing. The caller
/// holds [`MIGRATION_LOCK`], so processes starting together do this one at a time (sqlx's
/// own lock covers only its part).
async fn run_migrations(conn: &mut PgConnection) -> Result<()> {
    let mut tx = conn.begin().await?;
    let old: Vec<i64> = match sqlx::query_scalar::<_, Option<String>>(
        "SELECT to_regclass('schema_migrations')::text",
    )
    .fetch_one(&mut *tx)
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
    MIGRATOR.run_direct(None, conn, false).await?;
    Ok(())
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn migrate(&self) -> Result<()> {
        // A connection of its own: the session lock goes when it closes, whatever happens.
        let mut conn = PgConnection::connect_with(&self.options).await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut conn)
            .await?;
        let mut result = run_migrations(&mut conn).await;
        if result.is_ok() {
            result = chain_backfill(&mut conn).await;
        }
        let _ = conn.close().await;
        result
    }

    async fn ping(&self) -> Result<()> {
        // A transaction id is assigned only where writes are possible (not on a standby
        // or a read-only database); the transaction is rolled back when dropped.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT txid_current()")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    async fn create_tenant(&self, t: &Tenant, api_key_hash: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        create_tenant(&mut *tx, t, api_key_hash).await?;
        relay::create_twilio_account(&mut *tx, &t.id, &TwilioAccount::new_sid()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_settings(&self, tenant_id: &str, settings: &Settings) -> Result<()> {
        update_settings(&self.pool, tenant_id, settings).await
    }

    async fn set_senders(&self, tenant_id: &str, s: &Senders, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The senders' triggers raise the revision (migration 0037) of every tenant whose
        // rows change: this one, and one whose retired number it takes. Those tenants'
        // rows are locked first, in id order, so two tenants trading numbers at once wait
        // for each other rather than deadlock.
        let numbers: Vec<&str> = [&s.transactional, &s.marketing]
            .into_iter()
            .flatten()
            .map(E164::as_str)
            .collect();
        sqlx::query(
            "SELECT id FROM tenants WHERE id = $1 \
               OR id IN (SELECT tenant_id FROM senders WHERE number = ANY($2)) \
             ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(tenant_id)
        .bind(&numbers)
        .execute(&mut *tx)
        .await?;
        set_senders(&mut tx, tenant_id, s, now).await?;
        Ok(tx.commit().await?)
    }

    async fn save_registration(&self, tenant_id: &str, r: &Registration) -> Result<()> {
        save_registration(&self.pool, tenant_id, r).await
    }

    async fn update_profile(
        &self,
        tenant_id: &str,
        name: &str,
        time_zone: &assent_core::Tz,
    ) -> Result<()> {
        update_profile(&self.pool, tenant_id, name, time_zone.name()).await
    }
}

#[async_trait]
impl CustomerStore for PostgresStore {
    async fn refresh_statistics(&self) -> Result<()> {
        // A role that does not own the tables gets a warning, not an error.
        sqlx::query("ANALYZE customers, contact_methods, customer_tags")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn hold_import_lock(&self, tenant_id: &str) -> Result<Option<assent_store::ImportLock>> {
        // A session-level lock on a connection of its own, taken out of the pool: dropping
        // the guard closes that connection, and the server releases the lock with it.
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock(hashtextextended('import:' || $1, 0))")
            .bind(tenant_id)
            .execute(&mut conn)
            .await?;
        Ok(Some(Box::new(conn)))
    }

    async fn create_customer(
        &self,
        tenant_id: &str,
        c: &Customer,
        ledger: &[NewLedgerEntry],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // A new record's toggles combine with the others holding its phones: taken under
        // the phones' locks, like every other change the gate reads.
        lock_phones(&mut tx, tenant_id, c.phones.iter().map(|p| &p.number)).await?;
        insert_customer(&mut tx, tenant_id, c, ledger).await?;
        Ok(tx.commit().await?)
    }

    async fn create_customers(
        &self,
        tenant_id: &str,
        customers: &[(Customer, Vec<NewLedgerEntry>)],
    ) -> Result<()> {
        // Multi-row inserts, one statement per table per chunk. Each chunk holds its phones'
        // advisory locks, which live in the server's shared lock table until it commits:
        // chunks stay well below that table's size.
        for chunk in customers.chunks(500) {
            let mut tx = self.pool.begin().await?;
            let mut phones: Vec<&str> = chunk
                .iter()
                .flat_map(|(c, _)| c.phones.iter())
                .map(|p| p.number.as_str())
                .collect();
            phones.sort_unstable();
            phones.dedup();
            sqlx::query(
                "SELECT COUNT(pg_advisory_xact_lock(hashtextextended($1 || ':' || p, 0))) \
                 FROM unnest($2::text[]) AS p",
            )
            .bind(tenant_id)
            .bind(phones)
            .execute(&mut *tx)
            .await?;
            insert_customers(&mut tx, tenant_id, chunk).await?;
            tx.commit().await?;
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
        let mut tx = self.pool.begin().await?;
        lock_phone(&mut tx, tenant_id, method.number.as_str()).await?;
        insert_phone_row(&mut tx, tenant_id, customer_id, method).await?;
        append_ledger(&mut tx, tenant_id, ledger).await?;
        Ok(tx.commit().await?)
    }
    async fn remove_phone(&self, tenant_id: &str, customer_id: &str, phone: &E164) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // A claim deciding a hand-off for this phone sees it on the customer or not at all.
        lock_phone(&mut tx, tenant_id, phone.as_str()).await?;
        if delete_phone_row(&mut *tx, tenant_id, customer_id, phone).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(tx.commit().await?)
    }
    async fn set_toggles(
        &self,
        tenant_id: &str,
        customer_id: &str,
        phone: &E164,
        toggles: (bool, bool),
        ledger: &[NewLedgerEntry],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // A claim deciding a hand-off for this phone either sees the new toggles or
        // finishes before they are acknowledged.
        lock_phone(&mut tx, tenant_id, phone.as_str()).await?;
        if update_toggles(&mut *tx, tenant_id, customer_id, phone, toggles).await? == 0 {
            return Err(StoreError::NotFound);
        }
        append_ledger(&mut tx, tenant_id, ledger).await?;
        Ok(tx.commit().await?)
    }
}

#[async_trait]
impl ConsentStore for PostgresStore {
    async fn transact(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
        dedup: Option<&str>,
        plan: &mut Planner<'_>,
    ) -> Result<Transacted> {
        let mut tx = self.pool.begin().await?;
        // Before any read: READ COMMITTED then shows what the previous holder committed.
        lock_phone(&mut tx, tenant_id, phone.as_str()).await?;
        if let Some(key) = dedup {
            let seen =
                sqlx::query("SELECT 1 FROM messages WHERE tenant_id = $1 AND provider_id = $2")
                    .bind(tenant_id)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if seen.is_some() {
                return Ok(Transacted::Duplicate);
            }
        }
        let now = ms(now);
        let ctx = load_tenant_context(&mut tx, tenant_id).await?;
        let snap = load_snapshot(&mut tx, ctx, phone, now).await?;
        let p = plan(&snap);
        write_plan(&mut tx, tenant_id, phone, &p, now).await?;
        tx.commit().await?;
        Ok(Transacted::Applied)
    }

    async fn snapshot(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
    ) -> Result<PhoneSnapshot> {
        // One consistent view across the snapshot's several reads.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let ctx = load_tenant_context(&mut tx, tenant_id).await?;
        let snap = load_snapshot(&mut tx, ctx, phone, ms(now)).await?;
        tx.commit().await?;
        Ok(snap)
    }

    async fn snapshots(
        &self,
        tenant_id: &str,
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<Vec<PhoneSnapshot>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let ctx = load_tenant_context(&mut tx, tenant_id).await?;
        let keys: Vec<PhoneKey> = phones
            .iter()
            .map(|p| (tenant_id.to_string(), p.as_str().to_string()))
            .collect();
        let rows = load_phones(&mut tx, &keys, ms(now)).await?;
        tx.commit().await?;
        keys.iter()
            .map(|k| snapshot_from(rows.get(k).ok_or(StoreError::NotFound)?, ctx.clone()))
            .collect()
    }

    async fn overdue_reviews(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, Review)>> {
        cold::overdue_reviews(&self.pool, now, limit).await
    }

    async fn review(&self, tenant_id: &str, id: &str) -> Result<Option<Review>> {
        cold::review(&self.pool, tenant_id, id).await
    }
}

/// Begins one of the queue's transactions, planned by key whatever the statistics say.
/// Right after a large enqueue the statistics still describe a nearly empty queue: the
/// claim's `ORDER BY … LIMIT` then sorted every due message to take 500 (95 ms a claim with
/// 60,000 queued, and growing with the queue), and the writes joining a batch's keys hashed
/// a sequential scan of the whole table (33 ms a claim). Without sorts and hash or merge
/// joins the only plans left are the ordered index scan and the primary key. Scoped to the
/// transaction. JIT is off with them: a disabled plan node costs 10^10, above any JIT
/// threshold, and compiling each statement took 30–40 ms. The settings go in the BEGIN's
/// own round trip.
async fn plan_by_keys(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    Ok(pool
        .begin_with(
            "BEGIN; SET LOCAL enable_sort = off; SET LOCAL enable_hashjoin = off; \
             SET LOCAL enable_mergejoin = off; SET LOCAL jit = off",
        )
        .await?)
}

/// Writes provider outcomes in the caller's transaction (see [`QueueStore::update_messages`]).
async fn write_updates(
    conn: &mut PgConnection,
    updates: &[(String, String, MessageUpdate)],
) -> Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    // In key order: two batches sharing messages lock their rows in the same order.
    let mut sorted: Vec<&(String, String, MessageUpdate)> = updates.iter().collect();
    sorted.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    // The common case, a hand-off the provider accepted, in one statement for the
    // whole burst (a round trip each otherwise); anything else one by one.
    let (accepted, other): (Vec<_>, Vec<_>) = sorted
        .into_iter()
        .partition(|(_, _, u)| decide::is_acceptance(u));
    if !accepted.is_empty() {
        let at = accepted
            .iter()
            .filter_map(|(_, _, u)| u.at)
            .max()
            .unwrap_or_else(Utc::now);
        let tenants: Vec<&str> = accepted.iter().map(|(t, _, _)| t.as_str()).collect();
        let ids: Vec<&str> = accepted.iter().map(|(_, id, _)| id.as_str()).collect();
        let pids: Vec<&str> = accepted
            .iter()
            .map(|(_, _, u)| u.provider_id.as_deref().unwrap_or_default())
            .collect();
        sqlx::query(
            "UPDATE messages AS m SET \
               status = CASE WHEN m.status = ANY($1) THEN 'sent' ELSE m.status END, \
               reason = CASE WHEN m.status = ANY($1) THEN NULL ELSE m.reason END, \
               provider_id = COALESCE(m.provider_id, v.pid), updated_at = $2 \
             FROM unnest($3::text[], $4::text[], $5::text[]) AS v(tenant_id, id, pid) \
             WHERE m.tenant_id = v.tenant_id AND m.id = v.id",
        )
        .bind(decide::ranked_below(Some(MessageStatus::Sent)))
        .bind(ms(at))
        .bind(tenants)
        .bind(ids)
        .bind(pids)
        .execute(&mut *conn)
        .await?;
    }
    for (tenant_id, id, u) in other {
        update_one(conn, tenant_id, id, u).await?;
    }
    Ok(())
}

/// The rows of the messages a hand-off is about to start (`$1` ids, `$3` their tenants),
/// locked, each with whether it is still the claim made at its time in `$2` and not yet
/// started: one row for each key asked about, so a message asked about under two claims'
/// times (a claim the sweep put back and another took again) is ours under one at most.
/// That is decided from the row as locked, not by a WHERE on `status = 'sending'`: with one,
/// the planner walked the partial index of the tenant's messages in flight once per message
/// started (6 ms a burst with 2,000 in flight), where the primary key finds each row at once.
const START_CALL_ROWS: &str = "SELECT m.tenant_id, m.id, k.claimed_at, (m.status = 'sending' AND m.call_started_at IS NULL AND m.handed_off_at = k.claimed_at) \
     FROM messages m JOIN unnest($1::text[], $2::bigint[], $3::text[]) AS k(id, claimed_at, tenant_id) \
       ON m.tenant_id = k.tenant_id AND m.id = k.id \
     ORDER BY m.id FOR UPDATE OF m";

/// Starts calls in the caller's transaction (see [`QueueStore::start_calls`]). Returns
/// whether each may go, and the claims held back, whose daily-cap count the caller gives
/// back last (`give_back_handoffs`): the hour buckets are the last rows a write locks, as
/// everywhere else.
async fn start_calls_in(
    conn: &mut PgConnection,
    contexts: &Contexts,
    starts: &[CallStart<'_>],
    now: DateTime<Utc>,
    plan: &mut HandoffPlanner<'_>,
) -> Result<(Vec<bool>, Vec<decide::Unstarted>)> {
    if starts.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let messages: Vec<&Message> = starts.iter().map(|s| s.message).collect();
    let now_ms = ms(now);
    // The phones' locks first, waiting for them (a STOP holds its phone's only briefly),
    // in one order so two callers cannot deadlock; claims only ever try them. A STOP
    // committed before this is read below; one after it finds these calls started.
    let mut keys: Vec<PhoneKey> = messages
        .iter()
        .map(|m| (m.tenant_id.clone(), m.phone.as_str().to_string()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let (tenant_ids, numbers): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|k| (k.0.as_str(), k.1.as_str())).unzip();
    sqlx::query(
        "SELECT COUNT(pg_advisory_xact_lock(hashtextextended(k.t || ':' || k.p, 0))) \
         FROM (SELECT t, p FROM unnest($1::text[], $2::text[]) AS u(t, p) ORDER BY t, p) AS k",
    )
    .bind(tenant_ids)
    .bind(numbers)
    .execute(&mut *conn)
    .await?;
    let (tenants_of, ids): (Vec<&str>, Vec<&str>) = messages
        .iter()
        .map(|m| (m.tenant_id.as_str(), m.id.as_str()))
        .unzip();
    let claimed_at: Vec<i64> = starts.iter().map(|s| ms(s.claimed_at)).collect();
    let ours: HashSet<(String, String, i64)> =
        sqlx::query_as::<_, (String, String, i64, bool)>(START_CALL_ROWS)
            .bind(&ids)
            .bind(&claimed_at)
            .bind(&tenants_of)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .filter_map(|(t, id, at, ours)| ours.then_some((t, id, at)))
            .collect();
    let rows = load_phones(conn, &keys, now_ms).await?;
    let mut tenants: HashMap<String, TenantContext> = HashMap::new();
    let mut go = Vec::with_capacity(messages.len());
    let mut decided = Decided::default();
    let mut refunds = Vec::new();
    let mut started: (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut decided_here: HashSet<(&str, &str)> = HashSet::new();
    for s in starts {
        let m = s.message;
        let key = (m.tenant_id.clone(), m.phone.as_str().to_string());
        // Ours under this claim's time, and asked about once only in this write.
        let claim = (m.tenant_id.clone(), m.id.clone(), ms(s.claimed_at));
        let row = match rows.get(&key) {
            Some(row)
                if ours.contains(&claim)
                    && decided_here.insert((m.tenant_id.as_str(), m.id.as_str())) =>
            {
                row
            }
            _ => {
                go.push(false);
                continue;
            }
        };
        let ctx = match tenants.get(&m.tenant_id) {
            Some(c) => c.clone(),
            None => {
                let revision = row.try_get("revision")?;
                let c = context_at(conn, contexts, &m.tenant_id, revision).await?;
                tenants.insert(m.tenant_id.clone(), c.clone());
                c
            }
        };
        let snap = snapshot_from(row, ctx)?;
        let held_back = decide::outcome(m, plan(m, &snap));
        go.push(held_back.is_none());
        match held_back {
            None => {
                started.0.push(m.tenant_id.as_str());
                started.1.push(m.id.as_str());
            }
            Some(o) => {
                decided.push(
                    (&o.tenant_id, &o.id),
                    o.status,
                    o.reason.map(|r| r.to_string()),
                    ms(o.due_at),
                );
                refunds.push(decide::held_back(m, s.claimed_at));
            }
        }
    }
    // Not handed off after all: the frequency cap, which counts hand-offs by
    // `handed_off_at`, must not count these, nor the daily cap, which counted the claim.
    let held = (decided.tenant_ids.clone(), decided.ids.clone());
    decided.write(conn, now_ms).await?;
    if !held.1.is_empty() {
        sqlx::query(
            "UPDATE messages AS m SET handed_off_at = NULL \
             FROM unnest($1::text[], $2::text[]) AS k(tenant_id, id) \
             WHERE m.tenant_id = k.tenant_id AND m.id = k.id",
        )
        .bind(&held.0)
        .bind(&held.1)
        .execute(&mut *conn)
        .await?;
    }
    if !started.1.is_empty() {
        sqlx::query(
            "UPDATE messages AS m SET call_started_at = $1 \
             FROM unnest($2::text[], $3::text[]) AS k(tenant_id, id) \
             WHERE m.tenant_id = k.tenant_id AND m.id = k.id",
        )
        .bind(now_ms)
        .bind(&started.0)
        .bind(&started.1)
        .execute(&mut *conn)
        .await?;
    }
    Ok((go, refunds))
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn enqueue(&self, messages: &[Message]) -> Result<()> {
        // Each message already passed the gate, and the hand-off asks again under the
        // phone's lock: plain inserts, one transaction per chunk.
        for chunk in messages.chunks(5000) {
            let mut tx = self.pool.begin().await?;
            insert_messages(&mut tx, chunk).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<Message>> {
        let _one_claim = self.claiming.lock().await;
        let mut tx = plan_by_keys(&self.pool).await?;
        let now_ms = ms(now);
        // Rows another claimer holds are skipped, not waited for.
        let due: Vec<Message> = sqlx::query(
            "SELECT * FROM messages WHERE status IN ('queued', 'deferred') AND due_at <= $1 \
             ORDER BY priority, due_at, seq LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(message_from)
        .collect::<Result<_>>()?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // The senders' paces and the tenants' daily counts are read and written by one
        // claimer at a time. They are tried first, all at once: a message whose sender or
        // tenant another claim holds waits for a later claim, before this one has locked
        // or read anything about its phone.
        let mut names: Vec<String> = due.iter().flat_map(pace_locks).collect();
        names.sort_unstable();
        names.dedup();
        let free = try_lock_names(&mut tx, &names).await?;
        let due: Vec<Message> = due
            .into_iter()
            .filter(|m| pace_locks(m).iter().all(|name| free.contains(name)))
            .collect();
        if due.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        // The phones' locks, all tried at once. A busy phone (a STOP being written, another
        // claim) keeps its messages for a later claim, which sees what that holder commits.
        let mut keys: Vec<PhoneKey> = due
            .iter()
            .map(|m| (m.tenant_id.clone(), m.phone.as_str().to_string()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let held = try_lock_phones(&mut tx, &keys).await?;
        let held: Vec<PhoneKey> = keys.into_iter().filter(|k| held.contains(k)).collect();
        // Read after the locks (a new statement sees the previous holders' commits), once
        // per phone: while this claim holds a phone, only its own hand-offs change what the
        // gate reads about it, and those are added below as they are decided.
        let rows = load_phones(&mut tx, &held, now_ms).await?;
        let mut tenants: HashMap<String, TenantContext> = HashMap::new();
        let mut snapshots: HashMap<PhoneKey, PhoneSnapshot> = HashMap::new();
        for (key, row) in &rows {
            let ctx = match tenants.get(&key.0) {
                Some(c) => c.clone(),
                None => {
                    let revision = row.try_get("revision")?;
                    let c = context_at(&mut tx, &self.contexts, &key.0, revision).await?;
                    tenants.insert(key.0.clone(), c.clone());
                    c
                }
            };
            snapshots.insert(key.clone(), snapshot_from(row, ctx)?);
        }
        let mut claim = decide::Claim::new(now);
        // Each sender's pace is kept under the tenant whose number it is.
        let mut sender_tenant: HashMap<String, String> = HashMap::new();
        for m in due {
            let key = (m.tenant_id.clone(), m.phone.as_str().to_string());
            let Some(snap) = snapshots.get_mut(&key) else {
                continue;
            };
            let handoff = plan(&m, snap);
            if handoff == Handoff::Send {
                let pacer = &mut claim.pacer;
                if !pacer.knows_sender(&m.from) {
                    let tat = sqlx::query(
                        "SELECT tat FROM sender_pacing WHERE tenant_id = $1 AND number = $2",
                    )
                    .bind(&m.tenant_id)
                    .bind(m.from.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get::<i64, _>("tat").map(time))
                    .transpose()?;
                    pacer.load_sender(&m.from, tat);
                    sender_tenant.insert(m.from.as_str().to_string(), m.tenant_id.clone());
                }
                if !pacer.knows_tenant(&m.tenant_id) {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COALESCE(SUM(n), 0)::BIGINT FROM tenant_handoffs WHERE tenant_id = $1 AND hour >= $2",
                    )
                    .bind(&m.tenant_id)
                    .bind(first_counted_bucket(now_ms))
                    .fetch_one(&mut *tx)
                    .await?;
                    pacer.load_tenant(&m.tenant_id, u32::try_from(n).unwrap_or(u32::MAX));
                }
            }
            claim.settle(m, snap, handoff);
        }
        let decide::Claim {
            pacer,
            sending,
            held,
            ..
        } = claim;
        let mut decided = Decided::default();
        for m in &sending {
            let key = (m.tenant_id.as_str(), m.id.as_str());
            decided.push(key, MessageStatus::Sending, None, ms(m.due_at));
        }
        for o in held {
            decided.push(
                (&o.tenant_id, &o.id),
                o.status,
                o.reason.map(|r| r.to_string()),
                ms(o.due_at),
            );
        }
        decided.write(&mut tx, now_ms).await?;
        for (tenant_id, n) in pacer.handed_off() {
            count_handoffs(&mut tx, tenant_id, n, now_ms).await?;
        }
        for (number, tat) in pacer.changed() {
            let Some(tenant_id) = sender_tenant.get(number.as_str()) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO sender_pacing (tenant_id, number, tat) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, number) DO UPDATE SET tat = excluded.tat",
            )
            .bind(tenant_id)
            .bind(number)
            .bind(ms(tat))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(sending)
    }

    async fn update_message(&self, tenant_id: &str, id: &str, u: &MessageUpdate) -> Result<()> {
        let mut c = self.pool.acquire().await?;
        if !update_one(&mut c, tenant_id, id, u).await? {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn update_messages(&self, updates: &[(String, String, MessageUpdate)]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut tx = plan_by_keys(&self.pool).await?;
        write_updates(&mut tx, updates).await?;
        Ok(tx.commit().await?)
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
        let mut tx = self.pool.begin().await?;
        let status = retry_later_in(
            &mut tx,
            tenant_id,
            id,
            reason,
            now,
            max_attempts,
            backoff,
            " FOR UPDATE",
        )
        .await?;
        tx.commit().await?;
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
        let mut tx = plan_by_keys(&self.pool).await?;
        let (go, refunds) = start_calls_in(&mut tx, &self.contexts, starts, now, plan).await?;
        give_back_handoffs(&mut tx, &refunds, now).await?;
        tx.commit().await?;
        Ok(go)
    }

    async fn record_and_start(
        &self,
        updates: &[(String, String, MessageUpdate)],
        starts: &[CallStart<'_>],
        now: DateTime<Utc>,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<bool>> {
        if updates.is_empty() && starts.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = plan_by_keys(&self.pool).await?;
        // The starts first: their phones' locks are taken before any row lock, as
        // everywhere else, and the outcomes' rows are no other writer's to wait for.
        let (go, refunds) = start_calls_in(&mut tx, &self.contexts, starts, now, plan).await?;
        write_updates(&mut tx, updates).await?;
        give_back_handoffs(&mut tx, &refunds, now).await?;
        tx.commit().await?;
        Ok(go)
    }

    async fn recover_orphaned_sends(
        &self,
        claimed_before: DateTime<Utc>,
        started_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64)> {
        // A live process whose claim this requeues cannot start it any more: `start_calls`
        // only starts a message still `sending` under its own claim's time.
        let mut tx = self.pool.begin().await?;
        let r = recover_orphaned_sends(&mut tx, claimed_before, started_before, now, " FOR UPDATE")
            .await?;
        tx.commit().await?;
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
        let (tenants, ids): (Vec<&str>, Vec<&str>) = keys.iter().copied().unzip();
        let mut tx = self.pool.begin().await?;
        let unstarted: Vec<decide::Unstarted> = sqlx::query_as(
            "SELECT m.tenant_id, m.id, m.handed_off_at, m.segments::BIGINT \
             FROM messages m JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS k(tenant_id, id) \
               ON m.tenant_id = k.tenant_id AND m.id = k.id \
             WHERE m.status = 'sending' AND m.call_started_at IS NULL AND m.handed_off_at = $3 \
             ORDER BY m.tenant_id, m.id FOR UPDATE OF m",
        )
        .bind(tenants)
        .bind(ids)
        .bind(ms(claimed_at))
        .fetch_all(&mut *tx)
        .await?;
        let n = put_back_unstarted(&mut tx, &unstarted, now).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// The phones of an audience page after `$2`, in index order, at most `$3` (`$4` the tags;
/// `$5`, when `until`, the last phone of the page).
fn audience_phones_sql(tagged: bool, until: bool) -> String {
    let bound = if until { " AND {col} <= $5" } else { "" };
    if tagged {
        format!(
            "SELECT DISTINCT cm.phone FROM contact_methods cm WHERE cm.tenant_id = $1 AND cm.phone > $2{} \
               AND EXISTS (SELECT 1 FROM customer_tags t WHERE t.tenant_id = $1 \
                 AND t.customer_id = cm.customer_id AND t.tag = ANY($4)) ORDER BY cm.phone LIMIT $3",
            bound.replace("{col}", "cm.phone")
        )
    } else {
        format!(
            "SELECT k.phone FROM consent k WHERE k.tenant_id = $1 AND k.phone > $2{} \
               AND (k.state::json ->> 'marketing') = 'opted_in' ORDER BY k.phone LIMIT $3",
            bound.replace("{col}", "k.phone")
        )
    }
}

impl PostgresStore {
    /// The members of the audience after `after`, at most `limit`, up to `until` when given,
    /// with their snapshots; `next` is left `None` for the caller to set.
    async fn audience_phones(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
        until: Option<&E164>,
        now: DateTime<Utc>,
    ) -> Result<AudiencePage> {
        // Phones in index order after the previous page's last; the name is the oldest
        // matching customer's (the id breaks ties).
        let phones = audience_phones_sql(!tags.is_empty(), until.is_some());
        let sql = format!(
            "WITH p(phone) AS ({phones}) SELECT p.phone, \
               (SELECT c.name FROM contact_methods cm JOIN customers c ON c.tenant_id = cm.tenant_id \
                  AND c.id = cm.customer_id WHERE cm.tenant_id = $1 AND cm.phone = p.phone \
                  AND (cardinality($4::text[]) = 0 OR EXISTS (SELECT 1 FROM customer_tags t \
                    WHERE t.tenant_id = $1 AND t.customer_id = c.id AND t.tag = ANY($4))) \
                  ORDER BY c.created_at, c.id LIMIT 1) AS name \
             FROM p ORDER BY p.phone"
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(after.map_or("", |p| p.as_str()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(tags);
        if let Some(until) = until {
            q = q.bind(until.as_str());
        }
        let rows: Vec<shared::AudienceRow> = q.fetch_all(&self.pool).await?;
        let members: Vec<AudienceMember> = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_>>()?;
        let phones: Vec<E164> = members.iter().map(|m| m.phone.clone()).collect();
        let snaps = self.snapshots(tenant_id, &phones, now).await?;
        Ok(AudiencePage {
            next: None,
            members: members.into_iter().zip(snaps).collect(),
        })
    }
}

/// A page's end is its last phone, found by the same index walk that reads it, without
/// the snapshots that make up most of a page's cost.
#[async_trait]
impl AudienceRanges for PostgresStore {
    async fn audience_page_end(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
    ) -> Result<Option<PageEnd>> {
        let sql = format!(
            "SELECT max(phone), count(*)::BIGINT FROM ({}) AS p(phone)",
            audience_phones_sql(!tags.is_empty(), false)
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant_id)
            .bind(after.map_or("", |p| p.as_str()))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        // The opted-in audience's phones do not name the tags.
        if !tags.is_empty() {
            q = q.bind(tags);
        }
        let (last, n): (Option<String>, i64) = q.fetch_one(&self.pool).await?;
        Ok(Some(match last {
            Some(last) if usize::try_from(n).unwrap_or(0) >= limit => {
                PageEnd::At(codec::phone(&last)?)
            }
            _ => PageEnd::Last,
        }))
    }

    async fn audience_range(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        end: &PageEnd,
        now: DateTime<Utc>,
    ) -> Result<AudiencePage> {
        let (until, next) = match end {
            PageEnd::At(last) => (Some(last), Some(last.clone())),
            PageEnd::Last => (None, None),
        };
        let page = self
            .audience_phones(tenant_id, tags, after, usize::MAX >> 1, until, now)
            .await?;
        Ok(AudiencePage { next, ..page })
    }
}

#[async_trait]
impl CampaignStore for PostgresStore {
    async fn audience_page(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<AudiencePage> {
        let page = self
            .audience_phones(tenant_id, tags, after, limit, None, now)
            .await?;
        let next = if page.members.len() == limit {
            page.members.last().map(|m| m.0.phone.clone())
        } else {
            None
        };
        Ok(AudiencePage { next, ..page })
    }

    fn audience_ranges(&self) -> Option<&dyn AudienceRanges> {
        Some(self)
    }

    async fn add_recipients(&self, tenant_id: &str, recipients: &[Recipient]) -> Result<u64> {
        let mut added = 0;
        for chunk in recipients.chunks(5000) {
            let mut tx = self.pool.begin().await?;
            added += campaigns::add_recipients(&mut tx, tenant_id, chunk).await?;
            tx.commit().await?;
        }
        Ok(added)
    }

    async fn audience_members(
        &self,
        tenant_id: &str,
        tags: &[String],
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<Vec<(AudienceMember, PhoneSnapshot)>> {
        let numbers: Vec<&str> = phones.iter().map(E164::as_str).collect();
        // The name as audience_page reads it.
        let names: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT p.phone, \
               (SELECT c.name FROM contact_methods cm JOIN customers c ON c.tenant_id = cm.tenant_id \
                  AND c.id = cm.customer_id WHERE cm.tenant_id = $1 AND cm.phone = p.phone \
                  AND (cardinality($3::text[]) = 0 OR EXISTS (SELECT 1 FROM customer_tags t \
                    WHERE t.tenant_id = $1 AND t.customer_id = c.id AND t.tag = ANY($3))) \
                  ORDER BY c.created_at, c.id LIMIT 1) AS name \
             FROM unnest($2::text[]) AS p(phone)",
        )
        .bind(tenant_id)
        .bind(&numbers)
        .bind(tags)
        .fetch_all(&self.pool)
        .await?;
        let mut names: HashMap<String, Option<String>> = names.into_iter().collect();
        let snaps = self.snapshots(tenant_id, phones, now).await?;
        Ok(phones
            .iter()
            .zip(snaps)
            .map(|(p, snap)| {
                (
                    AudienceMember {
                        phone: p.clone(),
                        name: names.remove(p.as_str()).flatten(),
                    },
                    snap,
                )
            })
            .collect())
    }

    async fn compose_recipients(&self, tenant_id: &str, recipients: &[Recipient]) -> Result<u64> {
        let mut composed = 0;
        for chunk in recipients.chunks(5000) {
            let mut tx = self.pool.begin().await?;
            composed += campaigns::compose_recipients(&mut tx, tenant_id, chunk).await?;
            tx.commit().await?;
        }
        Ok(composed)
    }

    async fn move_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        from: CampaignStatus,
        to: CampaignStatus,
        resumed_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        // Waits for a fan-out write holding the row (see campaigns::add_recipients).
        campaigns::move_campaign(&self.pool, tenant_id, campaign_id, from, to, resumed_at).await
    }

    async fn hold_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        // A row a claim holds is waited for and then looked at again: one it handed off is
        // no longer queued and stays as it is.
        campaigns::hold_campaign(&self.pool, tenant_id, campaign_id, paused, now).await
    }
    async fn withdraw_estimate_steps(
        &self,
        tenant_id: &str,
        estimate_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        // A row a claim holds is waited for; one it handed off is no longer queued.
        campaigns::withdraw_estimate_steps(&self.pool, tenant_id, estimate_id, now).await
    }
}

#[async_trait]
impl FormLimitStore for PostgresStore {
    async fn take_hits(
        &self,
        limits: &[(String, u32, chrono::Duration)],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        // Each key's lock, in one order, so two processes never count the same key at once
        // and never wait on each other in a cycle.
        let mut keys: Vec<&str> = limits.iter().map(|(k, _, _)| k.as_str()).collect();
        keys.sort_unstable();
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('form:' || $1, 0))")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let mut counts = Vec::with_capacity(limits.len());
        for (key, _, window) in limits {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM form_hits WHERE key = $1 AND at > $2")
                    .bind(key)
                    .bind(ms(decide::hits_since(*window, now)))
                    .fetch_one(&mut *tx)
                    .await?;
            counts.push(n);
        }
        let Some(keys) = decide::take_hits(limits, &counts) else {
            return Ok(false);
        };
        for key in keys {
            sqlx::query("INSERT INTO form_hits (key, at) VALUES ($1, $2)")
                .bind(key)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn forget_hits(&self, before: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM form_hits WHERE at <= $1")
            .bind(ms(before))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

/// Chains the entries written before the ledger had a hash chain (migration 0020), once,
/// in their `seq` order, in one transaction, under the migration lock the caller holds. The
/// append-only trigger is disabled for that transaction only (PostgreSQL's DDL is
/// transactional; nobody else sees the table meanwhile).
async fn chain_backfill(conn: &mut PgConnection) -> Result<()> {
    use assent_store::shared::chain::*;
    let tenants: Vec<String> = sqlx::query_scalar(BACKFILL_TENANTS_SQL)
        .fetch_all(&mut *conn)
        .await?;
    if tenants.is_empty() {
        return Ok(());
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("ALTER TABLE consent_ledger DISABLE TRIGGER consent_ledger_no_change")
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
            let (mut seqs, mut hashes, mut rowids) = (Vec::new(), Vec::new(), Vec::new());
            for r in &rows {
                let entry = r.entry().ok_or_else(|| {
                    StoreError::Database(format!("ledger entry {} does not decode", r.seq))
                })?;
                seq += 1;
                hash = decide::chain::hash(&hash, tenant_id, seq, &entry);
                seqs.push(seq);
                hashes.push(hash.clone());
                rowids.push(r.seq);
            }
            sqlx::query(
                "UPDATE consent_ledger l SET chain_seq = u.chain_seq, hash = u.hash \
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(chain_seq, hash, seq) \
                 WHERE l.tenant_id = $4 AND l.seq = u.seq",
            )
            .bind(&seqs)
            .bind(&hashes)
            .bind(&rowids)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
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
    sqlx::query("ALTER TABLE consent_ledger ENABLE TRIGGER consent_ledger_no_change")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(
        tenants = tenants.len(),
        "chained the ledger entries written before the hash chain"
    );
    Ok(())
}
