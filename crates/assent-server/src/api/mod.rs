//! The JSON API under `/api/v1` (CONTRACT.md).

pub mod campaigns;
pub mod consent;

pub use tenants::decide_registration_for;
pub mod customers;
#[cfg(test)]
mod enum_texts;
mod events;
mod lists;
mod messages;
pub mod refusals;
mod tenants;

use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/tenants", post(tenants::create))
        .route(
            "/senders",
            put(tenants::put_senders).get(tenants::get_senders),
        )
        .route("/registrations", get(tenants::registrations))
        .route("/registrations/{kind}", put(tenants::submit_registration))
        .route(
            "/registrations/{kind}/check",
            post(tenants::check_registration),
        )
        .route(
            "/tenants/{id}/registrations/{kind}/decision",
            post(tenants::decide_registration),
        )
        .route(
            "/settings",
            get(tenants::get_settings).put(tenants::put_settings),
        )
        .route("/twilio/check", get(tenants::twilio_check))
        .route("/customers", post(customers::create).get(lists::customers))
        .route("/customers/{id}", get(customers::get))
        .route("/customers/{id}/phones", post(customers::add_phone))
        .route(
            "/customers/{id}/phones/{phone}",
            axum::routing::delete(customers::remove_phone),
        )
        .route(
            "/customers/{id}/phones/{phone}/notifications",
            put(customers::set_notifications),
        )
        .route(
            "/customers/{id}/phones/{phone}/opt-in-requests",
            post(customers::request_opt_in),
        )
        .route("/consent/export.csv", get(consent::export_csv))
        .route("/consent/ledger", get(lists::ledger))
        .route("/consent/{phone}", get(consent::get))
        .route("/consent/{phone}/opt-out", post(consent::record_opt_out))
        .route("/consent/{phone}/proof", get(consent::proof))
        .route("/imports/consent", post(consent::import_consent))
        .route("/reviews", get(lists::reviews))
        .route("/reviews/{id}", post(consent::decide_review))
        .route("/opt-in/link", get(consent::opt_in_link))
        .route("/messages", post(messages::send).get(lists::messages))
        .route("/deliveries", get(lists::deliveries))
        .route("/conversations", get(lists::conversations))
        .route("/messages/{id}", get(messages::get_one))
        .route(
            "/simulator/numbers/{phone}",
            put(messages::simulator_behavior),
        )
        .route("/simulator/inbound", post(messages::simulator_inbound))
        .route("/campaigns", post(campaigns::create).get(lists::campaigns))
        .route("/campaigns/preview", post(campaigns::preview))
        .route("/campaigns/{id}", get(campaigns::report))
        .route("/campaigns/{id}/recipients", get(campaigns::recipients))
        .route("/campaigns/{id}/pause", post(campaigns::pause))
        .route("/campaigns/{id}/resume", post(campaigns::resume))
        .route("/estimates", post(campaigns::create_estimate))
        .route(
            "/estimates/{id}",
            axum::routing::patch(campaigns::patch_estimate),
        )
        .route("/recurring-services", post(campaigns::create_recurring))
        .route("/calls", post(campaigns::create_call))
        .route("/imports/customers", post(campaigns::import))
        .route("/imports/estimates", post(campaigns::import_estimates))
        .route(
            "/imports/recurring-services",
            post(campaigns::import_recurring_services),
        )
        .route("/imports/calls", post(campaigns::import_calls))
        .route("/webhook-endpoints", post(events::create).get(events::list))
        .route(
            "/webhook-endpoints/{id}",
            get(events::get_one).delete(events::delete),
        )
        .route(
            "/webhook-endpoints/{id}/deliveries",
            get(events::deliveries),
        )
        .route(
            "/webhook-endpoints/{id}/deliveries/{delivery}/resend",
            post(events::resend),
        )
        .layer(axum::middleware::map_response(refusals::in_json))
}

/// A JSON body whose errors come back in the API's error shape, naming the field (see
/// [`refusals::parse`]).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(refusals::read_failed)?;
        let v = refusals::parse::<T>(&parts.headers, &bytes)?;
        // JSON can carry U+0000 only as an escape; PostgreSQL cannot store it.
        if contains_nul_escape(&bytes)
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(field) = nul_field(&value, "")
        {
            return Err(ApiError::field(
                if field.is_empty() { "body" } else { &field },
                "must not contain the NUL character (U+0000)",
            ));
        }
        Ok(ApiJson(v))
    }
}

/// A query string whose errors come back in the API's error shape (axum's own `Query`
/// answers a plain-text 400).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(q)| ApiQuery(q))
            .map_err(|e| {
                let why = e.body_text();
                let why = why
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&why);
                ApiError::field("query", why.replace('`', ""))
            })
    }
}

fn contains_nul_escape(bytes: &[u8]) -> bool {
    bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2..].eq_ignore_ascii_case(b"0000"))
}

/// The path (`tags[2]`, `settings.help_contact`) of the first string or key holding U+0000.
fn nul_field(v: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0').then(|| at.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_field(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                return Some(path.replace('\0', ""));
            }
            nul_field(item, &path)
        }),
        _ => None,
    }
}

/// How long `/healthz` waits for the database before it says it is unavailable: a load
/// balancer should hear "no" quickly, not time out.
pub const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ok only when the database answers and takes writes (see [`assent_store::Store::ping`]),
/// within [`HEALTH_TIMEOUT`]; otherwise 503 with `Retry-After`.
pub async fn healthz(State(app): State<AppState>) -> axum::response::Response {
    let unavailable = |why: &'static str| {
        (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "5")], why).into_response()
    };
    // The check runs to its end on its own task: abandoning a write half-begun could leave
    // the writer's connection in a transaction.
    let store = app.store.clone();
    let check = tokio::spawn(async move { store.ping().await });
    match tokio::time::timeout(HEALTH_TIMEOUT, check).await {
        Ok(Ok(Ok(()))) => (StatusCode::OK, "ok").into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check panicked");
            unavailable("database unavailable")
        }
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "health check failed");
            unavailable("database unavailable")
        }
        Err(_) => {
            tracing::error!("health check: the database did not answer in time");
            unavailable("database unavailable (no answer in time)")
        }
    }
}

/// Prometheus text: this process's counters and histograms, and the queue as the database
/// holds it now (see [`crate::telemetry`]).
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let out = app.metrics.render(&app).await;
    ([("content-type", "text/plain; version=0.0.4")], out)
}

async fn openapi() -> impl IntoResponse {
    (
        [("content-type", "application/json")],
        include_str!("../../openapi.json"),
    )
}
