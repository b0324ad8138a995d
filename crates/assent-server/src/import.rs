//! CSV imports of customers, estimates, recurring services and calls: good rows are kept,
//! each bad row is reported with its line and reason, and no row is ever half-imported. A
//! UTF-8 byte-order mark, CRLF line ends and quoted fields are all fine. Importing the same
//! file twice adds nothing twice: estimates are keyed by their number, services and calls
//! by what they are.

use std::collections::HashMap;

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer, NewLedgerEntry, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::AppState;
use crate::service::{new_id, toggle_entries};

pub mod csv;

pub use csv::{CsvStream, Item, ReadError};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// The line in the file; the header is line 1.
    pub line: usize,
    pub error: String,
}

/// How many rejected rows an answer lists; `rejected_count` counts them all.
pub const MAX_REPORTED: usize = 1000;

/// How many new customers go to the store in one write.
pub const BATCH: usize = 5000;
/// An import that creates at least this many customers refreshes the database's
/// statistics before it reports (see `CustomerStore::refresh_statistics`).
pub const STATISTICS_AFTER: usize = 1000;
/// A long import refreshes them on its way too, when it has created this many customers
/// and again at each tenfold: the look-up of each batch's phones was planned on statistics
/// of a nearly empty table and took 2.7 s a batch by 300,000 rows on PostgreSQL (235 ms
/// after an `ANALYZE`).
pub const STATISTICS_FIRST: usize = 5000;

#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    /// Rows already imported, as they were (estimates, services and calls).
    #[serde(skip_serializing_if = "is_zero")]
    pub unchanged: usize,
    /// The first [`MAX_REPORTED`] rejected rows, in line order.
    pub rejected: Vec<Rejected>,
    /// Every rejected row, listed or not.
    pub rejected_count: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why an import stopped before the end of its file. Rows written before it stay written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] assent_store::StoreError),
    /// The file is over the import limit.
    #[error("{}", too_large_message(*.limit, .kept))]
    TooLarge { limit: u64, kept: Option<String> },
    #[error("the file could not be read to its end ({why}); {kept}")]
    Read { why: String, kept: String },
}

fn too_large_message(limit: u64, kept: &Option<String>) -> String {
    let head = format!(
        "the file is larger than the import limit of {} (ASSENT_IMPORT_MAX_BYTES)",
        bytes_in_words(limit)
    );
    match kept {
        None => format!("{head}; nothing was imported"),
        Some(kept) => format!("{head}; {kept}"),
    }
}

/// `1 GiB`, `512 KiB`, `300 bytes`.
pub fn bytes_in_words(n: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

impl From<ImportError> for crate::error::ApiError {
    fn from(e: ImportError) -> Self {
        use crate::error::{ApiError, Code};
        match e {
            ImportError::Store(e) => e.into(),
            e @ ImportError::TooLarge { .. } => ApiError::new(Code::BodyTooLarge, e.to_string()),
            e @ ImportError::Read { .. } => ApiError::new(Code::InvalidRequest, e.to_string()),
        }
    }
}

impl ImportError {
    /// The stream's error, saying what the rows read before it did.
    fn cut(e: ReadError, kept: usize) -> Self {
        let kept =
            format!("the {kept} row(s) imported before that are kept; the rest were not read");
        match e {
            ReadError::TooLarge { limit } => ImportError::TooLarge {
                limit,
                kept: Some(kept),
            },
            ReadError::Failed(why) => ImportError::Read { why, kept },
        }
    }
}

/// How large an imported file may be unless `ASSENT_IMPORT_MAX_BYTES` says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// A CSV import's request body, read as it arrives up to the configured limit; a body
/// whose `Content-Length` is over it is refused before anything is read.
pub async fn csv_body(
    app: &AppState,
    req: axum::extract::Request,
) -> std::result::Result<CsvStream, crate::error::ApiError> {
    let limit = app.config.import_max_bytes;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        csv::drain(&mut req.into_body()).await;
        return Err(ImportError::TooLarge { limit, kept: None }.into());
    }
    Ok(CsvStream::from_body(req.into_body(), limit))
}

