//! An organizer at the console, for the browser tests: a wallet provider
//! injected into every page (an ed25519 key behind `signMessage`, signing
//! with the browser's WebCrypto), the API's nonce login for the same
//! wallet, calls of the API with its session, and screenshots at phone and
//! laptop width.

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::Server;
use crate::browser::{Browser, artifacts_dir};

/// The laptop window.
pub const LAPTOP: (u32, u32) = (1280, 900);
/// The phone window.
pub const PHONE: (u32, u32) = (390, 844);
/// The narrowest phone every console page must fit without scrolling
/// sideways.
pub const NARROW_PHONE: (u32, u32) = (375, 812);

/// Fails when the page open in `browser` scrolls sideways at
/// [`NARROW_PHONE`] width (`document.documentElement.scrollWidth` beyond
/// `window.innerWidth`), naming the widest elements; leaves the window at
/// laptop width.
pub fn assert_fits_a_phone(browser: &Browser, page: &str) -> anyhow::Result<()> {
    browser.resize(NARROW_PHONE.0, NARROW_PHONE.1)?;
    let measured = browser.wait_for(
        "the page laid out at phone width",
        Duration::from_secs(5),
        "return window.innerWidth <= 400 && { inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
           widest: [...document.querySelectorAll('body *')]
             .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
             .filter(e => !e.closest('.scroll'))
             .slice(0, 5)
             .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
               + ' ' + Math.round(e.getBoundingClientRect().right) + 'px') };",
    )?;
    browser.resize(LAPTOP.0, LAPTOP.1)?;
    let inner = measured["inner"].as_i64().unwrap_or(0);
    let scroll = measured["scroll"].as_i64().unwrap_or(i64::MAX);
    anyhow::ensure!(
        scroll <= inner,
        "{page} scrolls sideways at {inner} px: {scroll} px wide; too wide: {}",
        measured["widest"]
    );
    Ok(())
}

/// A wallet provider like the ones wallets inject (`window.solana`), for
/// `key`; it signs in the page with WebCrypto, so the key never leaves it.
pub fn injected_wallet(key: &SigningKey) -> String {
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let address = bs58::encode(key.verifying_key().to_bytes()).into_string();
    format!(
        r#"(() => {{
  const jwk = {{ kty: "OKP", crv: "Ed25519", d: "{d}", x: "{x}" }};
  const key = crypto.subtle.importKey("jwk", jwk, {{ name: "Ed25519" }}, false, ["sign"]);
  const publicKey = {{ toBase58: () => "{address}", toString: () => "{address}" }};
  window.solana = {{
    publicKey,
    connect: async () => ({{ publicKey }}),
    signMessage: async (message) => ({{
      signature: new Uint8Array(await crypto.subtle.sign({{ name: "Ed25519" }}, await key, message)),
      publicKey,
    }}),
  }};
}})();"#,
        d = url.encode(key.to_bytes()),
        x = url.encode(key.verifying_key().to_bytes()),
    )
}

/// The base58 wallet address of `key`.
pub fn address_of(key: &SigningKey) -> String {
    bs58::encode(key.verifying_key().to_bytes()).into_string()
}

/// A session token of `key`'s wallet through the API's nonce login.
pub fn api_login(server: &Server, key: &SigningKey) -> anyhow::Result<String> {
    let wallet = address_of(key);
    server.rt.block_on(async {
        let http = reqwest::Client::new();
        let challenge: Value = http
            .post(format!("{}/api/auth/nonce", server.url))
            .json(&json!({ "wallet": wallet }))
            .send()
            .await?
            .json()
            .await?;
        let message = challenge["message"].as_str().unwrap_or_default();
        let signature = key.sign(message.as_bytes());
        let session: Value = http
            .post(format!("{}/api/auth/verify", server.url))
            .json(&json!({
                "wallet": wallet,
                "signature": bs58::encode(signature.to_bytes()).into_string()
            }))
            .send()
            .await?
            .json()
            .await?;
        session["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no session token: {session}"))
    })
}

/// A call with a wallet's session token; its status and JSON answer (the
/// text as a JSON string when it is not JSON).
pub fn as_wallet(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    server.rt.block_on(async {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", server.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    })
}

/// Grants `key`'s wallet the organizer role, opens a browser with the
/// wallet injected and signs in to the console with it; returns the
/// browser on the events page and the wallet's API session.
pub fn organizer_signed_in(server: &Server, key: &SigningKey) -> anyhow::Result<(Browser, String)> {
    server.admin_ok(
        reqwest::Method::PUT,
        &format!("/api/admin/wallets/{}/role", address_of(key)),
        Some(json!({ "role": "organizer" })),
        200,
    )?;
    let token = api_login(server, key)?;
    let browser = Browser::start(LAPTOP.0, LAPTOP.1)?;
    browser.devtools(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": injected_wallet(key) }),
    )?;
    browser.open(&format!("{}/console/sign-in", server.url))?;
    browser.click("#wallet-sign-in")?;
    browser.wait_for(
        "the events page after the wallet signed",
        Duration::from_secs(30),
        "return location.pathname === '/console' && document.querySelector(\"a[href='/console/events/new']\") !== null",
    )?;
    Ok((browser, token))
}

/// Screenshots of the page at laptop and phone width, as
/// `$CARGO_TARGET_DIR/test-artifacts/{folder}/{name}-{laptop,phone}.png`;
/// fails when the page scrolls sideways on a phone.
pub fn shoot(browser: &Browser, folder: &str, name: &str) -> anyhow::Result<()> {
    let dir = artifacts_dir(folder);
    for (label, (w, h)) in [("laptop", LAPTOP), ("phone", PHONE)] {
        browser.resize(w, h)?;
        browser.screenshot(&dir.join(format!("{name}-{label}.png")))?;
    }
    browser.resize(LAPTOP.0, LAPTOP.1)?;
    assert_fits_a_phone(browser, name)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
