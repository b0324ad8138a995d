use super::*;
use crate::keyword::classify;
use chrono::TimeZone;
use proptest::prelude::*;

const POLICY: Policy = Policy {
    stop_revokes_all: false,
    provider_answers_keywords: false,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

fn inbound(state: &ConsentState, thread: Thread, text: &str) -> Transition {
    inbound_at(state, thread, text, t0(), POLICY)
}

fn inbound_at(
    state: &ConsentState,
    thread: Thread,
    text: &str,
    now: DateTime<Utc>,
    policy: Policy,
) -> Transition {
    let r = crate::keyword::read(text);
    apply(
        state,
        &Event::Inbound {
            thread,
            classified: &r.classified,
            lang: r.lang,
            provider_answered: false,
            provider_keyword: None,
            request_sent: true,
        },
        policy,
        now,
    )
}

fn with(marketing: MarketingStatus) -> ConsentState {
    ConsentState {
        marketing,
        pending_since: (marketing == MarketingStatus::Pending).then(t0),
        ..Default::default()
    }
}

#[test]
fn stop_on_transactional_thread_opts_out_of_everything() {
    let t = inbound(
        &with(MarketingStatus::OptedIn),
        Thread::Transactional,
        "STOP",
    );
    assert!(t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert_eq!(t.reply, Some(ReplyKind::OptOutAll));
    assert_eq!(t.changes.len(), 2);
    assert_eq!(t.changes[0].rule.as_deref(), Some("STOP"));
}

#[test]
fn stop_on_marketing_thread_keeps_transactional() {
    let t = inbound(&with(MarketingStatus::OptedIn), Thread::Marketing, "stop");
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert_eq!(t.reply, Some(ReplyKind::OptOutMarketing));
}

#[test]
fn stop_revokes_all_setting_makes_a_marketing_stop_total_and_start_undoes_it() {
    let policy = Policy {
        stop_revokes_all: true,
        ..POLICY
    };
    let t = inbound_at(
        &with(MarketingStatus::OptedIn),
        Thread::Marketing,
        "STOP",
        t0(),
        policy,
    );
    assert!(t.state.transactional_opted_out);
    assert_eq!(t.reply, Some(ReplyKind::OptOutAll));
    let t = inbound_at(&t.state, Thread::Marketing, "START", t0(), policy);
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
}

#[test]
fn restart_after_transactional_stop_leaves_marketing_needing_a_new_opt_in() {
    let t = inbound(
        &with(MarketingStatus::OptedIn),
        Thread::Transactional,
        "STOP",
    );
    let t = inbound(&t.state, Thread::Transactional, "Restart");
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::None);
    assert_eq!(t.reply, Some(ReplyKind::Resumed));
}

#[test]
fn marketing_stop_of_its_own_survives_a_transactional_restart() {
    let t = inbound(&with(MarketingStatus::OptedIn), Thread::Marketing, "STOP");
    let t = inbound(&t.state, Thread::Transactional, "STOP");
    let t = inbound(&t.state, Thread::Transactional, "ENROLL");
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
}

#[test]
fn restart_on_marketing_thread_opts_in_again() {
    let t = inbound(&with(MarketingStatus::OptedIn), Thread::Marketing, "STOP");
    let t = inbound(&t.state, Thread::Marketing, "UNSTOP");
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
    assert_eq!(t.reply, Some(ReplyKind::OptInConfirmation));
}

#[test]
fn yes_confirms_a_pending_request_on_the_marketing_thread_only() {
    let t = inbound(&with(MarketingStatus::Pending), Thread::Marketing, "Yes");
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
    assert_eq!(t.reply, Some(ReplyKind::OptInConfirmation));
    assert!(t.state.unanswered_requests.is_empty());

    let t = inbound(
        &with(MarketingStatus::Pending),
        Thread::Transactional,
        "Yes",
    );
    assert_eq!(t.state.marketing, MarketingStatus::Pending);
    assert_eq!(t.reply, None);
    assert!(t.changes.is_empty());
}

#[test]
fn yes_without_a_request_is_an_ordinary_message() {
    let t = inbound(&with(MarketingStatus::None), Thread::Marketing, "YES");
    assert_eq!(t.state.marketing, MarketingStatus::None);
    assert!(t.changes.is_empty());
    assert_eq!(t.reply, None);
}

#[test]
fn y_is_not_yes() {
    let t = inbound(&with(MarketingStatus::Pending), Thread::Marketing, "Y");
    assert_eq!(t.state.marketing, MarketingStatus::Pending);
}

#[test]
fn yes_on_an_opted_out_transactional_thread_resumes_like_start() {
    let t = inbound(&with(MarketingStatus::None), Thread::Transactional, "STOP");
    let t = inbound(&t.state, Thread::Transactional, "yes");
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.reply, Some(ReplyKind::Resumed));
}

