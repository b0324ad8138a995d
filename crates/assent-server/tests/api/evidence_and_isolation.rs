//! The hosted opt-in form, evidence and the ledger, tenant isolation and authentication.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

async fn form_post(app: &TestApp, slug: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let r = app
        .client
        .post(format!("{}/optin/{slug}", app.base))
        .header("User-Agent", "Mozilla/5.0 (test)")
        .form(fields)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_hosted_form_shows_an_unticked_box_beside_the_full_disclosure() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let r = app
        .client
        .get(format!(
            "{}/optin/{}?page=https://acme.example/deals",
            app.base, t.slug
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors *"), "embeddable in an iframe");
    assert!(r.headers().get("x-frame-options").is_none());
    let html = r.text().await.unwrap();
    assert!(
        html.contains("type=\"checkbox\" id=\"consent\" name=\"consent\" value=\"yes\">"),
        "unticked"
    );
    assert!(!html.contains("checked"));
    for needle in [
        "Acme Plumbing",
        "recurring automated marketing text messages",
        "Consent is not a condition of purchase",
        "Msg frequency varies",
        "Msg &amp; data rates may apply",
        "Reply STOP to opt out, HELP for help",
        "value=\"https://acme.example/deals\"",
        "<label for=\"phone\">",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
}

#[tokio::test]
async fn submitting_the_form_starts_the_double_opt_in_with_web_evidence() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    // 06:00 in Austin: a request the customer asked for goes at once anyway.
    app.clock.set(noon() - chrono::Duration::hours(6));
    let (s, html) = form_post(
        &app,
        &t.slug,
        &[
            ("phone", "(737) 555-0188"),
            ("consent", "yes"),
            ("page", "https://acme.example/deals"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Check your phone"));
    let c = app.consent(&t, "+17375550188").await;
    assert_eq!(
        c["marketing"]["status"], "pending",
        "the form itself opts nobody in"
    );
    let e = &c["events"][0];
    assert_eq!(e["source"], "web_form");
    assert_eq!(e["actor"], "customer");
    assert_eq!(e["evidence"]["ip"], "127.0.0.1");
    assert_eq!(e["evidence"]["user_agent"], "Mozilla/5.0 (test)");
    assert_eq!(e["evidence"]["page"], "https://acme.example/deals");
    assert!(
        e["evidence"]["disclosure"]
            .as_str()
            .unwrap()
            .contains("Consent is not a condition of purchase")
    );
    app.drain().await;
    assert_eq!(app.sent_to("+17375550188").len(), 1);

    app.inbound("+17375550188", MK, "yes").await;
    assert_eq!(
        app.consent(&t, "+17375550188").await["marketing"]["status"],
        "opted_in"
    );
}

#[tokio::test]
async fn resubmitting_the_form_for_an_opted_in_number_changes_nothing_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(
        PHONE,
        MK,
        "I would like to sign up for marketing text messages!",
    )
    .await;
    app.drain().await;
    let before = app.consent(&t, PHONE).await;
    let sent_before = app.sent_to(PHONE).len();
    let (s, html) = form_post(&app, &t.slug, &[("phone", PHONE), ("consent", "on")]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Check your phone"),
        "the same answer as for a new number"
    );
    app.drain().await;
    assert_eq!(app.consent(&t, PHONE).await, before);
    assert_eq!(app.sent_to(PHONE).len(), sent_before);
}

#[tokio::test]
async fn the_form_refuses_an_unticked_box_and_a_bad_phone_beside_the_field() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, html) = form_post(&app, &t.slug, &[("phone", "7375550188")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"consent-error\""));
    assert!(
        html.contains("value=\"7375550188\""),
        "keeps what was typed"
    );
    let (s, html) = form_post(&app, &t.slug, &[("phone", "12"), ("consent", "yes")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"phone-error\""));
    let (s, _) = form_post(
        &app,
        &t.slug,
        &[("phone", "+44 20 7946 0958"), ("consent", "yes")],
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "only the tenant's countries"
    );
    assert_eq!(
        app.consent(&t, "+17375550188").await["events"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let (s, _) = form_post(
        &app,
        "no-such-tenant",
        &[("phone", PHONE), ("consent", "yes")],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_form_is_rate_limited_by_ip() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        let phone = format!("73755501{i:02}");
        statuses.push(
            form_post(&app, &t.slug, &[("phone", &phone), ("consent", "yes")])
                .await
                .0,
        );
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 5);
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
}

#[tokio::test]
async fn consent_of_a_number_never_seen_is_none() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let c = app.consent(&t, "+19725550100").await;
    assert_eq!(c["phone"], "+19725550100");
    assert_eq!(c["transactional"]["opted_out"], false);
    assert_eq!(c["marketing"]["status"], "none");
    assert_eq!(c["events"].as_array().unwrap().len(), 0);
    let (s, _) = app.get("/consent/12345", &t.key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_ledger_exports_as_csv_with_every_entry_and_its_evidence() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "Stop, please, \"now\"").await;
    let r = app
        .client
        .get(format!("{}/api/v1/consent/export.csv", app.base))
        .header("Authorization", format!("Bearer {}", t.key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with(
        "seq,occurred_at,phone,channel,old_state,new_state,source,actor,message_sid,text"
    ));
    // Two toggles at creation, then transactional and marketing for the STOP.
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[3].contains(",transactional,active,opted_out,free_text,customer,SM"));
    assert!(lines[3].contains("\"Stop, please, \"\"now\"\"\""));

    let (s, v) = app.get("/consent/export.csv?from=2030-01-01", &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_str().unwrap().lines().count(), 1, "header only");
    let (s, v) = app.get("/consent/export.csv?from=yesterday", &t.key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["message"].as_str().unwrap().starts_with("from"));

    // A date is a whole day in the tenant's zone: 23:30 in Austin on 4 March (05:30 UTC on
    // the 5th) is inside `to=2026-03-04` and outside `from=2026-03-05`.
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 5, 5, 30, 0).unwrap());
    app.inbound(PHONE, TX, "START").await;
    let count = |v: &serde_json::Value| v.as_str().unwrap().lines().count();
    let (_, all) = app.get("/consent/export.csv", &t.key).await;
    assert!(count(&all) > 5, "{all}");
    let (_, v) = app.get("/consent/export.csv?to=2026-03-04", &t.key).await;
    assert_eq!(count(&v), count(&all), "{v}");
    let (_, v) = app.get("/consent/export.csv?to=2026-03-03", &t.key).await;
    assert_eq!(count(&v), 1, "{v}");
    let (_, v) = app.get("/consent/export.csv?from=2026-03-05", &t.key).await;
    assert_eq!(count(&v), 1, "{v}");
    let (_, v) = app
        .get("/consent/export.csv?from=2026-03-04&to=2026-03-04", &t.key)
        .await;
    assert_eq!(count(&v), count(&all), "{v}");
}

#[tokio::test]
async fn the_database_itself_refuses_to_change_or_delete_ledger_entries() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    app.inbound(PHONE, TX, "STOP").await;
    if is_postgres(&app.db_url) {
        // Another client on the same database, outside the store: refused by the trigger.
        let mut conn = pg_connect(&app.db_url).await;
        for q in [
            "UPDATE consent_ledger SET new_state = 'active'",
            "DELETE FROM consent_ledger",
            "TRUNCATE consent_ledger",
        ] {
            let err = sqlx::query(q)
                .execute(&mut conn)
                .await
                .expect_err("the ledger must refuse");
            assert!(err.to_string().contains("append-only"), "{q}: {err}");
        }
        assert_eq!(
            app.consent(&t, PHONE).await["transactional"]["opted_out"],
            true
        );
        assert_eq!(
            app.consent(&t, PHONE).await["events"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        return;
    }
    let path = app.db_url.trim_start_matches("sqlite://").to_string();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nfor q in ['UPDATE consent_ledger SET new_state=\\'active\\'','DELETE FROM consent_ledger']:\n  try:\n    c.execute(q); c.commit(); print('ALLOWED')\n  except Exception as e: print('REFUSED', e)\n",
        )
        .arg(&path)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("REFUSED").count(),
        2,
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("append-only"));
    assert_eq!(
        app.consent(&t, PHONE).await["transactional"]["opted_out"],
        true
    );
}

