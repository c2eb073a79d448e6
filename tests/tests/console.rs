//! The organizer console in headless Chromium, against the real server on
//! the embedded chain and real gate agents: an organizer signs in with a
//! wallet injected into the page (an ed25519 key behind the provider's
//! `signMessage`, signing with the browser's WebCrypto), opens their event,
//! issues enrolment tokens on the gates page and enrols two gate agents with
//! the tokens read from the page, then watches a scan arrive on the live
//! page without reloading it. The admin signs in with the token. Screenshots
//! of every page at phone and laptop width are kept under
//! `$CARGO_TARGET_DIR/test-artifacts/console/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use end_to_end::browser::{Browser, artifacts_dir, injected_wallet};
use end_to_end::*;
use reqwest::Method;
use serde_json::{Value, json};

const LAPTOP: (u32, u32) = (1366, 900);
const PHONE: (u32, u32) = (390, 844);

/// A call with a wallet's session token; its status and JSON answer.
fn as_wallet(
    server: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    server.rt.block_on(async {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// Unix seconds as RFC 3339 UTC text.
fn humantime_rfc3339(t: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t as u64))
        .to_string()
}

fn shoot(browser: &Browser, name: &str) {
    let dir = artifacts_dir("console");
    for (label, (w, h)) in [("laptop", LAPTOP), ("phone", PHONE)] {
        browser.resize(w, h).unwrap();
        browser
            .screenshot(&dir.join(format!("{name}-{label}.png")))
            .unwrap();
    }
    browser.resize(LAPTOP.0, LAPTOP.1).unwrap();
    end_to_end::organizer::assert_fits_a_phone(browser, name).unwrap();
}

#[test]
fn an_organizer_signs_in_with_a_wallet_enrols_gates_from_the_page_and_watches_scans_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("server"), None, |config| {
        config.api.jwt_secret = "console test secret of at least thirty-two bytes".into();
    })
    .unwrap();
    let organizer = SigningKey::from_bytes(&[7; 32]);
    let address = bs58::encode(organizer.verifying_key().to_bytes()).into_string();
    server
        .admin_ok(
            Method::PUT,
            &format!("/api/admin/wallets/{address}/role"),
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

    // Signed out: the console sends the browser to sign in.
    browser.open(&format!("{}/console", server.url)).unwrap();
    assert!(browser.url().unwrap().ends_with("/console/sign-in"));
    shoot(&browser, "1-sign-in");

    // The wallet signs the login message; the console lists the event.
    browser.click("#wallet-sign-in").unwrap();
    browser
        .wait_for(
            "the events page after the wallet signed",
            Duration::from_secs(30),
            "return location.pathname === '/console' && document.querySelector(\"a[href='/console/events/new']\") !== null",
        )
        .unwrap();
    assert!(browser.text("main").unwrap().contains("No events yet"));
    shoot(&browser, "2-events");

    // The organizer creates the event from the console's form, with rules.
    browser.click("a[href='/console/events/new']").unwrap();
    browser
        .wait_for(
            "the new-event form",
            Duration::from_secs(20),
            "return document.getElementById('starts_at') !== null;",
        )
        .unwrap();
    let utc = |t: i64| {
        let text = humantime_rfc3339(t);
        text[..16].to_owned()
    };
    browser.type_into("#name", "Harbour Lights").unwrap();
    browser.type_into("#venue", "Pier 4").unwrap();
    browser
        .script(
            "document.getElementById('starts_at').value = arguments[0]; \
             document.getElementById('ends_at').value = arguments[1]; \
             document.getElementById('capacity').value = '50'; \
             document.getElementById('tier_supply').value = '50'; \
             document.getElementById('reentry').value = 'allowed_after'; \
             document.getElementById('min_outside_minutes').value = '10';",
            json!([utc(now + 600), utc(now + 7200)]),
        )
        .unwrap();
    shoot(&browser, "2-new-event");
    browser.click("form.stack button[type=submit]").unwrap();
    let created = browser
        .wait_for(
            "the new event's live page",
            Duration::from_secs(60),
            "const m = location.pathname.match(/^\\/console\\/events\\/(\\d+)$/); return m && m[1];",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", browser.text("main").unwrap_or_default()));
    let event_id: u64 = created.as_str().unwrap().parse().unwrap();
    let rules = server
        .rt
        .block_on(server.state.store.event(event_id))
        .unwrap()
        .unwrap();
    assert_eq!(rules.name, "Harbour Lights");
    assert_eq!(
        rules.reentry,
        shared::ReentryPolicy::AllowedAfter {
            min_outside_secs: 600
        }
    );
    for (number, name) in [(1, "north"), (2, "south")] {
        server
            .admin_ok(
                Method::PUT,
                &format!("/api/admin/events/{event_id}/gates"),
                Some(json!({ "number": number, "name": name, "direction": "entry" })),
                204,
            )
            .unwrap();
    }
    let holders: Vec<String> = (0..3u8)
        .map(|i| {
            bs58::encode(
                SigningKey::from_bytes(&[40 + i; 32])
                    .verifying_key()
                    .to_bytes(),
            )
            .into_string()
        })
        .collect();
    let (status, minted) = as_wallet(
        &server,
        &token,
        Method::POST,
        "/api/tickets/batch-mint",
        json!({ "event_id": event_id, "recipients": holders.iter().map(|w| json!({ "wallet": w })).collect::<Vec<_>>() }),
    );
    assert_eq!(status, 201, "{minted}");
    let ticket_ids: Vec<u32> = minted
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_id"].as_u64().unwrap() as u32)
        .collect();
    let codes: Vec<String> = minted
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap().to_owned())
        .collect();

    // Two gate boxes enrolled with tokens read off the gates page.
    let mut boxes = Vec::new();
    for (index, name) in ["north", "south"].into_iter().enumerate() {
        browser
            .open(&format!("{}/console/events/{event_id}/gates", server.url))
            .unwrap();
        browser
            .script(
                "document.getElementById('gate').selectedIndex = arguments[0];",
                json!([index]),
            )
            .unwrap();
        browser
            .click("form[action$='enrol-tokens'] button")
            .unwrap();
        let enrol_token = browser
            .wait_for(
                "the issued token",
                Duration::from_secs(20),
                "const t = document.getElementById('enrol-token'); return t && t.textContent;",
            )
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        assert!(enrol_token.starts_with("enr_"), "{enrol_token}");
        assert!(browser.text("#issued-title").unwrap().contains(name));
        if name == "north" {
            assert!(browser.find(".qr svg").is_ok(), "the token as a QR code");
            shoot(&browser, "3-gates-token");
        }
        let gate_dir = dir.path().join(format!("gate-{name}"));
        GateBox::enrol(&gate_dir, &server.url, &enrol_token).unwrap();
        let gate = GateBox::start(&gate_dir, name).unwrap();
        gate.wait_status("the cache", Duration::from_secs(20), |s| {
            s["online"] == true && s["setup_error"].is_null()
        })
        .unwrap();
        boxes.push(gate);
    }

    // The live page: a scan at north shows up without a reload.
    browser
        .open(&format!("{}/console/events/{event_id}", server.url))
        .unwrap();
    browser
        .wait_for(
            "the live stream's first update",
            Duration::from_secs(20),
            "return Number(document.getElementById('live-state').dataset.updates || 0) >= 1",
        )
        .unwrap();
    browser
        .script("window.stillTheSamePage = true;", json!([]))
        .unwrap();
    let admitted = |browser: &Browser| {
        browser
            .text("#totals [data-figure=admitted]")
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(admitted(&browser), 0);
    let verdict = boxes[0].scan(&codes[0]).unwrap();
    assert!(verdict.record.opened, "{verdict:?}");
    boxes[0]
        .wait_status("north's journal sent", Duration::from_secs(20), |s| {
            s["counts"]["unsent"] == 0
        })
        .unwrap();
    browser
        .wait_for(
            "the admission on the live page",
            Duration::from_secs(30),
            "return document.querySelector('#totals [data-figure=admitted]').textContent === '1' \
             && document.querySelector('#gates tr[data-gate=\"1\"] [data-figure=admitted]').textContent === '1'",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", browser.text("main").unwrap_or_default()));
    assert_eq!(
        browser
            .script("return window.stillTheSamePage === true;", json!([]))
            .unwrap(),
        json!(true),
        "updated in place, not reloaded"
    );
    // Once south learned it, the same ticket is refused there, and the
    // refusal shows by its reason.
    boxes[1]
        .wait_ticket(
            event_id,
            ticket_ids[0],
            "north's admission at south",
            Duration::from_secs(20),
            is_inside,
        )
        .unwrap();
    let refused = boxes[1].scan(&codes[0]).unwrap();
    assert!(!refused.record.opened, "{refused:?}");
    boxes[1]
        .wait_status("south's journal sent", Duration::from_secs(20), |s| {
            s["counts"]["unsent"] == 0
        })
        .unwrap();
    browser
        .wait_for(
            "south's refusal on the live page",
            Duration::from_secs(30),
            "return document.getElementById('refusals').textContent.includes('Already inside') \
             && document.querySelector('#totals [data-figure=refused]').textContent === '1'",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", browser.text("main").unwrap_or_default()));
    assert_eq!(browser.text("#totals [data-figure=inside]").unwrap(), "1");
    shoot(&browser, "4-live");

    // Both boxes listed online; revoking south's marks it so, on the page
    // and in the API.
    browser
        .open(&format!("{}/console/events/{event_id}/gates", server.url))
        .unwrap();
    browser
        .wait_for(
            "both boxes online",
            Duration::from_secs(30),
            "return document.querySelectorAll('#devices tbody tr .ok').length === 2",
        )
        .unwrap();
    shoot(&browser, "3-gates-devices");
    let devices = server
        .admin_ok(
            Method::GET,
            &format!("/api/admin/events/{event_id}/devices"),
            None,
            200,
        )
        .unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 2, "{devices}");
    let south_box = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["gate"] == 2)
        .unwrap()["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    browser
        .click(&format!("tr[data-device='{south_box}'] button"))
        .unwrap();
    browser
        .wait_for(
            "south's box revoked on the page",
            Duration::from_secs(20),
            &format!(
                "const row = document.querySelector(\"tr[data-device='{south_box}']\"); \
                 return row && row.textContent.includes('revoked') && !row.querySelector('button');"
            ),
        )
        .unwrap();
    let devices = server
        .admin_ok(
            Method::GET,
            &format!("/api/admin/events/{event_id}/devices"),
            None,
            200,
        )
        .unwrap();
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["device_id"] == south_box.as_str() && d["revoked_at"].is_i64()),
        "{devices}"
    );

    // The attendee list: the admitted holder inside, found by wallet.
    browser
        .open(&format!(
            "{}/console/events/{event_id}/tickets?q={}",
            server.url,
            &holders[0][..6]
        ))
        .unwrap();
    let list = browser.text("main table").unwrap();
    assert!(list.contains(&holders[0]), "{list}");
    assert!(list.contains("inside"), "{list}");
    assert!(!list.contains(&holders[1]), "{list}");
    shoot(&browser, "5-tickets");
    browser
        .open(&format!("{}/console/events/{event_id}/gates", server.url))
        .unwrap();

    // The offline cache file the page offers is the event's cache, signed
    // by the server key the boxes pinned.
    let file = browser
        .script(
            "return fetch(document.querySelector('a[download]').href) \
               .then(r => r.arrayBuffer()) \
               .then(b => btoa(String.fromCharCode(...new Uint8Array(b))));",
            json!([]),
        )
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file.as_str().unwrap())
        .unwrap();
    let key =
        sync_server::load_or_create_server_key(&dir.path().join("server/server-key")).unwrap();
    let snapshot: shared::wire::CacheSnapshot =
        shared::wire::SignedPayload::from_file_bytes(&bytes)
            .unwrap()
            .open(Some(&shared::PublicKeyBytes::from(&key.verifying_key())))
            .unwrap();
    assert_eq!(snapshot.events[0].event_id, event_id);
    assert_eq!(snapshot.tickets.len(), 3);

    // Signed out, a wrong admin token is refused in words; the admin token
    // signs in and shows every event.
    browser.click("header form button").unwrap();
    browser
        .wait_for(
            "the sign-in page after signing out",
            Duration::from_secs(20),
            "return location.pathname === '/console/sign-in' && document.getElementById('admin_token') !== null",
        )
        .unwrap();
    browser.type_into("#admin_token", "not the token").unwrap();
    browser
        .click("form[action='/console/sign-in'] button[type=submit]")
        .unwrap();
    browser
        .wait_for(
            "the refusal",
            Duration::from_secs(20),
            "const p = document.querySelector('.problem'); return p && p.textContent.includes('not the admin token');",
        )
        .unwrap();
    browser.type_into("#admin_token", ADMIN).unwrap();
    browser
        .click("form[action='/console/sign-in'] button[type=submit]")
        .unwrap();
    browser
        .wait_for(
            "the admin's events page",
            Duration::from_secs(20),
            "return location.pathname === '/console' && document.body.textContent.includes('Harbour Lights') \
             && document.querySelector('header').textContent.includes('admin');",
        )
        .unwrap();

    // A one-time sign-in link (what `demo --serve` prints): once, not twice.
    browser.click("header form button").unwrap();
    browser
        .wait_for(
            "signed out",
            Duration::from_secs(20),
            "return location.pathname === '/console/sign-in';",
        )
        .unwrap();
    let link = format!(
        "{}{}",
        server.url,
        sync_server::http::console::sign_in_link(&server.state).unwrap()
    );
    browser.open(&link).unwrap();
    browser
        .wait_for(
            "the events page through the link",
            Duration::from_secs(20),
            "return location.pathname === '/console' && document.querySelector('header').textContent.includes('admin');",
        )
        .unwrap();
    browser.click("header form button").unwrap();
    browser
        .wait_for(
            "signed out",
            Duration::from_secs(20),
            "return location.pathname === '/console/sign-in';",
        )
        .unwrap();
    browser.open(&link).unwrap();
    browser
        .wait_for(
            "the used link refused",
            Duration::from_secs(20),
            "const p = document.querySelector('.problem'); return p && p.textContent.includes('used already');",
        )
        .unwrap();

    for gate in boxes {
        gate.stop();
    }
}
