//! The server's OpenAPI 3 document, served at `GET /api/openapi.json`, and
//! the page made from it at `GET /docs` ([`page`]).
//!
//! Each handler describes itself with `#[utoipa::path]` beside its code, and
//! its request and answer types derive `ToSchema` (the gate wire types in
//! `shared` behind its `openapi` feature); [`ApiDoc`] lists the handlers.
//! The `api_openapi` test compares the document with the routes
//! [`crate::http::app`] really serves, so a route added without a description
//! fails there. The page is rendered here from the same document, with no
//! script or asset from elsewhere: venues may run the server offline.

pub mod page;
pub mod responses;

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use shared::wire::{HEADER_DEVICE_ID, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::ApiError;
use responses::ExtractorRefusals;

const DESCRIPTION: &str = "The server gate boxes sync with, and the ticketing API.

Three kinds of caller, each with its own credentials: gate boxes sign every request with the key they enrolled (`/gate/v1`, security `gate_*`); organizers use the server's admin token (`/api/admin`, `admin_token`); wallets log in by signing a one-time message and send the session token they get (`wallet_session`). An event's rules, validators, incidents and chain actions (`/api/events/{event}/...`) take its organizer's wallet or the admin token. Events, NFT metadata, health, metrics and this document are public.

Every request body is read strictly: a field the endpoint does not know is refused with 422 `invalid_field` naming it (a gate speaking a newer protocol version than the server may add fields).

Errors answer a JSON body `{\"error\": code, \"message\": text}` (`ErrorBody`), with `field` when one field of the request body is at fault; act on `error`, not on `message`. Every refusal has this shape, including a path segment or query string that does not parse, a body too large or of the wrong type, and an unknown route or method (`not_found`, `method_not_allowed`).

Times are Unix seconds unless a name ends in `_ms`; keys and wallets are base58.";

/// The whole API, as the handlers describe themselves.
#[derive(OpenApi)]
#[openapi(
    info(title = "NFT gate sync server", description = DESCRIPTION),
    paths(
        crate::http::health,
        crate::http::metrics::render,
        openapi_json,
        docs_page,
        crate::http::gate::enrol,
        crate::http::gate::snapshot,
        crate::http::gate::delta,
        crate::http::gate::journal,
        crate::http::admin::put_gate,
        crate::http::admin::gate_status,
        crate::http::admin::create_enrol_token,
        crate::http::admin::devices,
        crate::http::admin::cache_file,
        crate::http::admin::conflicts,
        crate::http::admin::revoke_device,
        crate::http::chain_admin::chain_info,
        crate::http::chain_admin::create_event,
        crate::http::chain_admin::mint,
        crate::http::chain_admin::refresh,
        crate::http::chain_admin::revoke,
        crate::http::chain_admin::replay_status,
        crate::http::api::auth::grant_role,
        crate::http::api::auth::nonce,
        crate::http::api::auth::verify,
        crate::http::api::auth::me,
        crate::http::api::events::create_event,
        crate::http::api::events::list_events,
        crate::http::api::events::get_event,
        crate::http::api::events::update_event,
        crate::http::api::manage::put_rules,
        crate::http::api::manage::validators,
        crate::http::api::manage::assign_validator,
        crate::http::api::manage::unassign_validator,
        crate::http::api::manage::incident_report,
        crate::http::api::conflicts::list,
        crate::http::api::conflicts::resolve,
        crate::http::api::ticket_files::import,
        crate::http::api::ticket_files::export,
        crate::http::api::chain_actions::freeze,
        crate::http::api::chain_actions::unfreeze,
        crate::http::api::chain_actions::cancel,
        crate::http::api::chain_actions::cancellation_progress,
        crate::http::api::chain_actions::withdraw,
        crate::http::api::chain_actions::close_tickets,
        crate::http::api::chain_actions::close_event,
        crate::http::api::reports::sales,
        crate::http::api::reports::attendance_csv,
        crate::http::api::reports::settlement_status,
        crate::http::api::tickets::get_ticket,
        crate::http::api::tickets::mint,
        crate::http::api::tickets::batch_mint,
        crate::http::api::mints::get_mint,
        crate::http::api::mints::admin_get_mint,
        crate::http::api::tickets::my_tickets,
        crate::http::api::tickets::qr,
        crate::http::api::holder_keys::holder_key,
        crate::http::api::transfers::transfer,
        crate::http::api::transfers::submit_transfer,
        crate::http::api::transfers::cancel,
        crate::http::api::transfers::resend,
        crate::http::api::transfers::claim,
        crate::http::api::purchases::purchase,
        crate::http::api::purchases::my_purchases,
        crate::http::api::purchases::needing_support,
        crate::http::api::purchases::get_purchase,
        crate::http::api::purchases::submit,
        crate::http::api::purchases::webhook,
        crate::http::api::nft::metadata,
        crate::http::api::nft::card_image,
        crate::http::api::validate::validate,
        crate::http::api::validate::offline,
        crate::http::api::validate::sync,
        crate::http::console::home,
        crate::http::console::signin::sign_in_page,
        crate::http::console::signin::sign_in,
        crate::http::console::signin::sign_out,
        crate::http::console::signin::follow_link,
        crate::http::console::event_page,
        crate::http::console::live_stream,
        crate::http::console::gates::gates_page,
        crate::http::console::gates::create_enrol_token,
        crate::http::console::gates::revoke_device,
        crate::http::console::gates::cache_file,
        crate::http::console::tickets::tickets_page,
        crate::http::console::tickets::hold_page,
        crate::http::console::tickets::hold,
        crate::http::console::cancel::cancel_page,
        crate::http::console::cancel::cancel_event,
        crate::http::console::cancel::cancel_stream,
        crate::http::console::settle::settle_page,
        crate::http::console::settle::settle,
        crate::http::console::settle::attendance_csv,
        crate::http::console::sales::sales_page,
        crate::http::console::events::new_event_page,
        crate::http::console::events::create_event,
        crate::http::console::setup::edit_page_get,
        crate::http::console::setup::edit_event,
        crate::http::console::setup::set_rules,
        crate::http::console::minting::mint_page_get,
        crate::http::console::minting::mint_one,
        crate::http::console::minting::batch_mint,
        crate::http::console::mint_progress::progress_page,
        crate::http::console::mint_progress::progress_stream,
        crate::http::console::ticket_import::import,
        crate::http::console::minting::attendees_csv,
        crate::http::console::conflicts::conflicts_page,
        crate::http::console::conflicts::resolve,
        crate::http::console::asset,
        crate::http::buyer::event::events_page,
        crate::http::buyer::event::event_page,
        crate::http::buyer::event::event_calendar,
        crate::http::buyer::purchases::confirmation_page,
        crate::http::buyer::tickets::tickets_page,
        crate::http::buyer::tickets::print_page,
        crate::http::buyer::tickets::ticket_calendar,
        crate::http::buyer::claim::claim_page,
        crate::http::buyer::sign_in,
        crate::http::buyer::sign_out,
        crate::http::buyer::assets::manifest,
        crate::http::buyer::assets::service_worker,
        crate::http::buyer::assets::asset,
    ),
    components(schemas(
        crate::http::error::ErrorBody,
        crate::http::api::ticket_files::ImportRefusal
    )),
    modifiers(&SecuritySchemes, &MetadataApiPath, &ExtractorRefusals),
    tags(
        (name = "gate", description = "The gate protocol: a box enrols with a one-time token, then signs every request with its own key. Snapshots and deltas are binary and signed by the server."),
        (name = "admin", description = "Organizer endpoints, with the server's admin token: gates and their boxes, events and tickets on chain, the replay of scans, wallet roles."),
        (name = "auth", description = "Wallet login: ask for a one-time message, sign it with the wallet, get a session token."),
        (name = "events", description = "Events as buyers see them; creating one takes an organizer's wallet. Its organizer sets its check-in rules (re-entry, unknown tickets, holder proof, tier -> gates, end-time grace), assigns the wallets that may validate it, reviews its conflicts and incidents, and acts on chain: freezes tickets, cancels the event (tickets revoked, card purchases refunded), withdraws the proceeds and closes the accounts after it."),
        (name = "tickets", description = "Minting (organizers), holders' tickets and QR codes, transfers signed by the holder's wallet, to a wallet or to an email address claimed with the mailed code."),
        (name = "purchases", description = "Buying a ticket: a seat is held while the buyer pays by card (Stripe, confirmed by its signed webhook) or in SOL (a transaction the buyer's wallet signs); then the ticket is minted to the buyer."),
        (name = "validation", description = "Handhelds without the gate agent (the event's organizer or a validator it assigned): validate online, upload scans decided offline with the codes they scanned."),
        (name = "metadata", description = "What wallets and marketplaces read about a ticket NFT. Public."),
        (name = "service", description = "Health, metrics and this documentation. Public."),
        (name = "buyer", description = "The buyer pages: HTML pages for a browser (events and checkout, the confirmation, My tickets, claim, calendar files, printable tickets) and the installable web app's manifest and service worker, signed in with the wallet's API session kept in a cookie; the pages' script calls the JSON API."),
        (name = "console", description = "The organizer console: HTML pages for a browser, signed in with the admin token or an organizer's wallet (a session cookie), on the same services as the JSON API."),
    )
)]
pub struct ApiDoc;

