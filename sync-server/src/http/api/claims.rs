//! Transfers the holder's wallet signs, and tickets sent to an email address
//! and claimed with the code from the mail.
//!
//! - `POST /api/tickets/{event}/{ticket}/transfer` with `to_email` (the
//!   holder): the server makes a one-time claim keypair, keeps the transfer
//!   as `prepared` and answers an unsigned `open_email_transfer` for the
//!   holder's wallet (the `to_wallet` form is [`super::tickets::transfer`]).
//! - `POST /api/tickets/{event}/{ticket}/transfer/submit` (the holder): the
//!   signed transaction, which must be exactly one `transfer_ticket`,
//!   `open_email_transfer` or `cancel_email_transfer` of that ticket by its
//!   holder. After an open confirms, the claim mail goes out.
//! - `POST /api/tickets/{event}/{ticket}/transfer/cancel` (the holder): an
//!   unsigned `cancel_email_transfer`, submitted the same way.
//! - `POST /api/tickets/{event}/{ticket}/transfer/resend` (the holder): the
//!   claim mail again, when it could not be sent.
//! - `POST /api/tickets/claim` `{code}` (any logged-in wallet): the server
//!   signs `claim_email_transfer` with the claim key derived from the code and
//!   relays it (its authority pays), moving the ticket to the caller.
//! - [`sweep_expired`], run by [`run_sweeper`] beside the replay worker:
//!   closes transfers whose expiry passed on chain, so the ticket is its
//!   holder's to use again.
//!
//! The claim secret is a bearer credential for the ticket. It is kept in the
//! database only until the mail is handed to the relay, then forgotten; it
//! is never logged and never part of an answer. Expiry is measured on the
//! chain's clock, which is the one the program judges claims by.

use crate::http::error::ErrorBody;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use serde::{Deserialize, Serialize};
use shared::PublicKeyBytes;
use shared::wire::CachedTicket;
use solana_sdk::instruction::Instruction;
use solana_sdk::message::Message;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signer};
use solana_sdk::transaction::Transaction;
use sqlx::Row;
use tokio::sync::watch;

use super::auth::AuthUser;
use super::tickets::{TicketView, TransferRequest};
use crate::adapters::mail::{ClaimSecret, TransferClaim};
use crate::chain::{ChainError, ops};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, check_email, check_text, field_error};
use crate::services::Services;
use crate::services::organizer::{self, ChainContext, OrganizerError};
use crate::store::{Store, StoreError};

/// How long a claim link works when the holder does not say.
pub const DEFAULT_CLAIM_SECS: u32 = 72 * 3600;
/// Bounds of `expires_in_secs`.
pub const MIN_CLAIM_SECS: u32 = 60;
pub const MAX_CLAIM_SECS: u32 = 30 * 24 * 3600;
/// A prepared transfer the holder never submitted is dropped (with its
/// secret) after this long: its transaction's blockhash expired long before.
pub const PREPARED_TTL_SECS: i64 = 15 * 60;
/// How often [`run_sweeper`] looks for expired transfers.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Why a claim was refused. Each has its own code; none says whether a
/// wrong code is close to a right one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("no ticket is waiting for this code")]
    NotFound,
    #[error("this ticket was already claimed")]
    AlreadyClaimed,
    #[error("the sender took this ticket back")]
    Cancelled,
    #[error("this claim link expired; ask the sender to send the ticket again")]
    Expired,
}

impl ClaimError {
    pub fn status(&self) -> StatusCode {
        match self {
            ClaimError::NotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::GONE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ClaimError::NotFound => "claim_not_found",
            ClaimError::AlreadyClaimed => "already_claimed",
            ClaimError::Cancelled => "claim_cancelled",
            ClaimError::Expired => "claim_expired",
        }
    }
}

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

    fn parse(text: &str) -> Result<Self, StoreError> {
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

/// What the holder is told about an email transfer. Never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EmailTransferView {
    pub to_email: String,
    pub status: &'static str,
    pub expires_at: i64,
    /// Whether the claim mail has been handed to the relay.
    pub mail_sent: bool,
    /// Why it was not, when it was not (then resend it with
    /// `POST .../transfer/resend`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_error: Option<String>,
}

/// The answer to a submitted transaction: the ticket as it is now, and the
/// email transfer the transaction opened or cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubmittedTransfer {
    #[serde(flatten)]
    pub ticket: CachedTicket,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_transfer: Option<EmailTransferView>,
}

