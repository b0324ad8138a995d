//! The campaign runner: marketing blasts fan out to their audience once, transactional
//! campaigns queue each step as it falls due, and missed calls get a text-back. Every
//! phone of every step passes the gate and gets a send-log row, sent or skipped with the
//! gate's reason; a (campaign, step, phone) is recorded once, so pausing, resuming or a
//! second runner never sends a step twice.

use std::collections::HashSet;

use assent_core::campaign::{self, Timing};
use assent_core::consent::Channel;
use assent_core::gate::{Decision, Purpose, Stage};
use assent_core::merge::{self, Template};
use assent_core::phone::E164;
use assent_store::*;
use chrono::{DateTime, Utc};

use crate::AppState;
use crate::service::{Outbound, gate_for, outbound_message};

/// Statuses after which a recipient is accounted for.
pub fn settled(status: SendStatus) -> bool {
    !matches!(
        status,
        SendStatus::Queued | SendStatus::Deferred | SendStatus::Sending
    )
}

/// What every step of one pass over a campaign shares.
struct Pass<'a> {
    app: &'a AppState,
    tenant: &'a Tenant,
    c: &'a Campaign,
    now: DateTime<Utc>,
    /// The campaign's body, parsed once for all its recipients.
    template: Template,
    /// A marketing fan-out records whom the gate lets through, as queued, and leaves
    /// their messages to [`compose`].
    record_only: bool,
}

impl<'a> Pass<'a> {
    fn new(
        app: &'a AppState,
        tenant: &'a Tenant,
        c: &'a Campaign,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let template = Template::parse(&c.body).map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(Pass {
            app,
            tenant,
            c,
            now,
            template,
            record_only: false,
        })
    }
}

/// The recipient row for one phone: a message through the gate, or a skip with its reason.
async fn recipient(
    p: &Pass<'_>,
    step: String,
    phone: &E164,
    name: Option<&str>,
    purpose: Purpose,
) -> Result<Recipient> {
    let snap = p.app.store.snapshot(&p.tenant.id, phone, p.now).await?;
    recipient_with(p, step, phone, name, purpose, &snap)
}

/// The recipient row for one phone whose snapshot is already loaded.
fn recipient_with(
    p: &Pass<'_>,
    step: String,
    phone: &E164,
    name: Option<&str>,
    purpose: Purpose,
    snap: &PhoneSnapshot,
) -> Result<Recipient> {
    let (tenant, c, now) = (p.tenant, p.c, p.now);
    let decision = gate_for(snap, phone, purpose, Stage::Queue, now);
    let mut r = Recipient::new(&c.id, step, phone, now);
    if let Decision::Block(reason) = decision {
        return Ok(r.skipped(reason.into()));
    }
    if p.record_only {
        return Ok(r);
    }
    let mut body = p
        .template
        .fill(&merge::values(name, &tenant.name, phone.as_str()));
    if purpose == Purpose::Marketing {
        body = crate::service::marketing_body(tenant, &body, snap.consent.language);
    }
    let channel = if purpose == Purpose::Marketing {
        Channel::Marketing
    } else {
        Channel::Transactional
    };
    match outbound_message(
        Outbound {
            tenant,
            channel,
            to: phone,
            body,
            kind: MessageKind::Campaign,
            purpose,
            idempotency_key: None,
        },
        decision,
        now,
    ) {
        Some(m) => r.message = Some(m),
        None => r.skip_reason = Some(SkipReason::SenderNotConfigured),
    }
    Ok(r)
}

/// One pass over every running campaign; returns how many recipients were recorded.
pub async fn tick(app: &AppState) -> Result<u64> {
    tick_paged(app, PAGE).await
}

/// [`tick`] with marketing fan-outs in pages of `page` phones (tests use small pages to
/// act between them).
pub async fn tick_paged(app: &AppState, page: usize) -> Result<u64> {
    Runner::default().tick_paged(app, page).await
}

/// A pass over a tenant's estimates or recurring services is redone at least this often
/// even when nothing it knows of changed (a phone added to a customer whose step is due).
const REFRESH: chrono::Duration = chrono::Duration::minutes(10);

