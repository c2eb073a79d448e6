//! Wallet login against a real server on a real port, on SQLite and on
//! PostgreSQL: a real ed25519 wallet signs the login message; nonces are
//! single-use and expire; tokens are refused when missing, tampered or
//! expired; roles come from the organizer's grants and gate endpoints.

#![allow(clippy::unwrap_used)]

mod common;

use axum::routing::get;
use common::*;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use shared::PublicKeyBytes;
use std::sync::atomic::Ordering;
use sync_server::http::api::auth::{AuthUser, Role};
use sync_server::http::error::ApiError;

on_both_backends!(
    a_wallet_logs_in_by_signing_the_nonce_message,
    a_nonce_logs_in_only_once,
    an_expired_nonce_is_refused,
    a_signature_by_another_key_or_over_another_message_is_refused,
    missing_tampered_and_expired_tokens_are_refused,
    an_endpoint_for_organizers_answers_403_to_other_roles,
    only_the_admin_token_grants_roles,
);

/// A test server with one extra endpoint that only organizers may use.
async fn server(db: Db) -> TestServer {
    async fn organizer_only(user: AuthUser) -> Result<&'static str, ApiError> {
        user.require_role(&[Role::Organizer])?;
        Ok("welcome, organizer")
    }
    start_with(
        db,
        |_| {},
        |state| {
            axum::Router::new()
                .route("/test/organizer-only", get(organizer_only))
                .with_state(state)
        },
    )
    .await
}

fn address(key: &SigningKey) -> String {
    PublicKeyBytes::from(&key.verifying_key()).to_base58()
}

impl TestServer {
    async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn get_with_token(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Asks for a nonce for `wallet`: (nonce, message).
    async fn nonce(&self, wallet: &SigningKey) -> (String, String) {
        let (status, body) = self
            .post_json("/api/auth/nonce", json!({ "wallet": address(wallet) }))
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["nonce"].as_str().unwrap().to_owned(),
            body["message"].as_str().unwrap().to_owned(),
        )
    }

    async fn verify(&self, wallet: &SigningKey, signature: &str) -> (u16, Value) {
        self.post_json(
            "/api/auth/verify",
            json!({ "wallet": address(wallet), "signature": signature }),
        )
        .await
    }

