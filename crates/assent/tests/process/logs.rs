//! What a real `assent serve` writes: with `ASSENT_LOG_FORMAT=json` every stderr line is a
//! JSON object; a request line names the route template, never the phone; a STOP is an
//! info line with the phone masked; nothing carries colour codes into a file; the banner
//! says plainly that the simulator sends nothing. SIGTERM ends it with exit 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::free_port;

const ADMIN: &str = "logs-admin";
const TX: &str = "+15125550100";

/// Runs `assent serve` with `format`, drives a little traffic, stops it with SIGTERM and
/// returns (stdout, stderr).
async fn run(format: &str) -> (String, String) {
    assent_provider::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/logs.db", dir.path().display());
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("serve")
        .env("ASSENT_DATABASE_URL", &db)
        .env("ASSENT_BIND", format!("127.0.0.1:{port}"))
        .env("ASSENT_ADMIN_TOKEN", ADMIN)
        .env("ASSENT_LOG_FORMAT", format)
        .env("RUST_LOG", "info")
        .env_remove("ASSENT_PROVIDER")
        .env_remove("ASSENT_TWILIO_AUTH_TOKEN")
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "assent serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t: Value = c
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Log Plumbing"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = t["api_key"].as_str().unwrap();
    let r = c
        .put(format!("{base}/api/v1/senders"))
        .bearer_auth(key)
        .json(&json!({"transactional": TX}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = c
        .post(format!("{base}/api/v1/simulator/inbound"))
        .bearer_auth(key)
        .json(&json!({"from": "+15125550142", "to": TX, "body": "STOP"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = c
        .get(format!("{base}/api/v1/consent/+15125550142"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Two failed sign-ins: an email with no account, and a real account's wrong password.
    let made = Command::new(env!("CARGO_BIN_EXE_assent"))
        .args(["user", "create", "--tenant", t["slug"].as_str().unwrap()])
        .args(["--email", "owner@log.example"])
        .env("ASSENT_DATABASE_URL", &db)
        .env("ASSENT_PASSWORD", "correct horse battery")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for email in ["nobody@log.example", "owner@log.example"] {
        let r = c
            .post(format!("{base}/login"))
            .form(&[("email", email), ("password", "not the password")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED, "{email}");
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    (
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_routes_and_consent_changes_with_phones_masked() {
    let (stdout, stderr) = run("json").await;
    assert!(
        stdout.contains("simulator") && stdout.contains("no real text will leave"),
        "{stdout}"
    );
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let has = |f: &dyn Fn(&Value) -> bool| lines.iter().any(f);
    assert!(
        has(&|l| l["level"] == "WARN"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("NO real text will leave"))),
        "{stderr}"
    );
    assert!(
        has(&|l| l["message"] == "request"
            && l["route"] == "/api/v1/consent/{phone}"
            && l["method"] == "GET"
            && l["status"] == 200),
        "{stderr}"
    );
    assert!(
        has(&|l| l["message"] == "consent changed"
            && l["to"] == "opted_out"
            && l["phone"] == "+1********42"),
        "{stderr}"
    );
    assert!(!stderr.contains("5550142"), "an unmasked phone: {stderr}");
    // One line per failed sign-in, the email masked.
    let sign_ins: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"].as_str().is_some_and(|m| m.contains("sign-in")))
        .collect();
    assert_eq!(sign_ins.len(), 2, "{stderr}");
    assert_eq!(sign_ins[0]["message"], "sign-in failed: no such account");
    assert_eq!(sign_ins[0]["email"], "n***@log.example");
    assert_eq!(sign_ins[1]["message"], "sign-in failed: wrong password");
    assert_eq!(sign_ins[1]["email"], "o***@log.example");
    assert!(
        !stderr.contains("nobody@") && !stderr.contains("owner@"),
        "{stderr}"
    );
    // No Twilio warning on the simulator.
    assert!(!stderr.contains("ASSENT_TWILIO_AUTH_TOKEN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_into_a_file_carry_no_colour_codes() {
    let (_, stderr) = run("text").await;
    assert!(stderr.contains("consent changed"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a file: {stderr}"
    );
    assert!(!stderr.contains("5550142"), "an unmasked phone: {stderr}");
}
