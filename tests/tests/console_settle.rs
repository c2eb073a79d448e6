//! The organizer console's operations in headless Chromium, against the real
//! server on the embedded chain, a real gate agent and the card provider's
//! stand-in: an organizer signed in with a wallet freezes a ticket from the
//! tickets page and the gate refuses it, then unfreezes it and the gate
//! admits it; reads the sales; cancels the event by typing its name (a
//! wrong name changes nothing) and watches the progress reach done with the
//! card buyer refunded. On another event, after the end (the chain's clock
//! moved past it, not waited for), they withdraw the SOL proceeds, close
//! the ticket and event accounts and read the lamports reclaimed, still
//! there after a reload, and download the attendance CSV. Screenshots at
//! phone and laptop width under `$CARGO_TARGET_DIR/test-artifacts/console-settle/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../sync-server/tests/support/stripe_standin.rs"]
mod stripe_standin;

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use end_to_end::browser::Browser;
use end_to_end::organizer::{
    address_of, as_wallet, assert_fits_a_phone, organizer_signed_in, shoot, unix_now,
};
use end_to_end::*;
use reqwest::Method;
use serde_json::{Value, json};
use solana_sdk::signature::{Keypair, Signer as _};
use stripe_standin::StripeStandin;

const SHOTS: &str = "console-settle";
const PRICE: u64 = 100_000_000;
const SECRET_KEY: &str = "sk_test_console";
const WEBHOOK_SECRET: &str = "whsec_console";
const JWT_SECRET: &str = "console test secret of at least thirty-two bytes";

/// An event of the organizer's from ten minutes from now for two hours,
/// sold at `PRICE` lamports or 25.00 by card, with `holders` minted a ticket
/// each and a gate "north". Returns its id and the tickets' codes.
fn event_with_tickets(server: &Server, token: &str, holders: &[String]) -> (u64, Vec<String>) {
    let now = unix_now();
    let (status, created) = as_wallet(
        server,
        token,
        Method::POST,
        "/api/events",
        Some(json!({
            "name": "Harbour Lights", "venue": "Pier 4",
            "starts_at": now + 600, "ends_at": now + 7200, "capacity": 50,
            "tiers": [{ "name": "general", "price_lamports": PRICE, "supply": 50, "card_price": 2500 }],
        })),
    )
    .unwrap();
    assert_eq!(status, 201, "{created}");
    let event_id = created["event_id"].as_u64().unwrap();
    let recipients: Vec<Value> = holders.iter().map(|w| json!({ "wallet": w })).collect();
    let (status, minted) = as_wallet(
        server,
        token,
        Method::POST,
        "/api/tickets/batch-mint",
        Some(json!({ "event_id": event_id, "recipients": recipients })),
    )
    .unwrap();
    assert_eq!(status, 201, "{minted}");
    let codes = minted
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap().to_owned())
        .collect();
    server
        .admin_ok(
            Method::PUT,
            &format!("/api/admin/events/{event_id}/gates"),
            Some(json!({ "number": 1, "name": "north", "direction": "entry" })),
            204,
        )
        .unwrap();
    (event_id, codes)
}

/// A gate box for "north", enrolled and online.
fn north_gate(server: &Server, dir: &std::path::Path, event_id: u64) -> GateBox {
    let token = server.enrol_token(event_id, "north").unwrap();
    let gate_dir = dir.join("gate-north");
    GateBox::enrol(&gate_dir, &server.url, &token).unwrap();
    let gate = GateBox::start(&gate_dir, "north").unwrap();
    gate.wait_status("north online", Duration::from_secs(30), |s| {
        s["online"] == true && s["setup_error"].is_null()
    })
    .unwrap();
    gate
}

fn holders(seeds: std::ops::Range<u8>) -> Vec<String> {
    seeds
        .map(|i| address_of(&SigningKey::from_bytes(&[i; 32])))
        .collect()
}

fn wait_page(browser: &Browser, what: &str, script: &str) {
    browser
        .wait_for(what, Duration::from_secs(60), script)
        .unwrap_or_else(|e| panic!("{e}: {}", browser.text("main").unwrap_or_default()));
}

fn figure(browser: &Browser, css: &str) -> String {
    browser.text(css).unwrap().trim().to_owned()
}

