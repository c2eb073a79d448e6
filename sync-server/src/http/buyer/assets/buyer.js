// The buyer pages' script: wallet sign-in (the API's nonce login signed by
// the browser wallet), checkout (seats held, then paid by card through
// Stripe.js or in SOL by the wallet signing the transaction the server
// prepared), QR codes drawn from each ticket's credential text (or, where
// the event requires it, the live code of live-code.js), transfers
// and claims, the offline notice, and the service worker's registration.
// The pages read without it; buying, transferring and claiming need it.
"use strict";

const SESSION_KEY = "buyer.session";
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

function fromBase58(text) {
  const bytes = [0];
  for (const char of text) {
    let carry = ALPHABET.indexOf(char);
    if (carry < 0) throw new Error("not base58");
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const char of text) {
    if (char !== "1") break;
    bytes.push(0);
  }
  return new Uint8Array(bytes.reverse());
}

const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes));

// An API refusal in words a buyer understands.
function words(error, answer) {
  const code = answer && answer.error;
  const field = answer && answer.field;
  switch (code) {
    case "sold_out": return "Sold out: no seat is left for this ticket.";
    case "gone": return "This event is over; its tickets are no longer sold.";
    case "payments_disabled": return "Card payment is not available right now. You can pay from your wallet instead.";
    case "payment_provider_unavailable": return "The card payment service did not answer. Nothing was charged; please try again.";
    case "chain_unavailable":
    case "storage_unavailable": return "The ticket system is not reachable right now. Please try again in a minute.";
    case "rate_limited": return "Too many tries in a short time. Wait a minute, then try again.";
    case "missing_token":
    case "invalid_token":
    case "token_expired": return "Your sign-in ran out. Sign in with your wallet again.";
    case "login_disabled": return "Signing in is turned off on this site.";
    case "forbidden": return "This wallet may not do that: it does not hold this ticket.";
    case "claim_not_found": return "This link does not lead to a ticket.";
    case "already_claimed": return "This ticket was already claimed: each link works once.";
    case "claim_cancelled": return "The sender took this ticket back.";
    case "claim_expired": return "This link expired. Ask the sender to send the ticket again.";
    case "invalid_field":
      if (field === "to_wallet") return "That is not a wallet address. Check it and try again.";
      if (field === "to_email" || field === "email") return "That is not an email address. Check it and try again.";
      return "Something in the form is not right: " + (answer.message || field);
    case "chain_refused": return "The network refused it: " + (answer.message || "try again");
    default:
      return (answer && answer.message) || (error && error.message) || "Something went wrong. Please try again.";
  }
}

class Refusal extends Error {
  constructor(answer, status) {
    super(words(null, answer));
    this.answer = answer;
    this.status = status;
  }
}

function session() {
  try {
    return JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
  } catch (e) {
    return null;
  }
}

async function call(method, url, body, token) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = "Bearer " + token;
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (["missing_token", "invalid_token", "token_expired"].includes(answer.error)) localStorage.removeItem(SESSION_KEY);
    throw new Refusal(answer, response.status);
  }
  return answer;
}

// The injected wallet: the legacy `window.solana` provider that Phantom,
// Solflare and Backpack expose.
function provider() {
  return window.solana || (window.phantom && window.phantom.solana) || null;
}

async function connect() {
  const wallet = provider();
  if (!wallet) throw new Error("No Solana wallet was found in this browser. Install a wallet app or extension, then reload this page.");
  const connected = await wallet.connect();
  const key = (connected && connected.publicKey) || wallet.publicKey;
  const address = typeof key === "string" ? key : (key.toBase58 ? key.toBase58() : key.toString());
  return { wallet, address };
}

// The nonce login: the wallet signs the server's one-time message.
async function login(status) {
  const { wallet, address } = await connect();
  const challenge = await call("POST", "/api/auth/nonce", { wallet: address });
  if (status) status.textContent = "Approve the sign-in message in your wallet…";
  const signed = await wallet.signMessage(new TextEncoder().encode(challenge.message), "utf8");
  const signature = signed && signed.signature ? signed.signature : signed;
  const answer = await call("POST", "/api/auth/verify", { wallet: address, signature: base58(signature) });
  const kept = { token: answer.token, wallet: address };
  localStorage.setItem(SESSION_KEY, JSON.stringify(kept));
  return kept;
}

// The wallet shown as signed in on this page, if any.
function pageWallet() {
  const who = document.querySelector("[data-wallet]");
  return who ? who.dataset.wallet : null;
}

