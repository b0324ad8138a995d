//! One test per workflow of the seed and per pitfall of PRODUCT.md, over real HTTP.

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::json;

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn registration_gates_every_kind_of_message() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme").await;
    let c = app.customer(&t, "Dana", PHONE, true, true).await;
    let send = |purpose: &'static str| {
        app.post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": purpose, "body": "hi"}),
        )
    };

    let (s, v) = send("job_notification").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "texting_not_registered")
    );
    let (s, v) = app
        .post(
            &format!("/customers/{c}/phones/{PHONE}/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "texting_not_registered")
    );
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "not_submitted");

    app.approve(&t, "texting").await;
    let (s, _) = send("job_notification").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, v) = send("marketing").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_marketing_consent")
    );
    // A customer who texted the link phrase is opted in, yet nothing marketing leaves.
    let fan = "+15125550143";
    app.inbound(
        fan,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": fan, "purpose": "marketing", "body": "hi"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "marketing_not_registered")
    );
    let (s, v) = app
        .post(
            &format!("/customers/{c}/phones/{PHONE}/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "marketing_not_registered")
    );
    let (s, v) = app.get("/opt-in/link", &t.key).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "marketing_not_registered")
    );
    let r = app
        .client
        .get(format!("{}/optin/{}", app.base, t.slug))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    app.approve(&t, "marketing").await;
    let (s, _) = app
        .post(
            &format!("/customers/{c}/phones/{PHONE}/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(
        (
            v["texting"]["status"].as_str(),
            v["marketing"]["status"].as_str()
        ),
        (Some("approved"), Some("approved"))
    );

    // Resubmitting an approved registration would stop sending: refused, nothing changes.
    let (s, v) = app
        .put(
            "/registrations/texting",
            &t.key,
            json!({"legal_name": "Acme LLC", "ein": "12-3456789", "address": "1 Main", "website": "https://a.example",
            "contact_email": "a@a.example", "use_case": "jobs", "sample_messages": ["hi"]}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "already_approved"),
        "{v}"
    );
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "approved");
    let (s, _) = send("job_notification").await;
    assert_eq!(s, StatusCode::ACCEPTED);

    // A rejection stops sending again.
    let (s, _) = app
        .post(
            &format!("/tenants/{}/registrations/texting/decision", t.id),
            ADMIN,
            json!({"status": "rejected", "reason": "EIN mismatch"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = send("job_notification").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "texting_not_registered")
    );
}

