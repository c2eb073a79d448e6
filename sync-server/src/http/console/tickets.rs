//! The attendee list: an event's tickets with their holders, status and
//! whether they are inside, searchable by ticket id or wallet, a page of
//! 100 at a time; and the security hold on one ticket (freeze / unfreeze on
//! chain, [`crate::services::ticket_holds`]), asked on a page of its own that
//! says what it does, then done and reported in words.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::TicketStatus;

use super::html::{escape, page};
use super::{Viewer, form, problem, respond, viewer_for};
use crate::http::state::AppState;
use crate::services::ServiceError;
use crate::services::ticket_holds::{self, Hold};

/// Tickets per page.
const PAGE: u32 = 100;

/// The list's search and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendeeQuery {
    /// A ticket id, or the start of a holder's wallet (base58).
    #[serde(default)]
    pub q: Option<String>,
    /// From 1.
    #[serde(default)]
    pub page: Option<u32>,
}

/// An event's tickets and attendees
///
/// `GET /console/events/{event}/tickets?q=&page=`: each ticket with its
/// holder, tier, status, whether the holder is inside and their admissions.
#[utoipa::path(
    get,
    path = "/console/events/{event}/tickets",
    tag = "console",
    operation_id = "console_tickets_page",
    params(("event" = u64, Path, description = "The event id"), AttendeeQuery),
    responses(
        (status = 200, description = "The attendee list", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn tickets_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    Query(query): Query<AttendeeQuery>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let search: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect();
    let page_no = query.page.unwrap_or(1).max(1);
    let (rows, total) = match state
        .store
        .attendees(event_id, &search, PAGE, (page_no - 1).saturating_mul(PAGE))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            return problem(
                Some(&viewer),
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The tickets are not available: {e}"),
            );
        }
    };
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    let mut table = String::new();
    for row in &rows {
        let t = &row.ticket;
        let status = status_text(t.status);
        let action = match t.status {
            TicketStatus::Active => format!(
                r#"<a href="/console/events/{event_id}/tickets/{id}/hold?action=freeze" aria-label="Freeze ticket {id}">Freeze…</a>"#,
                id = t.ticket_id
            ),
            TicketStatus::Frozen => format!(
                r#"<a href="/console/events/{event_id}/tickets/{id}/hold?action=unfreeze" aria-label="Unfreeze ticket {id}">Unfreeze…</a>"#,
                id = t.ticket_id
            ),
            TicketStatus::Revoked | TicketStatus::Refunded => String::new(),
        };
        let presence = match row.inside {
            Some(true) => r#"<span class="ok">inside</span>"#,
            Some(false) => "left",
            None => "not yet",
        };
        let _ = write!(
            table,
            r#"<tr data-ticket="{id}"><th scope="row">{id}</th><td><code>{owner}</code></td><td>{tier}</td><td data-figure="status">{status}</td><td>{presence}</td><td>{entries}</td><td>{action}</td></tr>"#,
            id = t.ticket_id,
            owner = escape(&t.owner.to_base58()),
            tier = t.tier,
            entries = row.entries,
        );
    }
    let pages = total.div_ceil(u64::from(PAGE)).max(1);
    let mut nav = String::new();
    let q = escape(&search);
    if page_no > 1 {
        let _ = write!(
            nav,
            r#"<a href="?q={q}&amp;page={}">Previous</a> "#,
            page_no - 1
        );
    }
    if u64::from(page_no) < pages {
        let _ = write!(nav, r#"<a href="?q={q}&amp;page={}">Next</a>"#, page_no + 1);
    }
    let list = if rows.is_empty() {
        r#"<p class="empty">No ticket matches.</p>"#.to_owned()
    } else {
        format!(
            r#"<div class="scroll"><table><caption>{total} ticket(s); page {page_no} of {pages}</caption><thead><tr><th scope="col">Ticket</th><th scope="col">Holder's wallet</th><th scope="col">Tier</th><th scope="col">Status</th><th scope="col">Inside</th><th scope="col">Admissions</th><th scope="col"><span class="sr">Action</span></th></tr></thead><tbody>{table}</tbody></table></div><p>{nav}</p>"#
        )
    };
    let body = format!(
        r#"<h1>{name}: tickets and attendees</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/gates">Gates and devices</a> · <a href="/console/events/{event_id}/sales">Sales</a> · <a href="/console/events/{event_id}/attendance.csv" download>Attendance (CSV)</a></p>
<form method="get" role="search"><label for="q">Ticket id or the start of a wallet</label><input id="q" name="q" value="{q}" maxlength="64"><button type="submit">Search</button></form>
{list}"#,
        name = escape(&name),
    );
    respond(
        StatusCode::OK,
        page(&format!("{name} tickets"), Some(&viewer.label()), &body),
    )
}

