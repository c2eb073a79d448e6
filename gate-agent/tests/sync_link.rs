//! The agent against the REAL sync server through a link the test makes
//! slow or cuts (a TCP relay in between): on a slow link that still answers
//! the gate goes offline and stays offline instead of flapping, the upload
//! backlog shows while the link is down, and the gate is online again only
//! once the cache feed and the journal upload both made it through.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/sync_server.rs"]
mod sync_server_harness;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gate_agent::RecordingOutputs;
use sync_server_harness::*;

/// What the relay does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quality {
    Good,
    /// Every piece of an answer arrives this much late.
    Slow(Duration),
    /// Connections are cut and new ones closed at once.
    Down,
}

/// A TCP relay between the agent and the server.
struct Relay {
    addr: SocketAddr,
    quality: Arc<Mutex<Quality>>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let quality = Arc::new(Mutex::new(Quality::Good));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s) = (Arc::clone(&quality), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => continue,
                };
                if *q.lock().unwrap() == Quality::Down {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                for (from, to, delayed) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        false,
                    ),
                    (server, client, true),
                ] {
                    let (q, s) = (Arc::clone(&q), Arc::clone(&s));
                    std::thread::spawn(move || pump(from, to, delayed, &q, &s));
                }
            }
        });
        Self {
            addr,
            quality,
            stop,
        }
    }

    fn set(&self, quality: Quality) {
        *self.quality.lock().unwrap() = quality;
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either closes, the link goes down or the
/// relay stops; answers (`delayed`) wait out a slow link first.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    delayed: bool,
    quality: &Mutex<Quality>,
    stop: &AtomicBool,
) {
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let now = *quality.lock().unwrap();
        if now == Quality::Down || stop.load(Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let (true, Quality::Slow(late)) = (delayed, *quality.lock().unwrap()) {
                    std::thread::sleep(late);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[test]
fn a_poor_link_shows_offline_without_flapping_until_feed_and_upload_both_get_through() {
    let server = SyncServer::start();
    let venue = Venue::new();
    server.seed(&venue, 5);
    let relay = Relay::start(server.addr);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let mut config = agent_config(&db);
    enrol(&config, &server.url(), &server.enrol_token());
    config.sync.server = Some(relay.url());
    config.sync.request_timeout_secs = 10;
    config.sync.offline_after_failures = 3;
    config.sync.slow_request_ms = 700;

    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config,
        vec![input],
        outputs.clone(),
        Arc::new(gate_agent::SystemClock),
    );
    wait_for(
        || status(&agent)["online"] == true,
        "online through the relay",
    );
    wait_for(|| status(&agent)["setup_error"].is_null(), "gate set up");

    // Every answer still arrives, two seconds late.
    relay.set(Quality::Slow(Duration::from_secs(2)));
    wait_for(
        || status(&agent)["online"] == false,
        "offline on a slow link",
    );
    // It stays offline while late answers keep arriving (each of them used
    // to set it online again until the next one failed).
    let answered = status(&agent)["last_sync_at"].as_i64().unwrap();
    wait_for(
        || {
            let view = status(&agent);
            assert_eq!(
                view["online"], false,
                "flapped online on a slow link: {view}"
            );
            view["last_sync_at"].as_i64().unwrap() >= answered + 4
        },
        "late answers over four seconds",
    );
    assert_eq!(metric(&agent, "gate_online"), "0");

    // The link goes down: scans wait in the journal and the page says how many.
    relay.set(Quality::Down);
    for ticket in 1..=2 {
        scans.send(venue.code(ticket)).unwrap();
    }
    wait_for(|| outputs.actuations().len() == 2, "two verdicts offline");
    wait_for(
        || status(&agent)["counts"]["unsent"] == 2,
        "the backlog on the page",
    );
    assert_eq!(metric(&agent, "gate_journal_unsent"), "2");
    assert_eq!(status(&agent)["online"], false);

    // Good again: online only once the upload made it too.
    relay.set(Quality::Good);
    wait_for(|| status(&agent)["online"] == true, "online again");
    assert!(
        journal(&db).iter().all(|r| r.uploaded),
        "online before the journal got through"
    );
    assert_eq!(status(&agent)["counts"]["unsent"], 0);
    let (admitted, _, _) = server.gate_counts();
    assert_eq!(admitted, 2);
    agent.stop();
}