#[test]
fn yes_on_an_opted_out_marketing_thread_resumes_marketing() {
    let t = inbound(&with(MarketingStatus::OptedIn), Thread::Marketing, "STOP");
    let t = inbound(&t.state, Thread::Marketing, "yes");
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
}

#[test]
fn link_phrase_opts_in_on_the_marketing_thread_from_any_state() {
    for start in [
        MarketingStatus::None,
        MarketingStatus::Pending,
        MarketingStatus::OptedOut,
    ] {
        let t = inbound(&with(start), Thread::Marketing, crate::keyword::LINK_PHRASE);
        assert_eq!(t.state.marketing, MarketingStatus::OptedIn, "{start:?}");
        assert_eq!(t.changes.last().unwrap().source, Source::OptInLink);
        assert_eq!(t.reply, Some(ReplyKind::OptInConfirmation));
    }
    let t = inbound(
        &with(MarketingStatus::None),
        Thread::Transactional,
        crate::keyword::LINK_PHRASE,
    );
    assert_eq!(t.state.marketing, MarketingStatus::None);
}

#[test]
fn shared_number_acts_as_transactional_for_stop_and_marketing_for_yes() {
    let t = inbound(&with(MarketingStatus::Pending), Thread::Shared, "YES");
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
    let t = inbound(&t.state, Thread::Shared, "STOP");
    assert!(t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert_eq!(t.reply, Some(ReplyKind::OptOutAll));
    let t = inbound(&t.state, Thread::Shared, "START");
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::None);
}

#[test]
fn repeated_stop_is_recorded_but_not_answered_within_24_hours() {
    let t1 = inbound(&ConsentState::default(), Thread::Transactional, "STOP");
    assert!(t1.reply.is_some());
    let t2 = inbound_at(
        &t1.state,
        Thread::Transactional,
        "stop",
        t0() + Duration::hours(2),
        POLICY,
    );
    assert_eq!(t2.reply, None);
    assert_eq!(t2.changes.len(), 2, "a second STOP is evidence too");
    assert_eq!(t2.changes[0].old_state, t2.changes[0].new_state);
    let t3 = inbound_at(
        &t2.state,
        Thread::Transactional,
        "STOP",
        t0() + Duration::hours(25),
        POLICY,
    );
    assert_eq!(t3.reply, Some(ReplyKind::OptOutAll));
}

#[test]
fn repeated_yes_is_recorded_but_not_answered_within_24_hours() {
    let t1 = inbound(&with(MarketingStatus::Pending), Thread::Marketing, "YES");
    let t2 = inbound_at(
        &t1.state,
        Thread::Marketing,
        "yes",
        t0() + Duration::hours(1),
        POLICY,
    );
    assert_eq!(t2.reply, None);
    assert_eq!(t2.changes.len(), 1);
}

#[test]
fn provider_answered_keywords_change_state_without_a_second_reply() {
    let c = classify("STOP");
    let t = apply(
        &ConsentState::default(),
        &Event::Inbound {
            thread: Thread::Transactional,
            classified: &c,
            lang: None,
            provider_answered: true,
            provider_keyword: Some(ProviderKeyword::Stop),
            request_sent: true,
        },
        POLICY,
        t0(),
    );
    assert!(t.state.transactional_opted_out);
    assert_eq!(t.reply, None);
}

