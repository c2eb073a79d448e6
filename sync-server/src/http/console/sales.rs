//! The sales page: an event's purchases by status, its card refunds (owed,
//! refused, made) and its revenue per tier by SOL and by card, from the
//! service of `GET /api/events/{event}/sales` ([`crate::services::sales`]).

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::html::{escape, page};
use super::settle::{grouped, refused_page, sol};
use super::{respond, viewer_for};
use crate::http::state::AppState;
use crate::services::sales::{self, Amount};

/// A purchase status in an organizer's words.
fn status_words(status: &str) -> &'static str {
    match status {
        "pending" => "Waiting for payment",
        "paid" => "Paid, ticket being issued",
        "minting" => "Ticket being minted",
        "fulfilled" => "Sold: ticket issued",
        "expired" => "Not paid in time",
        "failed" => "Payment failed or ended",
        "refund_due" => "Refund owed",
        "refunded" => "Refunded",
        "refund_failed" => "Refund refused by the card provider",
        _ => "Other",
    }
}

/// Card amounts in their currencies (`25.00 USD`); card prices are in
/// hundredths of the currency.
fn money(amounts: &[Amount]) -> String {
    if amounts.is_empty() {
        return "0".to_owned();
    }
    amounts
        .iter()
        .map(|a| {
            format!(
                "{}.{:02} {}",
                grouped(a.amount / 100),
                a.amount % 100,
                escape(&a.currency.to_uppercase())
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// An event's sales
///
/// `GET /console/events/{event}/sales`: purchases by status and method,
/// card refunds owed, refused and made, and revenue per tier.
#[utoipa::path(
    get,
    path = "/console/events/{event}/sales",
    tag = "console",
    operation_id = "console_sales_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The sales page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn sales_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let report = match sales::report(&state.services, event_id).await {
        Ok(report) => report,
        Err(e) => return refused_page(&viewer, "The sales are not available", &e),
    };
    let name = state
        .store
        .event(event_id)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();

    let mut statuses = String::new();
    for s in report.purchases.iter().filter(|s| s.card + s.sol > 0) {
        let _ = write!(
            statuses,
            r#"<tr data-status="{code}"><th scope="row">{words}</th><td data-figure="card">{card}</td><td data-figure="sol">{sol}</td><td data-figure="all">{all}</td></tr>"#,
            code = s.status,
            words = status_words(&s.status),
            card = s.card,
            sol = s.sol,
            all = s.card + s.sol,
        );
    }
    let statuses = if statuses.is_empty() {
        r#"<p class="empty">No purchases yet.</p>"#.to_owned()
    } else {
        format!(
            r#"<div class="scroll"><table id="purchases"><caption>Purchases by status</caption><thead><tr><th scope="col">Status</th><th scope="col">By card</th><th scope="col">In SOL</th><th scope="col">All</th></tr></thead><tbody>{statuses}</tbody></table></div>"#
        )
    };

    let r = &report.refunds;
    let refunds = format!(
        r#"<dl class="totals small" id="refunds">
<div><dt>Refunds owed</dt><dd data-figure="refunds-due">{due}</dd></div>
<div><dt>Refused by the card provider</dt><dd data-figure="refunds-refused">{refused}</dd></div>
<div><dt>Refunded</dt><dd data-figure="refunds-done">{done}</dd></div>
</dl>
<p class="meta">Refunded: {refunded_amount}. Still owed: {due_amount}.{refused_note}</p>"#,
        due = r.due,
        refused = r.refused,
        done = r.done,
        refunded_amount = money(&r.refunded_amounts),
        due_amount = money(&r.due_amounts),
        refused_note = if r.refused > 0 {
            " A refused refund needs you: refund the buyer another way (the purchases needing support are listed by the API's support view)."
        } else {
            ""
        },
    );

    let mut tiers = String::new();
    for t in &report.tiers {
        let _ = write!(
            tiers,
            r#"<tr data-tier="{tier}"><th scope="row">{name}</th><td data-figure="tickets">{tickets}</td><td data-figure="sol-sold">{sol_sold}</td><td data-figure="sol-revenue">{sol_revenue}</td><td data-figure="card-sold">{card_sold}</td><td data-figure="card-revenue">{card_revenue}</td></tr>"#,
            tier = t.tier,
            name = escape(&t.name),
            tickets = t.tickets,
            sol_sold = t.sol_sold,
            sol_revenue = sol(t.sol_lamports),
            card_sold = t.card_sold,
            card_revenue = money(&t.card_amounts),
        );
    }
    let _ = write!(
        tiers,
        r#"<tr data-tier="all"><th scope="row">All tiers</th><td>{tickets}</td><td>{sol_sold}</td><td data-figure="sol-revenue">{sol_revenue}</td><td>{card_sold}</td><td data-figure="card-revenue">{card_revenue}</td></tr>"#,
        tickets = report.tiers.iter().map(|t| t.tickets).sum::<u64>(),
        sol_sold = report.tiers.iter().map(|t| t.sol_sold).sum::<u64>(),
        sol_revenue = sol(report.sol_lamports),
        card_sold = report.tiers.iter().map(|t| t.card_sold).sum::<u64>(),
        card_revenue = money(&report.card_amounts),
    );

    let body = format!(
        r#"<h1>{title}: sales</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/tickets">Tickets and attendees</a> · <a href="/console/events/{event_id}/settle">After the event</a></p>
<section aria-labelledby="revenue-title"><h2 id="revenue-title">Revenue per tier</h2>
<div class="scroll"><table id="tiers"><caption>Tickets and revenue kept (SOL: sold and issued; card: paid and not refunded)</caption><thead><tr><th scope="col">Tier</th><th scope="col">Tickets</th><th scope="col">Sold in SOL</th><th scope="col">SOL revenue</th><th scope="col">Sold by card</th><th scope="col">Card revenue</th></tr></thead><tbody>{tiers}</tbody></table></div>
<p class="meta">Tickets counts every ticket of the tier, minted by you or bought. SOL revenue waits in the event account until you withdraw it after the event.</p></section>
<section aria-labelledby="purchases-title"><h2 id="purchases-title">Purchases</h2>{statuses}</section>
<section aria-labelledby="refunds-title"><h2 id="refunds-title">Card refunds</h2>{refunds}</section>"#,
        title = escape(&name),
    );
    respond(
        StatusCode::OK,
        page(&format!("{name} sales"), Some(&viewer.label()), &body),
    )
}
