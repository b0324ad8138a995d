//! Revocation by any reasonable means, as customers and staff produce it: keywords as people
//! type them, free text, reviews that hold and decide themselves, opt-outs recorded by a
//! person or imported, replaced numbers, and consent that needs its disclosure.

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn last_event(c: &Value) -> Value {
    c["events"].as_array().unwrap().last().cloned().unwrap()
}

/// A phone opted in to marketing by the link phrase, sent to the marketing sender.
async fn opted_in(app: &TestApp, phone: &str) {
    app.inbound(
        phone,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    app.drain().await;
}

#[tokio::test]
async fn every_way_people_say_stop_opts_out_on_the_transactional_thread() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let texts = [
        "Quit texting me",
        "I revoke my consent",
        "end texts",
        "STOP STOP",
        "stop!!! 🛑",
        "Stop it",
        "PARAR",
        "Cancelar",
        "BAJA",
        "no más",
        "ARRETER",
        "wrong number",
        "ＳＴＯＰ",
        "STOP\u{0}",
    ];
    for (i, text) in texts.iter().enumerate() {
        let phone = format!("+1512555{:04}", 2000 + i);
        assert_eq!(app.inbound(&phone, TX, text).await, StatusCode::OK);
        let c = app.consent(&t, &phone).await;
        assert_eq!(c["transactional"]["opted_out"], true, "{text:?}: {c}");
        assert_eq!(c["marketing"]["status"], "opted_out", "{text:?}");
    }
    app.drain().await;
    // Each got exactly one confirmation.
    for (i, text) in texts.iter().enumerate() {
        let phone = format!("+1512555{:04}", 2000 + i);
        assert_eq!(app.sent_to(&phone).len(), 1, "{text}");
    }
}

#[tokio::test]
async fn a_spanish_keyword_is_answered_in_spanish_and_sets_the_phones_language() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    app.inbound(PHONE, MK, "Ayuda").await;
    app.drain().await;
    let sent = app.sent_to(PHONE);
    let help = &sent.last().unwrap().2;
    assert!(help.contains("Para ayuda"), "{help}");
    assert_eq!(app.consent(&t, PHONE).await["language"], "es");
    // Marketing to a Spanish-speaking phone carries the Spanish footer.
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "20% de descuento"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert!(
        v["body"]
            .as_str()
            .unwrap()
            .ends_with("Responde STOP para cancelar"),
        "{v}"
    );
    // An English keyword sets it back.
    app.inbound(PHONE, MK, "HELP").await;
    assert_eq!(app.consent(&t, PHONE).await["language"], "en");
    // PARAR on the transactional thread: the confirmation is in Spanish too.
    let other = "+15125550177";
    app.inbound(other, TX, "PARAR").await;
    app.drain().await;
    assert!(app.sent_to(other)[0].2.contains("Te has dado de baja"));
}

#[tokio::test]
async fn wrong_number_opts_out_of_everything_from_any_thread_and_flags_the_phone() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    app.inbound(PHONE, MK, "Sorry, wrong number").await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["transactional"]["opted_out"], true);
    assert_eq!(c["marketing"]["status"], "opted_out");
    assert!(c["possibly_reassigned_since"].is_string(), "{c}");
    assert_eq!(last_event(&c)["evidence"]["rule"], "wrong_number");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "Tech on the way"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "opted_out")
    );
}

