//! Transfers the holder's wallet signs, and tickets sent to an email address
//! and claimed with the code from the mail.
//!
//! - [`prepare_wallet_transfer`] and [`prepare_email_transfer`] (the
//!   holder): an unsigned `transfer_ticket` or `open_email_transfer` for the
//!   holder's wallet; the email form keeps the transfer as `prepared` with a
//!   new one-time claim keypair.
//! - [`submit_signed`] (the holder): the signed transaction, which must be
//!   exactly one `transfer_ticket`, `open_email_transfer` or
//!   `cancel_email_transfer` of that ticket by its holder. After an open
//!   confirms, the claim mail goes out.
//! - [`prepare_cancel`] (the holder): an unsigned `cancel_email_transfer`,
//!   submitted the same way; [`resend`]: the claim mail again, when it could
//!   not be sent.
//! - [`claim`] (any wallet): the server signs `claim_email_transfer` with the
//!   claim key derived from the code and relays it (its authority pays),
//!   moving the ticket to the caller.
//! - [`sweeper`]: closes transfers whose expiry passed on chain, so the
//!   ticket is its holder's to use again.
//!
//! The claim secret is a bearer credential for the ticket. It is kept in the
//! database only until the mail is handed to the relay, then forgotten; it
//! is never logged and never part of an answer. Expiry is measured on the
//! chain's clock, which is the one the program judges claims by.

mod claiming;
mod instruction;
mod mail;
pub mod sweeper;

use std::time::Duration;

use base64::Engine;
use shared::PublicKeyBytes;
use shared::wire::CachedTicket;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;
use solana_sdk::transaction::Transaction;

pub use claiming::{ClaimPreview, claim, preview};
pub use instruction::{HolderInstruction, unsigned_transaction};
pub use sweeper::{SweepSummary, sweep_expired};

use super::organizer::{self, ChainContext};
use super::{ServiceError, Services};
use crate::chain::{ChainError, ops};
use crate::store::{EmailTransfer, TransferStatus};

/// How long a claim link works when the holder does not say.
pub const DEFAULT_CLAIM_SECS: u32 = 72 * 3600;
/// Bounds of `expires_in_secs`.
pub const MIN_CLAIM_SECS: u32 = 60;
pub const MAX_CLAIM_SECS: u32 = 30 * 24 * 3600;
/// A prepared transfer the holder never submitted is dropped (with its
/// secret) after this long: its transaction's blockhash expired long before.
pub const PREPARED_TTL_SECS: i64 = 15 * 60;

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

/// A transaction for the holder's wallet to sign and submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedTransfer {
    /// The unsigned legacy transaction, base64 of its bincode.
    pub transaction: String,
    /// What the wallet should show its owner.
    pub message: String,
    /// When an email transfer's claim link stops working (chain time).
    pub expires_at: Option<i64>,
}

/// What the holder is told about an email transfer. Never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTransferState {
    pub to_email: String,
    pub status: TransferStatus,
    pub expires_at: i64,
    /// Whether the claim mail has been handed to the relay.
    pub mail_sent: bool,
    /// Why it was not, when it was not.
    pub mail_error: Option<String>,
}

/// A submitted transaction's outcome: the ticket as it is now, and the
/// email transfer the transaction opened or cancelled.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub ticket: CachedTicket,
    pub email_transfer: Option<EmailTransferState>,
}

fn chain_of(services: &Services) -> Result<&ChainContext, ServiceError> {
    services
        .chain
        .as_deref()
        .ok_or_else(|| ServiceError::ChainUnavailable("no chain configured".into()))
}

fn pubkey_of(wallet: &PublicKeyBytes) -> Pubkey {
    Pubkey::new_from_array(wallet.0)
}

fn event_address(ctx: &ChainContext, event_id: u64) -> Pubkey {
    ticketing::client::event_address(&ctx.authority.pubkey(), event_id).0
}

/// The ticket, held by `holder`; `refusal` is the 403 text otherwise.
async fn held_ticket(
    services: &Services,
    holder: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
    refusal: &'static str,
) -> Result<CachedTicket, ServiceError> {
    let ticket = services
        .store
        .ticket(event_id, ticket_id)
        .await?
        .ok_or_else(|| {
            ServiceError::NotFound(format!("no ticket {ticket_id} in event {event_id}"))
        })?;
    if ticket.owner != *holder {
        return Err(ServiceError::Forbidden(refusal));
    }
    Ok(ticket)
}

