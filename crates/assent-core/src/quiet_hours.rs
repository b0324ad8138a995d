//! Quiet hours: when a marketing text may reach a recipient, in the recipient's local time.
//!
//! Where the recipient is, is not known for sure, so every candidate counts: the zones of
//! the number's area code and the zones of the customer's address's state together (a
//! service address is often not where the phone's owner sleeps), else the tenant's zone. A
//! time is allowed only if it is inside the window in every one of them. The windows come
//! from `data/quiet_hours.tsv` (federal 08:00–21:00, narrower states, per weekday and
//! federal holiday), one row per rule with its source, applied for the area code's state and
//! the address's state alike; the area-code table `data/area_codes.tsv` is generated from
//! libphonenumber by `tools/gen_area_codes.py`, with the corrections and overlays kept
//! beside it.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

use crate::phone::E164;

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum QuietPolicy as "quiet hours policy" {
        /// Federal 08:00–21:00, narrowed by the recipient's states.
        #[default]
        Standard = "standard",
        /// The narrowest window of every applied row of the table, everywhere.
        Strictest = "strictest",
    }
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
    /// Also applies on US federal holidays (on the date and on the observed weekday).
    pub holidays: bool,
    /// `None` forbids the whole day.
    pub window: Option<(NaiveTime, NaiveTime)>,
    pub verified: bool,
    pub source: String,
}

impl Rule {
    fn applies_on(&self, date: NaiveDate) -> bool {
        self.days.contains(&date.weekday()) || (self.holidays && is_federal_holiday(date))
    }
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

/// `mon-sat`, `sun,holiday`, … into the weekdays and whether federal holidays are named.
/// `None` for anything it cannot read, so a typo in the table fails its test, not silently.
fn parse_days(spec: &str) -> Option<(Vec<Weekday>, bool)> {
    let mut out = Vec::new();
    let mut holidays = false;
    for part in spec.split(',') {
        match part.split_once('-') {
            _ if part == "holiday" => holidays = true,
            Some((a, b)) => {
                let (mut d, end) = (weekday(a)?, weekday(b)?);
                out.push(d);
                while d != end {
                    d = d.succ();
                    out.push(d);
                }
            }
            None => out.push(weekday(part)?),
        }
    }
    Some((out, holidays))
}

/// One row of `quiet_hours.tsv`.
pub fn parse_rule(line: &str) -> Option<Rule> {
    let c: Vec<&str> = line.split('\t').collect();
    let (days, holidays) = parse_days(c.get(1)?)?;
    let window = match (*c.get(2)?, *c.get(3)?) {
        ("-", "-") => None,
        (s, e) => Some((
            NaiveTime::parse_from_str(s, "%H:%M").ok()?,
            NaiveTime::parse_from_str(e, "%H:%M").ok()?,
        )),
    };
    let verified = match *c.get(4)? {
        "yes" => true,
        "no" => false,
        _ => return None,
    };
    Some(Rule {
        region: c.first()?.to_string(),
        days,
        holidays,
        window,
        verified,
        source: c.get(5)?.to_string(),
    })
}

/// Parses the rows of a rule table; a row it cannot read is reported by its line.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| parse_rule(l).ok_or_else(|| format!("quiet_hours.tsv: cannot read {l:?}")))
        .collect()
}

const RULES_TSV: &str = include_str!("../data/quiet_hours.tsv");

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
        // Unreadable rows are caught by `every_rule_row_reads`; here they are skipped.
        let rules = RULES_TSV.lines().filter_map(parse_rule).collect();
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

/// The zones of a state or province: every zone of its area codes.
pub fn region_zones(region: &str) -> &'static [Tz] {
    tables()
        .region_zones
        .get(region)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The US federal holidays of 5 U.S.C. 6103 (Inauguration Day aside): the fixed dates, on