#[test]
fn an_organizer_freezes_a_ticket_the_gate_refuses_it_then_cancels_the_event_and_watches_the_refunds()
 {
    let dir = tempfile::tempdir().unwrap();
    let stripe_rt = tokio::runtime::Runtime::new().unwrap();
    let stripe = stripe_rt.block_on(StripeStandin::start(
        SECRET_KEY,
        WEBHOOK_SECRET,
        "http://127.0.0.1:9/none",
    ));
    let stripe_url = stripe.url.clone();
    let server = Server::start_with(&dir.path().join("server"), None, |config| {
        config.api.jwt_secret = JWT_SECRET.into();
        config.stripe.secret_key = SECRET_KEY.into();
        config.stripe.webhook_secret = WEBHOOK_SECRET.into();
        config.stripe.api_base = stripe_url;
    })
    .unwrap();
    stripe.set_webhook_url(&format!("{}/api/payments/webhook", server.url));
    let organizer = SigningKey::from_bytes(&[7; 32]);
    let (browser, token) = organizer_signed_in(&server, &organizer).unwrap();
    let (event_id, codes) = event_with_tickets(&server, &token, &holders(40..43));
    let gate = north_gate(&server, dir.path(), event_id);
    let base = format!("{}/console/events/{event_id}", server.url);

    // A card sale: paid at the provider, the ticket minted.
    let fan_key = SigningKey::from_bytes(&[80; 32]);
    let fan = end_to_end::organizer::api_login(&server, &fan_key).unwrap();
    let (status, bought) = as_wallet(
        &server,
        &fan,
        Method::POST,
        "/api/tickets/purchase",
        Some(json!({ "event_id": event_id, "method": "card", "email": "ana@example.org" })),
    )
    .unwrap();
    assert_eq!(status, 201, "{bought}");
    let purchase = bought["purchase_id"].as_str().unwrap().to_owned();
    let intent = bought["card"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stripe_rt.block_on(stripe.succeed(&intent)).1, 200);
    wait(
        "the card purchase fulfilled",
        Duration::from_secs(60),
        || {
            server
                .rt
                .block_on(sync_server::services::purchases::round(&server.state))?;
            let (_, view) = as_wallet(
                &server,
                &fan,
                Method::GET,
                &format!("/api/purchases/{purchase}"),
                None,
            )?;
            Ok(view["status"] == "fulfilled")
        },
    )
    .unwrap();

    // Freeze ticket 1 from the tickets page, after a page that says what
    // freezing does.
    browser.open(&format!("{base}/tickets")).unwrap();
    assert_eq!(
        figure(&browser, "tr[data-ticket='1'] [data-figure=status]"),
        "valid"
    );
    shoot(&browser, SHOTS, "1-tickets").unwrap();
    browser.click("tr[data-ticket='1'] a").unwrap();
    wait_page(
        &browser,
        "the freeze confirmation",
        "return document.getElementById('hold-confirm') !== null",
    );
    let asked = browser.text("main").unwrap();
    assert!(asked.contains("Freeze ticket 1?"), "{asked}");
    assert!(asked.contains("every gate refuses it"), "{asked}");
    shoot(&browser, SHOTS, "2-freeze-confirm").unwrap();
    browser.click("#hold-confirm").unwrap();
    wait_page(
        &browser,
        "the freeze done",
        "const p = document.getElementById('hold-result'); return p && p.textContent.includes('is frozen');",
    );
    assert_eq!(figure(&browser, "#ticket-status"), "frozen");
    shoot(&browser, SHOTS, "3-frozen").unwrap();

    // The gate hears of it with its next delta and refuses the ticket.
    gate.wait_ticket(
        event_id,
        1,
        "the hold at the gate",
        Duration::from_secs(30),
        |t| t.status == shared::TicketStatus::Frozen,
    )
    .unwrap();
    let refused = gate.scan(&codes[1]).unwrap();
    assert!(!refused.record.opened, "{refused:?}");
    assert_eq!(refused.record.outcome, "frozen");

    // Unfreezing lets it in again.
    browser
        .open(&format!("{base}/tickets/1/hold?action=unfreeze"))
        .unwrap();
    browser.click("#hold-confirm").unwrap();
    wait_page(
        &browser,
        "the release done",
        "const p = document.getElementById('hold-result'); return p && p.textContent.includes('is unfrozen');",
    );
    assert_eq!(figure(&browser, "#ticket-status"), "valid");
    gate.wait_ticket(
        event_id,
        1,
        "the release at the gate",
        Duration::from_secs(30),
        |t| t.status == shared::TicketStatus::Active,
    )
    .unwrap();
    let admitted = gate.scan(&codes[1]).unwrap();
    assert!(admitted.record.opened, "{admitted:?}");

    // The sales: four tickets, one sold by card for 25.00.
    browser.open(&format!("{base}/sales")).unwrap();
    assert_eq!(
        figure(&browser, "#tiers tr[data-tier='0'] [data-figure=tickets]"),
        "4"
    );
    assert_eq!(
        figure(&browser, "#tiers tr[data-tier='0'] [data-figure=card-sold]"),
        "1"
    );
    assert_eq!(
        figure(
            &browser,
            "#tiers tr[data-tier='0'] [data-figure=card-revenue]"
        ),
        "25.00 USD"
    );
    assert_eq!(
        figure(
            &browser,
            "#purchases tr[data-status=fulfilled] [data-figure=card]"
        ),
        "1"
    );
    assert_eq!(figure(&browser, "[data-figure=refunds-done]"), "0");
    shoot(&browser, SHOTS, "4-sales").unwrap();

    // Cancelling: a wrong name changes nothing and says so.
    browser.open(&format!("{base}/cancel")).unwrap();
    let warning = browser.text("main").unwrap();
    assert!(warning.contains("cannot be undone"), "{warning}");
    assert!(
        warning.contains("1 card purchase(s) are refunded"),
        "{warning}"
    );
    shoot(&browser, SHOTS, "5-cancel-confirm").unwrap();
    browser.type_into("#confirm", "Harbour").unwrap();
    browser.click("form.stack button[type=submit]").unwrap();
    wait_page(
        &browser,
        "the wrong name refused",
        "const p = document.getElementById('confirm-error'); return p && p.textContent.includes('nothing was cancelled');",
    );
    shoot(&browser, SHOTS, "6-cancel-wrong-name").unwrap();
    assert!(
        !server
            .rt
            .block_on(server.state.store.event(event_id))
            .unwrap()
            .unwrap()
            .status
            .eq(&shared::EventStatus::Cancelled),
        "not cancelled"
    );

    // The right name: the progress page follows the work to the end.
    browser.type_into("#confirm", "Harbour Lights").unwrap();
    browser.click("form.stack button[type=submit]").unwrap();
    wait_page(
        &browser,
        "the progress page",
        "return document.getElementById('cancel-progress') !== null;",
    );
    shoot(&browser, SHOTS, "7-cancel-progress").unwrap();
    wait_page(
        &browser,
        "the cancellation done on the page",
        "const p = document.getElementById('cancel-phase'); return p && p.dataset.phase === 'done';",
    );
    assert_eq!(figure(&browser, "[data-figure=tickets-done]"), "4");
    assert_eq!(figure(&browser, "[data-figure=tickets-total]"), "4");
    assert_eq!(figure(&browser, "[data-figure=refunds-done]"), "1");
    assert_eq!(figure(&browser, "[data-figure=refunds-total]"), "1");
    shoot(&browser, SHOTS, "8-cancel-done").unwrap();
    assert_eq!(stripe.refunds_of(&intent).len(), 1, "refunded once");

    // The gate refuses the event's tickets now.
    gate.wait_ticket(
        event_id,
        0,
        "the revocation at the gate",
        Duration::from_secs(30),
        is_revoked,
    )
    .unwrap();
    let after = gate.scan(&codes[0]).unwrap();
    assert!(!after.record.opened, "{after:?}");

    // The sales show the refund.
    browser.open(&format!("{base}/sales")).unwrap();
    assert_eq!(figure(&browser, "[data-figure=refunds-done]"), "1");
    assert_eq!(
        figure(
            &browser,
            "#purchases tr[data-status=refunded] [data-figure=card]"
        ),
        "1"
    );
    assert_eq!(
        figure(
            &browser,
            "#tiers tr[data-tier='0'] [data-figure=card-revenue]"
        ),
        "0"
    );

    // Every console page of the event fits a phone without scrolling
    // sideways, the finished cancellation included.
    for page in [
        String::new(),
        "/edit".into(),
        "/mint".into(),
        "/tickets".into(),
        "/tickets/1/hold".into(),
        "/gates".into(),
        "/conflicts".into(),
        "/sales".into(),
        "/cancel".into(),
        "/settle".into(),
    ] {
        browser.open(&format!("{base}{page}")).unwrap();
        assert_fits_a_phone(&browser, &format!("the event page {page:?}")).unwrap();
    }
    for page in ["/console", "/console/events/new"] {
        browser.open(&format!("{}{page}", server.url)).unwrap();
        assert_fits_a_phone(&browser, page).unwrap();
    }
    gate.stop();
    drop(browser);
    server.stop().unwrap();
}

