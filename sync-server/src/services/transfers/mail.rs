//! The claim mail of an open email transfer: sent once, after which the
//! secret is forgotten; kept for a resend when the relay did not take it.

use solana_sdk::pubkey::Pubkey;

use super::EmailTransferState;
use crate::adapters::mail::TransferClaim;
use crate::services::Services;
use crate::store::EmailTransfer;

/// What the holder is told about `transfer`, never its secret.
pub(super) fn state_of(transfer: &EmailTransfer, mail_error: Option<String>) -> EmailTransferState {
    EmailTransferState {
        to_email: transfer.email.clone(),
        status: transfer.status,
        expires_at: transfer.expires_at,
        mail_sent: transfer.mail_sent_at.is_some(),
        mail_error,
    }
}

/// `transfer` once its mail went out at `now`: the secret is no longer kept.
fn mailed(transfer: &EmailTransfer, now: i64) -> EmailTransferState {
    state_of(
        &EmailTransfer {
            claim_secret: None,
            mail_sent_at: Some(now),
            ..transfer.clone()
        },
        None,
    )
}

/// `Wallet AbCd...WxYz`: how a recipient may recognise the sender's wallet.
pub(super) fn short_wallet(key: &Pubkey) -> String {
    let text = key.to_string();
    match (text.get(..4), text.get(text.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) => format!("Wallet {head}...{tail}"),
        _ => text,
    }
}

/// Mails the claim link of an open transfer whose secret is still kept,
/// and forgets the secret once the relay took the mail. A failure is
/// reported in the answer and the secret kept for a resend.
pub(super) async fn deliver_claim(
    services: &Services,
    transfer: &EmailTransfer,
) -> EmailTransferState {
    let Some(secret) = &transfer.claim_secret else {
        return state_of(transfer, None);
    };
    let Some(mailer) = &services.mailer else {
        return state_of(
            transfer,
            Some("mail is off on this server (no [smtp] relay configured)".into()),
        );
    };
    let event = match services.store.event(transfer.event_id).await {
        Ok(Some(event)) => event,
        Ok(None) => {
            return state_of(transfer, Some("the event is unknown to this server".into()));
        }
        Err(e) => return state_of(transfer, Some(format!("storage: {e}"))),
    };
    let tier = match services
        .store
        .ticket(transfer.event_id, transfer.ticket_id)
        .await
    {
        Ok(Some(ticket)) => event
            .tiers
            .iter()
            .find(|t| t.index == ticket.tier)
            .map_or_else(|| format!("tier {}", ticket.tier), |t| t.name.clone()),
        _ => String::from("ticket"),
    };
    let now = services.clock.now();
    match services
        .store
        .take_claim_secret(&transfer.claim_key, secret, now)
        .await
    {
        Ok(true) => {}
        // Another request is mailing it, or did.
        Ok(false) => return mailed(transfer, now),
        Err(e) => return state_of(transfer, Some(format!("storage: {e}"))),
    }
    let mail = TransferClaim {
        to: transfer.email.clone(),
        event_name: event.name,
        tier_name: tier,
        sender: short_wallet(&transfer.sender),
        secret: secret.clone(),
        expires_at: transfer.expires_at,
    };
    match mailer.send_transfer_claim(&mail).await {
        Ok(()) => mailed(transfer, now),
        Err(e) => {
            tracing::warn!(
                event = transfer.event_id,
                ticket = transfer.ticket_id,
                error = %e,
                "claim mail not sent; kept for a resend"
            );
            if let Err(store) = services
                .store
                .return_claim_secret(&transfer.claim_key, secret, now)
                .await
            {
                tracing::error!(error = %store, "could not keep the claim secret for a resend; cancel and send again");
            }
            state_of(transfer, Some(e.to_string()))
        }
    }
}
