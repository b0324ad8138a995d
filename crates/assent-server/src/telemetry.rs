//! What `/metrics` and the log say about a running server, through the `metrics` crate
//! and its Prometheus exporter (rendered into our own route; no listener of its own).
//!
//! Each [`AppState`] has its own recorder rather than the process-wide one, so tests that
//! run several servers in one process count each server's traffic apart. Counters are
//! this process's; the queue's depth and the age of its oldest due message are facts of
//! the database, read at each scrape, so on PostgreSQL every process reports the whole
//! deployment's queue.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

use crate::AppState;

const META: Metadata<'static> = Metadata::new("assent", metrics::Level::INFO, None);

/// Seconds: from a millisecond to a minute (a provider call gives up after 15 s).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

pub const HTTP_DURATION: &str = "assent_http_request_duration_seconds";
pub const HANDOFF_DURATION: &str = "assent_handoff_duration_seconds";
pub const QUEUE_MESSAGES: &str = "assent_queue_messages";
pub const QUEUE_OLDEST_DUE_AGE: &str = "assent_queue_oldest_due_age_seconds";

/// The server's metrics. The counters are handles into the recorder: incrementing one is
/// an atomic add.
pub struct Metrics {
    recorder: PrometheusRecorder,
    pub inbound: Counter,
    pub inbound_duplicates: Counter,
    pub opt_outs: Counter,
    pub sent: Counter,
    pub api_sends: Counter,
    pub gate_refusals: Counter,
    pub form_submissions: Counter,
    pub signature_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let counter = |name: &'static str, help: &'static str| {
            recorder.describe_counter(
                KeyName::from_const_str(name),
                None,
                SharedString::const_str(help),
            );
            let c = recorder.register_counter(&Key::from_static_name(name), &META);
            // Present from the first scrape, at 0.
            c.increment(0);
            c
        };
        let inbound = counter("assent_inbound_messages_total", "Inbound texts processed");
        let inbound_duplicates = counter(
            "assent_inbound_duplicates_total",
            "Inbound webhooks repeated and ignored",
        );
        let opt_outs = counter("assent_opt_outs_total", "Opt-outs recorded");
        let sent = counter(
            "assent_messages_sent_total",
            "Messages handed to the provider",
        );
        let api_sends = counter(
            "assent_api_sends_total",
            "Messages accepted through the API",
        );
        let gate_refusals = counter("assent_gate_refusals_total", "API sends the gate refused");
        let form_submissions = counter("assent_form_submissions_total", "Opt-in form submissions");
        let signature_failures = counter(
            "assent_webhook_signature_failures_total",
            "Twilio webhooks refused for a bad or missing X-Twilio-Signature",
        );
        for (name, help) in [
            (
                HTTP_DURATION,
                "HTTP requests by method, route template and status",
            ),
            (
                HANDOFF_DURATION,
                "Provider calls (hand-offs) by outcome: sent, failed, retry, throttled, unknown",
            ),
        ] {
            recorder.describe_histogram(
                KeyName::from_const_str(name),
                Some(Unit::Seconds),
                SharedString::const_str(help),
            );
        }
        recorder.describe_gauge(
            KeyName::from_const_str(QUEUE_MESSAGES),
            None,
            SharedString::const_str(
                "Outbound messages waiting, by status (queued, deferred, sending), counted in the database",
            ),
        );
        recorder.describe_gauge(
            KeyName::from_const_str(QUEUE_OLDEST_DUE_AGE),
            Some(Unit::Seconds),
            SharedString::const_str(
                "How long the oldest message that is due now has been due (0 when none is)",
            ),
        );
        Metrics {
            recorder,
            inbound,
            inbound_duplicates,
            opt_outs,
            sent,
            api_sends,
            gate_refusals,
            form_submissions,
            signature_failures,
        }
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &META)
    }

    /// One provider call's duration; `outcome` is sent, failed, retry, throttled or unknown.
    pub fn handoff(&self, outcome: &'static str, took: Duration) {
        self.histogram(HANDOFF_DURATION, vec![Label::new("outcome", outcome)])
            .record(took.as_secs_f64());
    }

    fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.histogram(
            HTTP_DURATION,
            vec![
                Label::new("method", method.to_string()),
                Label::new("route", route.to_string()),
                Label::new("status", status.to_string()),
            ],
        )
        .record(took.as_secs_f64());
    }

    /// The Prometheus text: the queue read from the database now, then everything else.
    pub async fn render(&self, app: &AppState) -> String {
        let now = app.clock.now();
        match app.store.queue_depth(now).await {
            Ok(depth) => {
                for (status, n) in [
                    ("queued", depth.queued),
                    ("deferred", depth.deferred),
                    ("sending", depth.sending),
                ] {
                    #[allow(clippy::cast_precision_loss)]
                    let n = n as f64;
                    self.recorder
                        .register_gauge(
                            &Key::from_parts(QUEUE_MESSAGES, vec![Label::new("status", status)]),
                            &META,
                        )
                        .set(n);
                }
                let age = depth
                    .oldest_due
                    .map(|due| (now - due).num_milliseconds().max(0))
                    .unwrap_or(0);
                #[allow(clippy::cast_precision_loss)]
                let age = age as f64 / 1000.0;
                self.recorder
                    .register_gauge(&Key::from_static_name(QUEUE_OLDEST_DUE_AGE), &META)
                    .set(age);
            }
            Err(e) => tracing::error!(error = %e, "metrics: could not count the queue"),
        }
        self.recorder.handle().render()
    }
}

/// A path for the log when no route matched: any run of seven or more digits (a phone
/// number, perhaps after `+` or `%2B`) masked as phones are everywhere in the log.
pub fn mask_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 7 {
            out.push_str(&assent_core::phone::mask(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in path.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// The request log and the request-duration histogram: one line per request with its
/// method, route template (`/api/v1/consent/{phone}`, never the phone itself), status and
/// duration.
pub async fn track(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // Unmatched paths are one series, whatever was asked: a scanner must not grow the
    // metrics without bound.
    let (route, series) = match req.extensions().get::<MatchedPath>() {
        Some(p) => (p.as_str().to_string(), p.as_str().to_string()),
        None => (mask_path(req.uri().path()), "unmatched".to_string()),
    };
    let response = next.run(req).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    app.metrics.request(method.as_str(), &series, status, took);
    tracing::info!(
        target: "assent::http",
        method = %method,
        route = %route,
        status,
        ms = took.as_secs_f64() * 1000.0,
        "request"
    );
    response
}
