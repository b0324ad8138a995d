//! Durable delivery: retries that cannot double a message, the real Twilio client against a
//! local fake of its API, status callbacks and carrier errors.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use crate::common::*;
use assent_provider::twilio::{Twilio, TwilioConfig};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn message(app: &TestApp, t: &Tenant, id: &str) -> serde_json::Value {
    let (s, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK);
    m
}

/// What the simulated carrier does with the tenant's texts to [`PHONE`].
async fn behave(app: &TestApp, t: &Tenant, behavior: &str) {
    app.put(
        &format!("/simulator/numbers/{PHONE}"),
        &t.key,
        json!({ "behavior": behavior }),
    )
    .await;
}

async fn send_job(app: &TestApp, t: &Tenant) -> String {
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "On our way"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// A signed status callback for a message sent from the test tenant's number (`TX`).
async fn status_callback(
    app: &TestApp,
    sid: &str,
    status: &str,
    error: Option<&str>,
) -> StatusCode {
    status_callback_from(app, Some(TX), sid, status, error)
        .await
        .0
}

/// A signed status callback as Twilio sends it, `From` the sender's number (left out when
/// `None`); the status and the body of the answer.
async fn status_callback_from(
    app: &TestApp,
    from: Option<&str>,
    sid: &str,
    status: &str,
    error: Option<&str>,
) -> (StatusCode, String) {
    let url = format!("{}/webhooks/twilio/status", app.base);
    let mut params = vec![
        ("MessageSid".to_string(), sid.to_string()),
        ("MessageStatus".to_string(), status.to_string()),
    ];
    if let Some(f) = from {
        params.push(("From".to_string(), f.to_string()));
        params.push(("To".to_string(), PHONE.to_string()));
    }
    if let Some(e) = error {
        params.push(("ErrorCode".to_string(), e.to_string()));
    }
    let sig = assent_provider::signature::sign(AUTH_TOKEN, &url, &params);
    let r = app
        .client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_hand_off_that_sent_nothing_is_retried_with_backoff_then_sent_once() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    behave(&app, &t, "unavailable").await;
    let id = send_job(&app, &t).await;
    app.drain().await;
    let m = message(&app, &t, &id).await;
    assert_eq!(m["status"], "queued", "{m}");
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .starts_with("provider_unavailable")
    );
    // Not due yet: draining again does nothing.
    app.drain().await;
    assert!(app.sent_to(PHONE).is_empty());
    behave(&app, &t, "deliver").await;
    app.clock.advance(Duration::seconds(5));
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    assert_eq!(message(&app, &t, &id).await["status"], "delivered");
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_the_message_fails_with_the_reason() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    behave(&app, &t, "unavailable").await;
    let id = send_job(&app, &t).await;
    for _ in 0..10 {
        app.drain().await;
        app.clock.advance(Duration::minutes(10));
    }
    let m = message(&app, &t, &id).await;
    assert_eq!(m["status"], "failed");
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("provider_unavailable")
    );
    assert!(app.sent_to(PHONE).is_empty());
}

#[tokio::test]
async fn a_throttled_hand_off_waits_without_using_up_its_attempts() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    behave(&app, &t, "throttled").await;
    let id = send_job(&app, &t).await;
    // Ten throttles: more than the 6 attempts an unavailable provider gets.
    for _ in 0..10 {
        app.drain().await;
        let m = message(&app, &t, &id).await;
        assert_eq!(m["status"], "queued", "{m}");
        assert!(
            m["reason"]
                .as_str()
                .unwrap()
                .starts_with("provider_throttled"),
            "{m}"
        );
        app.clock.advance(Duration::minutes(10));
    }
    assert!(app.sent_to(PHONE).is_empty());
    // The throttles used none of its attempts: 5 refusals still leave it queued.
    behave(&app, &t, "unavailable").await;
    for _ in 0..5 {
        app.drain().await;
        app.clock.advance(Duration::minutes(10));
    }
    assert_eq!(message(&app, &t, &id).await["status"], "queued");
    behave(&app, &t, "deliver").await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    assert_eq!(message(&app, &t, &id).await["status"], "delivered");
}

