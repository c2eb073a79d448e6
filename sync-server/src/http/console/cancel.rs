//! Cancelling an event from the console: a page that says what cancelling
//! does and asks for the event's name typed out, the cancellation started on
//! the API's service ([`crate::services::cancellation`]), and its progress
//! (tickets revoked on chain, card refunds, refund notices) kept up to date
//! by a server-sent event stream until it is done.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{escape, page, when};
use super::settle::{in_words, refused_page};
use super::{Viewer, form, may_see, problem, respond, session, viewer_for};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::ServiceError;
use crate::services::cancellation::{self, CancellationProgress, StepCount};
use crate::store::CancellationPhase;

/// How often the progress stream looks for changes.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The confirmation form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelForm {
    /// The event's name, typed by the organizer to confirm.
    pub confirm: String,
}

fn step(label: &str, id: &str, count: StepCount, extra: &str) -> String {
    let state = if count.total > 0 && count.done >= count.total {
        r#"<span class="ok">done</span>"#
    } else if count.total == 0 {
        "none"
    } else {
        "under way"
    };
    format!(
        r#"<tr data-step="{id}"><th scope="row">{label}</th><td data-figure="{id}-done">{done}</td><td data-figure="{id}-total">{total}</td><td><progress max="{max}" value="{done}" aria-label="{label}: {done} of {total}">{done} of {total}</progress></td><td>{state}{extra}</td></tr>"#,
        done = count.done,
        total = count.total,
        max = count.total.max(1),
    )
}

/// The progress section, as the page first shows it and as the stream
/// sends it again.
fn progress_html(progress: &CancellationProgress, refused: u64) -> String {
    let phase = match progress.phase {
        CancellationPhase::Cancelling => "Cancelling the event on chain…",
        CancellationPhase::Revoking => "Revoking the tickets on chain…",
        CancellationPhase::Refunding => "Refunding card buyers and mailing them…",
        CancellationPhase::Done => {
            "Done: the event is cancelled, every ticket revoked and every refund settled."
        }
    };
    let mut rows = String::new();
    rows.push_str(&step("Event cancelled", "event", progress.event, ""));
    rows.push_str(&step(
        "Tickets revoked on chain",
        "tickets",
        progress.tickets,
        "",
    ));
    let refused_note = if refused > 0 {
        format!(
            r#" · <span class="warn" data-figure="refunds-refused">{refused} refused by the card provider</span>: see the sales page"#
        )
    } else {
        String::new()
    };
    rows.push_str(&step(
        "Card refunds",
        "refunds",
        progress.refunds,
        &refused_note,
    ));
    rows.push_str(&step("Refund mails", "mail", progress.mail, ""));
    let error = progress.last_error.as_deref().map_or(String::new(), |e| {
        format!(
            r#"<p class="warn" role="alert">The last attempt stopped short and is tried again automatically: {}</p>"#,
            escape(e)
        )
    });
    let finished = progress
        .finished_at
        .map_or(String::new(), |t| format!(" Finished {}.", when(t)));
    format!(
        r#"<p id="cancel-phase" data-phase="{phase_code}"><strong>{phase}</strong> Asked {asked}.{finished}</p>
<div class="scroll"><table><caption>Progress</caption><thead><tr><th scope="col">Step</th><th scope="col">Done</th><th scope="col">Of</th><th scope="col"><span class="sr">Bar</span></th><th scope="col">State</th></tr></thead><tbody>{rows}</tbody></table></div>
<p class="meta">{revoked} ticket(s) revoked by this cancellation; the others were revoked, refunded or closed before. A price paid in SOL went back to its holder with the revocation.</p>{error}"#,
        phase_code = progress.phase.as_str(),
        asked = when(progress.requested_at),
        revoked = progress.tickets_revoked,
    )
}

async fn refused_refunds(state: &AppState, event_id: u64) -> u64 {
    crate::services::sales::report(&state.services, event_id)
        .await
        .map_or(0, |r| r.refunds.refused)
}

