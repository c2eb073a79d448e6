//! The running agent: input threads feed one decision loop through a bounded
//! channel; the loop decides, commits the journal transaction, then fires the
//! outputs and updates the status page. The sync task reports to the same loop
//! on a second bounded channel ([`SyncEvent`]) and never touches the status
//! board: the loop applies what it says between scans, so what the page shows
//! of scans, cache and sync comes from one place. The loop also feeds the
//! systemd watchdog, so a stuck loop gets the service restarted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::{Config, JournalFailurePolicy};
use crate::gate::{Clock, Gate, JournalFailure, Scan, SystemClock, Verdict};
use crate::outputs::{Actuation, Outputs};
use crate::passage::{Passage, PassageSensor, PassageWatch};
use crate::status::{StatusBoard, StatusView};
use crate::store::{Backlog, Counts, Store};
use crate::sync::{SYNC_EVENTS, SyncEvent};
use crate::undo::{PASSAGE_SOURCE, StaffCommand, UndoAnswer};
// Inputs written against `agent::Stop` keep working.
pub use crate::stop::Stop;

/// Scans waiting for a verdict; inputs block (and drop stale camera frames)
/// rather than queue without bound.
pub const SCAN_QUEUE: usize = 64;

/// What an input thread gets.
#[derive(Clone)]
pub struct InputContext {
    pub scans: SyncSender<Scan>,
    pub stop: Stop,
    pub board: Arc<StatusBoard>,
}

/// A scanner input: a thread that reads codes and sends them to the decision loop.
pub trait Input: Send {
    fn name(&self) -> String;
    /// Starts the input's thread; it returns when `ctx.stop` is triggered.
    fn start(self: Box<Self>, ctx: InputContext) -> std::io::Result<JoinHandle<()>>;
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("status server on {addr}: {source}")]
    StatusListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start {what}: {source}")]
    Thread {
        what: String,
        source: std::io::Error,
    },
}

/// Knobs that tests and benchmarks change; the daemon uses the defaults.
pub struct RunOptions {
    pub clock: Arc<dyn Clock>,
    /// Use this listener for the status server instead of binding `status.listen`.
    pub status_listener: Option<std::net::TcpListener>,
    /// Called with the status server's address once it listens.
    pub on_status_bound: Option<Box<dyn FnOnce(std::net::SocketAddr) + Send>>,
    /// The turnstile's passage sensor, if it has one (the daemon reads it
    /// from the board profile; see [`crate::passage`]).
    pub passage: Option<Box<dyn PassageSensor>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            status_listener: None,
            on_status_bound: None,
            passage: None,
        }
    }
}

/// Runs the agent until `shutdown` resolves, then stops every input and the
/// decision loop (which finishes the scan in hand) and returns.
pub async fn run(
    config: Config,
    inputs: Vec<Box<dyn Input>>,
    outputs: Box<dyn Outputs>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    run_with(config, inputs, outputs, shutdown, RunOptions::default()).await
}

