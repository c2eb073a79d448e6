//! Tickets sent to an email address and claimed with the code from the mail,
//! through the API, on the embedded chain with the real program and a real
//! SMTP server on a local port: the claim, a wrong code, a second claim, an
//! expired claim returned by the sweep, a cancelled one, a mail that failed
//! and was resent, and who may do what. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "support/smtp_sink.rs"]
mod smtp_sink;

use std::sync::atomic::Ordering;

use base64::Engine;
use common::*;
use ed25519_dalek::SigningKey;
use mail_parser::MessageParser;
use serde_json::{Value, json};
use smtp_sink::{SinkRules, SmtpSink};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signer};
use solana_sdk::transaction::Transaction;
use sync_server::config::{SmtpSettings, SmtpTls};

on_both_backends!(
    an_emailed_ticket_is_claimed_once_by_whoever_has_the_code,
    an_unclaimed_ticket_expires_on_chain_and_the_sweep_returns_it,
    the_holder_takes_the_ticket_back_and_a_failed_mail_is_resent,
);

const POST: reqwest::Method = reqwest::Method::POST;
const GET: reqwest::Method = reqwest::Method::GET;

/// The Solana keypair of a test wallet (`wallet(seed)` is the same key).
fn keypair(seed: u8) -> Keypair {
    Keypair::new_from_array([seed; 32])
}

fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every answer the API gave in a test, to search for the secret later.
#[derive(Default)]
struct Transcript(std::sync::Mutex<Vec<String>>);

struct Scene {
    server: TestServer,
    event_id: u64,
    /// When the event starts, which is when its transfers close.
    starts_at: i64,
    ticket_id: u32,
    /// The minted ticket's QR code text (the holder's).
    code: String,
    holder: String,
    stranger: String,
    friend: String,
    answers: Transcript,
}

fn smtp(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        from: "Claims Night <tickets@claims.example>".into(),
        claim_url: "https://claims.example/claim".into(),
        timeout_secs: 10,
        ..SmtpSettings::default()
    }
}

