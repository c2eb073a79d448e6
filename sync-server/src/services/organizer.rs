//! The organizer's operations that touch both the chain and the database:
//! creating an event, minting tickets, and repairing the database from the
//! chain after a crash between the two.
//!
//! Order is always chain first, then database, and every step can be
//! repeated: creating an event that exists on chain only adds what is
//! missing; tickets minted on chain but missing from the database (a crash in
//! between) are found by [`reconcile`], which looks up every id below the
//! event's `minted` counter.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use shared::wire::{CachedEvent, CachedTicket, TierInfo};
use shared::{
    Credential, CredentialBody, DoorsWindow, EventStatus, HolderProofPolicy, PublicKeyBytes,
    ReentryPolicy, TicketStatus, TierGates, UnknownTicketPolicy,
};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{EventParams, TierParams};

use crate::chain::{ChainError, SharedChain, ops};
use crate::services::Services;
use crate::store::{EventChain, StoreError};

/// The server's handle on a chain and the keys it holds for it.
pub struct ChainContext {
    pub chain: SharedChain,
    /// Organizer of the events the server creates; pays their transactions.
    pub authority: Keypair,
    /// Signs the ticket QR credentials.
    pub issuer: SigningKey,
}

#[derive(Debug, thiserror::Error)]
pub enum OrganizerError {
    #[error("this server has no chain configured")]
    NoChain,
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event {0} was not created by this server")]
    UnknownEvent(u64),
    #[error("{0}")]
    Invalid(String),
}

/// A tier of a new event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTier {
    pub name: String,
    /// Price when bought on chain, in lamports.
    pub price_lamports: u64,
    pub supply: u32,
}

/// What an organizer gives to create an event: its times (it ends after it
/// starts and not in the past; doors close after they open), tiers, and its
/// check-in rules (each optional but `reentry`; see `PUT
/// /api/events/{event}/rules`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    pub event_id: u64,
    pub name: String,
    pub venue: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub doors_open_at: i64,
    pub doors_close_at: i64,
    pub capacity: u32,
    pub tiers: Vec<NewTier>,
    pub reentry: ReentryPolicy,
    pub transferable: bool,
    /// The NFT each ticket comes with (default `spl_token`).
    #[serde(default)]
    pub nft: NftStandard,
    /// Well-signed tickets the gate does not know yet (default `reject`).
    #[serde(default = "reject_unknown")]
    pub unknown_tickets: UnknownTicketPolicy,
    /// The holder's rotating proof (default `not_required`).
    #[serde(default = "no_holder_proof")]
    pub holder_proof: HolderProofPolicy,
    /// Which gates admit which tier (default: any tier at any gate).
    #[serde(default)]
    pub tier_gates: Vec<TierGates>,
    /// Seconds after `ends_at` during which gates still admit (default 0).
    #[serde(default)]
    pub end_grace_secs: u32,
    /// Turnstile undo window in seconds (default 0: off).
    #[serde(default)]
    pub undo_window_secs: u32,
}

fn reject_unknown() -> UnknownTicketPolicy {
    UnknownTicketPolicy::Reject
}

fn no_holder_proof() -> HolderProofPolicy {
    HolderProofPolicy::NotRequired
}

impl NewEvent {
    /// The check-in rules it asks for.
    pub fn rules(&self) -> super::rules::EventRules {
        super::rules::EventRules {
            reentry: self.reentry,
            unknown_tickets: self.unknown_tickets,
            holder_proof: self.holder_proof,
            tier_gates: self.tier_gates.clone(),
            end_grace_secs: self.end_grace_secs,
            undo_window_secs: self.undo_window_secs,
        }
    }
}

