//! The replay worker: records on chain what the gates' scans say, in
//! batches of the program's `validate_entries` instruction.
//!
//! A ticket goes on chain as one record, the fold of every admitted scan the
//! server holds of it (`shared::presence::fold`: scan time in milliseconds,
//! then gate, then scan id). The program applies a record only if it folded
//! more scans than the one it applied last, so the chain ends equal to the
//! fold whatever order the gates' journals arrived in, and a record sent
//! twice, or overtaken by a fuller one, changes nothing.
//!
//! Each round takes the lease of one event with waiting scans (so servers
//! sharing a database split the work by event and never interleave one
//! event's transactions), then:
//!
//! 1. settles transactions already sent: confirmed, failed, or expired
//!    unseen (its scans wait again). A transaction still in flight keeps its
//!    tickets out of this round.
//! 2. folds the waiting scans' tickets and reads them on chain. A ticket
//!    whose chain record already folds as many scans is marked confirmed
//!    without sending; a ticket the chain does not have fails.
//! 3. packs the rest, one record per ticket, into transactions of up to
//!    `batch_max` records, names each transaction on its scans in the
//!    database, and only then sends it, several at once (their tickets are
//!    disjoint, so their order does not matter).
//!
//! The judging of step 2 and the packing of step 3 are [`plan_round`], a
//! pure function; this module does the reading and writing around it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solana_sdk::hash::Hash;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Signature, Signer};
use solana_sdk::transaction::Transaction;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::chain::{ChainError, TxStatus, ops};
use crate::services::Services;
use crate::services::organizer::{ChainContext, validator_keypair};
use crate::store::{EventChain, PendingScan, ReplayState, Settlement, StoreError};

mod plan;
pub use plan::{ReplayBatch, RoundPlan, TicketRecord, plan_round, record_of};

/// The fee of a transaction with one signature, in lamports (the validator
/// signs and pays alone; no priority fee).
pub const FEE_PER_SIGNATURE: u64 = 5_000;

/// Scans beyond the chain clock by more than this are left for later: the
/// program refuses records more than 5 minutes ahead of its clock.
const MAX_AHEAD_SECS: i64 = 240;

/// Transactions of one event in flight at once.
const IN_FLIGHT: usize = 8;

/// How long one transaction is waited for within a round; after that it is
/// settled by a later round from its signature.
const WAIT_PER_TX: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("event {event}: {message}")]
    Event { event: u64, message: String },
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    pub tx_confirmed: usize,
    pub tx_failed: usize,
    pub tx_expired: usize,
    pub confirmed: usize,
    /// Waiting scans the chain's record already held.
    pub already_on_chain: usize,
    pub failed: usize,
    pub expired: usize,
    pub transactions: usize,
}

impl RoundReport {
    fn did_something(&self) -> bool {
        self.confirmed + self.already_on_chain + self.failed + self.expired + self.transactions > 0
    }
}

