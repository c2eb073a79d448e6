//! The organizer's newer check-in rules as tables: how re-entry reads and
//! writes (old names included), the turnstile undo window, and what the
//! presence fold makes of voided admissions and of re-entry without exit.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose
#![allow(clippy::type_complexity)] // each table row is a tuple read column by column

use shared::admission::undo::{LastAdmission, UndoRefusal, judge_undo, state_after_undo};
use shared::presence::{FoldRules, OpeningScan, fold, fold_under};
use shared::wire::CachedEvent;
use shared::{Direction, Presence, PublicKeyBytes, ReentryPolicy, TicketState, TicketStatus};
use uuid::Uuid;

#[test]
fn reentry_reads_every_name_it_ever_had_and_writes_the_stable_ones() {
    let allowed_after = ReentryPolicy::AllowedAfter {
        min_outside_secs: 60,
    };
    // (JSON read, what it means, how it is written back)
    let table: &[(&str, ReentryPolicy, &str)] = &[
        (r#""forbidden""#, ReentryPolicy::Forbidden, r#""forbidden""#),
        (
            r#"{"allowed_after":{"min_outside_secs":60}}"#,
            allowed_after,
            r#"{"allowed_after":{"min_outside_secs":60}}"#,
        ),
        (
            r#"{"exit_required":{"min_outside_secs":60}}"#,
            allowed_after,
            r#"{"allowed_after":{"min_outside_secs":60}}"#,
        ),
        (r#""allowed""#, ReentryPolicy::Allowed, r#""allowed""#),
    ];
    for (read, meaning, written) in table {
        let parsed: ReentryPolicy = serde_json::from_str(read).unwrap();
        assert_eq!(parsed, *meaning, "{read}");
        assert_eq!(serde_json::to_string(&parsed).unwrap(), *written, "{read}");
    }
    for bad in [
        r#""sometimes""#,
        r#"{"allowed_after":{"min_outside_secs":60,"extra":1}}"#,
        r#"{"allowed_after":{}}"#,
    ] {
        assert!(serde_json::from_str::<ReentryPolicy>(bad).is_err(), "{bad}");
    }
    // The binary cache keeps the variants' positions: the old two first.
    for (policy, index) in [
        (ReentryPolicy::Forbidden, 0u8),
        (allowed_after, 1),
        (ReentryPolicy::Allowed, 2),
    ] {
        assert_eq!(postcard::to_stdvec(&policy).unwrap()[0], index);
    }
    assert!(ReentryPolicy::Allowed.admits_while_inside());
    assert!(!allowed_after.admits_while_inside());
    assert!(!ReentryPolicy::Forbidden.admits_while_inside());
}

#[test]
fn an_event_stored_before_the_undo_window_reads_with_it_off() {
    let stored = r#"{"event_id":7,"name":"Old","status":"active",
        "doors":{"opens_at":1,"closes_at":2},"ends_at":2,"issuer_keys":[],"tiers":[],
        "reentry":"forbidden","unknown_tickets":"reject","holder_proof":"not_required",
        "tier_gates":[],"end_grace_secs":0}"#;
    let event: CachedEvent = serde_json::from_str(stored).unwrap();
    assert_eq!(event.undo_window_secs, 0);
    let policy = event.policy_for(3, Direction::Entry, None);
    assert_eq!(policy.undo_window_secs, 0);
    let with = CachedEvent {
        undo_window_secs: 8,
        ..event
    };
    assert_eq!(
        with.policy_for(3, Direction::Entry, None).undo_window_secs,
        8
    );
}

const ADMITTED_MS: i64 = 1_000_000_500;

#[test]
fn the_undo_window() {
    let last = |undone| {
        Some(LastAdmission {
            admitted_at_ms: ADMITTED_MS,
            undone,
        })
    };
    let passed = Err(UndoRefusal::WindowPassed {
        admitted_at_ms: ADMITTED_MS,
        closed_at_ms: ADMITTED_MS + 8_000,
    });
    // (case, window, last admission, now, expected)
    let table: Vec<(
        &str,
        u32,
        Option<LastAdmission>,
        i64,
        Result<(), UndoRefusal>,
    )> = vec![
        ("off", 0, last(false), ADMITTED_MS, Err(UndoRefusal::Off)),
        (
            "no admission yet",
            8,
            None,
            ADMITTED_MS,
            Err(UndoRefusal::NothingToUndo),
        ),
        ("at once", 8, last(false), ADMITTED_MS, Ok(())),
        (
            "last millisecond",
            8,
            last(false),
            ADMITTED_MS + 7_999,
            Ok(()),
        ),
        ("window closed", 8, last(false), ADMITTED_MS + 8_000, passed),
        (
            "a minute later",
            8,
            last(false),
            ADMITTED_MS + 60_000,
            passed,
        ),
        (
            "clock stepped back",
            8,
            last(false),
            ADMITTED_MS - 2_000,
            Ok(()),
        ),
        (
            "undone already",
            8,
            last(true),
            ADMITTED_MS,
            Err(UndoRefusal::AlreadyUndone),
        ),
    ];
    for (case, window, last, now, expected) in table {
        assert_eq!(judge_undo(window, last, now), expected, "{case}");
    }
    let codes = [
        UndoRefusal::Off,
        UndoRefusal::NothingToUndo,
        UndoRefusal::AlreadyUndone,
        UndoRefusal::WindowPassed {
            admitted_at_ms: 0,
            closed_at_ms: 0,
        },
        UndoRefusal::HolderMoved,
    ]
    .map(|r| r.code());
    let mut unique = codes.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), codes.len());
    let words = UndoRefusal::WindowPassed {
        admitted_at_ms: ADMITTED_MS,
        closed_at_ms: ADMITTED_MS + 8_000,
    }
    .staff_text(ADMITTED_MS + 20_000);
    assert!(words.contains("undo window passed 12 s ago"), "{words}");
}

