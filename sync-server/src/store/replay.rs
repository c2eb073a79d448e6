//! Storage of the on-chain side: which events live on chain with which
//! validator key, the replay worker's per-event leases, its transactions, and
//! each scan's replay state.
//!
//! A scan's `replay_state` moves `ingested -> submitted -> confirmed` (or
//! straight to `confirmed` when the chain's record of its ticket already
//! folds it), or to `failed` (with the error) after the chain refused it on
//! its own, or to `voided` when its gate undid it before it was sent (the
//! holder did not pass). `superseded` is only found on scans of servers before entry
//! records became folds. A `submitted` scan always names the
//! transaction (signature and blockhash) it went out in, written *before* the
//! transaction is sent, so after any crash the worker can ask the chain what
//! became of it instead of guessing.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Store, StoreError, corrupt, i64_of, param_list};

/// Where a scan is on its way to the chain; stored by name in
/// `scans.replay_state`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReplayState {
    /// Stays here: not an admission of a known ticket.
    None,
    /// Waiting to be sent.
    Ingested,
    /// Named on a transaction that may still land.
    Submitted,
    Confirmed,
    /// Left by servers whose records were single scans: the chain already
    /// held a later scan of its ticket. No longer produced.
    Superseded,
    Failed,
    /// Undone at its gate before it was sent: never goes on chain.
    Voided,
}

impl ReplayState {
    pub const ALL: [Self; 7] = [
        Self::None,
        Self::Ingested,
        Self::Submitted,
        Self::Confirmed,
        Self::Superseded,
        Self::Failed,
        Self::Voided,
    ];

    /// The name stored in the database and shown to organizers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Ingested => "ingested",
            Self::Submitted => "submitted",
            Self::Confirmed => "confirmed",
            Self::Superseded => "superseded",
            Self::Failed => "failed",
            Self::Voided => "voided",
        }
    }
}

impl std::fmt::Display for ReplayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReplayState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| corrupt(format!("{text:?} is not a replay state")))
    }
}

/// An event the server created on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChain {
    pub event_id: u64,
    /// The event account (base58).
    pub address: String,
    pub organizer: String,
    pub validator_public: String,
    /// The validator's secret seed.
    pub validator_secret: [u8; 32],
}

/// A scan waiting to be recorded on chain (or waiting on its transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingScan {
    pub scan_id: String,
    pub ticket_id: u32,
    pub gate: u32,
    pub exit: bool,
    pub scanned_at_ms: i64,
    /// [`ReplayState::Ingested`] or [`ReplayState::Submitted`].
    pub state: ReplayState,
    pub signature: Option<String>,
    pub blockhash: Option<String>,
    pub attempts: u32,
    /// Set when an earlier transaction holding it failed: send it alone.
    pub error: Option<String>,
}

/// How a replay transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Confirmed {
        fee_lamports: u64,
    },
    /// The chain refused it; `isolate` sends its scans one per transaction
    /// next time so one bad scan cannot hold back the rest.
    Failed {
        error: String,
    },
    /// Its blockhash expired unseen: it never landed.
    Expired,
}

/// An event's replay figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReplaySummary {
    pub waiting: u64,
    pub submitted: u64,
    pub confirmed: u64,
    pub superseded: u64,
    pub failed: u64,
    /// Admissions undone at their gate before they were sent.
    pub voided: u64,
    pub transactions: u64,
    pub fees_lamports: u64,
}

/// One scan's replay state, as organizers see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ScanReplay {
    pub scan_id: String,
    pub ticket_id: Option<u32>,
    #[schema(inline)]
    pub state: ReplayState,
    pub signature: Option<String>,
    pub error: Option<String>,
}

fn event_chain_from_row(r: &AnyRow) -> Result<EventChain, StoreError> {
    let secret: String = r.try_get("validator_secret")?;
    let secret: [u8; 32] = hex::decode(secret)
        .map_err(corrupt)?
        .try_into()
        .map_err(|_| corrupt("a validator secret is 32 bytes"))?;
    Ok(EventChain {
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
        address: r.try_get("address")?,
        organizer: r.try_get("organizer")?,
        validator_public: r.try_get("validator_public")?,
        validator_secret: secret,
    })
}