#[test]
fn keyword_replies_by_provider_answers_whatever_came_without_optouttype() {
    // `OptOutType` is the only sign the provider answered: a keyword without it (REMOVE,
    // ARRET, OPT OUT, STOP ALL, the Spanish words, or STOP itself) gets our reply.
    let policy = Policy {
        provider_answers_keywords: true,
        ..POLICY
    };
    for word in [
        "STOP", "REMOVE", "ARRET", "OPT OUT", "STOP ALL", "PARAR", "BAJA",
    ] {
        let t = inbound_at(
            &ConsentState::default(),
            Thread::Transactional,
            word,
            t0(),
            policy,
        );
        assert!(t.state.transactional_opted_out, "{word}");
        assert_eq!(t.reply, Some(ReplyKind::OptOutAll), "{word}");
    }
    let t = inbound_at(
        &ConsentState::default(),
        Thread::Transactional,
        "please stop texting me",
        t0(),
        policy,
    );
    assert_eq!(t.reply, Some(ReplyKind::OptOutAll));
    let t = inbound_at(
        &with(MarketingStatus::Pending),
        Thread::Marketing,
        "YES",
        t0(),
        policy,
    );
    assert_eq!(t.reply, Some(ReplyKind::OptInConfirmation));
    let t = inbound_at(
        &ConsentState::default(),
        Thread::Marketing,
        "HELP",
        t0(),
        policy,
    );
    assert_eq!(t.reply, Some(ReplyKind::Help));
}

fn provider_inbound(
    state: &ConsentState,
    thread: Thread,
    text: &str,
    keyword: Option<ProviderKeyword>,
) -> Transition {
    let r = crate::keyword::read(text);
    apply(
        state,
        &Event::Inbound {
            thread,
            classified: &r.classified,
            lang: r.lang,
            provider_answered: keyword.is_some(),
            provider_keyword: keyword,
            request_sent: true,
        },
        POLICY,
        t0(),
    )
}

#[test]
fn a_provider_stop_blocks_the_thread_until_its_start() {
    let t = provider_inbound(
        &with(MarketingStatus::OptedIn),
        Thread::Marketing,
        "STOP",
        Some(ProviderKeyword::Stop),
    );
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert_eq!(t.reply, None, "the provider answered");
    assert!(t.state.provider_blocks(Thread::Marketing));
    assert!(!t.state.provider_blocks(Thread::Transactional));

    // YES and the link phrase change nothing there and get the instruction.
    for text in ["YES", "Sign me up for offers!"] {
        let r = crate::keyword::read(text);
        let classified = if text == "YES" {
            r.classified.clone()
        } else {
            crate::keyword::Classified::LinkPhrase
        };
        let y = apply(
            &t.state,
            &Event::Inbound {
                thread: Thread::Marketing,
                classified: &classified,
                lang: None,
                provider_answered: false,
                provider_keyword: None,
                request_sent: true,
            },
            POLICY,
            t0(),
        );
        assert_eq!(y.state.marketing, MarketingStatus::OptedOut, "{text}");
        assert!(y.changes.is_empty(), "{text}");
        assert_eq!(y.reply, Some(ReplyKind::ProviderBlocked), "{text}");
    }

    // The provider's START lifts the block and opts back in; YES then works again.
    let s = provider_inbound(
        &t.state,
        Thread::Marketing,
        "START",
        Some(ProviderKeyword::Start),
    );
    assert!(!s.state.provider_blocks(Thread::Marketing));
    assert_eq!(s.state.marketing, MarketingStatus::OptedIn);
    assert_eq!(s.reply, None);
}

#[test]
fn a_21610_blocks_the_thread_it_came_from() {
    let t = apply(
        &with(MarketingStatus::OptedIn),
        &Event::ProviderStopList {
            thread: Thread::Marketing,
        },
        POLICY,
        t0(),
    );
    assert!(t.state.provider_blocks(Thread::Marketing));
    let y = inbound(&t.state, Thread::Marketing, "YES");
    assert_eq!(y.reply, Some(ReplyKind::ProviderBlocked));
    assert_eq!(y.state.marketing, MarketingStatus::OptedOut);
    // A shared number: its thread replies from the transactional sender.
    let t = apply(
        &ConsentState::default(),
        &Event::ProviderStopList {
            thread: Thread::Shared,
        },
        POLICY,
        t0(),
    );
    assert!(t.state.provider_blocks(Thread::Shared));
    assert!(t.state.provider_blocks(Thread::Transactional));
}

#[test]
fn free_text_revocation_is_a_stop_with_its_rule_as_evidence() {
    let t = inbound(
        &with(MarketingStatus::OptedIn),
        Thread::Marketing,
        "please stop texting me",
    );
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert_eq!(t.changes[0].source, Source::FreeText);
    assert_eq!(t.changes[0].rule.as_deref(), Some("stop_contacting_me"));
}

