//! Claiming an email transfer with the code from its mail: the server signs
//! with the claim key the code stands for, and tells a lost race, a cancel
//! and an expiry apart by what the chain shows.

use shared::PublicKeyBytes;
use shared::wire::CachedTicket;
use solana_sdk::signature::Signer;

use super::{
    ClaimError, chain_of, delegation_and_ticket, event_address, instruction, pubkey_of, refreshed,
};
use crate::chain::{ChainError, ops};
use crate::services::organizer;
use crate::services::{ServiceError, Services};
use crate::store::TransferStatus;

/// Moves the ticket `code` stands for to `recipient`. The server signs
/// with the claim key and its authority (which pays the fee and the new
/// token account), so the recipient needs no SOL. Answers the ticket as it
/// is now.
pub async fn claim(
    services: &Services,
    recipient: &PublicKeyBytes,
    code: &str,
) -> Result<CachedTicket, ServiceError> {
    let ctx = chain_of(services)?;
    let claim_key = instruction::claim_key_of(code).ok_or(ClaimError::NotFound)?;
    let transfer = services
        .store
        .email_transfer(&claim_key.pubkey())
        .await?
        .ok_or(ClaimError::NotFound)?;
    match transfer.status {
        TransferStatus::Prepared => return Err(ClaimError::NotFound.into()),
        TransferStatus::Claimed => return Err(ClaimError::AlreadyClaimed.into()),
        TransferStatus::Cancelled => return Err(ClaimError::Cancelled.into()),
        TransferStatus::Expired => return Err(ClaimError::Expired.into()),
        TransferStatus::Open => {}
    }
    let recipient = pubkey_of(recipient);
    if recipient == transfer.sender {
        return Err(ServiceError::Conflict(
            "this wallet sent the ticket; cancel the transfer to keep it".into(),
        ));
    }
    let chain_now = ctx.chain.unix_time().await?;
    if chain_now >= transfer.expires_at {
        return Err(ClaimError::Expired.into());
    }
    let event = event_address(ctx, transfer.event_id);
    let standard = organizer::event_on_chain(services, transfer.event_id)
        .await?
        .token_standard;
    let instruction = ticketing::client::claim_email_transfer(
        &ctx.authority.pubkey(),
        &claim_key.pubkey(),
        &recipient,
        &transfer.sender,
        &event,
        transfer.ticket_id,
        standard,
    );
    let sent = ops::send(
        ctx.chain.as_ref(),
        &ctx.authority,
        &[instruction],
        &[&claim_key],
    )
    .await;
    if let Err(error) = sent {
        // Refused: maybe another claim won the race, or the transfer was
        // closed on chain; the chain tells which.
        if !matches!(error, ChainError::Refused(_)) {
            return Err(error.into());
        }
        let (delegation, ticket) = delegation_and_ticket(ctx, &event, transfer.ticket_id).await?;
        match (delegation, ticket) {
            (None, Some(ticket)) if ticket.owner == recipient => {
                // This very claim landed and its answer was lost.
            }
            (None, Some(ticket)) if ticket.owner != transfer.sender => {
                return Err(ClaimError::AlreadyClaimed.into());
            }
            (None, _) if chain_now >= transfer.expires_at => return Err(ClaimError::Expired.into()),
            (None, _) => return Err(ClaimError::Cancelled.into()),
            (Some(_), _) => return Err(error.into()),
        }
    }
    services
        .store
        .set_email_transfer_status(
            &transfer.claim_key,
            TransferStatus::Open,
            TransferStatus::Claimed,
            Some(&recipient),
            services.clock.now(),
        )
        .await?;
    refreshed(services, transfer.event_id, transfer.ticket_id).await
}

/// What a claim link stands for, shown before its recipient signs in.
#[derive(Debug, Clone)]
pub struct ClaimPreview {
    pub event_id: u64,
    pub ticket_id: u32,
    /// `Wallet AbCd...WxYz`.
    pub sender: String,
    /// On the chain's clock.
    pub expires_at: i64,
    /// Whether it can be claimed now, and why not.
    pub claimable: Result<(), ClaimError>,
}

/// The transfer `code` stands for, and whether it can still be claimed
/// (judged like [`claim`] judges it, on the chain's clock when there is a
/// chain). Not found for a code that names no transfer.
pub async fn preview(services: &Services, code: &str) -> Result<ClaimPreview, ServiceError> {
    let claim_key = instruction::claim_key_of(code).ok_or(ClaimError::NotFound)?;
    let transfer = services
        .store
        .email_transfer(&claim_key.pubkey())
        .await?
        .ok_or(ClaimError::NotFound)?;
    let now = match services.chain.as_deref() {
        Some(ctx) => ctx.chain.unix_time().await?,
        None => services.clock.now(),
    };
    let claimable = match transfer.status {
        TransferStatus::Prepared => Err(ClaimError::NotFound),
        TransferStatus::Claimed => Err(ClaimError::AlreadyClaimed),
        TransferStatus::Cancelled => Err(ClaimError::Cancelled),
        TransferStatus::Expired => Err(ClaimError::Expired),
        TransferStatus::Open if now >= transfer.expires_at => Err(ClaimError::Expired),
        TransferStatus::Open => Ok(()),
    };
    Ok(ClaimPreview {
        event_id: transfer.event_id,
        ticket_id: transfer.ticket_id,
        sender: super::mail::short_wallet(&transfer.sender),
        expires_at: transfer.expires_at,
        claimable,
    })
}
