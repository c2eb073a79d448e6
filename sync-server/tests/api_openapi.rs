//! The OpenAPI document and the docs page against the real server: the
//! document describes exactly the routes `app()` serves (read off the
//! router, so a route added without a description fails here), it reads
//! back as OpenAPI 3.1 with consistent security and error answers, it
//! states the bounds the request checks enforce (and the server keeps to
//! the bounds it states), and headless Chromium shows every operation on
//! `/docs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The path templates registered in the router, read from its `Debug`
/// output (axum has no public list of routes; its path table prints as
/// `RouteId(N): "/path"`, the routes first, then the fallback's).
fn registered_paths(router: &axum::Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let routes = text
        .split_once("path_router:")
        .and_then(|(_, after)| after.split_once("fallback_router:"))
        .map(|(routes, _)| routes)
        .unwrap_or_else(|| panic!("no path_router in the router's Debug output: {text}"));
    let mut paths = BTreeSet::new();
    let mut rest = routes;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at + "RouteId(".len()..];
        let Some(after_id) = rest.find(')') else {
            break;
        };
        if let Some(quoted) = rest[after_id..].strip_prefix("): \"")
            && let Some(end) = quoted.find('"')
        {
            let path = &quoted[..end];
            if !path.contains("__private__axum") {
                paths.insert(path.to_owned());
            }
        }
        rest = &rest[after_id..];
    }
    assert!(
        paths.contains("/health") && paths.contains("/gate/v1/enrol"),
        "could not read the routes from the router (has axum's Debug output changed?): {paths:?}"
    );
    paths
}

