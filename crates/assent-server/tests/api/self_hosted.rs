//! Operating a self-hosted install (issue 16): the operator's registration decision by
//! slug, Twilio's A2P decisions read from a local fake of its Messaging API, duplicate
//! tenant names, the business name and time zone in Settings, and failed sign-ins kept
//! (masked) for the tenant's Settings page. On PostgreSQL too when
//! ASSENT_TEST_POSTGRES_URL is set.

use crate::common::*;
use assent_server::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

const EMAIL: &str = "owner@acme.example";
const PASSWORD: &str = "correct horse battery";

/// A browser that keeps its session cookie and does not follow redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let req = match &self.cookie {
            Some(c) => req.header("Cookie", c.clone()),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        if let Some(set) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, location, r.text().await.unwrap())
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> StatusCode {
        self.post(
            "/login",
            &[("email", email), ("password", password), ("next", "/")],
        )
        .await
        .0
    }
}

fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

fn texting_form() -> Value {
    json!({
        "legal_name": "Acme Plumbing LLC",
        "ein": "12-3456789",
        "address": "1 Main St, Austin TX",
        "website": "https://acme.example",
        "contact_email": "owner@acme.example",
        "use_case": "Appointment reminders",
        "sample_messages": ["Acme Plumbing: your plumber arrives at 9am. Reply STOP to opt out."]
    })
}

fn marketing_form() -> Value {
    json!({
        "brand": "Acme Plumbing",
        "campaign_description": "Seasonal offers",
        "opt_in_flow": "Web form with an unticked box, then YES by text",
        "sample_messages": ["Acme Plumbing: 10% off drain cleaning. Reply STOP to opt out."]
    })
}

fn sid(prefix: &str, n: u8) -> String {
    format!("{prefix}{}", format!("{n:02x}").repeat(16))
}

#[tokio::test]
async fn the_operator_decides_by_slug_and_the_page_says_how() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme Plumbing").await;
    let (s, v) = app
        .put("/registrations/texting", &t.key, texting_form())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Self-hosted: the page names the command the operator runs.
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(EMAIL, PASSWORD).await, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get("/registrations").await;
    assert!(
        page.contains(&format!(
            "assent registration approve --tenant {} texting",
            t.slug
        )),
        "{page}"
    );
    assert!(page.contains("the operator does"), "{page}");
    assert!(!page.contains("Check status"), "nothing to ask Twilio");
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["decided_by"], "operator");

    // The slug works where the id does; an unknown one is 404.
    let path = |who: &str| format!("/tenants/{who}/registrations/texting/decision");
    let (s, v) = app
        .post(
            &path(&t.slug),
            ADMIN,
            json!({"status": "rejected", "reason": "EIN does not match the legal name"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "rejected");
    assert_eq!(v["texting"]["reason"], "EIN does not match the legal name");
    let (s, _) = app
        .post(&path(&t.id), ADMIN, json!({"status": "approved"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post(
            &path("no-such-tenant"),
            ADMIN,
            json!({"status": "approved"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = app
        .post(&path(&t.slug), &t.key, json!({"status": "approved"}))
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a tenant key is not the operator"
    );
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "approved");

    // Without Twilio, Twilio SIDs are refused by name.
    let mut form = marketing_form();
    form["messaging_service_sid"] = json!(sid("MG", 1));
    form["campaign_sid"] = json!(sid("QE", 2));
    let (s, v) = app.put("/registrations/marketing", &t.key, form).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messaging_service_sid:"),
        "{v}"
    );
    let (s, v) = app
        .post("/registrations/marketing/check", &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn twilio_decides_and_assent_reads_its_decision() {
    let (base, fake) = assent_server::fake_twilio::spawn_a2p("ACtest", AUTH_TOKEN)
        .await
        .unwrap();
    let app = TestApp::spawn_with(|c| c.twilio_messaging_base = Some(base.clone())).await;
    let t = app.bare_tenant("Acme Plumbing").await;
    let (brand, service, campaign) = (sid("BN", 1), sid("MG", 2), sid("QE", 3));

    // A malformed SID is refused by name, and a half-given campaign too.
    let mut form = texting_form();
    form["brand_sid"] = json!("BN123");
    let (s, v) = app.put("/registrations/texting", &t.key, form).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("brand_sid:"),
        "{v}"
    );
    let mut form = marketing_form();
    form["campaign_sid"] = json!(campaign);
    let (s, v) = app.put("/registrations/marketing", &t.key, form).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messaging_service_sid:"),
        "{v}"
    );

    let mut form = texting_form();
    form["brand_sid"] = json!(brand);
    let (s, v) = app.put("/registrations/texting", &t.key, form).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut form = marketing_form();
    form["messaging_service_sid"] = json!(service);
    form["campaign_sid"] = json!(campaign);
    let (s, v) = app.put("/registrations/marketing", &t.key, form).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["decided_by"], "twilio");
    assert_eq!(v["marketing"]["decided_by"], "twilio");

    // Under review: still pending.
    fake.set(
        &brand,
        json!({"sid": brand, "status": "IN_REVIEW", "failure_reason": null}),
    );
    let (s, v) = app
        .post("/registrations/texting/check", &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["twilio_status"].as_str()),
        (Some("pending"), Some("IN_REVIEW"))
    );
    // Failed: rejected, with Twilio's reason.
    fake.set(
        &brand,
        json!({"sid": brand, "status": "FAILED", "failure_reason": "The EIN does not match the legal name"}),
    );
    let (_, v) = app
        .post("/registrations/texting/check", &t.key, json!({}))
        .await;
    assert_eq!(v["status"], "rejected", "{v}");
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "rejected");
    assert_eq!(
        v["texting"]["reason"],
        "The EIN does not match the legal name"
    );

    // The scheduled pass: a verified campaign is approved; a campaign Twilio does not
    // know stays pending.
    fake.set(
        &format!("{service}/{campaign}"),
        json!({"sid": campaign, "messaging_service_sid": service, "campaign_status": "VERIFIED", "errors": []}),
    );
    let changed = assent_server::service::registrations::check_pending_with_twilio(&app.app)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["marketing"]["status"], "approved", "{v}");

    // The web page says Twilio decides and offers the check.
    let mut form = texting_form();
    form["brand_sid"] = json!(brand);
    let (s, _) = app.put("/registrations/texting", &t.key, form).await;
    assert_eq!(s, StatusCode::OK, "resubmitted after the rejection");
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in(EMAIL, PASSWORD).await, StatusCode::SEE_OTHER);
    let (_, _, page) = b.get("/registrations").await;
    assert!(page.contains("Twilio decides"), "{page}");
    assert!(page.contains("Check status"), "{page}");
    fake.set(&brand, json!({"sid": brand, "status": "APPROVED"}));
    let token = csrf(&page);
    let (s, location, _) = b
        .post("/registrations/texting/check", &[("csrf", token.as_str())])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location.contains("notice=checked_approved"), "{location}");
    let (_, _, page) = b.get(&location).await;
    assert!(page.contains("Checked with Twilio: approved."), "{page}");
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "approved");
    assert!(fake.requests() >= 4);
}

