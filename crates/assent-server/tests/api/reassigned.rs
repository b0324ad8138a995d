//! Reassigned-number checks (CONTRACT.md "Reassigned numbers"): with a lookup provider, a
//! marketing text to a phone whose written consent is old waits for Twilio Lookup's
//! `reassigned_number` answer, against a local fake at `ASSENT_TWILIO_LOOKUP_BASE`; and
//! every status callback is kept for the proof of consent.

use std::sync::Arc;

use assent_server::fake_twilio::{LookupFake, LookupMode, spawn_lookup};
use assent_server::service::reassigned::Lookups;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

/// An app whose lookups go to a fresh fake (fast pace; `timeout` per lookup).
async fn lookup_app(timeout: std::time::Duration) -> (TestApp, LookupFake) {
    let (base, fake) = spawn_lookup("ACtest", AUTH_TOKEN).await.unwrap();
    let app = TestApp::spawn_with_app(|a, _| {
        let client = assent_provider::lookup::Lookup::new(assent_provider::lookup::LookupConfig {
            account_sid: "ACtest".into(),
            auth_token: AUTH_TOKEN.into(),
            base: base.clone(),
            timeout,
        })
        .unwrap();
        a.lookups = Some(Arc::new(Lookups::twilio(client, 1000)));
    })
    .await;
    (app, fake)
}

async fn with_lookups() -> (TestApp, LookupFake) {
    lookup_app(std::time::Duration::from_secs(5)).await
}

