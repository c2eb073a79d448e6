//! The ticketing API (`/api`, `/m`): wallet login and roles ([`auth`]),
//! events, minting and tickets ([`tickets`]), transfers by wallet and by
//! email ([`claims`]), purchases ([`purchases`]) and online validation for
//! handhelds ([`validate`]). Handlers parse, authorize, call a service and
//! map its result.

pub mod auth;
pub mod claims;
pub mod purchases;
pub mod tickets;
pub mod validate;

use axum::Router;
use axum::routing::{get, post, put};

use crate::http::state::AppState;

/// The routes of this module; [`crate::http::app`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/nonce", post(auth::nonce))
        .route("/api/auth/verify", post(auth::verify))
        .route("/api/auth/me", get(auth::me))
        .route("/api/admin/wallets/{wallet}/role", put(auth::grant_role))
        .route("/api/admin/purchases", get(purchases::needing_support))
        .route(
            "/api/events",
            post(tickets::create_event).get(tickets::list_events),
        )
        .route(
            "/api/events/{event}",
            get(tickets::get_event).put(tickets::update_event),
        )
        .route("/api/tickets/mint", post(tickets::mint))
        .route("/api/tickets/batch-mint", post(tickets::batch_mint))
        .route("/api/tickets/my", get(tickets::my_tickets))
        .route("/api/tickets/{event}/{ticket}", get(tickets::get_ticket))
        .route("/api/tickets/{event}/{ticket}/qr", get(tickets::qr))
        .route(
            "/api/tickets/{event}/{ticket}/transfer",
            post(tickets::transfer),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/submit",
            post(tickets::submit_transfer),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/cancel",
            post(claims::cancel),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/resend",
            post(claims::resend),
        )
        .route("/api/tickets/claim", post(claims::claim))
        .route("/m/{event}/{ticket}", get(tickets::metadata))
        .route(
            "/api/tickets/{event}/{ticket}/metadata",
            get(tickets::metadata),
        )
        .route("/m/{event}/{ticket}/image.svg", get(tickets::card_image))
        .route("/api/tickets/purchase", post(purchases::purchase))
        .route("/api/purchases", get(purchases::my_purchases))
        .route("/api/purchases/{purchase}", get(purchases::get_purchase))
        .route("/api/purchases/{purchase}/submit", post(purchases::submit))
        .route("/api/payments/webhook", post(purchases::webhook))
        .route("/api/validate", post(validate::validate))
        .route("/api/validate/offline", post(validate::offline))
        .route("/api/validate/sync", post(validate::sync))
}
