//! Creating, pausing, resuming and reporting on campaigns: `POST /campaigns` and the web
//! composer, the pause and resume endpoints and buttons, and the report both show.

use std::collections::BTreeMap;

use assent_core::merge::Template;
use assent_store::{
    Campaign, CampaignKind, CampaignStatus, Estimate, EstimateStatus, SendLogKey, SendLogRow,
    SendStatus, Tenant,
};
use chrono::{DateTime, Utc};

use super::error::{Error, Result};
use super::new_id;
use crate::AppState;
use crate::error::Code;

/// A campaign as asked for, before it is checked.
#[derive(Debug, Clone, Default)]
pub struct NewCampaign {
    pub name: String,
    /// `marketing`, `unsold_estimates`, `recurring_services` or `missed_calls`.
    pub kind: String,
    pub body: String,
    pub tags: Vec<String>,
    /// RFC 3339; a marketing campaign without it goes at once.
    pub send_at: Option<String>,
    pub days_after: Option<Vec<u32>>,
    pub days_before: Option<Vec<u32>>,
}

/// An RFC 3339 time in a field.
pub fn parse_time(field: &str, v: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Error::invalid(
                field,
                "must be an RFC 3339 time such as 2026-12-01T15:00:00Z",
            )
        })
}

fn kind_of(kind: &str) -> Result<CampaignKind> {
    Ok(match kind {
        "marketing" => CampaignKind::Marketing,
        "unsold_estimates" => CampaignKind::UnsoldEstimates,
        "recurring_services" => CampaignKind::RecurringServices,
        "missed_calls" => CampaignKind::MissedCalls,
        _ => {
            return Err(Error::invalid(
                "type",
                "must be marketing, unsold_estimates, recurring_services or missed_calls",
            ));
        }
    })
}

/// The schedule's days a follow-up campaign needs (none for the others).
fn days_of(kind: CampaignKind, b: &NewCampaign) -> Result<Vec<u32>> {
    let given = |d: &Option<Vec<u32>>| d.clone().filter(|d| !d.is_empty());
    let days = match kind {
        CampaignKind::UnsoldEstimates => given(&b.days_after)
            .ok_or_else(|| Error::invalid("schedule.days_after", "is required, e.g. [2, 7, 14]"))?,
        CampaignKind::RecurringServices => given(&b.days_before)
            .ok_or_else(|| Error::invalid("schedule.days_before", "is required, e.g. [7, 1]"))?,
        _ => Vec::new(),
    };
    if days.iter().any(|d| *d > 3650) {
        return Err(Error::invalid("schedule", "days must be at most 3650"));
    }
    Ok(days)
}

/// Checks and saves a new campaign, and wakes the worker for it.
pub async fn create(app: &AppState, t: &Tenant, b: NewCampaign) -> Result<Campaign> {
    let c = validate(app, t, b)?;
    app.store.save_campaign(&c).await?;
    app.wake.notify_one();
    Ok(c)
}

/// The campaign a request describes, checked field by field at the clock's now, not saved
/// (`create` saves it; `POST /campaigns/preview` counts it).
pub fn validate(app: &AppState, t: &Tenant, b: NewCampaign) -> Result<Campaign> {
    let name = b.name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "is required"));
    }
    let kind = kind_of(&b.kind)?;
    if b.body.trim().is_empty() {
        return Err(Error::invalid("body", "is required"));
    }
    Template::parse(&b.body).map_err(|e| Error::invalid("body", e.to_string()))?;
    let days = days_of(kind, &b)?;
    let send_at = b
        .send_at
        .as_deref()
        .map(|s| parse_time("send_at", s))
        .transpose()?;
    let now = app.clock.now();
    // Absent means now; a time already gone is a mistake (a wrong date or zone), not a
    // request to send at once.
    if send_at.is_some_and(|at| at < now) {
        return Err(Error::invalid(
            "send_at",
            "is in the past; leave it out to send now",
        ));
    }
    Ok(Campaign {
        id: new_id(),
        tenant_id: t.id.clone(),
        name: name.to_string(),
        kind,
        body: b.body,
        tags: b
            .tags
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        days,
        send_at,
        status: if kind == CampaignKind::Marketing {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Active
        },
        created_at: now,
        resumed_at: Some(now),
    })
}

/// A campaign of this tenant.
pub async fn load(app: &AppState, t: &Tenant, id: &str) -> Result<Campaign> {
    app.store
        .campaign(&t.id, id)
        .await?
        .ok_or_else(|| Error::not_found("campaign"))
}

/// What a pause or a resume did: the status now, and how many queued messages it held
/// or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    pub status: CampaignStatus,
    pub messages: u64,
}

/// Holds a campaign's queued messages.
pub async fn pause(app: &AppState, t: &Tenant, id: &str) -> Result<Moved> {
    // The status moves first, only from what was read (the runner may move it meanwhile:
    // read again); then the queued messages are held. A fan-out writing meanwhile holds
    // its own pages once the status says paused.
    for _ in 0..10 {
        let c = load(app, t, id).await?;
        match c.status {
            CampaignStatus::Finished => {
                return Err(Error::refused(
                    Code::Finished,
                    "a finished campaign cannot be paused",
                ));
            }
            CampaignStatus::Paused => {
                return Ok(Moved {
                    status: c.status,
                    messages: 0,
                });
            }
            from => {
                if app
                    .store
                    .move_campaign(&t.id, id, from, CampaignStatus::Paused, None)
                    .await?
                {
                    let held = app
                        .store
                        .hold_campaign(&t.id, id, true, app.clock.now())
                        .await?;
                    tracing::info!(tenant = %t.id, campaign = %id, held, "campaign paused");
                    return Ok(Moved {
                        status: CampaignStatus::Paused,
                        messages: held,
                    });
                }
            }
        }
    }
    Err(Error::refused(
        Code::CampaignBusy,
        "the campaign's status kept changing; try again",
    ))
}