#[tokio::test]
async fn registration_form_names_the_missing_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme").await;
    let (s, v) = app
        .put(
            "/registrations/texting",
            &t.key,
            json!({"legal_name": "Acme LLC", "address": "1 Main", "website": "https://a.example",
            "contact_email": "a@a.example", "use_case": "jobs", "sample_messages": ["hi"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("ein"),
        "{v}"
    );
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "not_submitted");
    let (s, v) = app.put("/registrations/marketing", &t.key, json!({"brand": "Acme", "campaign_description": "x", "opt_in_flow": "y", "sample_messages": []})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sample_messages")
    );
}

#[tokio::test]
async fn customer_phones_in_any_us_form_are_stored_as_e164_with_default_toggles() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .post("/customers", &t.key, json!({"name": "Luis", "phones": [{"number": "1-512-555-0178"}, {"number": "+1 (737) 555.0119", "marketing_updates": true}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["phones"][0]["number"], "+15125550178");
    assert_eq!(v["phones"][0]["job_notifications"], true);
    assert_eq!(v["phones"][0]["marketing_updates"], false);
    assert_eq!(v["phones"][1]["number"], "+17375550119");
    let id = v["id"].as_str().unwrap();
    let (s, v) = app.get(&format!("/customers/{id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["name"], "Luis");

    let (s, v) = app
        .post(
            "/customers",
            &t.key,
            json!({"name": "Bad", "phones": [{"number": "555-0178"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("phones[0].number"),
        "{v}"
    );
    let (s, v) = app.post("/customers", &t.key, json!({"phones": []})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("name"),
        "{v}"
    );
}

#[tokio::test]
async fn notification_toggles_gate_transactional_purposes_and_are_in_the_ledger() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let send = |purpose: &'static str| {
        app.post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": purpose, "body": "Your estimate is ready"}),
        )
    };
    assert_eq!(send("transactional_campaign").await.0, StatusCode::ACCEPTED);

    let (s, v) = app
        .put(
            &format!("/customers/{c}/phones/{PHONE}/notifications"),
            &t.key,
            json!({"job_notifications": true, "marketing_updates": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["marketing_updates"], false);
    let (s, v) = send("transactional_campaign").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "marketing_updates_off")
    );
    assert_eq!(send("job_notification").await.0, StatusCode::ACCEPTED);

    app.put(
        &format!("/customers/{c}/phones/{PHONE}/notifications"),
        &t.key,
        json!({"job_notifications": false, "marketing_updates": false}),
    )
    .await;
    let (s, v) = send("job_notification").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "job_notifications_off")
    );
    let (s, v) = send("missed_call").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "job_notifications_off")
    );

    let consent = app.consent(&t, PHONE).await;
    let toggles: Vec<_> = consent["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["channel"] == "marketing_updates" || e["channel"] == "job_notifications")
        .map(|e| {
            (
                e["channel"].as_str().unwrap().to_string(),
                e["new_state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        toggles,
        vec![
            ("job_notifications".into(), "on".into()),
            ("marketing_updates".into(), "on".into()),
            ("marketing_updates".into(), "off".into()),
            ("job_notifications".into(), "off".into()),
        ]
    );
}

#[tokio::test]
async fn a_toggle_counts_as_on_only_if_on_in_every_record_holding_the_phone() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.customer(&t, "Dana's landlord", PHONE, false, true)
        .await;
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "hi"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "job_notifications_off")
    );
}

#[tokio::test]
async fn missed_call_text_back_needs_no_customer_record() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app.post("/messages", &t.key, json!({"to": "5125550199", "purpose": "missed_call", "body": "Sorry we missed your call"})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": "5125550199", "purpose": "job_notification", "body": "x"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "job_notifications_off")
    );
    app.drain().await;
    assert_eq!(app.sent_to("+15125550199").len(), 1);
    assert_eq!(app.sent_to("+15125550199")[0].1, TX);
}

#[tokio::test]
async fn invalid_numbers_are_refused_with_the_gates_code() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for to in ["555-0142", "not a phone", "+44 20 7946 0958"] {
        let (s, v) = app
            .post(
                "/messages",
                &t.key,
                json!({"to": to, "purpose": "missed_call", "body": "x"}),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_number"),
            "{to}"
        );
    }
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "shouting", "body": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("purpose")
    );
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "  "}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["message"].as_str().unwrap().starts_with("body"));
}

#[tokio::test]
async fn opt_in_request_from_the_customer_record_then_yes_opts_in() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Sale!"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_marketing_consent")
    );

    app.request_opt_in(&t, &c, PHONE).await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "pending"
    );
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, MK, "requests come from the marketing sender");
    for needle in [
        "Reply YES",
        "Acme Plumbing",
        "Consent is not a condition of purchase",
        "Msg frequency varies",
        "Msg & data rates may apply",
        "Reply STOP to opt out, HELP for help",
    ] {
        assert!(sent[0].2.contains(needle), "{needle}");
    }

    assert_eq!(app.inbound(PHONE, MK, "Yes").await, StatusCode::OK);
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["marketing"]["status"], "opted_in");
    let last = consent["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["source"], "keyword");
    assert_eq!(last["evidence"]["text"], "Yes");
    assert!(
        last["evidence"]["message_sid"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );

    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 2);
    assert!(sent[1].2.contains("subscribed") && sent[1].2.contains("Msg frequency varies"));

    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "10% off AC tune-ups"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        v["body"],
        "Acme Plumbing: 10% off AC tune-ups\nReply STOP to opt out"
    );
    assert_eq!(v["segments"], 1);
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "ACME PLUMBING: Sale! Reply STOP to opt out"}),
        )
        .await;
    assert_eq!(
        v["body"], "ACME PLUMBING: Sale! Reply STOP to opt out",
        "brand and footer added once"
    );
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "We’ll be there at 9"}),
        )
        .await;
    assert_eq!(v["segments"], 1);
}

#[tokio::test]
async fn a_double_click_sends_one_opt_in_request() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let path = format!("/customers/{c}/phones/{PHONE}/opt-in-requests");
    let (a, b) = tokio::join!(
        app.post(&path, &t.key, json!({})),
        app.post(&path, &t.key, json!({}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY]
    );
    let refused = if a.0 == StatusCode::CREATED { b.1 } else { a.1 };
    assert_eq!(code(&refused), "opt_in_throttled");
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
}

