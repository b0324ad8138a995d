//! Quiet hours: when a marketing text may reach a recipient, in the recipient's local time.
//!
//! The recipient's zones come from the customer's address (its state's zones), else the
//! number's area code, else the tenant's zone; where several zones are possible, a time is
//! allowed only if it is inside the window in every one of them. The windows come from
//! `data/quiet_hours.tsv` (federal 08:00–21:00, narrower states), one row per rule with its
//! source; the area-code table `data/area_codes.tsv` is generated from libphonenumber.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::phone::E164;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuietPolicy {
    /// Federal 08:00–21:00, narrowed by the recipient's state.
    #[default]
    Standard,
    /// 09:00–20:00 everywhere.
    Strictest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaCode {
    pub regions: Vec<String>,
    pub zones: Vec<Tz>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub region: String,
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub verified: bool,
    pub source: String,
}

struct Tables {
    area_codes: HashMap<u16, AreaCode>,
    region_zones: HashMap<String, Vec<Tz>>,
    rules: Vec<Rule>,
}

fn data_lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').collect())
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_days(spec: &str) -> Vec<Weekday> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Some(mut d), Some(end)) = (weekday(a), weekday(b)) {
                    out.push(d);
                    while d != end {
                        d = d.succ();
                        out.push(d);
                    }
                }
            }
            None => out.extend(weekday(part)),
        }
    }
    out
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut area_codes = HashMap::new();
        let mut region_zones: HashMap<String, Vec<Tz>> = HashMap::new();
        for cols in data_lines(include_str!("../data/area_codes.tsv")) {
            let (Some(npa), Some(regions), Some(zones)) = (cols.first(), cols.get(1), cols.get(2))
            else {
                continue;
            };
            let Ok(npa) = npa.parse::<u16>() else {
                continue;
            };
            let zones: Vec<Tz> = zones.split(',').filter_map(|z| z.parse().ok()).collect();
            let regions: Vec<String> = regions.split(',').map(str::to_string).collect();
            for r in &regions {
                let e = region_zones.entry(r.clone()).or_default();
                for z in &zones {
                    if !e.contains(z) {
                        e.push(*z);
                    }
                }
            }
            area_codes.insert(npa, AreaCode { regions, zones });
        }
        let rules = data_lines(include_str!("../data/quiet_hours.tsv"))
            .filter_map(|c| {
                Some(Rule {
                    region: c.first()?.to_string(),
                    days: parse_days(c.get(1)?),
                    start: NaiveTime::parse_from_str(c.get(2)?, "%H:%M").ok()?,
                    end: NaiveTime::parse_from_str(c.get(3)?, "%H:%M").ok()?,
                    verified: *c.get(4)? == "yes",
                    source: c.get(5).unwrap_or(&"").to_string(),
                })
            })
            .collect();
        Tables {
            area_codes,
            region_zones,
            rules,
        }
    })
}

pub fn area_code(npa: u16) -> Option<&'static AreaCode> {
    tables().area_codes.get(&npa)
}

pub fn rules() -> &'static [Rule] {
    &tables().rules
}

/// Where a recipient may be: every zone and every state whose rules apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub zones: Vec<Tz>,
    pub regions: Vec<String>,
}

/// Finds a two-letter state or province code in a free-form address ("…, Austin, TX 78701").
pub fn region_of_address(address: &str) -> Option<String> {
    let t = tables();
    address
        .split(|c: char| !c.is_ascii_alphanumeric())
        .rev()
        .find(|w| {
            w.len() == 2
                && w.chars().all(|c| c.is_ascii_uppercase())
                && t.region_zones.contains_key(*w)
        })
        .map(str::to_string)
}

pub fn locate(phone: &E164, address: Option<&str>, tenant_zone: Tz) -> Recipient {
    let t = tables();
    let by_area = phone.area_code().and_then(|npa| t.area_codes.get(&npa));
    let by_address = address.and_then(region_of_address);
    let mut regions: Vec<String> = by_area.map(|a| a.regions.clone()).unwrap_or_default();
    let zones = match &by_address {
        Some(r) => {
            if !regions.contains(r) {
                regions.push(r.clone());
            }
            t.region_zones.get(r).cloned().unwrap_or_default()
        }
        None => by_area.map(|a| a.zones.clone()).unwrap_or_default(),
    };
    Recipient {
        zones: if zones.is_empty() {
            vec![tenant_zone]
        } else {
            zones
        },
        regions,
    }
}

/// The window for one local day: the intersection of every applying rule.
fn window(day: Weekday, regions: &[String], policy: QuietPolicy) -> Option<(NaiveTime, NaiveTime)> {
    let mut start = NaiveTime::MIN;
    let mut end = NaiveTime::from_hms_opt(23, 59, 59)?;
    let mut any = false;
    for r in rules() {
        if !r.verified || !r.days.contains(&day) {
            continue;
        }
        if r.region == "*" || regions.contains(&r.region) {
            start = start.max(r.start);
            end = end.min(r.end);
            any = true;
        }
    }
    if policy == QuietPolicy::Strictest {
        start = start.max(NaiveTime::from_hms_opt(9, 0, 0)?);
        end = end.min(NaiveTime::from_hms_opt(20, 0, 0)?);
        any = true;
    }
    (any && start < end).then_some((start, end))
}

fn allowed_at(t: DateTime<Utc>, r: &Recipient, policy: QuietPolicy) -> bool {
    r.zones.iter().all(|z| {
        let local = t.with_timezone(z);
        window(local.weekday(), &r.regions, policy)
            .is_some_and(|(s, e)| local.time() >= s && local.time() < e)
    })
}

