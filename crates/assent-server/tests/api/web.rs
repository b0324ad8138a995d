//! The web app over real HTTP: signing in (and being locked out), CSRF, the customer
//! record's toggles and opt-in request, and that every page asks for a sign-in. Runs on
//! PostgreSQL too when ASSENT_TEST_POSTGRES_URL is set.

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

pub(crate) const EMAIL: &str = "manager@acme.example";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A browser-like client: cookies kept by hand, redirects not followed.
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    pub(crate) base: String,
    pub(crate) cookie: Option<String>,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Browser {
    pub(crate) fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    pub(crate) async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.cookie {
            Some(c) => req.header("Cookie", c.clone()),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap().to_string();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        Answer {
            status,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Answer {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub(crate) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    pub(crate) async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        self.post(
            "/login",
            &[
                ("email", email),
                ("password", password),
                ("next", "/customers"),
            ],
        )
        .await
    }
}

/// The CSRF token the page's forms carry.
pub(crate) fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

pub(crate) async fn with_user(app: &TestApp, t: &Tenant) -> String {
    let u = assent_server::web::create_user(&app.app, &t.slug, " Manager@Acme.example ", PASSWORD)
        .await
        .unwrap();
    assert_eq!(u.email, EMAIL);
    assert!(u.password_hash.starts_with("$argon2id$"));
    u.id
}

fn phone_path(customer: &str) -> String {
    format!("/customers/{customer}/phones/%2B15125550142")
}

#[tokio::test]
async fn signing_in_sets_an_http_only_lax_cookie_and_opens_the_pages() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);

    let login = b.get("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    for label in [
        "<label for=\"email\">Email</label>",
        "<label for=\"password\">Password</label>",
        ">Sign in</button>",
    ] {
        assert!(login.body.contains(label), "{label} missing");
    }

    // A cookie the browser had before (say, planted by someone else) is replaced.
    let planted = {
        let mut other = Browser::new(&app);
        other.sign_in(EMAIL, PASSWORD).await;
        other.cookie.unwrap()
    };
    b.cookie = Some(planted.clone());
    let r = b.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/customers");
    assert_ne!(b.cookie.as_deref(), Some(planted.as_str()));
    let mut replay = Browser::new(&app);
    replay.cookie = Some(planted);
    assert_eq!(replay.get("/customers").await.status, StatusCode::SEE_OTHER);
    let cookie = r.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http public URL: {cookie}"
    );
    // The cookie holds a random 256-bit id; only its hash is stored.
    let id = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert!(id.len() >= 43, "{id}");

    for page in [
        "/customers".to_string(),
        format!("/customers/{customer}"),
        "/registrations".into(),
        "/opt-in-tools".into(),
        "/conversations".into(),
        "/conversations/%2B15125550142".into(),
        "/compliance".into(),
        "/campaigns".into(),
        "/campaigns/new".into(),
        "/reviews".into(),
        "/settings".into(),
    ] {
        let r = b.get(&page).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.body);
        assert_eq!(r.headers["x-frame-options"], "DENY", "{page}");
        assert!(r.body.contains("<h1>"), "{page} has no h1");
        assert!(r.body.contains("Sign out"), "{page} has no sign-out");
        assert!(
            !r.body.contains("Sending is blocked"),
            "{page}: both approved"
        );
    }
    // The public opt-in form stays embeddable.
    let r = b.get(&format!("/optin/{}", t.slug)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.get("x-frame-options").is_none());
}

#[tokio::test]
async fn a_wrong_password_or_unknown_email_is_refused_alike() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    for (email, password) in [(EMAIL, "wrong password"), ("nobody@acme.example", PASSWORD)] {
        let r = b.sign_in(email, password).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("Wrong email or password."), "{}", r.body);
        assert!(r.headers.get(SET_COOKIE).is_none());
    }
    assert_eq!(b.get("/customers").await.status, StatusCode::SEE_OTHER);
    // The right password posted from another site signs no one in.
    let req = b
        .client
        .post(format!("{}/login", b.base))
        .header("Origin", "https://evil.example")
        .form(&[("email", EMAIL), ("password", PASSWORD)]);
    let r = b.send(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(b.cookie.is_none());
}

