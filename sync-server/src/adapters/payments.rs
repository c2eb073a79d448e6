//! Card payments: a [`PaymentProvider`] creates a payment for a ticket and
//! tells, through signed webhooks, whether it succeeded. [`StripeProvider`]
//! speaks Stripe's HTTP API (`POST /v1/payment_intents`, form-encoded,
//! bearer secret key) and checks Stripe's webhook signatures.
//!
//! A webhook is believed only when its `Stripe-Signature` is an HMAC-SHA256,
//! under the endpoint's webhook secret, of `"<t>.<body>"` and `t` is within
//! the tolerance of now: unsigned, tampered and replayed-late deliveries are
//! refused before anything is parsed. Stripe delivers an event at least
//! once, so the handler records each event id in `processed_webhooks` in
//! the same transaction as its effect (`Store::record_webhook_event`), and a
//! second delivery changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::adapters::BoxFuture;
use crate::config::StripeSettings;

/// Why a payment could not be created.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("card payments are disabled (no stripe.secret_key configured)")]
    Disabled,
    /// Refused before sending: the request can never succeed as it is.
    #[error("invalid payment request: {0}")]
    InvalidRequest(String),
    /// The provider refused it (a 4xx); `kind` and `code` are Stripe's.
    #[error("the payment provider refused ({status} {kind}): {message}")]
    Rejected {
        status: u16,
        kind: String,
        code: Option<String>,
        message: String,
    },
    /// No answer, a 5xx, or 429: the same request may succeed later (with
    /// the same idempotency key, so it is not charged twice).
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the payment provider answered something unexpected: {0}")]
    Protocol(String),
}

impl PaymentError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PaymentError::Unavailable(_))
    }
}

/// Why a webhook was refused. Any of these is answered 400, so a genuine
/// sender retries while a forger learns nothing it can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhooks are disabled (no stripe.webhook_secret configured)")]
    Disabled,
    #[error("the webhook is not signed")]
    MissingSignature,
    #[error("the webhook signature header is malformed")]
    MalformedSignature,
    #[error("the webhook signature does not match its body")]
    BadSignature,
    #[error("the webhook was signed {age_secs} s from now, outside the tolerance")]
    Stale { age_secs: i64 },
    #[error("the webhook body is not an event: {0}")]
    MalformedEvent(String),
}

impl WebhookError {
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::Disabled => "webhooks_disabled",
            WebhookError::MissingSignature => "missing_signature",
            WebhookError::MalformedSignature => "malformed_signature",
            WebhookError::BadSignature => "bad_signature",
            WebhookError::Stale { .. } => "stale_signature",
            WebhookError::MalformedEvent(_) => "malformed_event",
        }
    }
}

/// A payment to create: an amount in the currency's smallest unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPaymentIntent {
    /// Cents for EUR/USD; whole yen for JPY.
    pub amount_minor: u64,
    /// ISO 4217, lower case (`eur`).
    pub currency: String,
    /// What the payment is for (event, tier, buyer); comes back in webhooks.
    pub metadata: BTreeMap<String, String>,
    /// The same key for a retry of the same purchase, so a lost answer
    /// never charges twice.
    pub idempotency_key: String,
}

/// Stripe's limits on metadata, checked before sending.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

impl NewPaymentIntent {
    fn check(&self) -> Result<(), PaymentError> {
        let invalid = |m: String| Err(PaymentError::InvalidRequest(m));
        if self.amount_minor == 0 {
            return invalid("amount must be at least 1".into());
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return invalid(format!(
                "currency {:?} is not an ISO code in lower case",
                self.currency
            ));
        }
        if self.metadata.len() > MAX_METADATA_KEYS {
            return invalid(format!("at most {MAX_METADATA_KEYS} metadata keys"));
        }
        for (key, value) in &self.metadata {
            // Brackets would change the form field's meaning (metadata[a][b]).
            if key.is_empty()
                || key.chars().count() > MAX_METADATA_KEY_CHARS
                || key.contains(['[', ']'])
            {
                return invalid(format!("metadata key {key:?}"));
            }
            if value.chars().count() > MAX_METADATA_VALUE_CHARS {
                return invalid(format!("metadata value of {key:?} is too long"));
            }
        }
        if self.idempotency_key.is_empty() || self.idempotency_key.len() > 255 {
            return invalid("idempotency_key: 1 to 255 characters".into());
        }
        Ok(())
    }
}

/// Where a payment stands, in Stripe's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    /// A status newer than this code.
    #[serde(other)]
    Other,
}

/// A payment as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: u64,
    pub currency: String,
    pub status: IntentStatus,
    /// Handed to the buyer's browser to confirm the payment there; only in
    /// the answer to creation.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A refund as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: u64,
    /// `pending` or `succeeded` (card refunds can take days to settle),
    /// `failed` or `canceled`.
    pub status: String,
}