/// Releases a paused campaign's messages; nothing already sent goes again.
pub async fn resume(app: &AppState, t: &Tenant, id: &str) -> Result<Moved> {
    let c = load(app, t, id).await?;
    let unchanged = |status| Moved {
        status,
        messages: 0,
    };
    if c.status != CampaignStatus::Paused {
        return Ok(unchanged(c.status));
    }
    let now = app.clock.now();
    let recorded = app.store.campaign_recorded(&t.id, id).await?;
    let to = match c.kind {
        CampaignKind::Marketing if recorded => CampaignStatus::Sending,
        CampaignKind::Marketing => CampaignStatus::Scheduled,
        _ => CampaignStatus::Active,
    };
    // The status moves first, then the held messages go (only while it is not paused
    // again); someone else's resume or pause in between stands.
    if !app
        .store
        .move_campaign(&t.id, id, CampaignStatus::Paused, to, Some(now))
        .await?
    {
        let c = load(app, t, id).await?;
        return Ok(unchanged(c.status));
    }
    let released = app.store.hold_campaign(&t.id, id, false, now).await?;
    tracing::info!(tenant = %t.id, campaign = %id, released, status = to.as_str(), "campaign resumed");
    app.wake.notify_one();
    Ok(Moved {
        status: to,
        messages: released,
    })
}

/// An estimate's status from a request or form: `unsold`, `sold` or `dismissed`.
pub fn estimate_status(v: &str) -> Result<EstimateStatus> {
    match v {
        "unsold" => Ok(EstimateStatus::Unsold),
        "sold" => Ok(EstimateStatus::Sold),
        "dismissed" => Ok(EstimateStatus::Dismissed),
        _ => Err(Error::invalid(
            "status",
            "must be unsold, sold or dismissed",
        )),
    }
}

/// Marks an estimate sold, dismissed or unsold again (`PATCH /estimates/{id}` and the
/// Estimates page). A sold or dismissed estimate's follow-ups not yet handed to the
/// carrier are withdrawn at once.
pub async fn set_estimate_status(
    app: &AppState,
    t: &Tenant,
    id: &str,
    status: &str,
) -> Result<Estimate> {
    let status = estimate_status(status)?;
    let mut e = app
        .store
        .estimate(&t.id, id)
        .await?
        .ok_or_else(|| Error::not_found("estimate"))?;
    e.status = status;
    app.store.save_estimate(&t.id, &e).await?;
    if e.status != EstimateStatus::Unsold {
        app.store
            .withdraw_estimate_steps(&t.id, &e.id, app.clock.now())
            .await?;
    }
    Ok(e)
}

/// How many skipped recipients a report lists; the rest come through the recipients list.
pub const REPORT_SKIPPED: usize = 100;

/// A campaign counted by the store: `GET /campaigns/{id}` and the report page. Nothing here
/// grows with the audience.
pub struct Report {
    pub campaign: Campaign,
    /// Recipients (one per phone per step).
    pub recipients: u64,
    /// Recipients by their current status (each counted once); statuses nobody has are
    /// absent.
    pub counts: BTreeMap<SendStatus, u64>,
    /// Skipped recipients by the gate's reason.
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// Recipients who opted out within 7 days after their message.
    pub opted_out_after: u64,
    /// The first [`REPORT_SKIPPED`] recipients skipped, with the gate's reason.
    pub skipped: Vec<SendLogRow>,
}

impl Report {
    /// Whether every recipient is accounted for (none queued, deferred or sending).
    pub fn settled(&self) -> bool {
        self.counts
            .iter()
            .all(|(status, n)| *n == 0 || crate::campaigns::settled(*status))
    }
}

pub async fn report(app: &AppState, t: &Tenant, id: &str) -> Result<Report> {
    let campaign = load(app, t, id).await?;
    let counts = app.store.campaign_counts(&t.id, id).await?;
    let skipped = if counts.by_status.contains_key(&SendStatus::Skipped) {
        app.store
            .send_log_page(&t.id, id, Some(SendStatus::Skipped), None, REPORT_SKIPPED)
            .await?
            .rows
    } else {
        Vec::new()
    };
    Ok(Report {
        campaign,
        recipients: counts.recipients,
        counts: counts.by_status,
        skipped_by_reason: counts.skipped_by_reason,
        opted_out_after: counts.opted_out_after,
        skipped,
    })
}

/// The opaque cursor of a send log page: the key it resumes from (see
/// [`super::pages::cursor`]).
pub fn log_cursor(key: &SendLogKey) -> String {
    super::pages::cursor(&[&key.step, &key.phone])
}

/// A cursor made by [`log_cursor`]; `None` when it is not one.
pub fn parse_log_cursor(cursor: &str) -> Option<SendLogKey> {
    let mut p = super::pages::parts(cursor, 2)?.into_iter();
    Some(SendLogKey {
        step: p.next()?,
        phone: p.next()?,
    })
}
