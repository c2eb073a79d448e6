//! systemd integration: `Type=notify` readiness and a watchdog fed from the
//! decision loop, checked with a real notify socket.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn agent_reports_ready_then_feeds_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let db = dir.path().join("gate.db");
    // systemd sets WATCHDOG_PID to the service's main pid; `exec` keeps the shell's.
    let script = format!(
        "WATCHDOG_PID=$$ exec '{}' --db '{}' --set status.enabled=false run --stdin",
        agent_bin().display(),
        db.display()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "300000")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    while messages
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        let n = socket
            .recv(&mut buf)
            .expect("a notify message from the agent");
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        messages[0].contains("READY=1"),
        "first message is readiness: {messages:?}"
    );
}
