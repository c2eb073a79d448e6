//! Tickets from the console: mint one (wallet and tier), mint a batch and
//! watch it land (the mint runs in the background as one mint request,
//! the page follows it live), import a CSV file (wallet rows minted, email
//! rows sent a claim link by mail; every row checked first), and export
//! the tickets and attendees as CSV. The same services as
//! `POST /api/tickets/mint`, `/api/tickets/batch-mint`. The batch's
//! progress page is [`super::mint_progress`]; the CSV import's handler
//! [`super::ticket_import`].

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use shared::PublicKeyBytes;
use solana_sdk::pubkey::Pubkey;

use super::html::{escape, page};
use super::setup::Notice;
use super::{Viewer, form, problem, respond, viewer_for};
use crate::http::api::ticket_files::csv_answer;
use crate::http::state::AppState;
use crate::services::minting::{self, ADMIN_CALLER, MintKind, MintOrder, MintOutcome};
use crate::services::ticket_files::{ImportReport, MAX_IMPORT_ROWS, RowProblem};
use crate::services::{Services, ticket_files};

/// Who the mint request is recorded for: the organizer's wallet, or the
/// admin.
pub(super) fn caller(viewer: &Viewer) -> (String, MintKind, MintKind) {
    match viewer {
        Viewer::Admin => (ADMIN_CALLER.into(), MintKind::Admin, MintKind::Admin),
        Viewer::Organizer(wallet) => (wallet.to_base58(), MintKind::Single, MintKind::Batch),
    }
}

pub(super) fn new_key() -> String {
    format!("console-{}", uuid::Uuid::now_v7())
}

/// The mint form (one ticket).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct MintForm {
    #[serde(default)]
    pub wallet: String,
    #[serde(default)]
    pub tier: String,
    /// The page's idempotency key (a second click mints nothing more).
    #[serde(default)]
    pub key: String,
}

/// The batch form: wallets one per line, one tier.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct BatchForm {
    #[serde(default)]
    pub wallets: String,
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub key: String,
}

fn tier_options(tiers: &[String], chosen: &str) -> String {
    let mut out = String::new();
    for (i, name) in tiers.iter().enumerate() {
        let _ = write!(
            out,
            r#"<option value="{i}"{sel}>{name}</option>"#,
            sel = if chosen == i.to_string() {
                " selected"
            } else {
                ""
            },
            name = escape(name),
        );
    }
    out
}

/// What each form shows after a post.
#[derive(Default)]
pub(super) struct Shown<'a> {
    pub mint: Option<Notice<'a>>,
    pub batch: Option<Notice<'a>>,
    pub import: Option<Notice<'a>>,
    pub import_rows: Option<&'a [RowProblem]>,
    pub imported: Option<&'a ImportReport>,
    pub wallet: &'a str,
    pub wallets: &'a str,
    pub csv: &'a str,
}

