//! Messages between gate agents and the sync server.
//!
//! # Versioning
//! Every message carries `v`, the protocol version its sender speaks. JSON
//! messages are read leniently: unknown fields are ignored and fields added in
//! later versions have defaults, so an old agent keeps working after a server
//! upgrade. A server answers an agent in the version the agent sent (never
//! newer), and refuses only versions below [`MIN_PROTOCOL_VERSION`].
//!
//! The ticket cache (snapshot and deltas) is binary (postcard) inside a signed
//! envelope: it is the one large message, it travels on USB sticks as well as
//! over HTTP, and the gate must be able to tell it came from its server.
//! Binary formats are not self-describing, so a change to them is a version
//! bump; the fixtures under `tests/fixtures/` make such a change deliberate.

use std::borrow::Cow;

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::UnixSeconds;
use crate::admission::{
    Direction, DoorsWindow, Evaluation, EventStatus, GatePolicy, HolderProofPolicy, Presence,
    ReentryPolicy, TicketStatus, TierGates, UnknownTicketPolicy,
};
use crate::keys::{PublicKeyBytes, signature_serde};

/// The protocol version this build speaks. Version 4 added the turnstile
/// undo window to the cached event (and re-entry without an exit scan, a
/// new last variant of `ReentryPolicy`). Version 5 added the admissions
/// gates undid ([`UndoneAdmission`]: a last variant of [`CacheChange`] and
/// a last field of [`CacheSnapshot`]), so every gate forgets an admission
/// that one gate undid.
pub const PROTOCOL_VERSION: u16 = 5;
/// The oldest protocol version this build still accepts. Version 3 added the
/// event's end time and its tier -> gates rule to the cached event, which
/// older agents cannot read. Version 3 caches (a USB stick's file from an
/// older server) still open: their events read with the undo window off.
pub const MIN_PROTOCOL_VERSION: u16 = 3;

/// Most characters of a scan record's `source` a server stores; longer
/// ones are cut by [`ScanRecord::from_evaluation`].
pub const MAX_SCAN_SOURCE_CHARS: usize = 128;
/// Most characters of a scan record's `outcome` code.
pub const MAX_SCAN_OUTCOME_CHARS: usize = 64;

/// Header a gate sends with its cache requests: the protocol version it
/// reads. The server encodes the snapshot or delta in that version (never
/// newer than its own); without the header it assumes version 4, the last
/// one whose agents did not send it.
pub const HEADER_PROTOCOL: &str = "x-gate-protocol";
/// The version a server assumes for a gate that sends no
/// [`HEADER_PROTOCOL`].
pub const PROTOCOL_VERSION_WITHOUT_HEADER: u16 = 4;

/// Headers of a device-signed HTTP request.
pub const HEADER_DEVICE_ID: &str = "x-gate-device";
pub const HEADER_TIMESTAMP: &str = "x-gate-timestamp";
pub const HEADER_NONCE: &str = "x-gate-nonce";
pub const HEADER_SIGNATURE: &str = "x-gate-signature";
/// Header a gate adds to every request: how many journal rows it has not
/// uploaded yet, which organizers see per gate.
pub const HEADER_BACKLOG: &str = "x-gate-backlog";

const DEVICE_REQUEST_DOMAIN: &[u8] = b"nft-gate/device-request/v1";
const SIGNED_PAYLOAD_DOMAIN: &[u8] = b"nft-gate/signed-payload/v1";
/// First bytes of a signed cache file, so `cache import` can tell a cache file
/// from anything else on a USB stick.
pub const CACHE_FILE_MAGIC: &[u8; 8] = b"NFTGATE\x01";