// A session token of the page's wallet, signing in again when the kept
// one belongs to another wallet or is missing.
async function token(status) {
  const kept = session();
  const wallet = pageWallet();
  if (kept && (!wallet || kept.wallet === wallet)) return kept.token;
  return (await login(status)).token;
}

// Signs a legacy transaction (base64, as the server prepares it) with the
// wallet: its message is signed through the provider's `signTransaction`
// request and the signature put in the wallet's slot.
async function signTransaction(base64, address) {
  const { wallet } = await connect();
  const bytes = fromBase64(base64);
  // Compact-u16 signature count; the server's transactions have few.
  const count = bytes[0];
  if (count >= 0x80) throw new Error("unexpected transaction layout");
  const message = bytes.slice(1 + 64 * count);
  const required = message[0];
  const keysAt = 4;
  const owner = fromBase58(address);
  let slot = -1;
  for (let i = 0; i < required; i++) {
    const key = message.slice(keysAt + 32 * i, keysAt + 32 * (i + 1));
    if (key.every((b, j) => b === owner[j])) slot = i;
  }
  if (slot < 0) throw new Error("this transaction is not for your wallet");
  const signed = await wallet.request({ method: "signTransaction", params: { message: base58(message) } });
  const signature = typeof signed.signature === "string" ? fromBase58(signed.signature) : new Uint8Array(signed.signature);
  bytes.set(signature, 1 + 64 * slot);
  return toBase64(bytes);
}

// --- QR codes -------------------------------------------------------------

// Where a ticket's code comes from. A ticket shows its signed credential
// as issued, unless its event requires the rotating holder proof
// (`data-holder-proof-window` on the figure): then only a registered source
// gives its code (live-code.js: the credential with the wallet's approval
// of this browser's key and a fresh proof by that key), and the static
// code, which the gates would refuse, is never drawn.
// `ticketCodes.register({ codeFor(figure) -> text or null, everyMs })`;
// `ticketCodes.redraw()` draws what changed.
const sources = [];
window.ticketCodes = {
  register(source) {
    sources.push(source);
    drawAll();
    if (source.everyMs) setInterval(drawAll, source.everyMs);
  },
  redraw() {
    drawAll();
  },
};

function codeFor(figure) {
  for (const source of sources) {
    const text = source.codeFor(figure);
    if (text) return text;
  }
  return figure.dataset.holderProofWindow ? null : figure.dataset.code;
}

function qrSvg(text) {
  const alphanumeric = /^[0-9A-Z $%*+\-./:]*$/.test(text);
  const qr = qrcode(0, "M");
  qr.addData(text, alphanumeric ? "Alphanumeric" : "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const margin = 4;
  let path = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) path += `M${c + margin},${r + margin}h1v1h-1z`;
    }
  }
  const size = n + 2 * margin;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${size}" shape-rendering="crispEdges"><rect width="${size}" height="${size}" fill="#fff"/><path d="${path}" fill="#000"/></svg>`;
}

function drawAll() {
  if (typeof qrcode !== "function") return;
  for (const figure of document.querySelectorAll("figure.qr[data-code]")) {
    const text = codeFor(figure);
    const image = figure.querySelector(".qr-image");
    if (!image || figure.dataset.drawn === (text || undefined)) continue;
    if (text) {
      image.innerHTML = qrSvg(text);
      figure.dataset.drawn = text;
    } else {
      image.innerHTML = "";
      delete figure.dataset.drawn;
    }
  }
}

// --- When the page last synced -------------------------------------------

function synced() {
  const line = document.getElementById("synced");
  if (!line) return;
  const at = new Date(Number(line.dataset.syncedAt) * 1000);
  const time = at.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" });
  const offline = document.body.dataset.offlineCopy === "1" || !navigator.onLine;
  if (offline) {
    line.textContent = `Offline: showing your tickets as last synced on ${time}. Codes still work at the gate.`;
    line.classList.add("offline");
  } else {
    line.textContent = `Synced on ${time}.`;
    line.classList.remove("offline");
  }
}

// --- Signing in and out ----------------------------------------------------

function signInButton() {
  const button = document.getElementById("wallet-sign-in");
  if (!button) return;
  const status = document.getElementById("wallet-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Asking your wallet…";
    try {
      const kept = await login(status);
      status.textContent = "Signed in.";
      document.getElementById("wallet-session").value = kept.token;
      document.getElementById("wallet-form").submit();
    } catch (e) {
      status.textContent = "Not signed in: " + (e.message || e);
      button.disabled = false;
    }
  });
}

