//! An event's books for its organizer, read-only: its purchases by status,
//! the refunds owed, refused and made, and the revenue per tier by SOL and
//! by card ([`report`]); and the attendance of every ticket as CSV
//! ([`attendance_csv`]). The API and the console both serve these.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shared::TicketStatus;

use super::{ServiceError, Services};
use crate::store::{AttendanceRow, PurchaseStatus};

/// Purchases in one status, by method.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StatusCount {
    /// `pending`, `paid`, `minting`, `fulfilled`, `expired`, `failed`,
    /// `refund_due`, `refunded` or `refund_failed`.
    pub status: String,
    /// Purchases paid by card.
    pub card: u64,
    /// Purchases paid in SOL.
    pub sol: u64,
}

/// Refunds of purchases (by card: SOL comes back on chain with the
/// ticket's revocation), as counts and amounts per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct RefundFigures {
    /// Owed, not yet made (the purchase worker makes them).
    pub due: u64,
    /// Refused by the payment provider for good: support must act.
    pub refused: u64,
    /// Made.
    pub done: u64,
    /// Amounts refunded, per currency (smallest unit).
    pub refunded_amounts: Vec<Amount>,
    /// Amounts still owed, per currency (smallest unit).
    pub due_amounts: Vec<Amount>,
}

/// An amount in one currency's smallest unit (cents for `usd`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Amount {
    pub currency: String,
    pub amount: u64,
}

/// One tier's sales: tickets it has, purchases kept and their revenue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TierSales {
    pub tier: u8,
    pub name: String,
    /// Tickets of the tier that exist (minted by the organizer or bought).
    pub tickets: u64,
    /// Purchases paid in SOL and fulfilled.
    pub sol_sold: u64,
    /// Their price, in lamports.
    pub sol_lamports: u64,
    /// Purchases paid by card and kept (paid, being minted or fulfilled).
    pub card_sold: u64,
    /// Their price per currency (smallest unit).
    pub card_amounts: Vec<Amount>,
}

/// An event's sales.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SalesReport {
    pub event_id: u64,
    /// Purchases by status, in the order a purchase moves.
    pub purchases: Vec<StatusCount>,
    pub refunds: RefundFigures,
    /// Revenue per tier.
    pub tiers: Vec<TierSales>,
    /// All tiers' SOL revenue (lamports).
    pub sol_lamports: u64,
    /// All tiers' card revenue, per currency.
    pub card_amounts: Vec<Amount>,
}

/// Purchase statuses in the order a purchase moves through them.
const STATUSES: [PurchaseStatus; 9] = [
    PurchaseStatus::Pending,
    PurchaseStatus::Paid,
    PurchaseStatus::Minting,
    PurchaseStatus::Fulfilled,
    PurchaseStatus::Expired,
    PurchaseStatus::Failed,
    PurchaseStatus::RefundDue,
    PurchaseStatus::Refunded,
    PurchaseStatus::RefundFailed,
];

fn add(amounts: &mut BTreeMap<String, u64>, currency: &str, amount: u64) {
    let entry = amounts.entry(currency.to_owned()).or_default();
    *entry = entry.saturating_add(amount);
}

fn amounts(map: BTreeMap<String, u64>) -> Vec<Amount> {
    map.into_iter()
        .map(|(currency, amount)| Amount { currency, amount })
        .collect()
}

