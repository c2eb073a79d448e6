//! The sync task: keeps the ticket cache current from the sync server and
//! uploads the scan journal, on its own thread with its own SQLite connection,
//! so nothing here ever delays a verdict.
//!
//! - Cache: a snapshot when the store has no cursor from this server (first
//!   start, a cache from elsewhere, or a cursor the server no longer knows),
//!   then long-polled deltas, each applied in one transaction that keeps the
//!   gate's own presence records.
//! - Journal: unsent rows in batches; only the ids the server acknowledges are
//!   marked uploaded. Failures back off exponentially with jitter.
//! - Status: every request's outcome (healthy, slow, failed) goes to the
//!   hysteresis of [`crate::online`], so a poor link shows offline instead of
//!   flapping; the backlog travels in `x-gate-backlog`.
//!
//! The task shares no state with the decision loop: it tells the loop what
//! happened with [`SyncEvent`]s on a bounded channel, and the loop (which owns
//! what the status page shows and the gate policy) applies them. Sending never
//! blocks: events the loop has no room for yet wait here, merged.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use shared::UnixSeconds;
use shared::wire::{
    CacheDelta, CacheSnapshot, HEADER_BACKLOG, HEADER_DEVICE_ID, HEADER_NONCE, HEADER_PROTOCOL,
    HEADER_SIGNATURE, HEADER_TIMESTAMP, JournalAck, JournalBatch, PROTOCOL_VERSION, SignedPayload,
    device_request_message,
};
use uuid::Uuid;

use crate::config::{Config, SyncConfig};
use crate::enrolment::{Enrolment, error_body};
use crate::gate::Clock;
use crate::online::{Half, OnlineState, Outcome};
use crate::stop::Stop;
use crate::store::{Backlog, Store, StoreError};

/// Room for events the decision loop has not taken yet. The loop takes them
/// every tick and the task sends a few a second, so this fills only while the
/// loop is stuck on one scan.
pub const SYNC_EVENTS: usize = 64;

/// What the sync task tells the decision loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncEvent {
    /// The task runs: the gate is enrolled and sync is enabled.
    Started,
    /// The server answered a request, at `at` (the agent's clock), with its
    /// own time in its `Date` header `clock_skew_secs` behind ours.
    Answered {
        at: UnixSeconds,
        clock_skew_secs: Option<i64>,
    },
    /// Requests failed `times` times since the last event said so; `error`
    /// is the latest reason (a refusal or an unreadable payload included).
    Failed { error: String, times: u64 },
    /// The gate went online or offline ([`crate::online`]: after several
    /// failed or slow requests in a row, back after a healthy round trip of
    /// both the feed and the upload).
    Online(bool),
    /// The ticket cache now holds the server's as of `generated_at`, after a
    /// snapshot or a delta; `changes` is how many changes deltas brought (a
    /// snapshot counts none: it replaces the cache whole). The loop reloads
    /// its gate policy if the store's cache changed.
    CacheSynced {
        generated_at: UnixSeconds,
        changes: u64,
    },
    /// Journal rows not uploaded yet, as the store counted them (rows written
    /// after the count are not in it).
    Backlog(Backlog),
    /// Journal rows the server acknowledged and the store marked uploaded.
    Uploaded(u64),
}

impl SyncEvent {
    /// `later` folded into `self`, for one event of the same kind that says
    /// both: state is the later one's, counts add up.
    fn absorb(self, later: SyncEvent) -> SyncEvent {
        use SyncEvent as E;
        match (self, later) {
            (E::Failed { times: before, .. }, E::Failed { error, times }) => E::Failed {
                error,
                times: before.saturating_add(times),
            },
            (
                E::CacheSynced {
                    changes: before, ..
                },
                E::CacheSynced {
                    generated_at,
                    changes,
                },
            ) => E::CacheSynced {
                generated_at,
                changes: before.saturating_add(changes),
            },
            (E::Uploaded(before), E::Uploaded(n)) => E::Uploaded(before.saturating_add(n)),
            (_, later) => later,
        }
    }
}