/// The background campaign runner. An unsold-estimates or recurring-services campaign is
/// passed over (every estimate or service of its tenant loaded) only when its last pass
/// is stale: a step it saw coming has fallen due, the tenant's estimates or services were
/// saved since (a version the store bumps), the campaign changed, or [`REFRESH`] went by.
/// Otherwise a tick costs two small reads per campaign, so an idle server stays idle.
#[derive(Default)]
pub struct Runner {
    memo: std::collections::HashMap<String, Memo>,
    /// How far each marketing campaign's messages are composed.
    composed: std::collections::HashMap<String, Composed>,
    /// How many passes loaded a tenant's estimates or recurring services.
    pub passes: u64,
}

/// Where a campaign's composing stands in this runner.
enum Composed {
    /// Composed up to this phone (from the start when `None`).
    After(Option<E164>),
    /// Nothing was left to compose at this time. Another process's fan-out may still
    /// record more (one resumed while a fan-out ran elsewhere), so the send log is looked
    /// through again after [`REFRESH`] while the campaign is not settled.
    Done(DateTime<Utc>),
}

struct Memo {
    /// The campaign as the pass saw it, and the tenant's inputs version then.
    campaign: String,
    version: i64,
    /// The earliest step that was not yet due.
    next_due: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
}

impl Runner {
    pub async fn tick(&mut self, app: &AppState) -> Result<u64> {
        self.tick_paged(app, PAGE).await
    }

    async fn tick_paged(&mut self, app: &AppState, page: usize) -> Result<u64> {
        let now = app.clock.now();
        let mut added = 0;
        let mut running = HashSet::new();
        for c in app.store.running_campaigns().await? {
            running.insert(c.id.clone());
            let Some(tenant) = app.store.tenant(&c.tenant_id).await? else {
                continue;
            };
            added += match c.kind {
                CampaignKind::Marketing => self.marketing(app, &tenant, c, now, page).await?,
                CampaignKind::UnsoldEstimates | CampaignKind::RecurringServices => {
                    self.steps(app, &tenant, &c, now).await?
                }
                CampaignKind::MissedCalls => 0,
            };
        }
        self.memo.retain(|id, _| running.contains(id));
        self.composed.retain(|id, _| running.contains(id));
        if added > 0 {
            app.wake.notify_one();
        }
        Ok(added)
    }

    async fn steps(
        &mut self,
        app: &AppState,
        tenant: &Tenant,
        c: &Campaign,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        if c.status != CampaignStatus::Active {
            self.memo.remove(&c.id);
            return Ok(0);
        }
        // Read before the pass: a save after it moves the version again.
        let version = app.store.campaign_inputs_version(&tenant.id).await?;
        let seen = serde_json::to_string(c).unwrap_or_default();
        if let (Some(v), Some(m)) = (version, self.memo.get(&c.id))
            && m.version == v
            && m.campaign == seen
            && m.next_due.is_none_or(|d| now < d)
            && now - m.at < REFRESH
        {
            return Ok(0);
        }
        self.passes += 1;
        let (added, next_due) = if c.kind == CampaignKind::UnsoldEstimates {
            estimates(app, tenant, c, now).await?
        } else {
            recurring(app, tenant, c, now).await?
        };
        match version {
            Some(version) => {
                self.memo.insert(
                    c.id.clone(),
                    Memo {
                        campaign: seen,
                        version,
                        next_due,
                        at: now,
                    },
                );
            }
            None => {
                self.memo.remove(&c.id);
            }
        }
        Ok(added)
    }
}

/// Phones per page of a marketing fan-out: large enough that statements are few, small
/// enough that memory stays flat.
pub const PAGE: usize = 5000;