impl Scene {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .server
            .http
            .request(method, format!("{}{path}", self.server.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        self.answers.0.lock().unwrap().push(text.clone());
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn login(&self, key: &SigningKey, role: Option<&str>) -> String {
        login(&self.server.url, key, role).await
    }

    /// A server whose clock is the wall clock (as the chain's is), an event
    /// whose doors are open and whose transfers are open, gate 1, and one
    /// ticket minted to `wallet(70)`, who has SOL for fees.
    async fn start(db: Db, smtp_port: u16) -> Self {
        let server =
            start_on_chain_with(db, ChainMode::Embedded, |c| c.smtp = smtp(smtp_port)).await;
        let wall = wall_clock();
        server.clock.0.store(wall, Ordering::SeqCst);
        let mut scene = Scene {
            server,
            event_id: 0,
            starts_at: wall + 4 * 86_400,
            ticket_id: 0,
            code: String::new(),
            holder: String::new(),
            stranger: String::new(),
            friend: String::new(),
            answers: Transcript::default(),
        };
        let org = scene.login(&wallet(69), Some("organizer")).await;
        scene.holder = scene.login(&wallet(70), None).await;
        scene.stranger = scene.login(&wallet(71), None).await;
        scene.friend = scene.login(&wallet(72), None).await;
        let (status, created) = scene
            .call(
                POST,
                "/api/events",
                Some(&org),
                Some(json!({
                    "name": "Claims Night", "venue": "Pier 4",
                    "starts_at": scene.starts_at, "ends_at": scene.starts_at + 86_400,
                    "doors_open_secs_before": 5 * 86_400, "capacity": 10,
                    "tiers": [{ "name": "general", "price_lamports": 0, "supply": 10 }]
                })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        scene.event_id = created["event_id"].as_u64().unwrap();
        let (status, _) = scene
            .call(
                reqwest::Method::PUT,
                &format!("/api/admin/events/{}/gates", scene.event_id),
                Some(ADMIN),
                Some(json!({ "number": 1, "name": "door", "direction": "entry" })),
            )
            .await;
        assert_eq!(status, 204);
        let (status, minted) = scene
            .call(
                POST,
                "/api/tickets/mint",
                Some(&org),
                Some(json!({ "event_id": scene.event_id, "wallet": address(&wallet(70)) })),
            )
            .await;
        assert_eq!(status, 201, "{minted}");
        scene.ticket_id = minted["ticket_id"].as_u64().unwrap() as u32;
        scene.code = minted["code"].as_str().unwrap().to_owned();
        let ctx = scene.server.state.chain.as_ref().unwrap();
        sync_server::chain::ops::ensure_funded(
            ctx.chain.as_ref(),
            None,
            &keypair(70).pubkey(),
            100_000_000,
            100_000_000,
        )
        .await
        .unwrap();
        scene
    }

    fn path(&self, tail: &str) -> String {
        format!(
            "/api/tickets/{}/{}/transfer{tail}",
            self.event_id, self.ticket_id
        )
    }

    /// Asks for a transfer (`body`) as the holder and submits it signed by
    /// the holder's wallet; returns the submit's status and answer.
    async fn transfer_signed(&self, tail: &str, body: Option<Value>) -> (u16, Value) {
        let (status, prepared) = self
            .call(POST, &self.path(tail), Some(&self.holder), body)
            .await;
        assert_eq!(status, 200, "{prepared}");
        let signed = sign(prepared["transaction"].as_str().unwrap(), |tx| tx);
        self.call(
            POST,
            &self.path("/submit"),
            Some(&self.holder),
            Some(json!({ "transaction": signed })),
        )
        .await
    }

    async fn claim(&self, token: Option<&str>, code: &str) -> (u16, Value) {
        self.call(
            POST,
            "/api/tickets/claim",
            token,
            Some(json!({ "code": code })),
        )
        .await
    }

    /// The ticket on chain, and whether an email transfer of it is open
    /// there (its delegation account exists).
    async fn on_chain(&self) -> (ticketing::client::Ticket, bool) {
        let ctx = self.server.state.chain.as_ref().unwrap();
        let event = ticketing::client::event_address(&ctx.authority.pubkey(), self.event_id).0;
        let ticket = ticketing::client::ticket_address(&event, self.ticket_id).0;
        let delegation = ticketing::client::delegation_address(&ticket).0;
        let accounts = ctx.chain.accounts(&[ticket, delegation]).await.unwrap();
        (
            ticketing::client::decode_ticket(&accounts[0].as_ref().unwrap().data).unwrap(),
            accounts[1].is_some(),
        )
    }

    /// The status and kept secret of each transfer of the ticket, by status.
    async fn stored(&self) -> Vec<(String, Option<String>)> {
        use sqlx::Row;
        sqlx::query(
            "SELECT status, claim_secret FROM email_transfers
             WHERE event_id = $1 AND ticket_id = $2 ORDER BY status",
        )
        .bind(self.event_id as i64)
        .bind(i64::from(self.ticket_id))
        .fetch_all(&raw_pool(&self.server.state).await)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("status"), r.get("claim_secret")))
        .collect()
    }

    /// Asserts `code` (a claim code) appears in no answer the API gave and in
    /// no column of any table, in any of the encodings it could be kept in.
    async fn assert_secret_nowhere(&self, code: &str) {
        let seed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(code)
            .unwrap();
        let forms = [
            code.to_owned(),
            hex::encode(&seed),
            hex::encode_upper(&seed),
            bs58::encode(&seed).into_string(),
        ];
        for answer in self.answers.0.lock().unwrap().iter() {
            for form in &forms {
                assert!(
                    !answer.contains(form.as_str()),
                    "an answer holds the secret"
                );
            }
        }
        let dump = database_text(&self.server).await;
        assert!(
            dump.contains("email_transfers") && dump.contains("bea@example.org"),
            "the dump covers the transfers' columns"
        );
        for form in &forms {
            assert!(
                !dump.contains(form.as_str()),
                "the database holds the secret"
            );
        }
    }
}

/// Every value of every column of every table, as text (bytes as hex),
/// each table's name first.
async fn database_text(server: &TestServer) -> String {
    use sqlx::Row;
    let pool = &raw_pool(&server.state).await;
    let postgres = server.state.store.backend() == sync_server::store::Backend::Postgres;
    let tables: Vec<String> = sqlx::query(if postgres {
        "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'public'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    })
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("name"))
    .collect();
    let mut out = String::new();
    for table in tables {
        let columns: Vec<String> = if postgres {
            sqlx::query(
                "SELECT column_name::text AS name FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1",
            )
            .bind(table.clone())
        } else {
            sqlx::query("SELECT name FROM pragma_table_info($1)").bind(table.clone())
        }
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get("name"))
        .collect();
        out.push_str(&table);
        out.push('\n');
        for column in columns {
            let sql = if postgres {
                format!("SELECT CAST(\"{column}\" AS TEXT) AS v FROM \"{table}\"")
            } else {
                // SQLite keeps bytes in any column; those are compared as hex.
                format!(
                    "SELECT CASE WHEN typeof(\"{column}\") = 'blob' THEN hex(\"{column}\")
                     ELSE CAST(\"{column}\" AS TEXT) END AS v FROM \"{table}\""
                )
            };
            for row in sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap()
            {
                if let Some(value) = row.get::<Option<String>, _>("v") {
                    out.push_str(&value);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Decodes a prepared transaction, lets `change` alter it, signs it with the
/// holder's wallet (`wallet(70)`) and encodes it again.
fn sign(prepared: &str, change: impl FnOnce(Transaction) -> Transaction) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let unsigned: Transaction = bincode::deserialize(&engine.decode(prepared).unwrap()).unwrap();
    let mut transaction = change(unsigned);
    let blockhash = transaction.message.recent_blockhash;
    transaction.sign(&[&keypair(70)], blockhash);
    engine.encode(bincode::serialize(&transaction).unwrap())
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

/// A code of the right shape that no transfer was made with.
fn unknown_code() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Keypair::new().secret_bytes())
}

async fn an_emailed_ticket_is_claimed_once_by_whoever_has_the_code(db: Db) {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let scene = Scene::start(db, sink.addr.port()).await;
    let to_bea = json!({ "to_email": "bea@example.org" });

    // Refusals: no token, someone else's ticket, broken bodies (each names
    // the field).
    let (status, _) = scene
        .call(POST, &scene.path(""), None, Some(to_bea.clone()))
        .await;
    assert_eq!(status, 401);
    let (status, error) = scene
        .call(
            POST,
            &scene.path(""),
            Some(&scene.stranger),
            Some(to_bea.clone()),
        )
        .await;
    assert_eq!(status, 403, "someone else's ticket: {error}");
    for (field, body) in [
        (
            "to_email",
            json!({ "to_email": "bea@example.org", "to_wallet": address(&wallet(72)) }),
        ),
        ("to_email", json!({ "to_email": "not an address" })),
        ("to_wallet", json!({})),
        (
            "expires_in_secs",
            json!({ "to_email": "bea@example.org", "expires_in_secs": 5 }),
        ),
    ] {
        let (status, error) = scene
            .call(POST, &scene.path(""), Some(&scene.holder), Some(body))
            .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (422, Some(field)),
            "{error}"
        );
    }

    // The holder's wallet signs the open; a tampered expiry, or a
    // transaction that is not one of the holder's instructions, is refused.
    let (status, prepared) = scene
        .call(
            POST,
            &scene.path(""),
            Some(&scene.holder),
            Some(to_bea.clone()),
        )
        .await;
    assert_eq!(status, 200, "{prepared}");
    let chain_now = wall_clock();
    let expires_at = prepared["expires_at"].as_i64().unwrap();
    assert!(
        (expires_at - (chain_now + 72 * 3600)).abs() < 120,
        "72 h on the chain's clock: {prepared}"
    );
    let transaction = prepared["transaction"].as_str().unwrap();
    let later = sign(transaction, |mut tx| {
        let data = &mut tx.message.instructions[0].data;
        let at = data.len() - 8;
        data[at..].copy_from_slice(&(expires_at + 365 * 86_400).to_le_bytes());
        tx
    });
    let (status, error) = scene
        .call(
            POST,
            &scene.path("/submit"),
            Some(&scene.holder),
            Some(json!({ "transaction": later })),
        )
        .await;
    assert_eq!(status, 404, "no such prepared transfer: {error}");
    let elsewhere = sign(transaction, |tx| {
        let instruction = ticketing::client::transfer_ticket(
            &keypair(70).pubkey(),
            &keypair(72).pubkey(),
            &Pubkey::new_unique(),
            scene.ticket_id,
            ticketing::client::TokenStandard::SplToken,
        );
        let mut other = Transaction::new_with_payer(&[instruction], Some(&keypair(70).pubkey()));
        other.message.recent_blockhash = tx.message.recent_blockhash;
        other
    });
    let (status, error) = scene
        .call(
            POST,
            &scene.path("/submit"),
            Some(&scene.holder),
            Some(json!({ "transaction": elsewhere })),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("transaction")),
        "a transfer of another event's ticket: {error}"
    );
    assert!(sink.is_empty());
    assert!(!scene.on_chain().await.1, "nothing was opened");

    let signed = sign(transaction, |tx| tx);
    let (status, opened) = scene
        .call(
            POST,
            &scene.path("/submit"),
            Some(&scene.holder),
            Some(json!({ "transaction": signed })),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["owner"], address(&wallet(70)), "still the holder's");
    assert_eq!(opened["email_transfer"]["status"], "open");
    assert_eq!(opened["email_transfer"]["mail_sent"], true, "{opened}");
    let (ticket, open) = scene.on_chain().await;
    assert!(open && ticket.transfer_pending);

    // The mail: to bea, the code only in the link.
    let delivery = sink.next().await;
    assert_eq!(delivery.rcpt_to, ["bea@example.org"]);
    let text = MessageParser::default()
        .parse(&delivery.data)
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(
        text.contains("sent you a ticket for Claims Night (general)"),
        "{text}"
    );
    let code = code_of(&delivery);
    assert_eq!(code.len(), 43);
    assert_eq!(
        scene.stored().await,
        [("open".to_owned(), None)],
        "the secret is forgotten once mailed"
    );
    scene.assert_secret_nowhere(&code).await;

    // Claims: a login is needed, a wrong code finds nothing.
    let (status, _) = scene.claim(None, &code).await;
    assert_eq!(status, 401);
    for wrong in [unknown_code(), "not-a-claim-code".to_owned()] {
        let (status, error) = scene.claim(Some(&scene.friend), &wrong).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (404, Some("claim_not_found"))
        );
    }
    let (status, claimed) = scene.claim(Some(&scene.friend), &code).await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["owner"], address(&wallet(72)));
    assert_eq!(claimed["generation"], 1);
    let new_code = claimed["code"].as_str().unwrap().to_owned();
    let (ticket, open) = scene.on_chain().await;
    assert_eq!(
        ticket.owner,
        keypair(72).pubkey(),
        "the chain has the new owner"
    );
    assert!(!open && !ticket.transfer_pending);
    let (_, mine) = scene
        .call(GET, "/api/tickets/my", Some(&scene.friend), None)
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["code"], new_code.as_str());
    let (_, mine) = scene
        .call(GET, "/api/tickets/my", Some(&scene.holder), None)
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 0);