/// A retried API call with the same `Idempotency-Key` gets the first request back, not a
/// throttle error, and nothing is sent twice; the key cannot be reused for another phone.
#[tokio::test]
async fn a_retried_opt_in_request_with_its_key_returns_the_first() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let path = format!("/customers/{c}/phones/{PHONE}/opt-in-requests");
    let call = |key: &'static str, path: String| {
        let app = &app;
        let t = &t;
        async move {
            let r = app
                .client
                .post(format!("{}/api/v1{path}", app.base))
                .bearer_auth(&t.key)
                .header("Idempotency-Key", key)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s1, first) = call("req-1", path.clone()).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    let (s2, again) = call("req-1", path.clone()).await;
    assert_eq!(
        (s2, &again["message_id"]),
        (StatusCode::CREATED, &first["message_id"])
    );
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    // Without the key, a second request in the window is throttled as before.
    let (s3, v) = app.post(&path, &t.key, json!({})).await;
    assert_eq!(
        (s3, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "opt_in_throttled")
    );
    // The same key for another phone is a mistake, said so.
    app.post(
        &format!("/customers/{c}/phones"),
        &t.key,
        json!({"phone": "+15125550143"}),
    )
    .await;
    let (s4, v) = call(
        "req-1",
        format!("/customers/{c}/phones/+15125550143/opt-in-requests"),
    )
    .await;
    assert_eq!(s4, StatusCode::CONFLICT, "{v}");
}

/// Two calls with one key at once (a client that timed out and retried): both get the
/// one request's id.
#[tokio::test]
async fn two_opt_in_requests_racing_with_one_key_get_one_answer() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let url = format!(
        "{}/api/v1/customers/{c}/phones/{PHONE}/opt-in-requests",
        app.base
    );
    let call = || {
        app.client
            .post(&url)
            .bearer_auth(&t.key)
            .header("Idempotency-Key", "same")
            .json(&json!({}))
            .send()
    };
    let (a, b) = tokio::join!(call(), call());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let (a, b): (serde_json::Value, serde_json::Value) =
        (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["message_id"], b["message_id"]);
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
}

#[tokio::test]
async fn opt_in_requests_are_throttled_to_three_unanswered_in_30_days() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let path = format!("/customers/{c}/phones/{PHONE}/opt-in-requests");
    for _ in 0..3 {
        assert_eq!(
            app.post(&path, &t.key, json!({})).await.0,
            StatusCode::CREATED
        );
        app.clock.advance(Duration::hours(25));
    }
    let (s, v) = app.post(&path, &t.key, json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "opt_in_throttled")
    );
    app.clock.advance(Duration::days(30));
    assert_eq!(
        app.post(&path, &t.key, json!({})).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_customer_created_through_the_api_can_be_sent_an_opt_in_request() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let c = app.customer(&t, "New", "737-555-0100", true, false).await;
    let (s, v) = app
        .post(
            &format!("/customers/{c}/phones/+17375550100/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = app
        .post(
            &format!("/customers/{c}/phones/+15125550142/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "a phone the customer does not hold"
    );
}

#[tokio::test]
async fn the_opt_in_link_phrase_opts_in_and_the_link_tools_are_served() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app.get("/opt-in/link", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uri = v["sms_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        "sms:+15125550101?&body=I%20would%20like%20to%20sign%20up%20for%20marketing%20text%20messages%21"
    );
    assert!(!uri.contains('+') || uri.starts_with("sms:+1"));
    assert!(
        v["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || v["qr_svg"].as_str().unwrap().contains("<svg")
    );
    assert!(
        v["html_snippet"]
            .as_str()
            .unwrap()
            .contains("Consent is not a condition of purchase")
    );
    assert!(
        v["embed_code"]
            .as_str()
            .unwrap()
            .contains(&format!("/optin/{}", t.slug))
    );
    assert!(v["embed_code"].as_str().unwrap().contains("?page="));

    assert_eq!(
        app.inbound(
            "+17375550123",
            MK,
            "i would like to sign up for marketing text messages"
        )
        .await,
        StatusCode::OK
    );
    let consent = app.consent(&t, "+17375550123").await;
    assert_eq!(consent["marketing"]["status"], "opted_in");
    assert_eq!(consent["events"][0]["source"], "opt_in_link");
    app.drain().await;
    assert_eq!(app.sent_to("+17375550123").len(), 1, "one confirmation");
}

#[tokio::test]
async fn stop_on_the_transactional_thread_opts_out_of_everything_and_is_confirmed() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    assert_eq!(app.inbound(PHONE, TX, "Stop").await, StatusCode::OK);
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], true);
    assert_eq!(consent["marketing"]["status"], "opted_out");
    for purpose in ["job_notification", "marketing", "transactional_campaign"] {
        let (s, v) = app
            .post(
                "/messages",
                &t.key,
                json!({"to": PHONE, "purpose": purpose, "body": "x"}),
            )
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "opted_out"),
            "{purpose}"
        );
    }
    app.drain().await;
    let sent = app.sent_to(PHONE);
    // The opt-in confirmation, then the opt-out confirmation: Assent's own gate did not drop it.
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1, TX);
    assert!(sent[1].2.contains("no further messages") && sent[1].2.contains("START"));

    app.inbound(PHONE, TX, "Restart").await;
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], false);
    assert_eq!(
        consent["marketing"]["status"], "none",
        "marketing needs a new opt-in"
    );
    assert_eq!(
        app.post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "x"})
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn stop_on_the_marketing_thread_keeps_job_notifications() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    app.inbound(PHONE, MK, "STOP").await;
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], false);
    assert_eq!(consent["marketing"]["status"], "opted_out");
    assert_eq!(
        app.post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "On our way"})
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert!(
        sent.iter()
            .any(|s| s.1 == MK && s.2.contains("unsubscribed from marketing"))
    );

    app.inbound(PHONE, MK, "enroll").await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
}

