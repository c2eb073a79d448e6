//! The live code (docs/holder-proof.md) in headless Chromium, against the
//! real server on the embedded chain and a real gate agent, for an event
//! whose gates require the holder's proof: a buyer pays two tickets in SOL;
//! the confirmation shows no fixed code but sends them to My tickets, which
//! asks the wallet (injected into the page) to approve the page's session
//! key once for both tickets of the event (one signature), then draws a
//! code per ticket that changes every few seconds. With the network gone the
//! page reloads from the service worker and the codes still change (key and
//! approval from IndexedDB). A screenshot of it, read with the gate agent's
//! own QR decoder, opens the gate; a screenshot older than the event's
//! window is refused, offline, with the staff's reason on the gate's
//! screen. The buyer sends a ticket to another wallet: their page shows it
//! passed on, the gate refuses the old owner's code, and the new owner
//! approves their own key for that one ticket and gets in. Approvals nothing
//! can use any more (run out, of a ticket revoked and refunded) are gone from IndexedDB
//! after the next load of My tickets; those in use stay. The time from the
//! offline reload to the first live code is printed.
//! Screenshots are kept under `$CARGO_TARGET_DIR/test-artifacts/buyer/`
//! (`rotating-*`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use end_to_end::browser::{Browser, artifacts_dir};
use end_to_end::buyer::{
    entry_gate, free_port, fund, injected_wallets, keep_tickets_offline, main_text, sign_in,
    sign_out, wait_confirmed,
};
use end_to_end::organizer::{LAPTOP, address_of, api_login, as_wallet, shoot, unix_now};
use end_to_end::*;
use reqwest::Method;
use serde_json::json;
use shared::credential::{DelegationScope, HolderProof};
use shared::{Credential, CredentialBody};

const WINDOW_SECS: u32 = 10;
const PRICE_LAMPORTS: u64 = 100_000_000;
/// Characters of a version 2 code (docs/holder-proof.md).
const LIVE_CODE_LEN: usize = 461;

/// Every ticket code in a screenshot, read the way the gate's camera reads.
fn codes_in(shot: &Path) -> Vec<String> {
    let frame = gate_agent::qr::load_frame(shot).unwrap();
    gate_agent::qr::decode_frame(&frame, true)
}

/// The ticket and proof time of a live code.
fn live_parts(code: &str) -> (CredentialBody, u32) {
    let credential = Credential::decode(code).unwrap();
    match credential.holder_proof {
        Some(HolderProof::Session { signed_at, .. }) => (credential.body, signed_at),
        other => panic!("not a live code: {other:?}"),
    }
}

/// The scope of the wallet's approval a live code carries.
fn scope_of(code: &str) -> DelegationScope {
    match Credential::decode(code).unwrap().holder_proof {
        Some(HolderProof::Session { delegation, .. }) => delegation.scope,
        other => panic!("not a live code: {other:?}"),
    }
}

/// The approvals kept in this browser's IndexedDB, once My tickets has
/// forgotten those nothing can use any more.
fn kept_approvals(browser: &Browser) -> Vec<String> {
    browser
        .wait_for(
            "the kept approvals checked",
            Duration::from_secs(20),
            "return document.documentElement.dataset.approvalsChecked === '1'",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(browser)));
    let keys = browser
        .script(
            "return new Promise((resolve, reject) => { \
               const open = indexedDB.open('nft-gate-live-code'); \
               open.onerror = () => reject(open.error); \
               open.onsuccess = () => { \
                 const tx = open.result.transaction('approvals', 'readonly'); \
                 const keys = tx.objectStore('approvals').getAllKeys(); \
                 tx.oncomplete = () => { open.result.close(); resolve(keys.result); }; \
                 tx.onerror = () => reject(tx.error); \
               }; \
             });",
            json!([]),
        )
        .unwrap();
    let mut keys: Vec<String> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// The delegations (texts the holder's wallet was asked to sign to approve
/// this browser's key) signed in this browser so far.
fn delegations_signed(browser: &Browser) -> Vec<String> {
    let signed = browser
        .script(
            "return JSON.parse(localStorage.getItem('test-wallet-signed') || '[]')",
            json!([]),
        )
        .unwrap();
    signed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .filter(|m| m.starts_with("nft-gate: allow this browser key"))
        .collect()
}