impl Runner {
    async fn marketing(
        &mut self,
        app: &AppState,
        tenant: &Tenant,
        c: Campaign,
        now: DateTime<Utc>,
        page: usize,
    ) -> Result<u64> {
        match c.status {
            CampaignStatus::Scheduled if c.send_at.is_none_or(|t| t <= now) => {
                tracing::info!(tenant = %tenant.id, campaign = %c.id, "campaign started");
                let added = fan_out(app, tenant, &c, now, page).await?;
                // Paused (or resumed) while the fan-out ran: that decision stands.
                if app
                    .store
                    .move_campaign(
                        &tenant.id,
                        &c.id,
                        CampaignStatus::Scheduled,
                        CampaignStatus::Sending,
                        None,
                    )
                    .await?
                {
                    tracing::info!(tenant = %tenant.id, campaign = %c.id, queued = added, "campaign sending");
                    // The first page's messages go at once; a paused campaign's wait.
                    self.compose_next(app, tenant, &c, now, page).await?;
                }
                Ok(added)
            }
            CampaignStatus::Sending => {
                if self.compose_next(app, tenant, &c, now, page).await? > 0 {
                    return Ok(0);
                }
                if app.store.campaign_settled(&tenant.id, &c.id).await?
                    && app
                        .store
                        .move_campaign(
                            &tenant.id,
                            &c.id,
                            CampaignStatus::Sending,
                            CampaignStatus::Finished,
                            None,
                        )
                        .await?
                {
                    tracing::info!(tenant = %tenant.id, campaign = %c.id, "campaign finished");
                }
                Ok(0)
            }
            _ => Ok(0),
        }
    }

    /// Composes the next page of a marketing campaign's recorded recipients; returns how
    /// many were written.
    async fn compose_next(
        &mut self,
        app: &AppState,
        tenant: &Tenant,
        c: &Campaign,
        now: DateTime<Utc>,
        page: usize,
    ) -> Result<u64> {
        let after = match self
            .composed
            .entry(c.id.clone())
            .or_insert(Composed::After(None))
        {
            Composed::After(after) => after.clone(),
            Composed::Done(at) if now - *at < REFRESH => return Ok(0),
            Composed::Done(_) => None,
        };
        let (written, next) = compose(app, tenant, c, now, after.as_ref(), page).await?;
        let state = match next {
            Some(last) => Composed::After(Some(last)),
            None => Composed::Done(now),
        };
        self.composed.insert(c.id.clone(), state);
        if written > 0 {
            app.wake.notify_one();
        }
        Ok(written)
    }
}

/// Composes the messages of up to `page` recipients that a marketing fan-out recorded as
/// queued, after `after` in phone order: each through the gate again (a STOP since the
/// fan-out makes it a skip, quiet hours a deferral). Returns how many were written and the
/// last phone looked at, `None` when none was left. A fan-out records its whole audience
/// at once and their messages follow a page a tick: no write holds the writer for more
/// than a page, and a STOP in the meantime becomes a skip. (A page a second is still
/// far above the fastest carrier pace, so a large campaign is all composed within minutes
/// while it takes hours to send.)
pub async fn compose(
    app: &AppState,
    tenant: &Tenant,
    c: &Campaign,
    now: DateTime<Utc>,
    after: Option<&E164>,
    page: usize,
) -> Result<(u64, Option<E164>)> {
    let phones = app
        .store
        .uncomposed_recipients(&tenant.id, &c.id, "send", after, page)
        .await?;
    let Some(last) = phones.last().cloned() else {
        return Ok((0, None));
    };
    let pass = Pass::new(app, tenant, c, now)?;
    let members = app
        .store
        .audience_members(&tenant.id, &c.tags, &phones, now)
        .await?;
    let rows = marketing_rows(&pass, &members)?;
    let written = app.store.compose_recipients(&tenant.id, &rows).await?;
    Ok((written, Some(last)))
}

/// The marketing blast's recipient row of each audience member.
fn marketing_rows(
    pass: &Pass<'_>,
    members: &[(AudienceMember, PhoneSnapshot)],
) -> Result<Vec<Recipient>> {
    members
        .iter()
        .map(|(member, snap)| {
            recipient_with(
                pass,
                "send".into(),
                &member.phone,
                member.name.as_deref(),
                Purpose::Marketing,
                snap,
            )
        })
        .collect()
}

