//! Setting an event up through the API, on SQLite and PostgreSQL: a CSV
//! file of `wallet or email, tier` rows (every row checked before anything
//! is minted; wallet rows minted, email rows mailed a claim link through a
//! real SMTP server and claimed), the tickets exported as CSV, and
//! conflicts listed side by side and resolved by the event's organizer.
//! An import is recorded as made by whoever made it: the organizer's
//! wallet, or the admin token from the console.
//! Refusals: no login, another organizer, a malformed file, a wrong body.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::sync::atomic::Ordering;

use common::*;
use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{SinkRules, SmtpSink};
use sync_server::config::{SmtpSettings, SmtpTls};

on_both_backends!(
    a_csv_file_mints_wallet_rows_mails_email_rows_and_a_bad_file_mints_nothing,
    conflicts_show_both_scans_and_keep_the_resolution_their_organizer_records,
);

fn smtp(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        from: "Harbour Lights <tickets@claims.example>".into(),
        claim_url: "https://claims.example/claim".into(),
        timeout_secs: 10,
        ..SmtpSettings::default()
    }
}

fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A file upload as a wallet sends it.
async fn send_file(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    key: Option<&str>,
    file: &str,
) -> (u16, Value) {
    let mut request = server
        .http
        .post(format!("{}{path}", server.url))
        .header("content-type", content_type)
        .body(file.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get_text(server: &TestServer, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut request = server.http.get(format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, r.text().await.unwrap())
}

/// The code in the claim link of a delivered mail.
fn code_of(delivery: &smtp_sink::Delivery) -> String {
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    let text = message.body_text(0).unwrap();
    let link = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("https://claims.example/claim?code="))
        .unwrap_or_else(|| panic!("no claim link in: {text}"));
    link.rsplit_once("code=").unwrap().1.to_owned()
}

async fn a_csv_file_mints_wallet_rows_mails_email_rows_and_a_bad_file_mints_nothing(db: Db) {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let server =
        start_on_chain_with(db, ChainMode::Embedded, |c| c.smtp = smtp(sink.addr.port())).await;
    let wall = wall_clock();
    server.clock.0.store(wall, Ordering::SeqCst);
    let organizer = server.login_as(&wallet(50), Some("organizer")).await;
    let other = server.login_as(&wallet(51), Some("organizer")).await;
    let starts = wall + 4 * 86_400;
    let (status, created, _) = server
        .call(
            Method::POST,
            "/api/events",
            Some(&organizer),
            Some(json!({
                "name": "Harbour Lights", "venue": "Pier 4",
                "starts_at": starts, "ends_at": starts + 7200, "capacity": 20,
                "tiers": [
                    { "name": "general", "price_lamports": 0, "supply": 10 },
                    { "name": "vip", "price_lamports": 0, "supply": 10 }
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let event = created["event_id"].as_u64().unwrap();
    let import = format!("/api/events/{event}/tickets/import");
    let export = format!("/api/events/{event}/attendees.csv");
    let holder = address(&wallet(52));

    // A file with bad lines: each is named, and nothing is minted.
    let bad = format!(
        "wallet or email,tier\n{holder},vip\nnot-a-wallet,0\n{holder},gold\nann@,0\n{holder}\n"
    );
    let (status, refused) =
        send_file(&server, &import, Some(&organizer), "text/csv", None, &bad).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"], "invalid_file");
    let lines: Vec<u64> = refused["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{refused}");
    assert!(
        refused["rows"][1]["problem"]
            .as_str()
            .unwrap()
            .contains("0 (general), 1 (vip)"),
        "{refused}"
    );
    assert!(refused["message"].as_str().unwrap().contains("line 3"));
    let (status, _, csv) = get_text(&server, &export, Some(&organizer)).await;
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), 1, "nothing half-imported: {csv}");
    assert_eq!(
        csv.lines().next().unwrap(),
        "ticket_id,tier,tier_name,holder,status,inside,admissions"
    );

    // Refusals before the file is read.
    let good = format!("wallet or email,tier\n{holder},vip\nann@claims.example,general\n");
    let (status, body) = send_file(&server, &import, None, "text/csv", None, &good).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send_file(&server, &import, Some(&other), "text/csv", None, &good).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, body) = send_file(
        &server,
        &import,
        Some(&organizer),
        "application/json",
        None,
        &good,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, body) =
        send_file(&server, &import, Some(&organizer), "text/csv", None, "\n").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["rows"][0]["line"], 0);

    // A good file: the wallet row minted, the email row mailed.
    let (status, report) = send_file(
        &server,
        &import,
        Some(&organizer),
        "text/csv",
        Some("list-1"),
        &good,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["state"], "completed");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["state"], "minted");
    assert_eq!(rows[0]["tier"], 1);
    assert_eq!(rows[1]["state"], "mailed", "{report}");
    let delivery = sink.next().await;
    assert_eq!(delivery.rcpt_to, vec!["ann@claims.example".to_owned()]);
    let code = code_of(&delivery);

    // Sent again with the same key: the same import, nothing new minted or
    // mailed.
    let (status, again) = send_file(
        &server,
        &import,
        Some(&organizer),
        "text/csv",
        Some("list-1"),
        &good,
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["mint_request"], report["mint_request"]);
    assert_eq!(again["rows"][1]["state"], "mailed");
    assert!(sink.is_empty(), "no second mail");

    // Ann claims hers into her wallet.
    let ann = server.login_as(&wallet(53), None).await;
    let (status, claimed, _) = server
        .call(
            Method::POST,
            "/api/tickets/claim",
            Some(&ann),
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["owner"], address(&wallet(53)));

    // The export: both tickets with their holders.
    let (status, kind, csv) = get_text(&server, &export, Some(&organizer)).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(
        lines[1],
        format!("{},1,vip,{holder},valid,not yet,0", rows[0]["ticket_id"])
    );
    assert!(
        lines[2].contains(&address(&wallet(53))) && lines[2].contains(",general,"),
        "{csv}"
    );
    let (status, _, _) = get_text(&server, &export, Some(&other)).await;
    assert_eq!(status, 403);
    let (status, _, _) = get_text(&server, &export, None).await;
    assert_eq!(status, 401);
    let (status, _, admin_csv) = get_text(&server, &export, Some(ADMIN)).await;
    assert_eq!((status, admin_csv), (200, csv));

    // Whoever imports is on record: the organizer's wallet for its own
    // import, the admin token (not the organizer) for one from the console
    // signed in with the token.
    assert_eq!(report["requested_by"], address(&wallet(50)));
    let stored = server
        .state
        .store
        .mint_request(report["mint_request"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.caller, address(&wallet(50)));
    let cookie = console_admin_cookie(&server).await;
    let file = format!("wallet or email,tier\n{},general\n", address(&wallet(54)));
    let r = server
        .http
        .post(format!("{}/console/events/{event}/import", server.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("csv", &file), ("key", "console-admin-1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Recorded as made by the admin token"),
        "{page}"
    );
    let request = page
        .split("data-request=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let stored = server
        .state
        .store
        .mint_request(request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.caller, "admin");
}

/// The console's cookie for the admin token.
async fn console_admin_cookie(server: &TestServer) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/console/sign-in", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("admin_token", ADMIN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// A form body: each value percent-encoded but for letters and digits.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn conflicts_show_both_scans_and_keep_the_resolution_their_organizer_records(db: Db) {
    let server = start(db).await;
    server.seed(3).await;
    let north = server.enrol("north", 11).await;
    let south = server.enrol("south", 12).await;
    // Both gates admitted ticket 1 while offline.
    assert_eq!(
        north
            .upload(vec![north.scan(1, T0 * 1000 + 1000)])
            .await
            .status(),
        200
    );
    let second = south.scan(1, T0 * 1000 + 5000);
    assert_eq!(south.upload(vec![second.clone()]).await.status(), 200);
    let path = format!("/api/events/{EVENT}/conflicts");
    let (status, list, _) = server.call(Method::GET, &path, Some(ADMIN), None).await;
    assert_eq!(status, 200, "{list}");
    let conflict = &list[0];
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(conflict["conflict_id"], second.scan_id.to_string());
    assert_eq!(conflict["ticket_id"], 1);
    assert_eq!(conflict["earlier"]["gate"], 1);
    assert_eq!(
        conflict["earlier"]["device_id"],
        north.response.device_id.to_string()
    );
    assert_eq!(conflict["later"]["gate"], 2);
    assert_eq!(conflict["later"]["scanned_at_ms"], T0 * 1000 + 5000);
    assert_eq!(conflict["later"]["direction"], "entry");
    assert_eq!(conflict["later"]["outcome"], "admitted");
    assert!(conflict["resolution"].is_null());

    let resolve = format!("{path}/{}/resolution", second.scan_id);
    let body = json!({ "outcome": "ticket_shared", "note": "Two friends, one ticket" });
    // Refused: no login, another organizer, an unknown conflict, a bad id,
    // `other` without a note, an unknown outcome.
    let (status, _, _) = server
        .call(Method::POST, &resolve, None, Some(body.clone()))
        .await;
    assert_eq!(status, 401);
    let stranger = server.login_as(&wallet(41), Some("organizer")).await;
    let (status, refused, _) = server
        .call(Method::POST, &resolve, Some(&stranger), Some(body.clone()))
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _, _) = server.call(Method::GET, &path, Some(&stranger), None).await;
    assert_eq!(status, 403);
    let unknown = format!("{path}/{}/resolution", uuid::Uuid::now_v7());
    let (status, _, _) = server
        .call(Method::POST, &unknown, Some(ADMIN), Some(body.clone()))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = server
        .call(
            Method::POST,
            &format!("{path}/nope/resolution"),
            Some(ADMIN),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 400);
    let (status, refused, _) = server
        .call(
            Method::POST,
            &resolve,
            Some(ADMIN),
            Some(json!({ "outcome": "other" })),
        )
        .await;
    assert_eq!((status, refused["field"].as_str()), (422, Some("note")));
    let (status, _, _) = server
        .call(
            Method::POST,
            &resolve,
            Some(ADMIN),
            Some(json!({ "outcome": "lost" })),
        )
        .await;
    assert_eq!(status, 422);

    // Recorded, listed with the conflict, and replaced by a later decision.
    let (status, resolved, _) = server
        .call(Method::POST, &resolve, Some(ADMIN), Some(body))
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["resolution"]["outcome"], "ticket_shared");
    assert_eq!(resolved["resolution"]["resolved_by"], "admin");
    let (_, list, _) = server.call(Method::GET, &path, Some(ADMIN), None).await;
    assert_eq!(list[0]["resolution"]["note"], "Two friends, one ticket");
    let (status, _, _) = server
        .call(
            Method::POST,
            &resolve,
            Some(ADMIN),
            Some(json!({ "outcome": "same_person" })),
        )
        .await;
    assert_eq!(status, 200);
    let (_, list, _) = server.call(Method::GET, &path, Some(ADMIN), None).await;
    assert_eq!(list[0]["resolution"]["outcome"], "same_person");
    assert_eq!(list[0]["resolution"]["note"], "");
    // The scans themselves are unchanged: still one conflict.
    let (_, admin_list, _) = server
        .call(
            Method::GET,
            &format!("/api/admin/events/{EVENT}/conflicts"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(admin_list.as_array().unwrap().len(), 1);
}
