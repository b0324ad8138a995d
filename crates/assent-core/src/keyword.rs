//! What an inbound text means: a keyword, a plain-language revocation, something a person
//! should look at, or an ordinary message.
//!
//! People do not type keywords the way a carrier's table lists them: "STOP STOP", "stop!!! 🛑",
//! "Stop. Thank you", a fullwidth "ＳＴＯＰ" from a phone's keyboard, "ARRÊT", "no más". So a
//! text is first reduced to its words: NFKC (fullwidth and compatibility forms become plain
//! letters; NFKD also separates accents), accents dropped, case ignored, and everything that is not a letter or a digit
//! (punctuation, emoji, white space) taken as a separator. A keyword then matches when the
//! words are the keyword, the keyword repeated, or the keyword with courtesy words around it.
//!
//! Free-text revocations ("please stop texting me", "no me manden mensajes") are whole-message
//! phrases grouped into named rules, so the evidence can say which rule fired. Anything else
//! that contains one of the FCC's seven words (stop, quit, end, revoke, opt out, cancel,
//! unsubscribe), a Spanish or French keyword, or a phrase that may mean stop goes to a person:
//! never acted on by guess, never ignored.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The prewritten body of the `sms:` opt-in link.
pub const LINK_PHRASE: &str = "I would like to sign up for marketing text messages!";

crate::text_enum! {
    /// The language a keyword was written in; replies to it are sent in the same language.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum Lang as "language" {
        #[default]
        En = "en",
        Es = "es",
        Fr = "fr",
    }
}

use Lang::{En, Es, Fr};

/// Opt-out keywords, as words after normalisation (`OPT-OUT` is `OPT OUT`, `NO MÁS` is
/// `NO MAS`, `ARRÊT` is `ARRET`).
pub const OPT_OUT_WORDS: &[(&str, Lang)] = &[
    ("STOP", En),
    ("STOPALL", En),
    ("STOP ALL", En),
    ("UNSUBSCRIBE", En),
    ("CANCEL", En),
    ("END", En),
    ("QUIT", En),
    ("REVOKE", En),
    ("OPTOUT", En),
    ("OPT OUT", En),
    ("REMOVE", En),
    ("PARAR", Es),
    ("ALTO", Es),
    ("DETENER", Es),
    ("CANCELAR", Es),
    ("BAJA", Es),
    ("NO MAS", Es),
    ("ARRET", Fr),
    ("ARRETER", Fr),
];
pub const OPT_IN_WORDS: &[(&str, Lang)] = &[
    ("RESTART", En),
    ("ENROLL", En),
    ("START", En),
    ("UNSTOP", En),
    ("COMENZAR", Es),
    ("REANUDAR", Es),
];
pub const HELP_WORDS: &[(&str, Lang)] = &[("HELP", En), ("INFO", En), ("AYUDA", Es), ("AIDE", Fr)];
pub const YES_WORDS: &[(&str, Lang)] = &[("YES", En), ("SI", Es)];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Classified {
    /// STOP and its synonyms; `word` is the keyword as normalised.
    OptOut {
        word: String,
    },
    /// RESTART, ENROLL, START, UNSTOP (COMENZAR, REANUDAR).
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
    /// "Wrong number": a full opt-out on any thread, and the number may have changed hands.
    WrongNumber {
        rule: &'static str,
    },
    /// Contains an opt-out word but matches no rule: a person decides.
    Review {
        word: String,
    },
    Ordinary,
}

impl Classified {
    /// The standard keywords a provider such as Twilio may answer on its own. Twilio knows
    /// only the English ones (and not REMOVE, STOP ALL or OPT OUT).
    pub fn is_standard_keyword(&self) -> bool {
        match self {
            Classified::OptOut { word } | Classified::Resume { word } => matches!(
                word.as_str(),
                "STOP"
                    | "STOPALL"
                    | "UNSUBSCRIBE"
                    | "CANCEL"
                    | "END"
                    | "QUIT"
                    | "OPTOUT"
                    | "REVOKE"
                    | "START"
                    | "UNSTOP"
            ),
            Classified::Help => true,
            _ => false,
        }
    }
}

