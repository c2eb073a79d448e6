//! Validation for handheld clients without the gate agent (`/api/validate`,
//! validator or organizer role): bodies and handlers. The decisions and the
//! journal are `crate::services::validation`.
//!
//! - `POST /api/validate` `{event_id, gate, code}`: decide now (5 per second
//!   per validator and gate).
//! - `POST /api/validate/offline` `{event_id, gate, scan}` and
//!   `POST /api/validate/sync` `{event_id, gate, scans: [...]}`: scans a
//!   handheld decided while offline; idempotent by scan id.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::wire::{JournalAck, ScanRecord};
use uuid::Uuid;

use super::auth::{AuthUser, Role};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, check_count, check_id, check_text};
use crate::services::validation::{self, OnlineDecision};

/// Who may validate tickets.
const VALIDATORS: &[Role] = &[Role::Validator, Role::Organizer];

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    pub event_id: u64,
    /// The gate (by number) the handheld stands at.
    pub gate: u32,
    /// The QR code's text as scanned.
    pub code: String,
}

impl Validate for ValidateBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", self.event_id)?;
        check_text(
            "code",
            &self.code,
            1..=shared::credential::MAX_TEXT_LEN,
            false,
        )
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidateResponse {
    /// The scan as recorded in the journal.
    pub scan_id: Uuid,
    /// Stable outcome code (`admitted`, `already_inside`, `revoked`, ...).
    pub outcome: String,
    /// Let the holder through.
    pub opens: bool,
    /// Words for staff.
    pub text: String,
    pub ticket_id: Option<u32>,
    /// This admission conflicts with an earlier one (the holder was inside).
    pub conflict: bool,
}

impl From<OnlineDecision> for ValidateResponse {
    fn from(d: OnlineDecision) -> Self {
        Self {
            scan_id: d.scan_id,
            outcome: d.outcome,
            opens: d.opens,
            text: d.text,
            ticket_id: d.ticket_id,
            conflict: d.conflict,
        }
    }
}

/// Validate a ticket now
///
/// `POST /api/validate` (validator or organizer): the same admission rules
/// as the gates, against the server's view of the ticket; the scan is
/// journalled like a gate's and replayed on chain in the next batch. 5 per
/// second per validator and gate.
#[utoipa::path(
    post,
    path = "/api/validate",
    tag = "validation",
    request_body = ValidateBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The decision (a refusal is a decision too: see `outcome`)", body = ValidateResponse),
        (status = 403, description = "`role_required`: the wallet is neither a validator nor an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `code` is empty or too long, or the event has no such gate", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the validator spent its budget at this gate (`api.rate_limits.validate`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<ValidateBody>,
) -> Result<Json<ValidateResponse>, ApiError> {
    user.require_role(VALIDATORS)?;
    crate::http::limits::check_validate(&state, &user, body.event_id, body.gate).await?;
    let decision =
        validation::validate_online(&state, &user.wallet, body.event_id, body.gate, &body.code)
            .await?;
    Ok(Json(decision.into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineBody {
    pub event_id: u64,
    pub gate: u32,
    pub scan: ScanRecord,
}

impl Validate for OfflineBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", self.event_id)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    pub event_id: u64,
    pub gate: u32,
    /// 1 to 1000 scans, each at this gate.
    pub scans: Vec<ScanRecord>,
}

impl Validate for SyncBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", self.event_id)?;
        check_count("scans", self.scans.len(), 1..=1000)
    }
}

async fn store_offline(
    state: &AppState,
    user: &AuthUser,
    event_id: u64,
    gate: u32,
    scans: &[ScanRecord],
) -> Result<JournalAck, ApiError> {
    user.require_role(VALIDATORS)?;
    Ok(validation::ingest_offline(state, &user.wallet, event_id, gate, scans).await?)
}

/// Upload one scan a handheld decided offline
///
/// `POST /api/validate/offline` (validator or organizer): idempotent by
/// scan id.
#[utoipa::path(
    post,
    path = "/api/validate/offline",
    tag = "validation",
    request_body = OfflineBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Stored (or stored before)", body = JournalAck),
        (status = 403, description = "`role_required`: the wallet is neither a validator nor an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the event has no such gate, or the scan names another gate", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn offline(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<OfflineBody>,
) -> Result<Json<JournalAck>, ApiError> {
    let ack = store_offline(
        &state,
        &user,
        body.event_id,
        body.gate,
        std::slice::from_ref(&body.scan),
    )
    .await?;
    Ok(Json(ack))
}

/// Upload scans a handheld decided offline
///
/// `POST /api/validate/sync` (validator or organizer): up to 1000 scans,
/// idempotent by scan id.
#[utoipa::path(
    post,
    path = "/api/validate/sync",
    tag = "validation",
    request_body = SyncBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Stored (or stored before)", body = JournalAck),
        (status = 403, description = "`role_required`: the wallet is neither a validator nor an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: no scans or more than 1000, the event has no such gate, or a scan names another gate", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn sync(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<SyncBody>,
) -> Result<Json<JournalAck>, ApiError> {
    let ack = store_offline(&state, &user, body.event_id, body.gate, &body.scans).await?;
    Ok(Json(ack))
}