/// A verified webhook event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `evt_...`: what makes a redelivery recognisable.
    pub id: String,
    pub event_type: String,
    pub created: i64,
    pub kind: WebhookKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKind {
    PaymentSucceeded(PaymentIntent),
    PaymentFailed {
        intent: PaymentIntent,
        /// The provider's words for the buyer (card declined, ...).
        reason: Option<String>,
    },
    /// An event type this server does not act on.
    Other,
}

/// A card payment service.
pub trait PaymentProvider: Send + Sync + 'static {
    fn create_payment_intent<'a>(
        &'a self,
        request: &'a NewPaymentIntent,
    ) -> BoxFuture<'a, Result<PaymentIntent, PaymentError>>;

    /// Cancels a payment that has not succeeded (its reservation ran out),
    /// so the buyer can no longer pay for a ticket that is gone.
    fn cancel_payment_intent<'a>(
        &'a self,
        intent_id: &'a str,
    ) -> BoxFuture<'a, Result<PaymentIntent, PaymentError>>;

    /// Refunds a succeeded payment in full. `idempotency_key` makes a
    /// retried call return the first refund instead of making a second.
    fn refund_payment_intent<'a>(
        &'a self,
        intent_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Refund, PaymentError>>;

    /// Checks a webhook delivery's signature header and body at `now`
    /// (Unix seconds) and reads the event.
    fn verify_webhook(
        &self,
        signature: Option<&str>,
        payload: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookError>;
}

/// Stripe over its HTTP API.
pub struct StripeProvider {
    http: reqwest::Client,
    api_base: String,
    secret_key: String,
    webhook_secret: String,
    tolerance_secs: i64,
}

impl StripeProvider {
    pub fn new(settings: &StripeSettings) -> Result<Self, PaymentError> {
        if settings.secret_key.is_empty() {
            return Err(PaymentError::Disabled);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(u64::from(settings.timeout_secs)))
            .build()
            .map_err(|e| PaymentError::Unavailable(format!("no HTTP client: {e}")))?;
        Ok(Self {
            http,
            api_base: settings.api_base.trim_end_matches('/').to_owned(),
            secret_key: settings.secret_key.clone(),
            webhook_secret: settings.webhook_secret.clone(),
            tolerance_secs: i64::from(settings.webhook_tolerance_secs),
        })
    }

    async fn create(&self, request: &NewPaymentIntent) -> Result<PaymentIntent, PaymentError> {
        request.check()?;
        let mut form = vec![
            ("amount".to_owned(), request.amount_minor.to_string()),
            ("currency".to_owned(), request.currency.clone()),
        ];
        form.extend(
            request
                .metadata
                .iter()
                .map(|(k, v)| (format!("metadata[{k}]"), v.clone())),
        );
        let intent: PaymentIntent = self
            .post_form("/v1/payment_intents", &form, Some(&request.idempotency_key))
            .await?;
        tracing::info!(intent = %intent.id, amount = intent.amount, currency = %intent.currency, "payment intent created");
        Ok(intent)
    }

    /// Ids are Stripe's `pi_...`; anything else must not reach a path or a
    /// form.
    fn check_intent_id(intent_id: &str) -> Result<(), PaymentError> {
        if intent_id.is_empty()
            || intent_id.len() > 255
            || !intent_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(PaymentError::InvalidRequest(format!(
                "{intent_id:?} is not a payment intent id"
            )));
        }
        Ok(())
    }

    async fn refund(&self, intent_id: &str, idempotency_key: &str) -> Result<Refund, PaymentError> {
        Self::check_intent_id(intent_id)?;
        let refund: Refund = self
            .post_form(
                "/v1/refunds",
                &[("payment_intent".to_owned(), intent_id.to_owned())],
                Some(idempotency_key),
            )
            .await?;
        tracing::info!(intent = %intent_id, refund = %refund.id, amount = refund.amount, status = %refund.status, "payment refunded");
        Ok(refund)
    }

    async fn cancel(&self, intent_id: &str) -> Result<PaymentIntent, PaymentError> {
        Self::check_intent_id(intent_id)?;
        let intent: PaymentIntent = self
            .post_form(
                &format!("/v1/payment_intents/{intent_id}/cancel"),
                &[],
                None,
            )
            .await?;
        tracing::info!(intent = %intent.id, "payment intent cancelled");
        Ok(intent)
    }

    /// One form-encoded POST answered with a Stripe object (`T`) or Stripe's
    /// error envelope.
    async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, PaymentError> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .form(form);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| PaymentError::Protocol(format!("{path}: {e}")));
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(PaymentError::Unavailable(format!("HTTP {status}")));
        }
        #[derive(Deserialize)]
        struct Envelope {
            error: StripeError,
        }
        #[derive(Deserialize)]
        struct StripeError {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: String,
        }
        let error = serde_json::from_slice::<Envelope>(&body)
            .map_err(|_| PaymentError::Protocol(format!("HTTP {status} without an error body")))?
            .error;
        Err(PaymentError::Rejected {
            status: status.as_u16(),
            kind: error.kind,
            code: error.code,
            message: error.message,
        })
    }
}