#[tokio::test]
async fn stop_revokes_all_setting_makes_a_marketing_stop_total() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .put("/settings", &t.key, json!({"stop_revokes_all": true}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.inbound(PHONE, MK, "STOP").await;
    assert_eq!(
        app.consent(&t, PHONE).await["transactional"]["opted_out"],
        true
    );
    let (s, v) = app
        .put("/settings", &t.key, json!({"stop_revokes_al": true}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("stop_revokes_al")
    );
}

#[tokio::test]
async fn one_number_for_both_channels_makes_stop_a_full_opt_out() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.put(
        "/senders",
        &t.key,
        json!({"transactional": TX, "marketing": TX}),
    )
    .await;
    app.inbound(
        PHONE,
        TX,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
    app.inbound(PHONE, TX, "STOP").await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(
        (
            c["transactional"]["opted_out"].as_bool(),
            c["marketing"]["status"].as_str()
        ),
        (Some(true), Some("opted_out"))
    );
}

#[tokio::test]
async fn free_text_revocations_opt_out_and_ambiguous_texts_go_to_review() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "please stop texting me").await;
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["transactional"]["opted_out"], true);
    assert_eq!(
        c["events"].as_array().unwrap().last().unwrap()["source"],
        "free_text"
    );
    assert!(
        c["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["evidence"]["rule"] == "stop_contacting_me")
    );

    let other = "+15125550177";
    app.inbound(other, TX, "Stop. Thank you").await;
    assert_eq!(
        app.consent(&t, other).await["transactional"]["opted_out"],
        true
    );

    let third = "+15125550166";
    app.inbound(third, TX, "can you stop by Tuesday?").await;
    app.inbound(
        third,
        TX,
        "we have to stop this leak before it reaches the kitchen",
    )
    .await;
    assert_eq!(
        app.consent(&t, third).await["transactional"]["opted_out"],
        false
    );
    let (_, v) = app.get("/reviews", &t.key).await;
    let reviews = v["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 2);
    let id = reviews[1]["id"].as_str().unwrap();
    let (s, _) = app
        .post(
            &format!("/reviews/{}", reviews[0]["id"].as_str().unwrap()),
            &t.key,
            json!({"decision": "not_opt_out"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post(
            &format!("/reviews/{id}"),
            &t.key,
            json!({"decision": "opt_out"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let c = app.consent(&t, third).await;
    assert_eq!(c["transactional"]["opted_out"], true);
    let sources: Vec<_> = c["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.iter().filter(|s| **s == "review").count() >= 2,
        "{sources:?}"
    );
    let (s, _) = app
        .post(
            &format!("/reviews/{id}"),
            &t.key,
            json!({"decision": "opt_out"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn help_and_info_get_one_help_reply_each() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "HELP").await;
    app.inbound(PHONE, MK, "info").await;
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|s| s.2.starts_with("Acme Plumbing") && s.2.contains("STOP"))
    );
    assert_eq!(app.consent(&t, PHONE).await["marketing"]["status"], "none");
}

#[tokio::test]
async fn a_repeated_stop_is_recorded_but_not_answered_again_within_24_hours() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    app.clock.advance(Duration::hours(1));
    app.inbound(PHONE, TX, "stop").await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    let events = app.consent(&t, PHONE).await["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["channel"] == "transactional")
            .count(),
        2
    );
    app.clock.advance(Duration::hours(24));
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 2);
}

#[tokio::test]
async fn provider_answered_keywords_are_recorded_without_a_second_reply() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let s = app
        .inbound_with(&[
            ("MessageSid", "SMoptouttype1"),
            ("From", PHONE),
            ("To", TX),
            ("Body", "STOP"),
            ("OptOutType", "STOP"),
        ])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        app.consent(&t, PHONE).await["transactional"]["opted_out"],
        true
    );
    app.drain().await;
    assert!(app.sent_to(PHONE).is_empty());

    // With keyword_replies = provider, only `OptOutType` says Twilio answered: START with
    // it is Twilio's, YES is always ours.
    app.put("/settings", &t.key, json!({"keyword_replies": "provider"}))
        .await;
    app.inbound_with(&[
        ("MessageSid", "SMoptouttype2"),
        ("From", PHONE),
        ("To", TX),
        ("Body", "START"),
        ("OptOutType", "START"),
    ])
    .await;
    app.drain().await;
    assert!(app.sent_to(PHONE).is_empty());
    let c = app.customer(&t, "Again", "5125550155", true, true).await;
    app.post(
        &format!("/customers/{c}/phones/+15125550155/opt-in-requests"),
        &t.key,
        json!({}),
    )
    .await;
    app.drain().await;
    app.inbound("+15125550155", MK, "YES").await;
    app.drain().await;
    assert_eq!(
        app.sent_to("+15125550155").len(),
        2,
        "the request and our YES confirmation"
    );
}

#[tokio::test]
async fn a_retried_message_sid_is_processed_once() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let params = [
        ("MessageSid", "SMretried000001"),
        ("From", PHONE),
        ("To", TX),
        ("Body", "STOP"),
    ];
    let (a, b) = tokio::join!(app.inbound_with(&params), app.inbound_with(&params));
    assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));
    assert_eq!(app.inbound_with(&params).await, StatusCode::OK);
    let inbound: Vec<_> = app
        .messages(&t, PHONE)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1);
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    let events = app.consent(&t, PHONE).await["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["channel"] == "transactional")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_records_nothing() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let params = [
        ("MessageSid", "SMbad"),
        ("From", PHONE),
        ("To", TX),
        ("Body", "STOP"),
    ];
    for sig in [Some("bad"), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8="), None] {
        let mut req = app.client.post(&url).form(&params);
        if let Some(s) = sig {
            req = req.header("X-Twilio-Signature", s);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        app.consent(&t, PHONE).await["events"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "only the toggles"
    );
    assert!(app.messages(&t, PHONE).await.is_empty());
}

#[tokio::test]
async fn a_text_to_no_tenants_sender_is_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let r = app
        .client
        .post(format!("{}/webhooks/twilio/sms", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "unsigned");
    assert_eq!(
        app.inbound(PHONE, "+15125550999", "STOP").await,
        StatusCode::OK
    );
    assert_eq!(
        app.consent(&t, PHONE).await["transactional"]["opted_out"],
        false
    );
}

#[tokio::test]
async fn the_webhook_answers_empty_twiml() {
    let app = TestApp::spawn().await;
    app.tenant().await;
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let params: Vec<(String, String)> = [
        ("MessageSid", "SMtwiml"),
        ("From", PHONE),
        ("To", TX),
        ("Body", "HELP"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = assent_provider::signature::sign(AUTH_TOKEN, &url, &params);
    let r = app
        .client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("xml")
    );
    assert!(r.text().await.unwrap().ends_with("<Response/>"));
}

#[tokio::test]
async fn a_stop_after_queueing_wins_at_hand_off() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "Tech arrives at 3"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(v["status"], "queued");
    let id = v["id"].as_str().unwrap().to_string();
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 1, "only the opt-out confirmation: {sent:?}");
    let (_, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(
        (m["status"].as_str(), m["reason"].as_str()),
        (Some("blocked"), Some("opted_out"))
    );
}

#[tokio::test]
async fn quiet_hours_hold_marketing_but_not_job_notifications() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    app.drain().await;
    app.clock.set(noon() + Duration::hours(10)); // 22:00 in Austin
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Sale"}),
        )
        .await;
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("deferred"), Some("quiet_hours"))
    );
    // Until 09:00 in Austin (Texas), said by the answer and by GET /messages.
    let nine = (noon() + Duration::hours(21)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(v["deferred_until"], nine.as_str(), "{v}");
    let listed = app.messages(&t, PHONE).await;
    let held = listed.iter().find(|m| m["id"] == v["id"]).unwrap();
    assert_eq!(held["deferred_until"], v["deferred_until"]);
    // A business-started opt-in request is held too, and says until when: 08:00 in New York.
    let c = app.customer(&t, "Kim", "+12125550177", true, true).await;
    let (s, v) = app
        .post(
            &format!("/customers/{c}/phones/+12125550177/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let eight_ny =
        (noon() + Duration::hours(19)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        (
            v["status"].as_str(),
            v["reason"].as_str(),
            v["deferred_until"].as_str()
        ),
        (
            Some("deferred"),
            Some("quiet_hours"),
            Some(eight_ny.as_str())
        ),
        "{v}"
    );
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "Running late"}),
        )
        .await;
    assert_eq!(v["status"], "queued");
    app.drain().await;
    assert_eq!(
        app.sent_to(PHONE).len(),
        2,
        "confirmation and job notification"
    );
    // Texas opens at 09:00, not the federal 08:00.
    app.clock.set(noon() + Duration::hours(20)); // 08:00 next day
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 2);
    app.clock.set(noon() + Duration::hours(21)); // 09:00 next day
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 3);
}

