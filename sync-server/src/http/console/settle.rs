//! After the event, from the console: withdraw the SOL proceeds to the
//! treasury, close the ticket accounts and then the event account for their
//! rent (the services of the API's `withdraw`, `tickets/close` and `close`,
//! [`crate::services::settlement`]), with what each returned as recorded,
//! and the attendance report as CSV.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::html::{escape, page, when};
use super::{Viewer, form, problem, respond, viewer_for};
use crate::http::state::AppState;
use crate::services::ServiceError;
use crate::services::settlement::{self, ChainSide, SettlementStatus};

/// Lamports in one SOL.
const LAMPORTS_PER_SOL: u64 = 1_000_000_000;

/// `lamports` as SOL and lamports (`0.2 SOL (200,000,000 lamports)`).
pub fn sol(lamports: u64) -> String {
    let whole = lamports / LAMPORTS_PER_SOL;
    let fraction = lamports % LAMPORTS_PER_SOL;
    let sol = if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:09}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    };
    format!("{sol} SOL ({} lamports)", grouped(lamports))
}

/// `n` with thousands separated by commas.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A service's refusal as a status and a sentence an organizer can act on.
pub fn in_words(e: &ServiceError) -> (StatusCode, String) {
    match e {
        ServiceError::NotFound(m) => (StatusCode::NOT_FOUND, format!("Not found: {m}.")),
        ServiceError::Conflict(m) => (StatusCode::CONFLICT, format!("Not now: {m}.")),
        ServiceError::ChainRefused(m) => (
            StatusCode::BAD_GATEWAY,
            format!("The chain refused it: {m}. Nothing was changed."),
        ),
        ServiceError::ChainUnavailable(m) => (
            StatusCode::BAD_GATEWAY,
            format!("The chain does not answer ({m}). Nothing was changed; try again in a moment."),
        ),
        ServiceError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The database does not answer; try again in a moment.".to_owned(),
        ),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("It did not work: {other}."),
        ),
    }
}

/// A page saying `what` did not happen, and why.
pub fn refused_page(viewer: &Viewer, what: &str, e: &ServiceError) -> Response {
    let (status, text) = in_words(e);
    problem(Some(viewer), status, &format!("{what}. {text}"))
}

/// Which step the after-event form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettleStep {
    /// The SOL proceeds to the treasury.
    Withdraw,
    /// The ticket accounts closed, their rent back.
    CloseTickets,
    /// The event account closed, its rent back.
    CloseEvent,
}

/// The after-event form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleForm {
    pub step: SettleStep,
    /// The box confirming a closing (`yes`); a withdrawal needs none.
    #[serde(default)]
    pub understood: Option<String>,
}