/// Every phone of a marketing campaign's audience through the gate, a page at a time, in
/// three stages that run at once: one task reads pages, another gates them, and this one
/// writes them, so the one writer is never idle while a page is read and put together.
/// Pages already recorded by an interrupted fan-out are recorded again as no-ops, so
/// running it twice sends nothing twice.
async fn fan_out(
    app: &AppState,
    tenant: &Tenant,
    c: &Campaign,
    now: DateTime<Utc>,
    page_size: usize,
) -> Result<u64> {
    type Members = Vec<(AudienceMember, PhoneSnapshot)>;
    let (pages_tx, mut pages) = tokio::sync::mpsc::channel::<Members>(2);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Recipient>>(2);
    let reader = {
        let (app, tenant, c) = (app.clone(), tenant.clone(), c.clone());
        tokio::spawn(
            async move { read_audience(&app, &tenant, &c, now, page_size, pages_tx).await },
        )
    };
    let gate = {
        let (app, tenant, c) = (app.clone(), tenant.clone(), c.clone());
        tokio::spawn(async move {
            let pass = Pass {
                record_only: true,
                ..Pass::new(&app, &tenant, &c, now)?
            };
            while let Some(members) = pages.recv().await {
                let rows = marketing_rows(&pass, &members)?;
                if tx.send(rows).await.is_err() {
                    return Ok(());
                }
            }
            Ok::<(), StoreError>(())
        })
    };
    let mut added = 0;
    while let Some(mut rows) = rx.recv().await {
        // The pages that gathered while the last was written go in one call: a store may
        // write them in parts and wait for one commit (SQLite's fsync) instead of one each.
        while rows.len() < MERGED_PAGES * page_size
            && let Ok(more) = rx.try_recv()
        {
            rows.extend(more);
        }
        // A pause holds what was queued when it came; add_recipients holds what this
        // fan-out queues after it, in the same write.
        added += app.store.add_recipients(&tenant.id, &rows).await?;
    }
    for (stage, task) in [("reader", reader), ("gate", gate)] {
        task.await
            .map_err(|e| StoreError::Database(format!("fan-out {stage}: {e}")))??;
    }
    Ok(added)
}

/// Pages of an audience read ahead of the one being handed on: reading a page is waiting
/// on the database and then folding its rows, and the next page's reading overlaps it.
const PAGES_AHEAD: usize = 2;

/// At most this many pages' recipients go to the store in one call (see `fan_out`).
const MERGED_PAGES: usize = 4;