/// The `to_wallet` form of a transfer: an unsigned `transfer_ticket` of the
/// holder's ticket to `to`.
pub async fn prepare_wallet_transfer(
    services: &Services,
    holder: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
    to: &PublicKeyBytes,
) -> Result<UnsignedTransfer, ServiceError> {
    held_ticket(
        services,
        holder,
        event_id,
        ticket_id,
        "only the ticket's holder may transfer it",
    )
    .await?;
    if to == holder {
        return Err(ServiceError::invalid("to_wallet", "is already the holder"));
    }
    let ctx = chain_of(services)?;
    let standard = organizer::event_on_chain(services, event_id)
        .await?
        .token_standard;
    let owner = pubkey_of(holder);
    let instruction = ticketing::client::transfer_ticket(
        &owner,
        &pubkey_of(to),
        &event_address(ctx, event_id),
        ticket_id,
        standard,
    );
    Ok(UnsignedTransfer {
        transaction: unsigned_transaction(ctx, &owner, instruction).await?,
        message: format!("Transfer ticket #{ticket_id} to {}", to.to_base58()),
        expires_at: None,
    })
}

/// The `to_email` form of a transfer: keeps a prepared transfer with a new
/// claim key and returns the unsigned `open_email_transfer` for the
/// holder's wallet.
pub async fn prepare_email_transfer(
    services: &Services,
    holder: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
    email: &str,
    expires_in_secs: Option<u32>,
) -> Result<UnsignedTransfer, ServiceError> {
    // The request's shape check passed; the claim mail must also be
    // addressable.
    email
        .parse::<lettre::Address>()
        .map_err(|_| ServiceError::invalid("to_email", "not an email address"))?;
    let email = email.to_owned();
    held_ticket(
        services,
        holder,
        event_id,
        ticket_id,
        "only the ticket's holder may transfer it",
    )
    .await?;
    let ctx = chain_of(services)?;
    let chain_now = ctx.chain.unix_time().await?;
    if let Some(open) = services
        .store
        .open_email_transfer(event_id, ticket_id)
        .await?
    {
        // Closed on chain without this server (a cancel sent elsewhere)?
        // Then record how, and go on.
        let Some(ended) = ended_on_chain(ctx, &open, chain_now).await? else {
            return Err(ServiceError::Conflict(
                "this ticket is already waiting for an email claim; cancel that transfer first"
                    .into(),
            ));
        };
        services
            .store
            .set_email_transfer_status(
                &open.claim_key,
                TransferStatus::Open,
                ended,
                None,
                services.clock.now(),
            )
            .await?;
    }
    let on_chain = ops::event(ctx.chain.as_ref(), &ctx.authority.pubkey(), event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("event {event_id} is not on chain")))?;
    if !on_chain.transfers_open(chain_now) {
        return Err(ServiceError::Conflict(
            "transfers of this event are closed".into(),
        ));
    }
    // A claim after the event's transfer deadline would be refused anyway;
    // the mail should not promise longer.
    let lifetime = i64::from(expires_in_secs.unwrap_or(DEFAULT_CLAIM_SECS));
    let expires_at = chain_now
        .saturating_add(lifetime)
        .min(on_chain.transfer_until);
    let (secret, claim_key) = instruction::new_claim_key()?;
    let sender = pubkey_of(holder);
    let transfer = EmailTransfer {
        claim_key: claim_key.pubkey(),
        event_id,
        ticket_id,
        sender,
        email_hash: ticketing::client::email_hash(&email),
        email,
        claim_secret: Some(secret),
        expires_at,
        status: TransferStatus::Prepared,
        mail_sent_at: None,
    };
    let instruction = ticketing::client::open_email_transfer(
        &sender,
        &event_address(ctx, event_id),
        ticket_id,
        transfer.email_hash,
        &transfer.claim_key,
        expires_at,
        on_chain.token_standard,
    );
    let transaction = unsigned_transaction(ctx, &sender, instruction).await?;
    services
        .store
        .insert_email_transfer(&transfer, services.clock.now())
        .await?;
    Ok(UnsignedTransfer {
        transaction,
        message: format!(
            "Send ticket #{ticket_id} to {}; it can be claimed until {expires_at}",
            transfer.email
        ),
        expires_at: Some(expires_at),
    })
}