/// A classified text and, when it was a keyword or a phrase of one language, that language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub classified: Classified,
    pub lang: Option<Lang>,
}

/// The words of a text: NFKC, accents dropped, upper case, apostrophes removed (`don't` is
/// `DONT`), `#` kept as a word of its own ("wrong #"), everything else a separator.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    for c in text.nfkd() {
        if is_combining_mark(c) || matches!(c, '\'' | '’' | '‘' | 'ʼ') {
            continue;
        }
        if c.is_alphanumeric() {
            cur.extend(c.to_uppercase());
        } else if c == '#' {
            flush(&mut cur, &mut out);
            out.push("#".into());
        } else {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    out
}

const LEADING_COURTESY: &[&str] = &[
    "PLEASE",
    "PLS",
    "PLZ",
    "KINDLY",
    "HI",
    "HELLO",
    "HEY",
    "OK",
    "OKAY",
    "POR FAVOR",
    "HOLA",
    "BONJOUR",
];
const TRAILING_COURTESY: &[&str] = &[
    "ANYMORE",
    "ANY MORE",
    "PLEASE",
    "PLS",
    "PLZ",
    "THANKS",
    "THANK YOU",
    "THANKYOU",
    "THX",
    "TY",
    "NOW",
    "RIGHT NOW",
    "ASAP",
    "IMMEDIATELY",
    "POR FAVOR",
    "GRACIAS",
    "MUCHAS GRACIAS",
    "YA",
    "MERCI",
    "SIL VOUS PLAIT",
    "SVP",
];

/// Courtesy phrases as words: (leading, trailing).
type Courtesy = (Vec<Vec<String>>, Vec<Vec<String>>);

static COURTESY: LazyLock<Courtesy> = LazyLock::new(|| {
    let split = |l: &[&str]| -> Vec<Vec<String>> {
        l.iter()
            .map(|p| p.split(' ').map(str::to_string).collect())
            .collect()
    };
    (split(LEADING_COURTESY), split(TRAILING_COURTESY))
});

/// Strips courtesy words from both ends; says whether any were stripped. Never strips the
/// whole message.
fn strip_courtesy(mut w: &[String]) -> (&[String], bool) {
    let (leading, trailing) = &*COURTESY;
    let mut stripped = false;
    loop {
        let before = w.len();
        for p in leading {
            if w.len() > p.len() && w[..p.len()] == p[..] {
                w = &w[p.len()..];
                stripped = true;
            }
        }
        for p in trailing {
            if w.len() > p.len() && w[w.len() - p.len()..] == p[..] {
                w = &w[..w.len() - p.len()];
                stripped = true;
            }
        }
        if w.len() == before {
            return (w, stripped);
        }
    }
}

/// Whether `w` is `keyword` once or repeated ("STOP STOP", "NO MAS NO MAS").
fn is_repeated(w: &[String], keyword: &[&str]) -> bool {
    !w.is_empty()
        && w.len().is_multiple_of(keyword.len())
        && w.chunks(keyword.len())
            .all(|c| c.iter().zip(keyword).all(|(a, b)| a == b))
}

fn find_keyword(w: &[String], table: &[(&str, Lang)]) -> Option<(String, Lang)> {
    table.iter().find_map(|(k, lang)| {
        let parts: Vec<&str> = k.split(' ').collect();
        is_repeated(w, &parts).then(|| (k.to_string(), *lang))
    })
}