pub async fn run_with(
    config: Config,
    inputs: Vec<Box<dyn Input>>,
    outputs: Box<dyn Outputs>,
    shutdown: impl std::future::Future<Output = ()>,
    options: RunOptions,
) -> Result<(), AgentError> {
    let mut config = config;
    // An enrolled gate is who the server says it is.
    let enrolment = match crate::enrolment::apply_stored(&mut config) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the enrolment; running without sync");
            None
        }
    };
    let stop = Stop::new();
    let board = StatusBoard::new(
        StatusView {
            gate_name: config.gate.name.clone(),
            gate_number: config.gate.number,
            direction: format!("{:?}", config.gate.direction).to_lowercase(),
            ..StatusView::default()
        },
        Arc::clone(&options.clock),
    );

    // Staff commands from the status page; a few at a time is plenty. Set
    // before the page serves, so a press at start-up waits for the loop.
    let (staff_tx, staff_rx) = mpsc::sync_channel::<StaffCommand>(4);
    board.set_staff_commands(staff_tx);
    let status_task = if config.status.enabled {
        let listener = match options.status_listener {
            Some(l) => l,
            None => std::net::TcpListener::bind(config.status.listen).map_err(|source| {
                AgentError::StatusListen {
                    addr: config.status.listen,
                    source,
                }
            })?,
        };
        let addr = config.status.listen;
        listener
            .set_nonblocking(true)
            .map_err(|source| AgentError::StatusListen { addr, source })?;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| AgentError::StatusListen { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        tracing::info!(%bound, "status page listening");
        if let Some(cb) = options.on_status_bound {
            cb(bound);
        }
        let stop_status = stop.clone();
        let board = Arc::clone(&board);
        Some(tokio::spawn(async move {
            let wait = async move {
                while !stop_status.is_triggered() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            if let Err(e) = crate::status::serve(listener, board, wait).await {
                tracing::error!(error = %e, "status server stopped");
            }
        }))
    } else {
        None
    };

    let (tx, rx) = mpsc::sync_channel::<Scan>(SCAN_QUEUE);
    // Without a sync task the sender is dropped and the loop hears nothing.
    let (sync_tx, sync_rx) = mpsc::sync_channel::<SyncEvent>(SYNC_EVENTS);
    let mut threads = Vec::new();
    // Without a sensor the sender is dropped and no admission is watched.
    let (passage_tx, passage_rx) = mpsc::sync_channel::<()>(PASSAGES);
    let mut watch = None;
    if let Some(sensor) = options.passage {
        let name = sensor.name();
        match sensor.start(passage_tx, stop.clone()) {
            Ok(handle) => {
                threads.push(handle);
                let timeout = config.outputs.passage_timeout_ms;
                watch = (timeout > 0).then(|| PassageWatch::new(timeout));
                tracing::info!(sensor = %name, timeout_ms = timeout, "passage sensor started");
            }
            Err(e) => {
                tracing::error!(sensor = %name, error = %e, "passage sensor did not start; undos are left to staff");
                board.set_input(&name, format!("failed to start: {e}"));
            }
        }
    }
    let loop_ctx = DecisionLoop {
        config: config.clone(),
        outputs,
        board: Arc::clone(&board),
        clock: Arc::clone(&options.clock),
        stop: stop.clone(),
        sync_events: sync_rx,
        staff: staff_rx,
        passages: passage_rx,
        watch,
    };
    threads.push(
        std::thread::Builder::new()
            .name("decision".into())
            .spawn(move || loop_ctx.run(&rx))
            .map_err(|source| AgentError::Thread {
                what: "decision loop".into(),
                source,
            })?,
    );
    for input in inputs {
        let name = input.name();
        board.set_input(&name, "starting");
        let ctx = InputContext {
            scans: tx.clone(),
            stop: stop.clone(),
            board: Arc::clone(&board),
        };
        match input.start(ctx) {
            Ok(handle) => threads.push(handle),
            // One broken input must not stop the others.
            Err(e) => {
                tracing::error!(input = %name, error = %e, "input did not start");
                board.set_input(&name, format!("failed to start: {e}"));
            }
        }
    }
    drop(tx);

    match (&enrolment, config.sync.enabled) {
        (Some(enrolment), true) => {
            match crate::enrolment::load_key(&crate::enrolment::key_path(&config)) {
                Ok(key) => match crate::sync::start(
                    &config,
                    enrolment.clone(),
                    key,
                    sync_tx,
                    Arc::clone(&options.clock),
                    stop.clone(),
                ) {
                    Ok(handle) => threads.push(handle),
                    Err(e) => tracing::error!(error = %e, "sync task did not start"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "enrolled but the device key is unusable; running without sync");
                    board.update(|v| v.sync_error = Some(e.to_string()));
                }
            }
        }
        (Some(_), false) => tracing::info!("sync disabled by configuration"),
        (None, _) => tracing::info!("not enrolled; running on cache files only"),
    }

    shutdown.await;
    tracing::info!("shutting down");
    stop.trigger();
    let joined = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    });
    let _ = joined.await;
    if let Some(mut task) = status_task {
        // Open live feeds (a kiosk browser) never end by themselves: give
        // requests in flight a moment, then close the server.
        if tokio::time::timeout(Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
    Ok(())
}

struct DecisionLoop {
    config: Config,
    outputs: Box<dyn Outputs>,
    board: Arc<StatusBoard>,
    clock: Arc<dyn Clock>,
    stop: Stop,
    /// What the sync task reports; taken between scans, never waited for.
    sync_events: Receiver<SyncEvent>,
    /// What staff ask from the status page (an undo), taken between scans.
    staff: Receiver<StaffCommand>,
    /// One `()` per turn of the turnstile, from the passage sensor.
    passages: Receiver<()>,
    /// The admission waiting for its passage, with a sensor and a timeout.
    watch: Option<PassageWatch>,
}

/// Passages the sensor may report ahead of the loop.
const PASSAGES: usize = 16;
/// How often the loop wakes when idle (watchdog, cache reload, store retry).
const TICK: Duration = Duration::from_millis(200);
const RETRY_STORE: Duration = Duration::from_secs(5);
const CHECK_CACHE: Duration = Duration::from_secs(2);
/// Enough for the scans of one upload round trip many times over.
const MAX_UNCOUNTED: usize = 4096;

struct LoopState {
    store: Option<Store>,
    gate: Gate,
    imported_at: Option<String>,
    /// What the page shows; `unsent` is the store's last count (from the
    /// sync task) plus the rows written since, in `uncounted`.
    counts: Counts,
    /// Journal rows (`seq`) this loop wrote that the sync task's last count
    /// may not include, oldest first. Kept short: a count drops every row up
    /// to the journal's end at that moment.
    uncounted: VecDeque<i64>,
    inside_dirty: bool,
    /// Why the store could not be opened, while it cannot.
    open_error: Option<JournalFailure>,
    /// Set while the last journal write failed for want of space: the loop
    /// then checks now and then whether the disk takes writes again, so the
    /// page clears before the next scan proves it.
    storage_full: bool,
}

impl DecisionLoop {
    fn run(mut self, rx: &mpsc::Receiver<Scan>) {
        let mut state = self.open_store();
        let mut watchdog_usec = 0u64;
        let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec);
        let tick = if watchdog {
            TICK.min(Duration::from_micros(watchdog_usec / 3))
        } else {
            TICK
        };
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let mut last_store_try = Instant::now();
        let mut last_space_check = Instant::now();
        let mut last_cache_check = Instant::now();
        // With no input left (none configured, or all ended) the loop keeps
        // going until the agent stops: it still applies what the sync task
        // reports, reloads the cache and feeds the watchdog.
        let mut inputs_open = true;
        loop {
            if inputs_open {
                match rx.recv_timeout(tick) {
                    Ok(scan) => self.handle(&mut state, &scan),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => inputs_open = false,
                }
            } else {
                std::thread::sleep(tick);
            }
            let commands: Vec<StaffCommand> = self.staff.try_iter().take(4).collect();
            for command in commands {
                self.staff_command(&mut state, command);
            }
            self.watch_passages(&mut state);
            if self.stop.is_triggered() {
                // Scans already read are decided and recorded before exit.
                while let Ok(scan) = rx.try_recv() {
                    self.handle(&mut state, &scan);
                }
                break;
            }
            if watchdog {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
            if state.store.is_none() && last_store_try.elapsed() >= RETRY_STORE {
                last_store_try = Instant::now();
                let fresh = self.open_store();
                if fresh.store.is_some() {
                    state = fresh;
                }
            }
            if state.storage_full && last_space_check.elapsed() >= RETRY_STORE {
                last_space_check = Instant::now();
                self.check_space(&mut state);
            }
            // A cache the sync task wrote is picked up now rather than at
            // the next periodic check.
            if self.take_sync_events(&mut state) || last_cache_check.elapsed() >= CHECK_CACHE {
                last_cache_check = Instant::now();
                self.reload_cache_if_changed(&mut state);
            }
            if state.inside_dirty {
                state.inside_dirty = false;
                if let Some(store) = &state.store
                    && let Ok(c) = store.counts()
                {
                    state.counts.inside = c.inside;
                    let counts = state.counts;
                    self.board.update(|v| v.counts = counts);
                }
            }
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    }

    fn open_store(&self) -> LoopState {
        match Store::open(&self.config.store.path).and_then(|s| {
            let events = s.events()?;
            let counts = s.counts()?;
            let generated = s.meta("generated_at")?.and_then(|g| g.parse::<i64>().ok());
            let imported = s.meta("imported_at_ms")?;
            Ok((s, events, counts, generated, imported))
        }) {
            Ok((store, events, counts, generated, imported_at)) => {
                let gate = Gate::new(&self.config.gate, &events);
                if let Some(e) = gate.setup_error() {
                    tracing::warn!(error = %e, "gate cannot admit anyone until this is fixed");
                }
                let setup_error = gate.setup_error().map(ToString::to_string);
                self.board.update(|v| {
                    v.counts = counts;
                    v.cache_generated_at = generated;
                    v.setup_error = setup_error;
                    v.journal_error = None;
                    v.storage_full = false;
                });
                LoopState {
                    store: Some(store),
                    gate,
                    imported_at,
                    counts,
                    uncounted: VecDeque::new(),
                    inside_dirty: false,
                    open_error: None,
                    storage_full: false,
                }
            }
            Err(e) => {
                let failure = match JournalFailure::from_store(&e) {
                    JournalFailure::Unavailable(m) => {
                        JournalFailure::Unavailable(format!("store unavailable: {m}"))
                    }
                    full => full,
                };
                if let JournalFailure::StorageFull(_) = failure {
                    tracing::error!(error = %e, path = %self.config.store.path.display(),
                        "storage full: the store cannot be opened; scans are refused until space is freed");
                } else {
                    tracing::error!(error = %e, path = %self.config.store.path.display(), "store unavailable");
                }
                let full = matches!(failure, JournalFailure::StorageFull(_));
                let shown = match &failure {
                    JournalFailure::StorageFull(_) => failure.alert(),
                    JournalFailure::Unavailable(e) => e.clone(),
                };
                self.board.update(|v| {
                    v.journal_error = Some(shown);
                    v.storage_full = full;
                });
                self.board.count("gate_journal_failures_total", 1);
                LoopState {
                    store: None,
                    gate: Gate::new(&self.config.gate, &[]),
                    imported_at: None,
                    counts: Counts::default(),
                    uncounted: VecDeque::new(),
                    inside_dirty: false,
                    open_error: Some(failure),
                    storage_full: false,
                }
            }
        }
    }

    /// Applies what the sync task reported since the last call, without
    /// waiting; returns whether it synced the cache (so the policy may need a
    /// reload). Takes at most a channel's worth, so a chatty task cannot hold
    /// up the next scan.
    fn take_sync_events(&self, state: &mut LoopState) -> bool {
        let events: Vec<SyncEvent> = self.sync_events.try_iter().take(SYNC_EVENTS).collect();
        if events.is_empty() {
            return false;
        }
        let mut cache_synced = false;
        for event in &events {
            match event {
                SyncEvent::Failed { times, .. } => {
                    self.board.count("gate_sync_failures_total", *times);
                }
                SyncEvent::CacheSynced { changes, .. } => {
                    cache_synced = true;
                    if *changes > 0 {
                        self.board.count("gate_cache_changes_total", *changes);
                    }
                }
                SyncEvent::Uploaded(n) => self.board.count("gate_journal_uploaded_total", *n),
                SyncEvent::Backlog(backlog) => {
                    state.counts.unsent = unsent_after(&mut state.uncounted, backlog);
                }
                SyncEvent::Started | SyncEvent::Answered { .. } | SyncEvent::Online(_) => {}
            }
        }
        let unsent = state.counts.unsent;
        self.board.update(|v| {
            for event in events {
                show_sync_event(v, event);
            }
            v.counts.unsent = unsent;
        });
        cache_synced
    }

    /// Picks up a cache imported by `gate-agent cache import` while running.
    fn reload_cache_if_changed(&self, state: &mut LoopState) {
        let Some(store) = &state.store else { return };
        let Ok(imported) = store.meta("imported_at_ms") else {
            return;
        };
        if imported == state.imported_at {
            return;
        }
        if let Ok(events) = store.events() {
            tracing::info!(events = events.len(), "ticket cache changed; reloading");
            state.gate = Gate::new(&self.config.gate, &events);
            state.imported_at = imported;
            state.inside_dirty = true;
            let generated = store
                .meta("generated_at")
                .ok()
                .flatten()
                .and_then(|g| g.parse().ok());
            let setup_error = state.gate.setup_error().map(ToString::to_string);
            self.board.update(|v| {
                v.cache_generated_at = generated;
                v.setup_error = setup_error;
            });
        }
    }

    /// Takes the sensor's passages, and undoes the admission whose holder
    /// did not pass in time (as staff would, under the same rule).
    fn watch_passages(&mut self, state: &mut LoopState) {
        let Some(watch) = &mut self.watch else {
            return;
        };
        let passages = self.passages.try_iter().count();
        let mut unexpected = 0;
        for _ in 0..passages {
            match watch.passed() {
                Passage::Passed(_) => self
                    .board
                    .count("gate_passages_total{result=\"passed\"}", 1),
                Passage::Unexpected => unexpected += 1,
            }
        }
        if unexpected > 0 {
            tracing::warn!(
                passages = unexpected,
                "the turnstile turned with no admission waiting"
            );
            self.board
                .count("gate_passages_total{result=\"unexpected\"}", unexpected);
        }
        let Some(admission) = watch.expired(self.clock.now_ms()) else {
            return;
        };
        self.board
            .count("gate_passages_total{result=\"not_passed\"}", 1);
        tracing::info!(%admission, "the holder did not pass the turnstile; undoing the admission");
        let (reply, answer) = mpsc::sync_channel(1);
        self.staff_command(
            state,
            StaffCommand::Undo {
                source: PASSAGE_SOURCE.to_owned(),
                reply,
            },
        );
        if let Ok(answer) = answer.try_recv()
            && !answer.undone
        {
            tracing::warn!(%admission, code = %answer.code, "{}", answer.text);
        }
    }

    /// Carries out a staff command; the undo is committed before it is
    /// answered or shown.
    fn staff_command(&mut self, state: &mut LoopState, command: StaffCommand) {
        let StaffCommand::Undo { source, reply } = command;
        let now_ms = self.clock.now_ms();
        let answer = match &mut state.store {
            Some(store) => match crate::undo::undo_last(store, &state.gate, now_ms, &source) {
                Ok(Ok(done)) => {
                    state.counts.admitted = state.counts.admitted.saturating_sub(1);
                    state.counts.unsent += 1;
                    state.uncounted.push_back(done.seq);
                    state.inside_dirty = true;
                    self.board.count("gate_undos_total", 1);
                    let mut verdict = state.gate.verdict(
                        &crate::store::ScanOutcome {
                            record: done.record.clone(),
                            next_state: None,
                            detail: done.detail.clone(),
                        },
                        true,
                    );
                    verdict.text = format!("UNDONE - {}", done.detail);
                    tracing::info!(undo = %done.record.scan_id, voids = ?done.record.voids,
                        %source, "admission undone");
                    if let (Some(watch), Some(voided)) = (&mut self.watch, done.record.voids) {
                        watch.forget(voided);
                    }
                    let counts = state.counts;
                    self.board.update(|v| {
                        v.last = Some(verdict);
                        v.counts = counts;
                    });
                    UndoAnswer::done(&done)
                }
                Ok(Err(refusal)) => {
                    tracing::info!(code = refusal.code(), %source, "undo refused");
                    UndoAnswer::refused(refusal, now_ms)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record the undo");
                    UndoAnswer::unavailable(&e.to_string())
                }
            },
            None => UndoAnswer::unavailable(
                &state
                    .open_error
                    .as_ref()
                    .map_or_else(|| "the store is not open".to_owned(), JournalFailure::alert),
            ),
        };
        let _ = reply.try_send(answer);
    }

    /// While the disk is full: one small write (a `meta` row) to learn whether
    /// space came back, so the page stops saying "storage full" by itself.
    fn check_space(&self, state: &mut LoopState) {
        let Some(store) = &mut state.store else {
            return;
        };
        let now = self.clock.now_ms().to_string();
        match store.set_meta(&[("space_checked_at_ms", now)]) {
            Ok(()) => {
                tracing::info!("storage writable again; scans are recorded");
                state.storage_full = false;
                self.board.update(|v| {
                    v.journal_error = None;
                    v.storage_full = false;
                });
            }
            Err(e) if e.is_storage_full() => {}
            Err(e) => tracing::warn!(error = %e, "checking for free space failed"),
        }
    }

    fn handle(&mut self, state: &mut LoopState, scan: &Scan) {
        let started = Instant::now();
        let now_ms = self.clock.now_ms();
        let scan_id = Uuid::now_v7();
        let gate = &state.gate;
        let result = match &mut state.store {
            Some(store) => store
                .record_scan(|lookup| gate.evaluate(scan, lookup, now_ms, scan_id))
                .map_err(|e| JournalFailure::from_store(&e)),
            None => Err(state
                .open_error
                .clone()
                .unwrap_or_else(|| JournalFailure::Unavailable("store not open".to_owned()))),
        };
        let verdict: Verdict = match result {
            Ok(recorded) => {
                if recorded.outcome.next_state.is_some() {
                    state.inside_dirty = true;
                }
                if state.uncounted.len() >= MAX_UNCOUNTED {
                    // Reached only with no sync task counting, or after a
                    // long outage; any later count includes the oldest rows.
                    state.uncounted.pop_front();
                }
                state.uncounted.push_back(recorded.seq);
                if state.storage_full {
                    tracing::info!("storage writable again; scans are recorded");
                    state.storage_full = false;
                }
                let view = self.board.view();
                if view.journal_error.is_some() || view.storage_full {
                    self.board.update(|v| {
                        v.journal_error = None;
                        v.storage_full = false;
                    });
                }
                gate.verdict(&recorded.outcome, true)
            }
            Err(failure) => {
                match &failure {
                    JournalFailure::StorageFull(error) => tracing::error!(
                        %error,
                        %scan_id,
                        "storage full: the scan cannot be recorded; the gate stays shut until space is freed"
                    ),
                    JournalFailure::Unavailable(error) => {
                        tracing::error!(%error, %scan_id, "cannot write the journal");
                    }
                }
                self.board.count("gate_journal_failures_total", 1);
                let full = matches!(failure, JournalFailure::StorageFull(_));
                state.storage_full = full && state.store.is_some();
                let message = failure.alert();
                self.board.update(|v| {
                    v.journal_error = Some(message);
                    v.storage_full = full;
                });
                let store = state.store.as_ref();
                let lookup =
                    |e: u64, t: u32| store.and_then(|s| s.ticket_state(e, t).ok().flatten());
                let outcome = gate.evaluate(scan, &lookup, now_ms, scan_id);
                match self.config.store.on_journal_failure {
                    JournalFailurePolicy::Reject => {
                        gate.journal_failure_verdict(&outcome, &failure)
                    }
                    JournalFailurePolicy::Admit => gate.verdict(&outcome, false),
                }
            }
        };
        // The journal commit (above) is durable before the turnstile moves.
        let actuation = Actuation::for_verdict(&verdict, &self.config.outputs);
        if let Err(e) = self.outputs.actuate(&actuation) {
            tracing::error!(error = %e, "outputs failed");
            self.board.count("gate_output_failures_total", 1);
        }
        self.board.observe_decision(started.elapsed());
        self.board.count(
            &format!("gate_scans_total{{outcome=\"{}\"}}", verdict.outcome),
            1,
        );
        tracing::info!(
            scan_id = %verdict.scan_id,
            source = %verdict.source,
            outcome = %verdict.outcome,
            opens = verdict.opens,
            journaled = verdict.journaled,
            "{}",
            verdict.text
        );
        let direction_exit = self.config.gate.direction == shared::Direction::Exit;
        if verdict.opens && !direction_exit {
            state.counts.admitted += 1;
            // Only a journaled admission can be undone.
            if let Some(watch) = &mut self.watch
                && verdict.journaled
            {
                watch.admitted(verdict.scan_id, now_ms);
            }
        } else if verdict.opens {
            state.counts.exits += 1;
        } else {
            state.counts.rejected += 1;
        }
        // Until the sync task's next count, each journaled scan adds one.
        state.counts.unsent += u64::from(verdict.journaled);
        let counts = state.counts;
        self.board.update(|v| {
            v.last = Some(verdict);
            v.counts = counts;
        });
    }
}

/// The backlog to show after the store counted `backlog`: its count, plus
/// the rows this loop wrote after the count (which `uncounted` keeps; the
/// ones the count covers are dropped from it).
fn unsent_after(uncounted: &mut VecDeque<i64>, backlog: &Backlog) -> u64 {
    while uncounted
        .front()
        .is_some_and(|&seq| seq <= backlog.through_seq)
    {
        uncounted.pop_front();
    }
    backlog.unsent + uncounted.len() as u64
}

/// What a sync event changes on the status page.
fn show_sync_event(v: &mut StatusView, event: SyncEvent) {
    match event {
        SyncEvent::Started => v.sync_enabled = true,
        SyncEvent::Answered {
            at,
            clock_skew_secs,
        } => {
            v.last_sync_at = Some(at);
            v.sync_error = None;
            if clock_skew_secs.is_some() {
                v.clock_skew_secs = clock_skew_secs;
            }
        }
        SyncEvent::Failed { error, .. } => v.sync_error = Some(error),
        SyncEvent::Online(online) => v.online = online,
        SyncEvent::CacheSynced { generated_at, .. } => v.cache_generated_at = Some(generated_at),
        // The loop's own count, corrected by the store's (see `LoopState`).
        SyncEvent::Backlog(_) | SyncEvent::Uploaded(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_after_the_stores_count_still_show_as_unsent() {
        // This loop wrote rows 7, 8 and 9; the sync task counted 2 unsent
        // when the journal ended at row 8, and the loop took the count after
        // writing row 9.
        let mut uncounted = VecDeque::from([7, 8, 9]);
        let counted = Backlog {
            unsent: 2,
            through_seq: 8,
        };
        assert_eq!(unsent_after(&mut uncounted, &counted), 3);
        assert_eq!(uncounted, [9]);
        // The next count includes row 9 (uploaded or not).
        let all_sent = Backlog {
            unsent: 0,
            through_seq: 9,
        };
        assert_eq!(unsent_after(&mut uncounted, &all_sent), 0);
        assert!(uncounted.is_empty());
    }
}
