//! The whole system in one process: a real sync server (HTTP on a real port,
//! SQLite or PostgreSQL, the embedded chain running the real program, the
//! replay worker), real gate agents (each on its own thread and runtime, with
//! its own SQLite journal, fed codes decoded from real QR images), and a
//! switch in the network between a gate and the server.
//!
//! Used by the demo (`cargo run --release -p end-to-end --bin demo`) and the
//! system tests. Everything is synchronous on the outside: the server owns a
//! tokio runtime, each gate owns another.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gate_agent::store::{JournalEntry, Store as GateStore};
use serde_json::Value;
use shared::{Presence, TicketState, TicketStatus};
use tokio::sync::{Mutex, oneshot};

pub mod browser;
pub mod buyer;
pub mod organizer;

/// The admin token the harness configures.
pub const ADMIN: &str = "end-to-end-admin-token";

/// A running sync server.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub state: sync_server::AppState,
    pub url: String,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    http: reqwest::Client,
    stop: Option<(
        oneshot::Sender<()>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
}

/// The server's configuration over `dir` (keys, chain file, SQLite unless
/// `database_url` is given).
pub fn server_config(dir: &Path, database_url: Option<String>) -> sync_server::Config {
    let mut config = sync_server::Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("sync.db").display())),
        server_key_file: dir.join("server-key"),
        admin_token: ADMIN.into(),
        ..sync_server::Config::default()
    };
    config.chain.embedded_file = dir.join("chain.sqlite");
    config.chain.authority_key_file = dir.join("chain-authority.json");
    config.chain.issuer_key_file = dir.join("issuer-key");
    config.replay.idle_ms = 200;
    config.gates.max_wait_secs = 5;
    config
}

impl Server {
    /// Starts a server over `dir` (a database there unless `database_url`).
    pub fn start(dir: &Path, database_url: Option<String>) -> anyhow::Result<Self> {
        Self::start_with(dir, database_url, |_| {})
    }