/// Checks a new event's fields before anything is written: text lengths,
/// capacity, times (at `now`) and rules, each refusal naming its field.
pub fn check_new_event(spec: &NewEvent, now: i64) -> Result<(), super::ServiceError> {
    use super::ServiceError;
    use ticketing::constants::{MAX_EVENT_NAME_LEN, MAX_TIER_NAME_LEN, MAX_VENUE_LEN};
    // The program counts bytes of UTF-8.
    if spec.name.trim().is_empty() || spec.name.len() > MAX_EVENT_NAME_LEN {
        return Err(ServiceError::invalid(
            "name",
            "1 to 32 bytes (a letter outside ASCII takes 2 to 4)",
        ));
    }
    if spec.venue.len() > MAX_VENUE_LEN {
        return Err(ServiceError::invalid(
            "venue",
            "at most 32 bytes (a letter outside ASCII takes 2 to 4)",
        ));
    }
    for (i, tier) in spec.tiers.iter().enumerate() {
        if tier.name.trim().is_empty() || tier.name.len() > MAX_TIER_NAME_LEN {
            return Err(ServiceError::invalid(
                format!("tiers[{i}].name"),
                "1 to 16 bytes (a letter outside ASCII takes 2 to 4)",
            ));
        }
    }
    if !(1..=100_000).contains(&spec.capacity) {
        return Err(ServiceError::invalid(
            "capacity",
            "must be from 1 to 100000",
        ));
    }
    if !(1..=4).contains(&spec.tiers.len()) {
        return Err(ServiceError::invalid("tiers", "1 to 4 items"));
    }
    super::rules::check_times(spec.starts_at, spec.ends_at, now, "ends_at")?;
    if spec.doors_close_at <= spec.doors_open_at {
        return Err(ServiceError::invalid(
            "doors_close_at",
            "must be after doors_open_at",
        ));
    }
    let rules = spec.rules();
    super::rules::RulesChange {
        reentry: Some(rules.reentry),
        unknown_tickets: Some(rules.unknown_tickets),
        holder_proof: Some(rules.holder_proof),
        tier_gates: Some(rules.tier_gates),
        end_grace_secs: Some(rules.end_grace_secs),
        undo_window_secs: Some(rules.undo_window_secs),
    }
    .check("", spec.tiers.len())
}

/// The NFT standard of an event's tickets. Both are real NFTs (supply 1,
/// frozen, moved only by the program) in the holder's associated token
/// account; they differ in cost and in what wallets show.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NftStandard {
    /// SPL Token: about 0.0049 SOL of rent and fee per ticket; wallets list
    /// the token without a name.
    #[default]
    SplToken,
    /// Token-2022 with on-chain metadata: wallets show the ticket's name,
    /// symbol and image; about 0.0070 SOL per ticket.
    #[serde(rename = "token_2022_metadata")]
    Token2022Metadata,
}

impl NftStandard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SplToken => "spl_token",
            Self::Token2022Metadata => "token_2022_metadata",
        }
    }

    pub fn on_chain(self) -> ticketing::client::TokenStandard {
        match self {
            Self::SplToken => ticketing::client::TokenStandard::SplToken,
            Self::Token2022Metadata => ticketing::client::TokenStandard::Token2022Metadata,
        }
    }
}

/// A ticket as minted: the gates' view of it and its signed QR credential.
#[derive(Debug, Clone)]
pub struct IssuedTicket {
    pub ticket: CachedTicket,
    pub credential: Credential,
}

pub(super) fn chain_of(state: &Services) -> Result<&Arc<ChainContext>, OrganizerError> {
    state.chain.as_ref().ok_or(OrganizerError::NoChain)
}

/// The signing key of an event's validator, as stored.
pub fn validator_keypair(row: &EventChain) -> Keypair {
    Keypair::new_from_array(row.validator_secret)
}

fn pubkey_bytes(key: &Pubkey) -> PublicKeyBytes {
    PublicKeyBytes(key.to_bytes())
}

/// Creates the event on chain (organizer: the server's authority; one
/// validator key of its own, funded for fees) and publishes it to its gates.
/// Calling it again for the same event repairs whatever a crash left undone.
pub async fn create_event(
    state: &Services,
    spec: &NewEvent,
) -> Result<CachedEvent, OrganizerError> {
    create_event_for(state, spec, None).await
}