function signOut() {
  const form = document.getElementById("sign-out");
  if (!form) return;
  form.addEventListener("submit", () => {
    localStorage.removeItem(SESSION_KEY);
    if (window.caches) caches.delete("buyer-pages");
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage("forget-pages");
    }
  });
}

// --- Checkout --------------------------------------------------------------

function money(amount, currency) {
  if (currency === "sol") return `${amount / 1e9} SOL`;
  return `${(amount / 100).toFixed(2)} ${currency.toUpperCase()}`;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error("The card payment form could not be loaded. Check your connection, or pay from your wallet."));
    document.head.appendChild(script);
  });
}

function checkout() {
  const form = document.getElementById("checkout");
  if (!form) return;
  const status = document.getElementById("checkout-status");
  const holdsSection = document.getElementById("holds");
  const list = document.getElementById("hold-list");
  const expiry = document.getElementById("hold-expiry");
  let holds = [];
  let timer = null;

  const confirmation = () => "/confirmation?purchases=" + holds.map((h) => h.purchase_id).join(",");

  function countdown() {
    const first = Math.min(...holds.map((h) => h.expires_at));
    const left = first - Math.floor(Date.now() / 1000);
    if (left <= 0) {
      expiry.textContent = "Your hold ran out before payment. Nothing was charged: hold new seats to try again.";
      for (const b of holdsSection.querySelectorAll("button")) b.disabled = true;
      form.querySelector("button[type=submit]").disabled = false;
      clearInterval(timer);
      return;
    }
    const m = Math.floor(left / 60);
    const s = String(left % 60).padStart(2, "0");
    expiry.textContent = `Your seats are held for ${m}:${s} more, until ${new Date(first * 1000).toLocaleTimeString()}.`;
  }

  async function payByCard() {
    const button = document.getElementById("pay-card");
    await loadScript(form.dataset.stripeJs);
    const stripe = Stripe(form.dataset.stripeKey);
    const elements = stripe.elements({ mode: "payment", amount: holds[0].amount, currency: holds[0].currency });
    elements.create("payment").mount("#payment-element");
    document.getElementById("card-payment").hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        for (const [i, hold] of holds.entries()) {
          if (hold.paid) continue;
          status.textContent = `Paying for ticket ${i + 1} of ${holds.length}…`;
          const submitted = await elements.submit();
          if (submitted.error) throw new Error(submitted.error.message);
          const result = await stripe.confirmPayment({
            elements,
            clientSecret: hold.card.client_secret,
            redirect: "if_required",
            confirmParams: { return_url: location.origin + confirmation() },
          });
          if (result.error) throw new Error("The card payment did not go through: " + result.error.message);
          hold.paid = true;
        }
        status.textContent = "Paid. Issuing your tickets…";
        location.href = confirmation();
      } catch (e) {
        status.textContent = e.message;
        button.disabled = false;
      }
    });
  }

  function payInSol() {
    const button = document.getElementById("pay-sol");
    document.getElementById("sol-payment").hidden = false;
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const bearer = await token(status);
        const address = session().wallet;
        for (const [i, hold] of holds.entries()) {
          if (hold.paid) continue;
          for (let attempt = 0; ; attempt++) {
            const fresh = await call("GET", "/api/purchases/" + hold.purchase_id, undefined, bearer);
            if (fresh.status !== "pending" && fresh.status !== "expired") break;
            if (!fresh.sol) throw new Error("Your hold ran out and no seat is left.");
            status.textContent = `Approve the payment for ticket ${i + 1} of ${holds.length} in your wallet…`;
            const signed = await signTransaction(fresh.sol.transaction, address);
            status.textContent = `Sending ticket ${i + 1}'s payment…`;
            try {
              await call("POST", `/api/purchases/${hold.purchase_id}/submit`, { transaction: signed }, bearer);
              break;
            } catch (e) {
              // Another sale took the ticket this transaction named: sign a new one.
              if (!(e instanceof Refusal) || e.answer.error !== "conflict" || attempt >= 2) throw e;
            }
          }
          hold.paid = true;
        }
        status.textContent = "Paid. Opening your confirmation…";
        location.href = confirmation();
      } catch (e) {
        status.textContent = "Not paid: " + e.message;
        button.disabled = false;
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const tier = form.querySelector("input[name=tier]:checked");
    const method = form.querySelector("input[name=method]:checked");
    if (!tier || !method) {
      status.textContent = "Choose a ticket and a way to pay.";
      return;
    }
    const count = Number(form.querySelector("#count").value);
    const email = form.querySelector("#email").value.trim();
    if (email && !form.querySelector("#email").checkValidity()) {
      status.textContent = "That is not an email address. Check it, or leave it empty.";
      form.querySelector("#email").focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    status.textContent = "Holding your seats…";
    holds = [];
    try {
      const bearer = await token(status);
      for (let i = 0; i < count; i++) {
        const body = { event_id: Number(form.dataset.event), tier: Number(tier.value), method: method.value };
        if (email) body.email = email;
        try {
          holds.push(await call("POST", "/api/tickets/purchase", body, bearer));
        } catch (e) {
          if (holds.length === 0) throw e;
          status.textContent = `Only ${holds.length} of ${count} seats could be held: ${e.message}`;
          break;
        }
      }
    } catch (e) {
      status.textContent = e.message;
      submit.disabled = false;
      return;
    }
    if (holds.length === count) status.textContent = `${count === 1 ? "Your seat is" : "Your " + count + " seats are"} held. Pay to get your tickets.`;
    list.innerHTML = "";
    for (const [i, hold] of holds.entries()) {
      const item = document.createElement("li");
      item.dataset.purchase = hold.purchase_id;
      item.textContent = `Ticket ${i + 1}: ${tier.closest("label").querySelector("strong").textContent}, ${money(hold.amount, hold.currency)}, held until ${new Date(hold.expires_at * 1000).toLocaleTimeString()}`;
      list.appendChild(item);
    }
    holdsSection.hidden = false;
    countdown();
    timer = setInterval(countdown, 1000);
    holdsSection.querySelector("h2").focus && holdsSection.scrollIntoView({ behavior: "smooth" });
    try {
      if (method.value === "card") await payByCard();
      else payInSol();
    } catch (e) {
      status.textContent = e.message;
    }
  });
}