/// Splits CSV text into records (RFC 4180), each with the line it starts on.
pub fn records(text: &str) -> Vec<(usize, Vec<String>)> {
    csv::items(text)
        .into_iter()
        .filter_map(|i| match i {
            Item::Row(line, fields) => Some((line, fields)),
            Item::Refused(_) => None,
        })
        .collect()
}

/// A yes/no cell; `None` when the column is missing or the cell blank, which means "the
/// default" for a new phone and "leave it as it is" for a phone already on a record.
fn flag(v: Option<&str>) -> std::result::Result<Option<bool>, String> {
    Ok(Some(
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") => return Ok(None),
            Some("true" | "yes" | "y" | "1" | "on") => true,
            Some("false" | "no" | "n" | "0" | "off") => false,
            Some(other) => return Err(format!("{other:?} is not yes or no")),
        },
    ))
}

/// One row's values, checked.
struct Parsed {
    name: String,
    phone: E164,
    job: Option<bool>,
    mk: Option<bool>,
    tags: Vec<String>,
    address: Option<String>,
}

/// A row ready to write, or why not.
enum Row {
    New(Customer, Vec<NewLedgerEntry>),
    Update {
        customer_id: String,
        phone: E164,
        toggles: (Option<bool>, Option<bool>),
    },
}

/// One customer import per tenant at a time, in this process.
fn tenant_import_lock(tenant_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Forget locks nobody holds or waits for, so the map stays as small as the imports.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    locks.entry(tenant_id.to_string()).or_default().clone()
}

/// Imports customers: a row whose phone is already on a record updates that record's
/// toggles, any other row creates a customer. Imports for one tenant run one at a time
/// (in every process on PostgreSQL), or two files sent at once would both create the
/// same customers. The file is read as it arrives and new customers are written
/// [`BATCH`] at a time; `progress` hears the bytes read after each batch.
pub async fn import_customers(
    app: &AppState,
    tenant_id: &str,
    csv: CsvStream,
    progress: impl FnMut(u64),
) -> std::result::Result<ImportReport, ImportError> {
    let local = tenant_import_lock(tenant_id);
    let _here = local.lock().await;
    let _everywhere = app.store.hold_import_lock(tenant_id).await?;
    import_customers_locked(app, tenant_id, csv, progress).await
}

async fn import_customers_locked(
    app: &AppState,
    tenant_id: &str,
    mut csv: CsvStream,
    mut progress: impl FnMut(u64),
) -> std::result::Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let cut = |e, r: &ImportReport| ImportError::cut(e, r.created + r.updated);
    let table = match Table::read(&mut csv, &["name", "phone"], &mut report).await {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(report),
        Err(e) => return Err(cut(e, &report)),
    };
    let now = app.clock.now();
    // Each phone seen in the file and its line, as a number: 1,000,000 rows take ~20 MB.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    // Checked rows waiting for their phones' owners, looked up [`BATCH`] at a time.
    let mut batch: Vec<Parsed> = Vec::with_capacity(BATCH);
    let mut next_statistics = STATISTICS_FIRST;
    loop {
        let item = match csv.next().await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(e) => return Err(cut(e, &report)),
        };
        let (line, fields) = match item {
            Item::Refused(r) => {
                reject(&mut report, r.line, r.error);
                continue;
            }
            Item::Row(line, fields) => (line, fields),
        };
        let parsed = match parse_customer(&table, &fields) {
            Ok(p) => p,
            Err(error) => {
                reject(&mut report, line, error);
                continue;
            }
        };
        let key = phone_key(&parsed.phone);
        if let Some(first) = seen.get(&key) {
            let error = format!("phone {} is already on line {first}", parsed.phone);
            reject(&mut report, line, error);
            continue;
        }
        seen.insert(key, u32::try_from(line).unwrap_or(u32::MAX));
        batch.push(parsed);
        if batch.len() >= BATCH {
            write_customers(app, tenant_id, &mut batch, now, &mut report).await?;
            if report.created >= next_statistics {
                app.store.refresh_statistics().await?;
                next_statistics = report.created.saturating_mul(10);
            }
            progress(csv.bytes_read());
        }
    }
    write_customers(app, tenant_id, &mut batch, now, &mut report).await?;
    if report.created >= STATISTICS_AFTER {
        app.store.refresh_statistics().await?;
    }
    progress(csv.bytes_read());
    Ok(report)
}