    /// Like [`Server::start`], with `configure` applied to the configuration.
    pub fn start_with(
        dir: &Path,
        database_url: Option<String>,
        configure: impl FnOnce(&mut sync_server::Config),
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut config = server_config(dir, database_url);
        configure(&mut config);
        let (state, listener) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let state = sync_server::open_state(config).await?;
            anyhow::Ok((state, listener))
        })?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        let serving = state.clone();
        let task = rt.spawn(async move {
            sync_server::run_state(serving, listener, async {
                let _ = rx.await;
            })
            .await
        });
        Ok(Self {
            rt,
            state,
            url: format!("http://{addr}"),
            addr,
            dir: dir.to_owned(),
            http: reqwest::Client::new(),
            stop: Some((tx, task)),
        })
    }

    /// A session token of `key`'s wallet through the API's nonce login.
    pub fn api_login(&self, key: &ed25519_dalek::SigningKey) -> anyhow::Result<String> {
        use ed25519_dalek::Signer as _;
        let wallet = bs58::encode(key.verifying_key().to_bytes()).into_string();
        self.rt.block_on(async {
            let challenge: Value = self
                .http
                .post(format!("{}/api/auth/nonce", self.url))
                .json(&serde_json::json!({ "wallet": wallet }))
                .send()
                .await?
                .json()
                .await?;
            let message = challenge["message"].as_str().context("no login message")?;
            let signature = key.sign(message.as_bytes());
            let session: Value = self
                .http
                .post(format!("{}/api/auth/verify", self.url))
                .json(&serde_json::json!({
                    "wallet": wallet,
                    "signature": bs58::encode(signature.to_bytes()).into_string()
                }))
                .send()
                .await?
                .json()
                .await?;
            Ok(session["token"]
                .as_str()
                .with_context(|| format!("no session token: {session}"))?
                .to_owned())
        })
    }

    /// Like [`Server::start_with`], on an embedded chain opened here and
    /// returned, so a test can move the chain's clock past an event's end
    /// (`EmbeddedChain::advance_clock`) instead of waiting for it.
    pub fn start_with_chain_clock(
        dir: &Path,
        configure: impl FnOnce(&mut sync_server::Config),
    ) -> anyhow::Result<(Self, Arc<sync_server::chain::embedded::EmbeddedChain>)> {
        std::fs::create_dir_all(dir)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut config = server_config(dir, None);
        configure(&mut config);
        let chain_file = config.chain.embedded_file.clone();
        // The state opens a chain of its own at a scratch file; it is
        // replaced by the one opened here, with the same keys.
        config.chain.embedded_file = dir.join("scratch-chain.sqlite");
        let (state, listener, embedded) = rt.block_on(async {
            use solana_sdk::signature::Signer;
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let state = sync_server::open_state(config).await?;
            let embedded =
                Arc::new(sync_server::chain::embedded::EmbeddedChain::open(&chain_file).await?);
            let ctx = state.chain.as_ref().context("no chain")?;
            let replaced = sync_server::services::organizer::ChainContext {
                chain: embedded.clone(),
                authority: ctx.authority.insecure_clone(),
                issuer: ctx.issuer.clone(),
            };
            sync_server::chain::ops::ensure_funded(
                embedded.as_ref(),
                None,
                &replaced.authority.pubkey(),
                1_000_000_000,
                100_000_000_000,
            )
            .await?;
            let state = state.with_chain(replaced);
            anyhow::Ok((state, listener, embedded))
        })?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel();
        let serving = state.clone();
        let task = rt.spawn(async move {
            sync_server::run_state(serving, listener, async {
                let _ = rx.await;
            })
            .await
        });
        Ok((
            Self {
                rt,
                state,
                url: format!("http://{addr}"),
                addr,
                dir: dir.to_owned(),
                http: reqwest::Client::new(),
                stop: Some((tx, task)),
            },
            embedded,
        ))
    }

    /// An admin request; returns the status and the JSON body (or null).
    pub fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.url);
        self.rt.block_on(async {
            let mut request = self.http.request(method, url).bearer_auth(ADMIN);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await?;
            let json = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            Ok((status, json))
        })
    }

    /// An admin request that must succeed with `expect`.
    pub fn admin_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let (status, json) = self.admin(method.clone(), path, body)?;
        if status != expect {
            bail!("{method} {path}: {status} {json}");
        }
        Ok(json)
    }

    /// A one-time enrolment token for `gate` of `event`.
    pub fn enrol_token(&self, event: u64, gate: &str) -> anyhow::Result<String> {
        let json = self.admin_ok(
            reqwest::Method::POST,
            &format!("/api/admin/events/{event}/enrol-tokens"),
            Some(serde_json::json!({ "gate": gate })),
            201,
        )?;
        json["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the answer")
    }

    /// Runs the replay worker until `event`'s scans are all settled.
    pub fn drain_replay(&self, event: u64) -> anyhow::Result<sync_server::store::ReplaySummary> {
        Ok(self.rt.block_on(sync_server::services::replay::drain(
            &self.state,
            event,
            Duration::from_secs(120),
        ))?)
    }

    /// Ticket accounts of `event` on the server's chain.
    pub fn chain_tickets(
        &self,
        event: u64,
        ids: &[u32],
    ) -> anyhow::Result<Vec<Option<ticketing::client::Ticket>>> {
        use solana_sdk::signature::Signer;
        let ctx = self.state.chain.as_ref().context("no chain")?;
        let address = ticketing::client::event_address(&ctx.authority.pubkey(), event).0;
        Ok(self.rt.block_on(sync_server::chain::ops::tickets(
            ctx.chain.as_ref(),
            &address,
            ids,
        ))?)
    }

    /// Stops serving (gracefully) and returns the runtime's leftovers.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if let Some((tx, task)) = self.stop.take() {
            let _ = tx.send(());
            self.rt.block_on(task)??;
        }
        Ok(())
    }
}

