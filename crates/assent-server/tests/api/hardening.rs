//! The server's edges under hostile input (issue 13): U+0000 in every kind of input, the
//! simulator's controls per tenant, sign-in redirects and guessing, settings links, the
//! form's captcha, idempotency keys, parallel imports, and the answers openapi.json
//! documents. Both databases. (Health, slow clients and the demo are tested through the
//! binary in crates/assent/tests.)

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn message(v: &serde_json::Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

/// PostgreSQL cannot store U+0000: a STOP that carries one must still count, or Twilio
/// retries until it gives up and the opt-out is lost.
#[tokio::test]
async fn a_stop_with_a_trailing_nul_is_recorded_as_stop() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assert_eq!(app.inbound(PHONE, TX, "STOP\0").await, StatusCode::OK);
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], true, "{consent}");
    // A NUL inside an ordinary text is dropped too, and the text kept.
    let other = "+15125550143";
    app.customer(&t, "Bo", other, true, false).await;
    assert_eq!(
        app.inbound(other, TX, "run\0ning late?").await,
        StatusCode::OK
    );
    let (s, v) = app
        .get(&format!("/consent/{}", other.replace('+', "%2B")), &t.key)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["transactional"]["opted_out"], false, "{v}");
}

#[tokio::test]
async fn the_api_refuses_nul_naming_the_field() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .put("/settings", &t.key, json!({"help_contact": "call\u{0}us"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(message(&v).starts_with("help_contact:"), "{v}");
    let (s, v) = app
        .post(
            "/customers",
            &t.key,
            json!({"name": "Ana", "tags": ["ok", "b\u{0}ad"],
                   "phones": [{"number": "5125550150"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(message(&v).starts_with("tags[1]:"), "{v}");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "on our way\u{0}"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        "{v}"
    );
    assert!(message(&v).starts_with("body:"), "{v}");
    // In a path or a query.
    let (s, v) = app.get("/customers/abc%00def", &t.key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app.get("/messages?phone=%2B1512%00", &t.key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(message(&v).starts_with("phone:"), "{v}");
    // Nothing changed: HELP still answers with the contact as it was.
    let (s, v) = app.get("/settings", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains("\\u0000"), "{v}");
    assert_eq!(app.inbound(PHONE, TX, "HELP").await, StatusCode::OK);
}

#[tokio::test]
async fn imports_reject_a_row_holding_nul_and_an_unclosed_quote_with_its_line() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let csv = "name,phone\nAna,512-555-0150\nB\0o,512-555-0151\nCy,512-555-0152\n\"Di,512-555-0153\nEd,512-555-0154\n";
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
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["created"], 2, "{v}");
    let rejected = v["rejected"].as_array().unwrap();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5], "{v}");
    assert!(
        rejected[0]["error"].as_str().unwrap().contains("U+0000"),
        "{v}"
    );
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("never closed"),
        "{v}"
    );
}

/// A tenant of its own senders, both registrations approved, with a customer at PHONE.
async fn second_tenant(app: &TestApp) -> Tenant {
    let (s, v) = app
        .post(
            "/tenants",
            ADMIN,
            json!({"name": "Other Air", "time_zone": "America/Chicago"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let b = Tenant {
        id: v["id"].as_str().unwrap().into(),
        slug: v["slug"].as_str().unwrap().into(),
        key: v["api_key"].as_str().unwrap().into(),
    };
    let (s, v) = app
        .put(
            "/senders",
            &b.key,
            json!({"transactional": "+15125550200", "marketing": "+15125550201"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.approve(&b, "texting").await;
    app.customer(&b, "Dana", PHONE, true, false).await;
    b
}

async fn send_job(app: &TestApp, t: &Tenant) -> String {
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "On our way"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Tenant B's simulator setting must not write a carrier opt-out into tenant A's ledger.
#[tokio::test]
async fn the_simulator_is_per_tenant() {
    let app = TestApp::spawn().await;
    let (a, _) = app.tenant().await;
    let b = second_tenant(&app).await;
    let (s, v) = app
        .put(
            &format!("/simulator/numbers/{PHONE}"),
            &b.key,
            json!({"behavior": "block"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let from_a = send_job(&app, &a).await;
    let from_b = send_job(&app, &b).await;
    app.drain().await;
    assert_eq!(status(&app, &a, &from_a).await, "delivered");
    assert_ne!(status(&app, &b, &from_b).await, "delivered");
    let consent = app.consent(&a, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], false, "{consent}");
    let consent = app.consent(&b, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], true, "{consent}");
}

async fn status(app: &TestApp, t: &Tenant, id: &str) -> String {
    let (s, v) = app.get(&format!("/messages/{id}"), &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["status"].as_str().unwrap().to_string()
}

const EMAIL: &str = "manager@acme.example";
const PASSWORD: &str = "correct horse battery";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(app: &TestApp, email: &str, password: &str, next: &str) -> reqwest::Response {
    no_redirects()
        .post(format!("{}/login", app.base))
        .form(&[("email", email), ("password", password), ("next", next)])
        .send()
        .await
        .unwrap()
}

/// `next` is resolved as a browser would resolve it, and kept only when it stays here.
#[tokio::test]
async fn after_sign_in_next_never_leaves_the_site_and_never_fails() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    for (next, to) in [
        ("/\t/evil.example", "/"),
        ("//evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/\u{1}", "/"),
        ("https://evil.example/", "/"),
        ("/campaigns?x=é", "/campaigns?x=%C3%A9"),
        ("/customers/1", "/customers/1"),
    ] {
        let r = sign_in(&app, EMAIL, PASSWORD, next).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(r.headers()["location"], to, "{next:?}");
    }
    // The sign-in page itself with such a `next`: a page, never a 500.
    for query in [
        "%09/evil.example",
        "/%09/evil.example",
        "%01",
        "/%0d%0aX:%20y",
    ] {
        let r = no_redirects()
            .get(format!("{}/login?next={query}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{query}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("name=\"next\" value=\"/\""),
            "{query}: {body}"
        );
    }
}

/// The lock is counted before the password is checked, atomically: of 40 parallel
/// guesses only the first five are checked at all.
#[tokio::test]
async fn parallel_guesses_are_counted_before_they_are_checked() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    let guesses = (0..40).map(|i| {
        let app = &app;
        async move {
            sign_in(app, EMAIL, &format!("guess number {i}"), "/")
                .await
                .status()
        }
    });
    let statuses = futures_join_all(guesses).await;
    let wrong = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let locked = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((wrong, locked), (5, 35), "{statuses:?}");
    // Locked: even the right password waits out the lock.
    let r = sign_in(&app, EMAIL, PASSWORD, "/").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(chrono::Duration::minutes(16));
    let r = sign_in(&app, EMAIL, PASSWORD, "/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Polled together: each request is in flight before any answer is read.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

/// An unknown email and a locked account get the same answers: five "wrong", then the
/// same lock page.
#[tokio::test]
async fn unknown_and_locked_emails_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    let unknown = "nobody@acme.example";
    let mut answers = Vec::new();
    for email in [EMAIL, unknown] {
        let mut these = Vec::new();
        for _ in 0..6 {
            let r = sign_in(&app, email, "not the password", "/").await;
            let status = r.status();
            let body = r.text().await.unwrap().replace(email, "EMAIL");
            these.push((status, body));
        }
        answers.push(these);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][4].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0][5].0, StatusCode::TOO_MANY_REQUESTS);
}

/// One address cannot try passwords across many accounts either.
#[tokio::test]
async fn sign_ins_are_limited_per_address() {
    let app = TestApp::spawn_behind_proxy().await;
    let (t, _) = app.tenant().await;
    assent_server::web::create_user(&app.app, &t.slug, EMAIL, PASSWORD)
        .await
        .unwrap();
    let from = |ip: &'static str| {
        let app = &app;
        async move {
            let r = no_redirects()
                .post(format!("{}/login", app.base))
                .header("X-Forwarded-For", ip)
                .form(&[
                    ("email", EMAIL),
                    ("password", "wrong password"),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // The account locks after five; the address counts every attempt.
    let limit = assent_server::web::SIGN_INS_PER_ADDRESS;
    for _ in 0..limit {
        let (s, _) = from("2001:db8:1:2::1").await;
        assert_ne!(s, StatusCode::SEE_OTHER);
    }
    // Another address in the same /64 is the same client.
    let (s, body) = from("2001:db8:1:2:ffff::9").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("from this network"), "{body}");
    // Another client is not held up by it (the account's own lock still answers).
    let (s, body) = from("203.0.113.9").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("locked"), "{body}");
}

#[tokio::test]
async fn terms_and_privacy_links_are_checked_through_the_api_as_on_the_page() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for (field, bad) in [
        ("terms_url", "javascript:alert(document.cookie)"),
        ("privacy_url", "data:text/html,<script>x</script>"),
        ("terms_url", "https://"),
        ("privacy_url", "acme.example/privacy"),
    ] {
        let (s, v) = app.put("/settings", &t.key, json!({ field: bad })).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(message(&v).starts_with(&format!("{field}:")), "{v}");
    }
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"terms_url": "https://acme.example/terms", "privacy_url": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["terms_url"], "https://acme.example/terms");
}

async fn form_post(
    app: &TestApp,
    slug: &str,
    fields: &[(&str, &str)],
    user_agent: &str,
) -> StatusCode {
    app.client
        .post(format!("{}/optin/{slug}", app.base))
        .header("user-agent", user_agent)
        .form(fields)
        .send()
        .await
        .unwrap()
        .status()
}

/// The captcha is asked only within the form's limits, and only a token solved on this
/// site counts.
#[tokio::test]
async fn the_captcha_is_asked_after_the_limits_and_must_be_solved_here() {
    use wiremock::matchers::{body_string_contains, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let verify = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("response=elsewhere"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "hostname": "evil.example"})),
        )
        .mount(&verify)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("response=human"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "hostname": "127.0.0.1"})),
        )
        .mount(&verify)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": false})))
        .mount(&verify)
        .await;
    let url = verify.uri();
    let app = TestApp::spawn_with(|c| {
        c.captcha = Some(
            assent_provider::captcha::Captcha::new(
                assent_provider::captcha::Kind::Turnstile,
                "site-key".into(),
                "secret".into(),
                Some(url),
            )
            .unwrap(),
        );
    })
    .await;
    let (t, _) = app.tenant().await;
    let post = |phone: &'static str, token: &'static str| {
        let app = &app;
        let slug = t.slug.clone();
        async move {
            form_post(
                app,
                &slug,
                &[
                    ("phone", phone),
                    ("consent", "yes"),
                    ("cf-turnstile-response", token),
                ],
                &"M".repeat(10_000),
            )
            .await
        }
    };
    assert_eq!(
        post("7375550500", "elsewhere").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a token solved on another site"
    );
    assert_eq!(post("7375550501", "human").await, StatusCode::OK);
    // The User-Agent is evidence, kept bounded as the page is.
    let c = app.consent(&t, "+17375550501").await;
    let ua = c["events"][0]["evidence"]["user_agent"].as_str().unwrap();
    assert_eq!(ua.len(), 2000);
    // Three more forged tokens fill the address's five; the sixth is refused by the limit
    // without asking the provider.
    for phone in ["7375550502", "7375550503", "7375550504"] {
        assert_eq!(
            post(phone, "forged").await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    let asked = verify.received_requests().await.unwrap().len();
    assert_eq!(
        post("7375550505", "forged").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(verify.received_requests().await.unwrap().len(), asked);
}

async fn post_csv(app: &TestApp, t: &Tenant, path: &str, csv: &str) -> serde_json::Value {
    let r = app
        .client
        .post(format!("{}/api/v1{path}", app.base))
        .bearer_auth(&t.key)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// What the server answers is what openapi.json says it may: every field of an import's
/// answer is in its schema, and the 409s of POST /estimates and POST /messages are listed.
#[tokio::test]
async fn answers_and_openapi_agree() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let (_, doc) = app.get("/openapi.json", &t.key).await;
    let report_fields = doc["components"]["schemas"]["ImportReport"]["properties"].clone();

    let csv = "number,phone,amount\nE-1,512-555-0142,$100\n";
    post_csv(&app, &t, "/imports/estimates", csv).await;
    let again = post_csv(&app, &t, "/imports/estimates", csv).await;
    assert_eq!(again["unchanged"], 1, "{again}");
    for key in again.as_object().unwrap().keys() {
        assert!(
            report_fields.get(key).is_some(),
            "{key} is not in ImportReport"
        );
    }

    let body = json!({"customer_id": customer, "number": "E-7", "amount_cents": 100});
    let (s, _) = app.post("/estimates", &t.key, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = app.post("/estimates", &t.key, body).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "estimate_exists"));
    assert!(doc["paths"]["/estimates"]["post"]["responses"]["409"].is_object());

    // An Idempotency-Key reused for another message: 409, and nothing sent as if it were.
    let send = |body: &'static str| {
        let app = &app;
        let key = t.key.clone();
        async move {
            let r = app
                .client
                .post(format!("{}/api/v1/messages", app.base))
                .bearer_auth(key)
                .header("Idempotency-Key", "order-17")
                .json(&json!({"to": PHONE, "purpose": "job_notification", "body": body}))
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s, first) = send("On our way").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, retry) = send("On our way").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{retry}");
    assert_eq!(retry["id"], first["id"]);
    let (s, other) = send("Your invoice is ready").await;
    assert_eq!(
        (s, code(&other)),
        (StatusCode::CONFLICT, "idempotency_key_reused"),
        "{other}"
    );
    assert!(doc["paths"]["/messages"]["post"]["responses"]["409"].is_object());
}

/// Two files sent at once (through two processes of one deployment on PostgreSQL) create
/// each customer once: the second import finds the first one's customers and updates them.
#[tokio::test]
async fn parallel_imports_do_not_duplicate_customers() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let other = app.another_process().await;
    let mut csv = String::from("name,phone\n");
    for i in 0..300 {
        csv.push_str(&format!("Customer {i},737555{i:04}\n"));
    }
    let (a, b) = tokio::join!(
        post_csv(&app, &t, "/imports/customers", &csv),
        post_csv(&other, &t, "/imports/customers", &csv),
    );
    let created = a["created"].as_u64().unwrap() + b["created"].as_u64().unwrap();
    let updated = a["updated"].as_u64().unwrap() + b["updated"].as_u64().unwrap();
    assert_eq!((created, updated), (300, 300), "{a} {b}");
    let phones: Vec<_> = (0..300).map(|i| e164(&format!("+1737555{i:04}"))).collect();
    let owners = app.app.store.phone_owners(&t.id, &phones).await.unwrap();
    // The 300 imported, each phone on one record.
    assert_eq!(owners.len(), 300);
}
