//! `POST /campaigns/preview` (issue 15): the audience, how many would be sent and how many
//! skipped by reason, as the campaign would then record them, with nothing written; and a
//! `send_at` already past refused. Both databases.

use crate::common::*;
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

const OPT_IN: &str = "I would like to sign up for marketing text messages!";

/// Twelve phones tagged `spring` (three opted in, three opted out, six never asked) and
/// one overseas number; Dana (`PHONE`, untagged) is not in it.
async fn mixed_audience(app: &TestApp, t: &Tenant) {
    for i in 0..12 {
        let phone = format!("+1737555{:04}", 100 + i);
        let (s, v) = app
            .post(
                "/customers",
                &t.key,
                json!({"name": format!("Customer {i}"), "tags": ["spring"],
                       "phones": [{"number": phone, "marketing_updates": true}]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        match i % 4 {
            0 => assert_eq!(app.inbound(&phone, MK, OPT_IN).await, StatusCode::OK),
            1 => assert_eq!(app.inbound(&phone, MK, "STOP").await, StatusCode::OK),
            _ => {}
        }
    }
    let (s, v) = app
        .post(
            "/customers",
            &t.key,
            json!({"name": "Overseas", "tags": ["spring"], "phones": [{"number": "+44 20 7946 0958"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.drain().await;
}

fn spring(extra: Value) -> Value {
    let mut body = json!({"name": "Spring tune-up", "type": "marketing",
                          "body": "Hi {first_name|there}! 15% off tune-ups",
                          "audience": {"tags": ["spring"]}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn a_preview_counts_what_the_campaign_would_send_and_skip_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    mixed_audience(&app, &t).await;
    let messages_before = app.messages(&t, "+17375550100").await.len();

    let (s, p) = app
        .post("/campaigns/preview", &t.key, spring(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    // What a customer receives: the brand in front, the footer last, and its cost.
    assert_eq!(
        p["body"],
        "Acme Plumbing: Hi Dana! 15% off tune-ups\nReply STOP to opt out"
    );
    assert_eq!(
        (p["segments"].clone(), p["encoding"].clone()),
        (json!(1), json!("gsm7"))
    );
    let p = without_body(p);
    assert_eq!(
        p,
        json!({"audience": 13, "would_send": 3,
               "would_skip": {"opted_out": 3, "no_marketing_consent": 6, "invalid_number": 1}})
    );

    // Nothing was created, queued or recorded.
    let (_, list) = app.get("/campaigns", &t.key).await;
    assert_eq!(list["campaigns"], json!([]), "{list}");
    assert_eq!(app.drain().await, 0);
    assert_eq!(
        app.messages(&t, "+17375550100").await.len(),
        messages_before
    );

    // Read a page of two phones at a time, the answer is the same.
    let tenant = app.app.store.tenant(&t.id).await.unwrap().unwrap();
    let c = assent_server::service::campaigns::validate(
        &app.app,
        &tenant,
        assent_server::api::campaigns::spec(serde_json::from_value(spring(json!({}))).unwrap()),
    )
    .unwrap();
    let paged = assent_server::preview::preview(&app.app, &tenant, &c, 2)
        .await
        .unwrap();
    assert_eq!(json!(paged), p);

    // The campaign itself then records exactly that.
    let (s, v) = app.post("/campaigns", &t.key, spring(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    assent_server::campaigns::tick(&app.app).await.unwrap();
    let (_, r) = app.get(&format!("/campaigns/{id}"), &t.key).await;
    assert_eq!(r["recipients"], p["audience"], "{r}");
    assert_eq!(r["counts"]["queued"], p["would_send"], "{r}");
    let mut by_reason = serde_json::Map::new();
    for s in r["skipped"].as_array().unwrap() {
        let reason = s["reason"].as_str().unwrap().to_string();
        let n = by_reason.get(&reason).and_then(Value::as_u64).unwrap_or(0);
        by_reason.insert(reason, json!(n + 1));
    }
    assert_eq!(Value::Object(by_reason), p["would_skip"], "{r}");
}

#[tokio::test]
async fn a_preview_of_no_one_of_missed_calls_and_of_estimate_follow_ups() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    // No one has the tag.
    let (s, p) = app
        .post(
            "/campaigns/preview",
            &t.key,
            spring(json!({"audience": {"tags": ["nobody"]}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        without_body(p),
        json!({"audience": 0, "would_send": 0, "would_skip": {}})
    );
    // A missed-call campaign has no audience until someone calls.
    let (s, p) = app
        .post(
            "/campaigns/preview",
            &t.key,
            json!({"name": "Text-back", "type": "missed_calls", "body": "Sorry we missed you"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["audience"], 0, "{p}");
    // Estimates' customers: follow-ups are campaign texts, so Marketing updates must be on.
    for (name, phone, marketing) in [
        ("Eli", "+17375550190", false),
        ("Fay", "+17375550191", true),
    ] {
        let c = app.customer(&t, name, phone, true, marketing).await;
        let (s, v) = app
            .post(
                "/estimates",
                &t.key,
                json!({"customer_id": c, "amount_cents": 120000, "status": "unsold"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, p) = app
        .post(
            "/campaigns/preview",
            &t.key,
            json!({"name": "Follow-up", "type": "unsold_estimates", "body": "Still thinking it over?",
                   "schedule": {"days_after": [2, 7]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    // Follow-ups are not marketing: no brand, no footer.
    assert_eq!(p["body"], "Still thinking it over?");
    assert_eq!(
        without_body(p),
        json!({"audience": 2, "would_send": 1, "would_skip": {"marketing_updates_off": 1}})
    );
    // The same request with a field wrong is refused as POST /campaigns refuses it.
    let (s, v) = app
        .post(
            "/campaigns/preview",
            &t.key,
            spring(json!({"type": "blast"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("type:"),
        "{v}"
    );
}

#[tokio::test]
async fn a_send_at_in_the_past_is_refused_and_absent_means_now() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let past = (noon() - Duration::minutes(1)).to_rfc3339();
    for path in ["/campaigns", "/campaigns/preview"] {
        let (s, v) = app
            .post(path, &t.key, spring(json!({"send_at": past})))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
        assert_eq!(v["error"]["code"], "invalid_field", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("send_at:"),
            "{v}"
        );
    }
    let (_, list) = app.get("/campaigns", &t.key).await;
    assert_eq!(list["campaigns"], json!([]), "{list}");
    // Now itself, a time to come, or none at all.
    for send_at in [
        json!(noon().to_rfc3339()),
        json!((noon() + Duration::hours(1)).to_rfc3339()),
        Value::Null,
    ] {
        let mut body = spring(json!({}));
        if !send_at.is_null() {
            body["send_at"] = send_at.clone();
        }
        let (s, v) = app.post("/campaigns", &t.key, body).await;
        assert_eq!(s, StatusCode::CREATED, "{send_at}: {v}");
    }
}

/// A preview's counts, without the sample body it shows.
fn without_body(mut p: serde_json::Value) -> serde_json::Value {
    if let Some(o) = p.as_object_mut() {
        for k in ["body", "segments", "encoding"] {
            o.remove(k);
        }
    }
    p
}
