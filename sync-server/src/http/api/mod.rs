//! The ticketing API (`/api`, `/m`): wallet login and roles ([`auth`]),
//! events ([`events`]), minting and tickets ([`tickets`], mint requests and
//! their idempotency keys in [`mints`]), NFT metadata
//! ([`nft`]), transfers by wallet and by email ([`transfers`]), purchases
//! ([`purchases`]), online validation for handhelds ([`validate`]), an
//! event's rules, validators and incidents ([`manage`]), its conflicts and
//! their resolutions ([`conflicts`]), a holder's approval of the browser
//! key that signs the rotating code ([`holder_keys`]), tickets in and out
//! as CSV ([`ticket_files`]), and its
//! organizer's actions on chain: holds, cancellation, proceeds and closing
//! ([`chain_actions`]), and its reports: sales, attendance and settlement
//! ([`reports`]).
//! Handlers parse, authorize, call a service and map its result.

pub mod auth;
pub mod chain_actions;
pub mod conflicts;
pub mod events;
pub mod holder_keys;
pub mod manage;
pub mod mints;
pub mod nft;
pub mod purchases;
pub mod reports;
pub mod ticket_files;
pub mod tickets;
pub mod transfers;
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
            post(events::create_event).get(events::list_events),
        )
        .route(
            "/api/events/{event}",
            get(events::get_event).put(events::update_event),
        )
        .route("/api/events/{event}/rules", put(manage::put_rules))
        .route("/api/events/{event}/validators", get(manage::validators))
        .route(
            "/api/events/{event}/validators/{wallet}",
            put(manage::assign_validator).delete(manage::unassign_validator),
        )
        .route(
            "/api/events/{event}/incidents",
            get(manage::incident_report),
        )
        .route("/api/events/{event}/conflicts", get(conflicts::list))
        .route(
            "/api/events/{event}/conflicts/{conflict}/resolution",
            post(conflicts::resolve),
        )
        .route(
            "/api/events/{event}/tickets/import",
            post(ticket_files::import),
        )
        .route(
            "/api/events/{event}/attendees.csv",
            get(ticket_files::export),
        )
        .route(
            "/api/events/{event}/tickets/{ticket}/freeze",
            post(chain_actions::freeze),
        )
        .route(
            "/api/events/{event}/tickets/{ticket}/unfreeze",
            post(chain_actions::unfreeze),
        )
        .route(
            "/api/events/{event}/cancellation",
            post(chain_actions::cancel).get(chain_actions::cancellation_progress),
        )
        .route(
            "/api/events/{event}/withdraw",
            post(chain_actions::withdraw),
        )
        .route(
            "/api/events/{event}/tickets/close",
            post(chain_actions::close_tickets),
        )
        .route(
            "/api/events/{event}/close",
            post(chain_actions::close_event),
        )
        .route("/api/events/{event}/sales", get(reports::sales))
        .route(
            "/api/events/{event}/attendance.csv",
            get(reports::attendance_csv),
        )
        .route(
            "/api/events/{event}/settlement",
            get(reports::settlement_status),
        )
        .route("/api/tickets/mint", post(tickets::mint))
        .route("/api/tickets/batch-mint", post(tickets::batch_mint))
        .route("/api/mints/{request}", get(mints::get_mint))
        .route("/api/admin/mints/{request}", get(mints::admin_get_mint))
        .route("/api/tickets/my", get(tickets::my_tickets))
        .route("/api/tickets/{event}/{ticket}", get(tickets::get_ticket))
        .route("/api/tickets/{event}/{ticket}/qr", get(tickets::qr))
        .route(
            "/api/tickets/{event}/{ticket}/holder-key",
            get(holder_keys::holder_key),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer",
            post(transfers::transfer),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/submit",
            post(transfers::submit_transfer),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/cancel",
            post(transfers::cancel),
        )
        .route(
            "/api/tickets/{event}/{ticket}/transfer/resend",
            post(transfers::resend),
        )
        .route("/api/tickets/claim", post(transfers::claim))
        .route("/m/{event}/{ticket}", get(nft::metadata))
        .route("/api/tickets/{event}/{ticket}/metadata", get(nft::metadata))
        .route("/m/{event}/{ticket}/image.svg", get(nft::card_image))
        .route("/api/tickets/purchase", post(purchases::purchase))
        .route("/api/purchases", get(purchases::my_purchases))
        .route("/api/purchases/{purchase}", get(purchases::get_purchase))
        .route("/api/purchases/{purchase}/submit", post(purchases::submit))
        .route("/api/payments/webhook", post(purchases::webhook))
        .route("/api/validate", post(validate::validate))
        .route("/api/validate/offline", post(validate::offline))
        .route("/api/validate/sync", post(validate::sync))
}
