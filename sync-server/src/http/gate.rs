//! The gate protocol over HTTP (`/gate/v1`): enrolment, the extractors that
//! authenticate signed device requests, the cache snapshot, long-polled
//! deltas, and journal ingest. The work is `crate::services::gates`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shared::wire::{
    EnrolRequest, EnrolResponse, HEADER_DEVICE_ID, HEADER_NONCE, HEADER_PROTOCOL, HEADER_SIGNATURE,
    HEADER_TIMESTAMP, JournalAck, JournalBatch, PROTOCOL_VERSION, SignedPayload,
};

use crate::http::error::{ApiError, ErrorBody};
use crate::http::openapi::BinaryBody;
use crate::http::state::AppState;
use crate::http::validation::{
    Validate, check_text, field_error, is_json, parse_json_noting_unknown,
};
use crate::services::gates::{self, SignedRequest};
use crate::store::{Device, NonceUse};

/// Optional header where a gate reports how many journal entries it has not
/// uploaded yet; shown to organizers per gate.
pub use shared::wire::HEADER_BACKLOG;

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
        (status = 400, description = "`bad_request`: `device_key` is not an ed25519 key; `malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unknown_token`, `token_used` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: the token's gate no longer exists", body = ErrorBody),
        (status = 409, description = "`key_already_enrolled`: this device key is enrolled already", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): a field is missing, of the wrong type, or unknown (unless the agent speaks a newer protocol version), or its text too long or holding control characters", body = ErrorBody),
        (status = 426, description = "`unsupported_version`: the agent's protocol version is too old", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<EnrolResponse>, ApiError> {
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let request: EnrolRequest = gate_message(&body, |r: &EnrolRequest| r.v)?;
    request.validate()?;
    Ok(Json(gates::enrol(&state, &request).await?))
}

/// The free text a box sends about itself is kept and shown: bounded, and
/// without control characters.
impl Validate for EnrolRequest {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("token", &self.token, 1..=128, false)?;
        check_text("agent_version", &self.agent_version, 1..=64, false)?;
        if let Some(hostname) = &self.hostname {
            check_text("hostname", hostname, 1..=253, false)?;
        }
        Ok(())
    }
}

/// A gate's JSON message. A field the message type does not know is refused
/// (422 naming it) unless the sender speaks a newer protocol version than
/// this server, whose added fields it cannot know yet.
fn gate_message<T: DeserializeOwned>(
    bytes: &[u8],
    version: impl Fn(&T) -> u16,
) -> Result<T, ApiError> {
    let (message, unknown) = parse_json_noting_unknown::<T>(bytes)?;
    if let Some(field) = unknown
        && version(&message) <= PROTOCOL_VERSION
    {
        return Err(field_error(field, "unknown field"));
    }
    Ok(message)
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
    /// The cache version to answer in ([`HEADER_PROTOCOL`]).
    pub protocol: u16,
}

impl FromRequest<AppState> for DeviceRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let parts = read_signed(req, state).await?;
        let device = gates::authenticate(state, &parts.signed(), parts.device.clone())
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let protocol = parts.protocol().map_err(IntoResponse::into_response)?;
        Ok(DeviceRequest {
            device,
            body: parts.body,
            protocol,
        })
    }
}

/// What the signature of a device request covers, read off the request,
/// and the device it names.
struct SignedParts {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    device: Device,
}

/// Reads a device request: its headers first, and its body only once they
/// name an enrolled, unrevoked device, so nobody else can make the server
/// buffer a body (up to the 4 MiB limit).
async fn read_signed(req: Request, state: &AppState) -> Result<SignedParts, Response> {
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = req.headers().clone();
    let device = gates::requesting_device(state, &signed_request(&method, &path, &headers, &[]))
        .await
        .map_err(|e| {
            // The body is left unread: the connection cannot carry another
            // request, and a client that pools it must be told so.
            let mut refusal = ApiError::from(e).into_response();
            refusal
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            refusal
        })?;
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
        device,
    })
}

/// A request as the device check reads it.
fn signed_request<'a>(
    method: &'a str,
    path: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> SignedRequest<'a> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    SignedRequest {
        method,
        path,
        device_id: header(HEADER_DEVICE_ID),
        timestamp: header(HEADER_TIMESTAMP),
        nonce: header(HEADER_NONCE),
        signature: header(HEADER_SIGNATURE),
        backlog: header(HEADER_BACKLOG),
        body,
    }
}

