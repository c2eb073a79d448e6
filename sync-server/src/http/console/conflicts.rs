//! An event's conflicts in the console: each ticket admitted while its
//! holder was already inside, both scans side by side (gate, time, box,
//! direction, verdict), and a form to record what happened, stored with
//! the same service as
//! `POST /api/events/{event}/conflicts/{conflict}/resolution`.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::html::{escape, page, reason_text, when};
use super::setup::Notice;
use super::{Viewer, form, problem, respond, viewer_for};
use crate::http::state::AppState;
use crate::services::conflicts;
use crate::store::{ConflictOutcome, ConflictReview, ConflictScan};

/// The resolution form.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ResolutionForm {
    /// `same_person`, `ticket_shared` or `other`.
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub note: String,
}

fn outcome_text(outcome: ConflictOutcome) -> &'static str {
    match outcome {
        ConflictOutcome::SamePerson => "Same person, scanned twice",
        ConflictOutcome::TicketShared => "Ticket shared: the second person was refused entry",
        ConflictOutcome::Other => "Other",
    }
}

fn at_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
    )
    .to_string();
    format!("{} {} UTC", &text[..10], &text[11..19])
}

fn scan_cells(scan: &ConflictScan) -> String {
    format!(
        r#"<dl class="scan"><div><dt>Gate</dt><dd>{gate}</dd></div><div><dt>Time</dt><dd>{time}</dd></div><div><dt>Gate box</dt><dd><code>{device}</code></dd></div><div><dt>Direction</dt><dd>{direction}</dd></div><div><dt>Verdict</dt><dd>{verdict}</dd></div></dl>"#,
        gate = scan.gate,
        time = at_ms(scan.scanned_at_ms),
        device = escape(&scan.device_id),
        direction = escape(&scan.direction),
        verdict = escape(&match scan.outcome.as_str() {
            "admitted" => "admitted".to_owned(),
            "first_entry" | "reentry" | "unknown_ticket_admitted" => {
                format!("admitted ({})", scan.outcome.replace('_', " "))
            }
            other => reason_text(other),
        }),
    )
}

fn conflict_html(event_id: u64, c: &ConflictReview, focus: Option<Uuid>) -> String {
    let id = c.conflict_id;
    let resolution = match &c.resolution {
        Some(r) => format!(
            r#"<div class="resolution" role="status"><p><strong>Resolved:</strong> {outcome}</p>{note}<p class="meta">By {who} at {at}</p></div>"#,
            outcome = outcome_text(r.outcome),
            note = if r.note.is_empty() {
                String::new()
            } else {
                format!("<p>{}</p>", escape(&r.note))
            },
            who = escape(&r.resolved_by),
            at = when(r.resolved_at),
        ),
        None => r#"<p class="warn">Not resolved yet.</p>"#.to_owned(),
    };
    let checked = |o: ConflictOutcome| {
        if c.resolution.as_ref().map(|r| r.outcome) == Some(o) {
            " checked"
        } else {
            ""
        }
    };
    let note = c.resolution.as_ref().map_or("", |r| r.note.as_str());
    let done = if focus == Some(id) {
        Notice::Done("Resolution recorded.").html()
    } else {
        String::new()
    };
    format!(
        r#"<article class="conflict" id="conflict-{id}" aria-labelledby="title-{id}">
<h2 id="title-{id}">Ticket {ticket}: admitted twice</h2>
{done}
<div class="pair">
<section aria-label="First scan"><h3>First scan</h3>{first}</section>
<section aria-label="Second scan"><h3>Second scan</h3>{second}</section>
</div>
{resolution}
<form method="post" action="/console/events/{event_id}/conflicts/{id}/resolution" class="stack">
<fieldset><legend>What happened?</legend>
<label><input type="radio" name="outcome" value="same_person" required{c1}> Same person, scanned twice</label>
<label><input type="radio" name="outcome" value="ticket_shared"{c2}> Ticket shared: the second person was refused entry</label>
<label><input type="radio" name="outcome" value="other"{c3}> Other (say what in the note)</label>
</fieldset>
<label for="note-{id}">Note (optional, up to 500 characters)</label><textarea id="note-{id}" name="note" rows="2" maxlength="500">{note}</textarea>
<button type="submit">Record the resolution</button>
</form>
</article>"#,
        ticket = c.ticket_id,
        first = scan_cells(&c.earlier),
        second = scan_cells(&c.later),
        c1 = checked(ConflictOutcome::SamePerson),
        c2 = checked(ConflictOutcome::TicketShared),
        c3 = checked(ConflictOutcome::Other),
        note = escape(note),
    )
}

