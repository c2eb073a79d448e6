//! Who is using the console: the holder of the admin token, or a wallet
//! signed in with the API's nonce login. The browser keeps it in one
//! cookie (`HttpOnly`, `SameSite=Strict`, path `/console`):
//! - `admin.EXPIRY.MAC`: MAC is HMAC-SHA256 keyed with the admin token over
//!   the expiry, so changing the token signs every console admin out;
//! - `wallet.JWT`: the API's own session token, checked as the API checks
//!   it (expiry, signature, the wallet's current role).

use axum::http::HeaderMap;
use axum::http::header;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shared::PublicKeyBytes;

use crate::http::state::AppState;
use crate::services::auth as login;
use crate::store::auth::Role;

/// The console's cookie.
pub const COOKIE: &str = "nft_gate_console";
/// How long an admin's console session lasts.
pub const ADMIN_SESSION_SECS: i64 = 12 * 3600;

/// A signed-in console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// The admin token's holder: every event.
    Admin,
    /// A wallet with the organizer role: its own events.
    Organizer(PublicKeyBytes),
}

impl Viewer {
    /// Who the page says is signed in.
    pub fn label(&self) -> String {
        match self {
            Self::Admin => "admin".to_owned(),
            Self::Organizer(wallet) => {
                let text = wallet.to_base58();
                format!("organizer {}…{}", &text[..4], &text[text.len() - 4..])
            }
        }
    }

    /// The organizer filter for listings: none for the admin.
    pub fn organizer(&self) -> Option<String> {
        match self {
            Self::Admin => None,
            Self::Organizer(wallet) => Some(wallet.to_base58()),
        }
    }
}

fn admin_mac(admin_token: &str, expires_at: i64) -> Option<String> {
    mac_of(
        admin_token,
        &format!("nft-gate console admin session until {expires_at}"),
    )
}

fn mac_of(admin_token: &str, text: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(admin_token.as_bytes()).ok()?;
    mac.update(text.as_bytes());
    Some(hex::encode(mac.finalize().into_bytes()))
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// How long a sign-in link is valid.
pub const LINK_SECS: i64 = 600;

/// Links used already (their MACs), so each signs in once. Kept by this
/// process: behind several instances a link could be used once per
/// instance within its ten minutes.
static USED_LINKS: std::sync::Mutex<Vec<(i64, String)>> = std::sync::Mutex::new(Vec::new());

/// A sign-in link's token, valid for [`LINK_SECS`] from `now` and once:
/// what `sync-server` and the demo print for the admin (`/console/link/TOKEN`).
/// `None` when the server has no admin token.
pub fn link_token(state: &AppState, now: i64) -> Option<String> {
    if state.config.admin_token.is_empty() {
        return None;
    }
    let until = now + LINK_SECS;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).ok()?;
    let nonce = hex::encode(nonce);
    let mac = mac_of(
        &state.config.admin_token,
        &format!("nft-gate console sign-in link {nonce} until {until}"),
    )?;
    Some(format!("{until}.{nonce}.{mac}"))
}

/// Spends a sign-in link's token: true once for a valid, unexpired one.
pub fn spend_link(state: &AppState, token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(until), Some(nonce), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(until) = until.parse::<i64>() else {
        return false;
    };
    let now = state.clock.now();
    let Some(expected) = mac_of(
        &state.config.admin_token,
        &format!("nft-gate console sign-in link {nonce} until {until}"),
    ) else {
        return false;
    };
    if state.config.admin_token.is_empty() || until <= now || !equal(&expected, mac) {
        return false;
    }
    let mut used = USED_LINKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    used.retain(|(expires, _)| *expires > now);
    if used.iter().any(|(_, m)| m == mac) {
        return false;
    }
    used.push((until, mac.to_owned()));
    true
}

/// The cookie value of an admin session until `expires_at`; `None` when the
/// server has no admin token.
pub fn admin_cookie(state: &AppState, expires_at: i64) -> Option<String> {
    if state.config.admin_token.is_empty() {
        return None;
    }
    Some(format!(
        "admin.{expires_at}.{}",
        admin_mac(&state.config.admin_token, expires_at)?
    ))
}

/// Whether `presented` is the admin token (in constant time).
pub fn is_admin_token(state: &AppState, presented: &str) -> bool {
    let expected = state.config.admin_token.as_bytes();
    !expected.is_empty()
        && expected.len() == presented.len()
        && expected
            .iter()
            .zip(presented.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The `Set-Cookie` value that stores `value` (empty: signs out).
pub fn set_cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The console cookie's value in a request, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The signed-in user of a request, if its cookie holds a valid session.
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    let value = cookie(headers)?;
    if let Some(rest) = value.strip_prefix("admin.") {
        let (expires, mac) = rest.split_once('.')?;
        let expires_at: i64 = expires.parse().ok()?;
        let expected = admin_mac(&state.config.admin_token, expires_at)?;
        let valid = !state.config.admin_token.is_empty()
            && expires_at > state.clock.now()
            && expected.len() == mac.len()
            && expected
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        return valid.then_some(Viewer::Admin);
    }
    let token = value.strip_prefix("wallet.")?;
    let (wallet, role) = login::session_wallet(state, token).await.ok()?;
    (role == Role::Organizer).then_some(Viewer::Organizer(wallet))
}

/// Whether a form post comes from this site: a browser sends `Origin` on
/// every cross-site POST, and it must name the host the request went to.
/// (The cookie is `SameSite=Strict` besides.)
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}
