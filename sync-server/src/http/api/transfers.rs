//! Transfers the holder's wallet signs, to a wallet or to an email address,
//! and claims of emailed tickets; the work is
//! [`crate::services::transfers`]'s.
//!
//! - `POST /api/tickets/{event}/{ticket}/transfer` (the holder): an unsigned
//!   `transfer_ticket` (`to_wallet`) or `open_email_transfer` (`to_email`)
//!   for the holder's wallet to sign.
//! - `POST /api/tickets/{event}/{ticket}/transfer/submit` (the holder): the
//!   signed transaction; after an email transfer opens, the claim mail goes
//!   out.
//! - `POST /api/tickets/{event}/{ticket}/transfer/cancel` (the holder): an
//!   unsigned `cancel_email_transfer`, submitted the same way.
//! - `POST /api/tickets/{event}/{ticket}/transfer/resend` (the holder): the
//!   claim mail again, when it could not be sent.
//! - `POST /api/tickets/claim` `{code}` (any logged-in wallet): the ticket
//!   the mailed code stands for, moved to the caller.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use shared::wire::CachedTicket;

use super::auth::AuthUser;
use super::tickets::TicketView;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{
    ValidJson, Validate, check_email, check_range, check_text, field_error, parse_wallet,
};
use crate::services::organizer;
use crate::services::transfers::{
    self, EmailTransferState, MAX_CLAIM_SECS, MIN_CLAIM_SECS, Submitted, UnsignedTransfer,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// The new owner's wallet (base58): a direct transfer.
    #[serde(default)]
    pub to_wallet: Option<String>,
    /// Or an email address: the recipient claims it with the mailed link
    /// (`POST /api/tickets/claim`).
    #[serde(default)]
    pub to_email: Option<String>,
    /// How long the claim link works (`to_email` only; default 72 h): 60 s
    /// to 30 days.
    // 60 and 2592000 are `MIN_CLAIM_SECS` and `MAX_CLAIM_SECS`: utoipa takes
    // literals only.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 2_592_000)]
    pub expires_in_secs: Option<u32>,
}

