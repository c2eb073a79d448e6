//! Where a holder is, pieced together from scans: the one presence fold.
//!
//! Two parties keep presence. The sync server sees every gate's scans of a
//! ticket and folds them in scan-time order ([`fold`]): that gives where the
//! holder is, how often they were admitted, and which admissions happened
//! while they were already inside (conflicts, e.g. two gates offline). A gate
//! sees only its own scans, so it takes the server's view when that is newer
//! than its own ([`merge`]). Both rules live here so the server and the gates
//! cannot drift apart; neither does any I/O.

use uuid::Uuid;

use crate::UnixSeconds;
use crate::admission::{Direction, Presence, TicketState};
use crate::wire::PresenceUpdate;

/// One gate-opening scan of a ticket, as the fold needs it. Refused scans
/// never change presence and are not fed to the fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningScan {
    pub scan_id: Uuid,
    pub gate: u32,
    pub direction: Direction,
    /// When the gate decided, in Unix milliseconds of the gate's clock.
    pub at_ms: i64,
}

/// What the fold says about one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanMark {
    pub scan_id: Uuid,
    /// For an entry made while the holder was already inside: the scan that
    /// let them in. `None` for exits and for entries of someone outside.
    pub conflict_of: Option<Uuid>,
}

/// One ticket's scans folded: where the holder is now, and each scan's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceFold {
    /// After the last scan: inside or outside since it, at its gate.
    /// `NeverEntered` only when there were no scans.
    pub presence: Presence,
    /// Entries that opened the gate, conflicting ones included.
    pub entries: u32,
    /// One per scan, in the order the scans came in.
    pub marks: Vec<ScanMark>,
}

impl PresenceFold {
    /// The scans that are conflicts (an entry while already inside).
    pub fn conflicts(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.marks
            .iter()
            .filter(|m| m.conflict_of.is_some())
            .map(|m| m.scan_id)
    }
}

/// Folds one ticket's gate-opening scans, which the caller passes in scan-time
/// order: by `at_ms`, ties broken by `scan_id`, so every run over the same
/// scans gives the same marks, however late a scan arrived.
///
/// The rules:
/// - an entry while the holder is inside is a conflict, marked with the scan
///   that let them in (the first admission since their last exit, so a third
///   entry points at the first admission too, not at the second);
/// - an exit takes them outside, whether or not they were inside;
/// - the holder ends inside or outside as the last scan says, since that
///   scan's time (whole seconds, rounded down) and at its gate; every entry
///   (conflicts included) counts toward `entries`.
///
/// # Calling it over database rows
/// Select a batch of tickets' opening scans ordered by
/// `(ticket_id, scanned_at_ms, scan_id)`, turn each row into
/// `(ticket_id, OpeningScan)`, and fold each ticket's run of rows:
///
/// ```
/// # use shared::presence::{OpeningScan, fold};
/// # let rows: Vec<(u32, OpeningScan)> = Vec::new();
/// for run in rows.chunk_by(|a, b| a.0 == b.0) {
///     let ticket_id = run[0].0;
///     let folded = fold(run.iter().map(|(_, scan)| scan));
///     for mark in &folded.marks {
///         // write `mark.conflict_of` on `mark.scan_id` where it changed
///     }
///     // store `folded.presence` and `folded.entries` as `ticket_id`'s presence
/// #   let _ = (ticket_id, folded);
/// }
/// ```
pub fn fold<'a, I>(scans: I) -> PresenceFold
where
    I: IntoIterator<Item = &'a OpeningScan>,
{
    let mut folded = PresenceFold {
        presence: Presence::NeverEntered,
        entries: 0,
        marks: Vec::new(),
    };
    // The scan that let the holder in, while they are inside.
    let mut admitted_by: Option<Uuid> = None;
    for scan in scans {
        let since: UnixSeconds = scan.at_ms.div_euclid(1000);
        let gate = scan.gate;
        let conflict_of = match scan.direction {
            Direction::Exit => {
                admitted_by = None;
                folded.presence = Presence::Outside { since, gate };
                None
            }
            Direction::Entry => {
                folded.entries = folded.entries.saturating_add(1);
                folded.presence = Presence::Inside { since, gate };
                match admitted_by {
                    Some(first) => Some(first),
                    None => {
                        admitted_by = Some(scan.scan_id);
                        None
                    }
                }
            }
        };
        folded.marks.push(ScanMark {
            scan_id: scan.scan_id,
            conflict_of,
        });
    }
    folded
}

/// Takes the server's view of where a holder is when it is newer than what
/// this party recorded itself; returns whether `state` changed.
///
/// "Newer" compares the time of the last move (inside or outside since);
/// anything beats never having entered. The entry count only grows: a gate
/// that admitted someone the server has not heard of yet keeps its count.
pub fn merge(state: &mut TicketState, update: &PresenceUpdate) -> bool {
    let since = |p: &Presence| match p {
        Presence::NeverEntered => i64::MIN,
        Presence::Inside { since, .. } | Presence::Outside { since, .. } => *since,
    };
    let mut changed = false;
    if since(&update.presence) > since(&state.presence) {
        state.presence = update.presence;
        changed = true;
    }
    if update.entries > state.entries {
        state.entries = update.entries;
        changed = true;
    }
    changed
}
