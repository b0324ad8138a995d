//! `/imports`: a CSV of customers, estimates, recurring services, calls or earlier opt-outs,
//! uploaded from the browser and imported by the API's own streaming import code
//! ([`crate::import`]) in a background task. The upload answers at once with the job's
//! page, which shows a progress bar (bytes read of the file) and reloads itself every two
//! seconds through the `Refresh` header until the import ends, then shows the per-line
//! report; without JavaScript it is the same page. The report downloads as CSV, and each
//! kind has a template file.
//!
//! The file goes to an anonymous temporary file as it arrives (never whole in memory),
//! so an upload of any size up to `ASSENT_IMPORT_MAX_BYTES` is read once. Jobs live in
//! this process's memory: the last [`JOBS_KEPT`] are kept, and a restart forgets them
//! (rows already imported stay imported).

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use askama::Template;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use super::session::SignedIn;
use super::{Chrome, Section, TimeEl, WebError, WebResult, render, see_other, thousands};
use crate::AppState;
use crate::import::{self, CsvStream, Rejected};

/// What a file holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Customers,
    Estimates,
    RecurringServices,
    Calls,
    OptOuts,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Customers,
        Kind::Estimates,
        Kind::RecurringServices,
        Kind::Calls,
        Kind::OptOuts,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Estimates => "estimates",
            Kind::RecurringServices => "recurring-services",
            Kind::Calls => "calls",
            Kind::OptOuts => "opt-outs",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Customers => "Customers",
            Kind::Estimates => "Estimates",
            Kind::RecurringServices => "Recurring services",
            Kind::Calls => "Calls",
            Kind::OptOuts => "Opt-outs",
        }
    }

    fn of(code: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The columns a file of this kind has, and what each holds.
    fn help(self) -> &'static str {
        match self {
            Kind::Customers => {
                "name and phone (required), job_notifications and marketing_updates (yes or no), tags (separated by ; or spaces), address. A phone already on a customer updates that customer's switches."
            }
            Kind::Estimates => {
                "phone (or customer_id), number, amount (dollars) or amount_cents, status (unsold, sold or dismissed), created_at. An estimate number imported before is updated, not added twice."
            }
            Kind::RecurringServices => "phone (or customer_id), name and due_on (YYYY-MM-DD).",
            Kind::Calls => {
                "from, to (one of your numbers), status (missed or answered) and at. A missed call new to Assent gets its text-back."
            }
            Kind::OptOuts => {
                "phone and opted_out_at (required), scope (marketing or all; all when blank), source (where it was recorded) and note. Each becomes a consent-history entry with its evidence."
            }
        }
    }

    /// A template file: the header and one example row.
    fn template(self) -> &'static str {
        match self {
            Kind::Customers => {
                "name,phone,job_notifications,marketing_updates,tags,address\nDana Whitfield,(512) 555-0142,yes,no,hvac;vip,\"12 Oak St, Austin, TX\"\n"
            }
            Kind::Estimates => {
                "phone,number,amount,status,created_at\n(512) 555-0142,E-1001,1250.00,unsold,2026-03-01\n"
            }
            Kind::RecurringServices => {
                "phone,name,due_on\n(512) 555-0142,Furnace tune-up,2026-10-01\n"
            }
            Kind::Calls => {
                "from,to,status,at\n(512) 555-0142,(512) 555-0100,missed,2026-03-01T15:04:00Z\n"
            }
            Kind::OptOuts => {
                "phone,opted_out_at,scope,source,note\n(512) 555-0142,2025-11-20,all,Old texting tool,Replied STOP\n"
            }
        }
    }
}

/// Where an import is.
#[derive(Clone)]
enum Progress {
    Running,
    Done(Summary),
    Failed(String),
}