/// The bytes a device signs for one HTTP request: method, path with query,
/// timestamp, nonce and the body's SHA-256, domain-separated. The server
/// rebuilds the same bytes to check the signature, and refuses timestamps
/// outside its window and nonces it has already seen.
pub fn device_request_message(
    method: &str,
    path_and_query: &str,
    timestamp: UnixSeconds,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(128);
    msg.extend_from_slice(DEVICE_REQUEST_DOMAIN);
    for part in [
        method.to_ascii_uppercase().as_bytes(),
        path_and_query.as_bytes(),
    ] {
        msg.push(b'\n');
        msg.extend_from_slice(part);
    }
    msg.push(b'\n');
    msg.extend_from_slice(timestamp.to_string().as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(nonce.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(&Sha256::digest(body));
    msg
}

/// `POST /gate/v1/enrol`: a new gate box registers its key with a one-time token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolRequest {
    /// The protocol version the agent speaks.
    pub v: u16,
    /// The one-time enrolment token the organizer issued for this gate.
    pub token: String,
    /// The key the box made for itself; it signs every later request.
    pub device_key: PublicKeyBytes,
    pub agent_version: String,
    #[serde(default)]
    pub hostname: Option<String>,
}

/// The gate a device was enrolled as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateInfo {
    pub number: u32,
    pub name: String,
    pub direction: Direction,
    /// Tier indexes this gate admits; `None` for all.
    #[serde(default)]
    pub allowed_tiers: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolResponse {
    pub v: u16,
    pub device_id: Uuid,
    pub event_id: u64,
    pub gate: GateInfo,
    /// The key the server signs cache snapshots and deltas with.
    pub server_key: PublicKeyBytes,
}

/// A ticket tier as gates show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TierInfo {
    pub index: u8,
    pub name: String,
}

/// What a gate caches about an event: enough to build its `GatePolicy` and to
/// verify credentials offline. The rules (re-entry, unknown tickets, holder
/// proof, tier -> gates, end-time grace) are the organizer's and reach the
/// gates with every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CachedEvent {
    pub event_id: u64,
    pub name: String,
    pub status: EventStatus,
    pub doors: DoorsWindow,
    /// When the event ends (Unix seconds); entries are refused from
    /// `ends_at + end_grace_secs` on.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub ends_at: UnixSeconds,
    pub issuer_keys: Vec<PublicKeyBytes>,
    pub tiers: Vec<TierInfo>,
    pub reentry: ReentryPolicy,
    pub unknown_tickets: UnknownTicketPolicy,
    pub holder_proof: HolderProofPolicy,
    /// Which gates admit which tier; a tier not listed passes any gate.
    pub tier_gates: Vec<TierGates>,
    /// Seconds after `ends_at` during which gates still admit latecomers.
    pub end_grace_secs: u32,
    /// Turnstile undo window in seconds, 0 when off (protocol version 4;
    /// events stored by older agents read as off).
    #[serde(default)]
    pub undo_window_secs: u32,
}

impl CachedEvent {
    /// The rules at one gate of this event: the event's rules with the
    /// gate's number, direction and own tier list. Gates and the server
    /// build their policy here, so both apply the same rules.
    pub fn policy_for(
        &self,
        gate: u32,
        direction: Direction,
        allowed_tiers: Option<Vec<u8>>,
    ) -> GatePolicy {
        GatePolicy {
            event_id: self.event_id,
            gate,
            direction,
            event_status: self.status,
            doors: self.doors,
            allowed_tiers,
            tier_gates: self.tier_gates.clone(),
            ends_at: self.ends_at,
            end_grace_secs: self.end_grace_secs,
            reentry: self.reentry,
            unknown_tickets: self.unknown_tickets,
            holder_proof: self.holder_proof,
            undo_window_secs: self.undo_window_secs,
        }
    }
}

/// What a gate caches about a ticket (the organizer's view; presence is the
/// gate's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CachedTicket {
    pub event_id: u64,
    pub ticket_id: u32,
    pub tier: u8,
    pub owner: PublicKeyBytes,
    pub generation: u32,
    pub status: TicketStatus,
}