impl SignedParts {
    /// The request as the device check reads it.
    fn signed(&self) -> SignedRequest<'_> {
        signed_request(&self.method, &self.path, &self.headers, &self.body)
    }

    /// The cache version the gate reads, from [`HEADER_PROTOCOL`].
    fn protocol(&self) -> Result<u16, ApiError> {
        let version = match self.headers.get(HEADER_PROTOCOL) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u16>().ok())
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "{HEADER_PROTOCOL} must be a protocol version number"
                        ))
                    })?,
            ),
        };
        Ok(gates::cache_version(version)?)
    }
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
        gates::verify(state, &parts.signed(), parts.device.clone())
            .await
            .map_err(ApiError::from)
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
/// `SignedPayload` of kind `snapshot` (events, tickets, presence, undone
/// admissions, cursor), signed with the server key the gate received at
/// enrolment, in the version `x-gate-protocol` names (4 without it).
#[utoipa::path(
    get,
    path = "/gate/v1/snapshot",
    tag = "gate",
    params(BacklogHeader, ProtocolHeader),
    security(("gate_device" = [], "gate_timestamp" = [], "gate_nonce" = [], "gate_signature" = [])),
    responses(
        (status = 200, description = "The signed snapshot (binary)", body = inline(BinaryBody), content_type = "application/octet-stream"),
        (status = 400, description = "`bad_request`: the request body could not be read, or `x-gate-protocol` is not a version number", body = ErrorBody),
        (status = 401, description = "`unauthorized`: a signature header is missing or malformed, the device is unknown or revoked, the timestamp is outside the window, the signature is wrong, or the nonce was used before", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 426, description = "`unsupported_version`: `x-gate-protocol` names a version older than this server writes (4)", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn snapshot(
    State(state): State<AppState>,
    request: DeviceRequest,
) -> Result<Response, ApiError> {
    let payload = gates::snapshot(&state, &request.device, request.protocol).await?;
    Ok(signed_bytes(&payload))
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

/// The optional header a gate names the cache version it reads in.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ProtocolHeader {
    /// The cache protocol version the gate reads; the answer is written in
    /// it (never newer than the server's). Without it: version 4.
    #[serde(rename = "x-gate-protocol")]
    #[param(minimum = 4, maximum = 65535)]
    pub protocol: Option<u16>,
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
    params(DeltaQuery, BacklogHeader, ProtocolHeader),
    security(("gate_device" = [], "gate_timestamp" = [], "gate_nonce" = [], "gate_signature" = [])),
    responses(
        (status = 200, description = "The signed delta (binary); no changes when the wait ran out", body = inline(BinaryBody), content_type = "application/octet-stream"),
        (status = 400, description = "`bad_request`: the request body could not be read, the query string does not parse, or `x-gate-protocol` is not a version number", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the device signature was refused (see the snapshot)", body = ErrorBody),
        (status = 410, description = "`cursor_unknown`: the cursor is past anything this server wrote (a restored or replaced database); fetch a new snapshot", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 426, description = "`unsupported_version`: `x-gate-protocol` names a version older than this server writes (4)", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn delta(
    State(state): State<AppState>,
    Query(query): Query<DeltaQuery>,
    request: DeviceRequest,
) -> Result<Response, ApiError> {
    let payload = gates::delta(
        &state,
        &request.device,
        request.protocol,
        query.cursor,
        query.wait,
        query.limit,
    )
    .await?;
    Ok(signed_bytes(&payload))
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
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 401, description = "`unauthorized`: the device signature was refused, or the nonce was used before", body = ErrorBody),
        (status = 403, description = "`forbidden`: the batch names another device", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: more scans than `gates.max_batch`, or a body over 4 MiB", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): not a journal batch, or a field it does not know (from an agent that speaks this server's protocol version or an older one)", body = ErrorBody),
        (status = 426, description = "`unsupported_version`", body = ErrorBody),
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn journal(
    State(state): State<AppState>,
    request: JournalRequest,
) -> Result<Json<JournalAck>, ApiError> {
    let batch: JournalBatch = gate_message(&request.body, |b: &JournalBatch| b.v)?;
    let ack = gates::ingest_journal(&state, &request.device, &request.nonce, batch).await?;
    Ok(Json(ack))
}
