//! The replay round's decisions, without I/O: given the waiting scans, each
//! of their tickets' fold and what the chain holds, which tickets are
//! already recorded, which can never go on chain, which wait for a later
//! round, and how the rest are packed into transactions.
//!
//! A ticket goes on chain as one record: the fold of every admitted scan the
//! server holds of it (`shared::presence::fold`). The program applies a
//! record only if it folded more scans than the last one it applied, so the
//! chain ends equal to the fold whatever order the scans arrived in, and a
//! record sent twice changes nothing.

use std::collections::HashMap;

use shared::presence::PresenceFold;
use ticketing::client::EntryRecord;

use crate::store::PendingScan;

/// One ticket in a transaction: its record and the waiting scans it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketRecord<'a> {
    pub ticket_id: u32,
    pub record: EntryRecord,
    pub scans: Vec<&'a PendingScan>,
}

/// One transaction's records, one per ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayBatch<'a> {
    pub tickets: Vec<TicketRecord<'a>>,
}

impl ReplayBatch<'_> {
    /// The instruction's records, each with its ticket.
    pub fn records(&self) -> Vec<(u32, EntryRecord)> {
        self.tickets
            .iter()
            .map(|t| (t.ticket_id, t.record))
            .collect()
    }

    /// The waiting scans the transaction records.
    pub fn scan_ids(&self) -> Vec<String> {
        self.tickets
            .iter()
            .flat_map(|t| t.scans.iter().map(|s| s.scan_id.clone()))
            .collect()
    }
}

/// What a round does with its waiting scans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundPlan<'a> {
    /// The chain's record of the ticket already folds at least these scans
    /// (a transaction that landed without the database hearing of it, or a
    /// scan that arrived while its ticket's fuller record was on its way).
    pub on_chain: Vec<String>,
    /// Its ticket does not exist on chain.
    pub missing: Vec<String>,
    /// Its ticket has more scans than a record can count.
    pub too_many: Vec<String>,
    /// Left waiting for a later round: the ticket's last scan is beyond
    /// what the chain accepts now (a gate clock running ahead).
    pub held_back: Vec<String>,
    /// Transactions to send, in this order.
    pub batches: Vec<ReplayBatch<'a>>,
}

/// The record of a ticket whose admitted scans folded to `folded`; `None`
/// without scans or when the counts do not fit the record.
pub fn record_of(folded: &PresenceFold) -> Option<EntryRecord> {
    let last = folded.last?;
    Some(EntryRecord {
        scans: u16::try_from(folded.scans).ok()?,
        entries: u16::try_from(folded.entries).ok()?,
        inside: folded.inside(),
        gate: u16::try_from(last.gate).unwrap_or(u16::MAX),
        at_ms: last.at_ms,
    })
}

/// Plans one round. `waiting` are the scans to record, grouped by ticket
/// (as [`crate::store::Store::pending_replay`] returns them); `folds` each
/// of their tickets' fold over every admitted scan the server holds;
/// `applied` the scans the chain's record of each ticket folded (`None` for
/// a ticket the chain does not have); `latest_allowed_ms` the latest scan
/// time the program accepts now; `batch_max` records per transaction.
///
/// A ticket whose earlier transaction failed goes in a transaction of its
/// own, so it cannot hold back others.
pub fn plan_round<'a>(
    waiting: &[&'a PendingScan],
    folds: &HashMap<u32, PresenceFold>,
    applied: &HashMap<u32, Option<u16>>,
    latest_allowed_ms: i64,
    batch_max: usize,
) -> RoundPlan<'a> {
    let mut plan = RoundPlan::default();
    let mut batch: Vec<TicketRecord<'a>> = Vec::new();
    for run in waiting.chunk_by(|a, b| a.ticket_id == b.ticket_id) {
        let ticket_id = run[0].ticket_id;
        let ids = || run.iter().map(|s| s.scan_id.clone());
        let Some(Some(applied)) = applied.get(&ticket_id).copied() else {
            plan.missing.extend(ids());
            continue;
        };
        let Some(folded) = folds.get(&ticket_id) else {
            // Its scans were not read with the fold (they cannot be waiting
            // without an admitted scan): judged again next round.
            plan.held_back.extend(ids());
            continue;
        };
        let Some(record) = record_of(folded) else {
            plan.too_many.extend(ids());
            continue;
        };
        if record.scans <= applied {
            plan.on_chain.extend(ids());
            continue;
        }
        if record.at_ms > latest_allowed_ms {
            plan.held_back.extend(ids());
            continue;
        }
        let ticket = TicketRecord {
            ticket_id,
            record,
            scans: run.to_vec(),
        };
        if run.iter().any(|s| s.error.is_some()) {
            plan.batches.push(ReplayBatch {
                tickets: vec![ticket],
            });
            continue;
        }
        if batch.len() == batch_max.max(1) {
            plan.batches.push(ReplayBatch {
                tickets: std::mem::take(&mut batch),
            });
        }
        batch.push(ticket);
    }
    if !batch.is_empty() {
        plan.batches.push(ReplayBatch { tickets: batch });
    }
    plan
}

#[cfg(test)]
#[path = "plan_table.rs"]
mod plan_table;
