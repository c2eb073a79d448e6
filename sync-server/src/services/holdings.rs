//! A wallet's tickets as its holder sees them on the buyer pages: each held
//! ticket with its event, its signed code and where it stands (valid,
//! entered, frozen, revoked, refunded, waiting for an email claim), and the
//! tickets it bought or sent that another wallet holds now.

use std::collections::BTreeMap;

use shared::PublicKeyBytes;
use shared::TicketStatus;
use shared::wire::CachedTicket;

use super::{ServiceError, Services, events, organizer};
use crate::store::{EventRecord, SentByEmail, TransferStatus};

/// Where a ticket stands, in the holder's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Good for entry, never scanned in.
    Valid,
    /// Admitted at a gate at least once; `inside` as the gates last knew.
    Entered {
        inside: bool,
        entries: u64,
    },
    /// On hold by the organizer: refused at the gates until released.
    Frozen,
    Revoked,
    Refunded,
    /// Sent to an email address, waiting for the recipient's claim.
    AwaitingClaim {
        email: String,
        expires_at: i64,
    },
    /// Another wallet holds it now.
    Transferred {
        /// The address it was sent to, when it went by email.
        email: Option<String>,
    },
}

impl Standing {
    /// A stable word for the page's markup and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Entered { .. } => "entered",
            Self::Frozen => "frozen",
            Self::Revoked => "revoked",
            Self::Refunded => "refunded",
            Self::AwaitingClaim { .. } => "awaiting_claim",
            Self::Transferred { .. } => "transferred",
        }
    }
}

/// One ticket on the holder's page.
#[derive(Debug, Clone)]
pub struct HolderTicket {
    pub ticket: CachedTicket,
    pub event: EventRecord,
    pub standing: Standing,
    /// The signed credential (the QR code's text), for a ticket held.
    pub code: Option<String>,
}

impl HolderTicket {
    /// The tier's name.
    pub fn tier_name(&self) -> String {
        self.event
            .tiers
            .iter()
            .find(|t| t.index == self.ticket.tier)
            .map_or_else(|| format!("Tier {}", self.ticket.tier), |t| t.name.clone())
    }

    /// Whether the gates take the printed, unchanging code for this event
    /// (no rotating holder proof required).
    pub fn static_code_allowed(&self) -> bool {
        matches!(
            self.event.holder_proof,
            shared::HolderProofPolicy::NotRequired
        )
    }
}

/// A wallet's page: tickets held, tickets passed on, and when it was read.
#[derive(Debug, Clone)]
pub struct Holdings {
    pub held: Vec<HolderTicket>,
    pub passed_on: Vec<HolderTicket>,
    /// The server's clock when this was read.
    pub synced_at: i64,
}

async fn event_of(
    services: &Services,
    cache: &mut BTreeMap<u64, EventRecord>,
    event_id: u64,
) -> Result<EventRecord, ServiceError> {
    if let Some(event) = cache.get(&event_id) {
        return Ok(event.clone());
    }
    let event = events::record(services, event_id).await?;
    cache.insert(event_id, event.clone());
    Ok(event)
}

fn standing_of(
    ticket: &CachedTicket,
    inside: Option<bool>,
    entries: u64,
    open: Option<&SentByEmail>,
) -> Standing {
    match ticket.status {
        TicketStatus::Frozen => return Standing::Frozen,
        TicketStatus::Revoked => return Standing::Revoked,
        TicketStatus::Refunded => return Standing::Refunded,
        TicketStatus::Active => {}
    }
    if let Some(sent) = open {
        return Standing::AwaitingClaim {
            email: sent.email.clone(),
            expires_at: sent.expires_at,
        };
    }
    if entries > 0 {
        return Standing::Entered {
            inside: inside.unwrap_or(false),
            entries,
        };
    }
    Standing::Valid
}

