//! Every refusal under `/api/v1` is the JSON error shape (CONTRACT.md, issue 15): unknown
//! paths, wrong methods, bodies over the limit, bodies that are not JSON and JSON of the
//! wrong shape, the last named by the field's path. The web app's pages keep their own
//! answers. Both databases.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The status, the error's code and message, and the content type.
async fn refusal(r: reqwest::Response) -> (StatusCode, String, String, String) {
    let status = r.status();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("").to_string();
    let message = v["error"]["message"].as_str().unwrap_or(&text).to_string();
    (status, code, message, content_type)
}

async fn raw(app: &TestApp, method: &str, path: &str, key: &str, body: &str) -> reqwest::Response {
    app.client
        .request(
            method.parse().unwrap(),
            format!("{}/api/v1{path}", app.base),
        )
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unknown_path_is_404_not_found_in_json() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for (path, key) in [
        ("/no-such-thing", t.key.as_str()),
        ("/customers/a/b/c", ""),
        ("/", ""),
    ] {
        let r = raw(&app, "GET", path, key, "").await;
        let (s, code, message, ct) = refusal(r).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}: {message}"
        );
        assert!(ct.starts_with("application/json"), "{ct}");
        assert!(message.contains("openapi.json"), "{message}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_method_not_allowed_in_json_with_allow() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    // (`/customers` lists with GET now: `/calls` is a POST-only path.)
    let r = raw(&app, "DELETE", "/calls", &t.key, "").await;
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string());
    let (s, code, message, ct) = refusal(r).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        "{message}"
    );
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(allow.as_deref(), Some("POST"));
    assert!(message.contains("Allow"), "{message}");
    let (s, v) = app.call("PUT", "/campaigns", &t.key, Some(json!({}))).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_invalid_json() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for body in [r#"{"name": "Ana",}"#, r#"{"name": "Ana""#, "name=Ana", ""] {
        let r = raw(&app, "POST", "/customers", &t.key, body).await;
        let (s, code, message, _) = refusal(r).await;
        assert_eq!(
            (s, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_json"),
            "{body:?}: {message}"
        );
        assert!(message.starts_with("the body "), "{message}");
    }
    // Nothing was created.
    let (s, _) = app.get("/customers/nobody", &t.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_wrong_shaped_body_is_422_naming_the_field_by_its_path() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    for (path, body, expected) in [
        (
            "/customers",
            json!({"name": "Ana", "phones": [{"number": "5125550150"}, {"marketing_updates": true}]}),
            "phones[1].number: is required",
        ),
        (
            "/customers",
            json!({"name": "Ana", "phones": [{"number": "5125550150", "job_notifications": "yes"}]}),
            "phones[0].job_notifications: must be true or false, not a string",
        ),
        (
            "/customers",
            json!({"name": "Ana", "phones": [{"number": "5125550150", "colour": "red"}]}),
            "phones[0].colour: is not a field here",
        ),
        (
            "/customers",
            json!({"name": "Ana", "phones": "5125550150"}),
            "phones: must be a list, not a string",
        ),
        (
            "/campaigns",
            json!({"name": "Spring", "type": "marketing", "body": "Hi", "schedule": {"days_after": [-3]}}),
            "schedule.days_after[0]: must be a whole number, 0 or more",
        ),
        (
            "/messages",
            json!({"to": PHONE, "purpose": "job_notification"}),
            "body: is required",
        ),
        (
            "/customers",
            json!(["Ana"]),
            "body: must be a JSON object, not a list",
        ),
    ] {
        let (s, v) = app.post(path, &t.key, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_field", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{body}: {message}");
        // Never the parser's own words.
        for internal in ["line ", "column", "deserialize", "struct ", "u32", "`"] {
            assert!(!message.contains(internal), "{message}");
        }
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_body_too_large_in_json() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    // A JSON body over axum's 2 MB default, and a CSV import over its configured limit.
    let big = format!(r#"{{"name": "{}", "phones": []}}"#, "A".repeat(3 << 20));
    let r = raw(&app, "POST", "/customers", &t.key, &big).await;
    let (s, code, message, ct) = refusal(r).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        "{message}"
    );
    assert!(ct.starts_with("application/json"), "{ct}");
    // Imports take files far larger (1 GiB by default): here a server configured for 1 MiB.
    let app = TestApp::spawn_with(|c| c.import_max_bytes = 1 << 20).await;
    let (t, _) = app.tenant().await;
    let mut csv = String::from("name,phone\n");
    while csv.len() < 3 << 20 {
        csv.push_str("Ana Lopez,5125550150\n");
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
    let (s, code, message, ct) = refusal(r).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        "{message}"
    );
    assert!(ct.starts_with("application/json"), "{ct}");
}

#[tokio::test]
async fn the_web_apps_pages_keep_their_own_answers() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/no-such-page", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(!ct.unwrap_or_default().starts_with("application/json"));
    let r = app
        .client
        .delete(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(!ct.unwrap_or_default().starts_with("application/json"));
}

/// A query string that does not fit (a key given twice) is the JSON error shape too, not
/// axum's plain-text 400.
#[tokio::test]
async fn a_query_string_that_does_not_fit_is_422_in_json() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let r = raw(
        &app,
        "GET",
        "/messages?phone=%2B15125550100&phone=%2B15125550101",
        &t.key,
        "",
    )
    .await;
    let (status, code, message, content_type) = refusal(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{message}");
    assert_eq!(code, "invalid_field", "{message}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(message.starts_with("query: "), "{message}");
    assert!(message.contains("phone"), "{message}");
}
