// The live ticket code (docs/holder-proof.md). Where an event's gates ask
// for the holder's proof, a screenshot must not get in, so the code changes
// every few seconds. A wallet cannot be asked to sign that often, so:
//
// 1. this browser keeps one ed25519 session key that it cannot export
//    (WebCrypto), in IndexedDB;
// 2. the holder's wallet approves that key once, for a while, by signing
//    a readable text (the delegation) that the server phrases and this
//    script checks word for word before the wallet sees it: for the one
//    ticket, or, where the page shows several live tickets of one event in
//    this wallet, for every ticket it holds at that event, so one signature
//    serves them all; the approval is kept in IndexedDB too;
// 3. every few seconds the key signs (ticket, time) and the page draws the
//    format version 2 code: the ticket's static code with the approval and
//    the fresh proof appended.
//
// Steps 1 and 3 need no network, so after one approval the code keeps
// changing on a phone that is offline, also after a reload. Each load of My
// tickets forgets the approvals nothing can use any more: run out, made for
// another key, or (for the signed-in wallet) of a ticket it no longer holds
// or that can no longer get in. Loaded after
// buyer.js, whose helpers it uses (base58, call, token, connect) and whose
// `window.ticketCodes` hook draws the codes.
"use strict";

(() => {
  const DB_NAME = "nft-gate-live-code";
  const KEYS = "keys"; // "session": { privateKey (CryptoKey), publicKey (32 bytes) }
  // The wallet's approvals: "<event>/<ticket>" for one ticket at one
  // generation, "event/<event>/<wallet>" for every ticket the wallet holds
  // at the event.
  const APPROVALS = "approvals";
  const PROOF_DOMAIN = new TextEncoder().encode("nft-gate/session-proof/v1");
  const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const STATIC_LEN = 115;
  const LIVE_LEN = 288;

  // --- Encodings ------------------------------------------------------------

  // Unpadded RFC 4648 base32, upper case: the codes' text form.
  function base32(bytes) {
    let out = "";
    let bits = 0;
    let value = 0;
    for (const byte of bytes) {
      value = ((value << 8) | byte) & 0xfff;
      bits += 8;
      while (bits >= 5) {
        out += B32[(value >>> (bits - 5)) & 31];
        bits -= 5;
      }
    }
    if (bits > 0) out += B32[(value << (5 - bits)) & 31];
    return out;
  }

  function fromBase32(text) {
    const out = [];
    let bits = 0;
    let value = 0;
    for (const char of text.trim().toUpperCase()) {
      const digit = B32.indexOf(char);
      if (digit < 0) throw new Error("the ticket code is not base32");
      value = ((value << 5) | digit) & 0xfff;
      bits += 5;
      if (bits >= 8) {
        out.push((value >>> (bits - 8)) & 255);
        bits -= 8;
      }
    }
    return new Uint8Array(out);
  }

  function be32(n) {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, n);
    return out;
  }

  // What the static code says of its ticket.
  function ticketOf(code) {
    const bytes = fromBase32(code);
    if (bytes.length !== STATIC_LEN || bytes[0] !== 1 || bytes[1] !== 0) throw new Error("unexpected ticket code");
    const view = new DataView(bytes.buffer);
    return {
      bytes,
      eventId: view.getBigUint64(2).toString(),
      ticketId: view.getUint32(10),
      owner: bytes.slice(15, 47),
      generation: view.getUint32(47),
    };
  }

  // --- What is signed ---------------------------------------------------------

  const utc = (secs) => new Date(secs * 1000).toISOString().slice(0, 19).replace("T", " ");

  // The delegation text the wallet signs: for this ticket at its
  // generation, or for every ticket the wallet holds at its event.
  function delegationText(scope, ticket, sessionKey, validFrom, validUntil) {
    const event = scope === "event";
    return [
      `nft-gate: allow this browser key to show my ${event ? "tickets" : "ticket"} at the gate`,
      "key: " + sessionKey,
      "event: " + ticket.eventId,
      event ? "ticket: every ticket I hold for this event" : `ticket: ${ticket.ticketId} (generation ${ticket.generation})`,
      `valid: ${utc(validFrom)} UTC to ${utc(validUntil)} UTC`,
    ].join("\n");
  }

  // The version 2 code at `now`: the static code, the approval, the proof.
  async function liveCode(ticket, approval, key, now) {
    const message = new Uint8Array(PROOF_DOMAIN.length + 20);
    message.set(PROOF_DOMAIN, 0);
    message.set(ticket.bytes.subarray(2, 14), 25); // event id, ticket id
    message.set(ticket.bytes.subarray(47, 51), 37); // generation
    message.set(be32(now), 41);
    const proof = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, message));
    const out = new Uint8Array(LIVE_LEN);
    out.set(ticket.bytes, 0);
    out[0] = 2; // format version 2 (byte 1, the flags, stays 0)
    out[115] = approval.scope === "event" ? 1 : 0; // 0: this ticket at this generation; 1: the wallet's tickets at the event
    out.set(key.publicKey, 116);
    out.set(be32(approval.validFrom), 148);
    out.set(be32(approval.validUntil), 152);
    out.set(approval.signature, 156);
    out.set(be32(now), 220);
    out.set(proof, 224);
    return base32(out);
  }

  // --- IndexedDB ----------------------------------------------------------------

  let opened = null;
  function database() {
    opened = opened || new Promise((resolve, reject) => {
      const open = indexedDB.open(DB_NAME, 1);
      open.onupgradeneeded = () => {
        open.result.createObjectStore(KEYS);
        open.result.createObjectStore(APPROVALS);
      };
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    return opened;
  }

  async function inStore(name, mode, act) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const request = act(tx.objectStore(name));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  const read = (name, key) => inStore(name, "readonly", (s) => s.get(key));
  const write = (name, key, value) => inStore(name, "readwrite", (s) => s.put(value, key));
  const remove = (name, key) => inStore(name, "readwrite", (s) => s.delete(key));

  // Every [key, value] of a store.
  async function entries(name) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, "readonly");
      const store = tx.objectStore(name);
      const keys = store.getAllKeys();
      const values = store.getAll();
      tx.oncomplete = () => resolve(keys.result.map((key, i) => [key, values.result[i]]));
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  // This browser's session key, made once. Its private half cannot be
  // exported: it never leaves this browser, not even through this script.
  let keeping = null;
  function sessionKey() {
    keeping = keeping || (async () => {
      const kept = await read(KEYS, "session");
      if (kept) return kept;
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      const made = { privateKey: pair.privateKey, publicKey: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)) };
      await write(KEYS, "session", made);
      return made;
    })();
    return keeping;
  }

  // --- Approvals no longer of use ----------------------------------------------

  // Where a held ticket stands when it may still be shown at a gate, now or
  // later (a ticket on hold may be released, one sent by email taken back).
  const STILL_HELD = new Set(["valid", "entered", "frozen", "awaiting_claim"]);
  const eventKey = (eventId, owner) => `event/${eventId}/${owner}`;

  // Forgets the approvals that nothing can use any more: run out, or made
  // for another session key than this browser's, or (for the wallet signed
  // in on this page) of a ticket it no longer holds, one revoked or
  // refunded, one whose code changed, or of an event where it holds no
  // ticket. Other wallets' approvals stay until they run out: they may sign
  // in on this browser again. A copy of the page shown offline is not the
  // server's latest word, so then only what ran out is forgotten.
  async function forgetStale(wallet) {
    const offlineCopy = document.body.dataset.offlineCopy === "1";
    const kept = await read(KEYS, "session");
    const keyText = kept ? base58(kept.publicKey) : null;
    const held = new Map(); // "<event>/<ticket>" -> its code on the page, or null
    for (const card of document.querySelectorAll("article.ticket[data-event][data-ticket]")) {
      if (card.closest(".passed") || !STILL_HELD.has(card.dataset.standing)) continue;
      const figure = card.querySelector("figure.qr[data-code]");
      held.set(`${card.dataset.event}/${card.dataset.ticket}`, figure ? figure.dataset.code : null);
    }
    const events = new Set([...held.keys()].map((k) => k.split("/")[0]));
    const now = unixNow();
    for (const [name, approval] of await entries(APPROVALS)) {
      let stale = !approval || !(now < approval.validUntil) || approval.sessionKey !== keyText;
      if (!stale && !offlineCopy) {
        if (approval.scope === "event") {
          stale = approval.owner === wallet && !events.has(String(approval.eventId));
        } else {
          let owner = null;
          try {
            owner = base58(ticketOf(approval.code).owner);
          } catch (e) {
            stale = true;
          }
          if (owner === wallet) {
            const shown = held.get(name);
            stale = shown === undefined || (shown !== null && shown !== approval.code);
          }
        }
      }
      if (stale) await remove(APPROVALS, name);
    }
  }

  // --- The page ---------------------------------------------------------------

  // Each live figure's state: ticket, its owner (base58), session key,
  // approval, current code.
  const live = new Map();
  let firstDrawn = false;

  // How often a new proof is signed: a third of the gates' window, between
  // 1 and 5 s, so a code is always well inside the window when scanned.
  const refreshSecs = (windowSecs) => Math.max(1, Math.min(5, Math.floor(windowSecs / 3)));
  const unixNow = () => Math.floor(Date.now() / 1000);
  const ticketKey = (figure) => {
    const card = figure.closest("article");
    return `${card.dataset.event}/${card.dataset.ticket}`;
  };
  const part = (figure, name) => figure.querySelector(`[data-live-${name}]`);
  // Where an approval is kept.
  const approvalKey = (figure, state, approval) =>
    approval.scope === "event" ? eventKey(state.ticket.eventId, state.owner) : ticketKey(figure);
  // The live figures of the same wallet's tickets at the same event.
  const peers = (state) =>
    [...live].filter(([, s]) => s.ticket.eventId === state.ticket.eventId && s.owner === state.owner);

  function say(figure, text) {
    const status = part(figure, "status");
    if (status) status.textContent = text;
  }

  // No approval (yet, or any more): offer it while online.
  function offerApproval(figure, state, why) {
    state.approval = null;
    state.code = null;
    window.ticketCodes.redraw();
    const button = part(figure, "approve");
    const note = part(figure, "note");
    if (note) note.textContent = "";
    const online = navigator.onLine && document.body.dataset.offlineCopy !== "1";
    const several = peers(state).length > 1;
    if (button) {
      button.hidden = !online;
      button.disabled = false;
      if (several) button.textContent = "Approve this phone for all your tickets to this event";
    }
    say(figure, (why ? why + " " : "") + (online
      ? (several
        ? "Approve this phone once with your wallet to show the live codes of all your tickets to this event: one signature for them all."
        : "Approve this phone once with your wallet to show the live code.")
      : "Connect to the internet once to approve this phone with your wallet; after that the live code works offline."));
  }

  function start(figure, state, approval) {
    state.approval = approval;
    state.signedAt = null;
    const button = part(figure, "approve");
    if (button) button.hidden = true;
    say(figure, `Live code, approved by your wallet until ${new Date(approval.validUntil * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}.`);
    if (approval.skew && Math.abs(approval.skew) > Math.max(5, state.windowSecs / 2)) {
      say(figure, `This phone's clock is ${Math.abs(approval.skew)} s ${approval.skew > 0 ? "behind" : "ahead"}: the gate may refuse the code. Set the clock to automatic.`);
    }
  }

  // Has the wallet approve this browser's key: for every ticket it holds at
  // the event where the page shows more than one of them (one signature,
  // not one per ticket), else for this ticket at its generation.
  async function approve(figure, state) {
    const button = part(figure, "approve");
    const status = part(figure, "status");
    button.disabled = true;
    try {
      const keyText = base58(state.key.publicKey);
      const card = figure.closest("article");
      const scope = peers(state).length > 1 ? "event" : "ticket";
      const bearer = await token(status);
      say(figure, "Getting the approval text…");
      const answer = await call("GET", `/api/tickets/${card.dataset.event}/${card.dataset.ticket}/holder-key?key=${keyText}&scope=${scope}`, undefined, bearer);
      if (answer.code !== figure.dataset.code) {
        say(figure, "This ticket changed since the page was loaded. Reloading…");
        setTimeout(() => location.reload(), 800);
        return;
      }
      const text = delegationText(scope, state.ticket, keyText, answer.valid_from, answer.valid_until);
      if (answer.scope !== scope || text !== answer.message) throw new Error("the server asked for a different text than this page expects; nothing was signed");
      say(figure, "Approve this phone in your wallet…");
      const { wallet } = await connect();
      const bytes = new TextEncoder().encode(text);
      const signed = await wallet.signMessage(bytes, "utf8");
      const signature = new Uint8Array(signed && signed.signature ? signed.signature : signed);
      const owner = await crypto.subtle.importKey("raw", state.ticket.owner, { name: "Ed25519" }, false, ["verify"]);
      if (signature.length !== 64 || !(await crypto.subtle.verify({ name: "Ed25519" }, owner, signature, bytes))) {
        throw new Error("the wallet signed with another account than the one holding this ticket");
      }
      const terms = {
        scope,
        sessionKey: keyText,
        validFrom: answer.valid_from,
        validUntil: answer.valid_until,
        signature,
        skew: answer.server_time - unixNow(),
      };
      const approval = scope === "event"
        ? { ...terms, eventId: state.ticket.eventId, owner: state.owner }
        : { ...terms, code: figure.dataset.code };
      await write(APPROVALS, approvalKey(figure, state, approval), approval);
      if (scope === "event") {
        // Every ticket of the wallet at the event, except those already
        // showing a code under an approval of their own.
        for (const [other, otherState] of peers(state)) {
          if (other === figure || !otherState.approval) start(other, otherState, approval);
        }
      } else {
        start(figure, state, approval);
      }
      await tick();
    } catch (e) {
      say(figure, "No live code yet: " + (e.message || e));
      button.disabled = false;
    }
  }

  // Signs a new proof where one is due, and updates each countdown.
  let ticking = false;
  async function tick() {
    if (ticking) return;
    ticking = true;
    try {
      const now = unixNow();
      let changed = false;
      for (const [figure, state] of live) {
        if (!state.approval) continue;
        if (now >= state.approval.validUntil) {
          await remove(APPROVALS, approvalKey(figure, state, state.approval)).catch(() => {});
          offerApproval(figure, state, "Your wallet's approval for this phone ran out.");
          continue;
        }
        if (state.signedAt === null || now - state.signedAt >= state.every) {
          state.code = await liveCode(state.ticket, state.approval, state.key, now);
          state.signedAt = now;
          changed = true;
        }
        const note = part(figure, "note");
        if (note) {
          const next = Math.max(1, state.every - (now - state.signedAt));
          note.textContent = `Changes every ${state.every} s · next in ${next} s`;
        }
      }
      if (changed) {
        window.ticketCodes.redraw();
        if (!firstDrawn) {
          firstDrawn = true;
          performance.mark("first-live-code");
        }
      }
    } finally {
      ticking = false;
    }
  }

  // The kept approval this figure can show its code with: its own, else
  // its wallet's for the event.
  async function keptApproval(figure, state) {
    const keyText = base58(state.key.publicKey);
    const now = unixNow();
    const own = await read(APPROVALS, ticketKey(figure)).catch(() => null);
    if (own && own.code === figure.dataset.code && own.sessionKey === keyText && now < own.validUntil) return own;
    const event = await read(APPROVALS, eventKey(state.ticket.eventId, state.owner)).catch(() => null);
    if (event && event.scope === "event" && event.sessionKey === keyText && now < event.validUntil) return event;
    return null;
  }

  async function setUp() {
    const figures = [...document.querySelectorAll("figure.qr[data-holder-proof-window]")];
    const wallet = document.getElementById("synced") ? pageWallet() : null;
    if (figures.length === 0 && !wallet) return;
    if (figures.length > 0) window.ticketCodes.register({ codeFor: (figure) => (live.get(figure) || {}).code || null });
    let key;
    try {
      if (!window.indexedDB || !crypto.subtle) throw new Error("no IndexedDB or WebCrypto");
      // My tickets of a signed-in wallet: the page says what it holds.
      if (wallet) {
        await forgetStale(wallet).catch((e) => console.error("forgetting old approvals", e));
        document.documentElement.dataset.approvalsChecked = "1";
      }
      if (figures.length === 0) return;
      key = await sessionKey();
    } catch (e) {
      for (const figure of figures) say(figure, "This browser cannot make the live code (" + (e.message || e) + "). Update it, or open this page in another browser.");
      return;
    }
    for (const figure of figures) {
      const windowSecs = Number(figure.dataset.holderProofWindow) || 30;
      let ticket;
      try {
        ticket = ticketOf(figure.dataset.code);
      } catch (e) {
        say(figure, "This ticket's code cannot be read: " + e.message);
        continue;
      }
      const state = { ticket, owner: base58(ticket.owner), key, windowSecs, every: refreshSecs(windowSecs), approval: null, code: null, signedAt: null };
      live.set(figure, state);
      part(figure, "approve").addEventListener("click", () => approve(figure, state));
    }
    for (const [figure, state] of live) {
      const kept = await keptApproval(figure, state);
      if (kept) start(figure, state, kept);
      else offerApproval(figure, state, null);
    }
    const online = () => {
      for (const [figure, state] of live) if (!state.approval) offerApproval(figure, state, null);
    };
    window.addEventListener("online", online);
    window.addEventListener("offline", online);
    await tick();
    setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUp().catch((e) => console.error("live code", e));
  });
})();
