//! Tickets in and out as CSV files, for organizers.
//!
//! Import: one row per ticket, `wallet or email, tier` (the tier by index
//! or by name; an optional header line). Every row is checked before
//! anything is minted, so a file with one bad row mints nothing and the
//! answer names each bad row by its line. Wallet rows are minted to the
//! wallet; email rows are minted to the server's authority wallet, which
//! then opens an email transfer of each and mails its claim link (the same
//! transfer and claim as a holder's send-by-email), so the recipient claims
//! it into whatever wallet they have. The whole file is one mint request
//! (at most [`MAX_IMPORT_ROWS`] rows): all or nothing on chain.
//!
//! Export: every ticket of an event with its holder, status and presence.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::{PublicKeyBytes, TicketStatus};
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::Signer;
use solana_sdk::transaction::Transaction;

use super::minting::{self, MintKind, MintOrder, MintOutcome};
use super::{ServiceError, Services, transfers};

/// Most rows one file may have (a batch mint's limit).
pub const MAX_IMPORT_ROWS: usize = 100;
/// Longest import file, in bytes.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024;

/// Who a row's ticket is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Wallet(PublicKeyBytes),
    Email(String),
}

/// A row that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// The line in the file, from 1.
    pub line: usize,
    pub recipient: Recipient,
    pub tier: u8,
}

/// What is wrong with one line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowProblem {
    /// The line in the file, from 1 (0: the file as a whole).
    pub line: usize,
    pub problem: String,
}

/// Why a file was refused: every problem found, none minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", summary(.0))]
pub struct FileRefused(pub Vec<RowProblem>);

fn summary(problems: &[RowProblem]) -> String {
    let mut text = String::from("nothing was imported: ");
    for (i, p) in problems.iter().take(5).enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        if p.line == 0 {
            text.push_str(&p.problem);
        } else {
            let _ = write!(text, "line {}: {}", p.line, p.problem);
        }
    }
    if problems.len() > 5 {
        let _ = write!(text, "; and {} more", problems.len() - 5);
    }
    text
}

/// One imported row's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportedRow {
    pub line: usize,
    /// The wallet (base58) or the email address of the row.
    pub recipient: String,
    pub tier: u8,
    /// Once minted.
    pub ticket_id: Option<u32>,
    /// `minted` (wallet row), `minting` (not landed yet), `mailed` (email
    /// row: the claim link went out), `claimed` (email row, claimed
    /// since), or `mail_failed` (email row: see `problem`).
    pub state: String,
    pub problem: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub event_id: u64,
    /// The mint request of the file's tickets (`GET /api/mints/{request}`).
    pub mint_request: String,
    /// `completed`, or `minting` while the chain has not taken it all
    /// (send the same file with the same key again later to finish the
    /// email rows).
    pub state: String,
    /// Who the import is recorded as made by: the organizer's wallet
    /// (base58), or `admin` when the server's admin token made it.
    pub requested_by: String,
    pub rows: Vec<ImportedRow>,
}

/// The cells of one CSV line (quotes may wrap a cell; `""` is a quote).
fn cells(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(std::mem::take(&mut cell).trim().to_owned()),
            (c, _) => cell.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".into());
    }
    out.push(cell.trim().to_owned());
    Ok(out)
}

fn is_header(first: &[String]) -> bool {
    let head = first
        .first()
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(
        head.as_str(),
        "wallet" | "email" | "recipient" | "wallet or email" | "wallet_or_email" | "to"
    )
}

