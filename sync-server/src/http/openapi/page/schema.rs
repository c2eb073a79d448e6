//! The schema and security-scheme parts of the `/docs` page: a table per
//! schema, and the words for each JSON type.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use super::{anchor, capitalised, escape, prose};

pub(super) fn render_schemas(out: &mut String, doc: &Value) {
    out.push_str("<section id=\"schemas\"><h2>Schemas</h2>");
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    for (name, schema) in schemas.into_iter().flatten() {
        let _ = write!(
            out,
            "<article class=\"schema\" id=\"schema-{}\"><h3>{}</h3>",
            anchor(name),
            escape(name)
        );
        if let Some(description) = schema.get("description").and_then(Value::as_str) {
            out.push_str(&prose(description));
        }
        let mut rows = String::new();
        let mut includes = Vec::new();
        collect_properties(schema, &mut rows, &mut includes);
        if !includes.is_empty() {
            let _ = write!(out, "<p>All fields of {}, and:</p>", includes.join(", "));
        }
        if rows.is_empty() {
            let _ = write!(out, "<p>Type: {}</p>", type_of(schema));
        } else {
            let _ = write!(
                out,
                "<table><tr><th>field</th><th>type</th><th>required</th><th>description</th></tr>{rows}</table>"
            );
        }
        out.push_str("</article>\n");
    }
    out.push_str("</section>\n");
}

/// Table rows for an object's properties; the parts of an `allOf` (how
/// flattened fields appear) are followed, references among them listed in
/// `includes`.
pub(super) fn collect_properties(schema: &Value, rows: &mut String, includes: &mut Vec<String>) {
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            if part.get("$ref").is_some() {
                includes.push(type_of(part));
            } else {
                collect_properties(part, rows, includes);
            }
        }
    }
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required = required_set(schema);
    for (name, property) in properties {
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            type_of(property),
            if required.contains(name.as_str()) {
                "yes"
            } else {
                "no"
            },
            prose(
                property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ),
        );
    }
}

pub(super) fn required_set(schema: &Value) -> BTreeSet<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

pub(super) fn render_security_schemes(out: &mut String, doc: &Value) {
    out.push_str("<section id=\"security-schemes\"><h2>Security schemes</h2>");
    let schemes = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object);
    for (name, scheme) in schemes.into_iter().flatten() {
        let text = |key: &str| scheme.get(key).and_then(Value::as_str).unwrap_or("");
        let how = match text("type") {
            "http" => format!(
                "HTTP <code>Authorization: {} …</code>{}",
                escape(&capitalised(text("scheme"))),
                match text("bearerFormat") {
                    "" => String::new(),
                    format => format!(" ({})", escape(format)),
                }
            ),
            "apiKey" => format!(
                "{} <code>{}</code>",
                escape(text("in")),
                escape(text("name"))
            ),
            other => escape(other),
        };
        let _ = writeln!(
            out,
            "<article class=\"security-scheme\" id=\"security-{}\"><h3>{}</h3><p>{how}</p>{}</article>",
            anchor(name),
            escape(name),
            prose(text("description")),
        );
    }
    out.push_str("</section>\n");
}

/// A schema as a short type expression, with links to named schemas.
pub(super) fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{}\">{}</a>", anchor(name), escape(name));
    }
    for (key, separator) in [("oneOf", " | "), ("anyOf", " | "), ("allOf", " &amp; ")] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            return parts
                .iter()
                .map(type_of)
                .collect::<Vec<_>>()
                .join(separator);
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(value) = schema.get("const") {
        return format!("<code>{}</code>", escape(&value.to_string()));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ if schema.get("properties").is_some() => vec!["object"],
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".to_owned();
    }
    types
        .iter()
        .map(|t| match *t {
            "array" => format!(
                "array of {}",
                schema
                    .get("items")
                    .map_or_else(|| "any".to_owned(), type_of)
            ),
            "object" => object_of(schema),
            "null" => "null".to_owned(),
            other => match schema.get("format").and_then(Value::as_str) {
                Some(format) => format!("{} ({})", escape(other), escape(format)),
                None => escape(other),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// An inline object: `{ name: type, optional?: type }`, or a map.
pub(super) fn object_of(schema: &Value) -> String {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let required = required_set(schema);
        let fields = properties
            .iter()
            .map(|(name, property)| {
                format!(
                    "{}{}: {}",
                    escape(name),
                    if required.contains(name.as_str()) {
                        ""
                    } else {
                        "?"
                    },
                    type_of(property)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        return format!("{{ {fields} }}");
    }
    match schema.get("additionalProperties") {
        Some(values @ Value::Object(_)) => format!("map of {}", type_of(values)),
        _ => "object".to_owned(),
    }
}

pub(super) fn yes_no(flag: Option<&Value>) -> &'static str {
    if flag.and_then(Value::as_bool) == Some(true) {
        "yes"
    } else {
        "no"
    }
}
