//! Organizer mints (one ticket, a batch, the admin API): all or nothing.
//!
//! Seats are taken in the database first, for the whole request or none,
//! so a buyer who is paying keeps the seat they hold. The chain then mints
//! in several transactions; if it fails part way, the seats of tickets
//! never minted go back on sale and the tickets this request did mint are
//! revoked on chain (void at every gate, their seats stay sold: the chain
//! counts them), so a request never half-succeeds.

use solana_sdk::pubkey::Pubkey;

use super::organizer::{self, IssuedTicket};
use super::{ServiceError, Services, inventory};

/// The index of the first of `tiers` the event does not have on chain.
pub async fn unknown_tier(
    services: &Services,
    event_id: u64,
    tiers: impl IntoIterator<Item = u8>,
) -> Result<Option<usize>, ServiceError> {
    let on_chain = organizer::event_on_chain(services, event_id).await?;
    Ok(tiers
        .into_iter()
        .position(|tier| usize::from(tier) >= on_chain.tiers.len()))
}

/// Mints one ticket per `(wallet, tier)`, in that order, publishes them to
/// the gates and returns them with their QR credentials; see the module
/// doc for what a failure leaves behind.
pub async fn mint(
    services: &Services,
    event_id: u64,
    recipients: &[(Pubkey, u8)],
) -> Result<Vec<IssuedTicket>, ServiceError> {
    let seats = inventory::seats_of(recipients.iter().map(|(_, tier)| *tier));
    inventory::take_now(services, event_id, &seats).await?;
    let mut landed: Vec<u32> = Vec::new();
    let outcome = organizer::mint_tickets(services, event_id, recipients, |ids| {
        landed.extend_from_slice(ids)
    })
    .await;
    match outcome {
        Ok(issued) => Ok(issued),
        Err(error) => {
            undo(services, event_id, recipients, &landed).await;
            Err(error.into())
        }
    }
}

/// Gives back the seats of the recipients after the `landed` ones (tickets
/// land in the recipients' order) and voids the landed tickets. Failures
/// are logged: the caller is already answering the mint's error.
async fn undo(services: &Services, event_id: u64, recipients: &[(Pubkey, u8)], landed: &[u32]) {
    let unminted = inventory::seats_of(recipients.iter().skip(landed.len()).map(|(_, tier)| *tier));
    if !unminted.is_empty() {
        inventory::release_now(services, event_id, &unminted).await;
    }
    for &ticket_id in landed {
        if let Err(e) = organizer::revoke_ticket(services, event_id, ticket_id).await {
            tracing::error!(event = event_id, ticket_id, error = %e,
                "could not void a ticket of a failed mint; revoke it by hand");
        }
    }
}