fn chain_of(state: &Services) -> Result<&ChainContext, ApiError> {
    state
        .chain
        .as_deref()
        .ok_or_else(|| ApiError::ChainUnavailable("no chain configured".into()))
}

fn chain_err(e: ChainError) -> ApiError {
    OrganizerError::from(e).into()
}

fn pubkey_of(wallet: &PublicKeyBytes) -> Pubkey {
    Pubkey::new_from_array(wallet.0)
}

fn event_address(ctx: &ChainContext, event_id: u64) -> Pubkey {
    ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit the database")))
}

/// A new one-time claim key: the secret is its 32-byte seed, URL-safe
/// base64 (43 characters), which goes into the claim link.
fn new_claim_key() -> Result<(ClaimSecret, Keypair), ApiError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seed);
    let secret = ClaimSecret::new(code).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((secret, Keypair::new_from_array(seed)))
}

/// The claim keypair a code stands for; `None` when it is not a code at all.
fn claim_key_of(code: &str) -> Option<Keypair> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(code.trim())
        .ok()?;
    let seed: [u8; 32] = bytes.try_into().ok()?;
    Some(Keypair::new_from_array(seed))
}

/// An unsigned legacy transaction of `instruction` with `signer` paying, on
/// a fresh blockhash, base64 of its bincode: what a wallet signs.
pub async fn unsigned_transaction(
    ctx: &ChainContext,
    signer: &Pubkey,
    instruction: Instruction,
) -> Result<String, ApiError> {
    let blockhash = ctx.chain.latest_blockhash().await.map_err(chain_err)?;
    let mut transaction = Transaction::new_with_payer(&[instruction], Some(signer));
    transaction.message.recent_blockhash = blockhash;
    let bytes = bincode::serialize(&transaction).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The one instruction a holder may send through the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderInstruction {
    Transfer {
        recipient: Pubkey,
    },
    OpenEmailTransfer {
        email_hash: [u8; 32],
        claim_key: Pubkey,
        expires_at: i64,
    },
    CancelEmailTransfer,
}

impl HolderInstruction {
    /// Reads `transaction` as exactly one of the holder's instructions on
    /// ticket `ticket_id` of `event`, by `holder`, who pays the fee: the
    /// message must be the very one the program's client builds for it
    /// (program, discriminator, every account and its flags, the
    /// arguments). Signatures are not checked here.
    pub fn read(
        transaction: &Transaction,
        holder: &Pubkey,
        event: &Pubkey,
        ticket_id: u32,
        standard: ticketing::client::TokenStandard,
    ) -> Result<Self, ApiError> {
        use anchor_lang::{AnchorDeserialize, Discriminator};
        use ticketing::instruction as ix;
        let refuse = |why: &str| Err(field_error("transaction", why));
        let message = &transaction.message;
        let [compiled] = message.instructions.as_slice() else {
            return refuse("must hold exactly one instruction");
        };
        if message
            .account_keys
            .get(usize::from(compiled.program_id_index))
            != Some(&ticketing::ID)
        {
            return refuse("not an instruction of the ticketing program");
        }
        let account = |i: usize| {
            compiled
                .accounts
                .get(i)
                .and_then(|k| message.account_keys.get(usize::from(*k)))
                .copied()
        };
        let data = compiled.data.as_slice();
        let (kind, expected) = if data.starts_with(ix::TransferTicket::DISCRIMINATOR) {
            let Some(recipient) = account(1) else {
                return refuse("a transfer names its recipient");
            };
            (
                Self::Transfer { recipient },
                ticketing::client::transfer_ticket(holder, &recipient, event, ticket_id, standard),
            )
        } else if data.starts_with(ix::OpenEmailTransfer::DISCRIMINATOR) {
            let mut args = &data[ix::OpenEmailTransfer::DISCRIMINATOR.len()..];
            let Ok(open) = <ix::OpenEmailTransfer as AnchorDeserialize>::deserialize(&mut args)
            else {
                return refuse("unreadable open_email_transfer arguments");
            };
            (
                Self::OpenEmailTransfer {
                    email_hash: open.email_hash,
                    claim_key: open.claim_key,
                    expires_at: open.expires_at,
                },
                ticketing::client::open_email_transfer(
                    holder,
                    event,
                    ticket_id,
                    open.email_hash,
                    &open.claim_key,
                    open.expires_at,
                    standard,
                ),
            )
        } else if data.starts_with(ix::CancelEmailTransfer::DISCRIMINATOR) {
            (
                Self::CancelEmailTransfer,
                ticketing::client::cancel_email_transfer(holder, event, ticket_id, standard),
            )
        } else {
            return refuse(
                "only transfer_ticket, open_email_transfer or cancel_email_transfer are accepted",
            );
        };
        let rebuilt =
            Message::new_with_blockhash(&[expected], Some(holder), &message.recent_blockhash);
        if rebuilt != *message {
            return refuse("not this ticket's instruction by its holder, paid by the holder");
        }
        Ok(kind)
    }
}

// ----- storage -----

const COLUMNS: &str = "claim_key, event_id, ticket_id, sender, email, email_hash, claim_secret, \
                       expires_at, status, mail_sent_at";

fn transfer_of_row(r: &sqlx::any::AnyRow) -> Result<EmailTransfer, StoreError> {
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
        .execute(self.pool())
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
            .fetch_optional(self.pool())
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
             WHERE event_id = $1 AND ticket_id = $2 AND status = 'open'"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64_of(event_id)?)
            .bind(i64::from(ticket_id))
            .fetch_optional(self.pool())
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
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the secret out for mailing: `true` when this call took it (a
    /// concurrent sender finds it gone and sends nothing).
    async fn take_claim_secret(
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
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts the secret back after the mail failed, so it can be resent.
    async fn return_claim_secret(
        &self,
        claim_key: &Pubkey,
        secret: &ClaimSecret,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE email_transfers SET claim_secret = $1, mail_sent_at = NULL, updated_at = $2
             WHERE claim_key = $3 AND status = 'open'",
        )
        .bind(secret.expose().to_owned())
        .bind(now)
        .bind(claim_key.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops the ticket's prepared transfers other than `keep`: once one is
    /// open on chain, the others can never be.
    async fn drop_prepared_email_transfers(
        &self,
        event_id: u64,
        ticket_id: u32,
        keep: Option<&Pubkey>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM email_transfers
             WHERE event_id = $1 AND ticket_id = $2 AND status = 'prepared' AND claim_key <> $3",
        )
        .bind(i64_of(event_id)?)
        .bind(i64::from(ticket_id))
        .bind(keep.map(|k| k.to_string()).unwrap_or_default())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Drops prepared transfers that can no longer be opened: their expiry
    /// passed on chain, or they were made before `made_before`.
    async fn drop_stale_prepared_email_transfers(
        &self,
        chain_now: i64,
        made_before: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM email_transfers
             WHERE status = 'prepared' AND (expires_at <= $1 OR created_at < $2)",
        )
        .bind(chain_now)
        .bind(made_before)
        .execute(self.pool())
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
             WHERE status = 'open' AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(chain_now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(transfer_of_row)
            .collect()
    }
}

// ----- opening -----

/// The `to_email` form of `POST /api/tickets/{event}/{ticket}/transfer`:
/// keeps a prepared transfer with a new claim key and returns the unsigned
/// `open_email_transfer` for the holder's wallet.
pub async fn prepare_email_transfer(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
    ticket_id: u32,
    email: &str,
    expires_in_secs: Option<u32>,
) -> Result<TransferRequest, ApiError> {
    check_email("to_email", email)?;
    // The shape check passed; the claim mail must also be addressable.
    email
        .parse::<lettre::Address>()
        .map_err(|_| field_error("to_email", "not an email address"))?;
    let email = email.to_owned();
    let ticket = state
        .store
        .ticket(event_id, ticket_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {ticket_id} in event {event_id}")))?;
    if ticket.owner != user.wallet {
        return Err(ApiError::Forbidden(
            "only the ticket's holder may transfer it",
        ));
    }
    let ctx = chain_of(state)?;
    let chain_now = ctx.chain.unix_time().await.map_err(chain_err)?;
    if let Some(open) = state.store.open_email_transfer(event_id, ticket_id).await? {
        // Closed on chain without this server (a cancel sent elsewhere)?
        // Then record how, and go on.
        let Some(ended) = ended_on_chain(ctx, &open, chain_now)
            .await
            .map_err(chain_err)?
        else {
            return Err(ApiError::Conflict(
                "this ticket is already waiting for an email claim; cancel that transfer first"
                    .into(),
            ));
        };
        state
            .store
            .set_email_transfer_status(
                &open.claim_key,
                TransferStatus::Open,
                ended,
                None,
                state.clock.now(),
            )
            .await?;
    }
    let on_chain = ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
        .await
        .map_err(chain_err)?
        .ok_or_else(|| ApiError::NotFound(format!("event {event_id} is not on chain")))?;
    if !on_chain.transfers_open(chain_now) {
        return Err(ApiError::Conflict(
            "transfers of this event are closed".into(),
        ));
    }
    // A claim after the event's transfer deadline would be refused anyway;
    // the mail should not promise longer.
    let lifetime = i64::from(expires_in_secs.unwrap_or(DEFAULT_CLAIM_SECS));
    let expires_at = chain_now
        .saturating_add(lifetime)
        .min(on_chain.transfer_until);
    let (secret, claim_key) = new_claim_key()?;
    let holder = pubkey_of(&user.wallet);
    let transfer = EmailTransfer {
        claim_key: claim_key.pubkey(),
        event_id,
        ticket_id,
        sender: holder,
        email_hash: ticketing::client::email_hash(&email),
        email,
        claim_secret: Some(secret),
        expires_at,
        status: TransferStatus::Prepared,
        mail_sent_at: None,
    };
    let instruction = ticketing::client::open_email_transfer(
        &holder,
        &event_address(ctx, event_id),
        ticket_id,
        transfer.email_hash,
        &transfer.claim_key,
        expires_at,
        on_chain.token_standard,
    );
    let transaction = unsigned_transaction(ctx, &holder, instruction).await?;
    state
        .store
        .insert_email_transfer(&transfer, state.clock.now())
        .await?;
    Ok(TransferRequest {
        transaction,
        message: format!(
            "Send ticket #{ticket_id} to {}; it can be claimed until {expires_at}",
            transfer.email
        ),
        expires_at: Some(expires_at),
    })
}

// ----- submitting -----

/// `POST /api/tickets/{event}/{ticket}/transfer/submit`: checks the signed
/// transaction is one of the holder's instructions on this ticket
/// ([`HolderInstruction::read`]), signed by the holder, sends it, then
/// publishes the ticket as it is on chain. An open email transfer then mails
/// its claim link; submitting the same open again only retries that mail.
pub async fn submit_signed(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
    ticket_id: u32,
    transaction: &str,
) -> Result<SubmittedTransfer, ApiError> {
    let ctx = chain_of(state)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(transaction.trim())
        .map_err(|_| field_error("transaction", "not base64"))?;
    let transaction: Transaction = bincode::deserialize(&bytes)
        .map_err(|_| field_error("transaction", "not a legacy transaction"))?;
    let holder = pubkey_of(&user.wallet);
    let standard = crate::services::organizer::event_on_chain(state, event_id)
        .await?
        .token_standard;
    let kind = HolderInstruction::read(
        &transaction,
        &holder,
        &event_address(ctx, event_id),
        ticket_id,
        standard,
    )?;
    if transaction.verify().is_err() {
        return Err(field_error("transaction", "not signed by the holder"));
    }
    let email_transfer = match kind {
        HolderInstruction::Transfer { .. } => {
            confirm(ctx, &transaction).await?;
            None
        }
        HolderInstruction::OpenEmailTransfer {
            email_hash,
            claim_key,
            expires_at,
        } => {
            let transfer = state
                .store
                .email_transfer(&claim_key)
                .await?
                .filter(|t| {
                    t.event_id == event_id
                        && t.ticket_id == ticket_id
                        && t.sender == holder
                        && t.email_hash == email_hash
                        && t.expires_at == expires_at
                })
                .ok_or_else(|| {
                    ApiError::NotFound(
                        "no prepared email transfer matches this transaction; prepare it again"
                            .into(),
                    )
                })?;
            match transfer.status {
                TransferStatus::Prepared => {
                    confirm(ctx, &transaction).await?;
                    let now = state.clock.now();
                    state
                        .store
                        .set_email_transfer_status(
                            &claim_key,
                            TransferStatus::Prepared,
                            TransferStatus::Open,
                            None,
                            now,
                        )
                        .await?;
                    state
                        .store
                        .drop_prepared_email_transfers(event_id, ticket_id, Some(&claim_key))
                        .await?;
                }
                TransferStatus::Open => {}
                other => {
                    return Err(ApiError::Conflict(format!(
                        "this email transfer is already {}",
                        other.as_str()
                    )));
                }
            }
            let open = EmailTransfer {
                status: TransferStatus::Open,
                ..transfer
            };
            Some(deliver_claim(state, &open).await)
        }
        HolderInstruction::CancelEmailTransfer => {
            let open = state.store.open_email_transfer(event_id, ticket_id).await?;
            confirm(ctx, &transaction).await?;
            match open {
                Some(open) => {
                    state
                        .store
                        .set_email_transfer_status(
                            &open.claim_key,
                            TransferStatus::Open,
                            TransferStatus::Cancelled,
                            None,
                            state.clock.now(),
                        )
                        .await?;
                    Some(view(
                        &EmailTransfer {
                            status: TransferStatus::Cancelled,
                            claim_secret: None,
                            ..open
                        },
                        None,
                    ))
                }
                // Opened without this server; closed on chain all the same.
                None => None,
            }
        }
    };
    let ticket = organizer::refresh_tickets(state, event_id, &[ticket_id])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("ticket vanished".into()))?;
    Ok(SubmittedTransfer {
        ticket,
        email_transfer,
    })
}

/// Sends a transaction signed elsewhere and waits for the chain's verdict.
async fn confirm(ctx: &ChainContext, transaction: &Transaction) -> Result<(), ApiError> {
    ops::wait_for(
        ctx.chain.as_ref(),
        transaction,
        std::time::Instant::now() + Duration::from_secs(60),
    )
    .await
    .map_err(chain_err)
}

fn view(transfer: &EmailTransfer, mail_error: Option<String>) -> EmailTransferView {
    EmailTransferView {
        to_email: transfer.email.clone(),
        status: transfer.status.as_str(),
        expires_at: transfer.expires_at,
        mail_sent: transfer.mail_sent_at.is_some(),
        mail_error,
    }
}

/// `Wallet AbCd...WxYz`: how a recipient may recognise the sender's wallet.
fn short_wallet(key: &Pubkey) -> String {
    let text = key.to_string();
    match (text.get(..4), text.get(text.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) => format!("Wallet {head}...{tail}"),
        _ => text,
    }
}

/// Mails the claim link of an open transfer whose secret is still kept,
/// and forgets the secret once the relay took the mail. A failure is
/// reported in the view and the secret kept for a resend.
async fn deliver_claim(state: &Services, transfer: &EmailTransfer) -> EmailTransferView {
    let Some(secret) = &transfer.claim_secret else {
        return view(transfer, None);
    };
    let Some(mailer) = &state.mailer else {
        return view(
            transfer,
            Some("mail is off on this server (no [smtp] relay configured)".into()),
        );
    };
    let event = match state.store.event(transfer.event_id).await {
        Ok(Some(event)) => event,
        Ok(None) => return view(transfer, Some("the event is unknown to this server".into())),
        Err(e) => return view(transfer, Some(format!("storage: {e}"))),
    };
    let tier = match state
        .store
        .ticket(transfer.event_id, transfer.ticket_id)
        .await
    {
        Ok(Some(ticket)) => event
            .tiers
            .iter()
            .find(|t| t.index == ticket.tier)
            .map_or_else(|| format!("tier {}", ticket.tier), |t| t.name.clone()),
        _ => String::from("ticket"),
    };
    let now = state.clock.now();
    match state
        .store
        .take_claim_secret(&transfer.claim_key, secret, now)
        .await
    {
        Ok(true) => {}
        // Another request is mailing it, or did.
        Ok(false) => {
            return view(
                &EmailTransfer {
                    claim_secret: None,
                    mail_sent_at: Some(now),
                    ..transfer.clone()
                },
                None,
            );
        }
        Err(e) => return view(transfer, Some(format!("storage: {e}"))),
    }
    let mail = TransferClaim {
        to: transfer.email.clone(),
        event_name: event.name,
        tier_name: tier,
        sender: short_wallet(&transfer.sender),
        secret: secret.clone(),
        expires_at: transfer.expires_at,
    };
    match mailer.send_transfer_claim(&mail).await {
        Ok(()) => view(
            &EmailTransfer {
                claim_secret: None,
                mail_sent_at: Some(now),
                ..transfer.clone()
            },
            None,
        ),
        Err(e) => {
            tracing::warn!(
                event = transfer.event_id,
                ticket = transfer.ticket_id,
                error = %e,
                "claim mail not sent; kept for a resend"
            );
            if let Err(store) = state
                .store
                .return_claim_secret(&transfer.claim_key, secret, now)
                .await
            {
                tracing::error!(error = %store, "could not keep the claim secret for a resend; cancel and send again");
            }
            view(transfer, Some(e.to_string()))
        }
    }
}

/// The ticket's holder, or 403 (404 for no such ticket).
async fn require_holder(
    state: &Services,
    user: &AuthUser,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, ApiError> {
    let ticket = state
        .store
        .ticket(event_id, ticket_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {ticket_id} in event {event_id}")))?;
    if ticket.owner != user.wallet {
        return Err(ApiError::Forbidden("only the ticket's holder may do this"));
    }
    Ok(ticket)
}

/// `POST /api/tickets/{event}/{ticket}/transfer/resend` (the holder): the
/// claim mail of the ticket's open transfer, when it has not gone out yet.
/// After it has, the code is no longer kept: cancel and send again.
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer/resend",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The email transfer; `mail_sent` says whether the relay took the mail", body = EmailTransferView),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the ticket's holder", body = ErrorBody),
        (status = 404, description = "`not_found`: no open email transfer", body = ErrorBody),
        (status = 409, description = "`conflict`: the mail already went out (its code is not kept)", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<EmailTransferView>, ApiError> {
    require_holder(&state, &user, event_id, ticket_id).await?;
    let transfer = state
        .store
        .open_email_transfer(event_id, ticket_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("this ticket has no open email transfer".into()))?;
    if transfer.claim_secret.is_none() {
        return Err(ApiError::Conflict(
            "the claim mail was already sent and its code is not kept; cancel and send the ticket again"
                .into(),
        ));
    }
    Ok(Json(deliver_claim(&state, &transfer).await))
}

/// `POST /api/tickets/{event}/{ticket}/transfer/cancel` (the holder): the
/// unsigned `cancel_email_transfer` of the ticket's open transfer, to sign
/// and submit like a transfer.
#[utoipa::path(
    post,
    path = "/api/tickets/{event}/{ticket}/transfer/cancel",
    tag = "tickets",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id within the event"),
    ),
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The unsigned `cancel_email_transfer` to sign and submit", body = crate::http::api::tickets::TransferRequest),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not the wallet that opened the transfer", body = ErrorBody),
        (status = 404, description = "`not_found`: no open email transfer", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Result<Json<TransferRequest>, ApiError> {
    require_holder(&state, &user, event_id, ticket_id).await?;
    let ctx = chain_of(&state)?;
    let event = event_address(ctx, event_id);
    let ticket = ticketing::client::ticket_address(&event, ticket_id).0;
    let delegation = ticketing::client::delegation_address(&ticket).0;
    let open = ctx
        .chain
        .accounts(&[delegation])
        .await
        .map_err(chain_err)?
        .pop()
        .flatten()
        .and_then(|account| ticketing::client::decode_delegation(&account.data).ok());
    let holder = pubkey_of(&user.wallet);
    match open {
        None => {
            return Err(ApiError::NotFound(
                "this ticket has no open email transfer".into(),
            ));
        }
        Some(d) if d.owner != holder => {
            return Err(ApiError::Forbidden(
                "only the wallet that opened the transfer may cancel it",
            ));
        }
        Some(_) => {}
    }
    let standard = crate::services::organizer::event_on_chain(&state, event_id)
        .await?
        .token_standard;
    let instruction =
        ticketing::client::cancel_email_transfer(&holder, &event, ticket_id, standard);
    Ok(Json(TransferRequest {
        transaction: unsigned_transaction(ctx, &holder, instruction).await?,
        message: format!("Take back ticket #{ticket_id} from its email transfer"),
        expires_at: None,
    }))
}

// ----- claiming -----

/// `{"code": "<from the claim link>"}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    pub code: String,
}

impl std::fmt::Debug for ClaimBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimBody { code: .. }")
    }
}

impl Validate for ClaimBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("code", &self.code, 1..=128, false)
    }
}