fn mint_page(
    viewer: &Viewer,
    event_id: u64,
    name: &str,
    tiers: &[String],
    shown: &Shown<'_>,
) -> String {
    let notice = |n: &Option<Notice<'_>>| n.as_ref().map_or(String::new(), Notice::html);
    let mut problems = String::new();
    if let Some(rows) = shown.import_rows {
        let mut items = String::new();
        for p in rows {
            let at = if p.line == 0 {
                "The file".to_owned()
            } else {
                format!("Line {}", p.line)
            };
            let _ = write!(items, "<li>{at}: {}</li>", escape(&p.problem));
        }
        problems = format!(
            r#"<div class="problem" role="alert" id="import-problems"><p>Nothing was imported. Correct these lines and send the file again:</p><ul>{items}</ul></div>"#
        );
    }
    let mut report = String::new();
    if let Some(done) = shown.imported {
        let mut rows = String::new();
        for r in &done.rows {
            let state = match r.state.as_str() {
                "minted" => "minted to the wallet".to_owned(),
                "mailed" => "claim link mailed".to_owned(),
                "claimed" => "claimed".to_owned(),
                "minting" => "still minting".to_owned(),
                _ => format!(
                    "mail not sent: {}",
                    r.problem.as_deref().unwrap_or("unknown")
                ),
            };
            let _ = write!(
                rows,
                r#"<tr><th scope="row">{line}</th><td><code>{who}</code></td><td>{tier}</td><td>{ticket}</td><td>{state}</td></tr>"#,
                line = r.line,
                who = escape(&r.recipient),
                tier = escape(tiers.get(usize::from(r.tier)).map_or("", String::as_str)),
                ticket = r.ticket_id.map_or("–".to_owned(), |t| t.to_string()),
                state = escape(&state),
            );
        }
        let by = if done.requested_by == ADMIN_CALLER {
            "the admin token".to_owned()
        } else {
            format!("wallet {}", done.requested_by)
        };
        report = format!(
            r#"<p class="meta" id="import-by">Recorded as made by {by}.</p><div class="scroll" id="import-report" data-request="{request}"><table><caption>Imported: {n} row(s)</caption><thead><tr><th scope="col">Line</th><th scope="col">Wallet or email</th><th scope="col">Tier</th><th scope="col">Ticket</th><th scope="col">What happened</th></tr></thead><tbody>{rows}</tbody></table></div>"#,
            n = done.rows.len(),
            by = escape(&by),
            request = escape(&done.mint_request),
        );
    }
    let options = tier_options(tiers, "0");
    let body = format!(
        r#"<h1>{name}: mint and import tickets</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a> · <a href="/console/events/{event_id}/edit">Settings and rules</a> · <a href="/console/events/{event_id}/tickets">Tickets and attendees</a> · <a href="/console/events/{event_id}/attendees.csv" download>Download tickets and attendees (CSV)</a></p>
<section aria-labelledby="mint-title">
<h2 id="mint-title">Mint one ticket</h2>
{mint_notice}
<form method="post" action="/console/events/{event_id}/mint" class="stack" id="mint-form">
<input type="hidden" name="key" value="{key1}">
<label for="wallet">Holder's wallet address</label><input id="wallet" name="wallet" required maxlength="64" autocomplete="off" spellcheck="false" value="{wallet}">
<label for="tier">Tier</label><select id="tier" name="tier">{options}</select>
<button type="submit">Mint the ticket</button>
</form>
</section>
<section aria-labelledby="batch-title">
<h2 id="batch-title">Mint a batch</h2>
<p class="meta">Up to 100 wallets, one per line; all are minted or none. The page follows the mint live.</p>
{batch_notice}
<form method="post" action="/console/events/{event_id}/batch-mint" class="stack" id="batch-form">
<input type="hidden" name="key" value="{key2}">
<label for="wallets">Wallet addresses, one per line</label><textarea id="wallets" name="wallets" rows="6" spellcheck="false">{wallets}</textarea>
<label for="batch_tier">Tier</label><select id="batch_tier" name="tier">{options}</select>
<button type="submit">Mint the batch</button>
</form>
</section>
<section aria-labelledby="import-title">
<h2 id="import-title">Import a list (CSV)</h2>
<p class="meta" id="csv-help">One ticket per line: <code>wallet or email, tier</code> (the tier by number from 0 or by name; a first line <code>wallet or email,tier</code> is skipped), at most {max} lines. A wallet gets its ticket at once; an email address gets a link by mail to claim it into their wallet. Every line is checked first: if one is wrong, nothing is imported.</p>
{import_notice}{problems}{report}
<form method="post" action="/console/events/{event_id}/import" class="stack" id="import-form">
<input type="hidden" name="key" value="{key3}">
<label for="csv_file">CSV file</label><input id="csv_file" type="file" accept=".csv,text/csv,text/plain" aria-describedby="csv-help">
<label for="csv">Or paste the lines</label><textarea id="csv" name="csv" rows="6" spellcheck="false" aria-describedby="csv-help">{csv}</textarea>
<button type="submit">Import</button>
</form>
</section>"#,
        name = escape(name),
        mint_notice = notice(&shown.mint),
        batch_notice = notice(&shown.batch),
        import_notice = notice(&shown.import),
        key1 = new_key(),
        key2 = new_key(),
        key3 = new_key(),
        wallet = escape(shown.wallet),
        wallets = escape(shown.wallets),
        csv = escape(shown.csv),
        max = MAX_IMPORT_ROWS,
    );
    page(&format!("{name}: tickets"), Some(&viewer.label()), &body)
}