/// Free-text rules: (name, language, phrase templates). A template is words and groups
/// `[a|b|]` of alternatives (an empty one makes the group optional); every expansion must be
/// the whole message once courtesy words are stripped.
const FREE_TEXT_RULES: &[(&str, Lang, &[&str])] = &[
    (
        "stop_contacting_me",
        En,
        &[
            "[stop|quit|end|cease] [texting|messaging|contacting|txting|sms|calling and texting] [me|us|this number|my number|]",
            "[stop|quit|end|cease|cancel] [sending|] [me|] [the|these|those|all|all the|your|all your|all of the|] [texts|text messages|messages|sms|msgs|txts|notifications|marketing texts|marketing messages|promotions|promos]",
            "[stop|quit|cancel|end] [text|texts] [me|]",
            "[stop|quit] [it|this|that]",
        ],
    ),
    (
        "revoke_consent",
        En,
        &[
            "[i|] [revoke|withdraw|rescind] [my|] [consent|permission] [to be texted|to receive texts|to text me|]",
            "i revoke",
        ],
    ),
    (
        "unsubscribe_me",
        En,
        &[
            "[i want to|i would like to|id like to|i wish to] unsubscribe",
            "unsubscribe me [from this list|from your list|from these texts|from your texts|from texts|from this|]",
            "[i want to|i would like to|id like to|] unsubscribe [from this list|from your list|from these texts|from your texts|from texts]",
        ],
    ),
    (
        "remove_me",
        En,
        &[
            "remove [me|my number|this number] [from your list|from this list|from the list|from your texts|from your text list|from your mailing list|from your contact list|from your texting list|]",
            "[take|get] [me|my number|this number] off [your|this|the] [list|text list|texting list|mailing list|contact list]",
        ],
    ),
    (
        "do_not_text_me",
        En,
        &[
            "[dont|do not|never] [text|message|contact|txt|sms] [me|this number|my number] [again|ever again|]",
            "[dont|do not|never] send me [texts|messages|text messages] [again|]",
            "no more [texts|messages|text messages|txts|sms]",
            "i dont want [these|your|any|the|any more|] [texts|messages|text messages]",
        ],
    ),
    ("leave_me_alone", En, &["leave me alone"]),
    (
        "opt_me_out",
        En,
        &[
            "opt me out",
            "[i want to|i would like to|id like to] opt out",
            "cancel my subscription",
        ],
    ),
    (
        "no_mas_mensajes",
        Es,
        &[
            "[no|ya no] me [manden|mandes|envien|envies|escriban|escribas] [mas|] [mensajes|textos|]",
            "[ya|] no quiero [recibir|] [mas|] [mensajes|textos]",
            "[dejen|deja|dejar] de [mandarme|enviarme|escribirme] [mensajes|textos|]",
            "no mas [mensajes|textos]",
            "[quiero|] [darme de baja|cancelar mi suscripcion]",
            "[borren|eliminen|quiten] mi numero",
        ],
    ),
    (
        "arretez_les_messages",
        Fr,
        &["[arretez|arrete] [les messages|les textos|les sms|de mecrire|de menvoyer des messages]"],
    ),
];

const WRONG_NUMBER: &[(&str, Lang, &[&str])] = &[
    (
        "wrong_number",
        En,
        &[
            "[you have|you got|youve got|you have got|this is|thats|that is|sorry|sorry you have|sorry wrong|] [the|a|] wrong [number|#|num|no|person]",
            "wrong #",
        ],
    ),
    (
        "numero_equivocado",
        Es,
        &[
            "[este es|es un|es el|tiene el|] numero equivocado",
            "[se|] [equivoco|equivocaron] de numero",
        ],
    ),
    ("mauvais_numero", Fr, &["mauvais numero"]),
];

fn expand(template: &str) -> Vec<String> {
    let mut outs = vec![String::new()];
    let mut rest = template;
    while !rest.is_empty() {
        let (alts, tail): (Vec<&str>, &str) = if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            (
                r[..end].split('|').collect(),
                r.get(end + 1..).unwrap_or(""),
            )
        } else {
            let end = rest.find('[').unwrap_or(rest.len());
            (vec![&rest[..end]], &rest[end..])
        };
        outs = outs
            .iter()
            .flat_map(|o| alts.iter().map(move |a| format!("{o} {a}")))
            .collect();
        rest = tail;
    }
    outs.iter()
        .map(|o| words(o).join(" "))
        .filter(|o| !o.is_empty())
        .collect()
}

type PhraseTable = HashMap<String, (&'static str, Lang)>;

fn phrase_table(rules: &'static [(&'static str, Lang, &'static [&'static str])]) -> PhraseTable {
    let mut t = HashMap::new();
    for (rule, lang, templates) in rules {
        for tpl in *templates {
            for p in expand(tpl) {
                t.entry(p).or_insert((*rule, *lang));
            }
        }
    }
    t
}

static FREE_TEXT: LazyLock<PhraseTable> = LazyLock::new(|| phrase_table(FREE_TEXT_RULES));
static WRONG: LazyLock<PhraseTable> = LazyLock::new(|| phrase_table(WRONG_NUMBER));