/// `PHONE` opted in to marketing by double opt-in (its consent is dated now).
async fn opted_in(app: &TestApp) -> Tenant {
    let (t, c) = app.tenant().await;
    let (s, v) = app
        .post(
            &format!("/customers/{c}/phones/{PHONE}/opt-in-requests"),
            &t.key,
            json!({}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    app.drain().await;
    app.inbound(PHONE, MK, "YES").await;
    app.drain().await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
    t
}

async fn send_marketing(app: &TestApp, t: &Tenant, body: &str) -> String {
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": body}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn message(app: &TestApp, t: &Tenant, id: &str) -> Value {
    let (s, v) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn proof(app: &TestApp, t: &Tenant, phone: &str) -> Value {
    let (s, v) = app
        .get(
            &format!("/consent/{}/proof", phone.replace('+', "%2B")),
            &t.key,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

fn marketing_sent(app: &TestApp, body: &str) -> usize {
    app.sent_to(PHONE)
        .iter()
        .filter(|s| s.2.contains(body))
        .count()
}

/// The consent date the lookups ask about: `noon()`, as Twilio wants it.
const CONSENT_DAY: &str = "20260304";

#[tokio::test]
async fn yes_revokes_the_consent_blocks_the_text_and_is_on_the_ledger() {
    let (app, fake) = with_lookups().await;
    let t = opted_in(&app).await;
    app.clock.advance(Duration::days(91));
    fake.set_answer(PHONE, "yes");
    let id = send_marketing(&app, &t, "Spring tune-up 15% off").await;
    app.drain().await;

    assert_eq!(
        fake.asked(),
        vec![(PHONE.to_string(), CONSENT_DAY.to_string())]
    );
    let m = message(&app, &t, &id).await;
    assert_eq!(m["status"], "blocked", "{m}");
    assert_eq!(m["reason"], "reassigned_number", "{m}");
    assert_eq!(marketing_sent(&app, "Spring tune-up"), 0);

    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out", "{c}");
    assert!(c["possibly_reassigned_since"].is_string(), "{c}");
    let last = c["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], "reassigned_number", "{last}");
    assert_eq!(last["new_state"], "opted_out", "{last}");
    assert_eq!(
        last["evidence"]["rule"], "reassigned_number_lookup",
        "{last}"
    );

    let p = proof(&app, &t, PHONE).await;
    let checks = p["reassigned_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{p}");
    assert_eq!(checks[0]["answer"], "yes");
    assert_eq!(checks[0]["last_verified_date"], CONSENT_DAY);
    assert_eq!(checks[0]["provider"], "twilio");
    assert_eq!(checks[0]["message_id"], id.as_str());
    assert_eq!(p["chain"]["verified"], true);
    let html = app
        .client
        .get(format!(
            "{}/api/v1/consent/{}/proof?format=html",
            app.base,
            PHONE.replace('+', "%2B")
        ))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("the number changed hands"), "{html}");
    assert!(html.contains(CONSENT_DAY), "{html}");

    // Nothing more is asked: the phone is opted out now, and the gate refuses it.
    let (s, _) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": "again"}),
        )
        .await;
    assert_ne!(s, StatusCode::ACCEPTED);
    app.drain().await;
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn no_and_no_data_available_are_kept_as_evidence_and_the_text_goes() {
    for answer in ["no", "no_data_available"] {
        let (app, fake) = with_lookups().await;
        let t = opted_in(&app).await;
        app.clock.advance(Duration::days(120));
        fake.set_answer(PHONE, answer);
        let id = send_marketing(&app, &t, "Spring tune-up 15% off").await;
        app.drain().await;

        assert_eq!(fake.requests(), 1, "{answer}");
        assert_eq!(marketing_sent(&app, "Spring tune-up"), 1, "{answer}");
        let m = message(&app, &t, &id).await;
        assert_eq!(m["status"], "delivered", "{answer}: {m}");
        assert_eq!(
            app.consent(&t, PHONE).await["marketing"]["status"],
            "opted_in"
        );
        let p = proof(&app, &t, PHONE).await;
        let checks = p["reassigned_checks"].as_array().unwrap();
        assert_eq!(checks.len(), 1, "{p}");
        assert_eq!(checks[0]["answer"], answer);
        assert_eq!(checks[0]["last_verified_date"], CONSENT_DAY);
        assert!(checks[0]["error"].is_null());
    }
}

#[tokio::test]
async fn a_recent_consent_is_not_looked_up_and_no_provider_means_no_lookup() {
    let (app, fake) = with_lookups().await;
    let t = opted_in(&app).await;
    app.clock.advance(Duration::days(89));
    send_marketing(&app, &t, "Spring tune-up 15% off").await;
    app.drain().await;
    assert_eq!(
        fake.requests(),
        0,
        "consent 89 days old: under the default 90"
    );
    assert_eq!(marketing_sent(&app, "Spring tune-up"), 1);

    // 0 checks every consent, however recent.
    let (s, v) = app
        .put("/settings", &t.key, json!({"reassigned_check_days": 0}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock.advance(Duration::days(1));
    send_marketing(&app, &t, "Summer tune-up").await;
    app.drain().await;
    assert_eq!(fake.requests(), 1);
    assert_eq!(marketing_sent(&app, "Summer tune-up"), 1);

    // Without ASSENT_LOOKUP nothing is asked, whatever the consent's age.
    let plain = TestApp::spawn().await;
    let t = opted_in(&plain).await;
    plain.clock.advance(Duration::days(400));
    send_marketing(&plain, &t, "Spring tune-up 15% off").await;
    plain.drain().await;
    assert_eq!(marketing_sent(&plain, "Spring tune-up"), 1);
    assert!(
        proof(&plain, &t, PHONE).await["reassigned_checks"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A lookup that fails (500, or no answer in time) defers the text; it goes once the
/// lookup answers.
async fn failure_defers(mode: LookupMode, timeout: std::time::Duration) {
    let (app, fake) = lookup_app(timeout).await;
    let t = opted_in(&app).await;
    app.clock.advance(Duration::days(91));
    fake.set_mode(mode.clone());
    let id = send_marketing(&app, &t, "Spring tune-up 15% off").await;
    app.drain().await;
    let m = message(&app, &t, &id).await;
    assert_eq!(m["status"], "deferred", "{mode:?}: {m}");
    assert_eq!(m["reason"], "reassigned_check_failed", "{m}");
    assert_eq!(
        marketing_sent(&app, "Spring tune-up"),
        0,
        "never sent unchecked"
    );
    assert_eq!(fake.requests(), 1);
    let p = proof(&app, &t, PHONE).await;
    let checks = p["reassigned_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{p}");
    assert!(checks[0]["answer"].is_null(), "{p}");
    assert!(checks[0]["error"].is_string(), "{p}");

    // Still failing when it falls due again: still deferred, asked again.
    app.clock.advance(Duration::minutes(11));
    app.drain().await;
    assert_eq!(message(&app, &t, &id).await["status"], "deferred");
    assert_eq!(fake.requests(), 2);
    assert_eq!(marketing_sent(&app, "Spring tune-up"), 0);

    // The provider recovers: the text goes on its next turn.
    fake.set_mode(LookupMode::Answer);
    app.drain().await;
    assert_eq!(
        marketing_sent(&app, "Spring tune-up"),
        0,
        "not before it is due"
    );
    app.clock.advance(Duration::minutes(11));
    app.drain().await;
    assert_eq!(fake.requests(), 3);
    assert_eq!(marketing_sent(&app, "Spring tune-up"), 1);
    assert_eq!(message(&app, &t, &id).await["status"], "delivered");
    let p = proof(&app, &t, PHONE).await;
    assert_eq!(p["reassigned_checks"][2]["answer"], "no", "{p}");
}

#[tokio::test]
async fn a_lookup_answering_500_defers_the_text_until_it_recovers() {
    failure_defers(LookupMode::Fail, std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_lookup_that_times_out_defers_the_text_until_it_recovers() {
    failure_defers(
        LookupMode::Slow(std::time::Duration::from_secs(3)),
        std::time::Duration::from_millis(300),
    )
    .await;
}

#[tokio::test]
async fn a_phone_is_looked_up_at_most_once_a_month() {
    let (app, fake) = with_lookups().await;
    let t = opted_in(&app).await;
    app.clock.advance(Duration::days(91));
    send_marketing(&app, &t, "First offer").await;
    send_marketing(&app, &t, "Second offer").await;
    app.drain().await;
    assert_eq!(fake.requests(), 1, "two texts in one claim: one lookup");
    app.clock.advance(Duration::days(10));
    send_marketing(&app, &t, "Third offer").await;
    app.drain().await;
    assert_eq!(fake.requests(), 1, "10 days later: the answer still counts");
    app.clock.advance(Duration::days(21));
    send_marketing(&app, &t, "Fourth offer").await;
    app.drain().await;
    assert_eq!(fake.requests(), 2, "31 days after the check: asked again");
    for body in ["First offer", "Second offer", "Third offer", "Fourth offer"] {
        assert_eq!(marketing_sent(&app, body), 1, "{body}");
    }
    // Each lookup asks about the consent, not about the last check.
    assert!(fake.asked().iter().all(|(_, d)| d == CONSENT_DAY));
}

#[tokio::test]
async fn a_campaign_to_2_000_old_consents_makes_one_lookup_per_phone() {
    let (app, fake) = with_lookups().await;
    let (t, _) = app.tenant().await;
    app.put(
        "/settings",
        &t.key,
        json!({"rate_limits": {"per_sender_per_minute": 1000000, "per_tenant_per_day": 1000000}}),
    )
    .await;
    // Twenty of the drain's claims of 100: the answers must carry from one claim to the
    // next. (It was 10,000 phones; on PostgreSQL in a debug build that took 300 s of CI and
    // proved nothing more.)
    let n: u64 = 2_000;
    let phone = |i: u64| format!("+1737{:07}", 3_000_000 + i);
    let mut csv = String::from("name,phone,tags\n");
    for i in 0..n {
        csv.push_str(&format!("Customer {i},{},spring\n", phone(i)));
    }
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
    // Every phone opts in with the link's words, 16 texts at a time.
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (client, url, from) = (app.client.clone(), url.clone(), phone(i));
        set.spawn(async move {
            let params: Vec<(String, String)> = [
                ("MessageSid", format!("SMlookup{i:024}")),
                ("From", from),
                ("To", MK.to_string()),
                (
                    "Body",
                    "I would like to sign up for marketing text messages!".to_string(),
                ),
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
    app.drain().await;
    app.clock.advance(Duration::days(91));

    let run = |name: &'static str| {
        let (app, t) = (&app, &t);
        async move {
            let (s, v) = app
                .post(
                    "/campaigns",
                    &t.key,
                    json!({"name": name, "type": "marketing", "body": "{business_name}: 15% off tune-ups", "audience": {"tags": ["spring"]}}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            let id = v["id"].as_str().unwrap().to_string();
            assent_server::campaigns::tick(&app.app).await.unwrap();
            app.drain().await;
            assent_server::campaigns::tick(&app.app).await.unwrap();
            let (_, r) = app.get(&format!("/campaigns/{id}"), &t.key).await;
            r
        }
    };
    let r = run("Spring tune-up").await;
    assert_eq!(r["counts"]["delivered"], n, "{r}");
    let asked = fake.asked();
    assert_eq!(asked.len() as u64, n, "one lookup per phone");
    let mut phones: Vec<&String> = asked.iter().map(|(p, _)| p).collect();
    phones.sort();
    phones.dedup();
    assert_eq!(phones.len() as u64, n, "each phone asked once");

    // A second campaign the next day asks nothing: the answers count for a month.
    app.clock.advance(Duration::days(1));
    let r = run("Summer tune-up").await;
    assert_eq!(r["counts"]["delivered"], n, "{r}");
    assert_eq!(fake.requests() as u64, n);
}

#[tokio::test]
async fn reassigned_check_days_is_a_setting_from_0_to_365_named_when_wrong() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (_, v) = app.get("/settings", &t.key).await;
    assert_eq!(v["reassigned_check_days"], 90);
    for bad in [json!(-1), json!(366), json!("30"), json!(1.5), json!(null)] {
        let (s, v) = app
            .put("/settings", &t.key, json!({"reassigned_check_days": bad}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(
            v.to_string().contains("reassigned_check_days"),
            "the field is named: {v}"
        );
    }
    let (_, v) = app.get("/settings", &t.key).await;
    assert_eq!(v["reassigned_check_days"], 90, "nothing changed");
    for good in [0, 30, 365] {
        let (s, v) = app
            .put("/settings", &t.key, json!({"reassigned_check_days": good}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["reassigned_check_days"], good);
    }
}

#[tokio::test]
async fn every_status_callback_of_the_opt_in_request_is_in_the_proof() {
    let app = TestApp::spawn().await;
    let t = opted_in(&app).await;
    let request = app
        .messages(&t, PHONE)
        .await
        .into_iter()
        .find(|m| m["kind"] == "opt_in_request")
        .unwrap();
    let sid = request["provider_id"].as_str().unwrap().to_string();
    // A late report from the carrier, with an error code: kept beside the earlier ones.
    let url = format!("{}/webhooks/twilio/status", app.base);
    let params = vec![
        ("MessageSid".to_string(), sid.clone()),
        // Provider ids are unique per tenant: the sender names the tenant.
        (
            "From".to_string(),
            request["from"].as_str().unwrap().to_string(),
        ),
        ("MessageStatus".to_string(), "undelivered".to_string()),
        ("ErrorCode".to_string(), "30003".to_string()),
    ];
    let sig = assent_provider::signature::sign(AUTH_TOKEN, &url, &params);
    let s = app
        .client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .unwrap()
        .status();
    assert!(s.is_success(), "{s}");

    let p = proof(&app, &t, PHONE).await;
    let history = p["opt_ins"][0]["request"]["status_history"]
        .as_array()
        .unwrap()
        .clone();
    let statuses: Vec<&str> = history
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "undelivered"], "{p}");
    assert!(history[0]["error_code"].is_null());
    assert_eq!(history[2]["error_code"], 30003);
    assert!(history.iter().all(|h| h["received_at"].is_string()));

    let html = app
        .client
        .get(format!(
            "{}/api/v1/consent/{}/proof?format=html",
            app.base,
            PHONE.replace('+', "%2B")
        ))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Status callbacks received"), "{html}");
    assert!(html.contains("30003"), "{html}");
}
