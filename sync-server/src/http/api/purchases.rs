//! The purchase API: `POST /api/tickets/purchase` (any logged-in wallet)
//! holds a seat and starts the payment, by card (a Stripe PaymentIntent whose
//! `client_secret` the buyer's browser confirms) or in SOL (an unsigned
//! `buy_ticket` the buyer's wallet signs and posts to
//! `POST /api/purchases/{id}/submit`); `POST /api/payments/webhook` takes
//! Stripe's signed events; `GET /api/purchases[/{id}]` shows a buyer's
//! purchases; `GET /api/admin/purchases` lists paid card purchases that got
//! no ticket, for support. The flow itself is [`crate::services::purchases`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::auth::AuthUser;
use crate::adapters::payments::PaymentError;
use crate::http::admin::Admin;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_email, check_id, check_text, field_error,
};
pub use crate::services::purchases::PaymentMethod;
use crate::services::purchases::{
    self, Order, Purchase, PurchaseDetail, PurchaseStatus, WebhookEffect,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// At most 2^63-1: the server's event ids are signed 64-bit.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub event_id: u64,
    #[serde(default)]
    pub tier: u8,
    pub method: PaymentMethod,
    /// Where the confirmation with the QR code goes (optional).
    #[serde(default)]
    pub email: Option<String>,
}

impl Validate for PurchaseBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", self.event_id)?;
        if let Some(email) = &self.email {
            check_email("email", email)?;
        }
        Ok(())
    }
}

/// The card half of a purchase answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CardPayment {
    pub payment_intent: String,
    /// For the buyer's browser (Stripe.js `confirmCardPayment`).
    pub client_secret: String,
}

/// A transaction for the buyer's wallet to sign.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WalletTransaction {
    /// Unsigned legacy transaction, bincode, base64; the buyer pays the fee.
    pub transaction: String,
    pub message: String,
    /// What it pays, in lamports.
    pub price_lamports: u64,
}

/// A purchase as its buyer sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PurchaseView {
    pub purchase_id: String,
    pub event_id: u64,
    pub tier: u8,
    pub method: PaymentMethod,
    /// pending, paid, minting, fulfilled, expired, failed, refund_due (paid
    /// but no ticket could be had: the server refunds it), refunded, or
    /// refund_failed (the provider refused the refund; support must act).
    pub status: String,
    /// Until when the seat is held for payment (Unix seconds).
    pub expires_at: i64,
    /// In the currency's smallest unit (cents, or lamports for `sol`).
    pub amount: u64,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<u32>,
    /// The minted ticket's signed credential (its QR code's text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<CardPayment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sol: Option<WalletTransaction>,
}

impl PurchaseView {
    /// The purchase alone: no code, no payment to make (the list's rows).
    fn of(purchase: Purchase) -> Self {
        Self {
            purchase_id: purchase.id,
            event_id: purchase.event_id,
            tier: purchase.tier,
            method: purchase.method,
            status: purchase.status.as_str().to_owned(),
            expires_at: purchase.expires_at,
            amount: purchase.amount,
            currency: purchase.currency,
            ticket_id: purchase.ticket_id,
            code: None,
            error: purchase.error,
            card: None,
            sol: None,
        }
    }
}

impl From<PurchaseDetail> for PurchaseView {
    fn from(detail: PurchaseDetail) -> Self {
        Self {
            code: detail.code,
            card: detail.card.map(|c| CardPayment {
                payment_intent: c.payment_intent,
                client_secret: c.client_secret,
            }),
            sol: detail.sol.map(|s| WalletTransaction {
                transaction: s.transaction,
                message: s.message,
                price_lamports: s.price_lamports,
            }),
            ..Self::of(detail.purchase)
        }
    }
}

