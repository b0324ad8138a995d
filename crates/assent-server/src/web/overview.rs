//! The Overview at `/`: what needs someone's attention (undecided reviews with their
//! deadlines, registrations not approved, held messages and why, failed sends, recent
//! opt-outs) and two charts drawn as SVG on the server — opt-ins and opt-outs per day over
//! 90 days, and the delivery rate — each with its numbers in a table beside it. Every
//! figure is grouped in the database (see `assent_store::shared::overview`), so the page
//! costs the same whatever the tenant's size.

use assent_core::consent::Topic;
use assent_core::gate::RegistrationStatus;
use assent_store::shared::overview::DayCounts;
use assent_store::{MessageStatus, Tenant};
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Duration, NaiveDate, Offset, Utc};

use askama::Template;

use super::session::SignedIn;
use super::{Chrome, Section, TimeEl, WebResult, phone_display, render, thousands, url_part};
use crate::AppState;

/// How many days the charts cover.
pub const CHART_DAYS: i64 = 90;
/// How many days back "recent" failed sends and opt-outs go.
const RECENT_DAYS: i64 = 7;
/// How many items each part of "needs attention" lists.
const LISTED: usize = 5;

/// The drawing area of a chart, in SVG user units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;

struct Bar {
    x: String,
    y: String,
    w: String,
    h: String,
    class: &'static str,
    title: String,
}

/// One chart: its bars, the scale's top label, and the rows of its table.
struct Chart {
    bars: Vec<Bar>,
    top: String,
    first_day: String,
    last_day: String,
    rows: Vec<Vec<String>>,
}

struct Phone {
    url: String,
    shown: String,
}

impl Phone {
    fn of(raw: &str) -> Phone {
        match assent_core::phone::E164::parse(raw) {
            Ok(p) => Phone {
                url: url_part(p.as_str()),
                shown: phone_display(&p),
            },
            Err(_) => Phone {
                url: url_part(raw),
                shown: raw.to_string(),
            },
        }
    }
}

struct OpenReview {
    phone: Phone,
    deadline: Option<TimeEl>,
}

struct Failed {
    phone: Phone,
    status: &'static str,
    reason: String,
    at: TimeEl,
}

struct OptOut {
    phone: Phone,
    what: &'static str,
    how: &'static str,
    at: TimeEl,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    chrome: Chrome<'a>,
    registrations: Vec<(&'static str, &'static str)>,
    review_count: String,
    reviews: Vec<OpenReview>,
    held: Vec<(String, String)>,
    failed_count: String,
    failed: Vec<Failed>,
    opt_out_count: String,
    opt_outs: Vec<OptOut>,
    calm: bool,
    consent: Chart,
    delivery: Chart,
    recent_days: i64,
}

/// The tenant's offset from UTC now, in milliseconds (days in the charts start at its
/// midnight; a clock change inside the 90 days moves that day's edge by an hour).
fn offset_ms(t: &Tenant, now: DateTime<Utc>) -> i64 {
    let tz: assent_core::Tz = t.time_zone;
    i64::from(now.with_timezone(&tz).offset().fix().local_minus_utc()) * 1000
}

fn date_of(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + Duration::days(day)
}

fn day_label(day: i64) -> String {
    date_of(day).format("%b %-d").to_string()
}