/// `(METHOD, path)` of every route the server answers: the paths from the
/// router, the methods from the `Allow` header of the 405 the router gives
/// a method no route uses.
async fn served_routes(server: &TestServer) -> BTreeSet<(String, String)> {
    let router = sync_server::app(server.state.clone());
    let mut routes = BTreeSet::new();
    for path in registered_paths(&router) {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let response = server
            .http
            .request(reqwest::Method::TRACE, format!("{}{concrete}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::METHOD_NOT_ALLOWED,
            "TRACE {concrete} (route {path}) should be refused with 405 and an Allow header"
        );
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        for method in allow.split(',').map(str::trim) {
            // axum answers HEAD wherever it answers GET.
            if method != "HEAD" {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

async fn fetch_document(server: &TestServer) -> (String, Value) {
    let response = server
        .http
        .get(format!("{}/api/openapi.json", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    let doc = serde_json::from_str(&text).unwrap();
    (text, doc)
}

/// `(METHOD, path, operation)` of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                out.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_exactly_the_routes_the_router_serves() {
    let server = start(Db::Sqlite).await;
    let served = served_routes(&server).await;
    let (_, doc) = fetch_document(&server).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();

    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes served but missing from the OpenAPI document; describe each with \
         #[utoipa::path] and list it in sync_server::http::openapi::ApiDoc: {undocumented:?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "the OpenAPI document describes routes the server does not serve: {unserved:?}"
    );
    // The probe saw the routes of every part of the surface.
    for expected in [
        ("GET", "/health"),
        ("POST", "/gate/v1/journal"),
        ("PUT", "/api/admin/events/{event}/gates"),
        ("GET", "/api/admin/events/{event}/gates"),
        ("POST", "/api/events"),
        ("GET", "/api/events"),
        ("GET", "/m/{event}/{ticket}"),
        ("GET", "/api/tickets/{event}/{ticket}/metadata"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
        ("GET", "/docs"),
    ] {
        assert!(
            served.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not found among {served:?}"
        );
    }
}

/// Every `"$ref"` string in `value`.
fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => references(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn security_names(operation: &Value) -> Vec<BTreeSet<String>> {
    operation
        .get("security")
        .and_then(Value::as_array)
        .map(|alternatives| {
            alternatives
                .iter()
                .map(|r| r.as_object().unwrap().keys().cloned().collect())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_with_consistent_security_and_error_answers() {
    let server = start(Db::Sqlite).await;
    let (text, doc) = fetch_document(&server).await;

    let spec = oas3::from_json(&text).expect("an OpenAPI 3.1 document");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    assert_eq!(spec.info.title, "NFT gate sync server");

    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(!refs.is_empty());
    for target in refs {
        assert!(
            doc.pointer(target.trim_start_matches('#')).is_some(),
            "dangling reference {target}"
        );
    }

    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            name.starts_with(|c: char| c.is_ascii_uppercase()),
            "schema {name}: a type alias or primitive became a schema of its own"
        );
    }
    let error_body = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error_body["required"],
        serde_json::json!(["error", "message"])
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["wallet_session"]["scheme"], "bearer");
    assert_eq!(schemes["wallet_session"]["bearerFormat"], "JWT");
    assert_eq!(schemes["admin_token"]["scheme"], "bearer");
    for (scheme, header) in [
        ("gate_device", shared::wire::HEADER_DEVICE_ID),
        ("gate_timestamp", shared::wire::HEADER_TIMESTAMP),
        ("gate_nonce", shared::wire::HEADER_NONCE),
        ("gate_signature", shared::wire::HEADER_SIGNATURE),
    ] {
        assert_eq!(schemes[scheme]["type"], "apiKey");
        assert_eq!(schemes[scheme]["in"], "header");
        assert_eq!(schemes[scheme]["name"], header);
    }
    let gate_signed: BTreeSet<String> = [
        "gate_device",
        "gate_timestamp",
        "gate_nonce",
        "gate_signature",
    ]
    .map(str::to_owned)
    .into();

    let mut ids = BTreeSet::new();
    let operations = operations(&doc);
    for (method, path, operation) in &operations {
        let name = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_owned()), "{name}: operationId {id} twice");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name} has no summary"
        );
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{name} has no tag"
        );

        let security = security_names(operation);
        if path.starts_with("/api/admin/") {
            assert_eq!(
                security,
                vec![BTreeSet::from(["admin_token".to_owned()])],
                "{name}"
            );
        } else if path.starts_with("/gate/v1/") && path != "/gate/v1/enrol" {
            assert_eq!(security, vec![gate_signed.clone()], "{name}");
        }
        let responses = operation["responses"].as_object().unwrap();
        // A console form's success is the redirect after the post.
        assert!(
            responses
                .keys()
                .any(|status| status.starts_with('2') || status == "303"),
            "{name} documents no success"
        );
        if security
            .iter()
            .any(|r| r.contains("wallet_session") || r.contains("admin_token"))
        {
            assert!(responses.contains_key("401"), "{name}: no 401");
            assert!(responses.contains_key("403"), "{name}: no 403");
        }
        // Every JSON error answer is the one error body (but the health
        // report, which answers 503 with its own body).
        for (status, response) in responses {
            let is_health = path == "/health" && status == "503";
            if (status.starts_with('4') || status.starts_with('5'))
                && !is_health
                && let Some(json) = response.pointer("/content/application~1json")
            {
                assert_eq!(
                    json["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{name} {status}"
                );
            }
        }
    }
    // The wallet-login routes say so.
    let by_route = |method: &str, path: &str| {
        operations
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .map(|(_, _, op)| *op)
            .unwrap()
    };
    for (method, path) in [
        ("GET", "/api/auth/me"),
        ("POST", "/api/events"),
        ("POST", "/api/tickets/mint"),
        ("GET", "/api/tickets/my"),
        ("POST", "/api/validate"),
    ] {
        assert_eq!(
            security_names(by_route(method, path)),
            vec![BTreeSet::from(["wallet_session".to_owned()])],
            "{method} {path}"
        );
    }
    // An event's rules, validators and incidents: its organizer's wallet or
    // the admin token.
    let either = vec![
        BTreeSet::from(["wallet_session".to_owned()]),
        BTreeSet::from(["admin_token".to_owned()]),
    ];
    for (method, path) in [
        ("PUT", "/api/events/{event}/rules"),
        ("GET", "/api/events/{event}/validators"),
        ("PUT", "/api/events/{event}/validators/{wallet}"),
        ("DELETE", "/api/events/{event}/validators/{wallet}"),
        ("GET", "/api/events/{event}/incidents"),
    ] {
        assert_eq!(
            security_names(by_route(method, path)),
            either,
            "{method} {path}"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("EventView", "rules"),
        ("CreateEventBody", "rules"),
        ("UpdateEventBody", "rules"),
        ("RulesChange", "tier_gates"),
        ("RulesChange", "end_grace_secs"),
        ("HandheldScanBody", "code"),
        ("JournalAck", "refused"),
        ("IncidentReport", "incidents"),
        ("CachedEvent", "ends_at"),
    ] {
        assert!(
            schemas[schema]["properties"][field].is_object(),
            "{schema}.{field} is not in the document"
        );
    }
    let create = by_route("POST", "/api/events");
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateEventBody"
    );
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/EventView"
    );
    let list = by_route("GET", "/api/events");
    let params: BTreeSet<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        BTreeSet::from([
            "page",
            "limit",
            "q",
            "venue",
            "starts_after",
            "starts_before"
        ])
    );
    assert!(security_names(list).is_empty(), "listing events is public");
    let mint = by_route("POST", "/api/tickets/mint");
    assert!(mint["responses"]["429"]["headers"]["Retry-After"].is_object());
    let snapshot = by_route("GET", "/gate/v1/snapshot");
    assert!(snapshot["responses"]["200"]["content"]["application/octet-stream"].is_object());
    assert_eq!(snapshot["parameters"][0]["in"], "header");
    assert_eq!(
        snapshot["parameters"][0]["name"],
        sync_server::http::gate::HEADER_BACKLOG
    );
}

/// A bound a request check enforces, as the document states it: a text's
/// length in characters, a list's length, or a number's range. A lower
/// length of 0 is stated by saying nothing.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Chars(usize, usize),
    Items(usize, usize),
    Range(Option<i64>, Option<i64>),
}

