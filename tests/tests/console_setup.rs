//! Setting an event up in the organizer console, in headless Chromium,
//! against the real server on the embedded chain, a real SMTP server and
//! two real gate agents: the organizer signs in with the injected wallet,
//! creates an event (a cleared number field answered in words), edits it
//! and sets its check-in rules (the gates' caches receive them and a gate
//! refuses a tier it no longer admits), mints one ticket, mints a batch
//! and watches it land, imports a CSV list (a wallet row minted, an email
//! row mailed a claim link; a bad file named line by line and nothing
//! imported), exports the tickets as CSV, and resolves a conflict two
//! offline gates made. Screenshots at phone and laptop width under
//! `$CARGO_TARGET_DIR/test-artifacts/console/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../sync-server/tests/support/smtp_sink.rs"]
mod smtp_sink;

use std::time::Duration;

use ed25519_dalek::SigningKey;
use end_to_end::browser::{Browser, artifacts_dir, injected_wallet};
use end_to_end::*;
use gate_agent::store::Store as GateStore;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{SinkRules, SmtpSink};
use sync_server::config::{SmtpSettings, SmtpTls};

const LAPTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);
const WAIT: Duration = Duration::from_secs(30);

fn shoot(browser: &Browser, name: &str) {
    let dir = artifacts_dir("console");
    for (label, (w, h)) in [("laptop", LAPTOP), ("phone", PHONE)] {
        browser.resize(w, h).unwrap();
        browser
            .screenshot(&dir.join(format!("setup-{name}-{label}.png")))
            .unwrap();
    }
    browser.resize(LAPTOP.0, LAPTOP.1).unwrap();
    end_to_end::organizer::assert_fits_a_phone(browser, name).unwrap();
}

fn address(seed: u8) -> String {
    bs58::encode(
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes(),
    )
    .into_string()
}