#[tokio::test]
async fn twilio_receives_the_exact_request_and_its_sid_is_kept() {
    let mut app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/ACtest/Messages.json"))
        .and(body_string_contains("To=%2B15125550142"))
        .and(body_string_contains("From=%2B15125550100"))
        .and(body_string_contains("Body=On+our+way"))
        .and(body_string_contains(format!(
            "StatusCallback={}",
            format!("{}/webhooks/twilio/status", app.base)
                .replace(':', "%3A")
                .replace('/', "%2F")
        )))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"sid": "SMtwilio0001", "status": "queued"})),
        )
        .expect(1)
        .mount(&fake)
        .await;
    app.app.provider = Arc::new(
        Twilio::new(TwilioConfig {
            account_sid: "ACtest".into(),
            auth_token: AUTH_TOKEN.into(),
            api_base: fake.uri(),
            timeout: StdDuration::from_secs(2),
        })
        .unwrap(),
    );
    let id = send_job(&app, &t).await;
    app.drain().await;
    let m = message(&app, &t, &id).await;
    assert_eq!(
        (m["status"].as_str(), m["provider_id"].as_str()),
        (Some("sent"), Some("SMtwilio0001"))
    );

    // Callbacks out of order: delivered first, then a late sent; delivered stays.
    assert!(
        status_callback(&app, "SMtwilio0001", "delivered", None)
            .await
            .is_success()
    );
    assert!(
        status_callback(&app, "SMtwilio0001", "sent", None)
            .await
            .is_success()
    );
    assert_eq!(message(&app, &t, &id).await["status"], "delivered");
    let url = format!("{}/webhooks/twilio/status", app.base);
    let r = app
        .client
        .post(&url)
        .form(&[("MessageSid", "SMtwilio0001"), ("MessageStatus", "failed")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "status callbacks are signed too"
    );
}

#[tokio::test]
async fn an_ambiguous_timeout_is_unknown_and_never_retried() {
    let mut app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_delay(StdDuration::from_millis(600))
                .set_body_json(json!({"sid": "SMslow"})),
        )
        .expect(1)
        .mount(&fake)
        .await;
    app.app.provider = Arc::new(
        Twilio::new(TwilioConfig {
            account_sid: "ACtest".into(),
            auth_token: AUTH_TOKEN.into(),
            api_base: fake.uri(),
            timeout: StdDuration::from_millis(150),
        })
        .unwrap(),
    );
    let id = send_job(&app, &t).await;
    app.drain().await;
    app.clock.advance(Duration::hours(1));
    app.drain().await;
    let m = message(&app, &t, &id).await;
    assert_eq!(m["status"], "unknown", "{m}");
    // `expect(1)` on the fake: verified when it drops.
}

#[tokio::test]
async fn error_21610_from_twilio_opts_out_that_thread() {
    let mut app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})))
        .mount(&fake)
        .await;
    app.app.provider = Arc::new(
        Twilio::new(TwilioConfig {
            account_sid: "ACtest".into(),
            auth_token: AUTH_TOKEN.into(),
            api_base: fake.uri(),
            timeout: StdDuration::from_secs(2),
        })
        .unwrap(),
    );
    let id = send_job(&app, &t).await;
    app.drain().await;
    let m = message(&app, &t, &id).await;
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("failed"), Some("carrier_blocked_21610"))
    );
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["transactional"]["opted_out"], true);
    let last = c["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["source"].as_str(), last["actor"].as_str()),
        (Some("carrier"), Some("carrier"))
    );
}

