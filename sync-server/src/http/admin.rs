//! Organizer endpoints for gates (`/api/admin`): define gates, issue
//! one-time enrolment tokens, revoke devices, watch per-gate figures and
//! conflicts. Guarded by the configured admin bearer token ([`Admin`]); the
//! work is `crate::services::gates`.

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
use crate::http::validation::{ValidJson, Validate, check_count, check_range, check_text};
use crate::services::gates;
use crate::store::{Conflict, GateCounts};

pub use crate::services::gates::EnrolToken;

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
    // 64 is `MAX_GATE_NAME`: utoipa takes literals only.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    pub direction: Direction,
    /// Tier indexes this gate admits (at most 256); absent for all.
    #[serde(default)]
    #[schema(max_items = 256)]
    pub allowed_tiers: Option<Vec<u8>>,
}

/// Longest gate name, in characters.
pub const MAX_GATE_NAME: usize = 64;

impl Validate for NewGate {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("name", &self.name, 1..=MAX_GATE_NAME, false)?;
        if let Some(tiers) = &self.allowed_tiers {
            check_count("allowed_tiers", tiers.len(), 0..=256)?;
        }
        Ok(())
    }
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
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `name` is blank, longer than 64 characters or holds control characters, or another field is missing, unknown or of the wrong type", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn put_gate(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    ValidJson(gate): ValidJson<NewGate>,
) -> Result<StatusCode, ApiError> {
    let info = GateInfo {
        number: gate.number,
        name: gate.name,
        direction: gate.direction,
        allowed_tiers: gate.allowed_tiers,
    };
    gates::define_gate(&state, event_id, info).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnrolToken {
    /// The gate's name (as defined with `PUT .../gates`), 1 to 64
    /// characters.
    // 64 is `MAX_GATE_NAME`: utoipa takes literals only.
    #[schema(min_length = 1, max_length = 64)]
    pub gate: String,
    /// Lifetime of the token, 60 s to 90 days (default
    /// `gates.enrol_token_ttl_secs`).
    #[serde(default)]
    #[schema(minimum = 60, maximum = 7_776_000)]
    pub ttl_secs: Option<u32>,
}

impl Validate for NewEnrolToken {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("gate", &self.gate, 1..=MAX_GATE_NAME, false)?;
        if let Some(ttl) = self.ttl_secs {
            check_range("ttl_secs", ttl, 60..=90 * 24 * 3600)?;
        }
        Ok(())
    }
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
        (status = 404, description = "`not_found`: the event has no gate of that name", body = ErrorBody),
        (status = 409, description = "`conflict`: the server has no source of randomness", body = ErrorBody),
        (status = 422, description = "`invalid_field`: `gate` is blank, too long or holds control characters, `ttl_secs` is out of range, or a field is missing, unknown or of the wrong type", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn create_enrol_token(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    ValidJson(request): ValidJson<NewEnrolToken>,
) -> Result<(StatusCode, Json<EnrolToken>), ApiError> {
    let token = gates::issue_enrol_token(&state, event_id, &request.gate, request.ttl_secs).await?;
    Ok((StatusCode::CREATED, Json(token)))
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
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn gate_status(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
) -> Result<Json<Vec<GateStatus>>, ApiError> {
    let counts = gates::gate_counts(&state, event_id).await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|(counts, online)| GateStatus { counts, online })
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
        (status = 400, description = "`bad_request`: the event id or the query string does not parse", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn conflicts(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Query(query): Query<ConflictQuery>,
) -> Result<Json<Vec<Conflict>>, ApiError> {
    Ok(Json(gates::conflicts(&state, event_id, query.gate).await?))
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
        (status = 400, description = "`bad_request`: the device id is not a UUID", body = ErrorBody),
        (status = 404, description = "`not_found`: no active device with that id", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn revoke_device(
    _: Admin,
    State(state): State<AppState>,
    Path(device_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    gates::revoke_device(&state, device_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The boxes of an event
///
/// `GET /api/admin/events/{event}/devices`: every box enrolled for the
/// event, revoked ones too: its gate, agent version, hostname, when it was
/// last heard from and whether that is recent (`online`), its unsent journal
/// rows and how far its clock is off.
#[utoipa::path(
    get,
    path = "/api/admin/events/{event}/devices",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The boxes, by gate then enrolment", body = Vec<gates::DeviceView>),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn devices(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
) -> Result<Json<Vec<gates::DeviceView>>, ApiError> {
    Ok(Json(gates::devices(&state, event_id).await?))
}

/// An event's signed gate cache as a file
///
/// `GET /api/admin/events/{event}/cache-file`: the event's whole gate cache,
/// signed with the server key, for gates with no network at all: save it
/// as `gate-cache.bin` on the boot partition or a USB stick (the same file
/// as `sync-server cache-file`), in the cache protocol `protocol` names.
#[utoipa::path(
    get,
    path = "/api/admin/events/{event}/cache-file",
    tag = "admin",
    params(("event" = u64, Path, description = "The event id"), CacheFileQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The signed cache file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "`bad_request`: the event id or `protocol` does not parse", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        (status = 426, description = "`unsupported_version`: `protocol` older than 4", body = ErrorBody),
        crate::http::openapi::responses::AdminRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn cache_file(
    _: Admin,
    State(state): State<AppState>,
    Path(event_id): Path<u64>,
    Query(query): Query<CacheFileQuery>,
) -> Result<axum::response::Response, ApiError> {
    let version = gates::cache_version(Some(
        query.protocol.unwrap_or(shared::wire::PROTOCOL_VERSION),
    ))?;
    Ok(cache_file_response(&state, event_id, version).await?)
}

/// Which cache protocol a cache file is written in.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CacheFileQuery {
    /// The cache protocol the gates read (default: this server's; 4 for
    /// gate agents from before protocol 5).
    #[param(minimum = 4, maximum = 65535)]
    pub protocol: Option<u16>,
}

/// The signed cache of `event_id`, in cache protocol `version`, as a
/// download named `gate-cache.bin`.
pub async fn cache_file_response(
    state: &AppState,
    event_id: u64,
    version: u16,
) -> Result<axum::response::Response, crate::services::ServiceError> {
    use axum::response::IntoResponse;
    if i64::try_from(event_id).is_err() {
        return Err(crate::services::ServiceError::NotFound(format!(
            "no event {event_id}"
        )));
    }
    let signed = gates::cache_file(state, event_id, version).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"gate-cache.bin\"",
            ),
        ],
        signed.to_file_bytes(),
    )
        .into_response())
}
