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

/// US states, DC, territories and Canadian provinces by their full names, for addresses
/// that spell the state out ("Miami, Florida").
const REGION_NAMES: &[(&str, &str)] = &[
    ("alabama", "AL"),
    ("alaska", "AK"),
    ("arizona", "AZ"),
    ("arkansas", "AR"),
    ("california", "CA"),
    ("colorado", "CO"),
    ("connecticut", "CT"),
    ("delaware", "DE"),
    ("district of columbia", "DC"),
    ("florida", "FL"),
    ("georgia", "GA"),
    ("hawaii", "HI"),
    ("idaho", "ID"),
    ("illinois", "IL"),
    ("indiana", "IN"),
    ("iowa", "IA"),
    ("kansas", "KS"),
    ("kentucky", "KY"),
    ("louisiana", "LA"),
    ("maine", "ME"),
    ("maryland", "MD"),
    ("massachusetts", "MA"),
    ("michigan", "MI"),
    ("minnesota", "MN"),
    ("mississippi", "MS"),
    ("missouri", "MO"),
    ("montana", "MT"),
    ("nebraska", "NE"),
    ("nevada", "NV"),
    ("new hampshire", "NH"),
    ("new jersey", "NJ"),
    ("new mexico", "NM"),
    ("new york", "NY"),
    ("north carolina", "NC"),
    ("north dakota", "ND"),
    ("ohio", "OH"),
    ("oklahoma", "OK"),
    ("oregon", "OR"),
    ("pennsylvania", "PA"),
    ("rhode island", "RI"),
    ("south carolina", "SC"),
    ("south dakota", "SD"),
    ("tennessee", "TN"),
    ("texas", "TX"),
    ("utah", "UT"),
    ("vermont", "VT"),
    ("virginia", "VA"),
    ("washington", "WA"),
    ("west virginia", "WV"),
    ("wisconsin", "WI"),
    ("wyoming", "WY"),
    ("puerto rico", "PR"),
    ("guam", "GU"),
    ("american samoa", "AS"),
    ("northern mariana islands", "MP"),
    ("virgin islands", "VI"),
    ("alberta", "AB"),
    ("british columbia", "BC"),
    ("manitoba", "MB"),
    ("new brunswick", "NB"),
    ("newfoundland and labrador", "NL"),
    ("newfoundland", "NL"),
    ("nova scotia", "NS"),
    ("northwest territories", "NT"),
    ("nunavut", "NU"),
    ("ontario", "ON"),
    ("prince edward island", "PE"),
    ("quebec", "QC"),
    ("québec", "QC"),
    ("saskatchewan", "SK"),
    ("yukon", "YT"),
];

/// Finds the state or province of a free-form address, read where an address puts it: at
/// the end, before any ZIP or postal code and country. There, a two-letter code in any
/// case ("Austin, TX 78701", "miami fl 33101") or a name spelled out ("Miami, Florida",
/// "Charleston, West Virginia"). A state's name elsewhere is a street ("500 Florida St,
/// San Francisco") and is not taken; failing all that, a two-letter code in capitals
/// anywhere ("12 OAK DR, TX"), the last one. "Washington" at the end is a state only
/// before a Washington ZIP (98xxx, 99xxx): it is more often the capital's city.
pub fn region_of_address(address: &str) -> Option<String> {
    let t = tables();
    let known = |code: &str| t.region_zones.contains_key(code);
    let words: Vec<&str> = address
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let is_zip = |w: &str| (w.len() == 5 || w.len() == 4) && w.chars().all(|c| c.is_ascii_digit());
    let is_postal_half = |w: &str| {
        matches!(w.as_bytes(), [a, b, c] if (a.is_ascii_alphabetic() && b.is_ascii_digit() && c.is_ascii_alphabetic())
            || (a.is_ascii_digit() && b.is_ascii_alphabetic() && c.is_ascii_digit()))
    };
    let is_country = |w: &str| matches!(w.to_lowercase().as_str(), "usa" | "canada");
    // The state's place: the words left once the trailing codes and country are dropped.
    let mut end = words.len();
    let mut zip = None;
    while end > 0
        && (is_zip(words[end - 1]) || is_postal_half(words[end - 1]) || is_country(words[end - 1]))
    {
        if words[end - 1].len() == 5 && is_zip(words[end - 1]) {
            zip = Some(words[end - 1]);
        }
        end -= 1;
    }
    let head = &words[..end];
    if let Some(last) = head.last() {
        let code = last.to_ascii_uppercase();
        if last.len() == 2 && known(&code) {
            return Some(code);
        }
    }
    let lower: Vec<String> = head.iter().map(|w| w.to_lowercase()).collect();
    let spelled = REGION_NAMES
        .iter()
        .filter(|(name, _)| {
            let parts: Vec<&str> = name.split(' ').collect();
            lower.len() >= parts.len()
                && lower[lower.len() - parts.len()..]
                    .iter()
                    .zip(&parts)
                    .all(|(a, b)| a == b)
        })
        .max_by_key(|(name, _)| name.len());
    if let Some((name, code)) = spelled {
        let washington_state = zip.is_some_and(|z| z.starts_with("98") || z.starts_with("99"));
        if *name != "washington" || washington_state {
            return Some(code.to_string());
        }
    }
    words
        .iter()
        .rev()
        .find(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_uppercase()) && known(w))
        .map(|w| w.to_string())
}

