//! The turnstile undo at this gate: staff void the last admission when the
//! holder did not pass (the turnstile was not turned), within the event's
//! undo window, so the ticket can be scanned again. The rule is
//! `shared::admission::undo`; the durable part (ticket state and journal
//! row in one transaction) is [`Store::undo_last_admission`]. Staff reach
//! it from the status page (through the decision loop, which owns the
//! store) or with `gate-agent undo`.

use serde::Serialize;
use shared::admission::undo::{UNDO_OUTCOME, UndoRefusal};
use uuid::Uuid;

use crate::gate::Gate;
use crate::store::{Store, StoreError, UndoDone, UndoRequest};

/// The journal `source` of an undo the gate made itself: the turnstile's
/// passage sensor saw nobody pass ([`crate::passage`]).
pub const PASSAGE_SOURCE: &str = "turnstile";

/// What staff asked of the decision loop besides scans.
#[derive(Debug)]
pub enum StaffCommand {
    /// Void this gate's last admission; the answer goes to `reply`.
    Undo {
        source: String,
        reply: std::sync::mpsc::SyncSender<UndoAnswer>,
    },
}

/// The answer to an undo, as the status page's JSON and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndoAnswer {
    pub undone: bool,
    /// `admission_undone`, or the refusal's code (`undo_window_passed`,
    /// `undo_off`, `nothing_to_undo`, `already_undone`, `holder_moved`,
    /// `store_unavailable`).
    pub code: String,
    /// Words for staff.
    pub text: String,
    pub ticket_id: Option<u32>,
    /// The undo's journal row id.
    #[serde(skip)]
    pub scan_id: Option<Uuid>,
}

impl UndoAnswer {
    pub fn done(done: &UndoDone) -> Self {
        Self {
            undone: true,
            code: UNDO_OUTCOME.to_owned(),
            text: done.detail.clone(),
            ticket_id: done.record.ticket_id,
            scan_id: Some(done.record.scan_id),
        }
    }

    pub fn refused(refusal: UndoRefusal, now_ms: i64) -> Self {
        Self {
            undone: false,
            code: refusal.code().to_owned(),
            text: refusal.staff_text(now_ms),
            ticket_id: None,
            scan_id: None,
        }
    }

    pub fn unavailable(why: &str) -> Self {
        Self {
            undone: false,
            code: "store_unavailable".to_owned(),
            text: format!("Cannot undo: {why}"),
            ticket_id: None,
            scan_id: None,
        }
    }
}

/// Voids `gate`'s last admission in `store` if the event's window allows it
/// at `now_ms`. A gate without a usable event has no window: refused as off.
pub fn undo_last(
    store: &mut Store,
    gate: &Gate,
    now_ms: i64,
    source: &str,
) -> Result<Result<UndoDone, UndoRefusal>, StoreError> {
    let request = UndoRequest {
        gate: gate.number(),
        window_secs: gate.policy().map_or(0, |p| p.undo_window_secs),
        now_ms,
        undo_id: Uuid::now_v7(),
        source: source.to_owned(),
    };
    store.undo_last_admission(&request)
}
