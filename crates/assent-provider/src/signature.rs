//! Twilio's webhook signature: base64(HMAC-SHA1(auth token, URL + each POST parameter's
//! name and value, sorted by name)). Compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(url.as_bytes());
    for (k, v) in sorted {
        m.update(k.as_bytes());
        m.update(v.as_bytes());
    }
    m
}

/// The `X-Twilio-Signature` Twilio would send for this request.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Checks a signature without leaking, through timing, how much of it matched.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    mac(auth_token, url, params).verify_slice(&given).is_ok()
}

/// The `Assent-Signature` header of an outbound event: `t=UNIX,v1=HEX`, where `v1` is
/// HMAC-SHA256 of `"{t}.{body}"` keyed with the endpoint's secret (CONTRACT.md "Outbound
/// events").
pub fn event_signature(secret: &str, t: i64, body: &str) -> String {
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body.as_bytes());
    let hex: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector README.md's "Outbound events" gives (computed independently with
    /// Python's `hmac`); the README must show these same values.
    #[test]
    fn event_signature_matches_the_readme_vector() {
        let body = r#"{"id":"evt_0123456789abcdef0123456789abcdef","type":"consent.changed","created_at":"2026-01-01T00:00:00Z","data":{"phone":"+15125550142","channel":"marketing","old_state":"opted_in","new_state":"opted_out"}}"#;
        let expected =
            "t=1767225600,v1=9b54aa70e4dd3765946077189587fa40e5fcf72b1470af116130820a6e83b252";
        assert_eq!(event_signature("whsec_test", 1767225600, body), expected);
        assert_ne!(event_signature("whsec_other", 1767225600, body), expected);
        assert_ne!(event_signature("whsec_test", 1767225601, body), expected);
        let readme = include_str!("../../../README.md");
        assert!(readme.contains(body), "README shows the vector's body");
        assert!(
            readme.contains(expected),
            "README shows the vector's header"
        );
        assert!(readme.contains("whsec_test") && readme.contains("1767225600"));
    }

    fn vector() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn matches_twilios_published_test_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            sign("12345", url, &vector()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(verify(
            "12345",
            url,
            &vector(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn parameter_order_does_not_matter_but_every_byte_does() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let mut p = vector();
        p.reverse();
        assert!(verify("12345", url, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify("12346", url, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        p[0].1.push('0');
        assert!(!verify("12345", url, &p, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify("12345", url, &vector(), "not base64!"));
        assert!(!verify("12345", url, &vector(), ""));
    }
}
