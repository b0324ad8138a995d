//! Table-driven, each case at a fixed instant (the clock is an argument).

use super::*;
use chrono_tz::America;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}
fn phone(s: &str) -> E164 {
    E164::parse(s).unwrap()
}
const CHICAGO: Tz = America::Chicago;

/// One case: a number (and address) at an instant, and when it may be texted.
struct Case {
    what: &'static str,
    number: &'static str,
    address: Option<&'static str>,
    now: DateTime<Utc>,
    policy: QuietPolicy,
    expect: Option<DateTime<Utc>>,
}

fn case(
    what: &'static str,
    number: &'static str,
    address: Option<&'static str>,
    now: DateTime<Utc>,
    expect: Option<DateTime<Utc>>,
) -> Case {
    Case {
        what,
        number,
        address,
        now,
        policy: QuietPolicy::Standard,
        expect,
    }
}

fn run(cases: &[Case]) {
    for c in cases {
        let r = locate(&phone(c.number), c.address, CHICAGO);
        assert_eq!(
            next_allowed(c.now, &r, c.policy),
            c.expect,
            "{}: {} {:?} at {} (zones {:?}, regions {:?})",
            c.what,
            c.number,
            c.address,
            c.now,
            r.zones,
            r.regions
        );
    }
}

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
    assert_eq!(country(&phone("+14745550100")), Some("CA"));
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
fn an_area_code_missing_from_the_table_is_a_us_number() {
    // 679 (Detroit, over 313) and 861 (Illinois, over 815/779) came after the table's data.
    for n in ["+16795550100", "+18615550100"] {
        assert!(
            area_code(phone(n).area_code().unwrap()).is_none(),
            "{n} is new"
        );
        assert_eq!(country(&phone(n)), Some("US"), "{n}");
    }
    // Codes that are never a subscriber's stay out.
    for n in [
        "+12115550100",
        "+19115550100",
        "+12905550100",
        "+13755550100",
        "+19005550100",
    ] {
        assert_eq!(country(&phone(n)), None, "{n}");
    }
    // Its zones are the address's, else the tenant's.
    let bare = locate(&phone("+16795550100"), None, America::Los_Angeles);
    assert_eq!(bare.zones, vec![America::Los_Angeles]);
    assert!(bare.regions.is_empty());
    let detroit = locate(
        &phone("+16795550100"),
        Some("2 Woodward Ave, Detroit, MI 48226"),
        America::Los_Angeles,
    );
    assert_eq!(detroit.zones, region_zones("MI").to_vec());
    assert_eq!(detroit.regions, vec!["MI".to_string()]);
    let chicago = locate(&phone("+18615550100"), Some("Joliet, IL 60431"), CHICAGO);
    assert_eq!(chicago.zones, vec![CHICAGO]);
}

/// The generated table as a whole: every US and Canadian area code has a zone and a state
/// or province, it says what it was built from, and the corrections and overlays kept
/// beside the generator are in it (editing them without regenerating fails here).
#[test]
fn every_us_and_canadian_area_code_has_a_zone_and_a_region() {
    const PROVINCES: &[&str] = &[
        "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
    ];
    let mut us = 0;
    let mut ca = 0;
    for (npa, a) in &tables().area_codes {
        let n = E164::parse(&format!("+1{npa}5550100")).unwrap();
        match country(&n) {
            Some("US") => us += 1,
            Some("CA") => ca += 1,
            _ => continue,
        }
        assert!(!a.zones.is_empty(), "{npa} has no zone");
        assert!(!a.regions.is_empty(), "{npa} has no state or province");
        for r in &a.regions {
            let known =
                REGION_NAMES.iter().any(|(_, code)| code == r) || PROVINCES.contains(&r.as_str());
            assert!(known, "{npa}: {r} is not a state, territory or province");
        }
    }
    assert!(us > 350 && ca > 50, "{us} US and {ca} Canadian codes");

    let table = include_str!("../../data/area_codes.tsv");
    assert!(table.contains("\n# phonenumbers version: "));
    assert!(table.contains("\n# Built with tools/area_code_corrections.tsv"));
    assert!(table.contains("\n# Built with tools/area_code_overlays.tsv"));

    let zones_of =
        |npa: &str| -> Vec<Tz> { area_code(npa.parse().unwrap()).unwrap().zones.clone() };
    let corrections = include_str!("../../../../tools/area_code_corrections.tsv");
    let mut n = 0;
    for cols in data_lines(corrections) {
        let want: Vec<Tz> = cols[1].split(',').map(|z| z.parse().unwrap()).collect();
        assert!(
            !cols[2].trim().is_empty(),
            "correction {} has a source",
            cols[0]
        );
        for z in &want {
            assert!(
                zones_of(cols[0]).contains(z),
                "correction {} → {z}",
                cols[0]
            );
        }
        n += 1;
    }
    assert!(n >= 2);
    let overlays = include_str!("../../../../tools/area_code_overlays.tsv");
    for cols in data_lines(overlays) {
        assert!(
            !cols[2].trim().is_empty(),
            "overlay {} has a source",
            cols[0]
        );
        let own = zones_of(cols[0]);
        for parent in cols[1].split(',') {
            for z in zones_of(parent) {
                assert!(
                    own.contains(&z),
                    "overlay {} lacks {z} of {parent}",
                    cols[0]
                );
            }
        }
    }
}