/// A page being read in its own task, stopped if the fan-out stops first (it failed):
/// otherwise it would go on reading, holding a reader connection, for no one.
struct Reading(tokio::task::JoinHandle<Result<AudiencePage>>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The fan-out's reading stage: every page of `c`'s audience, in order, to `pages`. Where
/// the store finds a page's end before reading it, up to [`PAGES_AHEAD`] pages are read at
/// once (each as its own task, so their folding runs beside the database's work);
/// otherwise one after another.
async fn read_audience(
    app: &AppState,
    tenant: &Tenant,
    c: &Campaign,
    now: DateTime<Utc>,
    page_size: usize,
    pages: tokio::sync::mpsc::Sender<Vec<(AudienceMember, PhoneSnapshot)>>,
) -> Result<()> {
    let mut after: Option<E164> = None;
    let mut reading: std::collections::VecDeque<Reading> = Default::default();
    // Hands pages on, oldest first, until at most `keep` are still being read; false when
    // the gate or the writer has stopped (it failed, and says so): nothing more to do.
    async fn hand_on(
        reading: &mut std::collections::VecDeque<Reading>,
        keep: usize,
        pages: &tokio::sync::mpsc::Sender<Vec<(AudienceMember, PhoneSnapshot)>>,
    ) -> Result<bool> {
        while reading.len() > keep {
            let Some(mut task) = reading.pop_front() else {
                break;
            };
            let page = (&mut task.0)
                .await
                .map_err(|e| StoreError::Database(format!("fan-out page: {e}")))??;
            if pages.send(page.members).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
    loop {
        let end = match app.store.audience_ranges() {
            Some(ranges) => {
                ranges
                    .audience_page_end(&tenant.id, &c.tags, after.as_ref(), page_size)
                    .await?
            }
            None => None,
        };
        let Some(end) = end else {
            if !hand_on(&mut reading, 0, &pages).await? {
                return Ok(());
            }
            let page = app
                .store
                .audience_page(&tenant.id, &c.tags, after.as_ref(), page_size, now)
                .await?;
            if pages.send(page.members).await.is_err() {
                return Ok(());
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
            continue;
        };
        let task = {
            let (app, tenant_id, tags, from, end) = (
                app.clone(),
                tenant.id.clone(),
                c.tags.clone(),
                after.clone(),
                end.clone(),
            );
            tokio::spawn(async move {
                let ranges = app.store.audience_ranges().ok_or(StoreError::NotFound)?;
                ranges
                    .audience_range(&tenant_id, &tags, from.as_ref(), &end, now)
                    .await
            })
        };
        reading.push_back(Reading(task));
        let PageEnd::At(last) = end else {
            hand_on(&mut reading, 0, &pages).await?;
            return Ok(());
        };
        after = Some(last);
        if !hand_on(&mut reading, PAGES_AHEAD - 1, &pages).await? {
            return Ok(());
        }
    }
}

async fn step_rows(
    pass: &Pass<'_>,
    customer_id: &str,
    only_phone: Option<&E164>,
    steps: Vec<(String, DateTime<Utc>)>,
    done: &HashSet<(String, E164)>,
) -> Result<Vec<Recipient>> {
    let (app, tenant, c, now) = (pass.app, pass.tenant, pass.c, pass.now);
    let Some(customer) = app.store.customer(&tenant.id, customer_id).await? else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for p in &customer.phones {
        if only_phone.is_some_and(|o| o != &p.number) {
            continue;
        }
        // A step first looked at more than 7 days after it fell due (the campaign started
        // or resumed late, the server was down, the estimate was posted late) is too late.
        for (step, due) in &steps {
            if done.contains(&(step.clone(), p.number.clone())) {
                continue;
            }
            match campaign::timing(*due, now) {
                Timing::NotYet(_) => {}
                Timing::TooLate => rows.push(
                    Recipient::new(&c.id, step.clone(), &p.number, now)
                        .skipped(SkipReason::TooLate),
                ),
                Timing::Now => rows.push(
                    recipient(
                        pass,
                        step.clone(),
                        &p.number,
                        Some(&customer.name),
                        Purpose::TransactionalCampaign,
                    )
                    .await?,
                ),
            }
        }
    }
    Ok(rows)
}

/// How many estimates or recurring services the runner reads (and records steps for) at
/// a time: a tenant's whole list is never in memory.
const INPUT_PAGE: usize = 500;

/// One estimate's or recurring service's steps: whose (the customer, and the only phone
/// when the input names one) and each step's key and due time.
type Input = (String, Option<E164>, Vec<(String, DateTime<Utc>)>);

/// The steps of every unsold estimate that are due, a page of estimates at a time; returns
/// how many were recorded and when the next one falls due.
async fn estimates(
    app: &AppState,
    tenant: &Tenant,
    c: &Campaign,
    now: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>)> {
    let pass = Pass::new(app, tenant, c, now)?;
    let (mut added, mut next_due) = (0, None);
    let mut after: Option<String> = None;
    loop {
        let page = app
            .store
            .unsold_estimates(&tenant.id, after.as_deref(), INPUT_PAGE)
            .await?;
        let full = page.len() >= INPUT_PAGE;
        after = page.last().map(|e| e.id.clone());
        let inputs: Vec<Input> = page
            .into_iter()
            .map(|e| {
                let steps = c
                    .days
                    .iter()
                    .map(|d| {
                        (
                            format!("{}:{d}", e.id),
                            campaign::estimate_step_due(e.created_at, *d),
                        )
                    })
                    .collect();
                (e.customer_id, e.phone, steps)
            })
            .collect();
        let (n, due) = record_steps(&pass, inputs).await?;
        added += n;
        next_due = next_due.into_iter().chain(due).min();
        if !full {
            return Ok((added, next_due));
        }
    }
}

/// Records the due steps of one page of inputs, skipping those already recorded (looked up
/// for this page's steps only); returns how many were recorded and when the next of these
/// steps falls due.
async fn record_steps(pass: &Pass<'_>, inputs: Vec<Input>) -> Result<(u64, Option<DateTime<Utc>>)> {
    let (app, tenant, c, now) = (pass.app, pass.tenant, pass.c, pass.now);
    let keys: Vec<String> = inputs
        .iter()
        .flat_map(|(_, _, steps)| steps.iter().map(|(k, _)| k.clone()))
        .collect();
    let done: HashSet<(String, E164)> = app
        .store
        .recorded_steps(&tenant.id, &c.id, &keys)
        .await?
        .into_iter()
        .collect();
    let mut rows = Vec::new();
    let mut next_due = None;
    for (customer_id, only, steps) in inputs {
        next_due = earliest_after(next_due, &steps, now);
        rows.extend(step_rows(pass, &customer_id, only.as_ref(), steps, &done).await?);
    }
    Ok((app.store.add_recipients(&tenant.id, &rows).await?, next_due))
}

/// The earlier of `next` and the first of `steps` still to come after `now`.
fn earliest_after(
    next: Option<DateTime<Utc>>,
    steps: &[(String, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    steps
        .iter()
        .map(|(_, due)| *due)
        .filter(|due| *due > now)
        .chain(next)
        .min()
}

/// The steps of every recurring service that are due, a page of services at a time;
/// returns how many were recorded and when the next one falls due.
async fn recurring(
    app: &AppState,
    tenant: &Tenant,
    c: &Campaign,
    now: DateTime<Utc>,
) -> Result<(u64, Option<DateTime<Utc>>)> {
    let tz = tenant.time_zone;
    let pass = Pass::new(app, tenant, c, now)?;
    let (mut added, mut next_due) = (0, None);
    let mut after: Option<String> = None;
    loop {
        let page = app
            .store
            .recurring_services(&tenant.id, after.as_deref(), INPUT_PAGE)
            .await?;
        let full = page.len() >= INPUT_PAGE;
        after = page.last().map(|s| s.id.clone());
        let inputs: Vec<Input> = page
            .into_iter()
            .map(|s| {
                let steps = c
                    .days
                    .iter()
                    .map(|d| {
                        (
                            format!("{}:{d}", s.id),
                            campaign::recurring_step_due(s.due_on, *d, tz),
                        )
                    })
                    .collect();
                (s.customer_id, None, steps)
            })
            .collect();
        let (n, due) = record_steps(&pass, inputs).await?;
        added += n;
        next_due = next_due.into_iter().chain(due).min();
        if !full {
            return Ok((added, next_due));
        }
    }
}

/// A text-back is for a call just missed: a call reported later than this (a phone
/// system catching up, an import) is recorded as skipped with `too_late`.
pub const MISSED_CALL_TEXT_BACK_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// A missed call to one of the tenant's numbers: a text-back from the transactional
/// sender, at most once per caller per day (tenant time), under every active missed-call
/// campaign.
pub async fn missed_call(
    app: &AppState,
    tenant: &Tenant,
    caller: &E164,
    at: DateTime<Utc>,
) -> Result<u64> {
    let tz: assent_core::Tz = tenant.time_zone;
    let day = at
        .with_timezone(&tz)
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let now = app.clock.now();
    let mut added = 0;
    for c in app
        .store
        .active_campaigns(&tenant.id, CampaignKind::MissedCalls)
        .await?
    {
        let row = if now - at > MISSED_CALL_TEXT_BACK_WINDOW {
            // Its own step: the day's one text-back is still there for a call that is
            // reported in time.
            let step = format!("{day}:late:{}", at.timestamp_millis());
            Recipient::new(&c.id, step, caller, now).skipped(SkipReason::TooLate)
        } else {
            recipient(
                &Pass::new(app, tenant, &c, now)?,
                day.clone(),
                caller,
                None,
                Purpose::MissedCall,
            )
            .await?
        };
        added += app.store.add_recipients(&tenant.id, &[row]).await?;
    }
    if added > 0 {
        app.wake.notify_one();
    }
    Ok(added)
}
