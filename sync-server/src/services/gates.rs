//! Gates and their boxes: defining gates, one-time enrolment tokens,
//! enrolment and revocation of devices, the check of every signed device
//! request, the signed cache snapshot and long-polled deltas, and journal
//! ingest with the wake-ups it causes (gates' long polls, the replay
//! worker).
//!
//! A device request is authenticated before anything of it is stored: the
//! headers, the device, the timestamp window and the signature are checked
//! first, and the nonce is recorded last (alone, or in the transaction of a
//! journal upload's scans).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use shared::device_request::{DeviceHeaders, DeviceRequestError};
use shared::wire::{
    EnrolRequest, EnrolResponse, GateInfo, JournalAck, JournalBatch, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION, PROTOCOL_VERSION_WITHOUT_HEADER, RefusedScan, ScanRecord, SignedPayload,
};
use uuid::Uuid;

use super::{ServiceError, Services};
use crate::store::{Conflict, Device, EnrolError, GateCounts, NonceUse};

/// Why a gate's request was refused, beyond the common service errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// The device signature was refused; the text says which check failed.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("cursor {0} is unknown to this server; fetch a new snapshot")]
    CursorUnknown(u64),
    #[error("protocol version {0} is no longer supported; update the gate agent")]
    UnsupportedVersion(u16),
    /// More scans in one upload than `gates.max_batch`.
    #[error("{0}")]
    BatchTooLarge(String),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
}

/// A one-time enrolment token as issued: the only time its text is seen,
/// since only its hash is stored.
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

/// What the signature of a device request covers and carries, as read off
/// the request (a header is `None` when missing or unreadable).
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path with its query string.
    pub path: &'a str,
    pub device_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
    /// The gate's upload backlog, when it reports one.
    pub backlog: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// The signature headers, as the device check parses them.
    fn headers(&self) -> DeviceHeaders<'a> {
        DeviceHeaders {
            device_id: self.device_id,
            timestamp: self.timestamp,
            nonce: self.nonce,
            signature: self.signature,
        }
    }
}

fn unauthorized(why: &'static str) -> ServiceError {
    GateError::Unauthorized(why).into()
}

fn refused(error: DeviceRequestError) -> ServiceError {
    unauthorized(error.reason())
}

/// Refuses agents older than the oldest protocol version still spoken.
pub fn check_version(v: u16) -> Result<(), ServiceError> {
    if v < MIN_PROTOCOL_VERSION {
        return Err(GateError::UnsupportedVersion(v).into());
    }
    Ok(())
}

/// Defines or changes a gate of a known event; the name is trimmed.
pub async fn define_gate(
    services: &Services,
    event_id: u64,
    mut gate: GateInfo,
) -> Result<(), ServiceError> {
    let name = gate.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ServiceError::invalid("name", "1 to 64 characters"));
    }
    // Shown on the kiosk page and in logs, and named by enrolment tokens.
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "control characters are not allowed",
        ));
    }
    gate.name = name.to_owned();
    if services.store.event(event_id).await?.is_none() {
        return Err(ServiceError::NotFound(format!("no event {event_id}")));
    }
    services.store.create_gate(event_id, &gate).await?;
    Ok(())
}

/// Makes a random one-time token. Only its hash is stored.
pub fn new_token() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness");
        ServiceError::Conflict("the server has no source of randomness".into())
    })?;
    Ok(format!("enr_{}", bs58::encode(bytes).into_string()))
}

/// Issues a one-time enrolment token for the gate named `gate_name`, valid
/// for `ttl_secs` (default `gates.enrol_token_ttl_secs`). Shared by the API
/// and the CLI.
pub async fn issue_enrol_token(
    services: &Services,
    event_id: u64,
    gate_name: &str,
    ttl_secs: Option<u32>,
) -> Result<EnrolToken, ServiceError> {
    let gate = services
        .store
        .gate_by_name(event_id, gate_name)
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!("event {event_id} has no gate named {gate_name:?}"))
        })?;
    let now = services.clock.now();
    let ttl = ttl_secs.unwrap_or(services.config.gates.enrol_token_ttl_secs);
    let expires_at = now + i64::from(ttl);
    let token = new_token()?;
    services
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