#[test]
fn corrected_and_overlay_codes_get_every_zone_they_may_be_in() {
    for (npa, zones) in [
        (448, vec![America::Chicago, America::New_York]),
        (930, vec![America::Chicago, America::New_York]),
        (364, vec![America::Chicago, America::New_York]),
        (458, vec![America::Denver, America::Los_Angeles]),
        (
            986,
            vec![America::Boise, America::Denver, America::Los_Angeles],
        ),
        (689, vec![America::New_York]),
        (474, vec![America::Regina]),
        (639, vec![America::Regina]),
    ] {
        assert_eq!(area_code(npa).unwrap().zones, zones, "{npa}");
    }
    run(&[
        // 13:30 UTC in January: 07:30 Central, 08:30 Eastern.
        case(
            "448 over 850",
            "4485550100",
            None,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 14, 0)),
        ),
        case(
            "930 over 812",
            "9305550100",
            None,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 14, 0)),
        ),
        case(
            "364 over 270",
            "3645550100",
            None,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 14, 0)),
        ),
        // 04:30 UTC: 21:30 Mountain (closed), 20:30 Pacific; next 08:00 Pacific.
        case(
            "458 over 541",
            "4585550100",
            None,
            utc(2026, 1, 16, 4, 30),
            Some(utc(2026, 1, 16, 16, 0)),
        ),
        case(
            "986 over 208",
            "9865550100",
            None,
            utc(2026, 1, 15, 15, 30),
            Some(utc(2026, 1, 15, 16, 0)),
        ),
        // 20:30 Eastern is past Florida's 20:00; in Central (the old error) it was 19:30.
        case(
            "689 Orlando",
            "6895550100",
            None,
            utc(2026, 1, 16, 1, 30),
            Some(utc(2026, 1, 16, 13, 0)),
        ),
        case(
            "689 Orlando, 19:30",
            "6895550100",
            None,
            utc(2026, 1, 16, 0, 30),
            None,
        ),
        // July, 13:30 UTC: 07:30 in Regina (CST all year); Winnipeg's daylight time would say 08:30.
        case(
            "474 Saskatchewan",
            "4745550100",
            None,
            utc(2026, 7, 15, 13, 30),
            Some(utc(2026, 7, 15, 14, 0)),
        ),
        case(
            "639 Saskatchewan",
            "6395550100",
            None,
            utc(2026, 7, 15, 13, 30),
            Some(utc(2026, 7, 15, 14, 0)),
        ),
        case(
            "474 at 08:00 Regina",
            "4745550100",
            None,
            utc(2026, 7, 15, 14, 0),
            None,
        ),
    ]);
}

