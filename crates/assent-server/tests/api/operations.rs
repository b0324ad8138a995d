//! What an operator scrapes: `/metrics` after some traffic has the queue (counted in the
//! database), the age of the oldest due message, hand-off latency, request durations by
//! route template and webhook signature failures, beside the counters it always had.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

/// The value of the first series named `name` whose labels include every one of `labels`.
fn value(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            let (series, _) = l.rsplit_once(' ').unwrap_or((l, ""));
            let bare = series.split('{').next().unwrap_or("");
            bare == name && labels.iter().all(|want| series.contains(want))
        })
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_answer_the_operators_questions_after_some_traffic() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;

    // Nothing queued yet: the queue's series are there, at 0.
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, "assent_queue_messages", &["status=\"queued\""]),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "assent_queue_oldest_due_age_seconds", &[]),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "assent_webhook_signature_failures_total", &[]),
        Some(0.0),
        "{m}"
    );

    for i in 0..3 {
        let (s, v) = app
            .post(
                "/messages",
                &t.key,
                json!({"to": PHONE, "purpose": "job_notification", "body": format!("Your tech is on the way ({i}).")}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    app.clock.advance(chrono::Duration::seconds(90));
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, "assent_queue_messages", &["status=\"queued\""]),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "assent_queue_messages", &["status=\"sending\""]),
        Some(0.0),
        "{m}"
    );
    let age = value(&m, "assent_queue_oldest_due_age_seconds", &[]).unwrap();
    assert!((90.0..=91.0).contains(&age), "{age}\n{m}");
    // The request log's route is the template, never the phone.
    assert_eq!(
        value(
            &m,
            "assent_http_request_duration_seconds_count",
            &[
                "method=\"POST\"",
                "route=\"/api/v1/messages\"",
                "status=\"202\""
            ]
        ),
        Some(3.0),
        "{m}"
    );
    assert!(!m.contains("5550142"), "a phone in the metrics: {m}");

    assert_eq!(app.drain().await, 3);
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, "assent_queue_messages", &["status=\"queued\""]),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "assent_queue_oldest_due_age_seconds", &[]),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "assent_handoff_duration_seconds_count",
            &["outcome=\"sent\""]
        ),
        Some(3.0),
        "{m}"
    );
    assert!(
        value(
            &m,
            "assent_handoff_duration_seconds_bucket",
            &["outcome=\"sent\"", "le=\"+Inf\""]
        ) == Some(3.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "assent_messages_sent_total", &[]),
        Some(3.0),
        "{m}"
    );

    // A webhook without a valid signature is refused and counted.
    let r = app
        .client
        .post(format!("{}/webhooks/twilio/sms", app.base))
        .form(&[
            ("MessageSid", "SMforged"),
            ("From", PHONE),
            ("To", TX),
            ("Body", "STOP"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.inbound(PHONE, TX, "STOP").await;
    let m = scrape(&app).await;
    assert_eq!(
        value(&m, "assent_webhook_signature_failures_total", &[]),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, "assent_opt_outs_total", &[]), Some(1.0), "{m}");
    assert_eq!(
        value(&m, "assent_inbound_messages_total", &[]),
        Some(1.0),
        "{m}"
    );
    assert!(
        value(
            &m,
            "assent_http_request_duration_seconds_count",
            &["route=\"/webhooks/twilio/sms\"", "status=\"403\""]
        ) == Some(1.0),
        "{m}"
    );
    // An unknown path is one series, whatever was asked.
    let r = app
        .client
        .get(format!("{}/no/such/+15125550142", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let m = scrape(&app).await;
    assert_eq!(
        value(
            &m,
            "assent_http_request_duration_seconds_count",
            &["route=\"unmatched\"", "status=\"404\""]
        ),
        Some(1.0),
        "{m}"
    );
    assert!(!m.contains("5550142"), "a phone in the metrics: {m}");
}

#[test]
fn a_path_in_the_log_has_its_phones_masked() {
    use assent_server::telemetry::mask_path;
    assert_eq!(
        mask_path("/api/v1/consent/+15125550142"),
        "/api/v1/consent/+1********42"
    );
    assert_eq!(mask_path("/x/%2B15125550142/y"), "/x/%2B1********42/y");
    assert_eq!(mask_path("/campaigns/123"), "/campaigns/123");
}
