//! Creating an event from the console: one form (name, venue, times in UTC,
//! doors, capacity, a tier, the check-in rules) checked by the same rules
//! as `POST /api/events` and created by the same service, on chain, with
//! the signed-in wallet as its organizer.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use shared::UnknownTicketPolicy;

use super::html::{escape, page};
use super::{Viewer, form, problem, respond, session, to_sign_in, viewer_for};
use crate::http::api::events::{CreateEventBody, TierBody, draft_of};
use crate::http::state::AppState;
use crate::http::validation::Validate;
use crate::services::events;
use crate::services::organizer::NftStandard;
use crate::services::rules::RulesChange;

/// The new-event form's fields (times as `YYYY-MM-DDTHH:MM`, UTC). Numbers
/// arrive as text, so a field left empty gets the form back saying which
/// rather than a refusal of the whole post.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventForm {
    pub name: String,
    pub venue: String,
    #[serde(default)]
    pub description: String,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(default)]
    pub doors_open_minutes: String,
    #[serde(default)]
    pub capacity: String,
    pub tier_name: String,
    #[serde(default)]
    pub tier_price_lamports: String,
    #[serde(default)]
    pub tier_supply: String,
    /// `forbidden` or `allowed_after`.
    pub reentry: String,
    #[serde(default)]
    pub min_outside_minutes: String,
    /// `reject` or `admit_if_signed`.
    pub unknown_tickets: String,
    #[serde(default)]
    pub end_grace_minutes: String,
    /// `yes` when holders may transfer their tickets (a checkbox: absent
    /// when unticked).
    #[serde(default)]
    pub transferable: Option<String>,
    /// `spl_token` or `token_2022_metadata`.
    #[serde(default)]
    pub nft: String,
}

/// A whole number typed into the field labelled `label`, within `range`;
/// else what is wrong, in words. An empty field is `default` when there is
/// one.
pub fn whole_number<T>(
    label: &str,
    text: &str,
    range: std::ops::RangeInclusive<T>,
    default: Option<T>,
) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let text = text.trim();
    if text.is_empty() {
        return default.ok_or_else(|| format!("{label}: enter a number"));
    }
    let out_of_range = || {
        format!(
            "{label}: a whole number from {} to {}",
            range.start(),
            range.end()
        )
    };
    let value: T = text.parse().map_err(|_| out_of_range())?;
    if !range.contains(&value) {
        return Err(out_of_range());
    }
    Ok(value)
}

/// `2026-12-05T18:30` (UTC) as Unix seconds.
pub(super) fn utc(field: &str, text: &str) -> Result<i64, String> {
    let full = if text.len() == 16 {
        format!("{text}:00Z")
    } else {
        format!("{text}Z")
    };
    humantime::parse_rfc3339(&full)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .ok_or_else(|| format!("{field}: a date and time like 2026-12-05T18:30 (UTC)"))
}

impl NewEventForm {
    /// The API's body for this form, or what is wrong, in words.
    fn body(&self) -> Result<CreateEventBody, String> {
        let doors = whole_number(
            "Doors open, minutes before the start",
            &self.doors_open_minutes,
            0..=1440,
            Some(60),
        )?;
        let capacity = whole_number("Capacity", &self.capacity, 1..=100_000, None)?;
        let price = whole_number(
            "Tier price (lamports)",
            &self.tier_price_lamports,
            0..=i64::MAX,
            Some(0),
        )?;
        let supply = whole_number("Tier tickets", &self.tier_supply, 1..=100_000, None)?;
        let outside = whole_number(
            "Minutes outside before re-entry",
            &self.min_outside_minutes,
            0..=1440,
            Some(0),
        )?;
        let grace = whole_number(
            "Minutes after the end gates still admit",
            &self.end_grace_minutes,
            0..=1440,
            Some(0),
        )?;
        let reentry = super::setup_forms::reentry_of(&self.reentry, outside)
            .ok_or("re-entry: forbidden, allowed, or allowed after an exit scan")?;
        let unknown_tickets = match self.unknown_tickets.as_str() {
            "reject" => UnknownTicketPolicy::Reject,
            "admit_if_signed" => UnknownTicketPolicy::AdmitIfSigned,
            _ => return Err("unknown tickets: refuse or admit when well signed".into()),
        };
        let body = CreateEventBody {
            name: self.name.trim().to_owned(),
            description: self.description.trim().to_owned(),
            venue: self.venue.trim().to_owned(),
            starts_at: utc("starts", &self.starts_at)?,
            ends_at: utc("ends", &self.ends_at)?,
            doors_open_secs_before: Some(doors * 60),
            capacity,
            tiers: vec![TierBody {
                name: self.tier_name.trim().to_owned(),
                price_lamports: price,
                supply,
                card_price: None,
            }],
            transferable: Some(self.transferable.is_some()),
            nft: match self.nft.as_str() {
                "" | "spl_token" => NftStandard::SplToken,
                "token_2022_metadata" => NftStandard::Token2022Metadata,
                _ => return Err("NFT: SPL Token or Token-2022 with metadata".into()),
            },
            rules: RulesChange {
                reentry: Some(reentry),
                unknown_tickets: Some(unknown_tickets),
                end_grace_secs: Some(grace * 60),
                ..RulesChange::default()
            },
        };
        body.validate().map_err(|e| e.to_string())?;
        Ok(body)
    }
}

