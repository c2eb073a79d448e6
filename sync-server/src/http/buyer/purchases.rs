//! The confirmation page after a checkout: each purchase's state in words,
//! and once a ticket is issued its code and the way to My tickets; for an
//! event whose gates take only the live code, no code but the way to My
//! tickets, where the live code is.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use shared::HolderProofPolicy;

use super::page::{escape, money, page, sign_in_block, when};
use super::session;
use super::{respond, unavailable};
use crate::http::state::AppState;
use crate::services::purchases::{self, MailStatus, PurchaseStatus};
use crate::services::{ServiceError, events};

/// Which purchases the confirmation is of.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfirmationQuery {
    /// Purchase ids, comma-separated (at most 10).
    #[serde(default)]
    pub purchases: Option<String>,
}

/// The confirmation
///
/// `GET /confirmation?purchases=ID,ID`: the signed-in buyer's purchases of
/// one checkout: paid and issued (with the ticket's code; for an event whose
/// gates require the holder proof, no code but the way to the live code in
/// My tickets), still being issued (the page reloads itself), or why not,
/// in words; and where the confirmation mail went.
#[utoipa::path(
    get,
    path = "/confirmation",
    tag = "buyer",
    operation_id = "buyer_confirmation_page",
    params(ConfirmationQuery),
    responses(
        (status = 200, description = "The confirmation, or the sign-in", body = String, content_type = "text/html"),
        (status = 503, description = "The database or the chain does not answer: a page saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn confirmation_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ConfirmationQuery>,
) -> Response {
    let ids: Vec<String> = query
        .purchases
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(10)
        .map(str::to_owned)
        .collect();
    let Some(buyer) = session::buyer(&state, &headers).await else {
        let next = format!("/confirmation?purchases={}", escape(&ids.join(",")));
        let body = format!(
            "<h1>Your purchase</h1>{}",
            sign_in_block("Sign in with the wallet you bought with.", &next)
        );
        return respond(StatusCode::OK, page("Your purchase", None, &body));
    };
    let mut items = String::new();
    let mut waiting = false;
    let mut mail_to: Option<String> = None;
    let mut live_only = false;
    for id in &ids {
        let purchase = match purchases::purchase_of(&state, &buyer.0, id).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_)) => {
                let _ = write!(
                    items,
                    r#"<li class="card"><p class="problem">This wallet made no purchase {}.</p></li>"#,
                    escape(id)
                );
                continue;
            }
            Err(_) => return unavailable(Some(&buyer), "Your purchase"),
        };
        let Ok(detail) = purchases::detail(&state, purchase).await else {
            return unavailable(Some(&buyer), "Your purchase");
        };
        let p = &detail.purchase;
        let event = events::record(&state, p.event_id).await.ok();
        let what = match &event {
            Some(event) => {
                let tier = event
                    .tiers
                    .iter()
                    .find(|t| t.index == p.tier)
                    .map_or_else(|| format!("tier {}", p.tier), |t| t.name.clone());
                format!("{}, {tier}", event.name)
            }
            None => format!("Event {}", p.event_id),
        };
        // An event that could not be read may require the live code: then
        // the static one would be refused at its gates, so it is not shown.
        let static_code = event
            .as_ref()
            .is_some_and(|e| matches!(e.holder_proof, HolderProofPolicy::NotRequired));
        live_only |= p.status == PurchaseStatus::Fulfilled && !static_code;
        if p.email.is_some() && p.status == PurchaseStatus::Fulfilled {
            mail_to = p.email.clone().map(|e| {
                let state = match p.mail_status {
                    MailStatus::Sent => "was sent",
                    MailStatus::Failed => "could not be delivered",
                    MailStatus::Pending | MailStatus::None => "is on its way",
                };
                format!("{state} to {e}")
            });
        }
        let price = money(p.amount, &p.currency);
        let (state_class, words) = match p.status {
            PurchaseStatus::Fulfilled => ("ok", "Paid. Your ticket is ready.".to_owned()),
            PurchaseStatus::Paid | PurchaseStatus::Minting => {
                waiting = true;
                ("warn", "Paid. Your ticket is being issued…".to_owned())
            }
            PurchaseStatus::Pending => {
                waiting = true;
                (
                    "warn",
                    format!(
                        "Waiting for your payment. Your seat is held until {}.",
                        when(p.expires_at)
                    ),
                )
            }
            PurchaseStatus::Expired => (
                "bad",
                "Your hold ran out before the payment arrived. Nothing was charged.".to_owned(),
            ),
            PurchaseStatus::Failed => (
                "bad",
                "The payment did not go through. Nothing was charged.".to_owned(),
            ),
            PurchaseStatus::RefundDue | PurchaseStatus::Refunded => (
                "bad",
                "You paid, but no seat was left. Your payment is refunded in full.".to_owned(),
            ),
            PurchaseStatus::RefundFailed => (
                "bad",
                "You paid, but no seat was left, and the refund needs a hand: the organizer's support has been told.".to_owned(),
            ),
        };
        let code = match (&detail.code, p.ticket_id) {
            (Some(code), Some(ticket_id)) if static_code => format!(
                r#"<figure class="qr" data-code="{code}"><div class="qr-image" role="img" aria-label="Code of ticket {ticket_id}"></div><figcaption>Ticket {ticket_id}. It is also in <a href="/tickets">My tickets</a>.</figcaption></figure>"#,
                code = escape(code),
            ),
            (Some(_), Some(ticket_id)) => live_code_note(ticket_id),
            _ => String::new(),
        };
        let _ = write!(
            items,
            r#"<li class="card purchase" data-purchase="{id}" data-status="{status}"><p><span class="badge {state_class}">{words}</span></p><p><strong>{what}</strong> · {price}</p>{code}</li>"#,
            id = escape(&p.id),
            status = p.status.as_str(),
            words = escape(&words),
            what = escape(&what),
            price = escape(&price),
        );
    }
    if ids.is_empty() {
        items.push_str(
            r#"<li class="card"><p class="problem">No purchase is named in this address.</p></li>"#,
        );
    }
    let mail = mail_to
        .map(|m| {
            if live_only {
                format!(
                    "<p>A confirmation {}. At the gate, only the live code in My tickets gets you in.</p>",
                    escape(&m)
                )
            } else {
                format!(
                    "<p>A confirmation with your ticket's code {}.</p>",
                    escape(&m)
                )
            }
        })
        .unwrap_or_default();
    let refresh = if waiting {
        r#"<p class="meta" id="confirmation-refresh" data-refresh="3">This page updates itself every few seconds.</p>"#
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Your purchase</h1>
<ul class="purchases">{items}</ul>
{mail}{refresh}
<p><a class="button" href="/tickets">Go to My tickets</a></p>"#
    );
    respond(StatusCode::OK, page("Your purchase", Some(&buyer), &body))
}

/// In place of the code, for a ticket whose event's gates take only the
/// live code: any fixed code shown here would be refused at the gate.
fn live_code_note(ticket_id: u32) -> String {
    format!(
        r#"<div class="live-elsewhere" data-live-code-elsewhere><p>Ticket {ticket_id}. This event's gates take only a live code that changes every few seconds, so there is no fixed code to save, print or screenshot.</p><p>At the gate, open <a href="/tickets">My tickets</a> on your phone and show the live code there. Open it once before you go, while you have signal: your wallet approves the phone once, and the live code then works offline too.</p></div>"#
    )
}