/// The whole cache for one gate at `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSnapshot {
    pub v: u16,
    /// Deltas continue from here.
    pub cursor: u64,
    pub generated_at: UnixSeconds,
    pub events: Vec<CachedEvent>,
    pub tickets: Vec<CachedTicket>,
    /// Where holders are, as the server pieced it together from every gate
    /// of the event (tickets never scanned are left out).
    pub presence: Vec<PresenceUpdate>,
    /// Every admission of the event that its gate undid (since version 5).
    pub undone: Vec<UndoneAdmission>,
}

/// The server's view of one ticket's presence, from all gates' scans in
/// scan-time order. A gate takes it when it is newer than what it recorded
/// itself, so a holder admitted at one gate is "already inside" at the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    pub event_id: u64,
    pub ticket_id: u32,
    pub presence: Presence,
    /// Admissions recorded so far.
    pub entries: u32,
}

/// An admission its gate undid (the holder did not pass the turnstile),
/// with the server's view of the ticket once it is left out.
///
/// Other gates may have taken the admission from the server before the
/// undo ("inside since `since` at `gate`"), and an older server view never
/// replaces a newer one in [`crate::presence::merge`]: this notice is what
/// tells them to forget it ([`crate::presence::forget_undone`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoneAdmission {
    /// The gate that admitted and then undid.
    pub gate: u32,
    /// When it admitted, in whole seconds (rounded down), as presence
    /// records it.
    pub since: UnixSeconds,
    /// The server's view of the ticket without the undone admission.
    pub now: PresenceUpdate,
}

/// One change since a cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheChange {
    /// A new or changed event (status, doors, keys, tiers, rules).
    Event(CachedEvent),
    /// A new ticket, or a transfer (new owner and generation), freeze,
    /// unfreeze, revocation or refund of a known one.
    Ticket(CachedTicket),
    /// A holder went in or out at some gate of the event.
    Presence(PresenceUpdate),
    /// A gate undid an admission (since version 5).
    Undone(UndoneAdmission),
}

/// Changes after `from_cursor`, up to and including `to_cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDelta {
    pub v: u16,
    pub from_cursor: u64,
    pub to_cursor: u64,
    pub generated_at: UnixSeconds,
    pub changes: Vec<CacheChange>,
    /// More changes are waiting: ask again from `to_cursor` at once.
    pub has_more: bool,
}

/// What a scan did at the gate, as the journal records and uploads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanRecord {
    /// Globally unique (UUIDv7 made by the gate); uploads are idempotent on it.
    pub scan_id: Uuid,
    pub gate: u32,
    pub direction: Direction,
    /// When the verdict was made, in Unix milliseconds of the gate's clock.
    pub scanned_at_ms: i64,
    /// The input the code came from, e.g. `serial:/dev/ttyACM0` or `camera:0`.
    pub source: String,
    /// Set when the code was readable.
    #[serde(default)]
    pub event_id: Option<u64>,
    #[serde(default)]
    pub ticket_id: Option<u32>,
    #[serde(default)]
    pub generation: Option<u32>,
    #[serde(default)]
    pub tier: Option<u8>,
    /// The verdict's stable code (`admitted`, `already_inside`, ...; see
    /// `Decision::code`).
    pub outcome: String,
    /// Whether the turnstile opened.
    pub opened: bool,
    /// Set on an undo record (outcome `admission_undone`): the admission,
    /// made at the same gate, that it voids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voids: Option<Uuid>,
}

/// Where and when a scan was made: what a [`ScanRecord`] carries besides the
/// verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanContext {
    pub scan_id: Uuid,
    pub gate: u32,
    pub direction: Direction,
    /// When the verdict was made, in Unix milliseconds.
    pub scanned_at_ms: i64,
    /// The input the code came from (`serial:/dev/ttyACM0`, `api:<wallet>`, ...).
    pub source: String,
}

