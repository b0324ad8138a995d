//! What an operator sees of a running Assent: the log's format, the provider chosen (and
//! checked) before any database is touched, the startup banner, and `assent backup`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};
use assent_provider::twilio::TwilioConfig;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Logs on stderr, filtered by `RUST_LOG` (else `default_level`), as text or, with
/// `ASSENT_LOG_FORMAT=json`, one JSON object a line. Colour only when stderr is a terminal.
pub fn init_logging(default_level: &str) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let format = env("ASSENT_LOG_FORMAT").unwrap_or_else(|| "text".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.trim() {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .init(),
        "text" => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        other => bail!("ASSENT_LOG_FORMAT must be json or text, not {other:?}"),
    }
    Ok(())
}

/// The provider `serve` will use, decided and checked from the environment alone.
pub enum ProviderChoice {
    Simulator,
    Twilio(TwilioConfig),
}

/// `ASSENT_PROVIDER` (`simulator` by default; `serve --demo` always uses the simulator)
/// with its credentials: refused here, before the database is opened or migrated.
pub fn provider(demo: bool) -> anyhow::Result<ProviderChoice> {
    if demo {
        return Ok(ProviderChoice::Simulator);
    }
    let name = env("ASSENT_PROVIDER").unwrap_or_else(|| "simulator".into());
    match name.trim() {
        "simulator" => Ok(ProviderChoice::Simulator),
        "twilio" => {
            let (Some(account_sid), Some(auth_token)) = (
                env("ASSENT_TWILIO_ACCOUNT_SID"),
                env("ASSENT_TWILIO_AUTH_TOKEN"),
            ) else {
                bail!(
                    "ASSENT_PROVIDER=twilio needs ASSENT_TWILIO_ACCOUNT_SID and ASSENT_TWILIO_AUTH_TOKEN (nothing was started and the database was not touched)"
                );
            };
            let api_base = env("ASSENT_TWILIO_API_BASE")
                .unwrap_or_else(|| "https://api.twilio.com".into())
                .trim_end_matches('/')
                .to_string();
            url::Url::parse(&api_base)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .with_context(|| {
                    format!("ASSENT_TWILIO_API_BASE must be an http(s) URL, not {api_base:?}")
                })?;
            Ok(ProviderChoice::Twilio(TwilioConfig {
                account_sid,
                auth_token,
                api_base,
                timeout: std::time::Duration::from_secs(15),
            }))
        }
        other => bail!("ASSENT_PROVIDER must be simulator or twilio, not {other:?}"),
    }
}

/// The lines `serve` prints under "Assent is listening on …": the provider, plainly, and
/// the database (its password hidden). A non-demo `serve` on the simulator also says so
/// loudly in the log, since nothing it queues reaches a phone.
pub fn banner(choice: &ProviderChoice, demo: bool, database: &str) -> Vec<String> {
    let mut lines = Vec::new();
    match choice {
        ProviderChoice::Simulator => {
            lines.push(
                "  provider:     simulator — no real text will leave this server".to_string(),
            );
            if !demo {
                tracing::warn!(
                    "ASSENT_PROVIDER is simulator: texts are only simulated and NO real text will leave this server; set ASSENT_PROVIDER=twilio with its credentials to send"
                );
            }
        }
        ProviderChoice::Twilio(c) => {
            lines.push(format!(
                "  provider:     twilio (account {}, API {}) — real texts are sent",
                c.account_sid, c.api_base
            ));
            tracing::info!(
                account = %c.account_sid,
                api_base = %c.api_base,
                "provider: twilio; inbound and status webhooks must carry a valid X-Twilio-Signature"
            );
        }
    }
    if !demo {
        lines.push(format!("  database:     {database}"));
    }
    lines
}

/// `assent backup PATH`: a consistent copy of the SQLite database, taken while `serve`
/// runs, written beside `PATH` and renamed into place once complete and on disk.
pub async fn backup(url: &str, path: &Path) -> anyhow::Result<()> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        bail!(
            "assent backup copies a SQLite database; for PostgreSQL use pg_dump, e.g. pg_dump --format=custom --file=assent.dump \"$ASSENT_DATABASE_URL\" (restore with pg_restore --dbname=… assent.dump)"
        );
    }
    if !url.starts_with("sqlite:") {
        bail!("the database URL must start with sqlite:// or postgres://");
    }
    if path.exists() {
        bail!(
            "{} already exists; give a new file name (a backup never overwrites)",
            path.display()
        );
    }
    let copied = assent_sqlite::backup(url, path)
        .await
        .with_context(|| format!("backing up to {}", path.display()))?;
    println!(
        "{}",
        serde_json::json!({"backup": path.display().to_string(), "bytes": copied})
    );
    Ok(())
}
