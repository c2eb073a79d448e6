//! The organizer console: pages the sync server renders itself, on the same
//! services as the JSON API (`crate::services`), with no script or style
//! from anywhere else. Sign in with the admin token or with a wallet
//! (the API's nonce login, signed by the browser wallet's `signMessage`);
//! an organizer sees their own events, the admin every event. The live page
//! updates itself from a server-sent event stream.

pub mod cancel;
pub mod conflicts;
pub mod events;
pub mod gates;
pub(crate) mod html;
pub mod mint_progress;
pub mod minting;
pub mod sales;
mod session;
pub mod settle;
pub mod setup;
mod setup_forms;
pub mod signin;
pub mod ticket_import;
pub mod tickets;

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::services::live;
use html::{escape, page, when};
pub(crate) use session::same_origin;
pub use session::{LINK_SECS, Viewer};

/// A one-time sign-in link for the admin (the path and query after the
/// server's address), valid for [`LINK_SECS`]; `None` without an admin token.
pub fn sign_in_link(state: &AppState) -> Option<String> {
    session::link_token(state, state.clock.now()).map(|token| format!("/console/link/{token}"))
}

/// How often the live stream looks for changes.
const LIVE_EVERY: Duration = Duration::from_secs(1);

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route(
            "/console/sign-in",
            get(signin::sign_in_page).post(signin::sign_in),
        )
        .route("/console/sign-out", post(signin::sign_out))
        .route("/console/link/{token}", get(signin::follow_link))
        .route("/console/events/new", get(events::new_event_page))
        .route("/console/events", axum::routing::post(events::create_event))
        .route("/console/events/{event}", get(event_page))
        .route("/console/events/{event}/live", get(live_stream))
        .route("/console/events/{event}/gates", get(gates::gates_page))
        .route(
            "/console/events/{event}/enrol-tokens",
            post(gates::create_enrol_token),
        )
        .route(
            "/console/events/{event}/devices/{device}/revoke",
            post(gates::revoke_device),
        )
        .route("/console/events/{event}/cache-file", get(gates::cache_file))
        .route(
            "/console/events/{event}/tickets",
            get(tickets::tickets_page),
        )
        .merge(setup_routes())
        .route(
            "/console/events/{event}/tickets/{ticket}/hold",
            get(tickets::hold_page).post(tickets::hold),
        )
        .route(
            "/console/events/{event}/cancel",
            get(cancel::cancel_page).post(cancel::cancel_event),
        )
        .route(
            "/console/events/{event}/cancel/live",
            get(cancel::cancel_stream),
        )
        .route(
            "/console/events/{event}/settle",
            get(settle::settle_page).post(settle::settle),
        )
        .route(
            "/console/events/{event}/attendance.csv",
            get(settle::attendance_csv),
        )
        .route("/console/events/{event}/sales", get(sales::sales_page))
        .route("/console/assets/{file}", get(asset))
}

/// Setting an event up: its settings and rules, minting and importing
/// tickets, the CSV export, and conflicts.
fn setup_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console/events/{event}/edit",
            get(setup::edit_page_get).post(setup::edit_event),
        )
        .route("/console/events/{event}/rules", post(setup::set_rules))
        .route(
            "/console/events/{event}/mint",
            get(minting::mint_page_get).post(minting::mint_one),
        )
        .route(
            "/console/events/{event}/batch-mint",
            post(minting::batch_mint),
        )
        .route(
            "/console/events/{event}/mints/{key}",
            get(mint_progress::progress_page),
        )
        .route(
            "/console/events/{event}/mints/{key}/progress",
            get(mint_progress::progress_stream),
        )
        .route(
            "/console/events/{event}/import",
            post(ticket_import::import),
        )
        .route(
            "/console/events/{event}/attendees.csv",
            get(minting::attendees_csv),
        )
        .route(
            "/console/events/{event}/conflicts",
            get(conflicts::conflicts_page),
        )
        .route(
            "/console/events/{event}/conflicts/{conflict}/resolution",
            post(conflicts::resolve),
        )
}

/// A form post's fields. The body is read first (under the server's body
/// limit, so an oversized one is 413 like anywhere else), then its type
/// checked: a form must be `application/x-www-form-urlencoded`.
pub(crate) fn form<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| ApiError::BadRequest(format!("the form does not read: {e}")))
}