impl Bound {
    /// The JSON Schema keywords that state it, each with its value (`None`:
    /// the keyword must be absent).
    fn keywords(self) -> [(&'static str, Option<Value>); 2] {
        let length = |n: usize| (n > 0).then(|| json!(n));
        match self {
            Bound::Chars(min, max) => [("minLength", length(min)), ("maxLength", Some(json!(max)))],
            Bound::Items(min, max) => [("minItems", length(min)), ("maxItems", Some(json!(max)))],
            Bound::Range(min, max) => [
                ("minimum", min.map(|n| json!(n))),
                ("maximum", max.map(|n| json!(n))),
            ],
        }
    }
}

/// Where the document states a bound: a property of a schema in
/// `components`, or a query parameter of a `GET` route.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Site<'a> {
    Property(&'a str, &'a str),
    Query(&'a str, &'a str),
}

/// Every bound the request checks (`check_text`, `check_count`,
/// `check_range`, `check_id`) enforce on a body or a query of the handlers
/// in `http/api`, `http/admin.rs` and `http/chain_admin.rs` (but the admin's
/// new-event body, whose type the services layer owns), written from the
/// code's own constants where it names one.
fn enforced_bounds() -> Vec<(Site<'static>, Bound)> {
    use Bound::{Chars, Items, Range};
    use Site::{Property, Query};
    use sync_server::http::admin::MAX_GATE_NAME;
    use sync_server::http::api::tickets::MAX_BATCH_MINT;
    use sync_server::http::chain_admin::MAX_MINT_PER_REQUEST;
    use sync_server::services::conflicts::MAX_NOTE_CHARS;
    use sync_server::services::transfers::{MAX_CLAIM_SECS, MIN_CLAIM_SECS};
    // Event ids are signed 64-bit in the database (`check_id`); the unsigned
    // type states the 0 itself.
    let event_id = Range(Some(0), Some(i64::MAX));
    let count = Range(Some(1), Some(100_000));
    vec![
        (Property("CreateEventBody", "name"), Chars(3, 32)),
        (Property("CreateEventBody", "venue"), Chars(1, 32)),
        (Property("CreateEventBody", "description"), Chars(0, 1000)),
        (Property("CreateEventBody", "capacity"), count),
        (Property("CreateEventBody", "tiers"), Items(1, 4)),
        (Property("TierBody", "name"), Chars(1, 16)),
        (Property("TierBody", "price_lamports"), Range(Some(0), None)),
        (Property("TierBody", "supply"), count),
        (
            Property("TierBody", "card_price"),
            Range(Some(50), Some(99_999_999)),
        ),
        (Property("UpdateEventBody", "name"), Chars(3, 32)),
        (Property("UpdateEventBody", "venue"), Chars(1, 32)),
        (Property("UpdateEventBody", "description"), Chars(0, 1000)),
        (Property("UpdateEventBody", "capacity"), count),
        (Query("/api/events", "q"), Chars(0, 64)),
        (Query("/api/events", "venue"), Chars(0, 64)),
        (Property("PurchaseBody", "event_id"), event_id),
        (
            Property("SignedPurchaseBody", "transaction"),
            Chars(1, 4096),
        ),
        (Property("ValidateBody", "event_id"), event_id),
        (
            Property("ValidateBody", "code"),
            Chars(1, shared::credential::MAX_TEXT_LEN),
        ),
        (Property("OfflineBody", "event_id"), event_id),
        (Property("SyncBody", "event_id"), event_id),
        (Property("SyncBody", "scans"), Items(1, 1000)),
        (Property("MintBody", "event_id"), event_id),
        (Property("BatchMintBody", "event_id"), event_id),
        (
            Property("BatchMintBody", "recipients"),
            Items(1, MAX_BATCH_MINT),
        ),
        (Property("ResolutionBody", "note"), Chars(0, MAX_NOTE_CHARS)),
        (
            Property("TransferBody", "expires_in_secs"),
            Range(Some(MIN_CLAIM_SECS.into()), Some(MAX_CLAIM_SECS.into())),
        ),
        (
            Property("SignedTransferBody", "transaction"),
            Chars(1, 4096),
        ),
        (Property("ClaimBody", "code"), Chars(1, 128)),
        (
            Property("MintRequest", "recipients"),
            Items(1, MAX_MINT_PER_REQUEST),
        ),
        (Property("RefreshRequest", "ticket_ids"), Items(1, 1000)),
        (Property("NewGate", "name"), Chars(1, MAX_GATE_NAME)),
        (Property("NewGate", "allowed_tiers"), Items(0, 256)),
        (Property("NewEnrolToken", "gate"), Chars(1, MAX_GATE_NAME)),
        (
            Property("NewEnrolToken", "ttl_secs"),
            Range(Some(60), Some(90 * 24 * 3600)),
        ),
    ]
}