/// Writes one batch of checked rows (emptying it): rows whose phone is already on a record
/// update that record's toggles, the others become new customers, written together.
async fn write_customers(
    app: &AppState,
    tenant_id: &str,
    batch: &mut Vec<Parsed>,
    now: DateTime<Utc>,
    report: &mut ImportReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let phones: Vec<E164> = batch.iter().map(|p| p.phone.clone()).collect();
    let mut owners = HashMap::new();
    for (phone, customer) in app.store.phone_owners(tenant_id, &phones).await? {
        owners.entry(phone).or_insert(customer);
    }
    let mut new = Vec::with_capacity(batch.len());
    for parsed in batch.drain(..) {
        match customer_row(parsed, &owners, now) {
            Row::New(c, l) => new.push((c, l)),
            Row::Update {
                customer_id,
                phone,
                toggles,
            } => {
                if update_toggles(app, tenant_id, &customer_id, &phone, toggles, now).await? {
                    report.updated += 1;
                }
            }
        }
    }
    app.store.create_customers(tenant_id, &new).await?;
    report.created += new.len();
    Ok(())
}

/// A phone as one number (E.164 has at most 15 digits), for a compact set of those seen.
fn phone_key(phone: &E164) -> u64 {
    phone
        .as_str()
        .trim_start_matches('+')
        .parse()
        .unwrap_or(u64::MAX)
}

