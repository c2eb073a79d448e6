//! validate_entries: batched, idempotent replay of each ticket's folded scans.

use crate::common::*;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{self, EntryRecord};
use ticketing::error::TicketingError;

/// A record of `scans` folded scans, the last at `at` seconds (+ `ms`) at `gate`.
fn folded(scans: u16, entries: u16, inside: bool, gate: u16, at: i64) -> EntryRecord {
    EntryRecord {
        scans,
        entries,
        inside,
        gate,
        at_ms: at * 1000,
    }
}

/// A single entry as the fold of one scan.
fn entry(at: i64, gate: u16) -> EntryRecord {
    folded(1, 1, true, gate, at)
}

async fn tickets(fx: &mut Fixture, count: usize) -> Vec<u32> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let owner = Keypair::new().pubkey();
        ids.push(fx.issue(&owner).await);
    }
    ids
}

async fn replay(
    fx: &mut Fixture,
    records: &[(u32, EntryRecord)],
) -> Result<(), solana_program_test::BanksClientError> {
    let validator = fx.validator.insecure_clone();
    // The replay runs after the doors opened; the records' times are in the past.
    fx.set_time(STARTS_AT + 3600).await;
    fx.send(
        &[client::validate_entries(
            &validator.pubkey(),
            &fx.event,
            records,
        )],
        &[&validator],
    )
    .await
}

#[tokio::test]
async fn validate_entries_writes_each_tickets_fold_in_its_account() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 2).await;
    let rent_before = fx.chain.balance(&fx.validator.pubkey()).await.unwrap();
    replay(
        &mut fx,
        &[
            (ids[0], entry(STARTS_AT, 4)),
            (ids[1], entry(STARTS_AT + 5, 2)),
        ],
    )
    .await
    .unwrap();
    // Later the server holds two scans of the first ticket: in, then out at gate 9.
    replay(&mut fx, &[(ids[0], folded(2, 1, false, 9, STARTS_AT + 60))])
        .await
        .unwrap();

    let first = fx.ticket_state(ids[0]).await;
    assert!(first.entered);
    assert!(!first.inside);
    assert_eq!(first.entry_count, 1);
    assert_eq!(first.last_gate, 9);
    assert_eq!(first.last_scan_at_ms, (STARTS_AT + 60) * 1000);
    assert_eq!(first.scans_applied, 2);
    let second = fx.ticket_state(ids[1]).await;
    assert!(second.entered && second.inside);
    assert_eq!((second.entry_count, second.last_gate), (1, 2));
    // No account is created: the validator pays nothing but the chain's payer pays fees.
    assert_eq!(
        fx.chain.balance(&fx.validator.pubkey()).await.unwrap(),
        rent_before
    );
}

#[tokio::test]
async fn validate_entries_applies_a_fuller_fold_whose_last_scan_is_older() {
    // Gate B's exit reached the server first: an exit of someone not inside, no entry.
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 1).await;
    replay(&mut fx, &[(ids[0], folded(1, 0, false, 2, STARTS_AT + 60))])
        .await
        .unwrap();
    let early = fx.ticket_state(ids[0]).await;
    assert_eq!((early.entered, early.entry_count), (false, 0));
    // Gate A's earlier entry arrives later: the fold of both has the entry, ending outside.
    // Its last scan is the same exit, not newer: a rule keyed on time would skip it.
    replay(&mut fx, &[(ids[0], folded(2, 1, false, 2, STARTS_AT + 60))])
        .await
        .unwrap();
    let ticket = fx.ticket_state(ids[0]).await;
    assert_eq!(
        (ticket.entered, ticket.inside, ticket.entry_count),
        (true, false, 1)
    );
    assert_eq!(ticket.scans_applied, 2);
}

