//! The buyer pages' session: the wallet's API session token (from the
//! nonce login its browser wallet signed) kept in a cookie, so the server
//! can render the holder's own tickets. The scripts keep the same token to
//! call the JSON API. Any wallet may sign in; what it sees is its own.

use axum::http::{HeaderMap, header};
use shared::PublicKeyBytes;

use crate::http::state::AppState;
use crate::services::auth as login;

/// The buyer pages' cookie.
pub const COOKIE: &str = "nft_gate_buyer";

/// A signed-in buyer: their wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer(pub PublicKeyBytes);

impl Buyer {
    /// How the page names the wallet (`AbCd…WxYz`).
    pub fn label(&self) -> String {
        short(&self.0.to_base58())
    }
}

/// `AbCd…WxYz` of a base58 key.
pub fn short(text: &str) -> String {
    match (text.get(..4), text.get(text.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) if text.len() > 10 => format!("{head}…{tail}"),
        _ => text.to_owned(),
    }
}

/// Whether the pages are served over HTTPS (then the cookie says `Secure`).
pub fn secure(state: &AppState) -> bool {
    state.config.api.public_url.starts_with("https://")
}

/// The `Set-Cookie` value that keeps `token` (empty: signs out). `Lax`, so
/// a holder following a link from a mail or a bookmark is still signed in;
/// the pages' forms check their origin besides.
pub fn set_cookie(token: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Seconds `token` has left, if it is a valid session of a wallet.
pub async fn check_token(state: &AppState, token: &str) -> Option<i64> {
    let now = state.clock.now();
    let claims = login::read_token(&state.config.api, token, now).ok()?;
    login::session_wallet(state, token).await.ok()?;
    Some((claims.exp - now).max(0))
}

/// The signed-in buyer of a request, if its cookie holds a valid session.
pub async fn buyer(state: &AppState, headers: &HeaderMap) -> Option<Buyer> {
    let token = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())?;
    if token.is_empty() {
        return None;
    }
    let (wallet, _) = login::session_wallet(state, &token).await.ok()?;
    Some(Buyer(wallet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallets_are_named_by_their_ends() {
        assert_eq!(
            short("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"),
            "9xQe…VFin"
        );
        assert_eq!(short("short"), "short");
    }

    #[test]
    fn the_cookie_is_for_scripts_of_no_one() {
        let cookie = set_cookie("t", 60, true);
        assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"));
        assert!(cookie.contains("Path=/;"));
    }
}
