//! Who may act for an event. Its organizer (or the holder of the admin
//! token) manages it: rules, validators (also taken off the event's list on
//! chain), incidents. The wallets its organizer
//! assigns validate (scan) its tickets, and so does the organizer; nobody
//! else may write scans into it.

use shared::PublicKeyBytes;

use super::auth::Role;
use super::{ServiceError, Services, events};
use crate::store::ValidatorAssignment;

/// Who asks to manage an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager<'a> {
    /// The holder of the configured admin token.
    Admin,
    /// A logged-in wallet with the organizer role.
    Organizer(&'a PublicKeyBytes),
}

/// Refuses anyone but the event's organizer and the admin; not found for an
/// unknown event.
pub async fn require_manager(
    services: &Services,
    manager: Manager<'_>,
    event_id: u64,
) -> Result<(), ServiceError> {
    match manager {
        Manager::Admin => {
            events::organizer_of(services, event_id).await?;
            Ok(())
        }
        Manager::Organizer(wallet) => events::require_organizer(services, wallet, event_id).await,
    }
}

/// Refuses a wallet that may not validate `event_id`: only the event's
/// organizer (with the organizer role) and the wallets it assigned may.
/// Not found for an unknown event.
pub async fn require_validator(
    services: &Services,
    wallet: &PublicKeyBytes,
    role: Role,
    event_id: u64,
) -> Result<(), ServiceError> {
    let organizer = events::organizer_of(services, event_id).await?;
    if role == Role::Organizer && organizer == *wallet {
        return Ok(());
    }
    if services.store.is_validator(event_id, wallet).await? {
        return Ok(());
    }
    Err(ServiceError::Forbidden(
        "this wallet may not validate this event: its organizer assigns validators",
    ))
}

/// Lets `wallet` validate `event_id` (assigning it again changes nothing).
pub async fn assign(
    services: &Services,
    event_id: u64,
    wallet: &PublicKeyBytes,
) -> Result<ValidatorAssignment, ServiceError> {
    Ok(services
        .store
        .assign_validator(event_id, wallet, services.clock.now())
        .await?)
}

/// Takes `wallet`'s assignment back, and its key off the event's validator
/// list on chain when the chain lists it (`remove_validator`; it can record
/// entries no more). Not found when it was neither assigned nor listed.
pub async fn unassign(
    services: &Services,
    event_id: u64,
    wallet: &PublicKeyBytes,
) -> Result<(), ServiceError> {
    let listed = remove_on_chain(services, event_id, wallet).await?;
    if services.store.unassign_validator(event_id, wallet).await? || listed {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "{} is not a validator of event {event_id}",
            wallet.to_base58()
        )))
    }
}

/// Removes `wallet` from the validators of the event on chain; `false` when
/// the chain does not list it (or the server has no chain, or did not create
/// the event). The key the server records the event's entries with is
/// refused, and so is any change to a cancelled event (the program allows
/// none).
async fn remove_on_chain(
    services: &Services,
    event_id: u64,
    wallet: &PublicKeyBytes,
) -> Result<bool, ServiceError> {
    use solana_sdk::pubkey::Pubkey;
    use solana_sdk::signature::Signer;

    use super::organizer::OrganizerError;
    use crate::chain::ops;

    let (Some(ctx), Some(row)) = (&services.chain, services.store.event_chain(event_id).await?)
    else {
        return Ok(false);
    };
    let organizer = ctx.authority.pubkey();
    let key = Pubkey::new_from_array(wallet.0);
    let Some(event) = ops::event(ctx.chain.as_ref(), &organizer, event_id)
        .await
        .map_err(OrganizerError::from)?
    else {
        return Ok(false);
    };
    if !event.is_validator(&key) {
        return Ok(false);
    }
    if row.validator_public == key.to_string() {
        return Err(ServiceError::Conflict(
            "this is the key the server records the event's entries with".into(),
        ));
    }
    if event.is_cancelled() {
        return Err(ServiceError::Conflict(
            "the event is cancelled: its validators can no longer change".into(),
        ));
    }
    let address = ticketing::client::event_address(&organizer, event_id).0;
    ops::send(
        ctx.chain.as_ref(),
        &ctx.authority,
        &[ticketing::client::remove_validator(
            &organizer, &address, &key,
        )],
        &[],
    )
    .await
    .map_err(OrganizerError::from)?;
    Ok(true)
}

/// The wallets assigned to validate `event_id`.
pub async fn validators(
    services: &Services,
    event_id: u64,
) -> Result<Vec<ValidatorAssignment>, ServiceError> {
    Ok(services.store.validators(event_id).await?)
}