    // At the door: the sender's old code is refused, the new one admitted.
    let validator = scene.login(&wallet(73), Some("validator")).await;
    let (status, _) = scene
        .call(
            reqwest::Method::PUT,
            &format!(
                "/api/events/{}/validators/{}",
                scene.event_id,
                address(&wallet(73))
            ),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, 200, "the event's validator");
    let check = |code: &str| json!({ "event_id": scene.event_id, "gate": 1, "code": code });
    let (status, old) = scene
        .call(
            POST,
            "/api/validate",
            Some(&validator),
            Some(check(&scene.code)),
        )
        .await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(
        (old["outcome"].as_str(), old["opens"].as_bool()),
        (Some("stale_generation"), Some(false))
    );
    let (_, new) = scene
        .call(
            POST,
            "/api/validate",
            Some(&validator),
            Some(check(&new_code)),
        )
        .await;
    assert_eq!(new["outcome"], "admitted", "{new}");

    // The code works once.
    for token in [&scene.stranger, &scene.friend] {
        let (status, error) = scene.claim(Some(token), &code).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (410, Some("already_claimed")),
            "{error}"
        );
    }
    assert_eq!(scene.stored().await, [("claimed".to_owned(), None)]);
    scene.assert_secret_nowhere(&code).await;
}

async fn an_unclaimed_ticket_expires_on_chain_and_the_sweep_returns_it(db: Db) {
    let mut sink = SmtpSink::start(SinkRules::default()).await;
    let scene = Scene::start(db, sink.addr.port()).await;
    // A first try the holder never signed is dropped, with its secret, once
    // another transfer of the ticket opens.
    let (status, _) = scene
        .call(
            POST,
            &scene.path(""),
            Some(&scene.holder),
            Some(json!({ "to_email": "al@example.org" })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, opened) = scene
        .transfer_signed(
            "",
            Some(json!({ "to_email": "bea@example.org", "expires_in_secs": 3600 })),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(scene.stored().await, [("open".to_owned(), None)]);
    let code = code_of(&sink.next().await);

    // Not due yet: the sweep leaves it alone.
    let swept = sync_server::services::transfers::sweep_expired(&scene.server.state)
        .await
        .unwrap();
    assert_eq!(swept.expired, 0);
    assert!(scene.on_chain().await.1);

    // An hour passes on chain.
    scene
        .server
        .embedded_chain
        .as_ref()
        .unwrap()
        .advance_clock(3601)
        .await
        .unwrap();
    let (status, error) = scene.claim(Some(&scene.friend), &code).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (410, Some("claim_expired")),
        "{error}"
    );
    let swept = sync_server::services::transfers::sweep_expired(&scene.server.state)
        .await
        .unwrap();
    assert_eq!(swept.expired, 1, "{swept:?}");
    let (ticket, open) = scene.on_chain().await;
    assert!(!open, "the delegation is closed on chain");
    assert!(!ticket.transfer_pending);
    assert_eq!(ticket.owner, keypair(70).pubkey());
    assert_eq!(scene.stored().await, [("expired".to_owned(), None)]);
    let again = sync_server::services::transfers::sweep_expired(&scene.server.state)
        .await
        .unwrap();
    assert_eq!(again, Default::default(), "nothing left to sweep");
    let (status, error) = scene.claim(Some(&scene.friend), &code).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (410, Some("claim_expired"))
    );

    // The ticket is its holder's to use again: a direct transfer goes through.
    let (status, moved) = scene
        .transfer_signed("", Some(json!({ "to_wallet": address(&wallet(72)) })))
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["owner"], address(&wallet(72)));
    assert!(moved.get("email_transfer").is_none(), "{moved}");
    scene.assert_secret_nowhere(&code).await;

    // The new holder prepares a transfer and never signs it: the sweep
    // drops it, and its secret, once its transaction is long dead.
    let (status, _) = scene
        .call(
            POST,
            &scene.path(""),
            Some(&scene.friend),
            Some(json!({ "to_email": "dee@example.org" })),
        )
        .await;
    assert_eq!(status, 200);
    let prepared = scene.stored().await;
    assert_eq!(prepared[1].0, "prepared");
    assert!(prepared[1].1.is_some());
    let swept = sync_server::services::transfers::sweep_expired(&scene.server.state)
        .await
        .unwrap();
    assert_eq!(swept.dropped, 0, "not yet");
    scene.server.clock.0.fetch_add(
        sync_server::services::transfers::PREPARED_TTL_SECS + 1,
        Ordering::SeqCst,
    );
    let swept = sync_server::services::transfers::sweep_expired(&scene.server.state)
        .await
        .unwrap();
    assert_eq!(swept.dropped, 1, "{swept:?}");
    assert_eq!(scene.stored().await, [("expired".to_owned(), None)]);
}

