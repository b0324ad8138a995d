//! Lists page (issue 15): every list endpoint reads one keyset page (`limit` 1–1000,
//! `after` the previous page's `next`), a 10,000-row list pages to its end with every row
//! once, and the ledger export streams in order. SQLite, and PostgreSQL when
//! ASSENT_TEST_POSTGRES_URL is set.

use std::collections::HashSet;

use assent_core::consent::{LedgerState, Source, Topic};
use assent_store::{ContactMethod, Customer, Evidence, NewLedgerEntry};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// Every list endpoint and the key its answer lists under.
const LISTS: [(&str, &str); 7] = [
    ("/customers", "customers"),
    ("/conversations", "conversations"),
    ("/messages", "messages"),
    ("/deliveries", "deliveries"),
    ("/consent/ledger", "entries"),
    ("/campaigns", "campaigns"),
    ("/reviews", "reviews"),
];

/// `n` customers written straight to the store (an import's bulk path), each with one
/// phone and one ledger entry; groups of seven share a creation time, as an import's do.
async fn seed_customers(app: &TestApp, t: &Tenant, n: usize) {
    let rows: Vec<(Customer, Vec<NewLedgerEntry>)> = (0..n)
        .map(|i| {
            let phone = e164(&format!("+1737{}", 2_000_000 + i));
            let at = noon() - Duration::hours(1) + Duration::milliseconds((i / 7) as i64);
            let c = Customer {
                id: format!("seed-{i:05}"),
                name: format!("Seeded {i}"),
                address: None,
                tags: Vec::new(),
                phones: vec![ContactMethod {
                    number: phone.clone(),
                    job_notifications: true,
                    marketing_updates: false,
                }],
                created_at: at,
            };
            let e = NewLedgerEntry {
                phone,
                channel: Topic::JobNotifications,
                old_state: LedgerState::Off,
                new_state: LedgerState::On,
                source: Source::Import,
                actor: "import".into(),
                occurred_at: at,
                evidence: Evidence::default(),
            };
            (c, vec![e])
        })
        .collect();
    for chunk in rows.chunks(1000) {
        app.app.store.create_customers(&t.id, chunk).await.unwrap();
    }
}

/// Every page of `path` with `limit`, followed to the end: the items, and how many pages.
async fn all_pages(
    app: &TestApp,
    t: &Tenant,
    path: &str,
    name: &str,
    limit: u32,
) -> (Vec<Value>, usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &after {
            Some(a) => format!("{path}{sep}limit={limit}&after={a}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (s, v) = app.get(&url, &t.key).await;
        assert_eq!(s, StatusCode::OK, "{url}: {v}");
        let page = v[name].as_array().unwrap();
        assert!(
            page.len() <= limit as usize,
            "{url}: a page holds at most `limit`"
        );
        items.extend(page.iter().cloned());
        pages += 1;
        assert!(pages <= 100_000, "{path} never ends");
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => {
                assert!(v["next"].is_null(), "{v}");
                return (items, pages);
            }
        }
    }
}

