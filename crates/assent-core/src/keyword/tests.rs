use super::*;
use proptest::prelude::*;

fn is_opt_out(c: &Classified) -> bool {
    matches!(
        c,
        Classified::OptOut { .. }
            | Classified::FreeTextOptOut { .. }
            | Classified::WrongNumber { .. }
    )
}

#[test]
fn every_opt_out_keyword_is_recognised() {
    for (w, _) in OPT_OUT_WORDS {
        assert!(matches!(classify(w), Classified::OptOut { .. }), "{w}");
    }
    for text in [
        "opt out",
        "Opt-Out",
        "  stop   all ",
        "arrêt",
        "ARRÊT",
        "Arrêter",
        "no más",
        "NO MAS",
        "Cancelar",
        "BAJA",
        "parar",
        "Alto",
        "detener",
    ] {
        assert!(
            matches!(classify(text), Classified::OptOut { .. }),
            "{text}: {:?}",
            classify(text)
        );
    }
}

#[test]
fn keywords_as_people_type_them() {
    for text in [
        "STOP STOP",
        "stop!!! 🛑",
        "🛑 STOP 🛑",
        "Stop.",
        "ＳＴＯＰ",
        "ｓｔｏｐ",
        "STOP\u{0}",
        "\"STOP\"",
        "stop stop stop",
        "No más no más",
    ] {
        let c = classify(text);
        assert!(matches!(c, Classified::OptOut { .. }), "{text:?}: {c:?}");
    }
    for (text, rule) in [
        ("stop please", "keyword_with_courtesy"),
        ("Stop. Thank you", "keyword_with_courtesy"),
        ("Please STOP", "keyword_with_courtesy"),
        ("Parar por favor", "keyword_with_courtesy"),
        ("BAJA gracias", "keyword_with_courtesy"),
    ] {
        assert_eq!(
            classify(text),
            Classified::FreeTextOptOut { rule },
            "{text}"
        );
    }
}

#[test]
fn languages_follow_the_keyword() {
    assert_eq!(read("STOP").lang, Some(Lang::En));
    assert_eq!(read("parar").lang, Some(Lang::Es));
    assert_eq!(read("No más").lang, Some(Lang::Es));
    assert_eq!(read("ayuda").lang, Some(Lang::Es));
    assert_eq!(read("AIDE").lang, Some(Lang::Fr));
    assert_eq!(read("arrêt").lang, Some(Lang::Fr));
    assert_eq!(read("Sí").lang, Some(Lang::Es));
    assert_eq!(read("comenzar").lang, Some(Lang::Es));
    assert_eq!(read("ya no quiero mensajes").lang, Some(Lang::Es));
    assert_eq!(read("thanks, see you tuesday").lang, None);
}

#[test]
fn resume_yes_help_and_link_phrase() {
    for w in [
        "restart",
        "Enroll",
        "START",
        "unstop!",
        "Comenzar",
        "REANUDAR",
        "start please",
    ] {
        assert!(matches!(classify(w), Classified::Resume { .. }), "{w}");
    }
    assert_eq!(classify("yes"), Classified::Yes);
    assert_eq!(classify(" Yes! "), Classified::Yes);
    assert_eq!(classify("sí"), Classified::Yes);
    assert_eq!(classify("SI"), Classified::Yes);
    assert_eq!(classify("Y"), Classified::Ordinary);
    assert_eq!(classify("yes please"), Classified::Ordinary);
    assert_eq!(classify("sí, el martes"), Classified::Ordinary);
    assert_eq!(classify("help"), Classified::Help);
    assert_eq!(classify("INFO?"), Classified::Help);
    assert_eq!(classify("Ayuda"), Classified::Help);
    assert_eq!(classify("aide"), Classified::Help);
    assert_eq!(classify(LINK_PHRASE), Classified::LinkPhrase);
    assert_eq!(
        classify("i would like to  sign up for marketing text messages"),
        Classified::LinkPhrase
    );
    assert_eq!(
        classify("I WOULD LIKE TO SIGN UP FOR MARKETING TEXT MESSAGES."),
        Classified::LinkPhrase
    );
}

#[test]
fn plain_language_revocations_are_opt_outs_with_their_rule() {
    for (text, rule) in [
        ("please stop texting me", "stop_contacting_me"),
        ("Stop texting me!!", "stop_contacting_me"),
        ("Quit texting me", "stop_contacting_me"),
        ("Stop it", "stop_contacting_me"),
        ("end texts", "stop_contacting_me"),
        ("stop sending me these messages", "stop_contacting_me"),
        ("I revoke my consent", "revoke_consent"),
        ("unsubscribe me", "unsubscribe_me"),
        ("remove me from your list", "remove_me"),
        ("Don't text me anymore", "do_not_text_me"),
        ("don’t text me any more please", "do_not_text_me"),
        ("no more texts", "do_not_text_me"),
        ("leave me alone", "leave_me_alone"),
        ("opt me out", "opt_me_out"),
        ("No me manden mensajes", "no_mas_mensajes"),
        ("Ya no quiero mensajes", "no_mas_mensajes"),
        ("ya no quiero recibir mensajes por favor", "no_mas_mensajes"),
    ] {
        assert_eq!(
            classify(text),
            Classified::FreeTextOptOut { rule },
            "{text}"
        );
    }
}