#[tokio::test]
async fn validate_entries_keeps_two_scans_of_one_second() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 1).await;
    let mut first = entry(STARTS_AT, 1);
    first.at_ms += 100;
    replay(&mut fx, &[(ids[0], first)]).await.unwrap();
    let mut both = folded(2, 1, false, 1, STARTS_AT);
    both.at_ms += 900;
    replay(&mut fx, &[(ids[0], both)]).await.unwrap();
    let ticket = fx.ticket_state(ids[0]).await;
    assert_eq!((ticket.inside, ticket.scans_applied), (false, 2));
    assert_eq!(ticket.last_scan_at_ms, STARTS_AT * 1000 + 900);
}

#[tokio::test]
async fn validate_entries_replayed_or_smaller_fold_is_a_no_op() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 1).await;
    let batch = [(ids[0], folded(3, 2, true, 4, STARTS_AT + 30))];
    replay(&mut fx, &batch).await.unwrap();
    let after_first = fx.ticket_state(ids[0]).await;
    replay(&mut fx, &batch).await.unwrap();
    // A record of fewer scans (sent before the fuller one, landing after it) changes nothing,
    // even with a later last scan.
    replay(&mut fx, &[(ids[0], folded(2, 1, false, 5, STARTS_AT + 90))])
        .await
        .unwrap();
    let after_replays = fx.ticket_state(ids[0]).await;
    assert_eq!(after_replays, after_first);
    assert_eq!(after_replays.entry_count, 2);
}

#[tokio::test]
async fn validate_entries_batch_mixing_new_and_replayed_records_applies_only_the_new() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 3).await;
    replay(
        &mut fx,
        &[(ids[0], entry(STARTS_AT, 1)), (ids[1], entry(STARTS_AT, 1))],
    )
    .await
    .unwrap();
    // A retried record, a new fold of the first ticket, and a third ticket's first fold.
    replay(
        &mut fx,
        &[
            (ids[1], entry(STARTS_AT - 30, 7)),
            (ids[2], entry(STARTS_AT + 3, 5)),
            (ids[0], folded(2, 1, false, 6, STARTS_AT + 90)),
        ],
    )
    .await
    .unwrap();
    let first = fx.ticket_state(ids[0]).await;
    assert_eq!(
        (first.entry_count, first.inside, first.last_gate),
        (1, false, 6)
    );
    let second = fx.ticket_state(ids[1]).await;
    assert_eq!(
        (second.entry_count, second.last_gate, second.last_scan_at_ms),
        (1, 1, STARTS_AT * 1000)
    );
    let third = fx.ticket_state(ids[2]).await;
    assert_eq!((third.entry_count, third.last_gate), (1, 5));
}

#[tokio::test]
async fn validate_entries_skips_a_record_from_a_gate_clock_running_ahead() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 2).await;
    // The replay helper puts the cluster clock at STARTS_AT + 1 h; 2 h ahead is beyond the skew.
    replay(
        &mut fx,
        &[
            (ids[0], entry(STARTS_AT + 3 * 3600, 1)),
            (ids[1], entry(STARTS_AT + 10, 2)),
        ],
    )
    .await
    .unwrap();
    let skewed = fx.ticket_state(ids[0]).await;
    assert_eq!(
        (
            skewed.entry_count,
            skewed.last_scan_at_ms,
            skewed.scans_applied
        ),
        (0, 0, 0)
    );
    assert_eq!(fx.ticket_state(ids[1]).await.entry_count, 1);
    // A fold whose last scan is within the skew still applies.
    replay(&mut fx, &[(ids[0], entry(STARTS_AT + 20, 1))])
        .await
        .unwrap();
    assert_eq!(fx.ticket_state(ids[0]).await.entry_count, 1);
}

#[tokio::test]
async fn validate_entries_refuses_an_unauthorized_validator() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 1).await;
    let intruder = fx.buyer().await;
    let result = fx
        .send(
            &[client::validate_entries(
                &intruder.pubkey(),
                &fx.event,
                &[(ids[0], entry(STARTS_AT, 1))],
            )],
            &[&intruder],
        )
        .await;
    assert_refused(result, TicketingError::UnauthorizedValidator);
    assert!(!fx.ticket_state(ids[0]).await.entered);
}

