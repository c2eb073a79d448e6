//! Buying a ticket, the seed's purchase flow: reserve a seat, pay, mint,
//! deliver.
//!
//! - `POST /api/tickets/purchase` (any logged-in wallet): holds a seat of
//!   the tier for [`ApiSettings::reservation_secs`](crate::config::ApiSettings) and
//!   starts the payment. By card: a Stripe PaymentIntent whose
//!   `client_secret` the buyer's browser confirms. In SOL: an unsigned
//!   `buy_ticket` transaction (the Solana Pay transaction-request style) that
//!   pays the event and mints the NFT atomically once the buyer's wallet signs
//!   it and posts it to `POST /api/purchases/{id}/submit`.
//! - `POST /api/payments/webhook` (Stripe, signed): `payment_intent.succeeded`
//!   marks the purchase paid and mints the ticket to the buyer;
//!   `payment_intent.payment_failed` releases the seat. Each event is handled
//!   once, in the same transaction as its effect.
//! - `GET /api/purchases/{id}` (the buyer): where the purchase stands, the
//!   ticket once minted, and for an unpaid SOL purchase a fresh transaction.
//!
//! Chain and database stay consistent through crashes: the mint transaction
//! and its signature are committed on the purchase *before* it is sent, so a
//! server that dies after the chain accepted it finds it by signature on
//! restart ([`run`]'s rounds) and completes the purchase, and a transaction
//! that never landed is signed anew. A purchase is minted at most once.
//!
//! [`run`] also releases the seats of reservations that ran out (and cancels
//! their PaymentIntents) and retries confirmation mail.

use crate::http::error::ErrorBody;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde::{Deserialize, Serialize};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Signature, Signer};
use solana_sdk::transaction::Transaction;
use sqlx::Row;
use tokio::sync::watch;

use super::auth::AuthUser;
use crate::adapters::mail::TicketConfirmation;
use crate::adapters::payments::{NewPaymentIntent, PaymentError, WebhookKind};
use crate::chain::ChainError;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, check_email, check_text, field_error};
use crate::services::Services;
use crate::services::inventory;
use crate::services::organizer::OrganizerError;
use crate::store::StoreError;

fn db(e: sqlx::Error) -> ApiError {
    ApiError::Store(StoreError::from(e))
}

fn chain_err(e: ChainError) -> ApiError {
    OrganizerError::from(e).into()
}

/// How a buyer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    /// By card through the payment provider; the server mints.
    Card,
    /// In SOL from the buyer's wallet, paid and minted in one transaction.
    Sol,
}

