//! A campaign's preview (`POST /campaigns/preview`): how many phones it reaches, how many
//! would be sent and how many skipped, by the gate's reason, computed as the runner would
//! decide them now and written nowhere.
//!
//! A marketing audience is walked a page at a time, as the fan-out walks it, so a
//! million-phone audience costs one page of memory. Estimate and recurring-service
//! campaigns count each phone their current estimates or services reach, once; a
//! missed-call campaign has no audience until someone calls.

use std::collections::{BTreeMap, HashSet};

use assent_core::consent::Channel;
use assent_core::gate::{Decision, Purpose, Stage};
use assent_core::phone::E164;
use assent_store::{Campaign, CampaignKind, PhoneSnapshot, Result, Tenant};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::AppState;
use crate::service::gate_for;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    /// Phones the campaign reaches.
    pub audience: u64,
    /// Of those, how many would be queued now (held ones included: they go later).
    pub would_send: u64,
    /// The rest, by the reason each would be skipped with.
    pub would_skip: BTreeMap<String, u64>,
}

impl Preview {
    /// Counts one phone as the runner would record it (`campaigns::recipient_with`): the
    /// gate's block reason, else `sender_not_configured` without the channel's number,
    /// else a send.
    fn count(
        &mut self,
        tenant: &Tenant,
        phone: &E164,
        snap: &PhoneSnapshot,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) {
        self.audience += 1;
        let channel = if purpose == Purpose::Marketing {
            Channel::Marketing
        } else {
            Channel::Transactional
        };
        let reason = match gate_for(snap, phone, purpose, Stage::Queue, now) {
            Decision::Block(reason) => reason.as_str(),
            _ if tenant.sender(channel).is_none() => "sender_not_configured",
            _ => {
                self.would_send += 1;
                return;
            }
        };
        *self.would_skip.entry(reason.to_string()).or_default() += 1;
    }
}

/// The preview of `c` (validated, not saved) for `tenant` at the clock's now, reading the
/// audience `page` phones at a time.
pub async fn preview(
    app: &AppState,
    tenant: &Tenant,
    c: &Campaign,
    page: usize,
) -> Result<Preview> {
    let now = app.clock.now();
    let mut p = Preview::default();
    match c.kind {
        CampaignKind::Marketing => {
            let mut after: Option<E164> = None;
            loop {
                let audience = app
                    .store
                    .audience_page(&tenant.id, &c.tags, after.as_ref(), page, now)
                    .await?;
                for (member, snap) in &audience.members {
                    p.count(tenant, &member.phone, snap, Purpose::Marketing, now);
                }
                match audience.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        CampaignKind::UnsoldEstimates | CampaignKind::RecurringServices => {
            // Each phone counted once (the set of phones seen is what the preview keeps);
            // the estimates or services themselves are read `page` at a time.
            let mut seen = HashSet::new();
            let mut after: Option<String> = None;
            loop {
                let reached: Vec<(String, String, Option<E164>)> =
                    if c.kind == CampaignKind::UnsoldEstimates {
                        app.store
                            .unsold_estimates(&tenant.id, after.as_deref(), page)
                            .await?
                            .into_iter()
                            .map(|e| (e.id, e.customer_id, e.phone))
                            .collect()
                    } else {
                        app.store
                            .recurring_services(&tenant.id, after.as_deref(), page)
                            .await?
                            .into_iter()
                            .map(|s| (s.id, s.customer_id, None))
                            .collect()
                    };
                let full = reached.len() >= page;
                after = reached.last().map(|r| r.0.clone());
                for (_, customer_id, only) in reached {
                    let Some(customer) = app.store.customer(&tenant.id, &customer_id).await? else {
                        continue;
                    };
                    for phone in customer.phones.iter().map(|p| &p.number) {
                        if only.as_ref().is_some_and(|o| o != phone) || !seen.insert(phone.clone())
                        {
                            continue;
                        }
                        let snap = app.store.snapshot(&tenant.id, phone, now).await?;
                        p.count(tenant, phone, &snap, Purpose::TransactionalCampaign, now);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        CampaignKind::MissedCalls => {}
    }
    Ok(p)
}
