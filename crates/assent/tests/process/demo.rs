//! `serve --demo` as a person runs it, next to a real database: the demo uses its own
//! file, never the database `ASSENT_DATABASE_URL` names, and refuses to seed a database
//! that already holds tenants, even when it is named explicitly.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sqlx::Connection;

fn assent(cwd: &Path, db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assent"))
        .args(args)
        .current_dir(cwd)
        .env("ASSENT_DATABASE_URL", db)
        .env("ASSENT_BIND", "127.0.0.1:0")
        .env_remove("ASSENT_ADMIN_TOKEN")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Starts `assent serve --demo ARGS` in `cwd`; returns its first stdout line once the demo
/// is up (and stops it), or its stderr when it refused to start.
fn demo(cwd: &Path, db: &str, args: &[&str]) -> Result<String, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .args(["serve", "--demo"])
        .args(args)
        .current_dir(cwd)
        .env("ASSENT_DATABASE_URL", db)
        .env("ASSENT_BIND", "127.0.0.1:0")
        .env_remove("ASSENT_ADMIN_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // The first line comes once the demo is seeded and listening, or never (EOF) when it
    // refused; the bound only keeps a hung start from hanging the suite.
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_default();
    if line.contains("Assent demo is running") {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(line);
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a demo that did not start must fail");
    Err(String::from_utf8_lossy(&out.stderr).to_string())
}

fn sqlite_slugs(url: &str) -> Vec<String> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(assent_sqlite::tenant_slugs(url))
        .unwrap()
}

#[test]
fn the_demo_never_touches_the_configured_database() {
    let dir = tempfile::tempdir().unwrap();
    let real = format!("sqlite://{}/real.db", dir.path().display());
    let o = assent(
        dir.path(),
        &real,
        &["tenant", "create", "--name", "Acme Plumbing"],
    );
    assert!(o.status.success(), "{o:?}");
    assert_eq!(sqlite_slugs(&real), ["acme-plumbing"]);

    // The environment names the real database: the demo ignores it.
    let line = demo(dir.path(), &real, &[]).expect("the demo starts on its own file");
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    assert_eq!(
        sqlite_slugs(&real),
        ["acme-plumbing"],
        "real database untouched"
    );
    let own = format!("sqlite://{}/assent-demo.db", dir.path().display());
    assert_eq!(sqlite_slugs(&own), ["demo-plumbing-air"]);

    // Again: the demo's own file starts fresh.
    demo(dir.path(), &real, &[]).expect("a second demo start");
    assert_eq!(sqlite_slugs(&own), ["demo-plumbing-air"]);

    // Named explicitly, a database holding tenants is refused, and left as it was.
    let err = demo(dir.path(), "", &["--database-url", &real]).unwrap_err();
    assert!(err.contains("already holds 1 tenant"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(sqlite_slugs(&real), ["acme-plumbing"]);

    // Named explicitly and empty: the demo seeds it.
    let empty = format!("sqlite://{}/empty.db", dir.path().display());
    demo(dir.path(), &real, &["--database-url", &empty]).expect("an empty database");
    assert_eq!(sqlite_slugs(&empty), ["demo-plumbing-air"]);

    // A demo file holding someone's real tenants is not replaced.
    let o = assent(dir.path(), &own, &["tenant", "create", "--name", "Real Co"]);
    assert!(o.status.success(), "{o:?}");
    let err = demo(dir.path(), &real, &[]).unwrap_err();
    assert!(err.contains("tenants other than the demo's"), "{err}");
    let mut slugs = sqlite_slugs(&own);
    slugs.sort();
    assert_eq!(slugs, ["demo-plumbing-air", "real-co"]);
}

#[test]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
fn the_demo_never_seeds_a_postgres_database_with_tenants() {
    let Some(server) = assent_store::testing::postgres_url_or_skip() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let name = format!("assent_demo_{}", std::process::id());
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
    let url = format!("{base}/{name}");
    let admin = |sql: String| {
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&server).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .unwrap();
        })
    };
    admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin(format!("CREATE DATABASE {name}"));
    let tenants = || -> Vec<String> {
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar("SELECT slug FROM tenants ORDER BY slug")
                .fetch_all(&mut c)
                .await
                .unwrap()
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let o = assent(
        dir.path(),
        &url,
        &["tenant", "create", "--name", "Acme Plumbing"],
    );
    assert!(o.status.success(), "{o:?}");

    demo(dir.path(), &url, &[]).expect("the demo starts on its own file");
    assert_eq!(tenants(), ["acme-plumbing"], "no demo tenant in PostgreSQL");

    let err = demo(dir.path(), "", &["--database-url", &url]).unwrap_err();
    assert!(err.contains("already holds 1 tenant"), "{err}");
    assert_eq!(tenants(), ["acme-plumbing"]);
    admin(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