/// Adds `event` to the events waiting for room: one per kind, merged with a
/// waiting one of its kind and moved behind the others, so whichever of
/// `Answered` and `Failed` happened last is applied last.
fn hold(held: &mut Vec<SyncEvent>, event: SyncEvent) {
    let kind = std::mem::discriminant(&event);
    let event = match held.iter().position(|e| std::mem::discriminant(e) == kind) {
        Some(i) => held.remove(i).absorb(event),
        None => event,
    };
    held.push(event);
}

/// The task's end of the channel to the decision loop.
struct Reports {
    events: SyncSender<SyncEvent>,
    /// Events the channel had no room for, oldest first.
    held: RefCell<Vec<SyncEvent>>,
}

impl Reports {
    /// Sends `event` now if there is room; otherwise it waits, merged, for
    /// [`Reports::flush`]. Never blocks: the task must not stall on a busy loop.
    fn send(&self, event: SyncEvent) {
        hold(&mut self.held.borrow_mut(), event);
        self.flush();
    }

    /// Sends what is waiting, oldest first, as far as there is room.
    fn flush(&self) {
        let mut held = self.held.borrow_mut();
        while !held.is_empty() {
            let event = held.remove(0);
            match self.events.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    held.insert(0, event);
                    return;
                }
                // The decision loop has stopped; nobody will read these.
                Err(TrySendError::Disconnected(_)) => {
                    held.clear();
                    return;
                }
            }
        }
    }

    /// Flushes now and then until the agent stops, so a held event reaches
    /// the loop soon after it made room even if nothing new happens.
    async fn run(&self, stop: &Stop) {
        while !stop.is_triggered() {
            if !self.held.borrow().is_empty() {
                self.flush();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How often an idle uploader looks for new journal rows.
const UPLOAD_IDLE: Duration = Duration::from_millis(500);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("server unreachable: {0}")]
    Unreachable(String),
    #[error("server answered {status} ({code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("server sent an unreadable {what}: {message}")]
    BadPayload { what: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts the sync thread; it reports to the decision loop on `events`. It
/// returns when `stop` is triggered.
pub fn start(
    config: &Config,
    enrolment: Enrolment,
    key: SigningKey,
    events: SyncSender<SyncEvent>,
    clock: Arc<dyn Clock>,
    stop: Stop,
) -> std::io::Result<JoinHandle<()>> {
    let settings = config.sync.clone();
    let db = config.store.path.clone();
    let server = enrolment
        .server_url(config)
        .trim_end_matches('/')
        .to_owned();
    std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "sync task cannot start");
                    return;
                }
            };
            let client = match reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(settings.request_timeout_secs))
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "sync task cannot build its HTTP client");
                    return;
                }
            };
            // The first requests may go out before the uploader's first
            // count; they report the backlog as it is, not as zero.
            let backlog = Store::open(&db)
                .and_then(|s| s.unsent_count())
                .unwrap_or_default();
            let reports = Rc::new(Reports {
                events,
                held: RefCell::default(),
            });
            let link = Rc::new(Link {
                client,
                server,
                device_id: enrolment.device_id,
                key,
                timeout: Duration::from_secs(settings.request_timeout_secs),
                backlog: Cell::new(backlog),
                slow: Duration::from_millis(settings.slow_request_ms),
                online: RefCell::new(OnlineState::new(settings.offline_after_failures)),
                clock_skew_secs: Cell::new(None),
                reports: Rc::clone(&reports),
            });
            reports.send(SyncEvent::Started);
            reports.send(SyncEvent::Online(false));
            tracing::info!(server = %link.server, device = %enrolment.device_id, "sync task started");
            // Both halves run on this one thread, so they share the link and
            // the reports without locks.
            runtime.block_on(async {
                let puller = CachePuller {
                    link: Rc::clone(&link),
                    settings: settings.clone(),
                    db: db.clone(),
                    server_key: enrolment.server_key,
                    reports: Rc::clone(&reports),
                    clock: Arc::clone(&clock),
                    stop: stop.clone(),
                };
                let uploader = JournalUploader {
                    link,
                    settings,
                    db,
                    reports: Rc::clone(&reports),
                    clock,
                    stop: stop.clone(),
                };
                tokio::join!(puller.run(), uploader.run(), reports.run(&stop));
            });
        })
}