#[tokio::test]
async fn ten_thousand_customers_page_to_the_end_each_exactly_once() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    seed_customers(&app, &t, 9_999).await;
    let (items, pages) = all_pages(&app, &t, "/customers", "customers", 1000).await;
    assert_eq!(items.len(), 10_000);
    assert_eq!(
        pages, 10,
        "ten full pages, the last one saying there is no next"
    );
    let ids: HashSet<&str> = items.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10_000, "every customer exactly once");
    // Newest first: creation times never go up (ties broken by id, within the page and
    // across pages alike).
    let keys: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = items
        .iter()
        .map(|c| {
            (
                chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().unwrap()).unwrap(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "a stable order");
    // Each carries its phones.
    assert_eq!(items[9_999]["phones"][0]["number"], "+17372000000");
    // A search pages too.
    let (found, _) = all_pages(&app, &t, "/customers?q=seeded%2012", "customers", 7).await;
    assert_eq!(found.len(), 111, "Seeded 12, 120–129, 1200–1299");
}

#[tokio::test]
async fn every_list_refuses_a_bad_limit_or_cursor_naming_it() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for (path, name) in LISTS {
        for bad in ["0", "1001", "ten", "-1"] {
            let (s, v) = app.get(&format!("{path}?limit={bad}"), &t.key).await;
            assert_eq!(
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} limit={bad}: {v}"
            );
            assert!(v.to_string().contains("limit"), "{path}: {v}");
        }
        for bad in ["nonsense", "%2F%2F%2F", "MTIz"] {
            let (s, v) = app.get(&format!("{path}?after={bad}"), &t.key).await;
            assert_eq!(
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{path} after={bad}: {v}"
            );
            assert!(v.to_string().contains("after"), "{path}: {v}");
        }
        let (s, v) = app.get(&format!("{path}?limit=1000"), &t.key).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        assert!(v[name].is_array() && v["next"].is_null(), "{path}: {v}");
    }
    let (s, v) = app.get("/messages?status=lost", &t.key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("status"), "{v}");
}

#[tokio::test]
async fn lists_page_one_row_at_a_time_and_show_only_the_tenants_rows() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.customer(&t, "Robin", "(512) 555-0199", true, false)
        .await;
    for body in [
        "Is Tuesday OK?",
        "Thanks!",
        "we have to stop this leak before friday",
    ] {
        assert_eq!(app.inbound("+15125550142", TX, body).await, StatusCode::OK);
        app.clock.advance(Duration::seconds(1));
    }
    assert_eq!(
        app.inbound("+15125550199", TX, "Hello").await,
        StatusCode::OK
    );
    let (s, v) = app
        .post(
            "/campaigns",
            &t.key,
            json!({"name": "Spring", "type": "marketing", "body": "10% off"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = app
        .post(
            "/tenants",
            ADMIN,
            json!({"name": "Other Co", "time_zone": "America/Chicago"}),
        )
        .await;
    let other = Tenant {
        id: v["id"].as_str().unwrap().into(),
        slug: v["slug"].as_str().unwrap().into(),
        key: v["api_key"].as_str().unwrap().into(),
    };

    // A phone's messages, oldest first, one a page.
    let (thread, pages) =
        all_pages(&app, &t, "/messages?phone=%2B15125550142", "messages", 1).await;
    assert_eq!(thread.len(), pages, "one a page");
    let bodies: Vec<&str> = thread
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            "Is Tuesday OK?",
            "Thanks!",
            "we have to stop this leak before friday"
        ]
    );
    assert_eq!(
        thread,
        app.messages(&t, "+15125550142").await,
        "the same as one page"
    );
    // The tenant's, newest first, filtered.
    let (inbound, _) = all_pages(&app, &t, "/messages?direction=inbound", "messages", 2).await;
    assert_eq!(inbound.len(), 4);
    assert_eq!(inbound[0]["body"], "Hello");
    assert!(inbound.iter().all(|m| m["direction"] == "inbound"));
    let (replies, _) = all_pages(&app, &t, "/deliveries", "deliveries", 2).await;
    assert!(
        replies
            .iter()
            .all(|m| m["to"].as_str().is_some() && m["status"].is_string())
    );

    let (conversations, _) = all_pages(&app, &t, "/conversations", "conversations", 1).await;
    let phones: Vec<&str> = conversations
        .iter()
        .map(|c| c["phone"].as_str().unwrap())
        .collect();
    assert_eq!(
        phones,
        ["+15125550199", "+15125550142"],
        "most recently active first"
    );
    assert_eq!(conversations[0]["last_inbound"], "Hello");

    let (ledger, _) = all_pages(&app, &t, "/consent/ledger", "entries", 1).await;
    assert!(ledger.len() >= 4, "{ledger:?}");
    let seqs: Vec<i64> = ledger.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "commit order");
    let (robin, _) = all_pages(
        &app,
        &t,
        "/consent/ledger?phone=%2B15125550199",
        "entries",
        1,
    )
    .await;
    assert!(!robin.is_empty() && robin.iter().all(|e| e["phone"] == "+15125550199"));

    let (campaigns, _) = all_pages(&app, &t, "/campaigns", "campaigns", 1).await;
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0]["name"], "Spring");
    for k in ["sent", "delivered", "skipped", "opted_out_after"] {
        assert!(campaigns[0]["counts"][k].is_u64(), "{k}: {}", campaigns[0]);
    }
    assert!(campaigns[0]["recipients"].is_u64());

    let (reviews, _) = all_pages(&app, &t, "/reviews", "reviews", 1).await;
    assert_eq!(reviews.len(), 1, "the vague stop waits for a person");

    // Another tenant sees none of it.
    for (path, name) in LISTS {
        let (s, v) = app.get(path, &other.key).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        assert_eq!(v[name], json!([]), "{path}: {v}");
        assert!(v["next"].is_null());
    }
    // Nor can its cursor reach into this tenant's rows.
    let (_, first) = app.get("/customers?limit=1", &t.key).await;
    let cursor = first["next"].as_str().unwrap();
    let (s, v) = app
        .get(&format!("/customers?after={cursor}"), &other.key)
        .await;
    assert_eq!((s, v["customers"].clone()), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn the_ledger_export_streams_every_entry_in_order() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    seed_customers(&app, &t, 3_500).await;
    let r = app
        .client
        .get(format!("{}/api/v1/consent/export.csv", app.base))
        .header("Authorization", format!("Bearer {}", t.key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed (chunked), not built whole: {:?}",
        r.headers()
    );
    let csv = r.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("seq,occurred_at,phone,"));
    let seqs: Vec<i64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let (ledger, _) = all_pages(&app, &t, "/consent/ledger", "entries", 1000).await;
    assert!(ledger.len() > 3_500, "{}", ledger.len());
    let expected: Vec<i64> = ledger.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, expected, "every entry once, in commit order");
    assert!(csv.contains("+17372003499"));
}