/// An event's cancellation page
///
/// `GET /console/events/{event}/cancel`: before a cancellation, what it
/// does and a form asking for the event's name; after, its progress, kept
/// up to date from `/console/events/{event}/cancel/live`.
#[utoipa::path(
    get,
    path = "/console/events/{event}/cancel",
    tag = "console",
    operation_id = "console_cancel_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The cancellation page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn cancel_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    render(&state, &viewer, event_id, StatusCode::OK, None).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    event_id: u64,
    status: StatusCode,
    mistake: Option<&str>,
) -> Response {
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    let nav = format!(
        r#"<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/sales">Sales</a> · <a href="/console/events/{event_id}/settle">After the event</a></p>"#
    );
    let body = match cancellation::progress(&state.services, event_id).await {
        Ok(progress) => {
            let refused = refused_refunds(state, event_id).await;
            format!(
                r#"<h1>{title}: cancellation</h1>
{nav}
<p id="live-state" role="status" data-stream="/console/events/{event_id}/cancel/live">Live: connecting…</p>
<noscript><p>Reload this page to see the progress.</p></noscript>
<section id="cancel-progress" class="live" aria-live="polite">{progress}</section>"#,
                title = escape(&name),
                progress = progress_html(&progress, refused),
            )
        }
        Err(ServiceError::NotFound(_)) => {
            let (tickets, card) =
                match crate::services::sales::report(&state.services, event_id).await {
                    Ok(report) => (
                        report.tiers.iter().map(|t| t.tickets).sum::<u64>(),
                        report.tiers.iter().map(|t| t.card_sold).sum::<u64>(),
                    ),
                    Err(_) => (0, 0),
                };
            let mistake = mistake.map_or(String::new(), |m| {
                format!(
                    r#"<p class="problem" role="alert" id="confirm-error">{}</p>"#,
                    escape(m)
                )
            });
            format!(
                r#"<h1>Cancel {title}?</h1>
{nav}
<section aria-labelledby="what"><h2 id="what">What cancelling does</h2>
<ul>
<li>The event is cancelled on chain, and every gate refuses all of its tickets from its next update.</li>
<li>All {tickets} ticket(s) are revoked on chain; a price paid in SOL goes back to the holder's wallet with it.</li>
<li>{card} card purchase(s) are refunded in full through the card provider, once each, and buyers who gave an email address are mailed a refund notice.</li>
<li>It cannot be undone. No ticket can be sold or minted for the event afterwards.</li>
</ul></section>
{mistake}
<form class="stack" method="post" action="/console/events/{event_id}/cancel">
<label for="confirm">Type the event's name, <strong>{title}</strong>, to confirm</label>
<input id="confirm" name="confirm" autocomplete="off" required aria-describedby="confirm-hint"{invalid}>
<p id="confirm-hint" class="meta">Exactly as written above.</p>
<button type="submit" class="danger">Cancel the event and refund everyone</button>
</form>"#,
                title = escape(&name),
                invalid = if mistake.is_empty() {
                    ""
                } else {
                    r#" aria-invalid="true""#
                },
            )
        }
        Err(e) => {
            let (_, text) = in_words(&e);
            return problem(Some(viewer), StatusCode::SERVICE_UNAVAILABLE, &text);
        }
    };
    respond(
        status,
        page(&format!("Cancel {name}"), Some(&viewer.label()), &body),
    )
}

/// Cancel an event
///
/// `POST /console/events/{event}/cancel` (form, `confirm` = the event's
/// name): starts the cancellation (the service of `POST
/// /api/events/{event}/cancellation`) and sends the browser to its
/// progress; a name that does not match changes nothing and says so.
#[utoipa::path(
    post,
    path = "/console/events/{event}/cancel",
    tag = "console",
    operation_id = "console_cancel_event",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = CancelForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Started: to the progress on `/console/events/{event}/cancel`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 409, description = "The event account is closed on chain", body = String, content_type = "text/html"),
        (status = 422, description = "The name typed is not the event's: nothing done", body = String, content_type = "text/html"),
        (status = 502, description = "The chain refused or did not answer", body = String, content_type = "text/html"),
    )
)]
pub async fn cancel_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let form: CancelForm = match form(&headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    if form.confirm.trim() != name.trim() || name.trim().is_empty() {
        return render(
            &state,
            &viewer,
            event_id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("The name typed is not the event's name, so nothing was cancelled. Type it exactly as shown."),
        )
        .await;
    }
    match cancellation::cancel(&state.services, event_id).await {
        Ok(_) => Redirect::to(&format!("/console/events/{event_id}/cancel")).into_response(),
        Err(e) => refused_page(&viewer, "The event was not cancelled", &e),
    }
}

/// A cancellation's progress as a stream
///
/// `GET /console/events/{event}/cancel/live`: server-sent events; each
/// `update` carries a JSON object `{"cancel-progress": HTML}`, sent at once
/// and whenever a figure changes; the last when the cancellation is done.
#[utoipa::path(
    get,
    path = "/console/events/{event}/cancel/live",
    tag = "console",
    operation_id = "console_cancel_stream",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The stream", body = String, content_type = "text/event-stream"),
        (status = 401, description = "`unauthenticated`: not signed in to the console", body = crate::http::error::ErrorBody),
        (status = 403, description = "`forbidden`: another organizer's event", body = crate::http::error::ErrorBody),
        (status = 404, description = "`not_found`: no such event, or it is not cancelled", body = crate::http::error::ErrorBody),
    )
)]
pub async fn cancel_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let Some(viewer) = session::viewer(&state, &headers).await else {
        return ApiError::Unauthorized("sign in to the console first").into_response();
    };
    match may_see(&state, &viewer, event_id).await {
        Ok(()) => {}
        Err(refused) if refused.status() == StatusCode::FORBIDDEN => {
            return ApiError::Forbidden("this event is another organizer's").into_response();
        }
        Err(_) => return ApiError::NotFound(format!("no event {event_id}")).into_response(),
    }
    if let Err(e) = cancellation::progress(&state.services, event_id).await {
        return ApiError::from(e).into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(4);
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            let mut done = false;
            let event = match cancellation::progress(&state.services, event_id).await {
                Ok(progress) => {
                    done = progress.phase == CancellationPhase::Done;
                    let refused = refused_refunds(&state, event_id).await;
                    let mut map = serde_json::Map::new();
                    map.insert(
                        "cancel-progress".into(),
                        progress_html(&progress, refused).into(),
                    );
                    let data = serde_json::Value::Object(map).to_string();
                    if data == last {
                        None
                    } else {
                        last.clone_from(&data);
                        Some(Event::default().event("update").data(data))
                    }
                }
                Err(e) => Some(Event::default().event("problem").data(e.to_string())),
            };
            if let Some(event) = event
                && tx.send(Ok(event)).await.is_err()
            {
                return;
            }
            if done {
                // Nothing will change any more: hold the stream open (the
                // browser would reconnect otherwise) until it goes.
                tx.closed().await;
                return;
            }
            tokio::time::sleep(PROGRESS_EVERY).await;
            if tx.is_closed() {
                return;
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}