/// The page a signed-out browser is sent to.
fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

/// An HTML page with `status`.
fn respond(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// A page saying what went wrong, in words.
fn problem(viewer: Option<&Viewer>, status: StatusCode, text: &str) -> Response {
    let label = viewer.map(Viewer::label);
    respond(
        status,
        page(
            "Problem",
            label.as_deref(),
            &format!(
                r#"<p class="problem" role="alert">{}</p><p><a href="/console">Back to the events</a></p>"#,
                escape(text)
            ),
        ),
    )
}

/// The signed-in user, allowed to see `event_id`; else the answer to give
/// instead (the sign-in page, or a page saying why not). With `posted`, the
/// request is a form post and must come from this site.
async fn viewer_for(
    state: &AppState,
    headers: &HeaderMap,
    event_id: Option<u64>,
    posted: bool,
) -> Result<Viewer, Response> {
    let Some(viewer) = session::viewer(state, headers).await else {
        return Err(to_sign_in());
    };
    if posted && !session::same_origin(headers) {
        return Err(problem(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            "This form was not sent from this site.",
        ));
    }
    if let Some(event_id) = event_id {
        may_see(state, &viewer, event_id).await?;
    }
    Ok(viewer)
}

/// Refuses a signed-in organizer another organizer's event.
async fn may_see(state: &AppState, viewer: &Viewer, event_id: u64) -> Result<(), Response> {
    let missing = || {
        problem(
            Some(viewer),
            StatusCode::NOT_FOUND,
            &format!("There is no event {event_id}."),
        )
    };
    // The database holds signed 64-bit ids: a larger one names nothing.
    if i64::try_from(event_id).is_err() {
        return Err(missing());
    }
    let event = state.store.event(event_id).await.map_err(|e| {
        problem(
            Some(viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The database does not answer: {e}"),
        )
    })?;
    if event.is_none() {
        return Err(missing());
    }
    if let Viewer::Organizer(wallet) = viewer {
        let organizer = state
            .store
            .event_organizer(event_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        if organizer != wallet.to_base58() {
            return Err(problem(
                Some(viewer),
                StatusCode::FORBIDDEN,
                "This event is another organizer's.",
            ));
        }
    }
    Ok(())
}

/// The events list
///
/// `GET /console`: the signed-in user's events (the admin's: all), newest
/// first; a signed-out browser is sent to the sign-in page.
#[utoipa::path(
    get,
    path = "/console",
    tag = "console",
    operation_id = "console_home",
    responses(
        (status = 200, description = "The events page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
    )
)]
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(viewer) = session::viewer(&state, &headers).await else {
        return to_sign_in();
    };
    let events = match state
        .store
        .console_events(viewer.organizer().as_deref(), 200)
        .await
    {
        Ok(events) => events,
        Err(e) => {
            return problem(
                Some(&viewer),
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The database does not answer: {e}"),
            );
        }
    };
    let mut body = String::from("<h1>Events</h1>");
    if matches!(viewer, Viewer::Organizer(_)) {
        body.push_str(r#"<p><a class="button" href="/console/events/new">New event</a></p>"#);
    }
    if events.is_empty() {
        body.push_str(r#"<p class="empty">No events yet.</p>"#);
    } else {
        let mut rows = String::new();
        for e in &events {
            let _ = write!(
                rows,
                r#"<tr><th scope="row"><a href="/console/events/{id}">{name}</a></th><td>{opens}</td><td>{ends}</td><td>{status}</td><td><a href="/console/events/{id}/gates">Gates</a></td></tr>"#,
                id = e.event_id,
                name = escape(&e.name),
                opens = when(e.doors.opens_at),
                ends = when(e.ends_at),
                status = match e.status {
                    shared::EventStatus::Active => "active",
                    shared::EventStatus::Cancelled => "cancelled",
                },
            );
        }
        let _ = write!(
            body,
            r#"<div class="scroll"><table><caption>Your events</caption><thead><tr><th scope="col">Event</th><th scope="col">Doors open</th><th scope="col">Ends</th><th scope="col">Status</th><th scope="col"><span class="sr">Gates</span></th></tr></thead><tbody>{rows}</tbody></table></div>"#
        );
    }
    respond(StatusCode::OK, page("Events", Some(&viewer.label()), &body))
}

/// An event's live page
///
/// `GET /console/events/{event}`: who is inside, per-gate figures (online,
/// backlog, clock), admissions per minute, refusals by reason, the replay on
/// chain and what to review; it updates itself from
/// `/console/events/{event}/live`.
#[utoipa::path(
    get,
    path = "/console/events/{event}",
    tag = "console",
    operation_id = "console_event_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The live page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn event_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let view = match live::view(&state.services, event_id).await {
        Ok(view) => view,
        Err(e) => {
            return problem(
                Some(&viewer),
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The live figures are not available: {e}"),
            );
        }
    };
    let mut sections = String::new();
    for (id, content) in html::live_sections(&view) {
        let _ = write!(
            sections,
            r#"<section id="{id}" class="live">{content}</section>"#
        );
    }
    let body = format!(
        r#"<h1>{name}</h1>
<p class="meta">Doors {opens} – {closes} · ends {ends} · <a href="/console/events/{id}/gates">Gates and devices</a> · <a href="/console/events/{id}/tickets">Tickets and attendees</a> · <a href="/console/events/{id}/sales">Sales</a> · <a href="/console/events/{id}/settle">After the event</a> · <a href="/console/events/{id}/cancel">Cancel the event</a></p>
<p class="meta"><a href="/console/events/{id}/edit">Settings and rules</a> · <a href="/console/events/{id}/mint">Mint and import tickets</a> · <a href="/console/events/{id}/conflicts">Conflicts</a></p>
<p class="meta" id="rules-summary">{rules}</p>
<p id="live-state" role="status" data-stream="/console/events/{id}/live">Live: connecting…</p>
{sections}"#,
        name = escape(&view.event.name),
        opens = when(view.event.doors.opens_at),
        closes = when(view.event.doors.closes_at),
        ends = when(view.event.ends_at),
        id = event_id,
        rules = escape(&setup_forms::rules_summary(&view.event)),
    );
    respond(
        StatusCode::OK,
        page(&view.event.name, Some(&viewer.label()), &body),
    )
}

/// An event's live figures as a stream
///
/// `GET /console/events/{event}/live`: server-sent events; each `update`
/// event carries a JSON object of the live page's sections (element id to
/// HTML), sent at once and again whenever a figure changes.
#[utoipa::path(
    get,
    path = "/console/events/{event}/live",
    tag = "console",
    operation_id = "console_live_stream",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The stream", body = String, content_type = "text/event-stream"),
        (status = 401, description = "`unauthenticated`: not signed in to the console", body = crate::http::error::ErrorBody),
        (status = 403, description = "`forbidden`: another organizer's event", body = crate::http::error::ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = crate::http::error::ErrorBody),
    )
)]
pub async fn live_stream(
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
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(4);
    let services = state.services.clone();
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            match live::view(&services, event_id).await {
                Ok(view) => {
                    let sections: serde_json::Map<String, serde_json::Value> =
                        html::live_sections(&view)
                            .into_iter()
                            .map(|(id, content)| (id.to_owned(), content.into()))
                            .collect();
                    let data = serde_json::Value::Object(sections).to_string();
                    if data != last {
                        let event = Event::default().event("update").data(data.clone());
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                        last = data;
                    }
                }
                Err(e) => {
                    let event = Event::default().event("problem").data(e.to_string());
                    if tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
            tokio::time::sleep(LIVE_EVERY).await;
            if tx.is_closed() {
                return;
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The console's stylesheet and script
///
/// `GET /console/assets/{file}`: `console.css` and `console.js`, compiled
/// into the server.
#[utoipa::path(
    get,
    path = "/console/assets/{file}",
    tag = "console",
    operation_id = "console_asset",
    params(("file" = String, Path, description = "`console.css` or `console.js`")),
    responses(
        (status = 200, description = "The file, typed by its name", content(
            (String = "text/css"),
            (String = "text/javascript"),
        )),
        (status = 404, description = "`not_found`: no such file", body = crate::http::error::ErrorBody),
    )
)]
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (include_str!("console.css"), "text/css; charset=utf-8"),
        "console.js" => (include_str!("console.js"), "text/javascript; charset=utf-8"),
        _ => return ApiError::NotFound(format!("no asset {file}")).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
