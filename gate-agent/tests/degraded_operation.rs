//! The gate under trouble: journal not writable, corrupt store, missing
//! devices. It fails closed (unless told otherwise), says why, and keeps
//! serving what still works.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use gate_agent::config::{Config, JournalFailurePolicy, ScannerConfig};
use gate_agent::{ManualClock, RecordingOutputs};

fn config(db: &std::path::Path) -> Config {
    let mut c = Config::default();
    c.store.path = db.to_owned();
    c.status.enabled = true;
    c
}

/// Makes every journal insert fail, as a full disk would, through a second
/// connection to the same file.
fn break_journal(db: &std::path::Path) {
    gate_agent_sql(
        db,
        "CREATE TRIGGER fail_journal BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    );
}

fn gate_agent_sql(db: &std::path::Path, sql: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[test]
fn journal_write_failure_keeps_the_gate_shut_says_why_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(10));
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config(&db),
        vec![input],
        outputs.clone(),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
    );
    let addr = agent.status_addr.unwrap();

    break_journal(&db);
    scans.send(venue.code(1)).unwrap();
    wait_for(
        || outputs.actuations().len() == 1,
        "verdict on the broken journal",
    );
    let a = &outputs.actuations()[0];
    assert_eq!(
        a.relay_pulse_ms, None,
        "fail closed: the relay did not fire"
    );
    let (_, body) = http_get(addr, "/api/status");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["last"]["outcome"], "journal_unavailable");
    assert!(
        status["journal_error"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{status}"
    );
    assert!(journal(&db).is_empty());

    gate_agent_sql(&db, "DROP TRIGGER fail_journal;");
    scans.send(venue.code(1)).unwrap();
    wait_for(|| outputs.actuations().len() == 2, "verdict after repair");
    agent.stop();
    assert_eq!(
        outputs.actuations()[1].relay_pulse_ms,
        Some(200),
        "ticket 1 was never admitted, so now it is"
    );
    let rows = journal(&db);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record.outcome, "admitted");
}

#[test]
fn fail_open_policy_admits_valid_tickets_without_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(10));
    let mut c = config(&db);
    c.store.on_journal_failure = JournalFailurePolicy::Admit;
    c.status.enabled = false;
    break_journal(&db);
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        c,
        vec![input],
        outputs.clone(),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
    );
    scans.send(venue.code(1)).unwrap();
    scans.send(venue.forged_code(2)).unwrap();
    wait_for(|| outputs.actuations().len() == 2, "two verdicts");
    agent.stop();
    let a = outputs.actuations();
    assert_eq!(a[0].relay_pulse_ms, Some(200));
    assert_eq!(a[1].relay_pulse_ms, None, "a forged code is still refused");
}

#[test]
fn corrupt_store_file_fails_closed_and_the_status_page_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let venue = Venue::new();
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config(&db),
        vec![input],
        outputs.clone(),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
    );
    let addr = agent.status_addr.unwrap();
    scans.send(venue.code(1)).unwrap();
    wait_for(
        || outputs.actuations().len() == 1,
        "a verdict without a store",
    );
    let (status_line, body) = http_get(addr, "/api/status");
    agent.stop();
    assert!(status_line.contains("200"), "{status_line}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        status["journal_error"]
            .as_str()
            .unwrap()
            .contains("store unavailable"),
        "{status}"
    );
    assert_eq!(outputs.actuations()[0].relay_pulse_ms, None);
}

#[test]
fn missing_scanner_device_is_reported_and_other_inputs_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(10));
    let mut c = config(&db);
    c.scanners.push(ScannerConfig::Serial {
        name: Some("unplugged".into()),
        device: dir.path().join("no-such-tty"),
        profile: None,
        baud: None,
        terminator: None,
        max_line: None,
        line_timeout_ms: None,
        reopen_ms: Some(50),
    });
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("handheld");
    let agent = Running::start(
        c,
        vec![input],
        outputs.clone(),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
    );
    let addr = agent.status_addr.unwrap();
    scans.send(venue.code(1)).unwrap();
    wait_for(
        || outputs.actuations().len() == 1,
        "a verdict from the working input",
    );
    wait_for(
        || http_get(addr, "/api/status").1.contains("waiting for"),
        "the missing scanner to show on the status page",
    );
    agent.stop();
    assert_eq!(outputs.actuations()[0].relay_pulse_ms, Some(200));
}