/// Checks every line of `file` for an event whose tiers are `tiers` (by
/// index) and answers the rows, or every problem found.
pub fn parse(file: &[u8], tiers: &[String]) -> Result<Vec<ImportRow>, FileRefused> {
    let whole = |problem: String| FileRefused(vec![RowProblem { line: 0, problem }]);
    if file.len() > MAX_IMPORT_BYTES {
        return Err(whole(format!(
            "the file is larger than {} KiB",
            MAX_IMPORT_BYTES / 1024
        )));
    }
    let text = std::str::from_utf8(file)
        .map_err(|_| whole("the file is not text (UTF-8): save it as CSV".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let first = rows.is_empty() && problems.is_empty();
        let mut problem = |p: String| problems.push(RowProblem { line, problem: p });
        let fields = match cells(raw) {
            Ok(fields) => fields,
            Err(e) => {
                problem(e);
                continue;
            }
        };
        if first && is_header(&fields) {
            continue;
        }
        if fields.len() != 2 {
            problem(format!(
                "{} cell(s); each line is: wallet or email, tier",
                fields.len()
            ));
            continue;
        }
        let (who, tier_text) = (&fields[0], &fields[1]);
        let recipient = if who.contains('@') {
            match who.parse::<lettre::Address>() {
                Ok(_) => Recipient::Email(who.clone()),
                Err(_) => {
                    problem(format!("{who:?} is not an email address"));
                    continue;
                }
            }
        } else if who.is_empty() {
            problem("no wallet or email address".into());
            continue;
        } else {
            match who.parse::<PublicKeyBytes>() {
                Ok(wallet) => Recipient::Wallet(wallet),
                Err(_) => {
                    problem(format!(
                        "{who:?} is neither a wallet address (base58) nor an email address"
                    ));
                    continue;
                }
            }
        };
        let tier = tier_text
            .parse::<usize>()
            .ok()
            .filter(|t| *t < tiers.len())
            .or_else(|| {
                tiers
                    .iter()
                    .position(|name| name.eq_ignore_ascii_case(tier_text))
            });
        let Some(tier) = tier.and_then(|t| u8::try_from(t).ok()) else {
            let names: Vec<String> = tiers
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{i} ({n})"))
                .collect();
            problem(format!(
                "no tier {tier_text:?}; this event's tiers are {}",
                names.join(", ")
            ));
            continue;
        };
        rows.push(ImportRow {
            line,
            recipient,
            tier,
        });
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(RowProblem {
            line: 0,
            problem: "the file has no rows".into(),
        });
    }
    if rows.len() > MAX_IMPORT_ROWS {
        problems.push(RowProblem {
            line: 0,
            problem: format!(
                "{} rows: at most {MAX_IMPORT_ROWS} per file; split it",
                rows.len()
            ),
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(FileRefused(problems))
    }
}

/// The tier names of an event, by index.
pub async fn tier_names(services: &Services, event_id: u64) -> Result<Vec<String>, ServiceError> {
    let event = services
        .store
        .event(event_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no event {event_id}")))?;
    let mut tiers = event.tiers;
    tiers.sort_by_key(|t| t.index);
    Ok(tiers.into_iter().map(|t| t.name).collect())
}

/// Mints the rows of a checked file for `organizer` (the event's, checked
/// by the caller) and sends the claim mails of its email rows. `key` makes
/// it safe to send again: the same key and the same rows answer the same
/// import (finishing its mails), never minting twice.
pub async fn import(
    services: &Services,
    caller: &str,
    event_id: u64,
    rows: &[ImportRow],
    key: Option<&str>,
) -> Result<ImportReport, ServiceError> {
    let ctx = services
        .chain
        .as_deref()
        .ok_or_else(|| ServiceError::ChainUnavailable("no chain configured".into()))?;
    let custodian = ctx.authority.pubkey();
    let has_email = rows
        .iter()
        .any(|r| matches!(r.recipient, Recipient::Email(_)));
    if has_email {
        let on_chain = super::organizer::event_on_chain(services, event_id).await?;
        let chain_now = ctx.chain.unix_time().await?;
        if !on_chain.transfers_open(chain_now) {
            let problems = rows
                .iter()
                .filter(|r| matches!(r.recipient, Recipient::Email(_)))
                .map(|r| RowProblem {
                    line: r.line,
                    problem: "this event's tickets cannot be transferred (now), so none can be sent by email".into(),
                })
                .collect();
            return Err(ServiceError::BadRequest(FileRefused(problems).to_string()));
        }
    }
    let recipients: Vec<(Pubkey, u8)> = rows
        .iter()
        .map(|r| match &r.recipient {
            Recipient::Wallet(w) => (Pubkey::new_from_array(w.0), r.tier),
            Recipient::Email(_) => (custodian, r.tier),
        })
        .collect();
    // The key is bound to the rows as written (emails included), so the
    // same key with another file is another import.
    let internal_key = key.map(|k| {
        let mut hasher = Sha256::new();
        hasher.update(k.as_bytes());
        for r in rows {
            let who = match &r.recipient {
                Recipient::Wallet(w) => w.to_base58(),
                Recipient::Email(e) => e.to_ascii_lowercase(),
            };
            hasher.update(format!("\n{who},{}", r.tier));
        }
        format!("import:{}", hex::encode(hasher.finalize()))
    });
    let order = MintOrder {
        event_id,
        caller,
        kind: MintKind::Batch,
        idempotency_key: internal_key.as_deref(),
        recipients: &recipients,
    };
    let outcome = minting::mint(services, &order).await?;
    let request = outcome.request().request_id.clone();
    let tickets = match outcome {
        MintOutcome::Completed(_, tickets) => tickets,
        MintOutcome::InProgress(req) => {
            return Ok(ImportReport {
                event_id,
                mint_request: request,
                state: "minting".into(),
                requested_by: caller.to_owned(),
                rows: rows
                    .iter()
                    .zip(&req.items)
                    .map(|(r, item)| row_report(r, item.ticket_id, "minting", None))
                    .collect(),
            });
        }
        MintOutcome::Failed(req) => {
            return Err(ServiceError::ChainRefused(
                req.error
                    .unwrap_or_else(|| "the chain refused the mint".into()),
            ));
        }
    };
    let mut report = Vec::with_capacity(rows.len());
    for (row, ticket) in rows.iter().zip(&tickets) {
        let id = ticket.ticket.ticket_id;
        let Recipient::Email(email) = &row.recipient else {
            report.push(row_report(row, Some(id), "minted", None));
            continue;
        };
        let (state, problem) = send_claim(services, ctx, event_id, id, email).await;
        report.push(row_report(row, Some(id), state, problem));
    }
    Ok(ImportReport {
        event_id,
        mint_request: request,
        state: "completed".into(),
        requested_by: caller.to_owned(),
        rows: report,
    })
}

fn row_report(
    row: &ImportRow,
    ticket_id: Option<u32>,
    state: &str,
    problem: Option<String>,
) -> ImportedRow {
    ImportedRow {
        line: row.line,
        recipient: match &row.recipient {
            Recipient::Wallet(w) => w.to_base58(),
            Recipient::Email(e) => e.clone(),
        },
        tier: row.tier,
        ticket_id,
        state: state.into(),
        problem,
    }
}

/// Opens the email transfer of a ticket the authority holds for `email`
/// and mails its claim link; once opened (an import sent again), only
/// reports it.
async fn send_claim(
    services: &Services,
    ctx: &super::organizer::ChainContext,
    event_id: u64,
    ticket_id: u32,
    email: &str,
) -> (&'static str, Option<String>) {
    let custodian = PublicKeyBytes(ctx.authority.pubkey().to_bytes());
    match services
        .store
        .open_email_transfer(event_id, ticket_id)
        .await
    {
        Ok(Some(open)) if open.mail_sent_at.is_some() => return ("mailed", None),
        Ok(Some(_)) => {
            return match transfers::resend(services, &custodian, event_id, ticket_id).await {
                Ok(state) if state.mail_sent => ("mailed", None),
                Ok(state) => ("mail_failed", state.mail_error),
                Err(e) => ("mail_failed", Some(e.to_string())),
            };
        }
        Ok(None) => {}
        Err(e) => return ("mail_failed", Some(format!("storage: {e}"))),
    }
    match services.store.ticket(event_id, ticket_id).await {
        Ok(Some(t)) if t.owner != custodian => return ("claimed", None),
        Ok(_) => {}
        Err(e) => return ("mail_failed", Some(format!("storage: {e}"))),
    }
    let sent = async {
        let prepared = transfers::prepare_email_transfer(
            services, &custodian, event_id, ticket_id, email, None,
        )
        .await?;
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine
            .decode(&prepared.transaction)
            .map_err(|e| ServiceError::Internal(format!("prepared transfer: {e}")))?;
        let mut transaction: Transaction = bincode::deserialize(&bytes)
            .map_err(|e| ServiceError::Internal(format!("prepared transfer: {e}")))?;
        let blockhash = transaction.message.recent_blockhash;
        transaction
            .try_sign(&[&ctx.authority], blockhash)
            .map_err(|e| ServiceError::Internal(format!("signing the transfer: {e}")))?;
        let signed = bincode::serialize(&transaction)
            .map_err(|e| ServiceError::Internal(format!("signed transfer: {e}")))?;
        transfers::submit_signed(
            services,
            &custodian,
            event_id,
            ticket_id,
            &engine.encode(signed),
        )
        .await
    };
    match sent.await {
        Ok(submitted) => match submitted.email_transfer {
            Some(state) if state.mail_sent => ("mailed", None),
            Some(state) => ("mail_failed", state.mail_error),
            None => ("mail_failed", Some("no transfer was opened".into())),
        },
        Err(e) => ("mail_failed", Some(e.to_string())),
    }
}

/// Every ticket of an event as CSV: `ticket_id, tier, tier_name, holder,
/// status, inside, admissions` (with a header line).
pub async fn export(services: &Services, event_id: u64) -> Result<String, ServiceError> {
    let tiers = tier_names(services, event_id).await?;
    let mut out = String::from("ticket_id,tier,tier_name,holder,status,inside,admissions\n");
    let page = 1000;
    let mut offset = 0;
    loop {
        let (rows, total) = services.store.attendees(event_id, "", page, offset).await?;
        for row in &rows {
            let t = &row.ticket;
            let status = match t.status {
                TicketStatus::Active => "valid",
                TicketStatus::Revoked => "revoked",
                TicketStatus::Frozen => "frozen",
                TicketStatus::Refunded => "refunded",
            };
            let inside = match row.inside {
                Some(true) => "inside",
                Some(false) => "left",
                None => "not yet",
            };
            let tier_name = tiers.get(usize::from(t.tier)).map_or("", String::as_str);
            let _ = writeln!(
                out,
                "{},{},{},{},{status},{inside},{}",
                t.ticket_id,
                t.tier,
                csv_cell(tier_name),
                t.owner.to_base58(),
                row.entries
            );
        }
        offset += page;
        if rows.is_empty() || u64::from(offset) >= total {
            break;
        }
    }
    Ok(out)
}

/// A cell safe in CSV and in a spreadsheet (no formula).
fn csv_cell(text: &str) -> String {
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
    use super::*;

    fn tiers() -> Vec<String> {
        vec!["general".into(), "vip".into()]
    }

    const WALLET: &str = "11111111111111111111111111111111";

    #[test]
    fn rows_read_with_or_without_a_header_and_tiers_by_name_or_index() {
        let file = format!("wallet or email,tier\n{WALLET},vip\n\n\"ann@example.com\",0\n");
        let rows = parse(file.as_bytes(), &tiers()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].tier, 1);
        assert_eq!(rows[1].line, 4);
        assert_eq!(
            rows[1].recipient,
            Recipient::Email("ann@example.com".into())
        );
    }

    #[test]
    fn every_bad_line_is_named_and_nothing_passes() {
        let file = format!("{WALLET},0\nnot-a-wallet,0\nann@,0\n{WALLET},gold\n{WALLET}\n");
        let refused = parse(file.as_bytes(), &tiers()).unwrap_err().0;
        let lines: Vec<usize> = refused.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5], "{refused:?}");
        assert!(refused[2].problem.contains("0 (general), 1 (vip)"));
    }

    #[test]
    fn an_empty_or_binary_file_is_refused_as_a_whole() {
        assert_eq!(parse(b"\n\n", &tiers()).unwrap_err().0[0].line, 0);
        assert!(
            parse(&[0xff, 0xfe, 0], &tiers()).unwrap_err().0[0]
                .problem
                .contains("not text")
        );
    }

    #[test]
    fn spreadsheet_formulas_do_not_survive_export() {
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }
}
