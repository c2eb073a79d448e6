use anchor_lang::prelude::*;

use crate::constants::EVENT_SEED;
use crate::state::{Event, EventParams, EventStatus};

#[derive(Accounts)]
#[instruction(event_id: u64)]
pub struct CreateEvent<'info> {
    #[account(mut)]
    pub organizer: Signer<'info>,
    #[account(
        init,
        payer = organizer,
        space = Event::SPACE,
        seeds = [EVENT_SEED, organizer.key().as_ref(), &event_id.to_le_bytes()],
        bump,
    )]
    pub event: Account<'info, Event>,
    pub system_program: Program<'info, System>,
}

pub(crate) fn handler(ctx: Context<CreateEvent>, event_id: u64, params: EventParams) -> Result<()> {
    let event = &mut ctx.accounts.event;
    event.organizer = ctx.accounts.organizer.key();
    event.event_id = event_id;
    event.bump = ctx.bumps.event;
    event.status = EventStatus::Active;
    event.minted = 0;
    event.open_tickets = 0;
    event.tiers = Vec::new();
    event.validators = Vec::new();
    event.proceeds = 0;
    event.apply_params(params)
}
