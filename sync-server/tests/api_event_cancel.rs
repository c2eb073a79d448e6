//! Cancelling an event and settling one after it ends, through the API, on
//! the embedded chain with the real program, the Stripe stand-in behind the
//! real Stripe client and a real SMTP server: a cancellation revokes every
//! ticket on chain (a SOL price back to its holder), refunds the card buyer
//! once and mails them, reports its progress, and changes nothing when
//! asked again; one cut off after a batch resumes from its record; after
//! the end (the chain's clock moved, not waited for) the SOL proceeds are
//! withdrawn and the ticket and event accounts closed for their rent. On
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use std::time::Duration;

use common::*;
use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::{Value, json};
use smtp_sink::{SinkRules, SmtpSink};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signer as _};
use stripe_standin::{StripeStandin, unix_now};
use sync_server::chain::ops;
use sync_server::config::SmtpTls;
use ticketing::client::TicketStatus as ChainStatus;

on_both_backends!(
    cancelling_revokes_every_ticket_refunds_the_card_buyer_once_and_repeats_as_a_no_op,
    a_cancellation_cut_off_after_a_batch_resumes_from_its_record,
    after_the_end_proceeds_are_withdrawn_and_the_accounts_closed_for_their_rent,
);

const SECRET_KEY: &str = "sk_test_cancel";
const WEBHOOK_SECRET: &str = "whsec_cancel";
const PRICE: u64 = 100_000_000;

struct Venue {
    server: TestServer,
    stripe: StripeStandin,
    sink: tokio::sync::Mutex<SmtpSink>,
    organizer: String,
}

/// A server with card payments through the stand-in and mail to a real SMTP
/// server; its clock reads the wall clock, as Stripe signs with it.
async fn venue(db: Db) -> Venue {
    let stripe = StripeStandin::start(SECRET_KEY, WEBHOOK_SECRET, "http://127.0.0.1:9/none").await;
    let sink = SmtpSink::start(SinkRules::default()).await;
    let (stripe_url, smtp) = (stripe.url.clone(), sink.addr);
    let server = start_on_chain_with(db, ChainMode::Embedded, move |config| {
        config.stripe.secret_key = SECRET_KEY.into();
        config.stripe.webhook_secret = WEBHOOK_SECRET.into();
        config.stripe.api_base = stripe_url;
        config.smtp.host = smtp.ip().to_string();
        config.smtp.port = smtp.port();
        config.smtp.tls = SmtpTls::None;
        config.smtp.from = "Harbour Tickets <tickets@harbour.example>".into();
        config.api.rate_limits.mint.requests = 1000;
    })
    .await;
    server
        .clock
        .0
        .store(unix_now(), std::sync::atomic::Ordering::SeqCst);
    stripe.set_webhook_url(&format!("{}/api/payments/webhook", server.url));
    let organizer = server.login_as(&wallet(70), Some("organizer")).await;
    Venue {
        server,
        stripe,
        sink: tokio::sync::Mutex::new(sink),
        organizer,
    }
}

