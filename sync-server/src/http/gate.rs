//! The gate protocol (`/gate/v1`): enrolment, signed device requests, the
//! cache snapshot, long-polled deltas, and journal ingest.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::Signature;
use serde::Deserialize;
use shared::PublicKeyBytes;
use shared::wire::{
    EnrolRequest, EnrolResponse, HEADER_DEVICE_ID, HEADER_NONCE, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, JournalAck, JournalBatch, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
    SignedPayload, device_request_message,
};
use uuid::Uuid;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::openapi::BinaryBody;
use crate::http::state::AppState;
use crate::services::Services;
use crate::store::{Device, NonceUse};

/// Optional header where a gate reports how many journal entries it has not
/// uploaded yet; shown to organizers per gate.
pub const HEADER_BACKLOG: &str = "x-gate-backlog";

fn check_version(v: u16) -> Result<(), ApiError> {
    if v < MIN_PROTOCOL_VERSION {
        return Err(ApiError::UnsupportedVersion(v));
    }
    Ok(())
}

/// Enrol a gate box
///
/// `POST /gate/v1/enrol`: a new box registers the key it made for itself,
/// spending a one-time enrolment token. Answers the device id to sign later
/// requests with, its gate, and the key the server signs caches with.
#[utoipa::path(
    post,
    path = "/gate/v1/enrol",
    tag = "gate",
    request_body = EnrolRequest,
    responses(
        (status = 200, description = "Enrolled", body = EnrolResponse),
        (status = 400, description = "`bad_request`: `device_key` is not an ed25519 key; or (plain text) the body is not JSON", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 401, description = "`unknown_token`, `token_used` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: the token's gate no longer exists", body = ErrorBody),
        (status = 409, description = "`key_already_enrolled`: this device key is enrolled already", body = ErrorBody),
        (status = 415, description = "(plain text) the body is not sent as `application/json`", body = String, content_type = "text/plain"),
        (status = 422, description = "(plain text) a field is missing or of the wrong type", body = String, content_type = "text/plain"),
        (status = 426, description = "`unsupported_version`: the agent's protocol version is too old", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn enrol(
    State(state): State<AppState>,
    Json(request): Json<EnrolRequest>,
) -> Result<Json<EnrolResponse>, ApiError> {
    check_version(request.v)?;
    if request.device_key.verifying_key().is_none() {
        return Err(ApiError::BadRequest(
            "device_key is not a valid ed25519 public key".into(),
        ));
    }
    let now = state.clock.now();
    let device = state
        .store
        .enrol(
            &request.token,
            &request.device_key,
            &request.agent_version,
            request.hostname.as_deref(),
            now,
        )
        .await??;
    let gate = state
        .store
        .gate(device.event_id, device.gate_number)
        .await?
        .ok_or_else(|| ApiError::NotFound("the token's gate no longer exists".into()))?;
    tracing::info!(device = %device.device_id, event = device.event_id, gate = gate.number, "gate enrolled");
    Ok(Json(EnrolResponse {
        v: PROTOCOL_VERSION.min(request.v),
        device_id: device.device_id,
        event_id: device.event_id,
        gate,
        server_key: PublicKeyBytes::from(&state.server_key.verifying_key()),
    }))
}

/// A request signed by an enrolled, unrevoked device, with its body.
///
/// Checks, in order, so nothing is stored for a bad request: the headers are
/// present, the device exists and is not revoked, the timestamp is inside the
/// window, the signature over (method, path, timestamp, nonce, body hash) is
/// the device's, and the nonce was not used before.
pub struct DeviceRequest {
    pub device: Device,
    pub body: Bytes,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized(
            "missing or unreadable device signature headers",
        ))
}

impl FromRequest<AppState> for DeviceRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let parts = read_signed(req, state).await?;
        authenticate(
            state,
            &parts.method,
            &parts.path,
            &parts.headers,
            &parts.body,
        )
        .await
        .map(|device| DeviceRequest {
            device,
            body: parts.body,
        })
        .map_err(IntoResponse::into_response)
    }
}

/// What the signature of a device request covers, read off the request.
struct SignedParts {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

async fn read_signed(req: Request, state: &AppState) -> Result<SignedParts, Response> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let body = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("request body too large".into()).into_response()
        } else {
            ApiError::BadRequest(e.body_text()).into_response()
        }
    })?;
    Ok(SignedParts {
        method,
        path,
        headers,
        body,
    })
}

