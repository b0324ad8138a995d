//! `/docs`: the API reference, rendered on the server from the same `openapi.json` the API
//! serves at `/api/v1/openapi.json` — every path and method with its summary, parameters,
//! request body and answers, and every schema as its JSON. No script and no CDN.

use askama::Template;
use axum::response::Response;
use serde_json::Value;

use super::render;

struct Param {
    name: String,
    place: String,
    required: bool,
    text: String,
}

struct Answer {
    status: String,
    text: String,
}

struct Operation {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    description: String,
    tag: String,
    params: Vec<Param>,
    body: Option<String>,
    answers: Vec<Answer>,
}

struct Schema {
    name: String,
    json: String,
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    title: String,
    version: String,
    description: String,
    operations: Vec<Operation>,
    schemas: Vec<Schema>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Follows a `#/components/…` reference inside the document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(doc, |at, part| &at[part]))
            .unwrap_or(v),
        None => v,
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for (path, item) in paths {
        let shared: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
        let Some(methods) = item.as_object() else {
            continue;
        };
        for (method, op) in methods {
            if !["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let params = shared
                .iter()
                .chain(op["parameters"].as_array().into_iter().flatten())
                .map(|p| {
                    let p = resolve(doc, p);
                    Param {
                        name: text(p, "name"),
                        place: text(p, "in"),
                        required: p["required"].as_bool().unwrap_or(false),
                        text: text(p, "description"),
                    }
                })
                .collect();
            let body = op.get("requestBody").map(|b| {
                let b = resolve(doc, b);
                match b["content"].as_object().and_then(|c| c.iter().next()) {
                    Some((kind, c)) => match c.get("schema") {
                        Some(s) => format!("{kind}\n{}", pretty(s)),
                        None => kind.clone(),
                    },
                    None => text(b, "description"),
                }
            });
            let answers = op["responses"]
                .as_object()
                .map(|r| {
                    r.iter()
                        .map(|(status, a)| Answer {
                            status: status.clone(),
                            text: text(resolve(doc, a), "description"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let anchor: String = format!("{method}{path}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            out.push(Operation {
                anchor,
                method: method.to_uppercase(),
                path: format!("/api/v1{path}"),
                summary: text(op, "summary"),
                description: text(op, "description"),
                tag: op["tags"][0].as_str().unwrap_or("").to_string(),
                params,
                body,
                answers,
            });
        }
    }
    out
}

pub async fn docs() -> Response {
    let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap_or_default();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .map(|s| {
            s.iter()
                .map(|(name, v)| Schema {
                    name: name.clone(),
                    json: pretty(v),
                })
                .collect()
        })
        .unwrap_or_default();
    render(&DocsPage {
        title: text(&doc["info"], "title"),
        version: text(&doc["info"], "version"),
        description: text(&doc["info"], "description"),
        operations: operations(&doc),
        schemas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_and_method_of_the_document_is_listed() {
        let doc: Value = serde_json::from_str(include_str!("../../openapi.json")).unwrap();
        let ops = operations(&doc);
        let expected: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| {
                m.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "put", "post", "patch", "delete"].contains(&k.as_str()))
                    .count()
            })
            .sum();
        assert_eq!(ops.len(), expected);
        let patch = ops
            .iter()
            .find(|o| o.method == "PATCH" && o.path == "/api/v1/estimates/{id}")
            .unwrap();
        assert!(patch.params.iter().any(|p| p.place == "path"));
        assert!(patch.body.is_some());
    }
}
