//! Cost report: runs the real program in the in-process runtime and measures, from balances
//! and serialized transaction sizes, what tickets and validated entries cost, next to the seed
//! design (one transaction and one new ValidationRecord account per scan).
//!
//! `cargo run -p ticketing --features test-runtime --bin chain-costs`
//!
//! Prints a table, then one JSON object as the last line.

use std::error::Error;

use anchor_lang::prelude::Pubkey;
use solana_sdk::signature::{Keypair, Signer};
use ticketing::client::{
    self, EntryRecord, EventParams, TicketAccounts, TierParams, TokenStandard,
};
use ticketing::testing::{Chain, wire_size};

const SOL: u64 = 1_000_000_000;
const NOW: i64 = 1_800_000_000;
const STARTS_AT: i64 = NOW + 86_400;
const ENDS_AT: i64 = STARTS_AT + 6 * 3600;
const PRICE: u64 = SOL / 10;
const PACKET: usize = 1232;

/// The seed's ValidationRecord, from its `validate_entry(gate_id, kind)` call and its tables:
/// discriminator 8, ticket 32, validator 32, gate id String of up to 64 bytes (4 + 64),
/// kind 1, timestamp 8, bump 1.
const SEED_RECORD_BYTES: usize = 8 + 32 + 32 + 4 + 64 + 1 + 8 + 1;

struct Row {
    what: String,
    lamports: u64,
    note: String,
}

fn event_params(organizer: &Pubkey, treasury: Pubkey, standard: TokenStandard) -> EventParams {
    EventParams {
        name: "Harbour Lights".into(),
        venue: "Pier 4".into(),
        symbol: "HLT".into(),
        uri_base: "https://tickets.example/m/7/".into(),
        starts_at: STARTS_AT,
        ends_at: ENDS_AT,
        doors_open_at: STARTS_AT - 7200,
        doors_close_at: STARTS_AT + 7200,
        capacity: 1000,
        tiers: vec![
            TierParams {
                name: "general".into(),
                price: PRICE,
                supply: 900,
            },
            TierParams {
                name: "vip".into(),
                price: 5 * PRICE,
                supply: 100,
            },
        ],
        issuer: Keypair::new().pubkey(),
        treasury,
        minter: *organizer,
        transferable: true,
        transfer_until: STARTS_AT,
        token_standard: standard,
    }
}

/// What one ticket costs under one token standard.
struct TicketCosts {
    event: Pubkey,
    /// Next ticket id of the event.
    next_ticket: u32,
    lamports_per_ticket: u64,
    ticket_rent: u64,
    mint_rent: u64,
    mint_len: usize,
    token_rent: u64,
    token_len: usize,
    batch: usize,
    size_limited_batch: usize,
    mint_tx_size: usize,
    batch_per_ticket: u64,
}

