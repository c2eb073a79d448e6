//! The turnstile undo at a running gate, on an injected clock: staff press
//! undo on the status page within the event's window and the ticket is let
//! in again on its next scan; after the window the undo is refused with the
//! reason; an undo is journaled and still holds after a restart; another
//! gate that heard of the admission forgets it when the server says it was
//! undone, by delta or by snapshot; with a turnstile passage sensor, the
//! gate undoes an admission itself when nobody passed. Also re-entry
//! without an exit scan, where the event allows it.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use gate_agent::config::Config;
use gate_agent::store::Store;
use gate_agent::{ManualClock, RecordingOutputs};
use shared::wire::{CacheChange, CacheDelta, PROTOCOL_VERSION, PresenceUpdate, UndoneAdmission};
use shared::{Presence, ReentryPolicy};

const WINDOW_SECS: u32 = 8;

/// `POST /api/undo` as the status page's button sends it; (status code, body).
fn press_undo(addr: SocketAddr) -> (u16, serde_json::Value) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /api/undo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap())
}

fn config(db: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.store.path = db.to_owned();
    c
}

struct Lane {
    agent: Running,
    scans: std::sync::mpsc::Sender<String>,
    outputs: RecordingOutputs,
}

impl Lane {
    fn start(db: &std::path::Path, clock: &Arc<ManualClock>) -> Self {
        let outputs = RecordingOutputs::new();
        let (scans, input) = channel_input("lane");
        let agent = Running::start(
            config(db),
            vec![input],
            outputs.clone(),
            Arc::clone(clock) as _,
        );
        Self {
            agent,
            scans,
            outputs,
        }
    }

    /// Scans `code` and answers whether the turnstile opened.
    fn scan(&self, code: String) -> bool {
        let before = self.outputs.actuations().len();
        self.scans.send(code).unwrap();
        wait_for(|| self.outputs.actuations().len() == before + 1, "verdict");
        self.outputs.actuations()[before].relay_pulse_ms.is_some()
    }

    fn undo(&self) -> (u16, serde_json::Value) {
        press_undo(self.agent.status_addr.unwrap())
    }
}

fn venue_with_undo(db: &std::path::Path) -> Venue {
    let venue = Venue::new();
    let mut snapshot = venue.snapshot(5);
    snapshot.events[0].undo_window_secs = WINDOW_SECS;
    import(db, &venue, &snapshot);
    venue
}

#[test]
fn an_undo_within_the_window_lets_the_ticket_in_again_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = venue_with_undo(&db);
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let lane = Lane::start(&db, &clock);

    assert!(lane.scan(venue.code(1)), "first entry");
    clock.set(DURING_DOORS_MS + 3_000);
    let (status, answer) = lane.undo();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["undone"], true);
    assert_eq!(answer["ticket_id"], 1);
    assert!(answer["text"].as_str().unwrap().contains("ticket 1"));
    // The last admission is voided once only.
    let (status, again) = lane.undo();
    assert_eq!(status, 409);
    assert_eq!(again["code"], "already_undone");
    lane.agent.stop();

    // A restart (a power cut after the undo committed) keeps it.
    let mut store = Store::open(&db).unwrap();
    assert_eq!(
        store.ticket_state(EVENT, 1).unwrap().unwrap().presence,
        Presence::NeverEntered
    );
    let rows = journal(&db);
    let outcomes: Vec<&str> = rows.iter().map(|e| e.record.outcome.as_str()).collect();
    assert_eq!(outcomes, ["admitted", "admission_undone"]);
    assert_eq!(rows[1].record.voids, Some(rows[0].record.scan_id));
    assert!(!rows[1].record.opened);
    assert_eq!(rows[1].record.source, "status-page");
    assert!(!rows[1].uploaded, "the undo waits for upload like a scan");
    assert_eq!(store.counts().unwrap().admitted, 0);
    assert_eq!(store.counts().unwrap().rejected, 0);
    // The server's view of the admission (uploaded before the undo) comes
    // back in a delta: the gate keeps the holder outside.
    let echo = CacheDelta {
        v: PROTOCOL_VERSION,
        from_cursor: 7,
        to_cursor: 8,
        generated_at: DOORS_OPEN + 600,
        changes: vec![CacheChange::Presence(PresenceUpdate {
            event_id: EVENT,
            ticket_id: 1,
            presence: Presence::Inside {
                since: DURING_DOORS_MS / 1000,
                gate: rows[0].record.gate,
            },
            entries: 1,
        })],
        has_more: false,
    };
    store.apply_delta(&echo, DURING_DOORS_MS + 4_000).unwrap();
    assert_eq!(
        store.ticket_state(EVENT, 1).unwrap().unwrap().presence,
        Presence::NeverEntered
    );
    drop(store);

    let lane = Lane::start(&db, &clock);
    clock.set(DURING_DOORS_MS + 5_000);
    assert!(
        lane.scan(venue.code(1)),
        "the rescan is a first entry again"
    );
    assert!(!lane.scan(venue.code(1)), "and then the holder is inside");
    lane.agent.stop();
    let outcomes: Vec<String> = journal(&db).into_iter().map(|e| e.record.outcome).collect();
    assert_eq!(
        outcomes,
        ["admitted", "admission_undone", "admitted", "already_inside"]
    );
    assert_eq!(Store::open(&db).unwrap().counts().unwrap().admitted, 1);
}

