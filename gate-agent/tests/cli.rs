//! The command line a technician uses: config check, cache import/info,
//! verify, journal export, status.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Output};

use common::*;

fn agent(args: &[&str]) -> Output {
    Command::new(agent_bin())
        .args(args)
        .env_remove("GATE_AGENT_CONFIG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn firmware_config() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-config")
}

#[test]
fn shipped_example_config_and_profiles_are_valid() {
    let example = firmware_config().join("gate-agent.example.toml");
    let out = agent(&["config", "check", example.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OK"));
    // It names a device that is not plugged in here: a warning, not an error.
    assert!(
        text(&out).contains("warning: scanner[0].device"),
        "{}",
        text(&out)
    );

    let mut checked = 0;
    for entry in std::fs::read_dir(firmware_config().join("scanners")).unwrap() {
        let p = entry.unwrap().path();
        gate_agent::profiles::ScannerProfile::load(&p).unwrap_or_else(|e| panic!("{e}"));
        checked += 1;
    }
    for entry in std::fs::read_dir(firmware_config().join("boards")).unwrap() {
        let p = entry.unwrap().path();
        gate_agent::profiles::BoardProfile::load(&p).unwrap_or_else(|e| panic!("{e}"));
        checked += 1;
    }
    assert!(checked >= 4);
}

#[test]
fn bad_config_is_explained_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[outputs]\nkind = \"gpio\"\nboard_profile = \"missing-board.toml\"\nrelay_pulse_ms = 9\n\
         [[scanner]]\nkind = \"serial\"\ndevice = \"/dev/ttyACM0\"\nprofile = \"nope.toml\"\n",
    )
    .unwrap();
    let out = agent(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("3 problem(s)"), "{t}");
    assert!(
        t.contains("outputs.relay_pulse_ms: 9 is outside 20..=5000 ms"),
        "{t}"
    );
    assert!(
        t.contains("outputs.board_profile: cannot read profile"),
        "{t}"
    );
    assert!(t.contains("scanner[0].profile: cannot read profile"), "{t}");

    std::fs::write(&bad, "[store\npath = 1").unwrap();
    let out = agent(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("line 1"), "{}", text(&out));

    let out = agent(&[
        "config",
        "check",
        dir.path().join("absent.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("cannot read config file"),
        "{}",
        text(&out)
    );
}

#[test]
fn unreadable_or_foreign_cache_file_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"PK\x03\x04 not a cache").unwrap();
    let out = agent(&[
        "--db",
        db.to_str().unwrap(),
        "cache",
        "import",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("not a gate cache file"),
        "{}",
        text(&out)
    );

    let out = agent(&[
        "--db",
        db.to_str().unwrap(),
        "cache",
        "import",
        dir.path().join("gone.bin").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("cannot read cache file"),
        "{}",
        text(&out)
    );

    // A cache signed by another server than the first one is refused.
    let venue = Venue::new();
    let good = venue.write_cache_file(dir.path(), &venue.snapshot(3));
    assert!(
        agent(&[
            "--db",
            db.to_str().unwrap(),
            "cache",
            "import",
            good.to_str().unwrap()
        ])
        .status
        .success()
    );
    let other = Venue {
        server: ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        ..Venue::new()
    };
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    let foreign = other.write_cache_file(&foreign, &other.snapshot(3));
    let out = agent(&[
        "--db",
        db.to_str().unwrap(),
        "cache",
        "import",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("not by the expected server key"),
        "{}",
        text(&out)
    );
}

#[test]
fn import_verify_export_and_status_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let dbs = db.to_str().unwrap();
    let venue = Venue::new();
    let cache = venue.write_cache_file(dir.path(), &venue.snapshot_open_now(5));
    let out = agent(&["--db", dbs, "cache", "import", cache.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("imported 1 event(s), 5 ticket(s)"),
        "{}",
        text(&out)
    );

    let out = agent(&["--db", dbs, "cache", "info"]);
    assert!(
        text(&out).contains("Harbour Lights Festival"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("5 cached, 0 inside"), "{}", text(&out));

    let out = agent(&["--db", dbs, "verify", &venue.code(1)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OPEN: Welcome"), "{}", text(&out));
    assert!(text(&out).contains("tier: VIP"), "{}", text(&out));
    let out = agent(&["--db", dbs, "verify", &venue.forged_code(1)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out).contains("REFUSE: FORGED CODE"), "{}", text(&out));

    // Record two scans through the daemon on stdin, then export.
    let mut child = Command::new(agent_bin())
        .args([
            "--db",
            dbs,
            "--set",
            "status.enabled=false",
            "run",
            "--stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}\n{}", venue.code(1), venue.code(1)).unwrap();
    }
    wait_for(|| journal(&db).len() == 2, "two scans recorded");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = agent(&["--db", dbs, "journal", "export", "--format", "jsonl"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"], "admitted");
    assert_eq!(lines[1]["outcome"], "already_inside");
    assert_eq!(lines[1]["source"], "stdin");

    let out = agent(&["--db", dbs, "journal", "export", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(csv.starts_with("seq,scan_id,gate,direction"), "{csv}");
    assert_eq!(csv.lines().count(), 3);
    let out = agent(&[
        "--db",
        dbs,
        "journal",
        "export",
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 0);
    assert!(text(&out).contains("exported 0 scan(s)"));

    let out = agent(&["--db", dbs, "status"]);
    assert!(
        text(&out).contains("1 admitted, 1 rejected"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("2 entries, 2 not uploaded"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_start_up_import_skips_missing_files_and_never_rolls_the_cache_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let dbs = db.to_str().unwrap();
    let venue = Venue::new();
    let hook = |file: &std::path::Path| {
        agent(&[
            "--db",
            dbs,
            "cache",
            "import",
            "--if-present",
            "--if-newer",
            file.to_str().unwrap(),
        ])
    };

    // No stick, no file on the boot partition: nothing to do, no error.
    let out = hook(&dir.path().join("gate-cache.bin"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing imported"), "{}", text(&out));

    // A file at cursor 7 into an empty store: imported.
    let older = dir.path().join("older");
    std::fs::create_dir(&older).unwrap();
    let older = venue.write_cache_file(&older, &venue.snapshot(3));
    let out = hook(&older);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("imported 1 event(s), 3 ticket(s)"),
        "{}",
        text(&out)
    );

    // A newer one (cursor 9, five tickets) replaces it.
    let mut snapshot = venue.snapshot(5);
    snapshot.cursor = 9;
    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let newer = venue.write_cache_file(&newer, &snapshot);
    let out = hook(&newer);
    assert!(text(&out).contains("5 ticket(s)"), "{}", text(&out));

    // The older file again, or the same one: left alone on every start.
    for file in [&older, &newer] {
        let out = hook(file);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("not newer than the cache (cursor")
                && text(&out).contains("cache at 9"),
            "{}",
            text(&out)
        );
    }
    let out = agent(&["--db", dbs, "cache", "info"]);
    assert!(text(&out).contains("5 cached"), "{}", text(&out));

    // A bad file still fails the hook loudly (and the unit goes on: `-`).
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"not a cache").unwrap();
    let out = hook(&junk);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