/// The scheduled check runs pass after pass (here every few milliseconds, counted by the
/// fake's requests rather than timed), and returns once the server shuts down.
#[tokio::test]
async fn the_scheduled_twilio_check_repeats_until_shutdown() {
    let (base, fake) = assent_server::fake_twilio::spawn_a2p("ACtest", AUTH_TOKEN)
        .await
        .unwrap();
    let app = TestApp::spawn_with(|c| c.twilio_messaging_base = Some(base.clone())).await;
    let t = app.bare_tenant("Acme Plumbing").await;
    let brand = sid("BN", 1);
    let mut form = texting_form();
    form["brand_sid"] = json!(brand);
    let (s, v) = app.put("/registrations/texting", &t.key, form).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Under review for as long as the test runs: every pass asks Twilio again.
    fake.set(
        &brand,
        json!({"sid": brand, "status": "IN_REVIEW", "failure_reason": null}),
    );
    let before = fake.requests();
    let every = std::time::Duration::from_millis(5);
    let checks = tokio::spawn(assent_server::service::registrations::twilio_checks_every(
        app.app.clone(),
        std::time::Duration::ZERO,
        every,
    ));
    // Only a guard against a hang: the passes are counted, not timed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while fake.requests() < before + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the check asked Twilio {} times",
            fake.requests() - before
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, v) = app.get("/registrations", &t.key).await;
    assert_eq!(v["texting"]["status"], "pending", "{v}");
    app.app.shutdown.trigger();
    let passes = tokio::time::timeout(std::time::Duration::from_secs(300), checks)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
    assert!(passes >= 3, "{passes} passes");
    let after = fake.requests();
    assert!(after >= before + passes, "one request a pass at least");
}

