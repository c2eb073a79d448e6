use anchor_lang::prelude::*;

use crate::error::TicketingError;
use crate::instructions::ManageEvent;

pub(crate) fn handler(ctx: Context<ManageEvent>, validator: Pubkey) -> Result<()> {
    let validators = &mut ctx.accounts.event.validators;
    let index = validators
        .iter()
        .position(|key| *key == validator)
        .ok_or(TicketingError::ValidatorNotFound)?;
    validators.remove(index);
    Ok(())
}
