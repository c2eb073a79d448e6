//! The claim page an emailed ticket's link opens: what is waiting and from
//! whom, or in words why the link no longer works; the recipient signs in
//! with their wallet and claims (the page's script calls
//! `POST /api/tickets/claim`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::page::{escape, page, sign_in_block, when};
use super::session;
use super::{problem, respond, unavailable};
use crate::http::state::AppState;
use crate::services::transfers::{self, ClaimError};
use crate::services::{ServiceError, events};

/// The claim link's query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimQuery {
    /// The one-time code from the mail.
    #[serde(default)]
    pub code: Option<String>,
}

/// Why a link does not work, in the recipient's words.
fn refusal(why: &ClaimError, expires_at: Option<i64>) -> (StatusCode, &'static str, String) {
    match why {
        ClaimError::NotFound => (
            StatusCode::NOT_FOUND,
            "This link does not work",
            "This link does not lead to a ticket. Open the whole link from the mail; if it still does not work, ask the sender to send the ticket again.".to_owned(),
        ),
        ClaimError::AlreadyClaimed => (
            StatusCode::GONE,
            "Already claimed",
            "This ticket was already claimed: each link works once. If it was not you, ask the sender.".to_owned(),
        ),
        ClaimError::Cancelled => (
            StatusCode::GONE,
            "Taken back",
            "The sender took this ticket back, so this link no longer works.".to_owned(),
        ),
        ClaimError::Expired => (
            StatusCode::GONE,
            "This link expired",
            match expires_at {
                Some(at) => format!(
                    "This link expired at {}. Ask the sender to send the ticket again.",
                    when(at)
                ),
                None => "This link expired. Ask the sender to send the ticket again.".to_owned(),
            },
        ),
    }
}

/// The claim page
///
/// `GET /claim?code=...`: the page the claim mail links to. It names the
/// event, the ticket and the sender; signed in, it claims the ticket into
/// the wallet. An unknown, used, cancelled or expired link says so in
/// words (404 or 410).
#[utoipa::path(
    get,
    path = "/claim",
    tag = "buyer",
    operation_id = "buyer_claim_page",
    params(ClaimQuery),
    responses(
        (status = 200, description = "The ticket waiting, with the sign-in or the claim button", body = String, content_type = "text/html"),
        (status = 404, description = "The link leads to no ticket: a page saying so", body = String, content_type = "text/html"),
        (status = 410, description = "Claimed already, taken back or expired: a page saying which", body = String, content_type = "text/html"),
        (status = 503, description = "The database or the chain does not answer: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn claim_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ClaimQuery>,
) -> Response {
    let buyer = session::buyer(&state, &headers).await;
    let code = query.code.unwrap_or_default();
    let code = code.trim();
    let link_problem = |why: &ClaimError, expires_at| {
        let (status, title, text) = refusal(why, expires_at);
        problem(buyer.as_ref(), status, title, &text)
    };
    if code.is_empty() || code.len() > 128 {
        return link_problem(&ClaimError::NotFound, None);
    }
    let preview = match transfers::preview(&state, code).await {
        Ok(preview) => preview,
        Err(ServiceError::Claim(why)) => return link_problem(&why, None),
        Err(_) => return unavailable(buyer.as_ref(), "This ticket"),
    };
    if let Err(why) = &preview.claimable {
        return link_problem(why, Some(preview.expires_at));
    }
    let Ok(event) = events::record(&state, preview.event_id).await else {
        return unavailable(buyer.as_ref(), "This ticket");
    };
    let action = match &buyer {
        Some(buyer) => format!(
            r#"<button type="button" id="claim-ticket" data-code="{code}">Claim into wallet {wallet}</button>
<p id="claim-status" role="status" aria-live="polite"></p>"#,
            code = escape(code),
            wallet = escape(&buyer.label()),
        ),
        None => sign_in_block(
            "Sign in with the wallet that should hold the ticket; then claim it.",
            &format!("/claim?code={}", escape(code)),
        ),
    };
    let body = format!(
        r#"<h1>A ticket for you</h1>
<section class="card" aria-labelledby="claim-event-h">
<h2 id="claim-event-h">{event}</h2>
<p class="meta">{venue}<br>{starts} – {ends}</p>
<p>{sender} sent you ticket {ticket}. Claim it before {expires}: the link works once.</p>
</section>
{action}"#,
        event = escape(&event.name),
        venue = escape(&event.venue),
        starts = when(event.starts_at),
        ends = when(event.ends_at),
        sender = escape(&preview.sender),
        ticket = preview.ticket_id,
        expires = when(preview.expires_at),
    );
    respond(
        StatusCode::OK,
        page("Claim your ticket", buyer.as_ref(), &body),
    )
}
