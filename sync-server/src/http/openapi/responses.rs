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

/// Refusals every route can give before its handler runs, added to each
/// operation that does not describe them itself: a path segment or query
/// string that does not parse (400 `bad_request`), an id past the largest
/// one the server keeps (404 `not_found`), and for a request with a body,
/// one too large (413) or of the wrong type (415). Without them the document
/// would not describe answers the server really gives.
pub struct ExtractorRefusals;

impl utoipa::Modify for ExtractorRefusals {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        for item in doc.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let in_path = parameters
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = parameters
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let has_body = operation.request_body.is_some();
                let mut add = |status: &str, text: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| refusal(text).into());
                };
                if in_path || in_query || has_body {
                    add(
                        "400",
                        "`bad_request`: a path segment, the query string or the body does not parse",
                    );
                }
                if in_path {
                    add("404", "`not_found`: nothing has this id");
                }
                if has_body {
                    add("413", "`payload_too_large`");
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not of the type this operation reads",
                    );
                }
            }
        }
    }
}

/// A refusal answered with an [`ErrorBody`].
fn refusal(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}
