//! The buyer pages' layout and the small pieces of HTML they share; text
//! is escaped and times written by the console's helpers.

pub use crate::http::console::html::{escape, when};

use super::session::Buyer;

/// A whole page: `title`, who is signed in (if anyone), and `body`.
pub fn page(title: &str, buyer: Option<&Buyer>, body: &str) -> String {
    let account = match buyer {
        Some(buyer) => format!(
            r#"<span class="who" data-wallet="{wallet}">Wallet {label}</span>
<form method="post" action="/sign-out" id="sign-out"><button type="submit" class="quiet">Sign out</button></form>"#,
            wallet = escape(&buyer.0.to_base58()),
            label = escape(&buyer.label()),
        ),
        None => String::new(),
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="theme-color" content="#15202b">
<title>{title} · Tickets</title>
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" href="/buyer/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/buyer/assets/buyer.css">
<script src="/buyer/assets/qrcode.js" defer></script>
<script src="/buyer/assets/buyer.js" defer></script>
<script src="/buyer/assets/live-code.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><a class="brand" href="/">Tickets</a><nav aria-label="Main"><a href="/tickets">My tickets</a>{account}</nav></header>
<main id="main">
{body}
</main>
</body>
</html>
"##,
        title = escape(title)
    )
}

/// The wallet sign-in block: a button the script turns into the wallet's
/// nonce login, then posts the session to `/sign-in` and comes back to
/// `next`.
pub fn sign_in_block(why: &str, next: &str) -> String {
    format!(
        r#"<section class="card" aria-labelledby="sign-in-h">
<h2 id="sign-in-h">Sign in with your wallet</h2>
<p>{why}</p>
<p class="meta">Your wallet signs a one-time message; nothing is sent on chain and nothing is paid.</p>
<button type="button" id="wallet-sign-in" data-next="{next}">Sign in with wallet</button>
<p id="wallet-status" role="status" aria-live="polite"></p>
<form method="post" action="/sign-in" id="wallet-form" hidden><input type="hidden" name="session" id="wallet-session"><input type="hidden" name="next" value="{next}"></form>
</section>"#,
        why = escape(why),
        next = escape(next),
    )
}

/// An amount in a currency's smallest unit, as buyers read it (`25.00 USD`,
/// `0.25 SOL`).
pub fn money(amount: u64, currency: &str) -> String {
    if currency.eq_ignore_ascii_case("sol") {
        let sol = amount as f64 / 1e9;
        let text = format!("{sol:.9}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        return format!("{text} SOL");
    }
    let zero_decimal = matches!(
        currency.to_ascii_lowercase().as_str(),
        "jpy" | "krw" | "vnd" | "clp" | "isk" | "huf" | "twd" | "ugx"
    );
    if zero_decimal {
        format!("{amount} {}", currency.to_ascii_uppercase())
    } else {
        format!(
            "{}.{:02} {}",
            amount / 100,
            amount % 100,
            currency.to_ascii_uppercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_as_buyers_write_them() {
        assert_eq!(money(2500, "usd"), "25.00 USD");
        assert_eq!(money(5, "eur"), "0.05 EUR");
        assert_eq!(money(250_000_000, "sol"), "0.25 SOL");
        assert_eq!(money(1_000_000_000, "sol"), "1 SOL");
        assert_eq!(money(1200, "jpy"), "1200 JPY");
    }
}
