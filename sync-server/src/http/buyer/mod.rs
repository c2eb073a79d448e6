//! The buyer pages: an event's page and checkout (card through Stripe.js, or
//! SOL signed by the browser wallet), the confirmation, "My tickets" with
//! each ticket's QR code (drawn in the page by a vendored QR script),
//! transfers to a wallet or by email, the claim page an emailed ticket's
//! link opens, calendar files and a printable ticket. Rendered by the
//! server on the same services as the JSON API (`crate::services`); the
//! scripts call that API with the wallet's session token. An installable
//! web app: a service worker keeps the pages a holder opened, so a ticket
//! opened once still shows its code with no network, saying when it was
//! last synced. No script, style or font from anywhere else, except
//! Stripe.js where card payment is configured.

pub mod assets;
mod calendar;
pub mod claim;
pub mod event;
mod page;
pub mod purchases;
mod session;
pub mod tickets;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use assets::{asset, manifest, service_worker};
use claim::claim_page;
use event::{event_calendar, event_page, events_page};
use purchases::confirmation_page;
use tickets::{print_page, ticket_calendar, tickets_page};

/// The buyer pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(events_page))
        .route("/events/{event}", get(event_page))
        .route("/events/{event}/calendar.ics", get(event_calendar))
        .route("/confirmation", get(confirmation_page))
        .route("/tickets", get(tickets_page))
        .route("/tickets/{event}/{ticket}/print", get(print_page))
        .route(
            "/tickets/{event}/{ticket}/calendar.ics",
            get(ticket_calendar),
        )
        .route("/claim", get(claim_page))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/manifest.webmanifest", get(manifest))
        .route("/sw.js", get(service_worker))
        .route("/buyer/assets/{file}", get(asset))
}

/// An HTML page with `status`, never stored by shared caches (it may show
/// a holder's codes).
fn respond(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "private, no-cache")],
        Html(body),
    )
        .into_response()
}

/// A page saying what went wrong, in words a buyer understands.
fn problem(
    viewer: Option<&session::Buyer>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    respond(
        status,
        page::page(
            title,
            viewer,
            &format!(
                r#"<h1>{}</h1><p class="problem" role="alert">{}</p><p><a href="/">See the events on sale</a></p>"#,
                page::escape(title),
                page::escape(text)
            ),
        ),
    )
}

/// The words for a service that failed under a page.
fn unavailable(viewer: Option<&session::Buyer>, what: &str) -> Response {
    problem(
        viewer,
        StatusCode::SERVICE_UNAVAILABLE,
        "Not available right now",
        &format!("{what} cannot be shown right now. Please try again in a minute."),
    )
}

/// What the sign-in form posts: the session token the page got from
/// `POST /api/auth/verify` for the wallet, and where to go next.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    pub session: String,
    /// A path on this site (default `/tickets`).
    #[serde(default)]
    pub next: Option<String>,
}

/// A local path to go to after signing in: nothing that leaves the site.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
        _ => "/tickets",
    }
}

/// Sign in
///
/// `POST /sign-in` (form): keeps the wallet's session token in the buyer
/// pages' cookie and sends the browser to `next`; a token that does not
/// sign in answers a page saying so (401).
#[utoipa::path(
    post,
    path = "/sign-in",
    tag = "buyer",
    operation_id = "buyer_sign_in",
    request_body(content = SignIn, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: to `next`, with the session cookie"),
        (status = 401, description = "The token does not sign in: a page saying so", body = String, content_type = "text/html"),
        (status = 403, description = "The form came from another site: a page saying so", body = String, content_type = "text/html"),
        (status = 415, description = "`unsupported_media_type`: not a form", body = crate::http::error::ErrorBody),
    )
)]
pub async fn sign_in(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: SignIn = match crate::http::console::form(&headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    if !crate::http::console::same_origin(&headers) {
        return problem(
            None,
            StatusCode::FORBIDDEN,
            "Not signed in",
            "This sign-in did not come from this site.",
        );
    }
    let Some(max_age) = session::check_token(&state, form.session.trim()).await else {
        return problem(
            None,
            StatusCode::UNAUTHORIZED,
            "Not signed in",
            "Your wallet's signature did not sign you in. Please try again.",
        );
    };
    let mut response = Redirect::to(local_path(form.next.as_deref())).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(
        form.session.trim(),
        max_age,
        session::secure(&state),
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Sign out
///
/// `POST /sign-out`: forgets the buyer pages' session cookie.
#[utoipa::path(
    post,
    path = "/sign-out",
    tag = "buyer",
    operation_id = "buyer_sign_out",
    responses((status = 303, description = "Signed out: to `/`"))
)]
pub async fn sign_out(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let mut response = Redirect::to("/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie("", 0, session::secure(&state)))
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Refuses an id the database cannot hold as "no such".
fn storable(event_id: u64) -> bool {
    i64::try_from(event_id).is_ok()
}

/// `ApiError` for a missing asset.
fn no_asset(file: &str) -> Response {
    ApiError::NotFound(format!("no asset {file}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn sign_in_goes_only_to_paths_on_this_site() {
        assert_eq!(local_path(Some("/events/7")), "/events/7");
        assert_eq!(local_path(Some("//evil.example/x")), "/tickets");
        assert_eq!(local_path(Some("https://evil.example")), "/tickets");
        assert_eq!(local_path(Some("/\\evil.example")), "/tickets");
        assert_eq!(local_path(None), "/tickets");
    }
}