/// `None` when a held message may go now; otherwise the first moment it may.
pub fn next_allowed(
    now: DateTime<Utc>,
    r: &Recipient,
    policy: QuietPolicy,
) -> Option<DateTime<Utc>> {
    if allowed_at(now, r, policy) {
        return None;
    }
    // Any allowed stretch starts at some zone's window start, so those are the candidates.
    let mut candidates = Vec::new();
    for z in &r.zones {
        let today = now.with_timezone(z).date_naive();
        for d in 0..9 {
            let date = today + Duration::days(d);
            if let Some((start, _)) = window(date.weekday(), &r.regions, policy) {
                let naive = date.and_time(start);
                let at = z.from_local_datetime(&naive).earliest().or_else(|| {
                    z.from_local_datetime(&(naive + Duration::hours(1)))
                        .earliest()
                });
                if let Some(at) = at {
                    let at = at.with_timezone(&Utc);
                    if at > now {
                        candidates.push(at);
                    }
                }
            }
        }
    }
    candidates.sort();
    candidates.into_iter().find(|c| allowed_at(*c, r, policy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }
    fn phone(s: &str) -> E164 {
        E164::parse(s).unwrap()
    }
    const CHICAGO: Tz = chrono_tz::America::Chicago;

    #[test]
    fn table_covers_us_and_canada() {
        let austin = area_code(512).unwrap();
        assert_eq!(austin.regions, vec!["TX"]);
        assert_eq!(austin.zones, vec![chrono_tz::America::Chicago]);
        assert_eq!(area_code(416).unwrap().regions, vec!["ON"]);
        assert_eq!(area_code(850).unwrap().zones.len(), 2);
        assert!(tables().area_codes.len() > 400);
        assert!(rules().iter().all(|r| !r.source.is_empty()));
    }

    #[test]
    fn texas_number_at_7am_waits_until_8am_central() {
        let r = locate(&phone("5125550142"), None, CHICAGO);
        // 07:00 CST = 13:00 UTC in January.
        let now = utc(2026, 1, 15, 13, 0);
        assert_eq!(
            next_allowed(now, &r, QuietPolicy::Standard),
            Some(utc(2026, 1, 15, 14, 0))
        );
        assert_eq!(
            next_allowed(utc(2026, 1, 15, 14, 0), &r, QuietPolicy::Standard),
            None
        );
        // 21:00 CST is past the window: next morning.
        assert_eq!(
            next_allowed(utc(2026, 1, 16, 3, 0), &r, QuietPolicy::Standard),
            Some(utc(2026, 1, 16, 14, 0))
        );
    }

    #[test]
    fn florida_stops_at_8pm() {
        let r = locate(&phone("3055550100"), None, CHICAGO);
        // 20:30 EST = 01:30 UTC next day.
        assert!(next_allowed(utc(2026, 1, 16, 1, 30), &r, QuietPolicy::Standard).is_some());
        let tx = locate(&phone("5125550142"), None, CHICAGO);
        // 20:30 CST is fine in Texas.
        assert_eq!(
            next_allowed(utc(2026, 1, 16, 2, 30), &tx, QuietPolicy::Standard),
            None
        );
    }

    #[test]
    fn address_state_and_area_code_state_both_apply() {
        // A Texas number whose customer lives in Florida (Miami): Florida's 20:00 applies.
        let r = locate(
            &phone("5125550142"),
            Some("1 Ocean Dr, Miami, FL 33139"),
            CHICAGO,
        );
        assert!(r.regions.contains(&"FL".to_string()) && r.regions.contains(&"TX".to_string()));
        // 20:30 EST (19:30 CST) is 01:30 UTC.
        assert!(next_allowed(utc(2026, 1, 16, 1, 30), &r, QuietPolicy::Standard).is_some());
    }

    #[test]
    fn area_code_spanning_two_zones_allows_only_the_common_hours() {
        // 850 (Florida panhandle) spans Central and Eastern: 08:00 CST = 09:00 EST.
        let r = locate(&phone("8505550100"), None, CHICAGO);
        // 13:30 UTC = 07:30 CST = 08:30 EST: not yet for the Central part.
        assert_eq!(
            next_allowed(utc(2026, 1, 15, 13, 30), &r, QuietPolicy::Standard),
            Some(utc(2026, 1, 15, 14, 0))
        );
    }

    #[test]
    fn unknown_numbers_use_the_tenant_zone() {
        let r = locate(&phone("+442079460958"), None, CHICAGO);
        assert_eq!(r.zones, vec![CHICAGO]);
    }

    #[test]
    fn strictest_is_nine_to_eight() {
        let r = locate(&phone("5125550142"), None, CHICAGO);
        // 08:30 CST.
        assert_eq!(
            next_allowed(utc(2026, 1, 15, 14, 30), &r, QuietPolicy::Strictest),
            Some(utc(2026, 1, 15, 15, 0))
        );
    }

    #[test]
    fn spring_forward_day_opens_at_8am_daylight_time() {
        // 2026-03-08: US clocks go 02:00 → 03:00. 08:00 CDT = 13:00 UTC.
        let r = locate(&phone("5125550142"), None, CHICAGO);
        assert_eq!(
            next_allowed(utc(2026, 3, 8, 7, 0), &r, QuietPolicy::Standard),
            Some(utc(2026, 3, 8, 13, 0))
        );
    }

    #[test]
    fn fall_back_day_opens_at_8am_standard_time() {
        // 2026-11-01: clocks go 02:00 → 01:00. 08:00 CST = 14:00 UTC.
        let r = locate(&phone("5125550142"), None, CHICAGO);
        assert_eq!(
            next_allowed(utc(2026, 11, 1, 6, 30), &r, QuietPolicy::Standard),
            Some(utc(2026, 11, 1, 14, 0))
        );
    }
}