/// What an import did, whatever its kind: its counts in words, and the rejected lines.
#[derive(Clone)]
struct Summary {
    counts: Vec<(&'static str, usize)>,
    rejected: Vec<Rejected>,
    rejected_count: usize,
}

impl From<import::ImportReport> for Summary {
    fn from(r: import::ImportReport) -> Self {
        let mut counts = vec![("Added", r.created), ("Updated", r.updated)];
        if r.unchanged > 0 {
            counts.push(("Already imported, unchanged", r.unchanged));
        }
        Summary {
            counts,
            rejected: r.rejected,
            rejected_count: r.rejected_count,
        }
    }
}

impl From<import::ConsentImportReport> for Summary {
    fn from(r: import::ConsentImportReport) -> Self {
        Summary {
            counts: vec![
                ("Opt-outs applied", r.applied),
                (
                    "Kept as evidence only (older than a later consent)",
                    r.recorded_only,
                ),
            ],
            rejected: r.rejected,
            rejected_count: r.rejected_count,
        }
    }
}

/// One upload's import.
struct Job {
    tenant_id: String,
    kind: Kind,
    file_name: String,
    size: u64,
    read: AtomicU64,
    started: DateTime<Utc>,
    progress: Mutex<Progress>,
}

impl Job {
    fn progress(&self) -> Progress {
        self.progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn finish(&self, p: Progress) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }
}

/// How many jobs this process remembers (the oldest finished ones go first).
pub const JOBS_KEPT: usize = 200;

/// The jobs by id, oldest first.
type Jobs = Mutex<Vec<(String, Arc<Job>)>>;

fn jobs() -> &'static Jobs {
    static JOBS: OnceLock<Jobs> = OnceLock::new();
    JOBS.get_or_init(Default::default)
}

fn remember(id: String, job: Arc<Job>) {
    let mut jobs = jobs().lock().unwrap_or_else(|e| e.into_inner());
    jobs.push((id, job));
    while jobs.len() > JOBS_KEPT {
        let finished = jobs
            .iter()
            .position(|(_, j)| !matches!(j.progress(), Progress::Running));
        match finished {
            Some(i) => {
                jobs.remove(i);
            }
            None => break,
        }
    }
}

/// A tenant's job (another tenant's is not found).
fn job_of(tenant_id: &str, id: &str) -> WebResult<Arc<Job>> {
    jobs()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(i, j)| i == id && j.tenant_id == tenant_id)
        .map(|(_, j)| j.clone())
        .ok_or_else(|| WebError::not_found("This import"))
}

/// The tenant's recent jobs, newest first.
fn jobs_of(tenant_id: &str) -> Vec<(String, Arc<Job>)> {
    let jobs = jobs().lock().unwrap_or_else(|e| e.into_inner());
    jobs.iter()
        .rev()
        .filter(|(_, j)| j.tenant_id == tenant_id)
        .take(20)
        .cloned()
        .collect()
}

struct KindChoice {
    code: &'static str,
    label: &'static str,
    help: &'static str,
}

struct RecentJob {
    url: String,
    kind: &'static str,
    file: String,
    started: TimeEl,
    state: String,
}

#[derive(Template)]
#[template(path = "imports/index.html")]
struct ImportsPage<'a> {
    chrome: Chrome<'a>,
    kinds: Vec<KindChoice>,
    limit: String,
    error: Option<String>,
    recent: Vec<RecentJob>,
}

fn state_words(p: &Progress) -> String {
    match p {
        Progress::Running => "Running".into(),
        Progress::Done(s) if s.rejected_count > 0 => {
            format!(
                "Finished, {} line(s) rejected",
                thousands(s.rejected_count as u64)
            )
        }
        Progress::Done(_) => "Finished".into(),
        Progress::Failed(_) => "Stopped".into(),
    }
}

fn imports_page<'a>(user: &'a SignedIn, app: &AppState, error: Option<String>) -> ImportsPage<'a> {
    let t = &user.tenant;
    ImportsPage {
        chrome: Chrome::new(user, "Imports", Section::Imports),
        kinds: Kind::ALL
            .iter()
            .map(|k| KindChoice {
                code: k.code(),
                label: k.label(),
                help: k.help(),
            })
            .collect(),
        limit: import::bytes_in_words(app.config.import_max_bytes),
        error,
        recent: jobs_of(&t.id)
            .into_iter()
            .map(|(id, j)| RecentJob {
                url: format!("/imports/{id}"),
                kind: j.kind.label(),
                file: j.file_name.clone(),
                started: TimeEl::new(t, j.started),
                state: state_words(&j.progress()),
            })
            .collect(),
    }
}