async fn authenticate(
    state: &Services,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Device, ApiError> {
    let (device, nonce) = verify(state, method, path, headers, body).await?;
    if !state
        .store
        .accept_request(
            nonce.device_id,
            &nonce.nonce,
            nonce.now,
            nonce.forget_before,
            nonce.backlog,
        )
        .await?
    {
        return Err(ApiError::Unauthorized(
            "replayed request (nonce already used)",
        ));
    }
    Ok(device)
}

/// Every check of a device request except recording its nonce, which the
/// caller does (alone, or in the transaction of the request's effect).
async fn verify(
    state: &Services,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Device, NonceUse), ApiError> {
    let unauthorized = ApiError::Unauthorized;
    let device_id = Uuid::parse_str(header(headers, HEADER_DEVICE_ID)?)
        .map_err(|_| unauthorized("malformed device id"))?;
    let timestamp: i64 = header(headers, HEADER_TIMESTAMP)?
        .parse()
        .map_err(|_| unauthorized("malformed timestamp"))?;
    let nonce = header(headers, HEADER_NONCE)?;
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(unauthorized("nonce must be 1 to 64 characters"));
    }
    let signature = bs58::decode(header(headers, HEADER_SIGNATURE)?)
        .into_vec()
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .ok_or(unauthorized("malformed signature"))?;

    let device = state
        .store
        .device(device_id)
        .await?
        .ok_or(unauthorized("unknown device"))?;
    if device.revoked {
        return Err(unauthorized("device revoked"));
    }
    let now = state.clock.now();
    let window = i64::from(state.config.gates.signature_window_secs);
    if (now - timestamp).abs() > window {
        return Err(unauthorized(
            "request timestamp outside the allowed window; check the gate's clock",
        ));
    }
    let key = device
        .public_key
        .verifying_key()
        .ok_or(unauthorized("device key is invalid"))?;
    let message = device_request_message(method, path, timestamp, nonce, body);
    key.verify_strict(&message, &Signature::from_bytes(&signature))
        .map_err(|_| unauthorized("bad device signature"))?;
    let backlog = headers
        .get(HEADER_BACKLOG)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok((
        device,
        NonceUse {
            device_id,
            nonce: nonce.to_owned(),
            now,
            forget_before: now - 2 * window,
            backlog,
        },
    ))
}

/// A journal upload: a device request whose nonce is recorded in the same
/// transaction as its scans (one durable commit per upload).
pub struct JournalRequest {
    pub device: Device,
    pub nonce: NonceUse,
    pub body: Bytes,
}

impl FromRequest<AppState> for JournalRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let parts = read_signed(req, state).await?;
        verify(
            state,
            &parts.method,
            &parts.path,
            &parts.headers,
            &parts.body,
        )
        .await
        .map(|(device, nonce)| JournalRequest {
            device,
            nonce,
            body: parts.body,
        })
        .map_err(IntoResponse::into_response)
    }
}

fn signed_bytes(payload: &SignedPayload) -> Response {
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        payload.to_file_bytes(),
    )
        .into_response()
}