fn fact(label: &str, id: &str, value: &str) -> String {
    format!(r#"<div><dt>{label}</dt><dd data-figure="{id}">{value}</dd></div>"#)
}

/// Why a step cannot be taken now, or `None` when it can.
fn blocked(chain: Option<&ChainSide>, step: SettleStep) -> Option<String> {
    let Some(c) = chain else {
        return Some("The event account is closed: there is nothing left to do.".into());
    };
    let over = c.ended || c.cancelled;
    match step {
        SettleStep::Withdraw if c.cancelled => Some(
            "The event was cancelled: its SOL proceeds went back to the ticket holders.".into(),
        ),
        SettleStep::Withdraw if !c.ended => Some(format!(
            "Proceeds can be withdrawn once the event has ended ({}).",
            when(c.ends_at)
        )),
        SettleStep::Withdraw if c.proceeds_lamports == 0 => {
            Some("There are no proceeds left to withdraw.".into())
        }
        SettleStep::CloseTickets | SettleStep::CloseEvent if !over => Some(format!(
            "Accounts can be closed once the event has ended ({}) or was cancelled.",
            when(c.ends_at)
        )),
        SettleStep::CloseTickets if c.scans_not_on_chain > 0 => Some(format!(
            "{} scan(s) are still on their way to the chain; their tickets must stay open until they arrive.",
            c.scans_not_on_chain
        )),
        SettleStep::CloseTickets if c.open_tickets == 0 => {
            Some("Every ticket account is closed already.".into())
        }
        SettleStep::CloseEvent if c.open_tickets > 0 => Some(format!(
            "Close the {} open ticket account(s) first.",
            c.open_tickets
        )),
        _ => None,
    }
}

fn step_form(
    event_id: u64,
    chain: Option<&ChainSide>,
    step: SettleStep,
    button: &str,
    confirm: Option<&str>,
) -> String {
    if let Some(reason) = blocked(chain, step) {
        return format!(
            r#"<p class="empty" data-blocked="{step:?}">{}</p>"#,
            escape(&reason)
        );
    }
    let value = match step {
        SettleStep::Withdraw => "withdraw",
        SettleStep::CloseTickets => "close_tickets",
        SettleStep::CloseEvent => "close_event",
    };
    let check = confirm.map_or(String::new(), |text| {
        format!(
            r#"<p class="check"><input type="checkbox" id="understood-{value}" name="understood" value="yes" required> <label for="understood-{value}">{}</label></p>"#,
            escape(text)
        )
    });
    format!(
        r#"<form method="post" action="/console/events/{event_id}/settle">{check}<input type="hidden" name="step" value="{value}"><button type="submit" id="step-{value}">{}</button></form>"#,
        escape(button)
    )
}

fn settle_body(
    name: &str,
    event_id: u64,
    status: &SettlementStatus,
    notice: Option<&str>,
) -> String {
    let chain = status.chain.as_ref();
    let r = &status.record;
    let notice = notice.map_or(String::new(), |n| {
        format!(
            r#"<p class="notice" role="status" id="settle-result">{}</p>"#,
            escape(n)
        )
    });
    let state = match chain {
        None => "The event account is closed on chain.".to_owned(),
        Some(c) if c.cancelled => "The event was cancelled.".to_owned(),
        Some(c) if c.ended => format!("The event ended {}.", when(c.ends_at)),
        Some(c) => format!(
            "The event has not ended yet: it ends {} (the chain's clock reads {}).",
            when(c.ends_at),
            when(c.chain_time)
        ),
    };
    let proceeds = chain.map_or("–".to_owned(), |c| sol(c.proceeds_lamports));
    let treasury = chain
        .map(|c| c.treasury.clone())
        .or_else(|| r.treasury.clone())
        .unwrap_or_default();
    let withdrawn = if r.withdrawn_at.is_some() {
        format!(
            "{} to the treasury, last {}",
            sol(r.withdrawn_lamports),
            r.withdrawn_at.map(when).unwrap_or_default()
        )
    } else {
        "nothing yet".to_owned()
    };
    let tickets_back = if r.tickets_closed > 0 {
        format!(
            "{} account(s) closed: {} back",
            r.tickets_closed,
            sol(r.ticket_rent_lamports)
        )
    } else {
        "none closed yet".to_owned()
    };
    let event_back = match r.event_rent_lamports {
        Some(rent) => format!(
            "closed {}: {} back{}",
            r.event_closed_at.map(when).unwrap_or_default(),
            sol(rent),
            match r.proceeds_at_close {
                Some(p) if p > 0 => format!(", and {} of proceeds to the treasury", sol(p)),
                _ => String::new(),
            }
        ),
        None => "open".to_owned(),
    };
    let total = r
        .ticket_rent_lamports
        .saturating_add(r.event_rent_lamports.unwrap_or(0));
    let open = chain.map_or("0".to_owned(), |c| {
        format!("{} of {}", c.open_tickets, c.minted)
    });
    let withdraw_button = format!(
        "Withdraw {} to the treasury",
        sol(chain.map_or(0, |c| c.proceeds_lamports))
    );
    format!(
        r#"<h1>{name}: after the event</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/sales">Sales</a> · <a href="/console/events/{event_id}/tickets">Tickets and attendees</a></p>
{notice}
<p id="settle-state">{state}</p>
<section aria-labelledby="proceeds-title"><h2 id="proceeds-title">1. Proceeds</h2>
<p>SOL paid for tickets waits in the event account until you withdraw it to the event's treasury, <code>{treasury}</code>.</p>
<dl class="facts">{f1}{f2}</dl>
{withdraw}</section>
<section aria-labelledby="tickets-title"><h2 id="tickets-title">2. Close the ticket accounts</h2>
<p>Each ticket's account on chain holds rent. Closing it returns the rent to you; the holders keep their ticket NFTs as souvenirs, but a closed ticket can no longer be scanned or transferred.</p>
<dl class="facts">{f3}{f4}</dl>
{close_tickets}</section>
<section aria-labelledby="event-title"><h2 id="event-title">3. Close the event account</h2>
<p>Once every ticket account is closed, closing the event account returns its rent too; proceeds still in it go to the treasury.</p>
<dl class="facts">{f5}{f6}</dl>
{close_event}</section>
<section aria-labelledby="report-title"><h2 id="report-title">Attendance report</h2>
<p>Every ticket with its holder, status, first entry (time and gate), entries and exits, for a spreadsheet.</p>
<p><a class="button" id="attendance-csv" href="/console/events/{event_id}/attendance.csv" download>Download the attendance (CSV)</a></p></section>"#,
        name = escape(name),
        treasury = escape(&treasury),
        f1 = fact("In the event account now", "proceeds", &proceeds),
        f2 = fact("Withdrawn", "withdrawn", &withdrawn),
        withdraw = step_form(
            event_id,
            chain,
            SettleStep::Withdraw,
            &withdraw_button,
            None
        ),
        f3 = fact("Ticket accounts open", "open-tickets", &open),
        f4 = fact("Rent back from tickets", "ticket-rent", &tickets_back),
        close_tickets = step_form(
            event_id,
            chain,
            SettleStep::CloseTickets,
            "Close the ticket accounts",
            Some("I understand closed tickets can no longer be scanned or transferred."),
        ),
        f5 = fact("Event account", "event-account", &event_back),
        f6 = fact("Lamports reclaimed in all", "reclaimed", &sol(total)),
        close_event = step_form(
            event_id,
            chain,
            SettleStep::CloseEvent,
            "Close the event account",
            Some("I understand the event is then gone from the chain for good."),
        ),
    )
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    event_id: u64,
    notice: Option<&str>,
) -> Response {
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    match settlement::status(&state.services, event_id).await {
        Ok(status) => respond(
            StatusCode::OK,
            page(
                &format!("{name} after the event"),
                Some(&viewer.label()),
                &settle_body(&name, event_id, &status, notice),
            ),
        ),
        Err(e) => refused_page(viewer, "The event's accounts cannot be read now", &e),
    }
}

/// After the event
///
/// `GET /console/events/{event}/settle`: the event account on chain (ended
/// or not, proceeds, open ticket accounts), what withdrawing and closing
/// returned so far, a button for each step that can be taken now (and why
/// not, for the others), and the attendance report.
#[utoipa::path(
    get,
    path = "/console/events/{event}/settle",
    tag = "console",
    operation_id = "console_settle_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The after-event page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn settle_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    render(&state, &viewer, event_id, None).await
}