pub async fn page(user: SignedIn, State(app): State<AppState>) -> Response {
    render(&imports_page(&user, &app, None))
}

/// The form again with what was wrong (422; nothing was imported).
fn refused(user: &SignedIn, app: &AppState, status: StatusCode, why: String) -> Response {
    let mut res = render(&imports_page(user, app, Some(why)));
    *res.status_mut() = status;
    res
}

/// `POST /imports` (multipart: `csrf`, `kind`, then the file `csv`): stores the file as
/// it arrives, starts the import in the background and answers 303 with the job's page.
pub async fn upload(State(app): State<AppState>, req: Request) -> WebResult<Response> {
    let (mut parts, body) = req.into_parts();
    let user = match SignedIn::from_request_parts(&mut parts, &app).await {
        Ok(u) => u,
        Err(res) => return Ok(res),
    };
    let boundary = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart_boundary);
    let Some(boundary) = boundary else {
        return Ok(refused(
            &user,
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a CSV file and press Upload.".into(),
        ));
    };
    let limit = app.config.import_max_bytes;
    let mut form = Multipart::new(body, &boundary);
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file: Option<(String, std::fs::File, u64)> = None;
    loop {
        let part = match form.next_part().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(why) => {
                return Ok(refused(&user, &app, StatusCode::BAD_REQUEST, why));
            }
        };
        match part.file_name {
            Some(name) if part.name == "csv" && file.is_none() => {
                // The token comes before the file: nothing is stored for a forged form.
                if !csrf_ok(&user, fields.get("csrf").map(String::as_str)) {
                    return Err(forged());
                }
                let mut f = spool_file().map_err(internal)?;
                let size = match form.copy_part(&mut f, limit).await {
                    Ok(n) => n,
                    Err(CopyError::TooLarge) => {
                        return Ok(refused(
                            &user,
                            &app,
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "The file is larger than the import limit of {}; nothing was imported.",
                                import::bytes_in_words(limit)
                            ),
                        ));
                    }
                    Err(CopyError::Read(why)) => {
                        return Ok(refused(&user, &app, StatusCode::BAD_REQUEST, why));
                    }
                    Err(CopyError::Write(e)) => return Err(internal(e)),
                };
                file = Some((name, f, size));
            }
            _ => {
                let value = form.small_part().await;
                match value {
                    Ok(v) => {
                        fields.insert(part.name, v);
                    }
                    Err(why) => return Ok(refused(&user, &app, StatusCode::BAD_REQUEST, why)),
                }
            }
        }
    }
    if !csrf_ok(&user, fields.get("csrf").map(String::as_str)) {
        return Err(forged());
    }
    let Some(kind) = fields.get("kind").and_then(|k| Kind::of(k)) else {
        return Ok(refused(
            &user,
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose what the file holds (Customers, Estimates, Recurring services, Calls or Opt-outs).".into(),
        ));
    };
    let Some((file_name, mut f, size)) = file.filter(|(_, _, n)| *n > 0) else {
        return Ok(refused(
            &user,
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a CSV file: the file field was empty.".into(),
        ));
    };
    f.rewind().map_err(internal)?;
    let id = crate::service::new_id();
    let job = Arc::new(Job {
        tenant_id: user.tenant.id.clone(),
        kind,
        file_name: file_name.chars().take(200).collect(),
        size,
        read: AtomicU64::new(0),
        started: app.clock.now(),
        progress: Mutex::new(Progress::Running),
    });
    remember(id.clone(), job.clone());
    let tenant = user.tenant.clone();
    tokio::spawn(async move {
        let reader = Counting {
            inner: f,
            job: job.clone(),
        };
        let csv = CsvStream::from_reader(reader);
        let outcome = run(&app, &tenant, kind, csv).await;
        match outcome {
            Ok(summary) => job.finish(Progress::Done(summary)),
            Err(e) => {
                if let import::ImportError::Store(e) = &e {
                    tracing::error!(error = %e, "web import failed");
                }
                job.finish(Progress::Failed(format!("The import stopped: {e}.")));
            }
        }
        app.wake.notify_one();
    });
    Ok(see_other(&format!("/imports/{id}")))
}

