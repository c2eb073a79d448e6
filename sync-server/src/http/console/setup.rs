//! Editing an event from the console: its details (the same checks and
//! service as `PUT /api/events/{event}`, on chain first) and its check-in
//! rules (the same service as `PUT /api/events/{event}/rules`, carried to
//! the gates in their next delta). What the chain fixes at creation (the
//! tiers, their prices and tickets, the NFT kind) is shown, not offered.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::{escape, page};
pub use super::setup_forms::{EditEventForm, RulesForm};
use super::{Viewer, form, problem, respond, viewer_for};
use crate::http::state::AppState;
use crate::services::events::{self, EventChanges};
use crate::services::rules;
use crate::services::{Services, organizer};
use crate::store::EventRecord;

/// The page's messages: a problem (`role=alert`) or a confirmation.
pub enum Notice<'a> {
    None,
    Problem(&'a str),
    Done(&'a str),
}

impl Notice<'_> {
    pub fn html(&self) -> String {
        match self {
            Notice::None => String::new(),
            Notice::Problem(text) => {
                format!(r#"<p class="problem" role="alert">{}</p>"#, escape(text))
            }
            Notice::Done(text) => format!(r#"<p class="done" role="status">{}</p>"#, escape(text)),
        }
    }
}

struct Loaded {
    event: EventRecord,
    chain: ticketing::client::Event,
    gates: Vec<(u32, String)>,
}

async fn load(services: &Services, event_id: u64) -> Result<Loaded, String> {
    let event = events::record(services, event_id)
        .await
        .map_err(|e| format!("The event is not available: {e}"))?;
    let chain = organizer::event_on_chain(services, event_id)
        .await
        .map_err(|e| format!("The event cannot be read from the chain: {e}"))?;
    let gates = services
        .store
        .gate_counts(event_id)
        .await
        .map_err(|e| format!("The gates are not available: {e}"))?
        .into_iter()
        .map(|g| (g.gate, g.name))
        .collect();
    Ok(Loaded {
        event,
        chain,
        gates,
    })
}

fn selected(on: bool) -> &'static str {
    if on { " selected" } else { "" }
}

fn edit_page(
    viewer: &Viewer,
    loaded: &Loaded,
    details: &EditEventForm,
    rules_form: &RulesForm,
    details_notice: &Notice<'_>,
    rules_notice: &Notice<'_>,
) -> String {
    let event = &loaded.event;
    let id = event.event_id;
    let mut tiers = String::new();
    for t in &loaded.chain.tiers {
        let _ = write!(
            tiers,
            r#"<tr><th scope="row">{name}</th><td>{price}</td><td>{supply}</td><td>{sold}</td></tr>"#,
            name = escape(&t.name),
            price = t.price,
            supply = t.supply,
            sold = t.sold,
        );
    }
    let known_gates = if loaded.gates.is_empty() {
        "no gates yet".to_owned()
    } else {
        loaded
            .gates
            .iter()
            .map(|(n, name)| format!("{n} ({})", escape(name)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut tier_inputs = String::new();
    for t in &event.tiers {
        let key = format!("tier_gates_{}", t.index);
        let _ = write!(
            tier_inputs,
            r#"<label for="{key}">Gates admitting tier “{name}”</label><input id="{key}" name="{key}" inputmode="numeric" aria-describedby="gates-help" value="{value}">"#,
            name = escape(&t.name),
            value = escape(rules_form.tier_gates.get(&key).map_or("", String::as_str)),
        );
    }
    let nft = match event.nft.as_str() {
        "token_2022_metadata" => "Token-2022 with metadata",
        _ => "SPL Token",
    };
    let body = format!(
        r#"<h1>{name}: settings</h1>
<p class="meta"><a href="/console/events/{id}">Live view</a> · <a href="/console/events/{id}/mint">Mint and import tickets</a> · <a href="/console/events/{id}/conflicts">Conflicts</a></p>
<section aria-labelledby="details-title">
<h2 id="details-title">Event details</h2>
{details_notice}
<form method="post" action="/console/events/{id}/edit" class="stack" id="details-form">
<label for="name">Name</label><input id="name" name="name" required minlength="3" maxlength="32" value="{f_name}">
<label for="venue">Venue</label><input id="venue" name="venue" required maxlength="32" value="{venue}">
<label for="description">Description</label><input id="description" name="description" maxlength="1000" value="{description}">
<label for="starts_at">Starts (UTC)</label><input id="starts_at" name="starts_at" type="datetime-local" required value="{starts}">
<label for="ends_at">Ends (UTC)</label><input id="ends_at" name="ends_at" type="datetime-local" required value="{ends}">
<label for="doors_open_minutes">Doors open, minutes before the start</label><input id="doors_open_minutes" name="doors_open_minutes" type="number" min="0" max="1440" value="{doors}">
<label for="capacity">Capacity (at least the {minted} ticket(s) minted)</label><input id="capacity" name="capacity" type="number" min="1" max="100000" value="{capacity}">
<label><input type="checkbox" name="transferable" value="yes"{transferable}> Holders may transfer their tickets (to a wallet or by email)</label>
<button type="submit">Save the details on chain</button>
</form>
<div class="scroll"><table><caption>Tiers (fixed on chain)</caption><thead><tr><th scope="col">Tier</th><th scope="col">Price (lamports)</th><th scope="col">Tickets</th><th scope="col">Sold</th></tr></thead><tbody>{tiers}</tbody></table></div>
<p class="meta" id="fixed-note">Fixed since the event was created on chain: its tiers (names, prices and numbers of tickets) and the NFT each ticket comes with (here: {nft}). Capacity cannot go below the tickets already minted.</p>
</section>
<section aria-labelledby="rules-title">
<h2 id="rules-title">Check-in rules</h2>
<p class="meta">Gates apply a change from their next sync (seconds when they are online).</p>
{rules_notice}
<form method="post" action="/console/events/{id}/rules" class="stack" id="rules-form">
<label for="reentry">Re-entry</label><select id="reentry" name="reentry"><option value="forbidden"{r_forbidden}>Forbidden: one entry per ticket</option><option value="allowed"{r_free}>Allowed: no exit scan needed</option><option value="allowed_after"{r_allowed}>Exit required: allowed after leaving through an exit scan</option></select>
<label for="min_outside_minutes">Minutes outside before re-entry (exit required)</label><input id="min_outside_minutes" name="min_outside_minutes" type="number" min="0" max="1440" value="{outside}">
<label for="undo_window_secs">Turnstile undo window (seconds, 0 for off): how long after an admission the gate may void it when the holder did not pass</label><input id="undo_window_secs" name="undo_window_secs" type="number" min="0" max="120" value="{undo}">
<label for="unknown_tickets">Well-signed tickets a gate does not know yet (minted after its last sync)</label><select id="unknown_tickets" name="unknown_tickets"><option value="reject"{u_reject}>Refuse</option><option value="admit_if_signed"{u_admit}>Admit (offline gates)</option></select>
<label for="holder_proof">Holder proof (the rotating code from the holder's phone)</label><select id="holder_proof" name="holder_proof"><option value="not_required"{p_off}>Not required</option><option value="required"{p_on}>Required</option></select>
<label for="proof_window_secs">Holder proof window (seconds, 1 to 3600)</label><input id="proof_window_secs" name="proof_window_secs" type="number" min="1" max="3600" value="{window}">
<label for="end_grace_minutes">Minutes after the end gates still admit</label><input id="end_grace_minutes" name="end_grace_minutes" type="number" min="0" max="1440" value="{grace}">
<fieldset><legend>Which gates admit which tier</legend>
<p class="meta" id="gates-help">Gate numbers separated by commas; leave empty for any gate. This event's gates: {known_gates}.</p>
{tier_inputs}
</fieldset>
<button type="submit">Save the rules</button>
</form>
</section>"#,
        name = escape(&event.name),
        details_notice = details_notice.html(),
        rules_notice = rules_notice.html(),
        f_name = escape(&details.name),
        venue = escape(&details.venue),
        description = escape(&details.description),
        starts = escape(&details.starts_at),
        ends = escape(&details.ends_at),
        doors = escape(&details.doors_open_minutes),
        capacity = escape(&details.capacity),
        minted = loaded.chain.minted,
        transferable = if details.transferable.is_some() {
            " checked"
        } else {
            ""
        },
        r_forbidden = selected(!matches!(
            rules_form.reentry.as_str(),
            "allowed" | "allowed_after"
        )),
        r_free = selected(rules_form.reentry == "allowed"),
        r_allowed = selected(rules_form.reentry == "allowed_after"),
        outside = escape(&rules_form.min_outside_minutes),
        undo = escape(&rules_form.undo_window_secs),
        u_reject = selected(rules_form.unknown_tickets != "admit_if_signed"),
        u_admit = selected(rules_form.unknown_tickets == "admit_if_signed"),
        p_off = selected(rules_form.holder_proof != "required"),
        p_on = selected(rules_form.holder_proof == "required"),
        window = escape(&rules_form.proof_window_secs),
        grace = escape(&rules_form.end_grace_minutes),
    );
    page(
        &format!("{} settings", event.name),
        Some(&viewer.label()),
        &body,
    )
}

/// An event's settings
///
/// `GET /console/events/{event}/edit`: the details form, the tiers as fixed
/// on chain, and the check-in rules form.
#[utoipa::path(
    get,
    path = "/console/events/{event}/edit",
    tag = "console",
    operation_id = "console_edit_event_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The settings page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn edit_page_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    match load(&state, event_id).await {
        Ok(loaded) => {
            let details = EditEventForm::of(&loaded.event, &loaded.chain);
            let rules_form = RulesForm::of(&loaded.event);
            respond(
                StatusCode::OK,
                edit_page(
                    &viewer,
                    &loaded,
                    &details,
                    &rules_form,
                    &Notice::None,
                    &Notice::None,
                ),
            )
        }
        Err(why) => problem(Some(&viewer), StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// Change an event's details
///
/// `POST /console/events/{event}/edit` (form): the same checks and service
/// as `PUT /api/events/{event}`; the page again, saying what was saved or
/// (422) what is wrong.
#[utoipa::path(
    post,
    path = "/console/events/{event}/edit",
    tag = "console",
    operation_id = "console_edit_event",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = EditEventForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Saved: the settings page saying so", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 422, description = "A field out of range, or the chain refused: the form again, saying which", body = String, content_type = "text/html"),
    )
)]
pub async fn edit_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let fields: EditEventForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let loaded = match load(&state, event_id).await {
        Ok(loaded) => loaded,
        Err(why) => return problem(Some(&viewer), StatusCode::SERVICE_UNAVAILABLE, &why),
    };
    let rules_form = RulesForm::of(&loaded.event);
    let refuse = |loaded: &Loaded, why: &str| {
        respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            edit_page(
                &viewer,
                loaded,
                &fields,
                &rules_form,
                &Notice::Problem(why),
                &Notice::None,
            ),
        )
    };
    let checked = match fields.body() {
        Ok(checked) => checked,
        Err(why) => return refuse(&loaded, &why),
    };
    let organizer = match events::organizer_of(&state, event_id).await {
        Ok(organizer) => organizer,
        Err(e) => return refuse(&loaded, &format!("Not saved: {e}")),
    };
    let changes = EventChanges {
        name: checked.name,
        description: checked.description,
        venue: checked.venue,
        starts_at: checked.starts_at,
        ends_at: checked.ends_at,
        doors_open_secs_before: checked.doors_open_secs_before,
        capacity: checked.capacity,
        transferable: checked.transferable,
        rules: None,
    };
    if let Err(e) = events::update(&state, &organizer, event_id, &changes).await {
        return refuse(&loaded, &format!("Not saved: {e}"));
    }
    match load(&state, event_id).await {
        Ok(loaded) => respond(
            StatusCode::OK,
            edit_page(
                &viewer,
                &loaded,
                &EditEventForm::of(&loaded.event, &loaded.chain),
                &RulesForm::of(&loaded.event),
                &Notice::Done("Saved on chain; the gates get the new times at their next sync."),
                &Notice::None,
            ),
        ),
        Err(why) => problem(Some(&viewer), StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// Set an event's check-in rules
///
/// `POST /console/events/{event}/rules` (form): every rule at once, through
/// the same service as `PUT /api/events/{event}/rules`; the page again,
/// saying what was saved or (422) what is wrong.
#[utoipa::path(
    post,
    path = "/console/events/{event}/rules",
    tag = "console",
    operation_id = "console_set_rules",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = RulesForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Saved: the settings page saying so", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 422, description = "A rule out of range: the form again, saying which", body = String, content_type = "text/html"),
    )
)]
pub async fn set_rules(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let fields: RulesForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let loaded = match load(&state, event_id).await {
        Ok(loaded) => loaded,
        Err(why) => return problem(Some(&viewer), StatusCode::SERVICE_UNAVAILABLE, &why),
    };
    let details = EditEventForm::of(&loaded.event, &loaded.chain);
    let refuse = |why: &str| {
        respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            edit_page(
                &viewer,
                &loaded,
                &details,
                &fields,
                &Notice::None,
                &Notice::Problem(why),
            ),
        )
    };
    let change = match fields.change(&loaded.event.tiers) {
        Ok(change) => change,
        Err(why) => return refuse(&why),
    };
    if let Err(e) = rules::set(&state, event_id, &change).await {
        return refuse(&format!("Not saved: {e}"));
    }
    match load(&state, event_id).await {
        Ok(loaded) => respond(
            StatusCode::OK,
            edit_page(
                &viewer,
                &loaded,
                &EditEventForm::of(&loaded.event, &loaded.chain),
                &RulesForm::of(&loaded.event),
                &Notice::None,
                &Notice::Done("Rules saved; the gates apply them from their next sync."),
            ),
        ),
        Err(why) => problem(Some(&viewer), StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}
