//! A real `assent serve` sent SIGTERM while it hands a queue to a local fake of Twilio
//! whose answers take their time: it stops claiming, lets the calls under way return and
//! records them, puts what it had claimed but not started back in the queue, and exits 0.
//! Afterwards every message is sent exactly once (counted at the fake) or still queued,
//! none left `sending`; a restart sends the rest, each once.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Server, call, free_port};
use sqlx::Connection;

const ADMIN: &str = "shutdown-admin";
const TX: &str = "+15125550100";
const MK: &str = "+15125550101";

async fn start(db: &str, port: u16, fake: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("serve")
        .env("ASSENT_DATABASE_URL", db)
        .env("ASSENT_BIND", format!("127.0.0.1:{port}"))
        .env("ASSENT_ADMIN_TOKEN", ADMIN)
        .env("ASSENT_PROVIDER", "twilio")
        .env("ASSENT_TWILIO_ACCOUNT_SID", "ACshutdown")
        .env("ASSENT_TWILIO_AUTH_TOKEN", "shutdown-token")
        .env("ASSENT_TWILIO_API_BASE", fake)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server::healthy(child, port, Duration::from_secs(30)).await
}

/// A tenant with both senders and texting approved and no pace to wait on; its API key.
async fn tenant(c: &reqwest::Client, base: &str) -> String {
    let api = |p: &str| format!("{base}/api/v1{p}");
    let t = call(
        c,
        "POST",
        api("/tenants"),
        ADMIN,
        json!({"name": "Shutdown HVAC"}),
    )
    .await;
    let key = t["api_key"].as_str().unwrap().to_string();
    let id = t["id"].as_str().unwrap().to_string();
    call(
        c,
        "PUT",
        api("/senders"),
        &key,
        json!({"transactional": TX, "marketing": MK}),
    )
    .await;
    call(
        c,
        "PUT",
        api("/registrations/texting"),
        &key,
        json!({"legal_name": "Shutdown LLC",
        "ein": "12-3456789", "address": "1 Main St", "website": "https://s.example",
        "contact_email": "a@s.example", "use_case": "jobs", "sample_messages": ["hi"]}),
    )
    .await;
    call(
        c,
        "POST",
        api(&format!("/tenants/{id}/registrations/texting/decision")),
        ADMIN,
        json!({"status": "approved"}),
    )
    .await;
    call(
        c,
        "PUT",
        api("/settings"),
        &key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;
    key
}

/// Every message's status, read from the SQLite file with the server stopped.
async fn statuses(db: &str) -> HashMap<String, (String, String, String)> {
    let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, to_number, body, status FROM messages WHERE direction = 'outbound'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, to, body, status)| (id, (to, body, status)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_dispatch_finishes_the_calls_under_way_and_exits_zero() {
    assent_provider::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/shutdown.db", dir.path().display());
    let (fake, received) = assent_server::fake_twilio::spawn().await.unwrap();
    let port = free_port();
    let mut server = start(&db, port, &fake).await;
    let c = reqwest::Client::new();
    let key = tenant(&c, &server.base).await;

    // Each answer takes 1.5 s: the calls under way at the signal are still waiting for it.
    received.set_latency(Duration::from_millis(1500));
    let total = 1500u32;
    let mut ids = Vec::new();
    for i in 0..total {
        let v = call(
            &c,
            "POST",
            format!("{}/api/v1/messages", server.base),
            &key,
            json!({"to": format!("+1737555{i:04}"), "purpose": "missed_call", "body": format!("job {i}.")}),
        )
        .await;
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.count() == 0 {
        assert!(Instant::now() < deadline, "nothing reached the carrier");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let at_exit = received.all();
    assert!(
        !at_exit.is_empty() && at_exit.len() < total as usize,
        "stopped mid-dispatch: {} of {total}",
        at_exit.len()
    );

    let reached =
        |to: &str, body: &str| at_exit.iter().filter(|(t, b)| t == to && b == body).count();
    let rows = statuses(&db).await;
    assert_eq!(rows.len(), total as usize);
    let (mut sent, mut queued) = (0, 0);
    for (id, (to, body, status)) in &rows {
        match status.as_str() {
            "sent" => {
                assert_eq!(
                    reached(to, body),
                    1,
                    "{id} sent but reached the carrier otherwise"
                );
                sent += 1;
            }
            "queued" => {
                assert_eq!(reached(to, body), 0, "{id} queued but reached the carrier");
                queued += 1;
            }
            other => panic!("{id} left {other} at shutdown"),
        }
    }
    assert_eq!(sent, at_exit.len(), "every call that went was recorded");
    assert!(queued > 0);
    eprintln!("at SIGTERM: {sent} sent, {queued} still queued");

    // A restart sends the rest, each once.
    received.set_latency(Duration::ZERO);
    server = start(&db, port, &fake).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.count() < u64::from(total) {
        assert!(
            Instant::now() < deadline,
            "the rest was not sent: {}",
            received.count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    let all = received.all();
    assert_eq!(all.len(), total as usize, "nothing went twice");
    let mut seen: Vec<&(String, String)> = all.iter().collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total as usize, "nothing went twice");
    let _ = ids;
}