/// An anonymous file in the temporary directory for an upload: created, then unlinked
/// at once, so it goes away with its handle whatever happens to the import.
fn spool_file() -> std::io::Result<std::fs::File> {
    let path = std::env::temp_dir().join(format!("assent-upload-{}.csv", crate::service::new_id()));
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(error = %e, "an upload's spool file could not be unlinked");
    }
    Ok(f)
}

async fn run(
    app: &AppState,
    t: &assent_store::Tenant,
    kind: Kind,
    csv: CsvStream,
) -> Result<Summary, import::ImportError> {
    Ok(match kind {
        Kind::Customers => import::import_customers(app, &t.id, csv, |_| {})
            .await?
            .into(),
        Kind::Estimates => import::import_estimates(app, t, csv).await?.into(),
        Kind::RecurringServices => import::import_recurring_services(app, t, csv).await?.into(),
        Kind::Calls => import::import_calls(app, t, csv).await?.into(),
        Kind::OptOuts => import::import_consent(app, t, csv).await?.into(),
    })
}

/// A file read for an import, counting the bytes read for the progress bar.
struct Counting {
    inner: std::fs::File,
    job: Arc<Job>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.job.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn csrf_ok(user: &SignedIn, given: Option<&str>) -> bool {
    let given = given.unwrap_or("");
    !given.is_empty()
        && crate::auth::constant_time_eq(given.as_bytes(), user.session.csrf_token.as_bytes())
}

fn forged() -> WebError {
    WebError {
        status: StatusCode::FORBIDDEN,
        message: "This form has expired or did not come from Assent. Go back, reload the page and try again.".into(),
    }
}

fn internal(e: std::io::Error) -> WebError {
    tracing::error!(error = %e, "an upload could not be stored");
    WebError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: "The file could not be stored for the import; it has been logged.".into(),
    }
}

#[derive(Template)]
#[template(path = "imports/job.html")]
struct JobPage<'a> {
    chrome: Chrome<'a>,
    id: String,
    kind: &'static str,
    file: String,
    started: TimeEl,
    running: bool,
    percent: u64,
    read_words: String,
    failed: Option<String>,
    counts: Vec<(&'static str, String)>,
    rejected: Vec<Rejected>,
    rejected_count: String,
    more_rejected: bool,
}

/// How far a job is: bytes read of the file, as a percentage.
fn percent(job: &Job) -> (u64, u64) {
    let read = job.read.load(Ordering::Relaxed).min(job.size);
    let pct = (read * 100).checked_div(job.size).unwrap_or(100);
    (read, pct)
}

pub async fn job(user: SignedIn, Path(id): Path<String>) -> WebResult<Response> {
    let t = &user.tenant;
    let job = job_of(&t.id, &id)?;
    let progress = job.progress();
    let (read, pct) = percent(&job);
    let running = matches!(progress, Progress::Running);
    let (failed, summary) = match progress {
        Progress::Running => (None, None),
        Progress::Done(s) => (None, Some(s)),
        Progress::Failed(why) => (Some(why), None),
    };
    let title = format!("Import of {}", job.kind.label().to_lowercase());
    let page = JobPage {
        chrome: Chrome::new(&user, &title, Section::Imports),
        id: id.clone(),
        kind: job.kind.label(),
        file: job.file_name.clone(),
        started: TimeEl::new(t, job.started),
        running,
        percent: if running { pct } else { 100 },
        read_words: format!(
            "{} of {}",
            import::bytes_in_words(read),
            import::bytes_in_words(job.size)
        ),
        failed,
        counts: summary
            .as_ref()
            .map(|s| {
                s.counts
                    .iter()
                    .map(|(k, n)| (*k, thousands(*n as u64)))
                    .collect()
            })
            .unwrap_or_default(),
        rejected_count: summary
            .as_ref()
            .map(|s| thousands(s.rejected_count as u64))
            .unwrap_or_default(),
        more_rejected: summary
            .as_ref()
            .is_some_and(|s| s.rejected_count > s.rejected.len()),
        rejected: summary.map(|s| s.rejected).unwrap_or_default(),
    };
    let mut res = render(&page);
    if running {
        // Reloads itself until the import ends; no script needed.
        res.headers_mut()
            .insert(header::REFRESH, axum::http::HeaderValue::from_static("2"));
    }
    Ok(res)
}

