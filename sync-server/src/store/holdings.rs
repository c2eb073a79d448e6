//! A wallet's tickets as its holder's page shows them: those it holds, with
//! where the holder is, and those it held and sent away (bought or sent by
//! email from it, now another wallet's or waiting for a claim).

use sqlx::Row;

use super::feed::ticket_of_row;
use super::{AttendeeRow, Store, StoreError, corrupt};
use crate::store::TransferStatus;

/// An email transfer a wallet sent, as its sender's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentByEmail {
    pub event_id: u64,
    pub ticket_id: u32,
    pub email: String,
    pub status: TransferStatus,
    /// On the chain's clock.
    pub expires_at: i64,
}

impl Store {
    /// The tickets `owner` (base58) holds, with presence, by event and id
    /// (at most a thousand).
    pub async fn held_tickets(&self, owner: &str) -> Result<Vec<AttendeeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.*, p.inside AS p_inside, p.entries AS p_entries FROM tickets t
             LEFT JOIN ticket_presence p ON p.event_id = t.event_id AND p.ticket_id = t.ticket_id
             WHERE t.owner = $1 ORDER BY t.event_id, t.ticket_id LIMIT 1000",
        )
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttendeeRow {
                    ticket: ticket_of_row(r)?,
                    inside: r.try_get::<Option<i64>, _>("p_inside")?.map(|i| i == 1),
                    entries: r
                        .try_get::<Option<i64>, _>("p_entries")?
                        .map_or(0, |e| u64::try_from(e).unwrap_or(0)),
                })
            })
            .collect()
    }

    /// Tickets `wallet` (base58) bought or sent by email that another
    /// wallet holds now (at most a thousand).
    pub async fn tickets_passed_on(
        &self,
        wallet: &str,
    ) -> Result<Vec<shared::wire::CachedTicket>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.* FROM tickets t WHERE t.owner <> $1 AND (
                EXISTS (SELECT 1 FROM purchases p WHERE p.buyer = $1
                        AND p.event_id = t.event_id AND p.ticket_id = t.ticket_id)
                OR EXISTS (SELECT 1 FROM email_transfers e WHERE e.sender = $1
                        AND e.event_id = t.event_id AND e.ticket_id = t.ticket_id
                        AND e.status IN ('open', 'claimed')))
             ORDER BY t.event_id, t.ticket_id LIMIT 1000",
        )
        .bind(wallet.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_of_row).collect()
    }

    /// Email transfers `sender` (base58) opened that were not dropped:
    /// open, claimed, cancelled or expired, newest first (at most 200).
    pub async fn sent_by_email(&self, sender: &str) -> Result<Vec<SentByEmail>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, ticket_id, email, status, expires_at FROM email_transfers
             WHERE sender = $1 AND status <> 'prepared' ORDER BY updated_at DESC LIMIT 200",
        )
        .bind(sender.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(SentByEmail {
                    event_id: u64::try_from(r.try_get::<i64, _>("event_id")?).map_err(corrupt)?,
                    ticket_id: u32::try_from(r.try_get::<i64, _>("ticket_id")?).map_err(corrupt)?,
                    email: r.try_get("email")?,
                    status: TransferStatus::parse(&status)?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}