/// Enrols a new box: spends the enrolment token and registers the key the
/// box made for itself.
pub async fn enrol(
    services: &Services,
    request: &EnrolRequest,
) -> Result<EnrolResponse, ServiceError> {
    check_version(request.v)?;
    if request.device_key.verifying_key().is_none() {
        return Err(ServiceError::BadRequest(
            "device_key is not a valid ed25519 public key".into(),
        ));
    }
    let now = services.clock.now();
    let device = services
        .store
        .enrol(
            &request.token,
            &request.device_key,
            &request.agent_version,
            request.hostname.as_deref(),
            now,
        )
        .await?
        .map_err(GateError::from)?;
    let gate = services
        .store
        .gate(device.event_id, device.gate_number)
        .await?
        .ok_or_else(|| ServiceError::NotFound("the token's gate no longer exists".into()))?;
    tracing::info!(device = %device.device_id, event = device.event_id, gate = gate.number, "gate enrolled");
    Ok(EnrolResponse {
        v: PROTOCOL_VERSION.min(request.v),
        device_id: device.device_id,
        event_id: device.event_id,
        gate,
        server_key: PublicKeyBytes::from(&services.server_key.verifying_key()),
    })
}

/// Revokes a device: its signed requests are refused from then on.
pub async fn revoke_device(services: &Services, device_id: Uuid) -> Result<(), ServiceError> {
    if services
        .store
        .revoke_device(device_id, services.clock.now())
        .await?
    {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "no active device {device_id}"
        )))
    }
}

/// A box of an event and whether it was heard from within
/// `gates.online_within_secs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    #[serde(flatten)]
    pub device: crate::store::DeviceRow,
    pub online: bool,
}

/// The boxes enrolled for `event_id` (revoked ones too, marked so).
pub async fn devices(services: &Services, event_id: u64) -> Result<Vec<DeviceView>, ServiceError> {
    if i64::try_from(event_id).is_err() || services.store.event(event_id).await?.is_none() {
        return Err(ServiceError::NotFound(format!("no event {event_id}")));
    }
    let now = services.clock.now();
    let within = i64::from(services.config.gates.online_within_secs);
    Ok(services
        .store
        .devices_of_event(event_id)
        .await?
        .into_iter()
        .map(|device| DeviceView {
            online: device.revoked_at.is_none()
                && device.last_seen_at.is_some_and(|t| now - t <= within),
            device,
        })
        .collect())
}

/// Each gate's counts, and whether it was heard from within
/// `gates.online_within_secs`.
pub async fn gate_counts(
    services: &Services,
    event_id: u64,
) -> Result<Vec<(GateCounts, bool)>, ServiceError> {
    let now = services.clock.now();
    let within = i64::from(services.config.gates.online_within_secs);
    let counts = services.store.gate_counts(event_id).await?;
    Ok(counts
        .into_iter()
        .map(|counts| {
            let online = counts.last_seen_at.is_some_and(|t| now - t <= within);
            (counts, online)
        })
        .collect())
}

/// Admissions of a ticket whose holder was already inside, oldest first.
pub async fn conflicts(
    services: &Services,
    event_id: u64,
    gate: Option<u32>,
) -> Result<Vec<Conflict>, ServiceError> {
    Ok(services.store.conflicts(event_id, gate).await?)
}

/// The enrolled, unrevoked device whose signature headers `request` carries,
/// checked from the headers alone: the HTTP layer asks before it reads the
/// body, so a caller that names no such device cannot make the server
/// buffer one. The body is checked by [`verify`] afterwards.
pub async fn requesting_device(
    services: &Services,
    request: &SignedRequest<'_>,
) -> Result<Device, ServiceError> {
    let signed = request.headers().parse().map_err(refused)?;
    let device = services
        .store
        .device(signed.device_id)
        .await?
        .ok_or_else(|| unauthorized("unknown device"))?;
    if device.revoked {
        return Err(unauthorized("device revoked"));
    }
    Ok(device)
}

/// A device request with every check passed, its nonce recorded as used.
/// `device` is what [`requesting_device`] found for it.
pub async fn authenticate(
    services: &Services,
    request: &SignedRequest<'_>,
    device: Device,
) -> Result<Device, ServiceError> {
    let (device, nonce) = verify(services, request, device).await?;
    if !services.store.accept_request(&nonce).await? {
        return Err(unauthorized("replayed request (nonce already used)"));
    }
    Ok(device)
}

