//! A local stand-in for Stripe: a real HTTP server that answers the part of
//! Stripe's API the server uses (create and read a PaymentIntent, form-encoded,
//! bearer secret key, idempotency keys, Stripe's error envelope) and sends
//! signed `payment_intent.succeeded` / `payment_intent.payment_failed`
//! webhooks to a URL, as Stripe does when a payment settles. For browser
//! tests it also serves a stand-in of Stripe.js (`/v3/`: `Stripe(key)`,
//! `elements({mode, amount, currency})`, a payment element with a card
//! number field, `elements.submit()`, `confirmPayment({elements,
//! clientSecret})`) whose confirmation settles the intent the way a card
//! does: 4242... pays, 4000 0000 0000 0002 is declined.
//!
//! Its signing is written here independently of the server's verification,
//! so a shared mistake cannot make both agree.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// What the stand-in saw of one API request.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub idempotency_key: Option<String>,
    pub form: Vec<(String, String)>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl SeenRequest {
    fn of(headers: &HeaderMap, form: &[(String, String)]) -> Self {
        Self {
            authorization: header(headers, "authorization"),
            content_type: header(headers, "content-type"),
            idempotency_key: header(headers, "idempotency-key"),
            form: form.to_vec(),
        }
    }
}

#[derive(Default)]
struct Books {
    intents: HashMap<String, Value>,
    by_idempotency_key: HashMap<String, String>,
    /// Refunds made, by id.
    refunds: HashMap<String, Value>,
    /// Refund ids by idempotency key.
    refunds_by_key: HashMap<String, String>,
    /// Every event sent, by id: (type, body as sent).
    events: HashMap<String, Vec<u8>>,
    seen: Vec<SeenRequest>,
}

#[derive(Clone)]
struct Standin {
    secret_key: String,
    books: Arc<Mutex<Books>>,
    webhook_secret: String,
    webhook_url: Arc<Mutex<String>>,
    http: reqwest::Client,
}

