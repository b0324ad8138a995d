//! The command line as the contract describes it: `tenant create` prints its JSON,
//! `migrate` and `import customers` work on the configured database, and bad input is one
//! line on stderr with a non-zero status.

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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn one_line_error(o: &Output, mentions: &str) {
    assert!(!o.status.success(), "{o:?}");
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(mentions), "{err:?} should mention {mentions}");
}

#[test]
fn tenant_create_migrate_and_import_work_and_bad_input_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/cli.db", dir.path().display());

    let o = assent(&db, &["migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = assent(
        &db,
        &[
            "tenant",
            "create",
            "--name",
            "Acme Plumbing",
            "--time-zone",
            "America/Chicago",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "",
        "a successful command says nothing on stderr"
    );
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    let slug = t["slug"].as_str().unwrap().to_string();
    assert!(t["id"].is_string() && t["api_key"].is_string(), "{t}");

    one_line_error(
        &assent(
            &db,
            &[
                "tenant",
                "create",
                "--name",
                "Mars Air",
                "--time-zone",
                "Mars/Base",
            ],
        ),
        "time",
    );
    one_line_error(&assent(&db, &["tenant", "create"]), "--name");
    one_line_error(&assent(&db, &["frobnicate"]), "frobnicate");

    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        "name,phone,marketing_updates\nAna,512-555-0150,yes\n,512-555-0151,\nBo,not a phone,\n",
    )
    .unwrap();
    let o = assent(
        &db,
        &[
            "import",
            "customers",
            csv.to_str().unwrap(),
            "--tenant",
            &slug,
        ],
    );
    // The good row is kept, the bad ones reported, and the exit says some were rejected.
    assert!(!o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    let err = stderr(&o);
    assert!(err.contains("line 3: name is required"), "{err}");
    assert!(err.contains("line 4: phone"), "{err}");
    let estimates = dir.path().join("estimates.csv");
    std::fs::write(
        &estimates,
        "number,phone,amount\nE-1,512-555-0150,\"$1,250.00\"\nE-2,512-555-0150,lots\n",
    )
    .unwrap();
    let args = [
        "import",
        "estimates",
        estimates.to_str().unwrap(),
        "--tenant",
        &slug,
    ];
    let o = assent(&db, &args);
    assert!(!o.status.success(), "a rejected line fails the command");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(stderr(&o).contains("line 3: amount"), "{}", stderr(&o));
    let report: Value = serde_json::from_slice(&assent(&db, &args).stdout).unwrap();
    assert_eq!(report["unchanged"], 1, "the same file twice: {report}");
    // Earlier opt-outs: the good row is kept, the bad one named, and the exit says so.
    let optouts = dir.path().join("optouts.csv");
    std::fs::write(
        &optouts,
        "phone,opted_out_at,scope,source\n512-555-0150,2025-01-02,all,OldCRM\n512-555-0151,someday,all,\n",
    )
    .unwrap();
    let o = assent(
        &db,
        &[
            "import",
            "consent",
            optouts.to_str().unwrap(),
            "--tenant",
            &slug,
        ],
    );
    assert!(!o.status.success(), "a rejected line fails the command");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (report["applied"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(
        stderr(&o).contains("line 3: opted_out_at"),
        "{}",
        stderr(&o)
    );
    one_line_error(
        &assent(
            &db,
            &[
                "import",
                "customers",
                csv.to_str().unwrap(),
                "--tenant",
                "nobody",
            ],
        ),
        "nobody",
    );
    one_line_error(
        &assent(
            &db,
            &[
                "import",
                "customers",
                "/no/such/file.csv",
                "--tenant",
                &slug,
            ],
        ),
        "/no/such/file.csv",
    );
}

/// An import of many customers leaves PostgreSQL's planner statistics current, so a
/// campaign sent right after it is planned on them (autovacuum comes a minute or more
/// later; until then the audience query of a 1,000,000-customer tenant walked everything
/// per page).
#[tokio::test]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn a_large_import_refreshes_the_statistics_on_postgres() {
    let Some(db) = crate::support::Db::postgres("stats").await else {
        return;
    };
    let o = assent(db.url(), &["migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = assent(
        db.url(),
        &[
            "tenant",
            "create",
            "--name",
            "Stats Air",
            "--time-zone",
            "America/Chicago",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let slug = serde_json::from_slice::<Value>(&o.stdout).unwrap()["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let analyzed = || async {
        db.column(
            "SELECT COALESCE(last_analyze::text, 'never') FROM pg_stat_user_tables \
             WHERE relname IN ('customers', 'contact_methods', 'customer_tags') ORDER BY relname",
        )
        .await
    };
    assert_eq!(analyzed().await, ["never", "never", "never"]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    let import = || {
        let o = assent(
            db.url(),
            &[
                "import",
                "customers",
                csv.to_str().unwrap(),
                "--tenant",
                &slug,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let mut rows = String::from("name,phone,tags\n");
    for i in 0..assent_server::import::STATISTICS_AFTER {
        rows.push_str(&format!("Customer {i},+1737300{i:04},all\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    import();
    assert!(
        analyzed().await.iter().all(|a| a != "never"),
        "{:?}",
        analyzed().await
    );
    // A long import refreshes them on its way too: once it has created STATISTICS_FIRST
    // customers (here after its first batch), and again before it reports.
    let analyses = || async {
        db.column("SELECT analyze_count::text FROM pg_stat_user_tables WHERE relname = 'customers'")
            .await
    };
    let before: i64 = analyses().await[0].parse().unwrap();
    let first = assent_server::import::STATISTICS_FIRST;
    let mut rows = String::from("name,phone,tags\n");
    for i in 0..first + 10 {
        rows.push_str(&format!("Customer {i},+1737400{i:04},all\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    import();
    let after: i64 = analyses().await[0].parse().unwrap();
    assert_eq!(after - before, 2, "one ANALYZE on the way, one at the end");
    db.drop_it().await;
}