/// A TCP relay between a gate and the server that can be cut (every open
/// connection dropped, new ones refused) and restored: the gate's network
/// cable.
pub struct NetSwitch {
    pub url: String,
    on: Arc<AtomicBool>,
    connections: Arc<Mutex<tokio::task::JoinSet<()>>>,
    handle: tokio::runtime::Handle,
}

impl NetSwitch {
    /// A relay to `upstream`, running on `rt`.
    pub fn start(rt: &tokio::runtime::Runtime, upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        let on = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let (on2, connections2) = (on.clone(), connections.clone());
        rt.spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !on2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                connections2.lock().await.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(Self {
            url,
            on,
            connections,
            handle: rt.handle().clone(),
        })
    }

    /// Unplugs: open connections die, new ones are refused.
    pub fn cut(&self) {
        self.on.store(false, Ordering::SeqCst);
        let connections = self.connections.clone();
        self.handle.block_on(async move {
            connections.lock().await.abort_all();
        });
    }

    pub fn restore(&self) {
        self.on.store(true, Ordering::SeqCst);
    }
}

/// A running gate agent fed by hand (the codes come from QR images).
pub struct GateBox {
    pub name: String,
    pub db: PathBuf,
    pub status_addr: SocketAddr,
    feed: std::sync::mpsc::Sender<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The agent configuration the harness uses for a gate whose files live in `dir`.
pub fn gate_config(dir: &Path) -> gate_agent::Config {
    let mut config = gate_agent::Config::default();
    config.store.path = dir.join("gate.db");
    config.sync.poll_wait_secs = 5;
    config.sync.request_timeout_secs = 3;
    config.sync.max_backoff_secs = 1;
    config
}

/// An input the harness feeds codes through.
struct FeedInput {
    name: String,
    rx: std::sync::mpsc::Receiver<String>,
}

impl gate_agent::Input for FeedInput {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start(
        self: Box<Self>,
        ctx: gate_agent::InputContext,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || {
                let source: Arc<str> = Arc::from(self.name.as_str());
                ctx.board.set_input(&self.name, "reading");
                while !ctx.stop.is_triggered() {
                    if let Ok(text) = self.rx.recv_timeout(Duration::from_millis(20)) {
                        let _ = ctx.scans.send(gate_agent::Scan {
                            source: source.clone(),
                            text,
                        });
                    }
                }
            })
    }
}

impl GateBox {
    /// Enrols a new gate box in `dir` with `token` at `server_url` (what
    /// `gate-agent enrol` does).
    pub fn enrol(dir: &Path, server_url: &str, token: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let config = gate_config(dir);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(gate_agent::enrolment::enrol(&config, server_url, token))?;
        Ok(())
    }