pub struct StripeStandin {
    pub url: String,
    secret_key: String,
    webhook_secret: String,
    webhook_url: Arc<Mutex<String>>,
    books: Arc<Mutex<Books>>,
    http: reqwest::Client,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>`
pub fn stripe_signature(secret: &str, t: i64, payload: &[u8]) -> String {
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(payload);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&signed);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn stripe_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "type": kind, "code": code, "message": message } })),
    )
        .into_response()
}

impl StripeStandin {
    /// Starts the stand-in; webhooks go to `webhook_url`, signed with
    /// `webhook_secret`.
    pub async fn start(secret_key: &str, webhook_secret: &str, webhook_url: &str) -> Self {
        let books = Arc::new(Mutex::new(Books::default()));
        let webhook_url = Arc::new(Mutex::new(webhook_url.to_owned()));
        let http = reqwest::Client::new();
        let standin = Standin {
            secret_key: secret_key.to_owned(),
            books: books.clone(),
            webhook_secret: webhook_secret.to_owned(),
            webhook_url: webhook_url.clone(),
            http: http.clone(),
        };
        let app = axum::Router::new()
            .route("/v3/", get(browser_script))
            .route(
                "/v1/payment_intents/{id}/confirm",
                post(confirm_from_browser),
            )
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/{id}", get(read_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund))
            .with_state(standin);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            secret_key: secret_key.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
            webhook_url,
            books,
            http,
        }
    }

    /// Where webhooks go from now on (a server started after the stand-in).
    pub fn set_webhook_url(&self, url: &str) {
        *self.webhook_url.lock().unwrap() = url.to_owned();
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.books.lock().unwrap().seen.clone()
    }

    /// Refunds made for `intent_id`.
    pub fn refunds_of(&self, intent_id: &str) -> Vec<Value> {
        self.books
            .lock()
            .unwrap()
            .refunds
            .values()
            .filter(|r| r["payment_intent"] == intent_id)
            .cloned()
            .collect()
    }

    pub fn intent(&self, id: &str) -> Value {
        self.books.lock().unwrap().intents[id].clone()
    }

    /// The buyer paid: the intent succeeds and Stripe sends the webhook.
    /// Returns (event id, the receiver's HTTP status).
    pub async fn succeed(&self, intent_id: &str) -> (String, u16) {
        self.settle(intent_id, "payment_intent.succeeded", "succeeded", None)
            .await
    }

    /// The card was declined.
    pub async fn fail(&self, intent_id: &str, message: &str) -> (String, u16) {
        self.settle(
            intent_id,
            "payment_intent.payment_failed",
            "requires_payment_method",
            Some(json!({ "type": "card_error", "code": "card_declined", "message": message })),
        )
        .await
    }

    async fn settle(
        &self,
        intent_id: &str,
        event_type: &str,
        status: &str,
        error: Option<Value>,
    ) -> (String, u16) {
        let event_id = random_id("evt");
        let body = {
            let mut books = self.books.lock().unwrap();
            let intent = books.intents.get_mut(intent_id).unwrap();
            intent["status"] = json!(status);
            intent["last_payment_error"] = error.unwrap_or(Value::Null);
            let event = json!({
                "id": event_id,
                "object": "event",
                "api_version": "2024-06-20",
                "created": unix_now(),
                "type": event_type,
                "livemode": false,
                "data": { "object": intent.clone() },
            });
            let body = serde_json::to_vec(&event).unwrap();
            books.events.insert(event_id.clone(), body.clone());
            body
        };
        let status = self.deliver(&body, unix_now()).await;
        (event_id, status)
    }

    /// Sends an event again, freshly signed, as Stripe does when it did not
    /// hear 2xx (or just because it delivers at least once).
    pub async fn redeliver(&self, event_id: &str) -> u16 {
        let body = self.books.lock().unwrap().events[event_id].clone();
        self.deliver(&body, unix_now()).await
    }

    /// Posts `body` signed at time `t`.
    pub async fn deliver(&self, body: &[u8], t: i64) -> u16 {
        let url = self.webhook_url.lock().unwrap().clone();
        self.http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "Stripe-Signature",
                stripe_signature(&self.webhook_secret, t, body),
            )
            .body(body.to_vec())
            .send()
            .await
            // 0: no answer (the receiver died or is down); Stripe retries.
            .map_or(0, |r| r.status().as_u16())
    }
}

fn authorised(standin: &Standin, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", standin.secret_key))
}

async fn create_intent(
    State(standin): State<Standin>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(form) => form,
        Err(_) => {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "parameter_invalid",
                "the body is not form-encoded",
            );
        }
    };
    let idempotency_key = header(&headers, "idempotency-key");
    let mut books = standin.books.lock().unwrap();
    books.seen.push(SeenRequest::of(&headers, &form));
    if !authorised(&standin, &headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
        );
    }
    if let Some(id) = idempotency_key
        .as_ref()
        .and_then(|k| books.by_idempotency_key.get(k))
    {
        return Json(books.intents[id].clone()).into_response();
    }
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let Some(amount) = field("amount")
        .and_then(|a| a.parse::<u64>().ok())
        .filter(|a| *a >= 1)
    else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_missing",
            "Missing required param: amount.",
        );
    };
    let Some(currency) = field("currency").filter(|c| c.len() == 3) else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_missing",
            "Missing required param: currency.",
        );
    };
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|k| k.strip_suffix(']'))
                .map(|k| (k.to_owned(), json!(v)))
        })
        .collect();
    let id = random_id("pi");
    let intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "currency": currency,
        "status": "requires_payment_method",
        "client_secret": format!("{id}_secret_{}", uuid::Uuid::now_v7().simple()),
        "metadata": metadata,
        "livemode": false,
        "created": unix_now(),
    });
    books.intents.insert(id.clone(), intent.clone());
    if let Some(key) = idempotency_key {
        books.by_idempotency_key.insert(key, id);
    }
    Json(intent).into_response()
}

async fn read_intent(
    State(standin): State<Standin>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorised(&standin, &headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
        );
    }
    match standin.books.lock().unwrap().intents.get(&id) {
        Some(intent) => Json(intent.clone()).into_response(),
        None => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            "No such payment_intent",
        ),
    }
}

/// Stripe cancels an intent that has not succeeded; a succeeded or already
/// cancelled one answers 400 `payment_intent_unexpected_state`.
async fn cancel_intent(
    State(standin): State<Standin>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorised(&standin, &headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
        );
    }
    let mut books = standin.books.lock().unwrap();
    let Some(intent) = books.intents.get_mut(&id) else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            "No such payment_intent",
        );
    };
    if matches!(intent["status"].as_str(), Some("succeeded" | "canceled")) {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            "This PaymentIntent's status does not allow cancelling it.",
        );
    }
    intent["status"] = json!("canceled");
    Json(intent.clone()).into_response()
}

/// `POST /v1/refunds` with `payment_intent`: refunds a succeeded intent in
/// full. The same idempotency key answers the first refund again; a second
/// refund of a refunded intent is 400 `charge_already_refunded`, as Stripe
/// answers.
async fn create_refund(
    State(standin): State<Standin>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorised(&standin, &headers) {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
        );
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let key = header(&headers, "idempotency-key");
    let mut books = standin.books.lock().unwrap();
    books.seen.push(SeenRequest::of(&headers, &form));
    if let Some(id) = key.as_ref().and_then(|k| books.refunds_by_key.get(k)) {
        return Json(books.refunds[id].clone()).into_response();
    }
    let Some(intent_id) = form
        .iter()
        .find(|(k, _)| k == "payment_intent")
        .map(|(_, v)| v.clone())
    else {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_missing",
            "Missing required param: payment_intent.",
        );
    };
    let Some(intent) = books.intents.get(&intent_id).cloned() else {
        return stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            "No such payment_intent",
        );
    };
    if intent["status"] != "succeeded" {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "payment_intent_unexpected_state",
            "This PaymentIntent does not have a successful charge to refund.",
        );
    }
    if books
        .refunds
        .values()
        .any(|r| r["payment_intent"] == intent_id.as_str())
    {
        return stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "charge_already_refunded",
            "This charge has already been refunded.",
        );
    }
    let id = random_id("re");
    let refund = json!({
        "id": id,
        "object": "refund",
        "amount": intent["amount"],
        "currency": intent["currency"],
        "payment_intent": intent_id,
        "status": "succeeded",
        "created": unix_now(),
    });
    books.refunds.insert(id.clone(), refund.clone());
    if let Some(key) = key {
        books.refunds_by_key.insert(key, id);
    }
    Json(refund).into_response()
}

/// The stand-in of Stripe.js: the calls a checkout page makes, a card
/// number field in place of Stripe's iframe, and the confirmation posted
/// back to this stand-in, which settles the intent and sends the webhook.
async fn browser_script() -> Response {
    const SCRIPT: &str = r#"(function () {
  const here = document.currentScript ? new URL(document.currentScript.src).origin : "";
  window.Stripe = function (publishableKey) {
    return {
      elements(options) {
        let input = null;
        return {
          options,
          create(kind) {
            return {
              mount(selector) {
                const host = typeof selector === "string" ? document.querySelector(selector) : selector;
                host.innerHTML = '<label for="standin-card">Card number (test stand-in)</label>' +
                  '<input id="standin-card" inputmode="numeric" autocomplete="cc-number" placeholder="4242 4242 4242 4242">';
                input = host.querySelector("input");
              },
            };
          },
          async submit() {
            if (!input || input.value.replace(/\s/g, "").length < 12) {
              return { error: { type: "validation_error", message: "Your card number is incomplete." } };
            }
            return {};
          },
          card() { return input ? input.value.replace(/\s/g, "") : ""; },
        };
      },
      async confirmPayment({ elements, clientSecret }) {
        const id = clientSecret.split("_secret_")[0];
        const body = new URLSearchParams({ client_secret: clientSecret, key: publishableKey, card: elements.card() });
        const response = await fetch(here + "/v1/payment_intents/" + id + "/confirm", { method: "POST", body });
        const answer = await response.json();
        if (!response.ok) return { error: answer.error };
        return { paymentIntent: answer };
      },
    };
  };
})();"#;
    (
        [(axum::http::header::CONTENT_TYPE, "text/javascript")],
        SCRIPT,
    )
        .into_response()
}

/// A browser's confirmation of an intent (what Stripe.js posts with the
/// publishable key and the client secret): the card settles it, and the
/// webhook goes out before the answer.
async fn confirm_from_browser(
    State(standin): State<Standin>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let cors = [(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")];
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let secret_matches = standin
        .books
        .lock()
        .unwrap()
        .intents
        .get(&id)
        .is_some_and(|i| {
            form.get("client_secret").map(String::as_str) == i["client_secret"].as_str()
        });
    if !secret_matches || !form.get("key").is_some_and(|k| k.starts_with("pk_")) {
        let mut refused = stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "resource_missing",
            "No such payment_intent for this client secret.",
        );
        refused.headers_mut().insert(
            axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            axum::http::HeaderValue::from_static("*"),
        );
        return refused;
    }
    let declined = form.get("card").map(String::as_str) == Some("4000000000000002");
    let (event_type, status, error) = if declined {
        (
            "payment_intent.payment_failed",
            "requires_payment_method",
            Some(
                json!({ "type": "card_error", "code": "card_declined", "message": "Your card was declined." }),
            ),
        )
    } else {
        ("payment_intent.succeeded", "succeeded", None)
    };
    let body = standin.settle_intent(&id, event_type, status, error.clone());
    let url = standin.webhook_url.lock().unwrap().clone();
    let _ = standin
        .http
        .post(url)
        .header("content-type", "application/json")
        .header(
            "Stripe-Signature",
            stripe_signature(&standin.webhook_secret, unix_now(), &body),
        )
        .body(body)
        .send()
        .await;
    let intent = standin.books.lock().unwrap().intents[&id].clone();
    match error {
        Some(error) => (
            StatusCode::PAYMENT_REQUIRED,
            cors,
            Json(json!({ "error": error })),
        )
            .into_response(),
        None => (cors, Json(intent)).into_response(),
    }
}

impl Standin {
    /// Marks the intent settled and records the event; its body to send.
    fn settle_intent(
        &self,
        intent_id: &str,
        event_type: &str,
        status: &str,
        error: Option<Value>,
    ) -> Vec<u8> {
        let event_id = random_id("evt");
        let mut books = self.books.lock().unwrap();
        let intent = books.intents.get_mut(intent_id).unwrap();
        intent["status"] = json!(status);
        intent["last_payment_error"] = error.unwrap_or(Value::Null);
        let event = json!({
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "created": unix_now(),
            "type": event_type,
            "livemode": false,
            "data": { "object": intent.clone() },
        });
        let body = serde_json::to_vec(&event).unwrap();
        books.events.insert(event_id, body.clone());
        body
    }
}
