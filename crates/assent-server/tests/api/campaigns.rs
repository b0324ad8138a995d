//! Campaigns of every kind with an injected clock, reports that add up, pause and resume,
//! and customer imports.

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn tick(app: &TestApp) {
    assent_server::campaigns::tick(&app.app).await.unwrap();
}

async fn report(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let (s, v) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn campaign(app: &TestApp, t: &Tenant, body: Value) -> String {
    let (s, v) = app.post("/campaigns", &t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn import(app: &TestApp, t: &Tenant, csv: String) -> Value {
    let r = app
        .client
        .post(format!("{}/api/v1/imports/customers", app.base))
        .bearer_auth(&t.key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn customer_import_keeps_good_rows_and_reports_each_bad_one() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let csv = "\u{feff}name,phone,job_notifications,marketing_updates,tags,address\r\n\
        Zoë Ñúñez,512-555-0101,yes,no,vip;hvac,\"1 Main St, Austin, TX\"\r\n\
        ,512-555-0102,,,,\r\n\
        Bad Phone,555-01,,,,\r\n\
        \"Ortega, Luis\",(512) 555-0103,no,yes,plumbing,\r\n\
        Twin,5125550101,,,,\r\n\
        Maybe,512-555-0104,perhaps,,,\r\n\
        Dana,+1 512 555 0142,no,no,,\r\n";
    let v = import(&app, &t, csv.to_string()).await;
    assert_eq!(v["created"], 2, "{v}");
    assert_eq!(v["updated"], 1, "Dana's phone was already on a customer");
    let lines: Vec<(u64, String)> = v["rejected"]
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
    assert_eq!(
        lines.iter().map(|l| l.0).collect::<Vec<_>>(),
        vec![3, 4, 6, 7],
        "{lines:?}"
    );
    assert!(lines[0].1.contains("name"));
    assert!(lines[1].1.contains("phone"));
    assert!(lines[2].1.contains("line 2"));
    assert!(lines[3].1.contains("job_notifications"));
    let c = app.consent(&t, "+15125550103").await;
    assert_eq!(c["toggles"]["marketing_updates"], true);
    assert_eq!(c["toggles"]["job_notifications"], false);
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["toggles"]["job_notifications"], false);
    assert_eq!(
        c["events"].as_array().unwrap().last().unwrap()["source"],
        "import"
    );
    // An import of nothing but a header is fine; a file without a phone column is not.
    let v = import(&app, &t, "name,phone\n".into()).await;
    assert_eq!(v["created"], 0);
    let v = import(&app, &t, "name,mobile\nA,5125550100\n".into()).await;
    assert_eq!(v["rejected"][0]["line"], 1);
}

/// A re-import that leaves a toggle out (no column, or a blank cell) leaves the customer's
/// choice alone: Job Notifications switched off stay off.
#[tokio::test]
async fn a_reimport_without_toggles_keeps_what_the_customer_chose() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let phone = "+15125550150";
    let v = import(
        &app,
        &t,
        "name,phone,job_notifications,marketing_updates\nAna,512-555-0150,no,yes\n".into(),
    )
    .await;
    assert_eq!(v["created"], 1, "{v}");
    let events = |c: &Value| c["events"].as_array().unwrap().len();
    let before = app.consent(&t, phone).await;
    for csv in [
        "name,phone\nAna,512-555-0150\n",
        "name,phone,job_notifications,marketing_updates\nAna,512-555-0150,,\n",
    ] {
        let v = import(&app, &t, csv.into()).await;
        assert_eq!(v["updated"], 1, "{v}");
        let c = app.consent(&t, phone).await;
        assert_eq!(c["toggles"]["job_notifications"], false, "{csv}");
        assert_eq!(c["toggles"]["marketing_updates"], true, "{csv}");
        assert_eq!(
            events(&c),
            events(&before),
            "nothing changed, nothing recorded"
        );
    }
    // A cell that says something is applied, and only that one.
    import(
        &app,
        &t,
        "name,phone,marketing_updates\nAna,512-555-0150,no\n".into(),
    )
    .await;
    let c = app.consent(&t, phone).await;
    assert_eq!(c["toggles"]["job_notifications"], false);
    assert_eq!(c["toggles"]["marketing_updates"], false);
}

#[tokio::test]
async fn a_marketing_campaign_to_a_mixed_audience_reports_the_exact_partition() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.put(
        "/settings",
        &t.key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;
    let n = 10_000;
    let mut csv = String::from("name,phone,tags\n");
    for i in 0..n {
        csv.push_str(&format!("Customer {i},+1737{:07},spring\n", 2_000_000 + i));
    }
    csv.push_str("Overseas,+44 20 7946 0958,spring\n");
    let v = import(&app, &t, csv).await;
    assert_eq!(v["created"], n + 1, "{v}");
    // A quarter opted in, a quarter opted out, a quarter pending, a quarter never asked.
    // Their texts, 16 at a time, signed as Twilio signs them.
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let mut set = tokio::task::JoinSet::new();
    for i in (0..n).filter(|i| i % 4 != 3) {
        let (client, url) = (app.client.clone(), url.clone());
        let body = match i % 4 {
            0 => "I would like to sign up for marketing text messages!",
            1 => "STOP",
            _ => "hello",
        };
        set.spawn(async move {
            let params: Vec<(String, String)> = [
                ("MessageSid", format!("SMmixed{i:026}")),
                ("From", format!("+1737{:07}", 2_000_000 + i)),
                ("To", MK.to_string()),
                ("Body", body.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let sig = assent_provider::signature::sign(AUTH_TOKEN, &url, &params);
            client
                .post(&url)
                .header("X-Twilio-Signature", sig)
                .form(&params)
                .send()
                .await
                .unwrap()
                .status()
        });
        while set.len() >= 16 {
            assert_eq!(set.join_next().await.unwrap().unwrap(), StatusCode::OK);
        }
    }
    while let Some(s) = set.join_next().await {
        assert_eq!(s.unwrap(), StatusCode::OK);
    }
    let id = campaign(&app, &t, json!({"name": "Spring tune-up", "type": "marketing", "body": "Hi {first_name|there}! {business_name}: 15% off tune-ups", "audience": {"tags": ["spring"]}})).await;
    tick(&app).await;
    let r = report(&app, &t, &id).await;
    assert_eq!(r["recipients"], n + 1);
    // The report lists the first 100 skipped and counts them all by reason.
    assert_eq!(
        r["skipped"].as_array().unwrap().len(),
        100,
        "{}",
        r["skipped"]
    );
    let reason = |code: &str| r["skipped_by_reason"][code].as_u64().unwrap();
    assert_eq!(reason("opted_out"), n / 4);
    assert_eq!(reason("no_marketing_consent"), n / 2);
    assert_eq!(reason("invalid_number"), 1);
    assert_eq!(r["counts"]["queued"], n / 4);
    assert_eq!(r["status"], "sending");
    app.drain().await;
    tick(&app).await;
    let r = report(&app, &t, &id).await;
    assert_eq!(r["counts"]["delivered"], n / 4);
    assert_eq!(r["counts"]["skipped"], n / 4 * 3 + 1);
    let total: u64 = [
        "queued",
        "deferred",
        "sending",
        "sent",
        "delivered",
        "undelivered",
        "failed",
        "blocked",
        "unknown",
        "expired",
        "skipped",
    ]
    .iter()
    .map(|k| r["counts"][k].as_u64().unwrap())
    .sum();
    assert_eq!(total, n + 1, "each recipient counted once");
    assert_eq!(r["status"], "finished");
    let sent = app.sent_to("+17372000000");
    assert_eq!(sent.len(), 2, "the opt-in confirmation and the campaign");
    assert_eq!(
        sent[1].2,
        "Acme Plumbing: Hi Customer! Acme Plumbing: 15% off tune-ups\nReply STOP to opt out"
    );

    // A STOP after the campaign counts as opted out afterwards.
    app.inbound("+17372000000", MK, "STOP").await;
    let r = report(&app, &t, &id).await;
    assert_eq!(r["counts"]["opted_out_after"], 1);
    let log = every_recipient(&app, &t, &id, "limit=1000").await;
    assert_eq!(log.len() as u64, n + 1);
}

/// A campaign's whole send log, paged with `query` (e.g. `limit=7&status=skipped`) to the
/// end, asserting no page is larger than asked and no recipient comes twice.
async fn every_recipient(app: &TestApp, t: &Tenant, id: &str, query: &str) -> Vec<Value> {
    let limit: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("limit="))
        .map_or(100, |l| l.parse().unwrap());
    let mut rows: Vec<Value> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut after = String::new();
    loop {
        let (s, v) = app
            .get(
                &format!("/campaigns/{id}/recipients?{query}{after}"),
                &t.key,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let page = v["recipients"].as_array().unwrap();
        assert!(page.len() <= limit, "{} rows for limit {limit}", page.len());
        for r in page {
            let key = format!("{} {}", r["step"], r["phone"]);
            assert!(seen.insert(key.clone()), "{key} came twice");
        }
        rows.extend(page.iter().cloned());
        match v["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn recipients_page_to_the_end_each_once_and_filter_by_status() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    // 300 customers: every third has said yes to marketing, the rest are skipped.
    let n = 300;
    let mut csv = String::from("name,phone,marketing_updates,tags\n");
    for i in 0..n {
        let yes = if i % 3 == 0 { "true" } else { "" };
        csv.push_str(&format!("C {i},+1737{:07},{yes},paged\n", 3_000_000 + i));
    }
    let v = import(&app, &t, csv).await;
    assert_eq!(v["created"], n, "{v}");
    let id = campaign(&app, &t, json!({"name": "Paged", "type": "marketing", "body": "Sale", "audience": {"tags": ["paged"]}})).await;
    tick(&app).await;
    let r = report(&app, &t, &id).await;
    assert_eq!(r["recipients"], n, "{r}");

    let all = every_recipient(&app, &t, &id, "limit=7").await;
    assert_eq!(all.len() as u64, n);
    let phones: std::collections::BTreeSet<String> = all
        .iter()
        .map(|r| r["phone"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(phones.len() as u64, n, "every customer once");
    // The default page is 100.
    let (_, v) = app
        .get(&format!("/campaigns/{id}/recipients"), &t.key)
        .await;
    assert_eq!(v["recipients"].as_array().unwrap().len(), 100);
    assert!(v["next"].is_string(), "{}", v["next"]);

    let skipped = every_recipient(&app, &t, &id, "limit=9&status=skipped").await;
    assert_eq!(json!(skipped.len()), r["counts"]["skipped"]);
    assert!(skipped.iter().all(|r| r["status"] == "skipped"));
    let queued = every_recipient(&app, &t, &id, "limit=1000&status=queued").await;
    assert_eq!(json!(queued.len()), r["counts"]["queued"]);
    assert_eq!(queued.len() + skipped.len(), all.len());

    // Bad paging is refused naming the field.
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("status=lost", "status"),
        ("after=not-a-cursor!", "after"),
    ] {
        let (s, v) = app
            .get(&format!("/campaigns/{id}/recipients?{query}"), &t.key)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {v}");
        assert!(v.to_string().contains(field), "{query}: {v}");
    }
}

#[tokio::test]
async fn unknown_merge_fields_are_refused_when_the_campaign_is_created() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .post(
            "/campaigns",
            &t.key,
            json!({"name": "x", "type": "marketing", "body": "Hi {frist_name}"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frist_name")
    );
    let (s, v) = app
        .post(
            "/campaigns",
            &t.key,
            json!({"name": "x", "type": "unsold_estimates", "body": "Hi"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("schedule.days_after")
    );
}

/// A tenant with `n` phones opted in to marketing by text (sending limits out of the way)
/// and a marketing campaign to them, not yet run; also how many texts had gone before it.
async fn flash_sale(app: &TestApp, n: usize) -> (Tenant, usize, String) {
    let (t, _) = app.tenant().await;
    app.put(
        "/settings",
        &t.key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;
    for i in 0..n {
        app.inbound(
            &format!("+1737555{i:04}"),
            MK,
            "I would like to sign up for marketing text messages!",
        )
        .await;
    }
    app.drain().await;
    let before = app.sent().len();
    let id = campaign(
        app,
        &t,
        json!({"name": "Flash sale", "type": "marketing", "body": "Flash sale today"}),
    )
    .await;
    (t, before, id)
}

#[tokio::test]
async fn pausing_and_resuming_never_sends_twice() {
    let app = TestApp::spawn().await;
    let (t, before, id) = flash_sale(&app, 60).await;
    tick(&app).await;
    assent_server::dispatch::dispatch_once(&app.app, 20)
        .await
        .unwrap();
    let (s, v) = app
        .post(&format!("/campaigns/{id}/pause"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["held"], 40);
    app.drain().await;
    tick(&app).await;
    assert_eq!(app.sent().len() - before, 20, "nothing leaves while paused");
    assert_eq!(report(&app, &t, &id).await["status"], "paused");
    let (s, v) = app
        .post(&format!("/campaigns/{id}/resume"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["released"], 40);
    tick(&app).await;
    app.drain().await;
    tick(&app).await;
    let campaign_sends: Vec<_> = app.sent()[before..].to_vec();
    assert_eq!(campaign_sends.len(), 60);
    let mut phones: Vec<_> = campaign_sends.iter().map(|s| s.0.clone()).collect();
    phones.sort();
    phones.dedup();
    assert_eq!(phones.len(), 60, "each phone exactly once");
    assert_eq!(report(&app, &t, &id).await["status"], "finished");
}

#[tokio::test]
async fn unsold_estimate_follow_ups_go_on_their_days_and_stop_when_sold() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let other = app.customer(&t, "Luis", "5125550178", true, true).await;
    let id = campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Hi {first_name}, your estimate is ready to book", "schedule": {"days_after": [2, 7]}})).await;
    let (s, e1) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": c, "amount_cents": 120000, "status": "unsold"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e1}");
    let (_, e2) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": other, "amount_cents": 9900}),
        )
        .await;
    tick(&app).await;
    app.clock.advance(Duration::days(1));
    tick(&app).await;
    app.drain().await;
    assert!(app.sent().is_empty());
    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent().len(), 2, "day 2 for both");
    assert_eq!(
        app.sent_to(PHONE)[0].2,
        "Hi Dana, your estimate is ready to book"
    );
    let (s, _) = app
        .call(
            "PATCH",
            &format!("/estimates/{}", e2["id"].as_str().unwrap()),
            &t.key,
            Some(json!({"status": "sold"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.clock.advance(Duration::days(5));
    tick(&app).await;
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 2, "day 7 for the unsold one");
    assert_eq!(
        app.sent_to("+15125550178").len(),
        1,
        "nothing after it was sold"
    );
    assert_eq!(report(&app, &t, &id).await["status"], "active");
    let _ = e1;
}

#[tokio::test]
async fn steps_already_due_at_start_go_if_recent_and_are_skipped_if_too_late() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let created = (noon() - Duration::days(20)).to_rfc3339();
    app.post(
        "/estimates",
        &t.key,
        json!({"customer_id": c, "amount_cents": 5000, "created_at": created}),
    )
    .await;
    let id = campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Still thinking it over?", "schedule": {"days_after": [2, 14, 30]}})).await;
    tick(&app).await;
    app.drain().await;
    // Day 2 fell due 18 days ago: too late. Day 14, 6 days ago: goes now. Day 30: later.
    assert_eq!(app.sent_to(PHONE).len(), 1);
    let (_, log) = app
        .get(&format!("/campaigns/{id}/recipients?limit=1000"), &t.key)
        .await;
    // The send log comes a page at a time; one page holds all of this one.
    let log = log["recipients"].clone();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .any(|r| r["status"] == "skipped" && r["reason"] == "too_late")
    );
    app.clock.advance(Duration::days(10));
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 2);
}

/// A dismissed estimate stops its follow-ups like a sold one; an unknown status is
/// refused by name and changes nothing.
#[tokio::test]
async fn a_dismissed_estimate_gets_no_more_follow_ups() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Ready to book?", "schedule": {"days_after": [1, 3]}})).await;
    let (_, e) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": c, "amount_cents": 100}),
        )
        .await;
    let path = format!("/estimates/{}", e["id"].as_str().unwrap());
    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1, "day 1");
    let (s, v) = app
        .call("PATCH", &path, &t.key, Some(json!({"status": "lost"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("status"),
        "{v}"
    );
    let (s, v) = app
        .call("PATCH", &path, &t.key, Some(json!({"status": "dismissed"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock.advance(Duration::days(3));
    tick(&app).await;
    app.drain().await;
    assert_eq!(
        app.sent_to(PHONE).len(),
        1,
        "nothing after it was dismissed"
    );
}

/// Estimates that reach Assent late (an old one posted today) never release a backlog:
/// steps more than a week old are too late; those due within the week go, as the spec's
/// catch-up rule says.
#[tokio::test]
async fn late_data_sends_only_the_steps_of_the_last_week() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let id = campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Still thinking it over?", "schedule": {"days_after": [2, 7, 14]}})).await;
    tick(&app).await;
    for days_ago in [60, 8] {
        let (s, v) = app
            .post(
                "/estimates",
                &t.key,
                json!({"customer_id": c, "amount_cents": 5000, "created_at": (app.app.clock.now() - Duration::days(days_ago)).to_rfc3339()}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    tick(&app).await;
    app.drain().await;
    assert_eq!(
        app.sent_to(PHONE).len(),
        2,
        "days 2 and 7 of the recent one, nothing older"
    );
    let (_, log) = app
        .get(&format!("/campaigns/{id}/recipients?limit=1000"), &t.key)
        .await;
    // The send log comes a page at a time; one page holds all of this one.
    let log = log["recipients"].clone();
    let reasons = |log: &Value| {
        let mut r: Vec<String> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}:{}", r["status"], r["reason"]))
            .collect();
        r.sort();
        r
    };
    // The 60-day-old estimate: all three too late. The 8-day-old one: days 2 and 7 fell
    // due within the week and go; day 14 is still ahead.
    assert_eq!(
        reasons(&log),
        vec![
            "\"delivered\":null",
            "\"delivered\":null",
            "\"skipped\":\"too_late\"",
            "\"skipped\":\"too_late\"",
            "\"skipped\":\"too_late\"",
        ],
        "{log}"
    );
    app.clock.advance(Duration::days(6) + Duration::minutes(1));
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 3, "day 14 goes on its day");
}

/// A missed call reported hours late gets no "sorry we missed you" text.
#[tokio::test]
async fn a_missed_call_reported_late_gets_no_text_back() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let id = campaign(&app, &t, json!({"name": "Missed calls", "type": "missed_calls", "body": "Sorry we missed your call!"})).await;
    let at = (app.app.clock.now() - Duration::hours(3)).to_rfc3339();
    let (s, v) = app
        .post(
            "/calls",
            &t.key,
            json!({"from": "5125550190", "to": TX, "status": "missed", "at": at}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.drain().await;
    assert!(app.sent_to("+15125550190").is_empty());
    let (_, log) = app
        .get(&format!("/campaigns/{id}/recipients?limit=1000"), &t.key)
        .await;
    // The send log comes a page at a time; one page holds all of this one.
    let log = log["recipients"].clone();
    assert_eq!(log[0]["reason"], "too_late", "{log}");
    // A call from the same caller reported in time, the same day, still gets its text-back.
    let (_, v) = app
        .post(
            "/calls",
            &t.key,
            json!({"from": "5125550190", "to": TX, "status": "missed"}),
        )
        .await;
    assert_eq!(v["text_back_queued"], true, "{v}");
    app.drain().await;
    assert_eq!(app.sent_to("+15125550190").len(), 1);
    // Within the hour it is still worth it.
    let at = (app.app.clock.now() - Duration::minutes(20)).to_rfc3339();
    app.post(
        "/calls",
        &t.key,
        json!({"from": "5125550191", "to": TX, "status": "missed", "at": at}),
    )
    .await;
    app.drain().await;
    assert_eq!(app.sent_to("+15125550191").len(), 1);
}

#[tokio::test]
async fn recurring_service_reminders_go_on_the_days_before_the_due_date() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    // Due 2026-03-14; 10:00 CST that day is 16:00 UTC.
    let (s, v) = app
        .post(
            "/recurring-services",
            &t.key,
            json!({"customer_id": c, "name": "AC maintenance", "due_on": "2026-03-14"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    campaign(&app, &t, json!({"name": "Maintenance", "type": "recurring_services", "body": "{first_name}, your AC maintenance is due soon", "schedule": {"days_before": [7, 1]}})).await;
    tick(&app).await;
    assert!(app.sent().is_empty());
    // 7 days before: 2026-03-07 16:00 UTC.
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 7, 16, 0, 30).unwrap());
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    assert_eq!(
        app.sent_to(PHONE)[0].2,
        "Dana, your AC maintenance is due soon"
    );
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 13, 16, 0, 30).unwrap());
    tick(&app).await;
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 2);
}

#[tokio::test]
async fn a_missed_call_gets_one_text_back_per_caller_per_day() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    campaign(&app, &t, json!({"name": "Missed calls", "type": "missed_calls", "body": "Sorry we missed your call! Reply here or we will call you back."})).await;
    let call = |from: &'static str| {
        app.post(
            "/calls",
            &t.key,
            json!({"from": from, "to": TX, "status": "missed"}),
        )
    };
    let (s, v) = call("5125550190").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["text_back_queued"], true);
    let (_, v) = call("5125550190").await;
    assert_eq!(v["text_back_queued"], false, "once per caller per day");
    let (_, v) = app
        .post(
            "/calls",
            &t.key,
            json!({"from": "5125550191", "to": TX, "status": "answered"}),
        )
        .await;
    assert_eq!(v["text_back_queued"], false);
    app.drain().await;
    let sent = app.sent_to("+15125550190");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, TX);
    app.clock.advance(Duration::days(1));
    let (_, v) = call("5125550190").await;
    assert_eq!(v["text_back_queued"], true);
    // A caller who opted out gets nothing.
    app.inbound("+15125550192", TX, "STOP").await;
    let (_, v) = call("5125550192").await;
    assert_eq!(v["text_back_queued"], true, "recorded, as skipped");
    app.drain().await;
    let sent = app.sent_to("+15125550192");
    assert_eq!(sent.len(), 1, "only the STOP confirmation");
    assert!(sent[0].2.contains("unsubscribed"));
}

#[tokio::test]
async fn a_follow_up_held_overnight_is_withdrawn_when_the_estimate_is_sold() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Ready to book?", "schedule": {"days_after": [1]}})).await;
    // Created at 21:30 Austin time: the day-1 step falls due at 21:30 the next day, in quiet hours.
    app.clock
        .set(noon() + Duration::hours(9) + Duration::minutes(30));
    let (_, e) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": c, "amount_cents": 100}),
        )
        .await;
    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    tick(&app).await;
    let held = app.messages(&t, PHONE).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["status"], "deferred", "{:?}", held[0]);
    let (s, _) = app
        .call(
            "PATCH",
            &format!("/estimates/{}", e["id"].as_str().unwrap()),
            &t.key,
            Some(json!({"status": "sold"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let m = &app.messages(&t, PHONE).await[0];
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("blocked"), Some("estimate_closed"))
    );
    app.clock.advance(Duration::hours(12));
    app.drain().await;
    assert!(app.sent_to(PHONE).is_empty());
}

/// Walks an audience page by page, as a fan-out does.
async fn walk(app: &TestApp, t: &Tenant, tags: &[String], limit: usize) -> Vec<(String, String)> {
    let now = app.app.clock.now();
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = app
            .app
            .store
            .audience_page(&t.id, tags, after.as_ref(), limit, now)
            .await
            .unwrap();
        for (m, _) in &page.members {
            seen.push((
                m.phone.as_str().to_string(),
                m.name.clone().unwrap_or_default(),
            ));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn audience_pages_hold_every_phone_once_whatever_their_size() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    // Created in this order: the oldest tagged customer names a shared phone.
    let people = [
        ("Ann", "+17375550201", true),
        ("Bob", "+17375550201", false),
        ("Cara", "+17375550202", true),
        ("Dan", "+17375550202", true),
        ("Eve", "+17375550203", false),
        ("Fay", "+17375550204", true),
        ("Gus", "+17375550200", true),
        ("Hal", "+17375550205", true),
    ];
    for (i, (name, phone, vip)) in people.iter().enumerate() {
        app.clock.advance(Duration::seconds(1));
        let tags = if *vip {
            json!(["vip"])
        } else {
            json!(["other"])
        };
        let (s, v) = app
            .post(
                "/customers",
                &t.key,
                json!({"name": name, "tags": tags, "phones": [{"number": phone, "job_notifications": i != 1, "marketing_updates": true}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let expected: Vec<(String, String)> = [
        ("+17375550200", "Gus"),
        ("+17375550201", "Ann"),
        ("+17375550202", "Cara"),
        ("+17375550204", "Fay"),
        ("+17375550205", "Hal"),
    ]
    .iter()
    .map(|(p, n)| (p.to_string(), n.to_string()))
    .collect();
    let vip = vec!["vip".to_string()];
    for limit in [1, 2, 3, 4, 100] {
        assert_eq!(
            walk(&app, &t, &vip, limit).await,
            expected,
            "pages of {limit}"
        );
    }
    // A phone's toggles combine over all its records, tagged or not: Bob's record has job
    // notifications off.
    let page = app
        .app
        .store
        .audience_page(&t.id, &vip, None, 100, app.app.clock.now())
        .await
        .unwrap();
    let (_, ann) = &page.members[1];
    assert!(ann.toggles.on_a_record && !ann.toggles.job_notifications);
    assert!(page.members[2].1.toggles.job_notifications);

    // Without tags: every phone opted in to marketing, on a record or not.
    for phone in ["+17375550202", "+17375550199", "+17375550205"] {
        app.inbound(
            phone,
            MK,
            "I would like to sign up for marketing text messages!",
        )
        .await;
    }
    for limit in [1, 2, 100] {
        let got: Vec<String> = walk(&app, &t, &[], limit)
            .await
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            got,
            vec!["+17375550199", "+17375550202", "+17375550205"],
            "pages of {limit}"
        );
    }
}

#[tokio::test]
async fn a_pause_during_the_fan_out_holds_what_it_queues_afterwards() {
    let app = TestApp::spawn().await;
    let (t, before, id) = flash_sale(&app, 12).await;
    // One phone per page; pause as soon as the first page is recorded.
    let runner = {
        let app = app.app.clone();
        tokio::spawn(async move { assent_server::campaigns::tick_paged(&app, 1).await })
    };
    while app.app.store.send_log(&t.id, &id).await.unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    let (s, v) = app
        .post(&format!("/campaigns/{id}/pause"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    runner.await.unwrap().unwrap();
    // Every phone recorded; while paused no message is composed (they stay queued in
    // the log) and none that was is let out.
    let log = app.app.store.send_log(&t.id, &id).await.unwrap();
    assert_eq!(log.len(), 12, "{log:?}");
    assert!(
        log.iter()
            .all(|r| r.status == "deferred" || (r.status == "queued" && r.message_id.is_none())),
        "everything held or not yet composed: {log:?}"
    );
    assert_eq!(report(&app, &t, &id).await["status"], "paused");
    assert_eq!(assent_server::campaigns::tick(&app.app).await.unwrap(), 0);
    app.drain().await;
    assert_eq!(app.sent().len(), before, "nothing leaves while paused");
    let log = app.app.store.send_log(&t.id, &id).await.unwrap();
    assert!(log.iter().all(|r| r.status != "sent"), "{log:?}");
    let (s, _) = app
        .post(&format!("/campaigns/{id}/resume"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // The runner composes the rest on its next tick.
    assent_server::campaigns::tick(&app.app).await.unwrap();
    app.drain().await;
    assert_eq!(app.sent().len() - before, 12);
}

/// A fan-out records its whole audience at once and composes the messages a page a tick:
/// the rest stay queued in the log, without a message, and count as queued until then.
#[tokio::test]
async fn a_fan_out_records_everyone_and_composes_a_page_a_tick() {
    let app = TestApp::spawn().await;
    let (t, before, id) = flash_sale(&app, 5).await;
    let composed =
        |log: &[assent_store::SendLogRow]| log.iter().filter(|r| r.message_id.is_some()).count();
    assert_eq!(
        assent_server::campaigns::tick_paged(&app.app, 2)
            .await
            .unwrap(),
        5
    );
    let log = app.app.store.send_log(&t.id, &id).await.unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(composed(&log), 2, "{log:?}");
    assert!(log.iter().all(|r| r.status == "queued"), "{log:?}");
    let v = report(&app, &t, &id).await;
    assert_eq!(v["counts"]["queued"], 5, "{v}");
    assert_eq!(v["status"], "sending");
    // Sent as composed; the campaign is not finished while any is left to compose.
    app.drain().await;
    assert_eq!(app.sent().len() - before, 2);
    for expected in [4, 5] {
        assert_eq!(
            assent_server::campaigns::tick_paged(&app.app, 2)
                .await
                .unwrap(),
            0
        );
        let log = app.app.store.send_log(&t.id, &id).await.unwrap();
        assert_eq!(composed(&log), expected, "{log:?}");
        assert_eq!(report(&app, &t, &id).await["status"], "sending");
        app.drain().await;
    }
    assert_eq!(app.sent().len() - before, 5);
    assent_server::campaigns::tick_paged(&app.app, 2)
        .await
        .unwrap();
    let v = report(&app, &t, &id).await;
    assert_eq!(v["status"], "finished", "{v}");
    let out = |v: &Value| {
        v["counts"]["sent"].as_u64().unwrap() + v["counts"]["delivered"].as_u64().unwrap()
    };
    assert_eq!(out(&v), 5, "{v}");
    assert_eq!(v["recipients"], 5, "{v}");
}

/// A STOP between the fan-out and the composing of its phone's message: the gate, asked
/// again when the message is composed, makes it a skip; nothing is sent to that phone.
#[tokio::test]
async fn a_stop_before_its_message_is_composed_skips_the_phone() {
    let app = TestApp::spawn().await;
    let (t, before, id) = flash_sale(&app, 3).await;
    assent_server::campaigns::tick_paged(&app.app, 1)
        .await
        .unwrap();
    let log = app.app.store.send_log(&t.id, &id).await.unwrap();
    let waiting: Vec<String> = log
        .iter()
        .filter(|r| r.message_id.is_none())
        .map(|r| r.phone.as_str().to_string())
        .collect();
    assert_eq!(waiting.len(), 2, "{log:?}");
    app.inbound(&waiting[0], MK, "STOP").await;
    app.drain().await;
    for _ in 0..3 {
        assent_server::campaigns::tick_paged(&app.app, 1)
            .await
            .unwrap();
        app.drain().await;
    }
    let log = app.app.store.send_log(&t.id, &id).await.unwrap();
    let stopped = log.iter().find(|r| r.phone.as_str() == waiting[0]).unwrap();
    assert_eq!(stopped.status, "skipped", "{log:?}");
    assert!(stopped.message_id.is_none(), "{log:?}");
    let campaign_texts: Vec<_> = app.sent()[before..]
        .iter()
        .filter(|(_, _, body)| body.contains("Flash sale"))
        .cloned()
        .collect();
    assert_eq!(campaign_texts.len(), 2, "{campaign_texts:?}");
    assert!(campaign_texts.iter().all(|(to, _, _)| to != &waiting[0]));
    let v = report(&app, &t, &id).await;
    assert_eq!(v["counts"]["skipped"], 1, "{v}");
    assert_eq!(v["skipped_by_reason"]["opted_out"], 1, "{v}");
    let out = v["counts"]["sent"].as_u64().unwrap() + v["counts"]["delivered"].as_u64().unwrap();
    assert_eq!(out, 2, "{v}");
    assert_eq!(v["counts"]["queued"], 0, "{v}");
    assert_eq!(v["status"], "finished", "{v}");
}

/// The fan-out's page written after a pause, as the store records it: held in the same
/// write, so no claim can take it in between.
#[tokio::test]
async fn a_page_written_while_paused_is_held_in_the_same_write() {
    let app = TestApp::spawn().await;
    let (t, before, id) = flash_sale(&app, 3).await;
    let (s, v) = app
        .post(&format!("/campaigns/{id}/pause"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let tenant = app.app.store.tenant(&t.id).await.unwrap().unwrap();
    let now = app.app.clock.now();
    let to = assent_core::phone::E164::parse("+17375550001").unwrap();
    let message = assent_server::service::outbound_message(
        assent_server::service::Outbound {
            tenant: &tenant,
            channel: assent_core::consent::Channel::Marketing,
            to: &to,
            body: "Flash sale today".into(),
            kind: assent_store::MessageKind::Campaign,
            purpose: assent_core::gate::Purpose::Marketing,
            idempotency_key: None,
        },
        assent_core::gate::Decision::Allow,
        now,
    )
    .unwrap();
    let recipient = assent_store::Recipient {
        campaign_id: id.clone(),
        step: "send".into(),
        phone: to.clone(),
        message: Some(message),
        skip_reason: None,
        created_at: now,
    };
    assert_eq!(
        app.app
            .store
            .add_recipients(&t.id, &[recipient])
            .await
            .unwrap(),
        1
    );
    let log = app.app.store.send_log(&t.id, &id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].status.as_str(), log[0].reason.as_deref()),
        ("deferred", Some("campaign_paused")),
        "{log:?}"
    );
    app.drain().await;
    assert_eq!(app.sent().len(), before, "nothing leaves while paused");
    let (s, v) = app
        .post(&format!("/campaigns/{id}/resume"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["released"], 1, "{v}");
}

/// A resume whose release comes after a second pause releases nothing, and the runner's
/// status moves never undo a pause.
#[tokio::test]
async fn a_late_release_or_runner_step_does_not_undo_a_pause() {
    let app = TestApp::spawn().await;
    let (t, before, id) = flash_sale(&app, 5).await;
    tick(&app).await;
    let (s, v) = app
        .post(&format!("/campaigns/{id}/pause"), &t.key, json!({}))
        .await;
    assert_eq!((s, v["held"].clone()), (StatusCode::OK, json!(5)), "{v}");
    // A resume moves the status ...
    use assent_store::CampaignStatus::*;
    assert!(
        app.app
            .store
            .move_campaign(&t.id, &id, Paused, Sending, Some(app.app.clock.now()))
            .await
            .unwrap()
    );
    // ... a second pause comes before its release ...
    let (s, v) = app
        .post(&format!("/campaigns/{id}/pause"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // ... and the release, late, finds the campaign paused again.
    let released = app
        .app
        .store
        .hold_campaign(&t.id, &id, false, app.app.clock.now())
        .await
        .unwrap();
    assert_eq!(released, 0);
    // The runner's moves only go from the status they expect.
    for (from, to) in [(Scheduled, Sending), (Sending, Finished)] {
        assert!(
            !app.app
                .store
                .move_campaign(&t.id, &id, from, to, None)
                .await
                .unwrap()
        );
    }
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent().len(), before, "nothing leaves while paused");
    assert_eq!(report(&app, &t, &id).await["status"], "paused");
}

async fn import_to(app: &TestApp, t: &Tenant, what: &str, csv: &str) -> Value {
    let r = app
        .client
        .post(format!("{}/api/v1/imports/{what}", app.base))
        .bearer_auth(&t.key)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn rejected_lines(v: &Value) -> Vec<u64> {
    v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect()
}

/// Estimates arrive by CSV too: matched to customers by phone, keyed by their number, so a
/// second import of the same file adds nothing and a later one that says "sold" stops the
/// follow-ups.
#[tokio::test]
async fn estimates_imported_from_csv_get_follow_ups_until_a_reimport_says_sold() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Ready to book?", "schedule": {"days_after": [1, 3]}})).await;
    let csv = "number,phone,amount,status\r\n\
        E-100,512-555-0142,\"$1,250.50\",unsold\r\n\
        E-101,(512) 555-0142,80,sold\r\n\
        E-102,555-0000,10,\r\n\
        E-103,512-555-0142,ten,\r\n\
        E-104,512-555-0199,10,\r\n\
        E-105,512-555-0142,10,lost\r\n";
    let v = import_to(&app, &t, "estimates", csv).await;
    assert_eq!(
        (v["created"].as_u64(), v["updated"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    assert_eq!(rejected_lines(&v), vec![4, 5, 6, 7], "{v}");
    let errors: Vec<&str> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].starts_with("phone"), "{errors:?}");
    assert!(errors[1].starts_with("amount"), "{errors:?}");
    assert!(errors[2].contains("no customer record"), "{errors:?}");
    assert!(errors[3].starts_with("status"), "{errors:?}");
    let again = import_to(&app, &t, "estimates", csv).await;
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );

    app.clock.advance(Duration::days(1) + Duration::minutes(1));
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1, "day 1 for the unsold one only");
    let v = import_to(
        &app,
        &t,
        "estimates",
        "number,phone,amount,status\nE-100,5125550142,1250.50,sold\n",
    )
    .await;
    assert_eq!(v["updated"], 1, "{v}");
    app.clock.advance(Duration::days(2));
    tick(&app).await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1, "no day 3 once sold");

    // An estimate posted through the API with a number is the one a file names.
    let (s, v) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": c, "number": "E-200", "amount_cents": 100}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, dup) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": c, "number": "E-200", "amount_cents": 100}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    let marked = import_to(
        &app,
        &t,
        "estimates",
        "number,phone,amount,status\nE-200,5125550142,1,sold\n",
    )
    .await;
    assert_eq!(
        (marked["updated"].as_u64(), marked["created"].as_u64()),
        (Some(1), Some(0)),
        "{marked}"
    );

    let v = import_to(&app, &t, "estimates", "number,amount\nE-1,10\n").await;
    assert_eq!(
        rejected_lines(&v),
        vec![1],
        "no phone or customer_id column: {v}"
    );
}

#[tokio::test]
async fn recurring_services_and_calls_import_once() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    campaign(&app, &t, json!({"name": "Missed calls", "type": "missed_calls", "body": "Sorry we missed your call!"})).await;
    let csv = format!(
        "customer_id,name,due_on\n{c},AC maintenance,2026-04-01\n{c},Furnace check,April 1\nnobody,AC maintenance,2026-04-01\n"
    );
    let v = import_to(&app, &t, "recurring-services", &csv).await;
    assert_eq!(v["created"], 1, "{v}");
    assert_eq!(rejected_lines(&v), vec![3, 4], "{v}");
    let v = import_to(&app, &t, "recurring-services", &csv).await;
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );

    let now = app.app.clock.now();
    let calls = format!(
        "from,to,status,at\n\
         5125550190,{TX},missed,{}\n\
         5125550191,{TX},answered,{}\n\
         5125550192,{TX},missed,{}\n\
         5125550193,{TX},hung up,{}\n",
        (now - Duration::minutes(5)).to_rfc3339(),
        (now - Duration::minutes(5)).to_rfc3339(),
        (now - Duration::hours(3)).to_rfc3339(),
        now.to_rfc3339(),
    );
    let v = import_to(&app, &t, "calls", &calls).await;
    assert_eq!(v["created"], 3, "{v}");
    assert_eq!(rejected_lines(&v), vec![5], "{v}");
    app.drain().await;
    assert_eq!(
        app.sent_to("+15125550190").len(),
        1,
        "a recent missed call is texted back"
    );
    assert!(app.sent_to("+15125550191").is_empty(), "answered");
    assert!(app.sent_to("+15125550192").is_empty(), "three hours late");
    let v = import_to(&app, &t, "calls", &calls).await;
    assert_eq!(
        (v["created"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{v}"
    );
    app.drain().await;
    assert_eq!(app.sent_to("+15125550190").len(), 1, "not twice");
}

/// A marketing campaign sent before dawn everywhere: each phone is held by quiet hours and
/// the report says until when, per phone, by where the phone may be (its area code and the
/// customer's address together, and that state's own window).
#[tokio::test]
async fn a_campaign_held_by_quiet_hours_reports_each_phones_deferred_until() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let utc = |h, m| {
        use chrono::TimeZone;
        chrono::Utc.with_ymd_and_hms(2026, 3, 5, h, m, 0).unwrap()
    };
    // (phone, address, when it may go). Thursday 5 March 2026, standard time everywhere.
    let audience: &[(&str, Option<&str>, chrono::DateTime<chrono::Utc>)] = &[
        ("+12125550101", None, utc(13, 0)), // New York: 08:00 EST
        ("+12035550102", None, utc(14, 0)), // Connecticut: 09:00 EST
        ("+15125550103", None, utc(15, 0)), // Texas: 09:00 CST
        ("+16025550104", None, utc(15, 0)), // Arizona: 08:00 MST
        ("+12135550105", None, utc(16, 0)), // Los Angeles: 08:00 PST
        ("+14485550106", None, utc(14, 0)), // 448 over 850: 08:00 CST, the later of its zones
        // A New York number at a Los Angeles address: 08:00 in Los Angeles.
        (
            "+12125550107",
            Some("6801 Hollywood Blvd, Los Angeles, CA 90028"),
            utc(16, 0),
        ),
        // 679 (Detroit) is newer than the table: the address's zones (Ohio: Eastern)…
        (
            "+16795550108",
            Some("1 Government Center, Toledo, OH 43604"),
            utc(13, 0),
        ),
        // (Michigan's Upper Peninsula keeps Central time: 08:00 CST.)
        (
            "+16795550110",
            Some("2 Woodward Ave, Detroit, MI 48226"),
            utc(14, 0),
        ),
        // …else the tenant's (Chicago): 08:00 CST.
        ("+16795550109", None, utc(14, 0)),
    ];
    for (i, (phone, address, _)) in audience.iter().enumerate() {
        let (s, v) = app
            .post(
                "/customers",
                &t.key,
                json!({"name": format!("Customer {i}"), "address": address, "tags": ["dawn"],
                       "phones": [{"number": phone, "job_notifications": true, "marketing_updates": true}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        app.inbound(
            phone,
            MK,
            "I would like to sign up for marketing text messages!",
        )
        .await;
    }
    app.drain().await;
    // 12:30 UTC: 07:30 in New York, 05:30 in Phoenix, 04:30 in Los Angeles.
    app.clock.set(utc(12, 30));
    let id = campaign(&app, &t, json!({"name": "Dawn", "type": "marketing", "body": "Spring sale", "audience": {"tags": ["dawn"]}})).await;
    tick(&app).await;
    let (s, log) = app
        .get(&format!("/campaigns/{id}/recipients?limit=1000"), &t.key)
        .await;
    // The send log comes a page at a time; one page holds all of this one.
    let log = log["recipients"].clone();
    assert_eq!(s, StatusCode::OK, "{log}");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), audience.len(), "{log:?}");
    for (phone, _, until) in audience {
        let row = log.iter().find(|r| r["phone"] == *phone).unwrap();
        assert_eq!(
            (row["status"].as_str(), row["reason"].as_str()),
            (Some("deferred"), Some("quiet_hours")),
            "{row}"
        );
        let got: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(row["deferred_until"].clone()).unwrap();
        assert_eq!(got, *until, "{phone}");
        // GET /messages says the same.
        let m = app.messages(&t, phone).await;
        let held = m.iter().find(|m| m["kind"] == "campaign").unwrap();
        assert_eq!(held["status"], "deferred");
        assert_eq!(held["deferred_until"], row["deferred_until"], "{phone}");
    }
    // At 13:00 only the phones whose time has come go.
    app.clock.set(utc(13, 0));
    app.drain().await;
    for (phone, _, until) in audience {
        let got_campaign = app
            .sent_to(phone)
            .iter()
            .any(|s| s.2.starts_with("Acme Plumbing: Spring sale"));
        assert_eq!(got_campaign, *until <= utc(13, 0), "{phone}");
    }
    // The web report shows when, in the tenant's zone and the customer's.
    let (s, v) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Idle means idle: the background runner loads a tenant's estimates (or recurring
/// services) only when a step it saw coming falls due or one was saved since, not on every
/// tick. `Runner::passes` counts those loads.
#[tokio::test]
async fn an_idle_runner_does_not_reload_every_estimate() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    campaign(&app, &t, json!({"name": "Estimates", "type": "unsold_estimates", "body": "Ready to book?", "schedule": {"days_after": [2, 7]}})).await;
    campaign(&app, &t, json!({"name": "Tune-ups", "type": "recurring_services", "body": "Tune-up due soon", "schedule": {"days_before": [3]}})).await;
    for i in 0..20 {
        let (s, v) = app
            .post(
                "/estimates",
                &t.key,
                json!({"customer_id": c, "amount_cents": 1000 + i}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let due_on = (noon() + Duration::days(30)).date_naive().to_string();
    let (s, v) = app
        .post(
            "/recurring-services",
            &t.key,
            json!({"customer_id": c, "name": "AC tune-up", "due_on": due_on}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut runner = assent_server::campaigns::Runner::default();
    assert_eq!(runner.tick(&app.app).await.unwrap(), 0);
    assert_eq!(runner.passes, 2, "a first pass over each campaign");
    for _ in 0..5 {
        app.clock.advance(Duration::minutes(1));
        assert_eq!(runner.tick(&app.app).await.unwrap(), 0);
    }
    assert_eq!(runner.passes, 2, "idle ticks load nothing");

    // The first follow-ups fall due: a pass, which records them all (the services
    // campaign is passed over again too, its ten-minute refresh being long gone).
    app.clock.advance(Duration::days(2));
    assert_eq!(runner.tick(&app.app).await.unwrap(), 20);
    assert_eq!(runner.passes, 4);
    runner.tick(&app.app).await.unwrap();
    assert_eq!(runner.passes, 4, "nothing more due until day 7");

    // A new estimate is seen at the next tick, whichever process saved it.
    let (s, _) = app
        .post(
            "/estimates",
            &t.key,
            json!({"customer_id": c, "amount_cents": 5000, "created_at": (noon() - Duration::days(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        runner.tick(&app.app).await.unwrap(),
        1,
        "its day-2 step is due"
    );
    assert_eq!(
        runner.passes, 6,
        "both campaigns: the version is the tenant's"
    );
    let passes = runner.passes;
    runner.tick(&app.app).await.unwrap();
    assert_eq!(runner.passes, passes);

    // The service's reminder, 3 days before its date, falls due in its turn.
    app.clock.advance(Duration::days(25));
    assert!(runner.tick(&app.app).await.unwrap() >= 1);
    assert!(
        app.messages(&t, PHONE)
            .await
            .iter()
            .any(|m| m["body"] == "Tune-up due soon"),
        "the tune-up reminder is queued"
    );
}