/// `POST /api/tickets/claim` (any logged-in wallet): moves the ticket the
/// code stands for to the caller's wallet. The server signs with the claim
/// key and its authority (which pays the fee and the new token account), so
/// the recipient needs no SOL. Answers the ticket with its new QR code.
#[utoipa::path(
    post,
    path = "/api/tickets/claim",
    tag = "tickets",
    request_body = ClaimBody,
    security(("wallet_session" = [])),
    responses(
        (status = 200, description = "The ticket, now the caller's, with its new QR code text", body = crate::http::api::tickets::TicketView),
        (status = 400, description = "`malformed_json`: the body is not JSON", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send the body as `application/json`", body = ErrorBody),
        (status = 401, description = "`missing_token`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`login_disabled`", body = ErrorBody),
        (status = 404, description = "`claim_not_found`: no transfer for this code", body = ErrorBody),
        (status = 410, description = "`already_claimed`, `claim_cancelled` or `claim_expired`", body = ErrorBody),
        (status = 422, description = "`invalid_field` or `chain_refused`", body = ErrorBody),
        (status = 500, description = "`internal`", body = ErrorBody),
        (status = 503, description = "`chain_unavailable` or `storage_unavailable`", body = ErrorBody),
    )
)]
pub async fn claim(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(body): ValidJson<ClaimBody>,
) -> Result<Json<TicketView>, ApiError> {
    let ctx = chain_of(&state)?;
    let claim_key = claim_key_of(&body.code).ok_or(ClaimError::NotFound)?;
    let transfer = state
        .store
        .email_transfer(&claim_key.pubkey())
        .await?
        .ok_or(ClaimError::NotFound)?;
    match transfer.status {
        TransferStatus::Prepared => return Err(ClaimError::NotFound.into()),
        TransferStatus::Claimed => return Err(ClaimError::AlreadyClaimed.into()),
        TransferStatus::Cancelled => return Err(ClaimError::Cancelled.into()),
        TransferStatus::Expired => return Err(ClaimError::Expired.into()),
        TransferStatus::Open => {}
    }
    let recipient = pubkey_of(&user.wallet);
    if recipient == transfer.sender {
        return Err(ApiError::Conflict(
            "this wallet sent the ticket; cancel the transfer to keep it".into(),
        ));
    }
    let chain_now = ctx.chain.unix_time().await.map_err(chain_err)?;
    if chain_now >= transfer.expires_at {
        return Err(ClaimError::Expired.into());
    }
    let event = event_address(ctx, transfer.event_id);
    let standard = crate::services::organizer::event_on_chain(&state, transfer.event_id)
        .await?
        .token_standard;
    let instruction = ticketing::client::claim_email_transfer(
        &ctx.authority.pubkey(),
        &claim_key.pubkey(),
        &recipient,
        &transfer.sender,
        &event,
        transfer.ticket_id,
        standard,
    );
    let sent = ops::send(
        ctx.chain.as_ref(),
        &ctx.authority,
        &[instruction],
        &[&claim_key],
    )
    .await;
    if let Err(error) = sent {
        // Refused: maybe another claim won the race, or the transfer was
        // closed on chain; the chain tells which.
        if !matches!(error, ChainError::Refused(_)) {
            return Err(chain_err(error));
        }
        let (delegation, ticket) = delegation_and_ticket(ctx, &event, transfer.ticket_id)
            .await
            .map_err(chain_err)?;
        match (delegation, ticket) {
            (None, Some(ticket)) if ticket.owner == recipient => {
                // This very claim landed and its answer was lost.
            }
            (None, Some(ticket)) if ticket.owner != transfer.sender => {
                return Err(ClaimError::AlreadyClaimed.into());
            }
            (None, _) if chain_now >= transfer.expires_at => return Err(ClaimError::Expired.into()),
            (None, _) => return Err(ClaimError::Cancelled.into()),
            (Some(_), _) => return Err(chain_err(error)),
        }
    }
    state
        .store
        .set_email_transfer_status(
            &transfer.claim_key,
            TransferStatus::Open,
            TransferStatus::Claimed,
            Some(&recipient),
            state.clock.now(),
        )
        .await?;
    let ticket = organizer::refresh_tickets(&state, transfer.event_id, &[transfer.ticket_id])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("ticket vanished".into()))?;
    Ok(Json(TicketView {
        code: organizer::credential_for(&state, &ticket)?.encode(),
        ticket,
    }))
}