#[test]
fn after_the_window_the_undo_is_refused_and_the_entry_stands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = venue_with_undo(&db);
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let lane = Lane::start(&db, &clock);

    let (status, nothing) = lane.undo();
    assert_eq!(status, 409);
    assert_eq!(nothing["code"], "nothing_to_undo");
    assert!(lane.scan(venue.code(3)));
    clock.set(DURING_DOORS_MS + i64::from(WINDOW_SECS) * 1000);
    let (status, refused) = lane.undo();
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["undone"], false);
    assert_eq!(refused["code"], "undo_window_passed");
    let text = refused["text"].as_str().unwrap();
    assert!(text.contains("undo window passed"), "{text}");
    assert!(!lane.scan(venue.code(3)), "still inside");
    lane.agent.stop();
    let outcomes: Vec<String> = journal(&db).into_iter().map(|e| e.record.outcome).collect();
    assert_eq!(
        outcomes,
        ["admitted", "already_inside"],
        "refusals write nothing"
    );
}

#[test]
fn an_event_without_an_undo_window_refuses_every_undo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(5));
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let lane = Lane::start(&db, &clock);
    assert!(lane.scan(venue.code(1)));
    let (status, refused) = lane.undo();
    assert_eq!(status, 409);
    assert_eq!(refused["code"], "undo_off");
    lane.agent.stop();
}

#[test]
fn where_reentry_is_allowed_a_holder_inside_comes_in_again_without_an_exit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    let mut snapshot = venue.snapshot(5);
    snapshot.events[0].reentry = ReentryPolicy::Allowed;
    import(&db, &venue, &snapshot);
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let lane = Lane::start(&db, &clock);
    assert!(lane.scan(venue.code(1)));
    clock.set(DURING_DOORS_MS + 60_000);
    assert!(lane.scan(venue.code(1)), "no exit scan needed");
    lane.agent.stop();
    let outcomes: Vec<String> = journal(&db).into_iter().map(|e| e.record.outcome).collect();
    assert_eq!(outcomes, ["admitted", "readmitted"]);
    let state = Store::open(&db)
        .unwrap()
        .ticket_state(EVENT, 1)
        .unwrap()
        .unwrap();
    assert_eq!(state.entries, 2);
}

/// The server's delta saying gate 9 let ticket 1 in at `since`, and the
/// one saying gate 9 undid it.
fn heard_then_undone(since: i64) -> (CacheDelta, CacheDelta) {
    let inside = PresenceUpdate {
        event_id: EVENT,
        ticket_id: 1,
        presence: Presence::Inside { since, gate: 9 },
        entries: 1,
    };
    let never = PresenceUpdate {
        presence: Presence::NeverEntered,
        entries: 0,
        ..inside
    };
    let delta = |from_cursor, changes| CacheDelta {
        v: PROTOCOL_VERSION,
        from_cursor,
        to_cursor: from_cursor + 1,
        generated_at: since,
        changes,
        has_more: false,
    };
    (
        delta(7, vec![CacheChange::Presence(inside)]),
        delta(
            8,
            vec![
                CacheChange::Presence(never),
                CacheChange::Undone(UndoneAdmission {
                    gate: 9,
                    since,
                    now: never,
                }),
            ],
        ),
    )
}