/// Provider ids are unique per tenant: a status report is matched by its sender's tenant
/// (the `From` number) and the id. A report from another tenant's number that names this
/// tenant's SID changes nothing here; one without `From` is refused, naming the field.
#[tokio::test]
async fn a_status_report_reaches_only_the_senders_tenant() {
    let app = TestApp::spawn().await;
    let (a, _) = app.tenant().await;
    let (s, v) = app
        .post(
            "/tenants",
            ADMIN,
            json!({"name": "Other HVAC", "time_zone": "America/Chicago"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let b_key = v["api_key"].as_str().unwrap().to_string();
    let other = "+15125550300";
    let (s, v) = app
        .put("/senders", &b_key, json!({"transactional": other}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = send_job(&app, &a).await;
    app.drain().await;
    let before = message(&app, &a, &id).await;
    let sid = before["provider_id"].as_str().unwrap().to_string();

    let (s, body) = status_callback_from(&app, None, &sid, "undelivered", Some("30034")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("invalid_field") && body.contains("From"),
        "{body}"
    );
    let (s, body) =
        status_callback_from(&app, Some(other), &sid, "undelivered", Some("30034")).await;
    assert!(s.is_success(), "{s} {body}");
    let after = message(&app, &a, &id).await;
    assert_eq!(
        (after["status"].as_str(), after["reason"].as_str()),
        (before["status"].as_str(), before["reason"].as_str())
    );
    let (_, r) = app.get("/registrations", &a.key).await;
    assert_eq!(r["texting"]["status"], "approved", "{r}");

    // From the tenant's own number, the same report is its.
    assert!(
        status_callback(&app, &sid, "undelivered", Some("30034"))
            .await
            .is_success()
    );
    let (_, r) = app.get("/registrations", &a.key).await;
    assert_eq!(r["texting"]["status"], "rejected", "{r}");
}

#[tokio::test]
async fn error_30034_in_a_callback_stops_the_tenants_sends() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let id = send_job(&app, &t).await;
    app.drain().await;
    let sid = message(&app, &t, &id).await["provider_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        status_callback(&app, &sid, "undelivered", Some("30034"))
            .await
            .is_success()
    );
    let (_, r) = app.get("/registrations", &t.key).await;
    assert_eq!(
        (
            r["texting"]["status"].as_str(),
            r["texting"]["reason"].as_str()
        ),
        (Some("rejected"), Some("carrier_30034"))
    );
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("texting_not_registered")
        )
    );
}

#[tokio::test]
async fn the_simulator_reports_sent_then_delivered_or_failed() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let ok = send_job(&app, &t).await;
    app.customer(&t, "Landline", "5125550111", true, false)
        .await;
    app.put(
        "/simulator/numbers/+15125550111",
        &t.key,
        json!({"behavior": "fail"}),
    )
    .await;
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": "+15125550111", "purpose": "job_notification", "body": "x"}),
        )
        .await;
    let bad = v["id"].as_str().unwrap().to_string();
    app.drain().await;
    assert_eq!(message(&app, &t, &ok).await["status"], "delivered");
    let m = message(&app, &t, &bad).await;
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("failed"), Some("carrier_error_30006"))
    );
}

async fn customers(app: &TestApp, t: &Tenant, n: usize) -> Vec<String> {
    let mut phones = Vec::new();
    for i in 0..n {
        let phone = format!("+1512555{:04}", 7000 + i);
        app.customer(t, &format!("C{i}"), &phone, true, false).await;
        phones.push(phone);
    }
    phones
}

