use super::*;
use crate::phone::E164;
use crate::quiet_hours::locate;
use chrono::TimeZone;

fn noon() -> DateTime<Utc> {
    // 12:00 in Austin (CST).
    Utc.with_ymd_and_hms(2026, 1, 15, 18, 0, 0).unwrap()
}

struct Case {
    purpose: Purpose,
    texting: RegistrationStatus,
    marketing_reg: RegistrationStatus,
    valid: bool,
    consent: ConsentState,
    toggles: Toggles,
    now: DateTime<Utc>,
    recent: Vec<DateTime<Utc>>,
    stage: Stage,
}

impl Case {
    fn new(purpose: Purpose) -> Self {
        Case {
            purpose,
            texting: RegistrationStatus::Approved,
            marketing_reg: RegistrationStatus::Approved,
            valid: true,
            consent: ConsentState::default(),
            toggles: Toggles {
                on_a_record: true,
                job_notifications: true,
                marketing_updates: true,
            },
            now: noon(),
            recent: vec![],
            stage: Stage::Queue,
        }
    }
    fn decide(&self) -> Decision {
        let r = locate(
            &E164::parse("5125550142").unwrap(),
            None,
            chrono_tz::America::Chicago,
        );
        decide(&GateInput {
            purpose: self.purpose,
            stage: self.stage,
            texting: self.texting,
            marketing_registration: self.marketing_reg,
            valid_number: self.valid,
            consent: &self.consent,
            toggles: self.toggles,
            now: self.now,
            recipient: &r,
            quiet_hours: QuietPolicy::Standard,
            recent_marketing: &self.recent,
            marketing_cap_per_day: 3,
        })
    }
}

fn opted_in() -> ConsentState {
    ConsentState {
        marketing: MarketingStatus::OptedIn,
        ..Default::default()
    }
}

#[test]
fn marketing_to_a_number_without_consent_names_the_consent_before_registration() {
    // conformance/smoke.py: only texting approved, marketing send → no_marketing_consent.
    let mut c = Case::new(Purpose::Marketing);
    c.marketing_reg = RegistrationStatus::NotSubmitted;
    assert_eq!(c.decide(), Decision::Block(Reason::NoMarketingConsent));
    c.consent.marketing = MarketingStatus::OptedOut;
    assert_eq!(c.decide(), Decision::Block(Reason::OptedOut));
}

#[test]
fn nothing_leaves_before_texting_registration_is_approved() {
    for p in [
        Purpose::JobNotification,
        Purpose::Marketing,
        Purpose::AutoReply,
    ] {
        let mut c = Case::new(p);
        c.texting = RegistrationStatus::Pending;
        assert_eq!(c.decide(), Decision::Block(Reason::TextingNotRegistered));
    }
}

#[test]
fn marketing_and_opt_in_requests_need_marketing_registration() {
    for p in [
        Purpose::Marketing,
        Purpose::OptInRequest {
            customer_asked: true,
        },
    ] {
        let mut c = Case::new(p);
        c.consent = opted_in();
        c.marketing_reg = RegistrationStatus::Rejected;
        assert_eq!(c.decide(), Decision::Block(Reason::MarketingNotRegistered));
    }
    let mut c = Case::new(Purpose::OptInRequest {
        customer_asked: false,
    });
    c.marketing_reg = RegistrationStatus::Pending;
    assert_eq!(c.decide(), Decision::Block(Reason::MarketingNotRegistered));
    let mut c = Case::new(Purpose::JobNotification);
    c.marketing_reg = RegistrationStatus::NotSubmitted;
    assert_eq!(c.decide(), Decision::Allow);
}

#[test]
fn job_notification_needs_job_notifications_on() {
    let mut c = Case::new(Purpose::JobNotification);
    assert_eq!(c.decide(), Decision::Allow);
    c.toggles.job_notifications = false;
    assert_eq!(c.decide(), Decision::Block(Reason::JobNotificationsOff));
}

#[test]
fn transactional_campaign_needs_both_toggles() {
    let mut c = Case::new(Purpose::TransactionalCampaign);
    c.toggles.marketing_updates = false;
    assert_eq!(c.decide(), Decision::Block(Reason::MarketingUpdatesOff));
    c.toggles.job_notifications = false;
    assert_eq!(c.decide(), Decision::Block(Reason::JobNotificationsOff));
}

#[test]
fn missed_call_needs_no_record_but_respects_one() {
    let mut c = Case::new(Purpose::MissedCall);
    c.toggles = Toggles::default();
    assert_eq!(c.decide(), Decision::Allow);
    c.toggles.on_a_record = true;
    assert_eq!(c.decide(), Decision::Block(Reason::JobNotificationsOff));
}

#[test]
fn transactional_opt_out_blocks_transactional_but_not_replies() {
    for p in [
        Purpose::JobNotification,
        Purpose::MissedCall,
        Purpose::TransactionalCampaign,
    ] {
        let mut c = Case::new(p);
        c.consent.transactional_opted_out = true;
        c.toggles = Toggles::default();
        assert_eq!(c.decide(), Decision::Block(Reason::OptedOut), "{p:?}");
    }
    let mut c = Case::new(Purpose::AutoReply);
    c.consent.transactional_opted_out = true;
    c.consent.marketing = MarketingStatus::OptedOut;
    assert_eq!(c.decide(), Decision::Allow);
}