#[tokio::test]
async fn ordinary_free_text_is_never_acted_on_nor_held() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    app.inbound(PHONE, MK, "What time is the tech coming?")
        .await;
    app.inbound(PHONE, MK, "sí, el martes").await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_in");
    assert!(c["under_review_until"].is_null());
    let (_, v) = app.get("/reviews", &t.key).await;
    assert!(v["reviews"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn an_open_review_holds_marketing_and_requests_but_not_job_notifications() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    opted_in(&app, PHONE).await;
    let before = app.sent_to(PHONE).len();
    app.inbound(PHONE, MK, "can you stop by Tuesday?").await;
    let consent = app.consent(&t, PHONE).await;
    assert!(consent["under_review_until"].is_string(), "{consent}");

    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Spring sale"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["status"], "deferred", "{v}");
    let marketing_id = v["id"].as_str().unwrap().to_string();
    let (_, m) = app.get(&format!("/messages/{marketing_id}"), &t.key).await;
    assert_eq!(m["reason"], "under_review", "{m}");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "transactional_campaign", "body": "Your estimate"}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("deferred"))
    );
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "Tech on the way"}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::ACCEPTED, Some("queued"))
    );
    app.drain().await;
    assert_eq!(
        app.sent_to(PHONE).len(),
        before + 1,
        "only the job notification"
    );

    // A request to a second phone of the customer under review waits too.
    let _ = c;
    // The person decides it was not a revocation: what waited goes.
    let (_, v) = app.get("/reviews", &t.key).await;
    let review = &v["reviews"][0];
    assert!(review["deadline"].is_string(), "{review}");
    assert!(review["age_seconds"].is_number());
    let (s, _) = app
        .post(
            &format!("/reviews/{}", review["id"].as_str().unwrap()),
            &t.key,
            json!({"decision": "not_opt_out"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), before + 3);
    let (_, m) = app.get(&format!("/messages/{marketing_id}"), &t.key).await;
    assert_eq!(m["status"], "delivered", "{m}");
}

#[tokio::test]
async fn a_review_opt_out_blocks_what_waited_for_it() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    app.inbound(PHONE, MK, "not interested").await;
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Spring sale"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = app.get("/reviews", &t.key).await;
    let review = v["reviews"][0]["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/reviews/{review}"),
        &t.key,
        json!({"decision": "opt_out"}),
    )
    .await;
    app.drain().await;
    let (_, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("blocked"), Some("opted_out"))
    );
}