/// Every check of a device request except recording its nonce, which the
/// caller does (with [`authenticate`], or in the transaction of a journal
/// upload). In order: the headers are present and name `device` (found by
/// [`requesting_device`], which checked it exists and is not revoked), the
/// timestamp is inside the window, the signature over (method, path,
/// timestamp, nonce, body hash) is the device's.
pub async fn verify(
    services: &Services,
    request: &SignedRequest<'_>,
    device: Device,
) -> Result<(Device, NonceUse), ServiceError> {
    let signed = request.headers().parse().map_err(refused)?;
    if signed.device_id != device.device_id {
        return Err(unauthorized("unknown device"));
    }
    let now = services.clock.now();
    let window_secs = services.config.gates.signature_window_secs;
    signed
        .check(
            &device.public_key,
            request.method,
            request.path,
            request.body,
            now,
            window_secs,
        )
        .map_err(refused)?;
    let window = i64::from(window_secs);
    let (device_id, timestamp, nonce) = (signed.device_id, signed.timestamp, signed.nonce);
    let backlog = request.backlog.and_then(|v| v.parse().ok());
    Ok((
        device,
        NonceUse {
            device_id,
            nonce: nonce.to_owned(),
            now,
            forget_before: now - 2 * window,
            backlog,
            clock_skew_secs: Some(timestamp - now),
        },
    ))
}

/// The cache version to write for a gate that reads `version` (`None`: it
/// sent no version, so it predates the header): never newer than this
/// server's, and refused below the oldest one it still writes.
pub fn cache_version(version: Option<u16>) -> Result<u16, ServiceError> {
    match version {
        None => Ok(PROTOCOL_VERSION_WITHOUT_HEADER),
        Some(v) if v < PROTOCOL_VERSION_WITHOUT_HEADER => {
            Err(GateError::UnsupportedVersion(v).into())
        }
        Some(v) => Ok(v.min(PROTOCOL_VERSION)),
    }
}

/// The whole cache of the device's event, signed with the server key, in
/// the version the gate reads (see [`cache_version`]).
pub async fn snapshot(
    services: &Services,
    device: &Device,
    version: u16,
) -> Result<SignedPayload, ServiceError> {
    let snapshot = services
        .store
        .snapshot(device.event_id, services.clock.now())
        .await?;
    Ok(SignedPayload::sign_for(
        &snapshot,
        &services.server_key,
        version,
    ))
}

/// The whole cache of `event_id`, signed with the server key, for a gate
/// with no network at all: written to a file (`sync-server cache-file`) and
/// loaded from the boot partition or a USB stick (`gate-agent cache import`).
/// Gates enrolled with this server trust it, as they trust its snapshots.
/// `version` is the cache protocol the gates read ([`cache_version`]: this
/// server's own for gates of this release, 4 for older ones).
pub async fn cache_file(
    services: &Services,
    event_id: u64,
    version: u16,
) -> Result<SignedPayload, ServiceError> {
    if services.store.event(event_id).await?.is_none() {
        return Err(ServiceError::NotFound(format!("no event {event_id}")));
    }
    let snapshot = services
        .store
        .snapshot(event_id, services.clock.now())
        .await?;
    Ok(SignedPayload::sign_for(
        &snapshot,
        &services.server_key,
        version,
    ))
}