#[test]
fn an_admission_another_gate_undid_is_forgotten_here() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = venue_with_undo(&db);
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let since = DURING_DOORS_MS / 1000 - 5;
    let (heard, undone) = heard_then_undone(since);
    let mut store = Store::open(&db).unwrap();
    store.apply_delta(&heard, DURING_DOORS_MS).unwrap();
    drop(store);
    let lane = Lane::start(&db, &clock);
    assert!(
        !lane.scan(venue.code(1)),
        "inside by the other gate's admission"
    );
    lane.agent.stop();

    let mut store = Store::open(&db).unwrap();
    store.apply_delta(&undone, DURING_DOORS_MS + 1_000).unwrap();
    let state = store.ticket_state(EVENT, 1).unwrap().unwrap();
    assert_eq!((state.presence, state.entries), (Presence::NeverEntered, 0));
    // Heard twice (a delta fetched again after a crash): nothing more.
    store.apply_delta(&undone, DURING_DOORS_MS + 1_000).unwrap();
    assert_eq!(store.ticket_state(EVENT, 1).unwrap().unwrap(), state);
    drop(store);
    let lane = Lane::start(&db, &clock);
    clock.set(DURING_DOORS_MS + 2_000);
    assert!(lane.scan(venue.code(1)), "the holder never came in");
    lane.agent.stop();
    let outcomes: Vec<String> = journal(&db).into_iter().map(|e| e.record.outcome).collect();
    assert_eq!(outcomes, ["already_inside", "admitted"]);
}

#[test]
fn a_snapshot_carries_the_undone_admissions_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = venue_with_undo(&db);
    let since = DURING_DOORS_MS / 1000 - 5;
    let (heard, undone) = heard_then_undone(since);
    let mut store = Store::open(&db).unwrap();
    store.apply_delta(&heard, DURING_DOORS_MS).unwrap();
    let mut snapshot = venue.snapshot(5);
    snapshot.events[0].undo_window_secs = WINDOW_SECS;
    let CacheChange::Undone(notice) = undone.changes[1] else {
        unreachable!()
    };
    snapshot.presence = vec![notice.now];
    snapshot.undone = vec![notice];
    store
        .import_snapshot(&snapshot, &common::public(&venue.server), DURING_DOORS_MS)
        .unwrap();
    let state = store.ticket_state(EVENT, 1).unwrap().unwrap();
    assert_eq!((state.presence, state.entries), (Presence::NeverEntered, 0));
}

#[test]
fn with_a_passage_sensor_the_gate_undoes_an_admission_nobody_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = venue_with_undo(&db);
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let mut config = config(&db);
    config.outputs.passage_timeout_ms = 3_000;
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let (turn, sensor) = channel_passage();
    let lane = Lane {
        agent: Running::start_with_passage(
            config,
            vec![input],
            outputs.clone(),
            Arc::clone(&clock) as _,
            Some(sensor),
        ),
        scans,
        outputs,
    };
    let metric = |result: &str| -> u64 {
        let (_, body) = http_get(lane.agent.status_addr.unwrap(), "/metrics");
        let name = format!("gate_passages_total{{result=\"{result}\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&name))
            .map_or(0, |v| v.trim().parse().unwrap())
    };

    // Ticket 1 goes through: its admission stands after the timeout.
    assert!(lane.scan(venue.code(1)));
    turn.send(()).unwrap();
    wait_for(|| metric("passed") == 1, "the passage");
    clock.set(DURING_DOORS_MS + 5_000);
    // Ticket 2's holder turns back: undone once the timeout passes.
    assert!(lane.scan(venue.code(2)));
    clock.set(DURING_DOORS_MS + 7_000);
    assert_eq!(metric("not_passed"), 0, "not before the timeout");
    clock.set(DURING_DOORS_MS + 8_100);
    wait_for(
        || {
            journal(&db)
                .iter()
                .any(|e| e.record.outcome == "admission_undone")
        },
        "the gate's own undo",
    );
    assert_eq!(metric("not_passed"), 1);
    assert!(!lane.scan(venue.code(1)), "ticket 1 is inside");
    assert!(lane.scan(venue.code(2)), "ticket 2 never came in");
    // Someone pushes through with nothing waiting... after ticket 2 passed.
    turn.send(()).unwrap();
    turn.send(()).unwrap();
    wait_for(|| metric("unexpected") == 1, "the unexpected turn");
    lane.agent.stop();

    let rows = journal(&db);
    let got: Vec<(&str, Option<u32>, &str)> = rows
        .iter()
        .map(|e| {
            (
                e.record.outcome.as_str(),
                e.record.ticket_id,
                e.record.source.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("admitted", Some(1), "lane"),
            ("admitted", Some(2), "lane"),
            ("admission_undone", Some(2), "turnstile"),
            ("already_inside", Some(1), "lane"),
            ("admitted", Some(2), "lane"),
        ]
    );
    assert_eq!(rows[2].record.voids, Some(rows[1].record.scan_id));
}
