//! Signing in and out of the console: the sign-in page (wallet or admin
//! token), its form, the admin's one-time link, and signing out.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html::{escape, page};
use super::{form, respond, session, to_sign_in};
use crate::http::state::AppState;

fn sign_in_body(error: Option<&str>, admin_enabled: bool) -> String {
    let error = error.map_or(String::new(), |e| {
        format!(r#"<p class="problem" role="alert">{}</p>"#, escape(e))
    });
    let admin = if admin_enabled {
        r#"<section><h2>With the admin token</h2>
<form method="post" action="/console/sign-in">
<label for="admin_token">Admin token</label>
<input id="admin_token" name="admin_token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form></section>"#
    } else {
        ""
    };
    format!(
        r#"<h1>Sign in</h1>
{error}
<section><h2>With your wallet</h2>
<p>Organizers sign a one-time message with their Solana wallet; nothing is sent on chain.</p>
<button type="button" id="wallet-sign-in">Sign in with wallet</button>
<p id="wallet-status" role="status"></p>
<form method="post" action="/console/sign-in" id="wallet-form" hidden><input type="hidden" name="session" id="wallet-session"></form>
</section>
{admin}"#
    )
}

/// The sign-in page
///
/// `GET /console/sign-in`: sign in with a wallet (the page asks the
/// browser wallet to sign the login message of `POST /api/auth/nonce`) or
/// with the admin token.
#[utoipa::path(
    get,
    path = "/console/sign-in",
    tag = "console",
    operation_id = "console_sign_in_page",
    responses((status = 200, description = "The sign-in page", body = String, content_type = "text/html"))
)]
pub async fn sign_in_page(State(state): State<AppState>) -> Response {
    respond(
        StatusCode::OK,
        page(
            "Sign in",
            None,
            &sign_in_body(None, !state.config.admin_token.is_empty()),
        ),
    )
}

/// What the sign-in form posts: the admin token, or the session token the
/// page got from `POST /api/auth/verify` for the wallet.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[serde(default)]
    pub admin_token: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
}

/// Whether the console is served over HTTPS (then its cookie says `Secure`).
fn secure(state: &AppState) -> bool {
    state.config.api.public_url.starts_with("https://")
}

/// Sign in
///
/// `POST /console/sign-in` (form): sets the console's session cookie and
/// sends the browser to `/console`; a wrong token or a wallet without the
/// organizer role gets the sign-in page again, saying why (401).
#[utoipa::path(
    post,
    path = "/console/sign-in",
    tag = "console",
    operation_id = "console_sign_in",
    request_body(content = SignIn, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in: to `/console`, with the session cookie"),
        (status = 401, description = "Wrong admin token, or no valid organizer session: the page again", body = String, content_type = "text/html"),
    )
)]
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form: SignIn = match form(&headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let refuse = |why: &str| {
        respond(
            StatusCode::UNAUTHORIZED,
            page(
                "Sign in",
                None,
                &sign_in_body(Some(why), !state.config.admin_token.is_empty()),
            ),
        )
    };
    if !session::same_origin(&headers) {
        return refuse("This sign-in did not come from this site.");
    }
    let now = state.clock.now();
    let (value, max_age) = if let Some(token) = form.admin_token.as_deref() {
        if !session::is_admin_token(&state, token.trim()) {
            return refuse("That is not the admin token.");
        }
        let until = now + session::ADMIN_SESSION_SECS;
        match session::admin_cookie(&state, until) {
            Some(value) => (value, session::ADMIN_SESSION_SECS),
            None => return refuse("The admin console is disabled on this server."),
        }
    } else if let Some(token) = form.session.as_deref() {
        let token = token.trim();
        let claims = crate::services::auth::read_token(&state.config.api, token, now);
        match (
            claims,
            crate::services::auth::session_wallet(&state, token).await,
        ) {
            (Ok(claims), Ok((_, crate::store::auth::Role::Organizer))) => {
                (format!("wallet.{token}"), (claims.exp - now).max(0))
            }
            (Ok(_), Ok((_, role))) => {
                return refuse(&format!(
                    "This wallet is a {} here, not an organizer: ask the server's admin for the organizer role.",
                    role.as_str()
                ));
            }
            _ => return refuse("The wallet's signature did not sign you in; try again."),
        }
    } else {
        return refuse("Sign in with your wallet or the admin token.");
    };
    let mut response = Redirect::to("/console").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(&value, max_age, secure(&state)))
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Sign in with a one-time link
///
/// `GET /console/link/{token}`: a link the server printed for its admin
/// (`demo --serve`) signs the browser in as the admin, once, within ten
/// minutes; used or expired, it says so.
#[utoipa::path(
    get,
    path = "/console/link/{token}",
    tag = "console",
    operation_id = "console_follow_link",
    params(("token" = String, Path, description = "The link's token")),
    responses(
        (status = 303, description = "Signed in: to `/console`, with the session cookie"),
        (status = 401, description = "Used already, expired or not a link of this server: the sign-in page, saying so", body = String, content_type = "text/html"),
    )
)]
pub async fn follow_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if !session::spend_link(&state, &token) {
        return respond(
            StatusCode::UNAUTHORIZED,
            page(
                "Sign in",
                None,
                &sign_in_body(
                    Some(
                        "This sign-in link was used already, has expired, or is not one of this server's. Sign in below.",
                    ),
                    !state.config.admin_token.is_empty(),
                ),
            ),
        );
    }
    let until = state.clock.now() + session::ADMIN_SESSION_SECS;
    let mut response = Redirect::to("/console").into_response();
    if let Some(value) = session::admin_cookie(&state, until)
        && let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(
            &value,
            session::ADMIN_SESSION_SECS,
            secure(&state),
        ))
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Sign out
///
/// `POST /console/sign-out`: forgets the console's session cookie.
#[utoipa::path(
    post,
    path = "/console/sign-out",
    tag = "console",
    operation_id = "console_sign_out",
    responses((status = 303, description = "Signed out: to `/console/sign-in`"))
)]
pub async fn sign_out(State(state): State<AppState>) -> Response {
    let mut response = to_sign_in();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie("", 0, secure(&state))) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
