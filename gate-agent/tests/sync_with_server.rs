//! The agent against the REAL sync server, started in-process on port 0 over a
//! throwaway SQLite database: enrolment, cache changes reaching a running gate,
//! journal upload after an outage, online/offline on the status page.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/sync_server.rs"]
mod sync_server_harness;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use ed25519_dalek::SigningKey;
use gate_agent::RecordingOutputs;
use gate_agent::store::Store;
use shared::{PublicKeyBytes, TicketStatus};
use sync_server_harness::*;

fn agent_cli(db: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(agent_bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("GATE_AGENT_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ticket_status(db: &Path, ticket: u32) -> Option<TicketStatus> {
    Store::open(db)
        .unwrap()
        .ticket_state(EVENT, ticket)
        .unwrap()
        .map(|s| s.status)
}

fn cursor(db: &Path) -> u64 {
    Store::open(db)
        .unwrap()
        .meta("cursor")
        .unwrap()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn enrolment_is_recorded_once_and_a_used_token_is_refused_with_a_clear_message() {
    let server = SyncServer::start();
    let venue = Venue::new();
    server.seed(&venue, 3);
    let token = server.enrol_token();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");

    let (ok, stdout, stderr) = agent_cli(
        &db,
        &["enrol", "--server", &server.url(), "--token", &token],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("enrolled as gate 1 \"north\""), "{stdout}");
    let key = dir.path().join("device.key");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the device key is private");
    }
    let key_before = std::fs::read(&key).unwrap();
    let store = Store::open(&db).unwrap();
    let enrolment = gate_agent::enrolment::Enrolment::load(&store)
        .unwrap()
        .unwrap();
    assert_eq!(enrolment.event_id, EVENT);
    assert_eq!(enrolment.gate.name, "north");
    assert_eq!(
        enrolment.server_key,
        PublicKeyBytes::from(&SigningKey::from_bytes(&[42; 32]).verifying_key())
    );
    drop(store);

    // The same box again: refused locally, nothing overwritten.
    let (ok, _, stderr) = agent_cli(
        &db,
        &["enrol", "--server", &server.url(), "--token", &token],
    );
    assert!(!ok);
    assert!(stderr.contains("already enrolled"), "{stderr}");
    assert_eq!(std::fs::read(&key).unwrap(), key_before);

    // Another box with the used token: the server refuses it.
    let other = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = agent_cli(
        &other.path().join("gate.db"),
        &["enrol", "--server", &server.url(), "--token", &token],
    );
    assert!(!ok);
    assert!(
        stderr.contains("refused the enrolment token (token_used)"),
        "{stderr}"
    );
    let (ok, _, stderr) = agent_cli(
        &other.path().join("gate.db"),
        &[
            "enrol",
            "--server",
            &server.url(),
            "--token",
            "no-such-token",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("(unknown_token)"), "{stderr}");
}

#[test]
fn enrolling_against_an_unreachable_server_says_so() {
    // A port that was just free: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = agent_cli(
        &dir.path().join("gate.db"),
        &[
            "enrol",
            "--server",
            &format!("http://{addr}"),
            "--token",
            "t",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("cannot reach the sync server"), "{stderr}");
}

/// First boot: the token file is on the boot partition before the network
/// or the server is up. The agent keeps trying, enrols once the server
/// answers, and a refused token fails at once instead of waiting.
#[test]
fn first_boot_enrolment_from_a_file_waits_for_the_server_and_not_for_a_refusal() {
    let mut server = SyncServer::start();
    let venue = Venue::new();
    server.seed(&venue, 3);
    let token = server.enrol_token();
    server.take_down();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let file = dir.path().join("gate-enrol.toml");
    std::fs::write(
        &file,
        format!("server = \"{}\"\ntoken = \"{token}\"\n", server.url()),
    )
    .unwrap();
    let enrolling = Command::new(agent_bin())
        .arg("--db")
        .arg(&db)
        .args(["enrol", "--from-file"])
        .arg(&file)
        .args(["--wait", "60s"])
        .env_remove("GATE_AGENT_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It has failed at least once (the first retry comes after 1 s) before
    // the server is back.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    server.bring_back();
    let out = enrolling.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("enrolment failed; trying again"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("enrolled as gate 1 \"north\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same file again on the same box (the power went before the file
    // was removed): nothing to do, and success, so the unit removes it.
    let (ok, stdout, stderr) = agent_cli(&db, &["enrol", "--from-file", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("already enrolled with"), "{stdout}");

    // The same (now spent) token on another box: refused at once, however
    // long it was told to wait.
    let other = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (ok, _, stderr) = agent_cli(
        &other.path().join("gate.db"),
        &[
            "enrol",
            "--from-file",
            file.to_str().unwrap(),
            "--wait",
            "10min",
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("(token_used)"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // A file that is not an enrolment file says what it should hold.
    std::fs::write(&file, "server = \"http://x\"\n").unwrap();
    let (ok, _, stderr) = agent_cli(
        &other.path().join("gate.db"),
        &["enrol", "--from-file", file.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(stderr.contains("missing field `token`"), "{stderr}");
}

#[test]
fn published_ticket_reaches_the_running_gate_and_a_revoked_one_is_then_refused() {
    let server = SyncServer::start();
    let venue = Venue::new();
    server.seed(&venue, 3);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let config = agent_config(&db);
    enrol(&config, &server.url(), &server.enrol_token());

    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config,
        vec![input],
        outputs.clone(),
        Arc::new(gate_agent::SystemClock),
    );
    wait_for(|| ticket_status(&db, 3).is_some(), "the snapshot");
    wait_for(|| status(&agent)["online"] == true, "online");
    wait_for(|| status(&agent)["setup_error"].is_null(), "gate set up");
    assert_eq!(ticket_status(&db, 4), None);

    // Ticket 4 is sold after the gate synced: the delta brings it.
    let mut sold = venue.snapshot_open_now(4).tickets[3];
    server.publish_tickets(&[sold]);
    wait_for(|| ticket_status(&db, 4).is_some(), "the new ticket");
    scans.send(venue.code(4)).unwrap();
    wait_for(|| journal(&db).len() == 1, "first verdict");
    assert_eq!(
        journal(&db)[0].record.outcome,
        "admitted",
        "{}",
        journal(&db)[0].detail
    );

    // Ticket 3 is revoked on the server: the gate refuses it.
    sold = venue.snapshot_open_now(3).tickets[2];
    sold.status = TicketStatus::Revoked;
    server.publish_tickets(&[sold]);
    wait_for(
        || ticket_status(&db, 3) == Some(TicketStatus::Revoked),
        "the revocation",
    );
    scans.send(venue.code(3)).unwrap();
    wait_for(|| journal(&db).len() == 2, "second verdict");
    let refused = &journal(&db)[1];
    assert_eq!(refused.record.ticket_id, Some(3));
    assert!(!refused.record.opened);
    assert_ne!(refused.record.outcome, "admitted");
    let actuations = outputs.actuations();
    assert!(actuations[0].relay_pulse_ms.is_some());
    assert_eq!(actuations[1].relay_pulse_ms, None, "turnstile stays shut");

    // The admitted ticket keeps its "inside" state across later deltas.
    let before = cursor(&db);
    sold = venue.snapshot_open_now(4).tickets[3];
    server.publish_tickets(&[sold]);
    wait_for(|| cursor(&db) > before, "the re-published ticket");
    scans.send(venue.code(4)).unwrap();
    wait_for(|| journal(&db).len() == 3, "third verdict");
    assert_eq!(journal(&db)[2].record.outcome, "already_inside");
    agent.stop();
}

#[test]
fn scans_made_while_the_server_is_down_are_uploaded_once_when_it_returns() {
    let mut server = SyncServer::start();
    let venue = Venue::new();
    server.seed(&venue, 5);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let config = agent_config(&db);
    enrol(&config, &server.url(), &server.enrol_token());

    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config,
        vec![input],
        outputs.clone(),
        Arc::new(gate_agent::SystemClock),
    );
    wait_for(|| status(&agent)["online"] == true, "online");
    wait_for(|| status(&agent)["setup_error"].is_null(), "gate set up");
    assert_eq!(metric(&agent, "gate_online"), "1");
    assert!(status(&agent)["last_sync_at"].is_i64());

    server.take_down();
    wait_for(|| status(&agent)["online"] == false, "offline");
    assert_eq!(metric(&agent, "gate_online"), "0");
    assert!(status(&agent)["sync_error"].is_string());

    for ticket in 1..=3 {
        scans.send(venue.code(ticket)).unwrap();
    }
    wait_for(|| outputs.actuations().len() == 3, "three verdicts offline");
    let rows = journal(&db);
    assert!(
        rows.iter().all(|r| r.record.outcome == "admitted"),
        "{:?}",
        rows.iter().map(|r| &r.detail).collect::<Vec<_>>()
    );
    assert!(rows.iter().all(|r| !r.uploaded), "server is down");
    wait_for(
        || status(&agent)["counts"]["unsent"] == 3,
        "backlog on the page",
    );
    assert_eq!(metric(&agent, "gate_journal_unsent"), "3");

    server.bring_back();
    wait_for(
        || journal(&db).iter().all(|r| r.uploaded),
        "journal marked uploaded",
    );
    wait_for(|| status(&agent)["online"] == true, "online again");
    assert_eq!(metric(&agent, "gate_online"), "1");
    assert_eq!(status(&agent)["counts"]["unsent"], 0);
    let (admitted, rejected, _) = server.gate_counts();
    assert_eq!(
        (admitted, rejected),
        (3, 0),
        "each scan stored exactly once"
    );
    // Backlog reports ride on every request; the poll after the upload says 0.
    wait_for(|| server.gate_counts().2 == 0, "backlog 0 at the server");
    agent.stop();
    assert_eq!(server.gate_counts().0, 3);
}

#[test]
fn a_server_that_accepts_but_never_answers_marks_the_gate_offline() {
    let server = SyncServer::start();
    let venue = Venue::new();
    server.seed(&venue, 2);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let mut config = agent_config(&db);
    enrol(&config, &server.url(), &server.enrol_token());

    // A listener whose connections are accepted by the kernel and never read.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config.sync.server = Some(format!("http://{}", silent.local_addr().unwrap()));
    config.sync.request_timeout_secs = 1;
    let agent = Running::start(
        config,
        vec![],
        RecordingOutputs::new(),
        Arc::new(gate_agent::SystemClock),
    );
    wait_for(
        || status(&agent)["sync_error"].as_str().is_some(),
        "a failed request",
    );
    let view = status(&agent);
    assert_eq!(view["online"], false);
    assert_eq!(view["sync_enabled"], true);
    assert!(
        view["sync_error"]
            .as_str()
            .unwrap()
            .contains("server unreachable"),
        "{view}"
    );
    assert_eq!(metric(&agent, "gate_online"), "0");
    agent.stop();
    drop(silent);
}
