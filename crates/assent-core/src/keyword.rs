//! What an inbound text means: a keyword, a plain-language revocation, something a person
//! should look at, or an ordinary message.
//!
//! Keywords are matched on the whole message with surrounding white space and punctuation
//! trimmed and case ignored (CTIA). Free-text revocations ("please stop texting me") are
//! matched by named whole-message rules, so the evidence can say which rule fired. Anything
//! else that merely contains an opt-out word goes to a person, never acted on by guess.

use serde::Serialize;

/// The prewritten body of the `sms:` opt-in link.
pub const LINK_PHRASE: &str = "I would like to sign up for marketing text messages!";

const OPT_OUT_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
    "OPT-OUT",
    "REMOVE",
    "ARRET",
    "ARRÊT",
];
const OPT_IN_WORDS: &[&str] = &["RESTART", "ENROLL", "START", "UNSTOP"];
const HELP_WORDS: &[&str] = &["HELP", "INFO"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classified {
    /// STOP and its synonyms; `word` is the keyword as normalised.
    OptOut {
        word: String,
    },
    /// RESTART, ENROLL, START, UNSTOP.
    Resume {
        word: String,
    },
    Yes,
    Help,
    LinkPhrase,
    /// A whole message that plainly asks to stop; `rule` names the rule that matched.
    FreeTextOptOut {
        rule: &'static str,
    },
    /// Contains an opt-out word but matches no rule: a person decides.
    Review {
        word: String,
    },
    Ordinary,
}

impl Classified {
    /// The standard keywords a provider such as Twilio may answer on its own.
    pub fn is_standard_keyword(&self) -> bool {
        matches!(
            self,
            Classified::OptOut { .. } | Classified::Resume { .. } | Classified::Help
        )
    }
}

fn is_trim_char(c: char) -> bool {
    c.is_whitespace() || (c.is_ascii_punctuation() && c != '#') || "¡¿“”‘’«»…。".contains(c)
}

/// Trims surrounding white space and punctuation, uppercases and collapses inner spaces.
fn normalise_keyword(text: &str) -> String {
    let trimmed = text.trim_matches(is_trim_char);
    let mut out = String::with_capacity(trimmed.len());
    for word in trimmed.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word.to_uppercase());
    }
    out
}

/// Lowercase words with punctuation removed and apostrophes dropped (`don't` → `dont`).
fn words(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\'' || c == '’' || c == '‘' {
            continue;
        }
        if c.is_alphanumeric() {
            cleaned.extend(c.to_lowercase());
        } else {
            cleaned.push(' ');
        }
    }
    cleaned.split_whitespace().map(str::to_string).collect()
}

const LEADING_COURTESY: &[&[&str]] = &[
    &["please"],
    &["pls"],
    &["plz"],
    &["kindly"],
    &["hi"],
    &["hello"],
    &["hey"],
    &["ok"],
    &["okay"],
];
const TRAILING_COURTESY: &[&[&str]] = &[
    &["anymore"],
    &["any", "more"],
    &["please"],
    &["pls"],
    &["plz"],
    &["thanks"],
    &["thank", "you"],
    &["thankyou"],
    &["thx"],
    &["ty"],
    &["now"],
    &["right", "now"],
    &["asap"],
    &["immediately"],
];

