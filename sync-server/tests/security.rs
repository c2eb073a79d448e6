//! The security regression suite: the attack classes that the API tests did
//! not cover one by one, each refusal asserted by its status and error code.
//! `docs/reliability.md` has the table of every class and where each is
//! tested (here, or in the API test of the feature it attacks).
//!
//! - session tokens forged, tampered with, of another algorithm or shape,
//!   expired;
//! - device requests replayed, or their nonce reused under another body;
//!   of an unknown or revoked device, answered before the body is read;
//! - ids out of range in paths (past `u64::MAX`, negative, not decimal);
//! - bodies too large (with a length, and streamed without one), cut short,
//!   of the wrong type, nested too deep, on every route that takes one;
//! - slow clients trickling headers or bodies: cut off, while everyone else
//!   is served.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use data_encoding::BASE64URL_NOPAD as B64;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// `(METHOD, path template, takes a body, signed by a gate device)` of every
/// route in the served document.
async fn routes(server: &TestServer) -> Vec<(reqwest::Method, String, bool, bool)> {
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
        for method in ["get", "put", "post", "delete"] {
            if let Some(operation) = item.get(method) {
                let device = operation["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("gate_device").is_some()));
                out.push((
                    method.to_uppercase().parse().unwrap(),
                    path.clone(),
                    operation.get("requestBody").is_some(),
                    device,
                ));
            }
        }
    }
    assert!(out.len() > 30, "{out:?}");
    out
}

/// The pages a browser is shown (console, buyer pages) refuse with a page.
fn is_page(path: &str) -> bool {
    path.starts_with("/console/")
        || path == "/"
        || path.starts_with("/events/")
        || path.starts_with("/tickets")
        || ["/claim", "/confirmation", "/sign-in", "/sign-out"].contains(&path)
}

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

/// Path parameters that parse.
fn good_param(name: &str) -> String {
    match name {
        "wallet" => address(&wallet(40)),
        "device" | "purchase" => "0190a0b0-c0d0-7e00-8000-000000000001".into(),
        _ => "1".into(),
    }
}

/// Parameters that are numbers (ids), by name.
fn is_numeric(name: &str) -> bool {
    ![
        "wallet", "device", "purchase", "request", "token", "key", "file",
    ]
    .contains(&name)
}

fn bearer(path: &str, session: &str) -> String {
    if path.starts_with("/api/admin") {
        ADMIN.to_owned()
    } else {
        session.to_owned()
    }
}