/// Bytes with no JSON shape (signed cache files, PNG images).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BinaryBody(pub Vec<u8>);

/// The three ways callers prove who they are.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "wallet_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A session token from `POST /api/auth/verify` (a JWT, HS256), as \
                         `Authorization: Bearer TOKEN`. The wallet's role is read from the \
                         server on every request, so a role granted or taken away counts at once.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The server's configured `admin_token` (`SYNC_ADMIN_TOKEN`), as \
                         `Authorization: Bearer TOKEN`. With none configured the admin \
                         endpoints answer 403.",
                    ))
                    .build(),
            ),
        );
        // A gate request carries all four headers (one requirement names
        // them together); the signature binds the other three to the request.
        let gate_headers = [
            (
                "gate_device",
                HEADER_DEVICE_ID,
                "The device id the box received at enrolment.".to_owned(),
            ),
            (
                "gate_timestamp",
                HEADER_TIMESTAMP,
                "Unix seconds of the box's clock; refused when further than \
                 `gates.signature_window_secs` (default 120) from the server's."
                    .to_owned(),
            ),
            (
                "gate_nonce",
                HEADER_NONCE,
                "1 to 64 characters, never used before by this device.".to_owned(),
            ),
            (
                "gate_signature",
                HEADER_SIGNATURE,
                format!(
                    "Base58 of the ed25519 signature, by the key the box enrolled with, over \
                     the bytes `nft-gate/device-request/v1` followed, each after a newline, by \
                     the method in capitals, the path with its query string, the \
                     `{HEADER_TIMESTAMP}` value, the `{HEADER_NONCE}` value, and the 32-byte \
                     SHA-256 of the body (see `shared::wire::device_request_message`)."
                ),
            ),
        ];
        for (name, header, description) in gate_headers {
            components.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    header.to_owned(),
                    description,
                ))),
            );
        }
    }
}