// --- Transfers and claims --------------------------------------------------

function transfers() {
  for (const form of document.querySelectorAll("form.transfer-form, form.transfer-cancel")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const card = form.closest("article");
      const status = card.querySelector(".transfer-status");
      const button = form.querySelector("button");
      const base = `/api/tickets/${form.dataset.event}/${form.dataset.ticket}/transfer`;
      let body;
      let url = base;
      if (form.classList.contains("transfer-cancel")) {
        url = base + "/cancel";
      } else if (form.dataset.kind === "wallet") {
        body = { to_wallet: form.querySelector("input").value.trim() };
      } else {
        const input = form.querySelector("input");
        if (!input.checkValidity()) {
          status.textContent = "That is not an email address. Check it and try again.";
          input.focus();
          return;
        }
        body = { to_email: input.value.trim() };
      }
      button.disabled = true;
      try {
        const bearer = await token(status);
        status.textContent = "Preparing the transfer…";
        const prepared = await call("POST", url, body, bearer);
        status.textContent = "Approve the transfer in your wallet…";
        const signed = await signTransaction(prepared.transaction, session().wallet);
        status.textContent = "Sending…";
        const done = await call("POST", base + "/submit", { transaction: signed }, bearer);
        const mail = done.email_transfer;
        if (mail && mail.status === "open") {
          status.textContent = mail.mail_sent
            ? `Sent. ${mail.to_email} gets a mail with a link to claim the ticket.`
            : `The transfer is open, but the mail could not be sent (${mail.mail_error}).`;
        } else if (mail && mail.status === "cancelled") {
          status.textContent = "The ticket is yours again.";
        } else {
          status.textContent = "Sent. The ticket is in the other wallet now.";
        }
        setTimeout(() => location.reload(), 1500);
      } catch (e) {
        status.textContent = "Not sent: " + e.message;
        button.disabled = false;
      }
    });
  }
}

function claim() {
  const button = document.getElementById("claim-ticket");
  if (!button) return;
  const status = document.getElementById("claim-status");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const bearer = await token(status);
      status.textContent = "Claiming…";
      await call("POST", "/api/tickets/claim", { code: button.dataset.code }, bearer);
      status.textContent = "The ticket is yours. Opening My tickets…";
      setTimeout(() => { location.href = "/tickets"; }, 800);
    } catch (e) {
      status.textContent = "Not claimed: " + e.message;
      button.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").catch(() => {});
  }
  signInButton();
  signOut();
  drawAll();
  synced();
  window.addEventListener("online", synced);
  window.addEventListener("offline", synced);
  checkout();
  transfers();
  claim();
  const refresh = document.getElementById("confirmation-refresh");
  if (refresh) setTimeout(() => location.reload(), Number(refresh.dataset.refresh) * 1000);
  const print = document.getElementById("print-now");
  if (print) print.addEventListener("click", () => window.print());
});