async fn the_holder_takes_the_ticket_back_and_a_failed_mail_is_resent(db: Db) {
    // The relay's port is known before anything listens there: the first
    // mail fails, the resend finds the relay up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scene = Scene::start(db, port).await;
    let (status, opened) = scene
        .transfer_signed("", Some(json!({ "to_email": "bea@example.org" })))
        .await;
    assert_eq!(status, 200, "{opened}");
    let transfer = &opened["email_transfer"];
    assert_eq!(transfer["status"], "open");
    assert_eq!(transfer["mail_sent"], false, "{opened}");
    assert!(transfer["mail_error"].is_string(), "{opened}");
    let stored = scene.stored().await;
    assert!(stored[0].1.is_some(), "kept for the resend");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut sink = SmtpSink::start_on(listener, SinkRules::default());
    let (status, _) = scene
        .call(POST, &scene.path("/resend"), Some(&scene.stranger), None)
        .await;
    assert_eq!(status, 403);
    let (status, resent) = scene
        .call(POST, &scene.path("/resend"), Some(&scene.holder), None)
        .await;
    assert_eq!(status, 200, "{resent}");
    assert_eq!(resent["mail_sent"], true, "{resent}");
    let code = code_of(&sink.next().await);
    let (status, error) = scene
        .call(POST, &scene.path("/resend"), Some(&scene.holder), None)
        .await;
    assert_eq!(status, 409, "the code is no longer kept: {error}");
    assert!(sink.is_empty());

    // Cancel: only the holder, then the code no longer works.
    let (status, _) = scene.call(POST, &scene.path("/cancel"), None, None).await;
    assert_eq!(status, 401);
    let (status, _) = scene
        .call(POST, &scene.path("/cancel"), Some(&scene.stranger), None)
        .await;
    assert_eq!(status, 403);
    let (status, cancelled) = scene.transfer_signed("/cancel", None).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["email_transfer"]["status"], "cancelled");
    assert_eq!(cancelled["owner"], address(&wallet(70)));
    let (ticket, open) = scene.on_chain().await;
    assert!(!open && !ticket.transfer_pending);
    let (status, error) = scene.claim(Some(&scene.friend), &code).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (410, Some("claim_cancelled")),
        "{error}"
    );
    let (status, _) = scene
        .call(POST, &scene.path("/cancel"), Some(&scene.holder), None)
        .await;
    assert_eq!(status, 404, "nothing left to cancel");
    scene.assert_secret_nowhere(&code).await;

    // The ticket can be sent again; a claim never outlives the event's
    // transfer deadline (its start).
    let (status, again) = scene
        .transfer_signed(
            "",
            Some(json!({ "to_email": "cy@example.org", "expires_in_secs": 30 * 86_400 })),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["email_transfer"]["mail_sent"], true);
    assert_eq!(again["email_transfer"]["expires_at"], scene.starts_at);
    assert_eq!(sink.next().await.rcpt_to, ["cy@example.org"]);
    assert_eq!(
        scene.stored().await,
        [("cancelled".to_owned(), None), ("open".to_owned(), None)]
    );
}
