//! `assent bench`: throughput figures, each printed beside a baseline measured in the same
//! run on the same machine, because these machines are noisy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use assent_core::consent::{LedgerState, Source, Topic};
use assent_core::gate::RegistrationStatus;
use assent_core::phone::E164;
use assent_server::{AppState, Config, SystemClock};
use assent_store::{
    Actor, ContactMethod, Customer, Evidence, NewLedgerEntry, RegistrationKind, SendStatus, Senders,
};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Signed STOP/START webhooks over loopback HTTP against a temporary SQLite file,
    /// beside the raw single-row durable transaction rate of the same file.
    Inbound {
        /// Number of webhooks.
        #[arg(long, default_value_t = 5000)]
        requests: u64,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: u64,
        /// Pace requests at this many a second (0: as fast as possible).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Leave the send worker off, to measure keyword processing alone (the replies
        /// stay queued).
        #[arg(long)]
        no_worker: bool,
    },
    /// A marketing campaign to N customers (half opted in) on a temporary SQLite file (or
    /// the global `--database-url postgres://…`, a scratch database): time from "send" to
    /// every recipient queued or skipped, and peak memory, beside the raw cost of writing N
    /// rows in one transaction to the same store.
    Campaign {
        #[arg(long, visible_alias = "rows", default_value_t = 1_000_000)]
        customers: u64,
    },
    /// Import N customers from one CSV file: through one HTTP request to a server in this
    /// process (streamed from the file) and through the CLI's path (the same parser over
    /// the file), each into its own tenant of the same database: time and peak memory.
    Import {
        /// Measured on PostgreSQL with the global `--database-url postgres://…` (use a
        /// scratch database).
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// A marketing campaign to N customers on a temporary SQLite file (or the global
    /// `--database-url postgres://…`, a scratch database), then its report over HTTP
    /// (`GET /campaigns/{id}`: counts and first page), pages of recipients, customers,
    /// conversations and the ledger, each timed beside `GET /healthz` in the same run, with
    /// the server's memory before and after.
    Report {
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// Drain a queue of messages to a local fake of Twilio's API over HTTP, beside the
    /// rate that fake accepts from a plain loop with the same client in the same run.
    Dispatch {
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
    },
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Inbound {
            requests,
            concurrency,
            rate,
            no_worker,
        } => {
            let database_url = crate::database_url_flag();
            inbound(requests, concurrency.max(1), rate, !no_worker, database_url).await
        }
        BenchCommand::Campaign { customers } => {
            campaign(customers.max(1), false, crate::database_url_flag()).await
        }
        BenchCommand::Report { rows } => {
            campaign(rows.max(1), true, crate::database_url_flag()).await
        }
        BenchCommand::Import { rows } => import(rows.max(1), crate::database_url_flag()).await,
        BenchCommand::Dispatch { messages } => {
            dispatch(messages.max(1), crate::database_url_flag()).await
        }
    }
}

/// Seeds the demo tenant; returns its API key.
/// The demo tenant's slug (its name is "Demo Plumbing & Air").
pub const DEMO_SLUG: &str = "demo-plumbing-air";