/// their date and on the weekday they are observed (Saturday's on the Friday before,
/// Sunday's on the Monday after), and the Monday and Thursday ones.
pub fn is_federal_holiday(date: NaiveDate) -> bool {
    let y = date.year();
    let nth = |n: u8, wd: Weekday, month: u32| {
        NaiveDate::from_weekday_of_month_opt(y, month, wd, n) == Some(date)
    };
    let last_monday_of_may = (25..=31)
        .filter_map(|d| NaiveDate::from_ymd_opt(y, 5, d))
        .find(|d| d.weekday() == Weekday::Mon);
    let fixed = |fm: u32, fd: u32| {
        [y - 1, y, y + 1].iter().any(|&fy| {
            NaiveDate::from_ymd_opt(fy, fm, fd).is_some_and(|h| {
                let observed = match h.weekday() {
                    Weekday::Sat => h - Duration::days(1),
                    Weekday::Sun => h + Duration::days(1),
                    _ => h,
                };
                h == date || observed == date
            })
        })
    };
    fixed(1, 1)
        || nth(3, Weekday::Mon, 1) // Birthday of Martin Luther King, Jr.
        || nth(3, Weekday::Mon, 2) // Washington's Birthday
        || last_monday_of_may == Some(date) // Memorial Day
        || fixed(6, 19) // Juneteenth
        || fixed(7, 4)
        || nth(1, Weekday::Mon, 9) // Labor Day
        || nth(2, Weekday::Mon, 10) // Columbus Day
        || fixed(11, 11) // Veterans Day
        || nth(4, Weekday::Thu, 11) // Thanksgiving Day
        || fixed(12, 25)
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

/// Area codes that are never a geographic subscriber's: the N11 service codes, the N9X codes
/// kept for expanding the plan, the 37X and 96X reserve, the non-geographic N00 codes
/// (premium 900 among them), toll-free 8YY, personal 5YY and 52X, 976, and Canada's
/// non-geographic 600 and 622 and the US government's 710.
fn never_an_area_code(npa: u16) -> bool {
    let (a, b, c) = (npa / 100, npa / 10 % 10, npa % 10);
    (b == 1 && c == 1)
        || b == 9
        || npa / 10 == 37
        || npa / 10 == 96
        || npa / 10 == 52
        || (b == 0 && c == 0)
        || ((a == 8 || a == 5) && b == c)
        || matches!(npa, 976 | 622 | 710)
}

/// The country a NANP number belongs to, by its area code: `US` (states, DC and the US
/// territories), `CA`, or the ISO code of another NANP country (`JM`, `DO`, …). An area code
/// not in the table (a new overlay such as 679 Detroit or 861 Illinois) is a US number: every Canadian and Caribbean code is in the table, and new US codes come
/// faster than libphonenumber's releases. `None` for numbers outside the NANP and for codes
/// that are never a subscriber's.
pub fn country(phone: &E164) -> Option<&'static str> {
    const PROVINCES: &[&str] = &[
        "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
    ];
    let npa = phone.area_code()?;
    let Some(known) = area_code(npa) else {
        return (!never_an_area_code(npa)).then_some("US");
    };
    let region = known.regions.first()?;
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

/// Every place the recipient may be: the area code's zones and states and the address's
/// state and its zones, together; the tenant's zone when neither says anything.
pub fn locate(phone: &E164, address: Option<&str>, tenant_zone: Tz) -> Recipient {
    let by_area = phone.area_code().and_then(area_code);
    let mut zones: Vec<Tz> = by_area.map(|a| a.zones.clone()).unwrap_or_default();
    let mut regions: Vec<String> = by_area.map(|a| a.regions.clone()).unwrap_or_default();
    if let Some(r) = address.and_then(region_of_address) {
        for z in region_zones(&r) {
            if !zones.contains(z) {
                zones.push(*z);
            }
        }
        if !regions.contains(&r) {
            regions.push(r);
        }
    }
    if zones.is_empty() {
        zones.push(tenant_zone);
    }
    Recipient { zones, regions }
}

/// The window of one local date under `rules`: the intersection of every row that applies
/// (the verified rows for `regions` and everyone's; under "strictest", every verified row).
/// `None` when no minute of the day is allowed.
pub fn window_in(
    rules: &[Rule],
    date: NaiveDate,
    regions: &[String],
    policy: QuietPolicy,
) -> Option<(NaiveTime, NaiveTime)> {
    let mut start = NaiveTime::MIN;
    let mut end = NaiveTime::from_hms_opt(23, 59, 59)?;
    let mut any = false;
    for r in rules {
        let here =
            policy == QuietPolicy::Strictest || r.region == "*" || regions.contains(&r.region);
        if !r.verified || !here || !r.applies_on(date) {
            continue;
        }
        let (s, e) = r.window?;
        start = start.max(s);
        end = end.min(e);
        any = true;
    }
    (any && start < end).then_some((start, end))
}

fn allowed_in(rules: &[Rule], t: DateTime<Utc>, r: &Recipient, policy: QuietPolicy) -> bool {
    r.zones.iter().all(|z| {
        let local = t.with_timezone(z);
        window_in(rules, local.date_naive(), &r.regions, policy)
            .is_some_and(|(s, e)| local.time() >= s && local.time() < e)
    })
}

/// `None` when a held message may go now; otherwise the first moment it may.
pub fn next_allowed(
    now: DateTime<Utc>,
    r: &Recipient,
    policy: QuietPolicy,
) -> Option<DateTime<Utc>> {
    next_allowed_in(rules(), now, r, policy)
}

/// [`next_allowed`] under a given rule table.
pub fn next_allowed_in(
    rules: &[Rule],
    now: DateTime<Utc>,
    r: &Recipient,
    policy: QuietPolicy,
) -> Option<DateTime<Utc>> {
    if allowed_in(rules, now, r, policy) {
        return None;
    }
    // Any allowed stretch starts at some zone's window start, so those are the candidates.
    // Two weeks covers a closed Sunday next to a holiday Monday with room to spare.
    let mut candidates = Vec::new();
    for z in &r.zones {
        let today = now.with_timezone(z).date_naive();
        for d in 0..15 {
            let date = today + Duration::days(d);
            if let Some((start, _)) = window_in(rules, date, &r.regions, policy) {
                let naive = date.and_time(start);
                // A start inside a spring-forward gap opens at the first minute that exists.
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
    candidates
        .into_iter()
        .find(|c| allowed_in(rules, *c, r, policy))
}

#[cfg(test)]
mod tests;