/// The country a NANP number belongs to, by its area code: `US` (states, DC and the US
/// territories), `CA`, or the ISO code of another NANP country (`JM`, `DO`, …). `None` for
/// numbers outside the NANP or area codes not in the table.
pub fn country(phone: &E164) -> Option<&'static str> {
    const PROVINCES: &[&str] = &[
        "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
    ];
    let region = area_code(phone.area_code()?)?.regions.first()?;
    Some(match region.strip_prefix('-') {
        Some(iso) => NANP_COUNTRIES.iter().find(|c| **c == iso)?,
        None if PROVINCES.contains(&region.as_str()) => "CA",
        None => "US",
    })
}

/// Every country [`country`] can answer.
pub const NANP_COUNTRIES: &[&str] = &[
    "US", "CA", "AG", "AI", "BB", "BM", "BS", "DM", "DO", "GD", "JM", "KN", "KY", "LC", "MS", "SX",
    "TC", "TT", "VC", "VG",
];

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
    fn addresses_name_their_state_in_several_ways() {
        for (address, region) in [
            ("100 Main St, Austin, TX 78701", Some("TX")),
            ("100 Main St, Miami, Florida 33101", Some("FL")),
            ("100 main st, miami fl 33101", Some("FL")),
            ("100 main st, miami, fl", Some("FL")),
            ("1600 Pennsylvania Ave NW, Washington dc 20500", Some("DC")),
            ("12 Florida Ave, Atlanta, Georgia", Some("GA")),
            ("3 Hill Rd, Charleston, West Virginia", Some("WV")),
            ("3 Rue Principale, Montréal, Québec H2X 1Y4", Some("QC")),
            ("10 King St, Toronto on M5H 2N2", Some("ON")),
            ("Unit 5 in the back, Apt 4", None),
            ("12 Oak Dr or the blue door", None),
            // A state's name as a street's is not the state.
            ("500 Florida St, San Francisco", None),
            ("1000 W Georgia St, Vancouver", None),
            ("1600 Pennsylvania Ave NW, Washington", None),
            ("1600 Pennsylvania Ave NW, Washington, DC 20500", Some("DC")),
            ("400 Broad St, Seattle, Washington 98109", Some("WA")),
            ("123 NE 5th Ave, Portland or 97232", Some("OR")),
            ("100 Main St, Austin, TX 78701-1234, USA", Some("TX")),
            ("12 OAK DR, TX", Some("TX")),
        ] {
            assert_eq!(region_of_address(address).as_deref(), region, "{address}");
        }
    }

    #[test]
    fn numbers_belong_to_the_country_of_their_area_code() {
        assert_eq!(country(&phone("+15125550142")), Some("US"));
        assert_eq!(country(&phone("+17875550100")), Some("US"), "Puerto Rico");
        assert_eq!(country(&phone("+14165550100")), Some("CA"));
        assert_eq!(country(&phone("+18765550100")), Some("JM"));
        assert_eq!(country(&phone("+18095550100")), Some("DO"));
        assert_eq!(country(&phone("+442079460958")), None);
        // Every NANP region of the table maps to a country we can name.
        for (npa, a) in &tables().area_codes {
            let n = E164::parse(&format!("+1{npa}5550100")).unwrap();
            assert!(country(&n).is_some(), "{npa} {:?}", a.regions);
        }
    }

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
    fn oklahoma_maryland_and_washington_stop_at_8pm_too() {
        // 20:30 local in January, in each state's zone, by a number of the state.
        for (number, utc_hour) in [
            ("4055550100", 2), // Oklahoma City, CST: 20:30 = 02:30 UTC
            ("4105550100", 1), // Baltimore, EST: 20:30 = 01:30 UTC
            ("2065550100", 4), // Seattle, PST: 20:30 = 04:30 UTC
        ] {
            let r = locate(&phone(number), None, CHICAGO);
            assert!(
                next_allowed(utc(2026, 1, 16, utc_hour, 30), &r, QuietPolicy::Standard).is_some(),
                "{number} at 20:30 local"
            );
            assert_eq!(
                next_allowed(
                    utc(2026, 1, 16, utc_hour - 1, 30),
                    &r,
                    QuietPolicy::Standard
                ),
                None,
                "{number} at 19:30 local"
            );
        }
    }

    #[test]
    fn unverified_rows_are_listed_but_not_applied() {
        assert!(rules().iter().any(|r| r.region == "TX" && !r.verified));
        // 08:30 on a Sunday in Austin: Texas's reported noon start is not applied.
        let r = locate(&phone("5125550142"), None, CHICAGO);
        assert_eq!(
            next_allowed(utc(2026, 1, 18, 14, 30), &r, QuietPolicy::Standard),
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