/// `days` spread over the chart's 90 slots ending on `today`; `value` gives each day's
/// bars (height 0–1, class, title), and `row` its table row (only days with any counts).
fn chart(
    days: &[DayCounts],
    today: i64,
    top: String,
    bars_of: impl Fn(&DayCounts) -> Vec<(f64, &'static str, String)>,
    row: impl Fn(&DayCounts) -> Vec<String>,
) -> Chart {
    let first = today - CHART_DAYS + 1;
    let slot = WIDTH / CHART_DAYS as f64;
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for d in days.iter().filter(|d| d.day >= first && d.day <= today) {
        let parts = bars_of(d);
        let n = parts.len().max(1) as f64;
        let w = (slot - 1.0) / n;
        for (i, (height, class, title)) in parts.into_iter().enumerate() {
            let h = (height.clamp(0.0, 1.0) * HEIGHT).max(if height > 0.0 { 1.0 } else { 0.0 });
            if h == 0.0 {
                continue;
            }
            let x = (d.day - first) as f64 * slot + 0.5 + i as f64 * w;
            bars.push(Bar {
                x: format!("{x:.1}"),
                y: format!("{:.1}", HEIGHT - h),
                w: format!("{w:.1}"),
                h: format!("{h:.1}"),
                class,
                title,
            });
        }
        rows.push(row(d));
    }
    rows.reverse();
    Chart {
        bars,
        top,
        first_day: day_label(first),
        last_day: day_label(today),
        rows,
    }
}

fn consent_chart(days: &[DayCounts], today: i64) -> Chart {
    let most = days
        .iter()
        .filter(|d| d.day > today - CHART_DAYS && d.day <= today)
        .map(|d| d.good.max(d.bad))
        .max()
        .unwrap_or(0)
        .max(1);
    chart(
        days,
        today,
        thousands(most),
        |d| {
            let label = day_label(d.day);
            vec![
                (
                    d.good as f64 / most as f64,
                    "in",
                    format!("{label}: {} opted in", thousands(d.good)),
                ),
                (
                    d.bad as f64 / most as f64,
                    "out",
                    format!("{label}: {} opted out", thousands(d.bad)),
                ),
            ]
        },
        |d| vec![day_label(d.day), thousands(d.good), thousands(d.bad)],
    )
}

fn rate(d: &DayCounts) -> Option<f64> {
    let all = d.good + d.bad;
    (all > 0).then(|| d.good as f64 / all as f64)
}

fn delivery_chart(days: &[DayCounts], today: i64) -> Chart {
    chart(
        days,
        today,
        "100%".into(),
        |d| match rate(d) {
            Some(r) => vec![(
                r,
                "rate",
                format!(
                    "{}: {:.1}% delivered ({} of {})",
                    day_label(d.day),
                    r * 100.0,
                    thousands(d.good),
                    thousands(d.good + d.bad)
                ),
            )],
            None => Vec::new(),
        },
        |d| {
            vec![
                day_label(d.day),
                thousands(d.good),
                thousands(d.bad),
                rate(d)
                    .map(|r| format!("{:.1}%", r * 100.0))
                    .unwrap_or_default(),
            ]
        },
    )
}

fn topic_label(t: Topic) -> &'static str {
    match t {
        Topic::Transactional => "All texts",
        Topic::Marketing => "Marketing texts",
        Topic::JobNotifications => "Job notifications",
        Topic::MarketingUpdates => "Marketing updates",
    }
}

fn failed_label(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Undelivered => "Not delivered",
        _ => "Failed",
    }
}