/// Signed HTTP requests as this device.
struct Link {
    client: reqwest::Client,
    server: String,
    device_id: Uuid,
    key: SigningKey,
    timeout: Duration,
    /// Unsent journal rows, reported to the server with every request.
    backlog: Cell<u64>,
    /// An answer later than this (beyond a long poll's wait) is slow.
    slow: Duration,
    /// Whether the gate counts as online, from how requests went.
    online: RefCell<OnlineState>,
    /// Our clock minus the server's, from the `Date` of its last answer.
    clock_skew_secs: Cell<Option<i64>>,
    reports: Rc<Reports>,
}

impl Link {
    /// How a request that took `took` went for the link; `wait` is how long
    /// the server was asked to hold it (a long poll).
    fn outcome(
        &self,
        result: &Result<Vec<u8>, SyncError>,
        took: Duration,
        wait: Duration,
    ) -> Outcome {
        match result {
            Err(SyncError::Unreachable(_)) => Outcome::Failed,
            // Answered (a refusal or an unreadable payload is an answer).
            _ if took > wait + self.slow => Outcome::Slow,
            _ => Outcome::Healthy,
        }
    }

    /// Takes in how a request of `half` went; tells the decision loop when
    /// the gate went online or offline.
    fn observe(&self, half: Half, outcome: Outcome) {
        let changed = self.online.borrow_mut().record(half, outcome);
        if let Some(online) = changed {
            if online {
                tracing::info!("sync server reachable again: online");
            } else {
                tracing::warn!(?outcome, "requests keep failing or are slow: offline");
            }
            self.reports.send(SyncEvent::Online(online));
        }
    }

    /// Sends one signed request; its result and how it went for the link.
    async fn exchange(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
        wait: Duration,
    ) -> (Result<Vec<u8>, SyncError>, Outcome) {
        let started = std::time::Instant::now();
        let result = self.request(method, path_and_query, body, wait).await;
        let outcome = self.outcome(&result, started.elapsed(), wait);
        (result, outcome)
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Vec<u8>,
        extra_wait: Duration,
    ) -> Result<Vec<u8>, SyncError> {
        // The server checks this against its own clock, so it is the real
        // time, not the agent's (possibly injected) verdict clock.
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let nonce = Uuid::now_v7().simple().to_string();
        let message =
            device_request_message(method.as_str(), path_and_query, timestamp, &nonce, &body);
        let signature = bs58::encode(self.key.sign(&message).to_bytes()).into_string();
        let mut request = self
            .client
            .request(method, format!("{}{path_and_query}", self.server))
            .timeout(self.timeout + extra_wait)
            .header(HEADER_DEVICE_ID, self.device_id.to_string())
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(HEADER_NONCE, nonce)
            .header(HEADER_SIGNATURE, signature);
        request = request
            .header(HEADER_BACKLOG, self.backlog.get().to_string())
            // The cache version this agent reads; the server writes no newer.
            .header(HEADER_PROTOCOL, PROTOCOL_VERSION.to_string());
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let unreachable = |e: reqwest::Error| SyncError::Unreachable(e.to_string());
        let response = request.send().await.map_err(unreachable)?;
        if let Some(server_time) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            let here = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            self.clock_skew_secs
                .set(Some(here - server_time.as_secs() as i64));
        }
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let (code, message) = error_body(&bytes);
            return Err(SyncError::Refused {
                status: status.as_u16(),
                code,
                message,
            });
        }
        Ok(bytes.to_vec())
    }
}

/// Exponential backoff with jitter: each failure doubles the pause up to the
/// cap; the pause actually taken is random in its upper half, so gates that
/// lost the server together do not come back in lockstep.
struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    fn new(cap_secs: u64) -> Self {
        let cap = Duration::from_secs(cap_secs);
        Self {
            next: FIRST_BACKOFF.min(cap),
            cap,
        }
    }
    fn reset(&mut self) {
        self.next = FIRST_BACKOFF.min(self.cap);
    }
    fn pause(&mut self) -> Duration {
        let full = self.next;
        self.next = (self.next * 2).min(self.cap);
        let mut r = [0u8; 4];
        let fraction = if getrandom::fill(&mut r).is_ok() {
            f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX)
        } else {
            1.0
        };
        full.mul_f64(0.5 + 0.5 * fraction)
    }
}

/// Sleeps for `d` or until the agent stops; returns false when stopping.
async fn pause(stop: &Stop, d: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < deadline {
        if stop.is_triggered() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50).min(d)).await;
    }
    !stop.is_triggered()
}

