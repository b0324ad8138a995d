//! Imports stream (issue 15): a file far over the JSON endpoints' limit goes in one request,
//! is read as it arrives and written in batches, lines are numbered across batches and
//! chunks as in the file, the rejected list is bounded, and a file over the configured
//! limit is 413 in the JSON error shape. Both databases.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `n` customer rows after the header; row `i` (line `i + 2`) has phone +1737 200 0000 + i.
fn customers_csv(n: usize, bad: impl Fn(usize) -> Option<String>) -> String {
    let mut csv = String::from("name,phone,marketing_updates\n");
    for i in 0..n {
        match bad(i + 2) {
            Some(row) => csv.push_str(&row),
            None => csv.push_str(&format!("Customer {i},+1737{:07},no", 2_000_000 + i)),
        }
        csv.push('\n');
    }
    csv
}

async fn post_csv(app: &TestApp, key: &str, path: &str, csv: String) -> (StatusCode, Value) {
    let r = app
        .client
        .post(format!("{}/api/v1{path}", app.base))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert!(ct.starts_with("application/json"), "{status} {ct}: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

/// Sends `body` with chunked transfer encoding, one HTTP chunk per piece, over a raw
/// connection: the server sees the pieces as they are written, split where they are.
async fn post_chunked(app: &TestApp, key: &str, path: &str, pieces: &[&[u8]]) -> (u16, Value) {
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for p in pieces {
        let mut chunk = format!("{:x}\r\n", p.len()).into_bytes();
        chunk.extend_from_slice(p);
        chunk.extend_from_slice(b"\r\n");
        // The server may answer (413) and close before the whole body is sent.
        if s.write_all(&chunk).await.is_err() {
            break;
        }
        s.flush().await.ok();
    }
    s.write_all(b"0\r\n\r\n").await.ok();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.ok();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let (headers, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{text}"
    );
    // The answer may itself be chunked: take the JSON object inside.
    let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
    (status, serde_json::from_str(json).unwrap())
}

/// Phones on a record, besides the one `TestApp::tenant` puts there, counted a page of
/// customers at a time.
async fn customer_count(app: &TestApp, t: &Tenant) -> usize {
    use assent_store::page::Seek;
    let mut seek = Seek::first(1000);
    let mut phones = 0;
    loop {
        let page = app
            .app
            .store
            .customers_page(
                &t.id,
                &assent_store::page::CustomerFilter::search(""),
                &seek,
            )
            .await
            .unwrap();
        phones += page.items.iter().map(|c| c.phones.len()).sum::<usize>();
        match page.next() {
            Some(k) => seek = Seek::after(Some(k.clone()), 1000),
            None => return phones - 1,
        }
    }
}

#[tokio::test]
async fn a_hundred_thousand_rows_go_in_one_request() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let n = 100_000;
    let csv = customers_csv(n, |_| None);
    assert!(csv.len() > 2 << 20, "over the JSON endpoints' limit");
    let (s, v) = post_csv(&app, &t.key, "/imports/customers", csv).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["created"], n, "{v}");
    assert_eq!(v["updated"], 0, "{v}");
    assert_eq!(v["rejected_count"], 0, "{v}");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(customer_count(&app, &t).await, n);
    // Again, the first rows only: they are on records now, and updated, not created.
    let (s, v) = post_csv(
        &app,
        &t.key,
        "/imports/customers",
        customers_csv(100, |_| None),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["created"].as_u64(), v["updated"].as_u64()),
        (Some(0), Some(100)),
        "{v}"
    );
    assert_eq!(customer_count(&app, &t).await, n);
}