/// `wallet`'s tickets for its page.
pub async fn of_wallet(
    services: &Services,
    wallet: &PublicKeyBytes,
) -> Result<Holdings, ServiceError> {
    let owner = wallet.to_base58();
    let synced_at = services.clock.now();
    let held = services.store.held_tickets(&owner).await?;
    let passed = services.store.tickets_passed_on(&owner).await?;
    let sent = services.store.sent_by_email(&owner).await?;
    let sent_for = |t: &CachedTicket, status: TransferStatus| {
        sent.iter()
            .find(|s| s.event_id == t.event_id && s.ticket_id == t.ticket_id && s.status == status)
    };
    let mut events = BTreeMap::new();
    let mut out = Holdings {
        held: Vec::with_capacity(held.len()),
        passed_on: Vec::with_capacity(passed.len()),
        synced_at,
    };
    for row in held {
        let event = event_of(services, &mut events, row.ticket.event_id).await?;
        let open = sent_for(&row.ticket, TransferStatus::Open);
        out.held.push(HolderTicket {
            standing: standing_of(&row.ticket, row.inside, row.entries, open),
            code: Some(organizer::credential_for(services, &row.ticket)?.encode()),
            ticket: row.ticket,
            event,
        });
    }
    for ticket in passed {
        let event = event_of(services, &mut events, ticket.event_id).await?;
        let standing = match sent_for(&ticket, TransferStatus::Open) {
            Some(open) => Standing::AwaitingClaim {
                email: open.email.clone(),
                expires_at: open.expires_at,
            },
            None => Standing::Transferred {
                email: sent_for(&ticket, TransferStatus::Claimed).map(|s| s.email.clone()),
            },
        };
        out.passed_on.push(HolderTicket {
            ticket,
            event,
            standing,
            code: None,
        });
    }
    Ok(out)
}

/// One ticket `wallet` holds, with its code; not found for a ticket it
/// does not hold (whose it is is none of its business).
pub async fn held(
    services: &Services,
    wallet: &PublicKeyBytes,
    event_id: u64,
    ticket_id: u32,
) -> Result<HolderTicket, ServiceError> {
    let missing = || ServiceError::NotFound(format!("no ticket {ticket_id} in event {event_id}"));
    if i64::try_from(event_id).is_err() {
        return Err(missing());
    }
    let ticket = services
        .store
        .ticket(event_id, ticket_id)
        .await?
        .filter(|t| t.owner == *wallet)
        .ok_or_else(missing)?;
    let event = events::record(services, event_id).await?;
    Ok(HolderTicket {
        standing: standing_of(&ticket, None, 0, None),
        code: Some(organizer::credential_for(services, &ticket)?.encode()),
        ticket,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: TicketStatus) -> CachedTicket {
        CachedTicket {
            event_id: 7,
            ticket_id: 3,
            tier: 0,
            owner: PublicKeyBytes([1; 32]),
            generation: 0,
            status,
        }
    }

    #[test]
    fn a_ticket_stands_as_its_holder_would_say() {
        let open = SentByEmail {
            event_id: 7,
            ticket_id: 3,
            email: "friend@example.org".into(),
            status: TransferStatus::Open,
            expires_at: 100,
        };
        let cases = [
            (TicketStatus::Active, None, 0, None, "valid"),
            (TicketStatus::Active, Some(true), 1, None, "entered"),
            (TicketStatus::Active, Some(false), 2, None, "entered"),
            (TicketStatus::Active, None, 0, Some(&open), "awaiting_claim"),
            // The organizer's hold says more than a pending transfer.
            (TicketStatus::Frozen, None, 0, Some(&open), "frozen"),
            (TicketStatus::Revoked, Some(true), 1, None, "revoked"),
            (TicketStatus::Refunded, None, 0, None, "refunded"),
        ];
        for (status, inside, entries, sent, expected) in cases {
            assert_eq!(
                standing_of(&ticket(status), inside, entries, sent).code(),
                expected,
                "{status:?} {inside:?} {entries}"
            );
        }
    }
}