/// `POST /api/tickets/purchase`
#[utoipa::path(
    post,
    path = "/api/tickets/purchase",
    tag = "purchases",
    request_body = PurchaseBody,
    security(("wallet_session" = [])),
    responses(
        (status = 201, description = "A seat is held; pay with `card.client_secret` or sign `sol.transaction`", body = PurchaseView),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (here or on chain)", body = ErrorBody),
        (status = 409, description = "`sold_out`: no seat left in the tier or the event (seats held by paying buyers count); or `conflict`: the event is not on sale", body = ErrorBody),
        (status = 410, description = "`gone`: the event is over", body = ErrorBody),
        (status = 422, description = "`invalid_field`: no such tier, the tier has no card price, a bad `email`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        (status = 502, description = "`payment_provider_unavailable`; the seat is released", body = ErrorBody),
        (status = 503, description = "`payments_disabled` (card, no `[stripe]`), `chain_unavailable` or `storage_unavailable`", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
    )
)]
pub async fn purchase(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<PurchaseBody>,
) -> Result<(StatusCode, Json<PurchaseView>), ApiError> {
    crate::http::limits::check_mint(&state, &user).await?;
    let order = Order {
        event_id: body.event_id,
        tier: body.tier,
        method: body.method,
        email: body.email,
    };
    let detail = purchases::reserve(&state, &user.wallet, &order).await?;
    Ok((StatusCode::CREATED, Json(detail.into())))
}

/// `GET /api/purchases/{id}`
#[utoipa::path(
    get,
    path = "/api/purchases/{purchase}",
    tag = "purchases",
    params(
        ("purchase" = String, Path, description = "The purchase id"),
    ),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The purchase; `code` once fulfilled; a fresh `sol.transaction` while an SOL purchase is unpaid", body = PurchaseView),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such purchase of this wallet", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn get_purchase(
    State(state): State<AppState>,
    user: AuthUser,
    Path(purchase_id): Path<String>,
) -> Result<Json<PurchaseView>, ApiError> {
    let purchase = purchases::purchase_of(&state, &user.wallet, &purchase_id).await?;
    Ok(Json(purchases::detail(&state, purchase).await?.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedPurchaseBody {
    /// The purchase's transaction, signed by the buyer's wallet (base64),
    /// 1 to 4096 characters.
    #[schema(min_length = 1, max_length = 4096)]
    pub transaction: String,
}

impl Validate for SignedPurchaseBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("transaction", &self.transaction, 1..=4096, false)
    }
}

/// `POST /api/purchases/{id}/submit` (the buyer, SOL purchases): sends the
/// signed `buy_ticket`, then publishes the ticket. Only a lone `buy_ticket`
/// of this event and tier by the buyer, at no more than the quoted price, is
/// accepted.
#[utoipa::path(
    post,
    path = "/api/purchases/{purchase}/submit",
    tag = "purchases",
    params(
        ("purchase" = String, Path, description = "The purchase id"),
    ),
    request_body = SignedPurchaseBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Paid and minted (`fulfilled`), or sent and not yet settled (`minting`)", body = PurchaseView),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such purchase of this wallet", body = ErrorBody),
        (status = 409, description = "`conflict`: a card purchase, a purchase that is over, or a transaction made before another sale (get the purchase for a new one); `sold_out`: the reservation ran out and no seat is left", body = ErrorBody),
        (status = 422, description = "`invalid_field`: not this purchase's lone `buy_ticket` by the buyer, or not signed by the buyer; `chain_refused`", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    user: AuthUser,
    Path(purchase_id): Path<String>,
    ValidJson(body): ValidJson<SignedPurchaseBody>,
) -> Result<Json<PurchaseView>, ApiError> {
    let detail = purchases::submit(&state, &user.wallet, &purchase_id, &body.transaction).await?;
    Ok(Json(detail.into()))
}