/// A call with a wallet's session token; its status and JSON answer.
fn as_wallet(server: &Server, token: &str, method: Method, path: &str) -> (u16, Value) {
    server.rt.block_on(async {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// `YYYY-MM-DDTHH:MM` (UTC) of Unix seconds, as a datetime-local input
/// holds it.
fn local(t: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t as u64))
        .to_string()[..16]
        .to_owned()
}

/// Waits until the page shows `css` whose text holds `text`; fails with
/// the page's text.
fn wait_text(browser: &Browser, what: &str, css: &str, text: &str) {
    let script = format!(
        "const e = document.querySelector({css}); return e && e.textContent.includes({text});",
        css = json!(css),
        text = json!(text)
    );
    browser
        .wait_for(what, WAIT, &script)
        .unwrap_or_else(|e| panic!("{e}: {}", page_text(browser)));
}

/// The whole page's text, for a failure's message.
fn page_text(browser: &Browser) -> String {
    browser
        .script(
            "return location.href + '\\n' + document.body.innerText;",
            json!([]),
        )
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// The tier -> gates rule a gate box holds in its cache for the event.
fn cached_event(gate: &GateBox) -> Option<shared::wire::CachedEvent> {
    GateStore::open(&gate.db)
        .unwrap()
        .events()
        .unwrap()
        .into_iter()
        .next()
}

/// Presses the undo button of `gate`'s status page; (status code, answer).
fn press_undo(gate: &GateBox) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(gate.status_addr).unwrap();
    write!(
        stream,
        "POST /api/undo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap())
}

fn cached_tier_gates(gate: &GateBox) -> Vec<shared::TierGates> {
    GateStore::open(&gate.db)
        .unwrap()
        .events()
        .unwrap()
        .first()
        .map(|e| e.tier_gates.clone())
        .unwrap_or_default()
}

#[test]
fn an_organizer_sets_up_an_event_mints_imports_exports_and_resolves_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let mail_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    mail_port.set_nonblocking(true).unwrap();
    let port = mail_port.local_addr().unwrap().port();
    let server = Server::start_with(&dir.path().join("server"), None, |config| {
        config.api.jwt_secret = "console test secret of at least thirty-two bytes".into();
        config.smtp = SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            from: "Harbour Lights <tickets@claims.example>".into(),
            claim_url: "https://claims.example/claim".into(),
            timeout_secs: 10,
            ..SmtpSettings::default()
        };
    })
    .unwrap();
    let mut sink = server.rt.block_on(async {
        SmtpSink::start_on(
            tokio::net::TcpListener::from_std(mail_port).unwrap(),
            SinkRules::default(),
        )
    });
    let organizer = SigningKey::from_bytes(&[8; 32]);
    server
        .admin_ok(
            Method::PUT,
            &format!("/api/admin/wallets/{}/role", address(8)),
            Some(json!({ "role": "organizer" })),
            200,
        )
        .unwrap();
    let token = server.api_login(&organizer).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let browser = Browser::start(LAPTOP.0, LAPTOP.1).unwrap();
    browser
        .devtools(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": injected_wallet(&organizer) }),
        )
        .unwrap();
    browser
        .open(&format!("{}/console/sign-in", server.url))
        .unwrap();
    browser.click("#wallet-sign-in").unwrap();
    browser
        .wait_for(
            "the events page after the wallet signed",
            WAIT,
            "return location.pathname === '/console' && document.querySelector(\"a[href='/console/events/new']\") !== null",
        )
        .unwrap();

    // A new event; a cleared number field gets the form back in words.
    browser.click("a[href='/console/events/new']").unwrap();
    browser.type_into("#name", "Harbour Lights").unwrap();
    browser.type_into("#venue", "Pier 4").unwrap();
    browser
        .script(
            "document.getElementById('starts_at').value = arguments[0]; \
             document.getElementById('ends_at').value = arguments[1]; \
             document.getElementById('capacity').value = ''; \
             document.getElementById('tier_supply').value = '50';",
            json!([local(now + 600), local(now + 7200)]),
        )
        .unwrap();
    browser
        .script(
            "document.querySelector('form.stack').noValidate = true;",
            json!([]),
        )
        .unwrap();
    browser.click("form.stack button[type=submit]").unwrap();
    wait_text(
        &browser,
        "the cleared field named",
        ".problem",
        "Capacity: enter a number",
    );
    assert_eq!(
        browser
            .script("return document.getElementById('name').value;", json!([]))
            .unwrap(),
        "Harbour Lights"
    );
    shoot(&browser, "1-new-event-error");
    browser
        .script(
            "document.getElementById('capacity').value = '50';",
            json!([]),
        )
        .unwrap();
    browser.click("form.stack button[type=submit]").unwrap();
    let created = browser
        .wait_for(
            "the new event's live page",
            Duration::from_secs(60),
            "const m = location.pathname.match(/^\\/console\\/events\\/(\\d+)$/); return m && m[1];",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", page_text(&browser)));
    let event_id: u64 = created.as_str().unwrap().parse().unwrap();

    // Its settings: details on chain, then every check-in rule.
    browser.click("a[href$='/edit']").unwrap();
    wait_text(&browser, "the settings page", "#fixed-note", "cannot");
    browser
        .script(
            "const f = document.getElementById('details-form'); f.noValidate = true; \
             document.getElementById('venue').value = 'Pier 5'; \
             document.getElementById('doors_open_minutes').value = '';",
            json!([]),
        )
        .unwrap();
    browser.click("#details-form button[type=submit]").unwrap();
    wait_text(
        &browser,
        "the cleared doors field named",
        "#details-title ~ .problem",
        "Doors open, minutes before the start: enter a number",
    );
    browser
        .script(
            "document.getElementById('doors_open_minutes').value = '90';",
            json!([]),
        )
        .unwrap();
    browser.click("#details-form button[type=submit]").unwrap();
    wait_text(&browser, "the details saved", ".done", "Saved on chain");
    let (_, event) = as_wallet(
        &server,
        &token,
        Method::GET,
        &format!("/api/events/{event_id}"),
    );
    assert_eq!(event["venue"], "Pier 5", "{event}");
    browser
        .script(
            "document.getElementById('reentry').value = 'allowed_after'; \
             document.getElementById('min_outside_minutes').value = '0'; \
             document.getElementById('holder_proof').value = 'not_required'; \
             document.getElementById('unknown_tickets').value = 'reject'; \
             document.getElementById('tier_gates_0').value = '2';",
            json!([]),
        )
        .unwrap();
    browser.click("#rules-form button[type=submit]").unwrap();
    wait_text(&browser, "the rules saved", ".done", "Rules saved");
    shoot(&browser, "2-settings");
    let (_, event) = as_wallet(
        &server,
        &token,
        Method::GET,
        &format!("/api/events/{event_id}"),
    );
    assert_eq!(
        event["rules"],
        json!({
            "reentry": { "allowed_after": { "min_outside_secs": 0 } },
            "unknown_tickets": "reject",
            "holder_proof": "not_required",
            "tier_gates": [{ "tier": 0, "gates": [2] }],
            "end_grace_secs": 0,
            "undo_window_secs": 0
        })
    );

    // Two gate boxes behind switches (their network cables).
    let mut boxes = Vec::new();
    let mut switches = Vec::new();
    for (number, name) in [(1, "north"), (2, "south")] {
        server
            .admin_ok(
                Method::PUT,
                &format!("/api/admin/events/{event_id}/gates"),
                Some(json!({ "number": number, "name": name, "direction": "entry" })),
                204,
            )
            .unwrap();
        let switch = NetSwitch::start(&server.rt, server.addr).unwrap();
        let gate_dir = dir.path().join(format!("gate-{name}"));
        let enrol = server.enrol_token(event_id, name).unwrap();
        GateBox::enrol(&gate_dir, &switch.url, &enrol).unwrap();
        let gate = GateBox::start(&gate_dir, name).unwrap();
        gate.wait_status("the cache", WAIT, |s| {
            s["online"] == true && s["setup_error"].is_null()
        })
        .unwrap();
        boxes.push(gate);
        switches.push(switch);
    }
    // The rules arrived in each box's cache.
    for gate in &boxes {
        assert_eq!(
            cached_tier_gates(gate),
            vec![shared::TierGates {
                tier: 0,
                gates: vec![2]
            }]
        );
    }

    // Mint one.
    browser
        .open(&format!("{}/console/events/{event_id}/mint", server.url))
        .unwrap();
    browser.type_into("#wallet", &address(60)).unwrap();
    browser.click("#mint-form button[type=submit]").unwrap();
    wait_text(
        &browser,
        "the ticket minted",
        ".done",
        "Ticket 0 (general) minted",
    );
    shoot(&browser, "3-mint");
    let code = |ticket: u32| {
        let (status, t) = as_wallet(
            &server,
            &token,
            Method::GET,
            &format!("/api/tickets/{event_id}/{ticket}"),
        );
        assert_eq!(status, 200, "{t}");
        t["code"].as_str().unwrap().to_owned()
    };
    // North no longer admits the general tier: the box refuses it.
    boxes[0]
        .wait_ticket(event_id, 0, "ticket 0 at north", WAIT, |_| true)
        .unwrap();
    let refused = boxes[0].scan(&code(0)).unwrap();
    assert!(!refused.record.opened, "{refused:?}");
    assert_eq!(refused.record.outcome, "tier_not_allowed");

    // The turnstile undo window, set on the rules form, reaches the running
    // boxes with their next delta: south admits ticket 0, the holder does
    // not pass, staff undo it and the ticket is outside again.
    browser
        .open(&format!("{}/console/events/{event_id}/edit", server.url))
        .unwrap();
    assert!(
        browser
            .text("#reentry")
            .unwrap()
            .contains("Allowed: no exit scan needed"),
        "all three re-entry rules are offered"
    );
    browser
        .script(
            "document.getElementById('undo_window_secs').value = '30';",
            json!([]),
        )
        .unwrap();
    browser.click("#rules-form button[type=submit]").unwrap();
    wait_text(&browser, "the rules saved", ".done", "Rules saved");
    for gate in &boxes {
        wait("the undo window in the box's cache", WAIT, || {
            Ok(cached_event(gate).is_some_and(|e| e.undo_window_secs == 30))
        })
        .unwrap();
    }
    boxes[1]
        .wait_ticket(event_id, 0, "ticket 0 at south", WAIT, |_| true)
        .unwrap();
    assert!(boxes[1].scan(&code(0)).unwrap().record.opened);
    let (status, answer) = press_undo(&boxes[1]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ticket_id"], 0, "{answer}");
    assert_eq!(
        boxes[1].ticket(event_id, 0).unwrap().unwrap().presence,
        shared::Presence::NeverEntered
    );
    boxes[1]
        .wait_status("the undo uploaded", WAIT, |s| s["counts"]["unsent"] == 0)
        .unwrap();
    browser
        .open(&format!("{}/console/events/{event_id}", server.url))
        .unwrap();
    let rules = browser.text("#rules-summary").unwrap();
    assert!(rules.contains("Turnstile undo: 30 s"), "{rules}");
    assert!(rules.contains("Re-entry: after an exit scan"), "{rules}");

    // A batch, followed live to the end.
    browser
        .open(&format!("{}/console/events/{event_id}/mint", server.url))
        .unwrap();
    let batch: Vec<String> = (61..66).map(address).collect();
    browser
        .script(
            "document.getElementById('wallets').value = arguments[0];",
            json!([batch.join("\n")]),
        )
        .unwrap();
    browser.click("#batch-form button[type=submit]").unwrap();
    browser
        .wait_for(
            "the batch done on its progress page",
            Duration::from_secs(60),
            "const s = document.querySelector('#mint-progress [data-state]'); \
             return s && s.dataset.state === 'completed' \
               && document.getElementById('mint-bar').value === 5 \
               && Number(document.getElementById('live-state').dataset.updates || 0) >= 1;",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", page_text(&browser)));
    assert!(
        browser
            .text("#mint-progress")
            .unwrap()
            .contains("5 of 5 tickets minted")
    );
    shoot(&browser, "4-batch");

    // A CSV list: a bad file is named line by line and imports nothing.
    browser
        .open(&format!("{}/console/events/{event_id}/mint", server.url))
        .unwrap();
    browser
        .script(
            "document.getElementById('csv').value = arguments[0];",
            json!([format!(
                "wallet or email,tier\nnot-a-wallet,0\n{},gold\n",
                address(66)
            )]),
        )
        .unwrap();
    browser.click("#import-form button[type=submit]").unwrap();
    wait_text(
        &browser,
        "the bad lines named",
        "#import-problems",
        "Line 2",
    );
    let problems = browser.text("#import-problems").unwrap();
    assert!(problems.contains("Line 3: no tier \"gold\""), "{problems}");
    shoot(&browser, "5-import-refused");
    browser
        .script(
            "document.getElementById('csv').value = arguments[0];",
            json!([format!(
                "wallet or email,tier\n{},general\nann@claims.example,0\n",
                address(66)
            )]),
        )
        .unwrap();
    browser.click("#import-form button[type=submit]").unwrap();
    wait_text(
        &browser,
        "the import report",
        "#import-report",
        "claim link mailed",
    );
    let report = browser.text("#import-report").unwrap();
    assert!(report.contains("minted to the wallet"), "{report}");
    shoot(&browser, "5-import");
    let mail = server.rt.block_on(sink.next());
    assert_eq!(mail.rcpt_to, vec!["ann@claims.example".to_owned()]);
    let message = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .unwrap();
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("https://claims.example/claim?code="),
        "{text}"
    );

    // The export: every ticket with its holder.
    let csv = browser
        .script(
            "return fetch(document.querySelector(\"a[href$='attendees.csv']\").href).then(r => r.text());",
            json!([]),
        )
        .unwrap();
    let csv = csv.as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "ticket_id,tier,tier_name,holder,status,inside,admissions"
    );
    assert_eq!(lines.len(), 1 + 1 + 5 + 2, "{csv}");
    assert_eq!(
        lines[1],
        format!("0,0,general,{},valid,not yet,0", address(60))
    );
    assert!(lines[2].contains(&address(61)), "{csv}");

    // Any gate again; then two offline gates admit ticket 1 both.
    browser
        .open(&format!("{}/console/events/{event_id}/edit", server.url))
        .unwrap();
    browser
        .script(
            "document.getElementById('tier_gates_0').value = '';",
            json!([]),
        )
        .unwrap();
    browser.click("#rules-form button[type=submit]").unwrap();
    wait_text(&browser, "the rules saved", ".done", "Rules saved");
    for gate in &boxes {
        wait("any gate again in the box's cache", WAIT, || {
            Ok(cached_tier_gates(gate).is_empty())
        })
        .unwrap();
        gate.wait_ticket(event_id, 1, "ticket 1 in the cache", WAIT, |_| true)
            .unwrap();
    }
    for switch in &switches {
        switch.cut();
    }
    for gate in &boxes {
        gate.wait_status("offline", WAIT, |s| s["online"] == false)
            .unwrap();
    }
    let shared = code(1);
    assert!(boxes[0].scan(&shared).unwrap().record.opened);
    std::thread::sleep(Duration::from_millis(1100));
    assert!(boxes[1].scan(&shared).unwrap().record.opened);
    for switch in &switches {
        switch.restore();
    }
    for gate in &boxes {
        gate.wait_status("the journal uploaded", WAIT, |s| {
            s["online"] == true && s["counts"]["unsent"] == 0
        })
        .unwrap();
    }

    // The conflict, side by side, resolved from the page.
    browser
        .open(&format!(
            "{}/console/events/{event_id}/conflicts",
            server.url
        ))
        .unwrap();
    wait_text(
        &browser,
        "the conflict listed",
        "main",
        "Ticket 1: admitted twice",
    );
    let conflict = browser.text("article.conflict").unwrap();
    assert!(
        conflict.contains("First scan") && conflict.contains("Second scan"),
        "{conflict}"
    );
    assert!(conflict.contains("Not resolved yet"), "{conflict}");
    shoot(&browser, "6-conflict");
    browser
        .click("article.conflict input[value=ticket_shared]")
        .unwrap();
    browser
        .type_into(
            "article.conflict textarea",
            "Two friends on one ticket; the second waited outside",
        )
        .unwrap();
    browser
        .click("article.conflict button[type=submit]")
        .unwrap();
    wait_text(
        &browser,
        "the resolution shown",
        "article.conflict .resolution",
        "Ticket shared",
    );
    let shown = browser.text("article.conflict .resolution").unwrap();
    assert!(shown.contains("Two friends on one ticket"), "{shown}");
    assert!(
        browser
            .text("#conflict-count")
            .unwrap()
            .contains("0 not resolved")
    );
    shoot(&browser, "7-conflict-resolved");
    let (status, listed) = as_wallet(
        &server,
        &token,
        Method::GET,
        &format!("/api/events/{event_id}/conflicts"),
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed[0]["resolution"]["outcome"], "ticket_shared");
    assert_eq!(listed[0]["resolution"]["resolved_by"], address(8));
    assert_eq!(listed[0]["earlier"]["gate"], 1);
    assert_eq!(listed[0]["later"]["gate"], 2);

    for gate in boxes {
        gate.stop();
    }
}
