//! Validation for handheld clients without the gate agent (`/api/validate`):
//! bodies and handlers. Only the event's organizer and the wallets it
//! assigned (`PUT /api/events/{event}/validators/{wallet}`) may write scans
//! into an event. The decisions and the journal are
//! `crate::services::validation`.
//!
//! - `POST /api/validate` `{event_id, gate, code}`: decide now (5 per second
//!   per validator and gate).
//! - `POST /api/validate/offline` `{event_id, gate, scan}` and
//!   `POST /api/validate/sync` `{event_id, gate, scans: [...]}`: scans a
//!   handheld decided while offline, each with the code it scanned;
//!   idempotent by scan id.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::Direction;
use shared::wire::{JournalAck, ScanRecord};
use uuid::Uuid;

use super::auth::AuthUser;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, check_count, check_id, check_text};
use crate::services::staff;
use crate::services::validation::{self, HandheldScan, OnlineDecision};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    /// At most 2^63-1: the server's event ids are signed 64-bit.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub event_id: u64,
    /// The gate (by number) the handheld stands at.
    pub gate: u32,
    /// The QR code's text as scanned, 1 to 512 characters (no ticket code
    /// is longer).
    // 512 is `shared::credential::MAX_TEXT_LEN`: utoipa takes literals only.
    #[schema(min_length = 1, max_length = 512)]
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
/// `POST /api/validate` (the event's organizer or a validator it assigned):
/// the same admission rules as the gates, against the server's view of the
/// ticket; the scan is journalled like a gate's and replayed on chain in the
/// next batch. 5 per second per validator and gate.
#[utoipa::path(
    post,
    path = "/api/validate",
    tag = "validation",
    request_body = ValidateBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The decision (a refusal is a decision too: see `outcome`)", body = ValidateResponse),
        (status = 403, description = "`forbidden`: the wallet is neither the event's organizer nor a validator it assigned; or `login_disabled`", body = ErrorBody),
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
    staff::require_validator(&state, &user.wallet, user.role, body.event_id).await?;
    crate::http::limits::check_validate(&state, &user, body.event_id, body.gate).await?;
    let decision =
        validation::validate_online(&state, &user.wallet, body.event_id, body.gate, &body.code)
            .await?;
    Ok(Json(decision.into()))
}

/// A scan a handheld decided offline: the journal record (as a gate's, see
/// `ScanRecord`) and the code it scanned, which the server verifies.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandheldScanBody {
    /// Unique (UUIDv7 made by the handheld); uploads are idempotent on it.
    pub scan_id: Uuid,
    /// The gate of the request.
    pub gate: u32,
    pub direction: Direction,
    /// When the handheld decided, in Unix milliseconds of its clock.
    pub scanned_at_ms: i64,
    /// The handheld's input, 1 to 128 characters.
    pub source: String,
    /// When given, the code's event, ticket and generation.
    #[serde(default)]
    pub event_id: Option<u64>,
    #[serde(default)]
    pub ticket_id: Option<u32>,
    #[serde(default)]
    pub generation: Option<u32>,
    #[serde(default)]
    pub tier: Option<u8>,
    /// The decision's stable code (`admitted`, `already_inside`, ...); must
    /// agree with `opened`.
    pub outcome: String,
    pub opened: bool,
    /// The scanned QR code's text (the signed credential). A record without
    /// one is refused (`code_missing`).
    #[serde(default)]
    pub code: Option<String>,
}

impl From<HandheldScanBody> for HandheldScan {
    fn from(b: HandheldScanBody) -> Self {
        HandheldScan {
            record: ScanRecord {
                scan_id: b.scan_id,
                gate: b.gate,
                direction: b.direction,
                scanned_at_ms: b.scanned_at_ms,
                source: b.source,
                event_id: b.event_id,
                ticket_id: b.ticket_id,
                generation: b.generation,
                tier: b.tier,
                outcome: b.outcome,
                opened: b.opened,
                voids: None,
            },
            code: b.code,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineBody {
    /// At most 2^63-1: the server's event ids are signed 64-bit.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub event_id: u64,
    pub gate: u32,
    pub scan: HandheldScanBody,
}

impl Validate for OfflineBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", self.event_id)
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// At most 2^63-1: the server's event ids are signed 64-bit.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub event_id: u64,
    pub gate: u32,
    /// 1 to 1000 scans, each at this gate.
    #[schema(min_items = 1, max_items = 1000)]
    pub scans: Vec<HandheldScanBody>,
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
    scans: Vec<HandheldScanBody>,
) -> Result<JournalAck, ApiError> {
    staff::require_validator(state, &user.wallet, user.role, event_id).await?;
    let scans: Vec<HandheldScan> = scans.into_iter().map(HandheldScan::from).collect();
    Ok(validation::ingest_offline(state, &user.wallet, event_id, gate, &scans).await?)
}

/// Upload one scan a handheld decided offline
///
/// `POST /api/validate/offline` (the event's organizer or a validator it
/// assigned): idempotent by scan id. The record is refused (listed in
/// `refused`, not stored) when its code is missing, not the event issuer's,
/// or not the record's ticket and generation.
#[utoipa::path(
    post,
    path = "/api/validate/offline",
    tag = "validation",
    request_body = OfflineBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Stored (or stored before), or refused with its reason in `refused`", body = JournalAck),
        (status = 403, description = "`forbidden`: the wallet is neither the event's organizer nor a validator it assigned; or `login_disabled`", body = ErrorBody),
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
    let ack = store_offline(&state, &user, body.event_id, body.gate, vec![body.scan]).await?;
    Ok(Json(ack))
}

/// Upload scans a handheld decided offline
///
/// `POST /api/validate/sync` (the event's organizer or a validator it
/// assigned): up to 1000 scans, idempotent by scan id; each is checked
/// against its code like `/api/validate/offline`'s.
#[utoipa::path(
    post,
    path = "/api/validate/sync",
    tag = "validation",
    request_body = SyncBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "Stored (or stored before); refused records listed in `refused` with their reason", body = JournalAck),
        (status = 403, description = "`forbidden`: the wallet is neither the event's organizer nor a validator it assigned; or `login_disabled`", body = ErrorBody),
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
    let ack = store_offline(&state, &user, body.event_id, body.gate, body.scans).await?;
    Ok(Json(ack))
}
