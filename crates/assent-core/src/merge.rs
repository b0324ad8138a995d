//! Merge fields in campaign bodies: `{first_name}`, `{business_name}`, with a fallback
//! after a bar (`{first_name|there}`). A field with no value becomes its fallback or
//! nothing, so no raw `{…}` ever reaches a customer; an unknown field is refused when the
//! campaign is created.

use std::collections::BTreeMap;

pub const FIELDS: &[&str] = &["first_name", "last_name", "name", "business_name", "phone"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error(
        "unknown merge field {{{0}}}; known fields are first_name, last_name, name, business_name, phone"
    )]
    Unknown(String),
    #[error("a merge field is opened with {{ but never closed")]
    Unclosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field { name: String, fallback: String },
}

/// A parsed body, checked once and filled per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Part>);

impl Template {
    pub fn parse(body: &str) -> Result<Self, MergeError> {
        let mut parts = Vec::new();
        let mut rest = body;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or(MergeError::Unclosed)?;
            let inner = &after[..close];
            let (name, fallback) = match inner.split_once('|') {
                Some((n, f)) => (n.trim(), f.to_string()),
                None => (inner.trim(), String::new()),
            };
            if !FIELDS.contains(&name) {
                return Err(MergeError::Unknown(name.to_string()));
            }
            parts.push(Part::Field {
                name: name.to_string(),
                fallback,
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template(parts))
    }

    pub fn fill(&self, values: &BTreeMap<&str, String>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field { name, fallback } => {
                    match values.get(name.as_str()).filter(|v| !v.trim().is_empty()) {
                        Some(v) => out.push_str(v.trim()),
                        None => out.push_str(fallback),
                    }
                }
            }
        }
        // A missing value can leave doubled spaces or a space before punctuation.
        let mut tidy = String::with_capacity(out.len());
        for c in out.chars() {
            if c == ' ' && tidy.ends_with(' ') {
                continue;
            }
            if matches!(c, ',' | '!' | '.' | '?') && tidy.ends_with(' ') {
                tidy.pop();
            }
            tidy.push(c);
        }
        tidy.trim().to_string()
    }
}

/// The values of one recipient.
pub fn values<'a>(
    customer_name: Option<&str>,
    business: &str,
    phone: &str,
) -> BTreeMap<&'a str, String> {
    let mut v = BTreeMap::new();
    let name = customer_name.unwrap_or("").trim().to_string();
    let mut words = name.split_whitespace();
    v.insert("first_name", words.next().unwrap_or("").to_string());
    v.insert("last_name", words.last().unwrap_or("").to_string());
    v.insert("name", name);
    v.insert("business_name", business.to_string());
    v.insert("phone", phone.to_string());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fields_are_filled_and_missing_ones_use_the_fallback() {
        let t = Template::parse("Hi {first_name|there}, {business_name} here: 10% off!").unwrap();
        assert_eq!(
            t.fill(&values(Some("Dana Whitfield"), "Acme", "+1")),
            "Hi Dana, Acme here: 10% off!"
        );
        assert_eq!(
            t.fill(&values(None, "Acme", "+1")),
            "Hi there, Acme here: 10% off!"
        );
        let t = Template::parse("Hi {first_name}, sale today").unwrap();
        assert_eq!(t.fill(&values(Some(""), "Acme", "+1")), "Hi, sale today");
    }

    #[test]
    fn unknown_and_unclosed_fields_are_refused() {
        assert_eq!(
            Template::parse("Hi {frist_name}"),
            Err(MergeError::Unknown("frist_name".into()))
        );
        assert_eq!(Template::parse("Hi {first_name"), Err(MergeError::Unclosed));
    }

    proptest! {
        #[test]
        fn a_filled_body_never_contains_a_raw_field(
            name in proptest::option::of("[A-Za-z ]{0,12}"),
            field in proptest::sample::select(FIELDS.to_vec()),
            fallback in proptest::option::of("[a-z]{0,6}"),
        ) {
            let body = match &fallback {
                Some(f) => format!("Hello {{{field}|{f}}} from us"),
                None => format!("Hello {{{field}}} from us"),
            };
            let t = Template::parse(&body).unwrap();
            let out = t.fill(&values(name.as_deref(), "Acme", "+15125550142"));
            prop_assert!(!out.contains('{') && !out.contains('}'), "{out}");
        }
    }
}
