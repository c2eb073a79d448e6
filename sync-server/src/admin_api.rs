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

use crate::AppState;
use crate::error::ApiError;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGate {
    pub number: u32,
    pub name: String,
    pub direction: Direction,
    #[serde(default)]
    pub allowed_tiers: Option<Vec<u8>>,
}

/// `PUT /api/admin/events/{event}/gates`: define or change a gate.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnrolToken {
    /// The gate's name (as defined with `PUT .../gates`).
    pub gate: String,
    #[serde(default)]
    pub ttl_secs: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EnrolToken {
    pub token: String,
    pub event_id: u64,
    pub gate: u32,
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

/// `POST /api/admin/events/{event}/enrol-tokens`
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
    state: &AppState,
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

#[derive(Debug, Serialize, Deserialize)]
pub struct GateStatus {
    #[serde(flatten)]
    pub counts: GateCounts,
    pub online: bool,
}

/// `GET /api/admin/events/{event}/gates`: per-gate counts and online state.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    #[serde(default)]
    pub gate: Option<u32>,
}

/// `GET /api/admin/events/{event}/conflicts?gate=N`
pub async fn conflicts(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Query(query): Query<ConflictQuery>,
) -> Result<Json<Vec<Conflict>>, ApiError> {
    Ok(Json(state.store.conflicts(event_id, query.gate).await?))
}

/// `POST /api/admin/devices/{device}/revoke`
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
