//! Every refusal the program can return, one variant per cause a client can act on.

use anchor_lang::prelude::*;

#[error_code]
pub enum TicketingError {
    #[msg("a text field is longer than its limit")]
    TextTooLong,
    #[msg("an event needs between one and the maximum number of tiers")]
    InvalidTierCount,
    #[msg("event times are inconsistent (start < end, doors open < doors close)")]
    InvalidSchedule,
    #[msg("capacity must be positive and not below the tickets already minted")]
    InvalidCapacity,
    #[msg("a tier's supply is below the tickets already sold in it, or a sold tier was removed")]
    InvalidTierSupply,
    #[msg("the event is cancelled")]
    EventCancelled,
    #[msg("the event has not ended yet")]
    EventNotEnded,
    #[msg("the signer is not the event's organizer")]
    NotOrganizer,
    #[msg("the signer is not allowed to mint tickets for this event")]
    NotMinter,
    #[msg("the signer is not an authorized validator of this event")]
    UnauthorizedValidator,
    #[msg("the validator list is full")]
    TooManyValidators,
    #[msg("the validator is already authorized")]
    ValidatorAlreadyAuthorized,
    #[msg("the validator is not in the list")]
    ValidatorNotFound,
    #[msg("the event is sold out")]
    SoldOut,
    #[msg("this tier is sold out")]
    TierSoldOut,
    #[msg("no such tier")]
    UnknownTier,
    #[msg("the price is above what the buyer accepted")]
    PriceAboveLimit,
    #[msg("account list does not match the instruction arguments")]
    AccountsMismatch,
    #[msg("an account is not at its expected address")]
    WrongAccount,
    #[msg("the ticket belongs to another event")]
    WrongEvent,
    #[msg("the signer does not own the ticket")]
    NotTicketOwner,
    #[msg("tickets of this event cannot be transferred now")]
    TransferForbidden,
    #[msg("the ticket was already used to enter")]
    AlreadyEntered,
    #[msg("the ticket is not active (frozen, revoked or refunded)")]
    TicketNotActive,
    #[msg("the ticket is not frozen")]
    TicketNotFrozen,
    #[msg("the ticket has an open email transfer")]
    TransferPending,
    #[msg("the recipient already owns the ticket")]
    SelfTransfer,
    #[msg("the email transfer has expired")]
    DelegationExpired,
    #[msg("the email transfer has not expired yet")]
    DelegationNotExpired,
    #[msg("the expiry must be in the future")]
    InvalidExpiry,
    #[msg("the claim was not signed by the one-time claim key")]
    WrongClaimKey,
    #[msg("the ticket changed hands after the email transfer was opened")]
    StaleDelegation,
    #[msg("too many records or tickets in one instruction")]
    BatchTooLarge,
    #[msg("the event still has open tickets")]
    TicketsOutstanding,
    #[msg("arithmetic overflow")]
    Overflow,
    #[msg("the token program is not the one this event's tickets use")]
    WrongTokenProgram,
    #[msg("the token standard cannot change once tickets are minted")]
    TokenStandardLocked,
}
