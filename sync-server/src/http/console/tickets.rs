//! The attendee list: an event's tickets with their holders, status and
//! whether they are inside, searchable by ticket id or wallet, a page of
//! 100 at a time.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use shared::TicketStatus;

use super::html::{escape, page};
use super::{problem, respond, viewer_for};
use crate::http::state::AppState;

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
        let status = match t.status {
            TicketStatus::Active => "valid",
            TicketStatus::Revoked => "revoked",
            TicketStatus::Frozen => "frozen",
            TicketStatus::Refunded => "refunded",
        };
        let presence = match row.inside {
            Some(true) => r#"<span class="ok">inside</span>"#,
            Some(false) => "left",
            None => "not yet",
        };
        let _ = write!(
            table,
            r#"<tr><th scope="row">{id}</th><td><code>{owner}</code></td><td>{tier}</td><td>{status}</td><td>{presence}</td><td>{entries}</td></tr>"#,
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
            r#"<div class="scroll"><table><caption>{total} ticket(s); page {page_no} of {pages}</caption><thead><tr><th scope="col">Ticket</th><th scope="col">Holder's wallet</th><th scope="col">Tier</th><th scope="col">Status</th><th scope="col">Inside</th><th scope="col">Admissions</th></tr></thead><tbody>{table}</tbody></table></div><p>{nav}</p>"#
        )
    };
    let body = format!(
        r#"<h1>{name}: tickets and attendees</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/gates">Gates and devices</a></p>
<form method="get" role="search"><label for="q">Ticket id or the start of a wallet</label><input id="q" name="q" value="{q}" maxlength="64"><button type="submit">Search</button></form>
{list}"#,
        name = escape(&name),
    );
    respond(
        StatusCode::OK,
        page(&format!("{name} tickets"), Some(&viewer.label()), &body),
    )
}
