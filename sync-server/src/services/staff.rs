//! Who may act for an event. Its organizer (or the holder of the admin
//! token) manages it: rules, validators, incidents. The wallets its organizer
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

/// Takes `wallet`'s assignment back; not found when it had none.
pub async fn unassign(
    services: &Services,
    event_id: u64,
    wallet: &PublicKeyBytes,
) -> Result<(), ServiceError> {
    if services.store.unassign_validator(event_id, wallet).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "{} is not a validator of event {event_id}",
            wallet.to_base58()
        )))
    }
}

/// The wallets assigned to validate `event_id`.
pub async fn validators(
    services: &Services,
    event_id: u64,
) -> Result<Vec<ValidatorAssignment>, ServiceError> {
    Ok(services.store.validators(event_id).await?)
}