impl PaymentProvider for StripeProvider {
    fn create_payment_intent<'a>(
        &'a self,
        request: &'a NewPaymentIntent,
    ) -> BoxFuture<'a, Result<PaymentIntent, PaymentError>> {
        Box::pin(self.create(request))
    }

    fn cancel_payment_intent<'a>(
        &'a self,
        intent_id: &'a str,
    ) -> BoxFuture<'a, Result<PaymentIntent, PaymentError>> {
        Box::pin(self.cancel(intent_id))
    }

    fn refund_payment_intent<'a>(
        &'a self,
        intent_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Refund, PaymentError>> {
        Box::pin(self.refund(intent_id, idempotency_key))
    }

    fn verify_webhook(
        &self,
        signature: Option<&str>,
        payload: &[u8],
        now: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        if self.webhook_secret.is_empty() {
            return Err(WebhookError::Disabled);
        }
        let header = signature.ok_or(WebhookError::MissingSignature)?;
        verify_stripe_signature(
            header,
            payload,
            &self.webhook_secret,
            now,
            self.tolerance_secs,
        )?;
        parse_event(payload)
    }
}

/// Checks a `Stripe-Signature` header (`t=<unix>,v1=<hex>[,v1=<hex>...]`,
/// several `v1` while a secret is being rolled) against `payload`.
///
/// The signature is checked before the time, so a forger cannot tell a
/// stale guess from a wrong one; the comparison is constant-time.
pub fn verify_stripe_signature(
    header: &str,
    payload: &[u8],
    secret: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| WebhookError::MalformedSignature)?,
                );
            }
            // A value that is not hex can never match; skip it like an
            // unknown scheme.
            Some(("v1", value)) => candidates.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
    if candidates.is_empty() {
        return Err(WebhookError::MalformedSignature);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| WebhookError::BadSignature)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let matches = candidates
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    let age_secs = now - timestamp;
    if age_secs.abs() > tolerance_secs {
        return Err(WebhookError::Stale { age_secs });
    }
    Ok(())
}