#[test]
fn the_area_codes_zones_and_the_addresss_zones_all_count() {
    let la = Some("6801 Hollywood Blvd, Los Angeles, CA 90028");
    let ny = Some("350 5th Ave, New York, NY 10118");
    run(&[
        // The case: a New York number at a Los Angeles address, 23:27 in New York.
        case(
            "NY number, LA address, 23:27 NY",
            "2125550100",
            la,
            utc(2026, 1, 16, 4, 27),
            Some(utc(2026, 1, 16, 16, 0)),
        ),
        case(
            "NY number, LA address, 21:30 NY",
            "2125550100",
            la,
            utc(2026, 1, 16, 2, 30),
            Some(utc(2026, 1, 16, 16, 0)),
        ),
        case(
            "NY number, LA address, 15:00 NY",
            "2125550100",
            la,
            utc(2026, 1, 15, 20, 0),
            None,
        ),
        case(
            "LA number, NY address, 08:30 NY",
            "2135550100",
            ny,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 16, 0)),
        ),
        // The address's state's window applies in every zone: Florida's 20:00 for a Texas number.
        case(
            "TX number, Miami address, 20:30 ET",
            "5125550142",
            Some("1 Ocean Dr, Miami, FL 33139"),
            utc(2026, 1, 16, 1, 30),
            Some(utc(2026, 1, 16, 15, 0)),
        ),
        // …and the area code's state's too: Texas's 09:00 for a Texas number living in Miami.
        case(
            "TX number, Miami address, 09:30 ET",
            "5125550142",
            Some("1 Ocean Dr, Miami, FL 33139"),
            utc(2026, 1, 15, 14, 30),
            Some(utc(2026, 1, 15, 15, 0)),
        ),
    ]);
    let r = locate(&phone("2125550100"), la, CHICAGO);
    assert_eq!(r.zones, vec![America::New_York, America::Los_Angeles]);
    assert_eq!(r.regions, vec!["NY".to_string(), "CA".to_string()]);
}

#[test]
fn state_windows_texas_connecticut_florida_oklahoma_maryland_washington() {
    run(&[
        // Texas: 09:00–21:00 Monday–Saturday, 12:00–21:00 Sunday (Austin is Central).
        case(
            "TX Sunday 09:00",
            "5125550142",
            None,
            utc(2026, 1, 18, 15, 0),
            Some(utc(2026, 1, 18, 18, 0)),
        ),
        case(
            "TX Sunday 12:00",
            "5125550142",
            None,
            utc(2026, 1, 18, 18, 0),
            None,
        ),
        case(
            "TX Sunday 21:30",
            "5125550142",
            None,
            utc(2026, 1, 19, 3, 30),
            Some(utc(2026, 1, 19, 15, 0)),
        ),
        case(
            "TX Saturday 09:00",
            "5125550142",
            None,
            utc(2026, 1, 17, 15, 0),
            None,
        ),
        case(
            "TX Thursday 08:30",
            "5125550142",
            None,
            utc(2026, 1, 15, 14, 30),
            Some(utc(2026, 1, 15, 15, 0)),
        ),
        case(
            "TX Thursday 20:30",
            "5125550142",
            None,
            utc(2026, 1, 16, 2, 30),
            None,
        ),
        // Connecticut: 09:00–20:00 (Eastern).
        case(
            "CT 08:30",
            "2035550100",
            None,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 14, 0)),
        ),
        case(
            "CT 20:30",
            "2035550100",
            None,
            utc(2026, 1, 16, 1, 30),
            Some(utc(2026, 1, 16, 14, 0)),
        ),
        case(
            "CT 19:30",
            "2035550100",
            None,
            utc(2026, 1, 16, 0, 30),
            None,
        ),
        // 20:30 local is past 20:00 in FL, OK, MD and WA; 19:30 is not.
        case(
            "FL 20:30",
            "3055550100",
            None,
            utc(2026, 1, 16, 1, 30),
            Some(utc(2026, 1, 16, 13, 0)),
        ),
        case(
            "OK 20:30",
            "4055550100",
            None,
            utc(2026, 1, 16, 2, 30),
            Some(utc(2026, 1, 16, 14, 0)),
        ),
        case(
            "MD 20:30",
            "4105550100",
            None,
            utc(2026, 1, 16, 1, 30),
            Some(utc(2026, 1, 16, 13, 0)),
        ),
        case(
            "WA 20:30",
            "2065550100",
            None,
            utc(2026, 1, 16, 4, 30),
            Some(utc(2026, 1, 16, 16, 0)),
        ),
        case(
            "WA 19:30",
            "2065550100",
            None,
            utc(2026, 1, 16, 3, 30),
            None,
        ),
        // No state row: the federal 08:00–21:00.
        case(
            "IL 20:30",
            "3125550100",
            None,
            utc(2026, 1, 16, 2, 30),
            None,
        ),
        case(
            "IL 07:30",
            "3125550100",
            None,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 14, 0)),
        ),
    ]);
}

