use anchor_lang::prelude::*;

use crate::constants::{MAX_ENTRY_RECORDS, MAX_SCAN_CLOCK_SKEW};
use crate::error::TicketingError;
use crate::state::{Event, Ticket};

/// One ticket's gate scans as the sync server folded them (`shared::presence::fold` over
/// every admitted scan it holds of the ticket), replayed on chain. Its ticket is the remaining
/// account at the same position. Compact on purpose: 15 bytes per record.
///
/// The record carries the fold's result rather than one scan, so the chain ends equal to the
/// fold whatever order the gates' journals reached the server in.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, PartialEq, Eq, Debug)]
pub struct EntryRecord {
    /// Distinct scans folded. Applied only when more than the ticket's `scans_applied`:
    /// a retried or older (smaller) fold changes nothing.
    pub scans: u16,
    /// Entries that opened a gate, conflicting ones included.
    pub entries: u16,
    /// Inside after the last scan.
    pub inside: bool,
    /// Gate and time (unix milliseconds, the gate's clock) of the last scan folded.
    pub gate: u16,
    pub at_ms: i64,
}

#[event]
pub struct EntryRecorded {
    pub ticket: Pubkey,
    pub scans: u16,
    pub entries: u16,
    pub inside: bool,
    pub gate: u16,
    pub at_ms: i64,
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
    let latest_accepted_ms = Clock::get()?
        .unix_timestamp
        .saturating_add(MAX_SCAN_CLOCK_SKEW)
        .saturating_mul(1000);
    let mut applied: u16 = 0;
    for (record, account) in records.iter().zip(ctx.remaining_accounts) {
        require_keys_eq!(*account.owner, crate::ID, TicketingError::WrongAccount);
        require!(account.is_writable, TicketingError::WrongAccount);
        let mut ticket = Ticket::try_deserialize(&mut &account.try_borrow_data()?[..])?;
        require!(
            ticket.belongs_to(account.key, &event_key),
            TicketingError::WrongEvent
        );
        if !apply(&mut ticket, record, latest_accepted_ms) {
            continue;
        }
        let mut data = account.try_borrow_mut_data()?;
        let mut writer: &mut [u8] = &mut data;
        ticket.try_serialize(&mut writer)?;
        applied = applied.checked_add(1).ok_or(TicketingError::Overflow)?;
        emit!(EntryRecorded {
            ticket: account.key(),
            scans: record.scans,
            entries: record.entries,
            inside: record.inside,
            gate: record.gate,
            at_ms: record.at_ms,
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

/// Applies `record` if it folded more scans than the one applied last and its last scan is not
/// later than `latest_accepted_ms` (the cluster clock plus the allowed gate clock skew, in
/// milliseconds); returns whether it did. The chain records what happened at the gates,
/// whatever the ticket's status: the gates decided offline, and disagreements are the sync
/// server's conflicts and incidents to show.
pub fn apply(ticket: &mut Ticket, record: &EntryRecord, latest_accepted_ms: i64) -> bool {
    if record.scans <= ticket.scans_applied || record.at_ms > latest_accepted_ms {
        return false;
    }
    ticket.scans_applied = record.scans;
    ticket.entry_count = record.entries;
    ticket.entered = record.entries > 0;
    ticket.inside = record.inside;
    ticket.last_gate = record.gate;
    ticket.last_scan_at_ms = record.at_ms;
    true
}