#[tokio::test]
async fn a_senders_pace_holds_work_back_without_dropping_it_and_replies_jump_the_line() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"rate_limits": {"per_sender_per_minute": 60, "per_tenant_per_day": 1000}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let phones = customers(&app, &t, 5).await;
    for p in &phones {
        app.post(
            "/messages",
            &t.key,
            json!({"to": p, "purpose": "job_notification", "body": "Reminder"}),
        )
        .await;
    }
    app.drain().await;
    assert_eq!(app.sent().len(), 1, "60 a minute: one now");
    // A STOP's confirmation is on the priority lane: the pace does not hold it.
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    let (_, held) = app
        .get(
            &format!("/messages?phone={}", phones[4].replace('+', "%2B")),
            &t.key,
        )
        .await;
    let held = &held["messages"][0];
    assert_eq!(
        (held["status"].as_str(), held["reason"].as_str()),
        (Some("deferred"), Some("rate_limited"))
    );
    for _ in 0..4 {
        app.clock.advance(Duration::seconds(1));
        app.drain().await;
    }
    let to_customers = app.sent().into_iter().filter(|s| s.0 != PHONE).count();
    assert_eq!(to_customers, 5, "nothing dropped");
}

/// Sets the tenant's daily cap, with a sender pace that never holds anything back.
async fn daily_cap(app: &TestApp, t: &Tenant, per_day: u32) {
    app.put(
        "/settings",
        &t.key,
        json!({"rate_limits": {"per_sender_per_minute": 6000, "per_tenant_per_day": per_day}}),
    )
    .await;
}

#[tokio::test]
async fn the_daily_cap_per_tenant_defers_the_rest() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    daily_cap(&app, &t, 3).await;
    let phones = customers(&app, &t, 5).await;
    for p in &phones {
        app.post(
            "/messages",
            &t.key,
            json!({"to": p, "purpose": "job_notification", "body": "Reminder"}),
        )
        .await;
    }
    app.drain().await;
    assert_eq!(app.sent().len(), 3);
    app.clock.advance(Duration::hours(25));
    app.drain().await;
    assert_eq!(app.sent().len(), 5);
}

#[tokio::test]
async fn a_hand_off_that_sent_nothing_gives_back_its_count_against_the_daily_cap() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    daily_cap(&app, &t, 1).await;
    let id = send_job(&app, &t).await;
    // Each try sent nothing, so none of them uses up the day's one hand-off: the message
    // is tried again each time rather than deferred to tomorrow.
    for behavior in ["throttled", "unavailable", "throttled"] {
        behave(&app, &t, behavior).await;
        app.drain().await;
        let m = message(&app, &t, &id).await;
        assert_eq!(m["status"], "queued", "{m}");
        app.clock.advance(Duration::minutes(10));
    }
    behave(&app, &t, "deliver").await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    assert_eq!(message(&app, &t, &id).await["status"], "delivered");
}

#[tokio::test]
async fn rate_limit_settings_are_validated() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"rate_limits": {"per_sender_per_minute": 0}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rate_limits.per_sender_per_minute"),
        "{v}"
    );
}

