//! Refusals and path parameters many endpoints share, described once. A handler lists the sets
//! that apply to it in `responses(...)` beside its own answers, so the
//! words for `payload_too_large` or a lost session are written in one place.

use crate::http::error::ErrorBody;

/// Refusals of a JSON request body.
#[derive(utoipa::IntoResponses)]
pub enum JsonBodyRefusals {
    #[response(
        status = 400,
        description = "`malformed_json`: the body is not JSON; `bad_request`: a path parameter does not parse"
    )]
    Malformed(ErrorBody),
    #[response(
        status = 408,
        description = "`request_timeout`: the body did not arrive within `connections.body_timeout_secs`"
    )]
    TooSlow(ErrorBody),
    #[response(status = 413, description = "`payload_too_large`")]
    TooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "`unsupported_media_type`: send the body as `application/json`"
    )]
    MediaType(ErrorBody),
}

/// Refusals of the admin token.
#[derive(utoipa::IntoResponses)]
pub enum AdminRefusals {
    #[response(
        status = 401,
        description = "`unauthorized`: no bearer token, or not the admin token"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "`forbidden`: the admin API is disabled (no `admin_token` configured)"
    )]
    Disabled(ErrorBody),
}

/// Refusal of a wallet session token (the 403s differ per endpoint).
#[derive(utoipa::IntoResponses)]
pub enum SessionRefusals {
    #[response(
        status = 401,
        description = "`missing_token`, `invalid_token` or `token_expired`"
    )]
    NoSession(ErrorBody),
}

/// The database does not answer.
#[derive(utoipa::IntoResponses)]
pub enum StorageDown {
    #[response(status = 503, description = "`storage_unavailable`")]
    Unavailable(ErrorBody),
}

/// The chain or the database does not answer.
#[derive(utoipa::IntoResponses)]
pub enum ChainOrStorageDown {
    #[response(
        status = 503,
        description = "`chain_unavailable` or `storage_unavailable`"
    )]
    Unavailable(ErrorBody),
}

/// A fault of the server itself.
#[derive(utoipa::IntoResponses)]
pub enum Internal {
    #[response(status = 500, description = "`internal`")]
    Fault(ErrorBody),
}

/// The path of one ticket: `/{event}/{ticket}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TicketPath {
    /// The event id
    pub event: u64,
    /// The ticket id within the event
    pub ticket: u32,
}