/// Runs `f` unless the agent stops first.
async fn until_stopped<T>(stop: &Stop, f: impl std::future::Future<Output = T>) -> Option<T> {
    let stopped = async {
        while !stop.is_triggered() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        out = f => Some(out),
        () = stopped => None,
    }
}

fn now_secs(clock: &dyn Clock) -> i64 {
    clock.now_ms().div_euclid(1000)
}

/// Tells the decision loop how a request went.
fn report(reports: &Reports, link: &Link, clock: &dyn Clock, result: Result<(), &SyncError>) {
    reports.send(match result {
        Ok(()) => SyncEvent::Answered {
            at: now_secs(clock),
            clock_skew_secs: link.clock_skew_secs.get(),
        },
        Err(e) => SyncEvent::Failed {
            error: e.to_string(),
            times: 1,
        },
    });
}

struct CachePuller {
    link: Rc<Link>,
    settings: SyncConfig,
    db: std::path::PathBuf,
    server_key: shared::PublicKeyBytes,
    reports: Rc<Reports>,
    clock: Arc<dyn Clock>,
    stop: Stop,
}

impl CachePuller {
    async fn run(self) {
        let mut store: Option<Store> = None;
        let mut backoff = Backoff::new(self.settings.max_backoff_secs);
        while !self.stop.is_triggered() {
            if store.is_none() {
                match Store::open(&self.db) {
                    Ok(s) => store = Some(s),
                    Err(e) => {
                        tracing::error!(error = %e, "cache sync cannot open the store");
                        if !pause(&self.stop, backoff.pause()).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let Some(s) = store.as_mut() else { continue };
            match self.step(s).await {
                Some(Ok(())) => backoff.reset(),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "cache sync failed");
                    if !pause(&self.stop, backoff.pause()).await {
                        break;
                    }
                }
                None => break,
            }
        }
    }

    /// One snapshot or delta exchange. `None` when the agent is stopping.
    async fn step(&self, store: &mut Store) -> Option<Result<(), SyncError>> {
        let cursor = match self.cursor(store) {
            Ok(c) => c,
            Err(e) => return Some(Err(e.into())),
        };
        let result = match cursor {
            None => until_stopped(&self.stop, self.pull_snapshot(store)).await?,
            Some(cursor) => until_stopped(&self.stop, self.pull_delta(store, cursor)).await?,
        };
        match &result {
            Err(e @ SyncError::Store(_)) => {
                tracing::error!(error = %e, "cannot write the ticket cache");
            }
            other => report(
                &self.reports,
                &self.link,
                &*self.clock,
                other.as_ref().map(|_| ()),
            ),
        }
        Some(result)
    }

    /// The cursor to continue from, if the cache came from this server.
    fn cursor(&self, store: &Store) -> Result<Option<u64>, StoreError> {
        let signer = store.meta("signer")?.and_then(|s| s.parse().ok());
        if signer != Some(self.server_key) {
            return Ok(None);
        }
        Ok(store.meta("cursor")?.and_then(|c| c.parse().ok()))
    }

    async fn pull_snapshot(&self, store: &mut Store) -> Result<(), SyncError> {
        let (bytes, outcome) = self
            .link
            .exchange(
                reqwest::Method::GET,
                "/gate/v1/snapshot",
                Vec::new(),
                Duration::ZERO,
            )
            .await;
        self.link.observe(Half::Feed, outcome);
        let bytes = bytes?;
        let snapshot: CacheSnapshot = SignedPayload::from_file_bytes(&bytes)
            .and_then(|p| p.open(Some(&self.server_key)))
            .map_err(|e| SyncError::BadPayload {
                what: "snapshot",
                message: e.to_string(),
            })?;
        let summary = store.import_snapshot(&snapshot, &self.server_key, self.clock.now_ms())?;
        tracing::info!(
            cursor = snapshot.cursor,
            tickets = summary.tickets,
            "ticket cache loaded from the server"
        );
        self.reports.send(SyncEvent::CacheSynced {
            generated_at: snapshot.generated_at,
            changes: 0,
        });
        Ok(())
    }

    async fn pull_delta(&self, store: &mut Store, cursor: u64) -> Result<(), SyncError> {
        let wait = self.settings.poll_wait_secs;
        let (answer, outcome) = self
            .link
            .exchange(
                reqwest::Method::GET,
                &format!("/gate/v1/delta?cursor={cursor}&wait={wait}"),
                Vec::new(),
                Duration::from_secs(u64::from(wait)),
            )
            .await;
        self.link.observe(Half::Feed, outcome);
        let bytes = match answer {
            // The server no longer knows the cursor: start over from a snapshot.
            Err(SyncError::Refused { status, .. }) if status == 404 || status == 410 => {
                return self.forget_cursor(store);
            }
            other => other?,
        };
        let delta: CacheDelta = SignedPayload::from_file_bytes(&bytes)
            .and_then(|p| p.open(Some(&self.server_key)))
            .map_err(|e| SyncError::BadPayload {
                what: "delta",
                message: e.to_string(),
            })?;
        if delta.from_cursor != cursor || delta.to_cursor < cursor {
            // A server whose feed restarted (e.g. restored database).
            tracing::warn!(
                cursor,
                from = delta.from_cursor,
                to = delta.to_cursor,
                "the server's change feed does not continue ours; reloading the whole cache"
            );
            return self.forget_cursor(store);
        }
        store.apply_delta(&delta, self.clock.now_ms())?;
        if !delta.changes.is_empty() {
            tracing::info!(
                changes = delta.changes.len(),
                cursor = delta.to_cursor,
                "ticket cache updated"
            );
        }
        self.reports.send(SyncEvent::CacheSynced {
            generated_at: delta.generated_at,
            changes: delta.changes.len() as u64,
        });
        Ok(())
    }

    fn forget_cursor(&self, store: &mut Store) -> Result<(), SyncError> {
        store.set_meta(&[("signer", String::new())])?;
        Ok(())
    }
}

struct JournalUploader {
    link: Rc<Link>,
    settings: SyncConfig,
    db: std::path::PathBuf,
    reports: Rc<Reports>,
    clock: Arc<dyn Clock>,
    stop: Stop,
}

impl JournalUploader {
    async fn run(self) {
        let mut store: Option<Store> = None;
        let mut backoff = Backoff::new(self.settings.max_backoff_secs);
        while !self.stop.is_triggered() {
            if store.is_none() {
                match Store::open(&self.db) {
                    Ok(s) => store = Some(s),
                    Err(e) => {
                        tracing::error!(error = %e, "uploader cannot open the store");
                        if !pause(&self.stop, backoff.pause()).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let Some(s) = store.as_mut() else { continue };
            match until_stopped(&self.stop, self.upload_batch(s)).await {
                None => break,
                Some(Ok(0)) => {
                    backoff.reset();
                    if !pause(&self.stop, UPLOAD_IDLE).await {
                        break;
                    }
                }
                Some(Ok(_)) => backoff.reset(),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "journal upload failed");
                    if !matches!(e, SyncError::Store(_)) {
                        report(&self.reports, &self.link, &*self.clock, Err(&e));
                    }
                    if !pause(&self.stop, backoff.pause()).await {
                        break;
                    }
                }
            }
        }
    }

    /// Uploads the oldest unsent rows; returns how many were acknowledged.
    async fn upload_batch(&self, store: &mut Store) -> Result<usize, SyncError> {
        self.recount(store)?;
        let rows = store.unsent_journal(self.settings.upload_batch)?;
        if rows.is_empty() {
            self.link.observe(Half::Upload, Outcome::NothingToSend);
            return Ok(0);
        }
        let sent: Vec<Uuid> = rows.iter().map(|r| r.record.scan_id).collect();
        let batch = JournalBatch {
            v: PROTOCOL_VERSION,
            device_id: self.link.device_id,
            scans: rows.into_iter().map(|r| r.record).collect(),
        };
        let body = serde_json::to_vec(&batch).map_err(|e| SyncError::BadPayload {
            what: "journal batch",
            message: e.to_string(),
        })?;
        let (answer, outcome) = self
            .link
            .exchange(
                reqwest::Method::POST,
                "/gate/v1/journal",
                body,
                Duration::ZERO,
            )
            .await;
        // Taken in once the acknowledged rows are marked, so a gate shown
        // online again has its backlog's first batch on the server.
        let stored = self.store_ack(store, answer, &sent);
        self.link.observe(Half::Upload, outcome);
        stored
    }

    /// Marks the rows the server's answer acknowledges; how many.
    fn store_ack(
        &self,
        store: &mut Store,
        answer: Result<Vec<u8>, SyncError>,
        sent: &[Uuid],
    ) -> Result<usize, SyncError> {
        let answer = answer?;
        report(&self.reports, &self.link, &*self.clock, Ok(()));
        let ack: JournalAck =
            serde_json::from_slice(&answer).map_err(|e| SyncError::BadPayload {
                what: "journal acknowledgement",
                message: e.to_string(),
            })?;
        // Only ids we sent count: a confused server cannot mark other rows.
        let acked: Vec<Uuid> = ack
            .acked
            .into_iter()
            .filter(|id| sent.contains(id))
            .collect();
        let marked = store.mark_uploaded(&acked)?;
        if !ack.refused.is_empty() {
            // Acknowledged too: sending them again would change nothing.
            tracing::warn!(
                refused = ack.refused.len(),
                first_reason = %ack.refused[0].reason,
                "the server refused scan records"
            );
        }
        if !ack.conflicts.is_empty() {
            tracing::warn!(
                conflicts = ack.conflicts.len(),
                "the server reports conflicting admissions"
            );
        }
        tracing::info!(
            sent = sent.len(),
            acked = acked.len(),
            stored = ack.stored,
            "journal uploaded"
        );
        self.reports.send(SyncEvent::Uploaded(marked as u64));
        self.recount(store)?;
        Ok(acked.len())
    }

    fn recount(&self, store: &Store) -> Result<(), SyncError> {
        let backlog = store.backlog()?;
        self.link.backlog.set(backlog.unsent);
        self.reports.send(SyncEvent::Backlog(backlog));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_without_room_wait_merged_and_the_latest_state_wins() {
        use SyncEvent as E;
        let failed = |error: &str| E::Failed {
            error: error.to_owned(),
            times: 1,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let reports = Reports {
            events: tx,
            held: RefCell::default(),
        };
        // The loop takes nothing meanwhile; none of these may block.
        for event in [
            E::Started,
            failed("first"),
            E::Backlog(Backlog {
                unsent: 3,
                through_seq: 3,
            }),
            E::Answered {
                at: 10,
                clock_skew_secs: None,
            },
            failed("second"),
            E::Uploaded(2),
            E::Uploaded(5),
            E::Backlog(Backlog {
                unsent: 1,
                through_seq: 4,
            }),
        ] {
            reports.send(event);
        }
        let mut received = Vec::new();
        while let Ok(event) = rx.try_recv() {
            received.push(event);
            reports.flush();
        }
        assert_eq!(
            received,
            [
                E::Started,
                E::Answered {
                    at: 10,
                    clock_skew_secs: None,
                },
                E::Failed {
                    error: "second".to_owned(),
                    times: 2,
                },
                E::Uploaded(7),
                E::Backlog(Backlog {
                    unsent: 1,
                    through_seq: 4,
                }),
            ]
        );
    }

    #[test]
    fn cache_syncs_merged_keep_the_latest_time_and_every_change() {
        let mut held = Vec::new();
        hold(
            &mut held,
            SyncEvent::CacheSynced {
                generated_at: 5,
                changes: 2,
            },
        );
        hold(
            &mut held,
            SyncEvent::CacheSynced {
                generated_at: 9,
                changes: 0,
            },
        );
        assert_eq!(
            held,
            [SyncEvent::CacheSynced {
                generated_at: 9,
                changes: 2,
            }]
        );
    }

    #[test]
    fn events_for_a_stopped_loop_are_dropped_not_kept() {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        drop(rx);
        let reports = Reports {
            events: tx,
            held: RefCell::default(),
        };
        reports.send(SyncEvent::Uploaded(4));
        assert!(reports.held.borrow().is_empty());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(4);
        let mut fulls = Vec::new();
        for _ in 0..6 {
            let full = b.next;
            let p = b.pause();
            assert!(p >= full / 2 && p <= full, "{p:?} outside {full:?}");
            fulls.push(full.as_millis());
        }
        assert_eq!(fulls, [500, 1000, 2000, 4000, 4000, 4000]);
        b.reset();
        assert_eq!(b.next, FIRST_BACKOFF);
    }
}
