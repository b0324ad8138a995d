//! What the API answers when it cannot take a request at all: an unknown path, a wrong
//! method, a body too large, not JSON, or JSON of the wrong shape. Every one is the API's
//! JSON error shape (CONTRACT.md), never axum's plain text, and a wrong-shaped body is
//! named by its field's path (`phones[0].number`) in words, not the parser's.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// The server's fallback: under `/api/` the JSON error shape, elsewhere (the web app's
/// paths) the plain 404 axum gives.
pub async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    if path != "/api" && !path.starts_with("/api/") {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    ApiError::new(
        Code::NotFound,
        format!("there is no endpoint at {path}; the endpoints are listed in /api/v1/openapi.json"),
    )
    .into_response()
}

/// Rewrites the refusals axum makes itself (405 for a method a route does not take, 413
/// from a body extractor's limit) into the JSON error shape, keeping their headers
/// (`Allow`). Answers that are JSON already, or any other status, pass untouched.
pub async fn in_json(res: Response) -> Response {
    let code = match res.status().as_u16() {
        405 => Code::MethodNotAllowed,
        413 => Code::BodyTooLarge,
        _ => return res,
    };
    if is_json(res.headers()) {
        return res;
    }
    let (parts, _) = res.into_parts();
    // The method router adds `Allow` after this layer has run, so it is not here to quote.
    let message = match code {
        Code::MethodNotAllowed => {
            "this endpoint does not take that method; the Allow header lists those it does"
        }
        _ => too_large_message(),
    };
    let mut answer = ApiError::new(code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

fn too_large_message() -> &'static str {
    "the request body is larger than this endpoint takes"
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

/// A body that could not be read.
pub fn read_failed(rejection: BytesRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(Code::BodyTooLarge, too_large_message());
    }
    ApiError::new(
        Code::InvalidRequest,
        "the request body could not be read; send it again",
    )
}

/// The body as `T`: 422 `invalid_request` without a JSON content type, 400 `invalid_json`
/// when it is not JSON, 422 `invalid_field` naming the field when it is JSON of the wrong
/// shape.
pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::new(
            Code::InvalidRequest,
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    // Syntax first, over the whole body: a later syntax error must not hide behind an
    // earlier field of the wrong type.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(not_json(&e, bytes));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = path_of(e.path());
        // serde reads a struct from a list of its fields' values too, so an array where an
        // object belongs fails inside it ("[0]"): say what was meant instead.
        if (path.is_empty() || path.starts_with('[')) && bytes.trim_ascii_start().starts_with(b"[")
        {
            return ApiError::field("body", "must be a JSON object, not a list");
        }
        let (field, message) = explain(&path, &without_position(e.inner()));
        ApiError::field(if field.is_empty() { "body" } else { &field }, message)
    })
}