/// The ticket's delegation (if one is open) and the ticket, as on chain.
async fn delegation_and_ticket(
    ctx: &ChainContext,
    event: &Pubkey,
    ticket_id: u32,
) -> Result<
    (
        Option<ticketing::client::Delegation>,
        Option<ticketing::client::Ticket>,
    ),
    ChainError,
> {
    let ticket_address = ticketing::client::ticket_address(event, ticket_id).0;
    let delegation = ticketing::client::delegation_address(&ticket_address).0;
    let mut accounts = ctx
        .chain
        .accounts(&[delegation, ticket_address])
        .await?
        .into_iter();
    let delegation = accounts
        .next()
        .flatten()
        .and_then(|a| ticketing::client::decode_delegation(&a.data).ok());
    let ticket = accounts
        .next()
        .flatten()
        .and_then(|a| ticketing::client::decode_ticket(&a.data).ok());
    Ok((delegation, ticket))
}

/// How an open transfer ended on chain without this server, if it did: its
/// delegation is gone (or is another transfer's).
async fn ended_on_chain(
    ctx: &ChainContext,
    transfer: &EmailTransfer,
    chain_now: i64,
) -> Result<Option<TransferStatus>, ChainError> {
    let event = event_address(ctx, transfer.event_id);
    let (delegation, ticket) = delegation_and_ticket(ctx, &event, transfer.ticket_id).await?;
    if delegation.is_some_and(|d| d.claim_key == transfer.claim_key) {
        return Ok(None);
    }
    Ok(Some(match ticket {
        Some(ticket) if ticket.owner != transfer.sender => TransferStatus::Claimed,
        _ if chain_now >= transfer.expires_at => TransferStatus::Expired,
        _ => TransferStatus::Cancelled,
    }))
}

