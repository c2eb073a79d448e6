//! The buyer pages in headless Chromium, against the real server on the
//! embedded chain, a real gate agent, the Stripe stand-in (its API and its
//! Stripe.js) and a real SMTP server: a buyer signs in with a wallet
//! injected into the page (ed25519 keys behind the provider's
//! `signMessage` and `signTransaction` request, signing with WebCrypto),
//! buys a ticket by card and one in SOL, sees both in My tickets with their
//! QR codes, loses the network and still sees them (from the service
//! worker's copy, saying when they last synced); a screenshot of that page
//! is decoded with the gate agent's own QR decoder and presented to a gate
//! agent, which admits it. The buyer then sends the other ticket by email;
//! a second wallet opens the link from the captured mail and claims it; the
//! used link says so; the first wallet's page shows the ticket transferred.
//! Screenshots at phone and laptop width are kept under
//! `$CARGO_TARGET_DIR/test-artifacts/buyer/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../sync-server/tests/support/smtp_sink.rs"]
mod smtp_sink;
#[path = "../../sync-server/tests/support/stripe_standin.rs"]
mod stripe_standin;

use std::time::Duration;

use ed25519_dalek::SigningKey;
use end_to_end::browser::{Browser, artifacts_dir};
use end_to_end::buyer::{
    entry_gate, free_port, fund, injected_wallets, keep_tickets_offline, main_text, sign_in,
    sign_out, wait_confirmed,
};
use end_to_end::organizer::{address_of as address, api_login};
use end_to_end::*;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{SinkRules, SmtpSink};
use stripe_standin::StripeStandin;

const LAPTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);
const PRICE_LAMPORTS: u64 = 100_000_000;

fn shoot(browser: &Browser, name: &str) {
    let dir = artifacts_dir("buyer");
    for (label, (w, h)) in [("laptop", LAPTOP), ("phone", PHONE)] {
        browser.resize(w, h).unwrap();
        browser
            .screenshot(&dir.join(format!("{name}-{label}.png")))
            .unwrap();
    }
    browser.resize(LAPTOP.0, LAPTOP.1).unwrap();
}

/// The text of a mail's plain body.
fn mail_text(delivery: &smtp_sink::Delivery) -> (String, String) {
    let message = mail_parser::MessageParser::default()
        .parse(&delivery.data)
        .unwrap();
    (
        message.subject().unwrap_or_default().to_owned(),
        message.body_text(0).unwrap().into_owned(),
    )
}