#[test]
fn ambiguous_text_goes_to_review_and_changes_nothing() {
    let t = inbound(
        &with(MarketingStatus::OptedIn),
        Thread::Marketing,
        "can you stop by Tuesday?",
    );
    assert!(t.review);
    assert!(t.changes.is_empty());
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
}

#[test]
fn help_replies_without_changing_anything() {
    let t = inbound(&with(MarketingStatus::OptedOut), Thread::Marketing, "HELP");
    assert_eq!(t.reply, Some(ReplyKind::Help));
    assert!(t.changes.is_empty());
}

#[test]
fn provider_stop_list_acts_as_a_stop_in_that_thread_without_a_reply() {
    let t = apply(
        &with(MarketingStatus::OptedIn),
        &Event::ProviderStopList {
            thread: Thread::Marketing,
        },
        POLICY,
        t0(),
    );
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.reply, None);
    assert_eq!(t.changes[0].source, Source::Carrier);
    assert_eq!(
        t.changes[0].rule.as_deref(),
        Some("provider_stop_list_21610")
    );
    // Under revoke-all, the marketing sender's STOP list stops everything, as a STOP would.
    let revoke_all = Policy {
        stop_revokes_all: true,
        ..POLICY
    };
    let t = apply(
        &with(MarketingStatus::OptedIn),
        &Event::ProviderStopList {
            thread: Thread::Marketing,
        },
        revoke_all,
        t0(),
    );
    assert!(t.state.transactional_opted_out);
    // From the transactional sender: everything.
    let t = apply(
        &with(MarketingStatus::OptedIn),
        &Event::ProviderStopList {
            thread: Thread::Transactional,
        },
        POLICY,
        t0(),
    );
    assert!(t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
}

#[test]
fn wrong_number_stops_everything_from_any_thread_and_flags_the_phone() {
    let t = inbound(
        &with(MarketingStatus::OptedIn),
        Thread::Marketing,
        "Wrong number",
    );
    assert!(t.state.transactional_opted_out);
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert_eq!(t.state.possibly_reassigned, Some(t0()));
    assert_eq!(t.reply, Some(ReplyKind::OptOutAll));
    assert_eq!(t.changes[0].source, Source::FreeText);
    assert_eq!(t.changes[0].rule.as_deref(), Some("wrong_number"));
}

#[test]
fn start_from_none_on_the_marketing_thread_asks_for_the_disclosure_not_consent() {
    for word in ["START", "ENROLL", "UNSTOP", "comenzar"] {
        let t = inbound(&ConsentState::default(), Thread::Marketing, word);
        assert_eq!(t.state.marketing, MarketingStatus::None, "{word}");
        assert!(t.start_opt_in, "{word}");
        assert_eq!(t.reply, None);
        assert!(t.changes.is_empty());
    }
    // From opted_out it is the seed's resume.
    let t = inbound(&with(MarketingStatus::OptedOut), Thread::Marketing, "START");
    assert_eq!(t.state.marketing, MarketingStatus::OptedIn);
    assert!(!t.start_opt_in);
}

#[test]
fn yes_counts_only_once_the_request_was_handed_to_the_carrier() {
    let pending = apply(
        &ConsentState::default(),
        &Event::OptInRequested {
            source: Source::Api,
            request: "req-1",
        },
        POLICY,
        t0(),
    )
    .state;
    assert_eq!(pending.pending_request.as_deref(), Some("req-1"));
    let c = classify("YES");
    let held = apply(
        &pending,
        &Event::Inbound {
            thread: Thread::Marketing,
            classified: &c,
            lang: Some(Lang::En),
            provider_answered: false,
            provider_keyword: None,
            request_sent: false,
        },
        POLICY,
        t0() + Duration::minutes(5),
    );
    assert_eq!(held.state.marketing, MarketingStatus::Pending);
    assert!(held.send_request_now);
    assert!(!held.written_consent);
    assert_eq!(held.reply, None);
    let sent = apply(
        &held.state,
        &Event::Inbound {
            thread: Thread::Marketing,
            classified: &c,
            lang: Some(Lang::En),
            provider_answered: false,
            provider_keyword: None,
            request_sent: true,
        },
        POLICY,
        t0() + Duration::minutes(9),
    );
    assert_eq!(sent.state.marketing, MarketingStatus::OptedIn);
    assert!(sent.written_consent);
    assert_eq!(sent.state.last_opt_in, Some(t0() + Duration::minutes(9)));
    assert_eq!(sent.state.pending_request, None);
}