/// STOPs arrive while a large queue to the same numbers drains in the background: once a
/// STOP is acknowledged, nothing but its confirmation reaches the carrier for that number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reaches_the_carrier_after_a_stop_is_acknowledged() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.put(
        "/settings",
        &t.key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;
    let phones = customers(&app, &t, 20).await;
    for round in 0..30 {
        for p in &phones {
            app.post(
                "/messages",
                &t.key,
                json!({"to": p, "purpose": "job_notification", "body": format!("Update {round}")}),
            )
            .await;
        }
    }
    let worker = tokio::spawn(assent_server::dispatch::run(app.app.clone()));
    let mut acked_at = Vec::new();
    for p in phones.iter().step_by(2) {
        assert_eq!(app.inbound(p, TX, "STOP").await, StatusCode::OK);
        // Everything the carrier had for this number when the STOP was acknowledged.
        acked_at.push((p.clone(), app.sent().len()));
        tokio::time::sleep(StdDuration::from_millis(3)).await;
    }
    // Let the queue finish: nothing left queued or being handed off, whatever the backend's
    // speed (the STOPs decide how many messages end up sent rather than blocked).
    for _ in 0..200 {
        let mut left = 0;
        for p in &phones {
            left += assent_store::testing::phone_messages(&*app.app.store, &t.id, &e164(p))
                .await
                .unwrap()
                .iter()
                .filter(|m| {
                    matches!(
                        m.status,
                        assent_store::MessageStatus::Queued
                            | assent_store::MessageStatus::Deferred
                            | assent_store::MessageStatus::Sending
                    )
                })
                .count();
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    worker.abort();
    let sent = app.sent();
    for (phone, seen) in acked_at {
        let after: Vec<_> = sent[seen..]
            .iter()
            .filter(|s| s.0 == phone && !s.2.contains("unsubscribed"))
            .collect();
        assert!(
            after.is_empty(),
            "{phone} got {} messages after its STOP was acknowledged",
            after.len()
        );
    }
    // The numbers that did not STOP got everything.
    for p in phones.iter().skip(1).step_by(2) {
        assert_eq!(sent.iter().filter(|s| &s.0 == p).count(), 30, "{p}");
    }
}

/// A tenant's own reply texts still carry what CTIA expects of their kind; a text that
/// does not is refused by name and nothing changes.
#[tokio::test]
async fn reply_texts_must_keep_what_their_kind_requires() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (_, before) = app.get("/settings", &t.key).await;
    for (key, text, gap) in [
        (
            "opt_in_request",
            "Acme Plumbing: want deals? Reply STOP to opt out.",
            "reply YES",
        ),
        (
            "opt_in_request",
            "Acme Plumbing: Reply YES for deals. Reply STOP to opt out, HELP for help.",
            "recurring",
        ),
        (
            "help",
            "Call us at 512-555-0100. Reply STOP to opt out.",
            "business name",
        ),
        (
            "opt_out",
            "{business}: You are unsubscribed.",
            "resubscribe",
        ),
    ] {
        let (s, v) = app
            .put("/settings", &t.key, json!({"reply_texts": {key: text}}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{key}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("reply_texts.{key}")),
            "{message}"
        );
        assert!(message.contains(gap), "{message}");
    }
    let (_, after) = app.get("/settings", &t.key).await;
    assert_eq!(after, before);
    // Placeholders count as what they stand for.
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"reply_texts": {"opt_out": "{business}: You're out. Reply START to resubscribe."}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Carriers count segments: a text of two segments is two against the daily cap and the
/// pace.
#[tokio::test]
async fn the_daily_cap_and_the_pace_count_segments() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"rate_limits": {"per_sender_per_minute": 6000, "per_tenant_per_day": 5}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let phones = customers(&app, &t, 3).await;
    // 200 GSM characters: two segments.
    let long = "Your technician is on the way. ".repeat(7);
    for p in &phones {
        let (_, v) = app
            .post(
                "/messages",
                &t.key,
                json!({"to": p, "purpose": "job_notification", "body": long}),
            )
            .await;
        assert_eq!(v["segments"], 2, "{v}");
    }
    app.drain().await;
    assert_eq!(
        app.sent().len(),
        2,
        "4 of 5 segments used; a third text would make 6"
    );
    let (_, held) = app
        .get(
            &format!("/messages?phone={}", phones[2].replace('+', "%2B")),
            &t.key,
        )
        .await;
    assert_eq!(held["messages"][0]["reason"], "daily_cap", "{held}");
    app.clock.advance(Duration::hours(25));
    app.drain().await;
    assert_eq!(app.sent().len(), 3);
}

