//! A real server on a real port, over a throwaway database of either
//! backend, and a gate-device client that signs its requests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use shared::wire::*;
use shared::*;
use sync_server::{AppState, Clock, Config, Store};
use uuid::Uuid;

pub const ADMIN: &str = "admin-token-for-tests-only";
pub const JWT_SECRET: &str = "jwt-secret-for-tests-only-0123456789";
pub const EVENT: u64 = 1_764_072_000_001;
pub const T0: i64 = 1_764_075_600;

/// A clock the test moves by hand.
pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub url: String,
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub http: reqwest::Client,
    /// The embedded chain itself, when the server runs on one (its clock
    /// can be moved ahead).
    pub embedded_chain: Option<Arc<sync_server::chain::embedded::EmbeddedChain>>,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A connection of the test's own to the server's database, for looking at
/// rows no API shows (the server's pool is private to its store).
pub async fn raw_pool(state: &AppState) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&state.config.database_url)
        .await
        .unwrap()
}

/// A fresh PostgreSQL database for one test, on the server named by
/// TEST_POSTGRES_URL (default: the local server, user postgres).
pub async fn postgres_database() -> String {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is needed for this test at {admin_url} (set TEST_POSTGRES_URL; scripts/test.sh starts one): {e}")
        });
    let name = format!("gate_test_{}", Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub async fn start(db: Db) -> TestServer {
    start_full(db, None, |_| {}, |_| axum::Router::new()).await
}

/// Where a chained test server's chain lives.
pub enum ChainMode {
    /// The embedded chain, used directly.
    Embedded,
    /// The embedded chain behind its JSON-RPC face, reached through the real
    /// Solana RPC client, with these faults injected.
    Rpc(sync_server::chain::rpc_service::Faults),
}

/// A server whose chain runs the real program; the chain file lives in the
/// server's directory.
pub async fn start_on_chain(db: Db, mode: ChainMode) -> TestServer {
    start_full(db, Some(mode), |_| {}, |_| axum::Router::new()).await
}

/// [`start_on_chain`] with `configure` applied to the test config.
pub async fn start_on_chain_with(
    db: Db,
    mode: ChainMode,
    configure: impl FnOnce(&mut Config),
) -> TestServer {
    start_full(db, Some(mode), configure, |_| axum::Router::new()).await
}

/// The test's fixed issuer of QR credentials.
pub fn chain_context_keys() -> (solana_sdk::signature::Keypair, SigningKey) {
    (solana_sdk::signature::Keypair::new(), issuer())
}

async fn open_test_chain(
    dir: &std::path::Path,
    mode: ChainMode,
) -> (
    sync_server::chain::SharedChain,
    Arc<sync_server::chain::embedded::EmbeddedChain>,
) {
    use sync_server::chain::{SharedChain, embedded::EmbeddedChain, rpc::RpcChain, rpc_service};
    let chain = Arc::new(
        EmbeddedChain::open(&dir.join("chain.sqlite"))
            .await
            .unwrap(),
    );
    let embedded: SharedChain = chain.clone();
    let shared: SharedChain = match mode {
        ChainMode::Embedded => embedded,
        ChainMode::Rpc(faults) => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move {
                axum::serve(listener, rpc_service::router(embedded, faults))
                    .await
                    .unwrap();
            });
            Arc::new(
                RpcChain::new(
                    &url,
                    Arc::new(solana_sdk::signature::Keypair::new()),
                    std::time::Duration::from_secs(5),
                )
                .unwrap(),
            )
        }
    };
    (shared, chain)
}

/// A server with `configure` applied to the test config and `extra` routes
/// (a test's own handlers over the same state) beside the real ones.
pub async fn start_with(
    db: Db,
    configure: impl FnOnce(&mut Config),
    extra: impl FnOnce(AppState) -> axum::Router,
) -> TestServer {
    start_full(db, None, configure, extra).await
}

