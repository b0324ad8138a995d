//! `assent ledger verify`: every tenant's chain checks out; after someone drops the
//! append-only guard and edits a row, it exits non-zero naming that entry.

use std::process::{Command, Output};

use serde_json::Value;

fn assent(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assent"))
        .args(args)
        .env("ASSENT_DATABASE_URL", db)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A tenant with a few ledger entries (imported opt-outs), on the file `db`.
fn tenant_with_entries(db: &str, dir: &std::path::Path, name: &str, first: u32) -> String {
    let o = assent(db, &["tenant", "create", "--name", name]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let slug = serde_json::from_slice::<Value>(&o.stdout).unwrap()["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let csv = dir.join(format!("{slug}.csv"));
    let rows: String = (first..first + 4)
        .map(|n| format!("512-555-{n:04},2025-01-0{},all,OldCRM\n", n % 9 + 1))
        .collect();
    std::fs::write(&csv, format!("phone,opted_out_at,scope,source\n{rows}")).unwrap();
    let o = assent(
        db,
        &[
            "import",
            "consent",
            csv.to_str().unwrap(),
            "--tenant",
            &slug,
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    slug
}

async fn edit(db: &str, sql: &str) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn ledger_verify_passes_then_names_the_first_edited_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/ledger.db", dir.path().display());
    let acme = tenant_with_entries(&db, dir.path(), "Acme Plumbing", 150);
    let bolt = tenant_with_entries(&db, dir.path(), "Bolt Electric", 160);

    let o = assent(&db, &["ledger", "verify"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for slug in [&acme, &bolt] {
        assert!(out.contains(&format!("ok {slug}: ")), "{out}");
    }
    let o = assent(&db, &["ledger", "verify", "--tenant", &acme]);
    assert!(o.status.success());
    assert!(!text(&o.stdout).contains(&bolt));

    // The guard refuses an edit; someone drops it and edits the second entry of Acme.
    let path = db.trim_start_matches("sqlite://");
    let row: i64 = {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&db).await.unwrap();
        let r = sqlx::query_scalar(
            "SELECT l.seq FROM consent_ledger l JOIN tenants t ON t.id = l.tenant_id \
             WHERE t.slug = ? ORDER BY l.chain_seq LIMIT 1 OFFSET 1",
        )
        .bind(&acme)
        .fetch_one(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        r
    };
    assert!(std::path::Path::new(path).exists());
    edit(
        &db,
        &format!(
            "DROP TRIGGER consent_ledger_no_update; \
             UPDATE consent_ledger SET occurred_at = occurred_at - 86400000 WHERE seq = {row}"
        ),
    )
    .await;
    let o = assent(&db, &["ledger", "verify"]);
    assert!(!o.status.success(), "a broken chain fails the command");
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "BROKEN {acme}: ledger entry seq {row} (chain position 2)"
        )),
        "{err}"
    );
    assert!(!err.contains(&format!("BROKEN {bolt}")), "{err}");
    assert!(
        text(&o.stdout).contains(&format!("ok {bolt}: ")),
        "the other tenant still verifies"
    );
    // One tenant asked for: the same answer; an unknown slug is a one-line error.
    let o = assent(&db, &["ledger", "verify", "--tenant", &acme]);
    assert!(!o.status.success());
    let o = assent(&db, &["ledger", "verify", "--tenant", "nobody"]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("nobody"));
}
