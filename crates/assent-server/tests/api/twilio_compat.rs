//! Issue 19, the consent firewall for code written against Twilio: account SIDs, HTTP Basic
//! auth, `Messages.json` sends through the gate with Twilio's error codes, reading a
//! message and the list, and status callbacks signed as Twilio signs them. Runs on
//! PostgreSQL too when ASSENT_TEST_POSTGRES_URL is set.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn account_sid(app: &TestApp, t: &Tenant) -> String {
    let (s, v) = app.get("/settings", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["account_sid"].as_str().expect("account_sid").to_string()
}

fn messages_url(app: &TestApp, sid: &str) -> String {
    format!("{}/2010-04-01/Accounts/{sid}/Messages.json", app.base)
}

async fn twilio_send(
    app: &TestApp,
    sid: &str,
    key: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let r = app
        .client
        .post(messages_url(app, sid))
        .basic_auth(sid, Some(key))
        .form(form)
        .send()
        .await
        .expect("send");
    let s = r.status();
    (s, r.json().await.expect("json"))
}

async fn twilio_get(app: &TestApp, sid: &str, key: &str, url: &str) -> (StatusCode, Value) {
    let r = app
        .client
        .get(url)
        .basic_auth(sid, Some(key))
        .send()
        .await
        .expect("get");
    let s = r.status();
    (s, r.json().await.expect("json"))
}

/// A refused send: its form, Twilio's code and Assent's reason.
type Case<'a> = (&'a [(&'a str, &'a str)], u64, &'a str);

fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34
        && s.starts_with(prefix)
        && s[2..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[tokio::test]
async fn basic_auth_send_goes_through_the_queue_and_reads_back_in_twilios_words() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let sid = account_sid(&app, &t).await;
    assert!(is_sid(&sid, "AC"), "{sid}");
    let (s, v) = twilio_send(
        &app,
        &sid,
        &t.key,
        &[
            ("To", PHONE),
            ("From", TX),
            ("Body", "Your plumber is on the way"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let msid = v["sid"].as_str().unwrap().to_string();
    assert!(is_sid(&msid, "SM"), "{msid}");
    assert_eq!(v["account_sid"], sid.as_str());
    assert_eq!(v["status"], "queued");
    assert_eq!(v["to"], PHONE);
    assert_eq!(v["from"], TX);
    assert_eq!(v["num_segments"], "1");
    assert_eq!(
        v["uri"],
        format!("/2010-04-01/Accounts/{sid}/Messages/{msid}.json")
    );
    // The same message in Assent's own API: a job notification queued like any other.
    let msgs = app.messages(&t, PHONE).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["purpose"], "job_notification");
    assert_eq!(msgs[0]["body"], "Your plumber is on the way");
    assert_eq!(
        format!("SM{}", msgs[0]["id"].as_str().unwrap().replace('-', "")),
        msid
    );
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1);
    let url = format!("{}{}", app.base, v["uri"].as_str().unwrap());
    let (s, v) = twilio_get(&app, &sid, &t.key, &url).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        matches!(v["status"].as_str(), Some("sent" | "delivered")),
        "{v}"
    );
    // Another tenant's key does not read it.
    let (s, v) = app
        .post("/tenants", ADMIN, json!({"name": "Other Co"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let other = Tenant {
        id: v["id"].as_str().unwrap().into(),
        slug: v["slug"].as_str().unwrap().into(),
        key: v["api_key"].as_str().unwrap().into(),
    };
    let other_sid = account_sid(&app, &other).await;
    assert_ne!(other_sid, sid);
    let foreign = url.replace(&sid, &other_sid);
    let (s, v) = twilio_get(&app, &other_sid, &other.key, &foreign).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["code"], 20404);
}

#[tokio::test]
async fn wrong_credentials_get_twilios_401_with_code_20003() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let sid = account_sid(&app, &t).await;
    let form = [("To", PHONE), ("From", TX), ("Body", "hi")];
    for (user, key) in [
        (sid.as_str(), "not-the-key"),
        ("AC00000000000000000000000000000000", t.key.as_str()),
    ] {
        let (s, v) = twilio_send(&app, user, key, &form).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(v["code"], 20003, "{v}");
        assert_eq!(v["status"], 401);
        assert!(v["more_info"].as_str().unwrap().contains("20003"));
    }
    // The right credentials on another account's path.
    let r = app
        .client
        .post(messages_url(&app, "AC00000000000000000000000000000000"))
        .basic_auth(&sid, Some(&t.key))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // No credentials at all.
    let r = app
        .client
        .post(messages_url(&app, &sid))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("www-authenticate").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 20003);
    assert!(
        app.messages(&t, PHONE).await.is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn refusals_carry_twilios_codes_and_assents_reason() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let sid = account_sid(&app, &t).await;
    let (s, v) = app
        .post(
            &format!("/consent/{PHONE}/opt-out"),
            &t.key,
            json!({"scope": "all", "method": "phone_call"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cases: [Case; 4] = [
        (
            &[("To", PHONE), ("From", TX), ("Body", "hi")],
            21610,
            "opted_out",
        ),
        (
            &[("To", "12"), ("From", TX), ("Body", "hi")],
            21211,
            "invalid_number",
        ),
        (
            &[
                ("To", "+15125550199"),
                ("From", "+15125550777"),
                ("Body", "hi"),
            ],
            21606,
            "not_a_sender",
        ),
        (
            &[
                ("To", "+15125550199"),
                ("From", TX),
                ("Body", "hi"),
                ("AssentPurpose", "marketing"),
            ],
            21606,
            "not_a_sender",
        ),
    ];
    for (form, code, reason) in cases {
        let (s, v) = twilio_send(&app, &sid, &t.key, form).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{form:?}: {v}");
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["status"], 400, "{v}");
        assert_eq!(v["assent_reason"], reason, "{v}");
        assert_eq!(
            v["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (s, v) = twilio_send(&app, &sid, &t.key, &[("From", TX), ("Body", "hi")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], 21604, "{v}");
    assert!(app.messages(&t, PHONE).await.is_empty());
    app.drain().await;
    assert!(app.sent().is_empty());
}

#[tokio::test]
async fn the_list_filters_by_to_and_from_and_pages_with_next_page_uri() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.customer(&t, "Eli", "+15125550143", true, true).await;
    let sid = account_sid(&app, &t).await;
    let mut sids = vec![];
    for (to, body) in [(PHONE, "one"), ("+15125550143", "two"), (PHONE, "three")] {
        let (s, v) = twilio_send(
            &app,
            &sid,
            &t.key,
            &[("To", to), ("From", TX), ("Body", body)],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        sids.push(v["sid"].as_str().unwrap().to_string());
    }
    // To PHONE, a page of one at a time, newest first.
    let mut url = format!(
        "{}?To={}&PageSize=1",
        messages_url(&app, &sid),
        PHONE.replace('+', "%2B")
    );
    let mut seen = vec![];
    for _ in 0..5 {
        let (s, v) = twilio_get(&app, &sid, &t.key, &url).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["page_size"], 1);
        for m in v["messages"].as_array().unwrap() {
            assert_eq!(m["to"], PHONE);
            seen.push(m["sid"].as_str().unwrap().to_string());
        }
        match v["next_page_uri"].as_str() {
            Some(next) => url = format!("{}{next}", app.base),
            None => break,
        }
    }
    assert_eq!(seen, vec![sids[2].clone(), sids[0].clone()]);
    // From a number no message came from: nothing.
    let url = format!("{}?From=%2B15125550999", messages_url(&app, &sid));
    let (s, v) = twilio_get(&app, &sid, &t.key, &url).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["messages"].as_array().unwrap().is_empty());
    assert!(v["next_page_uri"].is_null());
    // DateSent: the test clock's day has all three, the day before none.
    let today = app.app.clock.now().date_naive();
    for (q, n) in [
        (format!("DateSent={today}"), 3),
        (format!("DateSent%3C={}", today.pred_opt().unwrap()), 0),
        (format!("DateSent%3E={today}"), 3),
    ] {
        let url = format!("{}?{q}", messages_url(&app, &sid));
        let (s, v) = twilio_get(&app, &sid, &t.key, &url).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        assert_eq!(v["messages"].as_array().unwrap().len(), n, "{q}");
    }
}

#[tokio::test]
async fn status_callbacks_are_signed_with_the_api_key_as_twilio_signs_them() {
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = true).await;
    let (t, _) = app.tenant().await;
    let sid = account_sid(&app, &t).await;
    let callback = format!("{}/twilio/status?job=42", receiver.uri());
    let (s, v) = twilio_send(
        &app,
        &sid,
        &t.key,
        &[
            ("To", PHONE),
            ("From", TX),
            ("Body", "On the way"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let msid = v["sid"].as_str().unwrap().to_string();
    app.drain().await;
    let http = assent_server::outbox::http_client();
    // Deliver until the outbox is empty (each pass takes what is due now).
    for _ in 0..10 {
        if assent_server::outbox::deliver_due(&app.app, &http)
            .await
            .unwrap()
            == 0
        {
            break;
        }
    }
    let got = receiver.received_requests().await.unwrap();
    assert!(!got.is_empty(), "no callback arrived");
    let mut statuses = vec![];
    for r in &got {
        let form: Vec<(String, String)> = form_urlencoded::parse(&r.body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MessageSid").as_deref(), Some(msid.as_str()));
        assert_eq!(get("AccountSid").as_deref(), Some(sid.as_str()));
        assert_eq!(get("To").as_deref(), Some(PHONE));
        assert_eq!(get("From").as_deref(), Some(TX));
        let signature = r
            .headers
            .get("x-twilio-signature")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(
            assent_provider::signature::verify(&t.key, &callback, &form, signature),
            "the signature checks out with the API key as the auth token"
        );
        assert!(!assent_provider::signature::verify(
            "other", &callback, &form, signature
        ));
        statuses.push(get("MessageStatus").unwrap());
    }
    assert!(
        statuses.iter().any(|s| s == "sent" || s == "delivered"),
        "{statuses:?}"
    );
    // Nothing is delivered twice.
    assert_eq!(
        assent_server::outbox::deliver_due(&app.app, &http)
            .await
            .unwrap(),
        0
    );
    assert_eq!(receiver.received_requests().await.unwrap().len(), got.len());
}

#[tokio::test]
async fn callbacks_to_loopback_are_refused_unless_allowed() {
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = false).await;
    let (t, _) = app.tenant().await;
    let sid = account_sid(&app, &t).await;
    let callback = format!("{}/cb", receiver.uri());
    let (s, v) = twilio_send(
        &app,
        &sid,
        &t.key,
        &[
            ("To", PHONE),
            ("From", TX),
            ("Body", "hi"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.drain().await;
    let http = assent_server::outbox::http_client();
    let mut taken = 0;
    for _ in 0..10 {
        match assent_server::outbox::deliver_due(&app.app, &http)
            .await
            .unwrap()
        {
            0 => break,
            n => taken += n,
        }
    }
    assert!(taken > 0, "the status changes were written to the outbox");
    assert_eq!(
        assent_server::outbox::deliver_due(&app.app, &http)
            .await
            .unwrap(),
        0,
        "a refused target is given up, not retried"
    );
    assert!(receiver.received_requests().await.unwrap().is_empty());
}

/// The list runs newest first by creation time across days, a `PageToken` carries the
/// position through `DateSent` and `To` filters, and a token the list did not write is
/// Twilio's 21000.
#[tokio::test]
async fn the_list_pages_newest_first_across_days_within_its_filters() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let sid = account_sid(&app, &t).await;
    let mut sids = vec![];
    for day in 0..3 {
        for body in ["first", "second"] {
            let (s, v) = twilio_send(
                &app,
                &sid,
                &t.key,
                &[("To", PHONE), ("From", TX), ("Body", body)],
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{day} {body}: {v}");
            sids.push(v["sid"].as_str().unwrap().to_string());
            app.clock.advance(chrono::Duration::minutes(1));
        }
        app.clock.advance(chrono::Duration::days(1));
    }
    let first_day = (app.app.clock.now() - chrono::Duration::days(3)).date_naive();
    let read_all = |query: String| {
        let (app, sid, key) = (&app, sid.clone(), t.key.clone());
        async move {
            let mut url = format!("{}?{query}&PageSize=1", messages_url(app, &sid));
            let mut seen = vec![];
            for _ in 0..10 {
                let (s, v) = twilio_get(app, &sid, &key, &url).await;
                assert_eq!(s, StatusCode::OK, "{query}: {v}");
                for m in v["messages"].as_array().unwrap() {
                    seen.push(m["sid"].as_str().unwrap().to_string());
                }
                match v["next_page_uri"].as_str() {
                    Some(next) => url = format!("{}{next}", app.base),
                    None => return seen,
                }
            }
            panic!("{query}: the pages did not end");
        }
    };
    let newest_first: Vec<String> = sids.iter().rev().cloned().collect();
    let to = format!("To={}", PHONE.replace('+', "%2B"));
    assert_eq!(read_all(to.clone()).await, newest_first);
    let from = format!("From={}", TX.replace('+', "%2B"));
    assert_eq!(read_all(from).await, newest_first);
    // The middle day only, and from the middle day on.
    let middle = first_day.succ_opt().unwrap();
    assert_eq!(
        read_all(format!("{to}&DateSent={middle}")).await,
        vec![sids[3].clone(), sids[2].clone()]
    );
    assert_eq!(
        read_all(format!("DateSent%3E={middle}")).await,
        newest_first[..4].to_vec()
    );
    let url = format!("{}?PageToken=12", messages_url(&app, &sid));
    let (s, v) = twilio_get(&app, &sid, &t.key, &url).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], 21000, "{v}");
}