#[tokio::test]
async fn an_opt_out_confirmation_not_handed_over_within_5_minutes_expires() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "STOP").await;
    app.clock.advance(Duration::minutes(6));
    app.drain().await;
    assert!(app.sent_to(PHONE).is_empty());
    let reply = app
        .messages(&t, PHONE)
        .await
        .into_iter()
        .find(|m| m["kind"] == "auto_reply")
        .unwrap();
    assert_eq!(reply["status"], "expired");
}

#[tokio::test]
async fn a_carrier_block_opts_out_that_thread_only() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    app.drain().await;
    let (s, _) = app
        .put(
            &format!("/simulator/numbers/{PHONE}"),
            &t.key,
            json!({"behavior": "block"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Sale"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    app.drain().await;
    let (_, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(m["status"], "failed");
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out");
    assert_eq!(c["transactional"]["opted_out"], false);
    assert_eq!(
        c["events"].as_array().unwrap().last().unwrap()["source"],
        "carrier"
    );
    assert_eq!(app.sent_to(PHONE).len(), 1, "no reply to a carrier block");
}

#[tokio::test]
async fn status_reports_move_messages_forward_only() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "hi"}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    app.drain().await;
    let (_, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(m["status"], "delivered");
    let sid = m["provider_id"].as_str().unwrap().to_string();
    let url = format!("{}/webhooks/twilio/status", app.base);
    let params: Vec<(String, String)> = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "sent"),
        ("From", TX),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = assent_provider::signature::sign(AUTH_TOKEN, &url, &params);
    let r = app
        .client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (_, m) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(
        m["status"], "delivered",
        "a late `sent` never moves delivered backwards"
    );
}

#[tokio::test]
async fn every_message_of_a_phone_is_listed_in_both_directions() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.post(
        "/messages",
        &t.key,
        json!({"to": PHONE, "purpose": "job_notification", "body": "On our way"}),
    )
    .await;
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    let (s, v) = app.get("/messages?phone=+15125550142", &t.key).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a + that arrives as a space is read as +"
    );
    let msgs = v["messages"].as_array().unwrap();
    let kinds: Vec<_> = msgs
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap(),
                m["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("outbound", "api"),
            ("inbound", "customer"),
            ("outbound", "auto_reply")
        ]
    );
    assert!(
        msgs.iter()
            .all(|m| m["status"].is_string() && m["created_at"].is_string())
    );
    assert!(msgs[2]["provider_id"].is_string());
}

