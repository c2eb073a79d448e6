//! A buyer on the buyer pages, for the browser tests: wallets injected into
//! every page the way browser wallets do it (`window.solana`, with
//! `signMessage` and the `signTransaction` request, signing in the page
//! with WebCrypto), the wallet sign-in and sign-out from the pages, and
//! reading what a page shows.

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;

use crate::browser::Browser;

/// Wallets like the ones browsers inject (`window.solana`), for `keys`; the
/// one in use is `localStorage["test-wallet"]` (default the first). They
/// sign in the page with WebCrypto, so the keys never leave it: messages
/// with `signMessage`, transactions with the provider's `signTransaction`
/// request (the message in base58, answering the signature). Each message
/// a wallet signs is appended, as text, to `localStorage["test-wallet-signed"]`
/// (a JSON list), so a test can count what the holder was asked to sign.
pub fn injected_wallets(keys: &[(&str, &SigningKey)]) -> String {
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let entries: Vec<String> = keys
        .iter()
        .map(|(name, key)| {
            format!(
                r#""{name}": {{ d: "{d}", x: "{x}", address: "{address}" }}"#,
                d = url.encode(key.to_bytes()),
                x = url.encode(key.verifying_key().to_bytes()),
                address = bs58::encode(key.verifying_key().to_bytes()).into_string(),
            )
        })
        .collect();
    format!(
        r#"(() => {{
  const wallets = {{ {entries} }};
  const name = localStorage.getItem("test-wallet") || "{first}";
  const w = wallets[name];
  const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  const fromBase58 = (text) => {{
    const bytes = [0];
    for (const c of text) {{
      let carry = ALPHABET.indexOf(c);
      for (let i = 0; i < bytes.length; i++) {{ carry += bytes[i] * 58; bytes[i] = carry & 255; carry >>= 8; }}
      while (carry > 0) {{ bytes.push(carry & 255); carry >>= 8; }}
    }}
    for (const c of text) {{ if (c !== "1") break; bytes.push(0); }}
    return new Uint8Array(bytes.reverse());
  }};
  const key = crypto.subtle.importKey("jwk", {{ kty: "OKP", crv: "Ed25519", d: w.d, x: w.x }}, {{ name: "Ed25519" }}, false, ["sign"]);
  const sign = async (bytes) => new Uint8Array(await crypto.subtle.sign({{ name: "Ed25519" }}, await key, bytes));
  const publicKey = {{ toBase58: () => w.address, toString: () => w.address }};
  window.solana = {{
    publicKey,
    connect: async () => ({{ publicKey }}),
    signMessage: async (message) => {{
      const signed = JSON.parse(localStorage.getItem("test-wallet-signed") || "[]");
      signed.push(new TextDecoder().decode(message));
      localStorage.setItem("test-wallet-signed", JSON.stringify(signed));
      return {{ signature: await sign(message), publicKey }};
    }},
    request: async ({{ method, params }}) => {{
      if (method !== "signTransaction") throw new Error("unsupported " + method);
      return {{ signature: await sign(fromBase58(params.message)), publicKey: w.address }};
    }},
  }};
}})();"#,
        entries = entries.join(", "),
        first = keys.first().map_or("", |(name, _)| name),
    )
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The page's main text, for assertion messages.
pub fn main_text(browser: &Browser) -> String {
    browser.text("main").unwrap_or_default()
}

/// Signs in with the injected wallet from the page's sign-in block and
/// waits for the page it comes back to.
pub fn sign_in(browser: &Browser, back_at: &str) -> anyhow::Result<()> {
    browser.click("#wallet-sign-in")?;
    browser
        .wait_for(
            "signed in",
            Duration::from_secs(30),
            &format!(
                "return location.pathname === '{back_at}' && document.querySelector('[data-wallet]') !== null"
            ),
        )
        .map_err(|e| anyhow::anyhow!("{e}: {}", main_text(browser)))?;
    Ok(())
}

/// Signs out from the page's header and waits for the events page.
pub fn sign_out(browser: &Browser) -> anyhow::Result<()> {
    browser.click("#sign-out button")?;
    browser.wait_for(
        "signed out",
        Duration::from_secs(20),
        "return location.pathname === '/' && document.querySelector('[data-wallet]') === null",
    )?;
    Ok(())
}

/// Waits until every purchase on the confirmation page is fulfilled, each
/// with its code drawn or, for an event whose gates take only the live
/// code, the way to it.
pub fn wait_confirmed(browser: &Browser, what: &str) -> anyhow::Result<()> {
    browser
        .wait_for(
            what,
            Duration::from_secs(90),
            "const items = document.querySelectorAll('li.purchase'); \
             return location.pathname === '/confirmation' && items.length > 0 && \
               [...items].every(i => i.dataset.status === 'fulfilled' && \
                 (i.querySelector('figure.qr svg') !== null || i.querySelector('[data-live-code-elsewhere]') !== null))",
        )
        .map_err(|e| anyhow::anyhow!("{e}: {}", main_text(browser)))?;
    Ok(())
}

/// One entry gate `name` (number 1) for `event_id`, enrolled from a folder
/// under `dir` and started: the gate a buyer's code is shown to.
pub fn entry_gate(
    server: &crate::Server,
    dir: &std::path::Path,
    event_id: u64,
    name: &str,
) -> anyhow::Result<crate::GateBox> {
    server.admin_ok(
        reqwest::Method::PUT,
        &format!("/api/admin/events/{event_id}/gates"),
        Some(serde_json::json!({ "number": 1, "name": name, "direction": "entry" })),
        204,
    )?;
    let gate_dir = dir.join(format!("gate-{name}"));
    crate::GateBox::enrol(&gate_dir, &server.url, &server.enrol_token(event_id, name)?)?;
    crate::GateBox::start(&gate_dir, name)
}

/// Gives `wallet` 2 SOL on the server's chain, for SOL tickets and fees.
pub fn fund(server: &crate::Server, wallet: &SigningKey) -> anyhow::Result<()> {
    let ctx = server
        .state
        .chain
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the server has no chain"))?;
    let address = solana_sdk::pubkey::Pubkey::new_from_array(wallet.verifying_key().to_bytes());
    server.rt.block_on(sync_server::chain::ops::ensure_funded(
        ctx.chain.as_ref(),
        None,
        &address,
        2_000_000_000,
        2_000_000_000,
    ))?;
    Ok(())
}

/// Opens My tickets and waits until the service worker keeps it, so it
/// opens offline.
pub fn keep_tickets_offline(browser: &Browser, site: &str) -> anyhow::Result<()> {
    browser.open(&format!("{site}/tickets"))?;
    browser.script(
        "caches.open('buyer-pages').then(c => c.match('/tickets')).then(r => { window.kept = !!r; });",
        serde_json::json!([]),
    )?;
    browser.wait_for(
        "the page kept by the service worker",
        Duration::from_secs(20),
        "return window.kept === true",
    )?;
    Ok(())
}