/// `GET /imports/{id}/status`: the job's progress as JSON, for the page's script.
pub async fn status(user: SignedIn, Path(id): Path<String>) -> WebResult<Response> {
    let job = job_of(&user.tenant.id, &id)?;
    let (read, pct) = percent(&job);
    let state = match job.progress() {
        Progress::Running => "running",
        Progress::Done(_) => "done",
        Progress::Failed(_) => "failed",
    };
    Ok(axum::Json(serde_json::json!({
        "state": state,
        "read": read,
        "size": job.size,
        "percent": pct,
    }))
    .into_response())
}

/// `GET /imports/{id}/report.csv`: the rejected lines, `line,error`.
pub async fn report_csv(user: SignedIn, Path(id): Path<String>) -> WebResult<Response> {
    let job = job_of(&user.tenant.id, &id)?;
    let Progress::Done(s) = job.progress() else {
        return Err(WebError {
            status: StatusCode::CONFLICT,
            message: "This import has no report yet: it is still running, or it stopped.".into(),
        });
    };
    let mut out = String::from("line,error\n");
    for r in &s.rejected {
        out.push_str(&format!("{},{}\n", r.line, csv_cell(&r.error)));
    }
    if s.rejected_count > s.rejected.len() {
        out.push_str(&format!(
            ",{}\n",
            csv_cell(&format!(
                "and {} more rejected line(s) not listed",
                s.rejected_count - s.rejected.len()
            ))
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"import-{}-report.csv\"",
                    job.kind.code()
                ),
            ),
        ],
        out,
    )
        .into_response())
}

/// `GET /imports/templates/{kind}.csv`.
pub async fn template(_user: SignedIn, Path(file): Path<String>) -> WebResult<Response> {
    let kind = file
        .strip_suffix(".csv")
        .and_then(Kind::of)
        .ok_or_else(|| WebError::not_found("This template"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-template.csv\"", kind.code()),
            ),
        ],
        kind.template(),
    )
        .into_response())
}