    /// The whole login; returns the session token.
    async fn login(&self, wallet: &SigningKey) -> String {
        let (_, message) = self.nonce(wallet).await;
        let (status, body) = self.verify(wallet, &sign(wallet, &message)).await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn grant(&self, wallet: &SigningKey, role: &str) {
        let r = self
            .http
            .put(format!(
                "{}/api/admin/wallets/{}/role",
                self.url,
                address(wallet)
            ))
            .bearer_auth(ADMIN)
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

fn sign(wallet: &SigningKey, message: &str) -> String {
    bs58::encode(wallet.sign(message.as_bytes()).to_bytes()).into_string()
}

async fn a_wallet_logs_in_by_signing_the_nonce_message(db: Db) {
    let server = server(db).await;
    let alice = wallet(11);
    let (status, body) = server
        .post_json("/api/auth/nonce", json!({ "wallet": address(&alice) }))
        .await;
    assert_eq!(status, 200);
    let nonce = body["nonce"].as_str().unwrap();
    assert!(
        nonce.len() >= 20,
        "a nonce carries at least 128 random bits: {nonce}"
    );
    assert_eq!(
        body["message"],
        format!("Sign this message to authenticate: {nonce}")
    );
    assert_eq!(body["expires_at"], T0 + 300);

    let (status, session) = server
        .verify(&alice, &sign(&alice, body["message"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(
        session["role"], "holder",
        "a wallet nobody granted a role is a holder"
    );
    assert_eq!(session["wallet"], address(&alice));
    assert_eq!(session["expires_at"], T0 + 24 * 3600);
    let token = session["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let (status, me) = server.get_with_token("/api/auth/me", Some(token)).await;
    assert_eq!(status, 200);
    assert_eq!(me, json!({ "wallet": address(&alice), "role": "holder" }));

    // A grant shows at once, even on a token issued before it...
    server.grant(&alice, "validator").await;
    let (_, me) = server.get_with_token("/api/auth/me", Some(token)).await;
    assert_eq!(me["role"], "validator");
    // ...and the next login's token says so too.
    let (_, message) = server.nonce(&alice).await;
    let (_, session) = server.verify(&alice, &sign(&alice, &message)).await;
    assert_eq!(session["role"], "validator");
}

async fn a_nonce_logs_in_only_once(db: Db) {
    let server = server(db).await;
    let alice = wallet(11);
    let (_, message) = server.nonce(&alice).await;
    let signature = sign(&alice, &message);
    assert_eq!(server.verify(&alice, &signature).await.0, 200);
    let (status, body) = server.verify(&alice, &signature).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "nonce_used");

    // Two pending nonces (two browser tabs): each works once, in any order.
    let (_, first) = server.nonce(&alice).await;
    let (_, second) = server.nonce(&alice).await;
    assert_eq!(server.verify(&alice, &sign(&alice, &second)).await.0, 200);
    assert_eq!(server.verify(&alice, &sign(&alice, &first)).await.0, 200);
    assert_eq!(server.verify(&alice, &sign(&alice, &first)).await.0, 401);
}

async fn an_expired_nonce_is_refused(db: Db) {
    let server = server(db).await;
    let alice = wallet(11);
    let (_, message) = server.nonce(&alice).await;
    server.clock.0.fetch_add(300, Ordering::SeqCst);
    let (status, body) = server.verify(&alice, &sign(&alice, &message)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "nonce_expired");

    // A fresh one works.
    let (_, message) = server.nonce(&alice).await;
    server.clock.0.fetch_add(299, Ordering::SeqCst);
    assert_eq!(server.verify(&alice, &sign(&alice, &message)).await.0, 200);
}

async fn a_signature_by_another_key_or_over_another_message_is_refused(db: Db) {
    let server = server(db).await;
    let alice = wallet(11);
    let mallory = wallet(66);
    let (nonce, message) = server.nonce(&alice).await;

    for signature in [
        // Mallory signs Alice's message.
        sign(&mallory, &message),
        // Alice signs something else.
        sign(&alice, &nonce),
        sign(&alice, &format!("{message} ")),
    ] {
        let (status, body) = server.verify(&alice, &signature).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "bad_signature");
    }
    // Mallory asks for her own nonce but presents Alice's signed message.
    server.nonce(&mallory).await;
    let (status, body) = server.verify(&mallory, &sign(&alice, &message)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "bad_signature");

    // The nonce was not spent by the failures.
    assert_eq!(server.verify(&alice, &sign(&alice, &message)).await.0, 200);

    // Malformed bodies name the field.
    for (body, field) in [
        (
            json!({ "wallet": address(&alice), "signature": "not base58 0OIl" }),
            "signature",
        ),
        (
            json!({ "wallet": address(&alice), "signature": bs58::encode([1u8; 63]).into_string() }),
            "signature",
        ),
        (
            json!({ "wallet": "short", "signature": sign(&alice, &message) }),
            "wallet",
        ),
        (json!({ "wallet": address(&alice) }), "signature"),
        (
            json!({ "wallet": address(&alice), "signature": sign(&alice, &message), "nonce": nonce }),
            "nonce",
        ),
    ] {
        let (status, answer) = server.post_json("/api/auth/verify", body).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
}

async fn missing_tampered_and_expired_tokens_are_refused(db: Db) {
    use data_encoding::BASE64URL_NOPAD as B64;
    let server = server(db).await;
    let alice = wallet(11);
    let token = server.login(&alice).await;
    assert_eq!(
        server.get_with_token("/api/auth/me", Some(&token)).await.0,
        200
    );

    let (status, body) = server.get_with_token("/api/auth/me", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("missing_token"))
    );

    // Claims edited (role and expiry), signature kept.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&B64.decode(parts[1].as_bytes()).unwrap()).unwrap();
    claims["role"] = json!("organizer");
    claims["exp"] = json!(T0 + 365 * 24 * 3600);
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    // Another wallet's claims under Alice's signature.
    claims["sub"] = json!(address(&wallet(66)));
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(&serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    // Signature bytes changed.
    let mut signature = B64.decode(parts[2].as_bytes()).unwrap();
    signature[0] ^= 1;
    let resigned = format!("{}.{}.{}", parts[0], parts[1], B64.encode(&signature));
    // Algorithm "none", no signature.
    let unsigned = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    for bad in [edited, swapped, resigned, unsigned, "garbage".to_owned()] {
        let (status, body) = server.get_with_token("/api/auth/me", Some(&bad)).await;
        assert_eq!(status, 401, "{bad}");
        assert_eq!(body["error"], "invalid_token", "{bad}");
    }

    // 24 hours later the token is worthless.
    server.clock.0.fetch_add(24 * 3600, Ordering::SeqCst);
    let (status, body) = server.get_with_token("/api/auth/me", Some(&token)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("token_expired"))
    );
}

async fn an_endpoint_for_organizers_answers_403_to_other_roles(db: Db) {
    let server = server(db).await;
    let alice = wallet(11);
    let token = server.login(&alice).await;
    for role in ["holder", "validator"] {
        server.grant(&alice, role).await;
        let (status, body) = server
            .get_with_token("/test/organizer-only", Some(&token))
            .await;
        assert_eq!(status, 403, "{role}");
        assert_eq!(body["error"], "role_required");
    }
    server.grant(&alice, "organizer").await;
    let (status, body) = server
        .get_with_token("/test/organizer-only", Some(&token))
        .await;
    assert_eq!((status, body), (200, json!("welcome, organizer")));

    // Revoking takes effect on the very next request, same token.
    server.grant(&alice, "holder").await;
    assert_eq!(
        server
            .get_with_token("/test/organizer-only", Some(&token))
            .await
            .0,
        403
    );
    // Without a token it is 401, not 403.
    assert_eq!(
        server.get_with_token("/test/organizer-only", None).await.0,
        401
    );
}

async fn only_the_admin_token_grants_roles(db: Db) {
    let server = server(db).await;
    let alice = wallet(11);
    let url = format!("{}/api/admin/wallets/{}/role", server.url, address(&alice));
    let r = server
        .http
        .put(&url)
        .json(&json!({ "role": "organizer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A wallet's session token is not the admin token.
    let token = server.login(&alice).await;
    let r = server
        .http
        .put(&url)
        .bearer_auth(&token)
        .json(&json!({ "role": "organizer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = server
        .http
        .put(&url)
        .bearer_auth(ADMIN)
        .json(&json!({ "role": "superuser" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "role");
    let r = server
        .http
        .put(format!(
            "{}/api/admin/wallets/not-a-wallet/role",
            server.url
        ))
        .bearer_auth(ADMIN)
        .json(&json!({ "role": "organizer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    let r = server
        .http
        .put(&url)
        .bearer_auth(ADMIN)
        .json(&json!({ "role": "organizer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "wallet": address(&alice), "role": "organizer" })
    );
    let (_, me) = server.get_with_token("/api/auth/me", Some(&token)).await;
    assert_eq!(me["role"], "organizer");
}