/// A SOL purchase signed by `buyer` (funded first); its ticket id.
fn sol_sale(server: &Server, event_id: u64, buyer: &Keypair) -> u32 {
    let ctx = server.state.chain.as_ref().unwrap();
    server
        .rt
        .block_on(sync_server::chain::ops::ensure_funded(
            ctx.chain.as_ref(),
            None,
            &buyer.pubkey(),
            PRICE * 3,
            PRICE * 3,
        ))
        .unwrap();
    let key = SigningKey::from_bytes(buyer.secret_bytes());
    let fan = end_to_end::organizer::api_login(server, &key).unwrap();
    let (status, bought) = as_wallet(
        server,
        &fan,
        Method::POST,
        "/api/tickets/purchase",
        Some(json!({ "event_id": event_id, "method": "sol" })),
    )
    .unwrap();
    assert_eq!(status, 201, "{bought}");
    let engine = base64::engine::general_purpose::STANDARD;
    let mut transaction: solana_sdk::transaction::Transaction = bincode::deserialize(
        &engine
            .decode(bought["sol"]["transaction"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let blockhash = transaction.message.recent_blockhash;
    transaction.sign(&[buyer], blockhash);
    let (status, done) = as_wallet(
        server,
        &fan,
        Method::POST,
        &format!(
            "/api/purchases/{}/submit",
            bought["purchase_id"].as_str().unwrap()
        ),
        Some(json!({ "transaction": engine.encode(bincode::serialize(&transaction).unwrap()) })),
    )
    .unwrap();
    assert_eq!(
        (status, &done["status"]),
        (200, &json!("fulfilled")),
        "{done}"
    );
    done["ticket_id"].as_u64().unwrap() as u32
}

#[test]
fn after_the_event_an_organizer_withdraws_closes_the_accounts_and_downloads_the_attendance() {
    let dir = tempfile::tempdir().unwrap();
    let (server, chain) = Server::start_with_chain_clock(&dir.path().join("server"), |config| {
        config.api.jwt_secret = JWT_SECRET.into();
    })
    .unwrap();
    let organizer = SigningKey::from_bytes(&[8; 32]);
    let (browser, token) = organizer_signed_in(&server, &organizer).unwrap();
    let wallets = holders(50..52);
    let (event_id, codes) = event_with_tickets(&server, &token, &wallets);
    let buyer = Keypair::new();
    let sold = sol_sale(&server, event_id, &buyer);
    assert_eq!(sold, 2);
    let base = format!("{}/console/events/{event_id}", server.url);

    // Ticket 0 comes in at north; its scan goes on chain.
    let gate = north_gate(&server, dir.path(), event_id);
    let admitted = gate.scan(&codes[0]).unwrap();
    assert!(admitted.record.opened, "{admitted:?}");
    gate.wait_status("north's journal sent", Duration::from_secs(30), |s| {
        s["counts"]["unsent"] == 0
    })
    .unwrap();
    let replay = server.drain_replay(event_id).unwrap();
    assert_eq!(replay.waiting + replay.submitted, 0, "{replay:?}");

    // Before the end: nothing to do yet, and the page says why.
    browser.open(&format!("{base}/settle")).unwrap();
    let before = browser.text("main").unwrap();
    assert!(before.contains("has not ended yet"), "{before}");
    assert!(
        browser.find("#step-withdraw").is_err(),
        "no withdrawal before the end"
    );
    assert_eq!(
        figure(&browser, "[data-figure=proceeds]"),
        "0.1 SOL (100,000,000 lamports)"
    );
    shoot(&browser, SHOTS, "9-settle-before").unwrap();

    // The chain's clock past the end.
    server.rt.block_on(chain.advance_clock(7200 + 120)).unwrap();
    browser.open(&format!("{base}/settle")).unwrap();
    browser.click("#step-withdraw").unwrap();
    wait_page(
        &browser,
        "the withdrawal",
        "const p = document.getElementById('settle-result'); return p && p.textContent.includes('Withdrew');",
    );
    let notice = figure(&browser, "#settle-result");
    assert!(
        notice.contains("Withdrew 0.1 SOL (100,000,000 lamports)"),
        "{notice}"
    );
    assert_eq!(
        figure(&browser, "[data-figure=proceeds]"),
        "0 SOL (0 lamports)"
    );

    // Closing the tickets needs the box ticked; then their rent comes back.
    let ctx = server.state.chain.as_ref().unwrap();
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    let ticket_addresses: Vec<_> = (0..3)
        .map(|id| ticketing::client::ticket_address(&event_address, id).0)
        .collect();
    let rent: u64 = server
        .rt
        .block_on(ctx.chain.accounts(&ticket_addresses))
        .unwrap()
        .into_iter()
        .map(|a| a.unwrap().lamports)
        .sum();
    browser.click("#understood-close_tickets").unwrap();
    browser.click("#step-close_tickets").unwrap();
    wait_page(
        &browser,
        "the tickets closed",
        "const p = document.getElementById('settle-result'); return p && p.textContent.includes('Closed 3 ticket account');",
    );
    assert!(figure(&browser, "#settle-result").contains(&sol_text(rent)));
    let event_rent = server
        .rt
        .block_on(sync_server::chain::ops::balance(
            ctx.chain.as_ref(),
            &event_address,
        ))
        .unwrap();
    browser.click("#understood-close_event").unwrap();
    browser.click("#step-close_event").unwrap();
    wait_page(
        &browser,
        "the event closed",
        "const p = document.getElementById('settle-result'); return p && p.textContent.includes('Closed the event account');",
    );

    // After a reload, the page still shows what came back.
    browser.open(&format!("{base}/settle")).unwrap();
    assert_eq!(
        figure(&browser, "[data-figure=reclaimed]"),
        sol_text(rent + event_rent)
    );
    assert!(figure(&browser, "[data-figure=ticket-rent]").contains(&sol_text(rent)));
    assert!(figure(&browser, "[data-figure=event-account]").contains(&sol_text(event_rent)));
    assert!(figure(&browser, "[data-figure=withdrawn]").contains("0.1 SOL (100,000,000 lamports)"));
    assert!(
        browser
            .text("#settle-state")
            .unwrap()
            .contains("closed on chain")
    );
    shoot(&browser, SHOTS, "10-settle-done").unwrap();

    // The attendance report from the page's link.
    let csv = browser
        .script(
            "return fetch(document.getElementById('attendance-csv').href).then(r => r.text());",
            json!([]),
        )
        .unwrap();
    let csv = csv.as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "ticket_id,tier,tier_name,holder,status,entered_at,entry_gate,entries,exits"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        &first[..5],
        ["0", "0", "general", wallets[0].as_str(), "valid"]
    );
    assert!(first[5].ends_with('Z'), "{csv}");
    assert_eq!(&first[6..], ["1", "1", "0"]);
    assert_eq!(lines[2], format!("1,0,general,{},valid,,,0,0", wallets[1]));
    assert_eq!(
        lines[3],
        format!("2,0,general,{},valid,,,0,0", buyer.pubkey())
    );

    // The sales: one SOL sale for 0.1 SOL.
    browser.open(&format!("{base}/sales")).unwrap();
    assert_eq!(
        figure(&browser, "#tiers tr[data-tier='0'] [data-figure=sol-sold]"),
        "1"
    );
    assert_eq!(
        figure(
            &browser,
            "#tiers tr[data-tier='0'] [data-figure=sol-revenue]"
        ),
        "0.1 SOL (100,000,000 lamports)"
    );
    assert_eq!(
        figure(&browser, "#tiers tr[data-tier='0'] [data-figure=tickets]"),
        "3"
    );
    shoot(&browser, SHOTS, "11-sales-sol").unwrap();
    gate.stop();
    drop(browser);
    server.stop().unwrap();
}

/// Lamports as the console writes them.
fn sol_text(lamports: u64) -> String {
    sync_server::http::console::settle::sol(lamports)
}
