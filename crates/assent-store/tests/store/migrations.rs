//! Databases made before `sqlx::migrate!` kept their own record of applied migrations
//! (`schema_migrations(version, applied_at)`, no `_sqlx_migrations`). Each backend must open
//! such a database, record those migrations as applied without running them again, apply
//! only what is newer, and keep the data.

use std::path::PathBuf;
use std::sync::Arc;

use assent_store::prelude::*;

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
