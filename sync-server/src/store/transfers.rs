//! Email transfers (`email_transfers`): a ticket sent to an email address,
//! from the holder's prepared transaction to its claim, cancel or expiry.
//! Each row keeps its status by name ([`TransferStatus`]) and, until the
//! claim mail is handed to the relay, the claim secret.

use solana_sdk::pubkey::Pubkey;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, i64_of};
use crate::adapters::mail::ClaimSecret;

/// Where an email transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferStatus {
    /// Made for the holder to sign; not on chain (yet).
    Prepared,
    /// On chain, waiting for a claim.
    Open,
    Claimed,
    Cancelled,
    Expired,
}

impl TransferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferStatus::Prepared => "prepared",
            TransferStatus::Open => "open",
            TransferStatus::Claimed => "claimed",
            TransferStatus::Cancelled => "cancelled",
            TransferStatus::Expired => "expired",
        }
    }

    pub(super) fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "prepared" => TransferStatus::Prepared,
            "open" => TransferStatus::Open,
            "claimed" => TransferStatus::Claimed,
            "cancelled" => TransferStatus::Cancelled,
            "expired" => TransferStatus::Expired,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "email transfer status {other:?}"
                )));
            }
        })
    }
}

/// An email transfer as stored.
#[derive(Debug, Clone)]
pub struct EmailTransfer {
    pub claim_key: Pubkey,
    pub event_id: u64,
    pub ticket_id: u32,
    pub sender: Pubkey,
    pub email: String,
    pub email_hash: [u8; 32],
    /// Until the claim mail is sent.
    pub claim_secret: Option<ClaimSecret>,
    /// Unix seconds on the chain's clock.
    pub expires_at: i64,
    pub status: TransferStatus,
    /// When the relay took the claim mail (the server's clock).
    pub mail_sent_at: Option<i64>,
}

const COLUMNS: &str = "claim_key, event_id, ticket_id, sender, email, email_hash, claim_secret, \
                       expires_at, status, mail_sent_at";

fn transfer_of_row(r: &AnyRow) -> Result<EmailTransfer, StoreError> {
    let key = |col: &str| -> Result<Pubkey, StoreError> {
        r.try_get::<String, _>(col)?
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("email_transfers.{col} is not a key")))
    };
    let hash: [u8; 32] = hex::decode(r.try_get::<String, _>("email_hash")?)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("email_transfers.email_hash".into()))?;
    let secret = r
        .try_get::<Option<String>, _>("claim_secret")?
        .map(ClaimSecret::new)
        .transpose()
        .map_err(|_| StoreError::Corrupt("email_transfers.claim_secret".into()))?;
    Ok(EmailTransfer {
        claim_key: key("claim_key")?,
        event_id: u64::try_from(r.try_get::<i64, _>("event_id")?)
            .map_err(|_| StoreError::Corrupt("email_transfers.event_id".into()))?,
        ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?)
            .map_err(|_| StoreError::Corrupt("email_transfers.ticket_id".into()))?,
        sender: key("sender")?,
        email: r.try_get("email")?,
        email_hash: hash,
        claim_secret: secret,
        expires_at: r.try_get("expires_at")?,
        status: TransferStatus::parse(&r.try_get::<String, _>("status")?)?,
        mail_sent_at: r.try_get("mail_sent_at")?,
    })
}