/// Creates an event of `standard`, buys one ticket in SOL and mints the largest batch that
/// executes, measuring each from balances.
async fn ticket_costs(
    chain: &mut Chain,
    organizer: &Keypair,
    event_id: u64,
    standard: TokenStandard,
) -> Result<TicketCosts, Box<dyn Error>> {
    let params = event_params(&organizer.pubkey(), Keypair::new().pubkey(), standard);
    chain
        .send_from(
            organizer,
            &[client::create_event(&organizer.pubkey(), event_id, params)],
            &[],
        )
        .await?;
    let event = client::event_address(&organizer.pubkey(), event_id).0;
    let mut next_ticket: u32 = 0;

    // One ticket bought in SOL: the buyer pays price + rent + fee.
    let buyer = chain.wallet(SOL).await?;
    let before = chain.balance(&buyer.pubkey()).await?;
    chain
        .send_from(
            &buyer,
            &[client::buy_ticket(
                &buyer.pubkey(),
                &event,
                next_ticket,
                0,
                PRICE,
                standard,
            )],
            &[],
        )
        .await?;
    let bought = TicketAccounts::derive(&event, next_ticket);
    next_ticket += 1;
    let lamports_per_ticket = before - chain.balance(&buyer.pubkey()).await? - PRICE;
    let token_account = bought.token_account(&buyer.pubkey(), standard);

    // Batch mint by the organizer: as many tickets as fit one legacy transaction.
    let mut batch = 1;
    loop {
        let recipients: Vec<_> = (0..=batch).map(|_| (Keypair::new().pubkey(), 0)).collect();
        let instruction = client::mint_tickets(
            &organizer.pubkey(),
            &event,
            next_ticket,
            &recipients,
            standard,
        );
        let transaction = chain
            .transaction_from(
                organizer,
                &[client::mint_compute_budget(), instruction],
                &[],
            )
            .await?;
        if wire_size(&transaction) > PACKET {
            break;
        }
        batch += 1;
    }
    // The packet is not the only limit: each ticket takes a dozen or more entries of the
    // runtime's 64-entry instruction trace (its CPIs and theirs), which is why the program caps
    // a batch at `TokenStandard::max_mint_batch`; shrink until the batch executes.
    let size_limited_batch = batch;
    let (mint_tx_size, batch_per_ticket) = loop {
        let recipients: Vec<_> = (0..batch).map(|_| (Keypair::new().pubkey(), 0)).collect();
        let instruction = client::mint_tickets(
            &organizer.pubkey(),
            &event,
            next_ticket,
            &recipients,
            standard,
        );
        let transaction = chain
            .transaction_from(
                organizer,
                &[client::mint_compute_budget(), instruction.clone()],
                &[],
            )
            .await?;
        let size = wire_size(&transaction);
        let simulation = chain
            .context
            .banks_client
            .simulate_transaction(transaction.clone())
            .await?;
        if simulation.result.is_some_and(|result| result.is_err()) {
            batch -= 1;
            continue;
        }
        let before = chain.balance(&organizer.pubkey()).await?;
        chain
            .context
            .banks_client
            .process_transaction(transaction)
            .await?;
        break (
            size,
            (before - chain.balance(&organizer.pubkey()).await?) / batch as u64,
        );
    };
    next_ticket += u32::try_from(batch)?;
    Ok(TicketCosts {
        event,
        next_ticket,
        lamports_per_ticket,
        ticket_rent: chain.balance(&bought.ticket).await?,
        mint_rent: chain.balance(&bought.mint).await?,
        mint_len: chain.data(&bought.mint).await?.map_or(0, |d| d.len()),
        token_rent: chain.balance(&token_account).await?,
        token_len: chain.data(&token_account).await?.map_or(0, |d| d.len()),
        batch,
        size_limited_batch,
        mint_tx_size,
        batch_per_ticket,
    })
}