#[tokio::test]
async fn an_acknowledged_stop_is_already_on_disk() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assert_eq!(app.inbound(PHONE, TX, "STOP").await, StatusCode::OK);
    // A second, independent connection to the database (the file, or the PostgreSQL
    // server) sees the change the moment it is acknowledged.
    let other = open_store(&app.db_url).await;
    let snap = other.snapshot(&t.id, &e164(PHONE), noon()).await.unwrap();
    assert!(snap.consent.transactional_opted_out);
    assert_eq!(
        assent_store::testing::phone_ledger(other.as_ref(), &t.id, &e164(PHONE))
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn one_tenants_key_never_reads_or_changes_another_tenants_data() {
    let app = TestApp::spawn().await;
    let (a, customer_a) = app.tenant().await;
    let (s, v) = app
        .post("/tenants", ADMIN, json!({"name": "Other HVAC"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let b_key = v["api_key"].as_str().unwrap().to_string();
    app.inbound(PHONE, TX, "STOP").await;

    assert_eq!(
        app.get(&format!("/customers/{customer_a}"), &b_key).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = app
        .put(
            &format!("/customers/{customer_a}/phones/{PHONE}/notifications"),
            &b_key,
            json!({"job_notifications": true, "marketing_updates": true}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .post(
            &format!("/customers/{customer_a}/phones/{PHONE}/opt-in-requests"),
            &b_key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, c) = app.get(&format!("/consent/{PHONE}"), &b_key).await;
    assert_eq!(c["transactional"]["opted_out"], false);
    assert_eq!(c["events"].as_array().unwrap().len(), 0);
    let (_, m) = app.get("/messages?phone=%2B15125550142", &b_key).await;
    assert_eq!(m["messages"].as_array().unwrap().len(), 0);
    let (s, v) = app
        .put("/senders", &b_key, json!({"transactional": TX}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // A is untouched.
    assert_eq!(
        app.consent(&a, PHONE).await["transactional"]["opted_out"],
        true
    );
}

#[tokio::test]
async fn api_keys_are_stored_hashed() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    if is_postgres(&app.db_url) {
        use sqlx::Row;
        let mut conn = pg_connect(&app.db_url).await;
        let row = sqlx::query("SELECT api_key_hash FROM tenants WHERE id = $1")
            .bind(&t.id)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let stored: String = row.get("api_key_hash");
        assert_ne!(stored, t.key);
        assert_eq!(stored, assent_server::auth::hash_api_key(&t.key));
        // Nowhere in the tenant's row, whatever the column.
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tenants t WHERE strpos(t::text, $1) > 0")
            .bind(&t.key)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            row.get::<i64, _>("n"),
            0,
            "the raw key must not be in the database"
        );
        return;
    }
    let path = app.db_url.trim_start_matches("sqlite://").to_string();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    let hay = String::from_utf8_lossy(&bytes);
    assert!(
        !hay.contains(&t.key),
        "the raw key must not be in the database"
    );
    assert!(hay.contains(&assent_server::auth::hash_api_key(&t.key)));
}

#[tokio::test]
async fn missing_or_wrong_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    assert_eq!(
        app.get("/registrations", "nope").await.0,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .client
        .get(format!("{}/api/v1/registrations", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(
        app.post("/tenants", &t.key, json!({"name": "x"})).await.0,
        StatusCode::UNAUTHORIZED,
        "a tenant key is not the operator's"
    );
    let (s, v) = app.post("/tenants", ADMIN, json!({"name": "  "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["message"].as_str().unwrap().starts_with("name"));
    let (s, _) = app
        .post(
            "/tenants",
            ADMIN,
            json!({"name": "Tz", "time_zone": "Mars/Olympus"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn health_metrics_and_openapi_are_served() {
    let app = TestApp::spawn().await;
    app.tenant().await;
    app.inbound(PHONE, TX, "STOP").await;
    let r = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let m = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("assent_opt_outs_total 1"), "{m}");
    let r = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{doc}"
    );
    assert!(doc["paths"]["/messages"].is_object());
}

/// The NANP's other countries share +1 with the US and Canada; they are SMS-pumping
/// destinations and out unless the tenant names them.
#[tokio::test]
async fn only_the_tenants_countries_are_texted_or_taken_by_the_form() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let jamaica = "+18765550100";
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": jamaica, "purpose": "missed_call", "body": "Sorry we missed you"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "invalid_number", "{v}");
    let (s, body) = form_post(&app, &t.slug, &[("phone", jamaica), ("consent", "yes")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Enter a US mobile number"), "{body}");
    assert_eq!(app.consent(&t, jamaica).await["events"], json!([]));
    // A STOP from such a number is still confirmed: a reply goes to whoever texted.
    app.inbound("+18765550199", TX, "STOP").await;
    app.drain().await;
    let sent = app.sent_to("+18765550199");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].2.contains("unsubscribed"), "{sent:?}");
    // A new tenant texts the US only.
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": "+14165550100", "purpose": "missed_call", "body": "Sorry we missed you"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_number")),
        "{v}"
    );

    // A tenant that names a country texts it; an unknown code is refused by name.
    let (s, v) = app
        .put("/settings", &t.key, json!({"countries": ["US", "XX"]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("countries"),
        "{v}"
    );
    let (s, v) = app.put("/settings", &t.key, json!({"countries": []})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = app
        .put("/settings", &t.key, json!({"countries": ["US", "JM"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": jamaica, "purpose": "missed_call", "body": "Sorry we missed you"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": "+14165550100", "purpose": "missed_call", "body": "Sorry we missed you"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_number")),
        "Canada is out unless the tenant names it"
    );
}

/// CASL: Canada is switched on only with a mailing address and a contact, which then close
/// the opt-in request and the HELP reply.
#[tokio::test]
async fn canada_is_switched_on_only_with_a_mailing_address_and_a_contact() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let toronto = "+14165550100";
    let (_, before) = app.get("/settings", &t.key).await;
    assert_eq!(before["countries"], json!(["US"]));
    let (s, v) = app
        .put("/settings", &t.key, json!({"countries": ["US", "CA"]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("mailing_address"),
        "{v}"
    );
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"countries": ["US", "CA"], "mailing_address": "1 Main St, Buffalo, NY 14202"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("contact"),
        "{v}"
    );
    // Nothing of a refused PUT is kept.
    let (_, after) = app.get("/settings", &t.key).await;
    assert_eq!(after, before);
    let (s, v) = app
        .put(
            "/settings",
            &t.key,
            json!({"countries": ["US", "CA"], "mailing_address": "1 Main St, Buffalo, NY 14202",
                   "contact": "help@acme.example"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": toronto, "purpose": "missed_call", "body": "Sorry we missed you"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // Both appear in the opt-in request and the HELP reply.
    let c = app.customer(&t, "Sam", toronto, true, true).await;
    app.request_opt_in(&t, &c, toronto).await;
    app.inbound(toronto, TX, "HELP").await;
    app.drain().await;
    let sent = app.sent_to(toronto);
    let identified = |body: &str| {
        body.contains("Acme Plumbing, 1 Main St, Buffalo, NY 14202. Contact: help@acme.example.")
    };
    let request = sent.iter().find(|m| m.2.contains("Reply YES"));
    assert!(request.is_some_and(|m| identified(&m.2)), "{sent:?}");
    let help = sent.iter().find(|m| m.2.contains("For help"));
    assert!(help.is_some_and(|m| identified(&m.2)), "{sent:?}");
}

/// The form's other two limits: three submissions a day for one number, and the tenant's
/// `form_daily_limit` in all.
#[tokio::test]
async fn the_form_is_rate_limited_by_number_and_per_tenant_per_day() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            form_post(
                &app,
                &t.slug,
                &[("phone", "7375550150"), ("consent", "yes")],
            )
            .await
            .0,
        );
    }
    assert_eq!(
        statuses,
        vec![
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    app.clock
        .advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    let (s, _) = form_post(
        &app,
        &t.slug,
        &[("phone", "7375550150"), ("consent", "yes")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "a day later the number may try again");

    let (s, v) = app
        .put("/settings", &t.key, json!({"form_daily_limit": 2}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock
        .advance(chrono::Duration::days(1) + chrono::Duration::minutes(1));
    let mut statuses = Vec::new();
    for i in 0..3 {
        let phone = format!("73755502{i:02}");
        statuses.push(
            form_post(&app, &t.slug, &[("phone", &phone), ("consent", "yes")])
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        vec![
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// Behind a proxy (`ASSENT_TRUST_PROXY=1`) the client is the first `X-Forwarded-For`
/// address: it is the evidence's IP and what the per-IP limit counts.
#[tokio::test]
async fn behind_a_proxy_the_forwarded_address_is_the_client() {
    let app = TestApp::spawn_behind_proxy().await;
    let (t, _) = app.tenant().await;
    let post = |phone: String, ip: &'static str| {
        let app = &app;
        let slug = t.slug.clone();
        async move {
            app.client
                .post(format!("{}/optin/{slug}", app.base))
                .header("User-Agent", "Mozilla/5.0 (test)")
                .header("X-Forwarded-For", format!("{ip}, 10.0.0.1"))
                .form(&[("phone", phone.as_str()), ("consent", "yes")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        post("7375550300".into(), "203.0.113.7").await,
        StatusCode::OK
    );
    let c = app.consent(&t, "+17375550300").await;
    let ev = c["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(ev["evidence"]["ip"], "203.0.113.7", "{ev}");
    // Five from one client address, then refused; another address is not held back.
    for i in 1..5 {
        assert_eq!(
            post(format!("73755503{i:02}"), "203.0.113.7").await,
            StatusCode::OK
        );
    }
    assert_eq!(
        post("7375550399".into(), "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        post("7375550398".into(), "198.51.100.2").await,
        StatusCode::OK
    );
}

/// With a captcha configured, the form shows its widget and takes a submission only when
/// the provider vouches for the token; nothing is recorded or sent otherwise, and a
/// provider that cannot be asked means no.
#[tokio::test]
async fn a_configured_captcha_guards_the_form() {
    use wiremock::matchers::{body_string_contains, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let verify = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("secret=captcha-secret"))
        .and(body_string_contains("response=human"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "hostname": "127.0.0.1"})),
        )
        .mount(&verify)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("response=outage"))
        .respond_with(ResponseTemplate::new(502))
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
                "site-key-1".into(),
                "captcha-secret".into(),
                Some(url),
            )
            .unwrap(),
        );
    })
    .await;
    let (t, _) = app.tenant().await;
    let page = app
        .client
        .get(format!("{}/optin/{}", app.base, t.slug))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self' https://challenges.cloudflare.com"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("class=\"cf-turnstile\" data-sitekey=\"site-key-1\""),
        "{html}"
    );
    assert!(!html.contains("captcha-secret"));

    let phone = "7375550400";
    let (s, body) = form_post(&app, &t.slug, &[("phone", phone), ("consent", "yes")]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "no token");
    assert!(body.contains("show you are a person"), "{body}");
    let (s, _) = form_post(
        &app,
        &t.slug,
        &[
            ("phone", phone),
            ("consent", "yes"),
            ("cf-turnstile-response", "robot"),
        ],
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a token the provider refuses"
    );
    assert_eq!(app.consent(&t, "+17375550400").await["events"], json!([]));
    app.drain().await;
    assert!(app.sent_to("+17375550400").is_empty());

    let (s, body) = form_post(
        &app,
        &t.slug,
        &[
            ("phone", phone),
            ("consent", "yes"),
            ("cf-turnstile-response", "human"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        app.consent(&t, "+17375550400").await["marketing"]["status"],
        "pending"
    );

    // The provider cannot answer: refused, nothing recorded.
    let (s, _) = form_post(
        &app,
        &t.slug,
        &[
            ("phone", "7375550401"),
            ("consent", "yes"),
            ("cf-turnstile-response", "outage"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.consent(&t, "+17375550401").await["events"], json!([]));
}

/// A refused submission is not counted: the per-number limit turning one away leaves the
/// address's allowance as it was (limits are taken all or nothing).
#[tokio::test]
async fn a_refused_submission_counts_against_no_limit() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            form_post(
                &app,
                &t.slug,
                &[("phone", "7375550700"), ("consent", "yes")],
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // Three counted against this address, so two more numbers may still sign up from it.
    for phone in ["7375550701", "7375550702"] {
        let (s, _) = form_post(&app, &t.slug, &[("phone", phone), ("consent", "yes")]).await;
        assert_eq!(s, StatusCode::OK, "{phone}");
    }
    let (s, _) = form_post(
        &app,
        &t.slug,
        &[("phone", "7375550703"), ("consent", "yes")],
    )
    .await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the sixth from one address in ten minutes"
    );
    // Hits past every window are swept away (the worker does so every 30 s).
    let now = app.app.clock.now();
    let forgotten = app.app.store.forget_hits(now).await.unwrap();
    assert_eq!(forgotten, 15, "five hits, three limits each");
    let (s, _) = form_post(
        &app,
        &t.slug,
        &[("phone", "7375550703"), ("consent", "yes")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
