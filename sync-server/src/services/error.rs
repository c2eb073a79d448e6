//! What a service call can end in, in the domain's words. The HTTP layer
//! turns each into a status and a JSON body (`crate::http::error`); a
//! worker logs it and tries again later.

use crate::adapters::payments::PaymentError;
use crate::chain::ChainError;
use crate::services::auth::AuthError;
use crate::services::gates::GateError;
use crate::services::organizer::OrganizerError;
use crate::services::transfers::ClaimError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    BadRequest(String),
    /// The caller may not do this (not the event's organizer, not the
    /// ticket's holder).
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// It clashes with the current state (already claimed, already sent).
    #[error("{0}")]
    Conflict(String),
    /// Nothing left to sell (event capacity or the tier's supply).
    #[error("{0}")]
    SoldOut(String),
    /// It existed but is over for good (an expired reservation or claim).
    #[error("{0}")]
    Gone(String),
    /// One input field is out of its range; `field` is its path.
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// A login or session token was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A gate's request was refused (signature, protocol, cursor, size).
    #[error(transparent)]
    Gate(#[from] GateError),
    /// A claim of an emailed ticket was refused.
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// The chain could not be reached (or none is configured); try again.
    #[error("{0}")]
    ChainUnavailable(String),
    /// The chain refused the operation (the program said no).
    #[error("{0}")]
    ChainRefused(String),
    /// A fault of the server itself; the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ServiceError {
    /// An input field out of range, named by its path.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::Invalid {
            message: format!("{field}: {reason}"),
            field,
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

impl From<ChainError> for ServiceError {
    fn from(e: ChainError) -> Self {
        OrganizerError::Chain(e).into()
    }
}

impl From<OrganizerError> for ServiceError {
    fn from(e: OrganizerError) -> Self {
        match e {
            OrganizerError::NoChain => Self::ChainUnavailable(e.to_string()),
            OrganizerError::Chain(ChainError::Refused(m)) => {
                Self::ChainRefused(format!("the chain refused: {m}"))
            }
            OrganizerError::Chain(other) => {
                tracing::warn!(error = %other, "chain operation failed");
                Self::ChainUnavailable(format!("the chain is unavailable: {other}"))
            }
            OrganizerError::Store(s) => Self::Store(s),
            OrganizerError::UnknownEvent(id) => {
                Self::NotFound(format!("event {id} is not on chain (create it first)"))
            }
            OrganizerError::Invalid(m) => Self::BadRequest(m),
        }
    }
}
