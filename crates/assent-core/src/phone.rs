//! Phone numbers in E.164, the only form Assent stores or returns.
//!
//! Businesses type numbers every way there is: `(512) 555-0142`, `512.555.0142`,
//! `1-512-555-0142`, `+1 512 555 0142`. A bare national number is read as NANP (US and
//! Canada), since those are the countries Assent's carriers and rules cover; any other
//! country must be written with its `+` prefix.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("a phone number is required")]
    Empty,
    #[error("a phone number may contain only digits, spaces, +, (, ), -, . and /")]
    BadCharacter,
    #[error("a phone number must have 10 digits (US/Canada) or start with + and a country code")]
    BadLength,
    #[error("not a valid US/Canada number: area code and exchange cannot start with 0 or 1")]
    InvalidNanp,
}

/// A phone number in E.164 form (`+15125550142`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        // Stored numbers and API input are mostly already E.164: a fan-out parses a
        // million of them, and the general path builds three strings for each.
        if is_canonical(input) {
            return Ok(E164(input.to_string()));
        }
        Self::parse_any(input)
    }

    fn parse_any(input: &str) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                // A query string may turn a leading `+` into a space before we see it.
                '+' if i == 0 => plus = true,
                ' ' | '(' | ')' | '-' | '.' | '/' | '\u{a0}' => {}
                _ => return Err(PhoneError::BadCharacter),
            }
        }
        let national = if plus {
            if let Some(rest) = digits.strip_prefix('1') {
                rest.to_string()
            } else {
                // Other countries: E.164 allows at most 15 digits; shorter than 8 is no
                // real subscriber number.
                if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
                    return Err(PhoneError::BadLength);
                }
                return Ok(E164(format!("+{digits}")));
            }
        } else if digits.len() == 11 && digits.starts_with('1') {
            digits[1..].to_string()
        } else if digits.len() == 10 {
            digits
        } else {
            return Err(PhoneError::BadLength);
        };
        if national.len() != 10 {
            return Err(PhoneError::BadLength);
        }
        let b = national.as_bytes();
        if b[0] < b'2' || b[3] < b'2' {
            return Err(PhoneError::InvalidNanp);
        }
        Ok(E164(format!("+1{national}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for US, Canadian and other NANP numbers (+1).
    pub fn is_nanp(&self) -> bool {
        self.0.starts_with("+1") && self.0.len() == 12
    }

    /// The NANP area code (`512` of `+15125550142`).
    pub fn area_code(&self) -> Option<u16> {
        if self.is_nanp() {
            self.0[2..5].parse().ok()
        } else {
            None
        }
    }

    /// The number as logs may show it: only the last two digits visible.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// True when `input` is exactly what [`E164::parse`] would make of it and valid: `+`, then
/// a NANP number (`1`, a 10-digit number whose area code and exchange start at 2 or
/// above) or another country's 8 to 15 digits, not starting with 0.
fn is_canonical(input: &str) -> bool {
    let Some(digits) = input.strip_prefix('+') else {
        return false;
    };
    let b = digits.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match b.first() {
        Some(b'1') => b.len() == 11 && b[1] >= b'2' && b[4] >= b'2',
        Some(b'0') | None => false,
        Some(_) => (8..=15).contains(&b.len()),
    }
}

/// Masks any phone-like string for logs, keeping the country code and the last two digits.
pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    if n <= 4 {
        return "*".repeat(n);
    }
    let keep_front = if number.starts_with("+1") { 2 } else { 1 };
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i < keep_front || i >= n - 2 { c } else { '*' })
        .collect()
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for E164 {
    type Error = PhoneError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        E164::parse(&value)
    }
}

impl From<E164> for String {
    fn from(value: E164) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn common_us_forms_all_parse_to_the_same_e164() {
        for s in [
            "(512) 555-0142",
            "512-555-0142",
            "512.555.0142",
            "5125550142",
            "1 512 555 0142",
            "1-512-555-0142",
            "+1 (512) 555-0142",
            "+15125550142",
            " 15125550142 ",
        ] {
            assert_eq!(E164::parse(s).unwrap().as_str(), "+15125550142", "{s}");
        }
    }

    #[test]
    fn query_string_space_for_plus_is_read_as_plus() {
        // `+15125550142` in a query string decodes to " 15125550142".
        assert_eq!(
            E164::parse(" 15125550142").unwrap().as_str(),
            "+15125550142"
        );
    }

    #[test]
    fn bad_numbers_are_refused_with_a_reason() {
        assert_eq!(E164::parse(""), Err(PhoneError::Empty));
        assert_eq!(E164::parse("555-0142"), Err(PhoneError::BadLength));
        assert_eq!(E164::parse("512555014x"), Err(PhoneError::BadCharacter));
        assert_eq!(E164::parse("1125550142"), Err(PhoneError::InvalidNanp));
        assert_eq!(E164::parse("5121550142"), Err(PhoneError::InvalidNanp));
        assert_eq!(E164::parse("+1512555014"), Err(PhoneError::BadLength));
        assert_eq!(E164::parse("51255501420"), Err(PhoneError::BadLength));
        assert_eq!(E164::parse("5+125550142"), Err(PhoneError::BadCharacter));
    }

    #[test]
    fn international_numbers_need_their_plus() {
        assert_eq!(
            E164::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
        assert!(!E164::parse("+442079460958").unwrap().is_nanp());
    }

    #[test]
    fn masking_hides_all_but_the_last_two_digits() {
        assert_eq!(mask("+15125550142"), "+1********42");
        assert_eq!(E164::parse("5125550142").unwrap().masked(), "+1********42");
        assert_eq!(E164::parse("5125550142").unwrap().area_code(), Some(512));
    }

    proptest! {
        #[test]
        fn any_valid_nanp_number_round_trips_through_any_format(
            npa in 200u32..1000, nxx in 200u32..1000, line in 0u32..10000,
            style in 0usize..6,
        ) {
            let e164 = format!("+1{npa}{nxx}{line:04}");
            let text = match style {
                0 => format!("({npa}) {nxx}-{line:04}"),
                1 => format!("{npa}.{nxx}.{line:04}"),
                2 => format!("1{npa}{nxx}{line:04}"),
                3 => format!("+1 {npa} {nxx} {line:04}"),
                4 => format!("{npa}-{nxx}-{line:04}"),
                _ => e164.clone(),
            };
            let parsed = E164::parse(&text).unwrap();
            prop_assert_eq!(parsed.as_str(), e164.as_str());
            // Parsing is idempotent on its own output.
            prop_assert_eq!(E164::parse(parsed.as_str()).unwrap(), parsed);
        }

        /// The shortcut for numbers already in E.164 gives what the general path gives,
        /// valid or not.
        #[test]
        fn the_canonical_shortcut_agrees_with_the_general_parse(
            s in "\\+?[0-9]{0,17}|\\+1[0-9]{10}|\\+[2-9][0-9]{6,15}|\\PC{0,14}",
        ) {
            prop_assert_eq!(E164::parse(&s), E164::parse_any(&s));
        }

        #[test]
        fn parse_never_panics_and_output_is_always_e164(s in "\\PC{0,20}") {
            if let Ok(p) = E164::parse(&s) {
                prop_assert!(p.as_str().starts_with('+'));
                prop_assert!(p.as_str()[1..].chars().all(|c| c.is_ascii_digit()));
                prop_assert!(p.as_str().len() <= 16);
            }
        }
    }
}
