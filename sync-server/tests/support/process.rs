//! The real `sync-server` binary as a child process, on a config file of
//! its own (database, keys and the embedded chain's file in one folder), so
//! a test can SIGKILL it at any moment and start it again on the same data.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::ADMIN;

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
        let r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(serde_json::Value::Null)
    }
}