#[tokio::test]
async fn a_marketing_campaign_started_during_a_review_defers_that_phone() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let other = "+15125550177";
    opted_in(&app, PHONE).await;
    opted_in(&app, other).await;
    app.inbound(PHONE, MK, "end of the month works").await;
    let (s, v) = app
        .post(
            "/campaigns",
            &t.key,
            json!({"name": "Spring", "type": "marketing", "body": "Spring tune-up, 20% off"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assent_server::campaigns::tick(&app.app).await.unwrap();
    app.drain().await;
    let (_, r) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(r["counts"]["deferred"], 1, "{r}");
    assert_eq!(r["counts"]["delivered"], 1, "{r}");
    let msgs = app.messages(&t, PHONE).await;
    let campaign_msg = msgs.iter().find(|m| m["kind"] == "campaign").unwrap();
    assert_eq!(campaign_msg["status"], "deferred");
    assert_eq!(campaign_msg["reason"], "under_review");
}

#[tokio::test]
async fn a_review_nobody_decides_is_an_opt_out_at_its_deadline() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    // Wednesday noon in Austin; two business days is Friday noon.
    app.inbound(PHONE, MK, "stop sending me deals for the furnace")
        .await;
    let (_, v) = app.get("/reviews", &t.key).await;
    assert_eq!(v["reviews"].as_array().unwrap().len(), 1, "{v}");
    app.clock.advance(Duration::days(2) - Duration::minutes(1));
    let n = assent_server::service::decide_overdue_reviews(&app.app)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
    app.clock.advance(Duration::minutes(2));
    let n = assent_server::service::decide_overdue_reviews(&app.app)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out");
    let e = last_event(&c);
    assert_eq!(
        (e["source"].as_str(), e["actor"].as_str()),
        (Some("review"), Some("assent"))
    );
    assert_eq!(e["evidence"]["rule"], "review:deadline_passed");
    let (_, v) = app.get("/reviews", &t.key).await;
    assert_eq!(v["reviews"][0]["decision"], "opt_out");
    // A person deciding afterwards is refused; the deadline's decision stands.
    let (s, _) = app
        .post(
            &format!("/reviews/{}", v["reviews"][0]["id"].as_str().unwrap()),
            &t.key,
            json!({"decision": "not_opt_out"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn review_deadline_days_is_a_setting_of_at_most_ten() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (_, v) = app.get("/settings", &t.key).await;
    assert_eq!(v["review_deadline_days"], 2);
    for bad in [0, 11] {
        let (s, v) = app
            .put("/settings", &t.key, json!({"review_deadline_days": bad}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("review_deadline_days"),
            "{v}"
        );
    }
    let (s, v) = app
        .put("/settings", &t.key, json!({"review_deadline_days": 10}))
        .await;
    assert_eq!(
        (s, v["review_deadline_days"].as_u64()),
        (StatusCode::OK, Some(10))
    );
}

#[tokio::test]
async fn two_decisions_on_one_review_at_once_one_wins() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "can you stop by Tuesday?").await;
    let (_, v) = app.get("/reviews", &t.key).await;
    let id = v["reviews"][0]["id"].as_str().unwrap().to_string();
    let path = format!("/reviews/{id}");
    let (a, b) = tokio::join!(
        app.post(&path, &t.key, json!({"decision": "opt_out"})),
        app.post(&path, &t.key, json!({"decision": "not_opt_out"}))
    );
    let mut codes = [a.0.as_u16(), b.0.as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 409]);
    let c = app.consent(&t, PHONE).await;
    let review_entries = c["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "review")
        .count();
    // One decision in the ledger: an opt-out writes two entries, a dismissal one.
    let expected = if a.0 == StatusCode::OK { 2 } else { 1 };
    assert_eq!(review_entries, expected, "{c}");
}

#[tokio::test]
async fn a_revocation_that_came_another_way_is_recorded_through_the_api() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    let path = format!("/consent/{PHONE}/opt-out");
    let (s, v) = app
        .post(
            &path,
            &t.key,
            json!({"scope": "everything", "method": "phone_call"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["message"].as_str().unwrap().contains("scope"));
    let (s, v) = app
        .post(
            &path,
            &t.key,
            json!({"scope": "marketing", "method": "fax"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["message"].as_str().unwrap().contains("method"));
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in",
        "a refused request changes nothing"
    );
    let (s, v) = app
        .post(
            &path,
            &t.key,
            json!({"scope": "marketing", "method": "phone_call", "note": "Called the office on Monday"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["marketing"]["status"], "opted_out");
    assert_eq!(v["transactional"]["opted_out"], false);
    let e = last_event(&v);
    assert_eq!(e["source"], "api");
    assert_eq!(e["evidence"]["rule"], "phone_call");
    assert_eq!(e["evidence"]["text"], "Called the office on Monday");
    let (s, v) = app
        .post(&path, &t.key, json!({"scope": "all", "method": "letter"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["transactional"]["opted_out"], true);
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1, "no text answers a letter");
}

#[tokio::test]
async fn marketing_updates_stays_in_step_with_written_consent() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let c = app.customer(&t, "Lee", "+15125550177", true, false).await;
    opted_in(&app, "+15125550177").await;
    // Written consent turned the switch on.
    let (_, cust) = app.get(&format!("/customers/{c}"), &t.key).await;
    assert_eq!(cust["phones"][0]["marketing_updates"], true, "{cust}");
    // Switching it off is the customer's revocation, passed on.
    let (s, v) = app
        .put(
            &format!("/customers/{c}/phones/+15125550177/notifications"),
            &t.key,
            json!({"job_notifications": true, "marketing_updates": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let consent = app.consent(&t, "+15125550177").await;
    assert_eq!(consent["marketing"]["status"], "opted_out");
    assert_eq!(consent["transactional"]["opted_out"], false);
    assert_eq!(
        last_event(&consent)["evidence"]["rule"],
        "marketing_updates_off"
    );
    // Turning it back on is not consent.
    app.put(
        &format!("/customers/{c}/phones/+15125550177/notifications"),
        &t.key,
        json!({"job_notifications": true, "marketing_updates": true}),
    )
    .await;
    assert_eq!(
        app.consent(&t, "+15125550177").await["marketing"]["status"],
        "opted_out"
    );
}

#[tokio::test]
async fn imported_opt_outs_apply_when_newer_than_the_last_consent_and_are_kept_when_older() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await; // 2026-03-04
    let csv = "phone,opted_out_at,scope,source,note\n\
               +15125550142,2025-06-01,all,OldCRM,texted STOP\n\
               (512) 555-0177,2026-01-15,marketing,OldCRM,\n\
               not a phone,2026-01-15,all,,\n\
               +15125550178,2099-01-01,all,,\n\
               +15125550179,2026-02-01,sometimes,,\n\
               +15125550180,2026-02-01T10:00:00Z,,,\n";
    let r = app
        .client
        .post(format!("{}/api/v1/imports/consent", app.base))
        .bearer_auth(&t.key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["applied"], 2, "{v}");
    assert_eq!(v["recorded_only"], 1, "{v}");
    let lines: Vec<u64> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5, 6], "{v}");
    // Older than the opt-in here: evidence only.
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_in");
    let e = last_event(&c);
    assert_eq!(
        (
            e["source"].as_str(),
            e["old_state"].as_str(),
            e["new_state"].as_str()
        ),
        (Some("import"), Some("active"), Some("active"))
    );
    assert!(
        e["occurred_at"].as_str().unwrap().starts_with("2025-06-01"),
        "{e}"
    );
    assert_eq!(e["evidence"]["text"], "OldCRM: texted STOP");
    // Newer (nothing given here): applied, marketing only.
    let c = app.consent(&t, "+15125550177").await;
    assert_eq!(c["marketing"]["status"], "opted_out");
    assert_eq!(c["transactional"]["opted_out"], false);
    let c = app.consent(&t, "+15125550180").await;
    assert_eq!(c["transactional"]["opted_out"], true);
}

#[tokio::test]
async fn a_stop_to_a_replaced_sender_still_acts_on_its_channel() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    // A partial update keeps the other sender.
    let (s, v) = app
        .put("/senders", &t.key, json!({"marketing": "+15125550199"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["transactional"], TX);
    assert_eq!(v["marketing"], "+15125550199");
    let (_, v) = app.get("/senders", &t.key).await;
    assert_eq!(v["former"][0]["number"], MK, "{v}");
    // STOP to the old marketing number: marketing only, as that number's channel.
    assert_eq!(app.inbound(PHONE, MK, "STOP").await, StatusCode::OK);
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out");
    assert_eq!(c["transactional"]["opted_out"], false);
    app.drain().await;
    let last = app.sent_to(PHONE).last().cloned().unwrap();
    assert_eq!(
        last.1, MK,
        "the confirmation comes from the number the STOP was sent to"
    );
}

#[tokio::test]
async fn start_from_a_phone_that_never_saw_the_disclosure_starts_the_double_opt_in() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, MK, "START").await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "pending", "{c}");
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].2.contains("Reply YES"), "{sent:?}");
    app.inbound(PHONE, MK, "YES").await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
}

#[tokio::test]
async fn a_yes_while_the_request_is_held_sends_it_and_only_the_next_yes_counts() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    // 06:00 in Austin: a business-started request is held by quiet hours.
    app.clock.set(noon() - Duration::hours(6));
    let (s, v) = app
        .post(
            &format!("/customers/{c}/phones/{PHONE}/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = v["message_id"].as_str().unwrap().to_string();
    app.drain().await;
    assert!(app.sent_to(PHONE).is_empty());

    app.inbound(PHONE, MK, "YES").await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "pending",
        "the customer has not seen the disclosure yet"
    );
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 1, "the request went at once, nothing else");
    assert!(sent[0].2.contains("Reply YES"));
    let (_, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(m["status"], "delivered");
    let provider_id = m["provider_id"].as_str().unwrap().to_string();

    app.inbound(PHONE, MK, "YES").await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_in");
    // The YES names the request whose disclosure it signs.
    let e = last_event(&c);
    assert_eq!(e["evidence"]["request"], provider_id.as_str(), "{e}");
    assert!(
        e["evidence"]["disclosure"]
            .as_str()
            .unwrap()
            .contains("Reply YES")
    );
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 2, "and its confirmation");
}

#[tokio::test]
async fn a_yes_after_a_failed_request_sends_a_new_one_and_only_the_next_yes_counts() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    // The carrier takes the request, then reports it failed (30006).
    app.simulate(&t, PHONE, "fail").await;
    let failed = app.request_opt_in(&t, &c, PHONE).await;
    app.drain().await;
    let (_, m) = app.get(&format!("/messages/{failed}"), &t.key).await;
    assert_eq!(m["status"], "failed", "{m}");
    app.simulate(&t, PHONE, "deliver").await;

    // The customer texts YES anyway (they saw the offer elsewhere): it signs nothing they
    // were shown, and a new request goes at once.
    app.inbound(PHONE, MK, "YES").await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "pending"
    );
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 2, "the failed request and a new one: {sent:?}");
    assert!(sent[1].2.contains("Reply YES"), "{sent:?}");

    // Their next YES counts and names the new request.
    app.inbound(PHONE, MK, "YES").await;
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["marketing"]["status"], "opted_in", "{consent}");
    let e = last_event(&consent);
    let messages = app.messages(&t, PHONE).await;
    let again = messages
        .iter()
        .find(|m| m["id"] != failed.as_str() && m["body"].as_str().unwrap().contains("Reply YES"))
        .expect("the new request");
    assert_eq!(e["evidence"]["request"], again["provider_id"], "{e}");
}

