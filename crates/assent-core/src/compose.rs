//! Message composition: the marketing footer, the default texts of automatic replies and
//! opt-in requests, and how many SMS segments a body costs.
//!
//! Segment rules are the carriers': a body that fits the GSM 03.38 alphabet costs 7 bits
//! a character (extension characters such as `€ [ ] { } ~ ^ \ |` cost two), 160 in one
//! segment or 153 per segment once split; anything else (a curly apostrophe, an emoji) is
//! sent as UCS-2, 70 or 67 UTF-16 units per segment. A split never cuts an escape pair or a
//! surrogate pair.

use serde::Serialize;

pub const MARKETING_FOOTER: &str = "Reply STOP to opt out";
pub const MARKETING_FOOTER_ES: &str = "Responde STOP para cancelar";

use crate::keyword::Lang;

/// The marketing footer in a phone's language (English where there is no other).
pub fn default_footer(lang: Lang) -> &'static str {
    match lang {
        Lang::Es => MARKETING_FOOTER_ES,
        _ => MARKETING_FOOTER,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    pub count: usize,
    /// Septets (GSM-7) or UTF-16 units (UCS-2) the body costs.
    pub units: usize,
}

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Septets each ASCII character costs in GSM-7 (0: not in the alphabet), from the tables
/// above: bodies are counted on every message queued, and nearly all of them are ASCII.
static ASCII_COST: std::sync::LazyLock<[u8; 128]> = std::sync::LazyLock::new(|| {
    let mut t = [0u8; 128];
    for (cost, chars) in [(1, GSM_BASIC), (2, GSM_EXTENSION)] {
        for c in chars.chars().filter(char::is_ascii) {
            t[c as usize] = cost;
        }
    }
    t
});

/// Septets a character costs in GSM-7, or `None` if it is not in the alphabet.
fn gsm_cost(c: char) -> Option<usize> {
    if c.is_ascii() {
        return match ASCII_COST[c as usize] {
            0 => None,
            n => Some(usize::from(n)),
        };
    }
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts segments the way carriers split a body.
pub fn segments(body: &str) -> Segments {
    let gsm: Option<usize> = body.chars().map(gsm_cost).sum();
    let (encoding, units, single, multi) = match gsm {
        Some(units) => (Encoding::Gsm7, units, 160, 153),
        None => (Encoding::Ucs2, body.encode_utf16().count(), 70, 67),
    };
    let count = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        // A character is never split across segments: walk them to see where each ends.
        let mut count = 1;
        let mut used = 0;
        for ch in body.chars() {
            let c = match encoding {
                Encoding::Gsm7 => gsm_cost(ch).unwrap_or(1),
                Encoding::Ucs2 => ch.len_utf16(),
            };
            if used + c > multi {
                count += 1;
                used = 0;
            }
            used += c;
        }
        count
    };
    Segments {
        encoding,
        count,
        units,
    }
}

/// Adds the marketing footer unless the body already ends with it.
pub fn with_marketing_footer(body: &str) -> String {
    with_footer(body, MARKETING_FOOTER)
}

/// Adds `footer` unless the body already ends with it (or with the English footer).
pub fn with_footer(body: &str, footer: &str) -> String {
    let trimmed = body.trim_end();
    let tail = trimmed
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    let footer_core = footer
        .trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace())
        .to_lowercase();
    if tail.ends_with(&footer_core) || tail.ends_with(&MARKETING_FOOTER.to_lowercase()) {
        return trimmed.to_string();
    }
    if trimmed.is_empty() {
        return footer.to_string();
    }
    format!("{trimmed}\n{footer}")
}

/// The longest business name that always fits as a marketing message's brand prefix: a
/// longer name needs a short brand name in settings.
pub const MAX_BRAND_CHARS: usize = 30;

/// Whether `body` already starts with `name`, case-insensitively, once leading blanks are
/// set aside (a name followed by anything: `Acme Heating: …`, `ACME HEATING here…`).
pub fn starts_with_name(body: &str, name: &str) -> bool {
    let name = name.trim();
    if name.is_empty() {
        return true;
    }
    let body = body.trim_start();
    let mut b = body.chars().flat_map(char::to_lowercase);
    name.chars()
        .flat_map(char::to_lowercase)
        .all(|c| b.next() == Some(c))
}

