//! Plans PostgreSQL makes for the hand-off's statements, as generic plans (the plan a
//! prepared statement settles on after a few runs, whatever its parameters), on a database
//! as `migrate` leaves it.

use assent_store::prelude::*;
use sqlx::{Connection, Row};

/// The generic plan of `sql`, whose parameters are `types`, run with `args` (SQL literals).
async fn generic_plan(sql: &str, types: &str, args: &str) -> String {
    let server = assent_store::testing::postgres_url().unwrap();
    let name = format!("assent_plans_{}", std::process::id());
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
    assent_postgres::PostgresStore::open(&url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let script = format!("SET plan_cache_mode = force_generic_plan; PREPARE q({types}) AS {sql}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(&mut c)
        .await
        .unwrap();
    let explain = format!("EXPLAIN EXECUTE q({args})");
    let lines: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(explain))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    c.close().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    lines.join("\n")
}

#[tokio::test]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn postgres_starts_calls_by_primary_key_not_through_the_messages_in_flight() {
    if assent_store::testing::postgres_url_or_skip().is_none() {
        return;
    }
    let plan = generic_plan(
        assent_postgres::START_CALL_ROWS,
        "text[], bigint, text[]",
        "'{m1,m2}', 0, '{t1,t1}'",
    )
    .await;
    assert!(plan.contains("messages_pkey"), "{plan}");
    // With `status = 'sending'` in its WHERE, the statement walked this partial index of
    // every message of the tenant in flight for each message started.
    assert!(!plan.contains("messages_sending"), "{plan}");
}
