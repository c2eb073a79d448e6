//! A mint request's way to its end: the lease of whoever works on it, its
//! transactions recorded before they are sent and settled by signature,
//! and the request completed, or failed with its unused seats released and
//! its landed tickets revoked.

use sqlx::Row;

use super::{MintItemState, MintState, UnsettledMint};
use crate::store::inventory::release_in;
use crate::store::{Store, StoreError, corrupt, i64_of, seats_of};

impl Store {
    /// Takes the lease of an open request nobody holds (or whose holder's
    /// lease ran out); `false` when someone else works on it or it is done.
    pub async fn lease_mint_request(
        &self,
        request_id: &str,
        holder: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "UPDATE mint_requests SET lease_holder = $2, lease_until = $3
             WHERE request_id = $1 AND state IN ($5, $6)
               AND (lease_holder IS NULL OR lease_until <= $4 OR lease_holder = $2)",
        )
        .bind(request_id)
        .bind(holder)
        .bind(until)
        .bind(now)
        .bind(MintState::Minting.as_str())
        .bind(MintState::Voiding.as_str())
        .execute(&self.pool)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives a lease up so the recovery worker may take the request at once.
    pub async fn release_mint_request_lease(
        &self,
        request_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mint_requests SET lease_holder = NULL, lease_until = 0
             WHERE request_id = $1 AND lease_holder = $2",
        )
        .bind(request_id)
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Open requests whose lease is free, oldest first.
    pub async fn mint_requests_to_resume(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id FROM mint_requests
             WHERE state IN ($1, $2) AND (lease_holder IS NULL OR lease_until <= $3)
             ORDER BY created_at, request_id LIMIT 100",
        )
        .bind(MintState::Minting.as_str())
        .bind(MintState::Voiding.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("request_id")?))
            .collect()
    }

    /// Every open request (minting or voiding), oldest first.
    pub async fn open_mint_requests(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT request_id FROM mint_requests WHERE state IN ($1, $2)
             ORDER BY created_at, request_id",
        )
        .bind(MintState::Minting.as_str())
        .bind(MintState::Voiding.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("request_id")?))
            .collect()
    }

    /// Records a signed transaction minting `item_nos` (pending items of a
    /// minting request whose lease `holder` has) as tickets `first_ticket..`,
    /// before it is sent. `false`, with nothing written, when the lease or
    /// any of the items moved on.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_request_transaction(
        &self,
        request_id: &str,
        holder: &str,
        item_nos: &[u32],
        first_ticket: u32,
        signature: &str,
        transaction_b64: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mine = sqlx::query(
            "UPDATE mint_requests SET updated_at = $3
             WHERE request_id = $1 AND lease_holder = $2 AND state = $4",
        )
        .bind(request_id)
        .bind(holder)
        .bind(now)
        .bind(MintState::Minting.as_str())
        .execute(&mut *tx)
        .await?;
        if mine.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let event_id: i64 = sqlx::query("SELECT event_id FROM mint_requests WHERE request_id = $1")
            .bind(request_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("event_id")?;
        for (offset, item_no) in item_nos.iter().enumerate() {
            let ticket_id = u64::from(first_ticket) + offset as u64;
            let moved = sqlx::query(
                "UPDATE mint_items SET state = $3, ticket_id = $4, signature = $5
                 WHERE request_id = $1 AND item_no = $2 AND state = $6",
            )
            .bind(request_id)
            .bind(i64::from(*item_no))
            .bind(MintItemState::Sent.as_str())
            .bind(i64_of(ticket_id)?)
            .bind(signature)
            .bind(MintItemState::Pending.as_str())
            .execute(&mut *tx)
            .await?;
            if moved.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO mint_transactions (signature, request_id, event_id, first_ticket,
                 transaction_b64, state, created_at)
             VALUES ($1, $2, $3, $4, $5, 'sent', $6)",
        )
        .bind(signature)
        .bind(request_id)
        .bind(event_id)
        .bind(i64::from(first_ticket))
        .bind(transaction_b64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The recorded transactions of a request not settled yet.
    pub async fn unsettled_mints(
        &self,
        request_id: &str,
    ) -> Result<Vec<UnsettledMint>, StoreError> {
        let rows = sqlx::query(
            "SELECT signature, transaction_b64 FROM mint_transactions
             WHERE request_id = $1 AND state = 'sent' ORDER BY created_at, signature",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnsettledMint {
                    signature: r.try_get("signature")?,
                    transaction_b64: r.try_get("transaction_b64")?,
                })
            })
            .collect()
    }

    /// Settles a recorded transaction as the chain has it: its items landed,
    /// or (it never landed and never will) they are pending again, free for
    /// a new transaction. Repeating it changes nothing.
    pub async fn settle_mint_transaction(
        &self,
        signature: &str,
        landed: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE mint_transactions SET state = $2, error = $3 WHERE signature = $1 AND state = 'sent'",
        )
        .bind(signature)
        .bind(if landed { "landed" } else { "gone" })
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let items = if landed {
            sqlx::query("UPDATE mint_items SET state = $2 WHERE signature = $1 AND state = $3")
                .bind(signature)
                .bind(MintItemState::Landed.as_str())
                .bind(MintItemState::Sent.as_str())
        } else {
            sqlx::query(
                "UPDATE mint_items SET state = $2, ticket_id = NULL, signature = NULL
                 WHERE signature = $1 AND state = $3",
            )
            .bind(signature)
            .bind(MintItemState::Pending.as_str())
            .bind(MintItemState::Sent.as_str())
        };
        items.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A minting request whose tickets all landed becomes completed.
    pub async fn complete_mint_request(
        &self,
        request_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mint_requests SET state = $2, updated_at = $3, lease_holder = NULL, lease_until = 0
             WHERE request_id = $1 AND state = $4
               AND NOT EXISTS (SELECT 1 FROM mint_items i
                               WHERE i.request_id = $1 AND i.state <> $5)",
        )
        .bind(request_id)
        .bind(MintState::Completed.as_str())
        .bind(now)
        .bind(MintState::Minting.as_str())
        .bind(MintItemState::Landed.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails a minting request with nothing in flight: its pending tickets
    /// are released and their seats given back, in one transaction; it is
    /// `voiding` while tickets of it that landed remain to be revoked, else
    /// `failed`. `false` when it was not minting or a transaction of it is
    /// still unsettled.
    pub async fn fail_mint_request(
        &self,
        request_id: &str,
        error: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT event_id, state,
                 (SELECT COUNT(*) FROM mint_items i WHERE i.request_id = $1 AND i.state = $2) AS sent,
                 (SELECT COUNT(*) FROM mint_items i WHERE i.request_id = $1 AND i.state = $3) AS landed
             FROM mint_requests WHERE request_id = $1",
        )
        .bind(request_id)
        .bind(MintItemState::Sent.as_str())
        .bind(MintItemState::Landed.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        let state = MintState::parse(&row.try_get::<String, _>("state")?)?;
        if state != MintState::Minting || row.try_get::<i64, _>("sent")? > 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let event_id = u64::try_from(row.try_get::<i64, _>("event_id")?).map_err(corrupt)?;
        let next = if row.try_get::<i64, _>("landed")? > 0 {
            MintState::Voiding
        } else {
            MintState::Failed
        };
        let pending: Vec<u8> =
            sqlx::query("SELECT tier FROM mint_items WHERE request_id = $1 AND state = $2")
                .bind(request_id)
                .bind(MintItemState::Pending.as_str())
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    let tier: i64 = r.try_get("tier")?;
                    u8::try_from(tier).map_err(|_| corrupt(format!("mint item tier {tier}")))
                })
                .collect::<Result<_, StoreError>>()?;
        release_in(&mut tx, event_id, &seats_of(pending)).await?;
        sqlx::query("UPDATE mint_items SET state = $2 WHERE request_id = $1 AND state = $3")
            .bind(request_id)
            .bind(MintItemState::Released.as_str())
            .bind(MintItemState::Pending.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE mint_requests SET state = $2, error = $3, updated_at = $4 WHERE request_id = $1",
        )
        .bind(request_id)
        .bind(next.as_str())
        .bind(error)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a landed ticket of a voiding request revoked.
    pub async fn mark_mint_item_revoked(
        &self,
        request_id: &str,
        item_no: u32,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE mint_items SET state = $3 WHERE request_id = $1 AND item_no = $2 AND state = $4",
        )
        .bind(request_id)
        .bind(i64::from(item_no))
        .bind(MintItemState::Revoked.as_str())
        .bind(MintItemState::Landed.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A voiding request with no landed ticket left becomes failed.
    pub async fn finish_voiding(&self, request_id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mint_requests SET state = $2, updated_at = $3, lease_holder = NULL, lease_until = 0
             WHERE request_id = $1 AND state = $4
               AND NOT EXISTS (SELECT 1 FROM mint_items i
                               WHERE i.request_id = $1 AND i.state = $5)",
        )
        .bind(request_id)
        .bind(MintState::Failed.as_str())
        .bind(now)
        .bind(MintState::Voiding.as_str())
        .bind(MintItemState::Landed.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