/// A customer row's values, checked; the error names the column.
fn parse_customer(table: &Table, row: &[String]) -> std::result::Result<Parsed, String> {
    let get = |name: &str| table.get(row, name);
    let name = get("name").unwrap_or_default().to_string();
    if name.is_empty() {
        return Err("name is required".into());
    }
    let raw = get("phone").unwrap_or("");
    let phone = E164::parse(raw).map_err(|e| format!("phone {raw:?}: {e}"))?;
    let job = flag(get("job_notifications")).map_err(|e| format!("job_notifications: {e}"))?;
    let mk = flag(get("marketing_updates")).map_err(|e| format!("marketing_updates: {e}"))?;
    let tags = get("tags")
        .map(|t| {
            t.split([';', ' ', '\t'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(Parsed {
        name,
        phone,
        job,
        mk,
        tags,
        address: get("address").map(str::to_string),
    })
}

/// What a checked row becomes: an update of the record already holding its phone, or a
/// new customer with the ledger entries of its toggles.
fn customer_row(p: Parsed, owners: &HashMap<E164, String>, now: DateTime<Utc>) -> Row {
    if let Some(existing) = owners.get(&p.phone) {
        return Row::Update {
            customer_id: existing.clone(),
            phone: p.phone,
            toggles: (p.job, p.mk),
        };
    }
    // A new contact method: Job Notifications on, Marketing updates off.
    let (job, mk) = (p.job.unwrap_or(true), p.mk.unwrap_or(false));
    let ledger = toggle_entries(&p.phone, None, (job, mk), Source::Import, "import", now);
    let c = Customer {
        id: new_id(),
        name: p.name,
        address: p.address,
        tags: p.tags,
        phones: vec![ContactMethod {
            number: p.phone,
            job_notifications: job,
            marketing_updates: mk,
        }],
        created_at: now,
    };
    Row::New(c, ledger)
}

/// Sets the toggles a row gives for a phone already on a record (a blank one stays as
/// the customer set it). Whether the record was there to update.
async fn update_toggles(
    app: &AppState,
    tenant_id: &str,
    customer_id: &str,
    phone: &E164,
    given: (Option<bool>, Option<bool>),
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(c) = app.store.customer(tenant_id, customer_id).await? else {
        return Ok(false);
    };
    let old = c
        .phones
        .iter()
        .find(|p| &p.number == phone)
        .map(|p| (p.job_notifications, p.marketing_updates));
    let (was_job, was_mk) = old.unwrap_or((true, false));
    let toggles = (given.0.unwrap_or(was_job), given.1.unwrap_or(was_mk));
    match old {
        _ if old == Some(toggles) => {}
        // A file that turns Marketing updates off for a phone with written consent
        // carries the customer's opt-out, as the switch does.
        Some(old) => {
            let who = crate::service::Who {
                source: Source::Import,
                actor: "import",
            };
            crate::service::set_notifications(
                app,
                tenant_id,
                customer_id,
                phone,
                (old, toggles),
                who,
            )
            .await?;
        }
        None => {
            let ledger = toggle_entries(phone, old, toggles, Source::Import, "import", now);
            app.store
                .set_toggles(tenant_id, customer_id, phone, toggles, &ledger)
                .await?;
        }
    }
    Ok(true)
}

/// A file's header, or the report that refuses the whole file (no header, or a required
/// column missing).
struct Table {
    col: HashMap<String, usize>,
}

impl Table {
    /// Reads up to the header (rows refused before it are reported).
    async fn read(
        csv: &mut CsvStream,
        required: &[&str],
        report: &mut ImportReport,
    ) -> std::result::Result<Option<Table>, ReadError> {
        let header = loop {
            match csv.next().await? {
                Some(Item::Row(_, header)) => break header,
                Some(Item::Refused(r)) => reject(report, r.line, r.error),
                None => {
                    reject(
                        report,
                        1,
                        "the file is empty; the first line must be a header".into(),
                    );
                    return Ok(None);
                }
            }
        };
        let col: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
            .collect();
        for alternatives in required {
            if !alternatives.split('|').any(|c| col.contains_key(c)) {
                reject(
                    report,
                    1,
                    format!(
                        "the header has no {} column",
                        alternatives.replace('|', " or ")
                    ),
                );
                return Ok(None);
            }
        }
        Ok(Some(Table { col }))
    }

    /// A row's cell, trimmed; `None` when the column is missing or the cell blank.
    fn get<'a>(&self, row: &'a [String], name: &str) -> Option<&'a str> {
        self.col
            .get(name)
            .and_then(|i| row.get(*i))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Short, stable ids for rows keyed by what they are, so a second import finds them.
pub(crate) fn keyed_id(prefix: &str, parts: &[&str]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(parts.join("\u{1f}").as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// The customer a row names, by `customer_id` or by a phone on their record (the oldest
/// record holding it), looked up for this row alone.
async fn customer_of(
    app: &AppState,
    tenant_id: &str,
    t: &Table,
    row: &[String],
) -> std::result::Result<(String, Option<E164>), String> {
    if let Some(id) = t.get(row, "customer_id") {
        return match app.store.customer(tenant_id, id).await {
            Ok(Some(c)) => Ok((c.id, None)),
            Ok(None) => Err(format!("customer_id {id:?}: no such customer")),
            Err(e) => Err(e.to_string()),
        };
    }
    let raw = t.get(row, "phone").unwrap_or("");
    let phone = E164::parse(raw).map_err(|e| format!("phone {raw:?}: {e}"))?;
    match app.store.customers_with_phone(tenant_id, &phone).await {
        Ok(ids) => match ids.into_iter().next() {
            Some(id) => Ok((id, Some(phone))),
            None => Err(format!("phone {phone} is on no customer record")),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// A time cell: RFC 3339, or a date read as midnight in the tenant's zone.
fn time_cell(
    tenant: &assent_store::Tenant,
    name: &str,
    v: &str,
) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| crate::service::day_start(tenant, v, false))
        .ok_or_else(|| format!("{name} {v:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// Dollars as written in a spreadsheet ("1,250.50", "$80") in cents.
fn cents(v: &str) -> std::result::Result<i64, String> {
    let clean: String = v
        .chars()
        .filter(|c| !matches!(c, '$' | ',' | ' '))
        .collect();
    let (whole, frac) = clean.split_once('.').unwrap_or((&clean, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole.chars().chain(frac.chars())).all(|c| c.is_ascii_digit())
    {
        return Err(format!(
            "amount {v:?} is not an amount of dollars such as 1250.00"
        ));
    }
    let too_large = || format!("amount {v:?} is too large");
    let whole: i64 = whole.parse().map_err(|_| too_large())?;
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(frac))
        .ok_or_else(too_large)
}

/// The next row of the file; rows refused before their columns are read are reported on
/// the way. A read that fails says how many rows were kept before it.
async fn next_row(
    csv: &mut CsvStream,
    report: &mut ImportReport,
) -> std::result::Result<Option<(usize, Vec<String>)>, ImportError> {
    loop {
        match csv.next().await {
            Ok(Some(Item::Row(line, fields))) => return Ok(Some((line, fields))),
            Ok(Some(Item::Refused(r))) => reject(report, r.line, r.error),
            Ok(None) => return Ok(None),
            Err(e) => {
                let kept = report.created + report.updated + report.unchanged;
                return Err(ImportError::cut(e, kept));
            }
        }
    }
}

/// Counts a rejected row, and lists it while the list is under [`MAX_REPORTED`].
fn reject(report: &mut ImportReport, line: usize, error: String) {
    report.rejected_count += 1;
    if report.rejected.len() < MAX_REPORTED {
        report.rejected.push(Rejected { line, error });
    }
}

/// Estimates: `phone` (or `customer_id`), `number`, `amount` (dollars) or `amount_cents`,
/// `status` (unsold, sold, dismissed; default unsold) and `created_at`. An estimate whose
/// number was imported before has its status updated (a sold or dismissed one gets no more
/// follow-ups), not a second estimate.
pub async fn import_estimates(
    app: &AppState,
    tenant: &assent_store::Tenant,
    mut csv: CsvStream,
) -> std::result::Result<ImportReport, ImportError> {
    use assent_store::{Estimate, EstimateStatus};
    let mut report = ImportReport::default();
    let Some(t) = Table::read(
        &mut csv,
        &["phone|customer_id", "amount|amount_cents"],
        &mut report,
    )
    .await
    .map_err(|e| ImportError::cut(e, 0))?
    else {
        return Ok(report);
    };
    let now = app.clock.now();
    while let Some((line, row)) = next_row(&mut csv, &mut report).await? {
        let (line, row) = (&line, &row);
        let parsed = async {
            let (customer_id, phone) = customer_of(app, &tenant.id, &t, row).await?;
            let amount_cents =
                match (t.get(row, "amount_cents"), t.get(row, "amount")) {
                    (Some(c), _) => c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                        format!("amount_cents {c:?} is not a whole number of cents")
                    })?,
                    (None, Some(a)) => cents(a)?,
                    (None, None) => return Err("amount is required".to_string()),
                };
            let status = match t.get(row, "status").map(str::to_ascii_lowercase).as_deref() {
                None | Some("unsold") => EstimateStatus::Unsold,
                Some("sold") => EstimateStatus::Sold,
                Some("dismissed") => EstimateStatus::Dismissed,
                Some(other) => {
                    return Err(format!("status {other:?} is not unsold, sold or dismissed"));
                }
            };
            let created_at = match t.get(row, "created_at") {
                Some(v) => time_cell(tenant, "created_at", v)?,
                None => now,
            };
            let number = t.get(row, "number").map(str::to_string);
            Ok::<_, String>(Estimate {
                id: match &number {
                    Some(n) => keyed_id("est", &[n]),
                    None => new_id(),
                },
                customer_id,
                phone,
                number,
                amount_cents,
                status,
                created_at,
            })
        }
        .await;
        let e = match parsed {
            Ok(e) => e,
            Err(error) => {
                reject(&mut report, *line, error);
                continue;
            }
        };
        match app.store.estimate(&tenant.id, &e.id).await? {
            Some(old) if old.status == e.status => report.unchanged += 1,
            Some(mut old) => {
                old.status = e.status;
                app.store.save_estimate(&tenant.id, &old).await?;
                if old.status != EstimateStatus::Unsold {
                    app.store
                        .withdraw_estimate_steps(&tenant.id, &old.id, now)
                        .await?;
                }
                report.updated += 1;
            }
            None => {
                app.store.save_estimate(&tenant.id, &e).await?;
                report.created += 1;
            }
        }
    }
    app.wake.notify_one();
    Ok(report)
}

/// Recurring services: `phone` (or `customer_id`), `name` and `due_on` (YYYY-MM-DD).
pub async fn import_recurring_services(
    app: &AppState,
    tenant: &assent_store::Tenant,
    mut csv: CsvStream,
) -> std::result::Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let Some(t) = Table::read(
        &mut csv,
        &["phone|customer_id", "name", "due_on"],
        &mut report,
    )
    .await
    .map_err(|e| ImportError::cut(e, 0))?
    else {
        return Ok(report);
    };
    while let Some((line, row)) = next_row(&mut csv, &mut report).await? {
        let (line, row) = (&line, &row);
        let parsed = async {
            let (customer_id, _) = customer_of(app, &tenant.id, &t, row).await?;
            let name = t.get(row, "name").ok_or("name is required")?.to_string();
            let due = t.get(row, "due_on").ok_or("due_on is required")?;
            let due_on = chrono::NaiveDate::parse_from_str(due, "%Y-%m-%d")
                .map_err(|_| format!("due_on {due:?} is not a date YYYY-MM-DD"))?;
            Ok::<_, String>(assent_store::RecurringService {
                id: keyed_id(
                    "rs",
                    &[&customer_id, &name.to_lowercase(), &due_on.to_string()],
                ),
                customer_id,
                name,
                due_on,
                created_at: app.clock.now(),
            })
        }
        .await;
        match parsed {
            Err(error) => reject(&mut report, *line, error),
            Ok(r) => match app.store.save_recurring_service(&tenant.id, &r).await {
                Ok(()) => report.created += 1,
                Err(assent_store::StoreError::Conflict(_)) => report.unchanged += 1,
                Err(e) => return Err(e.into()),
            },
        }
    }
    app.wake.notify_one();
    Ok(report)
}

/// Calls: `from`, `to` (one of the tenant's numbers), `status` (missed or answered) and
/// `at`. A missed call new to Assent gets its text-back as if posted to `/calls` (one
/// reported more than an hour late is recorded as too late, not texted).
pub async fn import_calls(
    app: &AppState,
    tenant: &assent_store::Tenant,
    mut csv: CsvStream,
) -> std::result::Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let Some(t) = Table::read(&mut csv, &["from", "to", "status", "at"], &mut report)
        .await
        .map_err(|e| ImportError::cut(e, 0))?
    else {
        return Ok(report);
    };
    while let Some((line, row)) = next_row(&mut csv, &mut report).await? {
        let (line, row) = (&line, &row);
        let parsed = (|| {
            let phone = |name: &str| {
                let raw = t.get(row, name).unwrap_or("");
                E164::parse(raw).map_err(|e| format!("{name} {raw:?}: {e}"))
            };
            let (from, to) = (phone("from")?, phone("to")?);
            let missed = match t.get(row, "status").map(str::to_ascii_lowercase).as_deref() {
                Some("missed") => true,
                Some("answered") => false,
                other => {
                    return Err(format!(
                        "status {:?} is not missed or answered",
                        other.unwrap_or("")
                    ));
                }
            };
            let at = time_cell(tenant, "at", t.get(row, "at").unwrap_or(""))?;
            Ok::<_, String>(assent_store::Call {
                id: keyed_id("call", &[from.as_str(), to.as_str(), &at.to_rfc3339()]),
                from,
                to,
                missed,
                at,
            })
        })();
        let call = match parsed {
            Ok(c) => c,
            Err(error) => {
                reject(&mut report, *line, error);
                continue;
            }
        };
        match app.store.save_call(&tenant.id, &call).await {
            Ok(()) => report.created += 1,
            Err(assent_store::StoreError::Conflict(_)) => {
                report.unchanged += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        if call.missed && tenant.thread_of(&call.to).is_some() {
            crate::campaigns::missed_call(app, tenant, &call.from, call.at).await?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_a_spreadsheet_writes_them() {
        assert_eq!(cents("$1,250.50"), Ok(125_050));
        assert_eq!(cents("80"), Ok(8_000));
        assert_eq!(cents("0.5"), Ok(50));
        for bad in ["ten", "1.234", "-5", "", "$", "1.2.3", "100000000000000000"] {
            assert!(cents(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_records_handle_bom_crlf_quotes_and_blank_lines() {
        let text = "\u{feff}name,phone,tags\r\n\"Ortega, Luis\",512-555-0178,\"vip;hvac\"\r\n\r\nZoë \"Z\",5125550179,\n";
        let r = records(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].1, vec!["name", "phone", "tags"]);
        assert_eq!(
            r[1],
            (
                2,
                vec![
                    "Ortega, Luis".to_string(),
                    "512-555-0178".into(),
                    "vip;hvac".into()
                ]
            )
        );
        assert_eq!(r[2].0, 4);
        assert_eq!(r[2].1[0], "Zoë \"Z\"");
    }
}

/// What an import of earlier opt-outs did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConsentImportReport {
    /// Opt-outs that changed (or confirmed) the phone's consent.
    pub applied: usize,
    /// Opt-outs older than the last consent the customer gave in Assent: kept as evidence,
    /// the state unchanged.
    pub recorded_only: usize,
    /// The first [`MAX_REPORTED`] rejected rows, in line order.
    pub rejected: Vec<Rejected>,
    /// Every rejected row, listed or not.
    pub rejected_count: usize,
}

/// Earlier opt-outs from another system: `phone`, `opted_out_at` (required), `scope`
/// (`marketing` or `all`, default `all`), `source` (where it was recorded, e.g. the old
/// system's name) and `note`. Each good row is one transaction; bad rows are reported by
/// line and the rest kept. A row in the future is refused: an opt-out not yet given is
/// no evidence.
pub async fn import_consent(
    app: &AppState,
    tenant: &assent_store::Tenant,
    mut csv: CsvStream,
) -> std::result::Result<ConsentImportReport, ImportError> {
    use assent_core::consent::Scope;
    let mut report = ImportReport::default();
    let mut out = ConsentImportReport::default();
    let Some(t) = Table::read(&mut csv, &["phone", "opted_out_at"], &mut report)
        .await
        .map_err(|e| ImportError::cut(e, 0))?
    else {
        out.rejected = report.rejected;
        out.rejected_count = report.rejected_count;
        return Ok(out);
    };
    let now = app.clock.now();
    while let Some((line, row)) = next_row(&mut csv, &mut report).await? {
        let (line, row) = (&line, &row);
        let parsed = (|| {
            let raw = t.get(row, "phone").ok_or("phone is required")?;
            let phone = E164::parse(raw).map_err(|e| format!("phone {raw:?}: {e}"))?;
            let at_raw = t
                .get(row, "opted_out_at")
                .ok_or("opted_out_at is required")?;
            let at = time_cell(tenant, "opted_out_at", at_raw)?;
            if at > now {
                return Err(format!("opted_out_at {at_raw:?} is in the future"));
            }
            let scope = match t.get(row, "scope").map(str::to_ascii_lowercase).as_deref() {
                None => Scope::All,
                Some(s) => s
                    .parse::<Scope>()
                    .ok()
                    .ok_or_else(|| format!("scope {s:?} is not marketing or all"))?,
            };
            Ok::<_, String>((phone, at, scope))
        })();
        let (phone, at, scope) = match parsed {
            Ok(p) => p,
            Err(error) => {
                reject(&mut report, *line, error);
                continue;
            }
        };
        let note = match (t.get(row, "source"), t.get(row, "note")) {
            (Some(s), Some(n)) => Some(format!("{s}: {n}")),
            (Some(s), None) => Some(s.to_string()),
            (None, n) => n.map(str::to_string),
        };
        let evidence = assent_store::Evidence {
            text: note,
            ..Default::default()
        };
        // Counted in the report as it goes, so a read cut short can say what was kept.
        if crate::service::import_opt_out(app, tenant, &phone, scope, at, evidence).await? {
            report.created += 1;
        } else {
            report.updated += 1;
        }
    }
    out.applied = report.created;
    out.recorded_only = report.updated;
    out.rejected = report.rejected;
    out.rejected_count = report.rejected_count;
    Ok(out)
}
