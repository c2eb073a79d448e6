//! The replay round's decisions, without I/O: given the waiting scans and
//! what the chain holds, which scans can never go on chain, which wait for a
//! later round, and how the rest are packed into transactions.

use std::collections::HashMap;

use ticketing::client::{EntryKind, EntryRecord};

use crate::store::PendingScan;

/// One transaction's records, whole tickets in scan-time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayBatch<'a> {
    pub entries: Vec<(&'a PendingScan, EntryRecord)>,
}

impl ReplayBatch<'_> {
    /// The instruction's records, each with its ticket.
    pub fn records(&self) -> Vec<(u32, EntryRecord)> {
        self.entries
            .iter()
            .map(|(s, r)| (s.ticket_id, *r))
            .collect()
    }

    pub fn scan_ids(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(s, _)| s.scan_id.clone())
            .collect()
    }
}

/// What a round does with its waiting scans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundPlan<'a> {
    /// Not newer than its ticket's last scan on chain: can never be applied.
    pub superseded: Vec<String>,
    /// Its ticket does not exist on chain.
    pub missing: Vec<String>,
    /// Left waiting for a later round: behind a scan whose gate clock runs
    /// ahead of the chain's, behind a scan that goes alone, or beyond what
    /// one transaction holds of its ticket.
    pub held_back: Vec<String>,
    /// Transactions to send, in this order.
    pub batches: Vec<ReplayBatch<'a>>,
}

/// The record the program gets for a scan.
pub fn record_of(scan: &PendingScan) -> EntryRecord {
    EntryRecord {
        at: scan.scanned_at_ms.div_euclid(1000),
        gate: u16::try_from(scan.gate).unwrap_or(u16::MAX),
        kind: if scan.exit {
            EntryKind::Exit
        } else {
            EntryKind::Entry
        },
    }
}

/// Where the judging of one ticket's scans stands.
#[derive(Clone, Copy)]
enum Ticket {
    /// Not on chain: all its scans are missing.
    Missing,
    /// Taking scans newer than `last`.
    Open { last: i64 },
    /// The rest of its scans wait for a later round.
    Stopped,
}

/// Plans one round. `waiting` are the scans to judge, per ticket in
/// scan-time order (as [`crate::store::Store::pending_replay`] returns
/// them); `last_on_chain` the chain's last recorded scan time per ticket
/// (`None` for a ticket the chain does not have); `latest_allowed` the
/// latest scan time the program accepts now; `batch_max` records per
/// transaction.
///
/// A ticket's scans are applied in order, so the first one that cannot go
/// now holds back the later ones; a scan whose transaction failed before
/// goes alone, and only as its ticket's first. Tickets are never split
/// across transactions.
pub fn plan_round<'a>(
    waiting: &[&'a PendingScan],
    last_on_chain: &HashMap<u32, Option<i64>>,
    latest_allowed: i64,
    batch_max: usize,
) -> RoundPlan<'a> {
    let mut plan = RoundPlan::default();
    // Per ticket, in order: the records that will be applied.
    let mut groups: Vec<Vec<(&'a PendingScan, EntryRecord)>> = Vec::new();
    let mut group = Vec::new();
    let mut current: Option<u32> = None;
    let mut ticket = Ticket::Stopped;
    for &scan in waiting {
        if current != Some(scan.ticket_id) {
            current = Some(scan.ticket_id);
            groups.push(std::mem::take(&mut group));
            ticket = match last_on_chain.get(&scan.ticket_id).copied().flatten() {
                None => Ticket::Missing,
                Some(last) => Ticket::Open { last },
            };
        }
        let last = match ticket {
            Ticket::Missing => {
                plan.missing.push(scan.scan_id.clone());
                continue;
            }
            Ticket::Stopped => {
                plan.held_back.push(scan.scan_id.clone());
                continue;
            }
            Ticket::Open { last } => last,
        };
        let record = record_of(scan);
        if record.at <= last {
            plan.superseded.push(scan.scan_id.clone());
            continue;
        }
        // Its gate's clock runs ahead; later scans of this ticket wait too.
        let ahead = record.at > latest_allowed;
        // A scan whose transaction failed before goes alone, and first.
        let not_alone = scan.error.is_some() && !group.is_empty();
        if ahead || not_alone {
            plan.held_back.push(scan.scan_id.clone());
            ticket = Ticket::Stopped;
            continue;
        }
        group.push((scan, record));
        ticket = if scan.error.is_some() {
            Ticket::Stopped
        } else {
            Ticket::Open { last: record.at }
        };
    }
    groups.push(group);
    plan.batches = pack(groups, batch_max, &mut plan.held_back);
    plan
}

/// Packs whole tickets into transactions of up to `batch_max` records; a
/// ticket with a previously failed scan gets a transaction of its own.
/// Records of a ticket beyond `batch_max` go to `held_back`.
fn pack<'a>(
    groups: Vec<Vec<(&'a PendingScan, EntryRecord)>>,
    batch_max: usize,
    held_back: &mut Vec<String>,
) -> Vec<ReplayBatch<'a>> {
    let mut batches = Vec::new();
    let mut batch: Vec<(&PendingScan, EntryRecord)> = Vec::new();
    for mut group in groups.into_iter().filter(|g| !g.is_empty()) {
        if group.len() > batch_max {
            held_back.extend(group.drain(batch_max..).map(|(s, _)| s.scan_id.clone()));
        }
        if group.iter().any(|(s, _)| s.error.is_some()) {
            batches.push(ReplayBatch { entries: group });
            continue;
        }
        if batch.len() + group.len() > batch_max {
            batches.push(ReplayBatch {
                entries: std::mem::take(&mut batch),
            });
        }
        batch.extend(group);
    }
    if !batch.is_empty() {
        batches.push(ReplayBatch { entries: batch });
    }
    batches
}

#[cfg(test)]
#[path = "plan_table.rs"]
mod plan_table;