/// Runs rounds until `shutdown` turns true. Ingest wakes it through
/// `state.replay_wakeup`; otherwise it looks again every `idle_ms`.
pub async fn run(state: Services, mut shutdown: watch::Receiver<bool>) {
    let holder = format!("{}-{}", hostname(), uuid::Uuid::now_v7().simple());
    let idle = Duration::from_millis(u64::from(state.config.replay.idle_ms));
    tracing::info!(%holder, "replay worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let busy = match round(&state, &holder).await {
            Ok(report) => report.did_something(),
            Err(e) => {
                tracing::warn!(error = %e, "replay round failed; retrying later");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = state.replay_wakeup.notified() => {}
            _ = tokio::time::sleep(idle) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("replay worker stopped");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "server".into())
}

/// One round: one event's worth of settling and sending. Public so tests and
/// the demo can drive the worker step by step.
pub async fn round(state: &Services, holder: &str) -> Result<RoundReport, ReplayError> {
    let Some(ctx) = state.chain.clone() else {
        return Ok(RoundReport::default());
    };
    let now = state.clock.now();
    let lease = i64::from(state.config.replay.lease_secs);
    let Some(event) = state.store.claim_replay_event(holder, now, lease).await? else {
        return Ok(RoundReport::default());
    };
    let result = replay_event(state, &ctx, &event).await;
    // A chain that is down rests the event a little instead of spinning.
    let rest = match &result {
        Err(ReplayError::Chain(e)) if e.is_transient() => 5,
        _ => 0,
    };
    state
        .store
        .release_replay_event(event.event_id, holder, state.clock.now() + rest)
        .await?;
    if let Ok(report) = &result
        && report.did_something()
    {
        tracing::info!(event = event.event_id, ?report, "replay round");
        let m = &state.metrics;
        for (result, n) in [
            ("confirmed", report.confirmed + report.already_on_chain),
            ("failed", report.failed),
            ("expired", report.expired),
        ] {
            m.replay.with_label_values(&[result]).inc_by(n as u64);
        }
        for (result, n) in [
            ("confirmed", report.tx_confirmed),
            ("failed", report.tx_failed),
            ("expired", report.tx_expired),
        ] {
            m.transactions
                .with_label_values(&["replay", result])
                .inc_by(n as u64);
        }
    }
    result
}

async fn replay_event(
    state: &Services,
    ctx: &Arc<ChainContext>,
    event: &EventChain,
) -> Result<RoundReport, ReplayError> {
    let chain = ctx.chain.as_ref();
    let settings = &state.config.replay;
    let batch_max = settings.batch_max as usize;
    let mut report = RoundReport::default();
    let event_address: Pubkey = event.address.parse().map_err(|_| ReplayError::Event {
        event: event.event_id,
        message: format!("stored address {} is not a pubkey", event.address),
    })?;
    let pending = state
        .store
        .pending_replay(event.event_id, (batch_max * IN_FLIGHT * 2) as u32)
        .await?;

    // 1. Settle what was sent before.
    let mut in_flight: BTreeMap<String, (Option<String>, Vec<u32>)> = BTreeMap::new();
    for scan in pending.iter().filter(|s| s.state == ReplayState::Submitted) {
        let Some(signature) = &scan.signature else {
            continue;
        };
        let entry = in_flight
            .entry(signature.clone())
            .or_insert_with(|| (scan.blockhash.clone(), Vec::new()));
        entry.1.push(scan.ticket_id);
    }
    let mut busy: HashSet<u32> = HashSet::new();
    if !in_flight.is_empty() {
        let signatures: Vec<Signature> = in_flight
            .keys()
            .map(|s| s.parse().unwrap_or_default())
            .collect();
        let statuses = chain.statuses(&signatures).await?;
        for ((signature, (blockhash, tickets)), status) in in_flight.iter().zip(statuses) {
            let settlement = match status {
                TxStatus::Confirmed { .. } => Some(Settlement::Confirmed {
                    fee_lamports: FEE_PER_SIGNATURE,
                }),
                TxStatus::Failed { error, .. } => Some(Settlement::Failed { error }),
                TxStatus::Unknown => {
                    let hash: Option<Hash> = blockhash.as_deref().and_then(|b| b.parse().ok());
                    let valid = match hash {
                        Some(hash) => chain.is_blockhash_valid(&hash).await?,
                        None => false,
                    };
                    if valid {
                        None
                    } else {
                        // One last look: it may have landed just before its hash expired.
                        match chain.statuses(&[signatures_of(signature)]).await?.pop() {
                            Some(TxStatus::Confirmed { .. }) => Some(Settlement::Confirmed {
                                fee_lamports: FEE_PER_SIGNATURE,
                            }),
                            Some(TxStatus::Failed { error, .. }) => {
                                Some(Settlement::Failed { error })
                            }
                            _ => Some(Settlement::Expired),
                        }
                    }
                }
            };
            // Whatever the outcome, these tickets sit out the rest of this
            // round: their scans were loaded as `submitted`, and one ticket
            // never has two records in flight (harmless on chain, where the
            // fuller one wins, but it would muddle which scans each named).
            busy.extend(tickets.iter().copied());
            match settlement {
                None => {}
                Some(settlement) => {
                    count(&mut report, &settlement, tickets.len());
                    state
                        .store
                        .settle_transaction(
                            signature,
                            &settlement,
                            settings.max_attempts,
                            state.clock.now(),
                        )
                        .await?;
                }
            }
        }
    }

    // 2. Judge the waiting scans against the chain.
    let waiting: Vec<&PendingScan> = pending
        .iter()
        .filter(|s| s.state == ReplayState::Ingested && !busy.contains(&s.ticket_id))
        .collect();
    if waiting.is_empty() {
        return Ok(report);
    }
    let minimum = settings.validator_min_lamports;
    let validator = Arc::new(validator_keypair(event));
    ops::ensure_funded(
        chain,
        Some(&ctx.authority),
        &validator.pubkey(),
        minimum,
        minimum.saturating_mul(2),
    )
    .await?;
    let mut ticket_ids: Vec<u32> = waiting.iter().map(|s| s.ticket_id).collect();
    ticket_ids.dedup();
    let folds = state.store.folds(event.event_id, &ticket_ids).await?;
    let on_chain = ops::tickets(chain, &event_address, &ticket_ids).await?;
    let applied: HashMap<u32, Option<u16>> = ticket_ids
        .iter()
        .zip(on_chain)
        .map(|(id, t)| (*id, t.map(|t| t.scans_applied)))
        .collect();
    let latest_allowed_ms = (state.clock.now() + MAX_AHEAD_SECS).saturating_mul(1000);
    let RoundPlan {
        on_chain,
        missing,
        too_many,
        held_back: _,
        batches,
    } = plan_round(&waiting, &folds, &applied, latest_allowed_ms, batch_max);
    let now = state.clock.now();
    if !on_chain.is_empty() {
        report.already_on_chain += on_chain.len();
        state.store.mark_on_chain(&on_chain, now).await?;
    }
    for (ids, reason) in [
        (&missing, "the ticket does not exist on chain"),
        (
            &too_many,
            "the ticket has more scans than an entry record counts",
        ),
    ] {
        if !ids.is_empty() {
            report.failed += ids.len();
            state
                .store
                .mark_unreplayable(ids, ReplayState::Failed, reason, now)
                .await?;
        }
    }

    // 3. Send the planned transactions.
    let mut tasks = JoinSet::new();
    for batch in batches.into_iter().take(IN_FLIGHT) {
        let scan_ids = batch.scan_ids();
        let instruction = ticketing::client::validate_entries(
            &validator.pubkey(),
            &event_address,
            &batch.records(),
        );
        let blockhash = chain.latest_blockhash().await?;
        let transaction = Transaction::new_signed_with_payer(
            &[instruction],
            Some(&validator.pubkey()),
            &[validator.as_ref()],
            blockhash,
        );
        let signature = transaction.signatures[0].to_string();
        // Named on its scans before it leaves: a crash from here on is
        // settled from the signature, never by sending the scans again blind.
        state
            .store
            .mark_submitted(
                event.event_id,
                &scan_ids,
                &signature,
                &blockhash.to_string(),
                state.clock.now(),
            )
            .await?;
        report.transactions += 1;
        let state = state.clone();
        let ctx = ctx.clone();
        let max_attempts = settings.max_attempts;
        let entries = scan_ids.len();
        tasks.spawn(async move {
            let outcome = ops::wait_for(
                ctx.chain.as_ref(),
                &transaction,
                Instant::now() + WAIT_PER_TX,
            )
            .await;
            let settlement = match outcome {
                Ok(()) => Settlement::Confirmed {
                    fee_lamports: FEE_PER_SIGNATURE,
                },
                Err(ChainError::BlockhashExpired) => Settlement::Expired,
                Err(ChainError::Refused(error)) => Settlement::Failed { error },
                // Unknown for now: a later round asks the chain again.
                Err(ChainError::Unavailable(e)) => {
                    tracing::warn!(%signature, error = %e, "replay transaction outcome unknown");
                    return Ok::<_, ReplayError>(None);
                }
            };
            state
                .store
                .settle_transaction(&signature, &settlement, max_attempts, state.clock.now())
                .await?;
            Ok(Some((settlement, entries)))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.map_err(|e| ReplayError::Event {
            event: event.event_id,
            message: format!("replay task failed: {e}"),
        })??;
        if let Some((settlement, entries)) = outcome {
            count(&mut report, &settlement, entries);
        }
    }
    Ok(report)
}

fn signatures_of(text: &str) -> Signature {
    text.parse().unwrap_or_default()
}

fn count(report: &mut RoundReport, settlement: &Settlement, entries: usize) {
    match settlement {
        Settlement::Confirmed { .. } => report.tx_confirmed += 1,
        Settlement::Failed { .. } => report.tx_failed += 1,
        Settlement::Expired => report.tx_expired += 1,
    }
    match settlement {
        Settlement::Confirmed { .. } => report.confirmed += entries,
        Settlement::Failed { .. } => report.failed += entries,
        Settlement::Expired => report.expired += entries,
    }
}

/// Runs rounds until no scan of `event_id` waits or is in flight, or until
/// `timeout`. For the demo and tests.
pub async fn drain(
    state: &Services,
    event_id: u64,
    timeout: Duration,
) -> Result<crate::store::ReplaySummary, ReplayError> {
    let deadline = Instant::now() + timeout;
    let holder = format!("drain-{}", uuid::Uuid::now_v7().simple());
    loop {
        round(state, &holder).await?;
        let summary = state.store.replay_summary(event_id).await?;
        if summary.waiting + summary.submitted == 0 || Instant::now() > deadline {
            return Ok(summary);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