// ----- expiry -----

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepSummary {
    /// Open transfers closed on chain as expired.
    pub expired: usize,
    /// Open transfers found already closed on chain (claimed or cancelled
    /// without this server), recorded as such.
    pub settled: usize,
    /// Prepared transfers dropped, never submitted.
    pub dropped: u64,
    /// Transfers the chain refused to expire; tried again next round.
    pub failed: usize,
}

/// Most expired transfers one sweep handles.
const SWEEP_BATCH: i64 = 100;

/// One round of the expiry sweep: sends `expire_email_transfer` (paid by
/// the server's authority) for every open transfer whose expiry passed on
/// the chain's clock, marks it expired and republishes its ticket; drops
/// prepared transfers that can no longer be opened, with their secrets.
pub async fn sweep_expired(state: &Services) -> Result<SweepSummary, OrganizerError> {
    let ctx = state.chain.as_deref().ok_or(OrganizerError::NoChain)?;
    let chain_now = ctx.chain.unix_time().await?;
    let now = state.clock.now();
    let mut summary = SweepSummary {
        dropped: state
            .store
            .drop_stale_prepared_email_transfers(chain_now, now - PREPARED_TTL_SECS)
            .await?,
        ..SweepSummary::default()
    };
    for transfer in state
        .store
        .expired_email_transfers(chain_now, SWEEP_BATCH)
        .await?
    {
        let event = event_address(ctx, transfer.event_id);
        let instruction =
            ticketing::client::expire_email_transfer(&transfer.sender, &event, transfer.ticket_id);
        let outcome = match ops::send(ctx.chain.as_ref(), &ctx.authority, &[instruction], &[]).await
        {
            Ok(_) => TransferStatus::Expired,
            Err(ChainError::Refused(reason)) => {
                match ended_on_chain(ctx, &transfer, chain_now).await? {
                    Some(ended) => ended,
                    None => {
                        tracing::warn!(
                            event = transfer.event_id,
                            ticket = transfer.ticket_id,
                            %reason,
                            "the chain refused to expire an email transfer"
                        );
                        summary.failed += 1;
                        continue;
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        state
            .store
            .set_email_transfer_status(
                &transfer.claim_key,
                TransferStatus::Open,
                outcome,
                None,
                now,
            )
            .await?;
        if outcome == TransferStatus::Expired {
            summary.expired += 1;
        } else {
            summary.settled += 1;
        }
        organizer::refresh_tickets(state, transfer.event_id, &[transfer.ticket_id]).await?;
    }
    Ok(summary)
}

/// Sweeps every [`SWEEP_INTERVAL`] until `shutdown` turns true.
pub async fn run_sweeper(state: Services, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        match sweep_expired(&state).await {
            Ok(summary) if summary != SweepSummary::default() => {
                tracing::info!(?summary, "email transfer sweep");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "email transfer sweep failed; retrying later"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
}