/// Quotes a CSV cell; text a spreadsheet would run as a formula is defused.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The boundary of a `multipart/form-data` content type.
fn multipart_boundary(ct: &str) -> Option<String> {
    let mut parts = ct.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// A part's headers: its field name, and its file name when it is a file.
struct Part {
    name: String,
    file_name: Option<String>,
}

enum CopyError {
    TooLarge,
    Read(String),
    Write(std::io::Error),
}

/// A `multipart/form-data` body read part by part as it arrives (RFC 7578): small fields
/// in memory, a file straight to disk.
struct Multipart {
    body: axum::body::BodyDataStream,
    buf: Vec<u8>,
    /// `\r\n--boundary`: what ends a part's content.
    delimiter: Vec<u8>,
    ended: bool,
    started: bool,
}

/// How large a part's headers or a plain field may be.
const SMALL_PART: usize = 64 << 10;

impl Multipart {
    fn new(body: axum::body::Body, boundary: &str) -> Self {
        Multipart {
            body: body.into_data_stream(),
            buf: Vec::new(),
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            ended: false,
            started: false,
        }
    }

    /// Reads one more chunk into the buffer; `false` at the end of the body.
    async fn fill(&mut self) -> Result<bool, String> {
        match self.body.next().await {
            Some(Ok(b)) => {
                self.buf.extend_from_slice(&b);
                Ok(true)
            }
            Some(Err(e)) => Err(format!("The upload broke off ({e}); nothing was imported.")),
            None => Ok(false),
        }
    }

    /// Reads until `needle` is in the buffer (at most `max` bytes ahead); its position.
    async fn find(&mut self, needle: &[u8], max: usize) -> Result<usize, String> {
        loop {
            if let Some(i) = find(&self.buf, needle) {
                return Ok(i);
            }
            if self.buf.len() > max || !self.fill().await? {
                return Err("The upload is not a form this page sent.".into());
            }
        }
    }

    /// The next part's headers, or `None` after the last part.
    async fn next_part(&mut self) -> Result<Option<Part>, String> {
        if self.ended {
            return Ok(None);
        }
        if !self.started {
            // The first boundary has no CRLF before it.
            let first = self.delimiter[2..].to_vec();
            let i = self.find(&first, SMALL_PART).await?;
            self.buf.drain(..i + first.len());
            self.started = true;
        }
        // After a boundary: `--` ends the body, CRLF starts a part.
        while self.buf.len() < 2 {
            if !self.fill().await? {
                return Err("The upload is not a form this page sent.".into());
            }
        }
        if self.buf.starts_with(b"--") {
            self.ended = true;
            return Ok(None);
        }
        let end = self.find(b"\r\n\r\n", SMALL_PART).await?;
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end + 4);
        let mut name = String::new();
        let mut file_name = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for p in v.split(';').map(str::trim) {
                if let Some(n) = p.strip_prefix("name=") {
                    name = n.trim_matches('"').to_string();
                } else if let Some(f) = p.strip_prefix("filename=") {
                    file_name = Some(f.trim_matches('"').to_string());
                }
            }
        }
        Ok(Some(Part { name, file_name }))
    }

    /// A plain field's value (what follows, up to the next boundary).
    async fn small_part(&mut self) -> Result<String, String> {
        let delimiter = self.delimiter.clone();
        let i = self.find(&delimiter, SMALL_PART).await?;
        let value = String::from_utf8_lossy(&self.buf[..i]).to_string();
        self.buf.drain(..i + delimiter.len());
        Ok(value)
    }

    /// Copies a file part to `out`, at most `limit` bytes; how many it copied.
    async fn copy_part(&mut self, out: &mut std::fs::File, limit: u64) -> Result<u64, CopyError> {
        let delimiter = self.delimiter.clone();
        let mut copied: u64 = 0;
        loop {
            let (take, done) = match find(&self.buf, &delimiter) {
                Some(i) => (i, true),
                // Keep what could be the start of the delimiter.
                None => (self.buf.len().saturating_sub(delimiter.len() - 1), false),
            };
            copied += take as u64;
            if copied > limit {
                return Err(CopyError::TooLarge);
            }
            out.write_all(&self.buf[..take]).map_err(CopyError::Write)?;
            if done {
                self.buf.drain(..take + delimiter.len());
                return Ok(copied);
            }
            self.buf.drain(..take);
            match self.fill().await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(CopyError::Read(
                        "The upload ended before the file did; nothing was imported.".into(),
                    ));
                }
                Err(why) => return Err(CopyError::Read(why)),
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_multipart_body_yields_its_fields_and_its_file() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ncalls\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"a.csv\"\r\n\
                    Content-Type: text/csv\r\n\r\nfrom,to\r\n1,2\r\n\r\n--XyZ--\r\n";
        let mut m = Multipart::new(axum::body::Body::from(body), "XyZ");
        let p = m.next_part().await.unwrap().unwrap();
        assert_eq!((p.name.as_str(), p.file_name), ("csrf", None));
        assert_eq!(m.small_part().await.unwrap(), "tok");
        let p = m.next_part().await.unwrap().unwrap();
        assert_eq!(p.name, "kind");
        assert_eq!(m.small_part().await.unwrap(), "calls");
        let p = m.next_part().await.unwrap().unwrap();
        assert_eq!(p.file_name.as_deref(), Some("a.csv"));
        let mut f = spool_file().unwrap();
        let n = match m.copy_part(&mut f, 1 << 20).await {
            Ok(n) => n,
            Err(_) => panic!("copy failed"),
        };
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "from,to\r\n1,2\r\n");
        assert_eq!(n, s.len() as u64);
        assert!(m.next_part().await.unwrap().is_none());
    }

    #[test]
    fn the_boundary_is_read_from_the_content_type() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=----abc").as_deref(),
            Some("----abc")
        );
        assert_eq!(multipart_boundary("text/csv"), None);
    }
}
