//! The consent ledger as people and auditors read it: a date range in the tenant's zone,
//! optionally one phone, and the CSV export (`GET /consent/export.csv` and the
//! Compliance page's filter and export).

use std::sync::Arc;

use assent_store::page::{Key, LedgerFilter, Seek};
use assent_store::prelude::*;
use assent_store::{LedgerEntry, StoreError, Tenant};
use chrono::{DateTime, Utc};

use super::error::{Error, Result};
use crate::AppState;

/// Midnight of a `YYYY-MM-DD` date in the tenant's zone, or of the day after (`next_day`:
/// a `to` date includes its whole day). The web's ledger filter and the API's export read
/// dates the same way.
pub fn day_start(t: &Tenant, s: &str, next_day: bool) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let d = if next_day { d.succ_opt()? } else { d };
    let tz = t.time_zone;
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|x| x.with_timezone(&Utc))
}

/// A bound of a range: an RFC 3339 time as given, or a date read as whole days in the
/// tenant's zone (`to=2026-01-31` includes the 31st). `field` is `from` or `to`; empty is
/// no bound.
pub fn bound(t: &Tenant, field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Some(d) = day_start(t, s, field == "to") {
        return Ok(Some(d));
    }
    Err(Error::invalid(
        field,
        "must be a date (YYYY-MM-DD) or an RFC 3339 time",
    ))
}

/// A tenant's people, id → email: the ledger names a person by email, never by id. Read
/// a page of users at a time (a tenant's team is small, but never read unbounded).
pub async fn team(store: &dyn Store, tenant_id: &str) -> std::result::Result<Team, StoreError> {
    let mut team = Team::new();
    let mut after: Option<String> = None;
    loop {
        let users = store
            .users_of_tenant(tenant_id, after.as_deref(), TEAM_PAGE)
            .await?;
        let done = users.len() < TEAM_PAGE as usize;
        after = users.last().map(|u| u.email.clone());
        team.extend(users.into_iter().map(|u| (u.id, u.email)));
        if done || after.is_none() {
            return Ok(team);
        }
    }
}

/// User id → email.
pub type Team = std::collections::HashMap<String, String>;

const TEAM_PAGE: u32 = 500;

/// Who made a change as a person reads it: a user by email, anyone else by the actor's
/// word (`api`, `customer`, `assent`).
pub fn actor_name(team: &Team, actor: &str) -> String {
    team.get(actor)
        .cloned()
        .unwrap_or_else(|| actor.to_string())
}

/// How many ledger entries an export reads at a time.
pub const EXPORT_PAGE: usize = 1000;

/// The tenant's ledger entries in the range as CSV, oldest first, read a page at a time
/// from a keyset cursor and sent as each page is read: an export of any size holds one page
/// in memory. A database error after the first chunk ends the body early (the client sees
/// a broken transfer, never a short file that looks whole).
pub fn csv_stream(
    store: Arc<dyn Store>,
    tenant_id: String,
    filter: LedgerFilter,
) -> impl futures_util::Stream<Item = std::result::Result<axum::body::Bytes, StoreError>> + Send {
    struct State {
        store: Arc<dyn Store>,
        tenant_id: String,
        filter: LedgerFilter,
        /// `None` before the header is sent; then where the next page starts.
        next: Option<Option<Key>>,
        team: Team,
    }
    let start = State {
        store,
        tenant_id,
        filter,
        next: None,
        team: Team::new(),
    };
    futures_util::stream::unfold(Some(start), |state| async move {
        let mut s = state?;
        let Some(from) = s.next.take() else {
            s.next = Some(None);
            match team(s.store.as_ref(), &s.tenant_id).await {
                Ok(t) => s.team = t,
                Err(e) => {
                    tracing::error!(error = %e, "ledger export failed");
                    return Some((Err(e), None));
                }
            }
            return Some((
                Ok(axum::body::Bytes::from_static(CSV_HEADER.as_bytes())),
                Some(s),
            ));
        };
        let seek = Seek::after(from, EXPORT_PAGE);
        match s.store.ledger_page(&s.tenant_id, &s.filter, &seek).await {
            Err(e) => {
                tracing::error!(error = %e, "ledger export failed");
                Some((Err(e), None))
            }
            Ok(page) if page.items.is_empty() => None,
            Ok(page) => {
                let chunk = csv_rows(&page.items, &s.team);
                let next = page.next().cloned();
                let more = next.is_some();
                s.next = Some(next);
                Some((Ok(axum::body::Bytes::from(chunk)), more.then_some(s)))
            }
        }
    })
}

/// The CSV export's answer: `text/csv`, an attachment named after the tenant, and a body
/// streamed by [`csv_stream`] (chunked, never built whole).
pub fn csv_response(app: &AppState, t: &Tenant, filter: LedgerFilter) -> axum::response::Response {
    use axum::response::IntoResponse;
    let body = axum::body::Body::from_stream(csv_stream(app.store.clone(), t.id.clone(), filter));
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}-consent-ledger.csv\"", t.slug),
            ),
        ],
        body,
    )
        .into_response()
}

/// Quotes a CSV cell; free text that a spreadsheet would run as a formula is defused.
fn cell(s: &str, free_text: bool) -> String {
    let s = if free_text && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The codes first (programs read those), then the same entry in the words every page
/// uses ([`crate::words`]): what it is about, the change, and where it came from. `actor`
/// names a person by email.
const CSV_HEADER: &str = "seq,occurred_at,phone,channel,old_state,new_state,source,actor,message_sid,text,rule,ip,user_agent,page,disclosure,about,change,how\n";

/// Ledger entries as CSV lines (no header); `team` names people by email.
pub fn csv_rows(entries: &[LedgerEntry], team: &Team) -> String {
    use crate::words;
    let mut out = String::new();
    for e in entries {
        let x = &e.entry;
        let ev = &x.evidence;
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let row = [
            cell(&e.seq.to_string(), false),
            cell(
                &x.occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                false,
            ),
            cell(x.phone.as_str(), false),
            cell(x.channel.as_str(), false),
            cell(x.old_state.as_str(), false),
            cell(x.new_state.as_str(), false),
            cell(x.source.as_str(), false),
            cell(&actor_name(team, x.actor.as_str()), true),
            cell(&o(&ev.message_sid), true),
            cell(&o(&ev.text), true),
            cell(&o(&ev.rule), true),
            cell(&o(&ev.ip), true),
            cell(&o(&ev.user_agent), true),
            cell(&o(&ev.page), true),
            cell(&o(&ev.disclosure), true),
            cell(&words::ledger_topic(x.channel.as_str()), false),
            cell(
                &words::ledger_change(
                    x.channel.as_str(),
                    x.old_state.as_str(),
                    x.new_state.as_str(),
                ),
                false,
            ),
            cell(words::source(x.source), false),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("a,b", true), "\"a,b\"");
        assert_eq!(cell("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(1)", true), "'=HYPERLINK(1)");
        assert_eq!(cell("+15125550142", false), "+15125550142");
    }
}
