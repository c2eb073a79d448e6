//! Rate limits as the HTTP layer applies them: which budget a request
//! spends (per wallet for mints, per validator and gate for online
//! validation, per client address for login nonces), and a spent budget as
//! 429 with `Retry-After`. [`ClientAddress`] is where a request comes from.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::adapters::ratelimit::{Budget, RateLimiter};
use crate::config::Quota;
use crate::http::api::auth::AuthUser;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Spends one request of `key`'s budget, or answers 429 with `Retry-After`.
///
/// When the store fails (Redis down) the request is let through and the
/// failure logged: these limits curb abuse, and a Redis outage must not
/// stop the doors of a venue.
pub async fn enforce(limiter: &dyn RateLimiter, key: &str, quota: Quota) -> Result<(), ApiError> {
    match limiter.acquire(key, quota).await {
        Ok(Budget::Allowed) => Ok(()),
        Ok(Budget::Exhausted { retry_after }) => {
            tracing::debug!(key, ?retry_after, "rate limited");
            Err(ApiError::TooManyRequests { retry_after })
        }
        Err(e) => {
            tracing::error!(error = %e, key, "rate limit store failed; letting the request through");
            Ok(())
        }
    }
}

/// Where a request comes from, as a key for limits and bindings: the
/// connection's peer address, or with `api.client_ip_header` the last
/// address in that header (the one the proxy in front added). An IPv6
/// client is its /64 network: one host commonly holds a whole /64 and
/// could otherwise take a fresh address per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

impl ClientAddress {
    pub fn of(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        Self(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        })
    }
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = state.config.api.client_ip_header.as_str();
        let forwarded = (!header.is_empty())
            .then(|| parts.headers.get_all(header).iter().next_back())
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        // Only a router driven without a socket (a unit test) has no peer.
        let ip = forwarded
            .or(peer)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(Self::of(ip))
    }
}

/// Budget key of a wallet's ticket mints.
pub fn mint_key(user: &AuthUser) -> String {
    format!("mint:{}", user.wallet)
}

/// Budget key of a validator's online validations at one gate.
pub fn validate_key(user: &AuthUser, event_id: u64, gate: u32) -> String {
    format!("validate:{}:{event_id}:{gate}", user.wallet)
}

/// `[api.rate_limits] nonce`, per client address.
pub async fn check_nonce(state: &AppState, client: &ClientAddress) -> Result<(), ApiError> {
    let quota = state.config.api.rate_limits.nonce;
    enforce(
        state.rate_limiter.as_ref(),
        &format!("nonce:{}", client.0),
        quota,
    )
    .await
}

/// `[api.rate_limits] mint`, per wallet.
pub async fn check_mint(state: &AppState, user: &AuthUser) -> Result<(), ApiError> {
    let quota = state.config.api.rate_limits.mint;
    enforce(state.rate_limiter.as_ref(), &mint_key(user), quota).await
}

/// `[api.rate_limits] validate`, per validator wallet and gate.
pub async fn check_validate(
    state: &AppState,
    user: &AuthUser,
    event_id: u64,
    gate: u32,
) -> Result<(), ApiError> {
    let quota = state.config.api.rate_limits.validate;
    enforce(
        state.rate_limiter.as_ref(),
        &validate_key(user, event_id, gate),
        quota,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::adapters::ratelimit::InProcessLimiter;

    #[test]
    fn a_client_is_its_ipv4_address_or_its_ipv6_network() {
        let key = |s: &str| ClientAddress::of(s.parse().unwrap()).0;
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[tokio::test(start_paused = true)]
    async fn enforce_answers_429_with_the_wait() {
        let limiter = InProcessLimiter::new();
        let quota = Quota {
            requests: 5,
            period_secs: 1,
        };
        for _ in 0..5 {
            enforce(&limiter, "validate:x", quota).await.unwrap();
        }
        match enforce(&limiter, "validate:x", quota).await {
            Err(ApiError::TooManyRequests { retry_after }) => {
                assert_eq!(retry_after, Duration::from_millis(200));
            }
            other => panic!("{other:?}"),
        }
    }
}