async fn conflicts_body(
    state: &AppState,
    viewer: &Viewer,
    event_id: u64,
    status: StatusCode,
    notice: &Notice<'_>,
    focus: Option<Uuid>,
) -> Response {
    let list = match conflicts::reviews(state, event_id).await {
        Ok(list) => list,
        Err(e) => {
            return problem(
                Some(viewer),
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The conflicts are not available: {e}"),
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
    let open = list.iter().filter(|c| c.resolution.is_none()).count();
    let mut items = String::new();
    for c in &list {
        items.push_str(&conflict_html(event_id, c, focus));
    }
    if list.is_empty() {
        items = r#"<p class="empty">No conflicts: no ticket was admitted while its holder was inside.</p>"#.into();
    }
    let _ = write!(
        items,
        r#"<p class="meta">A conflict is a ticket admitted while its holder was already inside, usually by two gates that were both offline. Both scans are kept; recording what happened changes neither.</p>"#
    );
    let body = format!(
        r#"<h1>{name}: conflicts</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/edit">Settings and rules</a></p>
<p id="conflict-count">{total} conflict(s), {open} not resolved.</p>
{notice}
{items}"#,
        name = escape(&name),
        total = list.len(),
        notice = notice.html(),
    );
    respond(
        status,
        page(&format!("{name} conflicts"), Some(&viewer.label()), &body),
    )
}

/// An event's conflicts
///
/// `GET /console/events/{event}/conflicts`: both scans of each conflict
/// side by side, its resolution, and the form to record one.
#[utoipa::path(
    get,
    path = "/console/events/{event}/conflicts",
    tag = "console",
    operation_id = "console_conflicts_page",
    params(("event" = u64, Path, description = "The event id"), ConflictsQuery),
    responses(
        (status = 200, description = "The conflicts page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn conflicts_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    Query(query): Query<ConflictsQuery>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let focus = query.resolved.and_then(|id| Uuid::parse_str(&id).ok());
    conflicts_body(
        &state,
        &viewer,
        event_id,
        StatusCode::OK,
        &Notice::None,
        focus,
    )
    .await
}

/// The page's query: the conflict just resolved, to say so beside it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConflictsQuery {
    #[serde(default)]
    pub resolved: Option<String>,
}

/// Record a conflict's resolution
///
/// `POST /console/events/{event}/conflicts/{conflict}/resolution` (form):
/// stored by the same service as the API; back to the conflicts page,
/// which shows it, or (422) the page saying what is wrong.
#[utoipa::path(
    post,
    path = "/console/events/{event}/conflicts/{conflict}/resolution",
    tag = "console",
    operation_id = "console_resolve_conflict",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("conflict" = String, Path, description = "The conflict's id (its later scan's id)"),
    ),
    request_body(content = ResolutionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Recorded: to the conflicts page, at this conflict"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event or conflict", body = String, content_type = "text/html"),
        (status = 422, description = "Not recorded: the page saying why", body = String, content_type = "text/html"),
    )
)]
pub async fn resolve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, conflict)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let fields: ResolutionForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let Ok(conflict_id) = Uuid::parse_str(&conflict) else {
        return problem(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "There is no such conflict.",
        );
    };
    let outcome = match fields.outcome.as_str() {
        "same_person" => ConflictOutcome::SamePerson,
        "ticket_shared" => ConflictOutcome::TicketShared,
        "other" => ConflictOutcome::Other,
        _ => {
            return conflicts_body(
                &state,
                &viewer,
                event_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &Notice::Problem("Choose what happened before recording the resolution."),
                None,
            )
            .await;
        }
    };
    let who = match &viewer {
        Viewer::Admin => "admin".to_owned(),
        Viewer::Organizer(wallet) => wallet.to_base58(),
    };
    match conflicts::resolve(&state, event_id, conflict_id, outcome, &fields.note, &who).await {
        Ok(_) => Redirect::to(&format!(
            "/console/events/{event_id}/conflicts?resolved={conflict_id}#conflict-{conflict_id}"
        ))
        .into_response(),
        Err(crate::services::ServiceError::NotFound(_)) => problem(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "This event has no such conflict.",
        ),
        Err(e) => {
            let text = format!("Not recorded: {e}");
            conflicts_body(
                &state,
                &viewer,
                event_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &Notice::Problem(&text),
                None,
            )
            .await
        }
    }
}
