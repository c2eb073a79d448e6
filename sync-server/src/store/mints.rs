//! Organizer mints as durable intents (`mint_requests`, `mint_items`,
//! `mint_transactions`): a request and the tickets it asks for are written
//! in the transaction that takes their seats, before anything goes to chain;
//! each mint transaction is recorded, with the ticket ids it assigns, before
//! it is sent. Every change of state is one conditional UPDATE on the state
//! the caller expects (and, while minting, on the caller's lease), so two
//! servers, or a request and the recovery worker, never both move a ticket.

use solana_sdk::pubkey::Pubkey;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::inventory::{release_in, take_in};
use super::{Store, StoreError, corrupt, i64_of, seats_of};

/// Where a mint request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MintState {
    /// Seats taken; tickets being minted (or waiting for the chain).
    Minting,
    /// The chain refused part way: the tickets that landed are being
    /// revoked; the seats of the others were given back.
    Voiding,
    /// Every ticket minted and published.
    Completed,
    /// Refused: no valid ticket left from it, its unused seats released.
    Failed,
}

impl MintState {
    pub fn as_str(self) -> &'static str {
        match self {
            MintState::Minting => "minting",
            MintState::Voiding => "voiding",
            MintState::Completed => "completed",
            MintState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "minting" => MintState::Minting,
            "voiding" => MintState::Voiding,
            "completed" => MintState::Completed,
            "failed" => MintState::Failed,
            other => return Err(corrupt(format!("mint request state {other:?}"))),
        })
    }

    /// Whether work (minting, settling or voiding) is left.
    pub fn is_open(self) -> bool {
        matches!(self, MintState::Minting | MintState::Voiding)
    }
}

/// Where one ticket of a mint request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MintItemState {
    /// No transaction holds it.
    Pending,
    /// A recorded transaction assigns it a ticket id; it may have landed.
    Sent,
    /// On chain and published.
    Landed,
    /// Never minted; its seat went back on sale.
    Released,
    /// Minted, then revoked because its request failed (its seat stays
    /// sold: the chain counts it).
    Revoked,
}

impl MintItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            MintItemState::Pending => "pending",
            MintItemState::Sent => "sent",
            MintItemState::Landed => "landed",
            MintItemState::Released => "released",
            MintItemState::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "pending" => MintItemState::Pending,
            "sent" => MintItemState::Sent,
            "landed" => MintItemState::Landed,
            "released" => MintItemState::Released,
            "revoked" => MintItemState::Revoked,
            other => return Err(corrupt(format!("mint item state {other:?}"))),
        })
    }
}

/// Which endpoint a request came through: it decides the answer's shape
/// and how a field is named in refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MintKind {
    /// `POST /api/tickets/mint`.
    Single,
    /// `POST /api/tickets/batch-mint`.
    Batch,
    /// `POST /api/admin/events/{event}/tickets`.
    Admin,
}

impl MintKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MintKind::Single => "single",
            MintKind::Batch => "batch",
            MintKind::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "single" => MintKind::Single,
            "batch" => MintKind::Batch,
            "admin" => MintKind::Admin,
            other => return Err(corrupt(format!("mint request kind {other:?}"))),
        })
    }
}

/// One ticket of a mint request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintItem {
    /// Its place in the request (0-based).
    pub item_no: u32,
    pub recipient: Pubkey,
    pub tier: u8,
    pub state: MintItemState,
    /// Assigned when a transaction holding it was recorded.
    pub ticket_id: Option<u32>,
    pub signature: Option<String>,
}

/// A mint request with its tickets, in request order.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub request_id: String,
    pub event_id: u64,
    pub caller: String,
    pub kind: MintKind,
    pub idempotency_key: Option<String>,
    pub body_hash: String,
    pub state: MintState,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub items: Vec<MintItem>,
}

/// A new request as the service hands it over.
#[derive(Debug, Clone)]
pub struct NewMintRequest<'a> {
    pub request_id: &'a str,
    pub event_id: u64,
    pub caller: &'a str,
    pub kind: MintKind,
    pub idempotency_key: Option<&'a str>,
    pub body_hash: &'a str,
    pub recipients: &'a [(Pubkey, u8)],
    /// Who works on it first, and until when.
    pub lease_holder: &'a str,
    pub lease_until: i64,
}

/// What recording a new request did.
#[derive(Debug)]
pub enum Recorded {
    /// Written, seats taken.
    Created,
    /// The caller used this idempotency key before: that request, untouched.
    Existing(Box<MintRequest>),
    /// Not all seats fit: nothing written.
    NoSeats,
}

/// A recorded mint transaction not settled yet.
#[derive(Debug, Clone)]
pub struct UnsettledMint {
    pub signature: String,
    /// Base64 of the signed transaction (bincode).
    pub transaction_b64: String,
}

