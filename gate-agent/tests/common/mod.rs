//! Test fixtures: an event with its issuer key, a signed cache file, ticket
//! codes (valid, forged, stale), and helpers for pseudo-terminal scanners.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use shared::wire::{
    CacheSnapshot, CachedEvent, CachedTicket, PROTOCOL_VERSION, SignedPayload, TierInfo,
};
use shared::{
    Credential, CredentialBody, DoorsWindow, EventStatus, HolderProofPolicy, PublicKeyBytes,
    ReentryPolicy, TicketStatus, UnknownTicketPolicy,
};

pub const EVENT: u64 = 42;
pub const OTHER_EVENT: u64 = 99;
/// Doors open at this time (Unix seconds); tests run the clock inside the window.
pub const DOORS_OPEN: i64 = 1_900_000_000;
pub const DURING_DOORS_MS: i64 = (DOORS_OPEN + 600) * 1000;

pub struct Venue {
    pub issuer: SigningKey,
    pub other_issuer: SigningKey,
    pub forger: SigningKey,
    pub server: SigningKey,
}

pub fn owner(ticket: u32) -> SigningKey {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&ticket.to_le_bytes());
    SigningKey::from_bytes(&seed)
}

pub fn public(key: &SigningKey) -> PublicKeyBytes {
    PublicKeyBytes::from(&key.verifying_key())
}

impl Venue {
    pub fn new() -> Self {
        Self {
            issuer: SigningKey::from_bytes(&[1; 32]),
            other_issuer: SigningKey::from_bytes(&[2; 32]),
            forger: SigningKey::from_bytes(&[3; 32]),
            server: SigningKey::from_bytes(&[4; 32]),
        }
    }

    pub fn event(&self) -> CachedEvent {
        CachedEvent {
            event_id: EVENT,
            name: "Harbour Lights Festival".into(),
            status: EventStatus::Active,
            doors: DoorsWindow {
                opens_at: DOORS_OPEN,
                closes_at: DOORS_OPEN + 12 * 3600,
            },
            issuer_keys: vec![public(&self.issuer)],
            tiers: vec![
                TierInfo {
                    index: 0,
                    name: "General".into(),
                },
                TierInfo {
                    index: 1,
                    name: "VIP".into(),
                },
            ],
            reentry: ReentryPolicy::Forbidden,
            unknown_tickets: UnknownTicketPolicy::Reject,
            holder_proof: HolderProofPolicy::NotRequired,
            tier_gates: vec![],
            ends_at: DOORS_OPEN + 12 * 3600,
            end_grace_secs: 0,
            undo_window_secs: 0,
        }
    }

    /// Tickets 1..=n of the event; ticket 2 was transferred once (generation 2).
    pub fn snapshot(&self, n: u32) -> CacheSnapshot {
        let tickets = (1..=n)
            .map(|t| CachedTicket {
                event_id: EVENT,
                ticket_id: t,
                tier: (t % 2) as u8,
                owner: public(&owner(t)),
                generation: if t == 2 { 2 } else { 1 },
                status: TicketStatus::Active,
            })
            .collect();
        CacheSnapshot {
            v: PROTOCOL_VERSION,
            cursor: 7,
            generated_at: DOORS_OPEN,
            events: vec![self.event()],
            tickets,
            presence: vec![],
            undone: vec![],
        }
    }

    /// Like [`Venue::snapshot`] with doors open around the real current time
    /// (for tests that run the agent binary on the system clock).
    pub fn snapshot_open_now(&self, n: u32) -> CacheSnapshot {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut s = self.snapshot(n);
        s.events[0].doors = DoorsWindow {
            opens_at: now - 3600,
            closes_at: now + 24 * 3600,
        };
        s.generated_at = now;
        s
    }

    pub fn write_cache_file(&self, dir: &Path, snapshot: &CacheSnapshot) -> PathBuf {
        let path = dir.join("cache.bin");
        std::fs::write(
            &path,
            SignedPayload::sign(snapshot, &self.server).to_file_bytes(),
        )
        .unwrap();
        path
    }

    /// The current, valid code of a ticket.
    pub fn code(&self, ticket: u32) -> String {
        self.code_with(ticket, if ticket == 2 { 2 } else { 1 }, &self.issuer, EVENT)
    }

    pub fn code_with(
        &self,
        ticket: u32,
        generation: u32,
        issuer: &SigningKey,
        event_id: u64,
    ) -> String {
        let body = CredentialBody {
            event_id,
            ticket_id: ticket,
            tier: (ticket % 2) as u8,
            owner: public(&owner(ticket)),
            generation,
        };
        Credential::issue(body, issuer).encode()
    }

    pub fn forged_code(&self, ticket: u32) -> String {
        self.code_with(ticket, 1, &self.forger, EVENT)
    }

    /// Ticket 2's code from before its transfer.
    pub fn stale_code(&self) -> String {
        self.code_with(2, 1, &self.issuer, EVENT)
    }

