//! A real sync server in-process for the agent's tests (port 0, throwaway
//! SQLite), which a test can take down and bring back on the same address,
//! and the agent-side helpers that go with it.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use gate_agent::config::Config;
use shared::PublicKeyBytes;
use shared::wire::{CachedEvent, CachedTicket};

use crate::common::*;

pub const ADMIN: &str = "admin-token-for-tests-only";

/// A sync server that the test can take down and bring back on the same address.
pub struct SyncServer {
    rt: tokio::runtime::Runtime,
    state: sync_server::AppState,
    pub addr: SocketAddr,
    shutdown: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    _dir: tempfile::TempDir,
}

impl SyncServer {
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("sync.db").display());
        let mut config = sync_server::Config {
            database_url: database_url.clone(),
            admin_token: ADMIN.into(),
            ..sync_server::Config::default()
        };
        config.gates.max_batch = 500;
        let state = rt.block_on(async {
            let store = sync_server::Store::connect(&database_url).await.unwrap();
            sync_server::AppState::new(
                store,
                config,
                SigningKey::from_bytes(&[42; 32]),
                Arc::new(sync_server::SystemClock),
            )
        });
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = Self {
            rt,
            state,
            addr,
            shutdown: None,
            _dir: dir,
        };
        server.serve(listener);
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let state = self.state.clone();
        let task = self.rt.spawn(async move {
            sync_server::serve(state, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        self.shutdown = Some((tx, task));
    }

    /// Stops serving and waits until the listener is closed.
    pub fn take_down(&mut self) {
        if let Some((tx, task)) = self.shutdown.take() {
            let _ = tx.send(());
            self.rt.block_on(task).unwrap();
        }
    }

    pub fn bring_back(&mut self) {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(self.addr))
            .unwrap();
        self.serve(listener);
    }

    pub fn admin(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> u16 {
        let url = format!("{}{path}", self.url());
        self.rt.block_on(async {
            reqwest::Client::new()
                .request(method, url)
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    }

    /// The venue's event with doors open now, tickets 1..=n, gate 1 "north".
    pub fn seed(&self, venue: &Venue, n: u32) {
        let snapshot = venue.snapshot_open_now(n);
        self.publish_event(&snapshot.events[0]);
        self.publish_tickets(&snapshot.tickets);
        let status = self.admin(
            reqwest::Method::PUT,
            &format!("/api/admin/events/{EVENT}/gates"),
            serde_json::json!({ "number": 1, "name": "north", "direction": "entry" }),
        );
        assert_eq!(status, 204);
    }

    pub fn publish_event(&self, event: &CachedEvent) {
        self.rt
            .block_on(self.state.publish_event(event, &PublicKeyBytes([7; 32])))
            .unwrap();
    }

    pub fn publish_tickets(&self, tickets: &[CachedTicket]) {
        self.rt
            .block_on(self.state.publish_tickets(tickets))
            .unwrap();
    }

    pub fn enrol_token(&self) -> String {
        let url = format!("{}/api/admin/events/{EVENT}/enrol-tokens", self.url());
        self.rt.block_on(async {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(ADMIN)
                .json(&serde_json::json!({ "gate": "north" }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    }

    /// The gate as the organizer sees it: (admitted, rejected, backlog).
    pub fn gate_counts(&self) -> (u64, u64, u64) {
        let counts = self
            .rt
            .block_on(self.state.store.gate_counts(EVENT))
            .unwrap();
        let north = counts.iter().find(|c| c.gate == 1).unwrap();
        (north.admitted, north.rejected, north.backlog)
    }
}

impl Drop for SyncServer {
    fn drop(&mut self) {
        if let Some((tx, _)) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn agent_config(db: &Path) -> Config {
    let mut config = Config::default();
    config.store.path = db.to_owned();
    // Short waits so an outage is noticed quickly; generous enough for a busy machine.
    config.sync.poll_wait_secs = 1;
    config.sync.request_timeout_secs = 5;
    config.sync.max_backoff_secs = 1;
    config
}

pub fn enrol(config: &Config, server: &str, token: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(gate_agent::enrolment::enrol(config, server, token))
        .unwrap();
}

pub fn status(agent: &Running) -> serde_json::Value {
    let (_, body) = http_get(agent.status_addr.unwrap(), "/api/status");
    serde_json::from_str(&body).unwrap()
}

pub fn metric(agent: &Running, name: &str) -> String {
    let (_, body) = http_get(agent.status_addr.unwrap(), "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_default()
}