#[tokio::test]
async fn lines_keep_their_numbers_across_batches_and_chunks() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let n = 12_000;
    // Around each batch of 5,000 new customers: a bad phone, a repeat of a phone from the
    // first batch, a row quoted over two lines, a NUL.
    let bad = |line: usize| match line {
        5001 => Some("Bad Phone,not-a-phone,no".to_string()),
        5003 => Some("Repeat,+17372000000,no".to_string()),
        5004 => Some("\"Two\nLines\",+17379999999,no".to_string()),
        10_002 => Some("Nul\u{0},+17379999998,no".to_string()),
        10_003 => Some(",+17379999997,no".to_string()),
        _ => None,
    };
    let csv = customers_csv(n, bad);
    // Chunks of an odd size, so rows, CRLFs and quotes are split between them.
    let pieces: Vec<&[u8]> = csv.as_bytes().chunks(4093).collect();
    let (s, v) = post_chunked(&app, &t.key, "/imports/customers", &pieces).await;
    assert_eq!(s, 200, "{v}");
    let rejected: Vec<(u64, String)> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let lines: Vec<u64> = rejected.iter().map(|r| r.0).collect();
    // The row over two lines counts two lines: the rows after it keep the file's numbers.
    assert_eq!(lines, [5001, 5003, 10_003, 10_004], "{v}");
    assert!(rejected[0].1.starts_with("phone \"not-a-phone\""), "{v}");
    assert_eq!(
        rejected[1].1, "phone +17372000000 is already on line 2",
        "{v}"
    );
    assert!(rejected[2].1.contains("U+0000"), "{v}");
    assert_eq!(rejected[3].1, "name is required", "{v}");
    assert_eq!(v["rejected_count"], 4, "{v}");
    assert_eq!(v["created"], n - 4, "{v}");
    assert_eq!(customer_count(&app, &t).await, n - 4);
    let c = app
        .app
        .store
        .customers_with_phone(&t.id, &e164("+17379999999"))
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    let c = app.app.store.customer(&t.id, &c[0]).await.unwrap().unwrap();
    assert_eq!(c.name, "Two\nLines");
}

#[tokio::test]
async fn the_rejected_list_is_bounded_and_counted() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let csv = customers_csv(3000, |line| (line % 2 == 0).then(|| "x,bad,no".to_string()));
    let (s, v) = post_csv(&app, &t.key, "/imports/customers", csv).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["created"], 1500, "{v}");
    assert_eq!(v["rejected_count"], 1500, "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1000);
    assert_eq!(rejected[0]["line"], 2);
    assert_eq!(rejected[999]["line"], 2000);
    // The other imports answer the same way.
    let mut csv = String::from("phone,opted_out_at\n");
    for _ in 0..1200 {
        csv.push_str("bad,2026-01-01\n");
    }
    let (s, v) = post_csv(&app, &t.key, "/imports/consent", csv).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rejected_count"], 1200, "{v}");
    assert_eq!(v["rejected"].as_array().unwrap().len(), 1000, "{v}");
}

#[tokio::test]
async fn a_file_over_the_configured_limit_is_413_in_json() {
    let app = TestApp::spawn_with(|c| c.import_max_bytes = 64 << 10).await;
    let (t, _) = app.tenant().await;
    // Declared too large: refused before anything is read.
    let csv = customers_csv(5000, |_| None);
    assert!(csv.len() > 64 << 10);
    for path in [
        "/imports/customers",
        "/imports/consent",
        "/imports/estimates",
        "/imports/recurring-services",
        "/imports/calls",
    ] {
        let (s, v) = post_csv(&app, &t.key, path, csv.clone()).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {v}");
        assert_eq!(v["error"]["code"], "body_too_large", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("64 KiB"), "{message}");
        assert!(message.contains("nothing was imported"), "{message}");
    }
    assert_eq!(customer_count(&app, &t).await, 0);
    // Sent without a length: stopped at the limit, saying what was kept.
    let pieces: Vec<&[u8]> = csv.as_bytes().chunks(8 << 10).collect();
    let (s, v) = post_chunked(&app, &t.key, "/imports/customers", &pieces).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("the rest were not read"), "{message}");
    // Under the limit, the same endpoint takes a file.
    let (s, v) = post_csv(
        &app,
        &t.key,
        "/imports/customers",
        customers_csv(10, |_| None),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["created"], 10, "{v}");
}