pub async fn overview(user: SignedIn, State(app): State<AppState>) -> WebResult<Response> {
    let t = &user.tenant;
    let now = app.clock.now();
    let offset = offset_ms(t, now);
    let today = (now.timestamp_millis() + offset).div_euclid(86_400_000);
    let chart_from =
        DateTime::<Utc>::from_timestamp_millis((today - CHART_DAYS + 1) * 86_400_000 - offset)
            .unwrap_or(now);
    let recent_from = now - Duration::days(RECENT_DAYS);
    let attention = app.store.attention(&t.id, recent_from, LISTED).await?;
    let consent = app.store.consent_by_day(&t.id, chart_from, offset).await?;
    let delivery = app.store.delivery_by_day(&t.id, chart_from, offset).await?;

    let registrations: Vec<(&'static str, &'static str)> = [
        ("Register for Texting", user.registrations.texting_status()),
        (
            "Marketing Registration",
            user.registrations.marketing_status(),
        ),
    ]
    .into_iter()
    .filter(|(_, s)| *s != RegistrationStatus::Approved)
    .map(|(name, s)| (name, super::registration_label(s)))
    .collect();
    let reviews: Vec<OpenReview> = attention
        .open_reviews
        .iter()
        .map(|r| OpenReview {
            phone: Phone::of(r.phone.as_str()),
            deadline: r.deadline.map(|d| TimeEl::new(t, d)),
        })
        .collect();
    let held: Vec<(String, String)> = attention
        .held_by_reason
        .iter()
        .map(|(reason, n)| {
            let words = match reason.as_deref() {
                Some(code) => crate::words::reason(code),
                None => "waiting for its time".to_string(),
            };
            (words, thousands(*n))
        })
        .collect();
    let failed: Vec<Failed> = attention
        .failed
        .iter()
        .map(|f| Failed {
            phone: Phone::of(&f.phone),
            status: failed_label(f.status),
            reason: f
                .reason
                .as_deref()
                .map(crate::words::reason)
                .unwrap_or_default(),
            at: TimeEl::new(t, f.at),
        })
        .collect();
    let opt_outs: Vec<OptOut> = attention
        .opt_outs
        .iter()
        .map(|o| OptOut {
            phone: Phone::of(&o.phone),
            what: topic_label(o.channel),
            how: crate::words::source(o.source),
            at: TimeEl::new(t, o.at),
        })
        .collect();
    let calm = registrations.is_empty()
        && attention.open_review_count == 0
        && held.is_empty()
        && attention.failed_count == 0
        && attention.opt_out_count == 0;
    Ok(render(&OverviewPage {
        chrome: Chrome::new(&user, "Overview", Section::Overview),
        registrations,
        review_count: count_text(attention.open_review_count),
        reviews,
        held,
        failed_count: count_text(attention.failed_count),
        failed,
        opt_out_count: count_text(attention.opt_out_count),
        opt_outs,
        calm,
        consent: consent_chart(&consent, today),
        delivery: delivery_chart(&delivery, today),
        recent_days: RECENT_DAYS,
    }))
}

/// A capped count in words: "10,000+" past the cap.
fn count_text(n: u64) -> String {
    if n > assent_store::page::COUNT_CAP {
        format!("{}+", thousands(assent_store::page::COUNT_CAP))
    } else {
        thousands(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_sit_in_their_days_slot_scaled_to_the_busiest_day() {
        let today = 20_000;
        // Oldest first, as the store answers.
        let days = [
            // Outside the 90 days: not drawn.
            DayCounts {
                day: today - 90,
                good: 9,
                bad: 9,
            },
            DayCounts {
                day: today - 89,
                good: 1,
                bad: 0,
            },
            DayCounts {
                day: today,
                good: 4,
                bad: 2,
            },
        ];
        let c = consent_chart(&days, today);
        assert_eq!(c.top, "4", "scaled to the days drawn");
        assert_eq!(c.rows.len(), 2, "days with counts, newest first");
        assert_eq!(c.rows[0][1], "4");
        let c = consent_chart(&days[1..], today);
        assert_eq!(c.top, "4");
        // Today's opt-ins fill the height; its opt-outs half of it; the first day's bar
        // starts at the left edge.
        let tall = c
            .bars
            .iter()
            .find(|b| b.title.ends_with("4 opted in"))
            .unwrap();
        assert_eq!(tall.h, "180.0");
        assert_eq!(tall.y, "0.0");
        let half = c
            .bars
            .iter()
            .find(|b| b.title.ends_with("2 opted out"))
            .unwrap();
        assert_eq!(half.h, "90.0");
        assert!(c.bars.iter().any(|b| b.x == "0.5"));
        assert_eq!(c.bars.len(), 3, "a zero draws no bar");
    }

    #[test]
    fn the_delivery_rate_is_delivered_over_settled() {
        let d = DayCounts {
            day: 1,
            good: 3,
            bad: 1,
        };
        assert_eq!(rate(&d), Some(0.75));
        assert_eq!(rate(&DayCounts::default()), None);
        let c = delivery_chart(&[d], 1);
        assert_eq!(c.rows[0], ["Jan 2", "3", "1", "75.0%"]);
        assert_eq!(c.bars[0].h, "135.0");
    }
}