/// 60 segments a minute: a two-segment text takes two seconds of the sender's pace.
#[tokio::test]
async fn the_pace_counts_segments() {
    let app = TestApp::spawn().await;
    let (t2, _) = app.tenant().await;
    let long = "Your technician is on the way. ".repeat(7);
    app.put(
        "/settings",
        &t2.key,
        json!({"rate_limits": {"per_sender_per_minute": 60, "per_tenant_per_day": 1000}}),
    )
    .await;
    let before = app.sent().len();
    let phones = customers(&app, &t2, 2).await;
    for p in &phones {
        app.post(
            "/messages",
            &t2.key,
            json!({"to": p, "purpose": "job_notification", "body": long}),
        )
        .await;
    }
    app.drain().await;
    assert_eq!(app.sent().len(), before + 1);
    app.clock.advance(Duration::seconds(1));
    app.drain().await;
    assert_eq!(
        app.sent().len(),
        before + 1,
        "the second slot of the first text"
    );
    app.clock.advance(Duration::seconds(1));
    app.drain().await;
    assert_eq!(app.sent().len(), before + 2);
}

#[tokio::test]
async fn a_10dlc_preset_sets_both_limits() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for (preset, minute, day) in [
        ("sole_proprietor", 15, 1_000),
        ("low_volume_mixed", 75, 2_000),
        ("standard_low", 240, 10_000),
        ("standard_mid", 2_400, 40_000),
        ("standard_top", 4_500, 200_000),
    ] {
        let (s, v) = app
            .put(
                "/settings",
                &t.key,
                json!({"rate_limits": {"preset": preset}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["rate_limits"],
            json!({"preset": preset, "per_sender_per_minute": minute, "per_tenant_per_day": day})
        );
        // What GET returns can be PUT back as it is.
        let (s, v) = app
            .put(
                "/settings",
                &t.key,
                json!({"rate_limits": v["rate_limits"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"rate_limits": {"preset": "sole_proprietor", "per_sender_per_minute": 100}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rate_limits.per_sender_per_minute"),
        "{v}"
    );
    // Own numbers: no preset.
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"rate_limits": {"per_sender_per_minute": 100, "per_tenant_per_day": 5000}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["rate_limits"],
        json!({"per_sender_per_minute": 100, "per_tenant_per_day": 5000})
    );
}

/// A server whose worker hands off through the real Twilio client to the local fake, which
/// answers each call after `latency` (or holds them all, `paused`); 20 messages to each of
/// 10 numbers are queued and the worker runs in the background.
async fn with_slow_twilio(
    latency: StdDuration,
    paused: bool,
) -> (
    TestApp,
    Tenant,
    assent_server::fake_twilio::Received,
    tokio::task::JoinHandle<()>,
    Vec<String>,
) {
    let mut app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.put(
        "/settings",
        &t.key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;
    let phones = customers(&app, &t, 10).await;
    let (fake, received) = assent_server::fake_twilio::spawn().await.unwrap();
    received.set_latency(latency);
    if paused {
        received.pause();
    }
    app.app.provider = Arc::new(
        Twilio::new(TwilioConfig {
            account_sid: "ACtest".into(),
            auth_token: AUTH_TOKEN.into(),
            api_base: fake,
            timeout: StdDuration::from_secs(15),
        })
        .unwrap(),
    );
    for round in 0..20 {
        for p in &phones {
            let (s, v) = app
                .post(
                    "/messages",
                    &t.key,
                    json!({"to": p, "purpose": "job_notification", "body": format!("Update {round}")}),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        }
    }
    let worker = tokio::spawn(assent_server::dispatch::run(app.app.clone()));
    (app, t, received, worker, phones)
}

/// Waits (on the database, not the clock) until nothing is queued or being handed off.
async fn settled(app: &TestApp, t: &Tenant, phones: &[String]) {
    for _ in 0..3000 {
        let mut left = 0;
        for p in phones {
            left += assent_store::testing::phone_messages(&*app.app.store, &t.id, &e164(p))
                .await
                .unwrap()
                .iter()
                .filter(|m| {
                    matches!(
                        m.status,
                        assent_store::MessageStatus::Queued
                            | assent_store::MessageStatus::Deferred
                            | assent_store::MessageStatus::Sending
                    )
                })
                .count();
        }
        if left == 0 {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    panic!("the queue did not settle");
}

/// STOPs for half the numbers arrive while a batch is with a slow carrier API: once a
/// STOP is answered 200, nothing but its confirmation reaches the carrier for that number,
/// however long each call takes.
async fn nothing_after_the_stop_with_a_provider_taking(latency: StdDuration) {
    let (app, t, received, worker, phones) = with_slow_twilio(latency, false).await;
    // The batch is with the carrier: its first calls have arrived.
    while received.all().is_empty() {
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let app = Arc::new(app);
    let mut stops = Vec::new();
    for p in phones.iter().step_by(2) {
        let (app, received, p) = (app.clone(), received.clone(), p.clone());
        stops.push(tokio::spawn(async move {
            assert_eq!(app.inbound(&p, TX, "STOP").await, StatusCode::OK);
            // Everything the carrier had when the STOP was acknowledged.
            (p, received.all().len())
        }));
    }
    let mut acked = Vec::new();
    for s in stops {
        acked.push(s.await.unwrap());
    }
    settled(&app, &t, &phones).await;
    worker.abort();
    let sent = received.all();
    let mut blocked = 0;
    for (phone, seen) in &acked {
        let after: Vec<_> = sent[*seen..]
            .iter()
            .filter(|(to, body)| to == phone && !body.contains("unsubscribed"))
            .collect();
        assert!(
            after.is_empty(),
            "{phone} got {} messages after its STOP was acknowledged: {after:?}",
            after.len()
        );
        blocked += 20
            - sent
                .iter()
                .filter(|(to, body)| to == phone && !body.contains("unsubscribed"))
                .count();
    }
    // The STOPs came mid-batch: claimed messages were held back at their own call.
    assert!(blocked > 0, "every message went before the STOPs");
    for p in phones.iter().skip(1).step_by(2) {
        assert_eq!(sent.iter().filter(|s| &s.0 == p).count(), 20, "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_after_a_stop_with_a_carrier_answering_in_1_s() {
    nothing_after_the_stop_with_a_provider_taking(StdDuration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_after_a_stop_with_a_carrier_answering_in_3_s() {
    nothing_after_the_stop_with_a_provider_taking(StdDuration::from_secs(3)).await;
}

/// A STOP that comes while a call to its number is held at the carrier API longer than
/// the webhook may wait is answered 5xx, so Twilio retries; the retry (the same
/// MessageSid) is answered 200 only once that call has ended, and nothing follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_is_not_acknowledged_while_a_call_to_its_number_is_held() {
    let (app, t, received, worker, phones) = with_slow_twilio(StdDuration::ZERO, true).await;
    let phone = phones[0].clone();
    let long_ago = noon() - Duration::hours(1);
    for tries in 0.. {
        let started = app
            .app
            .store
            .in_flight(&t.id, &e164(&phone), long_ago)
            .await;
        if started.unwrap() > 0 {
            break;
        }
        assert!(tries < 2000, "no call to {phone} started");
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let stop = [
        ("MessageSid", "SMheldstop0001"),
        ("AccountSid", "ACtest"),
        ("From", phone.as_str()),
        ("To", TX),
        ("Body", "STOP"),
    ];
    assert_eq!(
        app.inbound_with(&stop).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "acknowledged while a message to the number was still with the provider"
    );
    received.resume();
    assert_eq!(app.inbound_with(&stop).await, StatusCode::OK);
    let seen = received.all().len();
    settled(&app, &t, &phones).await;
    worker.abort();
    let after: Vec<_> = received.all()[seen..]
        .iter()
        .filter(|(to, body)| to == &phone && !body.contains("unsubscribed"))
        .cloned()
        .collect();
    assert!(after.is_empty(), "sent after the STOP's 200: {after:?}");
    let stopped = app.messages(&t, &phone).await;
    assert!(
        stopped.iter().any(|m| m["status"] == "blocked"),
        "the messages not yet started were held back"
    );
}