/// The schema the document gives `site`.
fn schema_at<'d>(doc: &'d Value, site: Site<'_>) -> &'d Value {
    let schema = match site {
        Site::Property(schema, property) => {
            &doc["components"]["schemas"][schema]["properties"][property]
        }
        Site::Query(path, name) => doc["paths"][path]["get"]["parameters"]
            .as_array()
            .and_then(|params| {
                params
                    .iter()
                    .find(|p| p["in"] == "query" && p["name"] == name)
            })
            .map_or(&Value::Null, |p| &p["schema"]),
    };
    assert!(schema.is_object(), "{site:?} is not in the document");
    schema
}

const BOUND_KEYWORDS: [&str; 8] = [
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
];

/// `(keyword, value)` of every bound stated anywhere inside `schema` (its
/// `items`, its `oneOf` alternatives), but the `minimum: 0` an unsigned
/// type states by itself.
fn stated_bounds(schema: &Value, out: &mut Vec<(String, Value)>) {
    match schema {
        Value::Object(map) => {
            for (key, inner) in map {
                if BOUND_KEYWORDS.contains(&key.as_str()) {
                    if !(key == "minimum" && inner == &json!(0)) {
                        out.push((key.clone(), inner.clone()));
                    }
                } else {
                    stated_bounds(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| stated_bounds(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_states_exactly_the_bounds_the_request_checks_enforce() {
    let server = start(Db::Sqlite).await;
    let (_, doc) = fetch_document(&server).await;
    let table = enforced_bounds();
    for (site, bound) in &table {
        let schema = schema_at(&doc, *site);
        for (keyword, expected) in bound.keywords() {
            assert_eq!(
                schema.get(keyword),
                expected.as_ref(),
                "{site:?}: {keyword} should state the check's {bound:?}; the schema is {schema}"
            );
        }
    }
    // And nothing more on those bodies and queries: a bound stated without
    // a check behind it sends clients (and schemathesis) the wrong way.
    let listed = |site: Site<'_>, keyword: &str, value: &Value| {
        table.iter().any(|(s, bound)| {
            *s == site
                && bound
                    .keywords()
                    .iter()
                    .any(|(k, v)| *k == keyword && v.as_ref() == Some(value))
        })
    };
    let schemas: BTreeSet<&str> = table
        .iter()
        .filter_map(|(site, _)| match site {
            Site::Property(schema, _) => Some(*schema),
            Site::Query(..) => None,
        })
        .collect();
    let mut sites = Vec::new();
    for schema in schemas {
        let properties = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} has no properties in the document"));
        for (name, property) in properties {
            sites.push((Site::Property(schema, name), property));
        }
    }
    for (site, _) in &table {
        if let Site::Query(path, _) = site {
            for param in doc["paths"][*path]["get"]["parameters"].as_array().unwrap() {
                if param["in"] == "query" {
                    let name = param["name"].as_str().unwrap();
                    sites.push((Site::Query(path, name), &param["schema"]));
                }
            }
        }
    }
    for (site, schema) in sites {
        let mut stated = Vec::new();
        stated_bounds(schema, &mut stated);
        for (keyword, value) in stated {
            assert!(
                listed(site, &keyword, &value),
                "{site:?} states {keyword}: {value}, which no request check in the table enforces"
            );
        }
    }
}

/// A request that carries `text` in the field the document describes at
/// `site`, and the status the server answers when `text` is within the
/// bounds.
struct Probe {
    site: Site<'static>,
    field: &'static str,
    method: Method,
    path: String,
    token: String,
    body: Box<dyn Fn(&str) -> Value>,
    within: u16,
    /// The letter the text is made of: one of two bytes, so characters and
    /// bytes differ, except where the chain limits bytes as well (there
    /// the stated length is reached in ASCII).
    letter: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_at_the_stated_length_passes_and_one_character_more_is_refused() {
    let server = start(Db::Sqlite).await;
    let (_, doc) = fetch_document(&server).await;
    server.seed(3).await;
    // Two gates admitted ticket 1 while offline: a conflict to resolve.
    let north = server.enrol("north", 11).await;
    let south = server.enrol("south", 12).await;
    assert_eq!(
        north
            .upload(vec![north.scan(1, T0 * 1000 + 1000)])
            .await
            .status(),
        200
    );
    let later = south.scan(1, T0 * 1000 + 5000);
    assert_eq!(south.upload(vec![later.clone()]).await.status(), 200);
    let organizer = server.login_as(&wallet(40), Some("organizer")).await;

    let probes = [
        Probe {
            site: Site::Property("CreateEventBody", "name"),
            field: "name",
            method: Method::POST,
            path: "/api/events".into(),
            token: organizer,
            body: Box::new(|name| {
                json!({
                    "name": name,
                    "venue": "Harbour Hall",
                    "starts_at": T0 + 86_400,
                    "ends_at": T0 + 90_000,
                    "capacity": 100,
                    "tiers": [{ "name": "General", "price_lamports": 0, "supply": 100 }],
                })
            }),
            // Past the checks, the event goes to the chain, which this
            // server has none of.
            within: 503,
            letter: "e",
        },
        Probe {
            site: Site::Property("ResolutionBody", "note"),
            field: "note",
            method: Method::POST,
            path: format!("/api/events/{EVENT}/conflicts/{}/resolution", later.scan_id),
            token: ADMIN.into(),
            body: Box::new(|note| json!({ "outcome": "other", "note": note })),
            within: 200,
            letter: "é",
        },
        Probe {
            site: Site::Property("NewGate", "name"),
            field: "name",
            method: Method::PUT,
            path: format!("/api/admin/events/{EVENT}/gates"),
            token: ADMIN.into(),
            body: Box::new(|name| json!({ "number": 9, "name": name, "direction": "entry" })),
            within: 204,
            letter: "é",
        },
    ];
    for probe in probes {
        let schema = schema_at(&doc, probe.site);
        let max = usize::try_from(schema["maxLength"].as_u64().unwrap()).unwrap();
        let min = schema["minLength"].as_u64().unwrap_or(0);
        // Characters, not bytes, as JSON Schema counts them.
        let text = |chars: usize| probe.letter.repeat(chars);
        let send = |text: String| {
            server.call(
                probe.method.clone(),
                &probe.path,
                Some(&probe.token),
                Some((probe.body)(&text)),
            )
        };

        let (status, body, _) = send(text(max + 1)).await;
        assert_eq!(
            (status, body["error"].as_str(), body["field"].as_str()),
            (422, Some("invalid_field"), Some(probe.field)),
            "{:?}: {} characters, one more than the document's maxLength {max}: {body}",
            probe.site,
            max + 1
        );
        if min > 0 {
            let shorter = usize::try_from(min - 1).unwrap();
            let (status, body, _) = send(text(shorter)).await;
            assert_eq!(
                (status, body["field"].as_str()),
                (422, Some(probe.field)),
                "{:?}: {shorter} characters, one fewer than the document's minLength {min}: {body}",
                probe.site
            );
        }
        let (status, body, _) = send(text(max)).await;
        assert_eq!(
            status, probe.within,
            "{:?}: {max} characters, the document's maxLength, should pass the checks: {body}",
            probe.site
        );
        if probe.letter.len() == 1 {
            // Within the characters but past the chain's bytes: refused
            // here, in words, rather than by the chain later.
            let (status, body, _) = send("é".repeat(max / 2 + 1)).await;
            assert_eq!(
                (status, body["field"].as_str()),
                (422, Some(probe.field)),
                "{:?}: {} bytes: {body}",
                probe.site,
                max + 2
            );
            assert!(
                body["message"].as_str().unwrap().contains("bytes"),
                "{body}"
            );
        }
    }
}

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_owned();
        }
    }
    panic!(
        "this test needs a headless Chromium (`chromium` on the PATH; Debian/Ubuntu: \
         apt-get install -y chromium; scripts/test.sh installs it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_shows_every_operation_in_headless_chromium() {
    let browser = chromium();
    let server = start(Db::Sqlite).await;
    let (_, doc) = fetch_document(&server).await;
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{}/docs", server.url))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("Chromium finished within 2 minutes")
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("</html>"),
        "Chromium gave no page: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // One article per operation, each showing its method and path.
    let operations = operations(&doc);
    assert_eq!(
        dom.matches("<article class=\"operation\"").count(),
        operations.len()
    );
    for (method, path, _) in &operations {
        let heading = format!(
            "<span class=\"method {}\">{method}</span><code class=\"path\">{path}</code>",
            method.to_lowercase()
        );
        assert!(dom.contains(&heading), "no {method} {path} on the page");
    }
    for text in [
        "<code class=\"path\">/api/events</code>",
        ">POST<",
        "Create an event",
        "id=\"schema-ErrorBody\"",
        "id=\"security-gate_signature\"",
        "x-gate-signature",
        "Retry-After",
    ] {
        assert!(dom.contains(text), "{text} not on the page");
    }
}
