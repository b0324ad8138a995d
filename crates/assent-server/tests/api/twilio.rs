//! Issue 17, "Twilio, exactly": the brand in every marketing text, keywords Twilio does
//! not know, re-subscribing after a Twilio-level STOP, the configuration check against a
//! local fake of Twilio's REST API, and the default terms and privacy pages. Runs on
//! PostgreSQL too when ASSENT_TEST_POSTGRES_URL is set.

use std::sync::Arc;

use crate::common::*;
use assent_provider::twilio_account::{AccountConfig, TwilioAccount};
use assent_server::fake_twilio::{self, Received};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `PHONE` opted in to marketing: the request, then YES on the marketing number.
async fn opted_in(app: &TestApp, t: &Tenant, c: &str) {
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
        app.consent(t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
}

async fn send_marketing(app: &TestApp, t: &Tenant, body: &str) -> Value {
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "marketing", "body": body}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    v
}

#[tokio::test]
async fn marketing_texts_start_with_the_brand_and_pay_for_it_in_segments() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    opted_in(&app, &t, &c).await;
    // 138 characters: one segment with the footer alone, two with "Acme Plumbing: " too.
    let body = "a".repeat(160 - "\nReply STOP to opt out".len());
    let v = send_marketing(&app, &t, &body).await;
    assert_eq!(
        v["body"],
        format!("Acme Plumbing: {body}\nReply STOP to opt out")
    );
    assert_eq!(v["segments"], 2);
    // A body that already names the business, in any case, is left as it is.
    let v = send_marketing(&app, &t, "ACME PLUMBING here: 20% off").await;
    assert_eq!(
        v["body"],
        "ACME PLUMBING here: 20% off\nReply STOP to opt out"
    );
    assert_eq!(v["segments"], 1);
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert!(sent.iter().any(|s| s.2.starts_with("Acme Plumbing: aaa")));

    // A short brand name replaces the business name; over 30 characters is refused.
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"short_brand_name": "A".repeat(31)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("short_brand_name:"),
        "{v}"
    );
    let (s, v) = app
        .put("/settings", &t.key, json!({"short_brand_name": " Acme "}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["short_brand_name"], "Acme");
    let v = send_marketing(&app, &t, "Spring sale").await;
    assert_eq!(v["body"], "Acme: Spring sale\nReply STOP to opt out");
    // The full business name still counts as naming it.
    let v = send_marketing(&app, &t, "Acme Plumbing: Spring sale").await;
    assert_eq!(
        v["body"],
        "Acme Plumbing: Spring sale\nReply STOP to opt out"
    );

    // The campaign preview shows the same final body and its cost.
    let (s, p) = app
        .post(
            "/campaigns/preview",
            &t.key,
            json!({"name": "Spring", "type": "marketing", "body": "Hi {first_name}! Spring sale"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        p["body"],
        "Acme: Hi Dana! Spring sale\nReply STOP to opt out"
    );
    assert_eq!(p["segments"], 1);

    // A retried send with its Idempotency-Key is the same request, brand and all.
    let key_send = || {
        app.client
            .post(format!("{}/api/v1/messages", app.base))
            .bearer_auth(&t.key)
            .header("Idempotency-Key", "brand-retry-1")
            .json(&json!({"to": PHONE, "purpose": "marketing", "body": "Retry me"}))
            .send()
    };
    let a = key_send().await.unwrap();
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    let b = key_send().await.unwrap();
    assert_eq!(
        b.status(),
        StatusCode::ACCEPTED,
        "{}",
        b.text().await.unwrap()
    );
}

#[tokio::test]
async fn in_provider_mode_only_optouttype_means_twilio_answered() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, _) = app
        .put("/settings", &t.key, json!({"keyword_replies": "provider"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Keywords Twilio's Advanced Opt-Out does not know arrive without OptOutType: ours.
    for (n, word) in ["REMOVE", "ARRET", "OPT OUT", "STOP ALL", "PARAR"]
        .iter()
        .enumerate()
    {
        let phone = format!("+1512555017{n}");
        app.inbound(&phone, TX, word).await;
        app.drain().await;
        let sent = app.sent_to(&phone);
        assert_eq!(sent.len(), 1, "{word} gets our confirmation");
        assert_eq!(
            app.consent(&t, &phone).await["transactional"]["opted_out"],
            true,
            "{word}"
        );
    }
    // STOP with OptOutType: Twilio answered, we record it and stay quiet.
    app.inbound_with(&[
        ("MessageSid", "SMtwiliostop1"),
        ("From", "+15125550179"),
        ("To", TX),
        ("Body", "STOP"),
        ("OptOutType", "STOP"),
    ])
    .await;
    app.drain().await;
    assert!(app.sent_to("+15125550179").is_empty());
    assert_eq!(
        app.consent(&t, "+15125550179").await["transactional"]["opted_out"],
        true
    );
    // HELP without OptOutType is ours too.
    app.inbound(PHONE, TX, "HELP").await;
    app.drain().await;
    assert!(app.sent_to(PHONE)[0].2.contains("For help"));
}

#[tokio::test]
async fn after_a_twilio_stop_yes_is_told_to_text_start_and_start_unblocks() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    opted_in(&app, &t, &c).await;
    let before = app.sent_to(PHONE).len();
    // STOP on the marketing number, answered and blocked by Twilio.
    app.inbound_with(&[
        ("MessageSid", "SMtwiliostop2"),
        ("From", PHONE),
        ("To", MK),
        ("Body", "STOP"),
        ("OptOutType", "STOP"),
    ])
    .await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), before, "Twilio answered");
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_out"
    );

    // YES there: no change of consent, and the instruction comes from the transactional
    // number (Twilio refuses every text from the blocked marketing one).
    app.inbound(PHONE, MK, "YES").await;
    app.drain().await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_out"
    );
    let sent = app.sent_to(PHONE);
    let told = sent.last().unwrap();
    assert_eq!(sent.len(), before + 1);
    assert_eq!(told.1, TX);
    assert!(told.2.contains("Reply START"), "{}", told.2);
    assert!(told.2.starts_with("Acme Plumbing:"));

    // HELP on the blocked thread names the word that works at Twilio.
    app.inbound(PHONE, MK, "HELP").await;
    app.drain().await;
    let help = app.sent_to(PHONE).last().unwrap().2.clone();
    assert!(help.contains("Reply START to resubscribe"), "{help}");

    // A configured opt-in keyword is the word named instead.
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"provider_opt_in_keyword": "restart"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["provider_opt_in_keyword"], "RESTART");
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"provider_opt_in_keyword": "YES"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("provider_opt_in_keyword:"),
        "{v}"
    );
    app.inbound(PHONE, MK, "YES").await;
    app.drain().await;
    let told = app.sent_to(PHONE).last().unwrap().2.clone();
    assert!(told.contains("Reply RESTART"), "{told}");

    // Twilio's START (OptOutType=START) lifts the block and opts back in; YES works again.
    app.inbound_with(&[
        ("MessageSid", "SMtwiliostart1"),
        ("From", PHONE),
        ("To", MK),
        ("Body", "START"),
        ("OptOutType", "START"),
    ])
    .await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
    app.drain().await;
    let n = app.sent_to(PHONE).len();
    app.inbound_with(&[
        ("MessageSid", "SMtwiliostop3"),
        ("From", PHONE),
        ("To", MK),
        ("Body", "STOP"),
    ])
    .await;
    app.drain().await;
    // Our own STOP confirmation (no OptOutType) names the configured keyword.
    let stop_reply = app.sent_to(PHONE)[n].2.clone();
    assert!(stop_reply.contains("RESTART"), "{stop_reply}");
    // Without OptOutType Twilio did not block: YES opts in again.
    app.inbound(PHONE, MK, "YES").await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
}