#[test]
fn wrong_number_is_its_own_opt_out() {
    for (text, rule) in [
        ("wrong number", "wrong_number"),
        ("Wrong #", "wrong_number"),
        ("You have the wrong number", "wrong_number"),
        ("sorry, wrong number", "wrong_number"),
        ("Número equivocado", "numero_equivocado"),
    ] {
        assert_eq!(classify(text), Classified::WrongNumber { rule }, "{text}");
    }
}

#[test]
fn messages_that_merely_contain_stop_go_to_review() {
    for text in [
        "can you stop by Tuesday?",
        "we have to stop this leak before it floods the basement",
        "Please cancel my appointment tomorrow",
        "How do I remove the filter?",
        "can I opt out of the paper invoice",
        "end of the month works",
        "unsub",
        "take me off this thing",
        "not interested",
        "this is spam",
        "I think you have the wrong number for the invoice",
        "quiero darme de baja de la promoción del martes",
    ] {
        let c = classify(text);
        assert!(matches!(c, Classified::Review { .. }), "{text}: {c:?}");
    }
    for text in [
        "see you at the weekend",
        "Thanks, the unit works great",
        "sí, el martes",
        "What time is the tech coming?",
    ] {
        assert_eq!(classify(text), Classified::Ordinary, "{text}");
    }
}

fn keyword_strategy() -> impl Strategy<Value = (&'static str, u8)> {
    let mut all: Vec<(&'static str, u8)> = Vec::new();
    all.extend(OPT_OUT_WORDS.iter().map(|(w, _)| (*w, 0)));
    all.extend(OPT_IN_WORDS.iter().map(|(w, _)| (*w, 1)));
    all.extend(HELP_WORDS.iter().map(|(w, _)| (*w, 2)));
    all.extend(YES_WORDS.iter().map(|(w, _)| (*w, 3)));
    proptest::sample::select(all)
}

fn courtesy_strategy() -> impl Strategy<Value = (&'static str, &'static str)> {
    (
        proptest::sample::select(vec!["", "please ", "Hi, ", "por favor "]),
        proptest::sample::select(vec!["", " thanks", " please", ". Thank you", " gracias"]),
    )
}

fn cased(word: &str, mask: u64) -> String {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Innocuous words: none is a keyword, a courtesy word or a review trigger.
const PLAIN: &[&str] = &[
    "the", "tech", "arrives", "tuesday", "water", "heater", "works", "great", "what", "time",
    "invoice", "paid", "leak", "kitchen", "filter", "thanks", "see", "you", "soon", "is", "it",
    "ready", "el", "martes", "gracias", "bien", "a", "la", "tarde", "noon",
];

proptest! {
    #[test]
    fn keywords_match_in_any_case_with_any_surrounding_space_punctuation_and_emoji(
        (word, kind) in keyword_strategy(),
        case_mask in any::<u64>(),
        pre in "[ \t\n.!?,🛑🙏✋]{0,4}",
        post in "[ \t\n.!?,🛑🙏✋]{0,4}",
        repeat in 1usize..4,
    ) {
        let body = std::iter::repeat_n(cased(word, case_mask), repeat).collect::<Vec<_>>().join(" ");
        let c = classify(&format!("{pre}{body}{post}"));
        let ok = match kind {
            0 => matches!(c, Classified::OptOut { .. }),
            1 => matches!(c, Classified::Resume { .. }),
            2 => c == Classified::Help,
            _ => c == Classified::Yes,
        };
        prop_assert!(ok, "{word} → {c:?}");
    }

    #[test]
    fn fullwidth_keywords_match_like_ascii((word, kind) in keyword_strategy()) {
        let wide: String = word.chars().map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            ' ' => '\u{3000}',
            c => c,
        }).collect();
        prop_assert_eq!(classify(&wide), classify(word), "{} {}", wide, kind);
    }

    #[test]
    fn opt_out_keywords_with_courtesy_are_still_opt_outs(
        (word, kind) in keyword_strategy(),
        (pre, post) in courtesy_strategy(),
    ) {
        prop_assume!(kind == 0);
        let c = classify(&format!("{pre}{word}{post}"));
        prop_assert!(is_opt_out(&c), "{pre}{word}{post} → {c:?}");
    }

    #[test]
    fn a_keyword_inside_a_longer_sentence_is_never_acted_on(
        (word, _) in keyword_strategy(),
        before in "(we|can you|I|the crew) (will|might|should)",
        after in "(by tuesday|this leak|the water|at noon|of the month)",
    ) {
        let c = classify(&format!("{before} {word} {after}"));
        prop_assert!(!is_opt_out(&c), "{c:?}");
        let acted = matches!(c, Classified::Resume { .. } | Classified::Yes | Classified::Help);
        prop_assert!(!acted, "{:?}", c);
    }

    #[test]
    fn an_opt_out_word_inside_a_longer_sentence_goes_to_review(
        (word, kind) in keyword_strategy(),
        before in "(we|can you|I|the crew) (will|might|should)",
        after in "(by tuesday|this leak|the water|at noon|of the month)",
    ) {
        prop_assume!(kind == 0);
        let c = classify(&format!("{before} {word} {after}"));
        prop_assert!(matches!(c, Classified::Review { .. }), "{word}: {c:?}");
    }

    #[test]
    fn classify_never_panics(s in "\\PC{0,80}") {
        let _ = classify(&s);
    }

    #[test]
    fn text_of_plain_words_is_ordinary(ws in proptest::collection::vec(proptest::sample::select(PLAIN), 2..10)) {
        let text = ws.join(" ");
        prop_assert_eq!(classify(&text), Classified::Ordinary, "{}", text);
    }
}
