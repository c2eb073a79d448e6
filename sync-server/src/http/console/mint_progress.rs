//! A batch mint's progress in the console: the page the batch form sends
//! the browser to, and its server-sent event stream, read from the mint
//! request the batch recorded (the state `GET /api/mints/{request}` shows).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::html::{escape, page};
use super::minting::caller;
use super::{respond, session, viewer_for};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::Services;
use crate::services::minting::{self, MintItemState};

/// Mints that failed before they were recorded (no seats, no such tier),
/// by the page's key, so its progress page can say why; kept by this
/// process for ten minutes.
static EARLY_FAILURES: std::sync::Mutex<Vec<(i64, String, String)>> =
    std::sync::Mutex::new(Vec::new());

pub(super) fn remember_failure(now: i64, key: &str, why: String) {
    let mut failures = EARLY_FAILURES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    failures.retain(|(at, _, _)| *at > now - 600);
    failures.push((now, key.to_owned(), why));
}

fn early_failure(key: &str) -> Option<String> {
    EARLY_FAILURES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(_, k, _)| k == key)
        .map(|(_, _, why)| why.clone())
}

/// A batch's progress as HTML (the page's `mint-progress` section).
async fn progress_html(services: &Services, who: &str, key: &str) -> String {
    let request = match services.store.mint_request_by_key(who, key).await {
        Ok(Some(request)) => request,
        Ok(None) => {
            return match early_failure(key) {
                Some(why) => format!(
                    r#"<p class="problem" role="alert" data-state="failed">Nothing minted: {}</p>"#,
                    escape(&why)
                ),
                None => r#"<p data-state="starting">Starting…</p>"#.to_owned(),
            };
        }
        Err(e) => {
            return format!(
                "<p>The database does not answer: {}</p>",
                escape(&e.to_string())
            );
        }
    };
    let total = request.items.len();
    let landed = request
        .items
        .iter()
        .filter(|i| i.state == MintItemState::Landed)
        .count();
    let (state, words) = match request.state {
        minting::MintState::Minting => ("minting", "Minting…".to_owned()),
        minting::MintState::Voiding => (
            "voiding",
            "The chain refused part of it: the tickets already minted are being revoked."
                .to_owned(),
        ),
        minting::MintState::Completed => ("completed", "Done: every ticket is minted.".to_owned()),
        minting::MintState::Failed => (
            "failed",
            format!(
                "Failed; no ticket of it is valid: {}",
                request.error.as_deref().unwrap_or("the chain refused")
            ),
        ),
    };
    let mut ids: Vec<String> = request
        .items
        .iter()
        .filter_map(|i| i.ticket_id.filter(|_| i.state == MintItemState::Landed))
        .map(|t| t.to_string())
        .collect();
    ids.truncate(100);
    format!(
        r#"<p data-state="{state}"><strong>{words}</strong></p>
<label for="mint-bar">{landed} of {total} tickets minted</label>
<progress id="mint-bar" max="{total}" value="{landed}">{landed} of {total}</progress>
<p class="meta">Mint request {id}. Tickets: {tickets}</p>"#,
        id = escape(&request.request_id),
        tickets = if ids.is_empty() {
            "none yet".to_owned()
        } else {
            ids.join(", ")
        },
    )
}

/// A batch mint's progress
///
/// `GET /console/events/{event}/mints/{key}`: how far the batch started
/// with this page key got; it updates itself from
/// `/console/events/{event}/mints/{key}/progress`.
#[utoipa::path(
    get,
    path = "/console/events/{event}/mints/{key}",
    tag = "console",
    operation_id = "console_mint_progress_page",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("key" = String, Path, description = "The batch's page key"),
    ),
    responses(
        (status = 200, description = "The progress page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn progress_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, key)): Path<(u64, String)>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let (who, _, _) = caller(&viewer);
    let section = progress_html(&state, &who, &key).await;
    let body = format!(
        r#"<h1>Batch mint</h1>
<p class="meta"><a href="/console/events/{event_id}/mint">Mint and import tickets</a> · <a href="/console/events/{event_id}/tickets">Tickets and attendees</a></p>
<p id="live-state" role="status" data-stream="/console/events/{event_id}/mints/{key_attr}/progress">Live: connecting…</p>
<section id="mint-progress" aria-live="polite">{section}</section>"#,
        key_attr = escape(&key),
    );
    respond(
        StatusCode::OK,
        page("Batch mint", Some(&viewer.label()), &body),
    )
}

/// A batch mint's progress as a stream
///
/// `GET /console/events/{event}/mints/{key}/progress`: server-sent events;
/// each `update` carries `{"mint-progress": html}`, at once and whenever
/// the batch moves.
#[utoipa::path(
    get,
    path = "/console/events/{event}/mints/{key}/progress",
    tag = "console",
    operation_id = "console_mint_progress_stream",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("key" = String, Path, description = "The batch's page key"),
    ),
    responses(
        (status = 200, description = "The stream", body = String, content_type = "text/event-stream"),
        (status = 401, description = "`unauthenticated`: not signed in to the console", body = crate::http::error::ErrorBody),
        (status = 403, description = "`forbidden`: another organizer's event", body = crate::http::error::ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = crate::http::error::ErrorBody),
    )
)]
pub async fn progress_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, key)): Path<(u64, String)>,
) -> Response {
    let Some(viewer) = session::viewer(&state, &headers).await else {
        return ApiError::Unauthorized("sign in to the console first").into_response();
    };
    match super::may_see(&state, &viewer, event_id).await {
        Ok(()) => {}
        Err(refused) if refused.status() == StatusCode::FORBIDDEN => {
            return ApiError::Forbidden("this event is another organizer's").into_response();
        }
        Err(_) => return ApiError::NotFound(format!("no event {event_id}")).into_response(),
    }
    let (who, _, _) = caller(&viewer);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(4);
    let services = state.services.clone();
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            let html = progress_html(&services, &who, &key).await;
            if html != last {
                let data = serde_json::json!({ "mint-progress": html }).to_string();
                if tx
                    .send(Ok(Event::default().event("update").data(data)))
                    .await
                    .is_err()
                {
                    return;
                }
                last = html;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if tx.is_closed() {
                return;
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}