#[tokio::test]
async fn idempotency_key_makes_a_retried_api_call_send_once() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let send = || async {
        let r = app
            .client
            .post(format!("{}/api/v1/messages", app.base))
            .header("Authorization", format!("Bearer {}", t.key))
            .header("Idempotency-Key", "order-42-on-my-way")
            .json(&json!({"to": PHONE, "purpose": "job_notification", "body": "On my way"}))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<serde_json::Value>().await.unwrap())
    };
    let (a, b) = tokio::join!(send(), send());
    assert_eq!((a.0, b.0), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(a.1["id"], b.1["id"]);
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
}

/// The frequency cap through the API: three marketing texts a day by default, fewer when the
/// tenant says so; the next waits (deferred) for a slot rather than being dropped.
#[tokio::test]
async fn the_marketing_frequency_cap_defers_the_fourth_and_a_lower_cap_holds() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    app.drain().await;
    let before = app.sent_to(PHONE).len();
    let send = || {
        app.post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "Spring tune-up: 10% off"}),
        )
    };
    for _ in 0..3 {
        let (s, v) = send().await;
        assert_eq!(
            (s, v["status"].clone()),
            (StatusCode::ACCEPTED, json!("queued")),
            "{v}"
        );
        app.drain().await;
        app.clock.advance(Duration::minutes(10));
    }
    let (_, v) = send().await;
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("deferred"), Some("frequency_cap")),
        "{v}"
    );
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len() - before, 3);
    // A day after the first, a slot frees and the fourth goes.
    app.clock.advance(Duration::hours(24));
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len() - before, 4);

    // A cap of one: the second marketing text of the day waits.
    app.clock.advance(Duration::days(2));
    let (s, _) = app
        .put("/settings", &t.key, json!({"marketing_cap_per_day": 1}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = send().await;
    assert_eq!(v["status"], "queued", "{v}");
    app.drain().await;
    let (_, v) = send().await;
    assert_eq!(v["reason"], "frequency_cap", "{v}");
    let (s, v) = app
        .put("/settings", &t.key, json!({"marketing_cap_per_day": 4}))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the legal limit is 3: {v}"
    );
}

