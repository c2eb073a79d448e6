//! The one place where errors become HTTP: a status and a JSON body
//! `{ "error": code, "message": text }`. Internal details are logged, never
//! sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::{EnrolError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("protocol version {0} is no longer supported; update the gate agent")]
    UnsupportedVersion(u16),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// The chain could not be reached (or none is configured); try again.
    #[error("{0}")]
    ChainUnavailable(String),
    /// The chain refused the operation (the program said no).
    #[error("{0}")]
    ChainRefused(String),
}

impl From<crate::organizer::OrganizerError> for ApiError {
    fn from(e: crate::organizer::OrganizerError) -> Self {
        use crate::chain::ChainError;
        use crate::organizer::OrganizerError;
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

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedVersion(_) => {
                (StatusCode::UPGRADE_REQUIRED, "unsupported_version")
            }
            ApiError::Enrol(EnrolError::KeyAlreadyEnrolled) => {
                (StatusCode::CONFLICT, "key_already_enrolled")
            }
            ApiError::Enrol(EnrolError::UnknownToken) => {
                (StatusCode::UNAUTHORIZED, "unknown_token")
            }
            ApiError::Enrol(EnrolError::TokenUsed) => (StatusCode::UNAUTHORIZED, "token_used"),
            ApiError::Enrol(EnrolError::TokenExpired) => {
                (StatusCode::UNAUTHORIZED, "token_expired")
            }
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            ApiError::ChainUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable"),
            ApiError::ChainRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "chain_refused"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Store(e) = &self {
            tracing::error!(error = %e, "storage failure");
        }
        (
            status,
            Json(json!({ "error": code, "message": self.to_string() })),
        )
            .into_response()
    }
}
