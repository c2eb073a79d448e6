//! The buyer pages' files: stylesheet, scripts, the vendored QR code
//! script (with its licence), the icon, the web app manifest and the
//! service worker. All compiled into the server.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::no_asset;

/// The buyer pages' files
///
/// `GET /buyer/assets/{file}`: `buyer.css`, `buyer.js`, `live-code.js`
/// (the rotating code where an event requires it), `qrcode.js` (the
/// npm package qrcode-generator 2.0.4, MIT; its licence is
/// `qrcode-generator.LICENSE`) and `icon.svg`.
#[utoipa::path(
    get,
    path = "/buyer/assets/{file}",
    tag = "buyer",
    operation_id = "buyer_asset",
    params(("file" = String, Path, description = "`buyer.css`, `buyer.js`, `live-code.js`, `qrcode.js`, `qrcode-generator.LICENSE` or `icon.svg`")),
    responses(
        (status = 200, description = "The file, typed by its name", content(
            (String = "text/css"),
            (String = "text/javascript"),
            (String = "text/plain"),
            (String = "image/svg+xml"),
        )),
        (status = 404, description = "`not_found`: no such file", body = crate::http::error::ErrorBody),
    )
)]
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "buyer.css" => (include_str!("assets/buyer.css"), "text/css; charset=utf-8"),
        "buyer.js" => (
            include_str!("assets/buyer.js"),
            "text/javascript; charset=utf-8",
        ),
        "live-code.js" => (
            include_str!("assets/live-code.js"),
            "text/javascript; charset=utf-8",
        ),
        "qrcode.js" => (
            include_str!("assets/qrcode.js"),
            "text/javascript; charset=utf-8",
        ),
        "qrcode-generator.LICENSE" => (
            include_str!("assets/qrcode-generator.LICENSE"),
            "text/plain; charset=utf-8",
        ),
        "icon.svg" => (include_str!("assets/icon.svg"), "image/svg+xml"),
        _ => return no_asset(&file),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The web app manifest
///
/// `GET /manifest.webmanifest`: what makes the buyer pages an installable
/// app that opens on My tickets.
#[utoipa::path(
    get,
    path = "/manifest.webmanifest",
    tag = "buyer",
    operation_id = "buyer_manifest",
    responses((status = 200, description = "The manifest (W3C Web Application Manifest)", body = Object, content_type = "application/manifest+json"))
)]
pub async fn manifest() -> Response {
    let manifest = serde_json::json!({
        "name": "Tickets",
        "short_name": "Tickets",
        "description": "Your tickets, with their codes for the gate, even offline.",
        "start_url": "/tickets",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#15202b",
        "icons": [
            { "src": "/buyer/assets/icon.svg", "sizes": "any", "type": "image/svg+xml", "purpose": "any" }
        ]
    });
    (
        [
            (header::CONTENT_TYPE, "application/manifest+json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        manifest.to_string(),
    )
        .into_response()
}

/// The service worker
///
/// `GET /sw.js`: keeps the buyer pages' files and the last My tickets page
/// a holder opened, so it shows with no network; pages come from the
/// network first and from that copy only when the network fails.
#[utoipa::path(
    get,
    path = "/sw.js",
    tag = "buyer",
    operation_id = "buyer_service_worker",
    responses((status = 200, description = "The script", body = String, content_type = "text/javascript"))
)]
pub async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("assets/sw.js"),
    )
        .into_response()
}