    /// Starts the enrolled gate in `dir`.
    pub fn start(dir: &Path, name: &str) -> anyhow::Result<Self> {
        let config = gate_config(dir);
        let db = config.store.path.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let status_addr = listener.local_addr()?;
        let (feed, rx) = std::sync::mpsc::channel();
        let input: Box<dyn gate_agent::Input> = Box::new(FeedInput {
            name: format!("scanner:{name}"),
            rx,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("gate-{name}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "gate runtime");
                        return;
                    }
                };
                let options = gate_agent::RunOptions {
                    status_listener: Some(listener),
                    ..gate_agent::RunOptions::default()
                };
                let result = rt.block_on(gate_agent::run_with(
                    config,
                    vec![input],
                    Box::new(gate_agent::RecordingOutputs::new()),
                    async {
                        let _ = stopped.await;
                    },
                    options,
                ));
                if let Err(e) = result {
                    tracing::error!(error = %e, "gate agent stopped");
                }
            })?;
        Ok(Self {
            name: name.to_owned(),
            db,
            status_addr,
            feed,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn journal(&self) -> anyhow::Result<Vec<JournalEntry>> {
        Ok(GateStore::open(&self.db)?.journal(None)?)
    }

    /// Presents `code` to the gate's scanner and returns the journal entry
    /// of the verdict.
    pub fn scan(&self, code: &str) -> anyhow::Result<JournalEntry> {
        let before = self.journal()?.len();
        self.feed
            .send(code.to_owned())
            .map_err(|_| anyhow::anyhow!("gate {} is not running", self.name))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let journal = self.journal()?;
            if journal.len() > before {
                return journal
                    .into_iter()
                    .last()
                    .context("journal emptied under us");
            }
            if Instant::now() > deadline {
                bail!("gate {} gave no verdict within 10 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The gate's `/api/status` document.
    pub fn status(&self) -> anyhow::Result<Value> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.status_addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /api/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw)?;
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok(serde_json::from_str(body)?)
    }

    /// What the gate's cache says of a ticket.
    pub fn ticket(&self, event: u64, ticket: u32) -> anyhow::Result<Option<TicketState>> {
        Ok(GateStore::open(&self.db)?.ticket_state(event, ticket)?)
    }

    /// Waits until `check` holds for the gate's status, up to `timeout`.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Duration> {
        wait(what, timeout, || Ok(check(&self.status()?)))
    }

    /// Waits until the gate's cache shows `ticket` as `check` wants it.
    pub fn wait_ticket(
        &self,
        event: u64,
        ticket: u32,
        what: &str,
        timeout: Duration,
        check: impl Fn(&TicketState) -> bool,
    ) -> anyhow::Result<Duration> {
        wait(what, timeout, || {
            Ok(self.ticket(event, ticket)?.as_ref().is_some_and(&check))
        })
    }

    /// Waits until this gate's cache holds every one of `tickets`.
    pub fn wait_tickets_known(&self, event: u64, tickets: &[u32]) -> anyhow::Result<()> {
        for ticket in tickets {
            self.wait_ticket(
                event,
                *ticket,
                "the gate knows the ticket",
                Duration::from_secs(30),
                |_| true,
            )?;
        }
        Ok(())
    }

    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GateBox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `check` every 25 ms until it holds; returns how long that took.
pub fn wait(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether the holder counts as inside.
pub fn is_inside(state: &TicketState) -> bool {
    matches!(state.presence, Presence::Inside { .. })
}

pub fn is_revoked(state: &TicketState) -> bool {
    matches!(state.status, TicketStatus::Revoked | TicketStatus::Refunded)
}

/// Renders `text` as a QR code PNG (error correction M, 6-pixel modules).
pub fn write_qr_png(text: &str, path: &Path) -> anyhow::Result<()> {
    use image::{GrayImage, Luma};
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    let image: GrayImage = code
        .render::<Luma<u8>>()
        .module_dimensions(6, 6)
        .quiet_zone(true)
        .build();
    image
        .save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the code in a QR image the way the gate's camera path does.
pub fn read_qr_png(path: &Path) -> anyhow::Result<String> {
    let frame = gate_agent::qr::load_frame(path)?;
    gate_agent::qr::decode_frame(&frame, true)
        .into_iter()
        .next()
        .with_context(|| format!("no QR code found in {}", path.display()))
}

/// A fresh PostgreSQL database on the server named by `TEST_POSTGRES_URL`
/// (default: the local server, user postgres).
pub fn postgres_database(rt: &tokio::runtime::Runtime) -> anyhow::Result<String> {
    let admin_url = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let name = format!("gate_test_{}", uuid::Uuid::now_v7().simple());
    rt.block_on(async {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .with_context(|| {
                format!("PostgreSQL is needed at {admin_url} (set TEST_POSTGRES_URL; scripts/test.sh starts one)")
            })?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        anyhow::Ok(())
    })?;
    let (base, _) = admin_url
        .rsplit_once('/')
        .context("TEST_POSTGRES_URL has no database part")?;
    Ok(format!("{base}/{name}"))
}