/// Withdraw, close the tickets or close the event
///
/// `POST /console/events/{event}/settle` (form: `step` = `withdraw`,
/// `close_tickets` or `close_event`; `understood=yes` for a closing): the
/// step done (the services of `POST /api/events/{event}/withdraw`,
/// `/tickets/close` and `/close`) and the page shown again with what it
/// returned.
#[utoipa::path(
    post,
    path = "/console/events/{event}/settle",
    tag = "console",
    operation_id = "console_settle",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = SettleForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Done: the page with what it returned", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 409, description = "Not now (the event has not ended, tickets are open, ...)", body = String, content_type = "text/html"),
        (status = 422, description = "A closing without its confirmation", body = String, content_type = "text/html"),
        (status = 502, description = "The chain refused or did not answer", body = String, content_type = "text/html"),
    )
)]
pub async fn settle(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let form: SettleForm = match form(&headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    if form.step != SettleStep::Withdraw && form.understood.as_deref() != Some("yes") {
        return problem(
            Some(&viewer),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing was closed: tick the box that says you understand what closing does.",
        );
    }
    let services = &state.services;
    let notice = match form.step {
        SettleStep::Withdraw => match settlement::withdraw(services, event_id).await {
            Ok(w) if w.lamports == 0 => "There was nothing to withdraw.".to_owned(),
            Ok(w) => format!(
                "Withdrew {} to the treasury {}.",
                sol(w.lamports),
                w.treasury
            ),
            Err(e) => return refused_page(&viewer, "Nothing was withdrawn", &e),
        },
        SettleStep::CloseTickets => match settlement::close_tickets(services, event_id).await {
            Ok(c) => {
                let mut text = format!(
                    "Closed {} ticket account(s): {} back to you.",
                    c.closed,
                    sol(c.lamports_reclaimed)
                );
                if !c.skipped.is_empty() {
                    text.push_str(&format!(
                        " {} ticket(s) stay open while an email transfer of them is open: {}.",
                        c.skipped.len(),
                        c.skipped
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                text
            }
            Err(e) => return refused_page(&viewer, "No ticket account was closed", &e),
        },
        SettleStep::CloseEvent => match settlement::close_event(services, event_id).await {
            Ok(c) => format!(
                "Closed the event account: {} back to you{}.",
                sol(c.lamports_reclaimed),
                if c.proceeds_to_treasury > 0 {
                    format!(
                        ", {} of proceeds to the treasury",
                        sol(c.proceeds_to_treasury)
                    )
                } else {
                    String::new()
                }
            ),
            Err(e) => return refused_page(&viewer, "The event account was not closed", &e),
        },
    };
    render(&state, &viewer, event_id, Some(&notice)).await
}

/// Download the attendance report
///
/// `GET /console/events/{event}/attendance.csv`: the same CSV as `GET
/// /api/events/{event}/attendance.csv`, for the signed-in console user.
#[utoipa::path(
    get,
    path = "/console/events/{event}/attendance.csv",
    tag = "console",
    operation_id = "console_attendance_csv",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The attendance CSV", body = String, content_type = "text/csv"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn attendance_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    match crate::services::sales::attendance_csv(&state.services, event_id).await {
        Ok(csv) => crate::http::api::reports::csv_download(event_id, csv),
        Err(e) => refused_page(&viewer, "The attendance report is not available", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::{grouped, sol};

    #[test]
    fn lamports_read_as_sol_and_grouped_lamports() {
        assert_eq!(sol(200_000_000), "0.2 SOL (200,000,000 lamports)");
        assert_eq!(sol(2_039_280), "0.00203928 SOL (2,039,280 lamports)");
        assert_eq!(sol(3_000_000_000), "3 SOL (3,000,000,000 lamports)");
        assert_eq!(sol(0), "0 SOL (0 lamports)");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
    }
}
