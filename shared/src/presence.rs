//! Where a holder is, pieced together from scans: the one presence fold.
//!
//! Two parties keep presence. The sync server sees every gate's scans of a
//! ticket and folds them in scan-time order ([`fold`], independent of the
//! order they arrive in): that gives where the
//! holder is, how often they were admitted, and which admissions happened
//! while they were already inside (conflicts, e.g. two gates offline). A gate
//! sees only its own scans, so it takes the server's view when that is newer
//! than its own ([`merge`]). Both rules live here so the server and the gates
//! cannot drift apart; neither does any I/O.

use uuid::Uuid;

use crate::UnixSeconds;
use crate::admission::{Direction, Presence, TicketState};
use crate::wire::{PresenceUpdate, UndoneAdmission};

/// One gate-opening scan of a ticket, as the fold needs it. Refused scans
/// never change presence and are not fed to the fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningScan {
    pub scan_id: Uuid,
    pub gate: u32,
    pub direction: Direction,
    /// When the gate decided, in Unix milliseconds of the gate's clock.
    pub at_ms: i64,
    /// An admission the gate undid (the holder did not pass): it counts as a
    /// scan the fold has seen, and moves nobody.
    pub voided: bool,
}

/// What of the event's rules the fold needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldRules {
    /// The event lets a holder recorded inside in again without an exit
    /// scan ([`crate::ReentryPolicy::Allowed`]): such an entry is a
    /// re-entry, not a conflict.
    pub entry_while_inside_allowed: bool,
}

impl FoldRules {
    pub fn for_reentry(reentry: &crate::ReentryPolicy) -> Self {
        Self {
            entry_while_inside_allowed: reentry.admits_while_inside(),
        }
    }
}

impl OpeningScan {
    /// The fold's order: scan time (milliseconds), then gate, then scan id.
    /// Total, since scan ids are unique, so every party that folds the same
    /// scans walks them in the same order, whatever order they arrived in.
    pub fn order_key(&self) -> (i64, u32, Uuid) {
        (self.at_ms, self.gate, self.scan_id)
    }
}

/// What the fold says about one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanMark {
    pub scan_id: Uuid,
    /// For an entry made while the holder was already inside: the scan that
    /// let them in. `None` for exits and for entries of someone outside.
    pub conflict_of: Option<Uuid>,
    /// An exit of someone who was not inside (no recorded entry since their
    /// last exit): an incident to show, which moves nobody.
    pub unmatched_exit: bool,
}

/// Where and when the last scan the fold walked was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastScan {
    pub gate: u32,
    pub at_ms: i64,
}

/// One ticket's scans folded: where the holder is now, and each scan's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceFold {
    /// After the last entry or matched exit: inside or outside since it, at
    /// its gate. `NeverEntered` while no entry was recorded.
    pub presence: Presence,
    /// Entries that opened the gate, conflicting ones included.
    pub entries: u32,
    /// Distinct scans folded (repeats of one scan id count once). Only grows
    /// as scans arrive, which is what the chain's record keys on.
    pub scans: u32,
    /// The last scan in fold order, unmatched exits included; `None` without
    /// scans.
    pub last: Option<LastScan>,
    /// One per distinct scan, in fold order.
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

    /// The exits of someone who was not inside.
    pub fn unmatched_exits(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.marks
            .iter()
            .filter(|m| m.unmatched_exit)
            .map(|m| m.scan_id)
    }

    /// Whether the holder is inside after the last scan.
    pub fn inside(&self) -> bool {
        matches!(self.presence, Presence::Inside { .. })
    }
}

/// Folds one ticket's gate-opening scans, in any order and with repeats:
/// the scans are walked in [`OpeningScan::order_key`] order and a scan id
/// seen twice counts once, so the result depends only on the set of scans.
///
/// The rules:
/// - a voided admission (undone at its gate) counts in `scans` and `last`
///   and changes nothing else;
/// - an entry while the holder is inside is a conflict, marked with the scan
///   that let them in (the first admission since their last exit, so a third
///   entry points at the first admission too, not at the second);
/// - an exit takes an inside holder outside; an exit of someone not inside
///   (never entered, or already out) is marked `unmatched_exit` and changes
///   nothing, so it can never lock a holder out;
/// - the holder ends inside or outside as the last entry or matched exit
///   says, since that scan's time (whole seconds, rounded down) and at its
///   gate; every entry (conflicts included) counts toward `entries`.
///
/// # Calling it over database rows
/// Select a batch of tickets' opening scans ordered by ticket, turn each row
/// into `(ticket_id, OpeningScan)`, and fold each ticket's run of rows:
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
    fold_under(scans, FoldRules::default())
}

/// [`fold`] under the event's rules: where re-entry without an exit scan is
/// allowed, an entry while inside is a re-entry rather than a conflict.
pub fn fold_under<'a, I>(scans: I, rules: FoldRules) -> PresenceFold
where
    I: IntoIterator<Item = &'a OpeningScan>,
{
    let mut ordered: Vec<&OpeningScan> = scans.into_iter().collect();
    ordered.sort_by_key(|scan| scan.order_key());
    ordered.dedup_by_key(|scan| scan.scan_id);
    let mut folded = PresenceFold {
        presence: Presence::NeverEntered,
        entries: 0,
        scans: u32::try_from(ordered.len()).unwrap_or(u32::MAX),
        last: ordered.last().map(|scan| LastScan {
            gate: scan.gate,
            at_ms: scan.at_ms,
        }),
        marks: Vec::with_capacity(ordered.len()),
    };
    // The scan that let the holder in, while they are inside.
    let mut admitted_by: Option<Uuid> = None;
    for scan in ordered {
        let since: UnixSeconds = scan.at_ms.div_euclid(1000);
        let gate = scan.gate;
        let mut mark = ScanMark {
            scan_id: scan.scan_id,
            conflict_of: None,
            unmatched_exit: false,
        };
        match scan.direction {
            _ if scan.voided => {}
            Direction::Exit if admitted_by.is_some() => {
                admitted_by = None;
                folded.presence = Presence::Outside { since, gate };
            }
            Direction::Exit => mark.unmatched_exit = true,
            Direction::Entry => {
                folded.entries = folded.entries.saturating_add(1);
                folded.presence = Presence::Inside { since, gate };
                match admitted_by {
                    Some(_) if rules.entry_while_inside_allowed => {
                        admitted_by = Some(scan.scan_id);
                    }
                    Some(first) => mark.conflict_of = Some(first),
                    None => admitted_by = Some(scan.scan_id),
                }
            }
        }
        folded.marks.push(mark);
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

/// Forgets an admission that its gate undid, if this party still places the
/// holder inside by it; otherwise merges the server's view as [`merge`]
/// does. Returns whether `state` changed.
///
/// A gate that heard of the admission from the server holds "inside since
/// `since` at `gate`", newer than the server's view without it, which
/// [`merge`] would never take. Only that exact state is replaced (by the
/// server's view, and one admission fewer), so a later move recorded here
/// or heard since is kept, and applying the notice twice changes nothing.
pub fn forget_undone(state: &mut TicketState, undone: &UndoneAdmission) -> bool {
    let by_undone = Presence::Inside {
        since: undone.since,
        gate: undone.gate,
    };
    if state.presence != by_undone {
        return merge(state, &undone.now);
    }
    state.presence = undone.now.presence;
    state.entries = state.entries.saturating_sub(1).max(undone.now.entries);
    true
}
