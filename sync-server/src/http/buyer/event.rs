//! The events on sale, an event's page with its checkout, and its calendar
//! file.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::calendar::{CalendarEntry, ics};
use super::page::{escape, money, page, when};
use super::session::{self, Buyer};
use super::{problem, respond, storable, unavailable};
use crate::http::state::AppState;
use crate::services::{ServiceError, events, inventory, organizer};
use crate::store::{EventFilter, EventRecord};

/// How many tickets one checkout may hold at once.
pub const MAX_COUNT: u32 = 4;

/// The events on sale
///
/// `GET /`: events not yet over, soonest first, each linking to its page.
#[utoipa::path(
    get,
    path = "/",
    tag = "buyer",
    operation_id = "buyer_events_page",
    responses(
        (status = 200, description = "The events page", body = String, content_type = "text/html"),
        (status = 503, description = "The database does not answer: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn events_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let buyer = session::buyer(&state, &headers).await;
    let filter = EventFilter {
        now: 0,
        name: None,
        venue: None,
        starts_after: None,
        starts_before: None,
    };
    let list = match events::list(&state, filter, 1, 100).await {
        Ok(list) => list,
        Err(_) => return unavailable(buyer.as_ref(), "The events"),
    };
    let mut body = String::from("<h1>Events</h1>");
    if list.events.is_empty() {
        body.push_str(r#"<p class="empty">No events on sale right now.</p>"#);
    } else {
        body.push_str(r#"<ul class="events">"#);
        for e in &list.events {
            let _ = write!(
                body,
                r#"<li class="card"><h2><a href="/events/{id}">{name}</a></h2><p class="meta">{venue} · {starts}</p></li>"#,
                id = e.event_id,
                name = escape(&e.name),
                venue = escape(&e.venue),
                starts = when(e.starts_at),
            );
        }
        body.push_str("</ul>");
    }
    respond(StatusCode::OK, page("Events", buyer.as_ref(), &body))
}

/// One tier as the checkout offers it.
struct TierOffer {
    index: u8,
    name: String,
    card: Option<(u64, String)>,
    sol: Option<u64>,
    left: Option<u32>,
}

async fn offers(state: &AppState, event: &EventRecord) -> Vec<TierOffer> {
    let on_chain = organizer::event_on_chain(state, event.event_id).await.ok();
    let card_ready = state.payments.is_some() && !state.config.stripe.publishable_key.is_empty();
    let mut out = Vec::new();
    for tier in &event.tiers {
        let card = if card_ready {
            inventory::card_price(state, event.event_id, tier.index)
                .await
                .ok()
                .flatten()
                .map(|p| (p.amount, p.currency))
        } else {
            None
        };
        let chain_tier = on_chain
            .as_ref()
            .and_then(|e| e.tiers.get(usize::from(tier.index)));
        out.push(TierOffer {
            index: tier.index,
            name: tier.name.clone(),
            card,
            sol: chain_tier.map(|t| t.price),
            left: chain_tier.map(|t| t.supply.saturating_sub(t.sold)),
        });
    }
    out
}

fn checkout(state: &AppState, event: &EventRecord, offers: &[TierOffer]) -> String {
    let mut tiers = String::new();
    for (n, offer) in offers.iter().enumerate() {
        let mut prices = Vec::new();
        if let Some((amount, currency)) = &offer.card {
            prices.push(format!("{} by card", money(*amount, currency)));
        }
        if let Some(lamports) = offer.sol {
            prices.push(format!("{} from your wallet", money(lamports, "sol")));
        }
        let sold_out = offer.left == Some(0);
        let left = match offer.left {
            Some(0) => " · sold out".to_owned(),
            Some(n) if n <= 20 => format!(" · {n} left"),
            _ => String::new(),
        };
        let _ = write!(
            tiers,
            r#"<label class="choice"><input type="radio" name="tier" value="{index}" data-card-amount="{card_amount}" data-card-currency="{card_currency}" data-sol="{sol}"{checked}{disabled}> <span><strong>{name}</strong><br><span class="meta">{prices}{left}</span></span></label>"#,
            index = offer.index,
            card_amount = offer.card.as_ref().map_or(0, |c| c.0),
            card_currency = escape(offer.card.as_ref().map_or("", |c| c.1.as_str())),
            sol = offer.sol.unwrap_or(0),
            checked = if n == 0 && !sold_out { " checked" } else { "" },
            disabled = if sold_out { " disabled" } else { "" },
            name = escape(&offer.name),
            prices = escape(&prices.join(" · ")),
        );
    }
    let card = offers.iter().any(|o| o.card.is_some());
    let sol = offers.iter().any(|o| o.sol.is_some());
    if !card && !sol {
        return r#"<p class="problem" role="alert">Tickets for this event cannot be bought here right now.</p>"#.to_owned();
    }
    let mut methods = String::new();
    if card {
        methods.push_str(r#"<label class="choice"><input type="radio" name="method" value="card" checked> <span>Card</span></label>"#);
    }
    if sol {
        let _ = write!(
            methods,
            r#"<label class="choice"><input type="radio" name="method" value="sol"{}> <span>SOL from your wallet</span></label>"#,
            if card { "" } else { " checked" }
        );
    }
    let counts: String = (1..=MAX_COUNT)
        .map(|n| format!(r#"<option value="{n}">{n}</option>"#))
        .collect();
    format!(
        r#"<form id="checkout" class="stack" data-event="{id}" data-stripe-js="{stripe_js}" data-stripe-key="{stripe_key}" data-hold-secs="{hold}" novalidate>
<fieldset><legend>Ticket</legend>{tiers}</fieldset>
<label for="count">How many tickets</label>
<select id="count" name="count">{counts}</select>
<fieldset><legend>Pay with</legend>{methods}</fieldset>
<label for="email">Email for your confirmation <span class="meta">(optional)</span></label>
<input id="email" name="email" type="email" autocomplete="email" inputmode="email">
<button type="submit" id="hold-seats">Hold my seats</button>
</form>
<p id="checkout-status" role="status" aria-live="polite"></p>
<section id="holds" class="card" hidden aria-labelledby="holds-h">
<h2 id="holds-h">Your seats on hold</h2>
<ul id="hold-list"></ul>
<p id="hold-expiry" class="warn" aria-live="polite"></p>
<div id="card-payment" hidden><div id="payment-element"></div><button type="button" id="pay-card">Pay by card</button></div>
<div id="sol-payment" hidden><p>Your wallet will ask you to approve each ticket's payment.</p><button type="button" id="pay-sol">Pay from my wallet</button></div>
</section>"#,
        id = event.event_id,
        stripe_js = escape(&state.config.stripe.js_url),
        stripe_key = escape(&state.config.stripe.publishable_key),
        hold = state.config.api.reservation_secs,
    )
}

/// An event's page and checkout
///
/// `GET /events/{event}`: what, where and when, "Add to calendar", and the
/// checkout: tier, how many, card (Stripe.js) or SOL (the browser wallet
/// signs the purchase transaction the server prepares), with the seats held
/// and their expiry shown while the buyer pays.
#[utoipa::path(
    get,
    path = "/events/{event}",
    tag = "buyer",
    operation_id = "buyer_event_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The event's page", body = String, content_type = "text/html"),
        (status = 404, description = "No such event: a page saying so", body = String, content_type = "text/html"),
        (status = 503, description = "The database does not answer: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn event_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let buyer = session::buyer(&state, &headers).await;
    let event = match record(&state, buyer.as_ref(), event_id).await {
        Ok(event) => event,
        Err(refused) => return refused,
    };
    let now = state.clock.now();
    let sale = if event.status == shared::EventStatus::Cancelled {
        r#"<p class="problem" role="alert">This event was cancelled. Tickets are no longer sold.</p>"#.to_owned()
    } else if event.ends_at <= now {
        r#"<p class="problem" role="alert">This event is over. Tickets are no longer sold.</p>"#
            .to_owned()
    } else {
        let offers = offers(&state, &event).await;
        let sign_in = if buyer.is_none() {
            super::page::sign_in_block(
                "Sign in first: your tickets go to your wallet.",
                &format!("/events/{event_id}"),
            )
        } else {
            String::new()
        };
        format!("{sign_in}{}", checkout(&state, &event, &offers))
    };
    let description = if event.description.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>", escape(&event.description))
    };
    let body = format!(
        r#"<h1>{name}</h1>
<p class="meta">{venue}<br>{starts} – {ends}</p>
{description}
<p><a class="button secondary" href="/events/{id}/calendar.ics" download>Add to calendar</a></p>
<section aria-labelledby="buy-h"><h2 id="buy-h">Tickets</h2>
{sale}
</section>"#,
        name = escape(&event.name),
        venue = escape(&event.venue),
        starts = when(event.starts_at),
        ends = when(event.ends_at),
        id = event_id,
    );
    respond(StatusCode::OK, page(&event.name, buyer.as_ref(), &body))
}

/// The event, or the page to answer instead.
pub(super) async fn record(
    state: &AppState,
    buyer: Option<&Buyer>,
    event_id: u64,
) -> Result<EventRecord, Response> {
    let missing = || {
        problem(
            buyer,
            StatusCode::NOT_FOUND,
            "No such event",
            "There is no event at this address. It may have been removed; check the link.",
        )
    };
    if !storable(event_id) {
        return Err(missing());
    }
    match events::record(state, event_id).await {
        Ok(event) => Ok(event),
        Err(ServiceError::NotFound(_)) => Err(missing()),
        Err(_) => Err(unavailable(buyer, "This event")),
    }
}

/// A calendar file answer named `file`.
pub(super) fn calendar_file(file: &str, body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The entry of `event` (`ticket`: one ticket's, with its number).
pub(super) fn entry<'a>(
    state: &AppState,
    event: &'a EventRecord,
    ticket: Option<(u32, &str)>,
) -> CalendarEntry<'a> {
    let base = state.config.api.public_url.trim_end_matches('/');
    let (uid, url, extra) = match ticket {
        Some((ticket_id, tier)) => (
            format!("ticket-{}-{ticket_id}@{base}", event.event_id),
            format!("{base}/tickets"),
            format!(
                "Your ticket: {tier}, number {ticket_id}. Show its code from My tickets at the gate."
            ),
        ),
        None => (
            format!("event-{}@{base}", event.event_id),
            format!("{base}/events/{}", event.event_id),
            String::new(),
        ),
    };
    let description = [event.description.as_str(), extra.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n\n");
    CalendarEntry {
        uid,
        title: &event.name,
        location: &event.venue,
        description,
        starts_at: event.starts_at,
        ends_at: event.ends_at,
        url,
        stamp: state.clock.now(),
    }
}

/// An event's calendar file
///
/// `GET /events/{event}/calendar.ics`: the event as an iCalendar file, for
/// "Add to calendar".
#[utoipa::path(
    get,
    path = "/events/{event}/calendar.ics",
    tag = "buyer",
    operation_id = "buyer_event_calendar",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The calendar file", body = String, content_type = "text/calendar"),
        (status = 404, description = "No such event: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn event_calendar(State(state): State<AppState>, Path(event_id): Path<u64>) -> Response {
    let event = match record(&state, None, event_id).await {
        Ok(event) => event,
        Err(refused) => return refused,
    };
    calendar_file(
        &format!("event-{event_id}.ics"),
        ics(&entry(&state, &event, None)),
    )
}
