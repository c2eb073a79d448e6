//! The gates page: each gate's figures, the boxes enrolled for the event
//! (last seen, online, unsent journal, clock, version) with a revoke button
//! each, and one-time enrolment tokens as text and as a QR code.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::html::{self, escape, page, when};
use super::{Viewer, form, problem, respond, viewer_for};
use crate::http::state::AppState;
use crate::services::{gates, live};

/// An event's gates and devices
///
/// `GET /console/events/{event}/gates`: each gate with its direction,
/// figures and link state, and a form that issues a one-time enrolment
/// token for a gate box.
#[utoipa::path(
    get,
    path = "/console/events/{event}/gates",
    tag = "console",
    operation_id = "console_gates_page",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The gates page", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn gates_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    gates_body(&state, &viewer, event_id, None).await
}

/// The boxes, each with a revoke button while it is active.
fn devices_table(event_id: u64, devices: &[gates::DeviceView], now: i64) -> String {
    if devices.is_empty() {
        return r#"<p class="empty">No box enrolled yet.</p>"#.to_owned();
    }
    let mut rows = String::new();
    for d in devices {
        let b = &d.device;
        let state = match (b.revoked_at, d.online) {
            (Some(at), _) => format!("revoked {}", when(at)),
            (None, true) => r#"<span class="ok">online</span>"#.to_owned(),
            (None, false) => r#"<span class="warn">offline</span>"#.to_owned(),
        };
        let seen = b.last_seen_at.map_or("never".to_owned(), |t| {
            let ago = (now - t).max(0);
            if ago < 120 {
                format!("{ago} s ago")
            } else {
                when(t)
            }
        });
        let clock = match b.clock_skew_secs {
            Some(s) if s.abs() >= 2 => format!(
                r#"<span class="warn">{} s {}</span>"#,
                s.abs(),
                if s > 0 { "ahead" } else { "behind" }
            ),
            Some(_) => "ok".to_owned(),
            None => "–".to_owned(),
        };
        let action = if b.revoked_at.is_none() {
            format!(
                r#"<form method="post" action="/console/events/{event_id}/devices/{id}/revoke"><button type="submit" aria-label="Revoke box {short}">Revoke</button></form>"#,
                id = escape(&b.device_id),
                short = escape(&b.device_id[..8.min(b.device_id.len())]),
            )
        } else {
            String::new()
        };
        let _ = write!(
            rows,
            r#"<tr data-device="{id}"><th scope="row">{host}</th><td>{gate}</td><td>{state}</td><td>{seen}</td><td>{backlog}</td><td>{clock}</td><td>{version}</td><td>{action}</td></tr>"#,
            id = escape(&b.device_id),
            host = escape(
                b.hostname
                    .as_deref()
                    .unwrap_or(&b.device_id[..8.min(b.device_id.len())])
            ),
            gate = b.gate,
            backlog = b.backlog,
            version = escape(&b.agent_version),
        );
    }
    format!(
        r#"<div class="scroll"><table><caption>Boxes enrolled for this event</caption><thead><tr><th scope="col">Box</th><th scope="col">Gate</th><th scope="col">State</th><th scope="col">Last seen</th><th scope="col">Not yet sent</th><th scope="col">Clock</th><th scope="col">Version</th><th scope="col"><span class="sr">Action</span></th></tr></thead><tbody>{rows}</tbody></table></div>"#
    )
}

async fn gates_body(
    state: &AppState,
    viewer: &Viewer,
    event_id: u64,
    issued: Option<(String, gates::EnrolToken)>,
) -> Response {
    let view = match live::view(&state.services, event_id).await {
        Ok(view) => view,
        Err(e) => {
            return problem(
                Some(viewer),
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("The gates are not available: {e}"),
            );
        }
    };
    let mut options = String::new();
    for g in &view.gates {
        let _ = write!(
            options,
            r#"<option value="{name}">{number} · {name}</option>"#,
            name = escape(&g.counts.name),
            number = g.counts.gate
        );
    }
    let issued = issued.map_or(String::new(), |(gate_name, token)| {
        let qr = qrcode::QrCode::new(token.token.as_bytes())
            .map(|code| {
                code.render::<qrcode::render::svg::Color>()
                    .min_dimensions(200, 200)
                    .build()
            })
            .unwrap_or_default();
        format!(
            r#"<section class="issued" aria-labelledby="issued-title"><h2 id="issued-title">Enrolment token for {gate}</h2>
<p>Valid once, until {until}. On the box: <code>gate-agent enrol --server URL --token TOKEN</code>, or put it in <code>gate-enrol.toml</code> on the boot partition.</p>
<p><code id="enrol-token">{token}</code></p>
<div class="qr">{qr}</div></section>"#,
            gate = escape(&gate_name),
            until = when(token.expires_at),
            token = escape(&token.token),
        )
    });
    let form = if view.gates.is_empty() {
        r#"<p class="empty">This event has no gates yet (<code>PUT /api/admin/events/{event}/gates</code>).</p>"#.to_owned()
    } else {
        format!(
            r#"<form method="post" action="/console/events/{event_id}/enrol-tokens">
<label for="gate">Gate</label><select id="gate" name="gate" required>{options}</select>
<button type="submit">Issue an enrolment token</button></form>"#
        )
    };
    let mut sections = String::new();
    for (id, content) in html::live_sections(&view) {
        if id == "gates" {
            let _ = write!(
                sections,
                r#"<section id="{id}" class="live">{content}</section>"#
            );
        }
    }
    let devices = match gates::devices(&state.services, event_id).await {
        Ok(devices) => devices_table(event_id, &devices, state.clock.now()),
        Err(e) => format!(
            r#"<p class="problem">The boxes are not available: {}</p>"#,
            escape(&e.to_string())
        ),
    };
    let body = format!(
        r#"<h1>{name}: gates and devices</h1>
<p class="meta"><a href="/console/events/{event_id}">Live view</a></p>
{issued}
{sections}
<section id="devices"><h2>Gate boxes</h2>{devices}</section>
<section><h2>Enrol a gate box</h2>{form}</section>
<section><h2>Gates with no network</h2><p>A signed copy of this event's gate cache, for boxes with no network at all: save it as <code>gate-cache.bin</code> on the box's boot partition or a USB stick; the box loads it on its next start.</p>
<p><a class="button" href="/console/events/{event_id}/cache-file" download="gate-cache.bin">Download the offline cache file</a></p></section>"#,
        name = escape(&view.event.name),
    );
    respond(
        StatusCode::OK,
        page(
            &format!("{} gates", view.event.name),
            Some(&viewer.label()),
            &body,
        ),
    )
}

