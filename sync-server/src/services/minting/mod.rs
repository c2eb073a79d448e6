//! Organizer mints (one ticket, a batch, the admin API), crash-safe.
//!
//! A mint is a durable intent before it is anything else: the request (its
//! id, event, caller, idempotency key and body hash) and the tickets it asks
//! for are written in the transaction that takes their seats, so a buyer who
//! is paying keeps the seat they hold and a crash never forgets a request.
//! The chain then mints in several transactions ([`drive`]): under a
//! per-event lock each one takes the next ticket ids from the event's
//! `minted` counter, and is recorded with its signature and those ids
//! *before* it is sent, so whatever crashes, the request is settled from the
//! chain by signature and no ticket is ever minted twice.
//!
//! A request that was cut off (server killed, chain down) is finished by the
//! recovery worker ([`recovery`]); a retry with the same idempotency key
//! answers the first request's outcome. If the chain *refuses* part way, the
//! request fails as a whole: the seats of tickets never minted go back on
//! sale and the tickets it did mint are revoked (void at every gate; their
//! seats stay sold, the chain counts them).

mod drive;
pub mod recovery;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};
use solana_sdk::pubkey::Pubkey;

pub use crate::store::{MintItemState, MintKind, MintRequest, MintState};
use crate::store::{NewMintRequest, Recorded};

use super::organizer::{self, IssuedTicket};
use super::{ServiceError, Services, inventory, tickets};

/// The caller recorded for mints through the admin API.
pub const ADMIN_CALLER: &str = "admin";

/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The field refusals of an idempotency key name (its header).
pub const IDEMPOTENCY_FIELD: &str = "Idempotency-Key";

/// One lock per event, so the mints of one server instance take ticket ids
/// from the chain's counter one transaction at a time (between instances the
/// program refuses a transaction whose ids were taken, and it is retried).
#[derive(Default)]
pub struct EventLocks(std::sync::Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>);

impl EventLocks {
    /// Waits for the event's lock; it is held until the guard is dropped.
    pub async fn lock(&self, event_id: u64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(event_id).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// What an organizer asks to mint, and through which door.
#[derive(Debug, Clone)]
pub struct MintOrder<'a> {
    pub event_id: u64,
    /// The organizer's wallet (base58), or [`ADMIN_CALLER`].
    pub caller: &'a str,
    pub kind: MintKind,
    pub idempotency_key: Option<&'a str>,
    /// `(wallet, tier)` per ticket, in order.
    pub recipients: &'a [(Pubkey, u8)],
}

/// How a mint request stands when the call returns.
#[derive(Debug)]
pub enum MintOutcome {
    /// Every ticket minted and published, in request order.
    Completed(MintRequest, Vec<IssuedTicket>),
    /// Still being minted (the chain did not answer, or a retry came while
    /// the first request runs); the recovery worker finishes it.
    InProgress(MintRequest),
    /// The chain refused it; `error` says why. No valid ticket is left
    /// from it (or soon none: `voiding`).
    Failed(MintRequest),
}

impl MintOutcome {
    pub fn request(&self) -> &MintRequest {
        match self {
            MintOutcome::Completed(r, _) | MintOutcome::InProgress(r) | MintOutcome::Failed(r) => r,
        }
    }
}

/// A ticket of a mint request as callers see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MintItemView {
    /// The recipient (base58).
    pub wallet: String,
    pub tier: u8,
    pub state: MintItemState,
    /// Once a transaction assigned it one.
    pub ticket_id: Option<u32>,
    /// The signed QR code text, once landed (never for a revoked ticket).
    pub code: Option<String>,
}

/// A mint request as callers see it (`GET /api/mints/{id}`, and the 202
/// answer of a mint still running).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MintRequestView {
    pub request_id: String,
    pub event_id: u64,
    pub kind: MintKind,
    pub state: MintState,
    pub idempotency_key: Option<String>,
    /// Why it failed: the chain's refusal.
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// One per ticket asked for, in request order.
    pub tickets: Vec<MintItemView>,
}

