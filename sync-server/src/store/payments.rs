//! Payment webhooks already handled (`processed_webhooks`): a provider
//! delivers an event at least once, and its effect must happen once.

use super::{Store, StoreError};

/// Records that webhook event `event_id` is being handled, on `connection`
/// (inside the transaction that applies its effect). `false` if it was
/// handled before: then the caller applies nothing and answers 200, so the
/// provider stops redelivering.
pub async fn record_webhook_event(
    connection: &mut sqlx::AnyConnection,
    event_id: &str,
    event_type: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO processed_webhooks (event_id, event_type, processed_at) VALUES ($1, $2, $3)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(now)
    .execute(&mut *connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

impl Store {
    /// [`record_webhook_event`] in a transaction of its own, for events
    /// whose handling writes nothing else.
    pub async fn record_webhook_event(
        &self,
        event_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let first = record_webhook_event(&mut tx, event_id, event_type, now).await?;
        tx.commit().await?;
        Ok(first)
    }
}