#[tokio::test]
async fn a_21610_marks_the_thread_blocked_so_yes_is_told_to_text_start() {
    let app = TestApp::spawn().await;
    let (t, c) = app.tenant().await;
    opted_in(&app, &t, &c).await;
    // Twilio refuses the next marketing text: the number had sent STOP there before.
    app.app.simulator.as_ref().unwrap().set_behavior(
        &[e164(MK)],
        &e164(PHONE),
        assent_provider::simulator::Behavior::Block,
    );
    send_marketing(&app, &t, "Spring sale").await;
    app.drain().await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_out"
    );
    app.app.simulator.as_ref().unwrap().set_behavior(
        &[e164(MK)],
        &e164(PHONE),
        assent_provider::simulator::Behavior::Deliver,
    );
    let before = app.sent_to(PHONE).len();
    app.inbound(PHONE, MK, "YES").await;
    app.drain().await;
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_out"
    );
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), before + 1);
    assert!(sent.last().unwrap().2.contains("Reply START"));
}

/// A server whose Twilio account API is the local fake, and the fake.
async fn with_fake_account() -> (TestApp, Received) {
    let (fake, received) = fake_twilio::spawn().await.unwrap();
    let app = TestApp::spawn_with_app(move |app, _| {
        app.twilio_account = Some(Arc::new(
            TwilioAccount::new(AccountConfig {
                account_sid: "ACtest".into(),
                auth_token: "token".into(),
                api_base: fake.clone(),
                messaging_base: fake,
            })
            .unwrap(),
        ));
    })
    .await;
    (app, received)
}

