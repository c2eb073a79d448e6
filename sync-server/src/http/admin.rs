//! Organizer endpoints for gates (`/api/admin`): define gates, issue
//! one-time enrolment tokens, revoke devices, watch per-gate figures and
//! conflicts. Guarded by the configured admin bearer token.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use shared::Direction;
use shared::wire::GateInfo;
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::services::Services;
use crate::store::{Conflict, GateCounts};

/// Proof that the caller presented the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.config.admin_token.as_bytes();
        if expected.is_empty() {
            return Err(ApiError::Forbidden(
                "the admin API is disabled (no admin_token configured)",
            ));
        }
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized("missing bearer token"))?;
        if !constant_time_eq(presented.as_bytes(), expected) {
            return Err(ApiError::Unauthorized("wrong admin token"));
        }
        Ok(Admin)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGate {
    /// The gate's number within the event (on chain and in the journal).
    pub number: u32,
    /// 1 to 64 characters; enrolment tokens name the gate by it.
    pub name: String,
    pub direction: Direction,
    /// Tier indexes this gate admits; absent for all.
    #[serde(default)]
    pub allowed_tiers: Option<Vec<u8>>,
}

/// Define or change a gate
///
/// `PUT /api/admin/events/{event}/gates`: define or change a gate.
#[utoipa::path(
    put,
    path = "/api/admin/events/{event}/gates",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id")),
    request_body = NewGate,
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Defined"),
        (status = 400, description = "`bad_request`: the name is empty or longer than 64 characters; or (plain text) the body or the event id does not parse", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 415, description = "(plain text) the body is not sent as `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "(plain text) a field is missing, unknown or of the wrong type", body = String, content_type = "text/plain"),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn put_gate(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Json(gate): Json<NewGate>,
) -> Result<StatusCode, ApiError> {
    let name = gate.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::BadRequest("name: 1 to 64 characters".into()));
    }
    if state.store.event(event_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no event {event_id}")));
    }
    let info = GateInfo {
        number: gate.number,
        name: name.to_owned(),
        direction: gate.direction,
        allowed_tiers: gate.allowed_tiers,
    };
    state.store.create_gate(event_id, &info).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrolToken {
    /// The gate's name (as defined with `PUT .../gates`).
    pub gate: String,
    /// Lifetime of the token (default `gates.enrol_token_ttl_secs`).
    #[serde(default)]
    pub ttl_secs: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrolToken {
    /// The one-time token (`enr_...`); only its hash is stored, so this is
    /// the one chance to read it.
    pub token: String,
    pub event_id: u64,
    /// The gate's number.
    pub gate: u32,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Makes a random one-time token. Only its hash is stored.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness");
        ApiError::Conflict("the server has no source of randomness".into())
    })?;
    Ok(format!("enr_{}", bs58::encode(bytes).into_string()))
}

/// Issue a one-time enrolment token for a gate
///
/// `POST /api/admin/events/{event}/enrol-tokens`
#[utoipa::path(
    post,
    path = "/api/admin/events/{event}/enrol-tokens",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id")),
    request_body = NewEnrolToken,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Issued", body = EnrolToken),
        (status = 400, description = "(plain text) the body or the event id does not parse", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 404, description = "`not_found`: the event has no gate of that name", body = ErrorBody),
        (status = 409, description = "`conflict`: the server has no source of randomness", body = ErrorBody),
        (status = 415, description = "(plain text) the body is not sent as `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "(plain text) a field is missing, unknown or of the wrong type", body = String, content_type = "text/plain"),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn create_enrol_token(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Json(request): Json<NewEnrolToken>,
) -> Result<(StatusCode, Json<EnrolToken>), ApiError> {
    let token = issue_enrol_token(&state, event_id, &request.gate, request.ttl_secs).await?;
    Ok((StatusCode::CREATED, Json(token)))
}

/// Shared by the API and the CLI.
pub async fn issue_enrol_token(
    state: &Services,
    event_id: u64,
    gate_name: &str,
    ttl_secs: Option<u32>,
) -> Result<EnrolToken, ApiError> {
    let gate = state
        .store
        .gate_by_name(event_id, gate_name)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("event {event_id} has no gate named {gate_name:?}"))
        })?;
    let now = state.clock.now();
    let expires_at = now + i64::from(ttl_secs.unwrap_or(state.config.gates.enrol_token_ttl_secs));
    let token = new_token()?;
    state
        .store
        .create_enrol_token(&token, event_id, gate.number, now, expires_at)
        .await?;
    Ok(EnrolToken {
        token,
        event_id,
        gate: gate.number,
        expires_at,
    })
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GateStatus {
    #[serde(flatten)]
    pub counts: GateCounts,
    /// The gate was heard from within `gates.online_within_secs`.
    pub online: bool,
}

/// Per-gate counts and online state
///
/// `GET /api/admin/events/{event}/gates`: per-gate counts and online state.
#[utoipa::path(
    get,
    path = "/api/admin/events/{event}/gates",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "One entry per defined gate (none for an unknown event)", body = Vec<GateStatus>),
        (status = 400, description = "(plain text) the event id does not parse", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn gate_status(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
) -> Result<Json<Vec<GateStatus>>, ApiError> {
    let now = state.clock.now();
    let within = i64::from(state.config.gates.online_within_secs);
    let counts = state.store.gate_counts(event_id).await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|counts| GateStatus {
                online: counts.last_seen_at.is_some_and(|t| now - t <= within),
                counts,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConflictQuery {
    /// Only conflicts at this gate (by number).
    #[serde(default)]
    pub gate: Option<u32>,
}

/// Admissions that conflict with an earlier one
///
/// `GET /api/admin/events/{event}/conflicts?gate=N`: admissions of a ticket
/// whose holder was already inside (e.g. two gates offline at once).
#[utoipa::path(
    get,
    path = "/api/admin/events/{event}/conflicts",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id"), ConflictQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The conflicts, oldest first", body = Vec<Conflict>),
        (status = 400, description = "(plain text) the event id or the query string does not parse", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn conflicts(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Query(query): Query<ConflictQuery>,
) -> Result<Json<Vec<Conflict>>, ApiError> {
    Ok(Json(state.store.conflicts(event_id, query.gate).await?))
}

/// Revoke a gate box
///
/// `POST /api/admin/devices/{device}/revoke`: the device's signed requests
/// are refused from then on (a lost or stolen box).
#[utoipa::path(
    post,
    path = "/api/admin/devices/{device}/revoke",
    tag = "admin",
    params(("device" = uuid::Uuid, Path, description = "The device id from enrolment")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "(plain text) the device id is not a UUID", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`: no bearer token, or not the admin token", body = ErrorBody),
        (status = 403, description = "`forbidden`: the admin API is disabled (no `admin_token` configured)", body = ErrorBody),
        (status = 404, description = "`not_found`: no active device with that id", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn revoke_device(
    _: Admin,
    State(state): State<AppState>,
    Path(device_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if state
        .store
        .revoke_device(device_id, state.clock.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no active device {device_id}")))
    }
}