/// Checks the signed transaction is one of the holder's instructions on
/// this ticket ([`HolderInstruction::read`]), signed by the holder, sends
/// it, then publishes the ticket as it is on chain. An open email transfer
/// then mails its claim link; submitting the same open again only retries
/// that mail.
pub async fn submit_signed(
    services: &Services,
    holder: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
    transaction: &str,
) -> Result<Submitted, ServiceError> {
    let ctx = chain_of(services)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(transaction.trim())
        .map_err(|_| ServiceError::invalid("transaction", "not base64"))?;
    let transaction: Transaction = bincode::deserialize(&bytes)
        .map_err(|_| ServiceError::invalid("transaction", "not a legacy transaction"))?;
    let holder = pubkey_of(holder);
    let standard = organizer::event_on_chain(services, event_id)
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
        return Err(ServiceError::invalid(
            "transaction",
            "not signed by the holder",
        ));
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
            let transfer = services
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
                    ServiceError::NotFound(
                        "no prepared email transfer matches this transaction; prepare it again"
                            .into(),
                    )
                })?;
            match transfer.status {
                TransferStatus::Prepared => {
                    confirm(ctx, &transaction).await?;
                    services
                        .store
                        .set_email_transfer_status(
                            &claim_key,
                            TransferStatus::Prepared,
                            TransferStatus::Open,
                            None,
                            services.clock.now(),
                        )
                        .await?;
                    services
                        .store
                        .drop_prepared_email_transfers(event_id, ticket_id, Some(&claim_key))
                        .await?;
                }
                TransferStatus::Open => {}
                other => {
                    return Err(ServiceError::Conflict(format!(
                        "this email transfer is already {}",
                        other.as_str()
                    )));
                }
            }
            let open = EmailTransfer {
                status: TransferStatus::Open,
                ..transfer
            };
            Some(mail::deliver_claim(services, &open).await)
        }
        HolderInstruction::CancelEmailTransfer => {
            let open = services
                .store
                .open_email_transfer(event_id, ticket_id)
                .await?;
            confirm(ctx, &transaction).await?;
            match open {
                Some(open) => {
                    services
                        .store
                        .set_email_transfer_status(
                            &open.claim_key,
                            TransferStatus::Open,
                            TransferStatus::Cancelled,
                            None,
                            services.clock.now(),
                        )
                        .await?;
                    Some(mail::state_of(
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
    Ok(Submitted {
        ticket: refreshed(services, event_id, ticket_id).await?,
        email_transfer,
    })
}

/// The ticket as it is on chain now, published to the gates.
async fn refreshed(
    services: &Services,
    event_id: u64,
    ticket_id: u32,
) -> Result<CachedTicket, ServiceError> {
    organizer::refresh_tickets(services, event_id, &[ticket_id])
        .await?
        .pop()
        .ok_or_else(|| ServiceError::Internal("ticket vanished".into()))
}

/// Sends a transaction signed elsewhere and waits for the chain's verdict.
async fn confirm(ctx: &ChainContext, transaction: &Transaction) -> Result<(), ServiceError> {
    ops::wait_for(
        ctx.chain.as_ref(),
        transaction,
        std::time::Instant::now() + Duration::from_secs(60),
    )
    .await?;
    Ok(())
}

/// The claim mail of the ticket's open transfer, when it has not gone out
/// yet. After it has, the code is no longer kept: cancel and send again.
pub async fn resend(
    services: &Services,
    holder: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
) -> Result<EmailTransferState, ServiceError> {
    held_ticket(
        services,
        holder,
        event_id,
        ticket_id,
        "only the ticket's holder may do this",
    )
    .await?;
    let transfer = services
        .store
        .open_email_transfer(event_id, ticket_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("this ticket has no open email transfer".into()))?;
    if transfer.claim_secret.is_none() {
        return Err(ServiceError::Conflict(
            "the claim mail was already sent and its code is not kept; cancel and send the ticket again"
                .into(),
        ));
    }
    Ok(mail::deliver_claim(services, &transfer).await)
}

/// The unsigned `cancel_email_transfer` of the ticket's open transfer, to
/// sign and submit like a transfer; only the wallet that opened it may.
pub async fn prepare_cancel(
    services: &Services,
    holder: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
) -> Result<UnsignedTransfer, ServiceError> {
    held_ticket(
        services,
        holder,
        event_id,
        ticket_id,
        "only the ticket's holder may do this",
    )
    .await?;
    let ctx = chain_of(services)?;
    let event = event_address(ctx, event_id);
    let (open, _) = delegation_and_ticket(ctx, &event, ticket_id).await?;
    let holder = pubkey_of(holder);
    match open {
        None => {
            return Err(ServiceError::NotFound(
                "this ticket has no open email transfer".into(),
            ));
        }
        Some(d) if d.owner != holder => {
            return Err(ServiceError::Forbidden(
                "only the wallet that opened the transfer may cancel it",
            ));
        }
        Some(_) => {}
    }
    let standard = organizer::event_on_chain(services, event_id)
        .await?
        .token_standard;
    let instruction =
        ticketing::client::cancel_email_transfer(&holder, &event, ticket_id, standard);
    Ok(UnsignedTransfer {
        transaction: unsigned_transaction(ctx, &holder, instruction).await?,
        message: format!("Take back ticket #{ticket_id} from its email transfer"),
        expires_at: None,
    })
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