/// The enrolment-token form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The gate's name.
    pub gate: String,
}

/// Issue an enrolment token
///
/// `POST /console/events/{event}/enrol-tokens` (form): a one-time token for
/// a box of the named gate, shown as text and as a QR code on the gates
/// page (the same service as `POST /api/admin/events/{event}/enrol-tokens`).
#[utoipa::path(
    post,
    path = "/console/events/{event}/enrol-tokens",
    tag = "console",
    operation_id = "console_create_enrol_token",
    params(("event" = u64, Path, description = "The event id")),
    request_body(content = NewToken, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The gates page with the new token", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event or gate", body = String, content_type = "text/html"),
    )
)]
pub async fn create_enrol_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
    body: Bytes,
) -> Response {
    let form: NewToken = match form(&headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    match gates::issue_enrol_token(&state.services, event_id, &form.gate, None).await {
        Ok(token) => gates_body(&state, &viewer, event_id, Some((form.gate, token))).await,
        Err(e) => problem(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            &format!("No token issued: {e}"),
        ),
    }
}

/// Revoke a gate box
///
/// `POST /console/events/{event}/devices/{device}/revoke` (form): the box's
/// requests are refused from now on (a lost or stolen box); the same
/// service as `POST /api/admin/devices/{device}/revoke`.
#[utoipa::path(
    post,
    path = "/console/events/{event}/devices/{device}/revoke",
    tag = "console",
    operation_id = "console_revoke_device",
    params(
        ("event" = u64, Path, description = "The event id"),
        ("device" = String, Path, description = "The box's device id"),
    ),
    responses(
        (status = 200, description = "The gates page, the box marked revoked", body = String, content_type = "text/html"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event, or a post from another site", body = String, content_type = "text/html"),
        (status = 404, description = "No such event, or no active box of it by that id", body = String, content_type = "text/html"),
    )
)]
pub async fn revoke_device(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((event_id, device)): Path<(u64, String)>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), true).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let not_found = || {
        problem(
            Some(&viewer),
            StatusCode::NOT_FOUND,
            &format!("This event has no active box {device}."),
        )
    };
    let Ok(device_id) = Uuid::parse_str(&device) else {
        return not_found();
    };
    // Only a box of this event: an organizer may not revoke another's.
    let belongs = gates::devices(&state.services, event_id)
        .await
        .map(|all| {
            all.iter()
                .any(|d| d.device.device_id == device_id.to_string())
        })
        .unwrap_or(false);
    if !belongs {
        return not_found();
    }
    match gates::revoke_device(&state.services, device_id).await {
        Ok(()) => gates_body(&state, &viewer, event_id, None).await,
        Err(_) => not_found(),
    }
}

/// Download the offline cache file
///
/// `GET /console/events/{event}/cache-file`: the event's signed gate cache
/// (as `GET /api/admin/events/{event}/cache-file`), for boxes with no
/// network.
#[utoipa::path(
    get,
    path = "/console/events/{event}/cache-file",
    tag = "console",
    operation_id = "console_cache_file",
    params(("event" = u64, Path, description = "The event id")),
    responses(
        (status = 200, description = "The signed cache file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 303, description = "Not signed in: to `/console/sign-in`"),
        (status = 403, description = "Another organizer's event", body = String, content_type = "text/html"),
        (status = 404, description = "No such event", body = String, content_type = "text/html"),
    )
)]
pub async fn cache_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<u64>,
) -> Response {
    let viewer = match viewer_for(&state, &headers, Some(event_id), false).await {
        Ok(viewer) => viewer,
        Err(refused) => return refused,
    };
    let version = shared::wire::PROTOCOL_VERSION;
    match crate::http::admin::cache_file_response(&state, event_id, version).await {
        Ok(file) => file,
        Err(e) => problem(
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The cache file is not available: {e}"),
        ),
    }
}
