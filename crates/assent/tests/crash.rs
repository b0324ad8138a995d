//! A real `assent serve` killed with SIGKILL while it drains a queue to a local fake of
//! Twilio: after a restart every accepted message was sent exactly once or is `unknown`;
//! none lost, none doubled (counted at the fake).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "crash-admin";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(db: &str, port: u16, fake: &str) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("serve")
        .env("ASSENT_DATABASE_URL", db)
        .env("ASSENT_BIND", format!("127.0.0.1:{port}"))
        .env("ASSENT_ADMIN_TOKEN", ADMIN)
        .env("ASSENT_PROVIDER", "twilio")
        .env("ASSENT_TWILIO_ACCOUNT_SID", "ACcrash")
        .env("ASSENT_TWILIO_AUTH_TOKEN", "crash-token")
        .env("ASSENT_TWILIO_API_BASE", fake)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("assent serve did not start");
}

async fn call(c: &reqwest::Client, method: &str, url: String, token: &str, body: Value) -> Value {
    let r = c
        .request(method.parse().unwrap(), url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_drain_loses_nothing_and_doubles_nothing() {
    assent_provider::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/crash.db", dir.path().display());
    let (fake, received) = assent_server::fake_twilio::spawn().await.unwrap();
    let port = free_port();
    let mut server = start(&db, port, &fake).await;
    let c = reqwest::Client::new();
    let api = |p: &str| format!("{}/api/v1{p}", server.base);

    let t = call(
        &c,
        "POST",
        api("/tenants"),
        ADMIN,
        json!({"name": "Crash Test HVAC"}),
    )
    .await;
    let key = t["api_key"].as_str().unwrap().to_string();
    let id = t["id"].as_str().unwrap().to_string();
    call(
        &c,
        "PUT",
        api("/senders"),
        &key,
        json!({"transactional": "+15125550100"}),
    )
    .await;
    call(&c, "PUT", api("/registrations/texting"), &key, json!({"legal_name": "Crash LLC", "ein": "12-3456789",
        "address": "1 Main St", "website": "https://c.example", "contact_email": "a@c.example", "use_case": "jobs",
        "sample_messages": ["hi"]}))
    .await;
    call(
        &c,
        "POST",
        api(&format!("/tenants/{id}/registrations/texting/decision")),
        ADMIN,
        json!({"status": "approved"}),
    )
    .await;
    call(
        &c,
        "PUT",
        api("/settings"),
        &key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;

    // Queue 3,000 missed-call text-backs (no customer record needed) from 8 clients while
    // the carrier holds its answers, then let it answer and kill the server once it has
    // taken 600 of them.
    received.pause();
    let total = 3000u32;
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let (c, url, key, accepted) = (c.clone(), api("/messages"), key.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < total {
                let to = format!("+1737555{:04}", i % 10000);
                let r = c
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"to": to, "purpose": "missed_call", "body": format!("msg {i}")}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let v: Value = r.json().await.unwrap();
                        accepted.lock().unwrap().push((
                            to,
                            format!("msg {i}"),
                            v["id"].as_str().unwrap().to_string(),
                        ));
                    }
                    // The server was killed mid-request: this one was never acknowledged.
                    _ => return,
                }
                i += 8;
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() < total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    received.resume();
    while received.count() < 600 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let at_kill = received.count();
    assert!(
        at_kill >= 600 && (at_kill as u32) < total,
        "killed mid-drain: {at_kill}"
    );

    let server = start(&db, port, &fake).await;
    let accepted = accepted.lock().unwrap().clone();
    // Wait until nothing is left queued or sending.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut statuses: HashMap<String, String> = HashMap::new();
    loop {
        statuses.clear();
        let mut by_phone: HashMap<&str, ()> = HashMap::new();
        for (to, _, _) in &accepted {
            by_phone.insert(to.as_str(), ());
        }
        for phone in by_phone.keys() {
            let v = call(
                &c,
                "GET",
                format!(
                    "{}/api/v1/messages?phone={}",
                    server.base,
                    phone.replace('+', "%2B")
                ),
                &key,
                Value::Null,
            )
            .await;
            for m in v["messages"].as_array().unwrap() {
                statuses.insert(
                    m["id"].as_str().unwrap().to_string(),
                    m["status"].as_str().unwrap().to_string(),
                );
            }
        }
        let open = statuses
            .values()
            .filter(|s| matches!(s.as_str(), "queued" | "sending" | "deferred"))
            .count();
        if open == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut sent_count: HashMap<(String, String), u32> = HashMap::new();
    for (to, body) in received.all() {
        *sent_count.entry((to, body)).or_default() += 1;
    }
    let mut unknown = 0;
    for (to, body, id) in &accepted {
        let n = sent_count
            .get(&(to.clone(), body.clone()))
            .copied()
            .unwrap_or(0);
        let status = statuses.get(id).map(String::as_str).unwrap_or("missing");
        match status {
            "sent" | "delivered" => {
                assert_eq!(n, 1, "{id} is {status} but reached the carrier {n} times")
            }
            "unknown" => {
                unknown += 1;
                assert!(n <= 1, "{id} reached the carrier {n} times");
            }
            other => panic!("{id} ended {other}: lost"),
        }
    }
    assert!(
        sent_count.values().all(|n| *n == 1),
        "a message reached the carrier twice"
    );
    assert_eq!(
        accepted.len(),
        total as usize,
        "every message was queued before the kill"
    );
    eprintln!(
        "accepted {}, carrier saw {}, unknown after the crash {unknown}",
        accepted.len(),
        received.count()
    );
    drop(server);
}