impl Store {
    /// Keeps a transfer made for the holder to sign.
    pub async fn insert_email_transfer(
        &self,
        transfer: &EmailTransfer,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO email_transfers (claim_key, event_id, ticket_id, sender, email, email_hash,
                 claim_secret, expires_at, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(transfer.claim_key.to_string())
        .bind(i64_of(transfer.event_id)?)
        .bind(i64::from(transfer.ticket_id))
        .bind(transfer.sender.to_string())
        .bind(transfer.email.clone())
        .bind(hex::encode(transfer.email_hash))
        .bind(
            transfer
                .claim_secret
                .as_ref()
                .map(|s| s.expose().to_owned()),
        )
        .bind(transfer.expires_at)
        .bind(transfer.status.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn email_transfer(
        &self,
        claim_key: &Pubkey,
    ) -> Result<Option<EmailTransfer>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM email_transfers WHERE claim_key = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(claim_key.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(transfer_of_row)
            .transpose()
    }

    /// The ticket's open email transfer, if it has one.
    pub async fn open_email_transfer(
        &self,
        event_id: u64,
        ticket_id: u32,
    ) -> Result<Option<EmailTransfer>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM email_transfers
             WHERE event_id = $1 AND ticket_id = $2 AND status = $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64_of(event_id)?)
            .bind(i64::from(ticket_id))
            .bind(TransferStatus::Open.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(transfer_of_row)
            .transpose()
    }

    /// Moves a transfer from `from` to `to`; `false` when it was not in
    /// `from` (someone else moved it first). Leaving `prepared` or `open`
    /// for good forgets the secret.
    pub async fn set_email_transfer_status(
        &self,
        claim_key: &Pubkey,
        from: TransferStatus,
        to: TransferStatus,
        recipient: Option<&Pubkey>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let keeps_secret = to == TransferStatus::Open;
        let done = sqlx::query(
            "UPDATE email_transfers SET status = $1, updated_at = $2,
                 recipient = COALESCE($3, recipient),
                 claim_secret = CASE WHEN $4 = 1 THEN claim_secret ELSE NULL END
             WHERE claim_key = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(recipient.map(|r| r.to_string()))
        .bind(i64::from(keeps_secret))
        .bind(claim_key.to_string())
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the secret out for mailing: `true` when this call took it (a
    /// concurrent sender finds it gone and sends nothing).
    pub async fn take_claim_secret(
        &self,
        claim_key: &Pubkey,
        secret: &ClaimSecret,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE email_transfers SET claim_secret = NULL, mail_sent_at = $1, updated_at = $1
             WHERE claim_key = $2 AND claim_secret = $3",
        )
        .bind(now)
        .bind(claim_key.to_string())
        .bind(secret.expose().to_owned())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts the secret back after the mail failed, so it can be resent.
    pub async fn return_claim_secret(
        &self,
        claim_key: &Pubkey,
        secret: &ClaimSecret,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_transfers SET claim_secret = $1, mail_sent_at = NULL, updated_at = $2
             WHERE claim_key = $3 AND status = $4",
        )
        .bind(secret.expose().to_owned())
        .bind(now)
        .bind(claim_key.to_string())
        .bind(TransferStatus::Open.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Drops the ticket's prepared transfers other than `keep`: once one is
    /// open on chain, the others can never be.
    pub async fn drop_prepared_email_transfers(
        &self,
        event_id: u64,
        ticket_id: u32,
        keep: Option<&Pubkey>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM email_transfers
             WHERE event_id = $1 AND ticket_id = $2 AND status = $3 AND claim_key <> $4",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(ticket_id))
        .bind(TransferStatus::Prepared.as_str())
        .bind(keep.map(|k| k.to_string()).unwrap_or_default())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Drops prepared transfers that can no longer be opened: their expiry
    /// passed on chain, or they were made before `made_before`.
    pub async fn drop_stale_prepared_email_transfers(
        &self,
        chain_now: i64,
        made_before: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM email_transfers
             WHERE status = $1 AND (expires_at <= $2 OR created_at < $3)",
        )
        .bind(TransferStatus::Prepared.as_str())
        .bind(chain_now)
        .bind(made_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Open transfers whose expiry passed on chain, oldest first.
    pub async fn expired_email_transfers(
        &self,
        chain_now: i64,
        limit: i64,
    ) -> Result<Vec<EmailTransfer>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM email_transfers
             WHERE status = $1 AND expires_at <= $2 ORDER BY expires_at LIMIT $3"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(TransferStatus::Open.as_str())
            .bind(chain_now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(transfer_of_row)
            .collect()
    }
}