fn levels(v: &Value) -> Vec<(String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["level"].as_str().unwrap().to_string(),
                f["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_twilio_check_reports_each_finding_with_what_to_change() {
    let (app, fake) = with_fake_account().await;
    let (t, _) = app.tenant().await;
    let sms = format!("{}/webhooks/twilio/sms", app.base);
    let status = format!("{}/webhooks/twilio/status", app.base);
    // Only the transactional number is in the account, with the right webhook; both
    // numbers in one Messaging Service with no status callback.
    {
        let mut a = fake.account.lock().unwrap();
        a.number(TX, &sms);
    }
    let (s, v) = app.get("/twilio/check", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    let found = levels(&v);
    assert!(
        found.iter().any(|(l, t)| l == "problem"
            && t.contains("marketing number")
            && t.contains("is not a number of Twilio account ACtest")),
        "{v}"
    );
    assert!(
        found
            .iter()
            .any(|(l, t)| l == "ok" && t.contains(&format!("go to {sms}"))),
        "{v}"
    );
    assert!(
        found
            .iter()
            .any(|(l, t)| l == "warning" && t.contains("no Messaging Service")),
        "{v}"
    );
    // http://127.0.0.1 is no address Twilio can reach.
    assert!(
        found
            .iter()
            .any(|(l, t)| l == "warning" && t.contains("ASSENT_PUBLIC_URL")),
        "{v}"
    );

    // Both in one service whose inbound URL is elsewhere and has no status callback.
    {
        let mut a = fake.account.lock().unwrap();
        a.number(MK, "https://old.example/sms");
        a.service("Acme all", "https://old.example/inbound", "", &[TX, MK]);
    }
    let (_, v) = app.get("/twilio/check", &t.key).await;
    let found = levels(&v);
    assert!(
        found.iter().any(|(l, t)| l == "warning"
            && t.contains("Both numbers are in Messaging Service Acme all")
            && t.contains("also blocks job notifications")),
        "{v}"
    );
    let wrong_hook = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["level"] == "problem"
                && f["text"]
                    .as_str()
                    .unwrap()
                    .contains("https://old.example/inbound")
        })
        .unwrap_or_else(|| panic!("{v}"));
    assert!(wrong_hook["fix"].as_str().unwrap().contains(&sms), "{v}");
    assert!(
        found
            .iter()
            .any(|(l, t)| l == "warning" && t.contains("has no status callback")),
        "{v}"
    );

    // Fixed: separate services (read a page at a time), inbound to Assent, callbacks set.
    {
        let mut a = fake.account.lock().unwrap();
        a.services.clear();
        for n in 0..60 {
            a.service(&format!("Other {n}"), "https://other.example", "", &[]);
        }
        a.service("Acme jobs", &sms, &status, &[TX]);
        a.service("Acme offers", &sms, &status, &[MK]);
    }
    let (_, v) = app.get("/twilio/check", &t.key).await;
    let found = levels(&v);
    assert!(
        found
            .iter()
            .all(|(l, t)| l == "ok" || t.contains("ASSENT_PUBLIC_URL")),
        "{v}"
    );
    assert!(
        found
            .iter()
            .any(|(_, t)| t.contains("belongs to Messaging Service Acme offers")),
        "{v}"
    );
    assert!(
        found
            .iter()
            .any(|(_, t)| t.contains("separate Messaging Services")),
        "{v}"
    );
    assert_eq!(v["ok"], true, "{v}");

    // Refused credentials: the check says so instead of findings.
    fake.account.lock().unwrap().refuse = true;
    let (s, v) = app.get("/twilio/check", &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ok"], false);
    assert!(v["error"].as_str().unwrap().contains("credentials"), "{v}");

    // Without Twilio there is nothing to check.
    let plain = TestApp::spawn().await;
    let (t2, _) = plain.tenant().await;
    let (s, _) = plain.get("/twilio/check", &t2.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn default_terms_and_privacy_pages_are_served_and_linked_until_the_tenant_sets_its_own() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.put(
        "/settings",
        &t.key,
        json!({"help_contact": "help@acme.example"}),
    )
    .await;
    let get = |path: String| {
        let c = app.client.clone();
        async move {
            let r = c.get(path).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, terms) = get(format!("{}/optin/{}/terms", app.base, t.slug)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, privacy) = get(format!("{}/optin/{}/privacy", app.base, t.slug)).await;
    assert_eq!(s, StatusCode::OK);
    for page in [&terms, &privacy] {
        let lower = page.to_lowercase();
        for needle in [
            "acme plumbing text offers",
            "msg frequency varies",
            "msg &amp; data rates may apply",
            "help",
            "stop",
            "help@acme.example",
        ] {
            assert!(lower.contains(needle), "{needle} in {page}");
        }
    }
    assert!(
        privacy.to_lowercase().contains(
            "no mobile information will be shared with third parties or affiliates for marketing or promotional purposes"
        ),
        "{privacy}"
    );
    let (s, _) = get(format!("{}/optin/nobody-here/terms", app.base)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The form and the snippet link to them while the tenant has none of its own.
    let (_, form) = get(format!("{}/optin/{}", app.base, t.slug)).await;
    assert!(
        form.contains(&format!("href=\"/optin/{}/terms\"", t.slug)),
        "{form}"
    );
    assert!(form.contains(&format!("href=\"/optin/{}/privacy\"", t.slug)));
    let (s, tools) = app.get("/opt-in/link", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{tools}");
    let snippet = tools["html_snippet"].as_str().unwrap();
    assert!(
        snippet.contains(&format!("{}/optin/{}/terms", app.base, t.slug)),
        "{snippet}"
    );
    // The tenant's own terms page replaces the default one; privacy stays the default.
    app.put(
        "/settings",
        &t.key,
        json!({"terms_url": "https://acme.example/terms"}),
    )
    .await;
    let (_, form) = get(format!("{}/optin/{}", app.base, t.slug)).await;
    assert!(form.contains("https://acme.example/terms"));
    assert!(!form.contains(&format!("/optin/{}/terms", t.slug)));
    assert!(form.contains(&format!("href=\"/optin/{}/privacy\"", t.slug)));
}