/// [`create_event`] on behalf of an organizer's wallet: the event is the
/// server authority's on chain (it signs and pays), and the wallet is
/// recorded as its organizer for the API's ownership checks.
pub async fn create_event_for(
    state: &Services,
    spec: &NewEvent,
    organizer_wallet: Option<PublicKeyBytes>,
) -> Result<CachedEvent, OrganizerError> {
    let ctx = chain_of(state)?;
    if spec.tiers.is_empty() || spec.tiers.len() > 4 {
        return Err(OrganizerError::Invalid("an event has 1 to 4 tiers".into()));
    }
    let organizer = ctx.authority.pubkey();
    let address = ticketing::client::event_address(&organizer, spec.event_id).0;
    // The validator key is stored before anything happens on chain, so a
    // retry after a crash uses the same one.
    let fresh = Keypair::new();
    let row = state
        .store
        .save_event_chain(&EventChain {
            event_id: spec.event_id,
            address: address.to_string(),
            organizer: organizer.to_string(),
            validator_public: fresh.pubkey().to_string(),
            validator_secret: *fresh.secret_bytes(),
        })
        .await?;
    let validator = validator_keypair(&row);
    let params = EventParams {
        name: spec.name.clone(),
        venue: spec.venue.clone(),
        symbol: "TIX".into(),
        uri_base: format!(
            "{}/m/{}/",
            state.config.api.public_url.trim_end_matches('/'),
            spec.event_id
        ),
        starts_at: spec.starts_at,
        ends_at: spec.ends_at,
        doors_open_at: spec.doors_open_at,
        doors_close_at: spec.doors_close_at,
        capacity: spec.capacity,
        tiers: spec
            .tiers
            .iter()
            .map(|t| TierParams {
                name: t.name.clone(),
                price: t.price_lamports,
                supply: t.supply,
            })
            .collect(),
        issuer: Pubkey::new_from_array(ctx.issuer.verifying_key().to_bytes()),
        treasury: organizer,
        minter: organizer,
        transferable: spec.transferable,
        transfer_until: spec.starts_at,
        token_standard: spec.nft.on_chain(),
    };
    let chain = ctx.chain.as_ref();
    ops::ensure_event(
        chain,
        &ctx.authority,
        spec.event_id,
        params,
        &validator.pubkey(),
    )
    .await?;
    let minimum = state.config.replay.validator_min_lamports;
    ops::ensure_funded(
        chain,
        Some(&ctx.authority),
        &validator.pubkey(),
        minimum,
        minimum.saturating_mul(2),
    )
    .await?;
    let mut cached = CachedEvent {
        event_id: spec.event_id,
        name: spec.name.clone(),
        status: EventStatus::Active,
        doors: DoorsWindow {
            opens_at: spec.doors_open_at,
            closes_at: spec.doors_close_at,
        },
        ends_at: spec.ends_at,
        issuer_keys: vec![PublicKeyBytes::from(&ctx.issuer.verifying_key())],
        tiers: spec
            .tiers
            .iter()
            .enumerate()
            .map(|(index, t)| TierInfo {
                index: index as u8,
                name: t.name.clone(),
            })
            .collect(),
        reentry: spec.reentry,
        unknown_tickets: spec.unknown_tickets,
        holder_proof: spec.holder_proof,
        tier_gates: Vec::new(),
        end_grace_secs: 0,
        undo_window_secs: 0,
    };
    super::rules::apply(&mut cached, &spec.rules());
    let recorded = organizer_wallet.unwrap_or_else(|| pubkey_bytes(&organizer));
    state.publish_event(&cached, &recorded).await?;
    Ok(cached)
}

/// The credential the server issues for `ticket`.
pub fn credential_for(
    state: &Services,
    ticket: &CachedTicket,
) -> Result<Credential, OrganizerError> {
    let ctx = chain_of(state)?;
    Ok(Credential::issue(
        CredentialBody {
            event_id: ticket.event_id,
            ticket_id: ticket.ticket_id,
            tier: ticket.tier,
            owner: ticket.owner,
            generation: ticket.generation,
        },
        &ctx.issuer,
    ))
}