fn ticket_rows(rows: &mut Vec<Row>, label: &str, costs: &TicketCosts) {
    rows.push(Row {
        what: format!("{label}: ticket bought in SOL (rent + fee, price excluded)"),
        lamports: costs.lamports_per_ticket,
        note: "one transaction, buyer signs".into(),
    });
    rows.push(Row {
        what: "  ticket state account rent (reclaimable)".into(),
        lamports: costs.ticket_rent,
        note: format!("{} bytes", ticketing::state::Ticket::SPACE),
    });
    rows.push(Row {
        what: "  mint rent".into(),
        lamports: costs.mint_rent,
        note: format!("{} bytes", costs.mint_len),
    });
    rows.push(Row {
        what: "  holder's token account rent".into(),
        lamports: costs.token_rent,
        note: format!(
            "{} bytes; the holder's, closable by the holder once empty",
            costs.token_len
        ),
    });
    rows.push(Row {
        what: format!("{label}: ticket minted in a batch of {}", costs.batch),
        lamports: costs.batch_per_ticket,
        note: format!(
            "{} bytes; {} fit the packet, the program and the instruction trace allow {}",
            costs.mint_tx_size, costs.size_limited_batch, costs.batch
        ),
    });
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut chain = Chain::start().await;
    chain.set_unix_time(NOW).await?;
    let rent = chain.context.banks_client.get_rent().await?;
    let organizer = chain.wallet(100 * SOL).await?;
    let validator = chain.wallet(10 * SOL).await?;
    let mut rows = Vec::new();

    let rich = ticket_costs(&mut chain, &organizer, 2, TokenStandard::Token2022Metadata).await?;
    ticket_rows(&mut rows, "Token-2022 + metadata", &rich);
    let plain = ticket_costs(&mut chain, &organizer, 1, TokenStandard::SplToken).await?;
    ticket_rows(&mut rows, "SPL Token", &plain);
    let event = plain.event;
    let mut next_ticket = plain.next_ticket;
    let batch = plain.batch;
    let lamports_per_ticket = plain.lamports_per_ticket;
    chain
        .send_from(
            &organizer,
            &[client::add_validator(
                &organizer.pubkey(),
                &event,
                &validator.pubkey(),
            )],
            &[],
        )
        .await?;

    // Entries: enough tickets, then batches of 1, 10, 20 and the maximum.
    let max_entries = client::MAX_ENTRIES_PER_LEGACY_TX;
    let mut ticket_ids = vec![0];
    while ticket_ids.len() < max_entries {
        let take = (max_entries - ticket_ids.len()).min(batch);
        let recipients: Vec<_> = (0..take).map(|_| (Keypair::new().pubkey(), 0)).collect();
        chain
            .send_from(
                &organizer,
                &[
                    client::mint_compute_budget(),
                    client::mint_tickets(
                        &organizer.pubkey(),
                        &event,
                        next_ticket,
                        &recipients,
                        TokenStandard::SplToken,
                    ),
                ],
                &[],
            )
            .await?;
        ticket_ids.extend(next_ticket..next_ticket + u32::try_from(take)?);
        next_ticket += u32::try_from(take)?;
    }
    // The replay runs after the doors opened: records are in the cluster clock's past.
    chain.set_unix_time(STARTS_AT + 3600).await?;
    let mut lamports_per_entry = 0;
    let mut fee_per_full_tx = 0;
    let mut scan_at = STARTS_AT;
    for (round, size) in [1, 10, 20, max_entries].into_iter().enumerate() {
        scan_at += 60;
        // Each round folds one more scan per ticket, so every record applies.
        let scans = u16::try_from(round + 1)?;
        let records: Vec<_> = ticket_ids[..size]
            .iter()
            .map(|id| {
                (
                    *id,
                    EntryRecord {
                        scans,
                        entries: scans,
                        inside: true,
                        gate: 1,
                        at_ms: scan_at * 1000,
                    },
                )
            })
            .collect();
        let instruction = client::validate_entries(&validator.pubkey(), &event, &records);
        let transaction = chain
            .transaction_from(&validator, std::slice::from_ref(&instruction), &[])
            .await?;
        let tx_size = wire_size(&transaction);
        let before = chain.balance(&validator.pubkey()).await?;
        chain.send_from(&validator, &[instruction], &[]).await?;
        let tx_cost = before - chain.balance(&validator.pubkey()).await?;
        fee_per_full_tx = tx_cost;
        let per_entry = tx_cost / size as u64;
        lamports_per_entry = per_entry;
        rows.push(Row {
            what: format!("validated entry, batch of {size}"),
            lamports: per_entry,
            note: format!("{tx_size} bytes per transaction, no account created"),
        });
    }

    // The seed's design: one transaction and one new rent-exempt account per scan.
    let seed_per_entry = rent.minimum_balance(SEED_RECORD_BYTES) + 5_000;
    rows.push(Row {
        what: "seed design: validated entry".into(),
        lamports: seed_per_entry,
        note: format!("{SEED_RECORD_BYTES}-byte ValidationRecord rent + one fee"),
    });

    // After the event the organizer closes the ticket account and gets its rent back.
    chain.set_unix_time(ENDS_AT).await?;
    let before = chain.balance(&organizer.pubkey()).await?;
    chain
        .send_from(
            &organizer,
            &[client::close_ticket(&organizer.pubkey(), &event, 0)],
            &[],
        )
        .await?;
    let reclaimed = chain.balance(&organizer.pubkey()).await? + 5_000 - before;
    rows.push(Row {
        what: "reclaimed per ticket after the event (both standards)".into(),
        lamports: reclaimed,
        note: format!(
            "{:.0}% (SPL Token) / {:.0}% (Token-2022) of the ticket's cost before reclaim",
            100.0 * reclaimed as f64 / lamports_per_ticket as f64,
            100.0 * reclaimed as f64 / rich.lamports_per_ticket as f64
        ),
    });

    println!("{:<72} {:>12} {:>12}  note", "what", "lamports", "SOL");
    for row in &rows {
        println!(
            "{:<72} {:>12} {:>12.6}  {}",
            row.what,
            row.lamports,
            row.lamports as f64 / SOL as f64,
            row.note
        );
    }
    let transactions = 1000_u64.div_ceil(max_entries as u64);
    println!(
        "per 1,000 entries: {} transactions, {} lamports (seed design: 1000 transactions, {} lamports)",
        transactions,
        transactions * fee_per_full_tx,
        seed_per_entry * 1000
    );
    println!(
        "{{\"lamports_per_entry\":{},\"entries_per_tx\":{},\"lamports_per_ticket\":{},\"reclaimable_per_ticket\":{},\"seed_lamports_per_entry\":{},\"tickets_per_mint_tx\":{},\"lamports_per_batch_minted_ticket\":{},\"lamports_per_ticket_with_metadata\":{},\"tickets_per_mint_tx_with_metadata\":{}}}",
        lamports_per_entry,
        max_entries,
        lamports_per_ticket,
        reclaimed,
        seed_per_entry,
        batch,
        plain.batch_per_ticket,
        rich.lamports_per_ticket,
        rich.batch,
    );
    Ok(())
}