async fn event_name_and_tiers(
    services: &Services,
    event_id: u64,
) -> Result<(String, Vec<String>), String> {
    let name = services
        .store
        .event(event_id)
        .await
        .map_err(|e| format!("The database does not answer: {e}"))?
        .map(|e| e.name)
        .unwrap_or_default();
    let tiers = ticket_files::tier_names(services, event_id)
        .await
        .map_err(|e| format!("The event's tiers are not available: {e}"))?;
    Ok((name, tiers))
}

/// Renders the page with `shown`, or the problem page.
pub(super) async fn answer(
    state: &AppState,
    viewer: &Viewer,
    event_id: u64,
    status: StatusCode,
    shown: &Shown<'_>,
) -> Response {
    match event_name_and_tiers(state, event_id).await {
        Ok((name, tiers)) => respond(status, mint_page(viewer, event_id, &name, &tiers, shown)),
        Err(why) => problem(Some(viewer), StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

/// The tier chosen in a form, by index.
fn tier_of(text: &str, tiers: usize) -> Result<u8, String> {
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|t| usize::from(*t) < tiers)
        .ok_or_else(|| "Tier: choose one of the event's tiers".to_owned())
}

fn wallet_of(text: &str) -> Result<PublicKeyBytes, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("Enter the holder's wallet address".into());
    }
    text.parse().map_err(|_| {
        format!("{text:?} is not a wallet address (base58, like the ones wallets show)")
    })
}

/// Mint and import tickets
///
/// `GET /console/events/{event}/mint`: the forms to mint one ticket, a
/// batch, and to import a CSV list; the CSV export link.
#[utoipa::path(
    get,
    path = "/console/events/{event}/mint",
    tag = "console",
    operation_id = "console_mint_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn mint_page_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    answer(&state, &viewer, event_id, StatusCode::OK, &Shown::default()).await
}

/// Mint one ticket
///
/// `POST /console/events/{event}/mint` (form): one ticket to a wallet,
/// through the same service as `POST /api/tickets/mint`; the page again
/// with the ticket's id, or (422) what is wrong.
#[utoipa::path(
    post,
    path = "/console/events/{event}/mint",
    tag = "console",
    operation_id = "console_mint",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = MintForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Minted (or still minting): the page saying so", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 422, description = "Not minted: the page saying why", body = String, content_type = "text/html"),
    )
)]
pub async fn mint_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let fields: MintForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let refuse = |why: String| {
        let state = state.clone();
        let viewer = viewer.clone();
        let wallet = fields.wallet.clone();
        async move {
            let text = why;
            answer(
                &state,
                &viewer,
                event_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &Shown {
                    mint: Some(Notice::Problem(&text)),
                    wallet: &wallet,
                    ..Shown::default()
                },
            )
            .await
        }
    };
    let tiers = match ticket_files::tier_names(&state, event_id).await {
        Ok(tiers) => tiers,
        Err(e) => return refuse(format!("Not minted: {e}")).await,
    };
    let (wallet, tier) = match (
        wallet_of(&fields.wallet),
        tier_of(&fields.tier, tiers.len()),
    ) {
        (Ok(w), Ok(t)) => (w, t),
        (Err(why), _) | (_, Err(why)) => return refuse(why).await,
    };
    let (who, kind, _) = caller(&viewer);
    let key = (!fields.key.is_empty()).then_some(fields.key.as_str());
    let recipients = [(Pubkey::new_from_array(wallet.0), tier)];
    let order = MintOrder {
        event_id,
        caller: &who,
        kind,
        idempotency_key: key,
        recipients: &recipients,
    };
    let text = match minting::mint(&state, &order).await {
        Ok(MintOutcome::Completed(_, tickets)) => match tickets.first() {
            Some(t) => format!(
                "Ticket {} ({}) minted to {}.",
                t.ticket.ticket_id,
                tiers.get(usize::from(tier)).map_or("", String::as_str),
                wallet.to_base58()
            ),
            None => "Minted.".to_owned(),
        },
        Ok(MintOutcome::InProgress(request)) => format!(
            "Recorded; the chain has not confirmed it yet. It is finished in the background (request {}).",
            request.request_id
        ),
        Ok(MintOutcome::Failed(request)) => {
            return refuse(format!(
                "Not minted: the chain refused ({})",
                request.error.unwrap_or_default()
            ))
            .await;
        }
        Err(e) => return refuse(format!("Not minted: {e}")).await,
    };
    answer(
        &state,
        &viewer,
        event_id,
        StatusCode::OK,
        &Shown {
            mint: Some(Notice::Done(&text)),
            ..Shown::default()
        },
    )
    .await
}

