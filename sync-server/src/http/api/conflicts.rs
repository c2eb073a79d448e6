//! An event's conflicts for its organizer (or the admin token): both scans
//! of each side by side, and the resolution the organizer records
//! (`GET /api/events/{event}/conflicts`,
//! `POST /api/events/{event}/conflicts/{conflict}/resolution`), through
//! [`crate::services::conflicts`].

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use uuid::Uuid;

use super::manage::EventManager;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::http::validation::{ValidJson, Validate, check_text};
use crate::services::conflicts::{self, MAX_NOTE_CHARS};
use crate::store::{ConflictOutcome, ConflictReview};

/// An organizer's decision about a conflict.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    /// `same_person` (one holder scanned twice), `ticket_shared` (two people
    /// on one ticket: the second refused entry) or `other` (the note says
    /// what).
    pub outcome: ConflictOutcome,
    /// Up to 500 characters, line breaks allowed; required with `other`.
    // 500 is `MAX_NOTE_CHARS`: utoipa takes literals only.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: String,
}

impl Validate for ResolutionBody {
    fn validate(&self) -> Result<(), ApiError> {
        check_text("note", &self.note, 0..=MAX_NOTE_CHARS, true)
    }
}

impl EventManager {
    /// Who a resolution is recorded as: the organizer's wallet or `admin`.
    fn name(&self) -> String {
        match self {
            EventManager::Admin => "admin".into(),
            EventManager::Organizer(user) => user.wallet.to_base58(),
        }
    }
}

/// An event's conflicts, side by side
///
/// `GET /api/events/{event}/conflicts` (the event's organizer, or the admin
/// token): each ticket admitted while its holder was already inside, with
/// both scans (gate, time, device, direction, verdict) and the resolution
/// recorded for it, oldest first. A conflict's id is its later scan's.
#[utoipa::path(
    get,
    path = "/api/events/{event}/conflicts",
    tag = "events",
    params(("event" = u64, Path, description = "The event id")),
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The conflicts, oldest first", body = Vec<ConflictReview>),
        (status = 400, description = "`bad_request`: the event id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event", body = ErrorBody),
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    manager: EventManager,
    Path(event_id): Path<u64>,
) -> Result<Json<Vec<ConflictReview>>, ApiError> {
    manager.require(&state, event_id).await?;
    Ok(Json(conflicts::reviews(&state, event_id).await?))
}

/// Record what happened in a conflict
///
/// `POST /api/events/{event}/conflicts/{conflict}/resolution` (the event's
/// organizer, or the admin token): records the organizer's decision
/// (replacing an earlier one) and answers the conflict with it. The scans
/// themselves are kept as they are.
#[utoipa::path(
    post,
    path = "/api/events/{event}/conflicts/{conflict}/resolution",
    tag = "events",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("conflict" = String, Path, description = "The conflict's id (its later scan's id)"),
    ),
    request_body = ResolutionBody,
    security(("wallet_session" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Recorded: the conflict with its resolution", body = ConflictReview),
        (status = 400, description = "`bad_request`: the event id or the conflict id does not parse", body = ErrorBody),
        (status = 403, description = "`role_required`, `forbidden` (not this event's organizer) or `login_disabled`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such event, or no such conflict in it", body = ErrorBody),
        (status = 422, description = "`invalid_field` (with `field`): `note` too long, holding control characters or missing with `other`; an unknown outcome", body = ErrorBody),
        crate::http::openapi::responses::JsonBodyRefusals,
        crate::http::openapi::responses::SessionRefusals,
        crate::http::openapi::responses::StorageDown,
    )
)]
pub async fn resolve(
    State(state): State<AppState>,
    manager: EventManager,
    Path((event_id, conflict)): Path<(u64, String)>,
    ValidJson(body): ValidJson<ResolutionBody>,
) -> Result<Json<ConflictReview>, ApiError> {
    manager.require(&state, event_id).await?;
    let conflict = Uuid::parse_str(&conflict)
        .map_err(|_| ApiError::BadRequest(format!("{conflict:?} is not a conflict id")))?;
    Ok(Json(
        conflicts::resolve(
            &state,
            event_id,
            conflict,
            body.outcome,
            &body.note,
            &manager.name(),
        )
        .await?,
    ))
}