#[test]
fn a_spanish_keyword_sets_the_phone_language_until_an_english_one() {
    let t = inbound(&ConsentState::default(), Thread::Transactional, "PARAR");
    assert_eq!(t.state.language, Lang::Es);
    assert!(t.state.transactional_opted_out);
    let t2 = inbound(&t.state, Thread::Transactional, "gracias por todo");
    assert_eq!(t2.state.language, Lang::Es);
    let t3 = inbound(&t2.state, Thread::Transactional, "START");
    assert_eq!(t3.state.language, Lang::En);
}

#[test]
fn recorded_opt_outs_follow_their_scope_and_old_imports_change_nothing() {
    let opted_in = inbound(&with(MarketingStatus::Pending), Thread::Marketing, "YES").state;
    let t = apply(
        &opted_in,
        &Event::RecordedOptOut {
            scope: Scope::Marketing,
            source: Source::CustomerRecord,
            rule: "phone_call",
            at: None,
        },
        POLICY,
        t0() + Duration::hours(1),
    );
    assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
    assert!(!t.state.transactional_opted_out);
    assert_eq!(t.changes[0].rule.as_deref(), Some("phone_call"));

    let all = apply(
        &opted_in,
        &Event::RecordedOptOut {
            scope: Scope::All,
            source: Source::Api,
            rule: "letter",
            at: None,
        },
        POLICY,
        t0() + Duration::hours(1),
    );
    assert!(all.state.transactional_opted_out);
    assert_eq!(all.state.marketing, MarketingStatus::OptedOut);

    // An imported opt-out older than the YES given here is evidence only.
    let old = apply(
        &opted_in,
        &Event::RecordedOptOut {
            scope: Scope::All,
            source: Source::Import,
            rule: "import",
            at: Some(t0() - Duration::days(400)),
        },
        POLICY,
        t0() + Duration::hours(1),
    );
    assert_eq!(old.state.marketing, MarketingStatus::OptedIn);
    assert!(!old.state.transactional_opted_out);
    assert_eq!(old.changes.len(), 2);
    assert!(old.changes.iter().all(|c| c.old_state == c.new_state));
    assert_eq!(old.changes[0].at, Some(t0() - Duration::days(400)));
    // A newer one opts out, dated when it happened.
    let new = apply(
        &opted_in,
        &Event::RecordedOptOut {
            scope: Scope::All,
            source: Source::Import,
            rule: "import",
            at: Some(t0() + Duration::minutes(30)),
        },
        POLICY,
        t0() + Duration::hours(1),
    );
    assert!(new.state.transactional_opted_out);
    assert_eq!(new.changes[0].at, Some(t0() + Duration::minutes(30)));
}

#[test]
fn open_reviews_hold_until_the_earliest_deadline() {
    let mut s = ConsentState::default();
    assert_eq!(s.review_hold_until(t0()), None);
    s.open_reviews.insert("b".into(), t0() + Duration::days(3));
    s.open_reviews.insert("a".into(), t0() + Duration::days(2));
    assert_eq!(s.review_hold_until(t0()), Some(t0() + Duration::days(2)));
    // A deadline just passed is being decided: look again in a minute, not in a loop.
    assert_eq!(
        s.review_hold_until(t0() + Duration::days(5)),
        Some(t0() + Duration::days(5) + Duration::minutes(1))
    );
}

