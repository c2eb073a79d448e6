//! "My tickets": every ticket the signed-in wallet holds with its code (a
//! QR drawn in the page from the credential's text), where it stands and
//! what the holder can do with it (calendar, print, transfer); the tickets
//! it passed on; a printable ticket; a ticket's calendar file.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

use super::calendar::ics;
use super::event::{calendar_file, entry};
use super::page::{escape, page, sign_in_block, when};
use super::session::{self, Buyer};
use super::{problem, respond, storable, unavailable};
use crate::http::state::AppState;
use crate::services::holdings::{self, HolderTicket, Standing};
use crate::services::{ServiceError, tickets};

/// The response header that marks a page rendered for a signed-in holder:
/// the service worker keeps only those for offline use.
pub const HOLDER_HEADER: &str = "x-ticket-holder";

fn badge(standing: &Standing) -> (&'static str, String) {
    match standing {
        Standing::Valid => ("ok", "Valid".to_owned()),
        Standing::Entered { inside, entries } => (
            "ok",
            match (inside, entries) {
                (true, _) => "Entered · inside now".to_owned(),
                (false, 1) => "Entered once · outside now".to_owned(),
                (false, n) => format!("Entered {n} times · outside now"),
            },
        ),
        Standing::Frozen => ("warn", "On hold".to_owned()),
        Standing::Revoked => ("bad", "Revoked".to_owned()),
        Standing::Refunded => ("bad", "Refunded".to_owned()),
        Standing::AwaitingClaim { .. } => ("warn", "Sent, waiting for claim".to_owned()),
        Standing::Transferred { .. } => ("muted", "Transferred".to_owned()),
    }
}

/// Words under the badge for a ticket that does not simply work.
fn explanation(standing: &Standing) -> Option<String> {
    Some(match standing {
        Standing::Valid | Standing::Entered { .. } => return None,
        Standing::Frozen => "The organizer put this ticket on hold. The gates will not open for it until they release it; contact the organizer.".to_owned(),
        Standing::Revoked => "This ticket was revoked. It will not open the gates.".to_owned(),
        Standing::Refunded => "This ticket was refunded. It will not open the gates.".to_owned(),
        Standing::AwaitingClaim { email, expires_at } => format!(
            "You sent this ticket to {email}. It is theirs once they claim it, until {}; until then you can take it back.",
            when(*expires_at)
        ),
        Standing::Transferred { email: Some(email) } => {
            format!("{email} claimed this ticket. It is no longer yours.")
        }
        Standing::Transferred { email: None } => {
            "This ticket is in another wallet now. It is no longer yours.".to_owned()
        }
    })
}

