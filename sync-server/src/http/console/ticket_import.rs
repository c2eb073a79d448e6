//! Importing a CSV list from the console: the same checks and service as
//! `POST /api/events/{event}/tickets/import`, the page again with each
//! row's outcome or each wrong line.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::minting::{Shown, answer};
use super::setup::Notice;
use super::{form, viewer_for};
use crate::http::api::ticket_files::import_file;
use crate::http::state::AppState;

/// The import form: the CSV text (the page's file picker fills it).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ImportForm {
    #[serde(default)]
    pub csv: String,
    #[serde(default)]
    pub key: String,
}

/// Import a CSV list
///
/// `POST /console/events/{event}/import` (form with the file's text): the
/// same checks and service as `POST /api/events/{event}/tickets/import`;
/// the page again with each row's outcome, or (422) each wrong line.
#[utoipa::path(
    post,
    path = "/console/events/{event}/import",
    tag = "console",
    operation_id = "console_import",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = ImportForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Imported: each row's ticket and what happened", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
        (status = 422, description = "Nothing imported: each wrong line in words", body = String, content_type = "text/html"),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let fields: ImportForm = match form(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    // Recorded as made by whoever is signed in: the admin token's imports
    // are the admin's, not the organizer's.
    let (caller, _, _) = super::minting::caller(&viewer);
    let key = (!fields.key.is_empty() && fields.key.len() <= 200).then_some(fields.key.as_str());
    match import_file(&state, &caller, event_id, fields.csv.as_bytes(), key).await {
        Ok(Ok(report)) => {
            let text = if report.state == "completed" {
                "Imported.".to_owned()
            } else {
                "Recorded; the chain has not confirmed every ticket yet. Send the same list again later to mail the claim links.".to_owned()
            };
            answer(
                &state,
                &viewer,
                event_id,
                StatusCode::OK,
                &Shown {
                    import: Some(Notice::Done(&text)),
                    imported: Some(&report),
                    ..Shown::default()
                },
            )
            .await
        }
        Ok(Err(problems)) => {
            answer(
                &state,
                &viewer,
                event_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &Shown {
                    import_rows: Some(&problems),
                    csv: &fields.csv,
                    ..Shown::default()
                },
            )
            .await
        }
        Err(e) => {
            let text = format!("Nothing imported: {e}");
            answer(
                &state,
                &viewer,
                event_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                &Shown {
                    import: Some(Notice::Problem(&text)),
                    csv: &fields.csv,
                    ..Shown::default()
                },
            )
            .await
        }
    }
}