#[tokio::test]
async fn validate_entries_refuses_a_ticket_of_another_event() {
    let mut fx = Fixture::new().await;
    let organizer = fx.organizer.insecure_clone();
    let validator = fx.validator.insecure_clone();
    let params = event_params(&fx.treasury, &fx.issuer, &organizer.pubkey());
    fx.send(
        &[client::create_event(&organizer.pubkey(), 8, params)],
        &[&organizer],
    )
    .await
    .unwrap();
    let other = client::event_address(&organizer.pubkey(), 8).0;
    let owner = Keypair::new().pubkey();
    fx.send(
        &[client::mint_tickets(
            &organizer.pubkey(),
            &other,
            0,
            &[(owner, GENERAL)],
            fx.standard,
        )],
        &[&organizer],
    )
    .await
    .unwrap();
    // The validator is authorized for the first event only; it names the other event's ticket.
    let mut instruction =
        client::validate_entries(&validator.pubkey(), &fx.event, &[(0, entry(STARTS_AT, 1))]);
    instruction.accounts[2].pubkey = client::ticket_address(&other, 0).0;
    let result = fx.send(&[instruction], &[&validator]).await;
    assert_refused(result, TicketingError::WrongEvent);
}

#[tokio::test]
async fn validate_entries_refuses_records_without_their_tickets() {
    let mut fx = Fixture::new().await;
    let ids = tickets(&mut fx, 1).await;
    let validator = fx.validator.insecure_clone();
    let mut instruction = client::validate_entries(
        &validator.pubkey(),
        &fx.event,
        &[(ids[0], entry(STARTS_AT, 1))],
    );
    instruction.accounts.pop();
    let result = fx.send(&[instruction], &[&validator]).await;
    assert_refused(result, TicketingError::AccountsMismatch);
}

#[tokio::test]
async fn validate_entries_fits_more_than_twenty_records_in_one_legacy_transaction() {
    let per_tx = client::MAX_ENTRIES_PER_LEGACY_TX;
    assert!(per_tx >= 20);
    let mut fx = Fixture::with(|params| {
        params.capacity = 40;
        params.tiers[0].supply = 40;
    })
    .await;
    let ids = tickets(&mut fx, per_tx + 1).await;
    let records: Vec<_> = ids
        .iter()
        .map(|id| (*id, entry(STARTS_AT + i64::from(*id), 1)))
        .collect();
    let validator = fx.validator.insecure_clone();
    fx.set_time(STARTS_AT + 3600).await;

    // The validator pays its own fee: one signature.
    let one_too_many = fx
        .chain
        .transaction_from(
            &validator,
            &[client::validate_entries(
                &validator.pubkey(),
                &fx.event,
                &records,
            )],
            &[],
        )
        .await
        .unwrap();
    assert!(wire_size(&one_too_many) > 1232);

    let transaction = fx
        .chain
        .transaction_from(
            &validator,
            &[client::validate_entries(
                &validator.pubkey(),
                &fx.event,
                &records[..per_tx],
            )],
            &[],
        )
        .await
        .unwrap();
    assert!(
        wire_size(&transaction) <= 1232,
        "{} bytes",
        wire_size(&transaction)
    );
    fx.chain
        .context
        .banks_client
        .process_transaction(transaction)
        .await
        .unwrap();
    for id in &ids[..per_tx] {
        assert_eq!(fx.ticket_state(*id).await.entry_count, 1);
    }
    assert_eq!(fx.ticket_state(ids[per_tx]).await.entry_count, 0);
}

fn wire_size(transaction: &solana_sdk::transaction::Transaction) -> usize {
    ticketing::testing::wire_size(transaction)
}