fn ticket_card(t: &HolderTicket) -> String {
    let (e, n) = (t.ticket.event_id, t.ticket.ticket_id);
    let (tone, label) = badge(&t.standing);
    let explanation = explanation(&t.standing)
        .map(|text| format!(r#"<p class="note">{}</p>"#, escape(&text)))
        .unwrap_or_default();
    let shows_code = matches!(t.standing, Standing::Valid | Standing::Entered { .. });
    let code = match (&t.code, shows_code, t.event.holder_proof) {
        (Some(code), true, shared::HolderProofPolicy::NotRequired) => format!(
            r#"<figure class="qr" data-code="{code}"><div class="qr-image" role="img" aria-label="Ticket code for the gate of {event}, ticket {n}"></div><figcaption>Show this code at the gate. Turn your screen brightness up.</figcaption></figure>
<details class="code-text"><summary>Code as text</summary><code>{code}</code></details>"#,
            code = escape(code),
            event = escape(&t.event.name),
        ),
        // The live code: drawn by live-code.js from the static code, the
        // wallet's approval of this browser's key and a fresh proof.
        (Some(code), true, shared::HolderProofPolicy::Required { window_secs }) => format!(
            r#"<figure class="qr live" data-code="{code}" data-holder-proof-window="{window_secs}"><div class="qr-image" role="img" aria-label="Live ticket code for the gate of {event}, ticket {n}"></div><figcaption>Show this live code at the gate. It changes every few seconds, so a screenshot will not get in.</figcaption>
<p class="live-note meta" data-live-note></p>
<p class="live-status" role="status" data-live-status>Preparing the live code…</p>
<button type="button" class="live-approve" data-live-approve hidden>Approve this phone with your wallet</button></figure>"#,
            code = escape(code),
            event = escape(&t.event.name),
        ),
        _ => String::new(),
    };
    let mut actions =
        format!(r#"<li><a href="/tickets/{e}/{n}/calendar.ics" download>Add to calendar</a></li>"#);
    if t.code.is_some() && shows_code && t.static_code_allowed() {
        let _ = write!(
            actions,
            r#"<li><a href="/tickets/{e}/{n}/print">Printable ticket</a></li>"#
        );
    }
    let transfer = match (&t.standing, t.code.is_some()) {
        (Standing::Valid, true) => format!(
            r#"<details class="transfer"><summary>Transfer this ticket</summary>
<form class="transfer-form stack" data-event="{e}" data-ticket="{n}" data-kind="wallet">
<label for="to-wallet-{e}-{n}">To a wallet address</label>
<input id="to-wallet-{e}-{n}" name="to_wallet" autocomplete="off" spellcheck="false" required>
<button type="submit">Send to this wallet</button>
</form>
<form class="transfer-form stack" data-event="{e}" data-ticket="{n}" data-kind="email">
<label for="to-email-{e}-{n}">Or by email: they claim it with a link</label>
<input id="to-email-{e}-{n}" name="to_email" type="email" autocomplete="email" required>
<button type="submit">Send by email</button>
</form>
<p class="transfer-status" role="status" aria-live="polite"></p>
</details>"#
        ),
        (Standing::AwaitingClaim { .. }, true) => format!(
            r#"<form class="transfer-cancel" data-event="{e}" data-ticket="{n}"><button type="submit" class="secondary">Take the ticket back</button></form><p class="transfer-status" role="status" aria-live="polite"></p>"#
        ),
        _ => String::new(),
    };
    let actions = if t.code.is_some() {
        format!(r#"<ul class="actions">{actions}</ul>"#)
    } else {
        String::new()
    };
    format!(
        r#"<article class="ticket card" id="ticket-{e}-{n}" data-event="{e}" data-ticket="{n}" data-standing="{standing}" aria-labelledby="ticket-{e}-{n}-h">
<h3 id="ticket-{e}-{n}-h">{event}</h3>
<p class="meta">{venue}<br>{starts} – {ends}</p>
<p><span class="badge {tone}" data-badge>{label}</span> {tier} · ticket {n}</p>
{explanation}{code}{actions}{transfer}
</article>"#,
        standing = t.standing.code(),
        event = escape(&t.event.name),
        venue = escape(&t.event.venue),
        starts = when(t.event.starts_at),
        ends = when(t.event.ends_at),
        label = escape(&label),
        tier = escape(&t.tier_name()),
    )
}

/// My tickets
///
/// `GET /tickets`: the signed-in wallet's tickets, each with its QR code
/// (drawn by the page's script from the credential's text), event details
/// and where it stands (valid, entered, on hold, revoked, sent by email and
/// waiting for the claim), with "Add to calendar", a printable ticket where
/// the event takes static codes, and transfer to a wallet or by email; then
/// the tickets it passed on. Signed out, it offers the wallet sign-in. The
/// service worker keeps the last copy for offline use; the page says when
/// it was synced.
#[utoipa::path(
    get,
    path = "/tickets",
    tag = "buyer",
    operation_id = "buyer_tickets_page",
    responses(
        (status = 200, description = "The holder's tickets, or the sign-in", body = String, content_type = "text/html"),
        (status = 503, description = "The database does not answer: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn tickets_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(buyer) = session::buyer(&state, &headers).await else {
        let body = format!(
            "<h1>My tickets</h1>{}",
            sign_in_block("Sign in to see the tickets your wallet holds.", "/tickets")
        );
        return respond(StatusCode::OK, page("My tickets", None, &body));
    };
    let holdings = match holdings::of_wallet(&state, &buyer.0).await {
        Ok(holdings) => holdings,
        Err(_) => return unavailable(Some(&buyer), "Your tickets"),
    };
    let mut body = format!(
        r#"<h1>My tickets</h1>
<p id="synced" class="meta" role="status" data-synced-at="{at}">Synced {when}.</p>"#,
        at = holdings.synced_at,
        when = when(holdings.synced_at),
    );
    if holdings.held.is_empty() {
        body.push_str(
            r#"<p class="empty">This wallet holds no tickets yet. <a href="/">Find an event</a>.</p>"#,
        );
    } else {
        body.push_str(r#"<section aria-label="Tickets you hold" class="tickets">"#);
        for t in &holdings.held {
            body.push_str(&ticket_card(t));
        }
        body.push_str("</section>");
    }
    if !holdings.passed_on.is_empty() {
        body.push_str(r#"<section aria-labelledby="passed-h" class="tickets passed"><h2 id="passed-h">Tickets you passed on</h2>"#);
        for t in &holdings.passed_on {
            body.push_str(&ticket_card(t));
        }
        body.push_str("</section>");
    }
    let mut response = respond(StatusCode::OK, page("My tickets", Some(&buyer), &body));
    if let Ok(value) = HeaderValue::from_str(&buyer.0.to_base58()) {
        response.headers_mut().insert(HOLDER_HEADER, value);
    }
    response
}

/// The ticket `buyer` holds, or the page to answer instead.
async fn held(
    state: &AppState,
    buyer: Option<&Buyer>,
    event_id: u64,
    ticket_id: u32,
) -> Result<HolderTicket, Response> {
    if !storable(event_id) {
        return Err(problem(
            buyer,
            StatusCode::NOT_FOUND,
            "No such ticket",
            "There is no ticket at this address; check the link.",
        ));
    }
    let Some(buyer) = buyer else {
        let next = format!("/tickets/{event_id}/{ticket_id}/print");
        let body = format!(
            "<h1>Your ticket</h1>{}",
            sign_in_block("Sign in with the wallet that holds this ticket.", &next)
        );
        return Err(respond(
            StatusCode::UNAUTHORIZED,
            page("Your ticket", None, &body),
        ));
    };
    let missing = || {
        problem(
            Some(buyer),
            StatusCode::NOT_FOUND,
            "Not your ticket",
            "This wallet does not hold this ticket. If you sent it to someone, it is theirs now.",
        )
    };
    match holdings::held(state, &buyer.0, event_id, ticket_id).await {
        Ok(ticket) => Ok(ticket),
        Err(ServiceError::NotFound(_)) => Err(missing()),
        Err(_) => Err(unavailable(Some(buyer), "This ticket")),
    }
}

/// A printable ticket
///
/// `GET /tickets/{event}/{ticket}/print` (its holder): the ticket on one
/// page with its code as a server-drawn SVG, for events whose gates take a
/// static code; for an event that needs the rotating holder proof it says
/// to show the live code instead.
#[utoipa::path(
    get,
    path = "/tickets/{event}/{ticket}/print",
    tag = "buyer",
    operation_id = "buyer_print_page",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id"),
    ),
    responses(
        (status = 200, description = "The printable ticket", body = String, content_type = "text/html"),
        (status = 401, description = "Signed out: the sign-in", body = String, content_type = "text/html"),
        (status = 404, description = "Not a ticket this wallet holds: a page saying so", body = String, content_type = "text/html"),
        (status = 409, description = "The event takes no static code: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn print_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Response {
    let buyer = session::buyer(&state, &headers).await;
    let t = match held(&state, buyer.as_ref(), event_id, ticket_id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    if !t.static_code_allowed() {
        return problem(
            buyer.as_ref(),
            StatusCode::CONFLICT,
            "No printed tickets for this event",
            "This event's gates need the live code that changes every few seconds. Open My tickets on your phone at the gate instead.",
        );
    }
    let Some(svg) = t.code.as_deref().and_then(|c| tickets::qr_svg(c).ok()) else {
        return unavailable(buyer.as_ref(), "This ticket's code");
    };
    let body = format!(
        r#"<article class="printable" aria-labelledby="print-h">
<h1 id="print-h">{event}</h1>
<p class="meta">{venue}<br>{starts} – {ends}</p>
<p><strong>{tier}</strong> · ticket {n}</p>
<figure class="qr static" role="img" aria-label="Ticket code for the gate">{svg}</figure>
<p class="meta">Holder: wallet {holder}. Anyone with this code can use the ticket once: keep it to yourself.</p>
<p class="no-print"><button type="button" id="print-now">Print</button> <a href="/tickets">Back to my tickets</a></p>
</article>"#,
        event = escape(&t.event.name),
        venue = escape(&t.event.venue),
        starts = when(t.event.starts_at),
        ends = when(t.event.ends_at),
        tier = escape(&t.tier_name()),
        n = ticket_id,
        holder = escape(&session::short(&t.ticket.owner.to_base58())),
    );
    respond(
        StatusCode::OK,
        page("Printable ticket", buyer.as_ref(), &body),
    )
}

/// A ticket's calendar file
///
/// `GET /tickets/{event}/{ticket}/calendar.ics` (its holder): the event as
/// an iCalendar file that names the ticket.
#[utoipa::path(
    get,
    path = "/tickets/{event}/{ticket}/calendar.ics",
    tag = "buyer",
    operation_id = "buyer_ticket_calendar",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("ticket" = u32, Path, description = "The ticket id"),
    ),
    responses(
        (status = 200, description = "The calendar file", body = String, content_type = "text/calendar"),
        (status = 401, description = "Signed out: the sign-in", body = String, content_type = "text/html"),
        (status = 404, description = "Not a ticket this wallet holds: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn ticket_calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
) -> Response {
    let buyer = session::buyer(&state, &headers).await;
    let t = match held(&state, buyer.as_ref(), event_id, ticket_id).await {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let tier = t.tier_name();
    calendar_file(
        &format!("ticket-{event_id}-{ticket_id}.ics"),
        ics(&entry(&state, &t.event, Some((ticket_id, &tier)))),
    )
}