    pub fn wrong_event_code(&self) -> String {
        self.code_with(5, 1, &self.other_issuer, OTHER_EVENT)
    }
}

/// Two linked pseudo-terminals made by socat: the agent opens `scanner`, the
/// test writes to `host` as if it were the scanner.
pub struct PtyPair {
    pub scanner: PathBuf,
    pub host: PathBuf,
    child: Child,
}

pub fn require_socat() {
    let found = Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "these tests need socat (Debian/Ubuntu: apt-get install -y socat)"
    );
}

impl PtyPair {
    pub fn new(dir: &Path) -> Self {
        require_socat();
        let scanner = dir.join("scanner-tty");
        let host = dir.join("host-tty");
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", scanner.display()))
            .arg(format!("pty,raw,echo=0,link={}", host.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat starts");
        wait_for(
            || scanner.exists() && host.exists(),
            "socat to create its ptys",
        );
        Self {
            scanner,
            host,
            child,
        }
    }

    pub fn send(&self, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.host)
            .unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
    }

    /// Simulates unplugging the scanner: the pty disappears.
    pub fn unplug(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        wait_for(|| !self.scanner.exists(), "socat to remove its links");
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a condition that the system under test makes true. The limit only
/// keeps a broken test from hanging; it is not a performance assertion.
pub fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gate-agent"))
}

/// An input the test feeds by hand.
pub struct ChannelInput {
    pub name: String,
    pub rx: std::sync::mpsc::Receiver<String>,
}

pub fn channel_input(name: &str) -> (std::sync::mpsc::Sender<String>, Box<dyn gate_agent::Input>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (
        tx,
        Box::new(ChannelInput {
            name: name.to_owned(),
            rx,
        }),
    )
}

impl gate_agent::Input for ChannelInput {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn start(
        self: Box<Self>,
        ctx: gate_agent::InputContext,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().spawn(move || {
            let source: std::sync::Arc<str> = std::sync::Arc::from(self.name.as_str());
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

/// A turnstile passage sensor the test turns by sending `()`.
pub struct ChannelPassage {
    rx: std::sync::mpsc::Receiver<()>,
}

pub fn channel_passage() -> (
    std::sync::mpsc::Sender<()>,
    Box<dyn gate_agent::passage::PassageSensor>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    (tx, Box::new(ChannelPassage { rx }))
}

impl gate_agent::passage::PassageSensor for ChannelPassage {
    fn name(&self) -> String {
        "passage:test".to_owned()
    }
    fn start(
        self: Box<Self>,
        passages: std::sync::mpsc::SyncSender<()>,
        stop: gate_agent::Stop,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().spawn(move || {
            while !stop.is_triggered() {
                if self.rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                    let _ = passages.send(());
                }
            }
        })
    }
}

/// The agent running in a background thread with its own runtime.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
    pub status_addr: Option<std::net::SocketAddr>,
}

impl Running {
    pub fn start(
        config: gate_agent::Config,
        inputs: Vec<Box<dyn gate_agent::Input>>,
        outputs: gate_agent::RecordingOutputs,
        clock: std::sync::Arc<dyn gate_agent::Clock>,
    ) -> Self {
        Self::start_with_passage(config, inputs, outputs, clock, None)
    }

    /// [`Running::start`] with a turnstile passage sensor.
    pub fn start_with_passage(
        config: gate_agent::Config,
        mut inputs: Vec<Box<dyn gate_agent::Input>>,
        outputs: gate_agent::RecordingOutputs,
        clock: std::sync::Arc<dyn gate_agent::Clock>,
        passage: Option<Box<dyn gate_agent::passage::PassageSensor>>,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listener = config
            .status
            .enabled
            .then(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let status_addr = listener.as_ref().map(|l| l.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (from_config, problems) = gate_agent::inputs_from_config(&config);
                assert!(problems.is_empty(), "{problems:?}");
                inputs.extend(from_config);
                let options = gate_agent::RunOptions {
                    clock,
                    status_listener: listener,
                    passage,
                    ..gate_agent::RunOptions::default()
                };
                gate_agent::run_with(
                    config,
                    inputs,
                    Box::new(outputs),
                    async {
                        let _ = stopped.await;
                    },
                    options,
                )
                .await
                .unwrap();
            });
        });
        Self {
            stop: Some(stop),
            handle: Some(handle),
            status_addr,
        }
    }

    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

/// Minimal HTTP/1.1 GET against the status server; returns (status line, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

pub fn import(db: &Path, venue: &Venue, snapshot: &CacheSnapshot) {
    let mut store = gate_agent::store::Store::open(db).unwrap();
    store
        .import_snapshot(snapshot, &public(&venue.server), 0)
        .unwrap();
}

pub fn journal(db: &Path) -> Vec<gate_agent::store::JournalEntry> {
    gate_agent::store::Store::open(db)
        .unwrap()
        .journal(None)
        .unwrap()
}