fn ticket(presence: Presence, entries: u32) -> TicketState {
    TicketState {
        event_id: 7,
        ticket_id: 1,
        tier: 0,
        owner: PublicKeyBytes([1; 32]),
        generation: 0,
        status: TicketStatus::Active,
        presence,
        entries,
    }
}

#[test]
fn an_undo_puts_the_holder_back_where_they_were() {
    let admitted = Presence::Inside {
        since: ADMITTED_MS / 1000,
        gate: 3,
    };
    let outside = Presence::Outside {
        since: 900_000,
        gate: 4,
    };
    // (case, state now, state before the admission, expected)
    let table: Vec<(
        &str,
        TicketState,
        Option<TicketState>,
        Result<Presence, UndoRefusal>,
    )> = vec![
        (
            "first entry",
            ticket(admitted, 1),
            Some(ticket(Presence::NeverEntered, 0)),
            Ok(Presence::NeverEntered),
        ),
        (
            "re-entry",
            ticket(admitted, 2),
            Some(ticket(outside, 1)),
            Ok(outside),
        ),
        (
            "a ticket the gate did not know",
            ticket(admitted, 1),
            None,
            Ok(Presence::NeverEntered),
        ),
        (
            "left since",
            ticket(
                Presence::Outside {
                    since: ADMITTED_MS / 1000 + 5,
                    gate: 9,
                },
                1,
            ),
            Some(ticket(Presence::NeverEntered, 0)),
            Err(UndoRefusal::HolderMoved),
        ),
    ];
    for (case, now, prior, expected) in table {
        let after = state_after_undo(&now, prior.as_ref(), 3, ADMITTED_MS);
        assert_eq!(after.map(|s| s.presence), expected, "{case}");
        if let Ok(after) = state_after_undo(&now, prior.as_ref(), 3, ADMITTED_MS) {
            assert_eq!(after.entries, prior.map_or(0, |p| p.entries), "{case}");
        }
    }
    // The organizer's fields stay as they are now (a freeze heard since).
    let mut frozen = ticket(admitted, 1);
    frozen.status = TicketStatus::Frozen;
    let after = state_after_undo(
        &frozen,
        Some(&ticket(Presence::NeverEntered, 0)),
        3,
        ADMITTED_MS,
    )
    .unwrap();
    assert_eq!(after.status, TicketStatus::Frozen);
}

fn scan(n: u128, direction: Direction, at_s: i64, voided: bool) -> OpeningScan {
    OpeningScan {
        scan_id: Uuid::from_u128(n),
        gate: 1,
        direction,
        at_ms: at_s * 1000,
        voided,
    }
}

#[test]
fn a_voided_admission_counts_as_seen_and_moves_nobody() {
    use Direction::{Entry, Exit};
    // (case, scans, inside after, entries, scans seen, conflicts)
    let table: Vec<(&str, Vec<OpeningScan>, bool, u32, u32, usize)> = vec![
        (
            "voided alone",
            vec![scan(1, Entry, 10, true)],
            false,
            0,
            1,
            0,
        ),
        (
            "voided, then admitted again",
            vec![scan(1, Entry, 10, true), scan(2, Entry, 15, false)],
            true,
            1,
            2,
            0,
        ),
        (
            "inside, a voided second entry is no conflict",
            vec![scan(1, Entry, 10, false), scan(2, Entry, 15, true)],
            true,
            1,
            2,
            0,
        ),
        (
            "an exit after a voided entry matches nothing",
            vec![scan(1, Entry, 10, true), scan(2, Exit, 15, false)],
            false,
            0,
            2,
            0,
        ),
    ];
    for (case, scans, inside, entries, seen, conflicts) in table {
        let folded = fold(&scans);
        assert_eq!(folded.inside(), inside, "{case}");
        assert_eq!(folded.entries, entries, "{case}");
        assert_eq!(folded.scans, seen, "{case}");
        assert_eq!(folded.conflicts().count(), conflicts, "{case}");
    }
}

#[test]
fn where_reentry_needs_no_exit_a_second_entry_is_no_conflict() {
    let scans = [
        scan(1, Direction::Entry, 10, false),
        scan(2, Direction::Entry, 20, false),
    ];
    let strict = fold(&scans);
    assert_eq!(strict.conflicts().count(), 1);
    let relaxed = fold_under(&scans, FoldRules::for_reentry(&ReentryPolicy::Allowed));
    assert_eq!(relaxed.conflicts().count(), 0);
    assert_eq!(relaxed.entries, 2);
    assert_eq!(relaxed.presence, Presence::Inside { since: 20, gate: 1 });
    let exit_required = FoldRules::for_reentry(&ReentryPolicy::AllowedAfter {
        min_outside_secs: 0,
    });
    assert_eq!(fold_under(&scans, exit_required), strict);
}