#[test]
fn a_buyer_pays_by_card_and_in_sol_shows_the_code_offline_gets_in_and_passes_a_ticket_on_by_email()
{
    let dir = tempfile::tempdir().unwrap();
    let support = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (mut sink, stripe) = support.block_on(async {
        (
            SmtpSink::start(SinkRules::default()).await,
            StripeStandin::start("sk_test_buyer", "whsec_buyer", "http://127.0.0.1:9/").await,
        )
    });
    // The browser reaches the server through a switch the test can unplug;
    // the server's public address (and so the claim link) is the switch's.
    let port = free_port().unwrap();
    let switch = NetSwitch::start(&support, ([127, 0, 0, 1], port).into()).unwrap();
    let site = switch.url.clone();
    let server = Server::start_with(&dir.path().join("server"), None, |config| {
        config.listen = ([127, 0, 0, 1], port).into();
        config.api.jwt_secret = "buyer pages test secret of at least thirty-two bytes".into();
        config.api.public_url = site.clone();
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = sink.addr.port();
        config.smtp.tls = sync_server::config::SmtpTls::None;
        config.smtp.from = "Tickets <tickets@harbour.example>".into();
        config.stripe.secret_key = "sk_test_buyer".into();
        config.stripe.webhook_secret = "whsec_buyer".into();
        config.stripe.api_base = stripe.url.clone();
        config.stripe.publishable_key = "pk_test_buyer".into();
        config.stripe.js_url = format!("{}/v3/", stripe.url);
    })
    .unwrap();
    stripe.set_webhook_url(&format!("{}/api/payments/webhook", server.url));

    // An organizer's event, on sale by card and in SOL, with one gate.
    let organizer = SigningKey::from_bytes(&[21; 32]);
    server
        .admin_ok(
            Method::PUT,
            &format!("/api/admin/wallets/{}/role", address(&organizer)),
            Some(json!({ "role": "organizer" })),
            200,
        )
        .unwrap();
    let token = api_login(&server, &organizer).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let created: Value = server.rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/events", server.url))
            .bearer_auth(&token)
            .json(&json!({
                "name": "Harbour Lights", "venue": "Pier 4, Harbour Road",
                "description": "An evening of lanterns and brass on the water.",
                "starts_at": now + 1800, "ends_at": now + 4 * 3600,
                "capacity": 50,
                "tiers": [{ "name": "Standing", "price_lamports": PRICE_LAMPORTS,
                            "supply": 50, "card_price": 2500 }],
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let event_id = created["event_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{created}"));
    let gate = entry_gate(&server, dir.path(), event_id, "main").unwrap();

    // The buyer's wallet has SOL for the SOL ticket and the transfer's fee.
    let fan = SigningKey::from_bytes(&[31; 32]);
    let friend = SigningKey::from_bytes(&[32; 32]);
    fund(&server, &fan).unwrap();

    let browser = Browser::start(LAPTOP.0, LAPTOP.1).unwrap();
    browser
        .devtools(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": injected_wallets(&[("fan", &fan), ("friend", &friend)]) }),
        )
        .unwrap();

    // The event page: what, where, when; signed out, it asks for the wallet.
    browser.open(&format!("{site}/")).unwrap();
    assert!(main_text(&browser).contains("Harbour Lights"));
    browser
        .click(&format!("a[href='/events/{event_id}']"))
        .unwrap();
    browser
        .wait_for(
            "the event page",
            Duration::from_secs(20),
            "return document.getElementById('wallet-sign-in') !== null",
        )
        .unwrap();
    let page = main_text(&browser);
    assert!(page.contains("Pier 4, Harbour Road"), "{page}");
    assert!(page.contains("25.00 USD by card"), "{page}");
    assert!(page.contains("0.1 SOL from your wallet"), "{page}");
    shoot(&browser, "1-event");
    sign_in(&browser, &format!("/events/{event_id}")).unwrap();

    // By card: the seat is held with its expiry shown, the stand-in's
    // Stripe.js takes the card, the webhook mints, the page confirms.
    browser.type_into("#email", "fan@harbour.example").unwrap();
    browser.click("#hold-seats").unwrap();
    browser
        .wait_for(
            "the hold and the card form",
            Duration::from_secs(30),
            "return !document.getElementById('holds').hidden && document.getElementById('standin-card') !== null",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    let holding = browser.text("#holds").unwrap();
    assert!(holding.contains("held for"), "{holding}");
    assert!(holding.contains("25.00 USD"), "{holding}");
    shoot(&browser, "2-card-hold");
    browser
        .type_into("#standin-card", "4242 4242 4242 4242")
        .unwrap();
    browser.click("#pay-card").unwrap();
    wait_confirmed(&browser, "the card purchase confirmed").unwrap();
    let confirmed = main_text(&browser);
    assert!(
        confirmed.contains("Paid. Your ticket is ready."),
        "{confirmed}"
    );
    // This event's gates take the static code: the confirmation shows it.
    let shown = browser
        .script(
            "return [document.querySelectorAll('li.purchase figure.qr[data-code] svg').length, \
                     document.querySelectorAll('[data-live-code-elsewhere]').length];",
            json!([]),
        )
        .unwrap();
    assert_eq!(shown, json!([1, 0]), "{confirmed}");
    shoot(&browser, "3-confirmation");
    let mail = support.block_on(sink.next());
    assert_eq!(mail.rcpt_to, vec!["fan@harbour.example".to_owned()]);
    let (subject, _) = mail_text(&mail);
    assert!(subject.contains("Harbour Lights"), "{subject}");

    // In SOL: the wallet signs the purchase transaction the server made.
    browser.open(&format!("{site}/events/{event_id}")).unwrap();
    browser.click("input[name=method][value=sol]").unwrap();
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
    let confirmed = main_text(&browser);
    assert!(confirmed.contains("0.1 SOL"), "{confirmed}");

    // My tickets: both, each with its QR code.
    browser.open(&format!("{site}/tickets")).unwrap();
    let ticket_ids: Vec<u32> = browser
        .wait_for(
            "two tickets drawn",
            Duration::from_secs(20),
            "const t = document.querySelectorAll('article.ticket[data-standing=valid] figure.qr svg'); \
             return t.length === 2 && [...document.querySelectorAll('article.ticket')].map(a => Number(a.dataset.ticket));",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)))
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let codes: Vec<String> = browser
        .script(
            "return [...document.querySelectorAll('figure.qr')].map(f => f.dataset.code)",
            json!([]),
        )
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    shoot(&browser, "4-my-tickets");
    gate.wait_tickets_known(event_id, &ticket_ids).unwrap();

    // Kept for offline use once the service worker holds the page.
    keep_tickets_offline(&browser, &site).unwrap();

    // No network: the tickets still show, saying when they last synced.
    switch.cut();
    browser.set_offline(true).unwrap();
    browser.open(&format!("{site}/tickets")).unwrap();
    let offline_line = browser
        .wait_for(
            "the offline copy",
            Duration::from_secs(20),
            "const s = document.getElementById('synced'); \
             return s && s.classList.contains('offline') && document.querySelectorAll('figure.qr svg').length === 2 && s.textContent;",
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    let offline_line = offline_line.as_str().unwrap();
    assert!(
        offline_line.starts_with("Offline: showing your tickets as last synced on"),
        "{offline_line}"
    );
    shoot(&browser, "5-offline");

    // The screenshot, read by the gate agent's decoder, opens the gate.
    let shot = artifacts_dir("buyer").join("5-offline-decoded.png");
    browser
        .script(
            "document.querySelector('figure.qr').scrollIntoView({block: 'center'});",
            json!([]),
        )
        .unwrap();
    browser.screenshot(&shot).unwrap();
    let read = read_qr_png(&shot).unwrap();
    assert!(codes.contains(&read), "{read} is none of {codes:?}");
    let verdict = gate.scan(&read).unwrap();
    assert!(verdict.record.opened, "{verdict:?}");
    assert_eq!(verdict.record.outcome, "admitted", "{verdict:?}");

    // Back online; the gate's report reaches the server: entered.
    browser.set_offline(false).unwrap();
    switch.restore();
    gate.wait_status("the gate's journal sent", Duration::from_secs(30), |s| {
        s["counts"]["unsent"] == 0
    })
    .unwrap();
    let entered = codes.iter().position(|c| *c == read).unwrap();
    let other = ticket_ids[1 - entered];
    browser.open(&format!("{site}/tickets")).unwrap();
    browser
        .wait_for(
            "the entered ticket",
            Duration::from_secs(20),
            &format!(
                "return document.querySelector('#ticket-{event_id}-{} [data-badge]').textContent.startsWith('Entered')",
                ticket_ids[entered]
            ),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));

    // The other ticket goes by email; the mail links to the claim page.
    let card = format!("#ticket-{event_id}-{other}");
    browser
        .click(&format!("{card} details.transfer summary"))
        .unwrap();
    browser
        .type_into(
            &format!("#to-email-{event_id}-{other}"),
            "friend@harbour.example",
        )
        .unwrap();
    shoot(&browser, "6-transfer");
    browser
        .click(&format!("{card} form[data-kind=email] button"))
        .unwrap();
    browser
        .wait_for(
            "the transfer sent",
            Duration::from_secs(60),
            &format!("return document.querySelector('{card} .transfer-status').textContent.startsWith('Sent.')"),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    let mail = support.block_on(sink.next());
    assert_eq!(mail.rcpt_to, vec!["friend@harbour.example".to_owned()]);
    let (_, text) = mail_text(&mail);
    let link = text
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with(&format!("{site}/claim?code=")))
        .unwrap_or_else(|| panic!("no claim link to this site in: {text}"))
        .to_owned();

    // The friend opens the link, signs in with their wallet and claims.
    sign_out(&browser).unwrap();
    browser
        .script("localStorage.setItem('test-wallet', 'friend');", json!([]))
        .unwrap();
    browser.open(&link).unwrap();
    let claim = main_text(&browser);
    assert!(claim.contains("A ticket for you"), "{claim}");
    assert!(claim.contains("Harbour Lights"), "{claim}");
    shoot(&browser, "7-claim");
    sign_in(&browser, "/claim").unwrap();
    browser.click("#claim-ticket").unwrap();
    browser
        .wait_for(
            "the claimed ticket in the friend's tickets",
            Duration::from_secs(60),
            &format!(
                "return location.pathname === '/tickets' && document.querySelector('#ticket-{event_id}-{other}[data-standing=valid] figure.qr svg') !== null"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    shoot(&browser, "8-claimed");

    // The link works once, and says so.
    browser.open(&link).unwrap();
    let used = main_text(&browser);
    assert!(used.contains("This ticket was already claimed"), "{used}");
    shoot(&browser, "9-used-link");

    // The first wallet's page shows the ticket passed on.
    sign_out(&browser).unwrap();
    browser
        .script("localStorage.setItem('test-wallet', 'fan');", json!([]))
        .unwrap();
    browser.open(&format!("{site}/tickets")).unwrap();
    sign_in(&browser, "/tickets").unwrap();
    browser
        .wait_for(
            "the ticket shown as transferred",
            Duration::from_secs(20),
            &format!(
                "const t = document.querySelector('.passed #ticket-{event_id}-{other}'); \
                 return t && t.dataset.standing === 'transferred' && t.querySelector('figure.qr') === null;"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", main_text(&browser)));
    let page = main_text(&browser);
    assert!(
        page.contains("friend@harbour.example claimed this ticket"),
        "{page}"
    );
    browser
        .script(
            "document.getElementById('passed-h').scrollIntoView();",
            json!([]),
        )
        .unwrap();
    shoot(&browser, "10-transferred");
}
