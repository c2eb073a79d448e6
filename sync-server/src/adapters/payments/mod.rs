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

use serde::{Deserialize, Serialize};

use crate::adapters::BoxFuture;
use crate::config::StripeSettings;

mod webhook;
pub use webhook::{WebhookError, WebhookEvent, WebhookKind, parse_event, verify_stripe_signature};

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

#[cfg(test)]
mod tests {
    use super::*;

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
