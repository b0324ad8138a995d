//! Issue 19, outbound events: endpoints, events written in the transaction of the change they
//! report, `Assent-Signature`, order per phone, the delivery log and Resend. Runs on
//! PostgreSQL too when ASSENT_TEST_POSTGRES_URL is set.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn receiver() -> wiremock::MockServer {
    let r = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&r)
        .await;
    r
}

async fn deliver_all(app: &TestApp) {
    let http = assent_server::outbox::http_client();
    for _ in 0..100 {
        if assent_server::outbox::deliver_due(&app.app, &http)
            .await
            .unwrap()
            == 0
        {
            return;
        }
    }
    panic!("the outbox did not empty");
}

/// The events the receiver got, in arrival order, each checked against its signature.
async fn received(r: &wiremock::MockServer, secret: &str) -> Vec<Value> {
    let mut out = vec![];
    for req in r.received_requests().await.unwrap() {
        let body = String::from_utf8(req.body.clone()).unwrap();
        let header = req
            .headers
            .get("assent-signature")
            .unwrap()
            .to_str()
            .unwrap();
        let t: i64 = header
            .split(',')
            .find_map(|p| p.strip_prefix("t="))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            assent_provider::signature::event_signature(secret, t, &body),
            header,
            "the signature checks out with the endpoint's secret"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            req.headers
                .get("assent-event-id")
                .unwrap()
                .to_str()
                .unwrap(),
            v["id"].as_str().unwrap()
        );
        out.push(v);
    }
    out
}

#[tokio::test]
async fn endpoints_refuse_private_targets_and_unknown_events() {
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = false).await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .post(
            "/webhook-endpoints",
            &t.key,
            json!({"url": "http://127.0.0.1:9/hook", "events": ["consent.changed"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("url"),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/webhook-endpoints",
            &t.key,
            json!({"url": "https://203.0.113.7/hook", "events": ["consent.changed", "nope"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1]"),
        "{v}"
    );
    let (s, v) = app.get("/webhook-endpoints", &t.key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["webhook_endpoints"], json!([]), "nothing was created");
}

#[tokio::test]
async fn consent_changes_arrive_signed_in_order_and_resend_repeats_the_same_event() {
    let hook = receiver().await;
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = true).await;
    let (t, _) = app.tenant().await;
    let (s, ep) = app
        .post(
            "/webhook-endpoints",
            &t.key,
            json!({"url": format!("{}/assent", hook.uri()), "events": ["consent.changed"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let secret = ep["secret"].as_str().unwrap().to_string();
    let id = ep["id"].as_str().unwrap().to_string();
    // Two changes to one phone: a STOP, then START.
    app.inbound(PHONE, TX, "STOP").await;
    app.inbound(PHONE, TX, "START").await;
    app.drain().await;
    deliver_all(&app).await;
    let got = received(&hook, &secret).await;
    assert!(got.len() >= 2, "{got:?}");
    assert!(got.iter().all(|e| e["type"] == "consent.changed"));
    assert!(got.iter().all(|e| e["data"]["phone"] == PHONE));
    let seqs: Vec<i64> = got
        .iter()
        .map(|e| e["data"]["ledger_seq"].as_i64().unwrap())
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted, "in ledger order");
    assert_eq!(got[0]["data"]["new_state"], "opted_out", "{}", got[0]);
    // The ledger says the same.
    let consent = app.consent(&t, PHONE).await;
    assert_eq!(consent["transactional"]["opted_out"], false);

    // The delivery log, a page of one at a time.
    let (s, log) = app
        .get(
            &format!("/webhook-endpoints/{id}/deliveries?limit=1"),
            &t.key,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(log["deliveries"][0]["status"], "delivered");
    let next = log["next"].as_str().unwrap();
    let (_, page2) = app
        .get(
            &format!("/webhook-endpoints/{id}/deliveries?limit=1&after={next}"),
            &t.key,
        )
        .await;
    assert_eq!(page2["deliveries"].as_array().unwrap().len(), 1);
    assert_ne!(page2["deliveries"][0]["id"], log["deliveries"][0]["id"]);

    // Resend: the same event (same id) arrives again.
    let newest = &log["deliveries"][0];
    let (s, v) = app
        .post(
            &format!("/webhook-endpoints/{id}/deliveries/{}/resend", newest["id"]),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    deliver_all(&app).await;
    let again = received(&hook, &secret).await;
    assert_eq!(again.len(), got.len() + 1);
    assert_eq!(again.last().unwrap()["id"], newest["event_id"]);

    // Deleted: nothing more is sent to it.
    let r = app
        .client
        .delete(format!("{}/api/v1/webhook-endpoints/{id}", app.base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.inbound(PHONE, TX, "STOP").await;
    deliver_all(&app).await;
    assert_eq!(received(&hook, &secret).await.len(), again.len());
    let (_, v) = app.get("/webhook-endpoints", &t.key).await;
    assert_eq!(v["webhook_endpoints"], json!([]));
}

#[tokio::test]
async fn message_status_events_follow_a_send() {
    let hook = receiver().await;
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = true).await;
    let (t, _) = app.tenant().await;
    let (s, ep) = app
        .post(
            "/webhook-endpoints",
            &t.key,
            json!({"url": hook.uri(), "events": ["message.status"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let (s, m) = app
        .post(
            "/messages",
            &t.key,
            json!({"to": PHONE, "purpose": "job_notification", "body": "On our way"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{m}");
    app.drain().await;
    deliver_all(&app).await;
    let got = received(&hook, ep["secret"].as_str().unwrap()).await;
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|e| e["type"] == "message.status" && e["data"]["message_id"] == m["id"])
    );
    let statuses: Vec<&str> = got
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"sent") || statuses.contains(&"delivered"),
        "{statuses:?}"
    );
}