/// (status, error code) of an answer; for a page, the code is "page".
async fn refusal(what: &str, response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    if content_type.starts_with("text/html") {
        return (status, "page".into());
    }
    assert!(
        content_type.starts_with("application/json"),
        "{what}: {status} answered as {content_type:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    assert!(body["message"].is_string(), "{what}: {body}");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A session token signed with `secret` over `claims` under `header`.
fn token(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac;
    let signing_input = format!(
        "{}.{}",
        B64.encode(&serde_json::to_vec(header).unwrap()),
        B64.encode(&serde_json::to_vec(claims).unwrap())
    );
    let signature = match header["alg"].as_str() {
        Some("HS512") => {
            let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        _ => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    format!("{signing_input}.{}", B64.encode(&signature))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_and_expired_session_tokens_are_refused() {
    let server = start(Db::Sqlite).await;
    let alice = wallet(11);
    let good = server.login_as(&alice, None).await;
    let me = |token: String| {
        let server = &server;
        async move {
            server
                .call(reqwest::Method::GET, "/api/auth/me", Some(&token), None)
                .await
        }
    };
    assert_eq!(me(good.clone()).await.0, 200);

    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let claims =
        |role: &str, exp: i64| json!({"sub": address(&alice), "role": role, "iat": T0, "exp": exp});
    let secret = JWT_SECRET.as_bytes();
    // Our own signature over good claims is accepted: the forgeries below
    // fail for what they change, not for how the test builds tokens.
    assert_eq!(
        me(token(&hs256, &claims("holder", T0 + 600), secret))
            .await
            .0,
        200
    );
    let parts: Vec<&str> = good.split('.').collect();
    let mut promoted: Value =
        serde_json::from_slice(&B64.decode(parts[1].as_bytes()).unwrap()).unwrap();
    promoted["role"] = json!("organizer");
    let cases = [
        (
            "payload changed, signature kept",
            format!(
                "{}.{}.{}",
                parts[0],
                B64.encode(&serde_json::to_vec(&promoted).unwrap()),
                parts[2]
            ),
            "invalid_token",
        ),
        (
            "signed with another key",
            token(
                &hs256,
                &claims("organizer", T0 + 600),
                b"not-the-servers-secret-0123456789",
            ),
            "invalid_token",
        ),
        (
            "signed with an empty key",
            token(&hs256, &claims("organizer", T0 + 600), b""),
            "invalid_token",
        ),
        (
            "alg none, no signature",
            format!(
                "{}.{}.",
                B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
                parts[1]
            ),
            "invalid_token",
        ),
        (
            "alg none, the old signature kept",
            format!(
                "{}.{}.{}",
                B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
                parts[1],
                parts[2]
            ),
            "invalid_token",
        ),
        (
            "another algorithm with the server's key (HS512)",
            token(
                &json!({"alg": "HS512", "typ": "JWT"}),
                &claims("holder", T0 + 600),
                secret,
            ),
            "invalid_token",
        ),
        (
            "no expiry",
            token(
                &hs256,
                &json!({"sub": address(&alice), "role": "holder", "iat": T0}),
                secret,
            ),
            "invalid_token",
        ),
        (
            "no subject",
            token(
                &hs256,
                &json!({"role": "holder", "iat": T0, "exp": T0 + 600}),
                secret,
            ),
            "invalid_token",
        ),
        (
            "a subject that is not a wallet",
            token(
                &hs256,
                &json!({"sub": "admin", "role": "holder", "iat": T0, "exp": T0 + 600}),
                secret,
            ),
            "invalid_token",
        ),
        (
            "expired a second ago",
            token(&hs256, &claims("holder", T0 - 1), secret),
            "token_expired",
        ),
        (
            "expiring this very second",
            token(&hs256, &claims("holder", T0), secret),
            "token_expired",
        ),
        (
            "two parts only",
            format!("{}.{}", parts[0], parts[1]),
            "invalid_token",
        ),
        ("not a token", "garbage".to_owned(), "invalid_token"),
    ];
    for (what, bad, code) in cases {
        let (status, body, _) = me(bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some(code)),
            "{what}: {body}"
        );
    }

    // A scheme other than Bearer carries no token.
    let r = server
        .http
        .get(format!("{}/api/auth/me", server.url))
        .header("authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    let (status, code) = refusal("Basic scheme", r).await;
    assert_eq!((status, code.as_str()), (401, "missing_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_device_requests_and_reused_nonces_are_refused() {
    let server = start(Db::Sqlite).await;
    server.seed(3).await;
    let gate = server.enrol("north", 100).await;
    let body = gate.batch(vec![gate.scan(1, T0 * 1000)]);
    let signed = gate.sign("POST", "/gate/v1/journal", &body);
    let r = gate
        .send_signed("POST", "/gate/v1/journal", body.clone(), &signed)
        .await;
    assert_eq!(r.status(), 200);

    let refused = |r: reqwest::Response, what: &'static str, says: &'static str| async move {
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(
            (status, answer["error"].as_str()),
            (401, Some("unauthorized")),
            "{what}: {answer}"
        );
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(says), "{what}: {message}");
    };
    // The same request, byte for byte.
    refused(
        gate.send_signed("POST", "/gate/v1/journal", body.clone(), &signed)
            .await,
        "replayed upload",
        "nonce",
    )
    .await;
    // The same nonce under another body, properly signed by the device.
    let other = gate.batch(vec![gate.scan(2, T0 * 1000)]);
    let mut reused = gate.sign("POST", "/gate/v1/journal", &other);
    let message = shared::wire::device_request_message(
        "POST",
        "/gate/v1/journal",
        reused.timestamp,
        &signed.nonce,
        &other,
    );
    use ed25519_dalek::Signer;
    reused.nonce = signed.nonce.clone();
    reused.signature = bs58::encode(gate.key.sign(&message).to_bytes()).into_string();
    refused(
        gate.send_signed("POST", "/gate/v1/journal", other.clone(), &reused)
            .await,
        "nonce reused under another body",
        "nonce",
    )
    .await;
    // A nonce spent on a read is spent for writes too.
    let read = gate.sign("GET", "/gate/v1/snapshot", &[]);
    assert_eq!(
        gate.send_signed("GET", "/gate/v1/snapshot", vec![], &read)
            .await
            .status(),
        200
    );
    let message = shared::wire::device_request_message(
        "POST",
        "/gate/v1/journal",
        read.timestamp,
        &read.nonce,
        &other,
    );
    let cross = Signed {
        device: read.device.clone(),
        timestamp: read.timestamp,
        nonce: read.nonce.clone(),
        signature: bs58::encode(gate.key.sign(&message).to_bytes()).into_string(),
    };
    refused(
        gate.send_signed("POST", "/gate/v1/journal", other.clone(), &cross)
            .await,
        "nonce of a read reused for an upload",
        "nonce",
    )
    .await;
    // Replayed later, outside the window: refused for its age.
    server
        .clock
        .0
        .fetch_add(600, std::sync::atomic::Ordering::SeqCst);
    refused(
        gate.send_signed("POST", "/gate/v1/journal", body, &signed)
            .await,
        "replayed after ten minutes",
        "timestamp",
    )
    .await;
    // Signed for the future, beyond the window.
    let ahead = gate.sign_at(
        "POST",
        "/gate/v1/journal",
        &other,
        server.clock.0.load(std::sync::atomic::Ordering::SeqCst) + 600,
    );
    refused(
        gate.send_signed("POST", "/gate/v1/journal", other, &ahead)
            .await,
        "timestamp ten minutes ahead",
        "timestamp",
    )
    .await;
    assert_eq!(
        server.state.store.scan_count(EVENT).await.unwrap(),
        1,
        "only the first upload stored anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_out_of_range_in_paths_are_refused_as_bad_requests() {
    let server = start(Db::Sqlite).await;
    let session = server.login_as(&wallet(41), Some("organizer")).await;
    let mut checked = 0;
    for (method, template, has_body, _) in routes(&server).await {
        // The pages answer a browser without a console session with the
        // sign-in page; `api_refusals.rs` checks them signed in.
        if !template.contains('{') || is_page(&template) {
            continue;
        }
        let names: Vec<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').map(|n| n.trim_end_matches('}')))
            .filter(|n| is_numeric(n))
            .collect();
        for name in names {
            for bad in ["18446744073709551616", "-1", "1e3", "0x10", "+-1", "١"] {
                let path = concrete(&template, |n| {
                    if n == name {
                        bad.to_owned()
                    } else {
                        good_param(n)
                    }
                });
                let mut request = server
                    .http
                    .request(method.clone(), format!("{}{path}", server.url))
                    .bearer_auth(bearer(&template, &session));
                if has_body && is_page(&template) {
                    request = request
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body("");
                } else if has_body {
                    request = request.json(&json!({}));
                }
                let what = format!("{method} {path}");
                let (status, code) = refusal(&what, request.send().await.unwrap()).await;
                // The path does not parse (400), or a handler that reads
                // the id itself names it (422).
                assert!(
                    [(400, "bad_request"), (422, "invalid_field")]
                        .contains(&(status, code.as_str())),
                    "{what}: {status} {code}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} cases");
}

/// Sends a body of `total` bytes with chunked transfer encoding (no length
/// the server could refuse up front) over a raw socket; (status, error code)
/// of the answer, the code "page" for a page.
async fn chunked(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, String)],
    total: usize,
) -> (u16, String) {
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let answer = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        answer
    });
    let headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: gate\r\nconnection: close\r\n\
         content-type: {content_type}\r\n{headers}transfer-encoding: chunked\r\n\r\n"
    );
    let _ = writer.write_all(head.as_bytes()).await;
    let chunk = 64 * 1024;
    let mut framed = format!("{chunk:x}\r\n").into_bytes();
    framed.extend(std::iter::repeat_n(b' ', chunk));
    framed.extend(b"\r\n");
    let mut sent = 0;
    // The server may answer and close before the end: writes then fail.
    while sent < total && !answer.is_finished() {
        if writer.write_all(&framed).await.is_err() {
            break;
        }
        sent += chunk;
    }
    let _ = writer.write_all(b"0\r\n\r\n").await;
    let raw = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .expect("an answer to a chunked body")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if head
        .to_ascii_lowercase()
        .contains("content-type: text/html")
    {
        return (status, "page".into());
    }
    // The body may come chunked itself: the JSON object is inside.
    let json = body
        .find('{')
        .and_then(|start| body.rfind('}').map(|end| &body[start..=end]))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .unwrap_or(Value::Null);
    (
        status,
        json["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A device request is answered from its headers when they name no enrolled
/// device: the server does not wait for (or buffer) the 4 MB body promised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_device_is_refused_before_its_body_is_read() {
    let server = start(Db::Sqlite).await;
    server.seed(1).await;
    let gate = server.enrol("north", 100).await;
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let stranger = Uuid::now_v7();
    let revoked = gate.response.device_id;
    server
        .state
        .store
        .revoke_device(
            revoked,
            server.clock.0.load(std::sync::atomic::Ordering::SeqCst),
        )
        .await
        .unwrap();
    for (device, says) in [(stranger, "unknown device"), (revoked, "device revoked")] {
        let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
        let head = format!(
            "POST /gate/v1/journal HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\n\
             content-length: 4000000\r\nx-gate-device: {device}\r\nx-gate-timestamp: {T0}\r\n\
             x-gate-nonce: {}\r\nx-gate-signature: {}\r\n\r\n",
            Uuid::now_v7().simple(),
            bs58::encode([7u8; 64]).into_string()
        );
        writer.write_all(head.as_bytes()).await.unwrap();
        // Not one byte of the body is sent; the answer comes anyway.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let read = async {
            while !String::from_utf8_lossy(&answer).contains('}') {
                let n = reader.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("an answer without the body");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(text.contains(says), "{text}");
        // The body was never read: the connection is not reused.
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
        drop(writer);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_body_route_refuses_oversize_malformed_mistyped_and_deep_bodies() {
    let server = start(Db::Sqlite).await;
    let session = server.login_as(&wallet(41), Some("organizer")).await;
    // Device routes read a body only for an enrolled device: these headers
    // name one (their signature is checked after the body is read).
    server.seed(1).await;
    let gate = server.enrol("north", 100).await;
    let device_headers = [
        ("x-gate-device", gate.response.device_id.to_string()),
        ("x-gate-timestamp", T0.to_string()),
        ("x-gate-nonce", Uuid::now_v7().simple().to_string()),
        ("x-gate-signature", bs58::encode([7u8; 64]).into_string()),
    ];
    let too_large = sync_server::http::MAX_BODY_BYTES + 1;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let mut checked = 0;
    for (method, template, has_body, device) in routes(&server).await {
        if !has_body {
            continue;
        }
        let path = concrete(&template, good_param);
        let send = |content_type: &'static str, body: reqwest::Body| {
            let mut request = server
                .http
                .request(method.clone(), format!("{}{path}", server.url))
                .bearer_auth(bearer(&template, &session))
                .header("content-type", content_type);
            if device {
                for (name, value) in &device_headers {
                    request = request.header(*name, value);
                }
            }
            request.body(body).send()
        };
        let page = is_page(&template);
        let json_type = if page {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        // Too large, with a length and streamed in chunks without one.
        let what = format!("{method} {path} too large (with a length)");
        let body = reqwest::Body::from(vec![b' '; too_large]);
        let (status, code) = refusal(&what, send(json_type, body).await.unwrap()).await;
        assert_eq!(status, 413, "{what}: {code}");
        if !page {
            assert_eq!(code, "payload_too_large", "{what}");
        }
        let what = format!("{method} {path} too large (chunked)");
        let mut headers = vec![(
            "authorization",
            format!("Bearer {}", bearer(&template, &session)),
        )];
        if device {
            headers.extend(device_headers.iter().cloned());
        }
        let (status, code) =
            chunked(addr, method.as_str(), &path, json_type, &headers, too_large).await;
        assert_eq!(status, 413, "{what}: {code}");
        if !page {
            assert_eq!(code, "payload_too_large", "{what}");
        }
        checked += 2;
        if page {
            continue;
        }
        // What a route checks before it parses the body answers first: the
        // device's signature, the webhook's.
        let before_parsing = if device {
            Some((401, "unauthorized"))
        } else if template == "/webhooks/stripe" || template == "/api/payments/webhook" {
            // Payments are not configured in this server: refused before
            // anything is read (with payments on, an unsigned body is 400
            // `missing_signature`: `api_payments.rs`).
            Some((503, "payments_disabled"))
        } else {
            None
        };
        for (what, content_type, body, expected) in [
            (
                "cut short",
                "application/json",
                b"{\"broken".to_vec(),
                (400, "malformed_json"),
            ),
            (
                "nested 100,000 deep",
                "application/json",
                deep.clone().into_bytes(),
                (400, "malformed_json"),
            ),
            (
                "not JSON",
                "text/plain",
                b"{}".to_vec(),
                (415, "unsupported_media_type"),
            ),
        ] {
            let what = format!("{method} {path} ({what})");
            let (status, code) =
                refusal(&what, send(content_type, body.into()).await.unwrap()).await;
            let (want_status, want_code) = before_parsing.unwrap_or(expected);
            // A body of the wrong shape may be refused for its shape (422)
            // before the parser reaches the depth limit (400).
            let deep_but_misshapen =
                what.contains("deep") && (status, code.as_str()) == (422, "invalid_field");
            // Event 1 does not exist here: a route may look it up first.
            let no_such_event =
                template.contains("{event}") && (status, code.as_str()) == (404, "not_found");
            if !deep_but_misshapen && !no_such_event {
                assert_eq!((status, code.as_str()), (want_status, want_code), "{what}");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} cases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_everyone_else_is_served() {
    let server = start_with(
        Db::Sqlite,
        |c| {
            c.connections.header_timeout_secs = 3;
            c.connections.body_timeout_secs = 3;
        },
        |_| axum::Router::new(),
    )
    .await;
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    // Twenty clients trickle their headers, ten their bodies, a byte at a
    // time, until the server closes on them.
    let mut slow = Vec::new();
    for i in 0..30 {
        let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
        let head: &[u8] = if i < 20 {
            b"GET /health HTTP/1.1\r\nhost: gate\r\nx-slow: "
        } else {
            b"POST /api/auth/nonce HTTP/1.1\r\nhost: gate\r\ncontent-type: application/json\r\n\
              content-length: 4096\r\n\r\n{\"wallet\":\""
        };
        writer.write_all(head).await.unwrap();
        let closed = tokio::spawn(async move {
            let mut answer = Vec::new();
            let _ = reader.read_to_end(&mut answer).await;
            answer
        });
        tokio::spawn(async move {
            for _ in 0..400 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if writer.write_all(b"a").await.is_err() {
                    break;
                }
            }
        });
        slow.push((i < 20, closed));
    }

    // Everyone else is served while all thirty are still connected.
    for _ in 0..5 {
        let (status, body, _) = server
            .call(reqwest::Method::GET, "/health", None, None)
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body, _) = server
            .call(
                reqwest::Method::POST,
                "/api/auth/nonce",
                None,
                Some(json!({ "wallet": address(&wallet(3)) })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let still_open = slow.iter().filter(|(_, c)| !c.is_finished()).count();
    assert_eq!(
        still_open, 30,
        "answers came while the slow clients were connected"
    );

    // Then each is cut off: no answer to half a head, 408 to half a body.
    for (headers, closed) in slow {
        let answer = tokio::time::timeout(Duration::from_secs(60), closed)
            .await
            .expect("a slow client was never cut off")
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        if headers {
            assert!(answer.is_empty(), "no answer to half a head: {text}");
        } else {
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
            assert_eq!(body["error"], "request_timeout", "{body}");
        }
    }
}