/// The hash a request's idempotency key is bound to: the door, the event
/// and every `(wallet, tier)` in order.
pub fn body_hash(kind: MintKind, event_id: u64, recipients: &[(Pubkey, u8)]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{}\n{event_id}\n", kind.as_str()));
    for (wallet, tier) in recipients {
        hasher.update(format!("{wallet}:{tier}\n"));
    }
    hex::encode(hasher.finalize())
}

/// The field that names a recipient's tier in `kind`'s request body.
fn tier_field(kind: MintKind, index: usize) -> String {
    match kind {
        MintKind::Single => "tier".into(),
        MintKind::Batch | MintKind::Admin => format!("recipients[{index}].tier"),
    }
}

fn check_key(key: &str) -> Result<(), ServiceError> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ServiceError::invalid(
            IDEMPOTENCY_FIELD,
            format!("1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        ));
    }
    Ok(())
}

/// The request `caller` made before with this idempotency key, if any;
/// refused when the key was used for another body.
pub async fn replay(
    services: &Services,
    order: &MintOrder<'_>,
) -> Result<Option<MintOutcome>, ServiceError> {
    let Some(key) = order.idempotency_key else {
        return Ok(None);
    };
    check_key(key)?;
    match services
        .store
        .mint_request_by_key(order.caller, key)
        .await?
    {
        None => Ok(None),
        Some(existing) => Ok(Some(answer_existing(services, order, existing).await?)),
    }
}

async fn answer_existing(
    services: &Services,
    order: &MintOrder<'_>,
    existing: MintRequest,
) -> Result<MintOutcome, ServiceError> {
    if existing.body_hash != body_hash(order.kind, order.event_id, order.recipients) {
        return Err(ServiceError::invalid(
            IDEMPOTENCY_FIELD,
            format!(
                "already used for another request ({}); use a new key",
                existing.request_id
            ),
        ));
    }
    outcome_of(services, existing).await
}

/// Mints one ticket per `(wallet, tier)` of `order`, publishes them to the
/// gates and answers them with their QR credentials; see the module doc for
/// crashes, retries and refusals. Refused before anything is recorded: an
/// unknown tier (422 naming it), an event not on chain, too few seats.
pub async fn mint(services: &Services, order: &MintOrder<'_>) -> Result<MintOutcome, ServiceError> {
    if let Some(outcome) = replay(services, order).await? {
        return Ok(outcome);
    }
    if services.chain.is_none() {
        return Err(ServiceError::ChainUnavailable("no chain configured".into()));
    }
    services
        .store
        .event_chain(order.event_id)
        .await?
        .ok_or(organizer::OrganizerError::UnknownEvent(order.event_id))?;
    let on_chain = organizer::event_on_chain(services, order.event_id).await?;
    if let Some(index) = order
        .recipients
        .iter()
        .position(|(_, tier)| usize::from(*tier) >= on_chain.tiers.len())
    {
        return Err(ServiceError::invalid(
            tier_field(order.kind, index),
            format!(
                "no such tier (the event has {} tier(s), 0 to {})",
                on_chain.tiers.len(),
                on_chain.tiers.len().saturating_sub(1)
            ),
        ));
    }
    inventory::ensure(services, order.event_id).await?;
    let request_id = uuid::Uuid::now_v7().to_string();
    let holder = uuid::Uuid::now_v7().to_string();
    let hash = body_hash(order.kind, order.event_id, order.recipients);
    let now = services.clock.now();
    let recorded = services
        .store
        .record_mint_request(
            &NewMintRequest {
                request_id: &request_id,
                event_id: order.event_id,
                caller: order.caller,
                kind: order.kind,
                idempotency_key: order.idempotency_key,
                body_hash: &hash,
                recipients: order.recipients,
                lease_holder: &holder,
                lease_until: now + lease_secs(services),
            },
            now,
        )
        .await?;
    match recorded {
        Recorded::Created => {}
        Recorded::Existing(existing) => return answer_existing(services, order, *existing).await,
        Recorded::NoSeats => return Err(inventory::sold_out(services, order.event_id).await),
    }
    crate::failpoint::failpoint("mint.intent_recorded");
    // The chain work runs in a task of its own, so a caller that hangs up
    // does not cut it off half way.
    let worker = services.clone();
    let (id, who) = (request_id.clone(), holder.clone());
    let driven = tokio::spawn(async move { drive::run(&worker, &id, &who).await })
        .await
        .map_err(|e| ServiceError::Internal(format!("mint task: {e}")))?;
    if let Err(e) = driven {
        tracing::warn!(request = %request_id, error = %e, "mint not finished; the recovery worker takes it over");
        services
            .store
            .release_mint_request_lease(&request_id, &holder)
            .await?;
        if let Err(e) = organizer::reconcile_event(services, order.event_id).await {
            tracing::warn!(event = order.event_id, error = %e, "could not compare the event's tickets with the chain");
        }
    }
    let request = load(services, &request_id).await?;
    outcome_of(services, request).await
}