impl PaymentMethod {
    fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Sol => "sol",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
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

/// One row of `purchases`.
#[derive(Debug, Clone)]
struct Purchase {
    id: String,
    event_id: u64,
    tier: u8,
    buyer: Pubkey,
    email: Option<String>,
    method: PaymentMethod,
    status: String,
    expires_at: i64,
    holds_seat: bool,
    payment_intent: Option<String>,
    amount: u64,
    currency: String,
    ticket_id: Option<u32>,
    mint_tx: Option<String>,
    error: Option<String>,
    mail_status: String,
}

fn purchase_of_row(r: &sqlx::any::AnyRow) -> Result<Purchase, ApiError> {
    let int = |c: &str| r.try_get::<i64, _>(c).map_err(db);
    let text = |c: &str| r.try_get::<String, _>(c).map_err(db);
    let opt = |c: &str| r.try_get::<Option<String>, _>(c).map_err(db);
    let buyer: Pubkey = text("buyer")?
        .parse()
        .map_err(|_| ApiError::Internal("purchase buyer is not a key".into()))?;
    Ok(Purchase {
        id: text("purchase_id")?,
        event_id: u64::try_from(int("event_id")?).unwrap_or_default(),
        tier: u8::try_from(int("tier")?).unwrap_or_default(),
        buyer,
        email: opt("email")?,
        method: if text("method")? == "sol" {
            PaymentMethod::Sol
        } else {
            PaymentMethod::Card
        },
        status: text("status")?,
        expires_at: int("expires_at")?,
        holds_seat: int("holds_seat")? != 0,
        payment_intent: opt("payment_intent")?,
        amount: u64::try_from(int("amount")?).unwrap_or_default(),
        currency: text("currency")?,
        ticket_id: r
            .try_get::<Option<i64>, _>("ticket_id")
            .map_err(db)?
            .and_then(|t| u32::try_from(t).ok()),
        mint_tx: opt("mint_tx")?,
        error: opt("error")?,
        mail_status: text("mail_status")?,
    })
}

async fn load(state: &Services, purchase_id: &str) -> Result<Option<Purchase>, ApiError> {
    sqlx::query("SELECT * FROM purchases WHERE purchase_id = $1")
        .bind(purchase_id)
        .fetch_optional(state.store.pool())
        .await
        .map_err(db)?
        .as_ref()
        .map(purchase_of_row)
        .transpose()
}

/// The purchase, if `user` bought it (404 for anyone else: ids are not
/// secrets, but other buyers' purchases are none of a caller's business).
async fn load_own(
    state: &Services,
    user: &AuthUser,
    purchase_id: &str,
) -> Result<Purchase, ApiError> {
    load(state, purchase_id)
        .await?
        .filter(|p| p.buyer.to_bytes() == user.wallet.0)
        .ok_or_else(|| ApiError::NotFound(format!("no purchase {purchase_id}")))
}

fn chain_ctx(state: &Services) -> Result<&crate::services::organizer::ChainContext, ApiError> {
    state
        .chain
        .as_deref()
        .ok_or_else(|| ApiError::ChainUnavailable("no chain configured".into()))
}

fn encode_tx(transaction: &Transaction) -> Result<String, ApiError> {
    let bytes = bincode::serialize(transaction).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn decode_tx(text: &str) -> Option<Transaction> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    bincode::deserialize(&bytes).ok()
}

/// The unsigned `buy_ticket` for `purchase`: the next ticket id as the chain
/// has it now, at most the price quoted.
async fn sol_transaction(
    state: &Services,
    purchase: &Purchase,
) -> Result<WalletTransaction, ApiError> {
    let ctx = chain_ctx(state)?;
    let event = crate::services::organizer::event_on_chain(state, purchase.event_id).await?;
    let event_address =
        ticketing::client::event_address(&ctx.authority.pubkey(), purchase.event_id).0;
    let instruction = ticketing::client::buy_ticket(
        &purchase.buyer,
        &event_address,
        event.minted,
        purchase.tier,
        purchase.amount,
        event.token_standard,
    );
    let blockhash = ctx.chain.latest_blockhash().await.map_err(chain_err)?;
    let mut transaction = Transaction::new_with_payer(&[instruction], Some(&purchase.buyer));
    transaction.message.recent_blockhash = blockhash;
    Ok(WalletTransaction {
        transaction: encode_tx(&transaction)?,
        message: format!(
            "Buy a ticket for {} ({} SOL)",
            event.name,
            purchase.amount as f64 / 1e9
        ),
        price_lamports: purchase.amount,
    })
}

async fn view(
    state: &Services,
    purchase: &Purchase,
    card: Option<CardPayment>,
) -> Result<PurchaseView, ApiError> {
    let code = match (purchase.status.as_str(), purchase.ticket_id) {
        ("fulfilled", Some(ticket_id)) => {
            match state.store.ticket(purchase.event_id, ticket_id).await? {
                Some(ticket) if ticket.owner.0 == purchase.buyer.to_bytes() => {
                    Some(crate::services::organizer::credential_for(state, &ticket)?.encode())
                }
                _ => None,
            }
        }
        _ => None,
    };
    let sol = if purchase.method == PaymentMethod::Sol
        && purchase.status == "pending"
        && purchase.expires_at > state.clock.now()
    {
        Some(sol_transaction(state, purchase).await?)
    } else {
        None
    };
    Ok(PurchaseView {
        purchase_id: purchase.id.clone(),
        event_id: purchase.event_id,
        tier: purchase.tier,
        method: purchase.method,
        status: purchase.status.clone(),
        expires_at: purchase.expires_at,
        amount: purchase.amount,
        currency: purchase.currency.clone(),
        ticket_id: purchase.ticket_id,
        code,
        error: purchase.error.clone(),
        card,
        sol,
    })
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event (here or on chain)", body = ErrorBody),
        (status = 409, description = "`sold_out`: no seat left in the tier or the event (seats held by paying buyers count); or `conflict`: the event is not on sale", body = ErrorBody),
        (status = 410, description = "`gone`: the event is over", body = ErrorBody),
        (status = 422, description = "`invalid_field`: no such tier, the tier has no card price, a bad `email`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the wallet spent its mint budget", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        (status = 502, description = "`payment_provider_unavailable`; the seat is released", body = ErrorBody),
        (status = 503, description = "`payments_disabled` (card, no `[stripe]`), `chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn purchase(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<PurchaseBody>,
) -> Result<(StatusCode, Json<PurchaseView>), ApiError> {
    crate::http::limits::check_mint(&state, &user).await?;
    let now = state.clock.now();
    let event = state
        .store
        .event(body.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {}", body.event_id)))?;
    if event.status != shared::EventStatus::Active {
        return Err(ApiError::Conflict(format!(
            "event {} is not on sale ({:?})",
            body.event_id, event.status
        )));
    }
    if event.doors.closes_at <= now {
        return Err(ApiError::Gone(format!("event {} is over", body.event_id)));
    }
    if !event.tiers.iter().any(|t| t.index == body.tier) {
        return Err(field_error("tier", "no such tier in this event"));
    }
    let (amount, currency) = match body.method {
        PaymentMethod::Card => {
            if state.payments.is_none() {
                return Err(PaymentError::Disabled.into());
            }
            let price = inventory::card_price(&state, body.event_id, body.tier)
                .await?
                .ok_or_else(|| field_error("method", "this tier is not sold by card"))?;
            (price.amount, price.currency)
        }
        PaymentMethod::Sol => {
            let on_chain =
                crate::services::organizer::event_on_chain(&state, body.event_id).await?;
            let price = on_chain
                .tiers
                .get(usize::from(body.tier))
                .map(|t| t.price)
                .ok_or_else(|| field_error("tier", "no such tier on chain"))?;
            (price, "sol".to_owned())
        }
    };
    inventory::ensure(&state, body.event_id).await?;
    let purchase_id = uuid::Uuid::now_v7().to_string();
    let expires_at = now + i64::from(state.config.api.reservation_secs);
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    if !crate::store::take_in(&mut tx, body.event_id, &[(body.tier, 1)]).await? {
        drop(tx);
        return Err(inventory::sold_out(&state, body.event_id).await.into());
    }
    sqlx::query(
        "INSERT INTO purchases (purchase_id, event_id, tier, buyer, email, method, status,
             expires_at, holds_seat, amount, currency, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, 1, $8, $9, $10, $10)",
    )
    .bind(&purchase_id)
    .bind(i64::try_from(body.event_id).unwrap_or(-1))
    .bind(i64::from(body.tier))
    .bind(user.wallet.to_base58())
    .bind(body.email.clone())
    .bind(body.method.as_str())
    .bind(expires_at)
    .bind(i64::try_from(amount).unwrap_or(i64::MAX))
    .bind(&currency)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    state.metrics.purchase(body.method.as_str(), "reserved");

    let mut purchase = load(&state, &purchase_id)
        .await?
        .ok_or_else(|| ApiError::Internal("purchase vanished".into()))?;
    let card = match body.method {
        PaymentMethod::Sol => None,
        PaymentMethod::Card => match start_card_payment(&state, &purchase, &event.name).await {
            Ok(card) => {
                purchase.payment_intent = Some(card.payment_intent.clone());
                Some(card)
            }
            Err(e) => {
                end_without_ticket(&state, &purchase, "failed", &e.to_string()).await?;
                return Err(e);
            }
        },
    };
    let view = view(&state, &purchase, card).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn start_card_payment(
    state: &Services,
    purchase: &Purchase,
    event_name: &str,
) -> Result<CardPayment, ApiError> {
    let provider = state.payments.as_ref().ok_or(PaymentError::Disabled)?;
    let metadata = BTreeMap::from([
        ("purchase_id".to_owned(), purchase.id.clone()),
        ("event_id".to_owned(), purchase.event_id.to_string()),
        ("tier".to_owned(), purchase.tier.to_string()),
        ("buyer".to_owned(), purchase.buyer.to_string()),
        ("event".to_owned(), event_name.chars().take(200).collect()),
    ]);
    let intent = provider
        .create_payment_intent(&NewPaymentIntent {
            amount_minor: purchase.amount,
            currency: purchase.currency.clone(),
            metadata,
            idempotency_key: format!("purchase-{}", purchase.id),
        })
        .await?;
    let client_secret = intent
        .client_secret
        .clone()
        .ok_or_else(|| PaymentError::Protocol("no client_secret on a new intent".into()))?;
    sqlx::query("UPDATE purchases SET payment_intent = $2, updated_at = $3 WHERE purchase_id = $1")
        .bind(&purchase.id)
        .bind(&intent.id)
        .bind(state.clock.now())
        .execute(state.store.pool())
        .await
        .map_err(db)?;
    Ok(CardPayment {
        payment_intent: intent.id,
        client_secret,
    })
}

/// Ends a purchase that will not get a ticket and gives its seat back.
async fn end_without_ticket(
    state: &Services,
    purchase: &Purchase,
    status: &str,
    error: &str,
) -> Result<bool, ApiError> {
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    let ended = sqlx::query(
        "UPDATE purchases SET status = $2, error = $3, holds_seat = 0, updated_at = $4
         WHERE purchase_id = $1 AND status = 'pending'",
    )
    .bind(&purchase.id)
    .bind(status)
    .bind(error)
    .bind(state.clock.now())
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected()
        == 1;
    if ended && purchase.holds_seat {
        crate::store::release_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await?;
    }
    tx.commit().await.map_err(db)?;
    if ended {
        state.metrics.purchase(purchase.method.as_str(), status);
    }
    Ok(ended)
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
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such purchase of this wallet", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn get_purchase(
    State(state): State<AppState>,
    user: AuthUser,
    Path(purchase_id): Path<String>,
) -> Result<Json<PurchaseView>, ApiError> {
    let purchase = load_own(&state, &user, &purchase_id).await?;
    Ok(Json(view(&state, &purchase, None).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedPurchaseBody {
    /// The purchase's transaction, signed by the buyer's wallet (base64).
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such purchase of this wallet", body = ErrorBody),
        (status = 409, description = "`conflict`: a card purchase, a purchase that is over, or a transaction made before another sale (get the purchase for a new one); `sold_out`: the reservation ran out and no seat is left", body = ErrorBody),
        (status = 422, description = "`invalid_field`: not this purchase's lone `buy_ticket` by the buyer, or not signed by the buyer; `chain_refused`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    user: AuthUser,
    Path(purchase_id): Path<String>,
    ValidJson(body): ValidJson<SignedPurchaseBody>,
) -> Result<Json<PurchaseView>, ApiError> {
    let mut purchase = load_own(&state, &user, &purchase_id).await?;
    if purchase.method != PaymentMethod::Sol {
        return Err(ApiError::Conflict(
            "a card purchase is paid through the payment provider".into(),
        ));
    }
    match purchase.status.as_str() {
        "pending" | "expired" => {}
        "fulfilled" | "minting" => return Ok(Json(view(&state, &purchase, None).await?)),
        other => {
            return Err(ApiError::Conflict(format!("the purchase is {other}")));
        }
    }
    let ctx = chain_ctx(&state)?;
    let transaction = decode_tx(&body.transaction)
        .ok_or_else(|| field_error("transaction", "not a base64 legacy transaction"))?;
    let event_address =
        ticketing::client::event_address(&ctx.authority.pubkey(), purchase.event_id).0;
    check_buy_ticket(&transaction, &purchase, &event_address)?;
    if transaction.verify().is_err() {
        return Err(field_error("transaction", "not signed by the buyer"));
    }
    // The ticket it buys is the event's next one; if another sale took that
    // id since the transaction was built, it would only fail on chain (and
    // cost the buyer a fee), so say so now.
    let next_id = crate::services::organizer::event_on_chain(&state, purchase.event_id)
        .await?
        .minted;
    let names_next = transaction
        .message
        .instructions
        .first()
        .and_then(|i| i.accounts.get(2))
        .and_then(|k| transaction.message.account_keys.get(usize::from(*k)))
        == Some(&ticketing::client::ticket_address(&event_address, next_id).0);
    if !names_next {
        return Err(ApiError::Conflict(
            "another ticket was sold since this transaction was made; fetch the purchase again for a new one".into(),
        ));
    }
    // A reservation that ran out takes its seat again if one is left.
    if purchase.status == "expired" || purchase.expires_at <= state.clock.now() {
        retake_seat(&state, &purchase).await?;
        purchase.holds_seat = true;
    }
    // Recorded before it is sent: a crash from here on is repaired by
    // looking the signature up.
    let now = state.clock.now();
    let recorded = sqlx::query(
        "UPDATE purchases SET status = 'minting', mint_tx = $2, mint_signature = $3,
             lease_until = $4, updated_at = $5, ticket_id = $6
         WHERE purchase_id = $1 AND status = 'pending'",
    )
    .bind(&purchase.id)
    .bind(&body.transaction)
    .bind(transaction.signatures[0].to_string())
    .bind(now + i64::from(state.config.api.purchase_lease_secs))
    .bind(now)
    .bind(i64::from(next_id))
    .execute(state.store.pool())
    .await
    .map_err(db)?
    .rows_affected();
    if recorded != 1 {
        return Err(ApiError::Conflict(
            "another transaction of this purchase is being sent".into(),
        ));
    }
    crate::failpoint::failpoint("purchase.sol_recorded");
    let deadline = Instant::now() + Duration::from_secs(60);
    match crate::chain::ops::wait_for(ctx.chain.as_ref(), &transaction, deadline).await {
        Ok(()) => {
            crate::failpoint::failpoint("purchase.after_chain");
            let purchase = complete(&state, &purchase.id).await?;
            Ok(Json(view(&state, &purchase, None).await?))
        }
        Err(ChainError::Unavailable(e)) => {
            // Outcome unknown: the purchase stays `minting` and the
            // purchase worker settles it by signature.
            tracing::warn!(purchase = %purchase.id, error = %e, "SOL purchase sent, outcome not known yet");
            let purchase = load_own(&state, &user, &purchase_id).await?;
            Ok(Json(view(&state, &purchase, None).await?))
        }
        Err(e) => {
            reopen(&state, &purchase.id, &e.to_string()).await?;
            Err(match e {
                ChainError::BlockhashExpired => ApiError::Conflict(
                    "the transaction expired; fetch the purchase again for a new one".into(),
                ),
                ChainError::Refused(m) => ApiError::ChainRefused(format!(
                    "the chain refused the purchase ({m}); if another ticket was sold meanwhile, fetch the purchase again for a new transaction"
                )),
                other => chain_err(other),
            })
        }
    }
}

/// A lone `buy_ticket` by `purchase`'s buyer of its event and tier, paying
/// at most its amount.
fn check_buy_ticket(
    transaction: &Transaction,
    purchase: &Purchase,
    event_address: &Pubkey,
) -> Result<(), ApiError> {
    use anchor_lang::{AnchorDeserialize, Discriminator};
    let refuse = || field_error("transaction", "not this purchase's buy_ticket by its buyer");
    let [instruction] = transaction.message.instructions.as_slice() else {
        return Err(field_error(
            "transaction",
            "must hold exactly one instruction",
        ));
    };
    let keys = &transaction.message.account_keys;
    let account = |i: usize| {
        instruction
            .accounts
            .get(i)
            .and_then(|k| keys.get(usize::from(*k)))
    };
    if keys.get(usize::from(instruction.program_id_index)) != Some(&ticketing::ID)
        || keys.first() != Some(&purchase.buyer)
        || account(0) != Some(&purchase.buyer)
        || account(1) != Some(event_address)
    {
        return Err(refuse());
    }
    let data = instruction
        .data
        .strip_prefix(ticketing::instruction::BuyTicket::DISCRIMINATOR)
        .ok_or_else(refuse)?;
    let args =
        ticketing::instruction::BuyTicket::deserialize(&mut &data[..]).map_err(|_| refuse())?;
    if args.tier != purchase.tier || args.max_price > purchase.amount {
        return Err(refuse());
    }
    Ok(())
}

async fn retake_seat(state: &Services, purchase: &Purchase) -> Result<(), ApiError> {
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    if !purchase.holds_seat
        && !crate::store::take_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await?
    {
        drop(tx);
        return Err(inventory::sold_out(state, purchase.event_id).await.into());
    }
    sqlx::query(
        "UPDATE purchases SET status = 'pending', holds_seat = 1, expires_at = $2, error = NULL,
             updated_at = $3
         WHERE purchase_id = $1",
    )
    .bind(&purchase.id)
    .bind(state.clock.now() + i64::from(state.config.api.reservation_secs))
    .bind(state.clock.now())
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

/// A SOL purchase whose transaction did not land goes back to `pending`;
/// a card purchase back to `paid` (the worker mints it anew).
async fn reopen(state: &Services, purchase_id: &str, error: &str) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE purchases SET
             status = CASE WHEN method = 'sol' THEN 'pending' ELSE 'paid' END,
             mint_tx = NULL, mint_signature = NULL, ticket_id = NULL, lease_until = 0,
             error = $2, updated_at = $3
         WHERE purchase_id = $1 AND status = 'minting'",
    )
    .bind(purchase_id)
    .bind(error)
    .bind(state.clock.now())
    .execute(state.store.pool())
    .await
    .map_err(db)?;
    Ok(())
}

/// The purchase's transaction landed: publish the ticket (gates learn it),
/// mark the purchase fulfilled, send the confirmation.
async fn complete(state: &Services, purchase_id: &str) -> Result<Purchase, ApiError> {
    let purchase = load(state, purchase_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no purchase {purchase_id}")))?;
    let ticket_id = purchase
        .ticket_id
        .ok_or_else(|| ApiError::Internal("a landed purchase without its ticket id".into()))?;
    crate::services::organizer::refresh_tickets(state, purchase.event_id, &[ticket_id]).await?;
    sqlx::query(
        "UPDATE purchases SET status = 'fulfilled', ticket_id = $2, error = NULL,
             mail_status = CASE WHEN email IS NULL THEN 'none' ELSE 'pending' END, updated_at = $3
         WHERE purchase_id = $1 AND status IN ('minting', 'paid')",
    )
    .bind(purchase_id)
    .bind(i64::from(ticket_id))
    .bind(state.clock.now())
    .execute(state.store.pool())
    .await
    .map_err(db)?;
    state
        .metrics
        .purchase(purchase.method.as_str(), "fulfilled");
    tracing::info!(purchase = %purchase_id, event = purchase.event_id, ticket_id, "ticket sold");
    let purchase = load(state, purchase_id)
        .await?
        .ok_or_else(|| ApiError::Internal("purchase vanished".into()))?;
    send_purchase_mail(state, &purchase).await;
    Ok(purchase)
}

/// Sends a purchase's pending mail: the confirmation with the QR code, or
/// for a refunded purchase the refund notice. Retried by [`round`] until sent
/// or refused for good.
async fn send_purchase_mail(state: &Services, purchase: &Purchase) {
    if purchase.mail_status != "pending" {
        return;
    }
    let (Some(mailer), Some(to)) = (&state.mailer, &purchase.email) else {
        return;
    };
    // Ok(Ok(())) sent, Ok(Err) the relay's answer, Err: could not build it.
    let sent = async {
        let event = state
            .store
            .event(purchase.event_id)
            .await?
            .ok_or_else(|| ApiError::Internal("event vanished".into()))?;
        if purchase.status == "refunded" {
            let mail = crate::adapters::mail::RefundNotice {
                to: to.clone(),
                event_name: event.name.clone(),
                amount_minor: purchase.amount,
                currency: purchase.currency.clone(),
            };
            return Ok(mailer.send_refund_notice(&mail).await);
        }
        let ticket_id = purchase
            .ticket_id
            .ok_or_else(|| ApiError::Internal("a fulfilled purchase without its ticket".into()))?;
        let ticket = state
            .store
            .ticket(purchase.event_id, ticket_id)
            .await?
            .ok_or_else(|| ApiError::Internal("sold ticket not published".into()))?;
        let code = crate::services::organizer::credential_for(state, &ticket)?.encode();
        let mail = TicketConfirmation {
            to: to.clone(),
            event_name: event.name.clone(),
            ticket_id,
            tier_name: event
                .tiers
                .iter()
                .find(|t| t.index == ticket.tier)
                .map_or_else(String::new, |t| t.name.clone()),
            qr_png: super::tickets::qr_png(&code)?,
        };
        Ok::<_, ApiError>(mailer.send_ticket_confirmation(&mail).await)
    }
    .await;
    let outcome = match sent {
        Ok(Ok(())) => Ok(None),
        Ok(Err(e)) if e.is_permanent() => Ok(Some(e.to_string())),
        Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        Err(e) => Err(e),
    };
    let status = match &outcome {
        Ok(None) => "sent",
        Ok(Some(e)) => {
            tracing::warn!(purchase = %purchase.id, error = %e, "purchase mail refused for good");
            "failed"
        }
        Err(e) => {
            tracing::warn!(purchase = %purchase.id, error = %e, "purchase mail not sent; will retry");
            return;
        }
    };
    let _ = sqlx::query("UPDATE purchases SET mail_status = $2 WHERE purchase_id = $1")
        .bind(&purchase.id)
        .bind(status)
        .execute(state.store.pool())
        .await;
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
    let now = state.clock.now();
    let mut tx = state.store.pool().begin().await.map_err(db)?;
    if !crate::store::record_webhook_event(&mut tx, &event.id, &event.event_type, now).await? {
        return Ok(Json(
            serde_json::json!({ "received": true, "duplicate": true }),
        ));
    }
    let (intent, succeeded, reason) = match &event.kind {
        WebhookKind::PaymentSucceeded(intent) => (intent, true, None),
        WebhookKind::PaymentFailed { intent, reason } => (intent, false, reason.clone()),
        WebhookKind::Other => {
            tx.commit().await.map_err(db)?;
            return Ok(Json(serde_json::json!({ "received": true })));
        }
    };
    let row = sqlx::query("SELECT * FROM purchases WHERE payment_intent = $1")
        .bind(&intent.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    let Some(purchase) = row.as_ref().map(purchase_of_row).transpose()? else {
        tracing::warn!(intent = %intent.id, "webhook for a payment this server did not start");
        tx.commit().await.map_err(db)?;
        return Ok(Json(
            serde_json::json!({ "received": true, "ignored": true }),
        ));
    };
    let mut fulfil = false;
    if succeeded {
        if intent.amount != purchase.amount || intent.currency != purchase.currency {
            tracing::error!(purchase = %purchase.id, intent = %intent.id, "paid amount differs from the price");
            set_status(
                &mut tx,
                &purchase.id,
                "refund_due",
                "paid amount differs from the price",
                now,
            )
            .await?;
        } else if purchase.status == "pending" {
            set_status(&mut tx, &purchase.id, "paid", "", now).await?;
            fulfil = true;
        } else if matches!(purchase.status.as_str(), "expired" | "failed") {
            // Paid after its seat was released: sell it one if any is left.
            if crate::store::take_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await? {
                sqlx::query("UPDATE purchases SET holds_seat = 1 WHERE purchase_id = $1")
                    .bind(&purchase.id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                set_status(&mut tx, &purchase.id, "paid", "", now).await?;
                fulfil = true;
            } else {
                tracing::error!(purchase = %purchase.id, "paid after the seat was released and the tier sold out; refund it");
                set_status(
                    &mut tx,
                    &purchase.id,
                    "refund_due",
                    "paid after the reservation ran out and the tier sold out",
                    now,
                )
                .await?;
            }
        }
    } else if purchase.status == "pending" {
        let reason = reason.unwrap_or_else(|| "the payment failed".into());
        set_status(&mut tx, &purchase.id, "failed", &reason, now).await?;
        sqlx::query("UPDATE purchases SET holds_seat = 0 WHERE purchase_id = $1")
            .bind(&purchase.id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if purchase.holds_seat {
            crate::store::release_in(&mut tx, purchase.event_id, &[(purchase.tier, 1)]).await?;
        }
    }
    tx.commit().await.map_err(db)?;
    if fulfil {
        state.metrics.purchase("card", "paid");
        // Minting takes a chain round trip; Stripe wants a quick answer.
        let state = state.clone();
        let id = purchase.id.clone();
        tokio::spawn(async move {
            if let Err(e) = fulfil_card(&state, &id).await {
                tracing::warn!(purchase = %id, error = %e, "mint after payment failed; the purchase worker retries");
            }
        });
    }
    Ok(Json(serde_json::json!({ "received": true })))
}

async fn set_status(
    conn: &mut sqlx::AnyConnection,
    purchase_id: &str,
    status: &str,
    error: &str,
    now: i64,
) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE purchases SET status = $2, error = $3, updated_at = $4 WHERE purchase_id = $1",
    )
    .bind(purchase_id)
    .bind(status)
    .bind((!error.is_empty()).then(|| error.to_owned()))
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Most mint attempts of one paid purchase in one go (another sale taking
/// the ticket id first is the usual reason to try again).
const MINT_ATTEMPTS: usize = 5;

/// Mints the ticket of a paid card purchase, once. Whoever claims the
/// purchase's lease does it; a recorded transaction is settled by its
/// signature before anything new is signed.
pub async fn fulfil_card(state: &Services, purchase_id: &str) -> Result<(), ApiError> {
    let now = state.clock.now();
    let claimed = sqlx::query(
        "UPDATE purchases SET status = 'minting', lease_until = $2, attempts = attempts + 1,
             updated_at = $3
         WHERE purchase_id = $1
           AND (status = 'paid' OR (status = 'minting' AND lease_until <= $3))",
    )
    .bind(purchase_id)
    .bind(now + i64::from(state.config.api.purchase_lease_secs))
    .bind(now)
    .execute(state.store.pool())
    .await
    .map_err(db)?
    .rows_affected();
    if claimed != 1 {
        return Ok(());
    }
    let ctx = chain_ctx(state)?;
    for _ in 0..MINT_ATTEMPTS {
        let purchase = load(state, purchase_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no purchase {purchase_id}")))?;
        if let Some(recorded) = purchase.mint_tx.as_deref().and_then(decode_tx) {
            match settle_recorded(state, &recorded).await? {
                Settled::Landed => {
                    complete(state, purchase_id).await?;
                    return Ok(());
                }
                Settled::Unknown => return Ok(()),
                Settled::Gone(error) => {
                    if purchase.method == PaymentMethod::Sol {
                        reopen(state, purchase_id, &error).await?;
                        return Ok(());
                    }
                    clear_mint(state, purchase_id, &error).await?;
                }
            }
        }
        if purchase.method == PaymentMethod::Sol {
            return Ok(());
        }
        // Sign a mint of the next ticket id and record it before sending.
        let event = crate::services::organizer::event_on_chain(state, purchase.event_id).await?;
        let event_address =
            ticketing::client::event_address(&ctx.authority.pubkey(), purchase.event_id).0;
        let blockhash = ctx.chain.latest_blockhash().await.map_err(chain_err)?;
        let transaction = Transaction::new_signed_with_payer(
            &[ticketing::client::mint_tickets(
                &ctx.authority.pubkey(),
                &event_address,
                event.minted,
                &[(purchase.buyer, purchase.tier)],
                event.token_standard,
            )],
            Some(&ctx.authority.pubkey()),
            &[&ctx.authority],
            blockhash,
        );
        sqlx::query(
            "UPDATE purchases SET mint_tx = $2, mint_signature = $3, ticket_id = $4, updated_at = $5
             WHERE purchase_id = $1 AND status = 'minting'",
        )
        .bind(purchase_id)
        .bind(encode_tx(&transaction)?)
        .bind(transaction.signatures[0].to_string())
        .bind(i64::from(event.minted))
        .bind(state.clock.now())
        .execute(state.store.pool())
        .await
        .map_err(db)?;
        crate::failpoint::failpoint("purchase.mint_recorded");
        let deadline = Instant::now() + Duration::from_secs(60);
        match crate::chain::ops::wait_for(ctx.chain.as_ref(), &transaction, deadline).await {
            Ok(()) => {
                crate::failpoint::failpoint("purchase.after_chain");
                complete(state, purchase_id).await?;
                return Ok(());
            }
            Err(ChainError::Unavailable(e)) => {
                // Settled by signature in a later round.
                return Err(ApiError::ChainUnavailable(e));
            }
            Err(e) => {
                // Refused or expired: nothing landed. If the event sold out
                // on chain, no retry helps.
                let ev =
                    crate::services::organizer::event_on_chain(state, purchase.event_id).await?;
                let sold_out = ev.minted >= ev.capacity
                    || ev
                        .tiers
                        .get(usize::from(purchase.tier))
                        .is_none_or(|t| t.sold >= t.supply);
                if sold_out {
                    tracing::error!(purchase = %purchase_id, "paid, but the chain has no ticket left; refund it");
                    sqlx::query(
                        "UPDATE purchases SET status = 'refund_due', mint_tx = NULL, mint_signature = NULL,
                             ticket_id = NULL, error = $2, updated_at = $3
                         WHERE purchase_id = $1",
                    )
                    .bind(purchase_id)
                    .bind(format!("sold out on chain: {e}"))
                    .bind(state.clock.now())
                    .execute(state.store.pool())
                    .await
                    .map_err(db)?;
                    state.metrics.purchase("card", "refund_due");
                    return Ok(());
                }
                clear_mint(state, purchase_id, &e.to_string()).await?;
            }
        }
    }
    // Leave it leased to nobody: the next round tries again.
    sqlx::query(
        "UPDATE purchases SET lease_until = 0 WHERE purchase_id = $1 AND status = 'minting'",
    )
    .bind(purchase_id)
    .execute(state.store.pool())
    .await
    .map_err(db)?;
    Ok(())
}

enum Settled {
    Landed,
    /// Not seen and its blockhash still valid, or the chain did not answer.
    Unknown,
    /// It never landed and never will (refused, or expired unseen).
    Gone(String),
}

async fn settle_recorded(state: &Services, transaction: &Transaction) -> Result<Settled, ApiError> {
    let ctx = chain_ctx(state)?;
    let signature: Signature = transaction.signatures[0];
    let deadline = Instant::now() + Duration::from_secs(30);
    match crate::chain::ops::wait_for(ctx.chain.as_ref(), transaction, deadline).await {
        Ok(()) => Ok(Settled::Landed),
        Err(ChainError::BlockhashExpired) => Ok(Settled::Gone(format!(
            "transaction {signature} expired unseen"
        ))),
        Err(ChainError::Refused(e)) => Ok(Settled::Gone(e)),
        Err(ChainError::Unavailable(e)) => {
            tracing::warn!(%signature, error = %e, "cannot settle a purchase's transaction yet");
            Ok(Settled::Unknown)
        }
    }
}

async fn clear_mint(state: &Services, purchase_id: &str, error: &str) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE purchases SET mint_tx = NULL, mint_signature = NULL, ticket_id = NULL, error = $2,
             updated_at = $3
         WHERE purchase_id = $1 AND status = 'minting'",
    )
    .bind(purchase_id)
    .bind(error)
    .bind(state.clock.now())
    .execute(state.store.pool())
    .await
    .map_err(db)?;
    Ok(())
}

/// What one round of [`run`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// Reservations that ran out and gave their seat back.
    pub expired: usize,
    /// Purchases looked at for minting or settling.
    pub settled: usize,
    /// Confirmation mails retried.
    pub mailed: usize,
    /// Card payments refunded because no ticket could be had for them.
    pub refunded: usize,
}

/// One round of the purchase worker: expire reservations, mint or settle
/// paid purchases whose lease is free, retry confirmation mail.
pub async fn round(state: &Services) -> Result<RoundReport, ApiError> {
    let now = state.clock.now();
    let mut report = RoundReport::default();
    let expired = sqlx::query(
        "SELECT * FROM purchases WHERE status = 'pending' AND expires_at <= $1
         ORDER BY expires_at LIMIT 200",
    )
    .bind(now)
    .fetch_all(state.store.pool())
    .await
    .map_err(db)?;
    for row in &expired {
        let purchase = purchase_of_row(row)?;
        if end_without_ticket(state, &purchase, "expired", "the reservation ran out").await? {
            report.expired += 1;
            if let (Some(intent), Some(provider)) = (&purchase.payment_intent, &state.payments) {
                // So the buyer can no longer pay for a seat that is gone; if
                // the payment succeeded meanwhile, its webhook sells a seat
                // again or marks a refund.
                if let Err(e) = provider.cancel_payment_intent(intent).await {
                    tracing::info!(purchase = %purchase.id, error = %e, "payment intent not cancelled");
                }
            }
        }
    }
    let unsettled = sqlx::query(
        "SELECT purchase_id FROM purchases
         WHERE status = 'paid' OR (status = 'minting' AND lease_until <= $1)
         ORDER BY updated_at LIMIT 100",
    )
    .bind(now)
    .fetch_all(state.store.pool())
    .await
    .map_err(db)?;
    for row in &unsettled {
        let id: String = row.try_get("purchase_id").map_err(db)?;
        report.settled += 1;
        if let Err(e) = fulfil_card(state, &id).await {
            tracing::warn!(purchase = %id, error = %e, "purchase not settled this round");
        }
    }
    let unmailed = sqlx::query(
        "SELECT * FROM purchases WHERE status IN ('fulfilled', 'refunded') AND mail_status = 'pending'
         ORDER BY updated_at LIMIT 50",
    )
    .fetch_all(state.store.pool())
    .await
    .map_err(db)?;
    for row in &unmailed {
        let purchase = purchase_of_row(row)?;
        send_purchase_mail(state, &purchase).await;
        report.mailed += 1;
    }
    report.refunded = refund_due(state).await?;
    Ok(report)
}

/// Refunds card purchases that were paid but could not get a ticket (paid
/// after their seat was sold again, or for another amount). The idempotency
/// key is the purchase's, so a crash between the provider's answer and the
/// update below, or two servers doing this at once, refund once.
async fn refund_due(state: &Services) -> Result<usize, ApiError> {
    let Some(provider) = &state.payments else {
        return Ok(0);
    };
    let due = sqlx::query(
        "SELECT * FROM purchases WHERE status = 'refund_due' AND method = 'card'
             AND payment_intent IS NOT NULL
         ORDER BY updated_at LIMIT 20",
    )
    .fetch_all(state.store.pool())
    .await
    .map_err(db)?;
    let mut refunded = 0;
    for row in &due {
        let purchase = purchase_of_row(row)?;
        let Some(intent) = purchase.payment_intent.as_deref() else {
            continue;
        };
        let key = format!("refund-{}", purchase.id);
        let (status, refund_id, note) = match provider.refund_payment_intent(intent, &key).await {
            Ok(refund) if matches!(refund.status.as_str(), "failed" | "canceled") => (
                "refund_failed",
                Some(refund.id),
                format!("the refund {}", refund.status),
            ),
            Ok(refund) => ("refunded", Some(refund.id), String::new()),
            Err(PaymentError::Rejected { code, message, .. })
                if code.as_deref() == Some("charge_already_refunded") =>
            {
                ("refunded", None, format!("already refunded: {message}"))
            }
            Err(e) if e.is_retryable() => {
                tracing::warn!(purchase = %purchase.id, error = %e, "refund not made this round");
                continue;
            }
            Err(e) => ("refund_failed", None, e.to_string()),
        };
        if status == "refund_failed" {
            tracing::error!(purchase = %purchase.id, intent, reason = %note, "refund refused; the buyer must be refunded by hand");
        }
        // A refunded buyer is told by mail (sent below and retried like a
        // confirmation).
        let updated = sqlx::query(
            "UPDATE purchases SET status = $2, refund_id = $3, error = $4, updated_at = $5,
                 mail_status = CASE WHEN $2 = 'refunded' AND email IS NOT NULL
                                    THEN 'pending' ELSE mail_status END
             WHERE purchase_id = $1 AND status = 'refund_due'",
        )
        .bind(&purchase.id)
        .bind(status)
        .bind(refund_id)
        .bind(if note.is_empty() {
            purchase.error.clone().unwrap_or_default()
        } else {
            note
        })
        .bind(state.clock.now())
        .execute(state.store.pool())
        .await
        .map_err(db)?;
        if updated.rows_affected() == 1 {
            state.metrics.purchase("card", status);
            if status == "refunded" {
                refunded += 1;
                if let Some(purchase) = load(state, &purchase.id).await? {
                    send_purchase_mail(state, &purchase).await;
                }
            }
        }
    }
    Ok(refunded)
}

/// How often the purchase worker looks for work.
pub const ROUND_INTERVAL: Duration = Duration::from_secs(2);

/// The purchase worker: [`round`] every [`ROUND_INTERVAL`] until `stop`.
pub async fn run(state: Services, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = round(&state).await {
            tracing::warn!(error = %e, "purchase round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// A buyer's purchases, newest first (`GET /api/purchases`).
#[utoipa::path(
    get,
    path = "/api/purchases",
    tag = "purchases",
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The wallet's last 100 purchases, newest first (no codes or transactions)", body = Vec<PurchaseView>),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn my_purchases(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<PurchaseView>>, ApiError> {
    let rows = sqlx::query(
        "SELECT * FROM purchases WHERE buyer = $1 ORDER BY created_at DESC, purchase_id DESC LIMIT 100",
    )
    .bind(user.wallet.to_base58())
    .fetch_all(state.store.pool())
    .await
    .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        // The list builds no transactions and shows no codes; GET one
        // purchase for those.
        let purchase = purchase_of_row(row)?;
        out.push(PurchaseView {
            purchase_id: purchase.id,
            event_id: purchase.event_id,
            tier: purchase.tier,
            method: purchase.method,
            status: purchase.status,
            expires_at: purchase.expires_at,
            amount: purchase.amount,
            currency: purchase.currency,
            ticket_id: purchase.ticket_id,
            code: None,
            error: purchase.error,
            card: None,
            sol: None,
        });
    }
    Ok(Json(out))
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
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 422, description = "`invalid_field` (`status`): not one of the statuses listed", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn needing_support(
    _: crate::http::admin::Admin,
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<SupportQuery>,
) -> Result<Json<Vec<SupportPurchaseView>>, ApiError> {
    let statuses: &[&str] = match query.status.as_deref() {
        None => &["refund_due", "refund_failed"],
        Some("refund_due") => &["refund_due"],
        Some("refund_failed") => &["refund_failed"],
        Some("refunded") => &["refunded"],
        Some(_) => {
            return Err(field_error(
                "status",
                "must be refund_due, refund_failed or refunded",
            ));
        }
    };
    let rows = sqlx::query(
        "SELECT * FROM purchases WHERE status IN ($1, $2)
         ORDER BY updated_at DESC, purchase_id DESC LIMIT 500",
    )
    .bind(statuses[0])
    .bind(statuses[statuses.len() - 1])
    .fetch_all(state.store.pool())
    .await
    .map_err(db)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let purchase = purchase_of_row(row)?;
        out.push(SupportPurchaseView {
            purchase_id: purchase.id,
            event_id: purchase.event_id,
            tier: purchase.tier,
            buyer: purchase.buyer.to_string(),
            email: purchase.email,
            status: purchase.status,
            amount: purchase.amount,
            currency: purchase.currency,
            payment_intent: purchase.payment_intent,
            refund_id: row.try_get("refund_id").map_err(db)?,
            error: purchase.error,
            updated_at: row.try_get("updated_at").map_err(db)?,
        });
    }
    Ok(Json(out))
}