impl Venue {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, body, _) = self
            .server
            .call(method, path, Some(&self.organizer), body)
            .await;
        (status, body)
    }

    /// An event from tomorrow to the day after, sold at `PRICE` lamports or
    /// 25.00 by card, with `minted` tickets minted to wallets 1..=minted.
    async fn event(&self, minted: u8) -> u64 {
        let now = unix_now();
        let (status, created) = self
            .call(
                Method::POST,
                "/api/events",
                Some(json!({
                    "name": "Harbour Lights", "venue": "Pier 4",
                    "starts_at": now + 86_400, "ends_at": now + 2 * 86_400,
                    "capacity": 100,
                    "tiers": [{ "name": "general", "price_lamports": PRICE,
                                "supply": 100, "card_price": 2500 }],
                })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let event_id = created["event_id"].as_u64().unwrap();
        if minted > 0 {
            let recipients: Vec<Value> = (1..=minted)
                .map(|i| json!({ "wallet": address(&wallet(i)) }))
                .collect();
            let (status, body) = self
                .call(
                    Method::POST,
                    "/api/tickets/batch-mint",
                    Some(json!({ "event_id": event_id, "recipients": recipients })),
                )
                .await;
            assert_eq!(status, 201, "{body}");
        }
        event_id
    }

    /// A card purchase by `buyer`, paid and minted. Returns (purchase id,
    /// payment intent, buyer's session).
    async fn card_sale(&self, event_id: u64, buyer: u8, email: &str) -> (String, String, String) {
        let fan = self.server.login_as(&wallet(buyer), None).await;
        let (status, bought, _) = self
            .server
            .call(
                Method::POST,
                "/api/tickets/purchase",
                Some(&fan),
                Some(json!({ "event_id": event_id, "method": "card", "email": email })),
            )
            .await;
        assert_eq!(status, 201, "{bought}");
        let id = bought["purchase_id"].as_str().unwrap().to_owned();
        let intent = bought["card"]["payment_intent"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(self.stripe.succeed(&intent).await.1, 200);
        for _ in 0..100 {
            sync_server::services::purchases::round(&self.server.state)
                .await
                .unwrap();
            if self.purchase(&fan, &id).await["status"] == "fulfilled" {
                return (id, intent, fan);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("card purchase {id} never fulfilled");
    }

    /// A SOL purchase signed by `buyer` (funded first). Returns its ticket id.
    async fn sol_sale(&self, event_id: u64, buyer: &Keypair) -> u32 {
        let ctx = self.server.state.chain.as_ref().unwrap();
        ops::ensure_funded(
            ctx.chain.as_ref(),
            None,
            &buyer.pubkey(),
            PRICE * 3,
            PRICE * 3,
        )
        .await
        .unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(buyer.secret_bytes());
        let fan = self.server.login_as(&key, None).await;
        let (status, bought, _) = self
            .server
            .call(
                Method::POST,
                "/api/tickets/purchase",
                Some(&fan),
                Some(json!({ "event_id": event_id, "method": "sol" })),
            )
            .await;
        assert_eq!(status, 201, "{bought}");
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let mut transaction: solana_sdk::transaction::Transaction = bincode::deserialize(
            &engine
                .decode(bought["sol"]["transaction"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        let blockhash = transaction.message.recent_blockhash;
        transaction.sign(&[buyer], blockhash);
        let (status, done, _) = self
            .server
            .call(
                Method::POST,
                &format!(
                    "/api/purchases/{}/submit",
                    bought["purchase_id"].as_str().unwrap()
                ),
                Some(&fan),
                Some(json!({ "transaction": engine.encode(bincode::serialize(&transaction).unwrap()) })),
            )
            .await;
        assert_eq!(
            (status, &done["status"]),
            (200, &json!("fulfilled")),
            "{done}"
        );
        done["ticket_id"].as_u64().unwrap() as u32
    }

    async fn purchase(&self, token: &str, id: &str) -> Value {
        let (status, body, _) = self
            .server
            .call(
                Method::GET,
                &format!("/api/purchases/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The cancellation's progress once it is done (waiting on the
    /// server's background work, not on a clock).
    async fn cancellation_done(&self, event_id: u64) -> Value {
        let path = format!("/api/events/{event_id}/cancellation");
        for _ in 0..400 {
            let (status, progress) = self.call(Method::GET, &path, None).await;
            assert_eq!(status, 200, "{progress}");
            if progress["phase"] == "done" {
                return progress;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cancellation of {event_id} never finished");
    }

    /// (recipient, subject) of every mail delivered until none comes for
    /// half a second.
    async fn mail_subjects(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut sink = self.sink.lock().await;
        while let Ok(delivery) = tokio::time::timeout(Duration::from_millis(500), sink.next()).await
        {
            let message = MessageParser::default().parse(&delivery.data).unwrap();
            out.push((
                delivery.rcpt_to.join(","),
                message.subject().unwrap_or_default().to_owned(),
            ));
        }
        out
    }

    async fn balance(&self, address: &Pubkey) -> u64 {
        let ctx = self.server.state.chain.as_ref().unwrap();
        ops::balance(ctx.chain.as_ref(), address).await.unwrap()
    }

    fn event_address(&self, event_id: u64) -> Pubkey {
        let ctx = self.server.state.chain.as_ref().unwrap();
        ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0
    }
}

async fn cancelling_revokes_every_ticket_refunds_the_card_buyer_once_and_repeats_as_a_no_op(
    db: Db,
) {
    let venue = venue(db).await;
    // More tickets than one revocation batch, a card sale and a SOL sale.
    let event_id = venue.event(12).await;
    let (purchase_id, intent, fan) = venue.card_sale(event_id, 80, "ana@example.org").await;
    let sol_buyer = Keypair::new();
    let sol_ticket = venue.sol_sale(event_id, &sol_buyer).await;
    let total = venue.server.chain_event(event_id).await.minted;
    assert_eq!(total, 14);
    let sol_before = venue.balance(&sol_buyer.pubkey()).await;

    let path = format!("/api/events/{event_id}/cancellation");
    let (status, started) = venue.call(Method::POST, &path, None).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(
        started["event"],
        json!({ "done": 1, "total": 1 }),
        "{started}"
    );
    let progress = venue.cancellation_done(event_id).await;
    assert_eq!(
        progress["tickets"],
        json!({ "done": 14, "total": 14 }),
        "{progress}"
    );
    assert_eq!(progress["tickets_revoked"], 14);
    assert_eq!(progress["refunds"], json!({ "done": 1, "total": 1 }));
    assert_eq!(progress["mail"], json!({ "done": 1, "total": 1 }));
    assert!(progress["last_error"].is_null(), "{progress}");

    // On chain: the event cancelled, every ticket revoked, the SOL price
    // back with its holder.
    let server = &venue.server;
    assert!(server.chain_event(event_id).await.is_cancelled());
    let ids: Vec<u32> = (0..total).collect();
    for (id, ticket) in ids
        .iter()
        .zip(server.chain_tickets_of(event_id, &ids).await)
    {
        let status = ticket.unwrap().status;
        let expected = if *id == sol_ticket {
            ChainStatus::Refunded
        } else {
            ChainStatus::Revoked
        };
        assert_eq!(status, expected, "ticket {id}");
    }
    assert_eq!(venue.balance(&sol_buyer.pubkey()).await - sol_before, PRICE);
    // For the gates: the event cancelled, each ticket revoked or refunded.
    let cached = server.state.store.event(event_id).await.unwrap().unwrap();
    assert_eq!(cached.status, shared::EventStatus::Cancelled);
    for id in &ids {
        let ticket = server
            .state
            .store
            .ticket(event_id, *id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(
                ticket.status,
                shared::TicketStatus::Revoked | shared::TicketStatus::Refunded
            ),
            "ticket {id}: {:?}",
            ticket.status
        );
    }
    // The card buyer: refunded in full once, with the purchase's key, and
    // told by mail.
    let view = venue.purchase(&fan, &purchase_id).await;
    assert_eq!(view["status"], "refunded", "{view}");
    let refunds = venue.stripe.refunds_of(&intent);
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 2500);
    // Her mail: the purchase's confirmation, then the refund notice.
    let mail = venue.mail_subjects().await;
    assert_eq!(
        mail.iter()
            .filter(|(_, s)| s == "Refund for Harbour Lights")
            .count(),
        1,
        "{mail:?}"
    );
    assert!(
        mail.iter().all(|(to, _)| to == "ana@example.org"),
        "{mail:?}"
    );

    // Asking again answers the same progress and changes nothing.
    let (status, again) = venue.call(Method::POST, &path, None).await;
    assert_eq!(status, 202);
    assert_eq!(again, progress);
    for _ in 0..2 {
        sync_server::services::purchases::round(&server.state)
            .await
            .unwrap();
    }
    assert_eq!(venue.cancellation_done(event_id).await, progress);
    assert_eq!(venue.stripe.refunds_of(&intent).len(), 1);
    let more = venue.mail_subjects().await;
    assert!(
        more.iter().all(|(_, s)| s != "Refund for Harbour Lights"),
        "one refund mail: {more:?}"
    );
    // The sales: the card purchase refunded, the SOL one as sold (its price
    // went back with the revocation, on chain), the minted tickets counted.
    let (status, sales) = venue
        .call(Method::GET, &format!("/api/events/{event_id}/sales"), None)
        .await;
    assert_eq!(status, 200, "{sales}");
    assert_eq!(
        (
            &sales["refunds"]["due"],
            &sales["refunds"]["refused"],
            &sales["refunds"]["done"]
        ),
        (&json!(0), &json!(0), &json!(1)),
        "{sales}"
    );
    assert_eq!(
        sales["refunds"]["refunded_amounts"],
        json!([{ "currency": "usd", "amount": 2500 }])
    );
    let refunded = sales["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "refunded")
        .unwrap();
    assert_eq!(
        (&refunded["card"], &refunded["sol"]),
        (&json!(1), &json!(0))
    );
    let tier = &sales["tiers"][0];
    assert_eq!(
        (&tier["tickets"], &tier["sol_sold"], &tier["card_sold"]),
        (&json!(14), &json!(1), &json!(0)),
        "{sales}"
    );
    assert_eq!(tier["sol_lamports"], PRICE);
    // A cancelled event's proceeds are for refunds.
    let (status, body) = venue
        .call(
            Method::POST,
            &format!("/api/events/{event_id}/withdraw"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
}

async fn a_cancellation_cut_off_after_a_batch_resumes_from_its_record(db: Db) {
    let venue = venue(db).await;
    let event_id = venue.event(12).await;
    let server = &venue.server;
    // As the request left it when the server died: recorded, and the first
    // batch of revocations landed on chain before its progress was written.
    server
        .state
        .store
        .start_cancellation(event_id, unix_now())
        .await
        .unwrap();
    let ctx = server.state.chain.as_ref().unwrap();
    let event = venue.event_address(event_id);
    let landed: Vec<_> = (0..3u32)
        .map(|id| {
            ticketing::client::revoke_ticket(
                &ctx.authority.pubkey(),
                &event,
                id,
                &Pubkey::new_from_array(wallet(id as u8 + 1).verifying_key().to_bytes()),
            )
        })
        .collect();
    ops::send(ctx.chain.as_ref(), &ctx.authority, &landed, &[])
        .await
        .unwrap();

    // The worker's pass after the restart finishes it.
    sync_server::services::cancellation::drive(&server.state, event_id)
        .await
        .unwrap();
    let progress = venue.cancellation_done(event_id).await;
    assert_eq!(
        progress["tickets"],
        json!({ "done": 12, "total": 12 }),
        "{progress}"
    );
    assert_eq!(
        progress["tickets_revoked"], 9,
        "the three revoked before are not sent again"
    );
    assert_eq!(progress["refunds"], json!({ "done": 0, "total": 0 }));
    let ids: Vec<u32> = (0..12).collect();
    assert!(
        server
            .chain_tickets_of(event_id, &ids)
            .await
            .into_iter()
            .all(|t| t.unwrap().status == ChainStatus::Revoked)
    );
    assert!(server.chain_event(event_id).await.is_cancelled());
}

async fn after_the_end_proceeds_are_withdrawn_and_the_accounts_closed_for_their_rent(db: Db) {
    let venue = venue(db).await;
    let venue = &venue;
    let event_id = venue.event(2).await;
    let buyers = [Keypair::new(), Keypair::new()];
    for buyer in &buyers {
        venue.sol_sale(event_id, buyer).await;
    }
    let server = &venue.server;
    let event = server.chain_event(event_id).await;
    assert_eq!((event.proceeds, event.minted), (2 * PRICE, 4));
    let post = |path: String| async move { venue.call(Method::POST, &path, None).await };

    // Before the end: nothing of it.
    for path in ["withdraw", "tickets/close", "close"] {
        let (status, body) = post(format!("/api/events/{event_id}/{path}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("conflict")),
            "{path}: {body}"
        );
    }

    // The chain's clock past the end.
    server
        .embedded_chain
        .as_ref()
        .unwrap()
        .advance_clock(2 * 86_400 + 60)
        .await
        .unwrap();
    let treasury = event.treasury;
    let treasury_before = venue.balance(&treasury).await;
    let (status, withdrawn) = post(format!("/api/events/{event_id}/withdraw")).await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(withdrawn["lamports"], 2 * PRICE);
    assert_eq!(withdrawn["treasury"], treasury.to_string());
    assert_eq!(server.chain_event(event_id).await.proceeds, 0);
    // The treasury (here also the fee payer) got the proceeds, less one fee.
    let gained = venue.balance(&treasury).await - treasury_before;
    assert!(
        (2 * PRICE - 10_000..=2 * PRICE).contains(&gained),
        "{gained}"
    );
    let (_, again) = post(format!("/api/events/{event_id}/withdraw")).await;
    assert_eq!(again["lamports"], 0, "nothing left");

    // The event cannot close while its tickets are open.
    let (status, _) = post(format!("/api/events/{event_id}/close")).await;
    assert_eq!(status, 409);

    let ctx = server.state.chain.as_ref().unwrap();
    let event_address = venue.event_address(event_id);
    let ticket_addresses: Vec<Pubkey> = (0..4)
        .map(|id| ticketing::client::ticket_address(&event_address, id).0)
        .collect();
    let rent: u64 = ctx
        .chain
        .accounts(&ticket_addresses)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.unwrap().lamports)
        .sum();
    let (status, closed) = post(format!("/api/events/{event_id}/tickets/close")).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["closed"], 4);
    assert_eq!(closed["open_tickets"], 0);
    assert_eq!(closed["skipped"], json!([]));
    assert_eq!(closed["lamports_reclaimed"], rent);
    assert!(
        ctx.chain
            .accounts(&ticket_addresses)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none),
        "the ticket accounts are gone"
    );
    let (_, again) = post(format!("/api/events/{event_id}/tickets/close")).await;
    assert_eq!(
        (
            again["closed"].as_u64(),
            again["lamports_reclaimed"].as_u64()
        ),
        (Some(0), Some(0))
    );

    let event_rent = venue.balance(&event_address).await;
    let (status, closed) = post(format!("/api/events/{event_id}/close")).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["lamports_reclaimed"], event_rent);
    assert_eq!(closed["proceeds_to_treasury"], 0);
    assert!(
        ctx.chain.accounts(&[event_address]).await.unwrap()[0].is_none(),
        "the event account is gone"
    );
    let (status, body) = post(format!("/api/events/{event_id}/close")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );

    // What it all returned stays readable with the accounts gone.
    let (status, settlement) = venue
        .call(
            Method::GET,
            &format!("/api/events/{event_id}/settlement"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{settlement}");
    assert!(settlement["chain"].is_null(), "{settlement}");
    let record = &settlement["record"];
    assert_eq!(record["withdrawn_lamports"], 2 * PRICE);
    assert_eq!(record["treasury"], treasury.to_string());
    assert_eq!(record["tickets_closed"], 4);
    assert_eq!(record["ticket_rent_lamports"], rent);
    assert_eq!(record["event_rent_lamports"], event_rent);
    assert_eq!(record["proceeds_at_close"], 0);
    // The sales: two SOL purchases, their price.
    let (_, sales) = venue
        .call(Method::GET, &format!("/api/events/{event_id}/sales"), None)
        .await;
    assert_eq!(sales["sol_lamports"], 2 * PRICE, "{sales}");
    assert_eq!(sales["tiers"][0]["sol_sold"], 2);
}