pub async fn seed_demo(app: &AppState) -> anyhow::Result<String> {
    let (t, key) = assent_server::service::tenants::create(
        app,
        "Demo Plumbing & Air",
        Some("America/Chicago"),
        true,
    )
    .await?;
    let senders = Senders {
        transactional: Some(E164::parse("+15125550100")?),
        marketing: Some(E164::parse("+15125550101")?),
        former: Vec::new(),
    };
    app.store
        .set_senders(&t.id, &senders, chrono::Utc::now())
        .await?;
    for kind in [RegistrationKind::Texting, RegistrationKind::Marketing] {
        assent_server::api::decide_registration_for(app, &t.id, kind, RegistrationStatus::Approved)
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let now = app.clock.now();
    for (i, (name, phone, address, mk)) in [
        (
            "Dana Whitfield",
            "(512) 555-0142",
            "1200 Barton Springs Rd, Austin, TX 78704",
            false,
        ),
        (
            "Luis Ortega",
            "512-555-0178",
            "88 Rainey St, Austin, TX 78701",
            true,
        ),
        (
            "Priya Raman",
            "+1 737 555 0119",
            "4 Congress Ave, Austin, TX 78701",
            false,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let number = E164::parse(phone)?;
        let c = Customer {
            id: format!("demo-customer-{}", i + 1),
            name: name.into(),
            address: Some(address.into()),
            tags: vec!["demo".into()],
            phones: vec![ContactMethod {
                number: number.clone(),
                job_notifications: true,
                marketing_updates: mk,
            }],
            created_at: now,
        };
        let ledger = assent_server::service::toggle_entries(
            &number,
            None,
            (true, mk),
            Source::Import,
            "system",
            now,
        );
        app.store.create_customer(&t.id, &c, &ledger).await?;
    }
    Ok(key)
}

/// The database under test, with its raw single-row transaction for the baseline.
enum BenchDb {
    Sqlite(Arc<assent_sqlite::SqliteStore>, std::path::PathBuf),
    Postgres(Arc<assent_postgres::PostgresStore>),
}

impl BenchDb {
    async fn open(url: Option<String>, name: &str) -> anyhow::Result<Self> {
        match url {
            Some(u) if u.starts_with("postgres") => {
                let pg = Arc::new(assent_postgres::PostgresStore::open(&u).await?);
                assent_store::TenantStore::migrate(pg.as_ref()).await?;
                Ok(BenchDb::Postgres(pg))
            }
            Some(u) => anyhow::bail!("--database-url must be postgres://…, not {u:?}"),
            None => {
                let dir = tempfile_dir()?;
                let url = format!("sqlite://{}/{name}.db", dir.display());
                let db = Arc::new(assent_sqlite::SqliteStore::open(&url).await?);
                assent_store::TenantStore::migrate(db.as_ref()).await?;
                Ok(BenchDb::Sqlite(db, dir))
            }
        }
    }
    fn store(&self) -> Arc<dyn assent_store::Store> {
        match self {
            BenchDb::Sqlite(s, _) => s.clone(),
            BenchDb::Postgres(p) => p.clone(),
        }
    }
    fn label(&self) -> &'static str {
        match self {
            BenchDb::Sqlite(..) => "SQLite (same file)",
            BenchDb::Postgres(_) => "PostgreSQL (same database)",
        }
    }
    /// Single-row durable transactions (an UPSERT and an INSERT each) per second.
    async fn raw_rate(&self, n: u64) -> anyhow::Result<f64> {
        let t0 = Instant::now();
        for i in 0..n {
            match self {
                BenchDb::Sqlite(s, _) => s.raw_transaction(i).await?,
                BenchDb::Postgres(p) => p.raw_transaction(i).await?,
            }
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    }
    /// SQLite: the WAL checkpointed before a timed write (see `SqliteStore::checkpoint`).
    async fn settle(&self) -> anyhow::Result<()> {
        if let BenchDb::Sqlite(s, _) = self {
            s.checkpoint().await?;
        }
        Ok(())
    }
    async fn opt_in(
        &self,
        tenant_id: &str,
        phones: &[E164],
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<()> {
        match self {
            BenchDb::Sqlite(s, _) => s.bench_opt_in(tenant_id, phones, now).await?,
            BenchDb::Postgres(p) => p.bench_opt_in(tenant_id, phones, now).await?,
        }
        Ok(())
    }
    async fn raw_bulk_rows(&self, n: u64) -> anyhow::Result<()> {
        match self {
            BenchDb::Sqlite(s, _) => s.raw_bulk_rows(n).await?,
            BenchDb::Postgres(p) => p.raw_bulk_rows(n).await?,
        }
        Ok(())
    }
    fn cleanup(&self) {
        if let BenchDb::Sqlite(_, dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn inbound(
    requests: u64,
    concurrency: u64,
    rate: u64,
    worker: bool,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let db = BenchDb::open(database_url, "bench").await?;
    let store = db.store();
    let token = "bench-auth-token".to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = Config {
        public_url: format!("http://{addr}"),
        admin_token: None,
        twilio_auth_token: Some(token.clone()),
        twilio_account_sid: None,
        trust_proxy: false,
        captcha: None,
        import_max_bytes: assent_server::import::DEFAULT_MAX_BYTES,
        twilio_messaging_base: None,
    };
    let app = AppState::with_simulator(store, Arc::new(SystemClock), config.clone());
    let (t, _) =
        assent_server::service::tenants::create(&app, "Bench HVAC", Some("America/Chicago"), true)
            .await?;
    let tx = bench_sender(0)?;
    app.store
        .set_senders(
            &t.id,
            &Senders {
                transactional: Some(tx.clone()),
                marketing: Some(bench_sender(1)?),
                former: Vec::new(),
            },
            chrono::Utc::now(),
        )
        .await?;
    assent_server::api::decide_registration_for(
        &app,
        &t.id,
        RegistrationKind::Texting,
        RegistrationStatus::Approved,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.message))?;
    tokio::spawn(assent_server::serve(app.clone(), listener, worker));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency as usize)
        .build()?;
    let hook = format!("{}/webhooks/twilio/sms", config.public_url);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, hook, token, next, tx) = (
            client.clone(),
            hook.clone(),
            token.clone(),
            next.clone(),
            tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                if rate > 0 {
                    let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                // 500 phones, alternating STOP and START, so the state really changes.
                let phone = format!("+1737555{:04}", i % 500);
                let body = if (i / 500) % 2 == 0 { "STOP" } else { "START" };
                let params: Vec<(String, String)> = [
                    ("MessageSid", format!("SMbench{i:026}")),
                    ("AccountSid", "ACbench".to_string()),
                    ("From", phone),
                    ("To", tx.to_string()),
                    ("Body", body.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                let sig = assent_provider::signature::sign(&token, &hook, &params);
                let t0 = Instant::now();
                let r = client
                    .post(&hook)
                    .header("X-Twilio-Signature", sig)
                    .form(&params)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    anyhow::bail!("webhook answered {}", r.status());
                }
                r.bytes().await?;
                latencies.push(t0.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.context("bench task")??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let throughput = requests as f64 / elapsed.as_secs_f64();

    // Baseline: single-row durable transactions on the same file, same durability.
    let raw_rate = db.raw_rate(requests.min(5000)).await?;

    println!(
        "bench inbound: {requests} signed STOP/START webhooks, concurrency {concurrency}, rate {}, send worker {}",
        if rate == 0 {
            "max".to_string()
        } else {
            format!("{rate}/s")
        },
        if worker { "on (replies sent)" } else { "off" }
    );
    println!("  inbound keyword processing: {throughput:.0} req/s");
    println!(
        "  latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );
    println!(
        "  raw {} durable transactions (UPSERT + INSERT each): {raw_rate:.0} tx/s",
        db.label()
    );
    println!("  ratio inbound / raw: {:.2}", throughput / raw_rate);
    db.cleanup();
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Sender numbers of this run: a reused PostgreSQL database keeps earlier runs' tenants,
/// and a number belongs to one tenant.
fn bench_sender(k: u32) -> anyhow::Result<E164> {
    let n = (std::process::id() % 400_000) * 2 + k;
    Ok(E164::parse(&format!("+1512{:07}", 5_000_000 + n))?)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("assent-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// CPU time this process has used (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// CPU time spent by the whole machine (this process, the database server and anything
/// else), from /proc/stat: what a CPU-bound run's throughput comes down to, and far less
/// noisy than the throughput itself.
fn machine_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user, nice, system, (idle, iowait), irq, softirq, steal; 100 Hz.
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    Duration::from_millis(busy * 10)
}

/// Where the dispatch bench's server says it lives, and so the status callback every
/// request carries (the plain loop sends the same one).
const BENCH_PUBLIC_URL: &str = "http://127.0.0.1:9";
const BENCH_STATUS_CALLBACK: &str = "http://127.0.0.1:9/webhooks/twilio/status";

/// The fake provider's rate from a plain loop: `n` sends, 32 in flight. Returns messages
/// per second and CPU seconds per message.
async fn raw_loop(
    twilio: &Arc<assent_provider::twilio::Twilio>,
    from: &E164,
    baseline_n: u64,
) -> anyhow::Result<(f64, f64)> {
    use assent_provider::Provider;
    let started = Instant::now();
    let cpu0 = cpu_time();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (twilio, next, from) = (twilio.clone(), next.clone(), from.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= baseline_n {
                    return Ok::<_, anyhow::Error>(());
                }
                let sms = assent_provider::OutboundSms {
                    from: from.clone(),
                    to: E164::parse(&format!("+1737{:07}", 2_000_000 + i % 8_000_000))?,
                    body: format!("Your technician is on the way ({i})"),
                    // The same request the dispatch makes, callback included.
                    status_callback: Some(BENCH_STATUS_CALLBACK.to_string()),
                };
                twilio
                    .send(&sms)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((
        baseline_n as f64 / started.elapsed().as_secs_f64(),
        (cpu_time() - cpu0).as_secs_f64() / baseline_n as f64,
    ))
}

async fn dispatch(n: u64, database_url: Option<String>) -> anyhow::Result<()> {
    let (fake, received) = assent_server::fake_twilio::spawn().await?;
    let twilio = Arc::new(
        assent_provider::twilio::Twilio::new(assent_provider::twilio::TwilioConfig {
            account_sid: "ACbench".into(),
            auth_token: "bench".into(),
            api_base: fake.clone(),
            timeout: Duration::from_secs(10),
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let from = bench_sender(0)?;

    // Baseline: the same client, 32 requests in flight, in a plain loop; run before and
    // after the dispatch so a noisy machine shows as a spread, not as a skewed ratio.
    let baseline_n = n.min(20_000);
    let (raw_before, raw_cpu_before) = raw_loop(&twilio, &from, baseline_n).await?;

    // The queue: n messages already past the gate.
    let db = BenchDb::open(database_url, "dispatch").await?;
    let store = db.store();
    let config = Config {
        public_url: BENCH_PUBLIC_URL.into(),
        admin_token: None,
        twilio_auth_token: None,
        twilio_account_sid: None,
        trust_proxy: false,
        captcha: None,
        import_max_bytes: assent_server::import::DEFAULT_MAX_BYTES,
        twilio_messaging_base: None,
    };
    let app = AppState::new(store, twilio.clone(), Arc::new(SystemClock), config);
    let (t, _) = assent_server::service::tenants::create(
        &app,
        "Bench Plumbing",
        Some("America/Chicago"),
        true,
    )
    .await?;
    app.store
        .set_senders(
            &t.id,
            &Senders {
                transactional: Some(from.clone()),
                marketing: None,
                former: Vec::new(),
            },
            chrono::Utc::now(),
        )
        .await?;
    assent_server::api::decide_registration_for(
        &app,
        &t.id,
        RegistrationKind::Texting,
        RegistrationStatus::Approved,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut settings = app.store.tenant(&t.id).await?.context("tenant")?.settings;
    settings.rate_limits.per_sender_per_minute = u32::MAX / 2;
    settings.rate_limits.per_tenant_per_day = u32::MAX / 2;
    app.store.update_settings(&t.id, &settings).await?;
    let tenant = app.store.tenant(&t.id).await?.context("tenant")?;
    let now = app.clock.now();
    let queue_started = Instant::now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..n {
        let to = E164::parse(&format!("+1737{:07}", 2_000_000 + i % 8_000_000))?;
        let outbound = assent_server::service::Outbound {
            tenant: &tenant,
            channel: assent_core::consent::Channel::Transactional,
            to: &to,
            body: format!("Your technician is on the way ({i})"),
            kind: assent_store::MessageKind::Api,
            purpose: assent_core::gate::Purpose::MissedCall,
            idempotency_key: None,
        };
        if let Some(m) = assent_server::service::outbound_message(
            outbound,
            assent_core::gate::Decision::Allow,
            now,
        ) {
            batch.push(m);
        }
        if batch.len() == 10_000 {
            app.store.enqueue(&batch).await?;
            batch.clear();
        }
    }
    app.store.enqueue(&batch).await?;
    let queued_in = queue_started.elapsed();

    let before = received.count();
    let started = Instant::now();
    let cpu0 = cpu_time();
    let machine0 = machine_cpu_time();
    let mut sent = 0;
    loop {
        let k = assent_server::dispatch::dispatch_pipelined(&app, 500).await?;
        if k == 0 {
            break;
        }
        sent += k;
    }
    let elapsed = started.elapsed();
    let cpu = (cpu_time() - cpu0).as_secs_f64() / n as f64;
    let machine_cpu = machine_cpu_time().saturating_sub(machine0).as_secs_f64() / n as f64;
    let rate = sent as f64 / elapsed.as_secs_f64();
    let at_fake = received.count() - before;
    let (raw_after, raw_cpu_after) = raw_loop(&twilio, &from, baseline_n).await?;

    println!(
        "bench dispatch: {n} queued messages (queued in {:.1} s) to a local fake Twilio over HTTP",
        queued_in.as_secs_f64()
    );
    println!(
        "  dispatch: {rate:.0} msg/s, {:.0} µs CPU per message (process total, fake included)",
        cpu * 1e6
    );
    println!(
        "  machine CPU per message (this process, the database and the fake): {:.0} µs",
        machine_cpu * 1e6
    );
    println!(
        "  raw loop, same client, 32 in flight: {raw_before:.0} msg/s before, {raw_after:.0} after; {:.0} µs CPU per message",
        (raw_cpu_before + raw_cpu_after) / 2.0 * 1e6
    );
    println!(
        "  ratio dispatch / raw: {:.2} (against each: {:.2}, {:.2})",
        rate / ((raw_before + raw_after) / 2.0),
        rate / raw_before,
        rate / raw_after
    );
    println!("  handed off {sent}, received by the fake {at_fake}");
    let raw_db = db.raw_rate(5000).await?;
    println!(
        "  raw {} durable transactions (UPSERT + INSERT each): {raw_db:.0} tx/s",
        db.label()
    );
    db.cleanup();
    if at_fake != n {
        anyhow::bail!("the fake received {at_fake} of {n} messages");
    }
    Ok(())
}

/// Peak resident memory since the last reset, from /proc.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn reset_peak_rss() {
    // Linux: writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Resident memory now, from /proc.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// One seeded ledger entry.
fn bench_entry(
    phone: &E164,
    channel: Topic,
    (old_state, new_state): (LedgerState, LedgerState),
    (source, actor): (Source, Actor),
    at: chrono::DateTime<chrono::Utc>,
    evidence: Evidence,
) -> NewLedgerEntry {
    NewLedgerEntry {
        phone: phone.clone(),
        channel,
        old_state,
        new_state,
        source,
        actor,
        occurred_at: at,
        evidence,
    }
}

/// `campaign`: the fan-out beside the raw N-row transaction; `report_only`: the report and
/// a recipients page over HTTP instead.
async fn campaign(n: u64, report_only: bool, database_url: Option<String>) -> anyhow::Result<()> {
    use assent_store::{Campaign, CampaignKind, CampaignStatus, ContactMethod, Customer};
    let db = BenchDb::open(database_url, "campaign").await?;
    // Noon in Austin on a weekday: inside every quiet-hours window.
    let noon = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 4, 18, 0, 0)
        .single()
        .context("time")?;
    let clock = Arc::new(assent_server::ManualClock::new(noon));
    let config = Config {
        public_url: "http://127.0.0.1:9".into(),
        admin_token: None,
        twilio_auth_token: None,
        twilio_account_sid: None,
        trust_proxy: false,
        captcha: None,
        import_max_bytes: assent_server::import::DEFAULT_MAX_BYTES,
        twilio_messaging_base: None,
    };
    let app = AppState::with_simulator(db.store(), clock, config);
    // Its own name each run: a scratch PostgreSQL database may hold an earlier run's.
    let name = format!(
        "Bench Heating & Air {}",
        chrono::Utc::now().timestamp_millis()
    );
    let (t, key) =
        assent_server::service::tenants::create(&app, &name, Some("America/Chicago"), true).await?;
    app.store
        .set_senders(
            &t.id,
            &Senders {
                transactional: Some(bench_sender(0)?),
                marketing: Some(bench_sender(1)?),
                former: Vec::new(),
            },
            chrono::Utc::now(),
        )
        .await?;
    for kind in [RegistrationKind::Texting, RegistrationKind::Marketing] {
        assent_server::api::decide_registration_for(
            &app,
            &t.id,
            kind,
            RegistrationStatus::Approved,
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let seeding = Instant::now();
    let mut i = 0u64;
    // In the batches an import writes (`import::BATCH`): seeding in 50,000s made the
    // seeding, not the fan-out, the run's peak memory (317 MB against 178 MB).
    while i < n {
        let end = (i + assent_server::import::BATCH as u64).min(n);
        let mut batch = Vec::with_capacity((end - i) as usize);
        let mut opted = Vec::new();
        for k in i..end {
            let phone = E164::parse(&format!("+1737{:07}", 2_000_000 + k))?;
            // The ledger an import and a web form write: every phone's job-notification
            // toggle, and the opted-in half's opt-in with its form evidence (1.5 entries a
            // customer, so the ledger's read paths run at scale too).
            let mut ledger = vec![bench_entry(
                &phone,
                Topic::JobNotifications,
                (LedgerState::None, LedgerState::On),
                (Source::Import, Actor::Import),
                noon,
                Evidence::default(),
            )];
            if k % 2 == 0 {
                opted.push(phone.clone());
                ledger.push(bench_entry(
                    &phone,
                    Topic::Marketing,
                    (LedgerState::None, LedgerState::OptedIn),
                    (Source::WebForm, Actor::Customer),
                    noon,
                    Evidence {
                        ip: Some("203.0.113.9".into()),
                        user_agent: Some("Mozilla/5.0 (bench)".into()),
                        page: Some("https://example.com/tune-up".into()),
                        disclosure: Some("Reply STOP to opt out".into()),
                        ..Default::default()
                    },
                ));
            }
            batch.push((
                Customer {
                    id: format!("c{k}"),
                    name: format!("Customer{k} Example"),
                    address: None,
                    tags: vec!["all".into()],
                    phones: vec![ContactMethod {
                        number: phone,
                        job_notifications: true,
                        marketing_updates: false,
                    }],
                    created_at: noon,
                },
                ledger,
            ));
        }
        app.store.create_customers(&t.id, &batch).await?;
        db.opt_in(&t.id, &opted, noon).await?;
        i = end;
    }
    // As an import of that many customers does.
    app.store.refresh_statistics().await?;
    let seeded_in = seeding.elapsed();
    let c = Campaign {
        id: "bench-campaign".into(),
        tenant_id: t.id.clone(),
        name: "Spring tune-up".into(),
        kind: CampaignKind::Marketing,
        body: "Hi {first_name|there}, {business_name}: 20% off AC tune-ups this week".into(),
        tags: vec!["all".into()],
        days: Vec::new(),
        send_at: None,
        status: CampaignStatus::Scheduled,
        created_at: noon,
        resumed_at: Some(noon),
    };
    app.store.save_campaign(&c).await?;
    let seeding_peak_mb = peak_rss_mb();
    // The baseline right before and right after the fan-out: this machine's speed drifts
    // by a third within a minute, so one run of it beside the fan-out made a noisy ratio.
    // (Untimed in between: its table emptied.)
    db.settle().await?;
    let raw_started = Instant::now();
    if !report_only {
        db.raw_bulk_rows(n).await?;
    }
    let raw_before = raw_started.elapsed();
    if !report_only {
        db.raw_bulk_rows(0).await?;
    }
    db.settle().await?;
    let seeding_peak_mb = seeding_peak_mb.max(peak_rss_mb());
    reset_peak_rss();
    let before_mb = peak_rss_mb();
    let (started, cpu0) = (Instant::now(), cpu_time());
    let recorded = assent_server::campaigns::tick(&app).await?;
    let fan_out = started.elapsed();
    // On a 2-core machine the fan-out's stages share the cores: CPU / wall near 2 says
    // only less work makes it faster, well below 2 that its stages wait on each other.
    let fan_out_cpu = cpu_time() - cpu0;
    let peak_mb = peak_rss_mb();
    let counts = app.store.campaign_counts(&t.id, &c.id).await?;
    let count = |s: SendStatus| counts.by_status.get(&s).copied().unwrap_or(0) as usize;
    let (queued, skipped) = (
        count(SendStatus::Queued) + count(SendStatus::Deferred),
        count(SendStatus::Skipped),
    );
    if report_only {
        let result = report_over_http(&app, &key, &c.id, n, db.label()).await;
        db.cleanup();
        return result;
    }
    db.settle().await?;
    let raw_started = Instant::now();
    db.raw_bulk_rows(n).await?;
    let raw_after = raw_started.elapsed();
    let raw_peak_mb = peak_rss_mb().max(peak_mb);

    // The messages the fan-out left to compose, a page at a time as the runner's ticks
    // compose them (here back to back): where the rest of the old fan-out's work went.
    let tenant = app.store.tenant(&t.id).await?.context("tenant")?;
    let composing = Instant::now();
    let (mut composed, mut after) = (0u64, None);
    loop {
        let (n, next) = assent_server::campaigns::compose(
            &app,
            &tenant,
            &c,
            noon,
            after.as_ref(),
            assent_server::campaigns::PAGE,
        )
        .await?;
        composed += n;
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let composing = composing.elapsed();
    // The whole run's peak, the baselines included (they now write a page at a time).
    let whole_mb = seeding_peak_mb.max(raw_peak_mb).max(peak_rss_mb());

    println!(
        "bench campaign: marketing campaign to {n} customers, half opted in, {} (seeded in {:.1} s)",
        db.label(),
        seeded_in.as_secs_f64()
    );
    println!(
        "  send → every recipient queued or skipped: {:.2} s ({recorded} recorded: {queued} queued, {skipped} skipped); process CPU {:.2} s",
        fan_out.as_secs_f64(),
        fan_out_cpu.as_secs_f64()
    );
    println!(
        "  then every queued message composed, a page at a time: {:.2} s ({} composed after the fan-out's own first page)",
        composing.as_secs_f64(),
        composed
    );
    println!(
        "  peak memory during the fan-out: {peak_mb:.0} MB (process at its start: {before_mb:.0} MB); whole run, seeding, baselines and composing included: {whole_mb:.0} MB (seeding: {seeding_peak_mb:.0} MB)"
    );
    let (before, after) = (raw_before.as_secs_f64(), raw_after.as_secs_f64());
    println!(
        "  raw: {n} rows in one transaction to the same store, a page at a time: {before:.2} s before the fan-out, {after:.2} s after"
    );
    println!(
        "  ratio fan-out / raw: {:.2} (against each: {:.2}, {:.2})",
        fan_out.as_secs_f64() / ((before + after) / 2.0),
        fan_out.as_secs_f64() / before,
        fan_out.as_secs_f64() / after
    );
    db.cleanup();
    if queued + skipped != n as usize {
        anyhow::bail!("{} of {n} recipients accounted for", queued + skipped);
    }
    Ok(())
}

/// The campaign's report, pages of its recipients and of the tenant's lists through the
/// API of a server in this process: time of each (best of three), each beside the time of
/// `GET /healthz` (an HTTP round trip and one trivial statement) measured in the same run,
/// and the process's memory before and after.
async fn report_over_http(
    app: &AppState,
    key: &str,
    campaign_id: &str,
    n: u64,
    label: &str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let root = format!("http://{}", listener.local_addr()?);
    let base = format!("{root}/api/v1");
    tokio::spawn(assent_server::serve(app.clone(), listener, false));
    let client = reqwest::Client::new();
    let before = rss_mb();
    reset_peak_rss();
    let timed = |path: String| {
        let (client, key) = (client.clone(), key.to_string());
        async move {
            let mut best = Duration::MAX;
            let mut body = Vec::new();
            for _ in 0..3 {
                let t0 = Instant::now();
                let r = client.get(&path).bearer_auth(&key).send().await?;
                anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
                body = r.bytes().await?.to_vec();
                best = best.min(t0.elapsed());
            }
            Ok::<_, anyhow::Error>((best, body))
        }
    };
    let (health, _) = timed(format!("{root}/healthz")).await?;
    let mut reads: Vec<(String, Duration, usize)> = Vec::new();
    let (report, body) = timed(format!("{base}/campaigns/{campaign_id}")).await?;
    reads.push((
        "GET /campaigns/{id} (counts, skipped by reason, first 100 skipped)".into(),
        report,
        body.len(),
    ));
    let recipients = format!("{base}/campaigns/{campaign_id}/recipients?limit=100");
    let (page, body) = timed(recipients.clone()).await?;
    reads.push((
        "GET /campaigns/{id}/recipients?limit=100".into(),
        page,
        body.len(),
    ));
    // The page after the first, by its cursor.
    let next = serde_json::from_slice::<serde_json::Value>(&body)?["next"]
        .as_str()
        .map(str::to_string);
    if let Some(after) = next {
        let (t, body) = timed(format!("{recipients}&after={after}")).await?;
        reads.push((
            "GET /campaigns/{id}/recipients?limit=100&after=… (second page)".into(),
            t,
            body.len(),
        ));
    }
    for (path, what) in [
        ("/customers?limit=100", "customers, first page"),
        ("/conversations?limit=50", "conversations, first page"),
        ("/messages?limit=100", "messages, first page"),
        ("/consent/ledger?limit=100", "ledger, first page"),
        ("/campaigns?limit=50", "campaigns with their counts"),
    ] {
        let (t, body) = timed(format!("{base}{path}")).await?;
        reads.push((format!("GET {path} ({what})"), t, body.len()));
    }
    // A proof: the tenant's first after a start recomputes its whole chain; later ones
    // what was added since and the stretches around the phone's entries.
    let proof = format!("{base}/consent/%2B17372000000/proof");
    let t0 = Instant::now();
    let r = client.get(&proof).bearer_auth(key).send().await?;
    anyhow::ensure!(r.status().is_success(), "proof: {}", r.status());
    let first = (t0.elapsed(), r.bytes().await?.len());
    reads.push((
        "GET /consent/{phone}/proof, the tenant's first (the whole chain; one run)".into(),
        first.0,
        first.1,
    ));
    let (t, body) = timed(proof).await?;
    reads.push((
        "GET /consent/{phone}/proof, later (what was added and the phone's stretches)".into(),
        t,
        body.len(),
    ));
    // The whole ledger as CSV, read a chunk at a time so the client holds none of it: the
    // server's memory is what the figure below is about.
    let t0 = Instant::now();
    let mut r = client
        .get(format!("{base}/consent/export.csv"))
        .bearer_auth(key)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "export: {}", r.status());
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    reads.push((
        format!(
            "GET /consent/export.csv (the whole ledger, {} entries, streamed; one run)",
            lines.saturating_sub(1)
        ),
        t0.elapsed(),
        bytes,
    ));
    let after = rss_mb();
    let peak = peak_rss_mb();
    println!("bench report: a marketing campaign to {n} customers (half skipped), {label}");
    println!(
        "  baseline GET /healthz: {:.2} ms (best of three, as every figure below)",
        health.as_secs_f64() * 1e3
    );
    for (what, t, bytes) in &reads {
        println!(
            "  {what}: {:.1} ms, {:.1}× /healthz ({bytes} bytes)",
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / health.as_secs_f64()
        );
    }
    println!(
        "  server memory: {before:.0} MB before, {after:.0} MB after (growth {:.0} MB; peak during {peak:.0} MB)",
        after - before
    );
    Ok(())
}

/// Writes `rows` customers as CSV to `path` (row i: phone +1 737 200 0000 + i).
fn write_customers_csv(path: &std::path::Path, rows: u64, offset: u64) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "name,phone,job_notifications,marketing_updates,tags")?;
    for i in 0..rows {
        writeln!(f, "Customer{i} Example,+1737{:07},yes,no,bench", offset + i)?;
    }
    f.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Sends the file as one request body (read and written 256 KiB at a time, so the client
/// holds none of it) and returns the answer's status and body.
async fn post_file(
    addr: std::net::SocketAddr,
    path_and_query: &str,
    key: &str,
    file: &std::path::Path,
) -> anyhow::Result<(u16, String)> {
    use std::io::Read;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let len = std::fs::metadata(file)?.len();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: text/csv\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0; 256 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await?;
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}

async fn import(rows: u64, database_url: Option<String>) -> anyhow::Result<()> {
    let db = BenchDb::open(database_url, "import").await?;
    let dir = tempfile_dir()?;
    let file = dir.join("customers.csv");
    let size = write_customers_csv(&file, rows, 2_000_000)?;
    let config = Config {
        public_url: "http://127.0.0.1:9".into(),
        admin_token: None,
        twilio_auth_token: None,
        twilio_account_sid: None,
        trust_proxy: false,
        captcha: None,
        import_max_bytes: assent_server::import::DEFAULT_MAX_BYTES.max(size),
        twilio_messaging_base: None,
    };
    let app = AppState::with_simulator(db.store(), Arc::new(SystemClock), config);
    let (over_http, key) = assent_server::service::tenants::create(
        &app,
        "Bench Imports HTTP",
        Some("America/Chicago"),
        true,
    )
    .await?;
    let (by_cli, _) = assent_server::service::tenants::create(
        &app,
        "Bench Imports CLI",
        Some("America/Chicago"),
        true,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(assent_server::serve(app.clone(), listener, false));

    // The CLI's path first: the same parser over the file, no HTTP.
    let start_mb = rss_mb();
    reset_peak_rss();
    let t0 = Instant::now();
    let csv = assent_server::import::CsvStream::from_reader(std::fs::File::open(&file)?);
    let report = assent_server::import::import_customers(&app, &by_cli.id, csv, |_| {}).await?;
    let cli = t0.elapsed();
    let cli_peak = peak_rss_mb();
    anyhow::ensure!(
        report.created as u64 == rows,
        "CLI path created {} of {rows}",
        report.created
    );

    let http_start_mb = rss_mb();
    reset_peak_rss();
    let t0 = Instant::now();
    let (status, body) = post_file(addr, "/api/v1/imports/customers", &key, &file).await?;
    let http = t0.elapsed();
    let http_peak = peak_rss_mb();
    anyhow::ensure!(status == 200, "HTTP import answered {status}: {body}");
    anyhow::ensure!(
        body.contains(&format!("\"created\":{rows}")),
        "HTTP import: {body}"
    );
    let _ = over_http;

    println!(
        "bench import: {rows} customers, one CSV file of {:.1} MB, {}",
        size as f64 / 1e6,
        db.label()
    );
    println!(
        "  one HTTP request (streamed from the file): {:.2} s, {:.0} rows/s; peak memory {http_peak:.0} MB (process before: {http_start_mb:.0} MB)",
        http.as_secs_f64(),
        rows as f64 / http.as_secs_f64()
    );
    println!(
        "  CLI path (same parser over the file): {:.2} s, {:.0} rows/s; peak memory {cli_peak:.0} MB (process before: {start_mb:.0} MB)",
        cli.as_secs_f64(),
        rows as f64 / cli.as_secs_f64()
    );
    println!(
        "  ratio HTTP / CLI: {:.2}",
        http.as_secs_f64() / cli.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup();
    Ok(())
}
