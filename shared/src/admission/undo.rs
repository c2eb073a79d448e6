//! The turnstile undo: voiding a gate's last admission when the holder did
//! not pass (the turnstile was not turned, or staff pressed undo), so the
//! ticket can be scanned again.
//!
//! The organizer sets a window per event ([`GatePolicy::undo_window_secs`],
//! 0 = off). Within it a gate may void its own last admission, once; after
//! it the admission stands. The gate journals the undo as a record of its
//! own ([`UNDO_OUTCOME`], naming the admission it voids) in the same
//! transaction that puts the ticket back where it was, and the server
//! leaves voided admissions out of presence, counts and the chain.
//!
//! [`GatePolicy::undo_window_secs`]: super::GatePolicy::undo_window_secs

use super::text::ago;
use super::{Presence, TicketState};
use crate::UnixSeconds;

/// The outcome code of an undo record in the journal. It does not open the
/// gate; the record's `voids` names the admission it voids.
pub const UNDO_OUTCOME: &str = "admission_undone";

/// The gate's last admission, as its journal holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastAdmission {
    /// When the gate admitted, in Unix milliseconds of its clock.
    pub admitted_at_ms: i64,
    /// Whether an undo record already voids it.
    pub undone: bool,
}

/// Why an undo is refused. One variant per cause staff handle differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoRefusal {
    /// The event's rules have no undo window.
    Off,
    /// This gate has admitted nobody yet.
    NothingToUndo,
    /// The last admission was undone already; earlier ones cannot be.
    AlreadyUndone,
    /// The window closed at `closed_at_ms`: the admission stands.
    WindowPassed {
        admitted_at_ms: i64,
        closed_at_ms: i64,
    },
    /// The holder's record moved since the admission (an exit, or another
    /// gate's scan heard through sync): undoing would erase that.
    HolderMoved,
}

impl UndoRefusal {
    /// The stable code, for the status page's JSON and the CLI's exit text.
    pub fn code(&self) -> &'static str {
        match self {
            UndoRefusal::Off => "undo_off",
            UndoRefusal::NothingToUndo => "nothing_to_undo",
            UndoRefusal::AlreadyUndone => "already_undone",
            UndoRefusal::WindowPassed { .. } => "undo_window_passed",
            UndoRefusal::HolderMoved => "holder_moved",
        }
    }

    /// Words for staff; `now_ms` turns times into "12 s ago".
    pub fn staff_text(&self, now_ms: i64) -> String {
        let secs = |ms: i64| -> UnixSeconds { ms.div_euclid(1000) };
        match self {
            UndoRefusal::Off => "Undo is off for this event".to_owned(),
            UndoRefusal::NothingToUndo => "Nothing to undo: no admission at this gate".to_owned(),
            UndoRefusal::AlreadyUndone => "The last admission was already undone".to_owned(),
            UndoRefusal::WindowPassed {
                admitted_at_ms,
                closed_at_ms,
            } => format!(
                "Too late to undo: the undo window passed {} (admitted {}) - the entry stands",
                ago(secs(now_ms), secs(*closed_at_ms)),
                ago(secs(now_ms), secs(*admitted_at_ms)),
            ),
            UndoRefusal::HolderMoved => {
                "Cannot undo: the ticket was scanned again since - call a supervisor".to_owned()
            }
        }
    }
}

/// Whether the gate's last admission may be voided now. Pure: the window
/// is `[admitted, admitted + window_secs)` on the gate's clock; a clock
/// that stepped back since the admission counts as within it.
pub fn judge_undo(
    window_secs: u32,
    last: Option<LastAdmission>,
    now_ms: i64,
) -> Result<(), UndoRefusal> {
    if window_secs == 0 {
        return Err(UndoRefusal::Off);
    }
    let last = last.ok_or(UndoRefusal::NothingToUndo)?;
    if last.undone {
        return Err(UndoRefusal::AlreadyUndone);
    }
    let closed_at_ms = last
        .admitted_at_ms
        .saturating_add(i64::from(window_secs).saturating_mul(1000));
    if now_ms >= closed_at_ms {
        return Err(UndoRefusal::WindowPassed {
            admitted_at_ms: last.admitted_at_ms,
            closed_at_ms,
        });
    }
    Ok(())
}

/// The ticket's state once the admission made at `gate` and `admitted_at_ms`
/// is voided: where the holder was before it (`prior`, `None` for a ticket
/// the gate did not know), with the organizer's fields as they are now.
/// Refused when the state no longer shows that admission as the holder's
/// last move.
pub fn state_after_undo(
    current: &TicketState,
    prior: Option<&TicketState>,
    gate: u32,
    admitted_at_ms: i64,
) -> Result<TicketState, UndoRefusal> {
    let admitted = Presence::Inside {
        since: admitted_at_ms.div_euclid(1000),
        gate,
    };
    if current.presence != admitted {
        return Err(UndoRefusal::HolderMoved);
    }
    let mut state = *current;
    state.presence = prior.map_or(Presence::NeverEntered, |p| p.presence);
    state.entries = prior.map_or(0, |p| p.entries);
    Ok(state)
}
