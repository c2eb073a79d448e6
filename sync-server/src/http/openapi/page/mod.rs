//! The `/docs` page: an OpenAPI 3 document (as JSON) rendered as one HTML
//! page, operations grouped by tag, then the schemas and the security
//! schemes. Inline style, no script, no link or asset outside the server,
//! and every text of the document escaped.

use std::fmt::Write as _;

use serde_json::Value;

mod schema;
use schema::{render_schemas, render_security_schemes, type_of, yes_no};

/// Methods in the order the page lists them under one path.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #fafafa; line-height: 1.45; }
header, main { max-width: 72rem; margin: 0 auto; padding: 0 1.5rem; }
header { padding-top: 1.5rem; }
h1 small { font-weight: normal; color: #666; font-size: 0.6em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.3rem; margin-top: 2.5rem; }
nav ul { list-style: none; padding-left: 1rem; margin: 0.2rem 0 0.8rem; }
nav li { margin: 0.1rem 0; }
article { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 1rem; margin: 1rem 0; }
article h3 { margin: 0.2rem 0 0.4rem; font-size: 1.05rem; }
h4 { margin: 0.8rem 0 0.3rem; font-size: 0.95rem; color: #444; }
code { font-family: ui-monospace, monospace; font-size: 0.9em; background: #f0f0f0; padding: 0 0.2em; border-radius: 3px; }
.method { display: inline-block; min-width: 4.2em; text-align: center; font-family: ui-monospace, monospace; font-size: 0.85em; color: #fff; border-radius: 3px; padding: 0.05em 0.3em; margin-right: 0.4em; background: #555; }
.method.get { background: #1f6feb; } .method.post { background: #1a7f37; } .method.put { background: #9a6700; } .method.delete { background: #cf222e; }
.summary { font-weight: 600; margin: 0.2rem 0; }
.security { color: #444; }
table { border-collapse: collapse; width: 100%; margin: 0.2rem 0 0.4rem; font-size: 0.92rem; }
th, td { text-align: left; vertical-align: top; border-top: 1px solid #eee; padding: 0.25rem 0.5rem 0.25rem 0; }
th { color: #555; font-weight: 600; }
td p { margin: 0 0 0.3rem; }
.status { font-family: ui-monospace, monospace; font-weight: 600; }
";

/// Renders `doc`, an OpenAPI 3 document as JSON, as a whole HTML page.
pub fn render(doc: &Value) -> String {
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API");
    let version = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let groups = operations_by_tag(doc);

    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} {}</title><style>{STYLE}</style></head><body>\n<header><h1>{} <small>{}</small></h1>",
        escape(title),
        escape(version),
        escape(title),
        escape(version),
    );
    if let Some(description) = doc.pointer("/info/description").and_then(Value::as_str) {
        out.push_str(&prose(description));
    }
    let _ = write!(
        out,
        "<p>The machine-readable document (OpenAPI {}): <a href=\"api/openapi.json\">/api/openapi.json</a>.</p>",
        escape(doc.get("openapi").and_then(Value::as_str).unwrap_or("3"))
    );
    out.push_str("<nav><h2>Contents</h2>");
    for group in &groups {
        let _ = write!(
            out,
            "<strong><a href=\"#tag-{}\">{}</a></strong><ul>",
            anchor(&group.tag),
            escape(&group.tag)
        );
        for op in &group.operations {
            let _ = write!(
                out,
                "<li><a href=\"#{}\"><span class=\"method {}\">{}</span><code>{}</code></a> {}</li>",
                op.anchor(),
                op.method,
                op.method.to_uppercase(),
                escape(op.path),
                escape(op.body.get("summary").and_then(Value::as_str).unwrap_or("")),
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<strong><a href=\"#schemas\">Schemas</a></strong> · <strong><a href=\"#security-schemes\">Security schemes</a></strong></nav></header>\n<main>");

    for group in &groups {
        let _ = write!(
            out,
            "<section id=\"tag-{}\"><h2>{}</h2>",
            anchor(&group.tag),
            escape(&group.tag)
        );
        if let Some(description) = &group.description {
            out.push_str(&prose(description));
        }
        for op in &group.operations {
            render_operation(&mut out, doc, op);
        }
        out.push_str("</section>\n");
    }
    render_schemas(&mut out, doc);
    render_security_schemes(&mut out, doc);
    out.push_str("</main></body></html>\n");
    out
}

struct Operation<'a> {
    method: &'static str,
    path: &'a str,
    body: &'a Value,
}

impl Operation<'_> {
    fn anchor(&self) -> String {
        match self.body.get("operationId").and_then(Value::as_str) {
            Some(id) => format!("op-{}", anchor(id)),
            None => format!("op-{}-{}", self.method, anchor(self.path)),
        }
    }
}

struct TagGroup<'a> {
    tag: String,
    description: Option<String>,
    operations: Vec<Operation<'a>>,
}

/// Operations grouped by their first tag: the document's tags in its order,
/// then tags it does not declare, then untagged operations under "other".
fn operations_by_tag(doc: &Value) -> Vec<TagGroup<'_>> {
    let mut groups: Vec<TagGroup<'_>> = doc
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|tag| {
            Some(TagGroup {
                tag: tag.get("name")?.as_str()?.to_owned(),
                description: tag
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                operations: Vec::new(),
            })
        })
        .collect();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for method in METHODS {
            let Some(body) = item.get(method) else {
                continue;
            };
            let tag = body
                .pointer("/tags/0")
                .and_then(Value::as_str)
                .unwrap_or("other");
            let index = match groups.iter().position(|g| g.tag == tag) {
                Some(i) => i,
                None => {
                    groups.push(TagGroup {
                        tag: tag.to_owned(),
                        description: None,
                        operations: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            groups[index]
                .operations
                .push(Operation { method, path, body });
        }
    }
    groups.retain(|g| !g.operations.is_empty());
    groups
}

fn render_operation(out: &mut String, doc: &Value, op: &Operation<'_>) {
    let _ = write!(
        out,
        "<article class=\"operation\" id=\"{}\"><h3><span class=\"method {}\">{}</span><code class=\"path\">{}</code></h3>",
        op.anchor(),
        op.method,
        op.method.to_uppercase(),
        escape(op.path)
    );
    if let Some(summary) = op.body.get("summary").and_then(Value::as_str) {
        let _ = write!(out, "<p class=\"summary\">{}</p>", escape(summary));
    }
    if let Some(description) = op.body.get("description").and_then(Value::as_str) {
        out.push_str(&prose(description));
    }
    let _ = write!(
        out,
        "<p class=\"security\"><strong>Security:</strong> {}</p>",
        security_of(doc, op.body)
    );

    if let Some(parameters) = op.body.get("parameters").and_then(Value::as_array)
        && !parameters.is_empty()
    {
        out.push_str("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>");
        for parameter in parameters {
            let text = |key: &str| parameter.get(key).and_then(Value::as_str).unwrap_or("");
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text("name")),
                escape(text("in")),
                parameter.get("schema").map_or_else(String::new, type_of),
                yes_no(parameter.get("required")),
                prose(text("description")),
            );
        }
        out.push_str("</table>");
    }

    if let Some(body) = op.body.get("requestBody") {
        out.push_str("<h4>Request body</h4>");
        if let Some(description) = body.get("description").and_then(Value::as_str) {
            out.push_str(&prose(description));
        }
        let _ = write!(
            out,
            "<p>{}{}</p>",
            if body.get("required").and_then(Value::as_bool) == Some(true) {
                "Required. "
            } else {
                ""
            },
            content_of(body)
        );
    }

    if let Some(responses) = op.body.get("responses").and_then(Value::as_object) {
        out.push_str(
            "<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>body</th></tr>",
        );
        for (status, response) in responses {
            let mut description = prose(
                response
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
            );
            if let Some(headers) = response.get("headers").and_then(Value::as_object) {
                for (name, header) in headers {
                    let _ = write!(
                        description,
                        "<p>Header <code>{}</code>: {}</p>",
                        escape(name),
                        escape(
                            header
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                        )
                    );
                }
            }
            let _ = write!(
                out,
                "<tr><td class=\"status\">{}</td><td>{}</td><td>{}</td></tr>",
                escape(status),
                description,
                content_of(response)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</article>\n");
}

/// Who may call: alternatives joined by "or", the schemes one alternative
/// needs together joined by "+".
fn security_of(doc: &Value, operation: &Value) -> String {
    let requirements = operation
        .get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array);
    let alternatives: Vec<String> = requirements
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|requirement| {
            if requirement.is_empty() {
                return "none".to_owned();
            }
            requirement
                .keys()
                .map(|name| {
                    format!(
                        "<a href=\"#security-{}\"><code>{}</code></a>",
                        anchor(name),
                        escape(name)
                    )
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();
    if alternatives.is_empty() {
        "none (public)".to_owned()
    } else {
        alternatives.join(" or ")
    }
}

/// `media/type: schema` for each content of a request body or response.
fn content_of(body: &Value) -> String {
    let Some(content) = body.get("content").and_then(Value::as_object) else {
        return "(none)".to_owned();
    };
    content
        .iter()
        .map(|(media, entry)| {
            let schema = entry.get("schema").map_or_else(String::new, type_of);
            format!("<code>{}</code> {schema}", escape(media))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A description as paragraphs, with `code` spans: escaped first, so
/// nothing in the text becomes markup but the paragraphs and code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let joined = paragraph
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let escaped = escape(&joined);
        let pieces: Vec<&str> = escaped.split('`').collect();
        out.push_str("<p>");
        // Odd pieces sit between two backticks, except a last one after a
        // backtick with no partner.
        let unpaired = pieces.len().is_multiple_of(2).then(|| pieces.len() - 1);
        for (i, piece) in pieces.iter().enumerate() {
            if i % 2 == 0 {
                out.push_str(piece);
            } else if Some(i) == unpaired {
                out.push('`');
                out.push_str(piece);
            } else {
                let _ = write!(out, "<code>{piece}</code>");
            }
        }
        out.push_str("</p>");
    }
    out
}

/// A name as an `id`/fragment: letters, digits, `-` and `_` kept, anything
/// else a `-`.
fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document(summary: &str, description: &str) -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "T<i>", "version": "1"},
            "tags": [{"name": "things", "description": "All the <things>"}],
            "paths": {
                "/things/{id}": {
                    "get": {
                        "tags": ["things"],
                        "operationId": "get_thing",
                        "summary": summary,
                        "description": description,
                        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}],
                        "responses": {
                            "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                            "404": {"description": "`not_found`", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
                        },
                        "security": [{"a": [], "b": []}]
                    }
                }
            },
            "components": {
                "schemas": {
                    "Thing": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string", "description": "It's \"named\""},
                        "note": {"type": ["string", "null"]}
                    }}
                },
                "securitySchemes": {"a": {"type": "apiKey", "in": "header", "name": "x-a"}}
            }
        })
    }

    #[test]
    fn text_from_the_document_never_becomes_markup() {
        let html = render(&document(
            "<script>alert('x')</script>",
            "a & b <img src=x onerror=alert(1)>",
        ));
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("a &amp; b &lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<title>T&lt;i&gt; 1</title>"));
        assert!(html.contains("All the &lt;things&gt;"));
        assert!(html.contains("It&#39;s &quot;named&quot;"));
    }

    #[test]
    fn operations_show_method_path_parameters_answers_and_security() {
        let html = render(&document("Get a thing", "One thing, by `id`."));
        assert!(html.contains(
            "<article class=\"operation\" id=\"op-get_thing\"><h3><span class=\"method get\">GET</span><code class=\"path\">/things/{id}</code></h3>"
        ), "{html}");
        assert!(html.contains("<p>One thing, by <code>id</code>.</p>"));
        assert!(
            html.contains(
                "<td><code>id</code></td><td>path</td><td>integer (int64)</td><td>yes</td>"
            )
        );
        assert!(html.contains("<a href=\"#schema-Thing\">Thing</a>"));
        assert!(html.contains(
            "<a href=\"#security-a\"><code>a</code></a> + <a href=\"#security-b\"><code>b</code></a>"
        ));
        assert!(html.contains("<td><code>note</code></td><td>string | null</td><td>no</td>"));
        assert!(html.contains("<code>/things/{id}</code></a> Get a thing</li>"));
        assert!(html.contains("header <code>x-a</code>"));
    }

    #[test]
    fn an_unpaired_backtick_stays_text() {
        assert_eq!(prose("a `b` c"), "<p>a <code>b</code> c</p>");
        assert_eq!(prose("a `b"), "<p>a `b</p>");
        assert_eq!(prose("one\ntwo\n\nthree"), "<p>one two</p><p>three</p>");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let html = render(&document("s", "see https://example.com"));
        for needle in ["<script", "<link", "src=", "@import", "url("] {
            assert!(!html.contains(needle), "{needle} in {html}");
        }
    }
}
