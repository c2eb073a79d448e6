use anchor_lang::prelude::*;

use crate::constants::MAX_VALIDATORS;
use crate::error::TicketingError;
use crate::instructions::ManageEvent;

/// Validators live in the event account rather than in one PDA each: `validate_entries` needs
/// the event anyway (status), so authorizing costs no extra account in the replay transaction,
/// which leaves room for more entries, and revoking takes effect immediately.
pub(crate) fn handler(ctx: Context<ManageEvent>, validator: Pubkey) -> Result<()> {
    let event = &mut ctx.accounts.event;
    require!(
        !event.is_validator(&validator),
        TicketingError::ValidatorAlreadyAuthorized
    );
    require!(
        event.validators.len() < MAX_VALIDATORS,
        TicketingError::TooManyValidators
    );
    event.validators.push(validator);
    Ok(())
}
