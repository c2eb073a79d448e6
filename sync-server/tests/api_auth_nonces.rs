//! Login nonces under abuse, on SQLite and on PostgreSQL, with clients on
//! real distinct addresses (127.0.0.x): nobody can push a wallet's nonce
//! out by asking for nonces in its name, a nonce logs in only from the
//! address that asked for it, and one address asking too often is refused
//! with 429 in the one error shape. Behind a proxy, its header names the
//! client.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use common::*;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sync_server::config::Quota;

on_both_backends!(
    nonces_asked_from_elsewhere_never_push_out_a_wallets_own,
    a_nonce_logs_in_only_from_the_address_that_asked_for_it,
    one_address_asking_too_often_is_refused_with_429,
    behind_a_proxy_its_header_names_the_client,
);

/// A wallet client on its own loopback address.
struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn at(server: &TestServer, last_octet: u8) -> Self {
        Self {
            http: reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
                .build()
                .unwrap(),
            url: server.url.clone(),
        }
    }

    async fn post(&self, path: &str, body: Value, forwarded: Option<&str>) -> (u16, Value, String) {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, r.json().await.unwrap(), retry_after)
    }

    /// The message of a fresh nonce for `wallet`.
    async fn nonce(&self, wallet: &SigningKey, forwarded: Option<&str>) -> String {
        let (status, body, _) = self
            .post(
                "/api/auth/nonce",
                json!({ "wallet": address(wallet) }),
                forwarded,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["message"].as_str().unwrap().to_owned()
    }

    async fn verify(
        &self,
        wallet: &SigningKey,
        message: &str,
        forwarded: Option<&str>,
    ) -> (u16, Value) {
        let signature = bs58::encode(wallet.sign(message.as_bytes()).to_bytes()).into_string();
        let (status, body, _) = self
            .post(
                "/api/auth/verify",
                json!({ "wallet": address(wallet), "signature": signature }),
                forwarded,
            )
            .await;
        (status, body)
    }
}

async fn nonces_asked_from_elsewhere_never_push_out_a_wallets_own(db: Db) {
    let server = start(db).await;
    let alice = wallet(11);
    let own = Client::at(&server, 1);
    let message = own.nonce(&alice, None).await;

    // Twenty others ask for nonces in Alice's name, from ten addresses:
    // more than the five pending nonces a wallet keeps.
    for i in 0..20u8 {
        Client::at(&server, 2 + i % 10).nonce(&alice, None).await;
    }
    let (status, body) = own.verify(&alice, &message, None).await;
    assert_eq!(status, 200, "Alice's own nonce still logs her in: {body}");
    assert!(body["token"].is_string());
}

async fn a_nonce_logs_in_only_from_the_address_that_asked_for_it(db: Db) {
    let server = start(db).await;
    let alice = wallet(11);
    let (home, elsewhere) = (Client::at(&server, 1), Client::at(&server, 9));
    let message = home.nonce(&alice, None).await;
    let (status, body) = elsewhere.verify(&alice, &message, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("bad_signature")),
        "{body}"
    );
    // Not spent by the refusal.
    assert_eq!(home.verify(&alice, &message, None).await.0, 200);

    // An address still keeps its own five newest (a second apart, so
    // "newest" is well defined).
    let first = home.nonce(&alice, None).await;
    for _ in 0..5 {
        server.clock.0.fetch_add(1, Ordering::SeqCst);
        home.nonce(&alice, None).await;
    }
    let (status, body) = home.verify(&alice, &first, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("bad_signature")),
        "{body}"
    );
}

async fn one_address_asking_too_often_is_refused_with_429(db: Db) {
    let server = start_with(
        db,
        |c| {
            c.api.rate_limits.nonce = Quota {
                requests: 3,
                period_secs: 60,
            }
        },
        |_| axum::Router::new(),
    )
    .await;
    let (noisy, quiet) = (Client::at(&server, 5), Client::at(&server, 6));
    for n in 0..3u8 {
        noisy.nonce(&wallet(20 + n), None).await;
    }
    let (status, body, retry_after) = noisy
        .post(
            "/api/auth/nonce",
            json!({ "wallet": address(&wallet(30)) }),
            None,
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["message"].is_string());
    assert_eq!(retry_after, "20", "one request every 60 / 3 s");
    // Another address is not held back by it.
    let message = quiet.nonce(&wallet(30), None).await;
    assert_eq!(quiet.verify(&wallet(30), &message, None).await.0, 200);
}

async fn behind_a_proxy_its_header_names_the_client(db: Db) {
    let server = start_with(
        db,
        |c| {
            c.api.client_ip_header = "x-forwarded-for".into();
            c.api.rate_limits.nonce = Quota {
                requests: 2,
                period_secs: 60,
            };
        },
        |_| axum::Router::new(),
    )
    .await;
    // Everyone comes through the proxy's one address.
    let proxy = Client::at(&server, 1);
    let alice = wallet(11);
    // The last address counts: the one the proxy added.
    let own = Some("198.51.100.1, 203.0.113.7");
    let message = proxy.nonce(&alice, own).await;
    for i in 0..10 {
        let other = format!("203.0.113.{}", 100 + i);
        proxy.nonce(&alice, Some(&other)).await;
    }
    let (status, body) = proxy.verify(&alice, &message, Some("198.51.100.1")).await;
    assert_eq!(status, 401, "another client's address: {body}");
    let (status, body) = proxy.verify(&alice, &message, own).await;
    assert_eq!(status, 200, "{body}");
    // The limit is per forwarded address too.
    proxy.nonce(&alice, own).await;
    let (status, body, _) = proxy
        .post("/api/auth/nonce", json!({ "wallet": address(&alice) }), own)
        .await;
    assert_eq!(status, 429, "{body}");
}
