//! Buying tickets through the API, on the embedded chain with the real
//! program, a local Stripe stand-in behind the real Stripe client, and a
//! real SMTP server: the seed's integration test (create event, buy by card,
//! signed webhook, ticket on chain owned by the buyer and unused, validate,
//! entered on chain), SOL purchases signed by the buyer's wallet, seat
//! reservations that run out, and 50 concurrent buyers for 20 seats. On
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use std::time::Duration;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};
use smtp_sink::{SinkRules, SmtpSink};
use solana_sdk::signature::Signer as _;
use stripe_standin::{StripeStandin, stripe_signature, unix_now};
use sync_server::config::SmtpTls;
use sync_server::store::MailStatus;

on_both_backends!(
    card_purchase_is_minted_after_the_signed_webhook_and_the_ticket_then_enters,
    fifty_concurrent_buyers_get_exactly_the_twenty_seats_there_are,
    sol_purchase_pays_and_mints_in_one_transaction_the_buyer_signs,
    one_sender_at_a_time_takes_a_purchase_mail,
);

const SECRET_KEY: &str = "sk_test_purchases";
const WEBHOOK_SECRET: &str = "whsec_purchases";

struct Shop {
    server: TestServer,
    stripe: StripeStandin,
    sink: SmtpSink,
    organizer: String,
}

/// A server with card payments through the stand-in and mail to a real
/// SMTP server; its clock reads the wall clock's second, because Stripe
/// signs webhooks with real time.
async fn shop(db: Db, reservation_secs: u32) -> Shop {
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
        config.api.reservation_secs = reservation_secs;
        config.api.rate_limits.mint.requests = 1000;
    })
    .await;
    server
        .clock
        .0
        .store(unix_now(), std::sync::atomic::Ordering::SeqCst);
    stripe.set_webhook_url(&format!("{}/api/payments/webhook", server.url));
    let organizer = server.login_as(&wallet(70), Some("organizer")).await;
    Shop {
        server,
        stripe,
        sink,
        organizer,
    }
}

impl Shop {
    /// An event starting tomorrow with a card-priced general tier, its
    /// tickets in the default NFT standard (SPL Token).
    async fn event(&self, capacity: u32, lamports: u64) -> u64 {
        self.event_in(capacity, lamports, "spl_token").await
    }

