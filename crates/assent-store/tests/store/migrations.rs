//! Databases made before `sqlx::migrate!` kept their own record of applied migrations
//! (`schema_migrations(version, applied_at)`, no `_sqlx_migrations`). Each backend must open
//! such a database, record those migrations as applied without running them again, apply
//! only what is newer, and keep the data.

use std::path::PathBuf;
use std::sync::Arc;

use assent_store::prelude::*;
use assent_store::{Handoff, Message, MessageStatus, MessageUpdate, PhoneSnapshot};

/// A backend's migration files, in version order: (version, SQL).
fn files(backend: &str) -> Vec<(i64, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../{backend}/migrations"));
    let mut out: Vec<(i64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let version = name.split('_').next().unwrap().parse().unwrap();
            (version, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort_by_key(|f| f.0);
    out
}

/// What the former runner left: every migration but the newest applied, each recorded in
/// `schema_migrations`, and a tenant written under that schema.
const OLD_RECORD: &str =
    "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
const OLD_TENANT: &str = "INSERT INTO tenants (id, slug, name, time_zone, api_key_hash, settings, created_at) \
     VALUES ('t1', 'acme', 'Acme', 'America/Chicago', 'hash', '{}', 1700000000000)";

/// Checks a store opened on such a database: the tenant is there, every migration is in
/// sqlx's record once, the old ones marked as carried over (not run), the newest run.
async fn check(store: Arc<dyn Store>, newest: i64, count: usize, sqlx_rows: Vec<(i64, i64)>) {
    let t = store.tenant_by_slug("acme").await.unwrap().unwrap();
    assert_eq!((t.id.as_str(), t.name.as_str()), ("t1", "Acme"));
    assert_eq!(sqlx_rows.len(), count, "{sqlx_rows:?}");
    for (version, execution_time) in sqlx_rows {
        // sqlx records a skipped (carried-over) migration with execution_time -1.
        assert_eq!(
            execution_time == -1,
            version != newest,
            "version {version}: carried over unless it is the newest"
        );
    }
}

#[tokio::test]
async fn sqlite_opens_a_database_the_former_runner_made() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    let files = files("assent-sqlite");
    let (newest, _) = files.last().unwrap().clone();
    {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(OLD_RECORD).execute(&mut c).await.unwrap();
        for (version, sql) in &files[..files.len() - 1] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
                .bind(version)
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::raw_sql(OLD_TENANT).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }
    let store = assent_sqlite::SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Once carried over, opening again changes nothing.
    store.migrate().await.unwrap();
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT version, execution_time FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut c)
            .await
            .unwrap();
    check(Arc::new(store), newest, files.len(), rows).await;
}