const EVENT_CHAIN_COLUMNS: &str =
    "event_id, address, organizer, validator_public, validator_secret";

impl Store {
    /// Records that `event` exists on chain (first writer wins: the validator
    /// key of an event never changes once stored). Returns the stored row.
    pub async fn save_event_chain(&self, event: &EventChain) -> Result<EventChain, StoreError> {
        sqlx::query(
            "INSERT INTO event_chain (event_id, address, organizer, validator_public, validator_secret)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(i64_of(event.event_id)?)
        .bind(event.address.clone())
        .bind(event.organizer.clone())
        .bind(event.validator_public.clone())
        .bind(hex::encode(event.validator_secret))
        .execute(&self.pool)
        .await?;
        self.event_chain(event.event_id)
            .await?
            .ok_or_else(|| corrupt("event_chain row missing after insert"))
    }

    pub async fn event_chain(&self, event_id: u64) -> Result<Option<EventChain>, StoreError> {
        let sql = format!("SELECT {EVENT_CHAIN_COLUMNS} FROM event_chain WHERE event_id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64_of(event_id)?)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(event_chain_from_row)
            .transpose()
    }

    pub async fn event_chains(&self) -> Result<Vec<EventChain>, StoreError> {
        let sql = format!("SELECT {EVENT_CHAIN_COLUMNS} FROM event_chain ORDER BY event_id");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(event_chain_from_row)
            .collect()
    }

    /// Takes the replay lease of one event with scans waiting, preferring the
    /// one served longest ago; `None` when there is no work free. On
    /// PostgreSQL the candidate row is locked with `FOR UPDATE SKIP LOCKED`,
    /// so servers sharing the database never take the same event.
    pub async fn claim_replay_event(
        &self,
        holder: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<EventChain>, StoreError> {
        let candidates = "SELECT c.event_id FROM event_chain c
             WHERE (c.lease_until IS NULL OR c.lease_until <= $1 OR c.lease_holder = $2)
               AND EXISTS (SELECT 1 FROM scans s WHERE s.event_id = c.event_id
                           AND s.replay_state IN ('ingested', 'submitted'))
             ORDER BY COALESCE(c.lease_until, 0), c.event_id LIMIT 1";
        let sql = match self.backend {
            // Locks the row it picks and skips rows other servers hold locked.
            Backend::Postgres => format!(
                "UPDATE event_chain SET lease_holder = $2, lease_until = $3
                 WHERE event_id = ({candidates} FOR UPDATE SKIP LOCKED)
                 RETURNING {EVENT_CHAIN_COLUMNS}"
            ),
            // One statement is one write transaction: SQLite serialises them.
            Backend::Sqlite => format!(
                "UPDATE event_chain SET lease_holder = $2, lease_until = $3
                 WHERE event_id = ({candidates})
                 RETURNING {EVENT_CHAIN_COLUMNS}"
            ),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(holder.to_owned())
            .bind(now + lease_secs)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(event_chain_from_row).transpose()
    }

    /// Gives the lease back early (the worker is done with the event for now).
    /// `until` is when others may take it: now, or later to rest an event
    /// whose chain is failing.
    pub async fn release_replay_event(
        &self,
        event_id: u64,
        holder: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE event_chain SET lease_holder = NULL, lease_until = $1
             WHERE event_id = $2 AND lease_holder = $3",
        )
        .bind(until)
        .bind(i64_of(event_id)?)
        .bind(holder.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` scans of an event still to be recorded, per ticket in
    /// scan-time order.
    pub async fn pending_replay(
        &self,
        event_id: u64,
        limit: u32,
    ) -> Result<Vec<PendingScan>, StoreError> {
        let rows = sqlx::query(
            "SELECT scan_id, ticket_id, gate, direction, scanned_at_ms, replay_state,
                    replay_signature, replay_blockhash, replay_attempts, replay_error
             FROM scans WHERE event_id = $1 AND replay_state IN ('ingested', 'submitted')
             ORDER BY ticket_id, scanned_at_ms, scan_id LIMIT $2",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingScan {
                    scan_id: r.try_get("scan_id")?,
                    ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
                    gate: u32::try_from(r.try_get::<i64, _>("gate")?).map_err(corrupt)?,
                    exit: r.try_get::<String, _>("direction")? == "exit",
                    scanned_at_ms: r.try_get("scanned_at_ms")?,
                    state: r.try_get::<String, _>("replay_state")?.parse()?,
                    signature: r.try_get("replay_signature")?,
                    blockhash: r.try_get("replay_blockhash")?,
                    attempts: u32::try_from(r.try_get::<i64, _>("replay_attempts")?)
                        .map_err(corrupt)?,
                    error: r.try_get("replay_error")?,
                })
            })
            .collect()
    }

    /// Names the transaction `scan_ids` are about to go out in. Written and
    /// committed before the transaction is sent.
    pub async fn mark_submitted(
        &self,
        event_id: u64,
        scan_ids: &[String],
        signature: &str,
        blockhash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO replay_transactions (signature, event_id, blockhash, entries, state, submitted_at)
             VALUES ($1, $2, $3, $4, 'submitted', $5)",
        )
        .bind(signature.to_owned())
        .bind(i64_of(event_id)?)
        .bind(blockhash.to_owned())
        .bind(i64::try_from(scan_ids.len()).map_err(corrupt)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE scans SET replay_state = 'submitted', replay_signature = $1,
                 replay_blockhash = $2, replay_attempts = replay_attempts + 1, replay_updated_at = $3
             WHERE scan_id IN ({})",
            param_list(4, scan_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(signature.to_owned())
            .bind(blockhash.to_owned())
            .bind(now);
        for id in scan_ids {
            query = query.bind(id.clone());
        }
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how the transaction `signature` ended, for it and its scans.
    /// A failed transaction's scans go back to waiting (sent alone next
    /// time) unless they were alone already or used up `max_attempts`, in
    /// which case they are marked failed with the error.
    pub async fn settle_transaction(
        &self,
        signature: &str,
        settlement: &Settlement,
        max_attempts: u32,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let (state, fee, error) = match settlement {
            Settlement::Confirmed { fee_lamports } => {
                ("confirmed", Some(i64_of(*fee_lamports)?), None)
            }
            Settlement::Failed { error } => ("failed", None, Some(error.clone())),
            Settlement::Expired => ("expired", None, None),
        };
        let entries = sqlx::query(
            "UPDATE replay_transactions SET state = $1, fee_lamports = $2, error = $3, settled_at = $4
             WHERE signature = $5 RETURNING entries",
        )
        .bind(state)
        .bind(fee)
        .bind(error.clone())
        .bind(now)
        .bind(signature.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<i64, _>("entries"))
        .transpose()?
        .unwrap_or(0);
        match settlement {
            Settlement::Confirmed { .. } => {
                sqlx::query(
                    "UPDATE scans SET replay_state = 'confirmed', replay_error = NULL, replay_updated_at = $1
                     WHERE replay_signature = $2 AND replay_state = 'submitted'",
                )
                .bind(now)
                .bind(signature.to_owned())
                .execute(&mut *tx)
                .await?;
            }
            Settlement::Expired => {
                sqlx::query(
                    "UPDATE scans SET
                         replay_state = CASE WHEN voided_by IS NULL THEN 'ingested' ELSE 'voided' END,
                         replay_signature = NULL, replay_blockhash = NULL, replay_updated_at = $1
                     WHERE replay_signature = $2 AND replay_state = 'submitted'",
                )
                .bind(now)
                .bind(signature.to_owned())
                .execute(&mut *tx)
                .await?;
            }
            Settlement::Failed { error } => {
                sqlx::query(
                    "UPDATE scans SET
                         replay_state = CASE WHEN $1 <= 1 OR replay_attempts >= $2 THEN 'failed'
                             WHEN voided_by IS NOT NULL THEN 'voided' ELSE 'ingested' END,
                         replay_signature = CASE WHEN $1 <= 1 OR replay_attempts >= $2 THEN replay_signature ELSE NULL END,
                         replay_error = $3, replay_updated_at = $4
                     WHERE replay_signature = $5 AND replay_state = 'submitted'",
                )
                .bind(entries)
                .bind(i64::from(max_attempts))
                .bind(error.clone())
                .bind(now)
                .bind(signature.to_owned())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets scans that will not go on chain as they are:
    /// [`ReplayState::Superseded`] or [`ReplayState::Failed`], with the reason.
    pub async fn mark_unreplayable(
        &self,
        scan_ids: &[String],
        state: ReplayState,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        for chunk in scan_ids.chunks(500) {
            let sql = format!(
                "UPDATE scans SET replay_state = $1, replay_error = $2, replay_updated_at = $3
                 WHERE scan_id IN ({}) AND replay_state = 'ingested'",
                param_list(4, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(state.as_str())
                .bind(reason.to_owned())
                .bind(now);
            for id in chunk {
                query = query.bind(id.clone());
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Marks waiting scans confirmed without a transaction of their own: the
    /// chain's record of their ticket already folds them.
    pub async fn mark_on_chain(&self, scan_ids: &[String], now: i64) -> Result<(), StoreError> {
        for chunk in scan_ids.chunks(500) {
            let sql = format!(
                "UPDATE scans SET replay_state = 'confirmed', replay_error = NULL, replay_updated_at = $1
                 WHERE scan_id IN ({}) AND replay_state = 'ingested'",
                param_list(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for id in chunk {
                query = query.bind(id.clone());
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Counts of an event's scans by replay state, and its transactions' fees.
    pub async fn replay_summary(&self, event_id: u64) -> Result<ReplaySummary, StoreError> {
        let rows = sqlx::query(
            "SELECT replay_state, COUNT(*) AS n FROM scans WHERE event_id = $1 GROUP BY replay_state",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        let mut summary = ReplaySummary::default();
        for r in rows {
            let n = u64::try_from(r.try_get::<i64, _>("n")?).map_err(corrupt)?;
            // A name this build does not know counts nowhere, as before.
            let Ok(state) = r
                .try_get::<String, _>("replay_state")?
                .parse::<ReplayState>()
            else {
                continue;
            };
            match state {
                ReplayState::Ingested => summary.waiting = n,
                ReplayState::Submitted => summary.submitted = n,
                ReplayState::Confirmed => summary.confirmed = n,
                ReplayState::Superseded => summary.superseded = n,
                ReplayState::Failed => summary.failed = n,
                ReplayState::Voided => summary.voided = n,
                ReplayState::None => {}
            }
        }
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(fee_lamports), 0) AS BIGINT) AS fees
             FROM replay_transactions WHERE event_id = $1 AND state = 'confirmed'",
        )
        .bind(i64_of(event_id)?)
        .fetch_one(&self.pool)
        .await?;
        summary.transactions = u64::try_from(row.try_get::<i64, _>("n")?).map_err(corrupt)?;
        summary.fees_lamports = u64::try_from(row.try_get::<i64, _>("fees")?).map_err(corrupt)?;
        Ok(summary)
    }

    /// The replay state of each scan of an event that opened the gate, in
    /// scan-time order (organizers' view; also what tests check).
    pub async fn scan_replays(&self, event_id: u64) -> Result<Vec<ScanReplay>, StoreError> {
        let rows = sqlx::query(
            "SELECT scan_id, ticket_id, replay_state, replay_signature, replay_error FROM scans
             WHERE event_id = $1 AND replay_state <> 'none' ORDER BY scanned_at_ms, scan_id",
        )
        .bind(i64_of(event_id)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScanReplay {
                    scan_id: r.try_get("scan_id")?,
                    ticket_id: r
                        .try_get::<Option<i64>, _>("ticket_id")?
                        .map(u32::try_from)
                        .transpose()
                        .map_err(corrupt)?,
                    state: r.try_get::<String, _>("replay_state")?.parse()?,
                    signature: r.try_get("replay_signature")?,
                    error: r.try_get("replay_error")?,
                })
            })
            .collect()
    }
}