/// A ticket's status in an organizer's words.
fn status_text(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Active => "valid",
        TicketStatus::Revoked => "revoked",
        TicketStatus::Frozen => r#"<span class="warn">frozen</span>"#,
        TicketStatus::Refunded => "refunded",
    }
}

/// Which hold the page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HoldAction {
    /// Freeze: gates refuse the ticket, it cannot be transferred.
    Freeze,
    /// Lift the hold: gates admit the ticket again.
    Unfreeze,
}

impl HoldAction {
    fn hold(self) -> Hold {
        match self {
            Self::Freeze => Hold::Freeze,
            Self::Unfreeze => Hold::Release,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Freeze => "Freeze",
            Self::Unfreeze => "Unfreeze",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Freeze => "freeze",
            Self::Unfreeze => "unfreeze",
        }
    }

    /// What it does, for the organizer deciding.
    fn explained(self) -> &'static str {
        match self {
            Self::Freeze => {
                "Freezing puts a security hold on this ticket, on chain: every gate refuses it \
                 (\"Ticket frozen\") from its next update, usually within seconds, and its holder \
                 cannot transfer it. Nothing is refunded and nothing is lost: unfreeze it and it \
                 works again. Use it for a ticket reported stolen or under dispute."
            }
            Self::Unfreeze => {
                "Unfreezing lifts the security hold, on chain: gates admit this ticket again \
                 from their next update, and its holder may transfer it."
            }
        }
    }
}

/// The hold page's query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldQuery {
    /// `freeze` or `unfreeze`; without it, what the ticket's status allows.
    #[serde(default)]
    pub action: Option<HoldAction>,
}

/// The hold form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldForm {
    /// `freeze` or `unfreeze`.
    pub action: HoldAction,
}

async fn ticket_and_event(
    state: &AppState,
    viewer: &Viewer,
    event_id: u64,
    ticket_id: u32,
) -> Result<(String, shared::wire::CachedTicket), Response> {
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    match state.store.ticket(event_id, ticket_id).await {
        Ok(Some(ticket)) => Ok((name, ticket)),
        Ok(None) => Err(problem(
            Some(viewer),
            StatusCode::NOT_FOUND,
            &format!("{name} has no ticket {ticket_id}."),
        )),
        Err(e) => Err(problem(
            Some(viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The ticket is not available: {e}"),
        )),
    }
}

fn ticket_facts(ticket: &shared::wire::CachedTicket) -> String {
    format!(
        r#"<dl class="facts"><div><dt>Ticket</dt><dd>{id}</dd></div><div><dt>Tier</dt><dd>{tier}</dd></div><div><dt>Holder's wallet</dt><dd><code>{owner}</code></dd></div><div><dt>Status now</dt><dd id="ticket-status">{status}</dd></div></dl>"#,
        id = ticket.ticket_id,
        tier = ticket.tier,
        owner = escape(&ticket.owner.to_base58()),
        status = status_text(ticket.status),
    )
}

/// Confirm freezing or unfreezing a ticket
///
/// `GET /console/events/{event}/tickets/{ticket}/hold?action=freeze|unfreeze`:
/// the ticket as it is, what the hold does, and the button that does it
/// (without `action`: what the ticket's status allows).
#[utoipa::path(
    get,
    path = "/console/events/{event}/tickets/{ticket}/hold",
    tag = "console",
    operation_id = "console_ticket_hold_page",
    params(crate::http::openapi::responses::TicketPath, HoldQuery),
    responses(
        (status = 200, description = "The confirmation page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event or ticket", body = String, content_type = "text/html"),
    )
)]
pub async fn hold_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    Query(query): Query<HoldQuery>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let (name, ticket) = match ticket_and_event(&state, &viewer, event_id, ticket_id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let action = query
        .action
        .unwrap_or(if ticket.status == TicketStatus::Frozen {
            HoldAction::Unfreeze
        } else {
            HoldAction::Freeze
        });
    let possible = matches!(
        (action, ticket.status),
        (HoldAction::Freeze, TicketStatus::Active) | (HoldAction::Unfreeze, TicketStatus::Frozen)
    );
    let form = if possible {
        format!(
            r#"<form method="post" action="/console/events/{event_id}/tickets/{ticket_id}/hold"><input type="hidden" name="action" value="{value}"><button type="submit" id="hold-confirm">{verb} ticket {ticket_id}</button> <a href="/console/events/{event_id}/tickets?q={ticket_id}">Keep it as it is</a></form>"#,
            value = action.as_str(),
            verb = action.verb(),
        )
    } else {
        format!(
            r#"<p class="empty">Ticket {ticket_id} is {} already, or can no longer be changed. <a href="/console/events/{event_id}/tickets?q={ticket_id}">Back to the ticket</a></p>"#,
            status_text(ticket.status)
        )
    };
    let body = format!(
        r#"<h1>{verb} ticket {ticket_id}?</h1>
<p class="meta">{name} · <a href="/console/events/{event_id}/tickets">Tickets and attendees</a></p>
{facts}
<p>{explained}</p>
{form}"#,
        verb = action.verb(),
        name = escape(&name),
        facts = ticket_facts(&ticket),
        explained = escape(action.explained()),
    );
    respond(
        StatusCode::OK,
        page(
            &format!("{} ticket {ticket_id}", action.verb()),
            Some(&viewer.label()),
            &body,
        ),
    )
}