#[tokio::test]
async fn postgres_opens_a_database_the_former_runner_made() {
    use sqlx::Connection;
    let Some(server) = std::env::var("ASSENT_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("assent_carry_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let url = assent_store::testing::database_url(&server, &name);
    let files = files("assent-postgres");
    let (newest, _) = files.last().unwrap().clone();
    {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(OLD_RECORD).execute(&mut c).await.unwrap();
        for (version, sql) in &files[..files.len() - 1] {
            let mut tx = c.begin().await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        sqlx::raw_sql(OLD_TENANT).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }
    let store = assent_postgres::PostgresStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT version, execution_time FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut c)
            .await
            .unwrap();
    c.close().await.unwrap();
    check(Arc::new(store), newest, files.len(), rows).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// The keys that lead with tenant_id (SQLite 0026, PostgreSQL 0025): a database with
// messages, a status callback, an event endpoint and a sender's pace, made just before,
// opens with everything kept and its triggers still firing.

/// The first migration of the tenant keys, per backend.
const SQLITE_KEYS: i64 = 26;
const POSTGRES_KEYS: i64 = 25;

/// Written under the schema before the keys changed. The messages' ids are not in their
/// insertion order (`m-c` first), so the order kept is the insertion's, not the ids'.
const BEFORE_KEYS: &str = "\
INSERT INTO senders (tenant_id, number, transactional, marketing) VALUES ('t1', '+15125550100', TRUE, FALSE);
INSERT INTO sender_pacing (number, tat) VALUES ('+15125550100', 1700000000500), ('+15125550199', 1);
INSERT INTO messages (id, tenant_id, direction, channel, from_number, to_number, phone, body, kind, purpose, \
  status, reason, provider_id, segments, priority, due_at, expires_at, idempotency_key, handed_off_at, \
  created_at, updated_at, attempts, call_started_at) VALUES \
 ('m-c', 't1', 'outbound', 'transactional', '+15125550100', '+15125550142', '+15125550142', 'first', 'api', \
  'job_notification', 'sent', NULL, 'SMold', 1, 1, 1700000000000, NULL, 'key-1', 1700000000000, \
  1700000000000, 1700000000000, 1, 1700000000001), \
 ('m-a', 't1', 'outbound', 'transactional', '+15125550100', '+15125550142', '+15125550142', 'second', 'api', \
  'job_notification', 'queued', NULL, NULL, 1, 1, 1700000000000, NULL, NULL, NULL, \
  1700000000000, 1700000000000, 0, NULL), \
 ('m-b', 't1', 'outbound', 'transactional', '+15125550100', '+15125550142', '+15125550142', 'third', 'api', \
  'job_notification', 'queued', NULL, NULL, 1, 1, 1700000000000, NULL, NULL, NULL, \
  1700000000000, 1700000000000, 0, NULL);
INSERT INTO status_callbacks (tenant_id, message_id, url) VALUES ('t1', 'm-c', 'https://caller.example/status');
INSERT INTO webhook_endpoints (id, tenant_id, url, secret, on_consent_changed, on_message_status, \
  on_review_opened, created_at) VALUES ('we1', 't1', 'https://caller.example/events', 'secret', FALSE, TRUE, FALSE, 1700000000000);
";

/// What the migration must keep, read from the database itself.
#[derive(Debug, PartialEq)]
struct Shape {
    /// Indexes and triggers on `messages`, by name.
    objects: Vec<String>,
    /// `messages_provider_id`'s definition.
    provider_index: String,
    /// `(tenant_id, number, tat)` of every sender's pace.
    pacing: Vec<String>,
    /// The kinds of the outbox's rows, in order.
    outbox: Vec<String>,
}

async fn sqlite_shape(c: &mut sqlx::SqliteConnection) -> Shape {
    let strings = async |c: &mut sqlx::SqliteConnection, sql: &'static str| -> Vec<String> {
        sqlx::query_scalar(sql).fetch_all(&mut *c).await.unwrap()
    };
    let pacing_sql =
        if sqlx::query("SELECT 1 FROM pragma_table_info('sender_pacing') WHERE name = 'tenant_id'")
            .fetch_optional(&mut *c)
            .await
            .unwrap()
            .is_some()
        {
            "SELECT tenant_id || ' ' || number || ' ' || tat FROM sender_pacing ORDER BY 1"
        } else {
            "SELECT number || ' ' || tat FROM sender_pacing ORDER BY 1"
        };
    Shape {
        objects: strings(
            c,
            "SELECT name FROM sqlite_master WHERE tbl_name = 'messages' AND type IN ('index', 'trigger') ORDER BY name",
        )
        .await,
        provider_index: strings(
            c,
            "SELECT group_concat(name, ', ') FROM pragma_index_info('messages_provider_id')",
        )
        .await
        .concat(),
        pacing: strings(c, pacing_sql).await,
        outbox: strings(c, "SELECT kind FROM outbox ORDER BY id").await,
    }
}

async fn postgres_shape(c: &mut sqlx::PgConnection) -> Shape {
    let strings = async |c: &mut sqlx::PgConnection, sql: &'static str| -> Vec<String> {
        sqlx::query_scalar(sql).fetch_all(&mut *c).await.unwrap()
    };
    let pacing_sql = if sqlx::query(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'sender_pacing' AND column_name = 'tenant_id'",
    )
    .fetch_optional(&mut *c)
    .await
    .unwrap()
    .is_some()
    {
        "SELECT tenant_id || ' ' || number || ' ' || tat FROM sender_pacing ORDER BY 1"
    } else {
        "SELECT number || ' ' || tat FROM sender_pacing ORDER BY 1"
    };
    Shape {
        objects: strings(
            c,
            "SELECT name::text FROM (SELECT indexname AS name FROM pg_indexes WHERE tablename = 'messages' \
             UNION ALL SELECT tgname FROM pg_trigger WHERE tgrelid = 'messages'::regclass AND NOT tgisinternal) o \
             ORDER BY 1",
        )
        .await,
        provider_index: strings(
            c,
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'messages_provider_id'",
        )
        .await
        .concat(),
        pacing: strings(c, pacing_sql).await,
        outbox: strings(c, "SELECT kind FROM outbox ORDER BY id").await,
    }
}

