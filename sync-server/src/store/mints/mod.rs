//! Organizer mints as durable intents (`mint_requests`, `mint_items`,
//! `mint_transactions`): a request and the tickets it asks for are written
//! in the transaction that takes their seats, before anything goes to chain;
//! each mint transaction is recorded, with the ticket ids it assigns, before
//! it is sent. Every change of state is one conditional UPDATE on the state
//! the caller expects (and, while minting, on the caller's lease), so two
//! servers, or a request and the recovery worker, never both move a ticket.
//! This file records and reads requests; `progress` moves them along.

use solana_sdk::pubkey::Pubkey;
use sqlx::Row;
use sqlx::any::AnyRow;

mod progress;

use super::inventory::take_in;
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