#[tokio::test]
async fn yes_after_failed_requests_stops_asking_at_the_cap_of_unanswered_requests() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    app.simulate(&t, PHONE, "fail").await;
    app.request_opt_in(&t, &c, PHONE).await;
    app.drain().await;
    // Every request fails; each YES asks again at once (the 24 hours a pending request
    // holds the next back do not apply to one that never arrived) until three are
    // unanswered in 30 days.
    for _ in 0..5 {
        app.inbound(PHONE, MK, "YES").await;
        app.drain().await;
    }
    let requests = app
        .messages(&t, PHONE)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "opt_in_request")
        .count();
    assert_eq!(requests, 3, "the cap of unanswered requests holds");
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "pending"
    );
}

#[tokio::test]
async fn the_providers_stop_list_acts_as_a_stop_in_the_senders_thread() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    app.put("/settings", &t.key, json!({"stop_revokes_all": true}))
        .await;
    app.put(
        &format!("/simulator/numbers/{PHONE}"),
        &t.key,
        json!({"behavior": "block"}),
    )
    .await;
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Sale"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    app.drain().await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out");
    assert_eq!(
        c["transactional"]["opted_out"], true,
        "revoke-all: the marketing sender's STOP list stops everything"
    );
    let e = last_event(&c);
    assert_eq!(e["source"], "carrier");
    assert_eq!(e["evidence"]["rule"], "provider_stop_list_21610");
    assert!(e["evidence"]["text"].as_str().unwrap().contains("21610"));
    assert_eq!(e["evidence"]["message_sid"], id.as_str());
}

#[tokio::test]
async fn a_customer_import_that_turns_marketing_updates_off_opts_the_phone_out() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    opted_in(&app, PHONE).await;
    let r = app
        .client
        .post(format!("{}/api/v1/imports/customers", app.base))
        .bearer_auth(&t.key)
        .header("content-type", "text/csv")
        .body("name,phone,job_notifications,marketing_updates\nDana,(512) 555-0142,yes,no\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out", "{c}");
    let e = last_event(&c);
    assert_eq!(
        (e["source"].as_str(), e["actor"].as_str()),
        (Some("import"), Some("import"))
    );
}