fn not_json(e: &serde_json::Error, bytes: &[u8]) -> ApiError {
    let message = if bytes.iter().all(u8::is_ascii_whitespace) {
        "the body is empty; send a JSON object".to_string()
    } else if e.classify() == serde_json::error::Category::Eof {
        "the body is not valid JSON: it ends before the JSON does".to_string()
    } else {
        format!(
            "the body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    };
    ApiError::new(Code::InvalidJson, message)
}

/// `phones[0].number`, as a person reads the body.
fn path_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// serde_json's message without its " at line 1 column 30".
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.line() == 0 {
        return text;
    }
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The field a serde message is about (a missing or unknown field is one level below the
/// path serde reports) and what is wrong with it, in words.
fn explain(path: &str, serde_message: &str) -> (String, String) {
    let below = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(rest) = serde_message.strip_prefix("missing field ") {
        return (below(&unquote(rest)), "is required".into());
    }
    if let Some(rest) = serde_message.strip_prefix("unknown field ") {
        let (name, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let message = match names(expected) {
            Some(known) => format!("is not a field here; the fields are {known}"),
            None => "is not a field here".into(),
        };
        // serde's path already ends at the unknown key.
        let name = unquote(name);
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            below(&name)
        };
        return (field, message);
    }
    if let Some(rest) = serde_message.strip_prefix("unknown variant ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let message = match names(expected) {
            Some(known) => format!("must be one of {known}, not {}", unquote(got)),
            None => format!("cannot be {}", unquote(got)),
        };
        return (path.to_string(), message);
    }
    if let Some(rest) = serde_message.strip_prefix("invalid type: ") {
        let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return (
            path.to_string(),
            format!(
                "must be {}, not {}",
                expected_in_words(expected),
                got_in_words(got)
            ),
        );
    }
    if let Some(rest) = serde_message.strip_prefix("invalid value: ") {
        let (_, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        return (
            path.to_string(),
            format!("must be {}", expected_in_words(expected)),
        );
    }
    if serde_message.starts_with("invalid length ") {
        return (path.to_string(), "has the wrong number of items".into());
    }
    if serde_message.starts_with("duplicate field ") {
        return (path.to_string(), "names a field twice".into());
    }
    // A message of our own, from a type's own parsing (a time zone, a phone).
    (path.to_string(), serde_message.to_string())
}

/// `` `a`, `b` `` / "one of `a`, `b`" / "`a` or `b`" → "a, b"; `None` for "there are no
/// fields" and the like.
fn names(expected: &str) -> Option<String> {
    let list: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('`').to_string()
}

/// What serde says a type expects, as a person would say it (Rust's type names are not for
/// the API's users).
fn expected_in_words(expected: &str) -> String {
    let e = expected.trim();
    let words = match e {
        "a boolean" | "bool" => "true or false",
        "a string" | "a borrowed string" | "string" | "a character" | "char" => "a string",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "an integer" => "a whole number",
        "f32" | "f64" | "a number" => "a number",
        "a sequence" | "a list" => "a list",
        "a map" | "map" => "an object",
        "unit" => "null",
        _ if e.starts_with("struct ") || e.starts_with("a map") => "an object",
        _ if e.starts_with("a sequence") || e.starts_with("tuple") => "a list",
        _ if e.starts_with("enum ") || e.starts_with("variant ") => {
            "one of the names this field takes"
        }
        _ if e.starts_with("a string") => "a string",
        _ if e.is_empty() => "something else",
        _ => return e.trim_matches('`').to_string(),
    };
    words.to_string()
}

/// What serde says it found (`string "x"`, `integer `5``, `map`), in words.
fn got_in_words(got: &str) -> &'static str {
    let g = got.trim();
    if g.starts_with("string") || g.starts_with("char") {
        "a string"
    } else if g.starts_with("integer") || g.starts_with("floating point") {
        "a number"
    } else if g.starts_with("boolean") {
        "true or false"
    } else if g.starts_with("sequence") {
        "a list"
    } else if g.starts_with("map") {
        "an object"
    } else if g.starts_with("null") || g.starts_with("unit") {
        "null"
    } else {
        "something else"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Phone {
        number: String,
        #[serde(default)]
        marketing_updates: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "snake_case")]
    enum Kind {
        Marketing,
        MissedCalls,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        phones: Vec<Phone>,
        kind: Option<Kind>,
        limit: Option<u32>,
    }

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        h
    }

    fn refused(body: &str) -> (u16, &'static str, String) {
        let e = parse::<Body>(&json_headers(), body.as_bytes()).unwrap_err();
        (e.status.as_u16(), e.code.as_str(), e.message)
    }

    #[test]
    fn a_wrong_shape_names_the_field_by_its_path_in_words() {
        for (body, message) in [
            (
                r#"{"name":"A","phones":[{}]}"#,
                "phones[0].number: is required",
            ),
            (
                r#"{"name":"A","phones":[{"number":"1","marketing_updates":"yes"}]}"#,
                "phones[0].marketing_updates: must be true or false, not a string",
            ),
            (
                r#"{"name":"A","phones":[{"number":"1","colour":1}]}"#,
                "phones[0].colour: is not a field here; the fields are number, marketing_updates",
            ),
            (
                r#"{"name":"A","phones":[],"kind":"sms"}"#,
                "kind: must be one of marketing, missed_calls, not sms",
            ),
            (
                r#"{"name":"A","phones":[],"limit":-1}"#,
                "limit: must be a whole number, 0 or more",
            ),
            (
                r#"{"name":"A","phones":{}}"#,
                "phones: must be a list, not an object",
            ),
            (r#"{"phones":[]}"#, "name: is required"),
            (r#"[1]"#, "body: must be a JSON object, not a list"),
            (r#""x""#, "body: must be an object, not a string"),
        ] {
            assert_eq!(
                refused(body),
                (422, "invalid_field", message.into()),
                "{body}"
            );
        }
    }

    #[test]
    fn a_body_that_is_not_json_is_400_invalid_json() {
        for body in [
            r#"{"name":"A",}"#,
            r#"{"name":"#,
            "",
            "nope",
            r#"{"limit":"x"} x"#,
        ] {
            let (status, code, message) = refused(body);
            assert_eq!((status, code), (400, "invalid_json"), "{body}: {message}");
            assert!(message.starts_with("the body "), "{message}");
        }
        assert_eq!(refused("  ").2, "the body is empty; send a JSON object");
    }

    #[test]
    fn without_a_json_content_type_the_body_is_refused_as_before() {
        let e = parse::<Body>(&HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, Code::InvalidRequest));
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json; charset=utf-8"
                .parse()
                .unwrap(),
        );
        assert!(parse::<serde_json::Value>(&h, b"{}").is_ok());
    }
}