#[test]
fn marketing_needs_opted_in() {
    let mut c = Case::new(Purpose::Marketing);
    assert_eq!(c.decide(), Decision::Block(Reason::NoMarketingConsent));
    c.consent.marketing = MarketingStatus::Pending;
    assert_eq!(c.decide(), Decision::Block(Reason::NoMarketingConsent));
    c.consent.marketing = MarketingStatus::OptedOut;
    assert_eq!(c.decide(), Decision::Block(Reason::OptedOut));
    c.consent = opted_in();
    assert_eq!(c.decide(), Decision::Allow);
}

#[test]
fn marketing_ignores_toggles() {
    let mut c = Case::new(Purpose::Marketing);
    c.consent = opted_in();
    c.toggles = Toggles::default();
    assert_eq!(c.decide(), Decision::Allow);
}

#[test]
fn invalid_number_comes_after_registration_and_before_consent() {
    let mut c = Case::new(Purpose::Marketing);
    c.valid = false;
    assert_eq!(c.decide(), Decision::Block(Reason::InvalidNumber));
    c.marketing_reg = RegistrationStatus::Pending;
    assert_eq!(c.decide(), Decision::Block(Reason::MarketingNotRegistered));
}

#[test]
fn opt_in_requests_are_refused_when_opted_in_out_or_throttled() {
    let req = Purpose::OptInRequest {
        customer_asked: false,
    };
    let mut c = Case::new(req);
    assert_eq!(c.decide(), Decision::Allow);
    c.consent = opted_in();
    assert_eq!(c.decide(), Decision::Block(Reason::AlreadyOptedIn));
    c.consent.marketing = MarketingStatus::OptedOut;
    assert_eq!(c.decide(), Decision::Block(Reason::OptedOut));
    c.consent = ConsentState {
        marketing: MarketingStatus::Pending,
        pending_since: Some(noon() - Duration::hours(2)),
        unanswered_requests: vec![noon() - Duration::hours(2)],
        ..Default::default()
    };
    assert_eq!(c.decide(), Decision::Block(Reason::OptInThrottled));
    // At hand-off a request is not throttled by itself.
    c.stage = Stage::Handoff;
    assert_eq!(c.decide(), Decision::Allow);
    c.stage = Stage::Queue;
    c.consent.pending_since = Some(noon() - Duration::hours(25));
    assert_eq!(c.decide(), Decision::Allow);
    c.consent.unanswered_requests = vec![
        noon() - Duration::days(20),
        noon() - Duration::days(10),
        noon() - Duration::hours(25),
    ];
    assert_eq!(c.decide(), Decision::Block(Reason::OptInThrottled));
}

#[test]
fn quiet_hours_hold_marketing_and_business_requests_but_not_job_news_or_form_requests() {
    // 06:00 in Austin; Texas opens at 09:00 (Tex. Bus. & Com. Code § 301.051).
    let early = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
    let nine = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
    let mut c = Case::new(Purpose::Marketing);
    c.consent = opted_in();
    c.now = early;
    assert_eq!(
        c.decide(),
        Decision::Defer {
            reason: Reason::QuietHours,
            until: nine
        }
    );
    for p in [
        Purpose::TransactionalCampaign,
        Purpose::OptInRequest {
            customer_asked: false,
        },
    ] {
        let mut c = Case::new(p);
        c.now = early;
        assert!(
            matches!(
                c.decide(),
                Decision::Defer {
                    reason: Reason::QuietHours,
                    ..
                }
            ),
            "{p:?}"
        );
    }
    for p in [
        Purpose::JobNotification,
        Purpose::MissedCall,
        Purpose::AutoReply,
        Purpose::OptInRequest {
            customer_asked: true,
        },
    ] {
        let mut c = Case::new(p);
        c.now = early;
        assert_eq!(c.decide(), Decision::Allow, "{p:?}");
    }
}

#[test]
fn a_block_always_wins_over_a_deferral() {
    let mut c = Case::new(Purpose::Marketing);
    c.now = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
    assert_eq!(c.decide(), Decision::Block(Reason::NoMarketingConsent));
}

#[test]
fn frequency_cap_defers_the_fourth_marketing_text_in_24_hours() {
    let mut c = Case::new(Purpose::Marketing);
    c.consent = opted_in();
    let first = noon() - Duration::hours(20);
    c.recent = vec![
        first,
        noon() - Duration::hours(5),
        noon() - Duration::hours(1),
    ];
    assert_eq!(
        c.decide(),
        Decision::Defer {
            reason: Reason::FrequencyCap,
            until: first + Duration::hours(24)
        }
    );
    c.recent[0] = noon() - Duration::hours(25);
    assert_eq!(c.decide(), Decision::Allow);
}