async fn start_full(
    db: Db,
    chain: Option<ChainMode>,
    configure: impl FnOnce(&mut Config),
    extra: impl FnOnce(AppState) -> axum::Router,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("sync.db").display()),
        Db::Postgres => postgres_database().await,
    };
    let mut config = Config {
        database_url,
        admin_token: ADMIN.into(),
        ..Config::default()
    };
    config.gates.max_batch = 500;
    config.api.jwt_secret = JWT_SECRET.into();
    // Every test wallet logs in from this one address; the tests of the
    // nonce limit set their own.
    config.api.rate_limits.nonce = sync_server::config::Quota {
        requests: 100_000,
        period_secs: 1,
    };
    configure(&mut config);
    let store = Store::connect(&config.database_url).await.unwrap();
    let clock = Arc::new(TestClock(AtomicI64::new(T0)));
    let rate_limiter = sync_server::adapters::ratelimit::limiter_for(&config.api)
        .await
        .unwrap();
    let mut state = AppState::new(
        store,
        config,
        SigningKey::from_bytes(&[42; 32]),
        clock.clone(),
    );
    let mut embedded_chain = None;
    if let Some(mode) = chain {
        use solana_sdk::signature::Signer;
        let (chain, embedded) = open_test_chain(dir.path(), mode).await;
        embedded_chain = Some(embedded);
        let (authority, issuer) = chain_context_keys();
        sync_server::chain::ops::ensure_funded(
            chain.as_ref(),
            None,
            &authority.pubkey(),
            1_000_000_000,
            100_000_000_000,
        )
        .await
        .unwrap();
        state = state.with_chain(sync_server::services::organizer::ChainContext {
            chain,
            authority,
            issuer,
        });
    }
    state.rate_limiter = rate_limiter;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let serving = state.clone();
    // The test's own routes first; everything else is the real app with
    // its own layers (its JSON refusals of unknown routes included).
    let router = extra(serving.clone()).fallback_service(sync_server::app(serving));
    let connections = state.config.connections.clone();
    tokio::spawn(async move {
        sync_server::http::connections::serve(router, listener, connections, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestServer {
        url,
        state,
        clock,
        http: reqwest::Client::new(),
        embedded_chain,
        _dir: dir,
        shutdown: Some(tx),
    }
}

pub fn issuer() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

pub fn wallet(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn event() -> CachedEvent {
    CachedEvent {
        event_id: EVENT,
        name: "Harbour Lights".into(),
        status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: T0 - 3600,
            closes_at: T0 + 6 * 3600,
        },
        issuer_keys: vec![PublicKeyBytes::from(&issuer().verifying_key())],
        tiers: vec![
            TierInfo {
                index: 0,
                name: "general".into(),
            },
            TierInfo {
                index: 1,
                name: "vip".into(),
            },
        ],
        reentry: ReentryPolicy::Forbidden,
        unknown_tickets: UnknownTicketPolicy::AdmitIfSigned,
        holder_proof: HolderProofPolicy::NotRequired,
        tier_gates: vec![],
        ends_at: T0 + 6 * 3600,
        end_grace_secs: 0,
        undo_window_secs: 0,
    }
}

pub fn ticket(id: u32) -> CachedTicket {
    CachedTicket {
        event_id: EVENT,
        ticket_id: id,
        tier: 0,
        owner: PublicKeyBytes::from(&wallet(id as u8).verifying_key()),
        generation: 0,
        status: TicketStatus::Active,
    }
}

impl TestServer {
    /// The server's own directory (database, chain file).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Ticket accounts of the test event as the server's chain has them.
    pub async fn chain_tickets(&self, ids: &[u32]) -> Vec<Option<ticketing::client::Ticket>> {
        self.chain_tickets_of(EVENT, ids).await
    }

    /// Ticket accounts of `event_id` as the chain has them.
    pub async fn chain_tickets_of(
        &self,
        event_id: u64,
        ids: &[u32],
    ) -> Vec<Option<ticketing::client::Ticket>> {
        use solana_sdk::signature::Signer;
        let ctx = self.state.chain.as_ref().expect("a chained server");
        let event = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
        sync_server::chain::ops::tickets(ctx.chain.as_ref(), &event, ids)
            .await
            .unwrap()
    }

    /// The event account of `event_id`, which must exist.
    pub async fn chain_event(&self, event_id: u64) -> ticketing::client::Event {
        use solana_sdk::signature::Signer;
        let ctx = self.state.chain.as_ref().expect("a chained server");
        sync_server::chain::ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
            .await
            .unwrap()
            .expect("the event is on chain")
    }

    /// One ticket account of `event_id`, which must exist.
    pub async fn chain_ticket(&self, event_id: u64, id: u32) -> ticketing::client::Ticket {
        self.chain_tickets_of(event_id, &[id])
            .await
            .pop()
            .flatten()
            .expect("the ticket is on chain")
    }

    /// The event created on chain (doors open around T0), `n` tickets minted
    /// to the wallets `wallet(1..=n)` (ticket ids 0..n), and the three gates
    /// of [`TestServer::seed`]. Returns the minted tickets.
    pub async fn seed_on_chain(
        &self,
        n: u32,
    ) -> Vec<sync_server::services::organizer::IssuedTicket> {
        use sync_server::services::minting::{self, MintKind, MintOrder, MintOutcome};
        use sync_server::services::organizer::{NewEvent, NewTier, create_event};
        create_event(
            &self.state,
            &NewEvent {
                event_id: EVENT,
                name: "Harbour Lights".into(),
                venue: "Pier 4".into(),
                starts_at: T0,
                ends_at: T0 + 6 * 3600,
                doors_open_at: T0 - 3600,
                doors_close_at: T0 + 6 * 3600,
                capacity: 1000,
                tiers: vec![NewTier {
                    name: "general".into(),
                    price_lamports: 0,
                    supply: 1000,
                }],
                reentry: ReentryPolicy::Forbidden,
                transferable: true,
                nft: sync_server::services::organizer::NftStandard::SplToken,
                unknown_tickets: UnknownTicketPolicy::Reject,
                holder_proof: HolderProofPolicy::NotRequired,
                tier_gates: vec![],
                end_grace_secs: 0,
                undo_window_secs: 0,
            },
        )
        .await
        .unwrap();
        let recipients: Vec<_> = (1..=n)
            .map(|i| {
                (
                    solana_sdk::pubkey::Pubkey::new_from_array(
                        wallet(i as u8).verifying_key().to_bytes(),
                    ),
                    0u8,
                )
            })
            .collect();
        let order = MintOrder {
            event_id: EVENT,
            caller: minting::ADMIN_CALLER,
            kind: MintKind::Admin,
            idempotency_key: None,
            recipients: &recipients,
        };
        let MintOutcome::Completed(_, issued) = minting::mint(&self.state, &order).await.unwrap()
        else {
            panic!("the seed mint did not complete");
        };
        self.put_gates().await;
        issued
    }

    async fn put_gates(&self) {
        for (number, name, direction) in [
            (1, "north", "entry"),
            (2, "south", "entry"),
            (3, "exit", "exit"),
        ] {
            let r = self
                .http
                .put(format!("{}/api/admin/events/{EVENT}/gates", self.url))
                .bearer_auth(ADMIN)
                .json(
                    &serde_json::json!({ "number": number, "name": name, "direction": direction }),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    }

    /// An event with tickets 1..=n and gates 1 ("north", entry), 2 ("south", entry), 3 ("exit", exit).
    pub async fn seed(&self, n: u32) {
        self.state
            .publish_event(&event(), &PublicKeyBytes([7; 32]))
            .await
            .unwrap();
        let tickets: Vec<_> = (1..=n).map(ticket).collect();
        self.state.publish_tickets(&tickets).await.unwrap();
        for (number, name, direction) in [
            (1, "north", "entry"),
            (2, "south", "entry"),
            (3, "exit", "exit"),
        ] {
            let r = self
                .http
                .put(format!("{}/api/admin/events/{EVENT}/gates", self.url))
                .bearer_auth(ADMIN)
                .json(
                    &serde_json::json!({ "number": number, "name": name, "direction": direction }),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }
    }

    pub async fn enrol_token(&self, gate: &str) -> String {
        let r = self
            .http
            .post(format!(
                "{}/api/admin/events/{EVENT}/enrol-tokens",
                self.url
            ))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({ "gate": gate }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn enrol(&self, gate: &str, key_seed: u8) -> Gate {
        let token = self.enrol_token(gate).await;
        let key = SigningKey::from_bytes(&[key_seed; 32]);
        let r = self
            .http
            .post(format!("{}/gate/v1/enrol", self.url))
            .json(&enrol_request(&token, &key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let response: EnrolResponse = r.json().await.unwrap();
        Gate {
            server: self.url.clone(),
            http: self.http.clone(),
            key,
            response,
            clock: self.clock.clone(),
        }
    }

    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

pub fn enrol_request(token: &str, key: &SigningKey) -> EnrolRequest {
    EnrolRequest {
        v: PROTOCOL_VERSION,
        token: token.into(),
        device_key: PublicKeyBytes::from(&key.verifying_key()),
        agent_version: "test".into(),
        hostname: None,
    }
}

/// An enrolled gate device.
pub struct Gate {
    pub server: String,
    pub http: reqwest::Client,
    pub key: SigningKey,
    pub response: EnrolResponse,
    pub clock: Arc<TestClock>,
}

pub struct Signed {
    pub device: String,
    pub timestamp: i64,
    pub nonce: String,
    pub signature: String,
}

impl Gate {
    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> Signed {
        self.sign_at(method, path, body, self.clock.now())
    }

    /// [`Gate::sign`] as a box whose clock reads `timestamp`.
    pub fn sign_at(&self, method: &str, path: &str, body: &[u8], timestamp: i64) -> Signed {
        let nonce = Uuid::now_v7().simple().to_string();
        let message = device_request_message(method, path, timestamp, &nonce, body);
        Signed {
            device: self.response.device_id.to_string(),
            timestamp,
            nonce,
            signature: bs58::encode(self.key.sign(&message).to_bytes()).into_string(),
        }
    }

    /// Sends a signed request as an agent of this build (reading caches of
    /// [`PROTOCOL_VERSION`]).
    pub async fn send_signed(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        signed: &Signed,
    ) -> reqwest::Response {
        let version = PROTOCOL_VERSION.to_string();
        self.send_signed_as(method, path, body, signed, Some(&version))
            .await
    }

    /// [`Gate::send_signed`] with `protocol` in the cache version header,
    /// or none (as agents before the header).
    pub async fn send_signed_as(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        signed: &Signed,
        protocol: Option<&str>,
    ) -> reqwest::Response {
        let url = format!("{}{path}", self.server);
        let mut req = if method == "GET" {
            self.http.get(url)
        } else {
            self.http.post(url)
        };
        if let Some(protocol) = protocol {
            req = req.header(HEADER_PROTOCOL, protocol);
        }
        req.header(HEADER_DEVICE_ID, &signed.device)
            .header(HEADER_TIMESTAMP, signed.timestamp.to_string())
            .header(HEADER_NONCE, &signed.nonce)
            .header(HEADER_SIGNATURE, &signed.signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn request(&self, method: &str, path: &str, body: Vec<u8>) -> reqwest::Response {
        let signed = self.sign(method, path, &body);
        self.send_signed(method, path, body, &signed).await
    }

    pub async fn snapshot(&self) -> CacheSnapshot {
        let r = self.request("GET", "/gate/v1/snapshot", vec![]).await;
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap();
        SignedPayload::from_file_bytes(&bytes)
            .unwrap()
            .open(Some(&self.response.server_key))
            .unwrap()
    }

    pub async fn delta(&self, cursor: u64, wait: u32) -> CacheDelta {
        let r = self
            .request(
                "GET",
                &format!("/gate/v1/delta?cursor={cursor}&wait={wait}"),
                vec![],
            )
            .await;
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap();
        SignedPayload::from_file_bytes(&bytes)
            .unwrap()
            .open(Some(&self.response.server_key))
            .unwrap()
    }

    pub fn batch(&self, scans: Vec<ScanRecord>) -> Vec<u8> {
        serde_json::to_vec(&JournalBatch {
            v: PROTOCOL_VERSION,
            device_id: self.response.device_id,
            scans,
        })
        .unwrap()
    }

    pub async fn upload(&self, scans: Vec<ScanRecord>) -> reqwest::Response {
        self.request("POST", "/gate/v1/journal", self.batch(scans))
            .await
    }

    /// A gate-opening admission (or exit) of `ticket` at `at_ms`.
    pub fn scan(&self, ticket: u32, at_ms: i64) -> ScanRecord {
        let exit = self.response.gate.direction == Direction::Exit;
        ScanRecord {
            scan_id: Uuid::now_v7(),
            gate: self.response.gate.number,
            direction: self.response.gate.direction,
            scanned_at_ms: at_ms,
            source: "serial:/dev/ttyACM0".into(),
            event_id: Some(EVENT),
            ticket_id: Some(ticket),
            generation: Some(0),
            tier: Some(0),
            outcome: if exit { "exit_recorded" } else { "admitted" }.into(),
            opened: true,
            voids: None,
        }
    }
}

/// Runs each named async test body (a `fn(Db)` in the invoking module) once
/// per backend, as `sqlite::NAME` and `postgres::NAME`.
/// Logs `key` in at the server at `url` (granting `role` first with the
/// admin token) and returns its session token.
pub async fn login(url: &str, key: &SigningKey, role: Option<&str>) -> String {
    let http = reqwest::Client::new();
    if let Some(role) = role {
        let r = http
            .put(format!("{url}/api/admin/wallets/{}/role", address(key)))
            .bearer_auth(ADMIN)
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "granting {role}");
    }
    let nonce: Value = http
        .post(format!("{url}/api/auth/nonce"))
        .json(&json!({ "wallet": address(key) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = nonce["message"].as_str().unwrap();
    let signature = bs58::encode(key.sign(message.as_bytes()).to_bytes()).into_string();
    let r = http
        .post(format!("{url}/api/auth/verify"))
        .json(&json!({ "wallet": address(key), "signature": signature }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// The wallet address (base58) of a test key.
pub fn address(key: &SigningKey) -> String {
    PublicKeyBytes::from(&key.verifying_key()).to_base58()
}

/// Calls of the ticketing API as a wallet would make them.
impl TestServer {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    pub async fn login_as(&self, key: &SigningKey, role: Option<&str>) -> String {
        login(&self.url, key, role).await
    }
}

#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Db::Postgres).await })*
        }
    };
}