impl ScanRecord {
    /// The journal record of one evaluated scan, the same wherever the scan
    /// was decided (a gate offline, the server online).
    ///
    /// The ids come from the credential when the code was readable and well
    /// signed, and are all `None` otherwise. The tier is the one the decision
    /// went by (the cache's word, or a newer code's), else the code's own.
    pub fn from_evaluation(evaluation: &Evaluation, context: ScanContext) -> Self {
        let body = evaluation.credential.as_ref().map(|c| *c.body());
        let decision = &evaluation.decision;
        let mut source = context.source;
        if let Some((cut, _)) = source.char_indices().nth(MAX_SCAN_SOURCE_CHARS) {
            source.truncate(cut);
        }
        Self {
            scan_id: context.scan_id,
            gate: context.gate,
            direction: context.direction,
            scanned_at_ms: context.scanned_at_ms,
            source,
            event_id: body.map(|b| b.event_id),
            ticket_id: body.map(|b| b.ticket_id),
            generation: body.map(|b| b.generation),
            tier: decision.tier().or(body.map(|b| b.tier)),
            outcome: decision.code().to_owned(),
            opened: decision.opens_gate(),
            voids: None,
        }
    }

    /// The free-text field out of its bounds, if any: `source` must be 1 to
    /// [`MAX_SCAN_SOURCE_CHARS`] characters without control characters, and
    /// `outcome` 1 to [`MAX_SCAN_OUTCOME_CHARS`] of `a-z`, `0-9` and `_`.
    pub fn unbounded_field(&self) -> Option<&'static str> {
        let source_ok = !self.source.is_empty()
            && self.source.chars().count() <= MAX_SCAN_SOURCE_CHARS
            && !self.source.chars().any(char::is_control);
        let outcome_ok = (1..=MAX_SCAN_OUTCOME_CHARS).contains(&self.outcome.len())
            && self
                .outcome
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        match (source_ok, outcome_ok) {
            (false, _) => Some("source"),
            (_, false) => Some("outcome"),
            (true, true) => None,
        }
    }
}

/// `POST /gate/v1/journal`: scans since the last acknowledged upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalBatch {
    pub v: u16,
    pub device_id: Uuid,
    pub scans: Vec<ScanRecord>,
}

/// A scan record the server refused for good: it is not stored, and sending
/// it again changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusedScan {
    pub scan_id: Uuid,
    /// Why: `wrong_event` (the record names another event than the
    /// device's or the upload's), `source_invalid` / `outcome_invalid` (a
    /// free-text field out of bounds, or an outcome that does not match
    /// `opened`), and for handheld uploads `code_missing`, `code_invalid`
    /// (not a ticket code, or not signed by the event's issuer) and
    /// `code_mismatch` (the record's ticket, event or generation is not the
    /// code's).
    pub reason: String,
}

/// The server's answer to a journal batch. Every scan id in `acked` is done
/// with and may be marked uploaded by the gate: stored (now or by an earlier
/// upload), or refused for good (also listed in `refused`, with the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalAck {
    pub v: u16,
    pub acked: Vec<Uuid>,
    /// How many of them were new to the server.
    pub stored: u32,
    /// How many it had already (a retried upload).
    pub duplicates: u32,
    /// Records not stored, with the reason; counted in
    /// `sync_scans_refused_total{reason}`.
    #[serde(default)]
    pub refused: Vec<RefusedScan>,
    /// Admissions that conflict with an earlier admission of the same ticket
    /// (e.g. two gates offline); kept and listed for organizers.
    #[serde(default)]
    pub conflicts: Vec<Uuid>,
    /// The server's clock when it answered (Unix seconds).
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub server_time: UnixSeconds,
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(example = json!({"error": "not_found", "message": "no event 7"}))
)]
pub struct ErrorBody {
    /// Stable machine code a client can act on (`not_found`,
    /// `invalid_field`, `rate_limited`, `token_expired`, ...).
    pub error: Cow<'static, str>,
    /// Words for a person; may change between versions.
    pub message: String,
    /// With `invalid_field` only: the path of the request body field at
    /// fault (`tiers[1].name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Errors reading a signed binary payload (cache snapshot or delta).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("not a gate cache file (bad magic bytes)")]
    NotACacheFile,
    #[error("the payload is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error(
        "protocol version {0} is not supported (this build speaks {MIN_PROTOCOL_VERSION}..={PROTOCOL_VERSION})"
    )]
    UnsupportedVersion(u16),
    #[error("signed by {found}, not by the expected server key {expected}")]
    WrongSigner {
        expected: PublicKeyBytes,
        found: PublicKeyBytes,
    },
    #[error("the signature does not match the content")]
    BadSignature,
    #[error("expected a {expected}, found a {found}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
}