/// Reads a verified event body.
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, WebhookError> {
    #[derive(Deserialize)]
    struct Event {
        id: String,
        #[serde(rename = "type")]
        event_type: String,
        created: i64,
        data: EventData,
    }
    #[derive(Deserialize)]
    struct EventData {
        object: serde_json::Value,
    }
    #[derive(Deserialize)]
    struct PaymentError {
        #[serde(default)]
        message: Option<String>,
    }
    let malformed = |e: serde_json::Error| WebhookError::MalformedEvent(e.to_string());
    let event: Event = serde_json::from_slice(payload).map_err(malformed)?;
    let kind = match event.event_type.as_str() {
        "payment_intent.succeeded" => WebhookKind::PaymentSucceeded(
            serde_json::from_value(event.data.object).map_err(malformed)?,
        ),
        "payment_intent.payment_failed" => {
            let reason = event
                .data
                .object
                .get("last_payment_error")
                .cloned()
                .and_then(|e| serde_json::from_value::<PaymentError>(e).ok())
                .and_then(|e| e.message);
            WebhookKind::PaymentFailed {
                intent: serde_json::from_value(event.data.object).map_err(malformed)?,
                reason,
            }
        }
        _ => WebhookKind::Other,
    };
    Ok(WebhookEvent {
        id: event.id,
        event_type: event.event_type,
        created: event.created,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const T: i64 = 1_764_075_600;
    const PAYLOAD: &str = r#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1764075600,"data":{"object":{"id":"pi_1","object":"payment_intent","amount":2500,"currency":"eur","status":"succeeded","metadata":{"event_id":"7"}}}}"#;
    /// HMAC-SHA256(SECRET, "1764075600." + PAYLOAD), computed outside Rust.
    const V1: &str = "643f51862fec73719d431f48396f2facb661e368c6f61aa8f2e10a427d1ca03c";

    fn check(header: &str, payload: &str, now: i64) -> Result<(), WebhookError> {
        verify_stripe_signature(header, payload.as_bytes(), SECRET, now, 300)
    }

    #[test]
    fn stripe_signatures_are_checked_like_stripe_signs_them() {
        let good = format!("t={T},v1={V1}");
        let other = "0".repeat(64);
        let tampered = PAYLOAD.replace("2500", "25");
        let cases: Vec<(String, &str, i64, Result<(), WebhookError>)> = vec![
            (good.clone(), PAYLOAD, T, Ok(())),
            (good.clone(), PAYLOAD, T + 300, Ok(())),
            (
                format!("t={T},v0=abc,v1={other},v1={V1}"),
                PAYLOAD,
                T,
                Ok(()),
            ),
            (
                good.clone(),
                PAYLOAD,
                T + 301,
                Err(WebhookError::Stale { age_secs: 301 }),
            ),
            (
                good.clone(),
                PAYLOAD,
                T - 301,
                Err(WebhookError::Stale { age_secs: -301 }),
            ),
            (good.clone(), &tampered, T, Err(WebhookError::BadSignature)),
            (
                format!("t={},v1={V1}", T + 1),
                PAYLOAD,
                T,
                Err(WebhookError::BadSignature),
            ),
            (
                format!("t={T},v1={other}"),
                PAYLOAD,
                T,
                Err(WebhookError::BadSignature),
            ),
            (
                format!("v1={V1}"),
                PAYLOAD,
                T,
                Err(WebhookError::MalformedSignature),
            ),
            (
                format!("t={T}"),
                PAYLOAD,
                T,
                Err(WebhookError::MalformedSignature),
            ),
            (
                format!("t=soon,v1={V1}"),
                PAYLOAD,
                T,
                Err(WebhookError::MalformedSignature),
            ),
            (
                String::new(),
                PAYLOAD,
                T,
                Err(WebhookError::MalformedSignature),
            ),
        ];
        for (header, payload, now, expected) in cases {
            assert_eq!(check(&header, payload, now), expected, "{header} at {now}");
        }
        // The right signature under another secret.
        assert_eq!(
            verify_stripe_signature(&good, PAYLOAD.as_bytes(), "whsec_other", T, 300),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn events_are_read_into_what_the_server_acts_on() {
        let event = parse_event(PAYLOAD.as_bytes()).unwrap();
        assert_eq!(event.id, "evt_1");
        let WebhookKind::PaymentSucceeded(intent) = event.kind else {
            panic!("{event:?}");
        };
        assert_eq!(intent.id, "pi_1");
        assert_eq!(intent.amount, 2500);
        assert_eq!(intent.status, IntentStatus::Succeeded);
        assert_eq!(intent.metadata["event_id"], "7");

        let failed = r#"{"id":"evt_2","type":"payment_intent.payment_failed","created":1,"data":{"object":{"id":"pi_2","amount":100,"currency":"usd","status":"requires_payment_method","last_payment_error":{"code":"card_declined","message":"Your card was declined."}}}}"#;
        let event = parse_event(failed.as_bytes()).unwrap();
        assert_eq!(
            event.kind,
            WebhookKind::PaymentFailed {
                intent: PaymentIntent {
                    id: "pi_2".into(),
                    amount: 100,
                    currency: "usd".into(),
                    status: IntentStatus::RequiresPaymentMethod,
                    client_secret: None,
                    metadata: BTreeMap::new(),
                },
                reason: Some("Your card was declined.".into()),
            }
        );
        let other = r#"{"id":"evt_3","type":"charge.refunded","created":1,"data":{"object":{}}}"#;
        assert_eq!(
            parse_event(other.as_bytes()).unwrap().kind,
            WebhookKind::Other
        );
        assert!(matches!(
            parse_event(b"{}"),
            Err(WebhookError::MalformedEvent(_))
        ));
    }

    #[test]
    fn requests_stripe_would_refuse_are_refused_before_sending() {
        let good = NewPaymentIntent {
            amount_minor: 2500,
            currency: "eur".into(),
            metadata: BTreeMap::from([("event_id".into(), "7".into())]),
            idempotency_key: "order-1".into(),
        };
        assert!(good.check().is_ok());
        let bad = [
            NewPaymentIntent {
                amount_minor: 0,
                ..good.clone()
            },
            NewPaymentIntent {
                currency: "EUR".into(),
                ..good.clone()
            },
            NewPaymentIntent {
                currency: "euro".into(),
                ..good.clone()
            },
            NewPaymentIntent {
                metadata: BTreeMap::from([("a][b".into(), "x".into())]),
                ..good.clone()
            },
            NewPaymentIntent {
                idempotency_key: String::new(),
                ..good.clone()
            },
        ];
        for request in bad {
            assert!(
                matches!(request.check(), Err(PaymentError::InvalidRequest(_))),
                "{request:?}"
            );
        }
    }
}