/// The whole ticket cache, signed
///
/// `GET /gate/v1/snapshot`: the whole cache for the device's event, signed.
/// The body is binary: the magic bytes `NFTGATE\x01`, then a postcard
/// `SignedPayload` of kind `snapshot` (events, tickets, presence, cursor),
/// signed with the server key the gate received at enrolment.
#[utoipa::path(
    get,
    path = "/gate/v1/snapshot",
    tag = "gate",
    params(BacklogHeader),
    security(("gate_device" = [], "gate_timestamp" = [], "gate_nonce" = [], "gate_signature" = [])),
    responses(
        (status = 200, description = "The signed snapshot (binary)", body = inline(BinaryBody), content_type = "application/octet-stream"),
        (status = 400, description = "`bad_request`: the request body could not be read", body = ErrorBody),
        (status = 401, description = "`unauthorized`: a signature header is missing or malformed, the device is unknown or revoked, the timestamp is outside the window, the signature is wrong, or the nonce was used before", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn snapshot(
    State(state): State<AppState>,
    request: DeviceRequest,
) -> Result<Response, ApiError> {
    let snapshot = state
        .store
        .snapshot(request.device.event_id, state.clock.now())
        .await?;
    Ok(signed_bytes(&SignedPayload::sign(
        &snapshot,
        &state.server_key,
    )))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeltaQuery {
    /// The cursor of the gate's last snapshot or delta.
    pub cursor: u64,
    /// Seconds to wait for a change before answering with no changes.
    #[serde(default)]
    pub wait: u32,
    /// Most changes in one answer (default 5000, at most 20000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The optional header a gate reports its upload backlog in.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct BacklogHeader {
    /// Journal entries the gate has not uploaded yet; shown to organizers
    /// per gate.
    #[serde(rename = "x-gate-backlog")]
    pub backlog: Option<u64>,
}

/// Changes since a cursor, long-polled, signed
///
/// `GET /gate/v1/delta?cursor=N&wait=S`: changes after the cursor, waiting up
/// to `wait` seconds for one (long poll), signed. Changes made through this
/// instance wake the poll at once; changes by other instances sharing the
/// database are seen within a second. The body is binary like the
/// snapshot's: `NFTGATE\x01`, then a postcard `SignedPayload` of kind
/// `delta`; when `has_more` is set, ask again from `to_cursor` at once.
#[utoipa::path(
    get,
    path = "/gate/v1/delta",
    tag = "gate",
    params(DeltaQuery, BacklogHeader),
    security(("gate_device" = [], "gate_timestamp" = [], "gate_nonce" = [], "gate_signature" = [])),
    responses(
        (status = 200, description = "The signed delta (binary); no changes when the wait ran out", body = inline(BinaryBody), content_type = "application/octet-stream"),
        (status = 400, description = "`bad_request`: the request body could not be read; or (plain text) the query string does not parse", content((ErrorBody = "application/json"), (String = "text/plain"))),
        (status = 401, description = "`unauthorized`: the device signature was refused (see the snapshot)", body = ErrorBody),
        (status = 410, description = "`cursor_unknown`: the cursor is past anything this server wrote (a restored or replaced database); fetch a new snapshot", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn delta(
    State(state): State<AppState>,
    Query(query): Query<DeltaQuery>,
    request: DeviceRequest,
) -> Result<Response, ApiError> {
    let event_id = request.device.event_id;
    let limit = query.limit.unwrap_or(5000).clamp(1, 20_000);
    let wait = Duration::from_secs(u64::from(query.wait.min(state.config.gates.max_wait_secs)));
    let deadline = tokio::time::Instant::now() + wait;
    // A cursor past anything this server has written means the server's
    // database is not the one the gate synced with (restored from a backup,
    // replaced): the gate must start over from a snapshot.
    if query.cursor > state.store.cursor(event_id).await? {
        return Err(ApiError::CursorUnknown(query.cursor));
    }
    let mut changes = state.watch_changes();
    loop {
        let delta = state
            .store
            .delta(event_id, query.cursor, limit, state.clock.now())
            .await?;
        if !delta.changes.is_empty()
            || delta.to_cursor != query.cursor
            || tokio::time::Instant::now() >= deadline
        {
            state
                .store
                .touch_device(request.device.device_id, state.clock.now(), None)
                .await?;
            return Ok(signed_bytes(&SignedPayload::sign(
                &delta,
                &state.server_key,
            )));
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Upload scans
///
/// `POST /gate/v1/journal`: a batch of scans. Idempotent on scan ids. The
/// request's nonce is recorded in the same transaction as its scans.
#[utoipa::path(
    post,
    path = "/gate/v1/journal",
    tag = "gate",
    params(BacklogHeader),
    request_body = JournalBatch,
    security(("gate_device" = [], "gate_timestamp" = [], "gate_nonce" = [], "gate_signature" = [])),
    responses(
        (status = 200, description = "Stored (or stored before: a retried upload)", body = JournalAck),
        (status = 400, description = "`bad_request`: not a journal batch", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the device signature was refused, or the nonce was used before", body = ErrorBody),
        (status = 403, description = "`forbidden`: the batch names another device", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: more scans than `gates.max_batch`, or a body over 4 MiB", body = ErrorBody),
        (status = 426, description = "`unsupported_version`", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn journal(
    State(state): State<AppState>,
    request: JournalRequest,
) -> Result<Json<JournalAck>, ApiError> {
    let batch: JournalBatch = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::BadRequest(format!("not a journal batch: {e}")))?;
    check_version(batch.v)?;
    if batch.device_id != request.device.device_id {
        return Err(ApiError::Forbidden("the batch names another device"));
    }
    if batch.scans.len() > state.config.gates.max_batch as usize {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} scans in one batch; the limit is {}",
            batch.scans.len(),
            state.config.gates.max_batch
        )));
    }
    let ack = state
        .store
        .ingest_request(
            &request.device,
            &batch.scans,
            state.clock.now(),
            &request.nonce,
        )
        .await?
        .ok_or(ApiError::Unauthorized(
            "replayed request (nonce already used)",
        ))?;
    let (mut ack, new_outcomes) = ack;
    state.metrics.count_scans(
        new_outcomes
            .iter()
            .map(|outcome| (request.device.gate_number, outcome.as_str())),
    );
    ack.v = PROTOCOL_VERSION.min(batch.v);
    if ack.stored > 0 {
        state.replay_wakeup.notify_one();
    }
    if state.store.take_presence_changed() {
        state.notify_gates();
    }
    Ok(Json(ack))
}
