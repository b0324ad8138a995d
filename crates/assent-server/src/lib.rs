//! Assent's edge: the HTTP API, the Twilio-compatible webhooks, the public opt-in form and
//! the send worker, wired to a [`Store`] and a [`Provider`].

pub mod api;
pub mod auth;
pub mod campaigns;
pub mod clock;
pub mod dispatch;
pub mod error;
pub mod fake_twilio;
pub mod import;
pub mod listen;
pub mod outbox;
pub mod preview;
pub mod public;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod twilio_api;
pub mod twilio_check;
pub mod web;
pub mod webhooks;
pub mod words;

use std::sync::Arc;

use assent_provider::simulator::Simulator;
use assent_provider::{Provider, StatusReport};
use assent_store::Store;
use axum::Router;
use tokio::sync::{Mutex, Notify, mpsc};

pub use clock::{Clock, ManualClock, SystemClock};

#[derive(Debug, Clone)]
pub struct Config {
    pub public_url: String,
    pub admin_token: Option<String>,
    /// When set, inbound webhooks must carry a valid `X-Twilio-Signature`.
    pub twilio_auth_token: Option<String>,
    pub twilio_account_sid: Option<String>,
    /// Trust `X-Forwarded-For` for the opt-in form's evidence and rate limits.
    pub trust_proxy: bool,
    /// The opt-in form's captcha, when one is configured.
    pub captcha: Option<assent_provider::captcha::Captcha>,
    /// The largest CSV file an import takes (`ASSENT_IMPORT_MAX_BYTES`; default
    /// [`import::DEFAULT_MAX_BYTES`], 1 GiB).
    pub import_max_bytes: u64,
    /// Twilio's Messaging API (`https://messaging.twilio.com`), set when the provider is
    /// Twilio: registrations then take Twilio's A2P brand and campaign SIDs, and Assent
    /// reads Twilio's decision on them (hourly, and on demand).
    pub twilio_messaging_base: Option<String>,
}

pub use telemetry::Metrics;

/// Everything a request handler or the worker needs.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub provider: Arc<dyn Provider>,
    /// Present when the provider is the simulator, for its test controls.
    pub simulator: Option<Arc<Simulator>>,
    pub reports: Option<Arc<Mutex<mpsc::UnboundedReceiver<StatusReport>>>>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Set on SIGTERM or Ctrl-C: the worker stops claiming (see [`shutdown`]).
    pub shutdown: shutdown::Shutdown,
    /// Twilio's account API, for the configuration check (provider `twilio`).
    pub twilio_account: Option<Arc<assent_provider::twilio_account::TwilioAccount>>,
    /// Twilio's A2P registrations, when [`Config::twilio_messaging_base`] and the
    /// credentials are set.
    pub a2p: Option<Arc<assent_provider::a2p::A2p>>,
    /// Status callbacks may go to private and loopback addresses
    /// (`ASSENT_WEBHOOK_ALLOW_PRIVATE=1`; see [`outbox::check_target`]).
    pub webhook_allow_private: bool,
    /// How long delivered and given-up outbox deliveries are kept
    /// (`ASSENT_OUTBOX_RETENTION_DAYS`; see [`outbox::prune`]).
    pub outbox_retention: chrono::Duration,
    /// The reassigned-number lookup provider (`ASSENT_LOOKUP=twilio`); `None`: no check
    /// is made (see [`service::reassigned`]).
    pub lookups: Option<Arc<service::reassigned::Lookups>>,
    /// What this process has verified of each tenant's ledger chain (see
    /// [`service::proof::ChainChecks`]).
    pub chains: Arc<service::proof::ChainChecks>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn Provider>,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> Self {
        assent_provider::install_crypto();
        let a2p = match (
            &config.twilio_messaging_base,
            &config.twilio_account_sid,
            &config.twilio_auth_token,
        ) {
            (Some(base), Some(sid), Some(token)) => {
                assent_provider::a2p::A2p::new(assent_provider::a2p::A2pConfig {
                    account_sid: sid.clone(),
                    auth_token: token.clone(),
                    base: base.clone(),
                    timeout: std::time::Duration::from_secs(15),
                })
                .map_err(|e| tracing::error!(error = %e, "Twilio A2P checks are off"))
                .ok()
                .map(Arc::new)
            }
            _ => None,
        };
        AppState {
            a2p,
            store,
            provider,
            simulator: None,
            reports: None,
            clock,
            config: Arc::new(config),
            wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            shutdown: shutdown::Shutdown::default(),
            twilio_account: None,
            webhook_allow_private: outbox::allow_private_from_env(),
            outbox_retention: outbox::retention_from_env()
                .unwrap_or(chrono::Duration::days(outbox::DEFAULT_RETENTION_DAYS)),
            lookups: None,
            chains: Arc::default(),
        }
    }

    /// Uses the simulator as the provider.
    pub fn with_simulator(store: Arc<dyn Store>, clock: Arc<dyn Clock>, config: Config) -> Self {
        let (sim, rx) = Simulator::new();
        let sim = Arc::new(sim);
        let mut app = AppState::new(store, sim.clone(), clock, config);
        app.simulator = Some(sim);
        app.reports = Some(Arc::new(Mutex::new(rx)));
        app
    }
}

