//! A purchase's mail: the confirmation with the ticket's QR code once
//! fulfilled (or, where the gates need the holder's live code, the way to
//! My tickets), or the refund notice once refunded. Sent when the purchase
//! gets there and retried by the purchase worker until sent or refused for
//! good.

use super::{MailStatus, Purchase, PurchaseStatus};
use shared::HolderProofPolicy;

use crate::adapters::mail::{
    GateCode, MailError, Mailer, RefundNotice, TicketConfirmation, qr_png,
};
use crate::services::organizer::credential_for;
use crate::services::{ServiceError, Services};

/// How long a sender holds a mail before another may send it (should the
/// first have died mid-send); well above the relay's timeout.
const MAIL_LEASE_SECS: i64 = 300;

/// Sends `purchase`'s owed mail, if any, and records the outcome; a mail
/// that could not be sent now stays owed. The mint that fulfils a purchase
/// and the worker's round may both get here: the mail's lease lets one of
/// them send it.
pub(super) async fn send(services: &Services, purchase: &Purchase) {
    if purchase.mail_status != MailStatus::Pending {
        return;
    }
    let (Some(mailer), Some(to)) = (&services.mailer, &purchase.email) else {
        return;
    };
    let claimed = services
        .store
        .claim_purchase_mail(&purchase.id, services.clock.now(), MAIL_LEASE_SECS)
        .await;
    match claimed {
        Ok(true) => {}
        // Sent already, or being sent by another task.
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(purchase = %purchase.id, error = %e, "purchase mail not sent; will retry");
            return;
        }
    }
    let status = match compose_and_send(services, mailer.as_ref(), to, purchase).await {
        Ok(Ok(())) => MailStatus::Sent,
        Ok(Err(e)) if e.is_permanent() => {
            tracing::warn!(purchase = %purchase.id, error = %e, "purchase mail refused for good");
            MailStatus::Failed
        }
        Ok(Err(e)) => return retry_later(services, purchase, e.to_string()).await,
        Err(e) => return retry_later(services, purchase, e.to_string()).await,
    };
    let _ = services
        .store
        .set_purchase_mail_status(&purchase.id, status)
        .await;
}

/// Leaves a mail owed for the next round, and its lease free for it.
async fn retry_later(services: &Services, purchase: &Purchase, error: String) {
    tracing::warn!(purchase = %purchase.id, %error, "purchase mail not sent; will retry");
    let _ = services.store.release_purchase_mail(&purchase.id).await;
}

/// `Ok(relay's answer)`, or `Err` when the mail could not be built.
async fn compose_and_send(
    services: &Services,
    mailer: &dyn Mailer,
    to: &str,
    purchase: &Purchase,
) -> Result<Result<(), MailError>, ServiceError> {
    let event = services
        .store
        .event(purchase.event_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("event vanished".into()))?;
    if purchase.status == PurchaseStatus::Refunded {
        let mail = RefundNotice {
            to: to.to_owned(),
            event_name: event.name.clone(),
            amount_minor: purchase.amount,
            currency: purchase.currency.clone(),
        };
        return Ok(mailer.send_refund_notice(&mail).await);
    }
    let ticket_id = purchase
        .ticket_id
        .ok_or_else(|| ServiceError::Internal("a fulfilled purchase without its ticket".into()))?;
    let ticket = services
        .store
        .ticket(purchase.event_id, ticket_id)
        .await?
        .ok_or_else(|| ServiceError::Internal("sold ticket not published".into()))?;
    // Where the gates need the holder's live code, the static one would
    // be refused: the mail says where the live one is instead.
    let gate_code = match event.holder_proof {
        HolderProofPolicy::Required { .. } => GateCode::Live {
            tickets_url: format!(
                "{}/tickets",
                services.config.api.public_url.trim_end_matches('/')
            ),
        },
        HolderProofPolicy::NotRequired => GateCode::Static {
            qr_png: qr_png(&credential_for(services, &ticket)?.encode())
                .map_err(ServiceError::Internal)?,
        },
    };
    let mail = TicketConfirmation {
        to: to.to_owned(),
        event_name: event.name.clone(),
        ticket_id,
        tier_name: event
            .tiers
            .iter()
            .find(|t| t.index == ticket.tier)
            .map_or_else(String::new, |t| t.name.clone()),
        gate_code,
    };
    Ok(mailer.send_ticket_confirmation(&mail).await)
}
