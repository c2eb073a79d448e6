//! The kiosk status server: page, JSON view, live feed (SSE) and metrics,
//! served by the running agent.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;

use common::*;
use gate_agent::config::Config;
use gate_agent::{ManualClock, RecordingOutputs};

#[test]
fn status_server_shows_verdicts_counts_and_metrics_live() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(10));
    let mut config = Config::default();
    config.store.path = db.clone();
    config.gate.name = "North 3".into();
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let clock = Arc::new(ManualClock::new(DURING_DOORS_MS));
    let agent = Running::start(config, vec![input], outputs.clone(), clock);
    let addr = agent.status_addr.unwrap();

    // Subscribe to the live feed before scanning.
    let mut sse = std::net::TcpStream::connect(addr).unwrap();
    write!(
        sse,
        "GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut sse = BufReader::new(sse);
    let mut first = String::new();
    read_event(&mut sse, &mut first);
    assert!(first.contains("\"gate_name\":\"North 3\""), "{first}");

    scans.send(venue.code(1)).unwrap(); // tier 1 = VIP
    scans.send(venue.code(1)).unwrap();
    wait_for(|| outputs.actuations().len() == 2, "two verdicts");
    let mut live = String::new();
    while !live.contains("ALREADY INSIDE") {
        live.clear();
        read_event(&mut sse, &mut live);
    }

    let (_, page) = http_get(addr, "/");
    assert!(page.contains("EventSource(\"/events\")"));
    let (_, json) = http_get(addr, "/api/status");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["counts"]["admitted"], 1);
    assert_eq!(v["counts"]["rejected"], 1);
    assert_eq!(v["counts"]["unsent"], 2);
    assert_eq!(v["last"]["outcome"], "already_inside");
    assert_eq!(v["last"]["opens"], false);
    assert_eq!(v["cache_age_secs"], 600);
    assert_eq!(v["online"], false);
    wait_for(
        || {
            let (_, j) = http_get(addr, "/api/status");
            serde_json::from_str::<serde_json::Value>(&j).unwrap()["counts"]["inside"] == 1
        },
        "inside count to follow the admission",
    );
    let admitted_first: serde_json::Value = {
        let rows = journal(&db);
        serde_json::json!(rows[0].record.outcome)
    };
    assert_eq!(admitted_first, "admitted");

    let (_, metrics) = http_get(addr, "/metrics");
    agent.stop();
    assert!(
        metrics.contains("gate_scans_total{outcome=\"admitted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gate_scans_total{outcome=\"already_inside\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gate_decision_seconds_count 2"),
        "{metrics}"
    );
    assert!(metrics.contains("gate_journal_ok 1"), "{metrics}");
}

/// Reads one SSE event's data line (skipping HTTP headers and chunk sizes).
fn read_event(r: &mut impl BufRead, out: &mut String) {
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "feed closed");
        if let Some(data) = line.strip_prefix("data: ") {
            out.push_str(data);
            return;
        }
    }
}