pub fn router(app: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(webhooks::router())
        .merge(twilio_api::router())
        .merge(public::router())
        .merge(web::router())
        .route("/healthz", axum::routing::get(api::healthz))
        .route("/metrics", axum::routing::get(api::metrics))
        .fallback(api::refusals::not_found)
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            telemetry::track,
        ))
        .with_state(app)
}

/// A path or query holding U+0000 (`%00`) is refused before any handler: no id, phone or
/// filter contains it, and PostgreSQL could not even compare with it.
async fn refuse_nul_in_uri(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    if uri.path().contains("%00") {
        return error::ApiError::field("path", "must not contain the NUL character (U+0000)")
            .into_response();
    }
    if let Some(q) = uri.query()
        && q.contains("%00")
    {
        let name = webhooks::form_urlencoded_pairs(q.as_bytes())
            .into_iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| k.replace('\0', ""))
            .unwrap_or_else(|| "query".into());
        return error::ApiError::field(&name, "must not contain the NUL character (U+0000)")
            .into_response();
    }
    next.run(req).await
}

/// Serves until the process is stopped (SIGTERM or Ctrl-C), with the default
/// [`listen::Limits`]; the worker runs beside the server.
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    worker: bool,
) -> std::io::Result<()> {
    serve_with_limits(app, listener, worker, listen::Limits::default()).await
}

/// [`serve`] with the listener's limits given.
pub async fn serve_with_limits(
    app: AppState,
    listener: tokio::net::TcpListener,
    worker: bool,
    limits: listen::Limits,
) -> std::io::Result<()> {
    let stop = app.shutdown.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        stop.trigger();
    });
    let worker = worker.then(|| {
        tokio::spawn(service::run_review_deadlines(app.clone()));
        // Status callbacks go from their own task: a slow receiver never holds up sending.
        tokio::spawn(outbox::run(app.clone()));
        if app.a2p.is_some() {
            tokio::spawn(service::registrations::run_twilio_checks(app.clone()));
        }
        tokio::spawn(dispatch::run(app.clone()))
    });
    let stop = app.shutdown.clone();
    // The listener and the worker wind down side by side: a STOP webhook in progress may
    // be waiting for a hand-off to return.
    let served = listen::run_until(
        router(app),
        listener,
        limits,
        async move { stop.wait().await },
    );
    let (served, _) = tokio::join!(served, async {
        if let Some(worker) = worker
            && let Err(e) = worker.await
        {
            tracing::error!(error = %e, "the send worker ended abnormally");
        }
    });
    tracing::info!("stopped");
    served
}