/// Starts a marketing body with the brand (`Acme Heating & Air: …`), as CTIA and the
/// carriers' 10DLC vetting expect, unless it already starts with one of `names` (the brand
/// and, when the brand is a short name, the business's full name).
pub fn with_brand(body: &str, brand: &str, names: &[&str]) -> String {
    let brand = brand.trim();
    let trimmed = body.trim_start();
    if brand.is_empty()
        || starts_with_name(trimmed, brand)
        || names
            .iter()
            .any(|n| !n.trim().is_empty() && starts_with_name(trimmed, n))
    {
        return trimmed.to_string();
    }
    if trimmed.is_empty() {
        return format!("{brand}:");
    }
    format!("{brand}: {trimmed}")
}

/// A marketing message as it leaves: the brand first, the footer last.
pub fn marketing_message(body: &str, brand: &str, names: &[&str], footer: &str) -> String {
    with_footer(&with_brand(body, brand, names), footer)
}

/// The disclosure every written-consent surface carries (47 CFR 64.1200(f)(9), CTIA).
pub fn disclosure(business: &str) -> String {
    format!(
        "By opting in, you agree to receive recurring automated marketing text messages \
         (offers and reminders) from {business} at the number provided. Consent is not a \
         condition of purchase. Msg frequency varies. Msg & data rates may apply. Reply STOP \
         to opt out, HELP for help."
    )
}

/// The text of an opt-in request: it asks for YES and carries the full disclosure.
pub fn default_opt_in_request(business: &str) -> String {
    format!(
        "{business}: Reply YES to receive recurring automated marketing texts (offers and \
         reminders) from {business}. Consent is not a condition of purchase. Msg frequency \
         varies. Msg & data rates may apply. Reply STOP to opt out, HELP for help."
    )
}

/// The opt-in request in a phone's language (English where there is no other).
pub fn default_opt_in_request_in(lang: Lang, business: &str) -> String {
    match lang {
        Lang::Es => format!(
            "{business}: Responde SI para recibir mensajes de texto de marketing recurrentes y \
             automatizados (ofertas y recordatorios) de {business}. El consentimiento no es \
             condicion de compra. La frecuencia de mensajes varia. Pueden aplicarse tarifas de \
             mensajes y datos. Responde STOP para cancelar, AYUDA para ayuda."
        ),
        _ => default_opt_in_request(business),
    }
}

/// Default automatic replies in a phone's language.
pub fn default_reply_in(
    kind: crate::consent::ReplyKind,
    lang: Lang,
    business: &str,
    contact: &str,
) -> String {
    use crate::consent::ReplyKind::*;
    match (lang, kind) {
        (Lang::En, _) => default_reply(kind, business, contact),
        (Lang::Es, OptOutAll) => format!(
            "{business}: Te has dado de baja y no recibiras mas mensajes nuestros. Responde \
             START para volver a suscribirte."
        ),
        (Lang::Es, OptOutMarketing) => format!(
            "{business}: Te has dado de baja de los mensajes de marketing y no recibiras mas. \
             Aun puedes recibir mensajes sobre tu servicio. Responde START para volver a \
             suscribirte."
        ),
        (Lang::Es, Resumed) => format!(
            "{business}: Volveras a recibir mensajes sobre tu servicio. Responde AYUDA para \
             ayuda, STOP para cancelar."
        ),
        (Lang::Es, OptInConfirmation) => format!(
            "{business}: Te has suscrito a los mensajes de marketing de {business} (ofertas y \
             recordatorios). La frecuencia de mensajes varia. Pueden aplicarse tarifas de \
             mensajes y datos. Responde AYUDA para ayuda, STOP para cancelar."
        ),
        (Lang::Es, Help) => format!(
            "{business}: Para ayuda, contactanos en {contact}. Pueden aplicarse tarifas de \
             mensajes y datos. Responde STOP para cancelar."
        ),
        (Lang::Es, ProviderBlocked) => format!(
            "{business}: Tu STOP anterior todavia bloquea nuestros mensajes a este numero. \
             Responde START para volver a recibirlos."
        ),
        (Lang::Fr, ProviderBlocked) => format!(
            "{business}: Votre STOP precedent bloque encore nos messages vers ce numero. \
             Repondez START pour les recevoir a nouveau."
        ),
        (Lang::Fr, OptOutAll) => format!(
            "{business}: Vous etes desabonne et ne recevrez plus de messages de notre part. \
             Repondez START pour vous reabonner."
        ),
        (Lang::Fr, OptOutMarketing) => format!(
            "{business}: Vous etes desabonne des messages marketing. Vous pourrez encore \
             recevoir des messages sur votre service. Repondez START pour vous reabonner."
        ),
        (Lang::Fr, Help) => format!(
            "{business}: Pour de l'aide, contactez-nous au {contact}. Des frais de messagerie \
             peuvent s'appliquer. Repondez STOP (ou ARRET) pour vous desabonner."
        ),
        (Lang::Fr, _) => default_reply(kind, business, contact),
    }
}

