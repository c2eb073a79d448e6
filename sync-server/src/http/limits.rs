//! Rate limits as the HTTP layer applies them: which budget a request
//! spends (per wallet for mints, per validator and gate for online
//! validation), and a spent budget as 429 with `Retry-After`.

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

/// Budget key of a wallet's ticket mints.
pub fn mint_key(user: &AuthUser) -> String {
    format!("mint:{}", user.wallet)
}

/// Budget key of a validator's online validations at one gate.
pub fn validate_key(user: &AuthUser, event_id: u64, gate: u32) -> String {
    format!("validate:{}:{event_id}:{gate}", user.wallet)
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