/// Changes of the device's event after `cursor` (at most `limit`, clamped
/// to 1..=20000), waiting up to `wait_secs` (at most `gates.max_wait_secs`)
/// for one, signed in the version the gate reads (see [`cache_version`]).
/// Changes made through this instance wake the wait at once; changes by
/// other instances sharing the database are seen within a second.
pub async fn delta(
    services: &Services,
    device: &Device,
    version: u16,
    cursor: u64,
    wait_secs: u32,
    limit: Option<u32>,
) -> Result<SignedPayload, ServiceError> {
    let event_id = device.event_id;
    let limit = limit.unwrap_or(5000).clamp(1, 20_000);
    let wait = Duration::from_secs(u64::from(
        wait_secs.min(services.config.gates.max_wait_secs),
    ));
    let deadline = tokio::time::Instant::now() + wait;
    // A cursor past anything this server has written means the server's
    // database is not the one the gate synced with (restored from a backup,
    // replaced): the gate must start over from a snapshot.
    if cursor > services.store.cursor(event_id).await? {
        return Err(GateError::CursorUnknown(cursor).into());
    }
    let mut changes = services.watch_changes();
    loop {
        let delta = services
            .store
            .delta(event_id, cursor, limit, services.clock.now())
            .await?;
        if !delta.changes.is_empty()
            || delta.to_cursor != cursor
            || tokio::time::Instant::now() >= deadline
        {
            services
                .store
                .touch_device(device.device_id, services.clock.now(), None)
                .await?;
            return Ok(SignedPayload::sign_for(
                &delta,
                &services.server_key,
                version,
            ));
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Stores a gate's journal upload with the request's nonce in the same
/// transaction. Idempotent on scan ids.
///
/// A record naming another event than the device's, or with a free-text
/// field out of bounds, is refused (acknowledged, listed in `refused`,
/// counted, never stored): a gate reports scans of its own event only.
/// New admissions the server would have refused are recorded as incidents.
pub async fn ingest_journal(
    services: &Services,
    device: &Device,
    nonce: &NonceUse,
    batch: JournalBatch,
) -> Result<JournalAck, ServiceError> {
    check_version(batch.v)?;
    if batch.device_id != device.device_id {
        return Err(ServiceError::Forbidden("the batch names another device"));
    }
    let max_batch = services.config.gates.max_batch;
    if batch.scans.len() > max_batch as usize {
        return Err(GateError::BatchTooLarge(format!(
            "{} scans in one batch; the limit is {max_batch}",
            batch.scans.len(),
        ))
        .into());
    }
    let (scans, refused) = screen_journal(device.event_id, batch.scans);
    if let Some(event) = services.store.event(device.event_id).await? {
        let no_owners = std::collections::HashMap::new();
        super::incidents::review(services, &event, device.gate_number, &scans, &no_owners).await?;
    }
    let (mut ack, new_outcomes) = services
        .store
        .ingest_request(device, &scans, services.clock.now(), nonce)
        .await?
        .ok_or_else(|| unauthorized("replayed request (nonce already used)"))?;
    with_refusals(services, &mut ack, refused);
    after_ingest(services, device.gate_number, &ack, &new_outcomes);
    ack.v = PROTOCOL_VERSION.min(batch.v);
    Ok(ack)
}

/// A gate's records split into those to store and those refused: a record
/// naming another event than the device's (never filed under the device's
/// event), a free-text field out of bounds, or an outcome code that says
/// the opposite of `opened`.
fn screen_journal(event_id: u64, scans: Vec<ScanRecord>) -> (Vec<ScanRecord>, Vec<RefusedScan>) {
    let mut refused = Vec::new();
    let kept = scans
        .into_iter()
        .filter(|scan| match record_fault(scan, event_id) {
            None => true,
            Some(reason) => {
                refused.push(RefusedScan {
                    scan_id: scan.scan_id,
                    reason: reason.to_owned(),
                });
                false
            }
        })
        .collect();
    (kept, refused)
}

/// Why a record cannot be filed under `event_id`, if it cannot. Outcome codes
/// this build does not know pass (a newer gate's), as long as they are
/// bounded.
pub(crate) fn record_fault(scan: &ScanRecord, event_id: u64) -> Option<&'static str> {
    if scan.event_id.is_some_and(|named| named != event_id) {
        return Some("wrong_event");
    }
    if let Some(field) = scan.unbounded_field() {
        return Some(if field == "source" {
            "source_invalid"
        } else {
            "outcome_invalid"
        });
    }
    if shared::outcome_opens(&scan.outcome).is_some_and(|opens| opens != scan.opened) {
        return Some("outcome_invalid");
    }
    None
}

/// Adds the refused records to an upload's acknowledgement (done with: a
/// retry changes nothing) and counts them.
pub(crate) fn with_refusals(services: &Services, ack: &mut JournalAck, refused: Vec<RefusedScan>) {
    if refused.is_empty() {
        return;
    }
    for refusal in &refused {
        tracing::warn!(scan = %refusal.scan_id, reason = %refusal.reason, "scan record refused");
    }
    services
        .metrics
        .count_refused(refused.iter().map(|r| r.reason.as_str()));
    ack.acked.extend(refused.iter().map(|r| r.scan_id));
    ack.refused = refused;
}

/// What follows every stored upload, a gate's or a handheld's: the new
/// scans are counted per gate and outcome, the replay worker is woken when
/// something was stored, and the gates' long polls when a holder's presence
/// changed.
pub(crate) fn after_ingest(
    services: &Services,
    gate: u32,
    ack: &JournalAck,
    new_outcomes: &[String],
) {
    services
        .metrics
        .count_scans(new_outcomes.iter().map(|outcome| (gate, outcome.as_str())));
    if ack.stored > 0 {
        services.replay_wakeup.notify_one();
    }
    if services.store.take_presence_changed() {
        services.notify_gates();
    }
}