/// Single words that send a message to review wherever they appear: the FCC's seven words
/// and their forms, the Spanish and French opt-out keywords, and complaints that often mean
/// "stop" without saying it.
const REVIEW_WORDS: &[&str] = &[
    "STOP",
    "STOPS",
    "STOPPING",
    "STOPALL",
    "QUIT",
    "END",
    "REVOKE",
    "OPTOUT",
    "CANCEL",
    "CANCELLED",
    "CANCELED",
    "UNSUBSCRIBE",
    "UNSUBSCRIBED",
    "UNSUB",
    "REMOVE",
    "REMOVED",
    "PARAR",
    "ALTO",
    "DETENER",
    "CANCELAR",
    "BAJA",
    "ARRET",
    "ARRETER",
    "ARRETEZ",
    "SPAM",
    "SCAM",
    "HARASSMENT",
    "HARASSING",
    "FUCK",
    "FUCKING",
    "STFU",
];
/// Phrases (as words) that send a message to review wherever they appear.
const REVIEW_PHRASES: &[&str] = &[
    "OPT OUT",
    "NO MAS",
    "TAKE ME OFF",
    "DELETE MY NUMBER",
    "LOSE MY NUMBER",
    "DO NOT TEXT",
    "DONT TEXT",
    "NOT INTERESTED",
    "LEAVE ME",
    "GO AWAY",
    "PISS OFF",
    "WRONG NUMBER",
    "NUMERO EQUIVOCADO",
];

fn review_word(w: &[String]) -> Option<String> {
    for (i, word) in w.iter().enumerate() {
        for p in REVIEW_PHRASES {
            let parts: Vec<&str> = p.split(' ').collect();
            if w.len() >= i + parts.len()
                && w[i..i + parts.len()]
                    .iter()
                    .zip(&parts)
                    .all(|(a, b)| a == b)
            {
                return Some(p.to_lowercase());
            }
        }
        if REVIEW_WORDS.contains(&word.as_str()) {
            return Some(word.to_lowercase());
        }
    }
    None
}

static LINK_WORDS: LazyLock<Vec<String>> = LazyLock::new(|| words(LINK_PHRASE));

/// Classifies one inbound message body, with the language it was written in.
pub fn read(text: &str) -> Reading {
    let all = words(text);
    let (core, stripped) = strip_courtesy(&all);
    let reading = |classified, lang| Reading {
        classified,
        lang: Some(lang),
    };
    if let Some((word, lang)) = find_keyword(core, OPT_OUT_WORDS) {
        // A keyword with courtesy words is still a plain request to stop; the rule says how
        // it was written.
        return if stripped {
            reading(
                Classified::FreeTextOptOut {
                    rule: "keyword_with_courtesy",
                },
                lang,
            )
        } else {
            reading(Classified::OptOut { word }, lang)
        };
    }
    if let Some((word, lang)) = find_keyword(core, OPT_IN_WORDS) {
        return reading(Classified::Resume { word }, lang);
    }
    // YES is exact ("Y" is not YES, nor "yes please"), though it may be repeated.
    if let Some((_, lang)) = find_keyword(&all, YES_WORDS) {
        return reading(Classified::Yes, lang);
    }
    if let Some((_, lang)) = find_keyword(core, HELP_WORDS) {
        return reading(Classified::Help, lang);
    }
    if all == *LINK_WORDS {
        return reading(Classified::LinkPhrase, En);
    }
    let phrase = core.join(" ");
    if let Some((rule, lang)) = WRONG.get(&phrase) {
        return reading(Classified::WrongNumber { rule }, *lang);
    }
    if let Some((rule, lang)) = FREE_TEXT.get(&phrase) {
        return reading(Classified::FreeTextOptOut { rule }, *lang);
    }
    Reading {
        classified: match review_word(&all) {
            Some(word) => Classified::Review { word },
            None => Classified::Ordinary,
        },
        lang: None,
    }
}

/// Classifies one inbound message body.
pub fn classify(text: &str) -> Classified {
    read(text).classified
}

#[cfg(test)]
mod tests;
