//! Plans SQLite makes for the shared look-ups of customers by phone, on a database as
//! `migrate` leaves it: no statistics, as on every new database and after a large import.
//! Without statistics SQLite once chose to walk all of a tenant's customers in created
//! order for each phone (to skip sorting), which took 47 s for the first conversations page
//! of a tenant with 1,000,000 customers.

use std::str::FromStr;

use assent_sqlite::SqliteStore;
use assent_store::prelude::*;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

/// The `detail` column of `EXPLAIN QUERY PLAN` for `sql` with `binds` text parameters.
async fn plan(sql: &str, binds: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/plans.db", dir.path().display());
    SqliteStore::open(&url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let mut c = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(explain));
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect()
}

fn reads_by_phone(plan: &[String]) {
    assert!(
        plan.iter()
            .any(|d| d.contains("contact_methods_phone (tenant_id=? AND phone=?)")),
        "contact methods not found by phone: {plan:#?}"
    );
    assert!(
        !plan.iter().any(|d| d.contains("customers_page")),
        "walks the tenant's customers: {plan:#?}"
    );
}

#[tokio::test]
async fn the_conversations_page_finds_each_name_by_the_phone() {
    let sql = assent_store::shared::lists::CONVERSATIONS_SQL.to_string()
        + " ORDER BY p.last_at DESC, p.last_seq DESC LIMIT 51";
    reads_by_phone(&plan(&sql, &["t"]).await);
}

#[tokio::test]
async fn phone_owners_start_from_the_phones() {
    let sql = format!(
        "{}$1 AND cm.phone IN ($2, $3) ORDER BY c.created_at, c.id",
        assent_store::shared::PHONE_OWNERS_SQL
    );
    reads_by_phone(&plan(&sql, &["t", "+15125550100", "+15125550101"]).await);
}

/// A proof asks whether the tenant has an entry outside the chain. That must come from an
/// index of such entries (normally empty), not a walk over the tenant's whole ledger.
#[tokio::test]
async fn the_unchained_entry_is_found_without_walking_the_ledger() {
    let plan = plan(assent_store::shared::chain::UNCHAINED_SQL, &["t"]).await;
    assert!(
        plan.iter().any(|d| d.contains("consent_ledger_unchained")),
        "walks the ledger: {plan:#?}"
    );
}

/// The lists of a tenant's messages read their keys from `message_list`, on SQLite a view
/// of `messages`: each must still be a range of one index in the list's order (no sort of
/// the tenant's messages), each message then found by its key.
#[tokio::test]
async fn message_lists_read_one_index_in_order() {
    let from = assent_store::shared::lists::MESSAGE_LIST_FROM;
    for (filter, index) in [
        ("", "messages_tenant_newest"),
        (" AND l.to_number = $2", "messages_to_number"),
        (" AND l.from_number = $2", "messages_from_number"),
    ] {
        let sql = format!(
            "{from}$1{filter} AND (l.created_at, l.seq) < ($3, $4) \
             ORDER BY l.created_at DESC, l.seq DESC LIMIT 51"
        );
        let plan = plan(&sql, &["t", "+15125550100", "1700000000000", "7"]).await;
        assert!(
            plan.iter().any(|d| d.contains(index)),
            "{index} not used: {plan:#?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("TEMP B-TREE")),
            "sorts: {plan:#?}"
        );
    }
}

/// A page of composed recipients is written by walking the page and finding each row by
/// its primary key, never by scanning the send log.
#[tokio::test]
async fn composed_recipients_are_found_by_their_key() {
    let plan = plan(assent_sqlite::COMPOSE_RECIPIENTS, &["t", "[]"]).await;
    assert!(
        plan.iter()
            .any(|d| d.contains("SEARCH campaign_recipients USING PRIMARY KEY (tenant_id=? AND campaign_id=? AND step=? AND phone=?)")),
        "{plan:#?}"
    );
    assert!(
        !plan.iter().any(|d| d.contains("SCAN campaign_recipients")),
        "{plan:#?}"
    );
}

/// A tagged audience page reads its consent in phone order by walking the primary key (a
/// sort of the range would hold it all first), and finds where it ends in the covering
/// index of phones without reading a record.
#[tokio::test]
async fn an_audience_page_reads_its_ranges_in_index_order() {
    let consent = plan(assent_sqlite::AUDIENCE_CONSENT, &["t", "", "+2"]).await;
    assert!(
        consent
            .iter()
            .any(|d| d.contains("consent") && d.contains("PRIMARY KEY")
                || d.contains("sqlite_autoindex_consent")),
        "consent not read by its key: {consent:#?}"
    );
    assert!(
        !consent.iter().any(|d| d.contains("TEMP B-TREE")),
        "consent sorted: {consent:#?}"
    );
    let end = plan(assent_sqlite::AUDIENCE_PAGE_END, &["t", "", "4999"]).await;
    assert!(
        end.iter()
            .any(|d| d.contains("COVERING INDEX contact_methods_phone")),
        "page end not found in the phone index: {end:#?}"
    );
    assert!(
        !end.iter().any(|d| d.contains("TEMP B-TREE")),
        "page end sorted: {end:#?}"
    );
}
