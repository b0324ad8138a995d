//! The consent ledger as people and auditors read it: a date range in the tenant's zone,
//! optionally one phone, and the CSV export (`GET /consent/export.csv` and the
//! Compliance page's filter and export).

use assent_core::phone::E164;
use assent_store::{LedgerEntry, Tenant};
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

/// Which entries to read: `from` included, `to` excluded.
#[derive(Debug, Clone, Default)]
pub struct Range {
    pub phone: Option<E164>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The tenant's ledger entries in the range, oldest first.
pub async fn entries(app: &AppState, t: &Tenant, r: &Range) -> Result<Vec<LedgerEntry>> {
    Ok(match &r.phone {
        Some(p) => app
            .store
            .ledger_for_phone(&t.id, p)
            .await?
            .into_iter()
            .filter(|e| {
                r.from.is_none_or(|from| e.entry.occurred_at >= from)
                    && r.to.is_none_or(|to| e.entry.occurred_at < to)
            })
            .collect(),
        None => app.store.ledger(&t.id, r.from, r.to).await?,
    })
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

pub fn csv(entries: &[LedgerEntry]) -> String {
    let mut out = String::from(
        "seq,occurred_at,phone,channel,old_state,new_state,source,actor,message_sid,text,rule,ip,user_agent,page,disclosure\n",
    );
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
            cell(x.actor.as_str(), true),
            cell(&o(&ev.message_sid), true),
            cell(&o(&ev.text), true),
            cell(&o(&ev.rule), true),
            cell(&o(&ev.ip), true),
            cell(&o(&ev.user_agent), true),
            cell(&o(&ev.page), true),
            cell(&o(&ev.disclosure), true),
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