/// The live code a ticket's figure shows now.
fn shown_code(browser: &Browser, event_id: u64, ticket: u32) -> String {
    browser
        .script(
            &format!(
                "const f = document.querySelector('#ticket-{event_id}-{ticket} figure.qr'); \
                 return f && f.querySelector('svg') ? (f.dataset.drawn || '') : '';"
            ),
            json!([]),
        )
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the ticket's figure shows a live code other than `than`.
fn next_code(browser: &Browser, event_id: u64, ticket: u32, than: &str, what: &str) -> String {
    browser
        .wait_for(
            what,
            Duration::from_secs(20),
            &format!(
                "const f = document.querySelector('#ticket-{event_id}-{ticket} figure.qr'); \
                 const c = f && f.querySelector('svg') && f.dataset.drawn; \
                 return c && c.length === {LIVE_CODE_LEN} && c !== '{than}' && c;"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(browser)))
        .as_str()
        .unwrap()
        .to_owned()
}

/// Approves the page's key for each ticket with the wallet and waits for
/// their live codes.
fn approve(browser: &Browser, event_id: u64, tickets: &[u32]) {
    for ticket in tickets {
        let button = format!("#ticket-{event_id}-{ticket} [data-live-approve]");
        browser
            .wait_for(
                "the approval offered",
                Duration::from_secs(20),
                &format!("const b = document.querySelector('{button}'); return b && !b.hidden;"),
            )
            .unwrap_or_else(|e| panic!("{e}: {}", main_text(browser)));
        browser.click(&button).unwrap();
        next_code(
            browser,
            event_id,
            *ticket,
            "",
            "the live code after the approval",
        );
    }
}

#[test]
fn a_live_code_rotates_offline_opens_the_gate_fresh_and_not_as_an_old_screenshot_nor_after_a_transfer()
 {
    let dir = tempfile::tempdir().unwrap();
    let support = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // The browser reaches the server through a switch the test can unplug.
    let port = free_port().unwrap();
    let switch = NetSwitch::start(&support, ([127, 0, 0, 1], port).into()).unwrap();
    let site = switch.url.clone();
    let server = Server::start_with(&dir.path().join("server"), None, |config| {
        config.listen = ([127, 0, 0, 1], port).into();
        config.api.jwt_secret = "live code test secret of at least thirty-two bytes".into();
        config.api.public_url = site.clone();
    })
    .unwrap();

    // An event whose gates want the live code, on sale in SOL, one gate.
    let organizer = SigningKey::from_bytes(&[41; 32]);
    server
        .admin_ok(
            Method::PUT,
            &format!("/api/admin/wallets/{}/role", address_of(&organizer)),
            Some(json!({ "role": "organizer" })),
            200,
        )
        .unwrap();
    let token = api_login(&server, &organizer).unwrap();
    let now = unix_now();
    let (status, created) = as_wallet(
        &server,
        &token,
        Method::POST,
        "/api/events",
        Some(json!({
            "name": "Lantern Night", "venue": "Old Harbour Quay",
            "description": "Lanterns on the water; bring the live code.",
            "starts_at": now + 1800, "ends_at": now + 4 * 3600, "capacity": 20,
            "tiers": [{ "name": "Quay", "price_lamports": PRICE_LAMPORTS, "supply": 20 }],
        })),
    )
    .unwrap();
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    let (status, rules) = as_wallet(
        &server,
        &token,
        Method::PUT,
        &format!("/api/events/{event_id}/rules"),
        Some(json!({ "holder_proof": { "required": { "window_secs": WINDOW_SECS } } })),
    )
    .unwrap();
    assert_eq!(status, 200, "{rules}");
    let gate = entry_gate(&server, dir.path(), event_id, "quay").unwrap();

    let fan = SigningKey::from_bytes(&[42; 32]);
    let friend = SigningKey::from_bytes(&[43; 32]);
    fund(&server, &fan).unwrap();
    let browser = Browser::start(LAPTOP.0, LAPTOP.1).unwrap();
    browser
        .devtools(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": injected_wallets(&[("fan", &fan), ("friend", &friend)]) }),
        )
        .unwrap();

    // Two tickets, paid in SOL.
    browser.open(&format!("{site}/events/{event_id}")).unwrap();
    sign_in(&browser, &format!("/events/{event_id}")).unwrap();
    browser.click("input[name=method][value=sol]").unwrap();
    browser
        .script("document.getElementById('count').value = '2';", json!([]))
        .unwrap();
    browser.click("#hold-seats").unwrap();
    browser
        .wait_for(
            "the SOL payment button",
            Duration::from_secs(30),
            "return !document.getElementById('sol-payment').hidden",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    browser.click("#pay-sol").unwrap();
    wait_confirmed(&browser, "the SOL purchase confirmed").unwrap();

    // The confirmation shows no fixed code (the gate would refuse it) but
    // says, per ticket, to show the live code from My tickets.
    let confirmation = browser
        .script(
            "const items = [...document.querySelectorAll('li.purchase')]; \
             return { items: items.length, codes: document.querySelectorAll('figure.qr, [data-code]').length, \
               linked: items.filter(i => i.querySelector('[data-live-code-elsewhere] a[href=\"/tickets\"]')).length };",
            json!([]),
        )
        .unwrap();
    assert_eq!(
        confirmation,
        json!({ "items": 2, "codes": 0, "linked": 2 }),
        "{}",
        main_text(&browser)
    );
    let page = main_text(&browser);
    assert!(
        page.contains("At the gate, open My tickets on your phone and show the live code there."),
        "{page}"
    );
    assert!(
        page.contains("no fixed code to save, print or screenshot"),
        "{page}"
    );
    shoot(&browser, "buyer", "rotating-0-confirmation").unwrap();

    // My tickets: no code until the wallet approves this browser's key,
    // which it does once for both tickets of the event; then a live code
    // per ticket.
    browser.open(&format!("{site}/tickets")).unwrap();
    let tickets: Vec<u32> = browser
        .wait_for(
            "two tickets waiting for the approval",
            Duration::from_secs(20),
            "const t = document.querySelectorAll('article.ticket[data-standing=valid] figure.qr.live'); \
             const offered = document.querySelectorAll('[data-live-approve]:not([hidden])'); \
             return t.length === 2 && offered.length === 2 && document.querySelectorAll('figure.qr svg').length === 0 && \
               [...document.querySelectorAll('article.ticket')].map(a => Number(a.dataset.ticket));",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)))
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let (admitted, passed) = (tickets[0], tickets[1]);
    let offer = browser
        .text(&format!(
            "#ticket-{event_id}-{admitted} [data-live-approve]"
        ))
        .unwrap();
    assert_eq!(
        offer,
        "Approve this phone for all your tickets to this event"
    );
    shoot(&browser, "buyer", "rotating-1-approve").unwrap();
    approve(&browser, event_id, &[admitted]);
    next_code(
        &browser,
        event_id,
        passed,
        "",
        "the other ticket's live code under the same approval",
    );
    assert_eq!(
        browser
            .script(
                "return document.querySelectorAll('[data-live-approve]:not([hidden])').length",
                json!([])
            )
            .unwrap(),
        json!(0)
    );
    let signed = delegations_signed(&browser);
    assert_eq!(
        signed.len(),
        1,
        "one signature for both tickets: {signed:?}"
    );
    assert!(
        signed[0].starts_with("nft-gate: allow this browser key to show my tickets at the gate\n")
            && signed[0].contains("\nticket: every ticket I hold for this event\n"),
        "{}",
        signed[0]
    );
    let fans_approval = format!("event/{event_id}/{}", address_of(&fan));
    assert_eq!(kept_approvals(&browser), vec![fans_approval.clone()]);
    let first = shown_code(&browser, event_id, admitted);
    for ticket in &tickets {
        assert_eq!(
            scope_of(&shown_code(&browser, event_id, *ticket)),
            DelegationScope::Event
        );
    }
    let second = next_code(&browser, event_id, admitted, &first, "the code to change");
    let ((body, t1), (_, t2)) = (live_parts(&first), live_parts(&second));
    assert_eq!((body.event_id, body.ticket_id), (event_id, admitted));
    assert!(t2 > t1, "{t1} then {t2}");
    let note = browser
        .text(&format!("#ticket-{event_id}-{admitted} [data-live-note]"))
        .unwrap();
    assert!(note.starts_with("Changes every 3 s"), "{note}");
    shoot(&browser, "buyer", "rotating-2-live").unwrap();
    gate.wait_tickets_known(event_id, &tickets).unwrap();

    // Kept for offline use once the service worker holds the page.
    keep_tickets_offline(&browser, &site).unwrap();

    // No network, and a reload: the live codes come back and keep changing.
    switch.cut();
    browser.set_offline(true).unwrap();
    browser.open(&format!("{site}/tickets")).unwrap();
    let first_code_ms = browser
        .wait_for(
            "the live codes offline",
            Duration::from_secs(20),
            &format!(
                "const s = document.getElementById('synced'); \
                 const live = [...document.querySelectorAll('figure.qr.live')].filter(f => f.querySelector('svg') && (f.dataset.drawn || '').length === {LIVE_CODE_LEN}); \
                 const mark = performance.getEntriesByName('first-live-code')[0]; \
                 return s && s.classList.contains('offline') && live.length === 2 && mark && String(mark.startTime);"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    println!(
        "offline reload to first live code: {:.0} ms",
        first_code_ms.as_str().unwrap().parse::<f64>().unwrap()
    );
    let offline = shown_code(&browser, event_id, admitted);
    next_code(
        &browser,
        event_id,
        admitted,
        &offline,
        "the code to change offline",
    );
    shoot(&browser, "buyer", "rotating-3-offline").unwrap();

    // A screenshot, read by the gate's decoder: the fresh code gets in.
    let shot = artifacts_dir("buyer").join("rotating-4-offline-decoded.png");
    browser
        .script(
            &format!("document.querySelector('#ticket-{event_id}-{admitted} figure.qr').scrollIntoView({{block: 'center'}});"),
            json!([]),
        )
        .unwrap();
    browser.screenshot(&shot).unwrap();
    let read = codes_in(&shot);
    let code_of = |ticket: u32| {
        read.iter()
            .find(|c| live_parts(c).0.ticket_id == ticket)
            .unwrap_or_else(|| panic!("no code of ticket {ticket} in {read:?}"))
            .clone()
    };
    let (fresh, old_screenshot) = (code_of(admitted), code_of(passed));
    assert_eq!(fresh.len(), LIVE_CODE_LEN);
    let verdict = gate.scan(&fresh).unwrap();
    assert_eq!(verdict.record.outcome, "admitted", "{verdict:?}");
    assert!(verdict.record.opened, "{verdict:?}");

    // The other ticket's code from that screenshot, once older than the
    // window: refused, offline, with the reason staff read.
    let (_, taken_at) = live_parts(&old_screenshot);
    wait(
        "the screenshot to age past the window",
        Duration::from_secs(30),
        || Ok(unix_now() > i64::from(taken_at) + i64::from(WINDOW_SECS) + 1),
    )
    .unwrap();
    let verdict = gate.scan(&old_screenshot).unwrap();
    assert_eq!(verdict.record.outcome, "holder_proof_stale", "{verdict:?}");
    assert!(!verdict.record.opened);
    assert!(
        verdict
            .detail
            .starts_with(&format!("Code is a screenshot: older than {WINDOW_SECS} s")),
        "{}",
        verdict.detail
    );
    let screen = gate.status().unwrap();
    assert_eq!(screen["last"]["text"], verdict.detail.as_str(), "{screen}");
    browser.set_offline(false).unwrap();
    browser
        .open(&format!("http://{}/", gate.status_addr))
        .unwrap();
    browser
        .wait_for(
            "the gate's screen",
            Duration::from_secs(10),
            "return document.getElementById('big').textContent === 'STOP' && document.getElementById('reason').textContent.includes('screenshot')",
        )
        .unwrap();
    shoot(&browser, "buyer", "rotating-5-gate-refuses-screenshot").unwrap();

    // Back online, the buyer sends the other ticket to a wallet.
    switch.restore();
    gate.wait_status("the gate's journal sent", Duration::from_secs(30), |s| {
        s["counts"]["unsent"] == 0
    })
    .unwrap();
    browser.open(&format!("{site}/tickets")).unwrap();
    let before = shown_code(&browser, event_id, passed);
    let old_owners_code = next_code(&browser, event_id, passed, &before, "a live code online");
    let old_generation = live_parts(&old_owners_code).0.generation;
    let card = format!("#ticket-{event_id}-{passed}");
    browser
        .click(&format!("{card} details.transfer summary"))
        .unwrap();
    browser
        .type_into(
            &format!("#to-wallet-{event_id}-{passed}"),
            &address_of(&friend),
        )
        .unwrap();
    browser
        .click(&format!("{card} form[data-kind=wallet] button"))
        .unwrap();
    browser
        .wait_for(
            "the ticket shown passed on",
            Duration::from_secs(60),
            &format!(
                "const t = document.querySelector('.passed {card}'); \
                 return t && t.dataset.standing === 'transferred' && t.querySelector('figure.qr') === null;"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    assert!(
        main_text(&browser).contains("This ticket is in another wallet now"),
        "{}",
        main_text(&browser)
    );
    shoot(&browser, "buyer", "rotating-6-transferred").unwrap();

    // The wallet still holds a ticket of the event: on the next load its
    // approval is kept and the code shows with no new signature.
    browser.open(&format!("{site}/tickets")).unwrap();
    assert_eq!(kept_approvals(&browser), vec![fans_approval.clone()]);
    next_code(
        &browser,
        event_id,
        admitted,
        "",
        "the kept ticket's live code after a reload",
    );
    assert_eq!(delegations_signed(&browser).len(), 1);

    // The gate hears of the transfer: the old owner's code is refused.
    gate.wait_ticket(
        event_id,
        passed,
        "the gate knows the new owner",
        Duration::from_secs(30),
        |t| t.generation > old_generation,
    )
    .unwrap();
    let verdict = gate.scan(&old_owners_code).unwrap();
    assert_eq!(verdict.record.outcome, "stale_generation", "{verdict:?}");
    assert!(!verdict.record.opened);
    assert!(
        verdict
            .detail
            .starts_with("Old code: ticket was transferred"),
        "{}",
        verdict.detail
    );

    // The new owner approves their own key and gets in with it.
    sign_out(&browser).unwrap();
    browser
        .script("localStorage.setItem('test-wallet', 'friend');", json!([]))
        .unwrap();
    browser.open(&format!("{site}/tickets")).unwrap();
    sign_in(&browser, "/tickets").unwrap();
    approve(&browser, event_id, &[passed]);
    let theirs = shown_code(&browser, event_id, passed);
    assert_eq!(scope_of(&theirs), DelegationScope::Ticket);
    let signed = delegations_signed(&browser);
    assert_eq!(signed.len(), 2, "{signed:?}");
    assert!(
        signed[1].contains(&format!("\nticket: {passed} (generation ")),
        "one ticket, one ticket's approval: {}",
        signed[1]
    );
    let (body, _) = live_parts(&theirs);
    assert_eq!(
        (body.owner.0, body.generation > old_generation),
        (friend.verifying_key().to_bytes(), true)
    );
    let verdict = gate.scan(&theirs).unwrap();
    assert_eq!(verdict.record.outcome, "admitted", "{verdict:?}");
    shoot(&browser, "buyer", "rotating-7-new-owner").unwrap();

    // Approvals in use stay: the friend's for their ticket and the first
    // owner's for the event (another wallet's, still valid).
    let friends_approval = format!("{event_id}/{passed}");
    browser.open(&format!("{site}/tickets")).unwrap();
    let mut in_use = vec![fans_approval.clone(), friends_approval.clone()];
    in_use.sort();
    assert_eq!(kept_approvals(&browser), in_use);
    next_code(
        &browser,
        event_id,
        passed,
        "",
        "the friend's live code after a reload",
    );

    // An approval that ran out (one of the first owner's, for another
    // event) and one of a ticket the organizer then revokes (refunding its
    // price in SOL, so the page says refunded): both gone on the next load
    // of My tickets; the first owner's approval stays.
    let ran_out = format!("event/{}/{}", event_id + 1, address_of(&fan));
    browser
        .script(
            "const [from, eventId, to] = arguments; \
             return new Promise((resolve, reject) => { \
               const open = indexedDB.open('nft-gate-live-code'); \
               open.onerror = () => reject(open.error); \
               open.onsuccess = () => { \
                 const tx = open.result.transaction('approvals', 'readwrite'); \
                 const store = tx.objectStore('approvals'); \
                 const read = store.get(from); \
                 read.onsuccess = () => store.put({ ...read.result, eventId, validUntil: Math.floor(Date.now() / 1000) - 60 }, to); \
                 tx.oncomplete = () => { open.result.close(); resolve(true); }; \
                 tx.onerror = () => reject(tx.error); \
               }; \
             });",
            json!([fans_approval, (event_id + 1).to_string(), ran_out]),
        )
        .unwrap();
    server
        .admin_ok(
            Method::POST,
            &format!("/api/admin/events/{event_id}/tickets/{passed}/revoke"),
            None,
            200,
        )
        .unwrap();
    browser.open(&format!("{site}/tickets")).unwrap();
    assert_eq!(kept_approvals(&browser), vec![fans_approval]);
    let card = browser
        .script(
            &format!(
                "const t = document.querySelector('#ticket-{event_id}-{passed}'); \
                 return [t.dataset.standing, t.querySelector('figure.qr') === null];"
            ),
            json!([]),
        )
        .unwrap();
    assert_eq!(card, json!(["refunded", true]), "{}", main_text(&browser));
    shoot(&browser, "buyer", "rotating-8-refunded").unwrap();
}