impl Validate for TransferBody {
    fn validate(&self) -> Result<(), ApiError> {
        match (&self.to_wallet, &self.to_email) {
            (Some(_), Some(_)) => Err(field_error(
                "to_email",
                "give to_wallet or to_email, not both",
            )),
            (None, None) => Err(field_error("to_wallet", "missing field (or to_email)")),
            (Some(wallet), None) => {
                if self.expires_in_secs.is_some() {
                    return Err(field_error("expires_in_secs", "only with to_email"));
                }
                parse_wallet("to_wallet", wallet).map(|_| ())
            }
            (None, Some(email)) => {
                if let Some(secs) = self.expires_in_secs {
                    check_range("expires_in_secs", secs, MIN_CLAIM_SECS..=MAX_CLAIM_SECS)?;
                }
                check_email("to_email", email)
            }
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferRequest {
    /// The unsigned legacy transaction (base64, bincode), fee payer and
    /// signer the current owner: sign it in the wallet and send it back to
    /// `POST /api/tickets/{event}/{ticket}/transfer/submit` (or to any RPC).
    pub transaction: String,
    /// What the wallet should show its owner.
    pub message: String,
    /// When an email transfer's claim link stops working (chain time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl From<UnsignedTransfer> for TransferRequest {
    fn from(t: UnsignedTransfer) -> Self {
        Self {
            transaction: t.transaction,
            message: t.message,
            expires_at: t.expires_at,
        }
    }
}

/// What the holder is told about an email transfer. Never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EmailTransferView {
    pub to_email: String,
    pub status: &'static str,
    pub expires_at: i64,
    /// Whether the claim mail has been handed to the relay.
    pub mail_sent: bool,
    /// Why it was not, when it was not (then resend it with
    /// `POST .../transfer/resend`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_error: Option<String>,
}

impl From<EmailTransferState> for EmailTransferView {
    fn from(s: EmailTransferState) -> Self {
        Self {
            to_email: s.to_email,
            status: s.status.as_str(),
            expires_at: s.expires_at,
            mail_sent: s.mail_sent,
            mail_error: s.mail_error,
        }
    }
}

/// The answer to a submitted transaction: the ticket as it is now, and the
/// email transfer the transaction opened or cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmittedTransfer {
    #[serde(flatten)]
    pub ticket: CachedTicket,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_transfer: Option<EmailTransferView>,
}

impl From<Submitted> for SubmittedTransfer {
    fn from(s: Submitted) -> Self {
        Self {
            ticket: s.ticket,
            email_transfer: s.email_transfer.map(EmailTransferView::from),
        }
    }
}

/// Prepare a transfer for the holder's wallet to sign
///
/// `POST /api/tickets/{event}/{ticket}/transfer` (the ticket's holder):
/// a transfer the holder's wallet signs, in the style of a Solana Pay
/// transaction request. The server never holds the holder's key.
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer",
    tag = "tickets",
    params(crate::http::openapi::responses::TicketPath),
    request_body = TransferBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The unsigned transaction", body = TransferRequest),
        (status = 400, description = "`malformed_json`: the body is not JSON; `bad_request`: a path id does not parse", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the ticket's holder; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket", body = ErrorBody),
        (status = 409, description = "`conflict`: the ticket already has an open email transfer", body = ErrorBody),
        (status = 422, description = "`invalid_field`: give exactly one of `to_wallet` and `to_email`; a wallet that is not one or is the holder already; a bad address or `expires_in_secs`", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
    )
)]
pub async fn transfer(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    ValidJson(body): ValidJson<TransferBody>,
) -> Result<Json<TransferRequest>, ApiError> {
    let prepared = match (&body.to_wallet, &body.to_email) {
        (Some(wallet), _) => {
            let to = parse_wallet("to_wallet", wallet)?;
            transfers::prepare_wallet_transfer(&state, &user.wallet, event_id, ticket_id, &to)
                .await?
        }
        (None, Some(email)) => {
            transfers::prepare_email_transfer(
                &state,
                &user.wallet,
                event_id,
                ticket_id,
                email,
                body.expires_in_secs,
            )
            .await?
        }
        (None, None) => return Err(field_error("to_wallet", "missing field")),
    };
    Ok(Json(prepared.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedTransferBody {
    /// The transaction from `transfer` or `transfer/cancel`, signed by the
    /// holder (base64), 1 to 4096 characters.
    #[schema(min_length = 1, max_length = 4096)]
    pub transaction: String,
}

impl Validate for SignedTransferBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("transaction", &self.transaction, 1..=4096, false)
    }
}

/// Send the holder-signed transfer
///
/// `POST /api/tickets/{event}/{ticket}/transfer/submit` (the holder): sends
/// the holder-signed transaction, then publishes the ticket as it is on chain
/// (after a transfer the old owner's code is refused). Only a lone
/// `transfer_ticket`, `open_email_transfer` or `cancel_email_transfer` of
/// this very ticket by its holder is accepted; see
/// [`transfers::submit_signed`].
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer/submit",
    tag = "tickets",
    params(crate::http::openapi::responses::TicketPath),
    request_body = SignedTransferBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Sent; the ticket as it is now on chain (after a transfer: its new owner and generation) and the email transfer it opened or cancelled", body = SubmittedTransfer),
        (status = 400, description = "`malformed_json`: the body is not JSON; `bad_request`: a path id does not parse", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: the event is not on chain", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `transaction` is not base64, not a legacy transaction, not exactly the `transfer_ticket`, `open_email_transfer` or `cancel_email_transfer` of this ticket by the caller, or not signed; or `chain_refused`", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn submit_transfer(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    ValidJson(body): ValidJson<SignedTransferBody>,
) -> Result<Json<SubmittedTransfer>, ApiError> {
    let submitted =
        transfers::submit_signed(&state, &user.wallet, event_id, ticket_id, &body.transaction)
            .await?;
    Ok(Json(submitted.into()))
}

/// `POST /api/tickets/{event}/{ticket}/transfer/resend` (the holder): the
/// claim mail of the ticket's open transfer, when it has not gone out yet.
/// After it has, the code is no longer kept: cancel and send again.
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer/resend",
    tag = "tickets",
    params(crate::http::openapi::responses::TicketPath),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The email transfer; `mail_sent` says whether the relay took the mail", body = EmailTransferView),
        (status = 403, description = "`forbidden`: not the ticket's holder", body = ErrorBody),
        (status = 404, description = "`not_found`: no open email transfer", body = ErrorBody),
        (status = 409, description = "`conflict`: the mail already went out (its code is not kept)", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<EmailTransferView>, ApiError> {
    let sent = transfers::resend(&state, &user.wallet, event_id, ticket_id).await?;
    Ok(Json(sent.into()))
}

/// `POST /api/tickets/{event}/{ticket}/transfer/cancel` (the holder): the
/// unsigned `cancel_email_transfer` of the ticket's open transfer, to sign
/// and submit like a transfer.
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer/cancel",
    tag = "tickets",
    params(crate::http::openapi::responses::TicketPath),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The unsigned `cancel_email_transfer` to sign and submit", body = TransferRequest),
        (status = 403, description = "`forbidden`: not the wallet that opened the transfer", body = ErrorBody),
        (status = 404, description = "`not_found`: no open email transfer", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<TransferRequest>, ApiError> {
    let prepared = transfers::prepare_cancel(&state, &user.wallet, event_id, ticket_id).await?;
    Ok(Json(prepared.into()))
}

/// `{"code": "<from the claim link>"}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    pub code: String,
}

/// The code is a bearer credential for the ticket: never in a log line.
impl std::fmt::Debug for ClaimBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimBody { code: .. }")
    }
}

impl Validate for ClaimBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("code", &self.code, 1..=128, false)
    }
}

/// `POST /api/tickets/claim` (any logged-in wallet): moves the ticket the
/// code stands for to the caller's wallet. The server signs with the claim
/// key and its authority (which pays the fee and the new token account), so
/// the recipient needs no SOL. Answers the ticket with its new QR code.
#[utoipa::path(
    post,
    path = "/api/tickets/claim",
    tag = "tickets",
    request_body = ClaimBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The ticket, now the caller's, with its new QR code text", body = TicketView),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`claim_not_found`: no transfer for this code", body = ErrorBody),
        (status = 410, description = "`already_claimed`, `claim_cancelled` or `claim_expired`", body = ErrorBody),
        (status = 422, description = "`invalid_field` or `chain_refused`", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn claim(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<ClaimBody>,
) -> Result<Json<TicketView>, ApiError> {
    let ticket = transfers::claim(&state, &user.wallet, &body.code).await?;
    Ok(Json(TicketView {
        code: organizer::credential_for(&state, &ticket)?.encode(),
        ticket,
    }))
}