#[test]
fn dst_days_and_zones_without_dst() {
    run(&[
        // 2026-03-08, spring forward (02:00 → 03:00): 08:00 EDT = 12:00 UTC, 08:00 PDT = 15:00.
        case(
            "NY spring forward",
            "2125550100",
            None,
            utc(2026, 3, 8, 7, 0),
            Some(utc(2026, 3, 8, 12, 0)),
        ),
        case(
            "LA spring forward",
            "2135550100",
            None,
            utc(2026, 3, 8, 7, 0),
            Some(utc(2026, 3, 8, 15, 0)),
        ),
        case(
            "NY spring forward, 20:59 EDT",
            "2125550100",
            None,
            utc(2026, 3, 9, 0, 59),
            None,
        ),
        case(
            "NY spring forward, 21:00 EDT",
            "2125550100",
            None,
            utc(2026, 3, 9, 1, 0),
            Some(utc(2026, 3, 9, 12, 0)),
        ),
        case(
            "850 spring forward, 07:30 CDT",
            "8505550100",
            None,
            utc(2026, 3, 8, 12, 30),
            Some(utc(2026, 3, 8, 13, 0)),
        ),
        // 2026-11-01, fall back (02:00 → 01:00): 08:00 EST = 13:00 UTC, 08:00 PST = 16:00.
        case(
            "NY fall back",
            "2125550100",
            None,
            utc(2026, 11, 1, 6, 30),
            Some(utc(2026, 11, 1, 13, 0)),
        ),
        case(
            "LA fall back",
            "2135550100",
            None,
            utc(2026, 11, 1, 6, 30),
            Some(utc(2026, 11, 1, 16, 0)),
        ),
        case(
            "850 fall back",
            "8505550100",
            None,
            utc(2026, 11, 1, 6, 30),
            Some(utc(2026, 11, 1, 14, 0)),
        ),
        // Arizona keeps MST all year: 08:00 is 15:00 UTC in January and in July.
        case(
            "AZ January 07:30",
            "6025550100",
            None,
            utc(2026, 1, 15, 14, 30),
            Some(utc(2026, 1, 15, 15, 0)),
        ),
        case(
            "AZ July 07:30",
            "6025550100",
            None,
            utc(2026, 7, 15, 14, 30),
            Some(utc(2026, 7, 15, 15, 0)),
        ),
        case(
            "Denver July 08:30",
            "3035550100",
            None,
            utc(2026, 7, 15, 14, 30),
            None,
        ),
        // 928 takes in the Navajo Nation, which does keep daylight time.
        case(
            "928 July",
            "9285550100",
            None,
            utc(2026, 7, 15, 13, 30),
            Some(utc(2026, 7, 15, 15, 0)),
        ),
        // Saskatchewan keeps CST all year too.
        case(
            "474 January 07:30",
            "4745550100",
            None,
            utc(2026, 1, 15, 13, 30),
            Some(utc(2026, 1, 15, 14, 0)),
        ),
    ]);
}

#[test]
fn federal_holidays_are_computed() {
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    for (date, holiday) in [
        (d(2026, 1, 1), true),
        (d(2026, 1, 19), true), // Martin Luther King, Jr.: third Monday of January
        (d(2026, 1, 12), false),
        (d(2026, 2, 16), true), // Washington's Birthday
        (d(2026, 5, 25), true), // Memorial Day: last Monday of May
        (d(2026, 5, 18), false),
        (d(2026, 6, 19), true), // Juneteenth
        (d(2026, 7, 3), true),  // Independence Day falls on a Saturday: observed Friday
        (d(2026, 7, 4), true),
        (d(2026, 7, 5), false),
        (d(2026, 9, 7), true),   // Labor Day
        (d(2026, 10, 12), true), // Columbus Day
        (d(2026, 11, 11), true), // Veterans Day
        (d(2026, 11, 26), true), // Thanksgiving: fourth Thursday
        (d(2026, 11, 27), false),
        (d(2026, 12, 25), true),
        (d(2027, 12, 24), true), // Christmas 2027 is a Saturday
        (d(2027, 12, 31), true), // New Year's Day 2028 is a Saturday: observed in 2027
        (d(2028, 7, 4), true),
        (d(2023, 1, 2), true), // New Year's Day 2023 was a Sunday: observed Monday
    ] {
        assert_eq!(is_federal_holiday(date), holiday, "{date}");
    }
}

