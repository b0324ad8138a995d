//! The `assent` command: serve, migrate, tenant create, registration, user, import, bench.

mod admin;
mod bench;
mod ledger;
mod ops;

use std::sync::Arc;

use anyhow::{Context, bail};
use assent_server::{AppState, Config, SystemClock};
use assent_store::Store;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "assent",
    version,
    about = "Self-hosted SMS consent and campaign engine",
    after_help = "Environment (each with its default): ASSENT_DATABASE_URL (sqlite://assent.db), \
ASSENT_BIND (127.0.0.1:8080), ASSENT_PUBLIC_URL (http:// + the bind address), ASSENT_ADMIN_TOKEN \
(none: the operator API is off), ASSENT_PROVIDER (simulator; or twilio), \
ASSENT_TWILIO_ACCOUNT_SID and ASSENT_TWILIO_AUTH_TOKEN (none), ASSENT_TWILIO_API_BASE \
(https://api.twilio.com), ASSENT_TWILIO_MESSAGING_BASE (https://messaging.twilio.com), \
ASSENT_OUTBOX_RETENTION_DAYS (30), ASSENT_PASSWORD (none: asked for)."
)]
struct Cli {
    /// The database, sqlite://PATH or postgres://…, for any command [default:
    /// $ASSENT_DATABASE_URL, else sqlite://assent.db; `serve --demo`: its own
    /// ./assent-demo.db]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server and the send worker.
    Serve {
        /// Start on a fresh demo database with a demo tenant, approved registrations,
        /// customers and the simulator provider.
        /// With --database-url, the only way to give the demo a database other than its own
        /// ./assent-demo.db (one that already holds tenants is refused).
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Copy the SQLite database to PATH while `serve` keeps running (a consistent
    /// snapshot); for PostgreSQL it points to pg_dump.
    Backup {
        /// The new file to write; an existing file is never overwritten.
        path: std::path::PathBuf,
        /// The database to copy, instead of ASSENT_DATABASE_URL.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage the web app's sign-ins: create, unlock, set-password, list.
    User {
        #[command(subcommand)]
        command: admin::UserCommand,
    },
    /// Decide a tenant's registration (a self-hosted install's operator decides).
    Registration {
        #[command(subcommand)]
        command: admin::RegistrationCommand,
    },
    /// Import data from files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Check the consent ledger's hash chain.
    Ledger {
        #[command(subcommand)]
        command: ledger::LedgerCommand,
    },
    /// Measure throughput against a baseline taken in the same run.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import customers from a CSV file (name,phone,job_notifications,marketing_updates,
    /// tags,address); good rows are kept, bad ones reported with their line.
    Customers {
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Import estimates (phone or customer_id, number, amount or amount_cents, status,
    /// created_at); a number imported before has its status updated.
    Estimates {
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Import recurring services (phone or customer_id, name, due_on).
    RecurringServices {
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Import calls (from, to, status missed or answered, at).
    Calls {
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: String,
    },
    /// Import earlier opt-outs from another system (phone, opted_out_at, scope marketing
    /// or all, source, note); one older than the phone's last opt-in here is recorded only.
    Consent {
        file: std::path::PathBuf,
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its id, slug and API key as JSON.
    Create {
        #[arg(long)]
        name: String,
        /// An IANA time zone.
        #[arg(long, default_value = "America/New_York")]
        time_zone: String,
        /// Create it even though another tenant has this name (the slug then gets a
        /// number).
        #[arg(long)]
        allow_duplicate_name: bool,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `--database-url`, when given.
static DATABASE_URL_FLAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// `--database-url` when given (not for `serve --demo`, which has its own database).
pub fn database_url_flag() -> Option<String> {
    DATABASE_URL_FLAG.get().cloned()
}

/// `--database-url`, else ASSENT_DATABASE_URL, else `sqlite://assent.db`.
pub fn database_url() -> String {
    database_url_flag()
        .or_else(|| env("ASSENT_DATABASE_URL"))
        .unwrap_or_else(|| "sqlite://assent.db".into())
}

pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(
            assent_sqlite::SqliteStore::open(url)
                .await
                .with_context(|| format!("opening {url}"))?,
        )
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(
            assent_postgres::PostgresStore::open(url)
                .await
                .with_context(|| format!("connecting to {}", redact(url)))?,
        )
    } else {
        bail!("ASSENT_DATABASE_URL must start with sqlite:// or postgres://");
    };
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// The URL with any password replaced, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The opt-in form's captcha from `ASSENT_CAPTCHA` (turnstile, hcaptcha or recaptcha),
/// `ASSENT_CAPTCHA_SITE_KEY`, `ASSENT_CAPTCHA_SECRET` and optionally
/// `ASSENT_CAPTCHA_VERIFY_URL`.
fn captcha() -> anyhow::Result<Option<assent_provider::captcha::Captcha>> {
    use assent_provider::captcha::{Captcha, Kind};
    let Some(kind) = env("ASSENT_CAPTCHA") else {
        return Ok(None);
    };
    let kind = Kind::parse(&kind).with_context(|| {
        format!("ASSENT_CAPTCHA must be turnstile, hcaptcha or recaptcha, not {kind:?}")
    })?;
    Captcha::new(
        kind,
        env("ASSENT_CAPTCHA_SITE_KEY").unwrap_or_default(),
        env("ASSENT_CAPTCHA_SECRET").unwrap_or_default(),
        env("ASSENT_CAPTCHA_VERIFY_URL"),
    )
    .map(Some)
    .map_err(|e| anyhow::anyhow!("ASSENT_CAPTCHA_SITE_KEY and ASSENT_CAPTCHA_SECRET: {e}"))
}

pub(crate) fn config(bind: &str) -> Config {
    Config {
        public_url: env("ASSENT_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_string(),
        admin_token: env("ASSENT_ADMIN_TOKEN"),
        twilio_auth_token: env("ASSENT_TWILIO_AUTH_TOKEN"),
        twilio_account_sid: env("ASSENT_TWILIO_ACCOUNT_SID"),
        trust_proxy: env("ASSENT_TRUST_PROXY").is_some_and(|v| v == "1" || v == "true"),
        captcha: None,
        import_max_bytes: import_max_bytes(),
        twilio_messaging_base: None,
    }
}

/// `ASSENT_LOOKUP`: the reassigned-number lookup provider (`twilio`), with
/// `ASSENT_TWILIO_LOOKUP_BASE` (default `https://lookups.twilio.com`) and
/// `ASSENT_LOOKUP_RATE` (lookups per second per process, default 20). Unset or `none`: no
/// check is made.
fn lookups(
    config: &Config,
) -> anyhow::Result<Option<Arc<assent_server::service::reassigned::Lookups>>> {
    use assent_server::service::reassigned::{DEFAULT_RATE, Lookups};
    let Some(which) = env("ASSENT_LOOKUP") else {
        return Ok(None);
    };
    match which.trim() {
        "none" => return Ok(None),
        "twilio" => {}
        other => {
            anyhow::bail!("ASSENT_LOOKUP {other:?} is not a lookup provider (twilio, or none)")
        }
    }
    let (Some(sid), Some(token)) = (
        config.twilio_account_sid.clone(),
        config.twilio_auth_token.clone(),
    ) else {
        anyhow::bail!(
            "ASSENT_LOOKUP=twilio needs ASSENT_TWILIO_ACCOUNT_SID and ASSENT_TWILIO_AUTH_TOKEN (the account Lookup bills)"
        );
    };
    let rate = match env("ASSENT_LOOKUP_RATE") {
        None => DEFAULT_RATE,
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => anyhow::bail!(
                "ASSENT_LOOKUP_RATE {v:?} is not a number of lookups per second from 1 to 1000"
            ),
        },
    };
    let client = assent_provider::lookup::Lookup::new(assent_provider::lookup::LookupConfig {
        account_sid: sid,
        auth_token: token,
        base: env("ASSENT_TWILIO_LOOKUP_BASE")
            .unwrap_or_else(|| "https://lookups.twilio.com".into()),
        timeout: std::time::Duration::from_secs(10),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(Arc::new(Lookups::twilio(client, rate))))
}

/// `ASSENT_IMPORT_MAX_BYTES`: the largest CSV file an import takes, in bytes.
fn import_max_bytes() -> u64 {
    let Some(v) = env("ASSENT_IMPORT_MAX_BYTES") else {
        return assent_server::import::DEFAULT_MAX_BYTES;
    };
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!(
                "error: ASSENT_IMPORT_MAX_BYTES {v:?} is not a number of bytes (e.g. 1073741824 for 1 GiB)"
            );
            std::process::exit(2);
        }
    }
}

/// The demo's own database, in the working directory; recreated on every demo start.
const DEMO_DATABASE: &str = "sqlite://assent-demo.db";

/// Makes `--demo`'s database ready: the demo's own file is recreated (after checking it
/// holds nothing but an earlier demo), and any database is refused when it holds tenants.
/// `ASSENT_DATABASE_URL` is never used: it names the real database.
async fn demo_database(explicit: Option<String>) -> anyhow::Result<(String, Arc<dyn Store>)> {
    let url = match explicit {
        Some(url) => url,
        None => {
            if env("ASSENT_DATABASE_URL").is_some() {
                eprintln!(
                    "note: --demo ignores ASSENT_DATABASE_URL and uses its own {DEMO_DATABASE} (pass --database-url to choose another, empty database)"
                );
            }
            let path = DEMO_DATABASE.trim_start_matches("sqlite://");
            let slugs = assent_sqlite::tenant_slugs(DEMO_DATABASE)
                .await
                .with_context(|| format!("reading {path}"))?;
            if slugs.iter().any(|s| s != bench::DEMO_SLUG) {
                bail!(
                    "{path} holds tenants other than the demo's; --demo will not replace it (move it away, or pass --database-url with an empty database)"
                );
            }
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            DEMO_DATABASE.to_string()
        }
    };
    let store = open_store(&url).await?;
    let tenants = store.tenant_count().await?;
    if tenants > 0 {
        bail!(
            "{} already holds {tenants} tenant(s): --demo seeds only an empty database (without --database-url it uses its own {DEMO_DATABASE})",
            redact(&url)
        );
    }
    Ok((url, store))
}

async fn serve(demo: bool, database_url: Option<String>) -> anyhow::Result<()> {
    let bind = env("ASSENT_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
    let mut config = config(&bind);
    config.captcha = captcha()?;
    let limits = listen_limits()?;
    assent_server::outbox::retention_from_env().map_err(|e| anyhow::anyhow!(e))?;
    // Everything the environment says is checked before the database is opened.
    let choice = ops::provider(demo)?;
    let lookups = lookups(&config)?;
    let (url, store) = if demo {
        if config.admin_token.is_none() {
            config.admin_token = Some(assent_server::auth::random_token("admin_"));
        }
        demo_database(database_url).await?
    } else {
        let url = database_url.unwrap_or_else(self::database_url);
        let store = open_store(&url).await?;
        (url, store)
    };
    let mut app = match &choice {
        ops::ProviderChoice::Simulator => {
            AppState::with_simulator(store, Arc::new(SystemClock), config.clone())
        }
        ops::ProviderChoice::Twilio(twilio) => {
            let twilio = assent_provider::twilio::Twilio::new(twilio.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            // Twilio decides registrations too: Assent reads its A2P decisions there. The
            // Messaging API's base is read once, into the Config; the account client (the
            // configuration check of Messaging Services) takes it from there.
            let mut config = config.clone();
            let messaging_base = env("ASSENT_TWILIO_MESSAGING_BASE")
                .unwrap_or_else(|| "https://messaging.twilio.com".into());
            config.twilio_messaging_base = Some(messaging_base.clone());
            let account = assent_provider::twilio_account::TwilioAccount::new(
                assent_provider::twilio_account::AccountConfig {
                    account_sid: config.twilio_account_sid.clone().unwrap_or_default(),
                    auth_token: config.twilio_auth_token.clone().unwrap_or_default(),
                    api_base: env("ASSENT_TWILIO_API_BASE")
                        .unwrap_or_else(|| "https://api.twilio.com".into()),
                    messaging_base,
                },
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut app = AppState::new(store, Arc::new(twilio), Arc::new(SystemClock), config);
            app.twilio_account = Some(Arc::new(account));
            // The configuration check, once, in the background: what needs changing at
            // Twilio is logged for each tenant; the server does not wait for it.
            tokio::spawn(assent_server::twilio_check::check_all(app.clone()));
            app
        }
    };
    app.lookups = lookups;
    let banner = ops::banner(&choice, demo, &redact(&url));
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr()?;
    if demo {
        let key = bench::seed_demo(&app).await?;
        // A web login too; the password is new on every demo start.
        let password = assent_server::auth::random_token("")
            .chars()
            .take(16)
            .collect::<String>();
        let demo_email = "manager@demo.example";
        assent_server::web::create_user(&app, bench::DEMO_SLUG, demo_email, &password)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        println!("Assent demo is running at http://{addr}");
        println!("  web app:      {}/login", config.public_url);
        println!("  login:        {demo_email} / {password}");
        println!("  database:     {}", redact(&url));
        for line in &banner {
            println!("{line}");
        }
        println!("  tenant:       Demo Plumbing & Air (slug demo-plumbing-air)");
        println!("  API key:      {key}");
        println!(
            "  admin token:  {}",
            config.admin_token.as_deref().unwrap_or("")
        );
        println!(
            "  opt-in form:  {}/optin/demo-plumbing-air",
            config.public_url
        );
        println!(
            "  try:          curl -H 'Authorization: Bearer {key}' http://{addr}/api/v1/registrations"
        );
    } else {
        println!("Assent is listening on http://{addr}");
        for line in &banner {
            println!("{line}");
        }
    }
    assent_server::serve_with_limits(app, listener, true, limits).await?;
    Ok(())
}

/// The listener's limits: `ASSENT_HEADER_TIMEOUT` and `ASSENT_BODY_TIMEOUT` (seconds) and
/// `ASSENT_MAX_CONNECTIONS`, each with its default when unset.
fn listen_limits() -> anyhow::Result<assent_server::listen::Limits> {
    let mut limits = assent_server::listen::Limits::default();
    let number = |name: &str| -> anyhow::Result<Option<u64>> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{name} must be a whole number above 0, not {v:?}"))
            })
            .transpose()
    };
    if let Some(s) = number("ASSENT_HEADER_TIMEOUT")? {
        limits.header_read_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(s) = number("ASSENT_BODY_TIMEOUT")? {
        limits.body_idle_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(n) = number("ASSENT_MAX_CONNECTIONS")? {
        limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
    }
    Ok(limits)
}

#[tokio::main]
async fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // The contract: bad input is one line on stderr (clap's usage follows its
            // first line; `--help` shows it).
            let text = e.to_string();
            let what: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            eprintln!("{} (see assent --help)", what.join(" "));
            std::process::exit(2);
        }
    };
    // The server logs what it does; a one-shot command says only what went wrong, so its
    // errors stay one line (RUST_LOG still decides when set).
    // A benchmark measures the server, not its request log.
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        Command::Bench { .. } => "info,assent::http=warn",
        _ => "warn",
    };
    if let Err(e) = ops::init_logging(default_level) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    assent_provider::install_crypto();
    if let Some(url) = cli.database_url.clone() {
        let _ = DATABASE_URL_FLAG.set(url);
    }
    let result = match cli.command {
        Command::Serve { demo } => serve(demo, cli.database_url).await,
        Command::Migrate => open_store(&database_url())
            .await
            .map(|_| println!("migrations applied")),
        Command::Backup { path, database_url } => {
            ops::backup(&database_url.unwrap_or_else(self::database_url), &path).await
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    time_zone,
                    allow_duplicate_name,
                },
        } => tenant_create(&name, &time_zone, allow_duplicate_name).await,
        Command::Bench { command } => bench::run(command).await,
        Command::Ledger { command } => ledger::run(command).await,
        Command::Import {
            command: ImportCommand::Customers { file, tenant },
        } => import_customers(&file, &tenant).await,
        Command::Import { command } => import_other(command).await,
        Command::User { command } => admin::user(command).await,
        Command::Registration { command } => admin::registration(command).await,
    };
    if let Err(e) = result {
        // One line, whatever the error's chain held.
        let message = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn tenant_create(
    name: &str,
    time_zone: &str,
    allow_duplicate_name: bool,
) -> anyhow::Result<()> {
    let store = open_store(&database_url()).await?;
    let app = AppState::with_simulator(store, Arc::new(SystemClock), config("127.0.0.1:8080"));
    let (t, key) =
        assent_server::service::tenants::create(&app, name, Some(time_zone), allow_duplicate_name)
            .await
            .map_err(|e| {
                let e = assent_server::error::ApiError::from(e);
                anyhow::anyhow!("{}: {}", e.code, e.message)
            })?;
    println!(
        "{}",
        serde_json::json!({"id": t.id, "slug": t.slug, "api_key": key})
    );
    Ok(())
}

/// Estimates, recurring services and calls: the report on stdout, each rejected line on
/// stderr, and a failure exit when any line was rejected.
async fn import_other(command: ImportCommand) -> anyhow::Result<()> {
    let (file, slug) = match &command {
        ImportCommand::Customers { file, tenant }
        | ImportCommand::Estimates { file, tenant }
        | ImportCommand::RecurringServices { file, tenant }
        | ImportCommand::Calls { file, tenant } => (file, tenant),
        ImportCommand::Consent { file, tenant } => return import_consent(file, tenant).await,
    };
    let (csv, _, app, tenant) = import_setup(file, slug).await?;
    use assent_server::import;
    let report = match command {
        ImportCommand::Customers { .. } => {
            import::import_customers(&app, &tenant.id, csv, |_| {}).await?
        }
        ImportCommand::Estimates { .. } => import::import_estimates(&app, &tenant, csv).await?,
        ImportCommand::RecurringServices { .. } => {
            import::import_recurring_services(&app, &tenant, csv).await?
        }
        ImportCommand::Calls { .. } => import::import_calls(&app, &tenant, csv).await?,
        ImportCommand::Consent { .. } => return Ok(()),
    };
    print_rejected(&report.rejected, report.rejected_count);
    println!(
        "{}",
        serde_json::json!({"created": report.created, "updated": report.updated,
            "unchanged": report.unchanged, "rejected": report.rejected_count})
    );
    rejected_lines(report.rejected_count)
}

/// Each listed rejected line on stderr, and how many more there were.
fn print_rejected(listed: &[assent_server::import::Rejected], count: usize) {
    for r in listed {
        eprintln!("line {}: {}", r.line, r.error);
    }
    if count > listed.len() {
        eprintln!("… and {} more line(s) rejected", count - listed.len());
    }
}

/// CONTRACT.md: an import exits non-zero when any row was rejected, after keeping the good
/// ones (the report on stdout says how many of each).
fn rejected_lines(n: usize) -> anyhow::Result<()> {
    if n > 0 {
        bail!("{n} line(s) rejected");
    }
    Ok(())
}

/// Earlier opt-outs: the report on stdout, each rejected line on stderr, and a failure
/// exit when any line was rejected (the good ones are kept).
async fn import_consent(file: &std::path::Path, slug: &str) -> anyhow::Result<()> {
    let (csv, _, app, tenant) = import_setup(file, slug).await?;
    let report = assent_server::import::import_consent(&app, &tenant, csv).await?;
    print_rejected(&report.rejected, report.rejected_count);
    println!(
        "{}",
        serde_json::json!({"applied": report.applied, "recorded_only": report.recorded_only,
            "rejected": report.rejected_count})
    );
    rejected_lines(report.rejected_count)
}

/// The file, read as the import goes (the same parser as the API's), its size, the
/// configured store and the tenant an import goes to.
async fn import_setup(
    file: &std::path::Path,
    slug: &str,
) -> anyhow::Result<(
    assent_server::import::CsvStream,
    u64,
    AppState,
    assent_store::Tenant,
)> {
    let f = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let csv = assent_server::import::CsvStream::from_reader(f);
    let store = open_store(&database_url()).await?;
    let app = AppState::with_simulator(store, Arc::new(SystemClock), config("127.0.0.1:8080"));
    let tenant = app
        .store
        .tenant_by_slug(slug)
        .await?
        .with_context(|| format!("no tenant with slug {slug:?}"))?;
    Ok((csv, size, app, tenant))
}

async fn import_customers(file: &std::path::Path, slug: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let (csv, size, app, tenant) = import_setup(file, slug).await?;
    let started = std::time::Instant::now();
    let report = assent_server::import::import_customers(&app, &tenant.id, csv, |done| {
        let width = 30;
        let filled = usize::try_from(
            (done * width as u64)
                .checked_div(size)
                .unwrap_or(width as u64),
        )
        .unwrap_or(width)
        .min(width);
        eprint!(
            "\r[{}{}] {} of {} MB read",
            "#".repeat(filled),
            " ".repeat(width - filled),
            done >> 20,
            size >> 20
        );
        let _ = std::io::stderr().flush();
    })
    .await?;
    eprintln!();
    print_rejected(&report.rejected, report.rejected_count);
    println!(
        "{}",
        serde_json::json!({"created": report.created, "updated": report.updated, "rejected": report.rejected_count,
            "seconds": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0})
    );
    rejected_lines(report.rejected_count)
}
