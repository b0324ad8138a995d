//! Proof of consent: the dispute bundle a phone's records make (`GET /consent/{e164}/proof`,
//! its printable page, the customer record's button) and the hash chain under it.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const CUSTOMER_PHONE: &str = "+17375550188";

async fn form_post(app: &TestApp, slug: &str, phone: &str) {
    let r = app
        .client
        .post(format!("{}/optin/{slug}", app.base))
        .header("User-Agent", "Mozilla/5.0 (proof test)")
        .form(&[
            ("phone", phone),
            ("consent", "yes"),
            ("page", "https://acme.example/deals"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
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

/// A phone that opted in through the form, got a marketing text and then texted STOP.
async fn a_disputed_phone(app: &TestApp) -> Tenant {
    let (t, _) = app.tenant().await;
    form_post(app, &t.slug, CUSTOMER_PHONE).await;
    app.drain().await;
    app.inbound(CUSTOMER_PHONE, MK, "YES").await;
    app.drain().await;
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": CUSTOMER_PHONE, "purpose": "marketing", "body": "Acme Plumbing: 10% off AC tune-ups this week"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    app.drain().await;
    app.clock.advance(chrono::Duration::minutes(5));
    app.inbound(CUSTOMER_PHONE, MK, "STOP").await;
    app.drain().await;
    t
}

#[tokio::test]
async fn the_proof_holds_every_entry_the_request_as_delivered_the_form_and_the_stop_timeline() {
    let app = TestApp::spawn().await;
    let t = a_disputed_phone(&app).await;
    let p = proof(&app, &t, CUSTOMER_PHONE).await;
    let consent = app.consent(&t, CUSTOMER_PHONE).await;
    let messages = app.messages(&t, CUSTOMER_PHONE).await;

    // Every ledger entry, with its hash.
    let entries = p["entries"].as_array().unwrap();
    assert_eq!(entries.len(), consent["events"].as_array().unwrap().len());
    assert!(entries.len() >= 3, "{p}");
    for (e, c) in entries.iter().zip(consent["events"].as_array().unwrap()) {
        assert_eq!(e["seq"], c["seq"]);
        assert_eq!(e["hash"], c["hash"]);
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    }

    // The opt-in: the request message exactly as it went out, and the customer's YES.
    let request = messages
        .iter()
        .find(|m| m["kind"] == "opt_in_request")
        .expect("the request was sent");
    let opt_in = &p["opt_ins"][0];
    assert_eq!(opt_in["request"]["id"], request["id"]);
    assert_eq!(opt_in["request"]["provider_id"], request["provider_id"]);
    assert!(opt_in["request"]["provider_id"].is_string(), "{opt_in}");
    assert_eq!(opt_in["request"]["body"], request["body"]);
    assert_eq!(opt_in["request"]["status"], request["status"]);
    assert!(
        opt_in["request"]["body"].as_str().unwrap().contains("YES"),
        "the disclosure as delivered: {opt_in}"
    );
    assert_eq!(opt_in["answer"]["body"], "YES");

    // The form: IP, user agent, page and the disclosure shown.
    let form = &p["form_submissions"][0];
    assert_eq!(form["ip"], "127.0.0.1");
    assert_eq!(form["user_agent"], "Mozilla/5.0 (proof test)");
    assert_eq!(form["page"], "https://acme.example/deals");
    assert!(
        form["disclosure"]
            .as_str()
            .unwrap()
            .contains("Consent is not a condition of purchase")
    );

    // STOP: received, recorded, confirmed, and what came before it.
    let stop = p["stops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["channel"] == "marketing")
        .expect("a marketing opt-out");
    assert_eq!(stop["received"]["body"], "STOP");
    assert!(stop["recorded_at"].is_string());
    let confirmation = stop["confirmation"]["body"].as_str().unwrap();
    assert!(
        app.sent_to(CUSTOMER_PHONE)
            .iter()
            .any(|s| s.2 == confirmation),
        "the confirmation is one that went out: {confirmation}"
    );
    assert!(
        stop["last_message_before"]["body"]
            .as_str()
            .unwrap()
            .starts_with("Acme Plumbing: 10% off AC tune-ups this week"),
        "{stop}"
    );

    // The chain holds and its head is the tenant's last entry.
    assert_eq!(p["chain"]["verified"], true, "{p}");
    assert_eq!(p["chain"]["head"], entries.last().unwrap()["hash"]);
    assert_eq!(p["consent"]["marketing"], "opted_out");
    assert!(p["consent"]["possibly_reassigned_since"].is_null());
    assert_eq!(p["truncated"]["entries"], false);

    // What the answer holds is what openapi.json says it may.
    let (_, doc) = app.get("/openapi.json", &t.key).await;
    let schema = &doc["components"]["schemas"]["Proof"]["properties"];
    for key in p.as_object().unwrap().keys() {
        assert!(schema.get(key).is_some(), "{key} is not in Proof");
    }
    assert!(doc["paths"]["/consent/{phone}/proof"]["get"].is_object());
    let event = &doc["components"]["schemas"]["ConsentEvent"]["properties"];
    for key in consent["events"][0].as_object().unwrap().keys() {
        assert!(event.get(key).is_some(), "{key} is not in ConsentEvent");
    }
}

#[tokio::test]
async fn the_proof_prints_as_html_and_refuses_an_unknown_format() {
    let app = TestApp::spawn().await;
    let t = a_disputed_phone(&app).await;
    let head = proof(&app, &t, CUSTOMER_PHONE).await["chain"]["head"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .get(format!(
            "{}/api/v1/consent/%2B17375550188/proof?format=html",
            app.base
        ))
        .header("Authorization", format!("Bearer {}", t.key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    for want in [
        "<h1>Proof of consent</h1>",
        CUSTOMER_PHONE,
        head.as_str(),
        "href=\"/assets/proof.css\"",
        "Mozilla/5.0 (proof test)",
        "https://acme.example/deals",
    ] {
        assert!(html.contains(want), "{want} missing");
    }
    let (s, v) = app
        .get("/consent/%2B17375550188/proof?format=pdf", &t.key)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("format"));
    let (s, v) = app.get("/consent/not-a-phone/proof", &t.key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("phone"));
}

#[tokio::test]
async fn a_wrong_number_shows_in_the_proof_as_possibly_reassigned() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, MK, "Sorry, wrong number").await;
    let p = proof(&app, &t, PHONE).await;
    assert!(p["consent"]["possibly_reassigned_since"].is_string(), "{p}");
    let r = app
        .client
        .get(format!(
            "{}/api/v1/consent/%2B15125550142/proof?format=html",
            app.base
        ))
        .header("Authorization", format!("Bearer {}", t.key))
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("Possibly reassigned"), "{html}");
}

#[tokio::test]
async fn an_edited_ledger_row_makes_the_proof_say_the_chain_does_not_hold() {
    let app = TestApp::spawn().await;
    let t = a_disputed_phone(&app).await;
    let p = proof(&app, &t, CUSTOMER_PHONE).await;
    assert_eq!(p["chain"]["verified"], true);
    let seq = p["entries"][0]["seq"].as_i64().unwrap();
    let edit = format!("UPDATE consent_ledger SET ip = '198.51.100.7' WHERE seq = {seq}");
    if is_postgres(&app.db_url) {
        let mut conn = pg_connect(&app.db_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE consent_ledger DISABLE TRIGGER consent_ledger_no_change; {edit}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    } else {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP TRIGGER consent_ledger_no_update; {edit}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let p = proof(&app, &t, CUSTOMER_PHONE).await;
    assert_eq!(p["chain"]["verified"], false, "{p}");
    assert!(
        p["chain"]["broken"]
            .as_str()
            .unwrap()
            .contains(&format!("seq {seq}")),
        "{p}"
    );
    assert_eq!(p["entries"][0]["evidence"]["ip"], "198.51.100.7");
}

#[tokio::test]
async fn the_customer_record_opens_the_proof_of_consent() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    app.inbound(PHONE, MK, "STOP").await;
    assent_server::web::create_user(
        &app.app,
        &t.slug,
        "manager@acme.example",
        "correct horse battery",
    )
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/login", app.base))
        .form(&[
            ("email", "manager@acme.example"),
            ("password", "correct horse battery"),
            ("next", "/customers"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let get = |path: String| {
        client
            .get(format!("{}{path}", app.base))
            .header("Cookie", cookie.clone())
            .send()
    };
    let record = get(format!("/customers/{customer}")).await.unwrap();
    let html = record.text().await.unwrap();
    let href = format!("/customers/{customer}/phones/%2B15125550142/proof");
    assert!(
        html.contains(&format!("href=\"{href}\"")) && html.contains(">Proof of consent</a>"),
        "the record links its proof"
    );
    let page = get(href.clone()).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Proof of consent</h1>") && html.contains("+15125550142"));
    assert!(html.contains("STOP"));
    let css = get("/assets/proof.css".to_string())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("@media print"), "the print stylesheet");
    // Without a lookup provider the settings page says plainly that no check is made.
    let settings = get("/settings".to_string())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        settings.contains("Reassigned numbers: no check is made."),
        "the settings page says so"
    );
    // Not signed in: no proof.
    let r = client
        .get(format!("{}{href}", app.base))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
    // A phone the customer does not hold: not found.
    let r = get(format!("/customers/{customer}/phones/%2B15125550199/proof"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
