//! End to end inside the agent: a socat pseudo-terminal plays a serial
//! scanner; the recording outputs and the journal must show the right verdicts.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use gate_agent::config::{Config, ScannerConfig};
use gate_agent::outputs::Led;
use gate_agent::store::Store;
use gate_agent::{ManualClock, RecordingOutputs};

fn config(dir: &std::path::Path, device: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.store.path = dir.join("gate.db");
    config.status.enabled = true;
    config.scanners.push(ScannerConfig::Serial {
        name: Some("lane".into()),
        device: device.to_owned(),
        profile: None,
        baud: Some(115_200),
        terminator: Some("\r\n".into()),
        max_line: Some(400),
        line_timeout_ms: Some(2000),
        reopen_ms: Some(100),
    });
    config
}

/// Waits until the agent has the scanner port open, so no line is sent before.
fn wait_until_reading(agent: &Running) {
    let addr = agent.status_addr.unwrap();
    wait_for(
        || {
            http_get(addr, "/api/status")
                .1
                .contains("\"lane\":\"reading\"")
        },
        "the agent to open the scanner port",
    );
}

fn journal_outcomes(path: &std::path::Path) -> Vec<(String, bool, String)> {
    let store = Store::open(path).unwrap();
    store
        .journal(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.record.outcome, e.record.opened, e.record.source))
        .collect()
}

#[test]
fn serial_scanner_lines_get_the_right_verdicts_in_journal_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::new();
    let mut store = Store::open(&dir.path().join("gate.db")).unwrap();
    store
        .import_snapshot(&venue.snapshot(10), &public(&venue.server), 0)
        .unwrap();
    drop(store);

    let pty = PtyPair::new(dir.path());
    let outputs = RecordingOutputs::new();
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let agent = Running::start(
        config(dir.path(), &pty.scanner),
        vec![],
        outputs.clone(),
        clock,
    );

    let overlong = "A".repeat(1000);
    let lines = [
        venue.code(1),        // valid
        venue.forged_code(3), // forged
        venue.stale_code(),   // stale generation
        venue.wrong_event_code(),
        venue.code(1), // re-entry attempt: already inside
        "hello\u{1}world".to_owned(),
        overlong,
        venue.code(2).to_ascii_lowercase(), // a wedge with caps lock: still valid
    ];
    let mut stream = Vec::new();
    for l in &lines {
        stream.extend_from_slice(l.as_bytes());
        stream.extend_from_slice(b"\r\n");
    }
    // Bare terminators between scans are not scans.
    stream.extend_from_slice(b"\r\n");
    wait_until_reading(&agent);
    pty.send(&stream);

    let db = dir.path().join("gate.db");
    wait_for(
        || journal_outcomes(&db).len() >= lines.len(),
        "every line to be journaled",
    );
    agent.stop();

    let journal = journal_outcomes(&db);
    let outcomes: Vec<&str> = journal.iter().map(|(o, _, _)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "admitted",
            "bad_signature",
            "stale_generation",
            "wrong_event",
            "already_inside",
            "unreadable_code",
            "unreadable_code",
            "admitted",
        ]
    );
    assert!(journal.iter().all(|(_, _, source)| source == "lane"));

    let actuations = outputs.actuations();
    assert_eq!(actuations.len(), lines.len());
    let relays: Vec<bool> = actuations
        .iter()
        .map(|a| a.relay_pulse_ms == Some(200))
        .collect();
    assert_eq!(
        relays,
        [true, false, false, false, false, false, false, true]
    );
    assert_eq!(actuations[1].led, Led::Red);
    assert_eq!(actuations[0].led, Led::Green);

    let store = Store::open(&db).unwrap();
    let entries = store.journal(None).unwrap();
    for (a, e) in actuations.iter().zip(&entries) {
        assert_eq!(
            a.scan_id, e.record.scan_id,
            "outputs fire in journal order, one per scan"
        );
    }
    let t1 = store.ticket_state(EVENT, 1).unwrap().unwrap();
    assert!(matches!(
        t1.presence,
        shared::Presence::Inside { gate: 1, .. }
    ));
    assert_eq!(t1.entries, 1);
    assert_eq!(
        store.ticket_state(EVENT, 3).unwrap().unwrap().entries,
        0,
        "forged scan changed nothing"
    );
}

#[test]
fn serial_scanner_is_reopened_after_it_is_unplugged() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::new();
    let mut store = Store::open(&dir.path().join("gate.db")).unwrap();
    store
        .import_snapshot(&venue.snapshot(10), &public(&venue.server), 0)
        .unwrap();
    drop(store);
    let db = dir.path().join("gate.db");

    let pty = PtyPair::new(dir.path());
    let outputs = RecordingOutputs::new();
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let agent = Running::start(
        config(dir.path(), &pty.scanner),
        vec![],
        outputs.clone(),
        clock,
    );
    wait_until_reading(&agent);
    pty.send(format!("{}\r\n", venue.code(1)).as_bytes());
    wait_for(|| journal_outcomes(&db).len() == 1, "first scan");

    pty.unplug();
    let pty = PtyPair::new(dir.path());
    // The agent finds the scanner again by itself; keep sending until it reads.
    let code = format!("{}\r\n", venue.code(3));
    wait_for(
        || {
            pty.send(code.as_bytes());
            std::thread::sleep(std::time::Duration::from_millis(100));
            journal_outcomes(&db).len() >= 2
        },
        "a scan after the scanner came back",
    );
    agent.stop();
    let journal = journal_outcomes(&db);
    assert_eq!(journal[0].0, "admitted");
    assert_eq!(
        journal[1].0, "admitted",
        "ticket 3 admitted through the reopened port"
    );
    assert!(journal[2..].iter().all(|(o, _, _)| o == "already_inside"));
}