/// Named whole-message revocation rules, matched after courtesy words are stripped.
const FREE_TEXT_RULES: &[(&str, &[&str])] = &[
    (
        "stop_contacting_me",
        &[
            "stop texting me",
            "stop texting",
            "stop text me",
            "stop messaging me",
            "stop messaging",
            "stop sending me texts",
            "stop sending me messages",
            "stop sending me text messages",
            "stop sending texts",
            "stop sending messages",
            "stop contacting me",
            "stop the texts",
            "stop these texts",
            "stop the messages",
            "stop these messages",
            "stop all texts",
            "stop all messages",
            "stop texts",
            "stop sms",
        ],
    ),
    (
        "unsubscribe_me",
        &[
            "unsubscribe me",
            "unsubscribe me from this list",
            "unsubscribe me from your list",
            "unsubscribe me from these texts",
            "unsubscribe me from your texts",
            "i want to unsubscribe",
            "i would like to unsubscribe",
            "id like to unsubscribe",
        ],
    ),
    (
        "remove_me",
        &[
            "remove me",
            "remove me from your list",
            "remove me from this list",
            "remove me from the list",
            "remove me from your texts",
            "remove me from your text list",
            "remove me from your mailing list",
            "remove me from your contact list",
            "remove my number",
            "remove my number from your list",
            "take me off your list",
            "take me off this list",
            "take me off the list",
            "take my number off your list",
        ],
    ),
    (
        "do_not_text_me",
        &[
            "dont text me",
            "do not text me",
            "dont message me",
            "do not message me",
            "dont contact me",
            "do not contact me",
            "dont send me texts",
            "do not send me texts",
            "dont send me messages",
            "do not send me messages",
            "no more texts",
            "no more messages",
            "no more text messages",
        ],
    ),
    (
        "opt_me_out",
        &[
            "opt me out",
            "i want to opt out",
            "i would like to opt out",
            "id like to opt out",
            "cancel my subscription",
        ],
    ),
];

fn strip_courtesy(mut w: &[String]) -> (&[String], bool) {
    let mut stripped = false;
    loop {
        let before = w.len();
        for p in LEADING_COURTESY {
            if w.len() > p.len() && w.iter().zip(p.iter()).all(|(a, b)| a == b) {
                w = &w[p.len()..];
                stripped = true;
            }
        }
        for p in TRAILING_COURTESY {
            if w.len() > p.len()
                && w[w.len() - p.len()..]
                    .iter()
                    .zip(p.iter())
                    .all(|(a, b)| a == b)
            {
                w = &w[..w.len() - p.len()];
                stripped = true;
            }
        }
        if w.len() == before {
            return (w, stripped);
        }
    }
}

fn review_word(words: &[String]) -> Option<String> {
    for (i, w) in words.iter().enumerate() {
        let hit = matches!(
            w.as_str(),
            "stop"
                | "stops"
                | "stopping"
                | "unsubscribe"
                | "unsubscribed"
                | "remove"
                | "removed"
                | "cancel"
                | "cancelled"
                | "canceled"
                | "optout"
        ) || (w == "opt" && words.get(i + 1).is_some_and(|n| n == "out"));
        if hit {
            return Some(if w == "opt" {
                "opt out".into()
            } else {
                w.clone()
            });
        }
    }
    None
}