/// A server-signed binary payload: the envelope of snapshots and deltas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPayload {
    pub v: u16,
    /// `"snapshot"` or `"delta"`: a delta can't be passed off as a snapshot.
    pub kind: String,
    pub signer: PublicKeyBytes,
    pub payload: Vec<u8>,
    #[serde(with = "signature_serde")]
    pub signature: [u8; 64],
}

/// Payloads that travel inside a [`SignedPayload`].
pub trait SignedKind: Serialize + for<'de> Deserialize<'de> {
    const KIND: &'static str;
    fn version(&self) -> u16;
    /// Decodes a payload that a sender of protocol `version` encoded.
    fn decode(version: u16, payload: &[u8]) -> Result<Self, postcard::Error>;
    /// Encodes the payload for a reader of protocol `version` (4 up to
    /// [`PROTOCOL_VERSION`]), leaving out what that version cannot carry.
    fn encode(&self, version: u16) -> Vec<u8>;
}

impl SignedKind for CacheSnapshot {
    const KIND: &'static str = "snapshot";
    fn version(&self) -> u16 {
        self.v
    }
    fn decode(version: u16, payload: &[u8]) -> Result<Self, postcard::Error> {
        match version {
            ..=3 => {
                postcard::from_bytes::<SnapshotBefore5<v3::CachedEvent>>(payload).map(Into::into)
            }
            4 => postcard::from_bytes::<SnapshotBefore5<CachedEvent>>(payload).map(Into::into),
            _ => postcard::from_bytes(payload),
        }
    }
    fn encode(&self, version: u16) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        if version <= 4 {
            return postcard::to_stdvec(&SnapshotBefore5 {
                v: version,
                cursor: self.cursor,
                generated_at: self.generated_at,
                events: self.events.iter().collect::<Vec<&CachedEvent>>(),
                tickets: self.tickets.clone(),
                presence: self.presence.clone(),
            })
            .unwrap_or_default();
        }
        postcard::to_stdvec(&Self {
            v: version,
            ..self.clone()
        })
        .unwrap_or_default()
    }
}

impl SignedKind for CacheDelta {
    const KIND: &'static str = "delta";
    fn version(&self) -> u16 {
        self.v
    }
    fn decode(version: u16, payload: &[u8]) -> Result<Self, postcard::Error> {
        // Version 5 only appended a variant, so version 4 deltas read as is.
        if version <= 3 {
            return postcard::from_bytes::<v3::CacheDelta>(payload).map(Into::into);
        }
        postcard::from_bytes(payload)
    }
    fn encode(&self, version: u16) -> Vec<u8> {
        let mut delta = Self {
            v: version,
            ..self.clone()
        };
        if version <= 4 {
            delta
                .changes
                .retain(|c| !matches!(c, CacheChange::Undone(_)));
        }
        postcard::to_stdvec(&delta).unwrap_or_default()
    }
}

/// The snapshot as protocol versions 3 and 4 encoded it: without the
/// undone admissions, its events as `E` (version 3's without the undo
/// window, version 4's as today's). Read so older cache files still
/// import, and written (borrowing today's events) for version 4 gates.
#[derive(Serialize, Deserialize)]
struct SnapshotBefore5<E> {
    v: u16,
    cursor: u64,
    generated_at: UnixSeconds,
    events: Vec<E>,
    tickets: Vec<CachedTicket>,
    presence: Vec<PresenceUpdate>,
}