/// Freeze or unfreeze a ticket
///
/// `POST /console/events/{event}/tickets/{ticket}/hold` (form, `action`):
/// the hold set on chain and published to the gates (the service of `POST
/// /api/events/{event}/tickets/{ticket}/freeze` and `/unfreeze`); the page
/// says what happened and shows the ticket as the gates now see it.
#[utoipa::path(
    post,
    path = "/console/events/{event}/tickets/{ticket}/hold",
    tag = "console",
    operation_id = "console_ticket_hold",
    params(crate::http::openapi::responses::TicketPath),
    request_body(content = HoldForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done: the ticket as the gates now see it", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event or ticket", body = String, content_type = "text/html"),
        (status = 409, description = "The ticket is revoked or refunded", body = String, content_type = "text/html"),
        (status = 502, description = "The chain refused or did not answer", body = String, content_type = "text/html"),
    )
)]
pub async fn hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, ticket_id)): Path<(u64, u32)>,
    body: Bytes,
) -> Response {
    let form: HoldForm = match form(&headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let action = form.action;
    let ticket = match ticket_holds::set_hold(&state.services, event_id, ticket_id, action.hold())
        .await
    {
        Ok(ticket) => ticket,
        Err(e) => {
            let (status, text) = match &e {
                ServiceError::NotFound(_) => (
                    StatusCode::NOT_FOUND,
                    format!("Ticket {ticket_id} is not on chain, so it cannot be changed."),
                ),
                ServiceError::Conflict(_) => (
                    StatusCode::CONFLICT,
                    format!(
                        "Ticket {ticket_id} is revoked or refunded: it can be neither frozen nor unfrozen."
                    ),
                ),
                other => (
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "Ticket {ticket_id} was not changed: the chain did not take it ({other}). Try again in a moment."
                    ),
                ),
            };
            return problem(Some(&viewer), status, &text);
        }
    };
    let done = match (action, ticket.status) {
        (HoldAction::Freeze, TicketStatus::Frozen) => format!(
            "Ticket {ticket_id} is frozen. Gates refuse it from their next update; unfreeze it to let it in again."
        ),
        (HoldAction::Unfreeze, TicketStatus::Active) => {
            format!("Ticket {ticket_id} is unfrozen. Gates admit it again from their next update.")
        }
        _ => format!("Ticket {ticket_id} was not changed."),
    };
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    let next = match ticket.status {
        TicketStatus::Frozen => format!(
            r#"<a class="button" href="/console/events/{event_id}/tickets/{ticket_id}/hold?action=unfreeze">Unfreeze…</a>"#
        ),
        TicketStatus::Active => format!(
            r#"<a class="button" href="/console/events/{event_id}/tickets/{ticket_id}/hold?action=freeze">Freeze…</a>"#
        ),
        _ => String::new(),
    };
    let body = format!(
        r#"<h1>Ticket {ticket_id}</h1>
<p class="meta">{name} · <a href="/console/events/{event_id}/tickets">Tickets and attendees</a></p>
<p class="notice" role="status" id="hold-result">{done}</p>
{facts}
<p>{next}</p>"#,
        name = escape(&name),
        done = escape(&done),
        facts = ticket_facts(&ticket),
    );
    respond(
        StatusCode::OK,
        page(&format!("Ticket {ticket_id}"), Some(&viewer.label()), &body),
    )
}