const REQUEST_COLUMNS: &str = "request_id, event_id, caller, kind, idempotency_key, body_hash, \
                               state, error, created_at, updated_at";

fn u32_of(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(format!("{what} {value}")))
}

fn request_of_row(r: &AnyRow) -> Result<MintRequest, StoreError> {
    Ok(MintRequest {
        request_id: r.try_get("request_id")?,
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
        caller: r.try_get("caller")?,
        kind: MintKind::parse(&r.try_get::<String, _>("kind")?)?,
        idempotency_key: r.try_get("idempotency_key")?,
        body_hash: r.try_get("body_hash")?,
        state: MintState::parse(&r.try_get::<String, _>("state")?)?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        items: Vec::new(),
    })
}

fn item_of_row(r: &AnyRow) -> Result<MintItem, StoreError> {
    let tier = r.try_get::<i64, _>("tier")?;
    Ok(MintItem {
        item_no: u32_of(r.try_get("item_no")?, "mint item")?,
        recipient: r
            .try_get::<String, _>("recipient")?
            .parse()
            .map_err(|_| corrupt("mint_items.recipient is not a key"))?,
        tier: u8::try_from(tier).map_err(|_| corrupt(format!("mint item tier {tier}")))?,
        state: MintItemState::parse(&r.try_get::<String, _>("state")?)?,
        ticket_id: r
            .try_get::<Option<i64>, _>("ticket_id")?
            .map(|id| u32_of(id, "ticket id"))
            .transpose()?,
        signature: r.try_get("signature")?,
    })
}

impl Store {
    /// Records a new mint request and its tickets and takes their seats, in
    /// one transaction; or finds the request the caller made before with
    /// the same idempotency key (then nothing changes).
    pub async fn record_mint_request(
        &self,
        new: &NewMintRequest<'_>,
        now: i64,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO mint_requests ({REQUEST_COLUMNS}, lease_holder, lease_until)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $8, $9, $10)
             ON CONFLICT (caller, idempotency_key) DO NOTHING"
        );
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(new.request_id)
            .bind(i64_of(new.event_id)?)
            .bind(new.caller)
            .bind(new.kind.as_str())
            .bind(new.idempotency_key)
            .bind(new.body_hash)
            .bind(MintState::Minting.as_str())
            .bind(now)
            .bind(new.lease_holder)
            .bind(new.lease_until)
            .execute(&mut *tx)
            .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            let key = new.idempotency_key.unwrap_or_default();
            return match self.mint_request_by_key(new.caller, key).await? {
                Some(existing) => Ok(Recorded::Existing(Box::new(existing))),
                None => Err(corrupt("an idempotency key clashed with no request")),
            };
        }
        for (item_no, (recipient, tier)) in new.recipients.iter().enumerate() {
            sqlx::query(
                "INSERT INTO mint_items (request_id, item_no, recipient, tier, state)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new.request_id)
            .bind(i64::try_from(item_no).map_err(corrupt)?)
            .bind(recipient.to_string())
            .bind(i64::from(*tier))
            .bind(MintItemState::Pending.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let seats = seats_of(new.recipients.iter().map(|(_, tier)| *tier));
        if !take_in(&mut tx, new.event_id, &seats).await? {
            tx.rollback().await?;
            return Ok(Recorded::NoSeats);
        }
        tx.commit().await?;
        Ok(Recorded::Created)
    }

    /// The request `caller` made with `key`, if any.
    pub async fn mint_request_by_key(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<MintRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM mint_requests WHERE caller = $1 AND idempotency_key = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(caller)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.with_items(request_of_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    /// A mint request with its tickets.
    pub async fn mint_request(&self, request_id: &str) -> Result<Option<MintRequest>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM mint_requests WHERE request_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.with_items(request_of_row(&row)?).await?)),
            None => Ok(None),
        }
    }

    async fn with_items(&self, mut request: MintRequest) -> Result<MintRequest, StoreError> {
        request.items = sqlx::query(
            "SELECT item_no, recipient, tier, state, ticket_id, signature FROM mint_items
             WHERE request_id = $1 ORDER BY item_no",
        )
        .bind(request.request_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(item_of_row)
        .collect::<Result<_, _>>()?;
        Ok(request)
    }

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

    /// The ids of an event's tickets the database knows, ascending.
    pub async fn known_ticket_ids(&self, event_id: u64) -> Result<Vec<u32>, StoreError> {
        sqlx::query("SELECT ticket_id FROM tickets WHERE event_id = $1 ORDER BY ticket_id")
            .bind(i64_of(event_id)?)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| u32_of(r.try_get("ticket_id")?, "ticket id"))
            .collect()
    }
}
