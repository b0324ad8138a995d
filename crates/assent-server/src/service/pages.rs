//! Paging, for the API and the web app: the opaque cursors both hand out, and the
//! `limit` rule.

use assent_store::page::{Key, Seek};

use super::error::{Error, Result};

/// A list's `limit`: `default` when absent, 1 to 1000.
pub fn limit(v: Option<&str>, default: usize) -> Result<usize> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Error::invalid("limit", "must be a whole number from 1 to 1000")),
    }
}

/// An opaque cursor: the parts of a key, base64url'd so callers treat it as a token rather
/// than build one. Every list's cursor is made here.
pub fn cursor(parts: &[&str]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(parts.join("\n"))
}

/// The `n` parts of a cursor made by [`cursor`]; `None` when it is not one.
pub fn parts(cursor: &str, n: usize) -> Option<Vec<String>> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let parts: Vec<String> = raw.splitn(n, '\n').map(str::to_string).collect();
    (parts.len() == n).then_some(parts)
}

/// A list key's cursor.
pub fn key_cursor(k: &Key) -> String {
    cursor(&[&k.at.to_string(), &k.id])
}

/// The key in a cursor from [`key_cursor`]; `None` when it is not one. `numeric` lists
/// (messages) order by two numbers.
pub fn parse_key(c: &str, numeric: bool) -> Option<Key> {
    let p = parts(c, 2)?;
    let at = p[0].parse().ok()?;
    if numeric && p[1].parse::<i64>().is_err() {
        return None;
    }
    Some(Key {
        at,
        id: p[1].clone(),
    })
}

/// `after` (or `before`) as a key: empty is none, anything else must be a cursor.
pub fn from_param(field: &str, v: Option<&str>, numeric: bool) -> Result<Option<Key>> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(c) => parse_key(c, numeric)
            .map(Some)
            .ok_or_else(|| Error::invalid(field, "is not a cursor from this list's `next`")),
    }
}

/// The page an API request asks for: `limit` (default 100) rows after `after`.
pub fn api_seek(limit_v: Option<&str>, after: Option<&str>, numeric: bool) -> Result<Seek> {
    let limit = limit(limit_v, 100)?;
    Ok(Seek::after(from_param("after", after, numeric)?, limit))
}

/// How many rows a web page shows.
pub const WEB_PAGE: usize = 50;

/// The page a web request asks for: 50 rows after `after`, or before `before`.
pub fn web_seek(after: Option<&str>, before: Option<&str>, numeric: bool) -> Seek {
    // A cursor that is not one (edited by hand, say) starts from the top.
    let key = |v: Option<&str>| v.and_then(|c| parse_key(c, numeric));
    match key(before) {
        Some(k) => Seek::before(Some(k), WEB_PAGE),
        None => Seek::after(key(after), WEB_PAGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let k = Key {
            at: 1_700_000_000_000,
            id: "a\nb".into(),
        };
        assert_eq!(parse_key(&key_cursor(&k), false), Some(k));
        assert_eq!(parse_key("not a cursor!", false), None);
        assert_eq!(parse_key(&cursor(&["x", "1"]), false), None);
        assert_eq!(parse_key(&cursor(&["1", "x"]), true), None);
        assert!(limit(Some("0"), 100).is_err());
        assert!(limit(Some("1001"), 100).is_err());
        assert_eq!(limit(None, 100).unwrap(), 100);
        assert_eq!(limit(Some("1000"), 100).unwrap(), 1000);
    }
}