/// The NFT metadata URI (`/m/{event}/{ticket}`, fixed on chain at mint) and
/// its API path are one handler, so one description serves both.
struct MetadataApiPath;

const METADATA_URI: &str = "/m/{event}/{ticket}";
const METADATA_API_PATH: &str = "/api/tickets/{event}/{ticket}/metadata";

impl Modify for MetadataApiPath {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let Some(mut item) = doc.paths.paths.get(METADATA_URI).cloned() else {
            return;
        };
        if let Some(get) = item.get.as_mut() {
            get.operation_id = Some("metadata_by_api_path".into());
        }
        doc.paths.paths.insert(METADATA_API_PATH.into(), item);
    }
}

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document's JSON and the page, made once per process.
static RENDERED: LazyLock<Result<(String, String), String>> = LazyLock::new(|| {
    let doc = serde_json::to_value(document()).map_err(|e| e.to_string())?;
    let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    Ok((json, page::render(&doc)))
});

fn rendered() -> Result<&'static (String, String), ApiError> {
    RENDERED
        .as_ref()
        .map_err(|e| ApiError::Internal(format!("the OpenAPI document: {e}")))
}

/// This document
///
/// `GET /api/openapi.json`: the OpenAPI 3.1 document of every route the
/// server serves.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "service",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"),
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn openapi_json() -> Response {
    match rendered() {
        Ok((json, _)) => {
            ([(header::CONTENT_TYPE, "application/json")], json.as_str()).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// This documentation as a page
///
/// `GET /docs`: every operation grouped by tag, with its parameters, bodies,
/// answers and security, and every schema. One self-contained HTML page.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "service",
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        crate::http::openapi::responses::Internal,
    )
)]
pub async fn docs_page() -> Response {
    match rendered() {
        Ok((_, html)) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.as_str(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
