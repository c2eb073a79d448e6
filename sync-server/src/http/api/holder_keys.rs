//! `GET /api/tickets/{event}/{ticket}/holder-key` (the ticket's holder):
//! what the ticket page needs to have the wallet approve its browser key
//! and make the rotating code, through [`crate::services::holder_keys`].

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use shared::HolderProofPolicy;
use shared::credential::DelegationScope;

use super::auth::AuthUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{field_error, parse_wallet};
use crate::services::holder_keys::{self, KeyApproval, KeyRequest};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HolderKeyQuery {
    /// The browser's session public key (ed25519, base58): what
    /// `crypto.subtle.exportKey("raw", publicKey)` gives, in base58.
    pub key: String,
    /// `ticket` (the default): this ticket at its current generation;
    /// `event`: every ticket the wallet holds for the event.
    #[serde(default)]
    pub scope: Option<String>,
    /// First second the key may sign (Unix seconds). Default: 5 minutes ago.
    #[serde(default)]
    pub valid_from: Option<i64>,
    /// First second it may no longer (Unix seconds, after `valid_from`, in
    /// the future, at most 31 days after `valid_from`). Default: when the
    /// event stops admitting, at least an hour and at most 31 days away.
    #[serde(default)]
    pub valid_until: Option<i64>,
}

/// The approval to sign and what the page makes the rotating code from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HolderKeyView {
    /// The ticket's static code (format version 1, base32): bytes 1 to 114
    /// of the rotating code (format version 2) are its.
    pub code: String,
    pub event_id: u64,
    pub ticket_id: u32,
    /// The ticket's generation: an approval for one ticket names it, so a
    /// transfer voids it.
    pub generation: u32,
    /// The ticket's owner, whose wallet must sign `message` (base58).
    pub owner: String,
    /// `ticket` or `event`.
    pub scope: String,
    /// The session key approved (base58).
    pub session_key: String,
    /// First second the key may sign (inclusive, Unix seconds).
    pub valid_from: u32,
    /// First second it may no longer (exclusive, Unix seconds).
    pub valid_until: u32,
    /// The exact text the owner's wallet signs with `signMessage` (its UTF-8
    /// bytes); the signature goes into the code as the delegation's.
    pub message: String,
    /// The event's rule: with `required`, gates refuse a proof further than
    /// `window_secs` from their clock.
    pub holder_proof: HolderProofPolicy,
    /// The server's clock (Unix seconds): a page whose clock is far from it
    /// makes codes the gates refuse.
    pub server_time: i64,
}

impl From<KeyApproval> for HolderKeyView {
    fn from(a: KeyApproval) -> Self {
        Self {
            code: a.code,
            event_id: a.body.event_id,
            ticket_id: a.body.ticket_id,
            generation: a.body.generation,
            owner: a.body.owner.to_base58(),
            scope: a.request.scope.name().to_owned(),
            session_key: a.request.session_key.to_base58(),
            valid_from: a.request.valid_from,
            valid_until: a.request.valid_until,
            message: a.message,
            holder_proof: a.holder_proof,
            server_time: a.now,
        }
    }
}

/// Approve a browser key for the rotating code
///
/// `GET /api/tickets/{event}/{ticket}/holder-key?key=...` (the ticket's
/// holder only): the ticket's static code and the exact delegation text the
/// holder's wallet signs to approve the page's session key for the event's
/// gates, with the ticket's generation and owner, the validity and the
/// event's holder-proof rule. The page then signs (ticket, time) with that
/// key every few seconds and draws the format version 2 code
/// (`docs/holder-proof.md`). Nothing is stored: asking again gives a new
/// text to sign.
#[utoipa::path(
    get,
    path = "/api/tickets/{event}/{ticket}/holder-key",
    tag = "tickets",
    params(crate::http::openapi::responses::TicketPath, HolderKeyQuery),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The approval to sign", body = HolderKeyView),
        (status = 400, description = "`bad_request`: an id or the query string does not parse (`key` is required)", body = ErrorBody),
        (status = 403, description = "`forbidden`: this wallet does not hold the ticket; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such ticket or event", body = ErrorBody),
        (status = 422, description = "`invalid_field` with `field`: `key` (not an ed25519 public key), `scope` (neither `ticket` nor `event`), `valid_from` or `valid_until` (out of range, not in order, in the past or more than 31 days apart)", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::ChainOrStorageDown,
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn holder_key(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    Query(query): Query<HolderKeyQuery>,
) -> Result<Json<HolderKeyView>, ApiError> {
    let session_key = parse_wallet("key", query.key.trim())?;
    let scope = match query.scope.as_deref().unwrap_or("ticket") {
        "ticket" => DelegationScope::Ticket,
        "event" => DelegationScope::Event,
        other => {
            return Err(field_error(
                "scope",
                format!("{other:?}: use ticket or event"),
            ));
        }
    };
    let asked = KeyRequest {
        session_key,
        scope,
        valid_from: query.valid_from,
        valid_until: query.valid_until,
    };
    let approval = holder_keys::approval(&state, &user.wallet, event_id, ticket_id, asked).await?;
    Ok(Json(approval.into()))
}
