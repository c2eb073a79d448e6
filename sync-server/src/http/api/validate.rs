//! Validation for handheld clients without the gate agent (`/api/validate`,
//! validator role). The same `shared::decide` as the gates, against the
//! server's view of each ticket (the organizer's fields plus where the holder
//! is by every gate's scans). Every scan goes into the same journal table as
//! the gates' uploads, so conflicts, per-gate counts and the batched replay on
//! chain treat them alike: an admission here is recorded on chain in the next
//! `validate_entries` batch, not one transaction per scan.
//!
//! - `POST /api/validate` `{event_id, gate, code}`: decide now (5 per second
//!   per validator and gate).
//! - `POST /api/validate/offline` `{event_id, gate, scan}` and
//!   `POST /api/validate/sync` `{event_id, gate, scans: [...]}`: scans a
//!   handheld decided while offline; idempotent by scan id.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::wire::{JournalAck, ScanRecord};
use shared::{Credential, GatePolicy, PublicKeyBytes};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::auth::{AuthUser, Role};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, check_count, check_text, field_error};
use crate::services::Services;
use crate::store::Device;

/// Online decisions are made one at a time in a server, so two handhelds
/// cannot both admit one ticket between a read and a write. (Across several
/// servers, the second admission is kept and flagged as a conflict, as for
/// gates that were offline.)
static DECIDING: Mutex<()> = Mutex::const_new(());

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

/// A stable pseudo-device per validator wallet, so its scans are filed like
/// a gate's.
fn handheld(user: &AuthUser, event_id: u64, gate: u32) -> Device {
    let digest = Sha256::digest([b"handheld:".as_slice(), &user.wallet.0].concat());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Device {
        device_id: uuid::Builder::from_custom_bytes(bytes).into_uuid(),
        public_key: user.wallet,
        event_id,
        gate_number: gate,
        revoked: false,
    }
}

async fn policy(state: &Services, event_id: u64, gate: u32) -> Result<GatePolicy, ApiError> {
    let event = state
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {event_id}")))?;
    let info = state
        .store
        .gate(event_id, gate)
        .await?
        .ok_or_else(|| field_error("gate", format!("event {event_id} has no gate {gate}")))?;
    Ok(GatePolicy {
        event_id,
        gate,
        direction: info.direction,
        event_status: event.status,
        doors: event.doors,
        allowed_tiers: info.allowed_tiers,
        reentry: event.reentry,
        unknown_tickets: event.unknown_tickets,
        holder_proof: event.holder_proof,
    })
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required`: the wallet is neither a validator nor an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `code` is empty or too long, or the event has no such gate", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the validator spent its budget at this gate (`api.rate_limits.validate`)", body = ErrorBody, headers(("Retry-After" = u64, description = "Whole seconds to wait before trying again"))),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<ValidateBody>,
) -> Result<Json<ValidateResponse>, ApiError> {
    user.require_role(&[Role::Validator, Role::Organizer])?;
    crate::http::limits::check_validate(&state, &user, body.event_id, body.gate).await?;
    let policy = policy(&state, body.event_id, body.gate).await?;
    let event = state
        .store
        .event(body.event_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {}", body.event_id)))?;
    let keys = |event_id: u64| -> Vec<PublicKeyBytes> {
        if event_id == event.event_id {
            event.issuer_keys.clone()
        } else {
            Vec::new()
        }
    };
    let _one_at_a_time = DECIDING.lock().await;
    // The ticket's state is read before deciding (decide itself is pure).
    let prior = match Credential::decode(&body.code) {
        Ok(c) => {
            state
                .store
                .ticket_state(c.body.event_id, c.body.ticket_id)
                .await?
        }
        Err(_) => None,
    };
    let now = state.clock.now();
    let evaluation = shared::evaluate(&body.code, &keys, |_, _| prior, &policy, now);
    let body_of = evaluation.credential.as_ref().map(|c| *c.body());
    let decision = &evaluation.decision;
    let scan = ScanRecord {
        scan_id: Uuid::now_v7(),
        gate: body.gate,
        direction: policy.direction,
        scanned_at_ms: now.saturating_mul(1000),
        source: format!("api:{}", user.wallet.to_base58()),
        event_id: body_of.map(|b| b.event_id),
        ticket_id: body_of.map(|b| b.ticket_id),
        generation: body_of.map(|b| b.generation),
        tier: body_of.map(|b| b.tier),
        outcome: decision.code().to_owned(),
        opened: decision.opens_gate(),
    };
    let ack = state
        .store
        .ingest(
            &handheld(&user, body.event_id, body.gate),
            std::slice::from_ref(&scan),
            now,
        )
        .await?;
    drop(_one_at_a_time);
    if ack.stored > 0 {
        state
            .metrics
            .count_scans([(body.gate, scan.outcome.as_str())]);
    }
    state.replay_wakeup.notify_one();
    if state.store.take_presence_changed() {
        state.notify_gates();
    }
    Ok(Json(ValidateResponse {
        scan_id: scan.scan_id,
        outcome: scan.outcome.clone(),
        opens: scan.opened,
        text: decision.staff_text(now),
        ticket_id: scan.ticket_id,
        conflict: ack.conflicts.contains(&scan.scan_id),
    }))
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
        Ok(())
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
        check_count("scans", self.scans.len(), 1..=1000)
    }
}

async fn store_offline(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
    gate: u32,
    scans: &[ScanRecord],
) -> Result<JournalAck, ApiError> {
    user.require_role(&[Role::Validator, Role::Organizer])?;
    policy(state, event_id, gate).await?;
    for (i, scan) in scans.iter().enumerate() {
        if scan.gate != gate {
            return Err(field_error(
                format!("scans[{i}].gate"),
                "must be the gate of the request",
            ));
        }
    }
    let (ack, new_outcomes) = state
        .store
        .ingest_counted(&handheld(user, event_id, gate), scans, state.clock.now())
        .await?;
    state
        .metrics
        .count_scans(new_outcomes.iter().map(|o| (gate, o.as_str())));
    if ack.stored > 0 {
        state.replay_wakeup.notify_one();
    }
    if state.store.take_presence_changed() {
        state.notify_gates();
    }
    Ok(ack)
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required`: the wallet is neither a validator nor an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field`: the event has no such gate, or the scan names another gate", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`role_required`: the wallet is neither a validator nor an organizer; or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field`: no scans or more than 1000, the event has no such gate, or a scan names another gate", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
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
