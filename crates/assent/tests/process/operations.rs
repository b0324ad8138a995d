//! The operator's commands through the real binary, on SQLite and PostgreSQL: registration
//! decisions, the web app's accounts (list, unlock, set-password), `--database-url` on any
//! command, duplicate tenant names, and help that shows the defaults.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::Db;

/// The binary with `args`, the database given by `--database-url` (the environment names
/// another one, which must stay untouched), and `stdin` as its input.
fn run(db: &str, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let bogus = std::env::temp_dir().join(format!("assent-ops-never-{}.db", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assent"));
    cmd.args(args)
        .arg("--database-url")
        .arg(db)
        .env(
            "ASSENT_DATABASE_URL",
            format!("sqlite://{}", bogus.display()),
        )
        .env_remove("ASSENT_PASSWORD")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !bogus.exists(),
        "--database-url wins over ASSENT_DATABASE_URL"
    );
    out
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn one_line_error(o: &Output, mentions: &str) {
    assert!(!o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(mentions), "{err:?} should mention {mentions}");
}

async fn operator_commands(db: Db) {
    let url = db.url().to_string();
    let url = url.as_str();
    // A tenant, and a second of the same name only when asked for.
    let t: Value = serde_json::from_str(&ok(&run(
        url,
        &["tenant", "create", "--name", "Acme Plumbing"],
        &[],
        "",
    )))
    .unwrap();
    let slug = t["slug"].as_str().unwrap().to_string();
    one_line_error(
        &run(
            url,
            &["tenant", "create", "--name", "acme plumbing "],
            &[],
            "",
        ),
        "already exists",
    );
    let again: Value = serde_json::from_str(&ok(&run(
        url,
        &[
            "tenant",
            "create",
            "--name",
            "Acme Plumbing",
            "--allow-duplicate-name",
        ],
        &[],
        "",
    )))
    .unwrap();
    assert_eq!(again["slug"], "acme-plumbing-2");
    assert_eq!(
        db.column("SELECT time_zone FROM tenants ORDER BY slug")
            .await,
        ["America/New_York", "America/New_York"],
        "the default the help names"
    );

    // Registration decisions by slug.
    let o = ok(&run(
        url,
        &["registration", "approve", "--tenant", &slug, "texting"],
        &[],
        "",
    ));
    let v: Value = serde_json::from_str(&o).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str()),
        (Some("texting"), Some("approved"))
    );
    ok(&run(
        url,
        &[
            "registration",
            "reject",
            "--tenant",
            &slug,
            "marketing",
            "--reason",
            "The sample messages need the opt-out wording",
        ],
        &[],
        "",
    ));
    let t_id = t["id"].as_str().unwrap();
    assert_eq!(
        db.column(&format!(
            "SELECT kind || ':' || status || ':' || coalesce(reason, '') FROM registrations WHERE tenant_id = '{t_id}' ORDER BY kind"
        ))
        .await,
        [
            "marketing:rejected:The sample messages need the opt-out wording",
            "texting:approved:"
        ]
    );
    one_line_error(
        &run(
            url,
            &["registration", "approve", "--tenant", "nobody", "texting"],
            &[],
            "",
        ),
        "no tenant",
    );
    one_line_error(
        &run(
            url,
            &["registration", "approve", "--tenant", &slug, "carrier"],
            &[],
            "",
        ),
        "carrier",
    );

    // Accounts: create, list, a lock the operator ends, a new password.
    let pw = [("ASSENT_PASSWORD", "first password")];
    ok(&run(
        url,
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "Owner@Acme.example",
        ],
        &pw,
        "",
    ));
    let until = chrono::Utc::now().timestamp_millis() + 15 * 60 * 1000;
    db.execute(&format!(
        "UPDATE users SET failed_logins = 5, locked_until = {until}"
    ))
    .await;
    let list = ok(&run(url, &["user", "list", "--tenant", &slug], &[], ""));
    let rows: Vec<Value> = list
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["email"], "owner@acme.example");
    assert_eq!(rows[0]["failed_logins"], 5);
    assert!(rows[0]["locked_until"].is_string(), "{list}");

    ok(&run(
        url,
        &["user", "unlock", "--email", "OWNER@acme.example"],
        &[],
        "",
    ));
    let list = ok(&run(url, &["user", "list", "--tenant", &slug], &[], ""));
    let row: Value = serde_json::from_str(list.trim()).unwrap();
    assert_eq!(
        (row["failed_logins"].as_u64(), row["locked_until"].is_null()),
        (Some(0), true)
    );
    one_line_error(
        &run(
            url,
            &["user", "unlock", "--email", "nobody@acme.example"],
            &[],
            "",
        ),
        "not found",
    );

    // A new password: checked (length) before anything changes, then stored.
    let hash = || db.column("SELECT password_hash FROM users");
    let before = hash().await;
    one_line_error(
        &run(
            url,
            &["user", "set-password", "--email", "owner@acme.example"],
            &[("ASSENT_PASSWORD", "short")],
            "",
        ),
        "at least 8",
    );
    one_line_error(
        &run(
            url,
            &["user", "set-password", "--email", "owner@acme.example"],
            &[],
            "tiny\n",
        ),
        "at least 8",
    );
    assert_eq!(hash().await, before, "a refused password changes nothing");
    // An unknown email is refused before a password is asked for.
    let o = run(
        url,
        &["user", "set-password", "--email", "nobody@acme.example"],
        &[],
        "",
    );
    one_line_error(&o, "not found");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("Password"));
    let o = ok(&run(
        url,
        &["user", "set-password", "--email", "owner@acme.example"],
        &[],
        "a new long password\n",
    ));
    assert!(o.contains("password_set"), "{o}");
    assert_ne!(hash().await, before);

    // The CLI's import still exits non-zero when a row was rejected, keeping the good one.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("c.csv");
    std::fs::write(&csv, "name,phone\nAna,512-555-0150\nBo,not a phone\n").unwrap();
    let o = run(
        url,
        &[
            "import",
            "customers",
            csv.to_str().unwrap(),
            "--tenant",
            &slug,
        ],
        &[],
        "",
    );
    assert!(!o.status.success());
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (report["created"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    db.drop_it().await;
}

#[tokio::test]
async fn operator_commands_on_sqlite() {
    operator_commands(Db::sqlite("ops.db")).await;
}

#[tokio::test]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn operator_commands_on_postgres() {
    let Some(db) = Db::postgres("ops").await else {
        return;
    };
    operator_commands(db).await;
}

#[test]
fn help_names_every_default() {
    let help = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_assent"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let top = help(&["--help"]);
    for needle in [
        "--database-url",
        "sqlite://assent.db",
        "ASSENT_BIND (127.0.0.1:8080)",
        "ASSENT_PROVIDER (simulator",
        "registration",
    ] {
        assert!(top.contains(needle), "{needle}: {top}");
    }
    let create = help(&["tenant", "create", "--help"]);
    assert!(create.contains("[default: America/New_York]"), "{create}");
    assert!(create.contains("--allow-duplicate-name"), "{create}");
    assert!(
        create.contains("--database-url"),
        "every command takes it: {create}"
    );
    let user = help(&["user", "--help"]);
    for sub in ["unlock", "set-password", "list"] {
        assert!(user.contains(sub), "{user}");
    }
}