/// Default automatic replies; every one starts with the business name, as CTIA expects.
pub fn default_reply(kind: crate::consent::ReplyKind, business: &str, contact: &str) -> String {
    use crate::consent::ReplyKind::*;
    match kind {
        OptOutAll => format!(
            "{business}: You are unsubscribed and will receive no further messages from us. \
             Reply START to resubscribe."
        ),
        OptOutMarketing => format!(
            "{business}: You are unsubscribed from marketing texts and will receive no further \
             marketing messages. You may still get messages about your service. Reply START to \
             resubscribe."
        ),
        Resumed => format!(
            "{business}: You are resubscribed to messages about your service. Reply HELP for \
             help, STOP to opt out."
        ),
        OptInConfirmation => format!(
            "{business}: You are now subscribed to {business} marketing texts (offers and \
             reminders). Msg frequency varies. Msg & data rates may apply. Reply HELP for help, \
             STOP to opt out."
        ),
        Help => format!(
            "{business}: For help, contact us at {contact}. Msg & data rates may apply. Reply \
             STOP to opt out."
        ),
        ProviderBlocked => format!(
            "{business}: Your earlier STOP still blocks our texts to this number. Reply START \
             to receive them again."
        ),
    }
}

/// What a tenant's own text of one reply kind (`opt_in_request`, `opt_in_confirmation`,
/// `help`, `resumed`, `opt_out`, `opt_out_marketing`) must still say, checked after its
/// placeholders are filled: it starts with the business name, and carries what CTIA expects
/// of its kind (the opt-in request, the full disclosure and YES). `Err` says, in words to
/// show after the text's name, the first thing missing.
///
/// The same check serves the Spanish and French texts: each phrase may be said in any of the
/// three languages (accents ignored), and the keywords named may be the language's own.
pub fn check_reply(kind: &str, text: &str, business: &str) -> Result<(), String> {
    use unicode_normalization::UnicodeNormalization;
    let plain: String = text
        .nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect();
    let lower = plain.trim().to_lowercase();
    let words = crate::keyword::words(text);
    let names = |ws: &[&str]| ws.iter().any(|w| words.iter().any(|x| x == w));
    let says = |phrases: &[&str]| phrases.iter().any(|p| lower.contains(p));
    let frequency = [
        "msg frequency varies",
        "message frequency varies",
        "frecuencia de mensajes varia",
        "frecuencia de los mensajes varia",
        "frequence des messages varie",
    ];
    let rates = [
        "msg & data rates may apply",
        "msg and data rates may apply",
        "message and data rates may apply",
        "pueden aplicarse tarifas",
        "pueden aplicar tarifas",
        "des frais de messagerie",
    ];
    let stop = (
        names(&["STOP", "PARAR", "BAJA", "ARRET"]),
        "must say how to stop (“Reply STOP to opt out”)",
    );
    // What CTIA expects of both the request and the confirmation.
    let program = [
        (says(&frequency), "must say “Msg frequency varies”"),
        (says(&rates), "must say “Msg & data rates may apply”"),
        stop,
        (
            names(&["HELP", "AYUDA", "AIDE"]),
            "must say how to get help (“HELP for help”)",
        ),
    ];
    let needs: Vec<(bool, &str)> = match kind {
        "opt_in_request" => [
            (names(&["YES", "SI"]), "must ask the customer to reply YES"),
            (
                says(&["recurring", "recurrentes", "periodicos"]),
                "must say the texts are recurring",
            ),
            (
                says(&["automated", "automatizados", "automaticos"]),
                "must say the texts are sent by automated means",
            ),
            (
                says(&["condition of purchase", "condicion de compra"]),
                "must say consent is not a condition of purchase",
            ),
        ]
        .into_iter()
        .chain(program)
        .collect(),
        "opt_in_confirmation" => program.to_vec(),
        "help" | "resumed" | "marketing_footer" => vec![stop],
        "opt_out" | "opt_out_marketing" => vec![(
            names(&["START", "UNSTOP", "RESTART", "COMENZAR", "REANUDAR"]),
            "must say how to resubscribe (“Reply START to resubscribe”)",
        )],
        _ => Vec::new(),
    };
    if let Some((_, missing)) = needs.into_iter().find(|(ok, _)| !ok) {
        return Err(missing.to_string());
    }
    if kind != "marketing_footer"
        && !text
            .trim()
            .to_lowercase()
            .starts_with(&business.trim().to_lowercase())
    {
        return Err(format!("must start with the business name ({business})"));
    }
    Ok(())
}