#[test]
fn a_row_can_forbid_sundays_and_federal_holidays() {
    let table = "*\tmon-sun\t08:00\t21:00\tyes\t47 CFR 64.1200(c)(1)\n\
                 RI\tmon-sat\t09:00\t18:00\tyes\ttest row\n\
                 RI\tsun,holiday\t-\t-\tyes\ttest row\n";
    let rules = parse_rules(table).unwrap();
    assert!(rules[2].holidays && rules[2].window.is_none());
    let ri = locate(&phone("4015550100"), None, CHICAGO);
    let tx = locate(&phone("5125550142"), None, CHICAGO);
    let std = QuietPolicy::Standard;
    for (what, r, now, expect) in [
        // Thanksgiving 2026, 10:00 Eastern: closed all day; Friday 09:00.
        (
            "RI Thanksgiving",
            &ri,
            utc(2026, 11, 26, 15, 0),
            Some(utc(2026, 11, 27, 14, 0)),
        ),
        ("RI the day before", &ri, utc(2026, 11, 25, 15, 0), None),
        // Friday 3 July (the observed Fourth), Saturday the Fourth, Sunday: Monday 09:00 EDT.
        (
            "RI observed Fourth",
            &ri,
            utc(2026, 7, 3, 15, 0),
            Some(utc(2026, 7, 6, 13, 0)),
        ),
        // Other states' recipients are not held by Rhode Island's row.
        ("TX Thanksgiving", &tx, utc(2026, 11, 26, 16, 0), None),
    ] {
        assert_eq!(next_allowed_in(&rules, now, r, std), expect, "{what}");
    }
    // Strictest takes every row everywhere: a Texas number is held on Thanksgiving too.
    assert_eq!(
        next_allowed_in(
            &rules,
            utc(2026, 11, 26, 16, 0),
            &tx,
            QuietPolicy::Strictest
        ),
        Some(utc(2026, 11, 27, 15, 0))
    );
}

#[test]
fn strictest_is_the_narrowest_window_of_every_row_everywhere() {
    let strict = |what, number, now, expect| Case {
        policy: QuietPolicy::Strictest,
        ..case(what, number, None, now, expect)
    };
    run(&[
        // 09:00 (Texas, Connecticut) to 20:00 (Florida, …), and noon on Sundays (Texas).
        strict(
            "IL Thursday 08:30",
            "3125550100",
            utc(2026, 1, 15, 14, 30),
            Some(utc(2026, 1, 15, 15, 0)),
        ),
        strict(
            "IL Thursday 20:30",
            "3125550100",
            utc(2026, 1, 16, 2, 30),
            Some(utc(2026, 1, 16, 15, 0)),
        ),
        strict(
            "IL Sunday 10:00",
            "3125550100",
            utc(2026, 1, 18, 16, 0),
            Some(utc(2026, 1, 18, 18, 0)),
        ),
        strict(
            "WA Sunday 11:00",
            "2065550100",
            utc(2026, 1, 18, 19, 0),
            Some(utc(2026, 1, 18, 20, 0)),
        ),
        strict(
            "IL Monday 19:59",
            "3125550100",
            utc(2026, 1, 20, 1, 59),
            None,
        ),
    ]);
}

#[test]
fn every_rule_row_reads_and_unverified_rows_are_not_applied() {
    let rules = parse_rules(RULES_TSV).unwrap();
    assert_eq!(rules.len(), super::rules().len());
    assert!(rules.iter().all(|r| !r.source.trim().is_empty()));
    let applied = |region: &str| rules.iter().any(|r| r.region == region && r.verified);
    for region in ["*", "FL", "OK", "MD", "WA", "TX", "CT"] {
        assert!(applied(region), "{region} is applied");
    }
    let florida = rules.iter().find(|r| r.region == "FL").unwrap();
    assert!(florida.source.contains("501.616(6)"), "{}", florida.source);
    // Mississippi's reported Sunday ban is listed, not applied: 09:00 on a Sunday in Jackson.
    assert!(
        rules
            .iter()
            .any(|r| r.region == "MS" && !r.verified && r.window.is_none())
    );
    run(&[case(
        "MS Sunday 09:00",
        "6015550100",
        None,
        utc(2026, 1, 18, 15, 0),
        None,
    )]);
    assert_eq!(parse_rule("XX\tmon-fir\t08:00\t20:00\tyes\tsource"), None);
    assert_eq!(parse_rule("XX\tmon\t08:00\t20:00\tmaybe\tsource"), None);
}

#[test]
fn numbers_outside_the_table_use_the_tenant_zone() {
    let r = locate(&phone("+442079460958"), None, CHICAGO);
    assert_eq!(r.zones, vec![CHICAGO]);
}
