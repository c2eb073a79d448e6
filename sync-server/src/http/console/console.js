// The organizer console's script: live updates of the event page (and of a
// batch mint's progress) from a server-sent event stream, sign-in with a
// browser wallet, and reading a picked CSV file into the import form. The pages
// work without it (sign-in with the admin token, figures as of the load).
"use strict";

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

// Base58 (Bitcoin alphabet), as Solana writes keys and signatures.
function base58(bytes) {
  const digits = [0];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = "";
  for (const byte of bytes) {
    if (byte !== 0) break;
    out += "1";
  }
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]];
  return out;
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || response.statusText);
  return answer;
}

// The injected wallet: the Wallet Standard's legacy `window.solana`
// provider (Phantom, Solflare, Backpack expose it).
function provider() {
  return window.solana || (window.phantom && window.phantom.solana) || null;
}

async function walletSignIn(status) {
  const wallet = provider();
  if (!wallet) {
    status.textContent = "No Solana wallet was found in this browser. Install one, or sign in with the admin token.";
    return;
  }
  status.textContent = "Asking your wallet…";
  const connected = await wallet.connect();
  const key = (connected && connected.publicKey) || wallet.publicKey;
  const address = typeof key === "string" ? key : (key.toBase58 ? key.toBase58() : key.toString());
  const challenge = await postJson("/api/auth/nonce", { wallet: address });
  status.textContent = "Sign the message in your wallet…";
  const signed = await wallet.signMessage(new TextEncoder().encode(challenge.message), "utf8");
  const signature = signed && signed.signature ? signed.signature : signed;
  const session = await postJson("/api/auth/verify", { wallet: address, signature: base58(signature) });
  document.getElementById("wallet-session").value = session.token;
  status.textContent = "Signed in; opening your events…";
  document.getElementById("wallet-form").submit();
}

function live(state) {
  const url = state.dataset.stream;
  const stream = new EventSource(url);
  stream.addEventListener("update", (message) => {
    const sections = JSON.parse(message.data);
    for (const [id, html] of Object.entries(sections)) {
      const section = document.getElementById(id);
      if (section) section.innerHTML = html;
    }
    state.textContent = "Live: updated " + new Date().toLocaleTimeString();
    state.dataset.updates = String(Number(state.dataset.updates || "0") + 1);
  });
  stream.addEventListener("problem", (message) => {
    state.textContent = "Live: " + message.data;
  });
  stream.onerror = () => {
    state.textContent = "Live: connection lost, reconnecting…";
  };
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("wallet-sign-in");
  if (button) {
    const status = document.getElementById("wallet-status");
    button.addEventListener("click", () => {
      walletSignIn(status).catch((e) => {
        status.textContent = "Wallet sign-in failed: " + e.message;
      });
    });
  }
  // A CSV file picked on the import form is read into its text box, so
  // the form posts the lines themselves.
  const file = document.getElementById("csv_file");
  const lines = document.getElementById("csv");
  if (file && lines) {
    file.addEventListener("change", async () => {
      if (file.files && file.files[0]) lines.value = await file.files[0].text();
    });
  }
  const state = document.getElementById("live-state");
  if (state && state.dataset.stream) live(state);
});
