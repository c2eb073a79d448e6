//! Refusals against the real server, for every route it serves (read from
//! its OpenAPI document, which `api_openapi.rs` keeps equal to the router):
//! a path, query or body that does not parse, a body too large or of the
//! wrong type, an unknown route, a wrong method all answer the one JSON
//! error shape; ids beyond what the database can hold are 404 (422 in a
//! body) and log no error; free text in gate and enrolment bodies is
//! bounded and free of control characters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::{Value, json};

const METHODS: [&str; 4] = ["get", "put", "post", "delete"];

/// `(METHOD, path template, takes a body)` of every route in the served
/// document.
async fn routes(server: &TestServer) -> Vec<(reqwest::Method, String, bool)> {
    let doc: Value = server
        .http
        .get(format!("{}/api/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                out.push((
                    method.to_uppercase().parse().unwrap(),
                    path.clone(),
                    operation.get("requestBody").is_some(),
                ));
            }
        }
    }
    assert!(out.len() > 30, "{out:?}");
    out
}

/// Whether `path` is one of the pages a browser is shown (the console's
/// and the buyer pages'), which refuse with a page rather than JSON.
fn is_page(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    path.starts_with("/console/")
        || path == "/"
        || path.starts_with("/events/")
        || path.starts_with("/tickets")
        || ["/claim", "/confirmation", "/sign-in", "/sign-out"].contains(&path)
}