impl<E: Into<CachedEvent>> From<SnapshotBefore5<E>> for CacheSnapshot {
    fn from(s: SnapshotBefore5<E>) -> Self {
        Self {
            v: s.v,
            cursor: s.cursor,
            generated_at: s.generated_at,
            events: s.events.into_iter().map(Into::into).collect(),
            tickets: s.tickets,
            presence: s.presence,
            undone: Vec::new(),
        }
    }
}

/// The cache as protocol version 3 encoded it: events without the undo
/// window. Read only, so a version 3 cache file still imports (its
/// snapshot is a [`SnapshotBefore5`] of these events).
mod v3 {
    use serde::Deserialize;

    use super::{CachedTicket, PresenceUpdate, TierInfo};
    use crate::UnixSeconds;
    use crate::admission::{
        DoorsWindow, EventStatus, HolderProofPolicy, ReentryPolicy, TierGates, UnknownTicketPolicy,
    };
    use crate::keys::PublicKeyBytes;

    #[derive(Deserialize)]
    pub(super) struct CachedEvent {
        event_id: u64,
        name: String,
        status: EventStatus,
        doors: DoorsWindow,
        ends_at: UnixSeconds,
        issuer_keys: Vec<PublicKeyBytes>,
        tiers: Vec<TierInfo>,
        reentry: ReentryPolicy,
        unknown_tickets: UnknownTicketPolicy,
        holder_proof: HolderProofPolicy,
        tier_gates: Vec<TierGates>,
        end_grace_secs: u32,
    }

    impl From<CachedEvent> for super::CachedEvent {
        fn from(e: CachedEvent) -> Self {
            Self {
                event_id: e.event_id,
                name: e.name,
                status: e.status,
                doors: e.doors,
                ends_at: e.ends_at,
                issuer_keys: e.issuer_keys,
                tiers: e.tiers,
                reentry: e.reentry,
                unknown_tickets: e.unknown_tickets,
                holder_proof: e.holder_proof,
                tier_gates: e.tier_gates,
                end_grace_secs: e.end_grace_secs,
                undo_window_secs: 0,
            }
        }
    }

    #[derive(Deserialize)]
    pub(super) enum CacheChange {
        Event(CachedEvent),
        Ticket(CachedTicket),
        Presence(PresenceUpdate),
    }

    #[derive(Deserialize)]
    pub(super) struct CacheDelta {
        v: u16,
        from_cursor: u64,
        to_cursor: u64,
        generated_at: UnixSeconds,
        changes: Vec<CacheChange>,
        has_more: bool,
    }

    impl From<CacheDelta> for super::CacheDelta {
        fn from(d: CacheDelta) -> Self {
            Self {
                v: d.v,
                from_cursor: d.from_cursor,
                to_cursor: d.to_cursor,
                generated_at: d.generated_at,
                changes: d
                    .changes
                    .into_iter()
                    .map(|c| match c {
                        CacheChange::Event(e) => super::CacheChange::Event(e.into()),
                        CacheChange::Ticket(t) => super::CacheChange::Ticket(t),
                        CacheChange::Presence(p) => super::CacheChange::Presence(p),
                    })
                    .collect(),
                has_more: d.has_more,
            }
        }
    }
}

fn payload_message(kind: &str, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(SIGNED_PAYLOAD_DOMAIN.len() + kind.len() + 33);
    msg.extend_from_slice(SIGNED_PAYLOAD_DOMAIN);
    msg.extend_from_slice(kind.as_bytes());
    msg.push(0);
    msg.extend_from_slice(&Sha256::digest(payload));
    msg
}

