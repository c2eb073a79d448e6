//! Card payments against a local Stripe stand-in (a real HTTP server): the
//! real client creates payment intents, and the stand-in's signed webhooks
//! reach a receiver on the real server, on SQLite and on PostgreSQL, where
//! each event is handled once and unsigned, stale, tampered or forged
//! deliveries are refused.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "support/stripe_standin.rs"]
mod stripe_standin;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use serde_json::{Value, json};
use sqlx::Row;
use stripe_standin::{StripeStandin, stripe_signature, unix_now};
use sync_server::adapters::payments::{
    IntentStatus, NewPaymentIntent, PaymentError, PaymentProvider, StripeProvider, WebhookEvent,
    WebhookKind,
};
use sync_server::config::StripeSettings;
use sync_server::http::error::ApiError;
use tokio::sync::mpsc;

const SECRET_KEY: &str = "sk_test_standin_0123456789";
const WEBHOOK_SECRET: &str = "whsec_standin_0123456789";

fn settings(api_base: &str) -> StripeSettings {
    StripeSettings {
        secret_key: SECRET_KEY.into(),
        webhook_secret: WEBHOOK_SECRET.into(),
        api_base: api_base.into(),
        timeout_secs: 10,
        ..StripeSettings::default()
    }
}

fn ticket_order(key: &str) -> NewPaymentIntent {
    NewPaymentIntent {
        amount_minor: 2500,
        currency: "eur".into(),
        metadata: BTreeMap::from([
            ("event_id".into(), EVENT.to_string()),
            ("tier".into(), "vip".into()),
        ]),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn a_payment_intent_is_created_through_stripes_form_api() {
    let standin =
        StripeStandin::start(SECRET_KEY, WEBHOOK_SECRET, "http://127.0.0.1:9/unused").await;
    let stripe = StripeProvider::new(&settings(&standin.url)).unwrap();
    let intent = stripe
        .create_payment_intent(&ticket_order("order-1"))
        .await
        .unwrap();
    assert!(intent.id.starts_with("pi_"), "{intent:?}");
    assert_eq!(intent.amount, 2500);
    assert_eq!(intent.currency, "eur");
    assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
    assert!(
        intent
            .client_secret
            .as_deref()
            .unwrap()
            .starts_with(&intent.id)
    );
    assert_eq!(intent.metadata["tier"], "vip");

    let seen = standin.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(
        request.authorization.as_deref(),
        Some("Bearer sk_test_standin_0123456789")
    );
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.idempotency_key.as_deref(), Some("order-1"));
    let form: BTreeMap<_, _> = request.form.iter().cloned().collect();
    assert_eq!(form["amount"], "2500");
    assert_eq!(form["currency"], "eur");
    assert_eq!(form["metadata[event_id]"], EVENT.to_string());

    // A retry of the same order (same key) is the same payment, not a second.
    let again = stripe
        .create_payment_intent(&ticket_order("order-1"))
        .await
        .unwrap();
    assert_eq!(again.id, intent.id);
    let other = stripe
        .create_payment_intent(&ticket_order("order-2"))
        .await
        .unwrap();
    assert_ne!(other.id, intent.id);

    // Stripe's refusals come back with Stripe's words.
    let wrong_key = StripeProvider::new(&StripeSettings {
        secret_key: "sk_test_wrong".into(),
        ..settings(&standin.url)
    })
    .unwrap();
    match wrong_key
        .create_payment_intent(&ticket_order("order-3"))
        .await
    {
        Err(PaymentError::Rejected {
            status: 401, code, ..
        }) => {
            assert_eq!(code.as_deref(), Some("api_key_invalid"));
        }
        other => panic!("{other:?}"),
    }
    // Requests Stripe would refuse never leave.
    let before = standin.seen().len();
    let mut bad = ticket_order("order-4");
    bad.currency = "EURO".into();
    assert!(matches!(
        stripe.create_payment_intent(&bad).await,
        Err(PaymentError::InvalidRequest(_))
    ));
    assert_eq!(standin.seen().len(), before);

    // Nobody answering is worth a retry.
    let gone = StripeProvider::new(&settings("http://127.0.0.1:9")).unwrap();
    let err = gone
        .create_payment_intent(&ticket_order("order-5"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

on_both_backends!(
    a_settled_payment_is_handled_once_however_often_it_is_delivered,
    unsigned_stale_tampered_and_forged_webhooks_are_refused,
);

/// The real server with a webhook receiver like the one the ticket purchase
/// endpoint will have: verify, record the event id, act once.
async fn server_with_receiver(db: Db) -> (TestServer, mpsc::UnboundedReceiver<WebhookEvent>) {
    let (handled, events) = mpsc::unbounded_channel();
    // Verifying needs only the webhook secret; the API base is not called.
    let stripe = Arc::new(StripeProvider::new(&settings("http://127.0.0.1:9")).unwrap());
    let server = start_with(
        db,
        |_| {},
        move |state| {
            axum::Router::new().route(
                "/webhooks/stripe",
                post(move |headers: HeaderMap, body: Bytes| async move {
                    let signature = headers
                        .get("stripe-signature")
                        .and_then(|v| v.to_str().ok());
                    let event = stripe.verify_webhook(signature, &body, unix_now())?;
                    let first = state
                        .store
                        .record_webhook_event(&event.id, &event.event_type, unix_now())
                        .await?;
                    if first {
                        handled.send(event).unwrap();
                    }
                    Ok::<_, ApiError>(axum::Json(json!({ "received": true, "first": first })))
                }),
            )
        },
    )
    .await;
    (server, events)
}

async fn processed_webhooks(server: &TestServer) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM processed_webhooks")
        .fetch_one(&raw_pool(&server.state).await)
        .await
        .unwrap()
        .get("n")
}

async fn a_settled_payment_is_handled_once_however_often_it_is_delivered(db: Db) {
    let (server, mut events) = server_with_receiver(db).await;
    let standin = StripeStandin::start(
        SECRET_KEY,
        WEBHOOK_SECRET,
        &format!("{}/webhooks/stripe", server.url),
    )
    .await;
    let stripe = StripeProvider::new(&settings(&standin.url)).unwrap();
    let paid = stripe
        .create_payment_intent(&ticket_order("order-paid"))
        .await
        .unwrap();

    let (event_id, status) = standin.succeed(&paid.id).await;
    assert_eq!(status, 200);
    let event = events.recv().await.unwrap();
    assert_eq!(event.id, event_id);
    let WebhookKind::PaymentSucceeded(intent) = &event.kind else {
        panic!("{event:?}");
    };
    assert_eq!(intent.id, paid.id);
    assert_eq!(intent.status, IntentStatus::Succeeded);
    assert_eq!(intent.metadata["event_id"], EVENT.to_string());

    // Stripe delivers again (freshly signed): accepted, not acted on.
    assert_eq!(standin.redeliver(&event_id).await, 200);
    assert_eq!(standin.redeliver(&event_id).await, 200);
    assert!(events.try_recv().is_err(), "handled once");
    assert_eq!(processed_webhooks(&server).await, 1);

    let declined = stripe
        .create_payment_intent(&ticket_order("order-declined"))
        .await
        .unwrap();
    let (_, status) = standin.fail(&declined.id, "Your card was declined.").await;
    assert_eq!(status, 200);
    let event = events.recv().await.unwrap();
    assert_eq!(event.event_type, "payment_intent.payment_failed");
    match event.kind {
        WebhookKind::PaymentFailed { intent, reason } => {
            assert_eq!(intent.id, declined.id);
            assert_eq!(reason.as_deref(), Some("Your card was declined."));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(processed_webhooks(&server).await, 2);
}

async fn unsigned_stale_tampered_and_forged_webhooks_are_refused(db: Db) {
    let (server, mut events) = server_with_receiver(db).await;
    let url = format!("{}/webhooks/stripe", server.url);
    let standin = StripeStandin::start(SECRET_KEY, WEBHOOK_SECRET, &url).await;
    let body = serde_json::to_vec(&json!({
        "id": "evt_forged_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": unix_now(),
        "data": { "object": {
            "id": "pi_forged", "object": "payment_intent", "amount": 2500,
            "currency": "eur", "status": "succeeded", "metadata": {}
        } }
    }))
    .unwrap();
    let post = |signature: Option<String>, body: Vec<u8>| {
        let mut request = server
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let now = unix_now();
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("2500", "1")
        .into_bytes();
    let cases = [
        (None, body.clone(), "missing_signature"),
        (
            Some(stripe_signature(WEBHOOK_SECRET, now - 301, &body)),
            body.clone(),
            "stale_signature",
        ),
        (
            Some(stripe_signature(WEBHOOK_SECRET, now, &body)),
            tampered,
            "bad_signature",
        ),
        (
            Some(stripe_signature("whsec_guessed", now, &body)),
            body.clone(),
            "bad_signature",
        ),
        (
            Some("v1=deadbeef".to_owned()),
            body.clone(),
            "malformed_signature",
        ),
    ];
    for (signature, body, code) in cases {
        let (status, answer) = post(signature.clone(), body).await;
        assert_eq!(status, 400, "{signature:?}: {answer}");
        assert_eq!(answer["error"], code, "{signature:?}");
    }
    assert!(events.try_recv().is_err());
    assert_eq!(processed_webhooks(&server).await, 0, "nothing recorded");

    // The very same body, properly signed, goes through.
    assert_eq!(standin.deliver(&body, unix_now()).await, 200);
    assert_eq!(events.recv().await.unwrap().id, "evt_forged_1");
}