/// HELP reaches a number that opted out of everything: answering HELP is not a message
/// the STOP forbade.
#[tokio::test]
async fn help_is_answered_after_a_stop() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    app.inbound(PHONE, TX, "HELP").await;
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent[1].2.contains("help") || sent[1].2.contains("Help"),
        "{sent:?}"
    );
    assert_eq!(
        app.consent(&t, PHONE).await["transactional"]["opted_out"],
        true
    );
}

/// A request nobody answers expires after 30 days: the number is no longer pending and a
/// YES after that opts nobody in.
#[tokio::test]
async fn an_unanswered_opt_in_request_expires_after_30_days() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    let path = format!("/customers/{c}/phones/{PHONE}/opt-in-requests");
    assert_eq!(
        app.post(&path, &t.key, json!({})).await.0,
        StatusCode::CREATED
    );
    app.drain().await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "pending"
    );
    app.clock.advance(Duration::days(31));
    app.inbound(PHONE, MK, "YES").await;
    app.drain().await;
    let c = app.consent(&t, PHONE).await;
    assert_ne!(c["marketing"]["status"], "opted_in", "{c}");
    let expiry = c["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "expiry")
        .unwrap_or_else(|| panic!("the expiry is in the ledger: {c}"))
        .clone();
    // Recorded when it happened, 30 days after the request, by nobody, without the YES's
    // evidence.
    let expired_at =
        (noon() + Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(expiry["occurred_at"], expired_at, "{expiry}");
    assert_eq!(expiry["actor"], "assent", "{expiry}");
    assert!(expiry["evidence"]["message_sid"].is_null(), "{expiry}");
}

/// 679 (Detroit) and 861 (Illinois) came after the area-code table was generated: they are
/// US numbers, not `invalid_number`, and quiet hours take the address's zone for them.
#[tokio::test]
async fn new_us_area_codes_missing_from_the_table_are_texted() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for phone in ["+16795550100", "+18615550100"] {
        app.customer(&t, "New code", phone, true, false).await;
        let (s, v) = app
            .post(
                "/messages",
                &t.key,
                json!({"to": phone, "purpose": "job_notification", "body": "Running late"}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::ACCEPTED, Some("queued")),
            "{v}"
        );
        let (s, v) = app
            .post(
                "/messages",
                &t.key,
                json!({"to": phone, "purpose": "missed_call", "body": "Sorry we missed you"}),
            )
            .await;
        assert_eq!(
            (s, v["status"].as_str()),
            (StatusCode::ACCEPTED, Some("queued")),
            "{v}"
        );
    }
}