#[tokio::test]
async fn a_phones_consent_shows_its_latest_events_and_says_when_there_are_more() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let phone = e164("+15125550161");
    let entries: Vec<NewLedgerEntry> = (0..150)
        .map(|i| {
            let (old_state, new_state) = if i % 2 == 0 {
                (LedgerState::Off, LedgerState::On)
            } else {
                (LedgerState::On, LedgerState::Off)
            };
            NewLedgerEntry {
                phone: phone.clone(),
                channel: Topic::JobNotifications,
                old_state,
                new_state,
                source: Source::Import,
                actor: "import".into(),
                occurred_at: noon() - Duration::hours(2) + Duration::seconds(i),
                evidence: Evidence::default(),
            }
        })
        .collect();
    let c = Customer {
        id: "long-history".into(),
        name: "Long History".into(),
        address: None,
        tags: Vec::new(),
        phones: vec![ContactMethod {
            number: phone.clone(),
            job_notifications: true,
            marketing_updates: false,
        }],
        created_at: noon() - Duration::hours(2),
    };
    app.app
        .store
        .create_customers(&t.id, &[(c, entries)])
        .await
        .unwrap();
    let (s, v) = app.get("/consent/%2B15125550161", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (all, _) = all_pages(
        &app,
        &t,
        "/consent/ledger?phone=%2B15125550161",
        "entries",
        1000,
    )
    .await;
    assert_eq!(all.len(), 150);
    // The latest 100, in commit order, and a sign that there are more.
    let seqs = |items: &[Value]| -> Vec<i64> {
        items.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
    };
    assert_eq!(seqs(v["events"].as_array().unwrap()), seqs(&all[50..]));
    assert_eq!(v["events_truncated"], true);

    // A short history is whole.
    let (_, v) = app.get("/consent/%2B15125550142", &t.key).await;
    assert_eq!(v["events_truncated"], false, "{v}");
    assert!(!v["events"].as_array().unwrap().is_empty(), "{v}");
}
