//! A keyboard-wedge scanner played by a real virtual keyboard (uinput): the
//! agent grabs it through evdev and the typed code reaches the journal.
//! Needs /dev/uinput; where the machine has none the test says so and passes.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use evdev::uinput::VirtualDevice;
use evdev::{AttributeSet, EventType, InputEvent, KeyCode};
use gate_agent::config::{Config, ScannerConfig};
use gate_agent::wedge::events_for_text;
use gate_agent::{ManualClock, RecordingOutputs};

#[test]
fn virtual_keyboard_scan_is_grabbed_decided_and_journaled() {
    if !Path::new("/dev/uinput").exists() {
        eprintln!("SKIPPED: /dev/uinput is not available here (load the uinput module to run it)");
        return;
    }
    let mut keys = AttributeSet::<KeyCode>::new();
    for code in 1..=120u16 {
        keys.insert(KeyCode(code));
    }
    let mut keyboard = VirtualDevice::builder()
        .unwrap()
        .name("gate-agent test wedge scanner")
        .with_keys(&keys)
        .unwrap()
        .build()
        .unwrap();
    let mut node = None;
    wait_for(
        || {
            node = keyboard
                .enumerate_dev_nodes_blocking()
                .ok()
                .and_then(|mut nodes| nodes.find_map(Result::ok))
                .filter(|p| p.exists());
            node.is_some()
        },
        "the virtual keyboard's device node",
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(5));
    let mut config = Config::default();
    config.store.path = db.clone();
    config.scanners.push(ScannerConfig::Wedge {
        name: Some("wedge".into()),
        device: node.unwrap(),
        reopen_ms: Some(100),
    });
    let outputs = RecordingOutputs::new();
    let agent = Running::start(
        config,
        vec![],
        outputs.clone(),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
    );
    let addr = agent.status_addr.unwrap();
    wait_for(
        || http_get(addr, "/api/status").1.contains("grabbed"),
        "the exclusive grab",
    );

    let events: Vec<InputEvent> = events_for_text(&venue.code(1))
        .into_iter()
        .map(|e| InputEvent::new(EventType::KEY.0, e.code, e.value))
        .collect();
    for event in events {
        keyboard.emit(&[event]).unwrap();
    }
    wait_for(|| journal(&db).len() == 1, "the typed scan to be journaled");
    agent.stop();
    let rows = journal(&db);
    assert_eq!(rows[0].record.outcome, "admitted");
    assert_eq!(rows[0].record.source, "wedge");
    assert_eq!(outputs.actuations()[0].relay_pulse_ms, Some(200));
}
