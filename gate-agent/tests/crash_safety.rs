//! Crash safety: the agent runs as a child process and is killed with SIGKILL at
//! random moments while scans arrive. After every restart, each scan whose relay
//! fired must be in the journal exactly once, and ticket states must agree with
//! the journal.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use gate_agent::outputs::FileOutputs;
use gate_agent::store::Store;

/// Small deterministic generator so a failing run can be repeated.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn sigkill_at_random_moments_never_loses_or_doubles_an_opened_scan() {
    let dir = tempfile::tempdir().unwrap();
    let venue = Venue::new();
    let cache = venue.write_cache_file(dir.path(), &venue.snapshot_open_now(40));
    let db = dir.path().join("gate.db");
    let relay_log = dir.path().join("relay.jsonl");
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = \"{}\"\n[outputs]\nkind = \"file\"\nfile = \"{}\"\n[status]\nenabled = false\n\
             [[scanner]]\nkind = \"stdin\"\n",
            db.display(),
            relay_log.display()
        ),
    )
    .unwrap();
    let import = Command::new(agent_bin())
        .args([
            "--config",
            config.to_str().unwrap(),
            "cache",
            "import",
            cache.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let rounds: u32 = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let mut rng = XorShift(seed);
    let mut sent = 0;
    for _ in 0..rounds {
        let mut child = Command::new(agent_bin())
            .args(["--config", config.to_str().unwrap(), "run"])
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let scans = 5 + rng.below(30);
        sent += scans;
        let mut lines = String::new();
        for _ in 0..scans {
            let ticket = 1 + rng.below(40) as u32;
            lines.push_str(&venue.code(ticket));
            lines.push('\n');
        }
        let _ = stdin.write_all(lines.as_bytes());
        let _ = stdin.flush();
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    let store = Store::open(&db).unwrap();
    let journal = store.journal(None).unwrap();
    let fired = FileOutputs::read(&relay_log).unwrap();
    assert!(
        !journal.is_empty(),
        "some scans were recorded across {rounds} runs"
    );

    let mut seen = HashSet::new();
    for e in &journal {
        assert!(
            seen.insert(e.record.scan_id),
            "scan {} journaled twice",
            e.record.scan_id
        );
    }
    let by_id: HashMap<_, _> = journal.iter().map(|e| (e.record.scan_id, e)).collect();
    let mut opened_fired = 0;
    for a in &fired {
        let entry = by_id
            .get(&a.scan_id)
            .unwrap_or_else(|| panic!("actuation {} has no journal row", a.scan_id));
        assert_eq!(
            a.relay_pulse_ms.is_some(),
            entry.record.opened,
            "relay matches the journaled verdict"
        );
        opened_fired += usize::from(a.relay_pulse_ms.is_some());
    }
    assert!(opened_fired > 0, "the relay fired at least once");
    eprintln!(
        "{rounds} runs killed: {sent} scans sent, {} journaled, {} actuations, {opened_fired} relay pulses",
        journal.len(),
        fired.len()
    );

    // Ticket states agree with the journal: entries and presence follow the
    // admitted scans, and nothing else.
    let mut admitted: HashMap<u32, u32> = HashMap::new();
    for e in journal.iter().filter(|e| e.record.opened) {
        *admitted.entry(e.record.ticket_id.unwrap()).or_default() += 1;
    }
    for state in store.all_ticket_states().unwrap() {
        let n = admitted.get(&state.ticket_id).copied().unwrap_or(0);
        assert_eq!(
            state.entries, n,
            "ticket {} entries vs journal",
            state.ticket_id
        );
        assert!(
            n <= 1,
            "re-entry is forbidden, so no ticket is admitted twice"
        );
        assert_eq!(
            matches!(state.presence, shared::Presence::Inside { .. }),
            n == 1
        );
    }
}