/// The sales of `event_id`; not found for an event the server does not know.
pub async fn report(services: &Services, event_id: u64) -> Result<SalesReport, ServiceError> {
    let event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let lines = services.store.sales_lines(event_id).await?;
    let issued = services.store.tickets_per_tier(event_id).await?;

    let mut purchases: Vec<StatusCount> = STATUSES
        .iter()
        .map(|s| StatusCount {
            status: s.as_str().to_owned(),
            card: 0,
            sol: 0,
        })
        .collect();
    let mut refunds = RefundFigures::default();
    let (mut refunded, mut due) = (BTreeMap::new(), BTreeMap::new());
    let mut tiers: BTreeMap<u8, TierSales> = event
        .tiers
        .iter()
        .map(|t| {
            (
                t.index,
                TierSales {
                    tier: t.index,
                    name: t.name.clone(),
                    tickets: 0,
                    sol_sold: 0,
                    sol_lamports: 0,
                    card_sold: 0,
                    card_amounts: Vec::new(),
                },
            )
        })
        .collect();
    let mut card_by_tier: BTreeMap<u8, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut sol_total, mut card_total) = (0u64, BTreeMap::new());
    for (tier, count) in issued {
        tiers.entry(tier).or_insert_with(|| unnamed(tier)).tickets = count;
    }
    for line in &lines {
        let card = line.method == "card";
        if let Some(row) = purchases.iter_mut().find(|p| p.status == line.status) {
            if card {
                row.card += line.count;
            } else {
                row.sol += line.count;
            }
        }
        let status = PurchaseStatus::parse(&line.status);
        match status {
            Some(PurchaseStatus::RefundDue) => {
                refunds.due += line.count;
                add(&mut due, &line.currency, line.amount);
            }
            Some(PurchaseStatus::RefundFailed) => refunds.refused += line.count,
            Some(PurchaseStatus::Refunded) => {
                refunds.done += line.count;
                add(&mut refunded, &line.currency, line.amount);
            }
            _ => {}
        }
        let tier = tiers.entry(line.tier).or_insert_with(|| unnamed(line.tier));
        match (card, status) {
            (false, Some(PurchaseStatus::Fulfilled)) => {
                tier.sol_sold += line.count;
                tier.sol_lamports = tier.sol_lamports.saturating_add(line.amount);
                sol_total = sol_total.saturating_add(line.amount);
            }
            (
                true,
                Some(PurchaseStatus::Paid | PurchaseStatus::Minting | PurchaseStatus::Fulfilled),
            ) => {
                tier.card_sold += line.count;
                add(
                    card_by_tier.entry(line.tier).or_default(),
                    &line.currency,
                    line.amount,
                );
                add(&mut card_total, &line.currency, line.amount);
            }
            _ => {}
        }
    }
    for (tier, map) in card_by_tier {
        if let Some(sales) = tiers.get_mut(&tier) {
            sales.card_amounts = amounts(map);
        }
    }
    refunds.refunded_amounts = amounts(refunded);
    refunds.due_amounts = amounts(due);
    Ok(SalesReport {
        event_id,
        purchases,
        refunds,
        tiers: tiers.into_values().collect(),
        sol_lamports: sol_total,
        card_amounts: amounts(card_total),
    })
}

fn unnamed(tier: u8) -> TierSales {
    TierSales {
        tier,
        name: format!("tier {tier}"),
        tickets: 0,
        sol_sold: 0,
        sol_lamports: 0,
        card_sold: 0,
        card_amounts: Vec::new(),
    }
}

/// The attendance CSV's header line.
pub const ATTENDANCE_HEADER: &str =
    "ticket_id,tier,tier_name,holder,status,entered_at,entry_gate,entries,exits\n";

/// Every ticket of `event_id` as a CSV line: its id, tier (number and
/// name), holder's wallet, status (`valid`, `frozen`, `revoked`,
/// `refunded`), its first admission (RFC 3339 UTC, empty if never) and that
/// admission's gate, and its admissions and exits.
pub async fn attendance_csv(services: &Services, event_id: u64) -> Result<String, ServiceError> {
    let event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let rows = services.store.attendance(event_id).await?;
    let names: BTreeMap<u8, &str> = event
        .tiers
        .iter()
        .map(|t| (t.index, t.name.as_str()))
        .collect();
    let mut out = String::with_capacity(ATTENDANCE_HEADER.len() + rows.len() * 96);
    out.push_str(ATTENDANCE_HEADER);
    for row in &rows {
        csv_line(&mut out, row, names.get(&row.ticket.tier).copied());
    }
    Ok(out)
}

/// A ticket's status in the words the console uses.
pub fn status_word(status: TicketStatus) -> &'static str {
    match status {
        TicketStatus::Active => "valid",
        TicketStatus::Frozen => "frozen",
        TicketStatus::Revoked => "revoked",
        TicketStatus::Refunded => "refunded",
    }
}

fn csv_line(out: &mut String, row: &AttendanceRow, tier_name: Option<&str>) {
    let t = &row.ticket;
    let entered = row
        .first_entry_ms
        .map(|ms| {
            let at = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            humantime::format_rfc3339_millis(at).to_string()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{},{},{},{},{},{},{},{},{}",
        t.ticket_id,
        t.tier,
        csv_field(tier_name.unwrap_or("")),
        t.owner.to_base58(),
        status_word(t.status),
        entered,
        row.first_entry_gate
            .map(|g| g.to_string())
            .unwrap_or_default(),
        row.entries,
        row.exits,
    );
}

/// `text` as one CSV field (RFC 4180): quoted when it holds a comma, quote
/// or line break; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
/// spreadsheet does not run it as a formula.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("general"), "general");
        assert_eq!(csv_field("VIP, front"), "\"VIP, front\"");
        assert_eq!(csv_field("the \"best\""), "\"the \"\"best\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }
}