/// `template` with each `{param}` filled by `fill`.
fn concrete(template: &str, fill: impl Fn(&str) -> String) -> String {
    template
        .split('/')
        .map(|segment| match segment.strip_prefix('{') {
            Some(name) => fill(name.trim_end_matches('}')),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Parameters that parse.
fn good_param(name: &str) -> String {
    match name {
        "wallet" => address(&wallet(40)),
        "device" | "purchase" => "0190a0b0-c0d0-7e00-8000-000000000001".into(),
        _ => "1".into(),
    }
}

/// Credentials that pass each kind of route, so refusals come from the
/// part under test rather than from a missing token.
async fn credentials(server: &TestServer) -> String {
    server.login_as(&wallet(41), Some("organizer")).await
}

fn bearer(path: &str, session: &str) -> String {
    if path.starts_with("/api/admin") {
        ADMIN.to_owned()
    } else {
        session.to_owned()
    }
}

/// The answer must be an error in the one shape.
async fn assert_json_error(what: &str, response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        (400..600).contains(&status),
        "{what}: {status} is not a refusal: {text}"
    );
    // The console and the buyer pages answer a person in a browser with a
    // page.
    let page = what.split_once(' ').is_some_and(|(_, path)| is_page(path));
    if page && content_type.starts_with("text/html") {
        return (status, json!({"error": "page", "message": text}));
    }
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {status} answered as {content_type:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert!(body["error"].is_string(), "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_bad_paths_queries_bodies_and_methods_as_json() {
    let server = start(Db::Sqlite).await;
    let session = credentials(&server).await;
    for (method, template, has_body) in routes(&server).await {
        let token = bearer(&template, &session);
        let send = |path: String, body: Option<(&'static str, Vec<u8>)>| {
            let mut request = server
                .http
                .request(method.clone(), format!("{}{path}", server.url))
                .bearer_auth(&token);
            if let Some((content_type, bytes)) = body {
                request = request.header("content-type", content_type).body(bytes);
            }
            request.send()
        };

        if template.contains('{') {
            let path = concrete(&template, |name| match name {
                "wallet" => "not-a-wallet".into(),
                _ => "not%20an%20id".into(),
            });
            let body = has_body.then(|| ("application/json", b"{}".to_vec()));
            let response = send(path.clone(), body).await.unwrap();
            assert_json_error(&format!("{method} {path}"), response).await;
        }

        let good = concrete(&template, good_param);
        let path = format!(
            "{good}?cursor=x&wait=x&limit=x&page=x&gate=x&scans=x&format=x&status=x&starts_after=x"
        );
        let response = send(path.clone(), None).await.unwrap();
        if !response.status().is_success() {
            assert_json_error(&format!("{method} {path}"), response).await;
        }

        if has_body {
            for (content_type, bytes, what) in [
                ("application/json", b"{\"broken".to_vec(), "cut short"),
                ("text/plain", b"{}".to_vec(), "not JSON"),
                (
                    "application/json",
                    vec![b' '; sync_server::http::MAX_BODY_BYTES + 1024],
                    "too large",
                ),
            ] {
                let response = match send(good.clone(), Some((content_type, bytes))).await {
                    Ok(response) => response,
                    // A signed gate route answers a request without a
                    // device's headers (401) before reading its body, so a
                    // client still sending 4 MB may find the connection
                    // closed under it instead (`security.rs` reads that
                    // answer over a raw socket).
                    Err(_)
                        if what == "too large"
                            && template.starts_with("/gate/v1/")
                            && template != "/gate/v1/enrol" =>
                    {
                        continue;
                    }
                    Err(e) => panic!("{method} {good} ({what}): {e:?}"),
                };
                let (status, _) =
                    assert_json_error(&format!("{method} {good} ({what})"), response).await;
                if what == "too large" && template == "/api/payments/webhook" {
                    assert_eq!(status, 413, "the webhook's body limit");
                }
            }
        }

        // No route takes PATCH.
        let wrong = server
            .http
            .request(reqwest::Method::PATCH, format!("{}{good}", server.url))
            .send()
            .await
            .unwrap();
        assert!(wrong.headers().contains_key("allow"), "PATCH {good}");
        let (status, body) = assert_json_error(&format!("PATCH {good}"), wrong).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (405, Some("method_not_allowed"))
        );
    }
    let (status, body) = assert_json_error(
        "an unknown route",
        server
            .http
            .get(format!("{}/no/such/route", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

/// Error events logged while it is alive, on this thread.
struct ErrorLog(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        if *event.metadata().level() == tracing::Level::ERROR {
            let mut text = Text(String::new());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }
    }
}

/// Above `i64::MAX`: what no row can have.
const TOO_BIG: &str = "9223372036854775808";

/// Every route taking an event id, with a body that passes its own checks
/// so the id reaches the server's work.
fn id_routes(holder: &str) -> Vec<(reqwest::Method, &'static str, Option<Value>)> {
    use base64::Engine;
    use reqwest::Method as M;
    // A legacy transaction that reads back (what it holds is checked later).
    let transaction = base64::engine::general_purpose::STANDARD.encode(
        bincode::serialize(&solana_sdk::transaction::Transaction::new_with_payer(
            &[],
            Some(&solana_sdk::pubkey::Pubkey::new_unique()),
        ))
        .unwrap(),
    );
    vec![
        (
            M::PUT,
            "/api/admin/events/{event}/gates",
            Some(json!({"number": 1, "name": "north", "direction": "entry"})),
        ),
        (M::GET, "/api/admin/events/{event}/gates", None),
        (
            M::POST,
            "/api/admin/events/{event}/enrol-tokens",
            Some(json!({"gate": "north"})),
        ),
        (M::GET, "/api/admin/events/{event}/conflicts", None),
        (
            M::POST,
            "/api/admin/events/{event}/tickets",
            Some(json!({"recipients": [{"wallet": holder}]})),
        ),
        (
            M::POST,
            "/api/admin/events/{event}/tickets/refresh",
            Some(json!({"ticket_ids": [1]})),
        ),
        (
            M::POST,
            "/api/admin/events/{event}/tickets/{ticket}/revoke",
            None,
        ),
        (M::GET, "/api/admin/events/{event}/replay", None),
        (M::GET, "/api/events/{event}", None),
        (
            M::PUT,
            "/api/events/{event}",
            Some(json!({"name": "Renamed gala"})),
        ),
        (
            M::PUT,
            "/api/events/{event}/rules",
            Some(json!({"end_grace_secs": 60})),
        ),
        (M::GET, "/api/events/{event}/validators", None),
        (M::PUT, "/api/events/{event}/validators/{wallet}", None),
        (M::DELETE, "/api/events/{event}/validators/{wallet}", None),
        (M::GET, "/api/events/{event}/incidents", None),
        (M::GET, "/api/events/{event}/conflicts", None),
        (
            M::POST,
            "/api/events/{event}/conflicts/{conflict}/resolution",
            Some(json!({"outcome": "same_person"})),
        ),
        (M::POST, "/api/events/{event}/tickets/import", None),
        (M::GET, "/api/events/{event}/attendees.csv", None),
        (M::GET, "/api/tickets/{event}/{ticket}", None),
        (M::GET, "/api/tickets/{event}/{ticket}/qr", None),
        (M::GET, "/api/tickets/{event}/{ticket}/holder-key", None),
        (
            M::POST,
            "/api/tickets/{event}/{ticket}/transfer",
            Some(json!({"to_wallet": holder})),
        ),
        (
            M::POST,
            "/api/tickets/{event}/{ticket}/transfer/submit",
            Some(json!({"transaction": transaction})),
        ),
        (
            M::POST,
            "/api/tickets/{event}/{ticket}/transfer/cancel",
            None,
        ),
        (
            M::POST,
            "/api/tickets/{event}/{ticket}/transfer/resend",
            None,
        ),
        (M::GET, "/m/{event}/{ticket}", None),
        (M::GET, "/api/admin/events/{event}/devices", None),
        (M::POST, "/api/events/{event}/tickets/{ticket}/freeze", None),
        (
            M::POST,
            "/api/events/{event}/tickets/{ticket}/unfreeze",
            None,
        ),
        (M::POST, "/api/events/{event}/cancellation", None),
        (M::GET, "/api/events/{event}/cancellation", None),
        (M::POST, "/api/events/{event}/withdraw", None),
        (M::POST, "/api/events/{event}/tickets/close", None),
        (M::POST, "/api/events/{event}/close", None),
        (M::GET, "/api/events/{event}/sales", None),
        (M::GET, "/api/events/{event}/attendance.csv", None),
        (M::GET, "/api/events/{event}/settlement", None),
        (M::GET, "/console/events/{event}/sales", None),
        (M::GET, "/console/events/{event}/settle", None),
        (
            M::POST,
            "/console/events/{event}/settle",
            Some(json!("step=withdraw")),
        ),
        (M::GET, "/console/events/{event}/attendance.csv", None),
        (M::GET, "/console/events/{event}/cancel", None),
        (
            M::POST,
            "/console/events/{event}/cancel",
            Some(json!("confirm=x")),
        ),
        (M::GET, "/console/events/{event}/cancel/live", None),
        (
            M::GET,
            "/console/events/{event}/tickets/{ticket}/hold",
            None,
        ),
        (
            M::POST,
            "/console/events/{event}/tickets/{ticket}/hold",
            Some(json!("action=freeze")),
        ),
        (M::GET, "/api/admin/events/{event}/cache-file", None),
        (M::GET, "/console/events/{event}/cache-file", None),
        (M::GET, "/console/events/{event}/tickets", None),
        (M::GET, "/console/events/{event}", None),
        (
            M::POST,
            "/console/events/{event}/devices/{device}/revoke",
            Some(json!("")),
        ),
        (M::GET, "/console/events/{event}/live", None),
        (M::GET, "/console/events/{event}/gates", None),
        (
            M::POST,
            "/console/events/{event}/enrol-tokens",
            Some(json!("gate=north")),
        ),
        (M::GET, "/console/events/{event}/edit", None),
        (
            M::POST,
            "/console/events/{event}/edit",
            Some(json!("name=Renamed")),
        ),
        (M::POST, "/console/events/{event}/rules", Some(json!(""))),
        (M::GET, "/console/events/{event}/mint", None),
        (M::POST, "/console/events/{event}/mint", Some(json!(""))),
        (
            M::POST,
            "/console/events/{event}/batch-mint",
            Some(json!("")),
        ),
        (M::GET, "/console/events/{event}/mints/{key}", None),
        (M::GET, "/console/events/{event}/mints/{key}/progress", None),
        (M::POST, "/console/events/{event}/import", Some(json!(""))),
        (M::GET, "/console/events/{event}/attendees.csv", None),
        (M::GET, "/console/events/{event}/conflicts", None),
        (
            M::POST,
            "/console/events/{event}/conflicts/{conflict}/resolution",
            Some(json!("outcome=same_person")),
        ),
        (M::GET, "/api/tickets/{event}/{ticket}/metadata", None),
        (M::GET, "/m/{event}/{ticket}/image.svg", None),
        (M::GET, "/events/{event}", None),
        (M::GET, "/events/{event}/calendar.ics", None),
        (M::GET, "/tickets/{event}/{ticket}/print", None),
        (M::GET, "/tickets/{event}/{ticket}/calendar.ics", None),
    ]
}

#[tokio::test]
async fn ids_beyond_the_database_are_not_found_and_log_no_error() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let _log = {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_default(
            tracing_subscriber::registry().with(ErrorLog(Arc::clone(&errors))),
        )
    };
    let server = start_on_chain(Db::Sqlite, ChainMode::Embedded).await;
    let session = credentials(&server).await;
    let holder = address(&wallet(42));

    // The table covers every route whose path takes an event id.
    let templated: Vec<String> = routes(&server)
        .await
        .into_iter()
        .filter(|(_, path, _)| path.contains("{event}"))
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    let listed: Vec<String> = id_routes(&holder)
        .iter()
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    for route in &templated {
        assert!(listed.contains(route), "{route} is missing from the table");
    }

    // The console's pages, signed in as the admin, answer with a page.
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/console/sign-in", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("admin_token={ADMIN}"))
        .send()
        .await
        .unwrap();
    let console_cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("the console's session cookie")
        .to_owned();
    for id in [TOO_BIG, "18446744073709551615"] {
        for (method, template, body) in id_routes(&holder) {
            let mut path = concrete(template, |name| match name {
                "event" => id.to_owned(),
                "wallet" => holder.clone(),
                _ => "1".to_owned(),
            });
            if template.ends_with("/holder-key") {
                // Its query names the key to approve; without it, 400.
                path = format!("{path}?key={holder}");
            }
            if is_page(template) {
                let mut request = server
                    .http
                    .request(method.clone(), format!("{}{path}", server.url))
                    .header("cookie", &console_cookie);
                if let Some(Value::String(form)) = body {
                    request = request
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(form);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 404, "{method} {path}");
                continue;
            }
            let token = bearer(template, &session);
            let mut request = server
                .http
                .request(method.clone(), format!("{}{path}", server.url))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let (status, body) =
                assert_json_error(&format!("{method} {path}"), request.send().await.unwrap()).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
            assert_eq!(body["error"], "not_found", "{method} {path}");
        }
    }

    // In a body, the field is named.
    let code = "A".repeat(40);
    for (path, body) in [
        (
            "/api/tickets/mint",
            json!({"event_id": TOO_BIG.parse::<u64>().unwrap(), "wallet": holder}),
        ),
        (
            "/api/tickets/batch-mint",
            json!({"event_id": u64::MAX, "recipients": [{"wallet": holder}]}),
        ),
        (
            "/api/tickets/purchase",
            json!({"event_id": u64::MAX, "method": "sol"}),
        ),
        (
            "/api/validate",
            json!({"event_id": u64::MAX, "gate": 1, "code": code}),
        ),
        (
            "/api/admin/events",
            json!({
                "event_id": u64::MAX, "name": "Gala", "venue": "Hall", "starts_at": T0,
                "ends_at": T0 + 3600, "doors_open_at": T0 - 3600, "doors_close_at": T0 + 3600,
                "capacity": 10, "tiers": [{"name": "general", "price_lamports": 0, "supply": 10}],
                "reentry": "forbidden", "transferable": true
            }),
        ),
    ] {
        let token = bearer(path, &session);
        let response = server
            .http
            .post(format!("{}{path}", server.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, answer) = assert_json_error(path, response).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some("event_id")),
            "{path}: {answer}"
        );
    }
    let logged = errors.lock().unwrap().clone();
    assert!(logged.is_empty(), "errors logged: {logged:#?}");
}

async fn gate_and_enrolment_text_is_bounded_and_printable(db: Db) {
    let server = start(db).await;
    server.seed(1).await;
    let put_gate = |body: Value| {
        server
            .http
            .put(format!("{}/api/admin/events/{EVENT}/gates", server.url))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    for (name, why) in [
        ("north\u{7}", "a control character"),
        ("north\ngate", "a line break"),
        ("", "nothing"),
        ("   ", "blank"),
    ] {
        let response = put_gate(json!({"number": 7, "name": name, "direction": "entry"}))
            .await
            .unwrap();
        let (status, body) = assert_json_error(why, response).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some("name")),
            "{why}: {body}"
        );
    }
    let response = put_gate(json!({"number": 7, "name": "n".repeat(65), "direction": "entry"}))
        .await
        .unwrap();
    let (status, body) = assert_json_error("65 characters", response).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("name")));
    let response = put_gate(json!({"number": 7, "name": "ö".repeat(64), "direction": "entry"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "64 characters, 128 bytes");
    let gates = server
        .admin_get(&format!("/api/admin/events/{EVENT}/gates"))
        .await;
    assert!(
        gates
            .as_array()
            .unwrap()
            .iter()
            .all(|g| !g["name"].as_str().unwrap().contains(char::is_control)),
        "{gates}"
    );

    for (body, field) in [
        (json!({"gate": "x".repeat(10_000)}), "gate"),
        (json!({"gate": "north\r\n"}), "gate"),
        (json!({"gate": "north", "ttl_secs": 0}), "ttl_secs"),
    ] {
        let response = server
            .http
            .post(format!(
                "{}/api/admin/events/{EVENT}/enrol-tokens",
                server.url
            ))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, answer) = assert_json_error(field, response).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some(field)),
            "{answer}"
        );
    }

    let token = server.enrol_token("north").await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    for (change, field) in [
        (json!({"hostname": "box\u{1b}[31m"}), "hostname"),
        (json!({"hostname": "h".repeat(300)}), "hostname"),
        (json!({"agent_version": "v".repeat(1000)}), "agent_version"),
        (json!({"token": "t".repeat(10_000)}), "token"),
    ] {
        let mut body = serde_json::to_value(enrol_request(&token, &key)).unwrap();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let response = server
            .http
            .post(format!("{}/gate/v1/enrol", server.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, answer) = assert_json_error(field, response).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some(field)),
            "{answer}"
        );
    }
    // The token was not spent by the refusals.
    let response = server
        .http
        .post(format!("{}/gate/v1/enrol", server.url))
        .json(&enrol_request(&token, &key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

on_both_backends!(gate_and_enrolment_text_is_bounded_and_printable);

#[tokio::test]
async fn admin_chain_bodies_name_the_field_at_fault() {
    let server = start(Db::Sqlite).await;
    let event = json!({
        "event_id": 9, "name": "Gala", "venue": "Hall", "starts_at": T0,
        "ends_at": T0 + 3600, "doors_open_at": T0 - 3600, "doors_close_at": T0 + 3600,
        "capacity": 10, "tiers": [{"name": "general", "price_lamports": 0, "supply": 10}],
        "reentry": "forbidden", "transferable": true
    });
    let with = |change: Value| {
        let mut body = event.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let holder = address(&wallet(41));
    let off_curve = {
        // 32 bytes that are no point on the curve: nobody can sign for them.
        let bytes = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| ed25519_dalek::VerifyingKey::from_bytes(bytes).is_err())
            .unwrap();
        bs58::encode(bytes).into_string()
    };
    for (path, body, field) in [
        (
            "/api/admin/events",
            with(json!({"colour": "red"})),
            "colour",
        ),
        (
            "/api/admin/events",
            with(json!({"capacity": "ten"})),
            "capacity",
        ),
        (
            "/api/admin/events",
            with(json!({"name": "Gala\u{7}"})),
            "name",
        ),
        (
            "/api/admin/events",
            with(
                json!({"tiers": [{"name": "general", "price_lamports": 0, "supply": 10, "x": 1}]}),
            ),
            "tiers[0].x",
        ),
        (
            "/api/admin/events/1/tickets",
            json!({"recipients": []}),
            "recipients",
        ),
        (
            "/api/admin/events/1/tickets",
            json!({"recipients": vec![json!({"wallet": holder}); 101]}),
            "recipients",
        ),
        (
            "/api/admin/events/1/tickets",
            json!({"recipients": [{"wallet": holder}, {"wallet": "not-a-wallet"}]}),
            "recipients[1].wallet",
        ),
        (
            "/api/admin/events/1/tickets",
            json!({"recipients": [{"wallet": off_curve}]}),
            "recipients[0].wallet",
        ),
        (
            "/api/admin/events/1/tickets",
            json!({"recipients": [{"wallet": holder, "seat": "A1"}]}),
            "recipients[0].seat",
        ),
        (
            "/api/admin/events/1/tickets/refresh",
            json!({"ticket_ids": []}),
            "ticket_ids",
        ),
        (
            "/api/admin/events/1/tickets/refresh",
            json!({"ticket_ids": [1], "all": true}),
            "all",
        ),
    ] {
        let response = server
            .http
            .post(format!("{}{path}", server.url))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, answer) = assert_json_error(path, response).await;
        assert_eq!(
            (status, answer["error"].as_str(), answer["field"].as_str()),
            (422, Some("invalid_field"), Some(field)),
            "{path} {body}: {answer}"
        );
    }
}