fn form_page(viewer: &Viewer, error: Option<&str>, f: &NewEventForm) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="problem" role="alert">{}</p>"#, escape(e))
    });
    let selected = |on: bool| if on { " selected" } else { "" };
    let body = format!(
        r#"<h1>New event</h1>
{error}
<form method="post" action="/console/events" class="stack">
<label for="name">Name</label><input id="name" name="name" required minlength="3" maxlength="32" value="{name}">
<label for="venue">Venue</label><input id="venue" name="venue" required maxlength="32" value="{venue}">
<label for="description">Description</label><input id="description" name="description" maxlength="1000" value="{description}">
<label for="starts_at">Starts (UTC)</label><input id="starts_at" name="starts_at" type="datetime-local" required value="{starts}">
<label for="ends_at">Ends (UTC)</label><input id="ends_at" name="ends_at" type="datetime-local" required value="{ends}">
<label for="doors_open_minutes">Doors open, minutes before the start</label><input id="doors_open_minutes" name="doors_open_minutes" type="number" min="0" max="1440" value="{doors}">
<label for="capacity">Capacity</label><input id="capacity" name="capacity" type="number" min="1" max="100000" required value="{capacity}">
<label for="tier_name">Tier</label><input id="tier_name" name="tier_name" required maxlength="16" value="{tier}">
<label for="tier_price_lamports">Tier price (lamports)</label><input id="tier_price_lamports" name="tier_price_lamports" type="number" min="0" value="{price}">
<label for="tier_supply">Tier tickets</label><input id="tier_supply" name="tier_supply" type="number" min="1" max="100000" value="{supply}">
<label for="nft">NFT each ticket comes with</label><select id="nft" name="nft"><option value="spl_token"{spl}>SPL Token (cheaper; wallets show no name)</option><option value="token_2022_metadata"{t22}>Token-2022 with metadata (wallets show name and picture)</option></select>
<label><input type="checkbox" name="transferable" value="yes"{transferable}> Holders may transfer their tickets (to a wallet or by email)</label>
<p class="meta" id="fixed-note">The tier (its name, price and number of tickets) and the NFT kind are written on chain with the event and cannot be changed afterwards. Name, venue, times, doors, capacity, transfers and the check-in rules can be edited later; capacity never below the tickets already minted.</p>
<label for="reentry">Re-entry</label><select id="reentry" name="reentry"><option value="forbidden"{forbidden}>Forbidden</option><option value="allowed"{free}>Allowed: no exit scan needed</option><option value="allowed_after"{allowed}>Exit required: allowed after an exit scan and a time outside</option></select>
<label for="min_outside_minutes">Minutes outside before re-entry</label><input id="min_outside_minutes" name="min_outside_minutes" type="number" min="0" value="{outside}">
<label for="unknown_tickets">Well-signed tickets a gate does not know yet</label><select id="unknown_tickets" name="unknown_tickets"><option value="reject"{reject}>Refuse</option><option value="admit_if_signed"{admit}>Admit (offline gates)</option></select>
<label for="end_grace_minutes">Minutes after the end gates still admit</label><input id="end_grace_minutes" name="end_grace_minutes" type="number" min="0" value="{grace}">
<button type="submit">Create the event on chain</button>
</form>"#,
        name = escape(&f.name),
        venue = escape(&f.venue),
        description = escape(&f.description),
        starts = escape(&f.starts_at),
        ends = escape(&f.ends_at),
        doors = escape(&f.doors_open_minutes),
        capacity = escape(&f.capacity),
        tier = escape(&f.tier_name),
        price = escape(&f.tier_price_lamports),
        supply = escape(&f.tier_supply),
        forbidden = selected(!matches!(f.reentry.as_str(), "allowed" | "allowed_after")),
        free = selected(f.reentry == "allowed"),
        allowed = selected(f.reentry == "allowed_after"),
        outside = escape(&f.min_outside_minutes),
        reject = selected(f.unknown_tickets != "admit_if_signed"),
        admit = selected(f.unknown_tickets == "admit_if_signed"),
        grace = escape(&f.end_grace_minutes),
        spl = selected(f.nft != "token_2022_metadata"),
        t22 = selected(f.nft == "token_2022_metadata"),
        transferable = if f.transferable.is_some() {
            " checked"
        } else {
            ""
        },
    );
    page("New event", Some(&viewer.label()), &body)
}