/// Classifies one inbound message body.
pub fn classify(text: &str) -> Classified {
    let key = normalise_keyword(text);
    if OPT_OUT_WORDS.contains(&key.as_str()) {
        return Classified::OptOut { word: key };
    }
    if OPT_IN_WORDS.contains(&key.as_str()) {
        return Classified::Resume { word: key };
    }
    if key == "YES" {
        return Classified::Yes;
    }
    if HELP_WORDS.contains(&key.as_str()) {
        return Classified::Help;
    }
    if key == normalise_keyword(LINK_PHRASE) {
        return Classified::LinkPhrase;
    }
    let all = words(text);
    let (core, stripped) = strip_courtesy(&all);
    let phrase = core.join(" ");
    if stripped && OPT_OUT_WORDS.contains(&phrase.to_uppercase().as_str()) {
        return Classified::FreeTextOptOut {
            rule: "keyword_with_courtesy",
        };
    }
    for (rule, phrases) in FREE_TEXT_RULES {
        if phrases.contains(&phrase.as_str()) {
            return Classified::FreeTextOptOut { rule };
        }
    }
    match review_word(&all) {
        Some(word) => Classified::Review { word },
        None => Classified::Ordinary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_opt_out(c: &Classified) -> bool {
        matches!(
            c,
            Classified::OptOut { .. } | Classified::FreeTextOptOut { .. }
        )
    }

    #[test]
    fn every_opt_out_keyword_is_recognised() {
        for w in OPT_OUT_WORDS {
            assert!(matches!(classify(w), Classified::OptOut { .. }), "{w}");
        }
        assert!(matches!(classify("opt out"), Classified::OptOut { .. }));
        assert!(matches!(classify("Opt-Out"), Classified::OptOut { .. }));
        assert!(matches!(
            classify("  stop   all "),
            Classified::OptOut { .. }
        ));
        assert!(matches!(classify("arrêt"), Classified::OptOut { .. }));
    }

    #[test]
    fn resume_yes_help_and_link_phrase() {
        for w in ["restart", "Enroll", "START", "unstop!"] {
            assert!(matches!(classify(w), Classified::Resume { .. }), "{w}");
        }
        assert_eq!(classify("yes"), Classified::Yes);
        assert_eq!(classify(" Yes! "), Classified::Yes);
        assert_eq!(classify("Y"), Classified::Ordinary);
        assert_eq!(classify("yes please"), Classified::Ordinary);
        assert_eq!(classify("help"), Classified::Help);
        assert_eq!(classify("INFO?"), Classified::Help);
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
            ("unsubscribe me", "unsubscribe_me"),
            ("remove me from your list", "remove_me"),
            ("Don't text me anymore", "do_not_text_me"),
            ("don’t text me any more please", "do_not_text_me"),
            ("Stop. Thank you", "keyword_with_courtesy"),
            ("stop please", "keyword_with_courtesy"),
            ("Please STOP", "keyword_with_courtesy"),
            ("opt me out", "opt_me_out"),
        ] {
            assert_eq!(
                classify(text),
                Classified::FreeTextOptOut { rule },
                "{text}"
            );
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
        ] {
            let c = classify(text);
            assert!(matches!(c, Classified::Review { .. }), "{text}: {c:?}");
        }
        assert_eq!(classify("see you at the weekend"), Classified::Ordinary);
        assert_eq!(
            classify("Thanks, the unit works great"),
            Classified::Ordinary
        );
    }

    fn keyword_strategy() -> impl Strategy<Value = (&'static str, u8)> {
        let mut all: Vec<(&'static str, u8)> = Vec::new();
        all.extend(OPT_OUT_WORDS.iter().map(|w| (*w, 0)));
        all.extend(OPT_IN_WORDS.iter().map(|w| (*w, 1)));
        all.extend(HELP_WORDS.iter().map(|w| (*w, 2)));
        all.push(("YES", 3));
        proptest::sample::select(all)
    }

    proptest! {
        #[test]
        fn keywords_match_in_any_case_with_any_surrounding_space_and_punctuation(
            (word, kind) in keyword_strategy(),
            case_mask in any::<u64>(),
            pre in "[ \t\n.!?,]{0,4}",
            post in "[ \t\n.!?,]{0,4}",
        ) {
            let cased: String = word.chars().enumerate().map(|(i, c)| {
                if case_mask >> (i % 64) & 1 == 1 { c.to_lowercase().next().unwrap_or(c) } else { c }
            }).collect();
            let c = classify(&format!("{pre}{cased}{post}"));
            let ok = match kind {
                0 => matches!(c, Classified::OptOut { .. }),
                1 => matches!(c, Classified::Resume { .. }),
                2 => c == Classified::Help,
                _ => c == Classified::Yes,
            };
            prop_assert!(ok, "{word} → {c:?}");
        }

        #[test]
        fn a_keyword_inside_a_longer_sentence_is_never_acted_on(
            (word, _) in keyword_strategy(),
            before in "(we|can you|I|the crew) (will|might|should)",
            after in "(by tuesday|this leak|the water|at noon)",
        ) {
            let c = classify(&format!("{before} {word} {after}"));
            prop_assert!(!is_opt_out(&c), "{c:?}");
            let acted = matches!(c, Classified::Resume { .. } | Classified::Yes | Classified::Help);
            prop_assert!(!acted, "{:?}", c);
        }

        #[test]
        fn classify_never_panics(s in "\\PC{0,80}") {
            let _ = classify(&s);
        }

        #[test]
        fn text_without_trigger_words_is_ordinary(s in "[a-z ]{0,40}") {
            let has_trigger = ["stop", "unsubscribe", "remove", "cancel", "opt", "optout", "end", "quit",
                "revoke", "arret", "start", "restart", "enroll", "unstop", "yes", "help", "info", "i would like"]
                .iter().any(|w| s.contains(w));
            prop_assume!(!has_trigger);
            prop_assert_eq!(classify(&s), Classified::Ordinary);
        }
    }
}