#[tokio::test]
async fn a_duplicate_tenant_name_is_refused_unless_allowed() {
    let app = TestApp::spawn().await;
    app.bare_tenant("Acme Plumbing").await;
    let (s, v) = app
        .post("/tenants", ADMIN, json!({"name": " ACME plumbing"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allow_duplicate_name"),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/tenants",
            ADMIN,
            json!({"name": "Acme Plumbing", "allow_duplicate_name": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["slug"], "acme-plumbing-2");
}

#[tokio::test]
async fn the_business_name_and_time_zone_change_in_settings() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (_, before) = app.get("/settings", &t.key).await;
    assert_eq!(
        (
            before["business_name"].as_str(),
            before["time_zone"].as_str()
        ),
        (Some("Acme Plumbing"), Some("America/Chicago"))
    );
    // A bad zone is refused by name, and nothing changes (not even the other keys).
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"business_name": "Acme Heating", "time_zone": "Mars/Base", "marketing_cap_per_day": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("time_zone:"),
        "{v}"
    );
    let (s, v) = app
        .put("/settings", &t.key, json!({"business_name": "  "}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, v) = app.get("/settings", &t.key).await;
    assert_eq!(v, before, "nothing changed");

    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"business_name": "Acme Heating & Air", "time_zone": "America/Denver", "countries": ["US"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["business_name"], "Acme Heating & Air");
    let (_, v) = app.get("/settings", &t.key).await;
    assert_eq!(
        (v["business_name"].as_str(), v["time_zone"].as_str()),
        (Some("Acme Heating & Air"), Some("America/Denver"))
    );
    // The replies follow the new name.
    app.customer(&t, "Ana", "+15125550142", true, false).await;
    app.inbound("+15125550142", TX, "HELP").await;
    app.drain().await;
    let sent = app.sent_to("+15125550142");
    assert!(
        sent.last()
            .is_some_and(|(_, _, body)| body.starts_with("Acme Heating & Air")),
        "{sent:?}"
    );

    // The page changes them too, and says what was wrong.
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let (_, _, page) = b.get("/settings").await;
    assert!(page.contains("value=\"Acme Heating &amp; Air\""), "{page}");
    assert!(page.contains("value=\"America/Denver\""), "{page}");
    let token = csrf(&page);
    let base = [
        ("csrf", token.as_str()),
        ("profile_shown", "1"),
        ("quiet_hours", "standard"),
        ("marketing_cap_per_day", "1"),
        ("keyword_replies", "assent"),
    ];
    let mut form = base.to_vec();
    form.extend([("business_name", "Acme Air"), ("time_zone", "Chicago")]);
    let (s, _, page) = b.post("/settings", &form).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("The time zone must be an IANA name"),
        "{page}"
    );
    assert!(page.contains("value=\"Chicago\""), "shown as typed");
    let mut form = base.to_vec();
    form.extend([
        ("business_name", "Acme Air"),
        ("time_zone", "America/Phoenix"),
    ]);
    let (s, _, _) = b.post("/settings", &form).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, v) = app.get("/settings", &t.key).await;
    assert_eq!(
        (v["business_name"].as_str(), v["time_zone"].as_str()),
        (Some("Acme Air"), Some("America/Phoenix"))
    );
}

#[tokio::test]
async fn failed_sign_ins_are_kept_masked_for_the_settings_page() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    assent_server::web::create_user(&app.app, &t.slug, "manager@acme.example", PASSWORD)
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    for _ in 0..6 {
        assert_ne!(b.sign_in(EMAIL, "wrong guess").await, StatusCode::SEE_OTHER);
    }
    // An unknown email belongs to no tenant: logged, not listed.
    b.sign_in("stranger@elsewhere.example", "whatever").await;
    let failures = app
        .app
        .store
        .login_failures(&tenant_id(&app, &t).await, 100)
        .await
        .unwrap();
    assert_eq!(failures.len(), 6);
    assert!(failures.iter().all(|f| f.email == "o***@acme.example"));
    // Newest first: the refusal while locked, the one that locked, then four that did not.
    let locked: Vec<bool> = failures.iter().map(|f| f.locked).collect();
    assert_eq!(locked, [true, true, false, false, false, false]);

    let mut m = Browser::new(&app);
    assert_eq!(
        m.sign_in("manager@acme.example", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let (_, _, page) = m.get("/settings").await;
    assert!(page.contains("Recent sign-in failures"), "{page}");
    assert!(page.contains("o***@acme.example"), "{page}");
    assert!(!page.contains(EMAIL), "masked: {page}");
    assert!(page.contains("Locked"), "{page}");

    // The operator's unlock ends the lock at once.
    assent_server::web::unlock_user(&app.app, EMAIL)
        .await
        .unwrap();
    assert_eq!(b.sign_in(EMAIL, PASSWORD).await, StatusCode::SEE_OTHER);

    // Only the last 100 are kept.
    for _ in 0..110 {
        app.app
            .store
            .record_login_failure(
                &tenant_id(&app, &t).await,
                &assent_store::LoginFailure {
                    at: app.clock.now(),
                    email: "x***@acme.example".into(),
                    locked: false,
                },
            )
            .await
            .unwrap();
    }
    let kept = app
        .app
        .store
        .login_failures(&tenant_id(&app, &t).await, 1000)
        .await
        .unwrap();
    assert_eq!(kept.len(), 100);
    assert!(kept.iter().all(|f| f.email == "x***@acme.example"));
}

async fn tenant_id(app: &TestApp, t: &Tenant) -> String {
    app.app
        .store
        .tenant_by_slug(&t.slug)
        .await
        .unwrap()
        .unwrap()
        .id
}