/// The new-event form
///
/// `GET /console/events/new`: the form an organizer (signed in with their
/// wallet) creates an event with.
#[utoipa::path(
    get,
    path = "/console/events/new",
    tag = "console",
    operation_id = "console_new_event_page",
    responses(
        (status = 200, description = "The form", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
    )
)]
pub async fn new_event_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(viewer) = session::viewer(&state, &headers).await else {
        return to_sign_in();
    };
    let defaults = NewEventForm {
        doors_open_minutes: "60".into(),
        capacity: "500".into(),
        tier_name: "general".into(),
        tier_price_lamports: "0".into(),
        tier_supply: "500".into(),
        min_outside_minutes: "0".into(),
        end_grace_minutes: "0".into(),
        transferable: Some("yes".into()),
        reentry: "forbidden".into(),
        unknown_tickets: "reject".into(),
        ..NewEventForm::default()
    };
    respond(StatusCode::OK, form_page(&viewer, None, &defaults))
}

/// Create an event
///
/// `POST /console/events` (form): creates the event on chain with the
/// signed-in wallet as its organizer (the same checks and service as
/// `POST /api/events`) and opens its live page; a field out of range gets
/// the form back saying which (422).
#[utoipa::path(
    post,
    path = "/console/events",
    tag = "console",
    operation_id = "console_create_event",
    request_body(content = NewEventForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Created: to the event's live page"),
        (status = 403, description = "Signed in with the admin token (events belong to a wallet), or a post from another site", body = String, content_type = "text/html"),
        (status = 422, description = "A field out of range: the form again, saying which", body = String, content_type = "text/html"),
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A body that is no form is refused before anything else.
    let fields: NewEventForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, None, true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let Viewer::Organizer(wallet) = viewer else {
        return problem(
            Some(&viewer),
            StatusCode::FORBIDDEN,
            "Events belong to an organizer's wallet: sign in with the wallet to create one.",
        );
    };
    let checked = match fields.body() {
        Ok(checked) => checked,
        Err(why) => {
            return respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                form_page(&viewer, Some(&why), &fields),
            );
        }
    };
    match events::create(&state, wallet, &draft_of(checked)).await {
        Ok(event) => Redirect::to(&format!("/console/events/{}", event.event_id)).into_response(),
        Err(e) => respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            form_page(&viewer, Some(&format!("Not created: {e}")), &fields),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_number_field_reads_and_is_named_in_words() {
        let fields: NewEventForm = serde_urlencoded::from_str(
            "name=Harbour+Lights&venue=Pier+4&description=&starts_at=2030-01-01T18%3A00\
             &ends_at=2030-01-01T23%3A00&doors_open_minutes=60&capacity=&tier_name=general\
             &tier_price_lamports=0&tier_supply=50&nft=spl_token&transferable=yes\
             &reentry=forbidden&min_outside_minutes=0&unknown_tickets=reject&end_grace_minutes=0",
        )
        .unwrap();
        assert_eq!(fields.body().unwrap_err(), "Capacity: enter a number");
    }
}