#[test]
fn review_deadlines_count_business_days_in_the_tenants_zone() {
    use chrono::TimeZone;
    let tz = chrono_tz::America::Chicago;
    // Thursday 2026-03-05 10:00 Chicago: two business days is Monday 10:00.
    let opened = tz
        .with_ymd_and_hms(2026, 3, 5, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let d = review_deadline(opened, 2, tz);
    assert_eq!(
        d,
        tz.with_ymd_and_hms(2026, 3, 9, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    );
    // Across the spring-forward weekend the local time is kept, not the UTC offset.
    assert_eq!(d - opened, Duration::days(4) - Duration::hours(1));
    // Saturday counts from Monday: one business day is Monday.
    let sat = tz
        .with_ymd_and_hms(2026, 3, 7, 9, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        review_deadline(sat, 1, tz),
        tz.with_ymd_and_hms(2026, 3, 9, 9, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    );
}

#[test]
fn pending_request_expires_after_30_days() {
    let s = with(MarketingStatus::Pending);
    let t = inbound_at(
        &s,
        Thread::Marketing,
        "YES",
        t0() + Duration::days(31),
        POLICY,
    );
    assert_eq!(t.state.marketing, MarketingStatus::None);
    assert_eq!(t.changes[0].source, Source::Expiry);
    assert_eq!(t.reply, None);
}

#[test]
fn opt_in_request_makes_pending_and_counts_towards_the_throttle() {
    let t = apply(
        &ConsentState::default(),
        &Event::OptInRequested {
            source: Source::CustomerRecord,
            request: "req-1",
        },
        POLICY,
        t0(),
    );
    assert_eq!(t.state.marketing, MarketingStatus::Pending);
    assert_eq!(t.state.pending_since, Some(t0()));
    assert_eq!(t.state.recent_unanswered(t0()), 1);
    assert_eq!(t.state.recent_unanswered(t0() + Duration::days(31)), 0);
}

fn any_event_text() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec![
        "STOP",
        "stop all",
        "START",
        "RESTART",
        "YES",
        "HELP",
        "hello",
        "please stop texting me",
        "wrong number",
        "PARAR",
        "Sí",
        "ENROLL",
        crate::keyword::LINK_PHRASE,
        "can you stop by?",
    ])
}

fn any_thread() -> impl Strategy<Value = Thread> {
    proptest::sample::select(vec![
        Thread::Transactional,
        Thread::Marketing,
        Thread::Shared,
    ])
}

proptest! {
    /// The stored state is only a cache: folding the ledger entries gives the same flags.
    #[test]
    fn state_always_equals_the_fold_of_its_ledger(
        steps in proptest::collection::vec((any_thread(), any_event_text(), 0i64..80, any::<bool>()), 1..40),
        revoke_all in any::<bool>(),
    ) {
        let policy = Policy { stop_revokes_all: revoke_all, provider_answers_keywords: false };
        let mut state = ConsentState::default();
        let mut ledger = Vec::new();
        let mut now = t0();
        for (thread, text, hours, request) in steps {
            now += Duration::hours(hours * 12);
            let t = if request && state.marketing != MarketingStatus::OptedOut {
                apply(&state, &Event::OptInRequested { source: Source::Api, request: "req" }, policy, now)
            } else {
                inbound_at(&state, thread, text, now, policy)
            };
            ledger.extend(t.changes.iter().cloned());
            state = t.state;
            let (tx, mk) = ConsentState::fold(&ledger);
            prop_assert_eq!(tx, state.transactional_opted_out);
            prop_assert_eq!(mk, state.marketing);
        }
    }

    /// Whatever came before, a STOP on a thread always leaves that thread opted out, and
    /// earns at most one reply.
    #[test]
    fn stop_always_wins_on_its_thread(
        steps in proptest::collection::vec((any_thread(), any_event_text()), 0..20),
        thread in any_thread(),
    ) {
        let mut state = ConsentState::default();
        for (th, text) in steps {
            state = inbound(&state, th, text).state;
        }
        let t = inbound(&state, thread, "STOP");
        match thread {
            Thread::Marketing => prop_assert_eq!(t.state.marketing, MarketingStatus::OptedOut),
            _ => {
                prop_assert!(t.state.transactional_opted_out);
                prop_assert_eq!(t.state.marketing, MarketingStatus::OptedOut);
            }
        }
        prop_assert!(!t.review);
    }

    /// Only the customer can opt in: no event but their own words, in the marketing
    /// thread, moves marketing to opted_in.
    #[test]
    fn only_the_customers_words_opt_in(
        steps in proptest::collection::vec((any_thread(), any_event_text()), 0..20),
    ) {
        let mut state = ConsentState::default();
        for (th, text) in steps {
            let before = state.marketing;
            let t = inbound(&state, th, text);
            if t.state.marketing == MarketingStatus::OptedIn && before != MarketingStatus::OptedIn {
                prop_assert!(th != Thread::Transactional);
                prop_assert!(["START", "RESTART", "YES", "Sí", "ENROLL", crate::keyword::LINK_PHRASE].contains(&text));
            }
            state = t.state;
        }
    }
}