fn lease_secs(services: &Services) -> i64 {
    i64::from(services.config.api.mint_lease_secs)
}

async fn load(services: &Services, request_id: &str) -> Result<MintRequest, ServiceError> {
    services
        .store
        .mint_request(request_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no mint request {request_id}")))
}

/// The outcome a request stands at: its tickets, in progress, or failed.
async fn outcome_of(
    services: &Services,
    request: MintRequest,
) -> Result<MintOutcome, ServiceError> {
    Ok(match request.state {
        MintState::Minting | MintState::Voiding => MintOutcome::InProgress(request),
        MintState::Failed => MintOutcome::Failed(request),
        MintState::Completed => {
            let tickets = completed_tickets(services, &request).await?;
            MintOutcome::Completed(request, tickets)
        }
    })
}

/// The tickets of a completed request as they are now (a holder may have
/// moved one on since), in request order.
async fn completed_tickets(
    services: &Services,
    request: &MintRequest,
) -> Result<Vec<IssuedTicket>, ServiceError> {
    let mut out = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let id = item.ticket_id.ok_or_else(|| {
            ServiceError::Internal(format!(
                "mint request {}: a landed ticket without an id",
                request.request_id
            ))
        })?;
        let ticket = tickets::ticket(services, request.event_id, id).await?;
        out.push(tickets::issued(services, ticket)?);
    }
    Ok(out)
}

/// A mint request for the organizer wallet that made it (not found for
/// anyone else: other organizers' requests are none of a caller's business).
pub async fn request_of(
    services: &Services,
    caller: &str,
    request_id: &str,
) -> Result<MintRequestView, ServiceError> {
    let request = services
        .store
        .mint_request(request_id)
        .await?
        .filter(|r| r.caller == caller)
        .ok_or_else(|| ServiceError::NotFound(format!("no mint request {request_id}")))?;
    view(services, &request).await
}

/// Any mint request (the admin API).
pub async fn request_for_admin(
    services: &Services,
    request_id: &str,
) -> Result<MintRequestView, ServiceError> {
    let request = load(services, request_id).await?;
    view(services, &request).await
}

/// How `request` looks to its caller, with the codes of its landed tickets.
pub async fn view(
    services: &Services,
    request: &MintRequest,
) -> Result<MintRequestView, ServiceError> {
    let mut items = Vec::with_capacity(request.items.len());
    for item in &request.items {
        let code = match (item.state, item.ticket_id) {
            (MintItemState::Landed, Some(id)) => {
                match services.store.ticket(request.event_id, id).await? {
                    Some(ticket) => Some(tickets::issued(services, ticket)?.credential.encode()),
                    None => None,
                }
            }
            _ => None,
        };
        items.push(MintItemView {
            wallet: item.recipient.to_string(),
            tier: item.tier,
            state: item.state,
            ticket_id: item.ticket_id,
            code,
        });
    }
    Ok(MintRequestView {
        request_id: request.request_id.clone(),
        event_id: request.event_id,
        kind: request.kind,
        state: request.state,
        idempotency_key: request.idempotency_key.clone(),
        error: request.error.clone(),
        created_at: request.created_at,
        updated_at: request.updated_at,
        tickets: items,
    })
}