/// `POST /api/payments/webhook`: Stripe's signed events.
#[utoipa::path(
    post,
    path = "/api/payments/webhook",
    tag = "purchases",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex HMAC-SHA256 of \"t.body\">`")),
    request_body(content = serde_json::Value, description = "Stripe's event, as Stripe sends it", content_type = "application/json"),
    responses(
        (status = 200, description = "Verified and handled (or recognised as already handled)", body = serde_json::Value),
        (status = 400, description = "`webhook_missing_signature`, `webhook_bad_signature`, `webhook_stale` or `webhook_malformed`: nothing was done", body = ErrorBody),
        (status = 503, description = "`payments_disabled` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let provider = state.payments.as_ref().ok_or(PaymentError::Disabled)?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let event = provider.verify_webhook(signature, &body, state.clock.now())?;
    Ok(Json(
        match purchases::apply_webhook(&state, &event).await? {
            WebhookEffect::Duplicate => serde_json::json!({ "received": true, "duplicate": true }),
            WebhookEffect::UnknownIntent => {
                serde_json::json!({ "received": true, "ignored": true })
            }
            WebhookEffect::Handled { .. } => serde_json::json!({ "received": true }),
        },
    ))
}

/// A buyer's purchases, newest first (`GET /api/purchases`).
#[utoipa::path(
    get,
    path = "/api/purchases",
    tag = "purchases",
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The wallet's last 100 purchases, newest first (no codes or transactions)", body = Vec<PurchaseView>),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn my_purchases(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<PurchaseView>>, ApiError> {
    // The list builds no transactions and shows no codes; GET one purchase
    // for those.
    let mine = purchases::purchases_of(&state, &user.wallet).await?;
    Ok(Json(mine.into_iter().map(PurchaseView::of).collect()))
}

/// Which purchases [`needing_support`] lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SupportQuery {
    /// `refund_due`, `refund_failed` or `refunded`; without it, `refund_due`
    /// and `refund_failed` (paid, no ticket, not refunded yet).
    #[serde(default)]
    pub status: Option<String>,
}

/// A purchase as support sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupportPurchaseView {
    pub purchase_id: String,
    pub event_id: u64,
    pub tier: u8,
    /// The buyer's wallet (base58).
    pub buyer: String,
    pub email: Option<String>,
    pub status: String,
    /// In the currency's smallest unit.
    pub amount: u64,
    pub currency: String,
    /// Stripe's PaymentIntent id.
    pub payment_intent: Option<String>,
    /// Stripe's refund id, once refunded.
    pub refund_id: Option<String>,
    /// Why it ended here (the provider's words for a refused refund).
    pub error: Option<String>,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Purchases that need support
///
/// `GET /api/admin/purchases` (admin token): card purchases that were paid
/// but got no ticket, newest change first (at most 500): those waiting for
/// their automatic refund, those whose refund the provider refused (refund
/// them by hand), or with `status=refunded` those refunded.
#[utoipa::path(
    get,
    path = "/api/admin/purchases",
    tag = "admin",
    params(SupportQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The purchases, newest change first", body = Vec<SupportPurchaseView>),
        (status = 400, description = "`bad_request`: an unknown query parameter", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`status`): not one of the statuses listed", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn needing_support(
    _: Admin,
    State(state): State<AppState>,
    Query(query): Query<SupportQuery>,
) -> Result<Json<Vec<SupportPurchaseView>>, ApiError> {
    let statuses = match query.status.as_deref().map(PurchaseStatus::parse) {
        None => vec![PurchaseStatus::RefundDue, PurchaseStatus::RefundFailed],
        Some(Some(
            status @ (PurchaseStatus::RefundDue
            | PurchaseStatus::RefundFailed
            | PurchaseStatus::Refunded),
        )) => vec![status],
        Some(_) => {
            return Err(field_error(
                "status",
                "must be refund_due, refund_failed or refunded",
            ));
        }
    };
    let found = purchases::purchases_in(&state, &statuses).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|p| SupportPurchaseView {
                purchase_id: p.id,
                event_id: p.event_id,
                tier: p.tier,
                buyer: p.buyer.to_string(),
                email: p.email,
                status: p.status.as_str().to_owned(),
                amount: p.amount,
                currency: p.currency,
                payment_intent: p.payment_intent,
                refund_id: p.refund_id,
                error: p.error,
                updated_at: p.updated_at,
            })
            .collect(),
    ))
}
