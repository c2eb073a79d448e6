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
//! - Status: the gate is online while the server answers and offline when a
//!   request fails or times out; the backlog travels in `x-gate-backlog`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use shared::wire::{
    CacheDelta, CacheSnapshot, HEADER_BACKLOG, HEADER_DEVICE_ID, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, JournalAck, JournalBatch, PROTOCOL_VERSION, SignedPayload,
    device_request_message,
};
use uuid::Uuid;

use crate::config::{Config, SyncConfig};
use crate::enrolment::{Enrolment, error_body};
use crate::gate::Clock;
use crate::status::StatusBoard;
use crate::stop::Stop;
use crate::store::{Store, StoreError};

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

impl SyncError {
    /// Whether the server answered (the gate is online even if it refused).
    fn server_answered(&self) -> bool {
        matches!(
            self,
            SyncError::Refused { .. } | SyncError::BadPayload { .. }
        )
    }
}

/// Starts the sync thread. It returns when `stop` is triggered.
pub fn start(
    config: &Config,
    enrolment: Enrolment,
    key: SigningKey,
    board: Arc<StatusBoard>,
    clock: Arc<dyn Clock>,
    stop: Stop,
    cache_changed: Arc<AtomicBool>,
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
            let link = Arc::new(Link {
                client,
                server,
                device_id: enrolment.device_id,
                key,
                timeout: Duration::from_secs(settings.request_timeout_secs),
                backlog: AtomicU64::new(board.view().counts.unsent),
            });
            board.update(|v| v.sync_enabled = true);
            tracing::info!(server = %link.server, device = %enrolment.device_id, "sync task started");
            runtime.block_on(async {
                let puller = CachePuller {
                    link: Arc::clone(&link),
                    settings: settings.clone(),
                    db: db.clone(),
                    server_key: enrolment.server_key,
                    board: Arc::clone(&board),
                    clock: Arc::clone(&clock),
                    stop: stop.clone(),
                    cache_changed,
                };
                let uploader = JournalUploader {
                    link,
                    settings,
                    db,
                    board: Arc::clone(&board),
                    clock,
                    stop: stop.clone(),
                };
                tokio::join!(puller.run(), uploader.run());
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
    backlog: AtomicU64,
}

impl Link {
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
        request = request.header(
            HEADER_BACKLOG,
            self.backlog.load(Ordering::Relaxed).to_string(),
        );
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let unreachable = |e: reqwest::Error| SyncError::Unreachable(e.to_string());
        let response = request.send().await.map_err(unreachable)?;
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

/// Records the outcome of a request on the status board.
fn report(board: &StatusBoard, clock: &dyn Clock, result: Result<(), &SyncError>) {
    match result {
        Ok(()) => {
            let now = now_secs(clock);
            board.update(|v| {
                v.online = true;
                v.last_sync_at = Some(now);
                v.sync_error = None;
            });
        }
        Err(e) => {
            board.count("gate_sync_failures_total", 1);
            let online = e.server_answered();
            let text = e.to_string();
            board.update(|v| {
                v.online = online;
                v.sync_error = Some(text);
            });
        }
    }
}

struct CachePuller {
    link: Arc<Link>,
    settings: SyncConfig,
    db: std::path::PathBuf,
    server_key: shared::PublicKeyBytes,
    board: Arc<StatusBoard>,
    clock: Arc<dyn Clock>,
    stop: Stop,
    /// Tells the decision loop to reload its gate policy now.
    cache_changed: Arc<AtomicBool>,
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
            other => report(&self.board, &*self.clock, other.as_ref().map(|_| ())),
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
        let bytes = self
            .link
            .request(
                reqwest::Method::GET,
                "/gate/v1/snapshot",
                Vec::new(),
                Duration::ZERO,
            )
            .await?;
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
        self.cache_changed.store(true, Ordering::SeqCst);
        let generated = snapshot.generated_at;
        self.board
            .update(|v| v.cache_generated_at = Some(generated));
        Ok(())
    }

    async fn pull_delta(&self, store: &mut Store, cursor: u64) -> Result<(), SyncError> {
        let wait = self.settings.poll_wait_secs;
        let bytes = match self
            .link
            .request(
                reqwest::Method::GET,
                &format!("/gate/v1/delta?cursor={cursor}&wait={wait}"),
                Vec::new(),
                Duration::from_secs(u64::from(wait)),
            )
            .await
        {
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
            self.board
                .count("gate_cache_changes_total", delta.changes.len() as u64);
            self.cache_changed.store(true, Ordering::SeqCst);
        }
        let generated = delta.generated_at;
        self.board
            .update(|v| v.cache_generated_at = Some(generated));
        Ok(())
    }

    fn forget_cursor(&self, store: &mut Store) -> Result<(), SyncError> {
        store.set_meta(&[("signer", String::new())])?;
        Ok(())
    }
}

struct JournalUploader {
    link: Arc<Link>,
    settings: SyncConfig,
    db: std::path::PathBuf,
    board: Arc<StatusBoard>,
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
                        report(&self.board, &*self.clock, Err(&e));
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
        let answer = self
            .link
            .request(
                reqwest::Method::POST,
                "/gate/v1/journal",
                body,
                Duration::ZERO,
            )
            .await?;
        report(&self.board, &*self.clock, Ok(()));
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
        self.board
            .count("gate_journal_uploaded_total", marked as u64);
        self.recount(store)?;
        Ok(acked.len())
    }

    fn recount(&self, store: &Store) -> Result<(), SyncError> {
        let backlog = store.unsent_count()?;
        self.link.backlog.store(backlog, Ordering::Relaxed);
        self.board.update(|v| v.counts.unsent = backlog);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
