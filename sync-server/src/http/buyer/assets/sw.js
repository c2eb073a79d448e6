// The buyer pages' service worker. It keeps the pages' files and the last
// "My tickets" page (and printable tickets) a signed-in holder opened, so a
// ticket opened once still shows its code with no network (a live code's
// key and approval are in IndexedDB, not here). Pages always
// come from the network first; the kept copy answers only when the network
// fails, marked so the page can say it is offline and when it last synced.
"use strict";

const FILES = "buyer-files-v3";
const PAGES = "buyer-pages";
const ASSETS = [
  "/buyer/assets/buyer.css",
  "/buyer/assets/buyer.js",
  "/buyer/assets/live-code.js",
  "/buyer/assets/qrcode.js",
  "/buyer/assets/icon.svg",
  "/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(FILES).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n !== FILES && n !== PAGES).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

// Pages worth keeping: the holder's own, which the server marks.
function keepable(url, response) {
  return response.ok && response.headers.has("x-ticket-holder") &&
    (url.pathname === "/tickets" || /^\/tickets\/\d+\/\d+\/print$/.test(url.pathname));
}

async function page(request) {
  const url = new URL(request.url);
  try {
    const response = await fetch(request);
    if (keepable(url, response)) {
      const cache = await caches.open(PAGES);
      await cache.put(url.pathname, response.clone());
    }
    return response;
  } catch (offline) {
    const cache = await caches.open(PAGES);
    const kept = await cache.match(url.pathname);
    if (kept) {
      const html = (await kept.text()).replace("<body>", '<body data-offline-copy="1">');
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    return new Response(
      '<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
        '<title>Offline · Tickets</title><link rel="stylesheet" href="/buyer/assets/buyer.css"><main id="main"><h1>You are offline</h1>' +
        '<p class="problem" role="alert">This page has not been opened on this phone before, so it cannot be shown without a network. ' +
        'Tickets you opened in My tickets are kept: <a href="/tickets">open My tickets</a>.</p></main></html>',
      { status: 503, headers: { "content-type": "text/html; charset=utf-8" } },
    );
  }
}

async function file(request) {
  const cache = await caches.open(FILES);
  const kept = await cache.match(request);
  const fresh = fetch(request).then((response) => {
    if (response.ok) cache.put(request, response.clone());
    return response;
  });
  if (kept) {
    fresh.catch(() => {});
    return kept;
  }
  return fresh;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/console")) return;
  if (request.mode === "navigate") {
    event.respondWith(page(request));
  } else if (ASSETS.includes(url.pathname)) {
    event.respondWith(file(request));
  }
});

// Signing out forgets the kept pages: they show the holder's codes.
self.addEventListener("message", (event) => {
  if (event.data === "forget-pages") event.waitUntil(caches.delete(PAGES));
});
