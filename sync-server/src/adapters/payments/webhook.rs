//! Stripe's webhooks: the `Stripe-Signature` check and the events this
//! server acts on. A webhook is believed only when its signature is an
//! HMAC-SHA256, under the endpoint's webhook secret, of `"<t>.<body>"` and
//! `t` is within the tolerance of now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use serde::Deserialize;

use super::PaymentIntent;

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
    use std::collections::BTreeMap;

    use crate::adapters::payments::IntentStatus;

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
}
