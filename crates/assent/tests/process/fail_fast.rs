//! A real `assent serve` that cannot start says why at once: a configuration it cannot use
//! is refused before the database is touched, and a database it cannot reach fails the
//! start within seconds, naming the cause.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `assent ARGS` with `envs`, waiting at most `bound` (a generous bound that only
/// keeps a hang from hanging the suite); `None` when it was still running then.
fn run(args: &[&str], envs: &[(&str, &str)], bound: Duration) -> Option<Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assent"));
    cmd.args(args)
        .env("ASSENT_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .env_remove("ASSENT_PROVIDER")
        .env_remove("ASSENT_TWILIO_ACCOUNT_SID")
        .env_remove("ASSENT_TWILIO_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn an_unreachable_postgres_fails_the_start_naming_the_cause() {
    // Nothing listens on port 1: the connection is refused.
    let o = run(
        &["serve"],
        &[("ASSENT_DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")],
        Duration::from_secs(30),
    )
    .expect("assent serve gave up on an unreachable database");
    assert!(!o.status.success(), "{o:?}");
    let err = stderr(&o);
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("pool timed out"), "{err}");

    // `migrate` and the other commands open the database the same way.
    let o = run(
        &["migrate"],
        &[("ASSENT_DATABASE_URL", "postgres://postgres@127.0.0.1:1/x")],
        Duration::from_secs(30),
    )
    .expect("assent migrate gave up");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
}

#[test]
fn twilio_without_credentials_is_refused_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("never.db");
    let url = format!("sqlite://{}", file.display());
    let o = run(
        &["serve"],
        &[
            ("ASSENT_DATABASE_URL", url.as_str()),
            ("ASSENT_PROVIDER", "twilio"),
            ("ASSENT_TWILIO_ACCOUNT_SID", "ACfailfast"),
        ],
        Duration::from_secs(30),
    )
    .expect("refused at once");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("ASSENT_TWILIO_AUTH_TOKEN"), "{err}");
    assert!(
        !file.exists(),
        "the database was created before the refusal"
    );

    // A provider that does not exist: the same, before the database.
    let o = run(
        &["serve"],
        &[
            ("ASSENT_DATABASE_URL", url.as_str()),
            ("ASSENT_PROVIDER", "carrier-pigeon"),
        ],
        Duration::from_secs(30),
    )
    .expect("refused at once");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ASSENT_PROVIDER"), "{}", stderr(&o));
    assert!(!file.exists());

    // So is a log format that does not exist.
    let o = run(
        &["serve"],
        &[
            ("ASSENT_DATABASE_URL", url.as_str()),
            ("ASSENT_LOG_FORMAT", "xml"),
        ],
        Duration::from_secs(30),
    )
    .expect("refused at once");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ASSENT_LOG_FORMAT"), "{}", stderr(&o));
    assert!(!file.exists());
}
