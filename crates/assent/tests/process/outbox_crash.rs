//! The outbox survives a crash: a real `assent serve` records opt-outs and opt-ins (each a
//! `consent.changed` event for a tenant's endpoint) while that endpoint is down, tries and
//! fails to deliver them, and is killed with SIGKILL. Restarted, with the endpoint up, it
//! delivers every event that was committed before the kill, exactly once per event id (the
//! endpoint never answered before the kill, so nothing may arrive twice), signed, and in
//! ledger order per phone. On SQLite, and on PostgreSQL when `ASSENT_TEST_POSTGRES_URL`
//! names a server.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Db, Server, free_port};

const ADMIN: &str = "outbox-crash-admin";
const TX: &str = "+15125550100";
const MK: &str = "+15125550101";

async fn start(db: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_assent"))
        .arg("serve")
        .env("ASSENT_DATABASE_URL", db)
        .env("ASSENT_BIND", format!("127.0.0.1:{port}"))
        .env("ASSENT_ADMIN_TOKEN", ADMIN)
        .env("ASSENT_PROVIDER", "simulator")
        .env("ASSENT_WEBHOOK_ALLOW_PRIVATE", "1")
        .env_remove("ASSENT_TWILIO_AUTH_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server::healthy(child, port, Duration::from_secs(30)).await
}

async fn call(c: &reqwest::Client, method: &str, url: String, token: &str, body: Value) -> Value {
    let mut r = c.request(method.parse().unwrap(), url).bearer_auth(token);
    if !body.is_null() {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// What the endpoint received: (Assent-Signature header, body), in arrival order.
type Got = Arc<Mutex<Vec<(String, String)>>>;

/// A plain HTTP/1.1 endpoint on `port` (blocking, a thread per connection) that records
/// each POST and answers 204.
fn endpoint(port: u16) -> Got {
    let got: Got = Arc::default();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let g = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let signature = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("assent-signature")
                            .then(|| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
                g.lock().unwrap().push((signature, body));
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            });
        }
    });
    got
}

/// The endpoint's whole delivery log (every page).
async fn delivery_log(c: &reqwest::Client, base: &str, key: &str, id: &str) -> Vec<Value> {
    let url = format!("{base}/api/v1/webhook-endpoints/{id}/deliveries");
    let mut rows = Vec::new();
    let mut page = format!("{url}?limit=1000");
    loop {
        let v = call(c, "GET", page.clone(), key, Value::Null).await;
        rows.extend(v["deliveries"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(next) => page = format!("{url}?limit=1000&after={next}"),
            None => return rows,
        }
    }
}

/// The bound of every wait: against a hang (PostgreSQL on a loaded machine is slow), not a
/// deadline the behaviour must meet.
const BOUND: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_sigkill_and_arrive_once_each_on_sqlite() {
    survives_sigkill(Db::sqlite("outbox.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn events_survive_sigkill_and_arrive_once_each_on_postgres() {
    let Some(db) = Db::postgres("outbox").await else {
        return;
    };
    survives_sigkill(db).await;
}

async fn survives_sigkill(db: Db) {
    let port = free_port();
    let mut server = start(db.url(), port).await;
    let c = reqwest::Client::new();
    let api = |base: &str, p: &str| format!("{base}/api/v1{p}");
    let t = call(
        &c,
        "POST",
        api(&server.base, "/tenants"),
        ADMIN,
        json!({"name": "Outbox Crash HVAC"}),
    )
    .await;
    let key = t["api_key"].as_str().unwrap().to_string();
    call(
        &c,
        "PUT",
        api(&server.base, "/senders"),
        &key,
        json!({"transactional": TX, "marketing": MK}),
    )
    .await;
    // The endpoint's port is free: nothing answers there until after the crash.
    let hook_port = free_port();
    let ep = call(
        &c,
        "POST",
        api(&server.base, "/webhook-endpoints"),
        &key,
        json!({"url": format!("http://127.0.0.1:{hook_port}/assent"), "events": ["consent.changed"]}),
    )
    .await;
    let (ep_id, secret) = (
        ep["id"].as_str().unwrap().to_string(),
        ep["secret"].as_str().unwrap().to_string(),
    );

    // Each phone texts STOP, then START: two consent changes, in that order.
    let phones: Vec<String> = (0..8).map(|i| format!("+1512555{:04}", 3000 + i)).collect();
    let webhook = format!("{}/webhooks/twilio/sms", server.base);
    for word in ["STOP", "START"] {
        for (i, phone) in phones.iter().enumerate() {
            let r = c
                .post(&webhook)
                .form(&[
                    ("MessageSid", format!("SMoutboxcrash{word}{i:020}")),
                    ("From", phone.clone()),
                    ("To", TX.to_string()),
                    ("Body", word.to_string()),
                ])
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{word}: {}", r.status());
        }
    }

    // Every change was acknowledged, so its event is committed; the worker has tried the
    // first one of each phone and failed (the endpoint is down).
    let deadline = Instant::now() + BOUND;
    let before = loop {
        let log = delivery_log(&c, &server.base, &key, &ep_id).await;
        let failed = log
            .iter()
            .filter(|d| d["last_error"].is_string() && d["attempts"].as_u64() >= Some(1))
            .count();
        if failed >= phones.len() {
            break log;
        }
        assert!(Instant::now() < deadline, "no failed attempts: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(before.len() >= 2 * phones.len(), "{before:?}");
    assert!(
        before.iter().all(|d| d["status"] == "pending"),
        "nothing delivered before the crash: {before:?}"
    );
    let expected: HashSet<String> = before
        .iter()
        .map(|d| d["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(expected.len(), before.len(), "one delivery per event");

    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();

    // The endpoint comes up; the server restarts on the same database.
    let got = endpoint(hook_port);
    let server = start(db.url(), port).await;
    let deadline = Instant::now() + BOUND;
    let after = loop {
        let log = delivery_log(&c, &server.base, &key, &ep_id).await;
        if log.iter().all(|d| d["status"] == "delivered") {
            break log;
        }
        assert!(Instant::now() < deadline, "not all delivered: {log:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.len(), before.len(), "no event was added or lost");

    let got = got.lock().unwrap().clone();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    let mut per_phone: HashMap<String, Vec<i64>> = HashMap::new();
    for (signature, body) in &got {
        let t: i64 = signature
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no t in {signature:?}"));
        assert_eq!(
            *signature,
            assent_provider::signature::event_signature(&secret, t, body),
            "signed with the endpoint's secret"
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "consent.changed");
        *per_id
            .entry(v["id"].as_str().unwrap().to_string())
            .or_default() += 1;
        per_phone
            .entry(v["data"]["phone"].as_str().unwrap().to_string())
            .or_default()
            .push(v["data"]["ledger_seq"].as_i64().unwrap());
    }
    let arrived: HashSet<String> = per_id.keys().cloned().collect();
    assert_eq!(
        arrived, expected,
        "every event committed before the kill arrived"
    );
    for (id, n) in &per_id {
        assert_eq!(*n, 1, "{id} arrived {n} times");
    }
    for phone in &phones {
        let seqs = per_phone.get(phone).cloned().unwrap_or_default();
        assert!(seqs.len() >= 2, "{phone}: {seqs:?}");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{phone}'s events in ledger order: {seqs:?}"
        );
    }
    drop(server);
    db.drop_it().await;
}
