use anchor_lang::prelude::*;

use crate::constants::{MAX_ENTRY_RECORDS, MAX_SCAN_CLOCK_SKEW};
use crate::error::TicketingError;
use crate::state::{Event, Ticket};

/// One scan recorded by a gate, replayed on chain. Its ticket is the remaining account at the
/// same position. Compact on purpose: 11 bytes per record.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct EntryRecord {
    /// Scan time at the gate (unix seconds). A record is applied only if it is newer than the
    /// ticket's `last_scan_at`; anything else is an already-applied or stale record and is
    /// skipped, so retries never double-count.
    pub at: i64,
    pub gate: u16,
    pub kind: EntryKind,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub enum EntryKind {
    Entry,
    Exit,
}

#[event]
pub struct EntryRecorded {
    pub ticket: Pubkey,
    pub at: i64,
    pub gate: u16,
    pub kind: EntryKind,
}

#[event]
pub struct EntriesReplayed {
    pub event: Pubkey,
    pub applied: u16,
    pub skipped: u16,
}

/// An authorized validator (the sync server's replay key) records many scans at once.
/// Remaining accounts: the ticket of each record, in order, writable.
#[derive(Accounts)]
pub struct ValidateEntries<'info> {
    pub validator: Signer<'info>,
    #[account(
        constraint = event.is_validator(&validator.key()) @ TicketingError::UnauthorizedValidator,
        constraint = !event.is_cancelled() @ TicketingError::EventCancelled,
    )]
    pub event: Account<'info, Event>,
}

pub(crate) fn handler<'info>(
    ctx: Context<'info, ValidateEntries<'info>>,
    records: Vec<EntryRecord>,
) -> Result<()> {
    require!(
        records.len() <= MAX_ENTRY_RECORDS,
        TicketingError::BatchTooLarge
    );
    require!(
        records.len() == ctx.remaining_accounts.len(),
        TicketingError::AccountsMismatch
    );
    let event_key = ctx.accounts.event.key();
    let latest_accepted = Clock::get()?
        .unix_timestamp
        .saturating_add(MAX_SCAN_CLOCK_SKEW);
    let mut applied: u16 = 0;
    for (record, account) in records.iter().zip(ctx.remaining_accounts) {
        require_keys_eq!(*account.owner, crate::ID, TicketingError::WrongAccount);
        require!(account.is_writable, TicketingError::WrongAccount);
        let mut ticket = Ticket::try_deserialize(&mut &account.try_borrow_data()?[..])?;
        require!(
            ticket.belongs_to(account.key, &event_key),
            TicketingError::WrongEvent
        );
        if !apply(&mut ticket, record, latest_accepted)? {
            continue;
        }
        let mut data = account.try_borrow_mut_data()?;
        let mut writer: &mut [u8] = &mut data;
        ticket.try_serialize(&mut writer)?;
        applied = applied.checked_add(1).ok_or(TicketingError::Overflow)?;
        emit!(EntryRecorded {
            ticket: account.key(),
            at: record.at,
            gate: record.gate,
            kind: record.kind,
        });
    }
    let total = u16::try_from(records.len()).map_err(|_| TicketingError::Overflow)?;
    emit!(EntriesReplayed {
        event: event_key,
        applied,
        skipped: total.saturating_sub(applied),
    });
    Ok(())
}

/// Applies `record` if it is newer than the last one applied and not later than
/// `latest_accepted` (the cluster clock plus the allowed gate clock skew); returns whether it did.
/// The chain records what happened at the gate, whatever the ticket's status: the gate
/// decided offline, and disagreements are the sync server's conflicts to show.
pub fn apply(ticket: &mut Ticket, record: &EntryRecord, latest_accepted: i64) -> Result<bool> {
    if record.at <= ticket.last_scan_at || record.at > latest_accepted {
        return Ok(false);
    }
    ticket.last_scan_at = record.at;
    ticket.last_gate = record.gate;
    match record.kind {
        EntryKind::Entry => {
            ticket.entered = true;
            ticket.inside = true;
            ticket.entry_count = ticket
                .entry_count
                .checked_add(1)
                .ok_or(TicketingError::Overflow)?;
        }
        EntryKind::Exit => ticket.inside = false,
    }
    Ok(true)
}