impl SignedPayload {
    pub fn sign<T: SignedKind>(value: &T, key: &SigningKey) -> Self {
        Self::sign_for(value, key, PROTOCOL_VERSION)
    }

    /// Signs `value` encoded for a reader of protocol `version` (clamped to
    /// 4..=[`PROTOCOL_VERSION`]; see [`SignedKind::encode`]).
    pub fn sign_for<T: SignedKind>(value: &T, key: &SigningKey, version: u16) -> Self {
        let version = version.clamp(PROTOCOL_VERSION_WITHOUT_HEADER, PROTOCOL_VERSION);
        let payload = value.encode(version);
        let signature = key.sign(&payload_message(T::KIND, &payload)).to_bytes();
        Self {
            v: version,
            kind: T::KIND.to_owned(),
            signer: PublicKeyBytes::from(&key.verifying_key()),
            payload,
            signature,
        }
    }

    /// Checks the signature (against `expected_signer` when the caller knows
    /// its server's key) and decodes the content.
    pub fn open<T: SignedKind>(
        &self,
        expected_signer: Option<&PublicKeyBytes>,
    ) -> Result<T, PayloadError> {
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&self.v) {
            return Err(PayloadError::UnsupportedVersion(self.v));
        }
        if self.kind != T::KIND {
            return Err(PayloadError::WrongKind {
                expected: T::KIND,
                found: self.kind.clone(),
            });
        }
        if let Some(expected) = expected_signer
            && *expected != self.signer
        {
            return Err(PayloadError::WrongSigner {
                expected: *expected,
                found: self.signer,
            });
        }
        let key = self
            .signer
            .verifying_key()
            .ok_or(PayloadError::BadSignature)?;
        key.verify_strict(
            &payload_message(&self.kind, &self.payload),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| PayloadError::BadSignature)?;
        let value =
            T::decode(self.v, &self.payload).map_err(|e| PayloadError::Corrupt(e.to_string()))?;
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&value.version()) {
            return Err(PayloadError::UnsupportedVersion(value.version()));
        }
        Ok(value)
    }

    /// The file form: magic bytes, then the postcard envelope.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut out = CACHE_FILE_MAGIC.to_vec();
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, PayloadError> {
        let body = bytes
            .strip_prefix(CACHE_FILE_MAGIC)
            .ok_or(PayloadError::NotACacheFile)?;
        postcard::from_bytes(body).map_err(|e| PayloadError::Corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> CacheSnapshot {
        CacheSnapshot {
            v: PROTOCOL_VERSION,
            cursor: 9,
            generated_at: 1,
            events: vec![],
            tickets: vec![],
            presence: vec![],
            undone: vec![],
        }
    }

    #[test]
    fn signed_snapshot_opens_with_the_right_key_only() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let signed = SignedPayload::sign(&snapshot(), &server);
        let bytes = signed.to_file_bytes();
        let back = SignedPayload::from_file_bytes(&bytes).unwrap();
        let server_key = PublicKeyBytes::from(&server.verifying_key());
        assert_eq!(
            back.open::<CacheSnapshot>(Some(&server_key)),
            Ok(snapshot())
        );
        let other_key = PublicKeyBytes::from(&other.verifying_key());
        assert!(matches!(
            back.open::<CacheSnapshot>(Some(&other_key)),
            Err(PayloadError::WrongSigner { .. })
        ));
        assert!(matches!(
            back.open::<CacheDelta>(Some(&server_key)),
            Err(PayloadError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_version_4_reader_gets_everything_but_the_undone_admissions() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let now = PresenceUpdate {
            event_id: 7,
            ticket_id: 5,
            presence: Presence::NeverEntered,
            entries: 0,
        };
        let undone = UndoneAdmission {
            gate: 2,
            since: 100,
            now,
        };
        let full = CacheSnapshot {
            presence: vec![now],
            undone: vec![undone],
            ..snapshot()
        };
        let signed = SignedPayload::sign(&full, &server);
        assert_eq!(signed.v, PROTOCOL_VERSION);
        assert_eq!(signed.open::<CacheSnapshot>(None), Ok(full.clone()));
        let old = SignedPayload::sign_for(&full, &server, 4);
        assert_eq!(old.v, 4);
        assert_eq!(
            old.open::<CacheSnapshot>(None),
            Ok(CacheSnapshot {
                v: 4,
                undone: vec![],
                ..full.clone()
            })
        );
        // Below 4 nothing older is written: the version 4 form is sent.
        assert_eq!(SignedPayload::sign_for(&full, &server, 1).v, 4);

        let delta = CacheDelta {
            v: PROTOCOL_VERSION,
            from_cursor: 1,
            to_cursor: 3,
            generated_at: 1,
            changes: vec![CacheChange::Presence(now), CacheChange::Undone(undone)],
            has_more: false,
        };
        let old = SignedPayload::sign_for(&delta, &server, 4)
            .open::<CacheDelta>(None)
            .unwrap();
        assert_eq!(old.v, 4);
        assert_eq!(old.changes, vec![CacheChange::Presence(now)]);
        assert_eq!(
            SignedPayload::sign(&delta, &server).open::<CacheDelta>(None),
            Ok(delta)
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let server = SigningKey::from_bytes(&[1; 32]);
        let mut signed = SignedPayload::sign(&snapshot(), &server);
        signed.payload[2] ^= 1;
        assert_eq!(
            signed.open::<CacheSnapshot>(None),
            Err(PayloadError::BadSignature)
        );
    }

    #[test]
    fn not_a_cache_file_is_refused() {
        assert_eq!(
            SignedPayload::from_file_bytes(b"hello world"),
            Err(PayloadError::NotACacheFile)
        );
        let mut truncated =
            SignedPayload::sign(&snapshot(), &SigningKey::from_bytes(&[1; 32])).to_file_bytes();
        truncated.truncate(20);
        assert!(matches!(
            SignedPayload::from_file_bytes(&truncated),
            Err(PayloadError::Corrupt(_))
        ));
    }

    #[test]
    fn error_body_names_a_field_only_when_one_is_at_fault() {
        let plain = ErrorBody {
            error: "not_found".into(),
            message: "no event 7".to_owned(),
            field: None,
        };
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"error":"not_found","message":"no event 7"}"#
        );
        let field = ErrorBody {
            error: "invalid_field".into(),
            message: "tiers[1].name: 1 to 64 characters".to_owned(),
            field: Some("tiers[1].name".to_owned()),
        };
        let text = serde_json::to_string(&field).unwrap();
        assert_eq!(
            text,
            r#"{"error":"invalid_field","message":"tiers[1].name: 1 to 64 characters","field":"tiers[1].name"}"#
        );
        assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), field);
        assert_eq!(
            serde_json::from_str::<ErrorBody>(r#"{"error":"not_found","message":"no event 7"}"#)
                .unwrap(),
            plain
        );
    }

    #[test]
    fn device_request_message_binds_every_part() {
        let base = device_request_message("POST", "/gate/v1/journal", 100, "n1", b"{}");
        assert_ne!(
            base,
            device_request_message("GET", "/gate/v1/journal", 100, "n1", b"{}")
        );
        assert_ne!(
            base,
            device_request_message("POST", "/gate/v1/journaL", 100, "n1", b"{}")
        );
        assert_ne!(
            base,
            device_request_message("POST", "/gate/v1/journal", 101, "n1", b"{}")
        );
        assert_ne!(
            base,
            device_request_message("POST", "/gate/v1/journal", 100, "n2", b"{}")
        );
        assert_ne!(
            base,
            device_request_message("POST", "/gate/v1/journal", 100, "n1", b"{ }")
        );
        assert_eq!(
            base,
            device_request_message("post", "/gate/v1/journal", 100, "n1", b"{}")
        );
    }
}