/// Mint a batch
///
/// `POST /console/events/{event}/batch-mint` (form): up to 100 wallets, one
/// tier; the mint starts in the background (the same service as
/// `POST /api/tickets/batch-mint`) and the browser goes to its progress
/// page; a wrong line gets the form back (422).
#[utoipa::path(
    post,
    path = "/console/events/{event}/batch-mint",
    tag = "console",
    operation_id = "console_batch_mint",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = BatchForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Started: to `/console/events/{event}/mints/{key}`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 422, description = "A wrong line: the form again, saying which", body = String, content_type = "text/html"),
    )
)]
pub async fn batch_mint(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let fields: BatchForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let tiers = ticket_files::tier_names(&state, event_id)
        .await
        .map(|t| t.len())
        .unwrap_or(0);
    let mut problems = Vec::new();
    let mut recipients = Vec::new();
    let tier = tier_of(&fields.tier, tiers)
        .map_err(|e| problems.push(e))
        .unwrap_or(0);
    for (i, line) in fields.wallets.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match wallet_of(line) {
            Ok(w) => recipients.push((Pubkey::new_from_array(w.0), tier)),
            Err(why) => problems.push(format!("Line {}: {why}", i + 1)),
        }
    }
    if recipients.is_empty() && problems.is_empty() {
        problems.push("Enter at least one wallet address".into());
    }
    if recipients.len() > MAX_IMPORT_ROWS {
        problems.push(format!(
            "{} wallets: at most {MAX_IMPORT_ROWS} per batch",
            recipients.len()
        ));
    }
    let key = if fields.key.starts_with("console-") && fields.key.len() < 100 {
        fields.key.clone()
    } else {
        new_key()
    };
    if !problems.is_empty() {
        let text = format!("Nothing minted. {}", problems.join("; "));
        return answer(
            &state,
            &viewer,
            event_id,
            StatusCode::UNPROCESSABLE_ENTITY,
            &Shown {
                batch: Some(Notice::Problem(&text)),
                wallets: &fields.wallets,
                ..Shown::default()
            },
        )
        .await;
    }
    let (who, _, kind) = caller(&viewer);
    let services = state.services.clone();
    let spawned_key = key.clone();
    tokio::spawn(async move {
        let order = MintOrder {
            event_id,
            caller: &who,
            kind,
            idempotency_key: Some(&spawned_key),
            recipients: &recipients,
        };
        if let Err(e) = minting::mint(&services, &order).await {
            super::mint_progress::remember_failure(
                services.clock.now(),
                &spawned_key,
                e.to_string(),
            );
        }
    });
    Redirect::to(&format!("/console/events/{event_id}/mints/{key}")).into_response()
}

/// Tickets and attendees as CSV
///
/// `GET /console/events/{event}/attendees.csv`: the same file as
/// `GET /api/events/{event}/attendees.csv`, for the signed-in console user.
#[utoipa::path(
    get,
    path = "/console/events/{event}/attendees.csv",
    tag = "console",
    operation_id = "console_attendees_csv",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The tickets", body = String, content_type = "text/csv"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn attendees_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    match csv_answer(&state, event_id).await {
        Ok(response) => response,
        Err(e) => problem(
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The tickets are not available: {e}"),
        ),
    }
}
