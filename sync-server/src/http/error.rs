//! The one place where errors become HTTP: a status and a JSON body
//! `{ "error": code, "message": text }`, plus `"field"` when one field of a
//! request body is at fault. Internal details are logged, never sent.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::adapters::payments::{PaymentError, WebhookError};
use crate::services::ServiceError;
use crate::services::auth::AuthError;
use crate::services::gates::GateError;
use crate::services::transfers::ClaimError;
use crate::store::{EnrolError, StoreError};

/// The JSON body of every error answer: defined in `shared::wire`, so the
/// gate reads exactly what the server writes.
pub use shared::wire::ErrorBody;

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
    /// Nothing left to sell (event capacity or the tier's supply).
    #[error("{0}")]
    SoldOut(String),
    /// It existed but is over for good (an expired reservation or claim).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request's body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// The body is not JSON at all (or not UTF-8, or cut short).
    #[error("{0}")]
    MalformedJson(String),
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// One field of an otherwise readable body is missing, unknown or out of
    /// its range; `field` is its path (`tiers[2].price`).
    #[error("{message}")]
    Validation { field: String, message: String },
    /// The caller spent its budget; it may retry after `retry_after`.
    #[error("too many requests; retry in {} s", retry_after_secs(*.retry_after))]
    TooManyRequests { retry_after: Duration },
    #[error("cursor {0} is unknown to this server; fetch a new snapshot")]
    CursorUnknown(u64),
    #[error("protocol version {0} is no longer supported; update the gate agent")]
    UnsupportedVersion(u16),
    #[error(transparent)]
    Enrol(#[from] EnrolError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error("storage failure")]
    Store(StoreError),
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // An id from the client that no row can have: nothing by that
            // id exists, and nothing failed.
            StoreError::IdOutOfRange(id) => Self::NotFound(format!("nothing has the id {id}")),
            e => Self::Store(e),
        }
    }
}

impl From<crate::services::organizer::OrganizerError> for ApiError {
    fn from(e: crate::services::organizer::OrganizerError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest(m) => Self::BadRequest(m),
            ServiceError::Forbidden(m) => Self::Forbidden(m),
            ServiceError::NotFound(m) => Self::NotFound(m),
            ServiceError::Conflict(m) => Self::Conflict(m),
            ServiceError::SoldOut(m) => Self::SoldOut(m),
            ServiceError::Gone(m) => Self::Gone(m),
            ServiceError::Invalid { field, message } => Self::Validation { field, message },
            ServiceError::Payment(e) => Self::Payment(e),
            ServiceError::Claim(e) => Self::Claim(e),
            ServiceError::Store(e) => e.into(),
            ServiceError::ChainUnavailable(m) => Self::ChainUnavailable(m),
            ServiceError::ChainRefused(m) => Self::ChainRefused(m),
            ServiceError::Internal(m) => Self::Internal(m),
            ServiceError::Auth(e) => Self::Auth(e),
            ServiceError::Gate(GateError::Unauthorized(m)) => Self::Unauthorized(m),
            ServiceError::Gate(GateError::CursorUnknown(c)) => Self::CursorUnknown(c),
            ServiceError::Gate(GateError::UnsupportedVersion(v)) => Self::UnsupportedVersion(v),
            ServiceError::Gate(GateError::BatchTooLarge(m)) => Self::PayloadTooLarge(m),
            ServiceError::Gate(GateError::Enrol(e)) => Self::Enrol(e),
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
            ApiError::SoldOut(_) => (StatusCode::CONFLICT, "sold_out"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::CursorUnknown(_) => (StatusCode::GONE, "cursor_unknown"),
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
            ApiError::Auth(e) => auth_status_and_code(e),
            ApiError::Claim(ClaimError::NotFound) => (StatusCode::NOT_FOUND, "claim_not_found"),
            ApiError::Claim(ClaimError::AlreadyClaimed) => (StatusCode::GONE, "already_claimed"),
            ApiError::Claim(ClaimError::Cancelled) => (StatusCode::GONE, "claim_cancelled"),
            ApiError::Claim(ClaimError::Expired) => (StatusCode::GONE, "claim_expired"),
            ApiError::Webhook(e) => (StatusCode::BAD_REQUEST, e.code()),
            ApiError::Payment(PaymentError::Disabled) => {
                (StatusCode::SERVICE_UNAVAILABLE, "payments_disabled")
            }
            ApiError::Payment(PaymentError::InvalidRequest(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_payment")
            }
            ApiError::Payment(PaymentError::Rejected { .. }) => {
                (StatusCode::PAYMENT_REQUIRED, "payment_refused")
            }
            ApiError::Payment(PaymentError::Unavailable(_) | PaymentError::Protocol(_)) => {
                (StatusCode::BAD_GATEWAY, "payment_provider_unavailable")
            }
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            ApiError::ChainUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable"),
            ApiError::ChainRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "chain_refused"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// Refused logins and session tokens: 403 when no wallet could ever pass
/// (login disabled, role missing), 401 when the client should log in anew.
fn auth_status_and_code(e: &AuthError) -> (StatusCode, &'static str) {
    match e {
        AuthError::Disabled => (StatusCode::FORBIDDEN, "login_disabled"),
        AuthError::RoleRequired { .. } => (StatusCode::FORBIDDEN, "role_required"),
        AuthError::MissingToken => (StatusCode::UNAUTHORIZED, "missing_token"),
        AuthError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
        AuthError::TokenExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
        AuthError::BadSignature => (StatusCode::UNAUTHORIZED, "bad_signature"),
        AuthError::NonceExpired => (StatusCode::UNAUTHORIZED, "nonce_expired"),
        AuthError::NonceUsed => (StatusCode::UNAUTHORIZED, "nonce_used"),
    }
}

/// Whole seconds a client must wait: rounded up, and at least one, so a
/// client that honours the header never comes back too early.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Store(e) => tracing::error!(error = %e, "storage failure"),
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            _ => {}
        }
        let field = match &self {
            ApiError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody {
            error: code.into(),
            message: self.to_string(),
            field,
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after } = &self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(*retry_after)),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn rate_limited_answers_429_with_retry_after_in_whole_seconds_rounded_up() {
        for (wait, header) in [
            (Duration::from_millis(6000), "6"),
            (Duration::from_millis(5001), "6"),
            (Duration::from_millis(200), "1"),
            (Duration::ZERO, "1"),
        ] {
            let response = ApiError::TooManyRequests { retry_after: wait }.into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[header::RETRY_AFTER], header, "{wait:?}");
            assert_eq!(body_of(response).await["error"], "rate_limited");
        }
    }

    #[tokio::test]
    async fn validation_errors_name_the_field_and_others_do_not() {
        let response = ApiError::Validation {
            field: "tiers[1].name".into(),
            message: "tiers[1].name: 1 to 64 characters".into(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = body_of(response).await;
        assert_eq!(body["error"], "invalid_field");
        assert_eq!(body["field"], "tiers[1].name");

        let body = body_of(ApiError::MalformedJson("expected value".into()).into_response()).await;
        assert_eq!(body["error"], "malformed_json");
        assert!(body.get("field").is_none(), "{body}");
    }
}
