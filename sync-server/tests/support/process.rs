//! The real `sync-server` binary as a child process, on a config file of
//! its own (database, keys and the embedded chain's file in one folder), so
//! a test can SIGKILL it at any moment and start it again on the same data.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ed25519_dalek::SigningKey;
use shared::wire::{EnrolResponse, JournalAck, ScanRecord};

use crate::common::{ADMIN, Gate, TestClock, enrol_request};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `dir/sync.toml`: the server on `port`, its embedded chain kept in
/// `dir/chain.sqlite` and served as JSON-RPC on `rpc_port`, the replay
/// worker quick, then `extra` (more TOML sections).
pub fn write_config(
    dir: &Path,
    database_url: &str,
    port: u16,
    rpc_port: u16,
    extra: &str,
) -> PathBuf {
    let path = dir.join("sync.toml");
    let text = format!(
        r#"listen = "127.0.0.1:{port}"
database_url = "{database_url}"
server_key_file = "{dir}/server-key"
admin_token = "{ADMIN}"
[chain]
embedded_file = "{dir}/chain.sqlite"
authority_key_file = "{dir}/authority.json"
issuer_key_file = "{dir}/issuer-key"
rpc_listen = "127.0.0.1:{rpc_port}"
[replay]
idle_ms = 50
batch_max = 5
{extra}"#,
        dir = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A running server process.
pub struct Process {
    pub child: Child,
    pub url: String,
}

/// Starts the server on `config` and waits until `/health` answers 200.
pub async fn start(config: &Path, port: u16) -> Process {
    start_with_env(config, port, &[]).await
}

/// [`start`] with more environment (e.g. a failpoint).
pub async fn start_with_env(config: &Path, port: u16, env: &[(&str, &str)]) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_sync-server"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/health")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Process { child, url }
}

impl Process {
    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and waits for the process to end.
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// An admin call that must succeed; its JSON answer (null when none).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        admin(&self.url, method, path, body).await
    }
}

/// An admin call to the server (or balancer) at `url` that must succeed;
/// its JSON answer (null when none).
pub async fn admin(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = reqwest::Client::new()
        .request(method, format!("{url}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(serde_json::Value::Null)
}

/// Enrols a device with key `[seed; 32]` as gate `gate` of `event` on the
/// server at `url`. Its HTTP client opens a new connection per request, so
/// behind a balancer its requests spread over the instances.
pub async fn enrol(url: &str, event: u64, gate: &str, seed: u8) -> Gate {
    let token = admin(
        url,
        reqwest::Method::POST,
        &format!("/api/admin/events/{event}/enrol-tokens"),
        serde_json::json!({ "gate": gate }),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = SigningKey::from_bytes(&[seed; 32]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = http
        .post(format!("{url}/gate/v1/enrol"))
        .json(&enrol_request(&token, &key))
        .send()
        .await
        .unwrap();
    let response: EnrolResponse = r.json().await.unwrap();
    Gate {
        server: url.to_owned(),
        http,
        key,
        response,
        clock: Arc::new(TestClock(AtomicI64::new(now()))),
    }
}

/// Uploads one batch of a gate's journal; the ids acknowledged, or `None`
/// when no server answered it.
pub async fn upload_batch(gate: &Gate, batch: &[ScanRecord]) -> Option<Vec<uuid::Uuid>> {
    gate.clock.0.store(now(), Ordering::SeqCst);
    let body = gate.batch(batch.to_vec());
    let signed = gate.sign("POST", "/gate/v1/journal", &body);
    let sent = gate
        .http
        .post(format!("{}/gate/v1/journal", gate.server))
        .header(shared::wire::HEADER_DEVICE_ID, &signed.device)
        .header(shared::wire::HEADER_TIMESTAMP, signed.timestamp.to_string())
        .header(shared::wire::HEADER_NONCE, &signed.nonce)
        .header(shared::wire::HEADER_SIGNATURE, &signed.signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    if !sent.status().is_success() {
        return None;
    }
    let ack: JournalAck = sent.json().await.ok()?;
    Some(ack.acked)
}