/// Fills `{business_name}`-style placeholders in a tenant-edited reply text.
pub fn fill(template: &str, business: &str, contact: &str) -> String {
    template
        .replace("{business_name}", business)
        .replace("{business}", business)
        .replace("{contact}", contact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_default_text_passes_its_own_check() {
        use crate::consent::ReplyKind::*;
        let b = "Acme Plumbing & Air";
        assert_eq!(
            check_reply("opt_in_request", &default_opt_in_request(b), b),
            Ok(())
        );
        for (key, kind) in [
            ("opt_out", OptOutAll),
            ("opt_out_marketing", OptOutMarketing),
            ("resumed", Resumed),
            ("opt_in_confirmation", OptInConfirmation),
            ("help", Help),
        ] {
            assert_eq!(
                check_reply(key, &default_reply(kind, b, "512-555-0100"), b),
                Ok(()),
                "{key}"
            );
        }
    }

    #[test]
    fn every_default_text_in_every_language_passes_its_own_check() {
        use crate::consent::ReplyKind::*;
        let b = "Acme Plumbing & Air";
        for lang in Lang::ALL {
            assert_eq!(
                check_reply("opt_in_request", &default_opt_in_request_in(lang, b), b),
                Ok(()),
                "{lang:?}"
            );
            for (key, kind) in [
                ("opt_out", OptOutAll),
                ("opt_out_marketing", OptOutMarketing),
                ("resumed", Resumed),
                ("opt_in_confirmation", OptInConfirmation),
                ("help", Help),
            ] {
                assert_eq!(
                    check_reply(key, &default_reply_in(kind, lang, b, "512-555-0100"), b),
                    Ok(()),
                    "{key} {lang:?}"
                );
            }
            assert_eq!(
                check_reply("marketing_footer", default_footer(lang), b),
                Ok(())
            );
        }
        assert!(
            default_reply_in(Help, Lang::Es, b, "x").contains("AYUDA")
                || default_reply_in(Help, Lang::Es, b, "x").contains("ayuda")
        );
        assert_eq!(
            with_footer("Hola: 20% menos", MARKETING_FOOTER_ES),
            "Hola: 20% menos\nResponde STOP para cancelar"
        );
        assert_eq!(
            with_footer("Hola\nResponde STOP para cancelar.", MARKETING_FOOTER_ES),
            "Hola\nResponde STOP para cancelar."
        );
    }

    #[test]
    fn reply_texts_missing_what_ctia_expects_are_refused_with_the_gap() {
        let b = "Acme";
        let check = |k, t| check_reply(k, t, b).unwrap_err();
        assert!(check("help", "Call us anytime. Reply STOP to opt out.").contains("business name"));
        assert!(
            check("opt_in_request", "Acme: want deals? Reply STOP to opt out.")
                .contains("reply YES")
        );
        assert!(
            check(
                "opt_in_request",
                "Acme: Reply YES for deals. Reply STOP to opt out, HELP for help."
            )
            .contains("recurring")
        );
        assert!(check("opt_out", "Acme: You are unsubscribed.").contains("resubscribe"));
        assert!(
            check(
                "opt_in_confirmation",
                "Acme: You're in! Reply STOP to opt out."
            )
            .contains("frequency")
        );
        assert_eq!(
            check_reply("help", "ACME: call 512-555-0100. Reply STOP to opt out.", b),
            Ok(())
        );
    }

    #[test]
    fn plain_ascii_fits_160_in_one_segment_then_153() {
        assert_eq!(segments(&"a".repeat(160)).count, 1);
        assert_eq!(segments(&"a".repeat(161)).count, 2);
        assert_eq!(segments(&"a".repeat(306)).count, 2);
        assert_eq!(segments(&"a".repeat(307)).count, 3);
        assert_eq!(segments("").count, 0);
    }

    #[test]
    fn gsm_extension_characters_cost_two_septets() {
        let s = segments(&"€".repeat(80));
        assert_eq!((s.encoding, s.units, s.count), (Encoding::Gsm7, 160, 1));
        assert_eq!(segments(&format!("{}[", "a".repeat(159))).count, 2);
    }

    #[test]
    fn an_escape_pair_is_never_split_across_segments() {
        // 152 septets, then a two-septet `{`: it cannot start in segment 1's last slot.
        let body = format!("{}{{{}", "a".repeat(152), "b".repeat(10));
        let s = segments(&body);
        assert_eq!(s.units, 164);
        assert_eq!(s.count, 2);
        let body = format!("{}{{{}", "a".repeat(152), "b".repeat(152));
        // 152 | 2 + 151 | 1 → three segments because the pair moved to segment 2.
        assert_eq!(segments(&body).count, 3);
    }

    #[test]
    fn a_curly_apostrophe_forces_ucs2() {
        let s = segments("We’ll be there at 9");
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(segments(&format!("{}’", "a".repeat(69))).count, 1);
        assert_eq!(segments(&format!("{}’", "a".repeat(70))).count, 2);
        assert_eq!(segments(&"’".repeat(134)).count, 2);
        assert_eq!(segments(&"’".repeat(135)).count, 3);
    }

    #[test]
    fn emoji_cost_two_utf16_units_and_are_not_split() {
        let s = segments("😀");
        assert_eq!((s.encoding, s.units), (Encoding::Ucs2, 2));
        // 66 units then an emoji: it moves whole to segment 2.
        let body = format!("{}😀{}", "é€ü".repeat(0), "a".repeat(66)) + "😀" + &"b".repeat(10);
        assert_eq!(segments(&body).count, 2);
    }

    #[test]
    fn footer_is_added_once() {
        assert_eq!(
            with_marketing_footer("Sale!"),
            "Sale!\nReply STOP to opt out"
        );
        assert_eq!(
            with_marketing_footer("Sale! Reply STOP to opt out."),
            "Sale! Reply STOP to opt out."
        );
        let once = with_marketing_footer("Sale!");
        assert_eq!(with_marketing_footer(&once), once);
    }

    #[test]
    fn default_texts_carry_the_required_disclosures() {
        let r = default_opt_in_request("Acme HVAC");
        for needle in [
            "Acme HVAC",
            "YES",
            "Consent is not a condition of purchase",
            "Msg frequency varies",
            "Msg & data rates may apply",
            "Reply STOP to opt out, HELP for help",
            "automated",
        ] {
            assert!(r.contains(needle), "{needle}");
        }
        assert!(segments(&r).count <= 2);
        let c = default_reply(
            crate::consent::ReplyKind::OptInConfirmation,
            "Acme HVAC",
            "x",
        );
        assert!(c.starts_with("Acme HVAC"));
        assert!(c.contains("Msg frequency varies") && c.contains("HELP") && c.contains("STOP"));
    }

    #[test]
    fn the_ascii_table_agrees_with_the_alphabet() {
        for b in 0u8..128 {
            let c = char::from(b);
            let expected = if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm_cost(c), expected, "{c:?}");
        }
        assert_eq!(gsm_cost('`'), None);
        assert_eq!(gsm_cost('{'), Some(2));
    }

    #[test]
    fn the_brand_starts_a_marketing_body_once() {
        let b = "Acme Heating & Air";
        assert_eq!(
            with_brand("20% off tune-ups this week", b, &[]),
            "Acme Heating & Air: 20% off tune-ups this week"
        );
        // Already named, in any case: left as it is.
        assert_eq!(
            with_brand("ACME HEATING & AIR: 20% off", b, &[]),
            "ACME HEATING & AIR: 20% off"
        );
        assert_eq!(
            with_brand("  acme heating & air here. 20% off", b, &[]),
            "acme heating & air here. 20% off"
        );
        // A short brand: a body that names the full business is named too.
        assert_eq!(
            with_brand(
                "Acme Heating & Air of Central Texas: hi",
                "Acme HVAC",
                &["Acme Heating & Air of Central Texas"]
            ),
            "Acme Heating & Air of Central Texas: hi"
        );
        assert_eq!(
            with_brand("hi", "Acme HVAC", &["Acme Heating & Air of Central Texas"]),
            "Acme HVAC: hi"
        );
        let once = marketing_message("Sale!", b, &[], MARKETING_FOOTER);
        assert_eq!(once, "Acme Heating & Air: Sale!\nReply STOP to opt out");
        assert_eq!(marketing_message(&once, b, &[], MARKETING_FOOTER), once);
    }

    #[test]
    fn the_brand_counts_in_the_segments() {
        // 160 - len("\nReply STOP to opt out") = 138: a body that fits one segment alone...
        let body = "a".repeat(160 - MARKETING_FOOTER.len() - 1);
        assert_eq!(segments(&with_footer(&body, MARKETING_FOOTER)).count, 1);
        // ...takes two once the business is named in front of it.
        let named = marketing_message(&body, "Acme Heating & Air", &[], MARKETING_FOOTER);
        assert!(named.starts_with("Acme Heating & Air: aaa"));
        assert_eq!(segments(&named).count, 2);
        assert_eq!(segments(&named).units, 160 + "Acme Heating & Air: ".len());
        // A body that already starts with the name costs nothing more.
        let own = format!("Acme Heating & Air: {}", "a".repeat(100));
        assert_eq!(
            segments(&marketing_message(
                &own,
                "Acme Heating & Air",
                &[],
                MARKETING_FOOTER
            )),
            segments(&with_footer(&own, MARKETING_FOOTER))
        );
    }

    proptest! {
        #[test]
        fn gsm_count_matches_the_closed_form_for_single_septet_text(n in 0usize..2000) {
            let s = segments(&"x".repeat(n));
            let expected = if n == 0 { 0 } else if n <= 160 { 1 } else { n.div_ceil(153) };
            prop_assert_eq!(s.count, expected);
        }

        #[test]
        fn ucs2_count_matches_the_closed_form_for_bmp_text(n in 0usize..1000) {
            let s = segments(&"ж".repeat(n));
            let expected = if n == 0 { 0 } else if n <= 70 { 1 } else { n.div_ceil(67) };
            prop_assert_eq!(s.count, expected);
        }

        #[test]
        fn segments_always_hold_the_units(body in "\\PC{0,400}") {
            let s = segments(&body);
            let (single, multi) = match s.encoding { Encoding::Gsm7 => (160, 153), Encoding::Ucs2 => (70, 67) };
            if s.units <= single {
                prop_assert!(s.count <= 1);
            } else {
                prop_assert!(s.count * multi >= s.units);
                // A pair pushed to the next segment wastes at most one unit per segment.
                prop_assert!(s.count <= s.units.div_ceil(multi - 1));
            }
        }

        #[test]
        fn the_brand_prefix_costs_exactly_its_characters(
            body in "[a-zA-Z0-9 .,!?]{0,300}",
            brand in "[A-Z][a-zA-Z&' ]{0,29}",
        ) {
            let brand = brand.trim();
            let plain = with_footer(body.trim_start(), MARKETING_FOOTER);
            let named = marketing_message(&body, brand, &[], MARKETING_FOOTER);
            prop_assert!(starts_with_name(&named, brand));
            // Idempotent: a named body is named once.
            prop_assert_eq!(marketing_message(&named, brand, &[], MARKETING_FOOTER), named.clone());
            let (p, n) = (segments(&plain), segments(&named));
            if starts_with_name(body.trim_start(), brand) {
                prop_assert_eq!(p, n);
            } else {
                // `Brand: ` before a body, `Brand:` and a line break before a lone footer.
                prop_assert_eq!(n.units, p.units + brand.len() + 2);
                let expected = if n.units <= 160 { 1 } else { n.units.div_ceil(153) };
                prop_assert_eq!(n.count, expected);
            }
        }

        #[test]
        fn footer_is_idempotent(body in "\\PC{0,100}") {
            let once = with_marketing_footer(&body);
            prop_assert_eq!(with_marketing_footer(&once), once.clone());
            prop_assert!(once.ends_with(MARKETING_FOOTER) || once.to_lowercase().trim_end_matches('.').ends_with(&MARKETING_FOOTER.to_lowercase()));
        }
    }
}