/// The store's view after the migration: every message as it was, in its order, found by
/// its tenant's keys; a status change still writes the callback and the event; a claim
/// takes the queued ones and keeps the sender's pace under its tenant.
async fn check_rekeyed(store: &dyn Store) {
    let phone = assent_core::phone::E164::parse("+15125550142").unwrap();
    let thread = assent_store::testing::phone_messages(store, "t1", &phone)
        .await
        .unwrap();
    let ids: Vec<&str> = thread.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m-c", "m-a", "m-b"], "insertion order kept");
    // The tenant's list and the Twilio list read `message_list` (PostgreSQL 0034 copies
    // the messages already written into it): newest first, ties by insertion.
    let tenant_wide = store
        .messages_page(
            "t1",
            &assent_store::page::MessageFilter::default(),
            &assent_store::page::Seek::first(10),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = tenant_wide.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        ["m-b", "m-a", "m-c"],
        "the tenant's list, newest first"
    );
    for filter in [
        assent_store::TwilioMessageFilter {
            to: Some(phone.clone()),
            limit: 10,
            ..Default::default()
        },
        assent_store::TwilioMessageFilter {
            from: Some(assent_core::phone::E164::parse("+15125550100").unwrap()),
            limit: 10,
            ..Default::default()
        },
    ] {
        let (listed, next) = store.twilio_messages("t1", &filter).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
        assert_eq!((ids, next), (vec!["m-b", "m-a", "m-c"], None), "{filter:?}");
    }
    let first = store.message("t1", "m-c").await.unwrap().unwrap();
    assert_eq!(
        (
            first.status,
            first.provider_id.as_deref(),
            first.idempotency_key.as_deref(),
            first.body.as_str(),
            first.from.as_str()
        ),
        (
            MessageStatus::Sent,
            Some("SMold"),
            Some("key-1"),
            "first",
            "+15125550100"
        )
    );
    assert_eq!(
        store
            .message_by_provider_id("t1", "SMold")
            .await
            .unwrap()
            .map(|m| m.id),
        Some("m-c".to_string())
    );
    assert_eq!(
        store
            .message_by_idempotency_key("t1", "key-1")
            .await
            .unwrap()
            .map(|m| m.id),
        Some("m-c".to_string())
    );
    let at = chrono::DateTime::from_timestamp_millis(1_700_000_100_000).unwrap();
    store
        .update_message(
            "t1",
            "m-c",
            &MessageUpdate {
                status: Some(MessageStatus::Delivered),
                at: Some(at),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut send_all = |_: &Message, _: &PhoneSnapshot| Handoff::Send;
    let mut claimed: Vec<String> = store
        .claim_due(at, 10, &mut send_all)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    claimed.sort();
    assert_eq!(claimed, ["m-a", "m-b"]);
}

/// A message written as a process of the previous version writes it (a plain insert into
/// `messages`, as during a rolling restart), then found in the tenant's list: the lists'
/// keys are kept by the database (PostgreSQL: a trigger; SQLite: a view), not only by this
/// version's insert.
const OLD_PROCESS_INSERT: &str = "\
INSERT INTO messages (id, tenant_id, direction, channel, from_number, to_number, phone, body, kind, purpose, \
  status, reason, provider_id, segments, priority, due_at, expires_at, idempotency_key, handed_off_at, \
  created_at, updated_at, attempts, call_started_at) VALUES \
 ('m-old', 't1', 'outbound', 'transactional', '+15125550100', '+15125550177', '+15125550177', 'late', 'api', \
  'job_notification', 'sent', NULL, NULL, 1, 1, 1700000200000, NULL, NULL, NULL, \
  1700000200000, 1700000200000, 0, NULL)";

async fn check_listed_after_old_insert(store: &dyn Store) {
    let newest = store
        .messages_page(
            "t1",
            &assent_store::page::MessageFilter::default(),
            &assent_store::page::Seek::first(1),
        )
        .await
        .unwrap();
    let ids: Vec<&str> = newest.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m-old"]);
    let phone = assent_core::phone::E164::parse("+15125550177").unwrap();
    let thread = assent_store::testing::phone_messages(store, "t1", &phone)
        .await
        .unwrap();
    assert_eq!(thread.len(), 1);
}

/// Before and after: every index and trigger kept (less the global `messages_id` on
/// PostgreSQL; later migrations may add their own), the provider index led by tenant_id, the live sender's pace kept under its
/// tenant (moved on by the claim) and the other dropped, and the outbox rows of the
/// status changes.
fn compare(before: &Shape, after: &Shape, dropped: &[&str], provider_index: &str) {
    let kept: Vec<&String> = before
        .objects
        .iter()
        .filter(|o| !dropped.contains(&o.as_str()))
        .collect();
    let missing: Vec<&&String> = kept
        .iter()
        .filter(|o| !after.objects.contains(**o))
        .collect();
    assert!(
        missing.is_empty(),
        "lost {missing:?}; now {:?}",
        after.objects
    );
    assert!(
        after.provider_index.contains(provider_index),
        "{}",
        after.provider_index
    );
    assert_eq!(
        before.pacing,
        ["+15125550100 1700000000500", "+15125550199 1"]
    );
    assert_eq!(after.pacing.len(), 1, "{:?}", after.pacing);
    assert!(
        after.pacing[0].starts_with("t1 +15125550100 "),
        "{:?}",
        after.pacing
    );
    assert_ne!(after.pacing[0], "t1 +15125550100 1700000000500");
    assert!(before.outbox.is_empty());
    let mut outbox = after.outbox.clone();
    outbox.sort();
    // m-c's delivery: its status callback and a message.status event; the claim's two
    // messages moving to `sending`: an event each.
    assert_eq!(outbox, ["event", "event", "event", "status_callback"]);
}

#[tokio::test]
async fn sqlite_keeps_messages_indexes_and_triggers_across_the_tenant_keys() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keys.db?mode=rwc", dir.path().display());
    let before = {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(OLD_RECORD).execute(&mut c).await.unwrap();
        for (version, sql) in files("assent-sqlite")
            .into_iter()
            .filter(|f| f.0 < SQLITE_KEYS)
        {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
                .bind(version)
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::raw_sql(OLD_TENANT).execute(&mut c).await.unwrap();
        sqlx::raw_sql(BEFORE_KEYS).execute(&mut c).await.unwrap();
        let shape = sqlite_shape(&mut c).await;
        c.close().await.unwrap();
        shape
    };
    let store = assent_sqlite::SqliteStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    check_rekeyed(&store).await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let after = sqlite_shape(&mut c).await;
    sqlx::raw_sql(OLD_PROCESS_INSERT)
        .execute(&mut c)
        .await
        .unwrap();
    check_listed_after_old_insert(&store).await;
    compare(&before, &after, &[], "tenant_id, provider_id");
    let key: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_table_info('messages') WHERE pk > 0 ORDER BY pk",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(key, ["tenant_id", "id"]);
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(problems, ["ok"]);
}

#[tokio::test]
async fn postgres_keeps_messages_indexes_and_triggers_across_the_tenant_keys() {
    use sqlx::Connection;
    let Some(server) = assent_store::testing::postgres_url_or_skip() else {
        return;
    };
    let name = format!("assent_keys_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let url = assent_store::testing::database_url(&server, &name);
    let before = {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(OLD_RECORD).execute(&mut c).await.unwrap();
        for (version, sql) in files("assent-postgres")
            .into_iter()
            .filter(|f| f.0 < POSTGRES_KEYS)
        {
            let mut tx = c.begin().await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        sqlx::raw_sql(OLD_TENANT).execute(&mut c).await.unwrap();
        sqlx::raw_sql(BEFORE_KEYS).execute(&mut c).await.unwrap();
        let shape = postgres_shape(&mut c).await;
        c.close().await.unwrap();
        shape
    };
    let store = assent_postgres::PostgresStore::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    check_rekeyed(&store).await;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let after = postgres_shape(&mut c).await;
    sqlx::raw_sql(OLD_PROCESS_INSERT)
        .execute(&mut c)
        .await
        .unwrap();
    check_listed_after_old_insert(&store).await;
    // The two row triggers of status changes became one statement trigger (0031); the
    // lists' indexes moved to `message_list` (0034).
    compare(
        &before,
        &after,
        &[
            "messages_id",
            "messages_status_callback",
            "messages_status_event",
            "messages_tenant_newest",
            "messages_phone",
        ],
        "(tenant_id, provider_id)",
    );
    assert!(
        after.objects.iter().any(|o| o == "messages_status_outbox"),
        "{:?}",
        after.objects
    );
    let pacing_key: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'sender_pacing_pkey'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(pacing_key.contains("(tenant_id, number)"), "{pacing_key}");
    c.close().await.unwrap();
    drop(store);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}
