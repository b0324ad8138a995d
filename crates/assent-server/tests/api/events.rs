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

async fn failing_receiver() -> wiremock::MockServer {
    let r = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(500))
        .mount(&r)
        .await;
    r
}

/// Delivered and given-up deliveries older than the retention (30 days by default) are
/// deleted by the worker in bounded batches; pending ones stay whatever their age, and the
/// delivery log says how far back it goes.
#[tokio::test]
async fn deliveries_past_the_retention_are_pruned_in_batches() {
    let (ok, down) = (receiver().await, failing_receiver().await);
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = true).await;
    let (t, _) = app.tenant().await;
    let mut ids = vec![];
    for url in [ok.uri(), down.uri(), down.uri()] {
        let (s, ep) = app
            .post(
                "/webhook-endpoints",
                &t.key,
                json!({"url": url, "events": ["consent.changed"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{ep}");
        ids.push(ep["id"].as_str().unwrap().to_string());
    }
    let (delivered, given_up, pending) = (&ids[0], &ids[1], &ids[2]);
    for phone in [PHONE, "+15125550143", "+15125550144"] {
        app.inbound(phone, TX, "STOP").await;
    }
    deliver_all(&app).await;
    // The second endpoint is deleted: its waiting deliveries are given up.
    let r = app
        .client
        .delete(format!("{}/api/v1/webhook-endpoints/{given_up}", app.base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let log = |id: &str| {
        let (app, tenant, id) = (&app, t.id.clone(), id.to_string());
        async move {
            app.app
                .store
                .deliveries(&tenant, &id, None, 1000)
                .await
                .unwrap()
        }
    };
    let n = log(delivered).await.len();
    assert!(n >= 3, "one event per phone at least: {n}");
    assert!(
        log(delivered)
            .await
            .iter()
            .all(|d| d.delivered_at.is_some())
    );
    assert!(log(given_up).await.iter().all(|d| d.given_up_at.is_some()));
    assert_eq!(log(given_up).await.len(), n);
    assert!(
        log(pending)
            .await
            .iter()
            .all(|d| d.delivered_at.is_none() && d.given_up_at.is_none())
    );
    let (_, v) = app
        .get(
            &format!("/webhook-endpoints/{delivered}/deliveries"),
            &t.key,
        )
        .await;
    assert_eq!(v["kept_days"], 30, "the log says how far back it goes: {v}");

    // Within the retention nothing goes.
    app.clock.advance(chrono::Duration::days(29));
    assert_eq!(assent_server::outbox::prune(&app.app).await.unwrap(), 0);
    assert_eq!(log(delivered).await.len(), n);

    // Past it, the store deletes at most a batch at a time, oldest first.
    app.clock.advance(chrono::Duration::days(2));
    let before = app.app.clock.now() - chrono::Duration::days(30);
    assert_eq!(app.app.store.prune_outbox(before, 2).await.unwrap(), 2);
    assert_eq!(
        log(delivered).await.len() + log(given_up).await.len(),
        2 * n - 2
    );
    // The worker's pass takes the rest, batch after batch.
    let rest = assent_server::outbox::prune(&app.app).await.unwrap();
    assert_eq!(rest, 2 * n as u64 - 2);
    assert!(log(delivered).await.is_empty());
    assert!(log(given_up).await.is_empty());
    assert_eq!(
        log(pending).await.len(),
        n,
        "pending deliveries are never pruned"
    );
    assert_eq!(app.app.store.prune_outbox(before, 2).await.unwrap(), 0);
    let (_, v) = app
        .get(
            &format!("/webhook-endpoints/{delivered}/deliveries"),
            &t.key,
        )
        .await;
    assert_eq!(v["deliveries"], json!([]));
}

/// The properties an object schema of openapi.json names (following one `$ref`).
fn documented_fields(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} is not in openapi.json")),
        None => schema,
    };
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// openapi.json documents every `/webhook-endpoints` route: each documented path and method
/// answers one of the statuses it lists, and every field of a 2xx answer is in its schema.
#[tokio::test]
async fn webhook_endpoints_answer_as_openapi_documents() {
    let hook = receiver().await;
    let app = TestApp::spawn_with_app(|a, _| a.webhook_allow_private = true).await;
    let (t, _) = app.tenant().await;
    let (_, doc) = app.get("/openapi.json", &t.key).await;
    let (s, ep) = app
        .post(
            "/webhook-endpoints",
            &t.key,
            json!({"url": hook.uri(), "events": ["consent.changed"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ep}");
    let id = ep["id"].as_str().unwrap().to_string();
    app.inbound(PHONE, TX, "STOP").await;
    deliver_all(&app).await;
    let (_, log) = app
        .get(&format!("/webhook-endpoints/{id}/deliveries"), &t.key)
        .await;
    let delivery = log["deliveries"][0]["id"].as_i64().unwrap().to_string();

    let mut routes: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/webhook-endpoints"))
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(|m| (p.clone(), m.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    // DELETE last: the others need the endpoint.
    routes.sort_by_key(|(p, m)| (m == "delete", p.clone()));
    let names: Vec<String> = routes.iter().map(|(p, m)| format!("{m} {p}")).collect();
    for route in [
        "post /webhook-endpoints",
        "get /webhook-endpoints",
        "get /webhook-endpoints/{id}",
        "delete /webhook-endpoints/{id}",
        "get /webhook-endpoints/{id}/deliveries",
        "post /webhook-endpoints/{id}/deliveries/{delivery}/resend",
    ] {
        assert!(
            names.contains(&route.to_string()),
            "{route} is not in openapi.json"
        );
    }
    for (path, method) in &routes {
        let op = &doc["paths"][path][method];
        let url = path.replace("{id}", &id).replace("{delivery}", &delivery);
        let body = (method == "post" && !path.ends_with("/resend"))
            .then(|| json!({"url": hook.uri(), "events": ["message.status"]}))
            .or_else(|| (method == "post").then(|| json!({})));
        let (s, v) = app.call(&method.to_uppercase(), &url, &t.key, body).await;
        let answer = &op["responses"][s.as_str()];
        assert!(
            answer.is_object(),
            "{method} {path} answered {s}, which openapi.json does not list: {v}"
        );
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        let Some(schema) = answer.pointer("/content/application~1json/schema") else {
            continue;
        };
        let mut fields = documented_fields(&doc, schema);
        for part in schema["allOf"].as_array().into_iter().flatten() {
            fields.extend(documented_fields(&doc, part));
        }
        for key in v.as_object().unwrap().keys() {
            assert!(
                fields.contains(key),
                "{method} {path}: {key} is not documented"
            );
        }
        for (list, item) in [
            ("webhook_endpoints", "WebhookEndpoint"),
            ("deliveries", "Delivery"),
        ] {
            let item_fields = documented_fields(
                &doc,
                &json!({"$ref": format!("#/components/schemas/{item}")}),
            );
            for row in v[list].as_array().into_iter().flatten() {
                for key in row.as_object().unwrap().keys() {
                    assert!(item_fields.contains(key), "{list}: {key} is not in {item}");
                }
            }
        }
    }
}