/// Revokes a ticket on chain (refunding an on-chain price to its holder)
/// and tells the gates, which refuse it from then on.
pub async fn revoke_ticket(
    state: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, OrganizerError> {
    let ctx = chain_of(state)?;
    state
        .store
        .event_chain(event_id)
        .await?
        .ok_or(OrganizerError::UnknownEvent(event_id))?;
    let organizer = ctx.authority.pubkey();
    let event_address = ticketing::client::event_address(&organizer, event_id).0;
    let ticket = ops::tickets(ctx.chain.as_ref(), &event_address, &[ticket_id])
        .await?
        .pop()
        .flatten()
        .ok_or_else(|| OrganizerError::Invalid(format!("no ticket {ticket_id} on chain")))?;
    if ticket.status == ticketing::client::TicketStatus::Active
        || ticket.status == ticketing::client::TicketStatus::Frozen
    {
        ops::send(
            ctx.chain.as_ref(),
            &ctx.authority,
            &[ticketing::client::revoke_ticket(
                &organizer,
                &event_address,
                ticket_id,
                &ticket.owner,
            )],
            &[],
        )
        .await?;
    }
    read_and_publish(state, ctx, event_id, &[ticket_id])
        .await?
        .pop()
        .ok_or_else(|| OrganizerError::Invalid(format!("no ticket {ticket_id}")))
}

/// Reads tickets from chain again and publishes what changed there (a
/// holder's transfer, which needs no server, gives the ticket a new owner and
/// generation; gates then refuse the old owner's code). Returns the tickets
/// as they are now.
pub async fn refresh_tickets(
    state: &Services,
    event_id: u64,
    ticket_ids: &[u32],
) -> Result<Vec<CachedTicket>, OrganizerError> {
    let ctx = chain_of(state)?;
    state
        .store
        .event_chain(event_id)
        .await?
        .ok_or(OrganizerError::UnknownEvent(event_id))?;
    read_and_publish(state, ctx, event_id, ticket_ids).await
}

/// Reads tickets from chain and publishes them as they are there.
async fn read_and_publish(
    state: &Services,
    ctx: &ChainContext,
    event_id: u64,
    ids: &[u32],
) -> Result<Vec<CachedTicket>, OrganizerError> {
    let mut out = Vec::with_capacity(ids.len());
    for (id, ticket) in read_tickets(ctx, event_id, ids).await? {
        out.push(ticket.ok_or_else(|| {
            OrganizerError::Chain(ChainError::Refused(format!(
                "ticket {id} is not on chain after minting"
            )))
        })?);
    }
    state.publish_tickets(&out).await?;
    Ok(out)
}

/// Tickets as the chain has them, `None` where an id has no account.
async fn read_tickets(
    ctx: &ChainContext,
    event_id: u64,
    ids: &[u32],
) -> Result<Vec<(u32, Option<CachedTicket>)>, OrganizerError> {
    let event_address = ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(100) {
        let on_chain = ops::tickets(ctx.chain.as_ref(), &event_address, chunk).await?;
        for (id, ticket) in chunk.iter().zip(on_chain) {
            out.push((
                *id,
                ticket.map(|ticket| CachedTicket {
                    event_id,
                    ticket_id: *id,
                    tier: ticket.tier,
                    owner: pubkey_bytes(&ticket.owner),
                    generation: ticket.generation,
                    status: match ticket.status {
                        ticketing::client::TicketStatus::Active => TicketStatus::Active,
                        ticketing::client::TicketStatus::Frozen => TicketStatus::Frozen,
                        ticketing::client::TicketStatus::Revoked => TicketStatus::Revoked,
                        ticketing::client::TicketStatus::Refunded => TicketStatus::Refunded,
                    },
                }),
            ));
        }
    }
    Ok(out)
}

/// Repairs the database from the chain for every event this server created
/// ([`reconcile_event`]). Returns how many tickets were published.
pub async fn reconcile(state: &Services) -> Result<usize, OrganizerError> {
    let mut repaired = 0;
    for row in state.store.event_chains().await? {
        repaired += reconcile_event(state, row.event_id).await?;
    }
    Ok(repaired)
}

/// Publishes every ticket of `event_id` the chain has and the database does
/// not: each id below the event's `minted` counter is looked up, so holes
/// (a ticket of a later mint known, one of an earlier mint cut off by a
/// crash) are found too. Returns how many were published.
pub async fn reconcile_event(state: &Services, event_id: u64) -> Result<usize, OrganizerError> {
    let ctx = chain_of(state)?;
    let Some(event) = ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id).await?
    else {
        return Ok(0);
    };
    let known: std::collections::HashSet<u32> = state
        .store
        .known_ticket_ids(event_id)
        .await?
        .into_iter()
        .collect();
    let missing: Vec<u32> = (0..event.minted).filter(|id| !known.contains(id)).collect();
    if missing.is_empty() {
        return Ok(0);
    }
    // A ticket closed on chain has no account any more: nothing to publish.
    let found: Vec<CachedTicket> = read_tickets(ctx, event_id, &missing)
        .await?
        .into_iter()
        .filter_map(|(_, ticket)| ticket)
        .collect();
    if !found.is_empty() {
        tracing::warn!(
            event = event_id,
            count = found.len(),
            "tickets on chain but not in the database; publishing them"
        );
        state.publish_tickets(&found).await?;
    }
    Ok(found.len())
}

/// The event account of `event_id` as the chain has it now: not found when
/// it is not there, unavailable without a chain or when the chain does not
/// answer.
pub async fn event_on_chain(
    services: &Services,
    event_id: u64,
) -> Result<ticketing::client::Event, super::ServiceError> {
    let ctx = services
        .chain
        .as_ref()
        .ok_or_else(|| super::ServiceError::ChainUnavailable("no chain configured".into()))?;
    ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
        .await
        .map_err(OrganizerError::from)?
        .ok_or_else(|| super::ServiceError::NotFound(format!("event {event_id} is not on chain")))
}