#[tokio::test]
async fn five_failed_sign_ins_lock_the_account_for_fifteen_minutes() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(
            b.sign_in(EMAIL, "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password is refused while locked.
    let r = b.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("locked"), "{}", r.body);
    assert!(b.cookie.is_none());

    app.clock.advance(Duration::minutes(14));
    assert_eq!(
        b.sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.clock.advance(Duration::minutes(2));
    assert_eq!(
        b.sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(b.cookie.is_some());

    // A success clears the count: four more failures do not lock it again.
    let mut other = Browser::new(&app);
    for _ in 0..4 {
        other.sign_in(EMAIL, "guess").await;
    }
    assert_eq!(
        other.sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn every_page_and_form_requires_a_sign_in() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let mut b = Browser::new(&app);
    for page in [
        "/customers",
        "/customers?q=Dana",
        "/registrations",
        "/opt-in-tools",
        "/opt-in-tools/qr.svg",
        "/conversations",
        "/compliance",
        "/compliance/export.csv",
        "/campaigns",
        "/campaigns/new",
        "/reviews",
        "/settings",
    ] {
        let r = b.get(page).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{page}");
        assert!(
            r.location().starts_with("/login?next="),
            "{page}: {}",
            r.location()
        );
        assert_eq!(r.headers["x-frame-options"], "DENY");
    }
    let r = b
        .post(
            &format!("{}/notifications", phone_path(&customer)),
            &[("job_notifications", "on"), ("marketing_updates", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
    let r = b
        .post(&format!("{}/opt-in-request", phone_path(&customer)), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // Nothing changed.
    let (_, c) = app.get(&format!("/customers/{customer}"), &t.key).await;
    assert_eq!(c["phones"][0]["marketing_updates"], true);
    assert_eq!(app.consent(&t, PHONE).await["marketing"]["status"], "none");

    // A forged cookie is no session either.
    b.cookie = Some("assent_session=forged".into());
    assert_eq!(b.get("/customers").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let path = format!("{}/notifications", phone_path(&customer));
    for form in [
        vec![("job_notifications", "on")],
        vec![("job_notifications", "on"), ("csrf", "not-the-token")],
        vec![("job_notifications", "on"), ("csrf", "")],
    ] {
        let r = b.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{form:?}");
    }
    let r = b
        .post(&format!("{}/opt-in-request", phone_path(&customer)), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = b.post("/logout", &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nothing changed: marketing updates still on, no request sent.
    let (_, c) = app.get(&format!("/customers/{customer}"), &t.key).await;
    assert_eq!(c["phones"][0]["marketing_updates"], true);
    assert_eq!(app.consent(&t, PHONE).await["marketing"]["status"], "none");
    // Another session's token does not do either.
    let mut other = Browser::new(&app);
    other.sign_in(EMAIL, PASSWORD).await;
    let theirs = csrf(&other.get("/customers").await.body);
    let r = b
        .post(&path, &[("job_notifications", "on"), ("csrf", &theirs)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn saving_the_notifications_switches_records_them_with_the_user_as_actor() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let user_id = with_user(&app, &t).await;
    let customer = app.customer(&t, "Sam", "(512) 555-0142", true, false).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get(&format!("/customers/{customer}")).await;
    for label in [
        ">Notifications</summary>",
        ">Job Notifications</label>",
        ">Marketing updates</label>",
        ">Save</button>",
    ] {
        assert!(page.body.contains(label), "{label} missing");
    }
    let token = csrf(&page.body);
    let path = format!("{}/notifications", phone_path(&customer));

    // Job Notifications off, Marketing updates on (an unticked box is not sent).
    let r = b
        .post(&path, &[("csrf", &token), ("marketing_updates", "on")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/customers/{customer}?notice=saved"));
    let (_, c) = app.get(&format!("/customers/{customer}"), &t.key).await;
    assert_eq!(c["phones"][0]["job_notifications"], false);
    assert_eq!(c["phones"][0]["marketing_updates"], true);

    let events = app.consent(&t, PHONE).await["events"].clone();
    let toggles: Vec<_> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "customer_record")
        .collect();
    assert_eq!(toggles.len(), 2, "{events}");
    assert!(toggles.iter().all(|e| e["actor"] == user_id.as_str()));

    let page = b.get(r.location()).await;
    assert!(page.body.contains("Notification preferences saved."));
    assert!(
        page.body
            .contains("id=\"mk-0\" name=\"marketing_updates\" value=\"on\" checked")
    );
    assert!(
        !page
            .body
            .contains("name=\"job_notifications\" value=\"on\" checked")
    );
    assert!(
        page.body.contains("Customer record"),
        "history shows the source"
    );
}

#[tokio::test]
async fn opt_in_request_from_the_page_goes_pending_then_opted_in_after_yes() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let user_id = with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let record = format!("/customers/{customer}");
    let page = b.get(&record).await;
    assert!(page.body.contains("data-testid=\"marketing-status\">None<"));
    assert!(
        page.body
            .contains("<button type=\"submit\" class=\"primary\">Send opt-in request</button>")
    );

    let r = b
        .post(
            &format!("{}/opt-in-request", phone_path(&customer)),
            &[("csrf", &csrf(&page.body))],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("{record}?notice=opt_in_sent"));
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["marketing"]["status"], "pending");
    let ev = consent["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(ev["source"], "customer_record");
    assert_eq!(ev["actor"], user_id.as_str());
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    assert_eq!(app.sent_to(PHONE)[0].1, MK);

    let page = b.get(&record).await;
    assert!(
        page.body
            .contains("data-testid=\"marketing-status\">Pending<")
    );
    // A second request within 24 h would be throttled: the button says so.
    assert!(
        page.body
            .contains("disabled aria-describedby=\"optin-why-0\">Send opt-in request")
    );
    assert!(page.body.contains("an opt-in request was sent recently"));

    assert_eq!(app.inbound(PHONE, MK, "YES").await, StatusCode::OK);
    let page = b.get(&record).await;
    assert!(
        page.body
            .contains("data-testid=\"marketing-status\">Opted in<")
    );
    assert!(page.body.contains("already gave written consent"));

    // The conversation shows the keyword inline; a STOP shows as an opt-out by STOP.
    assert_eq!(app.inbound(PHONE, MK, "STOP").await, StatusCode::OK);
    let convo = b.get("/conversations/%2B15125550142").await;
    assert!(
        convo.body.contains("Marketing: Opted in by YES"),
        "{}",
        convo.body
    );
    assert!(convo.body.contains("Marketing: Opted out by STOP"));

    // The ledger export is the API's CSV.
    let csv = b.get("/compliance/export.csv?phone=%2B15125550142").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(csv.body.starts_with("seq,occurred_at,phone,channel"));
    assert!(csv.body.contains(",customer_record,"));
    assert!(csv.body.contains(",STOP,"));
}

#[tokio::test]
async fn the_opt_in_button_is_disabled_with_the_reason_while_marketing_is_not_approved() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme Plumbing").await;
    app.approve(&t, "texting").await;
    let customer = app
        .customer(&t, "Dana", "(512) 555-0142", true, false)
        .await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get(&format!("/customers/{customer}")).await;
    assert!(
        page.body
            .contains("disabled aria-describedby=\"optin-why-0\">Send opt-in request")
    );
    assert!(
        page.body
            .contains("marketing registration (TCR) is not approved")
    );
    // The banner says why sending is blocked and what to do.
    assert!(page.body.contains("Sending is blocked"));
    assert!(page.body.contains("submit the Marketing Registration"));
    assert!(!page.body.contains("Texting is blocked"));
    let tools = b.get("/opt-in-tools").await;
    assert!(
        tools
            .body
            .contains("once your Marketing Registration is approved")
    );
    assert!(!tools.body.contains("sms:"));
    // Posting anyway is refused by the gate and says why.
    let r = b
        .post(
            &format!("{}/opt-in-request", phone_path(&customer)),
            &[("csrf", &csrf(&page.body))],
        )
        .await;
    assert_eq!(
        r.location(),
        format!("/customers/{customer}?notice=refused_marketing_not_registered")
    );
    assert_eq!(app.consent(&t, PHONE).await["marketing"]["status"], "none");
}

#[tokio::test]
async fn customer_search_finds_by_name_or_phone_digits_within_the_tenant() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.customer(&t, "Robin Ortega", "(512) 555-0199", true, false)
        .await;
    let (_, v) = app
        .post(
            "/tenants",
            ADMIN,
            serde_json::json!({"name": "Other Co", "time_zone": "America/Chicago"}),
        )
        .await;
    let other = Tenant {
        id: v["id"].as_str().unwrap().into(),
        slug: v["slug"].as_str().unwrap().into(),
        key: v["api_key"].as_str().unwrap().into(),
    };
    app.customer(&other, "Dana Elsewhere", "(737) 555-0100", true, false)
        .await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let r = b.get("/customers?q=dana").await;
    assert!(r.body.contains(">Dana<") && !r.body.contains("Robin"));
    assert!(!r.body.contains("Elsewhere"), "another tenant's customer");
    let r = b.get("/customers?q=555-0199").await;
    assert!(r.body.contains("Robin Ortega") && !r.body.contains(">Dana<"));
    let r = b.get("/customers?q=%25").await;
    assert!(r.body.contains("No customers found"), "% is literal");
    let r = b.get("/customers").await;
    assert!(r.body.contains("Robin Ortega") && r.body.contains(">Dana<"));
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let stolen = b.cookie.clone();
    let token = csrf(&b.get("/customers").await.body);
    let r = b.post("/logout", &[("csrf", &token)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/login");
    assert!(b.cookie.is_none());
    // The old cookie no longer works anywhere.
    b.cookie = stolen;
    assert_eq!(b.get("/customers").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn users_are_unique_by_email_and_need_a_real_password() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let again = assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD).await;
    assert_eq!(again.unwrap_err().code, "email_taken");
    let short = assent_server::web::create_user(&app.app, &t.slug, "x@acme.example", "short").await;
    assert_eq!(short.unwrap_err().code, "invalid_field");
    let none =
        assent_server::web::create_user(&app.app, "no-such-tenant", "y@acme.example", PASSWORD)
            .await;
    assert_eq!(none.unwrap_err().code, "not_found");
}

#[tokio::test]
async fn the_compliance_page_filters_the_ledger() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.customer(&t, "Robin", "(512) 555-0199", true, false)
        .await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let all = b.get("/compliance").await;
    assert!(all.body.contains("(512) 555-0142") && all.body.contains("(512) 555-0199"));
    let one = b.get("/compliance?phone=5125550199").await;
    assert!(one.body.contains("Consent history") || one.body.contains("Consent ledger"));
    assert!(!one.body.contains("555-0142"));
    assert!(one.body.contains("/compliance/export.csv?phone=5125550199"));
    // Dates are whole days in the tenant's zone: the day before finds nothing.
    let none = b.get("/compliance?to=2026-03-03").await;
    assert!(none.body.contains("0 entries"), "{}", none.body);
    let today = b.get("/compliance?from=2026-03-04&to=2026-03-04").await;
    assert!(today.body.contains("555-0199"));
    let bad = b.get("/compliance?from=yesterday").await;
    assert!(bad.body.contains("From must be a date."));
}

#[tokio::test]
async fn the_registration_forms_submit_with_errors_beside_the_field_and_then_show_pending() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme Plumbing").await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/registrations").await;
    assert!(
        page.body
            .contains("Texting is blocked: submit the Register for Texting form")
    );
    for label in [
        ">Legal business name</label>",
        ">EIN (employer identification number)</label>",
        ">Sample messages</label>",
        ">Brand name</label>",
        ">Submit Register for Texting</button>",
        ">Submit Marketing Registration</button>",
    ] {
        assert!(page.body.contains(label), "{label} missing");
    }
    let token = csrf(&page.body);
    let mut form = vec![
        ("csrf", token.as_str()),
        ("legal_name", "Acme Plumbing LLC"),
        ("ein", "12-345"),
        ("address", "1 Main St, Austin, TX"),
        ("website", "https://acme.example"),
        ("contact_email", "owner@acme.example"),
        ("contact_phone", ""),
        ("use_case", "appointment reminders"),
        (
            "sample_messages",
            "Acme: your plumber is on the way\r\n\r\nAcme: see you at 9",
        ),
    ];
    let r = b.post("/registrations/texting", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("id=\"texting-ein-error\""), "{}", r.body);
    assert!(r.body.contains("must be a 9-digit EIN"));
    assert!(
        r.body.contains("value=\"Acme Plumbing LLC\""),
        "what was typed stays"
    );
    let (_, regs) = app.get("/registrations", &t.key).await;
    assert_eq!(regs["texting"]["status"], "not_submitted");

    form[2] = ("ein", "12-3456789");
    let r = b.post("/registrations/texting", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, regs) = app.get("/registrations", &t.key).await;
    assert_eq!(regs["texting"]["status"], "pending");
    assert_eq!(
        regs["texting"]["details"]["sample_messages"],
        serde_json::json!(["Acme: your plumber is on the way", "Acme: see you at 9"])
    );
    let page = b.get("/registrations?notice=submitted").await;
    assert!(page.body.contains("Submitted."));
    assert!(page.body.contains("waiting for approval"));
    assert!(
        !page.body.contains("Submit Register for Texting"),
        "pending is not re-opened"
    );
    // Posting again changes nothing.
    b.post("/registrations/texting", &form).await;
    let (_, again) = app.get("/registrations", &t.key).await;
    assert_eq!(
        again["texting"]["updated_at"],
        regs["texting"]["updated_at"]
    );
}

#[tokio::test]
async fn sending_numbers_are_saved_and_another_tenants_number_is_refused() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme Plumbing").await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let token = csrf(&b.get("/registrations").await.body);
    let r = b
        .post(
            "/senders",
            &[
                ("csrf", &token),
                ("transactional", "(512) 555-0100"),
                ("marketing", "512-555-0109"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let (_, s) = app.get("/senders", &t.key).await;
    assert_eq!(s["marketing"], "+15125550109");

    let (_, v) = app
        .post(
            "/tenants",
            ADMIN,
            serde_json::json!({"name": "Other Co", "time_zone": "America/Chicago"}),
        )
        .await;
    let other_key = v["api_key"].as_str().unwrap();
    let (s, _) = app
        .put(
            "/senders",
            other_key,
            serde_json::json!({"transactional": "+15125550177", "marketing": "+15125550177"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = b
        .post(
            "/senders",
            &[
                ("csrf", &token),
                ("transactional", "+15125550100"),
                ("marketing", "+15125550177"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already used by another business"));
    let r = b
        .post(
            "/senders",
            &[("csrf", &token), ("transactional", "12"), ("marketing", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Transactional number:"));
    let (_, s) = app.get("/senders", &t.key).await;
    assert_eq!(s["marketing"], "+15125550109", "unchanged");
}

#[tokio::test]
async fn the_composer_shows_the_final_body_and_creates_pauses_and_resumes_a_campaign() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/campaigns/new").await;
    assert_eq!(page.status, StatusCode::OK);
    let token = csrf(&page.body);

    // Preview: the sample customer's text with the footer, and its segment count.
    let body = "Hi {first_name|there}, 10% off AC tune-ups this week.";
    let r = b
        .post(
            "/campaigns/new",
            &[
                ("csrf", &token),
                ("name", "Spring"),
                ("body", body),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body
            .contains("Hi Dana, 10% off AC tune-ups this week.\nReply STOP to opt out"),
        "{}",
        r.body
    );
    assert!(r.body.contains("1 segment ·"));
    let live = b
        .post(
            "/campaigns/preview",
            &[("csrf", &token), ("body", "{nickname}")],
        )
        .await;
    assert_eq!(live.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(live.body.contains("unknown merge field"));
    let live = b
        .post(
            "/campaigns/preview",
            &[("csrf", &token), ("body", "Café ☕")],
        )
        .await;
    assert!(live.body.contains("UCS-2"), "{}", live.body);

    // An unknown merge field is refused, and nothing is created.
    let r = b
        .post(
            "/campaigns/new",
            &[
                ("csrf", &token),
                ("name", "Bad"),
                ("body", "Hi {nickname}"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("unknown merge field"));

    let r = b
        .post(
            "/campaigns/new",
            &[
                ("csrf", &token),
                ("name", "Spring"),
                ("body", body),
                ("tags", "hvac, vip"),
                ("send_at", "2026-03-05T10:00"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = r
        .location()
        .strip_prefix("/campaigns/")
        .unwrap()
        .to_string();
    let (_, report) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(report["status"], "scheduled");
    // 10:00 in Chicago is 16:00 UTC.
    assert_eq!(report["send_at"], "2026-03-05T16:00:00Z");

    let page = b.get(&format!("/campaigns/{id}")).await;
    assert!(page.body.contains(">Pause</button>"));
    let r = b
        .post(&format!("/campaigns/{id}/pause"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let (_, report) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(report["status"], "paused");
    assert!(
        b.get(&format!("/campaigns/{id}"))
            .await
            .body
            .contains(">Resume</button>")
    );
    b.post(&format!("/campaigns/{id}/resume"), &[("csrf", &token)])
        .await;
    let (_, report) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(report["status"], "scheduled");
    // Without the token nothing moves.
    let r = b.post(&format!("/campaigns/{id}/pause"), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_person_decides_texts_flagged_for_review_and_the_ledger_names_them() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let user_id = with_user(&app, &t).await;
    app.customer(&t, "Robin", "(512) 555-0199", true, false)
        .await;
    assert_eq!(
        app.inbound(PHONE, TX, "we have to stop this leak before friday")
            .await,
        StatusCode::OK
    );
    assert_eq!(
        app.inbound("+15125550199", TX, "can you stop by <b>monday</b>?")
            .await,
        StatusCode::OK
    );
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/reviews").await;
    assert!(page.body.contains("To decide (2)"), "{}", page.body);
    assert!(page.body.contains("we have to <mark>stop</mark> this leak"));
    assert!(
        page.body.contains("&lt;b&gt;monday&lt;/b&gt;"),
        "text is escaped"
    );
    let token = csrf(&page.body);
    let (_, list) = app.get("/reviews", &t.key).await;
    let id_of = |phone: &str| {
        list["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["phone"] == phone)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (leak, visit) = (id_of(PHONE), id_of("+15125550199"));

    let r = b
        .post(
            &format!("/reviews/{leak}"),
            &[("csrf", &token), ("decision", "opt_out")],
        )
        .await;
    assert_eq!(r.location(), "/reviews?notice=opt_out");
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], true);
    let ev = consent["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(ev["source"], "review");
    assert_eq!(ev["actor"], user_id.as_str());

    b.post(
        &format!("/reviews/{visit}"),
        &[("csrf", &token), ("decision", "not_opt_out")],
    )
    .await;
    let consent = app.consent(&t, "+15125550199").await;
    assert_eq!(consent["transactional"]["opted_out"], false);

    let page = b.get("/reviews").await;
    assert!(page.body.contains("To decide (0)"));
    assert!(page.body.contains("Treated as STOP") && page.body.contains("Not a request to stop"));
    // A second decision changes nothing.
    let r = b
        .post(
            &format!("/reviews/{visit}"),
            &[("csrf", &token), ("decision", "opt_out")],
        )
        .await;
    assert_eq!(r.location(), "/reviews");
    assert_eq!(
        app.consent(&t, "+15125550199").await["transactional"]["opted_out"],
        false
    );
    // And without the token nothing is decided.
    let r = b
        .post(&format!("/reviews/{visit}"), &[("decision", "opt_out")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn settings_change_the_replies_the_form_links_and_the_rules() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    assert!(
        page.body.contains("Acme Plumbing: For help, contact us at"),
        "defaults shown"
    );
    let token = csrf(&page.body);
    let help = "Acme Plumbing: call us at 512-555-0100 or reply STOP to opt out.";
    let mut form = vec![
        ("csrf", token.as_str()),
        ("help_contact", "512-555-0100"),
        ("terms_url", "https://acme.example/terms"),
        ("privacy_url", "https://acme.example/privacy"),
        ("quiet_hours", "strictest"),
        ("marketing_cap_per_day", "2"),
        ("stop_revokes_all", "on"),
        ("keyword_replies", "assent"),
        ("text_help", help),
        ("text_opt_out", ""),
    ];
    let r = b.post("/settings", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(s["quiet_hours"], "strictest");
    assert_eq!(s["marketing_cap_per_day"], 2);
    assert_eq!(s["stop_revokes_all"], true);
    assert_eq!(s["reply_texts"]["help"], help);
    assert!(
        s["reply_texts"].get("opt_out").is_none(),
        "empty means the default"
    );
    assert!(s["reply_texts"].get("opt_in_request").is_none());
    // The hosted form links the terms and privacy policy.
    let optin = b.get(&format!("/optin/{}", t.slug)).await;
    assert!(optin.body.contains("https://acme.example/privacy"));
    // HELP gets the new text.
    app.inbound(PHONE, TX, "HELP").await;
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).last().unwrap().2, help);

    // A bad link or an opt-in request without YES is refused and nothing changes.
    form[2] = ("terms_url", "acme.example/terms");
    let r = b.post("/settings", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("The terms link must start with https://"));
    form[2] = ("terms_url", "");
    form.push((
        "text_opt_in_request",
        "Acme: want deals? Reply STOP to opt out.",
    ));
    let r = b.post("/settings", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("must ask the customer to reply YES"));
    let (_, after) = app.get("/settings", &t.key).await;
    assert_eq!(after, s);

    // Saving the page as shown while changing the contact keeps the default texts default:
    // the HELP reply then names the new contact.
    let page = b.get("/settings").await;
    let shown_help = {
        let at = page.body.find("name=\"text_help\"").unwrap();
        let start = page.body[at..].find('>').unwrap() + at + 1;
        let end = page.body[start..].find("</textarea>").unwrap() + start;
        page.body[start..end].replace("&amp;", "&")
    };
    assert_eq!(shown_help, help);
    let shown_resumed = "Acme Plumbing: You are resubscribed to messages about your service. Reply HELP for help, STOP to opt out.";
    let r = b
        .post(
            "/settings",
            &[
                ("csrf", token.as_str()),
                ("help_contact", "help@acme.example"),
                ("quiet_hours", "standard"),
                ("marketing_cap_per_day", "3"),
                ("keyword_replies", "assent"),
                ("text_help", ""),
                ("text_resumed", shown_resumed),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(s["reply_texts"], serde_json::json!({}));
    let shown = "Acme Plumbing: For help, contact us at help@acme.example. Msg & data rates may apply. Reply STOP to opt out.";
    assert!(
        b.get("/settings")
            .await
            .body
            .contains(&shown.replace('&', "&amp;"))
    );
    let r = b
        .post(
            "/settings",
            &[
                ("csrf", token.as_str()),
                ("help_contact", "office@acme.example"),
                ("quiet_hours", "standard"),
                ("marketing_cap_per_day", "3"),
                ("keyword_replies", "assent"),
                ("text_help", shown),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(
        s["reply_texts"],
        serde_json::json!({}),
        "the old default is no override"
    );
    assert!(
        b.get("/settings")
            .await
            .body
            .contains("contact us at office@acme.example")
    );
}

#[tokio::test]
async fn record_opt_out_from_the_customer_record_names_the_person_and_the_method() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let user_id = with_user(&app, &t).await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get(&format!("/customers/{customer}")).await;
    for label in [
        ">Record opt-out</summary>",
        ">Marketing texts</label>",
        ">All texts</label>",
        ">How it came in</label>",
        "<option value=\"phone_call\">Phone call</option>",
        ">Note</label>",
        ">Record opt-out</button>",
        "only the customer's own YES is",
    ] {
        assert!(page.body.contains(label), "{label} missing");
    }
    let token = csrf(&page.body);
    let path = format!("{}/opt-out", phone_path(&customer));
    // Without a method nothing is recorded.
    let r = b
        .post(&path, &[("csrf", &token), ("scope", "marketing")])
        .await;
    assert_eq!(
        r.location(),
        format!("/customers/{customer}?notice=opt_out_invalid")
    );
    assert_eq!(
        app.consent(&t, PHONE).await["marketing"]["status"],
        "opted_in"
    );
    let r = b
        .post(
            &path,
            &[
                ("csrf", &token),
                ("scope", "marketing"),
                ("method", "email"),
                ("note", "Asked by email to stop the offers"),
            ],
        )
        .await;
    assert_eq!(
        r.location(),
        format!("/customers/{customer}?notice=opt_out_recorded")
    );
    let c = app.consent(&t, PHONE).await;
    assert_eq!(c["marketing"]["status"], "opted_out");
    assert_eq!(c["transactional"]["opted_out"], false);
    let e = c["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(e["source"], "customer_record");
    assert_eq!(e["actor"], user_id.as_str());
    assert_eq!(e["evidence"]["rule"], "email");
    let page = b.get(r.location()).await;
    assert!(
        page.body
            .contains("Opt-out recorded in the consent history")
    );
    assert!(page.body.contains("Consent withdrawn"));
}

#[tokio::test]
async fn the_review_page_shows_each_texts_age_and_deadline_and_conversations_waiting() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    app.inbound(PHONE, MK, "can you stop by Tuesday?").await;
    app.inbound("+15125550177", MK, "Do you service tankless heaters?")
        .await;
    app.inbound("+15125550178", TX, "STOP").await;
    app.clock.advance(chrono::Duration::hours(3));
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/reviews").await;
    assert!(page.body.contains("waiting 3 h"), "{}", page.body);
    // Wednesday noon plus two business days: Friday.
    assert!(page.body.contains("treated as STOP if undecided by"));
    assert!(page.body.contains("Mar 6, 2026"), "{}", page.body);
    let page = b.get("/customers").await;
    assert_eq!(page.status, StatusCode::OK);
    let page = b.get("/conversations").await;
    // The question and the text under review wait for a person; the STOP was answered.
    assert!(
        page.body.contains("2 waiting for an answer."),
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("Waiting for an answer").count(), 2);
}

#[tokio::test]
async fn canada_is_switched_on_in_settings_only_with_a_mailing_address_and_a_contact() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    assert!(
        page.body
            .contains("id=\"country-us\" name=\"country_us\" value=\"on\" checked")
    );
    assert!(
        page.body
            .contains("id=\"country-ca\" name=\"country_ca\" value=\"on\" aria")
    );
    let token = csrf(&page.body);
    let base = [
        ("csrf", token.as_str()),
        ("quiet_hours", "standard"),
        ("marketing_cap_per_day", "3"),
        ("keyword_replies", "assent"),
        ("countries_shown", "1"),
        ("country_us", "on"),
        ("country_ca", "on"),
    ];
    let mut form = base.to_vec();
    form.push(("mailing_address", "1 Main St, Buffalo, NY 14202"));
    let r = b.post("/settings", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("To text Canadian numbers, give a contact (CASL)."),
        "{}",
        r.body
    );
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(s["countries"], serde_json::json!(["US"]), "nothing saved");
    form.push(("contact", "help@acme.example"));
    let r = b.post("/settings", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(s["countries"], serde_json::json!(["US", "CA"]));
    assert_eq!(s["contact"], "help@acme.example");
    // No country at all is refused.
    let r = b.post("/settings", &base[..5]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose at least one country"));
}

#[tokio::test]
async fn a_held_message_says_until_when_in_the_tenants_zone_and_the_customers() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let ny = "+12125550199";
    for phone in [PHONE, ny] {
        app.inbound(
            phone,
            MK,
            "I would like to sign up for marketing text messages!",
        )
        .await;
    }
    app.drain().await;
    app.clock.set(noon() + Duration::hours(10)); // 22:00 in Chicago, 23:00 in New York
    for phone in [PHONE, ny] {
        let (_, v) = app
            .post(
                "/messages",
                &t.key,
                serde_json::json!({"to": phone, "purpose": "marketing", "body": "Sale"}),
            )
            .await;
        assert_eq!(v["status"], "deferred", "{v}");
    }
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    // Austin: Texas opens at 09:00, in the tenant's zone too.
    let page = b.get("/conversations/%2B15125550142").await;
    assert!(
        page.body.contains("until <time datetime=\"2026-03-05T15:00:00Z\">Mar 5, 2026, 9:00 AM CST</time> (the same for the customer)"),
        "{}",
        page.body
    );
    // New York: 08:00 there is 07:00 for the tenant in Chicago.
    let page = b.get("/conversations/%2B12125550199").await;
    assert!(
        page.body.contains("until <time datetime=\"2026-03-05T13:00:00Z\">Mar 5, 2026, 7:00 AM CST</time> (8:00 AM EST for the customer)"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn settings_offer_the_10dlc_tiers_and_say_what_they_mean_in_texts() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    assert!(
        page.body.contains("<option value=\"custom\" selected>"),
        "own numbers until a tier is picked"
    );
    assert!(
        page.body
            .contains("Sole proprietor: 15 a minute, 1,000 a day")
    );
    assert!(
        page.body
            .contains("240 texts a minute from each sending number and 2,000 a day in all")
    );
    let token = csrf(&page.body);
    let form = [
        ("csrf", token.as_str()),
        ("quiet_hours", "standard"),
        ("marketing_cap_per_day", "3"),
        ("keyword_replies", "assent"),
        ("rate_preset", "standard_mid"),
    ];
    let r = b.post("/settings", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(
        s["rate_limits"],
        serde_json::json!({"preset": "standard_mid", "per_sender_per_minute": 2400, "per_tenant_per_day": 40000})
    );
    let page = b.get("/settings").await;
    assert!(
        page.body
            .contains("<option value=\"standard_mid\" selected>")
    );
    assert!(
        page.body
            .contains("2,400 texts a minute from each sending number and 40,000 a day in all")
    );
    // Own numbers, checked.
    let mut own = form.to_vec();
    own[4] = ("rate_preset", "custom");
    own.push(("per_sender_per_minute", "0"));
    own.push(("per_tenant_per_day", "500"));
    let r = b.post("/settings", &own).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    own[5] = ("per_sender_per_minute", "30");
    let r = b.post("/settings", &own).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(
        s["rate_limits"],
        serde_json::json!({"per_sender_per_minute": 30, "per_tenant_per_day": 500})
    );
}

/// The page shows the English texts only: saving it keeps the Spanish ones and the
/// marketing footer set through the API (it used to drop every text it did not show).
#[tokio::test]
async fn saving_the_settings_page_keeps_texts_it_does_not_show() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let texts = serde_json::json!({
        "help.es": "Acme Plumbing: para ayuda llame al 512-555-0100. Responda PARAR para cancelar.",
        "marketing_footer": "Reply STOP to end these offers",
    });
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            serde_json::json!({"reply_texts": texts}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    let token = csrf(&page.body);
    let r = b
        .post(
            "/settings",
            &[
                ("csrf", token.as_str()),
                ("quiet_hours", "strictest"),
                ("marketing_cap_per_day", "3"),
                ("keyword_replies", "assent"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(s["quiet_hours"], "strictest");
    assert_eq!(s["reply_texts"], texts);
}

#[tokio::test]
async fn the_composer_previews_who_it_goes_to_before_the_send_button() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    // Tagged hvac: Ana opted in, Bo opted out, Cy never asked.
    for (name, phone, text) in [
        (
            "Ana",
            "+17375550201",
            Some("I would like to sign up for marketing text messages!"),
        ),
        ("Bo", "+17375550202", Some("STOP")),
        ("Cy", "+17375550203", None),
    ] {
        let (s, v) = app
            .post(
                "/customers",
                &t.key,
                serde_json::json!({"name": name, "tags": ["hvac"], "phones": [{"number": phone, "marketing_updates": true}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        if let Some(text) = text {
            assert_eq!(app.inbound(phone, MK, text).await, StatusCode::OK);
        }
    }
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/campaigns/new").await;
    assert!(page.body.contains(">Create campaign</button>"));
    let token = csrf(&page.body);
    let r = compose(&mut b, &token, "preview", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains(
            "<strong>3</strong> phones in the audience: <strong>1</strong> would be sent"
        ),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("The number has opted out of these messages.</td><td>1</td>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("written consent to marketing messages.</td><td>1</td>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(">Send to 1 phone</button>"), "{}", r.body);
    let r = compose(&mut b, &token, "preview", "2026-03-05T10:00").await;
    assert!(
        r.body.contains(">Schedule for 1 phone</button>"),
        "{}",
        r.body
    );
    // A time already past is said on preview, and refused on create.
    let r = compose(&mut b, &token, "preview", "2026-03-01T10:00").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Send at is in the past"), "{}", r.body);
    let r = compose(&mut b, &token, "create", "2026-03-01T10:00").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The preview created nothing.
    let (_, list) = app.get("/campaigns", &t.key).await;
    assert_eq!(list["campaigns"], serde_json::json!([]), "{list}");
    let r = compose(&mut b, &token, "create", "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

/// The composer's form for the tune-up to customers tagged hvac.
async fn compose(b: &mut Browser, token: &str, action: &str, send_at: &str) -> Answer {
    b.post(
        "/campaigns/new",
        &[
            ("csrf", token),
            ("name", "Tune-up"),
            ("body", "Hi {first_name|there}, 10% off."),
            ("tags", "hvac"),
            ("send_at", send_at),
            ("action", action),
        ],
    )
    .await
}

/// The send log rows of a report page (their conversation links) and its pager's links.
fn log_page(body: &str) -> (Vec<String>, Option<String>, Option<String>) {
    let rows = body
        .split("<tr><td data-label=\"Phone\"><a href=\"/conversations/")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().to_string())
        .collect();
    let link = |rel: &str| {
        let end = body.find(&format!("\" rel=\"{rel}\""))?;
        let start = body[..end].rfind("href=\"")? + "href=\"".len();
        Some(body[start..end].to_string())
    };
    (rows, link("prev"), link("next"))
}

#[tokio::test]
async fn the_report_page_pages_its_send_log_fifty_at_a_time() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let n = 120;
    let mut csv = String::from("name,phone,tags\n");
    for i in 0..n {
        csv.push_str(&format!("C {i},+1737{:07},web\n", 4_000_000 + i));
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
    let (s, v) = app
        .post(
            "/campaigns",
            &t.key,
            serde_json::json!({"name": "Web", "type": "marketing", "body": "Sale", "audience": {"tags": ["web"]}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assent_server::campaigns::tick(&app.app).await.unwrap();

    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let mut url = format!("/campaigns/{id}");
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = b.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains(&format!("{n} recipients")),
            "{}",
            page.body
        );
        let (rows, prev, next) = log_page(&page.body);
        assert!(rows.len() <= 50);
        assert_eq!(prev.is_some(), !pages.is_empty(), "{url}");
        seen.extend(rows.clone());
        pages.push((url.clone(), rows));
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    assert_eq!(pages.len(), 3);
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (n, n), "each recipient once");
    // Previous from the last page shows the page before it, with both links.
    let last = b.get(&pages[2].0).await;
    let (_, prev, _) = log_page(&last.body);
    let back = b.get(&prev.unwrap()).await;
    let (rows, prev, next) = log_page(&back.body);
    assert_eq!(rows, pages[1].1);
    assert!(prev.is_some() && next.is_some());
}

#[tokio::test]
async fn list_pages_say_which_rows_of_how_many_and_link_both_ways() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for i in 0..119 {
        app.customer(
            &t,
            &format!("Pat {i:03}"),
            &format!("(737) 555-{i:04}"),
            true,
            false,
        )
        .await;
    }
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let link = |body: &str, rel: &str| -> Option<String> {
        let at = body.find(&format!("rel=\"{rel}\""))?;
        let start = body[..at].rfind("href=\"")? + 6;
        Some(body[start..].split('"').next()?.replace("&amp;", "&"))
    };
    let first = b.get("/customers").await;
    assert!(first.body.contains("1–50 of 120"), "{}", first.body);
    assert!(link(&first.body, "prev").is_none());
    assert!(first.body.contains("Pat 118") && !first.body.contains("Pat 068"));
    let second = b.get(&link(&first.body, "next").unwrap()).await;
    assert!(second.body.contains("51–100 of 120"), "{}", second.body);
    assert!(second.body.contains("Pat 068") && !second.body.contains("Pat 118"));
    let third = b.get(&link(&second.body, "next").unwrap()).await;
    assert!(third.body.contains("101–120 of 120"), "{}", third.body);
    assert!(third.body.contains(">Dana<"), "the oldest last");
    assert!(link(&third.body, "next").is_none());
    let back = b.get(&link(&third.body, "prev").unwrap()).await;
    assert!(back.body.contains("51–100 of 120"), "{}", back.body);
    assert!(back.body.contains("Pat 068") && !back.body.contains("Pat 118"));
    let start = b.get(&link(&back.body, "prev").unwrap()).await;
    assert!(start.body.contains("1–50 of 120"), "{}", start.body);
    assert!(start.body.contains("Pat 118"));
    // The ledger, newest first, pages the same way.
    let ledger = b.get("/compliance").await;
    assert!(ledger.body.contains("1–50 of "), "{}", ledger.body);
    let older = b.get(&link(&ledger.body, "next").unwrap()).await;
    assert!(older.body.contains("51–100 of "), "{}", older.body);
    // A campaign list shows each campaign's counts.
    let (s, v) = app
        .post(
            "/campaigns",
            &t.key,
            serde_json::json!({"name": "Spring", "type": "marketing", "body": "10% off"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let list = b.get("/campaigns").await;
    assert!(
        list.body.contains("1–1 of 1") && list.body.contains("Opted out after"),
        "{}",
        list.body
    );
}

#[tokio::test]
async fn the_settings_page_says_which_policy_pages_are_in_use_and_checks_twilio() {
    let (fake, received) = assent_server::fake_twilio::spawn().await.unwrap();
    let app = TestApp::spawn_with_app(move |app, _| {
        app.twilio_account = Some(std::sync::Arc::new(
            assent_provider::twilio_account::TwilioAccount::new(
                assent_provider::twilio_account::AccountConfig {
                    account_sid: "ACtest".into(),
                    auth_token: "token".into(),
                    api_base: fake.clone(),
                    messaging_base: fake,
                },
            )
            .unwrap(),
        ));
    })
    .await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/settings").await;
    assert!(
        page.body.contains(&format!(
            "In use: Assent&#39;s default terms page, /optin/{}/terms.",
            t.slug
        )) || page.body.contains(&format!(
            "In use: Assent's default terms page, /optin/{}/terms.",
            t.slug
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("Check Twilio"));
    let token = csrf(&page.body);
    // A short brand name from the page; the privacy page becomes the tenant's own.
    let r = b
        .post(
            "/settings",
            &[
                ("csrf", token.as_str()),
                ("privacy_url", "https://acme.example/privacy"),
                ("quiet_hours", "standard"),
                ("marketing_cap_per_day", "3"),
                ("keyword_replies", "assent"),
                ("short_brand_name", "Acme"),
                ("provider_opt_in_keyword", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get("/settings").await;
    assert!(
        page.body
            .contains("In use: your privacy policy page, https://acme.example/privacy."),
        "{}",
        page.body
    );
    let (_, s) = app.get("/settings", &t.key).await;
    assert_eq!(s["short_brand_name"], "Acme");

    // The button: the findings, each with what to change.
    received
        .account
        .lock()
        .unwrap()
        .number(TX, "https://old.example/sms");
    let r = b
        .post(
            "/settings/twilio-check",
            &[("csrf", csrf(&page.body).as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body.contains("is not a number of Twilio account ACtest"),
        "{}",
        r.body
    );
    assert!(r.body.contains("https://old.example/sms"), "{}", r.body);
    assert!(r.body.contains("To fix:"), "{}", r.body);
}

/// The `href` of the link with `rel` on a page, if any.
fn rel_link(body: &str, rel: &str) -> Option<String> {
    let at = body.find(&format!("rel=\"{rel}\""))?;
    let start = body[..at].rfind("href=\"")? + 6;
    Some(body[start..].split('"').next()?.replace("&amp;", "&"))
}

#[tokio::test]
async fn a_long_conversation_pages_through_every_message_once() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    let n = 230;
    for i in 0..n {
        let status = app
            .inbound("+15125550160", TX, &format!("Note {i:03} about the job."))
            .await;
        assert_eq!(status, StatusCode::OK);
        app.clock.advance(Duration::seconds(1));
    }
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let notes = |body: &str| -> Vec<usize> {
        (0..n)
            .filter(|i| body.contains(&format!("Note {i:03} about the job.")))
            .collect()
    };
    // The latest page: the newest 200, a link to older ones and none to newer.
    let latest = b.get("/conversations/%2B15125550160").await;
    assert_eq!(latest.status, StatusCode::OK);
    assert_eq!(notes(&latest.body), (n - 200..n).collect::<Vec<_>>());
    assert!(rel_link(&latest.body, "next").is_none());
    // The older page holds the rest, each once, and links back.
    let older = b.get(&rel_link(&latest.body, "prev").unwrap()).await;
    assert_eq!(notes(&older.body), (0..n - 200).collect::<Vec<_>>());
    assert!(rel_link(&older.body, "prev").is_none(), "the oldest page");
    let newer = b.get(&rel_link(&older.body, "next").unwrap()).await;
    assert_eq!(notes(&newer.body), (n - 200..n).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_reviews_to_decide_count_is_the_tenants_not_the_pages() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    with_user(&app, &t).await;
    // More texts under review than a page shows.
    for i in 0..55 {
        let from = format!("+1737555{i:04}");
        let status = app
            .inbound(&from, TX, "we have to stop this leak before friday")
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let mut b = Browser::new(&app);
    b.sign_in(EMAIL, PASSWORD).await;
    let first = b.get("/reviews").await;
    assert!(first.body.contains("To decide (55)"), "{}", first.body);
    assert!(first.body.contains("1–50 of 55"), "{}", first.body);
    let second = b.get(&rel_link(&first.body, "next").unwrap()).await;
    assert!(second.body.contains("To decide (55)"), "{}", second.body);
    assert!(second.body.contains("51–55 of 55"), "{}", second.body);
}