    /// The same, with tickets in the NFT standard `nft`.
    async fn event_in(&self, capacity: u32, lamports: u64, nft: &str) -> u64 {
        let now = unix_now();
        let (status, created, _) = self
            .server
            .call(
                reqwest::Method::POST,
                "/api/events",
                Some(&self.organizer),
                Some(json!({
                    "name": "Harbour Lights", "venue": "Pier 4",
                    "starts_at": now + 86_400, "ends_at": now + 2 * 86_400,
                    "doors_open_secs_before": 2 * 86_400,
                    "capacity": capacity,
                    "tiers": [{ "name": "general", "price_lamports": lamports,
                                "supply": capacity, "card_price": 2500 }],
                    "nft": nft,
                })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["nft"], nft);
        created["event_id"].as_u64().unwrap()
    }

    async fn buy(
        &self,
        token: &str,
        event_id: u64,
        method: &str,
        email: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({ "event_id": event_id, "method": method });
        if let Some(email) = email {
            body["email"] = json!(email);
        }
        let (status, answer, _) = self
            .server
            .call(
                reqwest::Method::POST,
                "/api/tickets/purchase",
                Some(token),
                Some(body),
            )
            .await;
        (status, answer)
    }

    async fn purchase(&self, token: &str, id: &str) -> Value {
        let (status, body, _) = self
            .server
            .call(
                reqwest::Method::GET,
                &format!("/api/purchases/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits (on the server's own work, not a clock) until the purchase
    /// leaves `minting`/`paid`.
    async fn settled(&self, token: &str, id: &str) -> Value {
        for _ in 0..200 {
            let body = self.purchase(token, id).await;
            if !matches!(
                body["status"].as_str(),
                Some("paid" | "minting" | "pending")
            ) {
                return body;
            }
            sync_server::services::purchases::round(&self.server.state)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("purchase {id} never settled");
    }

    async fn chain_event(&self, event_id: u64) -> ticketing::client::Event {
        let ctx = self.server.state.chain.as_ref().unwrap();
        sync_server::chain::ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
            .await
            .unwrap()
            .unwrap()
    }
}

async fn card_purchase_is_minted_after_the_signed_webhook_and_the_ticket_then_enters(db: Db) {
    let mut shop = shop(db, 300).await;
    let server = &shop.server;
    let event_id = shop.event(100, 0).await;
    let buyer = wallet(71);
    let fan = server.login_as(&buyer, None).await;

    // No login, no purchase.
    let (status, _, _) = server
        .call(
            reqwest::Method::POST,
            "/api/tickets/purchase",
            None,
            Some(json!({ "event_id": event_id, "method": "card" })),
        )
        .await;
    assert_eq!(status, 401);
    let (status, error) = shop.buy(&fan, event_id, "paypal", None).await;
    assert!(status == 422 || status == 400, "{status} {error}");

    // 1. Reserve and start the payment.
    let (status, bought) = shop
        .buy(&fan, event_id, "card", Some("ana@example.org"))
        .await;
    assert_eq!(status, 201, "{bought}");
    assert_eq!(bought["status"], "pending");
    assert_eq!(
        (bought["amount"].as_u64(), bought["currency"].as_str()),
        (Some(2500), Some("usd"))
    );
    let purchase_id = bought["purchase_id"].as_str().unwrap().to_owned();
    let intent_id = bought["card"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        bought["card"]["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&intent_id)
    );
    let intent = shop.stripe.intent(&intent_id);
    assert_eq!(intent["amount"], 2500);
    assert_eq!(intent["metadata"]["purchase_id"], purchase_id.as_str());
    let seen = shop.stripe.seen();
    assert_eq!(
        seen.last().unwrap().idempotency_key.as_deref(),
        Some(format!("purchase-{purchase_id}").as_str())
    );
    assert_eq!(
        shop.chain_event(event_id).await.minted,
        0,
        "nothing minted before payment"
    );

    // A forged webhook (wrong secret) and a tampered one change nothing.
    let forged = json!({
        "id": "evt_forged", "object": "event", "type": "payment_intent.succeeded",
        "created": unix_now(),
        "data": { "object": { "id": intent_id, "object": "payment_intent", "amount": 2500,
                               "currency": "usd", "status": "succeeded", "metadata": {} } }
    });
    let body = serde_json::to_vec(&forged).unwrap();
    let response = server
        .http
        .post(format!("{}/api/payments/webhook", server.url))
        .header(
            "Stripe-Signature",
            stripe_signature("whsec_wrong", unix_now(), &body),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let signed = stripe_signature(WEBHOOK_SECRET, unix_now(), &body);
    let tampered = String::from_utf8(body).unwrap().replace("2500", "2501");
    let response = server
        .http
        .post(format!("{}/api/payments/webhook", server.url))
        .header("Stripe-Signature", signed)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = server
        .http
        .post(format!("{}/api/payments/webhook", server.url))
        .body(serde_json::to_vec(&forged).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "unsigned");
    assert_eq!(shop.purchase(&fan, &purchase_id).await["status"], "pending");

    // 2. The buyer pays; Stripe sends the signed webhook; 3. the ticket is
    // minted to the buyer.
    let (event_one, status) = shop.stripe.succeed(&intent_id).await;
    assert_eq!(status, 200);
    let done = shop.settled(&fan, &purchase_id).await;
    assert_eq!(done["status"], "fulfilled", "{done}");
    let ticket_id = done["ticket_id"].as_u64().unwrap() as u32;
    let code = done["code"].as_str().unwrap().to_owned();

    // Stripe delivers at least once: a redelivery mints nothing more.
    assert_eq!(shop.stripe.redeliver(&event_one).await, 200);
    sync_server::services::purchases::round(&server.state)
        .await
        .unwrap();
    let on_chain = shop.chain_event(event_id).await;
    assert_eq!(on_chain.minted, 1, "one payment, one ticket");

    // On chain: owned by the buyer, not used.
    let ctx = server.state.chain.as_ref().unwrap();
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    let ticket = server.chain_ticket(event_id, ticket_id).await;
    assert_eq!(ticket.owner.to_bytes(), buyer.verifying_key().to_bytes());
    assert!(!ticket.entered);
    assert_eq!(ticket.entry_count, 0);
    // The NFT sits in the buyer's token account.
    let token_account = ticketing::client::TicketAccounts::derive(&event_address, ticket_id)
        .token_account(
            &solana_sdk::pubkey::Pubkey::new_from_array(buyer.verifying_key().to_bytes()),
            on_chain.token_standard,
        );
    let account = ctx
        .chain
        .accounts(&[token_account])
        .await
        .unwrap()
        .pop()
        .flatten();
    assert!(account.is_some(), "the buyer holds the NFT");

    // 4. The confirmation mail carries the QR code of the same credential.
    let delivery = shop.sink.next().await;
    assert_eq!(delivery.rcpt_to, ["ana@example.org"]);
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    assert_eq!(message.subject(), Some("Your ticket for Harbour Lights"));
    let png = message.attachments().next().unwrap();
    assert_eq!(
        png.attachment_name(),
        Some(format!("ticket-{ticket_id}.png").as_str())
    );
    let image = image::load_from_memory(png.contents()).unwrap().to_luma8();
    let (w, h) = image.dimensions();
    let read =
        rxing::helpers::detect_in_luma(image.into_raw(), w, h, Some(rxing::BarcodeFormat::QR_CODE))
            .unwrap();
    assert_eq!(
        read.getText(),
        code,
        "the mailed QR code is the ticket's credential"
    );

    // 5. Validate at the door, 6. entered on chain.
    let steward = server.login_as(&wallet(72), Some("validator")).await;
    let (status, _, _) = server
        .call(
            reqwest::Method::PUT,
            &format!("/api/admin/events/{event_id}/gates"),
            Some(ADMIN),
            Some(json!({ "number": 1, "name": "door", "direction": "entry" })),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _, _) = server
        .call(
            reqwest::Method::PUT,
            &format!("/api/events/{event_id}/validators/{}", address(&wallet(72))),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "the event's validator");
    let (status, verdict, _) = server
        .call(
            reqwest::Method::POST,
            "/api/validate",
            Some(&steward),
            Some(json!({ "event_id": event_id, "gate": 1, "code": code })),
        )
        .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["outcome"], "admitted", "{verdict}");
    let summary =
        sync_server::services::replay::drain(&server.state, event_id, Duration::from_secs(60))
            .await
            .unwrap();
    assert_eq!(summary.confirmed, 1, "{summary:?}");
    let ticket = server.chain_ticket(event_id, ticket_id).await;
    assert!(ticket.entered, "entered on chain");
    assert_eq!(ticket.entry_count, 1);

    // Someone else cannot read the purchase.
    let other = server.login_as(&wallet(73), None).await;
    let (status, _, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/api/purchases/{purchase_id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // A declined card releases the seat and mints nothing.
    let (_, second) = shop.buy(&fan, event_id, "card", None).await;
    let second_intent = second["card"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, status) = shop
        .stripe
        .fail(&second_intent, "Your card was declined.")
        .await;
    assert_eq!(status, 200);
    let failed = shop
        .purchase(&fan, second["purchase_id"].as_str().unwrap())
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"], "Your card was declined.");
    assert_eq!(shop.chain_event(event_id).await.minted, 1);

    let metrics = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sync_purchases_total{method=\"card\",state=\"fulfilled\"} 1"),
        "{metrics}"
    );
}

async fn fifty_concurrent_buyers_get_exactly_the_twenty_seats_there_are(db: Db) {
    let shop = shop(db, 300).await;
    let server = &shop.server;
    let event_id = shop.event(20, 0).await;
    let mut tokens = Vec::new();
    for seed in 0..50u8 {
        tokens.push(server.login_as(&wallet(100 + seed), None).await);
    }
    // All at once, each on its own task and connection.
    let mut buyers = tokio::task::JoinSet::new();
    for (i, token) in tokens.iter().enumerate() {
        let (http, url, token) = (server.http.clone(), server.url.clone(), token.clone());
        buyers.spawn(async move {
            let r = http
                .post(format!("{url}/api/tickets/purchase"))
                .bearer_auth(token)
                .json(&json!({ "event_id": event_id, "method": "card" }))
                .send()
                .await
                .unwrap();
            (i, r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let mut answers: Vec<(usize, u16, Value)> = buyers.join_all().await;
    answers.sort_by_key(|(i, _, _)| *i);
    let answers: Vec<(u16, Value)> = answers.into_iter().map(|(_, s, b)| (s, b)).collect();
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    let lost: Vec<&(u16, Value)> = answers.iter().filter(|(s, _)| *s != 201).collect();
    assert_eq!(won.len(), 20, "{lost:?}");
    assert_eq!(lost.len(), 30);
    for (status, body) in &lost {
        assert_eq!(
            (*status, body["error"].as_str()),
            (409, Some("sold_out")),
            "{body}"
        );
    }
    // The organizer cannot mint past the held seats either.
    let (status, body, _) = server
        .call(
            reqwest::Method::POST,
            "/api/tickets/mint",
            Some(&shop.organizer),
            Some(json!({ "event_id": event_id, "wallet": address(&wallet(99)) })),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("sold_out")),
        "{body}"
    );

    // Everyone who holds a seat pays; every payment becomes a ticket.
    for body in &won {
        let intent = body["card"]["payment_intent"].as_str().unwrap();
        assert_eq!(shop.stripe.succeed(intent).await.1, 200);
    }
    for ((status, body), token) in answers.iter().zip(&tokens) {
        if *status == 201 {
            let done = shop
                .settled(token, body["purchase_id"].as_str().unwrap())
                .await;
            assert_eq!(done["status"], "fulfilled", "{done}");
        }
    }
    let on_chain = shop.chain_event(event_id).await;
    assert_eq!((on_chain.minted, on_chain.tiers[0].sold), (20, 20));
    let (status, body) = shop.buy(&tokens[0], event_id, "card", None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("sold_out")));
}

/// Where the gates need the holder's live code, the confirmation mail
/// carries no static code (the gate would refuse it) and says where the
/// live one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_for_live_codes_is_confirmed_without_a_static_code() {
    let mut shop = shop(Db::Sqlite, 300).await;
    let server = &shop.server;
    let event_id = shop.event(10, 0).await;
    let (status, body, _) = server
        .call(
            reqwest::Method::PUT,
            &format!("/api/events/{event_id}/rules"),
            Some(&shop.organizer),
            Some(json!({ "holder_proof": { "required": { "window_secs": 30 } } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fan = server.login_as(&wallet(76), None).await;
    let (status, bought) = shop
        .buy(&fan, event_id, "card", Some("ana@example.org"))
        .await;
    assert_eq!(status, 201, "{bought}");
    let intent = bought["card"]["payment_intent"].as_str().unwrap();
    assert_eq!(shop.stripe.succeed(intent).await.1, 200);
    let id = bought["purchase_id"].as_str().unwrap();
    assert_eq!(shop.settled(&fan, id).await["status"], "fulfilled");

    let delivery = shop.sink.next().await;
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    assert_eq!(
        message.attachments().count(),
        0,
        "no code that would be refused"
    );
    let text = message.body_text(0).unwrap();
    assert!(text.contains("live code"), "{text}");
    let tickets = format!(
        "{}/tickets",
        server.state.config.api.public_url.trim_end_matches('/')
    );
    assert!(text.contains(&tickets), "{tickets} in {text}");
}

/// A purchase whose buyer never pays gives its seat back when the
/// reservation runs out, and its payment can no longer be made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_reservation_runs_out_and_its_seat_is_sold_again() {
    let shop = shop(Db::Sqlite, 300).await;
    let server = &shop.server;
    let event_id = shop.event(1, 0).await;
    let first = server.login_as(&wallet(80), None).await;
    let second = server.login_as(&wallet(81), None).await;
    let (status, held) = shop.buy(&first, event_id, "card", None).await;
    assert_eq!(status, 201, "{held}");
    let (status, body) = shop.buy(&second, event_id, "card", None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("sold_out")));

    // Five minutes pass on the server's clock.
    server
        .clock
        .0
        .fetch_add(301, std::sync::atomic::Ordering::SeqCst);
    let report = sync_server::services::purchases::round(&server.state)
        .await
        .unwrap();
    assert_eq!(report.expired, 1);
    let id = held["purchase_id"].as_str().unwrap();
    assert_eq!(shop.purchase(&first, id).await["status"], "expired");
    let intent = held["card"]["payment_intent"].as_str().unwrap();
    assert_eq!(
        shop.stripe.intent(intent)["status"],
        "canceled",
        "the stale payment is cancelled"
    );

    let (status, body) = shop.buy(&second, event_id, "card", None).await;
    assert_eq!(status, 201, "the seat is for sale again: {body}");
}

async fn sol_purchase_pays_and_mints_in_one_transaction_the_buyer_signs(db: Db) {
    const PRICE: u64 = 250_000_000;
    let shop = shop(db, 300).await;
    let server = &shop.server;
    // Tickets wallets can name: Token-2022 with metadata pointing here.
    let event_id = shop.event_in(10, PRICE, "token_2022_metadata").await;
    let buyer_key = wallet(90);
    let buyer = solana_sdk::signature::Keypair::new_from_array(buyer_key.to_bytes());
    let fan = server.login_as(&buyer_key, None).await;
    let ctx = server.state.chain.as_ref().unwrap();
    sync_server::chain::ops::ensure_funded(
        ctx.chain.as_ref(),
        None,
        &buyer.pubkey(),
        2_000_000_000,
        2_000_000_000,
    )
    .await
    .unwrap();
    let before = sync_server::chain::ops::balance(ctx.chain.as_ref(), &buyer.pubkey())
        .await
        .unwrap();

    let (status, bought) = shop
        .buy(&fan, event_id, "sol", Some("sol@example.org"))
        .await;
    assert_eq!(status, 201, "{bought}");
    assert_eq!(
        (bought["amount"].as_u64(), bought["currency"].as_str()),
        (Some(PRICE), Some("sol"))
    );
    let id = bought["purchase_id"].as_str().unwrap().to_owned();
    let unsigned = bought["sol"]["transaction"].as_str().unwrap();
    let decode = |text: &str| -> solana_sdk::transaction::Transaction {
        use base64::Engine;
        bincode::deserialize(
            &base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap(),
        )
        .unwrap()
    };
    let encode = |tx: &solana_sdk::transaction::Transaction| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bincode::serialize(tx).unwrap())
    };
    let submit_path = format!("/api/purchases/{id}/submit");
    let submit =
        |body: Value| server.call(reqwest::Method::POST, &submit_path, Some(&fan), Some(body));

    // Unsigned, or signed by someone else: refused before it reaches the chain.
    let (status, error, _) = submit(json!({ "transaction": unsigned })).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("transaction")),
        "{error}"
    );
    let mut transaction = decode(unsigned);
    let stranger = solana_sdk::signature::Keypair::new();
    let blockhash = transaction.message.recent_blockhash;
    let mut forged = transaction.clone();
    forged.signatures[0] = stranger.sign_message(&forged.message_data());
    let (status, error, _) = submit(json!({ "transaction": encode(&forged) })).await;
    assert_eq!(status, 422, "a forged signature: {error}");
    // Another instruction of the program (a ticket transfer) is no purchase.
    let event_address = {
        let ctx = server.state.chain.as_ref().unwrap();
        ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0
    };
    let mut other = solana_sdk::transaction::Transaction::new_with_payer(
        &[ticketing::client::transfer_ticket(
            &buyer.pubkey(),
            &stranger.pubkey(),
            &event_address,
            0,
            ticketing::client::TokenStandard::SplToken,
        )],
        Some(&buyer.pubkey()),
    );
    other.sign(&[&buyer], blockhash);
    let (status, _, _) = submit(json!({ "transaction": encode(&other) })).await;
    assert_eq!(status, 422);

    transaction.sign(&[&buyer], blockhash);
    let (status, done, _) = submit(json!({ "transaction": encode(&transaction) })).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "fulfilled", "{done}");
    let ticket_id = done["ticket_id"].as_u64().unwrap() as u32;
    assert!(done["code"].as_str().unwrap().len() > 20);

    let on_chain = shop.chain_event(event_id).await;
    assert_eq!(on_chain.minted, 1);
    assert_eq!(on_chain.proceeds, PRICE, "the price went to the event");
    let after = sync_server::chain::ops::balance(ctx.chain.as_ref(), &buyer.pubkey())
        .await
        .unwrap();
    assert!(before - after >= PRICE, "the buyer paid {}", before - after);
    let ticket = server.chain_ticket(event_id, ticket_id).await;
    assert_eq!(ticket.owner, buyer.pubkey());
    // Its NFT is a Token-2022 mint carrying the metadata URI this server
    // answers, and the buyer's token account holds it.
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    let accounts = ticketing::client::TicketAccounts::derive(&event_address, ticket_id);
    let standard = ticketing::client::TokenStandard::Token2022Metadata;
    let [mint, holding] = ctx
        .chain
        .accounts(&[
            accounts.mint,
            accounts.token_account(&buyer.pubkey(), standard),
        ])
        .await
        .unwrap()
        .try_into()
        .unwrap();
    let mint = mint.expect("the mint exists");
    assert_eq!(mint.owner, standard.program_id());
    let uri = format!(
        "{}/m/{event_id}/{ticket_id}",
        server.state.config.api.public_url.trim_end_matches('/')
    );
    assert!(
        mint.data.windows(uri.len()).any(|w| w == uri.as_bytes()),
        "the mint's metadata names {uri}"
    );
    assert_eq!(
        holding.expect("the token account").owner,
        standard.program_id()
    );
    let (status, metadata, _) = server
        .call(
            reqwest::Method::GET,
            &format!("/m/{event_id}/{ticket_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{metadata}");
    assert!(
        metadata["name"]
            .as_str()
            .unwrap()
            .contains("Harbour Lights"),
        "{metadata}"
    );
    // The gates know it too.
    let cached = server
        .state
        .store
        .ticket(event_id, ticket_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.owner.0, buyer.pubkey().to_bytes());

    // Submitting again changes nothing.
    let (status, again, _) = submit(json!({ "transaction": encode(&transaction) })).await;
    assert_eq!((status, again["status"].as_str()), (200, Some("fulfilled")));
    assert_eq!(shop.chain_event(event_id).await.minted, 1);

    // A second purchase built before someone else's sale is stale: refused
    // before it costs the buyer a fee, and a fresh one works.
    let (_, next) = shop.buy(&fan, event_id, "sol", None).await;
    let next_id = next["purchase_id"].as_str().unwrap().to_owned();
    let stale = decode(next["sol"]["transaction"].as_str().unwrap());
    let (status, _, _) = server
        .call(
            reqwest::Method::POST,
            "/api/tickets/mint",
            Some(&shop.organizer),
            Some(json!({ "event_id": event_id, "wallet": address(&wallet(91)) })),
        )
        .await;
    assert_eq!(status, 201);
    let mut stale_signed = stale.clone();
    stale_signed.sign(&[&buyer], stale.message.recent_blockhash);
    let (status, error, _) = server
        .call(
            reqwest::Method::POST,
            &format!("/api/purchases/{next_id}/submit"),
            Some(&fan),
            Some(json!({ "transaction": encode(&stale_signed) })),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    let fresh = shop.purchase(&fan, &next_id).await;
    let mut fresh_tx = decode(fresh["sol"]["transaction"].as_str().unwrap());
    let hash = fresh_tx.message.recent_blockhash;
    fresh_tx.sign(&[&buyer], hash);
    let (status, done, _) = server
        .call(
            reqwest::Method::POST,
            &format!("/api/purchases/{next_id}/submit"),
            Some(&fan),
            Some(json!({ "transaction": encode(&fresh_tx) })),
        )
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("fulfilled")),
        "{done}"
    );
    assert_eq!(shop.chain_event(event_id).await.minted, 3);
}

/// A buyer whose payment lands after the reservation ran out and the seat
/// was sold to someone else gets no ticket and is refunded, once, by the
/// purchase worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_that_comes_too_late_for_a_seat_is_refunded_once() {
    let mut shop = shop(Db::Sqlite, 300).await;
    let server = &shop.server;
    let event_id = shop.event(1, 0).await;
    let late = server.login_as(&wallet(84), None).await;
    let prompt = server.login_as(&wallet(85), None).await;
    let (status, held) = shop
        .buy(&late, event_id, "card", Some("late@example.org"))
        .await;
    assert_eq!(status, 201, "{held}");
    let late_id = held["purchase_id"].as_str().unwrap().to_owned();
    let late_intent = held["card"]["payment_intent"].as_str().unwrap().to_owned();

    // The hold runs out; the seat goes to another buyer, who pays.
    server
        .clock
        .0
        .fetch_add(301, std::sync::atomic::Ordering::SeqCst);
    sync_server::services::purchases::round(&server.state)
        .await
        .unwrap();
    // Back to the wall clock: the provider signs webhooks with real time.
    server
        .clock
        .0
        .store(unix_now(), std::sync::atomic::Ordering::SeqCst);
    let (status, bought) = shop.buy(&prompt, event_id, "card", None).await;
    assert_eq!(status, 201, "{bought}");
    let prompt_id = bought["purchase_id"].as_str().unwrap().to_owned();
    let (_, delivered) = shop
        .stripe
        .succeed(bought["card"]["payment_intent"].as_str().unwrap())
        .await;
    assert_eq!(delivered, 200);
    assert_eq!(
        shop.settled(&prompt, &prompt_id).await["status"],
        "fulfilled"
    );

    // The first buyer's payment had gone through just before the cancel
    // reached the provider: no seat is left for it.
    let (late_event, delivered) = shop.stripe.succeed(&late_intent).await;
    assert_eq!(delivered, 200);
    assert_eq!(shop.purchase(&late, &late_id).await["status"], "refund_due");
    assert!(shop.stripe.refunds_of(&late_intent).is_empty());
    // Support sees it, with the admin token only.
    let support = |query: &'static str| async move {
        let (status, body, _) = server
            .call(
                reqwest::Method::GET,
                &format!("/api/admin/purchases{query}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    };
    let waiting = support("").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (
            waiting[0]["purchase_id"].as_str(),
            waiting[0]["status"].as_str()
        ),
        (Some(late_id.as_str()), Some("refund_due"))
    );
    assert_eq!(waiting[0]["payment_intent"], late_intent.as_str());
    for (token, query, expected) in [
        (None, "", 401),
        (Some(late.as_str()), "", 401),
        (Some(ADMIN), "?status=paid", 422),
        (Some(ADMIN), "?limit=5", 400),
    ] {
        let (status, body, _) = server
            .call(
                reqwest::Method::GET,
                &format!("/api/admin/purchases{query}"),
                token,
                None,
            )
            .await;
        assert_eq!(status, expected, "{query}: {body}");
    }

    let report = sync_server::services::purchases::round(&server.state)
        .await
        .unwrap();
    assert_eq!(report.refunded, 1);
    assert!(support("").await.is_empty(), "nothing waits any more");
    let refunded = support("?status=refunded").await;
    assert_eq!(refunded.len(), 1);
    assert!(
        refunded[0]["refund_id"]
            .as_str()
            .unwrap()
            .starts_with("re_"),
        "{refunded:?}"
    );
    let view = shop.purchase(&late, &late_id).await;
    assert_eq!(view["status"], "refunded", "{view}");
    // The buyer is told, by mail, of the whole amount.
    let delivery = shop.sink.next().await;
    assert_eq!(delivery.rcpt_to, ["late@example.org"]);
    let message = MessageParser::default().parse(&delivery.data).unwrap();
    assert_eq!(message.subject(), Some("Refund for Harbour Lights"));
    let text = message.body_text(0).unwrap();
    assert!(text.contains("refunded the full 25.00 USD"), "{text}");
    assert!(view["ticket_id"].is_null(), "{view}");
    let refunds = shop.stripe.refunds_of(&late_intent);
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 2500, "the whole price");
    let request = shop
        .stripe
        .seen()
        .into_iter()
        .rfind(|r| {
            r.form
                .iter()
                .any(|(k, v)| k == "payment_intent" && *v == late_intent)
        })
        .unwrap();
    assert_eq!(
        request.idempotency_key.as_deref(),
        Some(format!("refund-{late_id}").as_str())
    );

    // Later rounds and a redelivered webhook refund nothing more, and the
    // event still has exactly one ticket.
    assert_eq!(shop.stripe.redeliver(&late_event).await, 200);
    for _ in 0..2 {
        let report = sync_server::services::purchases::round(&server.state)
            .await
            .unwrap();
        assert_eq!(report.refunded, 0);
    }
    assert_eq!(shop.stripe.refunds_of(&late_intent).len(), 1);
    assert_eq!(shop.purchase(&late, &late_id).await["status"], "refunded");
    assert!(shop.sink.is_empty(), "one refund mail");
    assert_eq!(shop.chain_event(event_id).await.minted, 1);
}

/// `/health` says when the configured mail relay is down, and answers 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_while_the_configured_mail_relay_is_down() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let server = start_with(
        Db::Sqlite,
        |config| {
            config.smtp.host = "127.0.0.1".into();
            config.smtp.port = port;
            config.smtp.tls = SmtpTls::None;
            config.smtp.timeout_secs = 2;
        },
        |_| axum::Router::new(),
    )
    .await;
    let (status, body, _) = server
        .call(reqwest::Method::GET, "/health", None, None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        (body["database"].as_bool(), body["smtp"].as_bool()),
        (Some(true), Some(false))
    );

    let sink = SmtpSink::start(SinkRules::default()).await;
    let server = start_with(
        Db::Sqlite,
        |config| {
            config.smtp.host = sink.addr.ip().to_string();
            config.smtp.port = sink.addr.port();
            config.smtp.tls = SmtpTls::None;
        },
        |_| axum::Router::new(),
    )
    .await;
    let (status, body, _) = server
        .call(reqwest::Method::GET, "/health", None, None)
        .await;
    assert_eq!(
        (status, body["smtp"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
}

/// The mint that fulfils a purchase and the worker's round may both set out
/// to send its mail: the lease lets exactly one of them, and lets another
/// take over only when a sender died (the lease ran out) or gave up.
async fn one_sender_at_a_time_takes_a_purchase_mail(db: Db) {
    let shop = shop(db, 300).await;
    let server = &shop.server;
    let event_id = shop.event(10, 0).await;
    let fan = server.login_as(&wallet(77), None).await;
    let (status, bought) = shop
        .buy(&fan, event_id, "card", Some("ana@example.org"))
        .await;
    assert_eq!(status, 201, "{bought}");
    let id = bought["purchase_id"].as_str().unwrap();
    let store = &server.state.store;
    store
        .set_purchase_mail_status(id, MailStatus::Pending)
        .await
        .unwrap();
    let now = 1_000;
    let (a, b, c) = tokio::join!(
        store.claim_purchase_mail(id, now, 300),
        store.claim_purchase_mail(id, now, 300),
        store.claim_purchase_mail(id, now, 300),
    );
    let won = [a.unwrap(), b.unwrap(), c.unwrap()];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert!(
        !store.claim_purchase_mail(id, now + 299, 300).await.unwrap(),
        "held while its sender may still be sending"
    );
    assert!(
        store.claim_purchase_mail(id, now + 300, 300).await.unwrap(),
        "a dead sender's lease runs out"
    );
    store.release_purchase_mail(id).await.unwrap();
    assert!(
        store.claim_purchase_mail(id, now + 301, 300).await.unwrap(),
        "given up: taken again at once"
    );
    store
        .set_purchase_mail_status(id, MailStatus::Sent)
        .await
        .unwrap();
    assert!(
        !store
            .claim_purchase_mail(id, now + 10_000, 300)
            .await
            .unwrap(),
        "sent: never again"
    );
}
